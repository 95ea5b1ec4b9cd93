//! SendGrid's v3 `mail/send`, with retries on 429 and 5xx.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap};
use serde_json::Value;

use crate::config::SendgridConfig;

/// Why a mail was not accepted by SendGrid.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// SendGrid refused the request itself (4xx other than 429); retrying cannot help.
    #[error("SendGrid refused the mail with {status}")]
    Refused { status: u16, errors: Value },
    /// Retries ran out on 429, 5xx or connection errors; the caller may retry later.
    #[error("SendGrid is unavailable after {attempts} attempts: {last}")]
    Exhausted { attempts: u32, last: String, retry_after: Duration },
    #[error("{0} is not set; the SendGrid API key is read from it")]
    MissingKey(String),
}

/// The client: base URL, key and the retry budget.
#[derive(Clone)]
pub struct SendgridClient {
    http: reqwest::Client,
    url: String,
    api_key: String,
    retry: SendgridConfig,
}

impl std::fmt::Debug for SendgridClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key is deliberately absent.
        f.debug_struct("SendgridClient").field("url", &self.url).finish_non_exhaustive()
    }
}

impl SendgridClient {
    /// Reads the API key from the configured environment variable.
    ///
    /// # Errors
    /// [`SendError::MissingKey`] when it is unset or empty.
    pub fn from_config(config: &SendgridConfig) -> Result<Self, SendError> {
        let api_key = std::env::var(&config.api_key_env).unwrap_or_default();
        if api_key.trim().is_empty() {
            return Err(SendError::MissingKey(config.api_key_env.clone()));
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(config.request_timeout_ms))
            .build()
            .map_err(|e| SendError::Exhausted {
                attempts: 0,
                last: e.to_string(),
                retry_after: Duration::ZERO,
            })?;
        Ok(SendgridClient {
            http,
            url: format!("{}/v3/mail/send", config.api_url.trim_end_matches('/')),
            api_key,
            retry: config.clone(),
        })
    }

    /// Sends one v3 body; returns SendGrid's `X-Message-Id` (empty if it sent none).
    ///
    /// # Errors
    /// [`SendError::Refused`] for a 4xx other than 429, [`SendError::Exhausted`] when the
    /// retry budget is spent.
    pub async fn send(&self, body: &[u8]) -> Result<String, SendError> {
        let started = std::time::Instant::now();
        let budget = Duration::from_millis(self.retry.retry_budget_ms);
        let mut attempts = 0;
        loop {
            attempts += 1;
            let response = self
                .http
                .post(&self.url)
                .header(AUTHORIZATION, format!("Bearer {}", self.api_key))
                .header(CONTENT_TYPE, "application/json")
                .body(body.to_vec())
                .send()
                .await;
            let (wait, last) = match response {
                Ok(response) if response.status().is_success() => {
                    return Ok(header_text(response.headers(), "x-message-id"));
                }
                Ok(response) if response.status() == StatusCode::TOO_MANY_REQUESTS => {
                    let wait = rate_limit_wait(response.headers())
                        .unwrap_or_else(|| self.backoff(attempts))
                        .min(Duration::from_millis(self.retry.max_rate_limit_wait_ms));
                    (wait, "429 Too Many Requests".to_string())
                }
                Ok(response) if response.status().is_server_error() => {
                    (self.backoff(attempts), format!("{}", response.status()))
                }
                Ok(response) => {
                    let status = response.status().as_u16();
                    let errors = response
                        .json::<Value>()
                        .await
                        .ok()
                        .and_then(|body| body.get("errors").cloned())
                        .unwrap_or(Value::Array(Vec::new()));
                    return Err(SendError::Refused { status, errors });
                }
                Err(error) => (self.backoff(attempts), without_url(&error)),
            };
            if attempts >= self.retry.max_attempts || started.elapsed() + wait > budget {
                tracing::warn!(attempts, "SendGrid retries exhausted: {last}");
                return Err(SendError::Exhausted {
                    attempts,
                    last,
                    retry_after: wait.max(Duration::from_secs(1)),
                });
            }
            tracing::debug!(attempts, ?wait, "SendGrid answered {last}; retrying");
            tokio::time::sleep(wait).await;
        }
    }

    /// Exponential backoff with full jitter, capped.
    fn backoff(&self, attempt: u32) -> Duration {
        let base = self.retry.initial_backoff_ms.saturating_mul(1 << attempt.min(16).saturating_sub(1));
        let capped = base.min(self.retry.max_backoff_ms).max(1);
        Duration::from_millis(jitter(capped))
    }
}

/// A number in `[cap/2, cap]`, from the clock's sub-second noise (no RNG dependency needed).
fn jitter(cap: u64) -> u64 {
    let noise =
        SystemTime::now().duration_since(UNIX_EPOCH).map(|d| u64::from(d.subsec_nanos())).unwrap_or(0);
    cap / 2 + noise % (cap / 2 + 1)
}

/// How long `X-RateLimit-Reset` (a unix time in seconds) says to wait.
fn rate_limit_wait(headers: &HeaderMap) -> Option<Duration> {
    let reset: u64 = header_text(headers, "x-ratelimit-reset").parse().ok()?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_secs();
    Some(Duration::from_secs(reset.saturating_sub(now)))
}

fn header_text(headers: &HeaderMap, name: &str) -> String {
    headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string()
}

/// A transport error's text without the URL, which could carry credentials in some setups.
fn without_url(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    kind.to_string()
}
