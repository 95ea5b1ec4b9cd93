//! Shared harness for the end-to-end tests: it starts the real services once per test process
//! and gives every test its own corner of them.
//!
//! The services are SeaweedFS (S3), tansu (Kafka, stored on SeaweedFS) and the machine's
//! PostgreSQL, all started by `scripts/services.sh`. A test asks for them with
//! [`require_services!`], which skips the test loudly on a developer machine where they cannot
//! start and fails it in CI (`CI` set, or `SLUICE_REQUIRE_SERVICES=1`):
//!
//! ```no_run
//! # async fn example() {
//! let Some(services) = sluice_e2e::require_services!() else { return };
//! let scope = sluice_e2e::TestScope::new(services, "orders_reach_s3").await.expect("test scope");
//! let topic = scope.create_topic("orders", 3).await.expect("topic");
//! # }
//! ```
//!
//! [`TestScope`] keeps tests apart: its own topic names, its own prefix in the shared
//! bucket, and its own PostgreSQL schema, so tests can run in parallel and repeatedly against
//! services whose state persists between runs.

pub mod artifacts;
pub mod broker;
mod error;
pub mod fake_sendgrid;
pub mod host;
pub mod kafka;
pub mod postgres;
pub mod s3;
mod scope;
mod services;
pub mod table;

pub use error::HarnessError;

use std::future::Future;
use std::time::{Duration, Instant};

/// Checks `check` every 200 ms until it holds or `timeout` has passed; whether it held. The
/// one way the tests wait for the system to get somewhere.
pub async fn eventually<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    loop {
        if check().await {
            return true;
        }
        if started.elapsed() >= timeout {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
/// `bytes` as one gzip member, as `gzip` or `aws s3 cp --content-encoding gzip` users store them.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut encoder, bytes).expect("gzip into memory");
    encoder.finish().expect("gzip into memory")
}

pub use kafka::{ConsumedRecord, ProducedRecord};
pub use s3::S3;
pub use scope::TestScope;
pub use services::Services;

/// Returns the shared [`Services`], or `None` after printing a skip banner when they cannot
/// start outside CI.
///
/// Use it as `let Some(services) = require_services!() else { return };` at the top of an
/// async test.
///
/// # Panics
///
/// When the services cannot start and `CI` or `SLUICE_REQUIRE_SERVICES=1` is set, because a
/// CI run that skips its end-to-end tests would pass without testing anything.
#[macro_export]
macro_rules! require_services {
    () => {
        $crate::Services::get().await
    };
}
