//! Usage per consumer: calls through `serve`'s Withings proxy (the sandbox
//! as Withings) by two readers on two accounts show, to the call, in
//! `GET /admin/usage`, in `/metrics`, as one audit line each in serve's
//! log, and in `withings-token --server URL usage`; and no token, no body
//! and no query of a call in any of them.

use crate::support::*;

use std::time::Duration;

const MCP_READER: &str = "mcp-reader-token-0123456789";
const FORM: &str = "application/x-www-form-urlencoded";

/// A sandbox whose first person is `default` and second `alice`, and a
/// user who serves both to `(reader)` and to the named reader `mcp`.
fn given_two_accounts_and_two_readers() -> (SandboxProcess, TestEnv) {
    let (sandbox, mut env) = given_authorised_sandbox();
    let redirect = redirect_as(&sandbox, &env, "alice", 2);
    let out = env.run(&["exchange", &redirect, "--account", "alice", "--no-railway"]);
    assert_eq!(out.code, 0, "{out:?}");
    env.serve_credentials();
    let config = env.home().join("config.toml");
    let text = format!(
        "[reader.mcp]\nsha256 = \"{}\"\naccounts = [\"*\"]\n",
        crate::serve_accounts::sha256_hex(MCP_READER)
    );
    std::fs::write(&config, text).expect("config");
    env.set("WITHINGS_TOKEN_CONFIG", config.display().to_string());
    (sandbox, env)
}

/// A proxied call as `reader` (its token), whose answer must be Withings'.
fn call(server: &ServeProcess, reader: &str, path_and_query: &str, form: &str) -> Value {
    let bearer = format!("Bearer {reader}");
    let answer = server.post(
        &format!("/v1/withings/{path_and_query}"),
        &[("Authorization", &bearer), ("Content-Type", FORM)],
        Some(form),
    );
    assert_eq!(answer.status, 200, "{answer:?}");
    answer.json()
}

/// Six calls: mcp reads default's measures twice and devices once, and
/// alice's measures once; `(reader)` sends alice an action Withings does
/// not know, then reads her measures.
fn make_the_calls(server: &ServeProcess) {
    let since = "meastype=1&lastupdate=1796191200";
    for _ in 0..2 {
        let read = call(
            server,
            MCP_READER,
            &format!("measure?account=default&{since}"),
            "action=getmeas",
        );
        assert_eq!(read["status"], 0, "{read}");
    }
    let devices = call(server, MCP_READER, "v2/user?account=default", "action=getdevice");
    assert_eq!(devices["status"], 0, "{devices}");
    let read = call(server, MCP_READER, "measure?account=alice", "action=getmeas&meastype=1");
    assert_eq!(read["status"], 0, "{read}");
    let unknown = call(server, READER_TOKEN, "measure?account=alice", "action=getsleep");
    assert_eq!(unknown["status"], 2554, "{unknown}");
    let read = call(server, READER_TOKEN, "measure?account=alice", "action=getmeas");
    assert_eq!(read["status"], 0, "{read}");
}

/// One window as `/admin/usage` gives it, its upstream times left out.
fn window(calls: u64, outcomes: Value, top_actions: Value) -> Value {
    let ok = outcomes["ok"].as_u64().unwrap_or(0);
    json!({
        "calls": calls,
        "errors": calls - ok,
        "outcomes": outcomes,
        "top_actions": top_actions,
        "retried": 0,
        "budget_waits": 0,
        "budget_refusals": {"app": 0, "reader": 0},
        "upstream": {"calls": calls, "mean_ms": null, "max_ms": null},
    })
}

/// `usage` with its volatile figures checked and taken out: the last
/// call's time (within a minute of now) and the upstream times (mean at
/// most max).
fn settled(mut usage: Value) -> Value {
    for row in usage["usage"].as_array_mut().expect("usage rows") {
        let last_call = row["last_call"].as_str().expect("last_call").to_owned();
        let at = chrono::DateTime::parse_from_rfc3339(&last_call).expect("rfc3339");
        assert!(
            (at.to_utc() - chrono::Utc::now()).abs() < chrono::Duration::minutes(1),
            "{row}"
        );
        row["last_call"] = Value::Null;
        for span in ["last_hour", "last_day"] {
            let upstream = &mut row[span]["upstream"];
            let (mean, max) = (upstream["mean_ms"].as_f64(), upstream["max_ms"].as_f64());
            assert!(
                matches!((mean, max), (Some(mean), Some(max)) if mean <= max),
                "{upstream}"
            );
            upstream["mean_ms"] = Value::Null;
            upstream["max_ms"] = Value::Null;
        }
    }
    usage
}

fn expected_usage() -> Value {
    let row = |reader: &str, account: &str, window: Value| json!({"reader": reader, "account": account, "last_call": null, "last_hour": window, "last_day": window});
    json!({"version": 1, "usage": [
        row("(reader)", "alice", window(2, json!({"ok": 1, "withings_error": 1}),
            json!([{"action": "getmeas", "calls": 1}, {"action": "other", "calls": 1}]))),
        row("mcp", "alice", window(1, json!({"ok": 1}), json!([{"action": "getmeas", "calls": 1}]))),
        row("mcp", "default", window(3, json!({"ok": 3}),
            json!([{"action": "getmeas", "calls": 2}, {"action": "getdevice", "calls": 1}]))),
    ]})
}

fn samples<'a>(metrics: &'a str, name: &str) -> Vec<&'a str> {
    let mut lines: Vec<&str> = metrics.lines().filter(|line| line.starts_with(name)).collect();
    lines.sort_unstable();
    lines
}

/// The messages of serve's audit lines (JSON log lines of that logger).
fn audit_lines(log: &str) -> Vec<String> {
    log.lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line["logger"] == "withings_token::audit")
        .map(|line| line["message"].as_str().expect("message").to_owned())
        .collect()
}

/// Nothing of a token, an answer's body or a call's query.
fn assert_nothing_of_a_call_in(what: &str, text: &str) {
    for secret in ["sbx_", ADMIN_TOKEN, READER_TOKEN, MCP_READER] {
        assert!(!text.contains(secret), "{what} shows {secret}:\n{text}");
    }
    for private in ["measuregrps", "sbx-scale", "72100", "lastupdate", "meastype"] {
        assert!(!text.contains(private), "{what} shows {private}:\n{text}");
    }
}

#[test]
fn usage_per_reader_and_account_shows_in_admin_usage_metrics_the_audit_log_and_the_usage_command() {
    let (_sandbox, env) = given_two_accounts_and_two_readers();
    let server = env.serve(&["--check-interval", "1h"]);
    make_the_calls(&server);

    let answer = server.admin_get("/admin/usage");
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_nothing_of_a_call_in("/admin/usage", &answer.body);
    let usage = answer.json();
    assert_eq!(settled(usage.clone()), expected_usage());

    let metrics = server.get("/metrics", &[]).body;
    assert_eq!(
        samples(&metrics, "withings_token_proxy_requests_total"),
        [
            "withings_token_proxy_requests_total{reader=\"(reader)\",account=\"alice\",action=\"getmeas\",outcome=\"ok\"} 1",
            "withings_token_proxy_requests_total{reader=\"(reader)\",account=\"alice\",action=\"other\",outcome=\"withings_error\"} 1",
            "withings_token_proxy_requests_total{reader=\"mcp\",account=\"alice\",action=\"getmeas\",outcome=\"ok\"} 1",
            "withings_token_proxy_requests_total{reader=\"mcp\",action=\"getdevice\",outcome=\"ok\"} 1",
            "withings_token_proxy_requests_total{reader=\"mcp\",action=\"getmeas\",outcome=\"ok\"} 2",
        ],
        "{metrics}"
    );
    let histogram = samples(&metrics, "withings_token_proxy_upstream_duration_seconds");
    for line in [
        "withings_token_proxy_upstream_duration_seconds_count 6",
        "withings_token_proxy_upstream_duration_seconds_bucket{le=\"+Inf\"} 6",
    ] {
        assert!(histogram.contains(&line), "{line}: {histogram:?}");
    }
    // No call waited for the budget or was refused by one.
    assert_eq!(samples(&metrics, "withings_token_proxy_budget"), Vec::<&str>::new());
    assert_nothing_of_a_call_in("/metrics", &metrics);

    let all_logged = wait_until(Duration::from_secs(10), || audit_lines(&server.log()).len() == 6);
    let audit = audit_lines(&server.log());
    assert!(all_logged, "{audit:#?}");
    let unknown = audit
        .iter()
        .find(|line| line.contains("action=getsleep"))
        .unwrap_or_else(|| panic!("{audit:#?}"));
    let (head, timed) = unknown.split_once(" duration_ms=").expect("duration_ms");
    assert_eq!(
        head,
        "proxied call: reader=(reader) account=alice path=measure action=getsleep status=200 withings_status=2554 outcome=withings_error"
    );
    let (_, tail) = timed.split_once(" upstream_ms=").expect("upstream_ms");
    assert!(
        tail.ends_with(" retried=false budget_wait_ms=- budget_refused=-"),
        "{unknown}"
    );
    assert_eq!(
        audit.iter().filter(|line| line.starts_with("proxied call: reader=mcp account=default path=measure action=getmeas status=200 withings_status=0 outcome=ok duration_ms=")).count(),
        2,
        "{audit:#?}"
    );
    assert_nothing_of_a_call_in("serve's log", &server.log());

    let mut remote = TestEnv::new();
    remote.set("ADMIN_API_TOKEN", ADMIN_TOKEN);
    let url = format!("http://{}", server.addr);
    let table = remote.run(&["--server", &url, "usage"]);
    assert_eq!(table.code, 0, "{table:?}");
    assert_eq!(
        table.stdout,
        "\
┌──────────┬─────────┬──────────┬───────────┬───────────┬────────────┬────────────────────────┐
│ reader   ┆ account ┆ calls 1h ┆ errors 1h ┆ calls 24h ┆ errors 24h ┆ top actions 24h        │
╞══════════╪═════════╪══════════╪═══════════╪═══════════╪════════════╪════════════════════════╡
│ (reader) ┆ alice   ┆ 2        ┆ 1         ┆ 2         ┆ 1          ┆ getmeas 1, other 1     │
│ mcp      ┆ alice   ┆ 1        ┆ 0         ┆ 1         ┆ 0          ┆ getmeas 1              │
│ mcp      ┆ default ┆ 3        ┆ 0         ┆ 3         ┆ 0          ┆ getmeas 2, getdevice 1 │
└──────────┴─────────┴──────────┴───────────┴───────────┴────────────┴────────────────────────┘
",
        "{table:?}"
    );
    let json = remote.run(&["--server", &url, "usage", "--json"]);
    assert_eq!(json.code, 0, "{json:?}");
    assert_eq!(json.json(), usage, "the server's answer as it is");
    let alice = remote.run(&["--server", &url, "--account", "alice", "usage", "--json"]);
    assert_eq!(alice.code, 0, "{alice:?}");
    let alice_rows: Vec<&Value> = usage["usage"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|row| row["account"] == "alice")
        .collect();
    assert_eq!(
        alice.json()["usage"].as_array().unwrap().iter().collect::<Vec<_>>(),
        alice_rows
    );
}

#[test]
fn a_reader_s_token_opens_no_usage() {
    let (_sandbox, env) = given_two_accounts_and_two_readers();
    let server = env.serve(&["--check-interval", "1h"]);
    for reader in [READER_TOKEN, MCP_READER] {
        let refused = server.get("/admin/usage", &[("X-Admin-Token", reader)]);
        assert_eq!(refused.status, 403, "{refused:?}");
        assert_eq!(refused.error_code(), "FORBIDDEN");
    }
    let mut remote = TestEnv::new();
    remote.set("ADMIN_API_TOKEN", READER_TOKEN);
    let out = remote.run(&["--server", &format!("http://{}", server.addr), "usage"]);
    assert_eq!(out.code, 3, "{out:?}");
    assert!(out.stderr.contains("[FORBIDDEN]"), "{out:?}");
}

#[test]
fn usage_without_a_server_says_that_serve_keeps_it_and_how_to_name_one() {
    let env = TestEnv::new();
    let out = env.run(&["usage"]);
    assert_eq!(out.code, 3, "{out:?}");
    assert_eq!(out.stdout, "");
    assert_stderr_error(
        &out.stderr,
        "CONFIGURATION_ERROR",
        "usage is kept by a running `withings-token serve` (in its memory, for the calls through its Withings proxy), and no server is named",
        "name the server: `withings-token --server URL usage` (or set WITHINGS_TOKEN_SERVER), with ADMIN_API_TOKEN set to its admin token",
    );
}
