//! Where events go (docs/events.md): each command, webhook and ping URL,
//! the webhooks' format and whether they are signed, the notify timeout and
//! `public_url`. A URL is shown by scheme and host only (`notify::shown_url`):
//! a Slack or Discord hook's path is its credential, and the signing secret
//! is said to be set, never shown. `--online` sends a test event to each
//! sink, once; the pings are not sent (a ping tells a dead-man check that a
//! run happened).

use std::time::Instant;

use secrecy::ExposeSecret;

use super::{fail, failed, ok, warn};
use crate::events::{Event, EventKind};
use crate::http::HttpClient;
use crate::notify::{Sent, Sinks, shown_url};
use crate::output::DoctorCheck;
use crate::redact::visible;
use crate::settings::{Settings, WebhookFormat};

/// The sinks and their settings, as configured (nothing is sent).
pub(super) fn event_checks(settings: &Settings) -> Vec<DoctorCheck> {
    let events = &settings.events;
    let mut checks = vec![summary(settings)];
    checks.extend(events.commands.iter().map(|c| ok("event command", visible(c))));
    checks.extend(
        events
            .webhook_urls
            .iter()
            .map(|url| webhook(settings, url.expose_secret())),
    );
    checks.extend(events.ping_urls.iter().map(|url| ping(url.expose_secret())));
    if events.has_sinks() || !events.ping_urls.is_empty() {
        checks.push(ok(
            "notify timeout",
            format!(
                "{}: a CLI run waits at most this long for its deliveries (what is not delivered waits in the outbox)",
                crate::duration::humanize(events.notify_timeout)
            ),
        ));
    }
    if events.public_url.is_some() || events.has_sinks() {
        checks.push(public_url(settings));
    }
    checks
}

/// How many sinks of each kind, or that events are only logged.
fn summary(settings: &Settings) -> DoctorCheck {
    const NAME: &str = "events";
    let events = &settings.events;
    let counted = [
        (events.commands.len(), "command"),
        (events.webhook_urls.len(), "webhook"),
        (events.ping_urls.len(), "ping URL"),
    ];
    let parts: Vec<String> = counted
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| {
            if *n == 1 {
                format!("1 {what}")
            } else {
                format!("{n} {what}s")
            }
        })
        .collect();
    if parts.is_empty() {
        return ok(
            NAME,
            "no sink configured: events are only logged (on_event, webhook_url, ping_url: docs/events.md)",
        );
    }
    ok(NAME, parts.join(", "))
}

/// One webhook: its host, format and signature; a warning when it is
/// plain http to another host, or unsigned where a receiver could check.
fn webhook(settings: &Settings, text: &str) -> DoctorCheck {
    const NAME: &str = "event webhook";
    let events = &settings.events;
    let url = match url::Url::parse(text.trim()) {
        Ok(url) => url,
        Err(e) => {
            return fail(
                NAME,
                format!("a WITHINGS_TOKEN_WEBHOOK_URL is not a URL ({e})"),
                "set it to the whole https:// URL the receiver gave you",
            );
        }
    };
    let format = events.webhook_format;
    let signed = if events.webhook_secret.is_some() {
        "signed with WITHINGS_TOKEN_WEBHOOK_SECRET"
    } else {
        "unsigned"
    };
    let detail = format!("{} (format {}, {signed})", shown_url(&url), format.as_str());
    if cleartext(&url) {
        return warn(
            NAME,
            format!("{detail}: plain http to another host, so every event crosses the network readable"),
            "use the receiver's https:// URL",
        );
    }
    // A chat's incoming webhook checks no signature: no warning to act on.
    let checkable = matches!(format, WebhookFormat::Json | WebhookFormat::Text);
    if events.webhook_secret.is_none() && checkable {
        return warn(
            NAME,
            format!("{detail}: the receiver cannot tell these events from forged ones"),
            "set WITHINGS_TOKEN_WEBHOOK_SECRET (e.g. `whsec_` and `openssl rand -base64 32`) and check the signature in the receiver (docs/events.md)",
        );
    }
    ok(NAME, detail)
}

fn ping(text: &str) -> DoctorCheck {
    const NAME: &str = "event ping";
    match url::Url::parse(text.trim()) {
        Ok(url) if cleartext(&url) => warn(
            NAME,
            format!("{}: plain http to another host", shown_url(&url)),
            "use the check's https:// URL",
        ),
        Ok(url) => ok(
            NAME,
            format!(
                "{} (`/start` when a run starts, `/fail` when it fails)",
                shown_url(&url)
            ),
        ),
        Err(e) => fail(
            NAME,
            format!("a WITHINGS_TOKEN_PING_URL is not a URL ({e})"),
            "set it to the whole https:// URL of the check (e.g. healthchecks.io's)",
        ),
    }
}

/// Where one-time re-consent links point, and whether they can be signed.
fn public_url(settings: &Settings) -> DoctorCheck {
    const NAME: &str = "public url";
    let start = crate::events::link::START_PATH;
    let Some(text) = settings.events.public_url.as_deref() else {
        return ok(
            NAME,
            "not set: reauthorization_required events carry no one-tap link (set WITHINGS_TOKEN_PUBLIC_URL to the address people reach `serve` at)",
        );
    };
    let url = match url::Url::parse(text) {
        Ok(url) => url,
        Err(e) => {
            return fail(
                NAME,
                format!("WITHINGS_TOKEN_PUBLIC_URL is not a URL ({e})"),
                "set it to the address people reach `serve` at, like `https://tokens.example.com`",
            );
        }
    };
    let shown = shown_url(&url);
    if settings.server.admin_token.is_none() {
        return warn(
            NAME,
            format!("{shown}: ADMIN_API_TOKEN is not set, so no one-time link can be signed and events carry none"),
            "set ADMIN_API_TOKEN here to the value `serve` runs with (the links' key is derived from it)",
        );
    }
    if cleartext(&url) {
        return warn(
            NAME,
            format!(
                "{shown}: plain http to another host, so the one-time links and the consent they start cross the network readable"
            ),
            "put `serve` behind https and set that address",
        );
    }
    ok(
        NAME,
        format!("{shown} (reauthorization_required carries a one-time link to {start} there, working for an hour)"),
    )
}

/// Plain `http://` to a host other than this one.
fn cleartext(url: &url::Url) -> bool {
    let loopback = match url.host() {
        Some(url::Host::Domain(name)) => name == "localhost" || name.ends_with(".localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    url.scheme() == "http" && !loopback
}

/// `--online`: one test event to each sink, each within the notify
/// timeout; a line each.
pub(super) async fn test_events(settings: &Settings, http: &HttpClient) -> Vec<DoctorCheck> {
    const NAME: &str = "test event";
    let sinks = match Sinks::of(settings) {
        Ok(sinks) => sinks,
        Err(e) => return vec![failed(NAME, &e)],
    };
    let account = settings.account_name();
    let event = Event::new(
        EventKind::Test,
        account.as_str(),
        crate::tokens::now(),
        "TEST",
        "a test event from `withings-token doctor --online`: this sink receives the account's events".to_owned(),
        String::new(),
    );
    let mut checks = Vec::new();
    for info in sinks.describe() {
        let deadline = Instant::now() + settings.events.notify_timeout;
        let sent = sinks.send(&info.id, &event, http, deadline).await;
        let shown = format!("{} {}", info.kind, info.shown);
        checks.push(match sent {
            Sent::Delivered => ok(NAME, format!("delivered to {shown}")),
            Sent::Retry { why, .. } => fail(
                NAME,
                format!("not delivered to {shown}: {why}"),
                match info.kind {
                    "command" => "run the command by hand with an event on stdin (`withings-token notify --test` sends one), then `withings-token doctor --online` again",
                    _ => "check that the receiver is up and this host reaches it (DNS, proxy, firewall), then run `withings-token doctor --online` again",
                },
            ),
            Sent::Refused { why } => fail(
                NAME,
                format!("{shown} refused it: {why}"),
                "check the URL and the receiver's settings: it refuses every event",
            ),
        });
    }
    checks
}
