//! The settings whose text is checked as soon as it is read, by the same
//! rules whether it comes from a variable or from the config file (which
//! checks every value it holds with [`value_problem`], so that its errors
//! name the line).

use std::time::Duration;

use super::Region;
use crate::budget::{DEFAULT_PER_MINUTE, MAX_PER_MINUTE, MIN_PER_MINUTE};

/// Why a setting's text is refused, and what to do.
pub(super) struct Refused {
    pub why: String,
    pub action: String,
}

impl Refused {
    fn new(why: impl Into<String>, action: impl Into<String>) -> Refused {
        Refused {
            why: why.into(),
            action: action.into(),
        }
    }

    /// The configuration error of a variable set to a refused text.
    pub fn of_variable(self, name: &str) -> crate::error::Error {
        crate::error::Error::config(format!("{name} is invalid: {}", self.why), self.action)
    }
}

/// Why `text` cannot be `variable`'s value, and what to do; `None` when it
/// can (or when the setting is checked only where it is used).
pub fn value_problem(variable: &str, text: &str) -> Option<(String, String)> {
    let refused = match variable {
        "WITHINGS_REFRESH_BUFFER" => parse_buffer(text).err(),
        "WITHINGS_TOKEN_LEASE_TTL" => parse_lease_ttl(text).err(),
        "WITHINGS_TOKEN_UPSTREAM_BUDGET" => parse_budget(text).err(),
        "WITHINGS_REGION" => parse_region(text).err(),
        "WITHINGS_TOKEN_REFRESH_AT_LEAST" => parse_refresh_at_least(text).err(),
        "WITHINGS_TOKEN_JITTER" => parse_jitter(text).err(),
        "WITHINGS_TOKEN_WEBHOOK_FORMAT" => parse_webhook_format(text).err(),
        "WITHINGS_TOKEN_NOTIFY_TIMEOUT" => parse_notify_timeout(text).err(),
        "WITHINGS_TOKEN_REFRESH_TOKEN_AGING" => parse_aging_after(text).err(),
        _ => None,
    }?;
    Some((refused.why, refused.action))
}

/// `WITHINGS_REFRESH_BUFFER` (`--buffer` is bounded alike by clap).
pub(super) fn parse_buffer(text: &str) -> Result<Duration, Refused> {
    crate::duration::parse_buffer(text)
        .map_err(|why| Refused::new(why, "set it like `24h`, `90m` or `3600s` (at most 366d)"))
}

/// `WITHINGS_TOKEN_LEASE_TTL`, between 1 s and 10 min.
pub(super) fn parse_lease_ttl(text: &str) -> Result<Duration, Refused> {
    crate::duration::parse_duration(text)
        .ok()
        .filter(|d| (Duration::from_secs(1)..=Duration::from_secs(600)).contains(d))
        .ok_or_else(|| {
            Refused::new(
                format!("`{}` is not a duration from 1s to 10m", text.trim()),
                "set it between 1s and 10m, like `15s` (the default)",
            )
        })
}

/// `WITHINGS_TOKEN_UPSTREAM_BUDGET`, within the budget's bounds.
pub(super) fn parse_budget(text: &str) -> Result<u32, Refused> {
    text.trim()
        .parse::<u32>()
        .ok()
        .filter(|n| (MIN_PER_MINUTE..=MAX_PER_MINUTE).contains(n))
        .ok_or_else(|| {
            Refused::new(
                format!("`{}` is not a number from {MIN_PER_MINUTE} to {MAX_PER_MINUTE}", text.trim()),
                format!("set it to a number of requests a minute from {MIN_PER_MINUTE} to {MAX_PER_MINUTE}, like {DEFAULT_PER_MINUTE} (the default, Withings' own limit)"),
            )
        })
}

/// `WITHINGS_REGION`: `eu` or `us`, in any case.
pub(super) fn parse_region(text: &str) -> Result<Region, Refused> {
    match text.trim().to_ascii_lowercase().as_str() {
        "eu" => Ok(Region::Eu),
        "us" => Ok(Region::Us),
        _ => Err(Refused::new(
            "must be `eu` or `us`",
            "set WITHINGS_REGION=eu (the default) or us (US-hosted HIPAA accounts), or remove it",
        )),
    }
}

/// Refresh an idle account at least this often by default: a week keeps
/// its refresh token far from Withings' one-year limit at the cost of one
/// request a week.
pub const DEFAULT_REFRESH_AT_LEAST: Duration = Duration::from_secs(7 * 86_400);

/// The bounds of `refresh_at_least`: more often than hourly is what the
/// buffer is for; beyond 300 days a refresh token nears its year.
const MIN_REFRESH_AT_LEAST: Duration = Duration::from_secs(3600);
const MAX_REFRESH_AT_LEAST: Duration = Duration::from_secs(300 * 86_400);

/// `WITHINGS_TOKEN_REFRESH_AT_LEAST`: `0s` for never, else 1 h to 300 d.
pub(super) fn parse_refresh_at_least(text: &str) -> Result<Option<Duration>, Refused> {
    let refused = || {
        Refused::new(
            format!("`{}` is not `0s` or a duration from 1h to 300d", text.trim()),
            "set it like `7d` (the default) or `3d`, or `0s` to refresh only near expiry",
        )
    };
    let d = crate::duration::parse_duration(text).map_err(|_| refused())?;
    if d.is_zero() {
        return Ok(None);
    }
    if (MIN_REFRESH_AT_LEAST..=MAX_REFRESH_AT_LEAST).contains(&d) {
        Ok(Some(d))
    } else {
        Err(refused())
    }
}

/// The longest jitter: spreading refreshes over more than a day only
/// delays them.
const MAX_JITTER: Duration = Duration::from_secs(86_400);

/// `WITHINGS_TOKEN_JITTER`: at most a day.
pub(super) fn parse_jitter(text: &str) -> Result<Duration, Refused> {
    crate::duration::parse_duration(text)
        .ok()
        .filter(|d| *d <= MAX_JITTER)
        .ok_or_else(|| {
            Refused::new(
                format!("`{}` is not a duration of at most 1d", text.trim()),
                "set it like `10m`, or `0s` (the default) for none",
            )
        })
}

/// `WITHINGS_TOKEN_WEBHOOK_FORMAT`: what a webhook's body is.
pub(super) fn parse_webhook_format(text: &str) -> Result<super::WebhookFormat, Refused> {
    use super::WebhookFormat;
    match text.trim().to_ascii_lowercase().as_str() {
        "json" => Ok(WebhookFormat::Json),
        "slack" => Ok(WebhookFormat::Slack),
        "discord" => Ok(WebhookFormat::Discord),
        "text" => Ok(WebhookFormat::Text),
        _ => Err(Refused::new(
            format!(
                "`{}` is not `json`, `slack`, `discord` or `text`",
                crate::redact::visible(text.trim())
            ),
            "set it to `json` (the default: the event itself), `slack` or `discord` (an incoming webhook's message), or `text` (ntfy and the like)",
        )),
    }
}

/// The longest a CLI run may be told to wait for its deliveries.
const MAX_NOTIFY_TIMEOUT: Duration = Duration::from_secs(120);

/// `--notify-timeout`, by the variable's rule, as clap takes an error.
pub fn parse_notify_timeout_flag(text: &str) -> Result<Duration, String> {
    parse_notify_timeout(text).map_err(|refused| refused.why)
}

/// `WITHINGS_TOKEN_NOTIFY_TIMEOUT` (and `--notify-timeout`): 0 s to 2 min.
pub(super) fn parse_notify_timeout(text: &str) -> Result<Duration, Refused> {
    crate::duration::parse_duration(text)
        .ok()
        .filter(|d| *d <= MAX_NOTIFY_TIMEOUT)
        .ok_or_else(|| {
            Refused::new(
                format!(
                    "`{}` is not a duration of at most 2m",
                    crate::redact::visible(text.trim())
                ),
                "set it like `5s` (the default), or `0s` to leave undelivered events for the next run",
            )
        })
}

/// `WITHINGS_TOKEN_REFRESH_TOKEN_AGING`: 1 d to 360 d (Withings ends a
/// refresh token after a year).
pub(super) fn parse_aging_after(text: &str) -> Result<Duration, Refused> {
    crate::duration::parse_duration(text)
        .ok()
        .filter(|d| (Duration::from_secs(86_400)..=Duration::from_secs(360 * 86_400)).contains(d))
        .ok_or_else(|| {
            Refused::new(
                format!(
                    "`{}` is not a duration from 1d to 360d",
                    crate::redact::visible(text.trim())
                ),
                "set it like `300d` (the default) or `180d`",
            )
        })
}
