//! One stage instance on Kafka: a member of the consumer group `<prefix><stage>` and a
//! transactional producer; see the [`super`] docs for the choices (eager assignment,
//! transactional ids, order of a transaction, fencing).

use super::client::{consumer_config, error_code, kafka_error, kafka_problem, millis};
use super::reader::stored_record;
use super::KafkaLog;
use crate::{
    partition_for_key, Assignment, Commit, CommitDone, LogError, Polled, Result, StageSession, StoredRecord,
    TopicPartition,
};
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// An assignment change seen by the rebalance callback.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Change {
    /// These partitions (maybe none: more instances than partitions) are now assigned.
    Assigned(Vec<TopicPartition>),
    /// Everything was revoked; an assignment follows when the rebalance completes.
    Revoked,
}

/// The consumer's context: records every assignment change (eager protocol: everything is
/// revoked, then the new assignment given), and holds the transaction in flight, which a
/// rebalance waits for.
#[derive(Default)]
pub(crate) struct SessionContext {
    /// The latest change the session has not looked at yet.
    change: Mutex<Option<Change>>,
    flight: Mutex<Flight>,
}

/// A transaction committing in the background while the stage reads and processes its next
/// batch ([`StageSession::begin_commit`]).
#[derive(Default)]
enum Flight {
    #[default]
    Idle,
    Running(std::thread::JoinHandle<Landed>),
    /// Finished, its outcome not taken yet (a rebalance waited for it).
    Landed(Landed),
}

/// A transaction, once finished.
pub(crate) struct Landed {
    /// The producer back, unless it must be recreated (after a fatal error).
    producer: Option<Transactional>,
    result: std::result::Result<CommitDone, TxnError>,
}

impl ClientContext for SessionContext {}

impl ConsumerContext for SessionContext {
    /// Before partitions move, the transaction in flight finishes: its offsets are then what
    /// the next owner starts from, and its state what it restores.
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, _rebalance: &Rebalance<'_>) {
        self.land();
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let change = match rebalance {
            Rebalance::Assign(tpl) => {
                let mut assigned: Vec<TopicPartition> = tpl
                    .elements()
                    .iter()
                    .map(|e| TopicPartition { topic: e.topic().to_owned(), partition: e.partition().max(0) as u32 })
                    .collect();
                assigned.sort();
                Change::Assigned(assigned)
            }
            Rebalance::Revoke(_) => Change::Revoked,
            Rebalance::Error(error) => {
                tracing::warn!(%error, "consumer group rebalance failed");
                return;
            }
        };
        *self.change.lock().unwrap_or_else(|p| p.into_inner()) = Some(change);
    }
}

impl SessionContext {
    fn take_change(&self) -> Option<Change> {
        self.change.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    fn flight(&self) -> std::sync::MutexGuard<'_, Flight> {
        self.flight.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits for the transaction in flight, if any; its outcome stays for the session.
    fn land(&self) {
        let mut flight = self.flight();
        if !matches!(*flight, Flight::Running(_)) {
            return;
        }
        if let Flight::Running(thread) = std::mem::take(&mut *flight) {
            *flight = Flight::Landed(thread.join().unwrap_or_else(|_| Landed {
                producer: None,
                result: Err(TxnError { error: KafkaError::Canceled, what: "commit (its thread panicked)" }),
            }));
        }
    }

    /// The outcome of the last transaction begun in the background, waiting for it if needed;
    /// `None` when none is in flight or waiting to be taken.
    fn take_landed(&self) -> Option<Landed> {
        self.land();
        match std::mem::take(&mut *self.flight()) {
            Flight::Landed(landed) => Some(landed),
            _ => None,
        }
    }
}

/// How a failed transaction is handled.
enum Failure {
    /// The instance lost its partitions (or its producer was fenced): the batch is void.
    Fenced,
    /// It may pass (broker unreachable, timeout): the runner retries the same batch.
    Retry,
}

/// Whether an error code says that this instance no longer owns what it commits.
fn fences(code: Option<RDKafkaErrorCode>) -> bool {
    matches!(
        code,
        Some(
            RDKafkaErrorCode::ProducerFenced
                | RDKafkaErrorCode::InvalidProducerEpoch
                | RDKafkaErrorCode::UnknownMemberId
                | RDKafkaErrorCode::IllegalGeneration
                | RDKafkaErrorCode::FencedInstanceId
                | RDKafkaErrorCode::RebalanceInProgress
                | RDKafkaErrorCode::AssignmentLost,
        )
    )
}

fn classify(error: &KafkaError) -> Failure {
    if fences(error_code(error)) {
        Failure::Fenced
    } else {
        Failure::Retry
    }
}

fn is_fatal(error: &KafkaError) -> bool {
    match error {
        KafkaError::Transaction(e) => e.is_fatal(),
        KafkaError::MessageConsumptionFatal(_) => true,
        _ => false,
    }
}

/// A failed step of a transaction: the error and what was being done.
pub(crate) struct TxnError {
    pub(crate) error: KafkaError,
    pub(crate) what: &'static str,
}

fn txn<T>(what: &'static str, result: std::result::Result<T, KafkaError>) -> std::result::Result<T, TxnError> {
    result.map_err(|error| TxnError { error, what })
}

/// Runs a step of a transaction again while librdkafka says it failed for a passing reason
/// (retriable, no abort required, and no sign that this instance was fenced: a zombie must
/// learn it at once), with a growing pause, for at most `transaction_timeout`: a
/// broker unreachable for a while then completes the transaction instead of aborting it (whose
/// records a broker that does not hide aborted transactions, such as tansu, would show).
fn retried<T>(
    log: &KafkaLog,
    what: &'static str,
    mut step: impl FnMut() -> std::result::Result<T, KafkaError>,
) -> std::result::Result<T, TxnError> {
    let deadline = Instant::now() + log.config.transaction_timeout;
    let mut pause = Duration::from_millis(100);
    loop {
        match step() {
            Err(KafkaError::Transaction(error))
                if error.is_retriable()
                    && !error.txn_requires_abort()
                    && !error.is_fatal()
                    && !fences(Some(error.code()))
                    && Instant::now() < deadline =>
            {
                log.metrics.transaction_retries.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%error, "cannot {what} yet; retrying in {pause:?}");
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_secs(2));
            }
            result => return txn(what, result),
        }
    }
}

/// A transactional producer with its id.
pub(crate) struct Transactional {
    pub(crate) producer: ThreadedProducer<DefaultProducerContext>,
    pub(crate) id: String,
}

/// Creates a transactional producer and registers its id with the brokers (which aborts any
/// transaction an earlier producer of that id left open and fences it).
pub(crate) fn transactional_producer(log: &KafkaLog, id: &str) -> Result<Transactional> {
    let config = &log.config;
    let mut client = super::client::base_config(config);
    client
        .set("transactional.id", id)
        .set("enable.idempotence", "true")
        .set("transaction.timeout.ms", millis(config.transaction_timeout).to_string());
    super::client::set_defaults(&mut client, config, &crate::config::PRODUCER_DEFAULTS);
    let producer: ThreadedProducer<DefaultProducerContext> =
        client.create().map_err(|e| kafka_error(&config.brokers, "cannot create the transactional producer", &e))?;
    if let Err(error) = producer.init_transactions(config.request_timeout) {
        if error_code(&error) == Some(RDKafkaErrorCode::InvalidTransactionTimeout) {
            return Err(LogError::Kafka {
                brokers: config.brokers.clone(),
                detail: format!(
                    "the brokers refuse log.kafka.transaction_timeout ({} ms) as longer than their transaction.max.timeout.ms; lower log.kafka.transaction_timeout or raise transaction.max.timeout.ms on the brokers",
                    millis(config.transaction_timeout)
                ),
            });
        }
        return Err(kafka_error(&config.brokers, &format!("cannot start the transactions of {id}"), &error));
    }
    Ok(Transactional { producer, id: id.to_owned() })
}

/// A transactional id unique to this instance: `<prefix><group>-<client_id>-<role>-<random>`.
pub(crate) fn transactional_id(log: &KafkaLog, group: &str, role: &str) -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    hasher
        .write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos());
    format!("{}{group}-{}-{role}-{:016x}", log.topic_prefix, log.config.client_id, hasher.finish())
}

/// Runs one transaction: begin, offsets (the fencing check), outputs, state, commit. On error,
/// aborts when possible and tells whether the producer must be recreated.
pub(crate) fn run_transaction(
    log: &KafkaLog,
    producer: &ThreadedProducer<DefaultProducerContext>,
    commit: &Commit,
    offsets: Option<(&TopicPartitionList, &rdkafka::consumer::ConsumerGroupMetadata)>,
    output_partitions: &HashMap<String, u32>,
    changelog: &str,
) -> Result<(), TxnError> {
    let timeout = log.config.request_timeout;
    txn("begin the transaction", producer.begin_transaction())?;
    // Offsets first: the group coordinator checks the member and generation here (KIP-447), so a
    // zombie learns it is fenced before any of its records reach a broker.
    if let Some((tpl, metadata)) = offsets {
        retried(log, "commit the input offsets", || producer.send_offsets_to_transaction(tpl, metadata, timeout))?;
    }
    for output in &commit.outputs {
        let partitions = output_partitions.get(&output.topic).copied().unwrap_or(1);
        let partition = partition_for_key(&output.key, partitions) as i32;
        let record = BaseRecord::<[u8], [u8]>::to(&output.topic)
            .key(&output.key[..])
            .payload(&output.value[..])
            .partition(partition)
            .timestamp(output.timestamp_ms);
        send(producer, record)?;
    }
    for change in &commit.state {
        let mut record =
            BaseRecord::<[u8], [u8]>::to(changelog).key(&change.key[..]).partition(change.partition as i32);
        if let Some(value) = &change.value {
            record = record.payload(&value[..]);
        }
        send(producer, record)?;
    }
    wait_for_deliveries(producer, timeout);
    retried(log, "commit the transaction", || producer.commit_transaction(timeout))
}

/// Waits, in steps of a millisecond and for at most `timeout`, until every record sent is
/// delivered (the producer's own thread serves the delivery reports).
///
/// `commit_transaction` flushes first, and the `rdkafka` crate's flush sleeps in polls of 100 ms
/// while any record is in flight: that cost every transaction a fixed 100 ms on top of the
/// broker's work (measured: 100.8 ms of a 102 ms commit of 2,000 records on tansu). With the
/// records delivered beforehand, its flush returns at once.
fn wait_for_deliveries(producer: &ThreadedProducer<DefaultProducerContext>, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while producer.in_flight_count() > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Enqueues a record, waiting while librdkafka's queue is full.
fn send(
    producer: &ThreadedProducer<DefaultProducerContext>,
    mut record: BaseRecord<'_, [u8], [u8]>,
) -> Result<(), TxnError> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) if Instant::now() < deadline => {
                record = back;
                std::thread::sleep(Duration::from_millis(5));
            }
            Err((error, _)) => return Err(TxnError { error, what: "produce a record" }),
        }
    }
}

/// Aborts a failed transaction; `false` when the producer is unusable and must be recreated.
pub(crate) fn abort(log: &KafkaLog, producer: &ThreadedProducer<DefaultProducerContext>, error: &KafkaError) -> bool {
    log.metrics.aborts.fetch_add(1, Ordering::Relaxed);
    if is_fatal(error) {
        return false;
    }
    match producer.abort_transaction(log.config.request_timeout) {
        Ok(()) => true,
        Err(abort_error) => {
            tracing::warn!(error = %abort_error, "aborting the transaction failed; the producer is recreated");
            // Not in a transaction (it failed before begin): nothing to abort.
            error_code(&abort_error) == Some(RDKafkaErrorCode::State) && !is_fatal(&abort_error)
        }
    }
}

/// A stage instance's session: see the [`super`] docs.
pub struct KafkaSession {
    log: Arc<KafkaLog>,
    group: String,
    inputs: Vec<String>,
    changelog: String,
    changelog_partitions: u32,
    /// `None` for a source (no inputs).
    consumer: Option<BaseConsumer<SessionContext>>,
    /// `None` after a fatal error, until the next commit recreates it.
    producer: Option<Transactional>,
    /// The partitions the runner was last told it owns.
    owned: Vec<TopicPartition>,
    /// The next poll answers with an assignment: at the start, and after a fenced batch.
    reassign: bool,
}

/// A transaction ready to run: everything it needs from the session.
struct Prepared {
    producer: Transactional,
    output_partitions: HashMap<String, u32>,
    offsets: TopicPartitionList,
    metadata: Option<rdkafka::consumer::ConsumerGroupMetadata>,
}

/// Runs a prepared transaction (on the stage's thread or on its own), aborting it on failure.
fn transact(log: &KafkaLog, prepared: Prepared, commit: &Commit, changelog: &str) -> Landed {
    let Prepared { producer, output_partitions, offsets, metadata } = prepared;
    let started = Instant::now();
    let result = run_transaction(
        log,
        &producer.producer,
        commit,
        metadata.as_ref().map(|m| (&offsets, m)),
        &output_partitions,
        changelog,
    );
    match result {
        Ok(()) => Landed { producer: Some(producer), result: Ok(CommitDone::since(started)) },
        Err(failure) => {
            let keep = abort(log, &producer.producer, &failure.error);
            Landed { producer: keep.then_some(producer), result: Err(failure) }
        }
    }
}

impl KafkaSession {
    pub(crate) fn open(log: Arc<KafkaLog>, group: &str, inputs: &[String]) -> Result<KafkaSession> {
        let mut changelog_partitions = 1;
        for topic in inputs {
            changelog_partitions = changelog_partitions.max(log.admin.existing_partitions(topic)?);
        }
        let changelog = log.changelog_topic(group);
        log.admin.ensure_topic(&changelog, changelog_partitions, true)?;
        let consumer = if inputs.is_empty() { None } else { Some(group_consumer(&log, group, inputs)?) };
        let producer = transactional_producer(&log, &transactional_id(&log, group, "stage"))?;
        tracing::info!(group = %log.group_id(group), transactional_id = %producer.id, "joined the Kafka log");
        Ok(KafkaSession {
            log,
            group: group.to_owned(),
            inputs: inputs.to_vec(),
            changelog,
            changelog_partitions,
            consumer,
            producer: Some(producer),
            owned: Vec::new(),
            reassign: true,
        })
    }

    /// The assignment answer for `partitions`, with their state from the changelog. A
    /// transaction in flight has finished before (the rebalance callback waited for it); its
    /// outcome is kept for [`StageSession::end_commit`].
    fn assignment(&mut self, partitions: Vec<TopicPartition>) -> Result<Polled> {
        let numbers: Vec<u32> = if self.consumer.is_none() {
            (0..self.changelog_partitions).collect()
        } else {
            let set: BTreeSet<u32> = partitions.iter().map(|tp| tp.partition).collect();
            set.into_iter().filter(|p| *p < self.changelog_partitions).collect()
        };
        let state = self.log.reader.read_state(&self.log.admin, &self.changelog, &numbers)?;
        self.owned = partitions.clone();
        self.log.metrics.assignments.fetch_add(1, Ordering::Relaxed);
        Ok(Polled::Assigned(Assignment { partitions, state }))
    }

    /// How long a member may wait for the group to (re)assign partitions.
    fn join_limit(&self) -> Duration {
        self.log.config.max_poll_interval * 2 + self.log.config.session_timeout
    }

    /// Polls (dropping any record: they belong to no batch) until the group assigns partitions
    /// or `limit` passes (`None`).
    fn wait_for_assignment(
        &self,
        consumer: &BaseConsumer<SessionContext>,
        limit: Duration,
    ) -> Result<Option<Vec<TopicPartition>>> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(Err(error)) = consumer.poll(Duration::from_millis(100)) {
                if is_fatal(&error) {
                    return Err(kafka_error(&self.log.config.brokers, "the stage's consumer failed", &error));
                }
            }
            if let Some(Change::Assigned(assigned)) = consumer.context().take_change() {
                return Ok(Some(assigned));
            }
        }
        Ok(None)
    }

    fn poll_consumer(
        &mut self,
        consumer: &BaseConsumer<SessionContext>,
        max_records: usize,
        timeout: Duration,
    ) -> Result<Polled> {
        if self.reassign {
            let limit = self.join_limit();
            return match self.wait_for_assignment(consumer, limit)? {
                Some(assigned) => {
                    self.reassign = false;
                    self.assignment(assigned)
                }
                None => Err(kafka_problem(
                    &self.log.config.brokers,
                    format!(
                        "stage {}: the consumer group {} assigned no partitions within {limit:?}; check that the brokers are reachable",
                        self.group,
                        self.log.group_id(&self.group),
                    ),
                )),
            };
        }
        let deadline = Instant::now() + timeout;
        let mut records: Vec<StoredRecord> = Vec::new();
        loop {
            let wait =
                if records.is_empty() { deadline.saturating_duration_since(Instant::now()) } else { Duration::ZERO };
            let polled = consumer.poll(wait);
            match consumer.context().take_change() {
                // Records polled in this call, and those of the runner's uncommitted batch, are
                // void: the new assignment starts at the committed offsets.
                Some(Change::Assigned(assigned)) => {
                    consumer.context().land();
                    return self.assignment(assigned);
                }
                Some(Change::Revoked) => {
                    consumer.context().land();
                    let assigned = self.wait_for_assignment(consumer, self.join_limit())?.unwrap_or_default();
                    return self.assignment(assigned);
                }
                None => {}
            }
            match polled {
                Some(Ok(message)) => {
                    records.push(stored_record(&message));
                    if records.len() >= max_records {
                        break;
                    }
                }
                Some(Err(KafkaError::PartitionEOF(_))) => {}
                Some(Err(error)) if is_fatal(&error) => {
                    return Err(kafka_error(&self.log.config.brokers, "the stage's consumer failed", &error))
                }
                Some(Err(error)) => {
                    tracing::warn!(group = %self.log.group_id(&self.group), %error, "consumer error (librdkafka retries)");
                }
                None => {
                    if !records.is_empty() || Instant::now() >= deadline {
                        break;
                    }
                }
            }
        }
        Ok(Polled::Records(records))
    }

    /// Everything a transaction of `commit` needs; `None` when there is nothing to commit.
    fn prepare_transaction(&mut self, commit: &Commit) -> Result<Option<Prepared>> {
        if commit.outputs.is_empty() && commit.state.is_empty() && commit.next_offsets.is_empty() {
            return Ok(None);
        }
        let brokers = &self.log.config.brokers;
        // Offsets of partitions this instance does not own (any more) would be a zombie's.
        let lost = self.consumer.as_ref().is_some_and(|c| c.assignment_lost())
            || commit.next_offsets.iter().any(|(tp, _)| !self.owned.contains(tp));
        if lost {
            return Err(self.fenced());
        }
        let output_partitions = prepare(&self.log, commit, &self.changelog, self.changelog_partitions)?;
        let mut offsets = TopicPartitionList::new();
        for (tp, next) in &commit.next_offsets {
            offsets
                .add_partition_offset(&tp.topic, tp.partition as i32, Offset::Offset(*next as i64))
                .map_err(|e| kafka_error(brokers, "bad offset", &e))?;
        }
        let metadata = match &self.consumer {
            Some(consumer) if offsets.count() > 0 => Some(
                consumer
                    .group_metadata()
                    .ok_or_else(|| kafka_problem(brokers, "the consumer has no group metadata yet; retrying"))?,
            ),
            _ => None,
        };
        let producer = match self.producer.take() {
            Some(producer) => producer,
            None => transactional_producer(&self.log, &transactional_id(&self.log, &self.group, "stage"))?,
        };
        Ok(Some(Prepared { producer, output_partitions, offsets, metadata }))
    }

    /// What a finished transaction means for the runner: the producer back, the commit
    /// counted, or the failure as a [`LogError`] (fenced: the consumer is renewed).
    fn outcome(&mut self, landed: Landed) -> Result<CommitDone> {
        if let Some(producer) = landed.producer {
            self.producer = Some(producer);
        }
        match landed.result {
            Ok(done) => {
                self.log.metrics.record_commit(done.took);
                Ok(done)
            }
            Err(TxnError { error, what }) => match classify(&error) {
                Failure::Fenced => {
                    tracing::warn!(group = %self.group, %error, "transaction refused: this instance was fenced");
                    Err(self.fenced())
                }
                Failure::Retry => {
                    Err(kafka_error(&self.log.config.brokers, &format!("cannot {what} (aborted)"), &error))
                }
            },
        }
    }

    /// After a void batch: a new member replaces the consumer, so that whatever this instance
    /// owns next starts at the group's committed offsets (the records of the void batch were
    /// polled, so the old consumer's positions are past them).
    fn renew_consumer(&mut self) -> Result<()> {
        if self.consumer.is_some() {
            // Leaves the group (the others are reassigned what it held) before the new member joins.
            self.consumer = None;
            self.consumer = Some(group_consumer(&self.log, &self.group, &self.inputs)?);
        }
        self.owned.clear();
        self.reassign = true;
        Ok(())
    }

    fn fenced(&mut self) -> LogError {
        self.log.metrics.fenced.fetch_add(1, Ordering::Relaxed);
        if let Err(error) = self.renew_consumer() {
            tracing::warn!(group = %self.group, %error, "cannot rejoin the group yet; the next poll retries");
            self.reassign = true;
        }
        LogError::Fenced { group: self.group.clone() }
    }
}

impl Drop for KafkaSession {
    /// A transaction in flight finishes before the session's clients close.
    fn drop(&mut self) {
        if let Some(consumer) = &self.consumer {
            consumer.context().land();
        }
    }
}

/// A member of the stage's consumer group, subscribed to its inputs.
fn group_consumer(log: &KafkaLog, group: &str, inputs: &[String]) -> Result<BaseConsumer<SessionContext>> {
    let brokers = &log.config.brokers;
    let mut client = consumer_config(&log.config, &log.group_id(group));
    client
        .set("session.timeout.ms", millis(log.config.session_timeout).to_string())
        .set("heartbeat.interval.ms", (millis(log.config.session_timeout) / 3).max(1).to_string())
        .set("max.poll.interval.ms", millis(log.config.max_poll_interval).to_string())
        .set("partition.assignment.strategy", "range")
        .set("fetch.wait.max.ms", "100");
    super::client::set_defaults(&mut client, &log.config, &crate::config::CONSUMER_DEFAULTS);
    let consumer: BaseConsumer<SessionContext> = client
        .create_with_context(SessionContext::default())
        .map_err(|e| kafka_error(brokers, "cannot create the stage's consumer", &e))?;
    let topics: Vec<&str> = inputs.iter().map(String::as_str).collect();
    consumer.subscribe(&topics).map_err(|e| kafka_error(brokers, "cannot subscribe to the inputs", &e))?;
    Ok(consumer)
}

impl StageSession for KafkaSession {
    fn poll(&mut self, max_records: usize, timeout: Duration) -> Result<Polled> {
        let Some(consumer) = self.consumer.take() else {
            // A source: one assignment (all of its state), then nothing to read.
            if self.reassign {
                self.reassign = false;
                return self.assignment(Vec::new());
            }
            std::thread::sleep(timeout);
            return Ok(Polled::Records(Vec::new()));
        };
        let result = self.poll_consumer(&consumer, max_records, timeout);
        self.consumer = Some(consumer);
        result
    }

    fn commit(&mut self, commit: &Commit) -> Result<()> {
        debug_assert!(
            self.consumer.as_ref().is_none_or(|c| matches!(*c.context().flight(), Flight::Idle)),
            "the commit in flight is ended before the next begins"
        );
        match self.prepare_transaction(commit)? {
            Some(prepared) => {
                let landed = transact(&self.log, prepared, commit, &self.changelog);
                self.outcome(landed).map(drop)
            }
            None => Ok(()),
        }
    }

    /// A stage with inputs commits in the background; a source (whose commits acknowledge what
    /// the network sent) in place.
    fn begin_commit(&mut self, commit: Arc<Commit>) -> Result<Option<CommitDone>> {
        let started = Instant::now();
        if self.consumer.is_none() {
            self.commit(&commit)?;
            return Ok(Some(CommitDone::since(started)));
        }
        // The runner ends each commit before it begins the next. Should one still be there, it
        // is finished first; a failure then voids both batches (the consumer starts again at
        // the committed offsets), which never loses or repeats a record.
        match self.end_commit() {
            Ok(_) => {}
            Err(fenced @ LogError::Fenced { .. }) => return Err(fenced),
            Err(_) => return Err(self.fenced()),
        }
        let Some(prepared) = self.prepare_transaction(&commit)? else { return Ok(Some(CommitDone::since(started))) };
        let (log, changelog) = (self.log.clone(), self.changelog.clone());
        let thread = std::thread::Builder::new()
            .name("lux-kafka-commit".into())
            .spawn(move || transact(&log, prepared, &commit, &changelog))
            .map_err(|e| kafka_problem(&self.log.config.brokers, format!("cannot start a thread to commit: {e}")))?;
        if let Some(consumer) = &self.consumer {
            *consumer.context().flight() = Flight::Running(thread);
        }
        Ok(None)
    }

    fn end_commit(&mut self) -> Result<Option<CommitDone>> {
        // A landed outcome stays in the consumer's context until taken here: the consumer is
        // only renewed (fenced) after its outcome was taken.
        let landed = self.consumer.as_ref().and_then(|c| c.context().take_landed());
        landed.map(|landed| self.outcome(landed)).transpose()
    }

    fn lag(&mut self) -> Result<u64> {
        let Some(consumer) = &self.consumer else { return Ok(0) };
        let positions = consumer
            .position()
            .map_err(|e| kafka_error(&self.log.config.brokers, "cannot read the consumer's positions", &e))?;
        let mut lag = 0;
        for tp in &self.owned {
            let (low, high) = self.log.admin.watermarks(&tp.topic, tp.partition)?;
            let position = match positions.find_partition(&tp.topic, tp.partition as i32).map(|e| e.offset()) {
                Some(Offset::Offset(n)) if n >= 0 => n as u64,
                _ => self.log.committed_offset_of(&self.group, tp)?.unwrap_or(low),
            };
            lag += high.saturating_sub(position.max(low));
        }
        Ok(lag)
    }
}

/// Checks a commit before its transaction: the partition count of each output topic (which
/// must exist), and that every state change names a partition of the changelog.
pub(crate) fn prepare(
    log: &KafkaLog,
    commit: &Commit,
    changelog: &str,
    changelog_partitions: u32,
) -> Result<HashMap<String, u32>> {
    let mut counts = HashMap::new();
    for output in &commit.outputs {
        if !counts.contains_key(&output.topic) {
            counts.insert(output.topic.clone(), log.admin.existing_partitions(&output.topic)?);
        }
    }
    if let Some(change) = commit.state.iter().find(|c| c.partition >= changelog_partitions) {
        return Err(LogError::UnknownPartition {
            topic: changelog.to_owned(),
            partition: change.partition,
            partitions: changelog_partitions,
        });
    }
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rebalance_waits_for_the_transaction_in_flight_and_keeps_its_outcome_for_the_session() {
        let context = SessionContext::default();
        assert!(context.take_landed().is_none(), "nothing in flight yet");
        let started = Instant::now();
        let thread = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            Landed { producer: None, result: Ok(CommitDone::since(started)) }
        });
        *context.flight() = Flight::Running(thread);
        // What pre_rebalance does: the partitions move only once the transaction is done.
        context.land();
        assert!(started.elapsed() >= Duration::from_millis(300));
        assert!(matches!(*context.flight(), Flight::Landed(_)));
        // Landing again changes nothing; the session then takes the outcome, once.
        context.land();
        let landed = context.take_landed().expect("the outcome is kept");
        assert!(landed.result.is_ok_and(|done| done.took >= Duration::from_millis(300)));
        assert!(context.take_landed().is_none());
    }

    #[test]
    fn a_committing_thread_that_panicked_lands_as_a_failure_to_retry() {
        let context = SessionContext::default();
        let thread = std::thread::spawn(|| -> Landed { panic!("boom") });
        *context.flight() = Flight::Running(thread);
        let landed = context.take_landed().expect("an outcome");
        let failure = landed.result.expect_err("a failure");
        assert!(matches!(classify(&failure.error), Failure::Retry));
        assert!(landed.producer.is_none(), "the producer is recreated");
    }
}
