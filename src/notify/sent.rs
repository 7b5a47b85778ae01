//! What every sink shares: how a delivery try ended ([`Sent`]), how a sink
//! is shown ([`SinkInfo`], [`shown_url`]) and its stable id ([`sink_id`]).

use std::time::Duration;

/// How one delivery try ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    Delivered,
    /// Worth another try later (network, 5xx, 429, a command that failed
    /// or timed out, the deadline): the event stays owed.
    Retry {
        after: Option<Duration>,
        why: String,
    },
    /// Never worth another try (a webhook's 4xx other than 429): the sink
    /// is no longer owed the event.
    Refused {
        why: String,
    },
}

/// A sink as `doctor` and `notify --test` show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkInfo {
    pub id: String,
    /// `command`, `webhook`.
    pub kind: &'static str,
    pub shown: String,
}

/// A URL as messages may show it: scheme and host (and port), never its
/// path, query or credentials.
pub fn shown_url(url: &url::Url) -> String {
    let host = url.host_str().unwrap_or("?");
    match url.port() {
        Some(port) => format!("{}://{host}:{port}/…", url.scheme()),
        None => format!("{}://{host}/…", url.scheme()),
    }
}

/// `kind:` and the first 12 hex digits of the SHA-256 of `setting`.
pub(super) fn sink_id(kind: &str, setting: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, setting.as_bytes());
    let hex: String = digest.as_ref().iter().take(6).map(|b| format!("{b:02x}")).collect();
    format!("{kind}:{hex}")
}
