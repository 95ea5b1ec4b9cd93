//! The `sendgrid` sink: each row of its output is a SendGrid v3 `mail/send` body, sent while
//! the request that made it waits ([`client`] holds the client and its retries).

pub mod client;

use serde::Deserialize;

pub use client::{SendError, SendgridClient};

/// `kind = "sendgrid"`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendgridSinkSettings {
    /// The answer's field for the id SendGrid gives the message (`X-Message-Id`).
    pub reply_field: Option<String>,
}
