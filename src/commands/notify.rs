//! `notify --test [--ping]`: one `test` event straight to every configured
//! sink (commands, webhooks; not through the outbox, so nothing is kept),
//! and with `--ping` one success ping to each dead-man URL, waiting at
//! most `--notify-timeout`; one row per sink. Exit 0 when every sink took
//! it, 5 when one failed or refused it, 3 when nothing is configured. It
//! needs no Withings credentials and touches no store.

use std::time::Instant;

use clap::{ArgGroup, Args};

use crate::error::{Error, Result, Status};
use crate::events::Event;
use crate::http::{HttpClient, block_on};
use crate::notify::{PingStage, Pinged, Sent, SinkInfo, Sinks, ping_each, test_event};
use crate::output::{Delivery, ErrorBody, JSON_VERSION, NotifyReport, Output, SinkResult};
use crate::settings::Settings;

/// Send a test event to every event sink (commands, webhooks) and report how each took it
#[derive(Debug, Args)]
#[command(
    group(ArgGroup::new("what").required(true).multiple(true).args(["test", "ping"])),
    after_help = "--test sends one `test` event (code TEST, naming this host) straight to every sink of the account \
(`--on-event`, `--webhook-url`; `--account`, else the deployment's), signed as every event is; it is not kept in the \
outbox. --ping sends one success ping to each `--ping-url`. The run waits at most --notify-timeout (5 s by default); \
a command is killed after 10 s. Each row says `delivered`, `refused: ...` (a 4xx: fix the URL or the secret) or \
`failed: ...` (no answer, 5xx, a command that failed). Webhook URLs are shown as scheme and host only.\n\n\
Exit 0 when every sink took it, 5 (UPSTREAM_ERROR) when one did not, 3 when none is configured. Needs no Withings \
credentials.\n\n\
Examples:\n  withings-token notify --test\n  withings-token notify --test --ping --notify-timeout 20s\n  \
withings-token notify --test --json | jq -r '.sinks[] | select(.result != \"delivered\") | .why'"
)]
pub struct NotifyArgs {
    /// Send one `test` event to every command and webhook, and show how each took it
    #[arg(long)]
    pub test: bool,

    /// Send one success ping to every dead-man URL (`--ping-url`; it tells the check a run went well), and show how each took it
    #[arg(long)]
    pub ping: bool,
}

pub fn run(args: &NotifyArgs, settings: &Settings, out: &Output) -> Result<Status> {
    let named;
    let settings = match &settings.account {
        Some(name) => {
            named = settings.for_account(name)?;
            &named
        }
        None => settings,
    };
    let sinks = Sinks::of(settings)?;
    refuse_nothing_to_try(args, settings, &sinks)?;
    let account = settings.account_name();
    let event = test_event(account.as_str());
    let deadline = Instant::now() + settings.events.notify_timeout;
    let rows = block_on(try_sinks(settings, &sinks, &event, args, deadline))??;
    finish(out, account.as_str(), args.test.then_some(&event), rows)
}

/// `--test` without a sink, or `--ping` without a ping URL: exit 3.
fn refuse_nothing_to_try(args: &NotifyArgs, settings: &Settings, sinks: &Sinks) -> Result<()> {
    if args.test && sinks.is_empty() {
        return Err(Error::config(
            "no event sink is configured: there is nothing to send a test event to",
            "set a webhook with `--webhook-url URL` (WITHINGS_TOKEN_WEBHOOK_URL, `webhook_url` in the config file) or a command with `--on-event CMD` (WITHINGS_TOKEN_ON_EVENT, `on_event`)",
        ));
    }
    if args.ping && settings.events.ping_urls.is_empty() {
        return Err(Error::config(
            "no dead-man ping URL is configured: there is nothing to ping",
            "set one with `--ping-url URL` (WITHINGS_TOKEN_PING_URL, `ping_url` in the config file)",
        ));
    }
    Ok(())
}

/// The event to every sink (`--test`), then a success ping with its
/// message to every ping URL (`--ping`), one row each.
async fn try_sinks(
    settings: &Settings,
    sinks: &Sinks,
    event: &Event,
    args: &NotifyArgs,
    deadline: Instant,
) -> Result<Vec<SinkResult>> {
    let mut rows = Vec::new();
    if args.test {
        let http = HttpClient::new(settings.http)?;
        let tried = sinks.try_each(event, &http, deadline).await;
        rows.extend(tried.into_iter().map(|(info, sent)| row(&info, sent)));
    }
    if args.ping {
        let pinged = ping_each(settings, PingStage::Success, &event.message, deadline).await;
        rows.extend(
            pinged
                .into_iter()
                .map(|Pinged { shown, sent }| row_of("ping", shown, sent)),
        );
    }
    Ok(rows)
}

fn row(info: &SinkInfo, sent: Sent) -> SinkResult {
    row_of(info.kind, info.shown.clone(), sent)
}

fn row_of(kind: &'static str, shown: String, sent: Sent) -> SinkResult {
    let (result, why) = match sent {
        Sent::Delivered => (Delivery::Delivered, None),
        Sent::Refused { why } => (Delivery::Refused, Some(why)),
        Sent::Retry { why, .. } => (Delivery::Failed, Some(why)),
    };
    SinkResult {
        kind,
        shown,
        result,
        why,
    }
}

/// Prints the report; a sink that did not take it is exit 5 with the
/// contract's error line.
fn finish(out: &Output, account: &str, event: Option<&Event>, sinks: Vec<SinkResult>) -> Result<Status> {
    let missed: Vec<String> = sinks
        .iter()
        .filter(|s| s.result != Delivery::Delivered)
        .map(|s| format!("{} {}", s.kind, s.shown))
        .collect();
    let error = (!missed.is_empty()).then(|| ErrorBody {
        code: "UPSTREAM_ERROR",
        message: format!(
            "{} of {} sinks did not take it: {}",
            missed.len(),
            sinks.len(),
            missed.join(", ")
        ),
        action: "each row says why: a refused webhook needs its URL or secret fixed; a failed one, its receiver (or the command) looked at; real events wait in the outbox and are sent again by the next run".to_owned(),
    });
    let status = if error.is_some() {
        Status::Failed(5)
    } else {
        Status::Success
    };
    out.print(&NotifyReport {
        version: JSON_VERSION,
        account: account.to_owned(),
        event_id: event.map(|e| e.id.clone()),
        ok: error.is_none(),
        sinks,
        error,
    })?;
    Ok(status)
}
