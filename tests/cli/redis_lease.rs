//! Many hosts, one token set in Redis: "hosts" that share nothing but it
//! (each its own HOME) and the sandbox, which refuses any refresh token it
//! has rotated away. The lease keeps them to one Withings call; its fence
//! keeps a paused holder from overwriting a newer set; a lost lease sends
//! nothing more. `cargo test --features failpoints --test cli redis_lease::
//! -- --nocapture` prints the figures each concurrency test observed
//! (`FIGURES` lines).

use crate::support::*;

use std::collections::HashSet;
use std::process::{Child, Output};
use std::time::Duration;

// ---------------------------------------------------------------------------
// many hosts at once

/// Starts `per_host` copies of `args` on every host at once; waits for all.
fn run_on_every_host(envs: &[TestEnv], per_host: usize, args: &[&str]) -> (Vec<Output>, Duration) {
    run_all_at_once((0..per_host).flat_map(|_| envs.iter()), args)
}

#[test]
fn twenty_four_if_needed_refreshes_on_three_hosts_make_exactly_one_upstream_call() {
    const HOSTS: usize = 3;
    const PER_HOST: usize = 8;
    let (sandbox, redis, envs) = given_fleet(HOSTS);
    redis.make_store_due();
    let generation_before = redis.store_json()["generation"].as_u64().unwrap();
    let before = sandbox.stats();

    let args = ["refresh", "--if-needed", "--no-railway", "--json", "--reveal"];
    let (outputs, wall) = run_on_every_host(&envs, PER_HOST, &args);
    assert_all_succeeded(&outputs);

    let after = sandbox.stats();
    let reports: Vec<Value> = outputs.iter().map(report_of).collect();
    let outcomes = outcome_counts(&reports);
    eprintln!(
        "FIGURES redis if-needed: hosts={HOSTS} processes={} upstream_token_requests={} refused={} outcomes={outcomes:?} wall_time_ms={}",
        HOSTS * PER_HOST,
        stat_delta(&before, &after, "token_requests"),
        stat_delta(&before, &after, "refused"),
        wall.as_millis()
    );
    assert_eq!(
        stat_delta(&before, &after, "token_requests"),
        1,
        "exactly one upstream call"
    );
    assert_eq!(stat_delta(&before, &after, "refused"), 0);
    assert_eq!(outcomes.get("refreshed"), Some(&1), "{outcomes:?}");
    let refreshed = reports.iter().find(|r| r["outcome"] == "refreshed").unwrap();
    let store = redis.store_json();
    assert_eq!(store["generation"].as_u64().unwrap(), generation_before + 1);
    assert_eq!(store["tokens"]["refresh_token"], refreshed["refresh_token"]);
    for report in &reports {
        assert_eq!(
            report["refresh_token"], refreshed["refresh_token"],
            "every host reports the saved set"
        );
    }
    assert_eq!(
        redis.command(&["EXISTS", &format!("{REDIS_KEY}:lease")]).as_deref(),
        Some("0"),
        "lease released"
    );
    assert_eq!(
        redis.command(&["EXISTS", &format!("{REDIS_KEY}:journal")]).as_deref(),
        Some("0")
    );
    for env in &envs {
        assert!(!env.store_path().exists(), "no host wrote a local store file");
    }
}

#[test]
fn nine_forced_refreshes_across_hosts_are_never_refused_and_end_with_the_last_set() {
    const HOSTS: usize = 3;
    const PER_HOST: usize = 3;
    let (sandbox, redis, envs) = given_fleet(HOSTS);
    let generation_before = redis.store_json()["generation"].as_u64().unwrap();
    let before = sandbox.stats();

    let (outputs, wall) = run_on_every_host(&envs, PER_HOST, &["refresh", "--no-railway", "--json", "--reveal"]);
    assert_all_succeeded(&outputs);

    let after = sandbox.stats();
    eprintln!(
        "FIGURES redis forced: processes={} upstream_token_requests={} refused={} wall_time_ms={}",
        HOSTS * PER_HOST,
        stat_delta(&before, &after, "token_requests"),
        stat_delta(&before, &after, "refused"),
        wall.as_millis()
    );
    assert_eq!(stat_delta(&before, &after, "refused"), 0, "no refused grant");
    assert_eq!(stat_delta(&before, &after, "token_requests"), (HOSTS * PER_HOST) as u64);
    let reports: Vec<Value> = outputs.iter().map(report_of).collect();
    let tokens: HashSet<&str> = reports.iter().map(|r| r["refresh_token"].as_str().unwrap()).collect();
    assert_eq!(tokens.len(), HOSTS * PER_HOST, "every run got its own set");
    let mut generations: Vec<u64> = reports.iter().map(|r| r["generation"].as_u64().unwrap()).collect();
    generations.sort_unstable();
    let expected: Vec<u64> = (1..=(HOSTS * PER_HOST) as u64).map(|i| generation_before + i).collect();
    assert_eq!(generations, expected, "consecutive generations, none lost");
    let last = reports
        .iter()
        .max_by_key(|r| r["generation"].as_u64().unwrap())
        .unwrap();
    assert_eq!(redis.store_json()["tokens"]["refresh_token"], last["refresh_token"]);

    // The sandbox honours only the newest token: one more refresh proves it.
    envs[1].cmd().args(["refresh", "--no-railway"]).assert().success();
    assert_eq!(stat(&sandbox.stats(), "refused"), 0);
}

// ---------------------------------------------------------------------------
// the lease and its fence

#[test]
fn a_lease_held_elsewhere_is_lock_timeout_with_nothing_sent() {
    let withings = withings_answering(new_tokens(NEW_ACCESS, NEW_REFRESH)).times(0);
    let (redis, env) = given_expired_redis_store(&withings.uri());
    redis.command(&["SET", &format!("{REDIS_KEY}:lease"), "another-host", "PX", "60000"]);
    let out = env.run_fast(&["refresh", "--lock-timeout", "300ms"]);
    assert_eq!(out.code, 5, "{out:?}");
    assert!(out.stderr.contains("[LOCK_TIMEOUT]"), "{out:?}");
    assert!(
        out.stderr.contains(&format!(
            "the Redis lease {REDIS_KEY}:lease at redis://127.0.0.1:{}",
            redis.port
        )),
        "{out:?}"
    );
    assert_eq!(redis.store_json()["generation"], 1, "unchanged");
    assert_eq!(
        redis.command(&["GET", &format!("{REDIS_KEY}:lease")]).as_deref(),
        Some("another-host")
    );
    withings.verify();
}

fn signal(child: &Child, name: &str) {
    let status = std::process::Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}

/// Starts `args` on `host`, waits until Withings got its request, then
/// stops it (SIGSTOP) for 2.5 s: well past a 1 s lease, which expires
/// unrenewed. Resume it with `signal(&child, "CONT")`.
fn pause_past_its_lease(host: &TestEnv, args: &[&str], withings: &Upstream) -> Child {
    let child = host.spawn(args);
    until_asked(withings);
    signal(&child, "STOP");
    std::thread::sleep(Duration::from_millis(2500));
    child
}

/// A holder paused (SIGSTOP) past its lease while Withings answers; another
/// host takes the lease and saves; the paused one, resumed, must not write.
#[test]
fn a_holder_whose_lease_expired_mid_refresh_cannot_overwrite_the_newer_set() {
    let redis = RedisServer::start();
    let withings = Upstream::start();
    // The first request is answered after 1.5 s (the paused holder's); later ones at once.
    withings.mount(
        token_request()
            .respond_with(new_tokens("paused-access", "paused-refresh").set_delay(Duration::from_millis(1500)))
            .up_to_n_times(1)
            .expect(1),
    );
    withings.mount(
        token_request()
            .respond_with(new_tokens("peer-access", "peer-refresh"))
            .expect(1),
    );
    let mut host_a = given_expired_store(&withings.uri());
    host_a.on_redis(&redis).set("WITHINGS_TOKEN_LEASE_TTL", "1s");
    let seed = host_a.store_json();
    redis.write_store(&seed);
    let mut host_b = TestEnv::new();
    host_b
        .withings(&withings.uri())
        .on_redis(&redis)
        .set("WITHINGS_TOKEN_LEASE_TTL", "1s");

    let paused = pause_past_its_lease(
        &host_a,
        &["refresh", "--no-railway", "--json", "--timeout", "10s"],
        &withings,
    );
    let peer = host_b.run(&["refresh", "--no-railway", "--json", "--reveal", "--retry-delay", "0s"]);
    assert_eq!(peer.code, 0, "{peer:?}");
    assert_eq!(peer.json()["refresh_token"], "peer-refresh");
    signal(&paused, "CONT");
    let paused = paused.wait_with_output().expect("wait");

    let stderr = String::from_utf8_lossy(&paused.stderr);
    assert_eq!(paused.status.code(), Some(5), "stderr: {stderr}");
    assert!(stderr.contains("[STORE_UNAVAILABLE]"), "{stderr}");
    assert!(
        stderr.contains("error: this run's new set was not saved: the lease on redis://127.0.0.1:"),
        "{stderr}"
    );
    assert!(stderr.contains("ran out while this run waited for Withings (paused for more than its 1 s?), and another run saved a newer set meanwhile, which stays [STORE_UNAVAILABLE]"), "{stderr}");
    assert!(
        stderr.contains("next: nothing to do: the store keeps the other run's set"),
        "{stderr}"
    );
    assert!(!stderr.contains("paused-refresh"), "no token in the error: {stderr}");
    let store = redis.store_json();
    assert_eq!(store["tokens"]["refresh_token"], "peer-refresh", "the newer set stays");
    assert_eq!(store["generation"], 2);
    withings.verify();
}

/// A paused holder (SIGSTOP) past its lease, while another host only looks
/// (`--if-needed`, not due) and sends nothing: the paused holder's answer
/// is the newest set there is, and it is kept.
#[test]
fn a_holder_whose_lease_lapsed_keeps_its_answer_when_nobody_else_asked_withings() {
    let redis = RedisServer::start();
    let withings = Upstream::start();
    withings.mount(
        token_request()
            .respond_with(new_tokens(NEW_ACCESS, NEW_REFRESH).set_delay(Duration::from_millis(1500)))
            .expect(1),
    );
    let mut host_a = given_store_expiring_in(3 * 3600);
    host_a
        .withings(&withings.uri())
        .on_redis(&redis)
        .set("WITHINGS_TOKEN_LEASE_TTL", "1s");
    redis.write_store(&host_a.store_json());
    let mut host_b = TestEnv::new();
    host_b.withings(&withings.uri()).on_redis(&redis);

    let args = ["refresh", "--no-railway", "--json", "--reveal", "--timeout", "10s"];
    let paused = pause_past_its_lease(&host_a, &args, &withings);
    let look = host_b.run_fast(&["refresh", "--if-needed", "--no-railway", "--json"]);
    assert_eq!(look.code, 0, "{look:?}");
    assert_eq!(look.json()["outcome"], "not_due");
    signal(&paused, "CONT");
    let paused = paused.wait_with_output().expect("wait");

    let stderr = String::from_utf8_lossy(&paused.stderr);
    assert_eq!(paused.status.code(), Some(0), "stderr: {stderr}");
    let store = redis.store_json();
    assert_eq!(
        store["tokens"]["refresh_token"], NEW_REFRESH,
        "the fresh answer is kept"
    );
    assert_eq!(store["previous"]["refresh_token"], OLD_REFRESH);
    assert_eq!(store["generation"], 2);
    withings.verify();
}

/// The set copied to a new Redis without its fence counter (a migration):
/// the counter is raised past the stored fence, so refreshes keep working.
#[test]
fn a_store_whose_fence_is_ahead_of_the_counter_still_refreshes() {
    let redis = RedisServer::start();
    let (withings, issued) = withings_always_rotating();
    let mut env = given_expired_store(&withings.uri());
    env.on_redis(&redis);
    let mut store = env.store_json();
    store["fence"] = json!(5);
    redis.write_store(&store);
    for round in 1..=2 {
        let out = env.run_fast(&["refresh", "--json", "--reveal"]);
        assert_eq!(out.code, 0, "round {round}: {out:?}");
        assert_eq!(out.json()["refresh_token"], format!("mock-refresh-{round}"));
    }
    assert_eq!(issued.load(std::sync::atomic::Ordering::SeqCst), 2, "no answer dropped");
    assert_eq!(redis.store_json()["fence"], 7);
}

#[test]
fn a_killed_holder_keeps_others_waiting_no_longer_than_its_lease_and_is_reported() {
    let (withings, issued) = withings_always_rotating();
    let (redis, mut env) = given_expired_redis_store(&withings.uri());
    env.set("WITHINGS_TOKEN_LEASE_TTL", "1s");
    // What a holder killed mid-request leaves: its lease and its mark.
    redis.command(&["SET", &format!("{REDIS_KEY}:lease",), "dead-owner", "PX", "1000"]);
    let mark = json!({"pid": 4242, "started_at": "2026-01-01T00:00:00Z", "generation": 1, "grant": "refresh_token", "owner": "dead-owner"});
    redis.command(&["SET", &format!("{REDIS_KEY}:journal"), &mark.to_string()]);

    let out = env.run_fast(&["refresh", "--lock-timeout", "10s", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stderr
            .contains("a previous run (pid 4242) did not finish under its lease (it died, or paused past the lease) while asking Withings"),
        "{out:?}"
    );
    assert_eq!(issued.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!(redis.store_json()["generation"], 2);
    assert_eq!(
        redis.command(&["EXISTS", &format!("{REDIS_KEY}:journal")]).as_deref(),
        Some("0")
    );
}

#[test]
fn a_refresh_that_fails_releases_the_lease_at_once() {
    let withings = withings_answering(refused_refresh()).times(1);
    let (redis, env) = given_expired_redis_store(&withings.uri());
    let out = env.run_fast(&["refresh", "--if-needed"]);
    assert_eq!(out.code, 4, "{out:?}");
    assert_eq!(
        redis.command(&["EXISTS", &format!("{REDIS_KEY}:lease")]).as_deref(),
        Some("0"),
        "released, not left to expire"
    );
    assert_eq!(
        redis.command(&["EXISTS", &format!("{REDIS_KEY}:journal")]).as_deref(),
        Some("0")
    );
    assert_eq!(
        redis.store_json()["tokens"]["refresh_token"],
        OLD_REFRESH,
        "the refused set is kept, never emptied"
    );
    // The fence counts every lease taken.
    assert_eq!(
        redis.command(&["GET", &format!("{REDIS_KEY}:fence")]).as_deref(),
        Some("1")
    );
}

/// A run whose lease is found lost while it waits to retry sends nothing
/// more: saying so and then sending all the same would be two runs sending.
#[test]
fn a_run_whose_lease_ran_out_between_attempts_sends_nothing_more() {
    let (sandbox, redis, mut envs) = given_fleet(1);
    let env = &mut envs[0];
    env.set("WITHINGS_TOKEN_LEASE_TTL", "1s");
    redis.make_store_due();
    let stored = redis.store_json();
    sandbox.fault(json!({"kind": "http500", "count": 1}));
    let before = sandbox.stats();
    let child = env.spawn(&["refresh", "--no-railway", "--retry-delay", "3s"]);
    sandbox.until_asked(&before, 1);
    redis.command(&["DEL", &format!("{REDIS_KEY}:lease")]);
    let out = child.wait_with_output().expect("wait");

    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{stderr}");
    assert!(stderr.contains("ran out before it could be renewed"), "{stderr}");
    assert!(
        stderr.contains("this run's lease on the store ran out while it retried; nothing more was sent, and another run may be refreshing now [STORE_UNAVAILABLE]"),
        "{stderr}"
    );
    let after = sandbox.stats();
    assert_eq!(
        stat_delta(&before, &after, "token_requests"),
        1,
        "a second attempt was sent"
    );
    assert_eq!(redis.store_json()["tokens"], stored["tokens"]);
    // The stored token is still the live one.
    let out = env.run(&["refresh", "--no-railway"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(stat_delta(&after, &sandbox.stats(), "refused"), 0);
}

/// With Redis stopped, `serve`'s waiting
/// requests each fail after one Redis timeout (5 s), not one after another
/// (5 s, 10 s, ... 50 s). Every one of ten concurrent broker calls gets its
/// 503 within a 20 s client timeout; queued behind each other, the last
/// seven would not.
#[test]
fn a_stopped_redis_fails_concurrent_requests_together_not_one_after_another() {
    let (_sandbox, redis, mut envs) = given_fleet(1);
    let env = &mut envs[0];
    env.serve_credentials();
    let server = env.serve(&["--check-interval", "1h"]);
    let broker = |timeout: Duration| {
        let mut stream = std::net::TcpStream::connect(&server.addr).expect("connect");
        stream.set_read_timeout(Some(timeout)).expect("timeout");
        let head = format!(
            "GET /v1/access-token HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {READER_TOKEN}\r\nConnection: close\r\n\r\n",
            server.addr
        );
        std::io::Write::write_all(&mut stream, head.as_bytes()).expect("write");
        let mut answer = String::new();
        let _ = std::io::Read::read_to_string(&mut stream, &mut answer);
        answer.lines().next().unwrap_or_default().to_owned()
    };
    assert!(broker(Duration::from_secs(20)).contains(" 200 "));

    redis.signal("STOP");
    assert!(
        broker(Duration::from_secs(20)).contains(" 503 "),
        "one request times out first"
    );
    let answers = concurrently(10, || broker(Duration::from_secs(20)));
    redis.signal("CONT");
    for status in &answers {
        assert!(status.contains(" 503 "), "{answers:?}\n{}", server.log());
    }
}
