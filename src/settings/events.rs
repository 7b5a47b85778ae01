//! Where events go (see `events` and `notify`): commands, webhooks, a
//! dead-man ping, the public address `serve`'s one-time links point at,
//! and how long a CLI run waits for deliveries. Any number of each: a flag
//! given again, one per line (commands) or per word (URLs) of a variable,
//! or an array in the config file.

use std::time::Duration;

use secrecy::SecretString;

use super::values::{self, Refused};
use super::{Lookup, Overrides};
use crate::error::Result;

/// How long a CLI run waits for its deliveries by default.
pub const DEFAULT_NOTIFY_TIMEOUT: Duration = Duration::from_secs(5);

/// A refresh token unused this long is reported (`refresh_token_aging`),
/// well before Withings' one year.
pub const DEFAULT_AGING_AFTER: Duration = Duration::from_secs(300 * 86_400);

/// The body a webhook is sent: the event's JSON, or a message a chat's
/// incoming webhook (or an ntfy topic) shows as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WebhookFormat {
    #[default]
    Json,
    Slack,
    Discord,
    Text,
}

impl WebhookFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookFormat::Json => "json",
            WebhookFormat::Slack => "slack",
            WebhookFormat::Discord => "discord",
            WebhookFormat::Text => "text",
        }
    }
}

#[derive(Debug, Clone)]
pub struct EventSettings {
    /// `on_event`: shell commands (`sh -c`), each given every event.
    pub commands: Vec<String>,
    /// `webhook_url`: secret as a whole (a Slack or Discord hook's path is
    /// its credential), shown by `notify::shown_url` only.
    pub webhook_urls: Vec<SecretString>,
    /// `WITHINGS_TOKEN_WEBHOOK_SECRET`: signs every webhook (Standard
    /// Webhooks); `whsec_` + base64, or any other text taken as bytes.
    pub webhook_secret: Option<SecretString>,
    pub webhook_format: WebhookFormat,
    /// `ping_url`: a dead-man check (healthchecks.io's `/start`, `/fail`).
    pub ping_urls: Vec<SecretString>,
    /// How long a CLI run waits for its deliveries before it exits.
    pub notify_timeout: Duration,
    /// The address people reach `serve` at; one-time re-consent links
    /// start there. Checked on use.
    pub public_url: Option<String>,
    /// `refresh_token_aging` past this age of the refresh token in use.
    pub aging_after: Duration,
}

impl Default for EventSettings {
    fn default() -> EventSettings {
        EventSettings {
            commands: Vec::new(),
            webhook_urls: Vec::new(),
            webhook_secret: None,
            webhook_format: WebhookFormat::Json,
            ping_urls: Vec::new(),
            notify_timeout: DEFAULT_NOTIFY_TIMEOUT,
            public_url: None,
            aging_after: DEFAULT_AGING_AFTER,
        }
    }
}

impl EventSettings {
    /// Whether any sink is configured.
    pub fn has_sinks(&self) -> bool {
        !(self.commands.is_empty() && self.webhook_urls.is_empty())
    }
}

pub(super) fn event_settings(given: &Overrides, vars: &Lookup) -> Result<EventSettings> {
    let several = |flag: &[String], name: &str, split: fn(&str) -> Vec<String>| -> Vec<String> {
        if flag.is_empty() {
            vars.get(name).map(|text| split(&text)).unwrap_or_default()
        } else {
            flag.to_vec()
        }
    };
    let secret = |texts: Vec<String>| texts.into_iter().map(SecretString::from).collect();
    let checked = |name: &str, parse: fn(&str) -> std::result::Result<Duration, Refused>| -> Result<Option<Duration>> {
        vars.get(name)
            .map(|text| parse(&text).map_err(|refused| refused.of_variable(name)))
            .transpose()
    };
    Ok(EventSettings {
        commands: several(&given.on_event, "WITHINGS_TOKEN_ON_EVENT", lines),
        webhook_urls: secret(several(&given.webhook_urls, "WITHINGS_TOKEN_WEBHOOK_URL", words)),
        webhook_secret: vars.get("WITHINGS_TOKEN_WEBHOOK_SECRET").map(SecretString::from),
        webhook_format: match vars.get("WITHINGS_TOKEN_WEBHOOK_FORMAT") {
            Some(text) => values::parse_webhook_format(&text)
                .map_err(|refused| refused.of_variable("WITHINGS_TOKEN_WEBHOOK_FORMAT"))?,
            None => WebhookFormat::Json,
        },
        ping_urls: secret(several(&given.ping_urls, "WITHINGS_TOKEN_PING_URL", words)),
        notify_timeout: match given.notify_timeout {
            Some(timeout) => timeout,
            None => checked("WITHINGS_TOKEN_NOTIFY_TIMEOUT", values::parse_notify_timeout)?
                .unwrap_or(DEFAULT_NOTIFY_TIMEOUT),
        },
        public_url: vars.get("WITHINGS_TOKEN_PUBLIC_URL").map(|u| u.trim().to_owned()),
        aging_after: checked("WITHINGS_TOKEN_REFRESH_TOKEN_AGING", values::parse_aging_after)?
            .unwrap_or(DEFAULT_AGING_AFTER),
    })
}

/// One command per non-blank line.
fn lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// One URL per word (a URL holds no blank).
fn words(text: &str) -> Vec<String> {
    text.split_whitespace().map(str::to_owned).collect()
}
