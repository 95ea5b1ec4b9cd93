//! Storing an object through a store outage: retried with backoff until stored, or until
//! shutdown is asked for (then the replay rewrites it).

use std::time::Duration;

use tokio::sync::watch;

use super::ObjectStore;

/// How long to wait before retrying a failed store call: doubling from 500 ms, at most 30 s.
pub fn retry_delay(attempt: u32) -> Duration {
    Duration::from_millis(500u64.saturating_mul(1 << attempt.min(6)).min(30_000))
}

/// Puts `body`, retrying with backoff until it is stored or shutdown is asked for; returns
/// whether it was stored. On shutdown a failure is retried twice, not for long.
pub async fn put_with_retry(
    store: &ObjectStore,
    key: &str,
    body: impl Into<bytes::Bytes>,
    shutdown: &watch::Receiver<bool>,
) -> bool {
    let body: bytes::Bytes = body.into();
    let mut attempt = 0;
    loop {
        match store.put(key, body.clone()).await {
            Ok(()) => return true,
            Err(error) => {
                tracing::error!(object = %store.describe(key), attempt, "cannot store: {error}");
                if *shutdown.borrow() && attempt >= 2 {
                    return false;
                }
                tokio::time::sleep(retry_delay(attempt)).await;
                attempt += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_delay_doubles_from_half_a_second_up_to_thirty() {
        let delays: Vec<u64> = (0..9).map(|attempt| retry_delay(attempt).as_millis() as u64).collect();
        assert_eq!(delays, [500, 1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000]);
        assert_eq!(retry_delay(u32::MAX), Duration::from_secs(30));
    }
}
