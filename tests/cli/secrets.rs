//! Secrets never reach stderr: every subcommand, on its success and failure
//! paths, runs at `-vvv` in both log formats against the sandbox, and no
//! token (access or refresh, old or new), authorization code, client secret
//! or Railway token may appear in what it writes on stderr. stdout may show
//! masked tokens only, except with `--output env` or `--reveal`. With
//! `--log-format json`, stderr is one log object per line with the seed's
//! six keys.

use crate::support::*;

use std::collections::BTreeSet;

const CLIENT_SECRET: &str = "sandbox-client-secret";
const RAILWAY_PROJECT_TOKEN: &str = "sandbox-railway-project-token";
const RAILWAY_ACCOUNT_TOKEN: &str = "sandbox-railway-account-token";
const JSON_LOG_KEYS: [&str; 6] = ["environment", "level", "logger", "message", "service", "timestamp"];

/// One run of the session, labelled for the reports.
struct LoggedRun {
    label: String,
    run: Run,
    /// `--output env` or `--reveal`: stdout may carry tokens.
    reveals: bool,
}

/// One user against one sandbox, in one log format, remembering every
/// secret that came into play so that all runs can be checked at the end.
struct Session {
    sandbox: SandboxProcess,
    env: TestEnv,
    log_format: &'static str,
    runs: Vec<LoggedRun>,
    secrets: BTreeSet<String>,
}

/// A secret that no sandbox has ever seen: `prefix_<40 hex>`.
fn made_up(prefix: &str) -> String {
    let mut hex = String::new();
    for _ in 0..5 {
        hex.push_str(&format!("{:08x}", rand_u32()));
    }
    format!("{prefix}_{hex}")
}

fn rand_u32() -> u32 {
    let mut bytes = [0u8; 4];
    getrandom::fill(&mut bytes).expect("random");
    u32::from_le_bytes(bytes)
}

impl Session {
    fn new(log_format: &'static str) -> Session {
        let (sandbox, env) = given_sandbox();
        let secrets = [CLIENT_SECRET, RAILWAY_PROJECT_TOKEN, RAILWAY_ACCOUNT_TOKEN]
            .into_iter()
            .map(str::to_owned)
            .collect();
        Session {
            sandbox,
            env,
            log_format,
            runs: Vec::new(),
            secrets,
        }
    }

    fn secret(&mut self, value: &str) -> String {
        self.secrets.insert(value.to_owned());
        value.to_owned()
    }

    /// Runs `args` at `-vvv` in this session's log format, with `set`
    /// variables added and `unset` ones removed, and checks the exit code.
    fn run_with(&mut self, args: &[&str], set: &[(&str, &str)], unset: &[&str], expected: i32) -> &Run {
        let mut cmd = self.env.cmd();
        cmd.args(args)
            .args(["-vvv", "--log-format", self.log_format])
            .args(["--retry-delay", "0s", "--timeout", "5s"]);
        if !args.contains(&"--retries") {
            cmd.args(["--retries", "1"]);
        }
        for (k, v) in set {
            cmd.env(k, v);
        }
        for k in unset {
            cmd.env_remove(k);
        }
        let logged = LoggedRun {
            label: format!("{} [{}]", args.join(" "), self.log_format),
            run: Run::of(&mut cmd),
            reveals: args.iter().any(|a| *a == "--reveal" || *a == "--output-env")
                || args.windows(2).any(|w| w[0] == "--output" && w[1] == "env"),
        };
        assert_eq!(
            logged.run.code, expected,
            "{}: exit code\n{:?}",
            logged.label, logged.run
        );
        self.learn_store_secrets();
        self.runs.push(logged);
        &self.runs.last().expect("just pushed").run
    }

    fn run(&mut self, args: &[&str], expected: i32) -> &Run {
        self.run_with(args, &[], &[], expected)
    }

    /// Every token the store holds now (current and previous generation).
    fn learn_store_secrets(&mut self) {
        let Ok(store) = serde_json::from_slice::<Value>(&self.env.store_bytes()) else {
            return;
        };
        for pointer in [
            "/tokens/access_token",
            "/tokens/refresh_token",
            "/previous/refresh_token",
        ] {
            if let Some(token) = store.pointer(pointer).and_then(Value::as_str) {
                self.secrets.insert(token.to_owned());
            }
        }
    }

    /// auth-url (JSON) then the sandbox's consent: the redirect URL and its code.
    fn consent(&mut self) -> (String, String) {
        let report = self.run(&["auth-url", "--json"], 0).json();
        let redirect = self
            .sandbox
            .approve(report["authorization_url"].as_str().expect("authorization_url"));
        let code = query_param(&redirect, "code");
        self.secret(&code);
        (redirect, code)
    }

    /// Every check, over every run of this session.
    fn assert_no_secret_escaped(&self, min_secrets: usize) {
        assert!(
            self.secrets.len() >= min_secrets,
            "too few secrets learned: {}",
            self.secrets.len()
        );
        let mut leaks = Vec::new();
        for logged in &self.runs {
            for secret in &self.secrets {
                if let Some(piece) = leaked_piece(&logged.run.stderr, secret) {
                    leaks.push(format!("{}: stderr shows `{piece}` of a secret", logged.label));
                }
                if !logged.reveals
                    && let Some(piece) = leaked_piece(&logged.run.stdout, secret)
                {
                    leaks.push(format!("{}: stdout shows `{piece}` of a secret", logged.label));
                }
            }
        }
        assert!(leaks.is_empty(), "secrets escaped:\n{}", leaks.join("\n"));
        // The detector works: where tokens may be shown, they are found.
        for logged in self.runs.iter().filter(|r| r.reveals && r.run.code == 0) {
            assert!(
                self.secrets.iter().any(|s| logged.run.stdout.contains(s.as_str())),
                "{}: no known secret in revealed output: {}",
                logged.label,
                logged.run.stdout
            );
        }
    }

    fn assert_json_logs(&self, environment: &str) -> usize {
        let mut lines = 0;
        for logged in &self.runs {
            lines += assert_json_lines(&logged.label, &logged.run.stderr, environment);
        }
        lines
    }
}

/// The whole secret, or any 10 characters of its random part (after the
/// last `_` or `-`), found in `text`.
fn leaked_piece(text: &str, secret: &str) -> Option<String> {
    if text.contains(secret) {
        return Some(secret.to_owned());
    }
    let random = secret.rsplit(['_', '-']).next().unwrap_or(secret);
    if random.len() < 16 {
        return None;
    }
    let chars: Vec<char> = random.chars().collect();
    chars
        .windows(10)
        .map(|w| w.iter().collect::<String>())
        .find(|piece| text.contains(piece.as_str()))
}

fn query_param(url: &str, key: &str) -> String {
    url::Url::parse(url)
        .expect("redirect url")
        .query_pairs()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("{url} has no {key}"))
}

/// Every stderr line is one JSON object with exactly the seed's keys.
fn assert_json_lines(label: &str, stderr: &str, environment: &str) -> usize {
    let mut count = 0;
    for line in stderr.lines().filter(|l| !l.trim().is_empty()) {
        let object: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{label}: stderr line is not JSON ({e}): {line}"));
        let keys: Vec<&str> = object
            .as_object()
            .unwrap_or_else(|| panic!("{label}: not an object: {line}"))
            .keys()
            .map(String::as_str)
            .collect();
        let mut sorted = keys.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, JSON_LOG_KEYS, "{label}: keys of {line}");
        assert_eq!(object["service"], "withings-token", "{label}: {line}");
        assert_eq!(object["environment"], environment, "{label}: {line}");
        let level = object["level"].as_str().unwrap_or_default();
        assert!(
            ["ERROR", "WARN", "INFO", "DEBUG", "TRACE"].contains(&level),
            "{label}: level {level}"
        );
        let logger = object["logger"].as_str().unwrap_or_default();
        assert!(logger.starts_with("withings_token"), "{label}: logger {logger}");
        let timestamp = object["timestamp"].as_str().unwrap_or_default();
        assert!(
            chrono::DateTime::parse_from_rfc3339(timestamp).is_ok(),
            "{label}: timestamp {timestamp}"
        );
        assert!(object["message"].is_string(), "{label}: message of {line}");
        count += 1;
    }
    count
}

/// Every subcommand, success and failure, in the order a user meets them.
fn every_subcommand(s: &mut Session) {
    // Nothing configured yet.
    s.run(&["status"], 0);
    s.run(&["status", "--json"], 0);
    s.run(&["status", "--check"], 3);
    s.run(&["refresh", "--dry-run"], 3);
    s.run(&["refresh"], 3);
    s.run(&["railway-sync"], 3);
    s.run(&["railway-sync", "--dry-run"], 3);
    s.run(&["usage"], 3);

    // A seed in the environment that Withings does not know.
    let seed_refresh = s.secret(&made_up("seedrefresh"));
    let seed_access = s.secret(&made_up("seedaccess"));
    let seed = [
        ("WITHINGS_REFRESH_TOKEN", seed_refresh.as_str()),
        ("WITHINGS_ACCESS_TOKEN", seed_access.as_str()),
    ];
    s.run_with(&["status"], &seed, &[], 0);
    s.run_with(&["status", "--output", "env"], &seed, &[], 0);
    s.run_with(&["refresh", "--dry-run"], &seed, &[], 0);
    s.run_with(&["refresh", "--dry-run", "--json"], &seed, &[], 0);
    s.run_with(&["refresh"], &seed, &[], 4);
    // (A second seed: Withings answers the same request twice in 10 s with 601.)
    let other_seed = s.secret(&made_up("seedrefresh"));
    s.run_with(
        &["refresh", "--json"],
        &[("WITHINGS_REFRESH_TOKEN", &other_seed)],
        &[],
        4,
    );

    // auth-url, and exchange refused in every way.
    s.run(&["auth-url"], 0);
    s.run_with(&["auth-url"], &[], &["WITHINGS_REDIRECT_URI"], 3);
    s.run_with(&["auth-url", "--json"], &[], &["WITHINGS_CLIENT_ID"], 3);
    let (redirect, code) = s.consent();
    let forged = redirect.replace("state=", "state=forged");
    s.run(&["exchange", &forged], 4);
    let bogus_code = s.secret(&made_up("code"));
    s.run(&["exchange", &bogus_code], 4);
    s.run(&["exchange", &bogus_code, "--json"], 4);
    let wrong_secret = s.secret(&made_up("wrongsecret"));
    s.run_with(
        &["exchange", &made_up("code")],
        &[("WITHINGS_CLIENT_SECRET", &wrong_secret)],
        &[],
        3,
    );
    s.run_with(&["exchange", &code], &[], &["WITHINGS_CLIENT_SECRET"], 3);

    // exchange that works, then the same code again.
    s.run(&["exchange", &redirect], 0);
    s.run(&["exchange", &code, "--json"], 4);
    let (_, code) = s.consent();
    s.run(&["exchange", &code, "--json", "--no-railway"], 0);
    let (_, code) = s.consent();
    s.run(&["exchange", &code, "--output", "env"], 0);

    // status of a real set.
    s.run(&["status"], 0);
    s.run(&["status", "--json"], 0);
    s.run(&["status", "--check"], 0);
    s.run(&["status", "--check", "--buffer", "4h"], 7);
    s.run(&["status", "--output-env"], 0);

    // refresh: every output, retries, refusals, rate limits.
    s.run(&["refresh"], 0);
    s.run(&["refresh", "--json"], 0);
    s.run(&["refresh", "--output", "env"], 0);
    s.run(&["refresh", "--json", "--reveal"], 0);
    s.run(&["refresh", "--if-needed"], 0);
    s.run(&["refresh", "--dry-run"], 0);
    s.run(&["refresh", "--dry-run", "--json", "--if-needed"], 0);
    s.sandbox.fault(json!({"kind": "http500", "count": 1}));
    s.run(&["refresh"], 0);
    s.sandbox.fault(json!({"kind": "truncated", "count": 2}));
    s.run(&["refresh", "--json"], 5);
    s.sandbox.fault(json!({"kind": "status601", "wait_seconds": 120}));
    s.run(&["refresh"], 5);
    // Current token refused; the previous generation's is tried, and the
    // sandbox answers 601 (the same request as the last refresh, within
    // 10 s): a transient failure of the fallback is exit 5, not "re-authorise".
    s.sandbox.fault(json!({"kind": "refuse", "count": 1}));
    s.run(&["refresh", "--retries", "0"], 5);
    let wrong_secret = s.secret(&made_up("wrongsecret"));
    s.run_with(&["refresh"], &[("WITHINGS_CLIENT_SECRET", &wrong_secret)], &[], 3);
    s.run(&["refresh", "--no-railway", "--json"], 0);
    let wrong_railway = s.secret(&made_up("wrongrailway"));
    // Another token is another setting: the environment is looked up again
    // before anything is sent, and the refusal is exit 3.
    s.run_with(&["refresh"], &[("RAILWAY_TOKEN", &wrong_railway)], &[], 3);
    s.run_with(&["refresh", "--json"], &[("RAILWAY_TOKEN", &wrong_railway)], &[], 3);
    s.run(&["refresh", "--trigger-deployment"], 0);

    // An env file holding tokens is rewritten (and must not be echoed).
    let stale = s.secret(&made_up("stalerefresh"));
    let dot_env = s
        .env
        .write_env_file(&format!("WITHINGS_REFRESH_TOKEN={stale}\nOTHER=1\n"));
    s.run(&["refresh"], 0);
    s.run(&["status"], 0);
    std::fs::remove_file(dot_env).expect("remove .env");

    // railway-sync: both token kinds, dry runs, refusals and faults.
    s.run(&["railway-sync"], 0);
    s.run(&["railway-sync", "--json"], 0);
    s.run(&["railway-sync", "--trigger-deployment"], 0);
    s.run(&["railway-sync", "--dry-run"], 0);
    s.run(&["railway-sync", "--dry-run", "--json"], 0);
    let account = [("RAILWAY_API_TOKEN", RAILWAY_ACCOUNT_TOKEN)];
    s.run_with(&["railway-sync"], &account, &["RAILWAY_TOKEN"], 0);
    s.run_with(&["railway-sync", "--dry-run"], &account, &["RAILWAY_TOKEN"], 0);
    s.run_with(&["railway-sync"], &[("RAILWAY_TOKEN", &wrong_railway)], &[], 6);
    s.run_with(
        &["railway-sync", "--json"],
        &[("RAILWAY_TOKEN", &wrong_railway)],
        &[],
        6,
    );
    s.run_with(
        &["railway-sync", "--dry-run"],
        &[("RAILWAY_TOKEN", &wrong_railway)],
        &[],
        6,
    );
    s.sandbox
        .fault(json!({"target": "railway", "kind": "html502", "count": 2}));
    s.run(&["railway-sync"], 6);
    s.sandbox
        .fault(json!({"target": "railway", "kind": "http500", "count": 2}));
    s.run(&["railway-sync", "--dry-run", "--json"], 6);

    // A mangled store that holds tokens in the wrong places is reported
    // without quoting them.
    let mut store = s.env.store_json();
    let current = store["tokens"]["refresh_token"].as_str().expect("refresh").to_owned();
    store["generation"] = json!(current);
    store["tokens"] = json!(store["tokens"]["access_token"].clone());
    s.env
        .write_store_bytes(&serde_json::to_vec_pretty(&store).expect("json"));
    s.run(&["status"], 3);
    s.run(&["status", "--json"], 3);
    s.run(&["refresh"], 3);
    s.run(&["refresh", "--dry-run"], 3);
    s.run(&["railway-sync"], 3);
    s.run(&["exchange", &made_up("code")], 3);
    s.run(&["auth-url"], 3);
}

#[test]
fn no_secret_reaches_stderr_at_trace_level_in_text_logs() {
    let mut session = Session::new("text");
    every_subcommand(&mut session);
    session.assert_no_secret_escaped(20);
    // The text format really is verbose at -vvv (otherwise this proves nothing).
    let debug_lines: usize = session
        .runs
        .iter()
        .map(|r| r.run.stderr.lines().filter(|l| l.starts_with("debug: ")).count())
        .sum();
    assert!(debug_lines > 20, "only {debug_lines} debug lines at -vvv");
}

#[test]
fn no_secret_reaches_stderr_at_trace_level_in_json_logs() {
    let mut session = Session::new("json");
    every_subcommand(&mut session);
    session.assert_no_secret_escaped(20);
    let lines = session.assert_json_logs("local");
    assert!(lines > 20, "only {lines} JSON log lines at -vvv");
}

#[test]
fn json_logs_carry_the_railway_environment_name() {
    let mut session = Session::new("json");
    session.env.set("RAILWAY_ENVIRONMENT_NAME", "staging");
    session.sandbox.authorise(&session.env);
    session.run(&["refresh"], 0);
    session.run(&["railway-sync", "--dry-run"], 0);
    session.sandbox.fault(json!({"kind": "http500", "count": 2}));
    session.run(&["refresh"], 5);
    let lines = session.assert_json_logs("staging");
    assert!(lines >= 5, "only {lines} JSON log lines");
    session.assert_no_secret_escaped(5);
}
