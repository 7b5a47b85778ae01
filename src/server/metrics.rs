//! `GET /metrics`: the service's counters in the Prometheus text format
//! (OpenMetrics, through the Prometheus project's own `prometheus-client`).
//! Names follow Prometheus practice (`withings_token_` prefix, `_total`
//! counters, base units in `_seconds`); every label has a handful of fixed
//! values, and no metric ever carries a token or a user id.
//!
//! Counters and the histogram are this process's; the two timestamps are
//! read from the store at each scrape, so a refresh made by a CLI run or
//! another server sharing the store shows too.

use std::sync::OnceLock;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

use crate::error::{Error, Result};
use crate::output::{CopyStatus, ReportOutcome, TokenReport};
use crate::store::StoreState;

/// What Prometheus is told the answer is.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CopyLabels {
    copy: &'static str,
    result: &'static str,
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
    refreshes: Family<ResultLabel, Counter>,
    refresh_seconds: Histogram,
    expiry: Gauge,
    last_success: Gauge,
    copy_pushes: Family<CopyLabels, Counter>,
    broker: Family<ResultLabel, Counter>,
    /// The broker's counter of each result, taken from `broker` at its
    /// first use: every broker request counts, and then with one atomic
    /// add instead of the family's lock and lookup. (Not made up front:
    /// a scrape shows only the results that happened.)
    broker_counters: [OnceLock<Counter>; 3],
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let refreshes = Family::<ResultLabel, Counter>::default();
        // 50 ms to ~26 s: a Withings call, its retries and the lock wait.
        let refresh_seconds = Histogram::new(exponential_buckets(0.05, 2.0, 10));
        let (expiry, last_success) = (Gauge::default(), Gauge::default());
        let copy_pushes = Family::<CopyLabels, Counter>::default();
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
        registry.register(
            "withings_token_access_expiry_timestamp_seconds",
            "Unix time at which the stored access token expires",
            expiry.clone(),
        );
        registry.register(
            "withings_token_last_refresh_success_timestamp_seconds",
            "Unix time of the stored set's last successful refresh or exchange",
            last_success.clone(),
        );
        registry.register(
            "withings_token_copy_push",
            "Pushes of a new set to a copy (railway, env_file) by result (updated, failed)",
            copy_pushes.clone(),
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
        Metrics {
            registry,
            refreshes,
            refresh_seconds,
            expiry,
            last_success,
            copy_pushes,
            broker,
            broker_counters: Default::default(),
        }
    }

    /// Counts one refresh job and, when it asked Withings, its time.
    pub fn record_refresh(&self, result: std::result::Result<&TokenReport, &Error>, seconds: f64) {
        let label = refresh_result(result);
        self.refreshes.get_or_create(&ResultLabel { result: label }).inc();
        if matches!(label, "success" | "refused" | "transient") {
            self.refresh_seconds.observe(seconds);
        }
        if let Ok(report) = result {
            self.record_copies(report);
        }
    }

    /// Counts the pushes a report says were made or failed (skips are not pushes).
    pub fn record_copies(&self, report: &TokenReport) {
        for (copy, status) in [("env_file", report.env_file), ("railway", report.railway)] {
            let result = match status {
                CopyStatus::Updated => "updated",
                CopyStatus::Failed => "failed",
                CopyStatus::Skipped => continue,
            };
            self.copy_pushes.get_or_create(&CopyLabels { copy, result }).inc();
        }
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

    /// The text of one scrape; the timestamps come from `stored`.
    pub fn render(&self, stored: Option<&StoreState>) -> Result<String> {
        let tokens = stored.and_then(|s| s.tokens.as_ref());
        if let Some(at) = tokens.and_then(|t| t.expires_at) {
            self.expiry.set(at.timestamp());
        }
        if let Some(at) = tokens.and_then(|t| t.last_refreshed) {
            self.last_success.set(at.timestamp());
        }
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .map_err(|e| Error::internal(anyhow::anyhow!("cannot encode the metrics: {e}")))?;
        Ok(text)
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
        metrics.record_refresh(Err(&Error::InvalidRefreshToken { detail: "d".into() }), 0.2);
        metrics.record_broker(BrokerResult::Served);
        metrics.record_broker(BrokerResult::Served);
        let text = metrics.render(None).unwrap();
        for line in [
            "withings_token_refresh_total{result=\"refused\"} 1",
            "withings_token_refresh_duration_seconds_count 1",
            "withings_token_broker_requests_total{result=\"served\"} 2",
            "withings_token_build_info{version=\"",
            "# TYPE withings_token_access_expiry_timestamp_seconds gauge",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
        assert!(
            !text.contains("result=\"refreshed\""),
            "only results that happened:\n{text}"
        );
    }
}
