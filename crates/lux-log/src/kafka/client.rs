//! What every Kafka client of LUX shares: the librdkafka configuration built from `[log.kafka]`,
//! the mapping of librdkafka errors to [`LogError`], and a small executor for the admin API's
//! futures (LUX runs no async runtime).

use crate::{KafkaConfig, LogError};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::ClientConfig;
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

/// The settings every client gets: the brokers, the client id and the user's properties (TLS,
/// SASL, tuning). The caller adds its role's own settings, which the config validation keeps the
/// user's properties from overriding.
pub(crate) fn base_config(config: &KafkaConfig) -> ClientConfig {
    let mut client = ClientConfig::new();
    for (key, value) in &config.properties {
        client.set(key, value);
    }
    client
        .set("bootstrap.servers", config.broker_list().join(","))
        .set("client.id", &config.client_id)
        .set("socket.timeout.ms", millis(config.request_timeout).to_string());
    client
}

/// Sets each of `defaults` that the user's `properties` leave unset.
pub(crate) fn set_defaults(client: &mut ClientConfig, config: &KafkaConfig, defaults: &[(&str, &str)]) {
    for (key, value) in defaults {
        if !config.properties.contains_key(*key) {
            client.set(*key, *value);
        }
    }
}

/// A consumer that reads committed records only and never commits on its own: the readers'
/// (fetch, state restore, offsets of a group) and, with a subscription added, the stages'.
pub(crate) fn consumer_config(config: &KafkaConfig, group_id: &str) -> ClientConfig {
    let mut client = base_config(config);
    client
        .set("group.id", group_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("isolation.level", "read_committed")
        .set("auto.offset.reset", "earliest")
        .set("allow.auto.create.topics", "false");
    client
}

/// A duration in whole milliseconds, at least 1.
pub(crate) fn millis(duration: Duration) -> u64 {
    (duration.as_millis() as u64).max(1)
}

/// The librdkafka error code inside an error, if any.
pub(crate) fn error_code(error: &KafkaError) -> Option<RDKafkaErrorCode> {
    match error {
        KafkaError::Transaction(e) => Some(e.code()),
        other => other.rdkafka_error_code(),
    }
}

/// A [`LogError::Kafka`] for a failed operation, with a hint of what to do.
pub(crate) fn kafka_error(brokers: &str, what: &str, error: &KafkaError) -> LogError {
    let hint = match error_code(error) {
        Some(
            RDKafkaErrorCode::BrokerTransportFailure
            | RDKafkaErrorCode::AllBrokersDown
            | RDKafkaErrorCode::OperationTimedOut
            | RDKafkaErrorCode::RequestTimedOut
            | RDKafkaErrorCode::Resolve
            | RDKafkaErrorCode::NetworkException,
        ) => "; check that the brokers of log.kafka.brokers are up and reachable (it is retried)",
        Some(
            RDKafkaErrorCode::Authentication
            | RDKafkaErrorCode::SaslAuthenticationFailed
            | RDKafkaErrorCode::SSL
            | RDKafkaErrorCode::TopicAuthorizationFailed
            | RDKafkaErrorCode::GroupAuthorizationFailed
            | RDKafkaErrorCode::TransactionalIdAuthorizationFailed
            | RDKafkaErrorCode::ClusterAuthorizationFailed,
        ) => "; check the TLS/SASL settings in log.kafka.properties and the ACLs of the principal",
        _ => "",
    };
    LogError::Kafka { brokers: brokers.to_owned(), detail: format!("{what}: {error}{hint}") }
}

/// A [`LogError::Kafka`] with a message of LUX's own.
pub(crate) fn kafka_problem(brokers: &str, detail: impl Into<String>) -> LogError {
    LogError::Kafka { brokers: brokers.to_owned(), detail: detail.into() }
}

struct ThreadWaker(std::thread::Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// Runs a future on this thread until it completes or `timeout` passes (`None` then). The admin
/// API's futures are completed by librdkafka's own threads, so parking until woken is enough.
pub(crate) fn block_on<F: Future>(future: F, timeout: Duration) -> Option<F::Output> {
    let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut context = Context::from_waker(&waker);
    let mut future = pin!(future);
    let deadline = Instant::now() + timeout;
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return Some(output);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        std::thread::park_timeout(left);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_on_returns_ready_values_and_gives_up_on_pending_ones() {
        assert_eq!(block_on(async { 7 }, Duration::from_millis(10)), Some(7));
        assert_eq!(block_on(std::future::pending::<u8>(), Duration::from_millis(20)), None);
    }

    #[test]
    fn user_properties_cannot_replace_the_brokers() {
        let mut config = KafkaConfig { brokers: "k1:9092, k2:9092".into(), ..Default::default() };
        config.properties.insert("security.protocol".into(), "ssl".into());
        let client = base_config(&config);
        assert_eq!(client.get("bootstrap.servers"), Some("k1:9092,k2:9092"));
        assert_eq!(client.get("security.protocol"), Some("ssl"));
        assert_eq!(consumer_config(&config, "g").get("isolation.level"), Some("read_committed"));
    }
}
