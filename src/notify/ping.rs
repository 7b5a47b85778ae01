//! The dead-man ping (healthchecks.io's convention): `URL/start` when a run
//! starts, `URL` when it succeeds, `URL/fail` with the report when it
//! fails. Best effort, never queued: a late ping means nothing. Each URL
//! gets one try, and one more after a network error or a 5xx while the
//! deadline allows; a ping that fails is one warning naming the URL as
//! `shown_url` shows it. A ping with a body is a POST of plain text, one
//! without a GET (the services that only take GET, such as Uptime Kuma's
//! push URLs, work too).

use std::time::Instant;

use secrecy::ExposeSecret;

use super::sent::{Sent, shown_url};
use super::webhook::{FIRST_PAUSE, Judged, exchange, http_url, judge};
use crate::http::HttpClient;
use crate::settings::Settings;

/// The most of a report a ping carries (healthchecks.io keeps 10 kB).
pub const MAX_PING_BODY: usize = 10 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PingStage {
    Start,
    Success,
    Fail,
}

impl PingStage {
    /// What the stage adds to the URL's path.
    fn suffix(self) -> Option<&'static str> {
        match self {
            PingStage::Start => Some("start"),
            PingStage::Success => None,
            PingStage::Fail => Some("fail"),
        }
    }
}

/// The ping a run sends as it ends (see [`ping_at_exit`]).
static AT_EXIT: std::sync::Mutex<Option<(PingStage, String)>> = std::sync::Mutex::new(None);

/// Leaves the ping that ends this run (success, or `/fail` with its report)
/// to be sent with the run's events, within the same notify timeout.
pub fn ping_at_exit(stage: PingStage, body: String) {
    *crate::locked(&AT_EXIT) = Some((stage, body));
}

/// Whether a run's last ping waits.
pub fn ping_waits() -> bool {
    crate::locked(&AT_EXIT).is_some()
}

/// Sends the ping [`ping_at_exit`] left, if any.
pub async fn ping_left(settings: &Settings, deadline: Instant) {
    let left = crate::locked(&AT_EXIT).take();
    if let Some((stage, body)) = left {
        ping(settings, stage, &body, deadline).await;
    }
}

/// How the ping to one URL went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pinged {
    /// The URL as `shown_url` shows it.
    pub shown: String,
    pub sent: Sent,
}

/// Pings every `ping_url` for `stage` with `body`, until `deadline`; what
/// fails is one warning each, and changes nothing else.
pub async fn ping(settings: &Settings, stage: PingStage, body: &str, deadline: Instant) {
    for pinged in ping_each(settings, stage, body, deadline).await {
        match &pinged.sent {
            Sent::Delivered => tracing::debug!("pinged {}", pinged.shown),
            Sent::Retry { why, .. } | Sent::Refused { why } => {
                tracing::warn!("the dead-man ping to {} failed: {why}", pinged.shown);
            }
        }
    }
}

/// [`ping`], each URL's outcome returned rather than logged (`notify
/// --ping` shows them).
pub async fn ping_each(settings: &Settings, stage: PingStage, body: &str, deadline: Instant) -> Vec<Pinged> {
    let urls = &settings.events.ping_urls;
    if urls.is_empty() {
        return Vec::new();
    }
    let http = match HttpClient::new(settings.http) {
        Ok(http) => http,
        Err(e) => {
            tracing::warn!("no dead-man ping was sent: {e}");
            return Vec::new();
        }
    };
    let body = ping_body(body);
    let mut pinged = Vec::with_capacity(urls.len());
    for url in urls {
        pinged.push(ping_one(&http, url.expose_secret().trim(), stage, &body, deadline).await);
    }
    pinged
}

async fn ping_one(http: &HttpClient, text: &str, stage: PingStage, body: &str, deadline: Instant) -> Pinged {
    let url = match http_url(text) {
        Ok(url) => url,
        Err(why) => {
            return Pinged {
                shown: "a ping URL".to_owned(),
                sent: Sent::Refused {
                    why: format!("WITHINGS_TOKEN_PING_URL (or --ping-url, ping_url) holds {why}"),
                },
            };
        }
    };
    let target = stage_url(&url, stage);
    let mut sent = Sent::Retry {
        after: None,
        why: "the notify timeout ran out".to_owned(),
    };
    for try_number in 1..=2 {
        if try_number == 2 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left <= FIRST_PAUSE {
                break;
            }
            tokio::time::sleep(FIRST_PAUSE).await;
        }
        let answered = exchange(http, &target, deadline, |client| request(client, &target, body)).await;
        sent = match judge(&answered) {
            Judged::Delivered => Sent::Delivered,
            Judged::Refused(why) => Sent::Refused { why },
            Judged::Again { why, .. } => Sent::Retry { after: None, why },
        };
        if !matches!(sent, Sent::Retry { .. }) {
            break;
        }
    }
    Pinged {
        shown: shown_url(&url),
        sent,
    }
}

fn request(client: &reqwest::Client, url: &url::Url, body: &str) -> reqwest::RequestBuilder {
    if body.is_empty() {
        return client.get(url.clone());
    }
    client
        .post(url.clone())
        .header(reqwest::header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(body.to_owned())
}

/// `URL/start`, `URL`, `URL/fail` (the query, if any, kept).
pub(super) fn stage_url(url: &url::Url, stage: PingStage) -> url::Url {
    let mut target = url.clone();
    if let Some(suffix) = stage.suffix() {
        let path = format!("{}/{suffix}", url.path().trim_end_matches('/'));
        target.set_path(&path);
    }
    target
}

/// The report as a ping carries it: every known secret out of each line,
/// at most [`MAX_PING_BODY`] bytes.
pub(super) fn ping_body(body: &str) -> String {
    // Line by line: `scrub` writes a newline as an escape, and the report
    // is read as lines.
    let mut text = body
        .trim_end()
        .lines()
        .map(|line| crate::redact::scrub(line, &[]))
        .collect::<Vec<_>>()
        .join("\n");
    if text.len() > MAX_PING_BODY {
        let mut cut = MAX_PING_BODY;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    text
}
