//! Durations as people write them (`30s`, `500ms`, `1h30m`): the one
//! syntax of the duration flags, the duration settings and the API's
//! `min_ttl`, with the bound of a refresh buffer.

use std::time::Duration;

/// The longest refresh buffer (`--buffer`, `WITHINGS_REFRESH_BUFFER`) and
/// `--min-ttl`: beyond it a value is a typo (`30d` for `30m`), and larger
/// ones would overflow the date arithmetic done with them.
pub const MAX_BUFFER: Duration = Duration::from_secs(366 * 86_400);

/// `--buffer`, `--min-ttl` and `WITHINGS_REFRESH_BUFFER`.
pub fn parse_buffer(text: &str) -> Result<Duration, String> {
    bounded(text, MAX_BUFFER, "366d")
}

/// [`parse_duration`], refused beyond `max` (spelled `max_text`).
pub fn bounded(text: &str, max: Duration, max_text: &str) -> Result<Duration, String> {
    let d = parse_duration(text)?;
    if d > max {
        return Err(format!("`{}` is too long; at most {max_text} is accepted", text.trim()));
    }
    Ok(d)
}

/// Parses `30s`, `500ms`, `90m`, `24h`, `2d`, a bare number of seconds, or
/// parts of these one after another (`1h30m`, `4m57s`: as durations are
/// printed).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let not_one = || format!("`{text}` is not a duration; use e.g. 30s, 500ms, 90m, 24h, 1h30m");
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        let secs: u64 = text.parse().map_err(|_| format!("`{text}` is too long"))?;
        return secs
            .checked_mul(1000)
            .map(Duration::from_millis)
            .ok_or_else(|| format!("`{text}` is too long"));
    }
    let mut rest = text;
    let mut total_ms: u64 = 0;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        let (number, after) = rest.split_at(digits);
        let unit_len = after.find(|c: char| c.is_ascii_digit()).unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        let n: u64 = number.parse().map_err(|_| not_one())?;
        let per_unit_ms: u64 = match unit.trim() {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "" => return Err(not_one()),
            other => return Err(format!("unknown unit `{other}` in `{text}`; use ms, s, m, h or d")),
        };
        let part = n
            .checked_mul(per_unit_ms)
            .ok_or_else(|| format!("`{text}` is too long"))?;
        total_ms = total_ms
            .checked_add(part)
            .ok_or_else(|| format!("`{text}` is too long"))?;
        rest = next;
    }
    if text.is_empty() {
        return Err(not_one());
    }
    Ok(Duration::from_millis(total_ms))
}

/// `7d`, `1h30m`, `0s`: as [`parse_duration`] reads it (whole seconds).
pub fn spelled(d: Duration) -> String {
    let mut left = d.as_secs();
    if left == 0 {
        return "0s".to_owned();
    }
    let mut text = String::new();
    for (unit, secs) in [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] {
        if left >= secs {
            text.push_str(&format!("{}{unit}", left / secs));
            left %= secs;
        }
    }
    text
}

/// `300 ms`, `2 s`, `1.5 s`: as the user would have written it.
pub fn humanize(d: Duration) -> String {
    if d.as_millis() < 1000 && !d.is_zero() {
        format!("{} ms", d.as_millis())
    } else if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        // 2.9996 s rounds to "3.000": no "3. s".
        let text = format!("{:.3}", d.as_secs_f64());
        format!("{} s", text.trim_end_matches('0').trim_end_matches('.'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_duration_rounded_up_to_whole_seconds_has_no_dangling_point() {
        assert_eq!(humanize(Duration::from_micros(2_999_600)), "3 s");
        assert_eq!(humanize(Duration::from_millis(2_500)), "2.5 s");
    }

    #[test]
    fn durations_parse_in_every_unit() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("90m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("24h"), Ok(Duration::from_secs(86400)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        // As durations are printed.
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("4m57s"), Ok(Duration::from_secs(297)));
        assert_eq!(parse_duration("1h 30m"), Ok(Duration::from_secs(5400)));
    }

    #[test]
    fn malformed_durations_are_refused() {
        for bad in [
            "",
            "s",
            "1y",
            "-1s",
            "1.5h",
            "abc",
            "1h30",
            "1h-5m",
            "99999999999999999999d",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations_read_as_the_user_wrote_them() {
        let cases = [
            (300, "300 ms"),
            (500, "500 ms"),
            (2000, "2 s"),
            (1500, "1.5 s"),
            (0, "0 s"),
            (61_250, "61.25 s"),
        ];
        for (ms, text) in cases {
            assert_eq!(humanize(Duration::from_millis(ms)), text);
        }
    }
}
