//! Many `withings-token` processes on one store at once: the store lock
//! serialises them, `--if-needed` peers do not refresh twice, forced
//! refreshes each use the newest token, nobody is ever refused, a held lock
//! times out (exit 5) and a set that is not due is read without the lock.
//! Run with `cargo test --features failpoints --test cli concurrency:: --
//! --nocapture` to see the figures each test observed (lines starting with
//! `FIGURES`).

use crate::support::*;

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::process::{Output, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Starts `n` copies of `args` at once (each its own process) and waits for
/// all of them; returns their outputs and the wall time of the whole batch.
fn run_concurrently(env: &TestEnv, n: usize, args: &[&str]) -> (Vec<Output>, Duration) {
    run_all_at_once(std::iter::repeat_n(env, n), args)
}

#[test]
fn thirty_concurrent_if_needed_refreshes_make_exactly_one_upstream_call() {
    const PROCESSES: usize = 30;
    let (sandbox, env) = given_authorised_sandbox();
    env.make_store_due();
    let generation_before = env.store_json()["generation"].as_u64().unwrap();
    let before = sandbox.stats();

    let (outputs, wall) = run_concurrently(
        &env,
        PROCESSES,
        &["refresh", "--if-needed", "--no-railway", "--json", "--reveal"],
    );
    assert_all_succeeded(&outputs);

    let after = sandbox.stats();
    let requests = stat_delta(&before, &after, "token_requests");
    let issued = stat_delta(&before, &after, "tokens_issued");
    let refused = stat_delta(&before, &after, "refused");
    let rate_limited = stat_delta(&before, &after, "rate_limited");
    let reports: Vec<Value> = outputs.iter().map(report_of).collect();
    let outcomes = outcome_counts(&reports);
    eprintln!(
        "FIGURES refresh --if-needed: processes={PROCESSES} upstream_token_requests={requests} tokens_issued={issued} \
         refused={refused} rate_limited={rate_limited} outcomes={outcomes:?} wall_time_ms={}",
        wall.as_millis()
    );

    assert_eq!(requests, 1, "exactly one upstream token request");
    assert_eq!(issued, 1);
    assert_eq!(refused, 0, "no refused grant");
    assert_eq!(rate_limited, 0);
    assert_eq!(outcomes.get("refreshed"), Some(&1), "{outcomes:?}");
    let others: usize = outcomes
        .iter()
        .filter(|(k, _)| matches!(k.as_str(), "already_refreshed_by_peer" | "not_due"))
        .map(|(_, n)| n)
        .sum();
    assert_eq!(others, PROCESSES - 1, "{outcomes:?}");

    // The store holds the one issued set, exactly one generation later.
    let refreshed = reports.iter().find(|r| r["outcome"] == "refreshed").unwrap();
    let store = env.store_json();
    assert_eq!(store["generation"].as_u64().unwrap(), generation_before + 1);
    assert_eq!(store["tokens"]["refresh_token"], refreshed["refresh_token"]);
    for report in &reports {
        assert_eq!(
            report["refresh_token"], refreshed["refresh_token"],
            "every peer reports the saved set"
        );
    }
    assert!(!env.journal_path().exists(), "journal left behind");
    assert_eq!(env.store_temp_files(), Vec::<String>::new());

    // The sandbox honours it: a forced refresh with the stored token works.
    env.cmd().args(["refresh", "--no-railway"]).assert().success();
    assert_eq!(stat(&sandbox.stats(), "refused"), 0);
}

#[test]
fn ten_concurrent_forced_refreshes_serialise_and_end_with_the_last_token() {
    const PROCESSES: usize = 10;
    let (sandbox, env) = given_authorised_sandbox();
    let generation_before = env.store_json()["generation"].as_u64().unwrap();
    let before = sandbox.stats();

    let (outputs, wall) = run_concurrently(&env, PROCESSES, &["refresh", "--no-railway", "--json", "--reveal"]);
    assert_all_succeeded(&outputs);

    let after = sandbox.stats();
    let requests = stat_delta(&before, &after, "token_requests");
    let issued = stat_delta(&before, &after, "tokens_issued");
    let refused = stat_delta(&before, &after, "refused");
    let rate_limited = stat_delta(&before, &after, "rate_limited");
    eprintln!(
        "FIGURES forced refresh: processes={PROCESSES} upstream_token_requests={requests} tokens_issued={issued} \
         refused={refused} rate_limited={rate_limited} wall_time_ms={}",
        wall.as_millis()
    );
    assert_eq!(refused, 0, "no upstream refusal");
    assert_eq!(rate_limited, 0);
    assert_eq!(requests, PROCESSES as u64, "one serialised request per process");
    assert_eq!(issued, PROCESSES as u64);

    // N different tokens, N consecutive generations; the last one is stored.
    let reports: Vec<Value> = outputs.iter().map(report_of).collect();
    let tokens: HashSet<&str> = reports.iter().map(|r| r["refresh_token"].as_str().unwrap()).collect();
    assert_eq!(tokens.len(), PROCESSES, "every process got its own token");
    let mut generations: Vec<u64> = reports.iter().map(|r| r["generation"].as_u64().unwrap()).collect();
    generations.sort_unstable();
    let expected: Vec<u64> = (1..=PROCESSES as u64).map(|i| generation_before + i).collect();
    assert_eq!(generations, expected);
    let last = reports
        .iter()
        .max_by_key(|r| r["generation"].as_u64().unwrap())
        .unwrap();
    let store = env.store_json();
    assert_eq!(
        store["generation"].as_u64().unwrap(),
        generation_before + PROCESSES as u64
    );
    assert_eq!(store["tokens"]["refresh_token"], last["refresh_token"]);
    assert!(store["previous"]["rotated_at"].is_string());
    assert!(!env.journal_path().exists(), "journal left behind");
    assert_eq!(env.store_temp_files(), Vec::<String>::new());

    // The sandbox refuses every older token, so this only works with the last one.
    env.cmd().args(["refresh", "--no-railway"]).assert().success();
    let finally = sandbox.stats();
    assert_eq!(stat(&finally, "refused"), 0);
    assert_eq!(stat_delta(&after, &finally, "tokens_issued"), 1);
}

/// Takes the store's lock the way a peer process would (flock on `<store>.lock`).
fn hold_store_lock(env: &TestEnv) -> File {
    let lock_path = env.store_path().with_file_name("tokens.json.lock");
    std::fs::create_dir_all(lock_path.parent().unwrap()).unwrap();
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .expect("open lock file");
    file.lock().expect("lock");
    file
}

#[test]
fn a_held_lock_times_out_with_exit_5_and_sends_nothing() {
    let withings = silent_withings();
    let env = given_expired_store(&withings.uri());
    let stored = env.store_bytes();
    let held = hold_store_lock(&env);

    let started = Instant::now();
    let out = env.run(&["refresh", "--no-railway", "--lock-timeout", "200ms"]);
    let waited = started.elapsed();
    assert_eq!(out.code, 5, "{out:?}");
    let stderr = out.stderr;
    eprintln!(
        "FIGURES lock timeout: --lock-timeout=200ms process_wall_time_ms={}",
        waited.as_millis()
    );
    // The wait is said as it was given, not as "0 s".
    let lock_path = env.store_path().with_file_name("tokens.json.lock");
    let said = format!(
        "error: the lock on {} was not free within 200 ms: other withings-token runs held it [LOCK_TIMEOUT]",
        lock_path.display()
    );
    assert!(stderr.lines().any(|l| l == said), "{stderr}");
    assert!(stderr.contains("retry later"), "{stderr}");
    assert!(waited >= Duration::from_millis(200), "gave up after {waited:?}");
    assert_eq!(env.store_bytes(), stored, "store touched");

    // JSON callers get the code on stdout too.
    let out = env.run(&["refresh", "--no-railway", "--lock-timeout", "100ms", "--json"]);
    assert_eq!(out.code, 5, "{out:?}");
    assert_eq!(out.json()["error"]["code"], "LOCK_TIMEOUT");

    drop(held);
    withings.verify();
}

#[test]
fn a_refresh_waits_for_a_peer_holding_the_lock_then_proceeds() {
    let withings = withings_answering(new_tokens(NEW_ACCESS, NEW_REFRESH)).times(1);
    let env = given_expired_store(&withings.uri());
    let held = hold_store_lock(&env);
    let child = env
        .std_cmd()
        .args(["refresh", "--no-railway", "--lock-timeout", "30s"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        env.stored_refresh_token(),
        OLD_REFRESH,
        "refreshed while the lock was held"
    );
    let released = Instant::now();
    drop(held);
    let output = child.wait_with_output().unwrap();
    eprintln!(
        "FIGURES lock wait: finished {} ms after the peer released the lock",
        released.elapsed().as_millis()
    );
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(env.stored_refresh_token(), NEW_REFRESH);
    withings.verify();
}

// ---------------------------------------------------------------------------
// a set that is not due

#[test]
fn a_set_not_due_is_read_without_the_lock_and_nothing_is_written() {
    let (env, issued, _withings) = given_a_set_not_due();
    let before = env.store_bytes();
    // Another run holds the lock: a run that finds nothing to do does not wait for it.
    let lock_path = env.store_path().with_file_name("tokens.json.lock");
    let held = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .unwrap();
    held.lock().unwrap();
    let out = env.run(&[
        "refresh",
        "--if-needed",
        "--no-railway",
        "--lock-timeout",
        "0s",
        "--json",
    ]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.json()["outcome"], "not_due");
    assert_eq!(issued.load(Ordering::SeqCst), 0);
    assert_eq!(env.store_bytes(), before, "nothing written");
    // A forced one does wait for it, and says so.
    let forced = env.run(&["refresh", "--no-railway", "--lock-timeout", "0s"]);
    assert_eq!(forced.code, 5, "{forced:?}");
    assert!(forced.stderr.contains("[LOCK_TIMEOUT]"), "{forced:?}");
    drop(held);
}
