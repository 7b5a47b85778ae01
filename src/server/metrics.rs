//! `GET /metrics`: the service's counters in the Prometheus text formats
//! (OpenMetrics, through the Prometheus project's own `prometheus-client`,
//! or the classic text made from it: see `exposition`).
//! Names follow Prometheus practice (`withings_token_` prefix, `_total`
//! counters, base units in `_seconds`); every label has a handful of fixed
//! values, and no metric ever carries a token or a user id.
//!
//! The series of one account carry its name as the `account` label, but
//! the `default` account's carry none: a deployment of one account reads
//! exactly as before accounts existed, and `{account=""}` selects it. The
//! names come from the store's listing, never from a request, so there are
//! as many as accounts. Reader refusals count by the named reader (from the
//! config file) and by the account refused, when it exists (`default`
//! included, by name: a refusal without the label asked for no account).
//! The Withings proxy's series count by reader (the same names, or
//! `(admin)`, `(reader)`), account (as above) and an action bounded by
//! `usage::action_label`: nothing a consumer sends makes a new series.
//!
//! Counters and the histogram are this process's; the timestamps are read
//! from each account's store at each scrape, and the need for new consent
//! (`withings_token_needs_reauthorization`, 0 or 1) from its event record,
//! so a refresh made (or refused) by a CLI run or another server sharing
//! the store shows too.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::EncodeMetric;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabel, EncodeLabelSet, LabelSetEncoder};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

use crate::accounts::AccountName;
use crate::error::{Error, Result};
use crate::locked;
use crate::output::{CopyStatus, ReportOutcome, TokenReport};
use crate::store::StoreState;

use super::exposition::{Exposition, to_classic};
use super::usage::{ProxyCall, action_label};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

/// The `account` label: `None` for `default` (see the module doc).
type AccountLabel = Option<String>;

fn account_label(name: &AccountName) -> AccountLabel {
    (!name.is_default()).then(|| name.to_string())
}

/// Writes `account` when there is one, then the other labels.
fn encode_labels(
    encoder: &mut LabelSetEncoder,
    account: &AccountLabel,
    others: &[(&'static str, &str)],
) -> std::fmt::Result {
    if let Some(account) = account {
        EncodeLabel::encode(&("account", account.as_str()), encoder.encode_label())?;
    }
    for label in others {
        EncodeLabel::encode(label, encoder.encode_label())?;
    }
    Ok(())
}

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct RefreshLabels {
    account: AccountLabel,
    result: &'static str,
}

impl EncodeLabelSet for RefreshLabels {
    fn encode(&self, encoder: &mut LabelSetEncoder) -> std::fmt::Result {
        encode_labels(encoder, &self.account, &[("result", self.result)])
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct CopyLabels {
    account: AccountLabel,
    copy: &'static str,
    result: &'static str,
}

impl EncodeLabelSet for CopyLabels {
    fn encode(&self, encoder: &mut LabelSetEncoder) -> std::fmt::Result {
        encode_labels(encoder, &self.account, &[("copy", self.copy), ("result", self.result)])
    }
}

/// A refusal: `account` only when the account refused exists, `default`
/// by name too.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct RefusalLabels {
    reader: String,
    account: Option<String>,
}

impl EncodeLabelSet for RefusalLabels {
    fn encode(&self, encoder: &mut LabelSetEncoder) -> std::fmt::Result {
        EncodeLabel::encode(&("reader", self.reader.as_str()), encoder.encode_label())?;
        if let Some(account) = &self.account {
            EncodeLabel::encode(&("account", account.as_str()), encoder.encode_label())?;
        }
        Ok(())
    }
}

/// A proxied call: `account` as everywhere (none for `default`), the
/// action as `usage::action_label` bounds it.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct ProxyLabels {
    reader: String,
    account: AccountLabel,
    action: &'static str,
    outcome: &'static str,
}

impl EncodeLabelSet for ProxyLabels {
    fn encode(&self, encoder: &mut LabelSetEncoder) -> std::fmt::Result {
        EncodeLabel::encode(&("reader", self.reader.as_str()), encoder.encode_label())?;
        encode_labels(
            encoder,
            &self.account,
            &[("action", self.action), ("outcome", self.outcome)],
        )
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReaderLabel {
    reader: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BudgetLabels {
    reader: String,
    budget: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabel {
    version: &'static str,
}

/// How a broker request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokerResult {
    /// The stored token lived long enough.
    Served,
    /// A refresh (this request's or a peer's) came first.
    Refreshed,
    /// Refused credential, bad query, or a failed refresh.
    Failed,
}

pub struct Metrics {
    registry: Registry,
    refreshes: Family<RefreshLabels, Counter>,
    refresh_seconds: Histogram,
    /// Each account's timestamps, as the last scrape read them.
    stamps: Arc<Stamps>,
    copy_pushes: Family<CopyLabels, Counter>,
    refusals: Family<RefusalLabels, Counter>,
    broker: Family<ResultLabel, Counter>,
    /// The broker's counter of each result, taken from `broker` at its
    /// first use: every broker request counts, and then with one atomic
    /// add instead of the family's lock and lookup. (Not made up front:
    /// a scrape shows only the results that happened.)
    broker_counters: [OnceLock<Counter>; 3],
    proxy: ProxyMetrics,
}

/// The Withings proxy's series (see `usage`).
struct ProxyMetrics {
    requests: Family<ProxyLabels, Counter>,
    upstream_seconds: Histogram,
    budget_waits: Family<ReaderLabel, Counter>,
    budget_refusals: Family<BudgetLabels, Counter>,
}

impl ProxyMetrics {
    fn register(registry: &mut Registry) -> ProxyMetrics {
        let proxy = ProxyMetrics {
            requests: Family::default(),
            // 1 ms (a loopback upstream) to 30 s (the default proxy timeout).
            upstream_seconds: Histogram::new(UPSTREAM_BUCKETS),
            budget_waits: Family::default(),
            budget_refusals: Family::default(),
        };
        registry.register(
            "withings_token_proxy_requests",
            "Calls through the Withings proxy by reader, account, action (a fixed list, else other) and outcome",
            proxy.requests.clone(),
        );
        registry.register(
            "withings_token_proxy_upstream_duration_seconds",
            "Time each call the proxy sent waited for Withings (a retried read: each send on its own)",
            proxy.upstream_seconds.clone(),
        );
        registry.register(
            "withings_token_proxy_budget_waits",
            "Proxied calls that waited for the budget before being sent, by reader",
            proxy.budget_waits.clone(),
        );
        registry.register(
            "withings_token_proxy_budget_refusals",
            "Proxied calls a budget refused (nothing sent), by reader and budget (app, reader)",
            proxy.budget_refusals.clone(),
        );
        proxy
    }
}

const UPSTREAM_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let refreshes = Family::<RefreshLabels, Counter>::default();
        // 50 ms to ~26 s: a Withings call, its retries and the lock wait.
        let refresh_seconds = Histogram::new(exponential_buckets(0.05, 2.0, 10));
        let stamps = Arc::new(Stamps::default());
        let copy_pushes = Family::<CopyLabels, Counter>::default();
        let refusals = Family::<RefusalLabels, Counter>::default();
        let broker = Family::<ResultLabel, Counter>::default();
        registry.register(
            "withings_token_refresh",
            "Refresh jobs by outcome (success, peer, not_due, refused, transient, busy, error)",
            refreshes.clone(),
        );
        registry.register(
            "withings_token_refresh_duration_seconds",
            "Time of the refresh jobs that asked Withings (lock wait and retries included)",
            refresh_seconds.clone(),
        );
        registry.register_collector(Box::new(Arc::clone(&stamps)));
        registry.register_collector(Box::new(LogLinesDropped));
        registry.register(
            "withings_token_copy_push",
            "Pushes of a new set to a copy (railway, env_file) by result (updated, failed)",
            copy_pushes.clone(),
        );
        registry.register(
            "withings_token_reader_refusals",
            "GET /v1/access-token requests of a named reader for an account not its own, by reader (and account, when it exists)",
            refusals.clone(),
        );
        registry.register(
            "withings_token_broker_requests",
            "GET /v1/access-token requests by result (served, refreshed, failed)",
            broker.clone(),
        );
        let version = VersionLabel {
            version: env!("CARGO_PKG_VERSION"),
        };
        registry.register("withings_token_build", "The running build", Info::new(version));
        let proxy = ProxyMetrics::register(&mut registry);
        Metrics {
            registry,
            refreshes,
            refresh_seconds,
            stamps,
            copy_pushes,
            refusals,
            broker,
            broker_counters: Default::default(),
            proxy,
        }
    }

    /// Counts one proxied call: its outcome, its time at Withings, its
    /// wait for the budget or the budget that refused it.
    /// Observes one call sent to Withings by the proxy (each of a read
    /// sent twice apart, so a retry does not read as one slow call).
    pub fn record_proxy_send(&self, upstream: std::time::Duration) {
        self.proxy.upstream_seconds.observe(upstream.as_secs_f64());
    }

    pub fn record_proxy(&self, call: &ProxyCall) {
        let reader = &call.reader;
        let labels = ProxyLabels {
            reader: reader.clone(),
            account: account_label(&call.account),
            action: action_label(call.action.as_deref()),
            outcome: call.outcome.label(),
        };
        self.proxy.requests.get_or_create(&labels).inc();
        if call.budget_wait.is_some() {
            let labels = ReaderLabel { reader: reader.clone() };
            self.proxy.budget_waits.get_or_create(&labels).inc();
        }
        if let Some(budget) = call.refused_by {
            let labels = BudgetLabels {
                reader: reader.clone(),
                budget,
            };
            self.proxy.budget_refusals.get_or_create(&labels).inc();
        }
    }

    /// Counts one refresh job of `account` and, when it asked Withings, its time.
    pub fn record_refresh(
        &self,
        account: &AccountName,
        result: std::result::Result<&TokenReport, &Error>,
        seconds: f64,
    ) {
        let label = refresh_result(result);
        let labels = RefreshLabels {
            account: account_label(account),
            result: label,
        };
        self.refreshes.get_or_create(&labels).inc();
        if matches!(label, "success" | "refused" | "transient") {
            self.refresh_seconds.observe(seconds);
        }
        if let Ok(report) = result {
            self.record_copies(account, report);
        }
    }

    /// Counts the pushes a report says were made or failed (skips are not pushes).
    pub fn record_copies(&self, account: &AccountName, report: &TokenReport) {
        for (copy, status) in [("env_file", report.env_file), ("railway", report.railway)] {
            let result = match status {
                CopyStatus::Updated => "updated",
                CopyStatus::Failed => "failed",
                CopyStatus::Skipped => continue,
            };
            let account = account_label(account);
            self.copy_pushes
                .get_or_create(&CopyLabels { account, copy, result })
                .inc();
        }
    }

    /// Counts a named reader refused `account` (when it exists).
    pub fn record_refusal(&self, reader: &str, account: Option<&AccountName>) {
        let labels = RefusalLabels {
            reader: reader.to_owned(),
            account: account.map(|a| a.to_string()),
        };
        self.refusals.get_or_create(&labels).inc();
    }

    pub fn record_broker(&self, result: BrokerResult) {
        let (index, result) = match result {
            BrokerResult::Served => (0, "served"),
            BrokerResult::Refreshed => (1, "refreshed"),
            BrokerResult::Failed => (2, "failed"),
        };
        let counter =
            self.broker_counters[index].get_or_init(|| self.broker.get_or_create(&ResultLabel { result }).clone());
        counter.inc();
    }

    /// The text of one scrape in `format`, with each account's gauges as
    /// read now (see [`Scraped`]). Accounts no longer listed lose theirs.
    pub fn render<'a>(&self, format: Exposition, scraped: impl Iterator<Item = Scraped<'a>>) -> Result<String> {
        self.stamps.take_in(scraped);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .map_err(|e| Error::internal(anyhow::anyhow!("cannot encode the metrics: {e}")))?;
        Ok(match format {
            Exposition::OpenMetrics => text,
            Exposition::Classic => to_classic(&text),
        })
    }
}

/// What a scrape read of one account: its store's state and whether it
/// needs new consent (its event record's word). `None`: that could not be
/// read, and its gauges stay as they were.
pub struct Scraped<'a> {
    pub name: &'a AccountName,
    pub state: Option<&'a StoreState>,
    pub needs_reauthorization: Option<bool>,
}

/// The gauges of each account, written at each scrape.
#[derive(Debug, Default)]
struct Stamps {
    by_account: Mutex<BTreeMap<AccountLabel, Stamp>>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Stamp {
    expires_at: Option<i64>,
    last_success: Option<i64>,
    needs_reauthorization: Option<bool>,
}

impl Stamps {
    fn take_in<'a>(&self, scraped: impl Iterator<Item = Scraped<'a>>) {
        let mut by_account = locked(&self.by_account);
        let before = std::mem::take(&mut *by_account);
        for Scraped {
            name,
            state,
            needs_reauthorization,
        } in scraped
        {
            let label = account_label(name);
            let mut stamp = before.get(&label).copied().unwrap_or_default();
            if let Some(state) = state {
                let tokens = state.tokens.as_ref();
                stamp.expires_at = tokens.and_then(|t| t.expires_at).map(|at| at.timestamp());
                stamp.last_success = tokens.and_then(|t| t.last_refreshed).map(|at| at.timestamp());
            }
            if needs_reauthorization.is_some() {
                stamp.needs_reauthorization = needs_reauthorization;
            }
            by_account.insert(label, stamp);
        }
    }
}

/// One gauge [`Stamps`] writes: its name, help, and value for an account.
struct StampGauge {
    name: &'static str,
    help: &'static str,
    value: fn(&Stamp) -> Option<i64>,
}

const STAMP_GAUGES: [StampGauge; 3] = [
    StampGauge {
        name: "withings_token_access_expiry_timestamp_seconds",
        help: "Unix time at which the stored access token expires",
        value: |s| s.expires_at,
    },
    StampGauge {
        name: "withings_token_last_refresh_success_timestamp_seconds",
        help: "Unix time of the stored set's last successful refresh or exchange",
        value: |s| s.last_success,
    },
    StampGauge {
        name: "withings_token_needs_reauthorization",
        help: "1 when Withings refused the account's refresh token and only new consent helps (GET /auth/start), else 0",
        value: |s| s.needs_reauthorization.map(i64::from),
    },
];

impl Collector for Stamps {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let by_account = locked(&self.by_account);
        for StampGauge { name, help, value } in STAMP_GAUGES {
            let mut metric =
                encoder.encode_descriptor(name, help, None, prometheus_client::metrics::MetricType::Gauge)?;
            for (account, stamp) in by_account.iter() {
                let Some(value) = value(stamp) else { continue };
                match account {
                    // `default`: no label at all, as before accounts.
                    None => metric.encode_gauge(&value)?,
                    Some(account) => metric
                        .encode_family(&[("account", account.as_str())])?
                        .encode_gauge(&value)?,
                }
            }
        }
        Ok(())
    }
}

/// `withings_token_log_lines_dropped_total`, as the logger counts it.
#[derive(Debug)]
struct LogLinesDropped;

impl Collector for LogLinesDropped {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let counter = ConstCounter::new(crate::logging::lines_dropped());
        let metric = encoder.encode_descriptor(
            "withings_token_log_lines_dropped",
            "Log lines dropped because stderr was not read fast enough (the service never waits for it)",
            None,
            counter.metric_type(),
        )?;
        counter.encode(metric)
    }
}

/// The `result` label of a refresh job: few fixed values, by the error's kind.
fn refresh_result(result: std::result::Result<&TokenReport, &Error>) -> &'static str {
    match result {
        Ok(report) => match report.outcome {
            ReportOutcome::AlreadyRefreshedByPeer => "peer",
            ReportOutcome::NotDue => "not_due",
            _ => "success",
        },
        Err(Error::InvalidRefreshToken { .. }) => "refused",
        Err(Error::Network { .. } | Error::Upstream { .. } | Error::RateLimited { .. }) => "transient",
        Err(Error::LockTimeout { .. } | Error::StoreUnavailable { .. } | Error::AnswerDropped { .. }) => "busy",
        Err(_) => "error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scrape_names_every_metric_and_counts_by_result() {
        let metrics = Metrics::new();
        let default = AccountName::default_account();
        metrics.record_refresh(&default, Err(&Error::InvalidRefreshToken { detail: "d".into() }), 0.2);
        metrics.record_broker(BrokerResult::Served);
        metrics.record_broker(BrokerResult::Served);
        let text = metrics.render(Exposition::OpenMetrics, std::iter::empty()).unwrap();
        for line in [
            "withings_token_refresh_total{result=\"refused\"} 1",
            "withings_token_refresh_duration_seconds_count 1",
            "withings_token_broker_requests_total{result=\"served\"} 2",
            "withings_token_build_info{version=\"",
            "# TYPE withings_token_access_expiry_timestamp_seconds gauge",
            "withings_token_log_lines_dropped_total ",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
        assert!(
            !text.contains("result=\"refreshed\""),
            "only results that happened:\n{text}"
        );
    }

    #[test]
    fn the_classic_scrape_declares_each_sample_under_its_own_name() {
        let metrics = Metrics::new();
        let default = AccountName::default_account();
        metrics.record_refresh(&default, Err(&Error::InvalidRefreshToken { detail: "d".into() }), 0.2);
        metrics.record_broker(BrokerResult::Served);
        metrics.record_refusal("mcp", Some(&default));
        metrics.record_proxy(&proxied("mcp", "default", "getmeas", super::super::usage::Outcome::Ok));
        metrics.record_proxy_send(std::time::Duration::from_millis(3));
        let text = metrics.render(Exposition::Classic, std::iter::empty()).unwrap();
        let mut declared = std::collections::BTreeMap::new();
        for line in text.lines() {
            if let Some(declaration) = line.strip_prefix("# TYPE ") {
                let (name, kind) = declaration.split_once(' ').unwrap();
                declared.insert(name, kind);
            } else if !line.starts_with("# HELP ") {
                let name = &line[..line.find(['{', ' ']).unwrap()];
                let family = [
                    name,
                    name.trim_end_matches("_bucket"),
                    name.trim_end_matches("_sum"),
                    name.trim_end_matches("_count"),
                ]
                .into_iter()
                .find(|family| declared.contains_key(family));
                assert!(family.is_some(), "{name} undeclared in\n{text}");
            }
        }
        assert_eq!(declared["withings_token_refresh_total"], "counter", "{text}");
        assert_eq!(declared["withings_token_build_info"], "gauge", "{text}");
        assert_eq!(
            declared["withings_token_refresh_duration_seconds"], "histogram",
            "{text}"
        );
        assert_eq!(declared["withings_token_needs_reauthorization"], "gauge", "{text}");
        assert!(!text.contains("# EOF") && !text.contains("_created"), "{text}");
    }

    fn proxied(reader: &str, account: &str, action: &str, outcome: super::super::usage::Outcome) -> ProxyCall {
        ProxyCall {
            reader: reader.to_owned(),
            account: AccountName::parse(account).unwrap(),
            path: "measure".to_owned(),
            action: Some(action.to_owned()),
            status: 200,
            withings_status: Some(0),
            outcome,
            upstream: Some(std::time::Duration::from_millis(3)),
            duration: std::time::Duration::from_millis(4),
            retried: false,
            budget_wait: None,
            refused_by: None,
        }
    }

    #[test]
    fn proxied_calls_count_by_bounded_labels_and_budget_waits_and_refusals_by_reader() {
        use super::super::usage::Outcome;
        let metrics = Metrics::new();
        metrics.record_proxy(&proxied("mcp", "default", "getmeas", Outcome::Ok));
        metrics.record_proxy(&proxied("mcp", "alice", "drop table", Outcome::WithingsError));
        let mut waited = proxied("(reader)", "alice", "getdevice", Outcome::Ok);
        waited.budget_wait = Some(std::time::Duration::from_millis(200));
        metrics.record_proxy(&waited);
        let mut refused = proxied("(reader)", "alice", "getmeas", Outcome::BudgetRefused);
        (refused.upstream, refused.refused_by) = (None, Some("reader"));
        metrics.record_proxy(&refused);
        // Each send to Withings is observed on its own (three here).
        for _ in 0..3 {
            metrics.record_proxy_send(std::time::Duration::from_millis(3));
        }
        let text = metrics.render(Exposition::OpenMetrics, std::iter::empty()).unwrap();
        let mut lines: Vec<&str> = text.lines().filter(|l| l.starts_with("withings_token_proxy")).collect();
        lines.sort_unstable();
        let buckets = |le: &str| format!("withings_token_proxy_upstream_duration_seconds_bucket{{le=\"{le}\"}}");
        for line in [
            "withings_token_proxy_requests_total{reader=\"mcp\",action=\"getmeas\",outcome=\"ok\"} 1",
            "withings_token_proxy_requests_total{reader=\"mcp\",account=\"alice\",action=\"other\",outcome=\"withings_error\"} 1",
            "withings_token_proxy_requests_total{reader=\"(reader)\",account=\"alice\",action=\"getdevice\",outcome=\"ok\"} 1",
            "withings_token_proxy_requests_total{reader=\"(reader)\",account=\"alice\",action=\"getmeas\",outcome=\"budget_refused\"} 1",
            "withings_token_proxy_budget_waits_total{reader=\"(reader)\"} 1",
            "withings_token_proxy_budget_refusals_total{reader=\"(reader)\",budget=\"reader\"} 1",
            "withings_token_proxy_upstream_duration_seconds_count 3",
            &format!("{} 0", buckets("0.0025")),
            &format!("{} 3", buckets("0.005")),
            &format!("{} 3", buckets("30.0")),
        ] {
            assert!(lines.contains(&line), "{line} missing from\n{}", lines.join("\n"));
        }
        assert_eq!(
            lines
                .iter()
                .filter(|l| l.starts_with("withings_token_proxy_requests_total"))
                .count(),
            4
        );
    }

    #[test]
    fn the_need_for_new_consent_is_a_gauge_per_account_kept_while_unreadable() {
        let metrics = Metrics::new();
        let (default, alice) = (AccountName::default_account(), AccountName::parse("alice").unwrap());
        let scrape = |default_needs: Option<bool>, alice_needs: Option<bool>| {
            let scraped = [(&default, default_needs), (&alice, alice_needs)].map(|(name, needs)| Scraped {
                name,
                state: None,
                needs_reauthorization: needs,
            });
            let text = metrics.render(Exposition::OpenMetrics, scraped.into_iter()).unwrap();
            let mut lines: Vec<String> = text
                .lines()
                .filter(|l| l.starts_with("withings_token_needs_reauthorization"))
                .map(str::to_owned)
                .collect();
            lines.sort();
            lines
        };
        assert_eq!(
            scrape(Some(false), Some(true)),
            [
                "withings_token_needs_reauthorization 0",
                "withings_token_needs_reauthorization{account=\"alice\"} 1",
            ]
        );
        // alice's record unreadable this time: her gauge stays as it was.
        assert_eq!(
            scrape(Some(true), None),
            [
                "withings_token_needs_reauthorization 1",
                "withings_token_needs_reauthorization{account=\"alice\"} 1",
            ]
        );
    }
}
