//! Crash safety and recovery: a process killed (SIGKILL) or aborted at any
//! instant leaves either the old or the new complete store, and the next
//! run cleans up and reports what was interrupted. The failpoint tests need
//! `--features failpoints` (the release binary has no such switch).

use crate::support::*;

use std::io::Read;
use std::net::TcpListener;
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

const SIGKILL: i32 = 9;

/// A peer that accepts connections, reads the request and never answers.
struct BlackHole {
    url: String,
    requests_read: Arc<AtomicUsize>,
}

fn black_hole() -> BlackHole {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().unwrap());
    let requests_read = Arc::new(AtomicUsize::new(0));
    let counter = requests_read.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let counter = counter.clone();
            std::thread::spawn(move || {
                let mut seen = Vec::new();
                let mut buf = [0u8; 4096];
                let mut counted = false;
                // Hold the connection open until the client goes away.
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 {
                        return;
                    }
                    seen.extend_from_slice(&buf[..n]);
                    if !counted && String::from_utf8_lossy(&seen).contains("grant_type=refresh_token") {
                        counted = true;
                        counter.fetch_add(1, Ordering::SeqCst);
                    }
                }
            });
        }
    });
    BlackHole { url, requests_read }
}

#[test]
fn sigkill_while_the_request_is_in_flight_leaves_the_store_intact() {
    let (sandbox, env) = given_authorised_sandbox();
    let stored = env.store_bytes();
    let before = sandbox.stats();
    let peer = black_hole();

    let mut child = env
        .std_cmd()
        .args(["refresh", "--no-railway", "--timeout", "60s", "--retries", "0"])
        .env("WITHINGS_API_URL", &peer.url)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let in_flight = wait_until(Duration::from_secs(20), || {
        peer.requests_read.load(Ordering::SeqCst) >= 1 && env.journal_path().exists()
    });
    assert!(in_flight, "the refresh request never reached the slow peer");
    std::thread::sleep(Duration::from_millis(100));
    child.kill().expect("SIGKILL");
    let status = child.wait().unwrap();
    eprintln!(
        "FIGURES sigkill in flight: killed {} ms after spawn, status {status:?}",
        started.elapsed().as_millis()
    );
    assert_eq!(status.signal(), Some(SIGKILL), "the process finished before the kill");

    assert_eq!(env.store_bytes(), stored, "the store changed");
    assert!(env.journal_path().exists(), "no write-ahead mark before the request");
    let journal: Value = serde_json::from_slice(&std::fs::read(env.journal_path()).unwrap()).unwrap();
    assert_eq!(journal["grant"], "refresh_token");
    assert_eq!(journal["pid"], child.id());

    // The next run (against the real sandbox) reports the interruption and succeeds.
    let out = env.run(&["refresh", "--no-railway"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("died while asking Withings"), "{}", out.stderr);
    assert!(out.stderr.contains(&format!("pid {}", child.id())), "{}", out.stderr);
    let after = sandbox.stats();
    assert_eq!(stat(&after, "refused"), 0);
    assert_eq!(stat_delta(&before, &after, "tokens_issued"), 1);
    assert_ne!(env.store_bytes(), stored);
    assert!(!env.journal_path().exists(), "journal not cleared");
    assert_eq!(env.store_temp_files(), Vec::<String>::new());
    assert!(
        !env.store_dir_entries()
            .iter()
            .any(|n| n.starts_with(".tokens.json.tmp")),
        "{:?}",
        env.store_dir_entries()
    );
}

#[test]
fn sigkill_at_any_instant_leaves_the_old_or_the_new_complete_store() {
    let (withings, issued) = withings_always_rotating();
    let env = given_expired_store(&withings.uri());

    // Calibrate: how long one uncontended run takes from spawn to exit.
    let calibration = Instant::now();
    env.cmd().args(["refresh", "--no-railway"]).assert().success();
    let run_time = calibration.elapsed();

    const ROUNDS: u32 = 40;
    let (mut killed, mut finished, mut journals, mut temps) = (0, 0, 0, 0);
    for round in 0..ROUNDS {
        let old_generation = env.generation();
        let old_token = env.stored_refresh_token();
        let mut child = env
            .std_cmd()
            .args(["refresh", "--no-railway", "--retries", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Sweep the kill instant across the whole run (start-up, lock, request, save).
        std::thread::sleep(run_time * round / ROUNDS);
        let _ = child.kill();
        let status = child.wait().unwrap();
        if status.signal() == Some(SIGKILL) {
            killed += 1;
        } else {
            assert!(status.success(), "round {round}: {status:?}");
            finished += 1;
        }
        // Whole and parseable, and either the old set or one Withings issued.
        let store = env.store_json();
        let new_generation = store["generation"].as_u64().unwrap();
        let token = store["tokens"]["refresh_token"].as_str().unwrap().to_owned();
        if new_generation == old_generation {
            assert_eq!(
                token, old_token,
                "round {round}: token changed without a new generation"
            );
        } else {
            // +2: the round first saved the set a killed round had written
            // to its temporary file but not renamed, then refreshed.
            assert!(
                new_generation == old_generation + 1 || new_generation == old_generation + 2,
                "round {round}: {old_generation} -> {new_generation}"
            );
            assert!(token.starts_with("mock-refresh-"), "round {round}: {token}");
            assert_ne!(token, old_token);
        }
        journals += usize::from(env.journal_path().exists());
        temps += env.store_temp_files().len();
    }
    eprintln!(
        "FIGURES sigkill sweep: run_time_ms={} rounds={ROUNDS} killed={killed} finished_before_kill={finished} \
         journals_left={journals} temp_files_seen={temps} upstream_tokens_issued={}",
        run_time.as_millis(),
        issued.load(Ordering::SeqCst)
    );

    // Whatever was left behind, the next run cleans it up and succeeds.
    let old_generation = env.generation();
    env.cmd().args(["refresh", "--no-railway"]).assert().success();
    // +2 when the last killed round had filled its temporary file.
    let grew = env.generation() - old_generation;
    assert!(grew == 1 || grew == 2, "{old_generation} + {grew}");
    assert!(!env.journal_path().exists());
    assert_eq!(env.store_temp_files(), Vec::<String>::new());
}

/// Without `--features failpoints` (the release build) the variable is inert.
#[cfg(not(feature = "failpoints"))]
#[test]
fn the_failpoint_variable_does_nothing_in_a_build_without_the_feature() {
    let (sandbox, env) = given_authorised_sandbox();
    let old_token = env.stored_refresh_token();
    env.cmd()
        .args(["refresh", "--no-railway"])
        .env("WITHINGS_TOKEN_FAILPOINT", "after_temp_write")
        .assert()
        .success();
    assert_ne!(env.stored_refresh_token(), old_token);
    assert_eq!(env.store_temp_files(), Vec::<String>::new());
    assert_eq!(stat(&sandbox.stats(), "refused"), 0);
}

/// Crashes forced at chosen instants of the write path. Only test builds
/// have the failpoint (`--features failpoints`).
#[cfg(feature = "failpoints")]
mod failpoints {
    use super::*;

    const SIGABRT: i32 = 6;

    fn run_with_failpoint(env: &TestEnv, failpoint: &str) -> std::process::ExitStatus {
        let output = env
            .std_cmd()
            .args(["refresh", "--no-railway", "--retries", "0"])
            .env("WITHINGS_TOKEN_FAILPOINT", failpoint)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(
            output.status.signal(),
            Some(SIGABRT),
            "{failpoint}: the process did not abort: {:?}\nstderr: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        output.status
    }

    /// The next run without a failpoint: succeeds, reports the interrupted
    /// request, and leaves neither journal nor temporary files.
    fn next_run_recovers(env: &TestEnv) -> String {
        let out = env.run(&["refresh", "--no-railway"]);
        assert_eq!(out.code, 0, "{out:?}");
        let stderr = out.stderr;
        assert!(stderr.contains("died while asking Withings"), "{stderr}");
        assert!(!env.journal_path().exists(), "journal left behind");
        assert_eq!(env.store_temp_files(), Vec::<String>::new());
        stderr
    }

    #[test]
    fn crash_after_the_store_temp_write_keeps_the_old_complete_store() {
        let (withings, issued) = withings_always_rotating();
        let env = given_expired_store(&withings.uri());
        let stored = env.store_bytes();

        run_with_failpoint(&env, "after_temp_write:tokens.json");
        assert_eq!(issued.load(Ordering::SeqCst), 1, "Withings answered before the crash");
        assert_eq!(env.store_bytes(), stored, "the old store must stay complete");
        assert!(env.journal_path().exists(), "the journal marks the lost answer");
        // The save's space, and the rescue's, both taken before the request.
        let temps = env.store_temp_files();
        assert_eq!(temps.len(), 2, "{temps:?}");
        assert!(temps[0].starts_with(".tokens.json.rescue.tmp."), "{temps:?}");
        assert!(temps[1].starts_with(".tokens.json.tmp."), "{temps:?}");

        // The filled temporary file holds the whole answer: the next run
        // saves it (generation 2) before its own refresh (generation 3).
        let stderr = next_run_recovers(&env);
        assert!(
            stderr.contains("found a set a previous run received but did not save (generation 2)"),
            "{stderr}"
        );
        let store = env.store_json();
        assert_eq!(store["generation"], 3);
        assert_eq!(store["tokens"]["refresh_token"], "mock-refresh-2");
        assert_eq!(store["previous"]["refresh_token"], "mock-refresh-1");
    }

    #[test]
    fn crash_after_the_store_rename_keeps_the_new_complete_store() {
        let (sandbox, env) = given_authorised_sandbox();
        let old_generation = env.generation();
        let old_token = env.stored_refresh_token();

        run_with_failpoint(&env, "after_rename:tokens.json");
        let store = env.store_json();
        assert_eq!(store["generation"].as_u64().unwrap(), old_generation + 1);
        let new_token = store["tokens"]["refresh_token"].as_str().unwrap().to_owned();
        assert_ne!(new_token, old_token);
        assert_eq!(store["previous"]["refresh_token"].as_str(), Some(old_token.as_str()));
        assert!(
            env.journal_path().exists(),
            "the crash came before the journal was cleared"
        );
        // Only the rescue's unused space is left, for the next run to clear.
        let temps = env.store_temp_files();
        assert_eq!(temps.len(), 1, "{temps:?}");
        assert!(temps[0].starts_with(".tokens.json.rescue.tmp."), "{temps:?}");

        // The sandbox refuses the old token: success proves the new one was saved whole.
        next_run_recovers(&env);
        assert_eq!(stat(&sandbox.stats(), "refused"), 0);
        assert_eq!(env.generation(), old_generation + 2);
    }

    #[test]
    fn crash_while_writing_the_journal_sends_nothing_and_recovers() {
        let (sandbox, env) = given_authorised_sandbox();
        let stored = env.store_bytes();
        let before = sandbox.stats();

        // The journal is the first file a refresh writes.
        run_with_failpoint(&env, "after_temp_write");
        assert_eq!(
            stat(&sandbox.stats(), "token_requests"),
            stat(&before, "token_requests")
        );
        assert_eq!(env.store_bytes(), stored);
        assert!(!env.journal_path().exists());
        let temps = env.store_temp_files();
        assert_eq!(temps.len(), 1, "{temps:?}");
        assert!(temps[0].starts_with(".tokens.json.journal.tmp."), "{temps:?}");

        let out = env.run(&["refresh", "--no-railway"]);
        assert_eq!(out.code, 0, "{out:?}");
        assert!(out.stderr.contains("temporary file"), "{}", out.stderr);
        assert_eq!(env.store_temp_files(), Vec::<String>::new());
        assert!(!env.journal_path().exists());
        assert_eq!(stat(&sandbox.stats(), "refused"), 0);
    }

    #[test]
    fn crash_right_after_the_journal_is_written_sends_nothing_and_recovers() {
        let (sandbox, env) = given_authorised_sandbox();
        let stored = env.store_bytes();
        let before = sandbox.stats();

        run_with_failpoint(&env, "after_rename");
        assert_eq!(
            stat(&sandbox.stats(), "token_requests"),
            stat(&before, "token_requests")
        );
        assert_eq!(env.store_bytes(), stored);
        assert!(env.journal_path().exists());
        assert_eq!(env.store_temp_files(), Vec::<String>::new());

        next_run_recovers(&env);
        assert_eq!(stat(&sandbox.stats(), "refused"), 0);
    }
}

// ---------------------------------------------------------------------------
// what the next run says

#[test]
fn an_interrupted_request_on_an_empty_store_says_nothing_was_ever_saved() {
    let withings = withings_answering(new_tokens(NEW_ACCESS, NEW_REFRESH)).times(1);
    let mut env = TestEnv::new();
    env.withings(&withings.uri())
        .set("WITHINGS_REFRESH_TOKEN", "seed-refresh-token");
    let journal = env.journal_path();
    std::fs::create_dir_all(journal.parent().unwrap()).unwrap();
    let mark = serde_json::json!({"pid": 4242, "started_at": "2026-01-01T00:00:00Z", "generation": 0, "grant": "refresh_token"});
    std::fs::write(&journal, mark.to_string()).unwrap();

    let out = env.run_fast(&["refresh", "--no-env-file"]);

    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stderr.contains("a previous run (pid 4242) died while asking Withings for a refresh_token grant at 2026-01-01T00:00:00Z; nothing was ever saved in this store"),
        "{out:?}"
    );
    assert!(!out.stderr.contains("generation 0 is the last one saved"), "{out:?}");
}
