//! A local stand-in for SendGrid's v3 `mail/send` that checks what SendGrid checks: the bearer
//! key, the body's shape, the recipient and custom-args limits. It answers 202 with an
//! `X-Message-Id`, and can be told to answer 429 or 5xx for the next N calls.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

/// What the fake has seen and what it will answer next.
#[derive(Default)]
struct FakeState {
    api_key: String,
    scripted: Mutex<VecDeque<u16>>,
    accepted: Mutex<Vec<Value>>,
    calls: Mutex<u32>,
}

/// A running fake; stops when dropped.
pub struct FakeSendgrid {
    pub url: String,
    state: Arc<FakeState>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeSendgrid {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FakeSendgrid {
    /// Starts a fake that accepts `api_key` on an ephemeral loopback port.
    ///
    /// # Panics
    /// When no loopback port can be bound.
    pub async fn start(api_key: &str) -> Self {
        let state = Arc::new(FakeState { api_key: api_key.to_string(), ..FakeState::default() });
        let app = axum::Router::new().route("/v3/mail/send", post(mail_send)).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind fake SendGrid");
        let address: SocketAddr = listener.local_addr().expect("fake SendGrid address");
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeSendgrid { url: format!("http://{address}"), state, server }
    }

    /// The next `count` calls answer `status` (429 carries `X-RateLimit-Reset` one second out).
    pub fn fail_next(&self, status: u16, count: usize) {
        let mut scripted = self.state.scripted.lock().expect("lock");
        scripted.extend(std::iter::repeat_n(status, count));
    }

    /// Bodies answered 202, in order.
    pub fn accepted(&self) -> Vec<Value> {
        self.state.accepted.lock().expect("lock").clone()
    }

    /// Every call, whatever its answer.
    pub fn calls(&self) -> u32 {
        *self.state.calls.lock().expect("lock")
    }
}

fn error(status: StatusCode, message: &str, field: Option<&str>) -> Response {
    (status, Json(json!({ "errors": [{ "message": message, "field": field, "help": null }] })))
        .into_response()
}

async fn mail_send(
    State(state): State<Arc<FakeState>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    *state.calls.lock().expect("lock") += 1;
    let authorized = headers.get("authorization").and_then(|v| v.to_str().ok())
        == Some(format!("Bearer {}", state.api_key).as_str());
    if !authorized {
        return error(
            StatusCode::UNAUTHORIZED,
            "The provided authorization grant is invalid, expired, or revoked",
            None,
        );
    }
    let scripted = state.scripted.lock().expect("lock").pop_front();
    if let Some(status) = scripted {
        let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = error(code, "scripted failure", None);
        if status == 429 {
            let reset = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() + 1).unwrap_or(0);
            response.headers_mut().insert("x-ratelimit-reset", HeaderValue::from(reset));
        }
        return response;
    }
    let Ok(mail) = serde_json::from_slice::<Value>(&body) else {
        return error(StatusCode::BAD_REQUEST, "Bad Request", None);
    };
    if let Err((message, field)) = check_mail(&mail) {
        return error(StatusCode::BAD_REQUEST, &message, Some(field));
    }
    state.accepted.lock().expect("lock").push(mail);
    let id =
        format!("fake-{:x}", SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0));
    let mut response = StatusCode::ACCEPTED.into_response();
    response.headers_mut().insert("x-message-id", HeaderValue::from_str(&id).expect("ascii id"));
    response
}

/// The checks SendGrid documents for mail/send, with its error messages and fields.
fn check_mail(mail: &Value) -> Result<(), (String, &'static str)> {
    let personalizations = mail["personalizations"].as_array().filter(|p| !p.is_empty()).ok_or((
        "The personalizations field is required and must have at least one personalization.".into(),
        "personalizations",
    ))?;
    let mut recipients = 0;
    for personalization in personalizations {
        personalization["to"]
            .as_array()
            .filter(|to| !to.is_empty())
            .ok_or(("The to array is required for all personalization objects, and must have at least one email object with a valid email address.".into(), "personalizations.0.to"))?;
        for kind in ["to", "cc", "bcc"] {
            for address in personalization[kind].as_array().into_iter().flatten() {
                let email = address["email"].as_str().unwrap_or_default();
                if !email.contains('@') {
                    return Err((
                        "Does not contain a valid address.".into(),
                        "personalizations.0.to.0.email",
                    ));
                }
                recipients += 1;
            }
        }
    }
    if recipients > 1000 {
        return Err(("The total number of recipients must be less than 1000.".into(), "personalizations"));
    }
    if !mail["from"]["email"].as_str().is_some_and(|e| e.contains('@')) {
        return Err(("The from object must be provided for every email send.".into(), "from.email"));
    }
    if mail["subject"].as_str().is_none_or(str::is_empty) {
        return Err(("The subject is required.".into(), "subject"));
    }
    let content = mail["content"].as_array().filter(|c| !c.is_empty()).ok_or((
        "Unless a valid template_id is provided, the content parameter is required.".into(),
        "content",
    ))?;
    for part in content {
        if part["type"].as_str().is_none_or(str::is_empty) || part["value"].as_str().is_none_or(str::is_empty)
        {
            return Err((
                "The content value must be a string at least one character in length.".into(),
                "content.0.value",
            ));
        }
    }
    let custom_args_bytes: usize = mail["custom_args"]
        .as_object()
        .map(|args| {
            args.iter().map(|(k, v)| k.len() + v.as_str().map_or(v.to_string().len(), str::len)).sum()
        })
        .unwrap_or(0);
    if custom_args_bytes >= 10_000 {
        return Err(("The custom arguments must total less than 10,000 bytes.".into(), "custom_args"));
    }
    Ok(())
}
