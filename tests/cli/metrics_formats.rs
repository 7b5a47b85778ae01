//! `/metrics` in both formats, read by the parsers of other projects:
//! Prometheus' own `promtool check metrics` (the classic text format) on
//! the default answer, and the Python client's OpenMetrics parser on the
//! answer to an `Accept` that asks for OpenMetrics. `bash .ci/test`
//! installs both; a missing one fails the test, saying so.

use crate::support::*;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use wiremock::matchers::{method, path};

const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

const PROMTOOL_MISSING: &str = "promtool is not installed: `bash .ci/test` installs it on Debian with root or sudo; else `sudo apt-get install prometheus` (Debian, Ubuntu) or `brew install prometheus` (macOS)";

const OPENMETRICS_PARSER_MISSING: &str = "python3's prometheus_client is not installed: `bash .ci/test` installs it; else `python3 -m pip install --user prometheus_client`";

/// Lists each family the parser read: `name type samples`, sorted.
const LIST_OPENMETRICS_FAMILIES: &str = "
import sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse
rows = sorted(f'{f.name} {f.type} {len(f.samples)}' for f in parse(sys.stdin.read()))
print('\\n'.join(rows))
";

/// Runs `program ARGS` with `input` on stdin; `missing` when it cannot start.
fn run_with_input(program: &str, args: &[&str], input: &str, missing: &str) -> Output {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{missing} ({program}: {e})"));
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

const SCRIPT_TOKEN: &str = "test-script-reader-token-0123456789";

/// A server whose every family but the budget's waits has samples: it
/// refreshed (its env file copy updated), brokered a token, proxied a
/// call, refused the reader `script` an account and then its budget.
fn given_a_server_with_samples() -> (Upstream, TestEnv, ServeProcess) {
    let withings = withings_rotating(OLD_REFRESH);
    withings.mount(
        Mock::given(method("POST"))
            .and(path("/measure"))
            .respond_with(ResponseTemplate::new(200).set_body_raw("{\"status\":0,\"body\":{}}", "application/json")),
    );
    let mut env = given_fresh_server_user(&withings.uri());
    let config = env.home().join("config.toml");
    let readers = format!(
        "[reader.script]\nsha256 = \"{}\"\naccounts = [\"default\"]\nbudget = \"1/min\"\n",
        crate::serve_accounts::sha256_hex(SCRIPT_TOKEN)
    );
    std::fs::write(&config, readers).unwrap();
    env.set("WITHINGS_TOKEN_CONFIG", config.display().to_string());
    let env_file = env.write_env_file(&format!("WITHINGS_REFRESH_TOKEN={OLD_REFRESH}\n"));
    let server = env.serve(&["--check-interval", "1h", "--env-file", &env_file.display().to_string()]);
    let refreshed = server.admin_post("/admin/token/refresh", Some(r#"{"update_railway": false}"#));
    assert_eq!(refreshed.status, 200, "{refreshed:?}");
    assert_eq!(refreshed.json()["env_file"], "updated", "{refreshed:?}");
    assert_eq!(broker(&server).status, 200);
    let script = format!("Bearer {SCRIPT_TOKEN}");
    let refused = server.get("/v1/access-token?account=alice", &[("Authorization", &script)]);
    assert_eq!(refused.status, 403, "{refused:?}");
    let getmeas = |bearer: &str| {
        let headers = [
            ("Authorization", bearer),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ];
        server
            .post("/v1/withings/measure?action=getmeas", &headers, Some("meastype=1"))
            .status
    };
    assert_eq!(getmeas(&format!("Bearer {READER_TOKEN}")), 200);
    assert_eq!(getmeas(&script), 200);
    assert_eq!(getmeas(&script), 429, "script's budget (1/min) is spent");
    (withings, env, server)
}

#[test]
fn the_default_answer_is_the_classic_text_format_promtool_accepts() {
    let (_withings, _env, server) = given_a_server_with_samples();
    for accept in [None, Some("text/plain;version=0.0.4"), Some("*/*")] {
        let headers: Vec<(&str, &str)> = accept.iter().map(|a| ("Accept", *a)).collect();
        let answer = server.get("/metrics", &headers);
        assert_eq!(answer.status, 200, "{answer:?}");
        assert_eq!(
            answer.header("content-type"),
            Some("text/plain; version=0.0.4; charset=utf-8"),
            "{accept:?}"
        );
        assert_eq!(answer.header("vary"), Some("accept"), "one URL, two formats");
        let checked = run_with_input("promtool", &["check", "metrics"], &answer.body, PROMTOOL_MISSING);
        assert_eq!(
            (
                checked.status.code(),
                String::from_utf8_lossy(&checked.stdout).as_ref(),
                String::from_utf8_lossy(&checked.stderr).as_ref()
            ),
            (Some(0), "", ""),
            "promtool on\n{}",
            answer.body
        );
        for line in [
            "# TYPE withings_token_refresh_total counter",
            "withings_token_refresh_total{result=\"success\"} 1",
            "# TYPE withings_token_build_info gauge",
            "# TYPE withings_token_refresh_duration_seconds histogram",
            "withings_token_proxy_upstream_duration_seconds_count 2",
            "withings_token_copy_push_total{copy=\"env_file\",result=\"updated\"} 1",
            "withings_token_proxy_budget_refusals_total{reader=\"script\",budget=\"reader\"} 1",
        ] {
            assert!(
                answer.body.lines().any(|l| l == line),
                "{line} missing from\n{}",
                answer.body
            );
        }
        assert!(!answer.body.contains("# EOF"), "{}", answer.body);
    }
}

#[test]
fn an_accept_that_asks_for_openmetrics_gets_it_whole_and_parseable() {
    let (_withings, _env, server) = given_a_server_with_samples();
    let answer = server.get("/metrics", &[("Accept", PROMETHEUS_ACCEPT)]);
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(
        answer.header("content-type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    assert!(answer.body.ends_with("# EOF\n"), "{}", answer.body);
    let parsed = run_with_input(
        "python3",
        &["-c", LIST_OPENMETRICS_FAMILIES],
        &answer.body,
        OPENMETRICS_PARSER_MISSING,
    );
    let stderr = String::from_utf8_lossy(&parsed.stderr);
    assert!(
        !stderr.contains("No module named 'prometheus_client'"),
        "{OPENMETRICS_PARSER_MISSING}"
    );
    assert_eq!(
        (parsed.status.code(), stderr.as_ref()),
        (Some(0), ""),
        "{}",
        answer.body
    );
    // Every family the registry writes (a family without samples is not
    // written: the budget's waits), with the samples this server made.
    assert_eq!(
        String::from_utf8_lossy(&parsed.stdout),
        concat!(
            "withings_token_access_expiry_timestamp_seconds gauge 1\n",
            "withings_token_broker_requests counter 2\n",
            "withings_token_build info 1\n",
            "withings_token_copy_push counter 1\n",
            "withings_token_last_refresh_success_timestamp_seconds gauge 1\n",
            "withings_token_log_lines_dropped counter 1\n",
            "withings_token_needs_reauthorization gauge 1\n",
            "withings_token_proxy_budget_refusals counter 1\n",
            "withings_token_proxy_requests counter 3\n",
            "withings_token_proxy_upstream_duration_seconds histogram 17\n",
            "withings_token_reader_refusals counter 1\n",
            "withings_token_refresh counter 1\n",
            "withings_token_refresh_duration_seconds histogram 13\n",
        )
    );
}
