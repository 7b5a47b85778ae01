//! What keeps one account's tokens from reaching another: a seed or a
//! Railway copy that is another account's token is refused before anything
//! is sent or saved; accounts sharing an env file keep each one's lines;
//! `accounts remove`/`rename` never act through a link, and check the
//! config file before moving anything; a rescued set does not outlive its
//! account.

use crate::support::*;

/// Writes the store of account `name` holding `refresh` (not due for two
/// hours), for Withings user `userid`.
fn seed_refresh(env: &TestEnv, name: &str, refresh: &str, userid: &str) {
    seed_account(env, name, (&format!("{name}-access"), refresh), 2 * 3600, userid);
}

/// A whole store holding `refresh` for Withings user `userid`, not due for
/// two hours, at `generation`.
fn store_of(refresh: &str, userid: &str, generation: u64) -> Value {
    account_set((&format!("{refresh}-access"), refresh), 2 * 3600, userid, generation)
}

#[test]
fn a_seed_left_after_rename_is_refused_for_the_emptied_account_with_nothing_sent() {
    let withings = Upstream::start();
    withings.mount(
        refresh_of(OLD_REFRESH)
            .respond_with(new_tokens(NEW_ACCESS, NEW_REFRESH))
            .expect(1)
            .named("bob's own refresh, once"),
    );
    let mut env = given_store_expiring_in(-60);
    env.withings(&withings.uri());
    env.set("WITHINGS_REFRESH_TOKEN", OLD_REFRESH);
    let renamed = env.run_fast(&["accounts", "rename", "default", "bob"]);
    assert_eq!(renamed.code, 0, "{renamed:?}");
    let bob = account_store(&env, "bob");
    let before = std::fs::read(&bob).unwrap();

    // The seed is bob's current token.
    let out = env.run_fast(&["refresh", "--account", "default", "--json"]);
    assert_eq!(out.code, 4, "{out:?}");
    assert_eq!(out.json()["error"]["code"], "ACCOUNT_MISMATCH");
    assert_eq!(
        out.json()["error"]["message"],
        "the refresh token in WITHINGS_REFRESH_TOKEN (the environment or the env file) is account bob's (its store holds it); using it as account default's would fork bob's token chain; nothing was sent or saved"
    );
    assert_eq!(
        out.json()["error"]["action"],
        "remove or replace the stale WITHINGS_* lines (the env file, the process environment), or authorise this account: `withings-token login --account default`; to act on that account, name it: `--account bob`"
    );
    assert_eq!(std::fs::read(&bob).unwrap(), before);
    assert!(!env.store_path().exists(), "nothing saved for default");

    // Bob refreshes his own; the seed is now his previous token: refused too.
    let own = env.run_fast(&["refresh", "--account", "bob", "--json"]);
    assert_eq!(own.code, 0, "{own:?}");
    let out = env.run_fast(&["refresh", "--if-needed", "--account", "default", "--json"]);
    assert_eq!(out.code, 4, "{out:?}");
    assert_eq!(out.json()["error"]["code"], "ACCOUNT_MISMATCH");
    assert!(!env.store_path().exists(), "nothing saved for default");
    withings.verify();
}

/// Not only before it is sent: a seed that is another account's token is
/// never used at all, so its still fresh access token is not handed out as
/// this account's (`access-token`, `exec`, the broker).
#[test]
fn a_seed_that_is_another_accounts_token_is_not_handed_out_as_an_access_token() {
    let withings = silent_withings();
    let mut env = given_store_expiring_in(3 * 3600);
    env.withings(&withings.uri()).serve_credentials();
    let stored = env.store_json();
    env.set("WITHINGS_REFRESH_TOKEN", OLD_REFRESH)
        .set("WITHINGS_ACCESS_TOKEN", OLD_ACCESS)
        .set(
            "WITHINGS_TOKEN_EXPIRES_AT",
            stored["tokens"]["expires_at"].as_str().unwrap(),
        )
        .set(
            "WITHINGS_TOKEN_LAST_REFRESHED",
            stored["tokens"]["last_refreshed"].as_str().unwrap(),
        );
    assert_eq!(env.run_fast(&["accounts", "rename", "default", "bob"]).code, 0);

    for args in [
        &["access-token", "--account", "default"][..],
        &["exec", "--account", "default", "--", "true"],
        &["status", "--account", "default"],
    ] {
        let out = env.run_fast(args);
        assert_eq!(out.code, 4, "{args:?}: {out:?}");
        assert!(out.stderr.contains("[ACCOUNT_MISMATCH]"), "{out:?}");
        assert!(!out.stdout.contains(OLD_ACCESS), "{out:?}");
    }
    let bob = env.run_fast(&["access-token", "--account", "bob"]);
    assert_eq!((bob.code, bob.stdout.trim()), (0, OLD_ACCESS), "{bob:?}");

    // The broker: `default` holds another person's set, older than the
    // seed, so the seed (bob's) would be the one in use.
    let older = account_set(("carol-access", "carol-refresh"), 2 * 3600, "999", 1);
    std::fs::write(env.store_path(), serde_json::to_vec(&older).unwrap()).unwrap();
    let server = env.serve(&["--check-interval", "1h"]);
    let answer = server.get(
        "/v1/access-token?account=default",
        &[("Authorization", &format!("Bearer {READER_TOKEN}"))],
    );
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(
        answer.json()["access_token"],
        "carol-access",
        "default's own set, not bob's"
    );
    assert!(
        server.log().contains("the seed tokens are not used"),
        "{}",
        server.log()
    );
    withings.verify();
}

#[test]
fn pull_refuses_a_railway_set_another_account_holds() {
    let peer = Peer::start();
    let mut env = given_fresh_store_and_railway_service(&peer);
    env.withings(&peer.withings_url());
    seed_refresh(&env, "alice", "alice-refresh-aaa", "271");
    let refreshed = chrono::Utc::now() + chrono::Duration::hours(1);
    railway_holds(
        &peer,
        &[
            ("WITHINGS_ACCESS_TOKEN", json!("alice-access")),
            ("WITHINGS_REFRESH_TOKEN", json!("alice-refresh-aaa")),
            (
                "WITHINGS_TOKEN_EXPIRES_AT",
                json!(rfc3339(refreshed + chrono::Duration::hours(3))),
            ),
            ("WITHINGS_TOKEN_LAST_REFRESHED", json!(rfc3339(refreshed))),
        ],
    );
    let before = env.store_bytes();

    let run = env.run_with(
        &["pull", "--from", "railway", "--account", "default", "--json"],
        &NO_RETRY_DELAY,
    );
    assert_eq!(run.code, 4, "{run:?}");
    assert_eq!(run.json()["error"]["code"], "ACCOUNT_MISMATCH");
    assert_eq!(
        run.json()["error"]["message"],
        "the refresh token in the Railway service's variables is account alice's (its store holds it); using it as account default's would fork alice's token chain; nothing was sent or saved"
    );
    assert_eq!(env.store_bytes(), before);
    assert_eq!(peer.token_requests(), 0, "no Withings call");
    assert_no_mutation(&peer);
}

#[test]
fn two_accounts_refreshed_at_once_keep_each_ones_lines_in_a_shared_env_file() {
    let (withings, _issued) = withings_always_rotating();
    let mut env = TestEnv::new();
    env.withings(&withings.uri());
    seed_refresh(&env, "alice", "alice-refresh-0", "271");
    seed_refresh(&env, "bob", "bob-refresh-0", "314");
    let path = env.write_env_file(
        "# the household\nALICE_WITHINGS_REFRESH_TOKEN=alice-refresh-0\nBOB_WITHINGS_REFRESH_TOKEN=bob-refresh-0\nOTHER=kept\n",
    );

    for round in 0..20 {
        let alice = env.spawn(&["refresh", "--account", "alice", "--no-railway", "--json"]);
        let bob = env.spawn(&["refresh", "--account", "bob", "--no-railway", "--json"]);
        let outputs = [alice, bob].map(|child| child.wait_with_output().unwrap());
        assert_all_succeeded(&outputs);
        let text = std::fs::read_to_string(&path).unwrap();
        for name in ["alice", "bob"] {
            let stored: Value = serde_json::from_slice(&std::fs::read(account_store(&env, name)).unwrap()).unwrap();
            let variable = format!("{}_WITHINGS_REFRESH_TOKEN", name.to_uppercase());
            assert_eq!(
                env_value(&text, &variable),
                stored["tokens"]["refresh_token"].as_str().unwrap(),
                "round {round}: {variable} is {name}'s stored token in {text}"
            );
        }
        assert!(
            text.starts_with("# the household\n") && text.contains("\nOTHER=kept\n"),
            "{text}"
        );
    }
}

/// An account `evil` whose store is a link to `outside/precious.txt`, in a
/// deployment whose default store holds a set; returns the outside file.
fn given_an_account_linked_outside(env: &TestEnv) -> std::path::PathBuf {
    env.seed_store(OLD_ACCESS, OLD_REFRESH, 7200);
    let outside = env.home().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let precious = outside.join("precious.txt");
    std::fs::write(&precious, "not a token store\n").unwrap();
    let link = account_store(env, "evil");
    std::fs::create_dir_all(link.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink("../../../outside/precious.txt", &link).unwrap();
    assert_eq!(std::fs::read_to_string(&link).unwrap(), "not a token store\n");
    precious
}

#[test]
fn remove_and_rename_refuse_an_account_whose_store_is_a_link() {
    let withings = silent_withings();
    let mut env = TestEnv::new();
    env.withings(&withings.uri());
    let precious = given_an_account_linked_outside(&env);
    let link = account_store(&env, "evil");

    let out = env.run_fast(&["accounts", "remove", "evil", "--yes", "--json"]);
    assert_eq!(out.code, 3, "{out:?}");
    assert_eq!(
        out.json()["error"]["message"],
        format!(
            "{} is a symbolic link; an account's store is never moved or removed through a link, so nothing was changed",
            link.display()
        )
    );
    assert_eq!(std::fs::read_to_string(&precious).unwrap(), "not a token store\n");
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());

    let out = env.run_fast(&["accounts", "rename", "evil", "mine"]);
    assert_eq!(out.code, 3, "{out:?}");
    assert!(out.stderr.contains("is a symbolic link"), "{out:?}");
    assert!(!account_store(&env, "mine").exists(), "nothing copied in");
    assert_eq!(std::fs::read_to_string(&precious).unwrap(), "not a token store\n");
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    withings.verify();
}

#[test]
fn remove_refuses_an_accounts_directory_that_is_a_link() {
    let withings = silent_withings();
    let mut env = TestEnv::new();
    env.withings(&withings.uri());
    env.seed_store(OLD_ACCESS, OLD_REFRESH, 7200);
    let outside = env.home().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let elsewhere = outside.join("bob.json");
    std::fs::write(&elsewhere, "someone else's file\n").unwrap();
    let dir = account_store(&env, "bob").parent().unwrap().to_path_buf();
    std::os::unix::fs::symlink("../../outside", &dir).unwrap();

    let out = env.run_fast(&["accounts", "remove", "bob", "--yes"]);
    assert_eq!(out.code, 3, "{out:?}");
    assert!(
        out.stderr.contains(&format!("{} is a symbolic link", dir.display())),
        "{out:?}"
    );
    assert_eq!(std::fs::read_to_string(&elsewhere).unwrap(), "someone else's file\n");
    withings.verify();
}

/// Writes the default config file of this HOME; returns its path.
fn write_default_config(env: &TestEnv, text: &str) -> std::path::PathBuf {
    let path = env.home().join(".config/withings-token/config.toml");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn rename_to_a_name_the_config_file_has_a_table_for_moves_nothing() {
    let withings = silent_withings();
    let mut env = TestEnv::new();
    env.withings(&withings.uri());
    seed_refresh(&env, "alice", "alice-refresh-aaa", "271");
    let config = "[account.bob]\nbuffer = \"1h\"\n";
    let path = write_default_config(&env, config);
    let alice = std::fs::read(account_store(&env, "alice")).unwrap();

    let out = env.run_fast(&["accounts", "rename", "alice", "bob", "--json"]);
    assert_eq!(out.code, 3, "{out:?}");
    assert_eq!(
        out.json()["error"]["message"],
        format!(
            "config file {} already has an [account.bob] table; nothing was changed",
            path.display()
        )
    );
    assert_eq!(std::fs::read(account_store(&env, "alice")).unwrap(), alice);
    assert!(!account_store(&env, "bob").exists(), "nothing moved");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), config);
    withings.verify();
}

#[test]
fn rename_says_the_copies_change_variable_names_unless_the_table_fixes_them() {
    let withings = silent_withings();
    let mut env = TestEnv::new();
    env.withings(&withings.uri());
    seed_refresh(&env, "alice", "alice-refresh-aaa", "271");
    seed_refresh(&env, "dave", "dave-refresh-ddd", "272");
    write_default_config(&env, "[account.dave]\nvariable_prefix = \"DAVE_\"\n");

    let out = env.run_fast(&["accounts", "rename", "alice", "bob", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        out.json()["message"],
        "the account alice is now bob: use `--account bob` (the set, its userid and consent are as they were; nothing was sent); its copies are now written as BOB_WITHINGS_* (they were ALICE_WITHINGS_*): the old lines stay in the env file and on Railway and are no longer updated (delete them); to keep the old names, set `variable_prefix = \"ALICE_\"` in its [account.bob] table"
    );

    let out = env.run_fast(&["accounts", "rename", "dave", "erin", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        out.json()["message"],
        "the account dave is now erin: use `--account erin` (the set, its userid and consent are as they were; nothing was sent)"
    );
    withings.verify();
}

#[test]
fn removing_a_redis_account_removes_its_rescue_so_a_new_account_of_the_name_never_adopts_it() {
    let withings = silent_withings();
    let redis = RedisServer::start();
    let mut env = TestEnv::new();
    env.withings(&withings.uri()).on_redis(&redis);
    let app = REDIS_KEY.trim_end_matches(":tokens");
    let bob_key = format!("{app}:bob:tokens");
    let index = format!("{app}:accounts");
    let set_bob = |store: &Value| {
        redis.command(&["SET", &bob_key, &store.to_string()]).unwrap();
        redis.command(&["SADD", &index, "bob"]).unwrap();
    };
    set_bob(&store_of("old-bob-refresh", "314", 1));
    // The rescue of a set old bob's run could not save, named as the store
    // names it (server and key, other characters as `_`).
    let name: String = format!("{}-{bob_key}", redis.url())
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let rescue = env
        .home()
        .join("state/withings-token/redis-rescue")
        .join(format!("{name}.json"));
    std::fs::create_dir_all(rescue.parent().unwrap()).unwrap();
    std::fs::write(&rescue, store_of("old-bob-rescued", "314", 7).to_string()).unwrap();
    let status = env.run_fast(&["status", "--account", "bob"]);
    assert!(
        status.stderr.contains(&format!("waits in {}", rescue.display())),
        "{status:?}"
    );

    let out = env.run_fast(&["accounts", "remove", "bob", "--yes"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(!rescue.exists(), "the rescue went with the account");

    // Another person under the name: their own set stays theirs.
    set_bob(&store_of("new-bob-refresh", "999", 1));
    let out = env.run_fast(&["refresh", "--if-needed", "--account", "bob", "--no-railway", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let stored: Value = serde_json::from_str(&redis.command(&["GET", &bob_key]).unwrap()).unwrap();
    assert_eq!(stored["tokens"]["refresh_token"], "new-bob-refresh");
    assert_eq!(stored["tokens"]["userid"], "999");
    withings.verify();
}

#[test]
fn a_rescued_set_of_another_withings_user_is_never_adopted() {
    let withings = silent_withings();
    let mut env = given_store_expiring_in(2 * 3600);
    env.withings(&withings.uri());
    let before = env.store_json();
    assert_eq!(before["tokens"]["userid"], "363");
    let rescue = env.store_path().with_file_name("tokens.json.rescue");
    std::fs::write(&rescue, store_of("another-persons-refresh", "999", 9).to_string()).unwrap();

    let out = env.run_fast(&["refresh", "--if-needed", "--no-railway", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stderr.contains(&format!(
            "a set a previous run could not save for {} is Withings user 999's, and the store holds user 363's",
            env.store_path().display()
        )),
        "{out:?}"
    );
    assert!(!rescue.exists());
    assert_eq!(env.stored_refresh_token(), OLD_REFRESH);
    assert_eq!(env.store_json()["tokens"]["userid"], "363");
    withings.verify();
}

/// A rescued set waiting for an account whose store is empty is still one
/// person's: when another account holds that Withings user, it is not
/// adopted (it stays where it waits), so that account's chain is not forked.
#[test]
fn a_rescue_of_a_person_another_account_holds_is_not_adopted_into_an_empty_account() {
    let withings = silent_withings();
    let mut env = given_store_expiring_in(2 * 3600);
    env.withings(&withings.uri());
    assert_eq!(env.run_fast(&["accounts", "rename", "default", "alice"]).code, 0);
    let rescue = env.store_path().with_file_name("tokens.json.rescue");
    std::fs::write(&rescue, store_of(OLD_REFRESH, "363", 2).to_string()).unwrap();

    let out = env.run_fast(&["refresh", "--account", "default", "--no-railway", "--json"]);
    assert_eq!(out.code, 3, "{out:?}");
    assert!(
        out.stderr
            .contains("is Withings user 363's, whom account alice holds; it is not used"),
        "{out:?}"
    );
    assert!(rescue.exists(), "kept for a person to look at");
    assert!(!env.store_path().exists(), "default stays empty");
    assert_eq!(
        stored_at(&account_store(&env, "alice"))["tokens"]["refresh_token"],
        OLD_REFRESH
    );
    withings.verify();
}
