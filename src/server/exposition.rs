//! The two texts `GET /metrics` answers in. `prometheus-client` writes
//! OpenMetrics 1.0, which Prometheus asks for by name in `Accept`; every
//! other scraper (promtool, agents that read only the classic format,
//! curl) gets the classic text format 0.0.4, made from the same text by
//! [`to_classic`], so both always say the same numbers.

use std::collections::HashMap;

/// The format of one answer, chosen by the request's `Accept`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exposition {
    OpenMetrics,
    Classic,
}

impl Exposition {
    /// OpenMetrics when `Accept` names `application/openmetrics-text`
    /// (with any version, and a `q` above 0); else the classic format,
    /// which a scraper that names nothing expects.
    pub fn negotiate(accept: Option<&str>) -> Exposition {
        let asks_openmetrics = accept.into_iter().flat_map(|a| a.split(',')).any(|range| {
            let mut parts = range.split(';').map(str::trim);
            let media_type = parts.next().unwrap_or_default();
            let refused = parts.any(|p| p.parse::<Quality>().is_ok_and(|q| q.0 == 0.0));
            media_type.eq_ignore_ascii_case("application/openmetrics-text") && !refused
        });
        if asks_openmetrics {
            Exposition::OpenMetrics
        } else {
            Exposition::Classic
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Exposition::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Exposition::Classic => "text/plain; version=0.0.4; charset=utf-8",
        }
    }
}

/// A `q=` parameter of an `Accept` range.
struct Quality(f64);

impl std::str::FromStr for Quality {
    type Err = ();

    fn from_str(parameter: &str) -> Result<Quality, ()> {
        let (name, value) = parameter.split_once('=').ok_or(())?;
        if !name.eq_ignore_ascii_case("q") {
            return Err(());
        }
        value.parse().map(Quality).map_err(|_| ())
    }
}

/// The classic text format of an OpenMetrics text as `prometheus-client`
/// writes it. What the classic format lacks goes (`# EOF`, `# UNIT`,
/// exemplars, the `_created` samples); a counter family `foo`, whose
/// samples are `foo_total`, is declared as `foo_total`; an info family
/// `foo` (sample `foo_info{…} 1`) becomes the gauge `foo_info`; an unknown
/// one is untyped; gauges and histograms stay as they are.
pub fn to_classic(openmetrics: &str) -> String {
    let types: HashMap<&str, &str> = openmetrics
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE ")?.split_once(' '))
        .collect();
    let mut classic = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        let converted = match line.strip_prefix("# ") {
            Some(comment) => classic_comment(comment, &types),
            None => classic_sample(line, &types),
        };
        if let Some(converted) = converted {
            classic.push_str(&converted);
            classic.push('\n');
        }
    }
    classic
}

/// A `# HELP` or `# TYPE` line under its classic name; `None` for what the
/// classic format has no place for.
fn classic_comment(comment: &str, types: &HashMap<&str, &str>) -> Option<String> {
    let (keyword, rest) = comment.split_once(' ').unwrap_or((comment, ""));
    let (family, text) = rest.split_once(' ').unwrap_or((rest, ""));
    let name = match types.get(family).copied() {
        Some("counter") => format!("{family}_total"),
        Some("info") => format!("{family}_info"),
        _ => family.to_owned(),
    };
    match keyword {
        "HELP" => Some(format!("# HELP {name} {text}")),
        "TYPE" => Some(format!("# TYPE {name} {}", classic_type(text))),
        _ => None,
    }
}

/// The classic name of an OpenMetrics type.
fn classic_type(openmetrics: &str) -> &str {
    match openmetrics {
        "info" => "gauge",
        "unknown" => "untyped",
        kind => kind,
    }
}

/// A sample without its exemplar; `None` for a `_created` sample.
fn classic_sample(line: &str, types: &HashMap<&str, &str>) -> Option<String> {
    let name_end = line.find(['{', ' ']).unwrap_or(line.len());
    let created_of = line[..name_end].strip_suffix("_created");
    let family_kind = created_of.and_then(|family| types.get(family)).copied();
    if matches!(family_kind, Some("counter" | "histogram" | "summary")) {
        return None;
    }
    let labels_end = if line[name_end..].starts_with('{') {
        name_end + labels_length(&line[name_end..])
    } else {
        name_end
    };
    let kept = match line[labels_end..].find(" # ") {
        Some(exemplar) => &line[..labels_end + exemplar],
        None => line,
    };
    Some(kept.to_owned())
}

/// The length of a `{…}` label set, closing brace included: a `}` or a
/// ` # ` inside a quoted value is part of the value.
fn labels_length(labels: &str) -> usize {
    let (mut quoted, mut escaped) = (false, false);
    for (at, c) in labels.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '}' if !quoted => return at + 1,
            _ => {}
        }
    }
    labels.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openmetrics_only_when_accept_names_it() {
        let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        for (accept, expected) in [
            (Some(prometheus), Exposition::OpenMetrics),
            (Some("Application/OpenMetrics-Text"), Exposition::OpenMetrics),
            (
                Some("text/plain, application/openmetrics-text; q=0.3"),
                Exposition::OpenMetrics,
            ),
            (Some("application/openmetrics-text; q=0"), Exposition::Classic),
            (
                Some("application/openmetrics-text;q=0.0, text/plain"),
                Exposition::Classic,
            ),
            (Some("text/plain;version=0.0.4"), Exposition::Classic),
            (Some("*/*"), Exposition::Classic),
            (Some(""), Exposition::Classic),
            (None, Exposition::Classic),
        ] {
            assert_eq!(Exposition::negotiate(accept), expected, "{accept:?}");
        }
    }

    #[test]
    fn the_content_types_name_each_format_and_version() {
        assert_eq!(
            Exposition::OpenMetrics.content_type(),
            "application/openmetrics-text; version=1.0.0; charset=utf-8"
        );
        assert_eq!(
            Exposition::Classic.content_type(),
            "text/plain; version=0.0.4; charset=utf-8"
        );
    }

    #[test]
    fn counters_info_unit_created_exemplars_and_eof_become_classic() {
        let openmetrics = concat!(
            "# HELP jobs Jobs by result.\n",
            "# TYPE jobs counter\n",
            "jobs_total{result=\"ok\"} 2\n",
            "jobs_created{result=\"ok\"} 1700000000.0\n",
            "jobs_total{result=\"odd # {x} }\"} 1 # {trace_id=\"a\"} 1.0 1700000000.0\n",
            "# HELP build The running build.\n",
            "# TYPE build info\n",
            "build_info{version=\"1.2.3\"} 1\n",
            "# HELP wait_seconds Time waited.\n",
            "# TYPE wait_seconds histogram\n",
            "# UNIT wait_seconds seconds\n",
            "wait_seconds_sum 0.5\n",
            "wait_seconds_count 1\n",
            "wait_seconds_bucket{le=\"1.0\"} 1 # {id=\"b\"} 0.5\n",
            "wait_seconds_bucket{le=\"+Inf\"} 1\n",
            "# HELP expiry_timestamp_seconds Unix time of expiry.\n",
            "# TYPE expiry_timestamp_seconds gauge\n",
            "expiry_timestamp_seconds 1700000000\n",
            "expiry_timestamp_seconds{account=\"alice\"} 1700000001\n",
            "# HELP odd Whatever it is.\n",
            "# TYPE odd unknown\n",
            "odd 3\n",
            "# EOF\n",
        );
        assert_eq!(
            to_classic(openmetrics),
            concat!(
                "# HELP jobs_total Jobs by result.\n",
                "# TYPE jobs_total counter\n",
                "jobs_total{result=\"ok\"} 2\n",
                "jobs_total{result=\"odd # {x} }\"} 1\n",
                "# HELP build_info The running build.\n",
                "# TYPE build_info gauge\n",
                "build_info{version=\"1.2.3\"} 1\n",
                "# HELP wait_seconds Time waited.\n",
                "# TYPE wait_seconds histogram\n",
                "wait_seconds_sum 0.5\n",
                "wait_seconds_count 1\n",
                "wait_seconds_bucket{le=\"1.0\"} 1\n",
                "wait_seconds_bucket{le=\"+Inf\"} 1\n",
                "# HELP expiry_timestamp_seconds Unix time of expiry.\n",
                "# TYPE expiry_timestamp_seconds gauge\n",
                "expiry_timestamp_seconds 1700000000\n",
                "expiry_timestamp_seconds{account=\"alice\"} 1700000001\n",
                "# HELP odd Whatever it is.\n",
                "# TYPE odd untyped\n",
                "odd 3\n",
            )
        );
    }

    #[test]
    fn a_family_without_samples_keeps_its_classic_declaration() {
        assert_eq!(
            to_classic("# HELP jobs Jobs.\n# TYPE jobs counter\n# EOF\n"),
            "# HELP jobs_total Jobs.\n# TYPE jobs_total counter\n"
        );
    }
}
