//! The `alarm-notify` stage: reads the `alarms` topic, keeps the set of active alarms in its
//! committed state, and hands deliveries to the target workers. A delivery that must not be
//! lost (every record for a webhook, a resolve for Alertmanager) is a state entry
//! `pending/<partition>/<offset>/<url>`, committed with the input offset that produced it and
//! deleted once delivered: a restart re-sends what was not confirmed (at least once). Active
//! alarms (`active/<rule>/<group>`) are re-sent to Alertmanager periodically by its workers, so
//! their updates need no such entry.

use crate::deliver::{ActiveSet, Item, Target};
use lux_log::StoredRecord;
use lux_model::{Alarm, AlarmState};
use lux_stage::{Context, Processor, TopicPartition};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

const ACTIVE_PREFIX: &str = "active/";
const PENDING_PREFIX: &str = "pending/";

/// The notify stage (see the module docs).
pub struct NotifyStage {
    name: String,
    alarms_topic: String,
    deadletter_topic: String,
    targets: Vec<Arc<Target>>,
    active: ActiveSet,
    max_pending: usize,
    stop: Arc<AtomicBool>,
    /// Owned input partitions.
    owned: Vec<u32>,
    /// Deliveries of the batch in hand, per target index, handed over at `end_batch`.
    batch: Vec<Vec<Item>>,
    /// Records that were not alarm records (sent to the dead-letter topic).
    bad_records: u64,
}

impl NotifyStage {
    /// A stage delivering to `targets` (whose workers run on their own, see
    /// [`crate::deliver::spawn_worker`], sharing `active`).
    pub fn new(
        alarms_topic: &str,
        deadletter_topic: &str,
        targets: Vec<Arc<Target>>,
        active: ActiveSet,
        max_pending: usize,
        stop: Arc<AtomicBool>,
    ) -> NotifyStage {
        NotifyStage {
            name: "alarm-notify".to_owned(),
            alarms_topic: alarms_topic.to_owned(),
            deadletter_topic: deadletter_topic.to_owned(),
            batch: targets.iter().map(|_| Vec::new()).collect(),
            targets,
            active,
            max_pending,
            stop,
            owned: Vec::new(),
            bad_records: 0,
        }
    }

    fn active_set(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Arc<Alarm>>> {
        self.active.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn pending_key(partition: u32, offset: u64, url: &str) -> Vec<u8> {
    format!("{PENDING_PREFIX}{partition}/{offset:020}/{url}").into_bytes()
}

/// `pending/<partition>/<offset>/<url>` -> (partition, url).
fn parse_pending_key(key: &str) -> Option<(u32, &str)> {
    let rest = key.strip_prefix(PENDING_PREFIX)?;
    let (partition, rest) = rest.split_once('/')?;
    let (_offset, url) = rest.split_once('/')?;
    Some((partition.parse().ok()?, url))
}

impl Processor for NotifyStage {
    fn name(&self) -> &str {
        &self.name
    }

    fn inputs(&self) -> Vec<String> {
        vec![self.alarms_topic.clone()]
    }

    fn outputs(&self) -> Vec<String> {
        vec![self.deadletter_topic.clone()]
    }

    fn restore(&mut self, partitions: &[TopicPartition], state: Vec<(Vec<u8>, Vec<u8>)>) -> anyhow::Result<()> {
        self.owned = partitions.iter().map(|tp| tp.partition).collect();
        for items in &mut self.batch {
            items.clear();
        }
        let mut active = BTreeMap::new();
        let mut queues: Vec<Vec<Item>> = self.targets.iter().map(|_| Vec::new()).collect();
        for (key, value) in state {
            let shown = String::from_utf8_lossy(&key).into_owned();
            let alarm: Alarm = match serde_json::from_slice(&value) {
                Ok(alarm) => alarm,
                Err(error) => anyhow::bail!("notify state entry {shown:?} is not an alarm record: {error}"),
            };
            if let Some(alarm_key) = shown.strip_prefix(ACTIVE_PREFIX) {
                active.insert(alarm_key.to_owned(), Arc::new(alarm));
            } else if let Some((partition, url)) = parse_pending_key(&shown) {
                match self.targets.iter().position(|t| t.url == url) {
                    Some(i) => {
                        let item = Item {
                            pending: Some((partition, key.clone())),
                            resolve: true,
                            record: Arc::new(value),
                            alarm: Arc::new(alarm),
                        };
                        if let Some(queue) = queues.get_mut(i) {
                            queue.push(item);
                        }
                    }
                    None => tracing::warn!(
                        entry = %shown,
                        "a delivery to a target no longer configured is dropped: {url} is not in [notify]"
                    ),
                }
            } else {
                anyhow::bail!("unknown notify state entry {shown:?}");
            }
        }
        for (target, mut items) in self.targets.iter().zip(queues) {
            // In each partition, in the order of the records (the offsets are zero-padded).
            items.sort_by(|a, b| a.pending.cmp(&b.pending));
            target.take_acked();
            target.replace(items);
        }
        *self.active_set() = active;
        Ok(())
    }

    fn process(&mut self, record: &StoredRecord, ctx: &mut Context) -> anyhow::Result<()> {
        let alarm: Alarm = match serde_json::from_slice(&record.value) {
            Ok(alarm) => alarm,
            Err(error) => {
                self.bad_records += 1;
                let detail = format!("not a LUX alarm record: {error}");
                return ctx.emit_bad_record(&self.deadletter_topic, &self.name, record, detail);
            }
        };
        let alarm_key = format!("{}/{}", alarm.rule, alarm.group_key);
        let state_key = format!("{ACTIVE_PREFIX}{alarm_key}").into_bytes();
        let alarm = Arc::new(alarm);
        let bytes = Arc::new(record.value.clone());
        let previous = match alarm.state {
            AlarmState::Raised | AlarmState::Updated => {
                ctx.set_state(record.partition, state_key, Some(record.value.clone()));
                self.active_set().insert(alarm_key, alarm.clone())
            }
            AlarmState::Cleared => {
                ctx.set_state(record.partition, state_key, None);
                self.active_set().remove(&alarm_key)
            }
        };
        let was_sent_active = previous.is_some_and(|p| !p.suppressed_by_intervention);
        for (target, items) in self.targets.iter().zip(self.batch.iter_mut()) {
            // Alertmanager: active alarms that are not suppressed go as active (and again at
            // each resend); a clear, or a suppression of an alarm that was sent active, goes as
            // resolved, kept until delivered. A webhook gets every record, kept until delivered.
            let (persist, resolve) = if target.is_alertmanager() {
                let resolve = alarm.state == AlarmState::Cleared || alarm.suppressed_by_intervention;
                if resolve && !(was_sent_active || alarm.state == AlarmState::Cleared) {
                    continue;
                }
                (resolve, resolve)
            } else {
                (true, false)
            };
            let pending = persist.then(|| {
                let key = pending_key(record.partition, record.offset, &target.url);
                ctx.set_state(record.partition, key.clone(), Some(record.value.clone()));
                (record.partition, key)
            });
            items.push(Item { pending, record: bytes.clone(), alarm: alarm.clone(), resolve });
        }
        Ok(())
    }

    fn end_batch(&mut self, ctx: &mut Context) -> anyhow::Result<()> {
        for target in &self.targets {
            for (partition, key) in target.take_acked() {
                if self.owned.contains(&partition) {
                    ctx.set_state(partition, key, None);
                }
            }
        }
        for (target, items) in self.targets.iter().zip(self.batch.iter_mut()) {
            if !items.is_empty() {
                target.push(items.drain(..));
            }
        }
        // Back-pressure: a target that is down holds at most about `max_pending` deliveries in
        // memory (they are in the state too); the alarms topic keeps the rest meanwhile.
        while !self.stop.load(Ordering::Relaxed) && self.targets.iter().any(|t| t.pending() > self.max_pending) {
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }

    fn counters(&self) -> Vec<(String, u64)> {
        vec![("bad_records".to_owned(), self.bad_records)]
    }
}
