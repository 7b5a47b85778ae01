//! Encryption at rest in a Redis store (a real `redis-server` per test):
//! the value holds no token and no consent state, only age's armour beside
//! the clear fields the Lua scripts read (generation, fence); it opens by
//! hand with the `age` crate; the event record is sealed too; the lease
//! still keeps concurrent runs to one request; a missing or wrong identity
//! sends nothing and changes nothing; and `serve` says at start what it
//! encrypts to, and that core dumps are off.

use crate::support::*;

use std::time::Duration;

use age::secrecy::ExposeSecret;

/// The Redis value of the set, as stored (a JSON text).
fn value_of(redis: &RedisServer) -> String {
    redis.command(&["GET", REDIS_KEY]).expect("the Redis store holds a set")
}

fn events_of(redis: &RedisServer) -> Option<String> {
    redis.command(&["GET", &format!("{REDIS_KEY}:events")])
}

/// A user of the sandbox whose store is `redis`, with the key `key.txt`.
fn given_sandbox_on_redis() -> (SandboxProcess, RedisServer, TestEnv, AgeKey) {
    let (sandbox, mut env) = given_sandbox();
    let redis = RedisServer::start();
    env.on_redis(&redis).set("WITHINGS_TOKEN_STORE_KEY", REDIS_KEY);
    let key = env.age_key("key.txt");
    (sandbox, redis, env, key)
}

/// `auth-url`, the consent page and `exchange`, all with `key`'s flags;
/// returns the consent state and the exchanged set (access, refresh).
fn authorise_sealed(sandbox: &SandboxProcess, env: &TestEnv, key: &AgeKey) -> (String, String, String) {
    let auth = env.run_and(&["auth-url", "--json"], &key.flags());
    assert_eq!(auth.code, 0, "{auth:?}");
    let state = auth.json()["state"].as_str().expect("state").to_owned();
    let redirect = sandbox.approve(auth.json()["authorization_url"].as_str().expect("url"));
    let exchange = env.run_and(
        &["exchange", &redirect, "--no-railway", "--json", "--reveal"],
        &key.flags(),
    );
    assert_eq!(exchange.code, 0, "{exchange:?}");
    let report = exchange.json();
    let token = |name: &str| report[name].as_str().expect(name).to_owned();
    (state, token("access_token"), token("refresh_token"))
}

#[test]
fn a_sealed_redis_store_round_trips_and_its_value_holds_no_token_nor_the_consent_state() {
    let (sandbox, redis, env, key) = given_sandbox_on_redis();

    let auth = env.run_and(&["auth-url", "--json"], &key.flags());
    assert_eq!(auth.code, 0, "{auth:?}");
    let state = auth.json()["state"].as_str().expect("state").to_owned();
    let pending = value_of(&redis);
    assert!(!pending.contains(&state), "the consent state is sealed: {pending}");
    assert_eq!(
        opened_store(&serde_json::from_str(&pending).unwrap(), &key.identity)["pending_auth"]["state"],
        state
    );

    let redirect = sandbox.approve(auth.json()["authorization_url"].as_str().expect("url"));
    let exchange = env.run_and(
        &["exchange", &redirect, "--no-railway", "--json", "--reveal"],
        &key.flags(),
    );
    assert_eq!(exchange.code, 0, "{exchange:?}");
    let first_access = exchange.json()["access_token"].as_str().unwrap().to_owned();
    let first_refresh = exchange.json()["refresh_token"].as_str().unwrap().to_owned();
    let refresh = env.run_and(&["refresh", "--no-railway", "--json", "--reveal"], &key.flags());
    assert_eq!(refresh.code, 0, "{refresh:?}");
    assert_eq!(refresh.json()["outcome"], "refreshed");
    let access = refresh.json()["access_token"].as_str().unwrap().to_owned();
    let current = refresh.json()["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(current, first_refresh);

    let value = value_of(&redis);
    for secret in [&first_access, &first_refresh, &access, &current, &state] {
        assert!(
            !value.contains(secret.as_str()),
            "{secret} is in the Redis value: {value}"
        );
    }
    let stored: Value = serde_json::from_str(&value).expect("the value is JSON");
    assert_eq!(stored["version"], 2);
    assert!(stored["sealed"].as_str().unwrap().starts_with(AGE_ARMOR), "{stored}");
    for clear in ["tokens", "previous", "pending_auth"] {
        assert!(stored.get(clear).is_none(), "{clear} is in clear: {stored}");
    }
    // What the Lua scripts read stays in clear: the save after `exchange`, then the refresh's.
    assert_eq!(stored["generation"], 3);
    assert!(stored["fence"].as_u64().is_some_and(|f| f >= 1), "{stored}");

    let opened = opened_store(&stored, &key.identity);
    assert_eq!(opened["tokens"]["refresh_token"], current.as_str());
    assert_eq!(opened["tokens"]["access_token"], access.as_str());
    assert_eq!(opened["previous"]["refresh_token"], first_refresh.as_str());

    let status = env.run_and(&["status", "--json"], &key.flags());
    assert_eq!(status.code, 0, "{status:?}");
    assert_eq!(status.json()["store"], format!("{} key {REDIS_KEY}", redis.url()));
    assert_eq!(status.json()["set_generation"], 3);
    assert_no_secrets(&status, &[&access, &current]);
    assert_eq!(value_of(&redis), value, "status wrote nothing");
}

#[test]
fn the_event_record_in_redis_is_sealed_after_a_refused_refresh() {
    let (sandbox, redis, env, key) = given_sandbox_on_redis();
    let (_, _, refresh_token) = authorise_sealed(&sandbox, &env, &key);
    sandbox.revoke();

    let out = env.run_and(&["refresh", "--no-railway", "--json"], &key.flags());
    assert_eq!(out.code, 4, "{out:?}");
    assert_eq!(out.json()["error"]["code"], "INVALID_REFRESH_TOKEN");

    let record = events_of(&redis).expect("the refusal is recorded beside the set");
    assert!(record.starts_with(AGE_ARMOR), "the record is sealed whole: {record}");
    assert!(!record.contains("needs_reauthorization"), "{record}");
    let opened: Value = serde_json::from_slice(&open_by_hand(&record, &key.identity)).expect("a JSON record");
    assert_eq!(opened["health"]["state"], "needs_reauthorization", "{opened}");
    assert_eq!(opened["health"]["code"], "INVALID_REFRESH_TOKEN", "{opened}");
    assert!(!String::from_utf8_lossy(&open_by_hand(&record, &key.identity)).contains(&refresh_token));

    // Read back through the seal: the alert is the account's.
    let status = env.run_and(&["status", "--json"], &key.flags());
    assert_eq!(status.json()["alert"]["state"], "needs_reauthorization", "{status:?}");
}

#[test]
fn runs_at_once_on_a_sealed_redis_make_one_request_and_keep_one_set() {
    let redis = RedisServer::start();
    let withings = withings_answering(new_tokens(NEW_ACCESS, NEW_REFRESH)).times(1);
    let seed = given_expired_store(&withings.uri());
    let key = seed.age_key("key.txt");
    redis.write_store(&sealed_store(&seed.store_json(), &key.recipient));
    let hosts: Vec<TestEnv> = (0..2)
        .map(|_| {
            let mut host = TestEnv::new();
            host.withings(&withings.uri())
                .on_redis(&redis)
                .set("WITHINGS_TOKEN_RECIPIENTS", key.recipient.as_str())
                .set("WITHINGS_TOKEN_IDENTITY_FILE", key.file.display().to_string());
            host
        })
        .collect();

    let args = ["refresh", "--if-needed", "--no-railway", "--json", "--reveal"];
    let (outputs, _) = run_all_at_once(hosts.iter().chain(hosts.iter()).chain(hosts.iter()), &args);
    assert_all_succeeded(&outputs);

    let reports: Vec<Value> = outputs.iter().map(report_of).collect();
    assert_eq!(outcome_counts(&reports).get("refreshed"), Some(&1), "{reports:?}");
    for report in &reports {
        assert_eq!(report["refresh_token"], NEW_REFRESH, "every run reports the one set");
    }
    let stored: Value = serde_json::from_str(&value_of(&redis)).unwrap();
    assert_eq!(stored["generation"], 2, "one save: {stored}");
    assert!(stored["fence"].as_u64().is_some_and(|f| f >= 1), "{stored}");
    let opened = opened_store(&stored, &key.identity);
    assert_eq!(opened["tokens"]["refresh_token"], NEW_REFRESH);
    assert_eq!(opened["previous"]["refresh_token"], OLD_REFRESH);
    assert_eq!(
        redis.command(&["EXISTS", &format!("{REDIS_KEY}:lease")]).as_deref(),
        Some("0")
    );
    assert_eq!(
        redis.command(&["EXISTS", &format!("{REDIS_KEY}:journal")]).as_deref(),
        Some("0")
    );
    withings.verify();
}

#[test]
fn a_missing_or_wrong_identity_against_a_sealed_redis_is_exit_3_with_nothing_sent() {
    let redis = RedisServer::start();
    let withings = silent_withings();
    let mut env = given_expired_store(&withings.uri());
    let key = env.age_key("key.txt");
    let stranger = env.age_key("other.txt");
    redis.write_store(&sealed_store(&env.store_json(), &key.recipient));
    let before = value_of(&redis);
    env.on_redis(&redis);
    let store = format!("{} key {REDIS_KEY}", redis.url());

    let missing = env.run_and(
        &["refresh", "--no-railway"],
        &["--encrypt-to".into(), key.recipient.clone()],
    );
    assert_eq!(missing.code, 3, "{missing:?}");
    assert_stderr_error(
        &missing.stderr,
        "CONFIGURATION_ERROR",
        &format!(
            "token store {store} is encrypted, and no identity (age private key) is configured to open it; nothing was sent"
        ),
        "give this host its age identity: `--identity FILE`, WITHINGS_TOKEN_IDENTITY (the key itself), WITHINGS_TOKEN_IDENTITY_FILE, or a systemd credential named withings-token.identity; `withings-token keygen` makes one",
    );

    let wrong = env.run_and(&["refresh", "--no-railway", "--json"], &stranger.flags());
    assert_eq!(wrong.code, 3, "{wrong:?}");
    let message = wrong.json()["error"]["message"].as_str().unwrap().to_owned();
    assert_eq!(
        message,
        format!(
            "token store {store} is encrypted to other keys: no key from --identity {} opens it; nothing was sent",
            stranger.file.display()
        )
    );

    for out in [&missing, &wrong] {
        assert_no_secrets(out, &[OLD_ACCESS, OLD_REFRESH]);
    }
    assert_eq!(value_of(&redis), before, "the value is untouched");
    assert_eq!(events_of(&redis), None, "no event record written");
    assert_eq!(
        redis.command(&["EXISTS", &format!("{REDIS_KEY}:journal")]).as_deref(),
        Some("0")
    );
    withings.verify();
}

// ---------------------------------------------------------------------------
// serve

#[test]
fn serve_on_a_sealed_redis_says_what_it_encrypts_to_and_brokers_the_set() {
    let redis = RedisServer::start();
    let withings = silent_withings();
    let mut env = given_store_expiring_in(3 * 3600);
    env.withings(&withings.uri()).serve_credentials();
    let key = env.age_key("key.txt");
    redis.write_store(&sealed_store(&env.store_json(), &key.recipient));
    let before = value_of(&redis);
    env.on_redis(&redis)
        .set("WITHINGS_TOKEN_RECIPIENTS", key.recipient.as_str())
        .set(
            "WITHINGS_TOKEN_IDENTITY",
            key.identity.to_string().expose_secret().to_owned(),
        );
    std::fs::remove_file(env.store_path()).unwrap();

    let mut server = env.serve(&["-vv"]);
    for _ in 0..5 {
        let answer = broker(&server);
        assert_eq!(answer.status, 200, "{answer:?}");
        assert_eq!(answer.json()["access_token"], OLD_ACCESS);
    }
    assert_eq!(server.admin_get("/admin/token/status").status, 200);
    server.signal("-TERM");
    assert!(server.wait(Duration::from_secs(10)).is_some_and(|s| s.success()));
    // The last line is in, and every line before it.
    assert!(wait_until(Duration::from_secs(10), || lines_with(
        &server.log(),
        "\"stopped\""
    ) == 1));

    let log = server.log();
    // Read on every request (Redis gives no stamp), decrypted once: the
    // value did not change.
    assert_eq!(lines_with(&log, "decrypted the token store"), 1, "{log}");
    assert_eq!(
        lines_with(
            &log,
            "core dumps are off while serve runs (PR_SET_DUMPABLE 0): a crash leaves no token in a core file"
        ),
        1,
        "{log}"
    );
    let said = format!("token store encrypted at rest to 1 recipient: {}", key.fingerprint());
    assert_eq!(lines_with(&log, &said), 1, "{log}");
    assert!(!log.contains(&key.recipient), "a fingerprint, not the key: {log}");
    assert!(!log.contains("AGE-SECRET-KEY"), "{log}");
    assert!(!log.contains(OLD_ACCESS) && !log.contains(OLD_REFRESH), "{log}");
    assert_eq!(value_of(&redis), before, "serving writes nothing");
    withings.verify();
}

#[test]
fn serve_warns_at_start_of_plain_tokens_in_redis() {
    let redis = RedisServer::start();
    let withings = silent_withings();
    let mut env = given_store_expiring_in(3 * 3600);
    env.withings(&withings.uri()).serve_credentials();
    redis.write_store(&env.store_json());
    env.on_redis(&redis);

    let server = env.serve(&[]);
    let log = server.log();
    assert_eq!(
        lines_with(
            &log,
            "token store plain: no recipient is configured, so the tokens are written to Redis unencrypted, readable by whoever reads that Redis; set `encrypt_to` (WITHINGS_TOKEN_RECIPIENTS), then run `withings-token rekey`"
        ),
        1,
        "{log}"
    );
    assert!(log.contains("\"level\":\"WARN\""), "{log}");
    withings.verify();
}

#[test]
fn a_set_written_plain_on_purpose_takes_its_redis_event_record_out_of_the_seal_too() {
    let (sandbox, redis, env, key) = given_sandbox_on_redis();
    authorise_sealed(&sandbox, &env, &key);
    // A refused refresh leaves a sealed record beside the set.
    sandbox.revoke();
    let out = env.run_and(&["refresh", "--no-railway"], &key.flags());
    assert_eq!(out.code, 4, "{out:?}");
    assert!(events_of(&redis).expect("a record").starts_with(AGE_ARMOR));

    // Consent again (sealed): the record says healthy, still sealed.
    authorise_sealed(&sandbox, &env, &key);
    assert!(events_of(&redis).expect("a record").starts_with(AGE_ARMOR));

    // A refresh written plain on purpose changes no alert state, yet the
    // record goes plain with the set.
    let identity = key.file.display().to_string();
    let plain = ["--identity".to_owned(), identity, "--allow-plaintext".to_owned()];
    let refresh = env.run_and(&["refresh", "--no-railway"], &plain);
    assert_eq!(refresh.code, 0, "{refresh:?}");
    let value: Value = serde_json::from_str(&value_of(&redis)).expect("JSON");
    assert_eq!(value["version"], 1, "{value}");
    let record = events_of(&redis).expect("the record stays");
    assert!(record.starts_with('{'), "the record is plain with the set: {record}");

    // A host without the identity now reads both.
    let status = env.run(&["status", "--json"]);
    assert_eq!(status.code, 0, "{status:?}");
    assert_eq!(status.json()["alert"]["state"], "healthy", "{status:?}");
}
