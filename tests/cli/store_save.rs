//! A Withings answer is never dropped because the store could not take it:
//! every descriptor and byte the save needs is taken before the request (a
//! store that cannot be saved, a full disk, a file size limit or the largest
//! generation fail before anything is sent); a save that fails all the same
//! keeps the set in a rescue file (or, in `serve`, in memory) that the next
//! run adopts; a store deleted or a disk filled while Withings answers still
//! ends with the new set saved; and a run whose lock file was deleted under
//! it still saves its answer, while the run that got in beside it waits
//! instead of sending the same token. The sandbox refuses a rotated token at
//! once, so the sandbox tests end by proving the stored token is the live
//! one.

use crate::support::*;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use wiremock::{Request, Respond};

/// A refresh the sandbox accepts: the stored token is the live one.
fn assert_the_stored_token_is_live(sandbox: &SandboxProcess, env: &TestEnv) {
    let before = sandbox.stats();
    let out = env.run(&["refresh", "--no-railway", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let after = sandbox.stats();
    assert_eq!(stat_delta(&before, &after, "refused"), 0);
    assert_eq!(stat_delta(&before, &after, "tokens_issued"), 1);
}

// ---------------------------------------------------------------------------
// out of descriptors

/// `ulimit -n N` for every N from too few to start up to enough: each run
/// either refreshes, or stops with nothing sent and says "Too many open
/// files" with the limit as the next step; never an answer dropped, never
/// a panic.
#[test]
fn no_descriptor_limit_drops_an_answer_or_panics() {
    let (sandbox, env) = given_authorised_sandbox();
    let mut refreshed = 0;
    for limit in 4..=24 {
        let before = sandbox.stats();
        let stored = env.store_bytes();
        let out = env.run_under_sh(
            &format!("ulimit -n {limit}"),
            &["refresh", "--no-railway", "--retries", "0"],
            Duration::from_secs(30),
        );
        let issued = stat_delta(&before, &sandbox.stats(), "tokens_issued");
        match out.code {
            0 => {
                assert_eq!(issued, 1, "limit {limit}: {out:?}");
                refreshed += 1;
            }
            3 => {
                assert_eq!(issued, 0, "limit {limit}: an answer came and was not saved: {out:?}");
                assert!(out.stderr.contains("Too many open files"), "limit {limit}: {out:?}");
                assert!(
                    out.stderr
                        .contains("next: raise the limit on open files (`ulimit -n 1024` in the shell"),
                    "limit {limit}: {out:?}"
                );
                assert_eq!(env.store_bytes(), stored, "limit {limit}");
            }
            other => panic!("limit {limit}: exit {other}: {out:?}"),
        }
        assert_eq!(stat(&sandbox.stats(), "refused"), 0, "limit {limit}");
    }
    assert!(refreshed >= 4, "the higher limits refresh: {refreshed}");
    assert_the_stored_token_is_live(&sandbox, &env);
}

// ---------------------------------------------------------------------------
// the rescue file

const KEPT: &str = "the new set is kept in ";

/// A refresh whose write of the store fails (an injected I/O error) after
/// Withings answered; the rescue file's write works.
#[cfg(feature = "failpoints")]
fn refresh_whose_save_fails(env: &TestEnv) -> Run {
    let mut cmd = env.cmd();
    cmd.args(["refresh", "--no-railway"])
        .env("WITHINGS_TOKEN_FAILPOINT", "error:fill:tokens.json");
    Run::of(&mut cmd)
}

/// Needs `--features failpoints` (the failure is injected).
#[cfg(feature = "failpoints")]
#[test]
fn a_store_that_fails_to_save_an_answer_keeps_it_in_a_rescue_file_the_next_run_adopts() {
    let (sandbox, env) = given_authorised_sandbox();
    let stored = env.store_bytes();
    let rescue = env.store_path().with_file_name("tokens.json.rescue");

    let out = refresh_whose_save_fails(&env);

    assert_eq!(out.code, 3, "{out:?}");
    let said = format!(
        "error: cannot write token store {}: injected failure (WITHINGS_TOKEN_FAILPOINT); the new tokens could not be saved; {KEPT}{}, and the next refresh saves it into the store [CONFIGURATION_ERROR]",
        env.store_path().display(),
        rescue.display()
    );
    assert!(out.stderr.lines().any(|l| l == said), "{out:?}");
    assert!(
        out.stderr
            .contains("then run `withings-token refresh --if-needed`, which saves the set kept in"),
        "{out:?}"
    );
    assert_eq!(env.store_bytes(), stored, "the store is as it was");
    assert_eq!(file_mode(&rescue), 0o600);
    assert_eq!(stat(&sandbox.stats(), "tokens_issued"), 2, "the answer came");
    let status = env.run(&["status"]);
    assert!(
        status.stderr.contains(&format!(
            "note: a set a previous run could not save waits in {}; the next `withings-token refresh --if-needed` saves it into the store",
            rescue.display()
        )),
        "{status:?}"
    );

    // The next run adopts it: the sandbox has already retired the stored token.
    let out = env.run(&["refresh", "--if-needed", "--no-railway", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stderr.contains("saved the set a previous run could not save"),
        "{out:?}"
    );
    assert!(!rescue.exists(), "the rescue file is gone once adopted");
    assert_eq!(env.generation(), 3);
    assert_eq!(stat(&sandbox.stats(), "tokens_issued"), 2, "adopting sends nothing");
    assert_the_stored_token_is_live(&sandbox, &env);
}

/// Needs `--features failpoints` (the failure is injected).
#[cfg(feature = "failpoints")]
#[test]
fn a_rescue_waiting_while_only_the_consent_state_moved_on_is_still_adopted() {
    let (sandbox, env) = given_authorised_sandbox();
    let rescue = env.store_path().with_file_name("tokens.json.rescue");
    assert_eq!(refresh_whose_save_fails(&env).code, 3);
    // `auth-url` saves a consent state: the generation moves, the set does not.
    let out = env.run(&["auth-url"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stderr.contains("saved the set a previous run could not save"),
        "{out:?}"
    );
    assert!(!rescue.exists());
    assert_the_stored_token_is_live(&sandbox, &env);
}

/// A rescue of a set older than the store's (a host that kept it while
/// others refreshed; here written by hand) is dropped, never saved over the
/// newer set.
#[test]
fn a_rescued_set_older_than_the_stores_is_dropped() {
    let (sandbox, env) = given_authorised_sandbox();
    let rescue = env.store_path().with_file_name("tokens.json.rescue");
    let mut stale = env.store_json();
    stale["tokens"]["refresh_token"] = json!("an-older-refresh-token");
    std::fs::write(&rescue, serde_json::to_vec(&stale).expect("json")).expect("write rescue");

    let out = env.run(&["refresh", "--no-railway"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stderr.contains("is dropped: the store moved on to generation"),
        "{out:?}"
    );
    assert!(!rescue.exists());
    assert_ne!(env.stored_refresh_token(), "an-older-refresh-token");
    assert_the_stored_token_is_live(&sandbox, &env);
}

/// Needs `--features failpoints` (the failure is injected).
#[cfg(feature = "failpoints")]
#[test]
fn serve_keeps_a_set_it_could_save_nowhere_in_memory_and_saves_it_at_its_next_transaction() {
    let (sandbox, mut env) = given_authorised_sandbox();
    env.serve_credentials()
        // The store's save and the rescue's both fail, once each.
        .set("WITHINGS_TOKEN_FAILPOINT", "error:fill#2");
    let server = env.serve(&["--check-interval", "1h"]);
    env.set("WITHINGS_TOKEN_FAILPOINT", "");

    let first = server.admin_post("/admin/token/refresh", Some(r#"{"update_railway": false}"#));
    assert_eq!(first.error_code(), "CONFIGURATION_ERROR", "{first:?}");
    assert!(
        first.json()["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .ends_with("the new set is kept in this server's memory, and the next refresh saves it into the store"),
        "{first:?}"
    );
    assert_eq!(stat(&sandbox.stats(), "tokens_issued"), 2);

    let second = server.admin_post("/admin/token/refresh", Some(r#"{"update_railway": false}"#));
    assert_eq!(second.status, 200, "{second:?}");
    assert!(
        server.log().contains("saved the set a previous run could not save"),
        "{}",
        server.log()
    );
    let after = sandbox.stats();
    assert_eq!(stat(&after, "refused"), 0, "the set kept in memory was the live one");
    drop(server);
    assert_the_stored_token_is_live(&sandbox, &env);
}

// ---------------------------------------------------------------------------
// a lock file deleted while a run asks Withings

/// A `refresh --json` whose request the sandbox answers 1.5 s late, once
/// the sandbox has it.
fn a_refresh_asking_a_slow_sandbox(sandbox: &SandboxProcess, env: &TestEnv) -> std::process::Child {
    let before = sandbox.stats();
    sandbox.fault(json!({"kind": "delay", "delay_ms": 1500}));
    let child = env.spawn(&["refresh", "--no-railway", "--json", "--timeout", "10s"]);
    sandbox.until_asked(&before, 1);
    child
}

#[test]
fn a_run_whose_lock_file_was_deleted_mid_request_saves_its_answer_and_the_next_run_waits() {
    let (sandbox, env) = given_authorised_sandbox();
    env.make_store_due();
    let before = sandbox.stats();
    let first = a_refresh_asking_a_slow_sandbox(&sandbox, &env);
    std::fs::remove_file(env.store_path().with_file_name("tokens.json.lock")).expect("rm the lock file");
    let second = env.spawn(&["refresh", "--if-needed", "--no-railway", "--json"]);

    let first = first.wait_with_output().expect("wait");
    let second = second.wait_with_output().expect("wait");
    assert_all_succeeded(&[first.clone(), second.clone()]);
    assert_eq!(report_of(&first)["outcome"], "refreshed");
    assert_eq!(report_of(&second)["outcome"], "already_refreshed_by_peer");
    let second_stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        second_stderr.contains("another withings-token run is asking Withings right now"),
        "{second_stderr}"
    );
    assert!(!second_stderr.contains("temporary file"), "{second_stderr}");
    let after = sandbox.stats();
    assert_eq!(
        stat_delta(&before, &after, "tokens_issued"),
        1,
        "the same token was sent twice"
    );
    assert_eq!(stat_delta(&before, &after, "refused"), 0);
    assert_the_stored_token_is_live(&sandbox, &env);
}

/// The lock file and the journal both
/// deleted while a run waits for Withings: a second run gets in and
/// rotates first. The first, refused, reports the other run's set, which
/// the store holds, instead of "re-authorise".
#[test]
fn a_run_refused_because_a_run_beside_it_rotated_first_reports_that_set_not_reauthorise() {
    let (sandbox, env) = given_authorised_sandbox();
    env.make_store_due();
    let first = a_refresh_asking_a_slow_sandbox(&sandbox, &env);
    std::fs::remove_file(env.store_path().with_file_name("tokens.json.lock")).expect("rm the lock file");
    std::fs::remove_file(env.journal_path()).expect("rm the journal");
    let second = env.run(&["refresh", "--no-railway", "--json"]);
    assert_eq!(second.code, 0, "{second:?}");

    let first = first.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert_eq!(first.status.code(), Some(0), "{stderr}");
    assert_eq!(report_of(&first)["outcome"], "already_refreshed_by_peer");
    assert!(stderr.contains("another run saved a newer set meanwhile"), "{stderr}");
    assert_the_stored_token_is_live(&sandbox, &env);
}

// ---------------------------------------------------------------------------
// Redis unreachable after Withings answered

#[test]
fn an_answer_redis_cannot_take_is_kept_on_this_host_and_adopted_once_redis_is_back() {
    let withings = Upstream::start();
    withings.mount(
        refresh_of(OLD_REFRESH)
            .respond_with(new_tokens(NEW_ACCESS, NEW_REFRESH).set_delay(Duration::from_millis(800)))
            .expect(1),
    );
    withings.mount(
        refresh_of(NEW_REFRESH)
            .respond_with(new_tokens("third-access", "third-refresh"))
            .expect(1),
    );
    let (redis, mut env) = given_expired_redis_store(&withings.uri());
    env.set("WITHINGS_TOKEN_LEASE_TTL", "1s");

    let out = while_withings_answers(
        &env,
        &["refresh", "--no-railway", "--timeout", "10s"],
        &withings,
        || {
            redis.signal("STOP");
        },
    );
    redis.signal("CONT");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{stderr}");
    assert!(stderr.contains("[STORE_UNAVAILABLE]"), "{stderr}");
    assert!(stderr.contains(KEPT), "{stderr}");
    let rescue_dir = env.home().join("state/withings-token/redis-rescue");
    let kept: Vec<_> = std::fs::read_dir(&rescue_dir).expect("rescue dir").flatten().collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(file_mode(&kept[0].path()), 0o600);
    assert_eq!(
        redis.store_json()["tokens"]["refresh_token"],
        OLD_REFRESH,
        "Redis never got it"
    );

    let out = env.run(&["refresh", "--if-needed", "--no-railway", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stderr.contains("saved the set a previous run could not save"),
        "{out:?}"
    );
    assert_eq!(redis.store_json()["tokens"]["refresh_token"], NEW_REFRESH);
    assert_eq!(std::fs::read_dir(&rescue_dir).expect("rescue dir").count(), 0);

    // The adopted token is the one sent next.
    let out = env.run_fast(&["refresh", "--no-railway"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(redis.store_json()["tokens"]["refresh_token"], "third-refresh");
    withings.verify();
}

/// `serve`'s background check adopts a rescued set without waiting for
/// the stored one to be due.
#[cfg(feature = "failpoints")]
#[test]
fn serve_adopts_a_waiting_rescue_at_its_next_check() {
    let (sandbox, mut env) = given_authorised_sandbox();
    let rescue = env.store_path().with_file_name("tokens.json.rescue");
    assert_eq!(refresh_whose_save_fails(&env).code, 3);
    assert!(rescue.exists());

    env.serve_credentials();
    let server = env.serve(&["--check-interval", "100ms"]);
    assert!(
        wait_until(Duration::from_secs(10), || !rescue.exists()),
        "{}",
        server.log()
    );
    assert!(
        server.log().contains("saved the set a previous run could not save"),
        "{}",
        server.log()
    );
    drop(server);
    assert_the_stored_token_is_live(&sandbox, &env);
}

/// The store's rename and the rescue's
/// both fail after Withings answered (an immutable directory, a disk
/// error). The filled temporary files are kept, and the next run finds the
/// set in them instead of removing them as a dead writer's leftovers.
#[cfg(feature = "failpoints")]
#[test]
fn a_set_no_file_could_take_is_found_by_the_next_run_in_the_temporary_file_it_was_written_to() {
    let (sandbox, env) = given_authorised_sandbox();
    let stored = env.store_bytes();
    let mut cmd = env.cmd();
    cmd.args(["refresh", "--no-railway"])
        .env("WITHINGS_TOKEN_FAILPOINT", "error:rename");
    let out = Run::of(&mut cmd);
    assert_eq!(out.code, 3, "{out:?}");
    assert!(
        out.stderr.contains("the new set could not be kept anywhere either"),
        "{out:?}"
    );
    assert_eq!(env.store_bytes(), stored);
    assert!(
        !env.store_temp_files().is_empty(),
        "the answer's temporary files are kept"
    );

    let out = env.run(&["refresh", "--if-needed", "--no-railway"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stderr
            .contains("found a set a previous run received but did not save"),
        "{out:?}"
    );
    assert!(
        out.stderr.contains("saved the set a previous run could not save"),
        "{out:?}"
    );
    assert_eq!(env.store_temp_files(), Vec::<String>::new());
    assert_the_stored_token_is_live(&sandbox, &env);
}

// ---------------------------------------------------------------------------
// a disk that cannot take the set

/// `args` run as `env.run` runs them, but started by `sh` with files capped
/// at 8 KiB (`ulimit -f 16` counts 512-byte blocks). SIGXFSZ is ignored, so
/// an oversized write fails with EFBIG, as a full disk does.
fn run_with_small_files(env: &TestEnv, args: &[&str]) -> Run {
    env.run_under_sh("trap '' XFSZ; ulimit -f 16", args, std::time::Duration::from_secs(60))
}

#[test]
fn a_store_that_cannot_be_saved_fails_before_anything_is_sent() {
    let (withings, issued) = withings_always_rotating();
    let env = given_expired_store(&withings.uri());
    let stored = env.store_bytes();

    let out = run_with_small_files(&env, &["refresh", "--no-railway", "--retries", "0"]);
    let stderr = &out.stderr;
    assert_eq!(out.code, 3, "{stderr}");
    assert!(stderr.contains("CONFIGURATION_ERROR"), "{stderr}");
    assert!(stderr.contains("cannot reserve"), "{stderr}");
    assert!(stderr.contains("nothing was sent to Withings"), "{stderr}");
    // The limit is named, not the disk.
    assert!(
        stderr.contains("next: raise the file-size limit (`ulimit -f unlimited` in the shell"),
        "{stderr}"
    );
    assert_eq!(issued.load(Ordering::SeqCst), 0, "the request went out");
    assert_eq!(withings.requests().len(), 0);
    assert_eq!(env.store_bytes(), stored);
    assert!(!env.journal_path().exists(), "journal left behind");
    assert_eq!(env.store_temp_files(), Vec::<String>::new());

    // With room again, the same store refreshes.
    let out = env.run(&["refresh", "--no-railway"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(env.stored_refresh_token(), "mock-refresh-1");
}

/// Writes to `dir` until its file system is full.
fn fill_disk(dir: &Path) {
    use std::io::Write;
    let Ok(mut filler) = std::fs::File::create(dir.join("filler")) else {
        return;
    };
    while filler.write_all(&[1u8; 4096]).and_then(|()| filler.sync_all()).is_ok() {}
}

/// [`Rotating`], but it first fills the disk at `dir`, while the request is out.
struct FillingTheDisk {
    dir: PathBuf,
    then: Rotating,
}

impl Respond for FillingTheDisk {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        fill_disk(&self.dir);
        self.then.respond(request)
    }
}

#[test]
#[ignore = "needs root (mounts a tmpfs): `bash .ci/test` runs it as root"]
fn a_disk_that_fills_up_while_withings_answers_does_not_lose_the_rotated_pair() {
    let disk = TinyDisk::mount();
    let withings = Upstream::start();
    let issued = Arc::new(AtomicU64::new(0));
    withings.mount(token_request().respond_with(FillingTheDisk {
        dir: disk.root.clone(),
        then: Rotating { issued: issued.clone() },
    }));
    let mut env = given_expired_store(&withings.uri());
    let store = disk.root.join("tokens.json");
    std::fs::copy(env.store_path(), &store).expect("store onto the tiny disk");
    env.set("WITHINGS_TOKEN_STORE", store.display().to_string());

    let out = env.run(&["refresh", "--no-railway", "--retries", "0"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(issued.load(Ordering::SeqCst), 1);
    let saved: Value = serde_json::from_slice(&std::fs::read(&store).unwrap()).unwrap();
    assert_eq!(saved["tokens"]["refresh_token"], "mock-refresh-1");
    assert_eq!(saved["previous"]["refresh_token"], OLD_REFRESH);
    assert_eq!(saved["generation"], 2);
}

/// `ulimit -f` with SIGXFSZ left at its default: the write fails with a
/// message (exit 6, the set saved), never a silent death by signal.
#[test]
fn a_file_size_limit_without_a_trap_is_a_reported_failure_not_a_signal() {
    let withings = withings_answering(new_tokens(NEW_ACCESS, NEW_REFRESH)).times(1);
    let env = given_expired_store(&withings.uri());
    let padding = format!("# {}\n", "x".repeat(20 * 1024));
    let env_file = env.write_env_file(&format!("{padding}WITHINGS_REFRESH_TOKEN={OLD_REFRESH}\n"));
    // 16 KiB: room for the store's reservation, not for the 20 KiB env file.
    let out = env.run_under_sh(
        "ulimit -f 32",
        &["refresh", "--env-file", ".env"],
        std::time::Duration::from_secs(60),
    );
    assert_eq!(out.code, 6, "{out:?}");
    assert!(out.stderr.contains("[ENV_FILE_UPDATE_FAILED]"), "{out:?}");
    assert_eq!(env.stored_refresh_token(), NEW_REFRESH, "the set is saved");
    assert!(
        std::fs::read_to_string(env_file).unwrap().contains(OLD_REFRESH),
        "the env file is intact"
    );
}

#[test]
fn a_store_at_the_largest_generation_is_refused_before_anything_is_sent() {
    let (withings, issued) = withings_always_rotating();
    let env = given_expired_store(&withings.uri());
    let mut store = env.store_json();
    store["generation"] = json!(u64::MAX);
    env.write_store_bytes(&serde_json::to_vec_pretty(&store).unwrap());
    let stored = env.store_bytes();

    let out = env.run(&["refresh", "--no-railway"]);
    let stderr = &out.stderr;
    assert_eq!(out.code, 3, "{stderr}");
    assert!(stderr.contains("18446744073709551615"), "{stderr}");
    assert!(stderr.contains("nothing was sent to Withings"), "{stderr}");
    assert_eq!(issued.load(Ordering::SeqCst), 0);
    assert_eq!(env.store_bytes(), stored, "the generation wrapped or the store changed");
    assert!(!env.journal_path().exists());
}

/// The store file deleted while Withings answers: the answer is the only
/// live pair; the store is written again, never an internal error.
#[test]
fn a_store_deleted_while_withings_answers_is_written_again_with_the_new_set() {
    let withings =
        withings_answering(new_tokens(NEW_ACCESS, NEW_REFRESH).set_delay(std::time::Duration::from_millis(800)))
            .times(1);
    let env = given_expired_store(&withings.uri());
    let out = while_withings_answers(&env, &["refresh", "--timeout", "10s"], &withings, || {
        std::fs::remove_file(env.store_path()).unwrap();
    });
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("was deleted while this run asked Withings; the new set is written again"),
        "{stderr}"
    );
    assert_eq!(env.stored_refresh_token(), NEW_REFRESH);
    withings.verify();
}

/// Needs `--features failpoints` (the failure is injected).
#[cfg(feature = "failpoints")]
#[test]
fn a_sealed_store_that_fails_to_save_an_answer_keeps_it_sealed_in_the_rescue_file_the_next_run_adopts() {
    let (sandbox, env) = given_authorised_sandbox();
    let key = env.age_key("key.txt");
    assert_eq!(env.run_and(&["rekey"], &key.flags()).code, 0, "sealed first");
    let rescue = env.store_path().with_file_name("tokens.json.rescue");

    let mut cmd = env.cmd();
    cmd.args(["refresh", "--no-railway"])
        .args(key.flags())
        .env("WITHINGS_TOKEN_FAILPOINT", "error:fill:tokens.json");
    let out = Run::of(&mut cmd);
    assert_eq!(out.code, 3, "{out:?}");
    assert_eq!(stat(&sandbox.stats(), "tokens_issued"), 2, "the answer came");

    // The rescue holds the new set under the seal, as the store would.
    let kept: Value = serde_json::from_slice(&std::fs::read(&rescue).unwrap()).unwrap();
    assert_eq!(kept["version"], 2, "{kept}");
    assert!(kept.get("tokens").is_none(), "{kept}");
    let sealed = kept["sealed"].as_str().expect("a sealed part");
    let part: Value = serde_json::from_slice(&open_by_hand(sealed, &key.identity)).unwrap();
    let new_refresh = part["tokens"]["refresh_token"].as_str().unwrap().to_owned();
    assert!(!std::fs::read_to_string(&rescue).unwrap().contains(&new_refresh));

    // A run without the key leaves it in place; the run with the key adopts it.
    let keyless = env.run(&["refresh", "--if-needed", "--no-railway"]);
    assert_eq!(keyless.code, 3, "{keyless:?}");
    assert!(rescue.exists(), "kept for a run that holds the key");
    let out = env.run_and(&["refresh", "--if-needed", "--no-railway"], &key.flags());
    assert_eq!(out.code, 0, "{out:?}");
    assert!(!rescue.exists(), "adopted");
    assert_eq!(stat(&sandbox.stats(), "tokens_issued"), 2, "adopting sends nothing");
    let opened = env.run(&["export", "--identity", key.file.to_str().unwrap()]);
    assert!(
        opened
            .stdout
            .contains(&format!("WITHINGS_REFRESH_TOKEN={new_refresh}\n")),
        "{opened:?}"
    );
}
