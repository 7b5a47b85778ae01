//! Events as a cron user meets them: an hour of failed refreshes is one
//! `refresh_failed`, then one `recovered`; a refused grant is one
//! `reauthorization_required` carrying the one-time link; events a run
//! could not deliver stay in the store's outbox (a SIGKILL included) and
//! the next run delivers them; a sink that fails never changes the exit
//! code; no token or secret is ever in an event. The sink here is a
//! command hook appending each event's JSON to a file.

use crate::support::*;

use std::path::PathBuf;
use std::time::Duration;

/// A user of the sandbox, authorised, whose events go to `events.jsonl`
/// through an `on_event` hook (`hang` in the work dir makes it wait first).
fn user_with_a_hook(sandbox: &SandboxProcess) -> (TestEnv, PathBuf) {
    let mut env = TestEnv::new();
    sandbox.configure(&mut env);
    sandbox.authorise(&env);
    let log = env.work_dir().join("events.jsonl");
    let hook = format!(
        "while [ -e {dir}/hang ]; do sleep 0.1; done; cat >> {log}; echo >> {log}",
        dir = env.work_dir().display(),
        log = log.display()
    );
    env.set("WITHINGS_TOKEN_ON_EVENT", hook);
    (env, log)
}

fn delivered(log: &PathBuf) -> Vec<Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("an event is one JSON object"))
        .collect()
}

fn types(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["type"].as_str().unwrap_or("?").to_owned())
        .collect()
}

fn record_of(env: &TestEnv) -> Value {
    let path = env.store_path().with_file_name("tokens.events.json");
    serde_json::from_slice(&std::fs::read(path).expect("the event record")).expect("record json")
}

/// Every secret the user and the sandbox know, for the greps.
fn secrets_of(env: &TestEnv) -> Vec<String> {
    let store = env.store_json();
    let mut secrets = vec![
        store["tokens"]["refresh_token"].as_str().unwrap_or_default().to_owned(),
        store["tokens"]["access_token"].as_str().unwrap_or_default().to_owned(),
    ];
    secrets.extend(["sandbox-client-secret".to_owned()]);
    secrets.retain(|s| s.len() >= 6);
    secrets
}

#[test]
fn an_outage_of_three_failed_runs_is_one_refresh_failed_then_one_recovered() {
    let sandbox = SandboxProcess::start();
    let (env, log) = user_with_a_hook(&sandbox);
    sandbox.fault(json!({"kind": "http500", "count": 3}));
    for run in 1..=3 {
        let out = env.run_with(&["refresh"], &["--retries", "0", "--retry-delay", "0s"]);
        assert_eq!(out.code, 5, "run {run}: {out:?}");
    }
    let events = delivered(&log);
    assert_eq!(types(&events), ["refresh_failed"], "{events:#?}");
    let failed = &events[0];
    assert_eq!(failed["account"], "default");
    assert_eq!(failed["code"], "UPSTREAM_ERROR");
    assert_eq!(failed["attempts"], 1);
    assert!(failed["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(record_of(&env)["health"]["attempts"], 3);
    assert_eq!(record_of(&env)["health"]["state"], "failing");

    let out = env.run(&["refresh"]);
    assert_eq!(out.code, 0, "{out:?}");
    let events = delivered(&log);
    assert_eq!(
        types(&events),
        ["refresh_failed", "recovered", "refreshed"],
        "{events:#?}"
    );
    assert_eq!(events[1]["since"], failed["at"]);
    assert_eq!(record_of(&env)["health"]["state"], "healthy");
    assert_eq!(record_of(&env)["outbox"], json!([]));
    let text = std::fs::read_to_string(&log).unwrap();
    for secret in secrets_of(&env) {
        assert!(!text.contains(&secret), "an event holds a secret");
    }
}

#[test]
fn a_refused_grant_is_one_reauthorization_required_with_a_link_to_serve() {
    let sandbox = SandboxProcess::start();
    let (mut env, log) = user_with_a_hook(&sandbox);
    env.set("WITHINGS_TOKEN_PUBLIC_URL", "https://tokens.example.com")
        .set("ADMIN_API_TOKEN", "an-admin-token-of-32-characters!");
    sandbox.fault(json!({"kind": "refuse", "count": 2}));
    for _ in 0..2 {
        let out = env.run_fast(&["refresh"]);
        assert_eq!(out.code, 4, "{out:?}");
    }
    let events = delivered(&log);
    assert_eq!(types(&events), ["reauthorization_required"], "{events:#?}");
    let event = &events[0];
    assert_eq!(event["code"], "INVALID_REFRESH_TOKEN");
    let link = event["link"].as_str().expect("a link");
    assert!(
        link.starts_with("https://tokens.example.com/auth/start?account=default&expires="),
        "{link}"
    );
    assert!(
        event["action"]
            .as_str()
            .unwrap()
            .starts_with(&format!("open {link} and approve access"))
    );
    assert_eq!(record_of(&env)["health"]["state"], "needs_reauthorization");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains("an-admin-token-of-32-characters!"));
    for secret in secrets_of(&env) {
        assert!(!text.contains(&secret), "an event holds a secret");
    }
}

#[test]
fn a_failing_sink_never_changes_the_exit_code_and_its_event_waits_in_the_outbox() {
    let sandbox = SandboxProcess::start();
    let (mut env, _log) = user_with_a_hook(&sandbox);
    env.set("WITHINGS_TOKEN_ON_EVENT", "exit 3");
    let out = env.run(&["refresh", "--notify-timeout", "3s"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stderr
            .contains("the refreshed event was not delivered to command exit 3:"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("it stays in the outbox for the next run"),
        "{}",
        out.stderr
    );
    let outbox = record_of(&env)["outbox"].clone();
    assert_eq!(outbox.as_array().map(Vec::len), Some(1), "{outbox:#}");
    assert_eq!(outbox[0]["event"]["type"], "refreshed");
}

#[test]
fn events_kept_by_a_run_killed_while_delivering_are_delivered_by_the_next_run() {
    let sandbox = SandboxProcess::start();
    let (env, log) = user_with_a_hook(&sandbox);
    let hang = env.work_dir().join("hang");
    std::fs::write(&hang, "").unwrap();
    let mut child = env
        .std_cmd()
        .args(["refresh", "--notify-timeout", "60s"])
        .spawn()
        .expect("spawn");
    let record = env.store_path().with_file_name("tokens.events.json");
    let queued = wait_until(Duration::from_secs(20), || {
        std::fs::read_to_string(&record).is_ok_and(|t| t.contains("\"refreshed\""))
    });
    assert!(queued, "the event never reached the outbox");
    child.kill().expect("SIGKILL");
    child.wait().expect("wait");
    std::fs::remove_file(&hang).unwrap();
    // The killed run's hook sees `hang` gone too and may deliver it as well:
    // a receiver tells the two apart by the event's id, which is the same.
    let out = env.run(&["refresh", "--if-needed"]);
    assert_eq!(out.code, 0, "{out:?}");
    let done = wait_until(Duration::from_secs(10), || !delivered(&log).is_empty());
    assert!(done, "the kept event was never delivered");
    let events = delivered(&log);
    assert!(types(&events).iter().all(|t| t == "refreshed"), "{events:#?}");
    assert!(events.iter().all(|e| e["id"] == events[0]["id"]), "{events:#?}");
    assert_eq!(record_of(&env)["outbox"], json!([]));
}

/// In `serve` a hook runs in the background: while one sits on an event
/// (here until the test lets it go), refreshes and their answers go on, and
/// their events queue behind it, delivered one at a time, in order.
#[test]
fn a_slow_hook_never_holds_up_serve_s_refreshes() {
    let sandbox = SandboxProcess::start();
    let (mut env, log) = user_with_a_hook(&sandbox);
    let hang = env.work_dir().join("hang");
    std::fs::write(&hang, "").unwrap();
    env.serve_credentials();
    let server = env.serve(&["--check-interval", "1h"]);
    for round in 1..=3 {
        let answer = server.admin_post("/admin/token/refresh", None);
        assert_eq!(answer.status, 200, "round {round}: {answer:?}");
    }
    // Three rotations went through while the first event's hook waits.
    assert!(delivered(&log).is_empty());
    assert_eq!(
        env.store_json()["tokens_generation"].as_u64().map(|g| g >= 4),
        Some(true)
    );
    std::fs::remove_file(&hang).unwrap();
    assert!(wait_until(Duration::from_secs(15), || delivered(&log).len() == 3));
    assert_eq!(types(&delivered(&log)), ["refreshed", "refreshed", "refreshed"]);
}

/// A run without sinks (an `access-token` in a script beside the cron
/// `refresh` that alerts) records what it saw for the sinks the record
/// knows, and never drops what they are owed: the next run with sinks
/// delivers it.
#[test]
fn a_run_without_sinks_queues_its_events_for_the_sinks_the_record_knows() {
    let sandbox = SandboxProcess::start();
    let (env, log) = user_with_a_hook(&sandbox);
    let out = env.run(&["refresh"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(types(&delivered(&log)), ["refreshed"]);
    let mut sinkless = TestEnv::new();
    sandbox.configure(&mut sinkless);
    let store = env.store_path().display().to_string();
    sandbox.fault(json!({"kind": "refuse", "count": 1}));
    let out = sinkless.run_fast(&["--store", &store, "refresh"]);
    assert_eq!(out.code, 4, "{out:?}");
    assert_eq!(
        record_of(&env)["outbox"][0]["event"]["type"],
        "reauthorization_required"
    );
    let status = sinkless.run(&["--store", &store, "status", "--json"]).json();
    assert_eq!(status["events_waiting"], 1);
    let out = env.run(&["status"]);
    assert_eq!(out.code, 0, "{out:?}");
    // `status` delivers nothing (it is offline); the next refresh does.
    assert_eq!(types(&delivered(&log)), ["refreshed"]);
    let out = env.run_fast(&["refresh", "--if-needed"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(types(&delivered(&log)), ["refreshed", "reauthorization_required"]);
    assert_eq!(record_of(&env)["outbox"], json!([]));
}

/// A webhook that never answers holds up no other sink: the hook gets the
/// event within the notify timeout, and the webhook's stays for later.
#[test]
fn a_webhook_that_never_answers_holds_up_no_other_sink() {
    let sandbox = SandboxProcess::start();
    let (mut env, log) = user_with_a_hook(&sandbox);
    let hooks = webhook_receiver();
    hooks.mount(hook_post().respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(60))));
    env.set("WITHINGS_TOKEN_WEBHOOK_URL", hook_url(&hooks));
    let out = env.run(&["refresh", "--notify-timeout", "2s"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(types(&delivered(&log)), ["refreshed"]);
    let outbox = record_of(&env)["outbox"].clone();
    assert_eq!(outbox.as_array().map(Vec::len), Some(1), "{outbox:#}");
    assert_eq!(
        outbox[0]["owed"].as_array().map(Vec::len),
        Some(1),
        "only the webhook still owed: {outbox:#}"
    );
    assert!(outbox[0]["owed"][0].as_str().unwrap().starts_with("webhook:"));
}

/// Withings refusing the app's own credentials (a wrong client secret)
/// after it was asked is a failed refresh the account hears of, though it
/// is the operator's to fix (exit 3).
#[test]
fn the_app_s_credentials_refused_is_a_refresh_failed_event() {
    let sandbox = SandboxProcess::start();
    let (mut env, log) = user_with_a_hook(&sandbox);
    env.set("WITHINGS_CLIENT_SECRET", "a-wrong-client-secret");
    let out = env.run_fast(&["refresh"]);
    let events = delivered(&log);
    assert_eq!(types(&events), ["refresh_failed"], "{out:?}");
    let code = events[0]["code"].as_str().expect("a code");
    assert!(
        out.stderr.contains(&format!("[{code}]")),
        "the event's code is the run's: {code} / {}",
        out.stderr
    );
    assert_eq!(out.code, 3, "{out:?}");
    assert!(!std::fs::read_to_string(&log).unwrap().contains("a-wrong-client-secret"));
}

/// Two runs at once deliver each event once: the one delivering it claims
/// it, and the other leaves it alone while that run lives.
#[test]
fn overlapping_runs_deliver_each_event_once() {
    let sandbox = SandboxProcess::start();
    let (env, log) = user_with_a_hook(&sandbox);
    let hang = env.work_dir().join("hang");
    std::fs::write(&hang, "").unwrap();
    let record = env.store_path().with_file_name("tokens.events.json");
    let mut first = env
        .std_cmd()
        .args(["refresh", "--notify-timeout", "30s"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let claimed = wait_until(Duration::from_secs(20), || {
        std::fs::read_to_string(&record).is_ok_and(|t| t.contains("claimed_until"))
    });
    assert!(claimed, "the first run never claimed its event");
    let mut second = env
        .std_cmd()
        .args(["refresh", "--notify-timeout", "30s"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let both = wait_until(Duration::from_secs(20), || {
        std::fs::read_to_string(&record).is_ok_and(|t| t.matches("claimed_until").count() == 2)
    });
    assert!(both, "the second run never claimed its own event");
    std::fs::remove_file(&hang).unwrap();
    assert!(first.wait().expect("wait").success());
    assert!(second.wait().expect("wait").success());
    let events = delivered(&log);
    assert_eq!(types(&events), ["refreshed", "refreshed"], "{events:#?}");
    assert_ne!(events[0]["id"], events[1]["id"]);
}
