//! Usage of the Withings proxy, per consumer: every proxied call is
//! recorded once it ended (`record`), as an audit line in the log (reader,
//! account, path, action, status, duration: never a token, never a body,
//! which is health data, never the query), as counters in `/metrics`, and
//! in the [`Book`] that `GET /admin/usage` reads (last hour, last day).
//!
//! Everything kept is bounded whatever consumers send: readers come from
//! the config file (plus `(admin)` and `(reader)`), accounts from the
//! store's listing, an action is one of [`ACTIONS`] or `other`, and each
//! (reader, account) keeps at most one bucket per minute of the last day.
//!
//! The audit line is one `key=value` message (target
//! `withings_token::audit`): the JSON log keeps its six keys, and a value a
//! consumer chose (the action) is quoted when it is not a plain word, so no
//! text it sends can pass for another field.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::accounts::AccountName;
use crate::locked;
use crate::output::{ActionCount, BudgetRefusals, UpstreamTime, UsageReport, UsageRow, UsageWindow};

use super::AppState;

/// How a proxied call ended, by Withings' status family (few fixed values:
/// a metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Withings answered `status: 0` (or a 200 whose status is not JSON).
    Ok,
    /// Withings refused the access token (`status: 401`), after the retry
    /// when there was one.
    InvalidToken,
    /// Withings' own rate limit (`status: 601`).
    RateLimited,
    /// Another non-zero Withings status (invalid params, …).
    WithingsError,
    /// An HTTP status other than 200 from Withings.
    HttpError,
    /// No answer in time (504).
    Timeout,
    /// No answer at all (502).
    Unreachable,
    /// An answer over the cap (502, or cut).
    TooLarge,
    /// Refused by the budget (the app's or the reader's share): nothing sent.
    BudgetRefused,
    /// Not sent for another reason: no token, a refresh that failed, a bad path.
    NotSent,
    /// The consumer went away before its answer came (it may or may not
    /// have reached Withings).
    Abandoned,
}

impl Outcome {
    /// Every outcome, in the order the book counts them.
    pub const ALL: [Outcome; 11] = [
        Outcome::Ok,
        Outcome::InvalidToken,
        Outcome::RateLimited,
        Outcome::WithingsError,
        Outcome::HttpError,
        Outcome::Timeout,
        Outcome::Unreachable,
        Outcome::TooLarge,
        Outcome::BudgetRefused,
        Outcome::NotSent,
        Outcome::Abandoned,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::InvalidToken => "invalid_token",
            Outcome::RateLimited => "rate_limited",
            Outcome::WithingsError => "withings_error",
            Outcome::HttpError => "http_error",
            Outcome::Timeout => "timeout",
            Outcome::Unreachable => "unreachable",
            Outcome::TooLarge => "too_large",
            Outcome::BudgetRefused => "budget_refused",
            Outcome::NotSent => "not_sent",
            Outcome::Abandoned => "abandoned",
        }
    }

    /// The family of a Withings answer: its HTTP status, then its JSON's.
    pub fn of_answer(http: u16, withings: Option<i64>) -> Outcome {
        match (http, withings) {
            (200, None | Some(0)) => Outcome::Ok,
            (200, Some(crate::withings::proxy::INVALID_TOKEN_STATUS)) => Outcome::InvalidToken,
            (200, Some(601)) => Outcome::RateLimited,
            (200, Some(_)) => Outcome::WithingsError,
            _ => Outcome::HttpError,
        }
    }
}

/// One proxied call, as it ended.
#[derive(Debug, Clone)]
pub struct ProxyCall {
    /// `Caller::label`: a named reader, `(admin)` or `(reader)`.
    pub reader: String,
    pub account: AccountName,
    /// The Withings path (`measure`, `v2/user`), without the query.
    pub path: String,
    /// Withings' `action`, as the consumer sent it (bounded where it is a label).
    pub action: Option<String>,
    /// The HTTP status the consumer got.
    pub status: u16,
    /// The `status` of Withings' JSON, when known.
    pub withings_status: Option<i64>,
    pub outcome: Outcome,
    /// The time spent waiting for Withings (both calls when retried).
    pub upstream: Option<Duration>,
    /// The whole call, as the consumer saw it up to the answer's head.
    pub duration: Duration,
    /// A read refused for its token, sent again after a refresh.
    pub retried: bool,
    /// How long the call waited for the budget, when it did.
    pub budget_wait: Option<Duration>,
    /// The budget that refused it (`"app"`, `"reader"`), when one did.
    pub refused_by: Option<&'static str>,
}

/// Withings' actions that are labels of their own (metrics, the book);
/// any other is `other`, and a call without one `none`.
pub const ACTIONS: [&str; 14] = [
    "getmeas",
    "getactivity",
    "getintradayactivity",
    "getworkouts",
    "getsummary",
    "get",
    "getdevice",
    "getgoals",
    "list",
    "subscribe",
    "revoke",
    "update",
    "unlink",
    "getheartlist",
];

/// The bounded label of an action a consumer sent.
pub fn action_label(action: Option<&str>) -> &'static str {
    match action {
        None => "none",
        Some(action) => ACTIONS
            .iter()
            .find(|known| **known == action)
            .copied()
            .unwrap_or("other"),
    }
}

/// Records `call`: the audit line, the metrics, the book.
pub fn record(state: &AppState, call: &ProxyCall) {
    tracing::info!(target: "withings_token::audit", "{}", audit_line(call));
    state.metrics.record_proxy(call);
    state.usage.record(call, crate::clock::now());
}

/// `proxied call: reader=… account=… path=… action=… status=…
/// withings_status=… outcome=… duration_ms=… upstream_ms=… retried=…
/// budget_wait_ms=… budget_refused=…` (`-`: none), written into one
/// buffer: it is formatted on every call.
fn audit_line(call: &ProxyCall) -> String {
    let mut line = String::with_capacity(256);
    line.push_str("proxied call: reader=");
    push_word(&mut line, &call.reader);
    let _ = write!(line, " account={} path=", call.account);
    push_word(&mut line, &call.path);
    line.push_str(" action=");
    match call.action.as_deref() {
        Some(action) => push_word(&mut line, action),
        None => line.push('-'),
    }
    let _ = write!(line, " status={} withings_status=", call.status);
    push_or_dash(&mut line, call.withings_status);
    let _ = write!(
        line,
        " outcome={} duration_ms={} upstream_ms=",
        call.outcome.label(),
        call.duration.as_millis()
    );
    push_or_dash(&mut line, call.upstream.map(|d| d.as_millis()));
    let _ = write!(line, " retried={} budget_wait_ms=", call.retried);
    push_or_dash(&mut line, call.budget_wait.map(|d| d.as_millis()));
    let _ = write!(line, " budget_refused={}", call.refused_by.unwrap_or("-"));
    line
}

fn push_or_dash(line: &mut String, value: Option<impl std::fmt::Display>) {
    match value {
        Some(value) => {
            let _ = write!(line, "{value}");
        }
        None => line.push('-'),
    }
}

/// The longest value of the audit line a consumer chose.
const MAX_WORD: usize = 64;

/// `text` as it is when it is a plain word; else quoted and escaped (and
/// cut at [`MAX_WORD`] characters).
fn push_word(line: &mut String, text: &str) {
    let plain = |c: char| c.is_ascii_alphanumeric() || "._:/()-".contains(c);
    if !text.is_empty() && text.len() <= MAX_WORD && text.chars().all(plain) {
        line.push_str(text);
        return;
    }
    let cut: String = text.chars().take(MAX_WORD).collect();
    let _ = write!(line, "{cut:?}");
}

/// The minutes the book keeps: a day.
const DAY_MINUTES: i64 = 24 * 60;
const HOUR_MINUTES: i64 = 60;
/// How many actions a window lists.
const TOP_ACTIONS: usize = 5;

/// The calls of each (reader, account) by minute, for the last day.
#[derive(Default)]
pub struct Book {
    pairs: Mutex<BTreeMap<(String, AccountName), Ring>>,
}

/// One (reader, account)'s minutes, oldest first, at most a day of them.
#[derive(Default)]
struct Ring {
    minutes: VecDeque<(i64, Tally)>,
    last_call: Option<DateTime<Utc>>,
}

/// What a minute (or a window) counts: fixed arrays, not maps, so a day
/// of minutes of one reader and account stays a few hundred KiB.
#[derive(Debug, Default, Clone, PartialEq)]
struct Tally {
    calls: u64,
    /// By `Outcome::ALL`'s order.
    outcomes: [u32; Outcome::ALL.len()],
    /// By [`ACTIONS`]' order, then `other`, then `none`.
    actions: [u32; ACTION_LABELS],
    retried: u32,
    budget_waits: u32,
    refused_by_app: u32,
    refused_by_reader: u32,
    upstream_calls: u32,
    upstream_micros: u64,
    upstream_max_micros: u64,
}

/// The action labels a tally counts: [`ACTIONS`], `other`, `none`.
const ACTION_LABELS: usize = ACTIONS.len() + 2;

fn action_index(label: &str) -> usize {
    match label {
        "none" => ACTIONS.len() + 1,
        label => ACTIONS
            .iter()
            .position(|known| *known == label)
            .unwrap_or(ACTIONS.len()),
    }
}

fn action_at(index: usize) -> &'static str {
    ACTIONS
        .get(index)
        .copied()
        .unwrap_or(if index == ACTIONS.len() { "other" } else { "none" })
}

impl Book {
    /// Counts `call`, which ended `at`.
    pub fn record(&self, call: &ProxyCall, at: DateTime<Utc>) {
        let minute = minute_of(at);
        let mut pairs = locked(&self.pairs);
        let ring = pairs.entry((call.reader.clone(), call.account.clone())).or_default();
        ring.forget_before(minute);
        match ring.minutes.back_mut() {
            // A call that ended in an earlier minute than the newest kept
            // (a clock set back, a slow call) joins the newest.
            Some((last, tally)) if *last >= minute => tally.count(call),
            _ => {
                let mut tally = Tally::default();
                tally.count(call);
                ring.minutes.push_back((minute, tally));
            }
        }
        ring.last_call = Some(ring.last_call.map_or(at, |last| last.max(at)));
    }

    /// The last hour and day at `now` of every (reader, account) with a
    /// call in the last day (of `account` alone, when named).
    pub fn report(&self, now: DateTime<Utc>, account: Option<&AccountName>) -> UsageReport {
        let minute = minute_of(now);
        let mut pairs = locked(&self.pairs);
        pairs.retain(|_, ring| {
            ring.forget_before(minute);
            !ring.minutes.is_empty()
        });
        let usage = pairs
            .iter()
            .filter(|((_, name), _)| account.is_none_or(|wanted| wanted == name))
            .filter_map(|((reader, name), ring)| {
                Some(UsageRow {
                    reader: reader.clone(),
                    account: name.to_string(),
                    last_call: ring.last_call?,
                    last_hour: ring.window(minute, HOUR_MINUTES).window(),
                    last_day: ring.window(minute, DAY_MINUTES).window(),
                })
            })
            .collect();
        UsageReport { version: 1, usage }
    }
}

fn minute_of(at: DateTime<Utc>) -> i64 {
    at.timestamp().div_euclid(60)
}

impl Ring {
    /// Drops the minutes out of the day that ends with `minute`.
    fn forget_before(&mut self, minute: i64) {
        while self.minutes.front().is_some_and(|(at, _)| *at <= minute - DAY_MINUTES) {
            self.minutes.pop_front();
        }
    }

    /// The sum of the `span` minutes that end with `minute`.
    fn window(&self, minute: i64, span: i64) -> Tally {
        let mut sum = Tally::default();
        for (_, tally) in self.minutes.iter().filter(|(at, _)| *at > minute - span) {
            sum.add(tally);
        }
        sum
    }
}

impl Tally {
    fn count(&mut self, call: &ProxyCall) {
        self.calls += 1;
        if let Some(index) = Outcome::ALL.iter().position(|o| *o == call.outcome) {
            self.outcomes[index] += 1;
        }
        self.actions[action_index(action_label(call.action.as_deref()))] += 1;
        self.retried += u32::from(call.retried);
        self.budget_waits += u32::from(call.budget_wait.is_some());
        match call.refused_by {
            Some("app") => self.refused_by_app += 1,
            Some(_) => self.refused_by_reader += 1,
            None => {}
        }
        if let Some(upstream) = call.upstream {
            let micros = u64::try_from(upstream.as_micros()).unwrap_or(u64::MAX);
            self.upstream_calls += 1;
            self.upstream_micros = self.upstream_micros.saturating_add(micros);
            self.upstream_max_micros = self.upstream_max_micros.max(micros);
        }
    }

    fn add(&mut self, other: &Tally) {
        self.calls += other.calls;
        for (sum, n) in self.outcomes.iter_mut().zip(other.outcomes) {
            *sum = sum.saturating_add(n);
        }
        for (sum, n) in self.actions.iter_mut().zip(other.actions) {
            *sum = sum.saturating_add(n);
        }
        self.retried = self.retried.saturating_add(other.retried);
        self.budget_waits = self.budget_waits.saturating_add(other.budget_waits);
        self.refused_by_app = self.refused_by_app.saturating_add(other.refused_by_app);
        self.refused_by_reader = self.refused_by_reader.saturating_add(other.refused_by_reader);
        self.upstream_calls = self.upstream_calls.saturating_add(other.upstream_calls);
        self.upstream_micros = self.upstream_micros.saturating_add(other.upstream_micros);
        self.upstream_max_micros = self.upstream_max_micros.max(other.upstream_max_micros);
    }

    /// As `GET /admin/usage` shows it.
    fn window(&self) -> UsageWindow {
        let ok = u64::from(self.outcomes[0]);
        let mut actions: Vec<(&str, u64)> = (0..ACTION_LABELS)
            .filter(|&i| self.actions[i] > 0)
            .map(|i| (action_at(i), u64::from(self.actions[i])))
            .collect();
        // The most called first; ties by name.
        actions.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let top_actions = actions
            .into_iter()
            .take(TOP_ACTIONS)
            .map(|(action, calls)| ActionCount {
                action: action.to_owned(),
                calls,
            })
            .collect();
        let outcomes = Outcome::ALL
            .iter()
            .zip(self.outcomes)
            .filter(|(_, n)| *n > 0)
            .map(|(outcome, n)| (outcome.label().to_owned(), u64::from(n)))
            .collect();
        let tenths = |micros: u64| (micros as f64 / 100.0).round() / 10.0;
        let sent = u64::from(self.upstream_calls);
        UsageWindow {
            calls: self.calls,
            errors: self.calls - ok,
            outcomes,
            top_actions,
            retried: self.retried.into(),
            budget_waits: self.budget_waits.into(),
            budget_refusals: BudgetRefusals {
                app: self.refused_by_app.into(),
                reader: self.refused_by_reader.into(),
            },
            upstream: UpstreamTime {
                calls: sent,
                mean_ms: (sent > 0).then(|| tenths(self.upstream_micros / sent)),
                max_ms: (sent > 0).then(|| tenths(self.upstream_max_micros)),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_day_of_one_reader_and_account_is_a_few_hundred_kib_at_most() {
        let minute = std::mem::size_of::<(i64, Tally)>();
        assert!(minute <= 176, "{minute} bytes a minute");
        assert!(minute * DAY_MINUTES as usize <= 256 * 1024);
    }

    fn call(reader: &str, account: &str, action: Option<&str>, outcome: Outcome) -> ProxyCall {
        ProxyCall {
            reader: reader.to_owned(),
            account: AccountName::parse(account).unwrap(),
            path: "measure".to_owned(),
            action: action.map(str::to_owned),
            status: 200,
            withings_status: Some(0),
            outcome,
            upstream: Some(Duration::from_millis(10)),
            duration: Duration::from_millis(12),
            retried: false,
            budget_wait: None,
            refused_by: None,
        }
    }

    fn ok(action: &str) -> ProxyCall {
        call("mcp", "default", Some(action), Outcome::Ok)
    }

    fn noon() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-12-07T12:00:30Z").unwrap().to_utc()
    }

    fn hours(h: i64) -> chrono::Duration {
        chrono::Duration::hours(h)
    }

    #[test]
    fn a_call_two_hours_ago_counts_in_the_day_and_one_a_day_and_more_ago_in_neither() {
        let book = Book::default();
        let now = noon();
        book.record(&ok("getmeas"), now - hours(25));
        book.record(&ok("getmeas"), now - hours(2));
        book.record(&ok("getdevice"), now - chrono::Duration::minutes(59));
        let report = book.report(now, None);
        let [row] = report.usage.as_slice() else {
            panic!("one row: {report:?}")
        };
        assert_eq!((row.reader.as_str(), row.account.as_str()), ("mcp", "default"));
        assert_eq!(row.last_hour.calls, 1);
        assert_eq!(row.last_day.calls, 2);
        assert_eq!(row.last_call, now - chrono::Duration::minutes(59));
        // A day later nothing is left, and the pair is gone.
        assert_eq!(book.report(now + hours(24), None).usage, []);
        assert!(locked(&book.pairs).is_empty());
    }

    #[test]
    fn the_hour_is_the_last_sixty_minutes_and_the_day_the_last_1440() {
        let book = Book::default();
        let now = noon();
        // 12:00:30: the minute 11:01 is the hour's first, 11:00 is out.
        book.record(&ok("getmeas"), now - chrono::Duration::seconds(60 * 60 + 1));
        book.record(&ok("getmeas"), now - chrono::Duration::seconds(59 * 60 + 30));
        let day = book.report(now, None).usage[0].clone();
        assert_eq!((day.last_hour.calls, day.last_day.calls), (1, 2));
        let just_in = now - chrono::Duration::seconds(DAY_MINUTES * 60 - 30);
        let book = Book::default();
        book.record(&ok("getmeas"), just_in - chrono::Duration::minutes(1));
        book.record(&ok("getmeas"), just_in);
        assert_eq!(book.report(now, None).usage[0].last_day.calls, 1);
    }

    #[test]
    fn the_ring_keeps_at_most_a_day_of_minutes() {
        let book = Book::default();
        let start = noon() - hours(30);
        for minute in 0..=(30 * 60) {
            book.record(&ok("getmeas"), start + chrono::Duration::minutes(minute));
        }
        let pairs = locked(&book.pairs);
        let ring = pairs.values().next().unwrap();
        assert_eq!(ring.minutes.len(), 1440);
        drop(pairs);
        let report = book.report(noon(), None);
        assert_eq!(report.usage[0].last_day.calls, 1440);
        assert_eq!(report.usage[0].last_hour.calls, 60);
    }

    #[test]
    fn a_window_counts_errors_outcomes_retries_waits_refusals_and_upstream_time() {
        let book = Book::default();
        let now = noon();
        let mut retried = ok("getmeas");
        retried.retried = true;
        retried.upstream = Some(Duration::from_micros(30_250));
        let mut waited = ok("getmeas");
        waited.budget_wait = Some(Duration::from_millis(400));
        let mut refused = call("mcp", "default", Some("getmeas"), Outcome::BudgetRefused);
        refused.upstream = None;
        refused.refused_by = Some("reader");
        let mut refused_by_app = refused.clone();
        refused_by_app.refused_by = Some("app");
        let invalid = call("mcp", "default", Some("subscribe"), Outcome::InvalidToken);
        for call in [&retried, &waited, &refused, &refused_by_app, &invalid] {
            book.record(call, now);
        }
        let hour = book.report(now, None).usage[0].last_hour.clone();
        assert_eq!((hour.calls, hour.errors, hour.retried, hour.budget_waits), (5, 3, 1, 1));
        assert_eq!(
            hour.outcomes,
            BTreeMap::from([
                ("budget_refused".to_owned(), 2),
                ("invalid_token".to_owned(), 1),
                ("ok".to_owned(), 2)
            ])
        );
        assert_eq!(hour.budget_refusals, BudgetRefusals { app: 1, reader: 1 });
        // 30.25 ms, 10 ms and 10 ms: three calls sent.
        assert_eq!(
            hour.upstream,
            UpstreamTime {
                calls: 3,
                mean_ms: Some(16.8),
                max_ms: Some(30.3)
            }
        );
    }

    #[test]
    fn top_actions_are_the_five_most_called_ties_by_name() {
        let book = Book::default();
        let now = noon();
        let sent = [
            ("getdevice", 2),
            ("getmeas", 4),
            ("getactivity", 2),
            ("list", 1),
            ("getworkouts", 3),
            ("revoke", 1),
        ];
        for (action, times) in sent {
            for _ in 0..times {
                book.record(&ok(action), now);
            }
        }
        let top = &book.report(now, None).usage[0].last_day.top_actions;
        let listed: Vec<(&str, u64)> = top.iter().map(|a| (a.action.as_str(), a.calls)).collect();
        assert_eq!(
            listed,
            [
                ("getmeas", 4),
                ("getworkouts", 3),
                ("getactivity", 2),
                ("getdevice", 2),
                ("list", 1)
            ]
        );
    }

    #[test]
    fn any_text_a_consumer_sends_as_action_is_one_of_a_fixed_list_of_labels() {
        assert_eq!(action_label(Some("getmeas")), "getmeas");
        assert_eq!(action_label(Some("subscribe")), "subscribe");
        assert_eq!(action_label(None), "none");
        let book = Book::default();
        for n in 0..500 {
            book.record(&ok(&format!("made-up-{n}")), noon());
        }
        for odd in ["GETMEAS", "getmeas ", "", "getmeas\nX"] {
            assert_eq!(action_label(Some(odd)), "other", "{odd:?}");
        }
        let top = &book.report(noon(), None).usage[0].last_day.top_actions;
        assert_eq!(
            top,
            &[ActionCount {
                action: "other".into(),
                calls: 500
            }]
        );
    }

    #[test]
    fn rows_are_by_reader_then_account_and_one_account_may_be_asked_for() {
        let book = Book::default();
        let now = noon();
        book.record(&call("mcp", "default", Some("getmeas"), Outcome::Ok), now);
        book.record(&call("(admin)", "bob", Some("getmeas"), Outcome::Ok), now);
        book.record(&call("mcp", "bob", Some("getmeas"), Outcome::Ok), now);
        let pairs = |report: UsageReport| -> Vec<(String, String)> {
            report.usage.into_iter().map(|r| (r.reader, r.account)).collect()
        };
        let all = pairs(book.report(now, None));
        let of = |r: &str, a: &str| (r.to_owned(), a.to_owned());
        assert_eq!(all, [of("(admin)", "bob"), of("mcp", "bob"), of("mcp", "default")]);
        let bob = AccountName::parse("bob").unwrap();
        assert_eq!(
            pairs(book.report(now, Some(&bob))),
            [of("(admin)", "bob"), of("mcp", "bob")]
        );
    }

    #[test]
    fn the_audit_line_names_the_call_and_quotes_what_the_consumer_chose() {
        let mut sent = ok("getmeas");
        sent.budget_wait = Some(Duration::from_millis(250));
        assert_eq!(
            audit_line(&sent),
            "proxied call: reader=mcp account=default path=measure action=getmeas status=200 withings_status=0 \
outcome=ok duration_ms=12 upstream_ms=10 retried=false budget_wait_ms=250 budget_refused=-"
        );
        let mut odd = call("mcp", "default", Some("getmeas outcome=ok"), Outcome::WithingsError);
        odd.withings_status = None;
        odd.upstream = None;
        let line = audit_line(&odd);
        assert!(
            line.contains(" action=\"getmeas outcome=ok\" status=200 withings_status=- outcome=withings_error "),
            "{line}"
        );
        assert!(line.contains(" upstream_ms=- "), "{line}");
    }
}
