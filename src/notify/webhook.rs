//! A webhook sink: the event POSTed to a URL in the body its format asks
//! for (`json`: the event itself; `slack`, `discord`: a chat's incoming
//! webhook message; `text`: plain lines for ntfy and the like), signed as
//! Standard Webhooks say when a secret is set: `webhook-id` is the event's
//! id (the same on every try, so a receiver can drop a repeat),
//! `webhook-timestamp` this try's time, and `webhook-signature`
//! `v1,<base64 of HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`.
//!
//! Tries repeat with a doubling pause on network errors, 5xx and 429
//! (`Retry-After` honoured on 429 and 503) until the deadline; another 4xx
//! is a refusal, and so is a redirect: the shared client never follows
//! one (`http::HttpClient::inner`), and the spec asks senders not to, so
//! a moved receiver cannot send the event (or its signature) elsewhere.
//! The URL is shown only through `shown_url`: its path is often its
//! credential (Slack's, Discord's, ntfy's topic).

use std::time::{Duration, Instant};

use base64::Engine as _;
use ring::hmac;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

use super::sent::{Sent, SinkInfo, shown_url, sink_id};
use crate::duration::humanize;
use crate::error::{Error, Result};
use crate::events::Event;
use crate::http::HttpClient;
use crate::settings::WebhookFormat;

/// The first pause between tries; it doubles up to [`LONGEST_PAUSE`].
pub(super) const FIRST_PAUSE: Duration = Duration::from_millis(250);
const LONGEST_PAUSE: Duration = Duration::from_secs(4);
/// The most of an answer read: it is ignored, and a receiver's page of
/// HTML is no reason to hold memory.
pub(super) const MAX_ANSWER: usize = 4 * 1024;
/// Discord refuses a message's `content` past this many characters.
const DISCORD_MAX: usize = 2000;
/// Marks the events a person must act on in the chat and text formats.
const TROUBLE: &str = "🚨";

pub struct Webhook {
    url: url::Url,
    id: String,
    key: Option<hmac::Key>,
    format: WebhookFormat,
}

impl Webhook {
    /// A webhook to `url`; a URL that is not http(s), or a `whsec_`
    /// secret that is not base64, is a configuration error (exit 3).
    pub fn new(url: &SecretString, secret: Option<&SecretString>, format: WebhookFormat) -> Result<Webhook> {
        let text = url.expose_secret().trim();
        let parsed = http_url(text).map_err(|why| {
            Error::config(
                format!("WITHINGS_TOKEN_WEBHOOK_URL (or --webhook-url, webhook_url) holds {why}"),
                "set it to the whole https:// URL the receiver gave you",
            )
        })?;
        let key = secret.map(|s| signing_key(s.expose_secret())).transpose()?;
        Ok(Webhook {
            id: sink_id("webhook", text),
            url: parsed,
            key,
            format,
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn info(&self) -> SinkInfo {
        SinkInfo {
            id: self.id.clone(),
            kind: "webhook",
            shown: shown_url(&self.url),
        }
    }

    /// Tries until the receiver takes `event`, refuses it, or `deadline`
    /// leaves no time for another try.
    pub async fn send(&self, event: &Event, http: &HttpClient, deadline: Instant) -> Sent {
        let body = match Body::of(self.format, event) {
            Ok(body) => body,
            Err(e) => {
                return Sent::Refused {
                    why: format!("the event could not be written as JSON ({e})"),
                };
            }
        };
        let mut pause = FIRST_PAUSE;
        let mut tries: u32 = 0;
        loop {
            tries += 1;
            let answered = exchange(http, &self.url, deadline, |client| self.request(client, event, &body)).await;
            let (wait, why) = match judge(&answered) {
                Judged::Delivered => return Sent::Delivered,
                Judged::Refused(why) => return Sent::Refused { why },
                Judged::Again { wait, why } => (wait, why),
            };
            let left = deadline.saturating_duration_since(Instant::now());
            let next = wait.unwrap_or(pause);
            if next >= left {
                let why = match wait {
                    Some(wait) => format!("{why}, asked to wait {}", humanize(wait)),
                    None => why,
                };
                return Sent::Retry {
                    after: wait,
                    why: format!("{why} ({})", tries_text(tries)),
                };
            }
            tokio::time::sleep(next).await;
            pause = pause.saturating_mul(2).min(LONGEST_PAUSE);
        }
    }

    /// One try's request: signed anew, since the timestamp is this try's.
    fn request(&self, client: &reqwest::Client, event: &Event, body: &Body) -> reqwest::RequestBuilder {
        let timestamp = crate::tokens::now().timestamp();
        let mut request = client
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, body.content_type)
            .header("webhook-id", &event.id)
            .header("webhook-timestamp", timestamp.to_string());
        if let Some(key) = &self.key {
            request = request.header("webhook-signature", signature(key, &event.id, timestamp, &body.bytes));
        }
        for (name, value) in &body.headers {
            request = request.header(*name, value);
        }
        request.body(body.bytes.clone())
    }
}

/// `url` when it is an http(s) URL with a host; else why not, without the
/// URL (it may be a credential).
pub(super) fn http_url(text: &str) -> std::result::Result<url::Url, String> {
    let url = url::Url::parse(text).map_err(|e| format!("a value that is not a URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(format!("a `{}:` URL, not an http(s) one", url.scheme()));
    }
    Ok(url)
}

/// The HMAC key a secret names: what follows `whsec_`, base64-decoded (as
/// Standard Webhooks and Svix issue secrets), or else the text's bytes.
pub(super) fn signing_key(secret: &str) -> Result<hmac::Key> {
    let secret = secret.trim();
    let bytes = match secret.strip_prefix("whsec_") {
        Some(encoded) => lenient_base64().decode(encoded).map_err(|_| {
            Error::config(
                "WITHINGS_TOKEN_WEBHOOK_SECRET starts with `whsec_`, but what follows is not base64",
                "copy the whole secret the receiver gave you (`whsec_` and base64), or use a secret without that prefix (taken as it is)",
            )
        })?,
        None => secret.as_bytes().to_vec(),
    };
    if bytes.is_empty() {
        return Err(Error::config(
            "WITHINGS_TOKEN_WEBHOOK_SECRET is empty",
            "set it to the receiver's signing secret, or unset it to send unsigned webhooks",
        ));
    }
    Ok(hmac::Key::new(hmac::HMAC_SHA256, &bytes))
}

/// Standard base64, with or without its padding: receivers print both.
fn lenient_base64() -> base64::engine::GeneralPurpose {
    let config = base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent);
    base64::engine::GeneralPurpose::new(&base64::alphabet::STANDARD, config)
}

/// `v1,` and the base64 of HMAC-SHA256(`key`, `{id}.{timestamp}.{body}`).
pub(super) fn signature(key: &hmac::Key, id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut context = hmac::Context::with_key(key);
    context.update(format!("{id}.{timestamp}.").as_bytes());
    context.update(body);
    let tag = context.sign();
    format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(tag.as_ref()))
}

/// A webhook's body, its content type and the headers its format adds.
#[derive(Debug)]
pub(super) struct Body {
    pub bytes: Vec<u8>,
    pub content_type: &'static str,
    pub headers: Vec<(&'static str, String)>,
}

#[derive(Serialize)]
struct SlackMessage {
    text: String,
}

#[derive(Serialize)]
struct DiscordMessage {
    content: String,
    /// No `@everyone` or role ping, whatever a message says.
    allowed_mentions: NoMentions,
}

#[derive(Serialize)]
struct NoMentions {
    parse: [&'static str; 0],
}

impl Body {
    pub(super) fn of(format: WebhookFormat, event: &Event) -> serde_json::Result<Body> {
        const JSON: &str = "application/json";
        let json = |bytes| Body {
            bytes,
            content_type: JSON,
            headers: Vec::new(),
        };
        Ok(match format {
            WebhookFormat::Json => json(serde_json::to_vec(event)?),
            WebhookFormat::Slack => json(serde_json::to_vec(&SlackMessage {
                text: slack_text(event),
            })?),
            WebhookFormat::Discord => json(serde_json::to_vec(&DiscordMessage {
                content: discord_content(event),
                allowed_mentions: NoMentions { parse: [] },
            })?),
            WebhookFormat::Text => Body {
                bytes: plain_text(event).into_bytes(),
                content_type: "text/plain; charset=utf-8",
                headers: ntfy_headers(event),
            },
        })
    }
}

/// The marker an event's line starts with.
fn marker(event: &Event) -> String {
    if event.kind.is_trouble() {
        format!("{TROUBLE} ")
    } else {
        String::new()
    }
}

/// One line of Slack mrkdwn: the summary, then the action, the link (when
/// there is one) as `<URL|Re-authorise ACCOUNT>`. Everything else is
/// escaped, so no text can make a link or a `<!channel>` mention.
pub(super) fn slack_text(event: &Event) -> String {
    let link = |url: &str| format!("<{}|Re-authorise {}>", slack_escape(url), slack_escape(&event.account));
    let mut text = format!("{}{}", marker(event), slack_escape(&event.summary()));
    text.push_str(&action_with_link(event, " — next: ", slack_escape, link));
    text
}

/// `&`, `<`, `>` as Slack asks them written.
fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// One line of Discord markdown, the link as a masked link, within
/// Discord's 2000 characters (the summary is cut first, so the link stays
/// whole).
pub(super) fn discord_content(event: &Event) -> String {
    let link = |url: &str| format!("[Re-authorise {}](<{url}>)", event.account);
    let tail = clip_chars(
        &action_with_link(event, " — next: ", discord_escape, link),
        DISCORD_MAX / 2,
    );
    let room = DISCORD_MAX - tail.chars().count();
    let head = clip_chars(&format!("{}{}", marker(event), discord_escape(&event.summary())), room);
    head + &tail
}

/// Discord's markdown characters written as themselves, so that a text an
/// upstream chose (`[Re-authorise](http://elsewhere)`) makes no link, and
/// the event's own link is the only one.
fn discord_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '[' | ']' | '*' | '_' | '~' | '`' | '|' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// One or two plain lines: the summary, then what to do (with the link).
pub(super) fn plain_text(event: &Event) -> String {
    let mut text = format!("{}{}\n", marker(event), event.summary());
    // A bare URL: ntfy and mail clients make it a link themselves.
    let next = action_with_link(event, "next: ", str::to_owned, str::to_owned);
    if !next.is_empty() {
        text.push_str(&next);
        text.push('\n');
    }
    text
}

/// What ntfy makes of a plain body: a title, the trouble's priority, and
/// the link as the notification's tap.
fn ntfy_headers(event: &Event) -> Vec<(&'static str, String)> {
    // Header values are ASCII: an account name is, an event type is.
    let mut headers = vec![(
        "Title",
        format!("withings-token: {} {}", event.account, event.kind.as_str()),
    )];
    if event.kind.is_trouble() {
        headers.push(("Priority", "high".to_owned()));
    }
    if let Some(link) = &event.link {
        headers.push(("Click", link.clone()));
    }
    headers
}

/// `lead` and the event's action, its text through `escape` and the link
/// in it through `link`; the link alone when the action does not carry
/// it; empty when there is neither.
fn action_with_link(
    event: &Event,
    lead: &str,
    escape: impl Fn(&str) -> String,
    link: impl Fn(&str) -> String,
) -> String {
    let action = event.action.trim();
    let shown = match event.link.as_deref().filter(|l| !l.is_empty()) {
        Some(url) if action.contains(url) => action.split(url).map(&escape).collect::<Vec<_>>().join(&link(url)),
        Some(url) if action.is_empty() => link(url),
        Some(url) => format!("{} {}", escape(action), link(url)),
        None => escape(action),
    };
    if shown.is_empty() {
        String::new()
    } else {
        format!("{lead}{shown}")
    }
}

/// `text` cut to at most `max` characters, the cut marked with `…`.
fn clip_chars(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let kept: String = text.chars().take(max.saturating_sub(1)).collect();
    kept + "…"
}

/// `1 try`, `3 tries`.
fn tries_text(tries: u32) -> String {
    if tries == 1 {
        "1 try".to_owned()
    } else {
        format!("{tries} tries")
    }
}

/// What one request came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Answered {
    Status {
        status: u16,
        /// `Retry-After`, when the answer had one this tool reads.
        retry_after: Option<Duration>,
    },
    /// No answer (refused, reset, timed out); why, without the URL.
    Nothing(String),
}

/// How an answer counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Judged {
    Delivered,
    Refused(String),
    /// Worth another try, after `wait` when the receiver said so.
    Again {
        wait: Option<Duration>,
        why: String,
    },
}

/// 2xx delivered; 5xx, 429 and no answer worth another try (the wait a
/// 429 or 503 asks for kept); another 4xx, or a redirect, refused.
pub(super) fn judge(answered: &Answered) -> Judged {
    let (status, retry_after) = match answered {
        Answered::Nothing(why) => {
            return Judged::Again {
                wait: None,
                why: why.clone(),
            };
        }
        Answered::Status { status, retry_after } => (*status, *retry_after),
    };
    let why = format!("HTTP {status}");
    match status {
        200..=299 => Judged::Delivered,
        429 | 503 => Judged::Again { wait: retry_after, why },
        500..=599 => Judged::Again { wait: None, why },
        300..=399 => Judged::Refused(format!("{why}, a redirect (not followed: set the URL it leads to)")),
        400..=499 => Judged::Refused(why),
        _ => Judged::Again { wait: None, why },
    }
}

/// Sends the request `build` makes on the shared client, within the time
/// left before `deadline`, and reads at most [`MAX_ANSWER`] of the answer.
pub(super) async fn exchange(
    http: &HttpClient,
    url: &url::Url,
    deadline: Instant,
    build: impl FnOnce(&reqwest::Client) -> reqwest::RequestBuilder,
) -> Answered {
    let client = match http.inner() {
        Ok(client) => client,
        Err(e) => return Answered::Nothing(e.to_string()),
    };
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Answered::Nothing("the notify timeout ran out".to_owned());
    }
    let request = build(client);
    match tokio::time::timeout(left, answer_of(request)).await {
        Ok(Ok(answered)) => answered,
        Ok(Err(e)) => Answered::Nothing(transport_why(&e, url)),
        Err(_) => Answered::Nothing(format!("no answer within the {} left", humanize(left))),
    }
}

async fn answer_of(request: reqwest::RequestBuilder) -> reqwest::Result<Answered> {
    let mut response = request.send().await?;
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|text| retry_after(text, crate::tokens::now()));
    let mut read = 0;
    // Read (a little) so that a receiver that answers before it reads our
    // body is not cut off mid-answer; the rest is dropped with the
    // connection.
    while read < MAX_ANSWER {
        match response.chunk().await {
            Ok(Some(chunk)) => read += chunk.len(),
            Ok(None) | Err(_) => break,
        }
    }
    Ok(Answered::Status { status, retry_after })
}

/// `Retry-After` as a wait: whole seconds, or an HTTP date (a date past
/// is no wait).
pub(super) fn retry_after(text: &str, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(text).ok()?;
    Some(
        (at.with_timezone(&chrono::Utc) - now)
            .to_std()
            .unwrap_or(Duration::ZERO),
    )
}

/// Why a request got no answer: the kind of failure and its innermost
/// cause, the URL in it shown as `shown_url` does, every known secret out.
pub(super) fn transport_why(e: &reqwest::Error, url: &url::Url) -> String {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    let cause = crate::http::innermost(e)
        .replace(url.as_str(), &shown_url(url))
        .replace(&crate::redact::shown_url(url), &shown_url(url));
    crate::redact::scrub(&format!("{what} ({cause})"), &[url.as_str()])
}
