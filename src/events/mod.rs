//! Events: what happened to an account's tokens that a person should hear
//! of, one typed list. Both faces note what they saw ([`Observation`]:
//! a refresh ended, a grant was refused, a copy failed); an account's
//! [`EventRecord`] (kept beside its set: `store::events`) remembers the
//! state each observation moved, and [`EventRecord::observe`] turns an
//! observation into an event only when that state changes. So an hour of
//! failed ticks is one `refresh_failed`, then one `recovered`. Delivering
//! them (the outbox, the sinks) is `notify`'s.

mod journal;
pub mod link;
mod record;
#[cfg(test)]
mod tests;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::Error;

pub use self::journal::{
    Noted, has_notes, note, note_consented, note_error, note_failed_request, note_in_use, noted, nudge, restore_notes,
    take_notes_by_account,
};
pub use self::record::{Claim, EventRecord, Health};

/// Every kind of event, as its `type` is spelled in a payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Refreshed,
    /// A transient failure (network, 5xx, rate limit): the set still works.
    RefreshFailed,
    /// Withings refused the refresh token: only new consent helps.
    ReauthorizationRequired,
    /// The first success after a failure, or a new consent after one.
    Recovered,
    CopyFailed,
    CopyHealed,
    /// The refresh token in use has not been rotated for long: Withings
    /// ends it after a year unused.
    RefreshTokenAging,
    StoreUnavailable,
    /// Sent by `notify --test` (and `doctor --online`) to try the sinks.
    Test,
}

impl EventKind {
    /// The `type` of a payload: `reauthorization_required`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Refreshed => "refreshed",
            EventKind::RefreshFailed => "refresh_failed",
            EventKind::ReauthorizationRequired => "reauthorization_required",
            EventKind::Recovered => "recovered",
            EventKind::CopyFailed => "copy_failed",
            EventKind::CopyHealed => "copy_healed",
            EventKind::RefreshTokenAging => "refresh_token_aging",
            EventKind::StoreUnavailable => "store_unavailable",
            EventKind::Test => "test",
        }
    }

    /// Whether a person must act (the chat formats mark it).
    pub fn is_trouble(self) -> bool {
        matches!(
            self,
            EventKind::RefreshFailed
                | EventKind::ReauthorizationRequired
                | EventKind::CopyFailed
                | EventKind::RefreshTokenAging
                | EventKind::StoreUnavailable
        )
    }
}

/// One event, as every sink receives it (JSON on a command's stdin, a
/// webhook's `json` body). It holds no token, secret or code: its texts are
/// the tool's own messages, scrubbed of every secret this process knows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// `msg_` and 32 hex digits: unique, and the same on every delivery
    /// try (a webhook's `webhook-id`, for a receiver's deduplication).
    pub id: String,
    #[serde(rename = "type")]
    pub kind: EventKind,
    pub account: String,
    pub at: DateTime<Utc>,
    /// The stable code: the error's (`INVALID_REFRESH_TOKEN`), else the
    /// event's own in capitals (`REFRESHED`).
    pub code: String,
    pub message: String,
    /// What a person (or an agent) should do next; empty when nothing.
    pub action: String,
    /// `refresh_failed`: how many tries have failed since the last success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u32>,
    /// `copy_failed`, `copy_healed`: which copy (`env_file:/srv/.env`,
    /// `railway:<service>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copy: Option<String>,
    /// `recovered`, and a failure still on: since when it was failing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<DateTime<Utc>>,
    /// `reauthorization_required`: the one-time link that starts new
    /// consent on `serve` (when `public_url` is set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
}

impl Event {
    /// An event of `kind` for `account` now, with a fresh id.
    pub fn new(
        kind: EventKind,
        account: &str,
        at: DateTime<Utc>,
        code: &str,
        message: String,
        action: String,
    ) -> Event {
        Event {
            id: new_id(),
            kind,
            account: account.to_owned(),
            at,
            code: code.to_owned(),
            message: crate::redact::scrub(&message, &[]),
            action: crate::redact::scrub(&action, &[]),
            attempts: None,
            copy: None,
            since: None,
            link: None,
        }
    }

    /// The one-line summary chat formats and logs show:
    /// `alice: reauthorization_required (INVALID_REFRESH_TOKEN): …`.
    pub fn summary(&self) -> String {
        format!(
            "{}: {} ({}): {}",
            self.account,
            self.kind.as_str(),
            self.code,
            self.message
        )
    }

    /// `WITHINGS_TOKEN_EVENT_*` variables for a command sink.
    pub fn variables(&self) -> Vec<(&'static str, String)> {
        let mut vars = vec![
            ("WITHINGS_TOKEN_EVENT_ID", self.id.clone()),
            ("WITHINGS_TOKEN_EVENT_TYPE", self.kind.as_str().to_owned()),
            ("WITHINGS_TOKEN_EVENT_ACCOUNT", self.account.clone()),
            ("WITHINGS_TOKEN_EVENT_AT", crate::tokens::rfc3339(self.at)),
            ("WITHINGS_TOKEN_EVENT_CODE", self.code.clone()),
            ("WITHINGS_TOKEN_EVENT_MESSAGE", self.message.clone()),
            ("WITHINGS_TOKEN_EVENT_ACTION", self.action.clone()),
        ];
        let optional = [
            ("WITHINGS_TOKEN_EVENT_ATTEMPTS", self.attempts.map(|n| n.to_string())),
            ("WITHINGS_TOKEN_EVENT_COPY", self.copy.clone()),
            ("WITHINGS_TOKEN_EVENT_SINCE", self.since.map(crate::tokens::rfc3339)),
            ("WITHINGS_TOKEN_EVENT_LINK", self.link.clone()),
        ];
        vars.extend(optional.into_iter().filter_map(|(k, v)| Some((k, v?))));
        vars
    }
}

/// `msg_` and 32 random hex digits (the Standard Webhooks id's shape).
fn new_id() -> String {
    let random = crate::fsutil::random_hex(16).unwrap_or_else(|_| {
        // No randomness: still unique within this process and time.
        let nanos = Utc::now().timestamp_nanos_opt().unwrap_or_default();
        format!("{:016x}{:016x}", nanos, u64::from(std::process::id()))
    });
    format!("msg_{random}")
}

/// Which copy of the set: its record key (`copies::env_file_key`).
pub type CopyName = String;

/// What a face saw happen to an account, before it is known whether that
/// changes anything.
#[derive(Debug, Clone, PartialEq)]
pub enum Observation {
    /// A transaction ended with a set in use: `rotated` when this run got
    /// a new one from Withings; `generation` is the set's
    /// (`StoreState::tokens_generation`); `refresh_token_age`: since the
    /// refresh token in use was issued, when known.
    Checked {
        generation: u64,
        rotated: bool,
        refresh_token_age: Option<chrono::Duration>,
    },
    /// New consent saved a set.
    Consented {
        generation: u64,
    },
    /// A refresh of the set of `generation` failed, and the set may still
    /// work (network, 5xx, 429).
    RefreshFailed {
        problem: Problem,
        generation: u64,
    },
    /// Withings refused the grant of the set of `generation`: new consent
    /// is the only fix.
    GrantRefused {
        problem: Problem,
        generation: u64,
    },
    CopyDelivered {
        copy: CopyName,
    },
    CopyFailed {
        copy: CopyName,
        problem: Problem,
    },
    StoreUnavailable(Problem),
    /// The store answered again (a load or a save went through).
    StoreAvailable,
}

/// An error as an event carries it: code, message, action.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub code: String,
    pub message: String,
    pub action: String,
}

impl Problem {
    pub fn of(error: &Error) -> Problem {
        Problem {
            code: error.code().to_owned(),
            message: error.to_string(),
            action: error.action(),
        }
    }
}

/// What an error of a refresh of the set of `generation` says about the
/// account, if anything: a configuration error is the caller's to fix and
/// no change of the account's state.
pub fn observation_of(error: &Error, generation: u64) -> Option<Observation> {
    let problem = Problem::of(error);
    match error {
        Error::NotSaved { cause, .. } | Error::HeldBack { cause, .. } => observation_of(cause, generation),
        Error::InvalidRefreshToken { .. } => Some(Observation::GrantRefused { problem, generation }),
        Error::Network { .. } | Error::Upstream { .. } | Error::RateLimited { .. } => {
            Some(Observation::RefreshFailed { problem, generation })
        }
        Error::StoreUnavailable { .. } | Error::LockTimeout { .. } => Some(Observation::StoreUnavailable(problem)),
        _ => None,
    }
}

/// What [`EventRecord::observe`] needs beyond the observation.
pub struct Context<'a> {
    pub account: &'a str,
    pub now: DateTime<Utc>,
    /// `refresh_token_aging` once the refresh token in use is older.
    pub aging_after: chrono::Duration,
    /// The one-time re-consent link for `reauthorization_required`, when
    /// `serve` is reachable (`public_url`) and links can be signed.
    pub reconsent_link: &'a dyn Fn() -> Option<String>,
}
