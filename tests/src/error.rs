use std::time::Duration;

/// Why a harness helper could not set up or check something.
///
/// Test code usually `expect`s these; the messages name the service and the operation so a
/// failed test says which step broke.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// A Kafka client or admin call failed.
    #[error("kafka: {operation}: {source}")]
    Kafka {
        operation: String,
        #[source]
        source: rdkafka::error::KafkaError,
    },
    /// Creating a topic was refused by the broker.
    #[error("kafka: creating topic {topic}: {code}")]
    CreateTopic { topic: String, code: rdkafka::types::RDKafkaErrorCode },
    /// Fewer records arrived than the test waited for.
    #[error("kafka: expected {expected} records from {topic} but got {received} within {waited:?}")]
    TooFewRecords { topic: String, expected: usize, received: usize, waited: Duration },
    /// An S3 request failed; the message carries the SDK's full error chain.
    #[error("s3: {operation}: {message}")]
    S3 { operation: String, message: String },
    /// A table object could not be read back.
    #[error("table: {0}")]
    Table(String),
    /// A PostgreSQL connection or statement failed.
    #[error("postgres: {operation}: {source}")]
    Postgres {
        operation: String,
        #[source]
        source: tokio_postgres::Error,
    },
}

impl HarnessError {
    pub(crate) fn kafka(operation: impl Into<String>) -> impl FnOnce(rdkafka::error::KafkaError) -> Self {
        let operation = operation.into();
        move |source| Self::Kafka { operation, source }
    }

    pub(crate) fn postgres(operation: impl Into<String>) -> impl FnOnce(tokio_postgres::Error) -> Self {
        let operation = operation.into();
        move |source| Self::Postgres { operation, source }
    }

    pub(crate) fn s3<E>(operation: impl Into<String>) -> impl FnOnce(E) -> Self
    where
        E: std::error::Error,
    {
        let operation = operation.into();
        move |error| Self::S3 {
            operation,
            message: aws_sdk_s3::error::DisplayErrorContext(error).to_string(),
        }
    }
}
