//! Consent binds an account to one person: a consent given by another
//! Withings user than the account holds, or by a user another account
//! already holds, is refused before anything is saved (exit 4,
//! ACCOUNT_MISMATCH, the action naming `--replace`); `--replace` saves it
//! and says what it replaced. The sandbox's consent page logs in as its
//! second person (userid 27182818) when the URL asks (`sandbox_user=2`).
//! Each account is its own store with its own lock.

use crate::support::*;

#[test]
fn another_persons_consent_for_an_account_is_refused_and_nothing_saved_until_replace() {
    let (sandbox, env) = given_sandbox();
    sandbox.authorise(&env);
    let before = env.store_bytes();
    assert_eq!(env.store_json()["tokens"]["userid"], "31415926");

    let redirect = redirect_as(&sandbox, &env, "default", 2);
    let out = env.run(&["exchange", &redirect, "--no-railway", "--json"]);
    assert_eq!(out.code, 4, "{out:?}");
    let error = &out.json()["error"];
    assert_eq!(error["code"], "ACCOUNT_MISMATCH");
    assert_eq!(
        error["message"],
        "account default holds the tokens of Withings user 31415926, and this consent was given by user 27182818; nothing was saved"
    );
    assert!(error["action"].as_str().unwrap().contains("--replace"), "{error}");
    let after: serde_json::Value = env.store_json();
    assert_eq!(
        after["tokens"],
        serde_json::from_slice::<serde_json::Value>(&before).unwrap()["tokens"]
    );
    let out = env.run(&["refresh", "--no-railway", "--json"]);
    assert_eq!(out.code, 0, "the first person's chain is untouched and live: {out:?}");
    assert_eq!(out.json()["userid"], "31415926");

    let redirect = redirect_as(&sandbox, &env, "default", 2);
    let out = env.run(&["exchange", &redirect, "--no-railway", "--replace", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.json()["userid"], "27182818");
    assert_eq!(env.store_json()["tokens"]["userid"], "27182818");
    assert!(
        out.stderr
            .contains("replaced account default's set of Withings user 31415926 with user 27182818's (--replace)"),
        "{out:?}"
    );
}

#[test]
fn a_second_account_for_a_person_another_account_holds_is_refused_until_replace() {
    let (sandbox, env) = given_sandbox();
    sandbox.authorise(&env);

    let redirect = redirect_as(&sandbox, &env, "bob", 1);
    let out = env.run(&["exchange", &redirect, "--account", "bob", "--no-railway", "--json"]);
    assert_eq!(out.code, 4, "{out:?}");
    assert_eq!(out.json()["error"]["code"], "ACCOUNT_MISMATCH");
    assert_eq!(
        out.json()["error"]["message"],
        "Withings user 31415926 is already account default; this consent for account bob would keep a second token chain for the same person; nothing was saved"
    );
    let bob = stored_at(&account_store(&env, "bob"));
    assert!(bob["tokens"].is_null(), "only the consent state was kept: {bob}");

    let redirect = redirect_as(&sandbox, &env, "bob", 2);
    let out = env.run(&["exchange", &redirect, "--account", "bob", "--no-railway", "--json"]);
    assert_eq!(out.code, 0, "another person is a new account: {out:?}");
    assert_eq!(stored_at(&account_store(&env, "bob"))["tokens"]["userid"], "27182818");
    assert_eq!(env.store_json()["tokens"]["userid"], "31415926");

    let redirect = redirect_as(&sandbox, &env, "carol", 1);
    let out = env.run(&[
        "exchange",
        &redirect,
        "--account",
        "carol",
        "--replace",
        "--no-railway",
        "--json",
    ]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stderr
            .contains("account carol now holds Withings user 31415926, whom account default holds too (--replace)"),
        "{out:?}"
    );
}

#[test]
fn two_accounts_refresh_on_their_own_and_several_without_a_name_is_exit_3_listing_them() {
    let (sandbox, env) = given_sandbox();
    sandbox.authorise(&env);
    let redirect = redirect_as(&sandbox, &env, "bob", 2);
    assert_eq!(
        env.run(&["exchange", &redirect, "--account", "bob", "--no-railway"])
            .code,
        0
    );

    let out = env.run(&["refresh", "--no-railway", "--json"]);
    assert_eq!(out.code, 3, "{out:?}");
    assert_eq!(
        out.json()["error"]["message"],
        "this store keeps 2 accounts (default, bob) and none was named; nothing was sent"
    );
    let bob_before = stored_at(&account_store(&env, "bob"))["tokens"]["refresh_token"].clone();
    let default_before = env.stored_refresh_token();

    let out = env.run(&["refresh", "--account", "bob", "--no-railway", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.json()["userid"], "27182818");
    assert_ne!(
        stored_at(&account_store(&env, "bob"))["tokens"]["refresh_token"],
        bob_before
    );
    assert_eq!(env.stored_refresh_token(), default_before, "default was not touched");

    let out = env.run(&["refresh", "--account", "default", "--no-railway", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.json()["userid"], "31415926");

    let out = env.run(&["status", "--account", "nobody", "--json"]);
    assert_eq!(out.code, 3, "{out:?}");
    assert_eq!(
        out.json()["error"]["message"],
        "there is no account nobody in this store (accounts: default, bob); nothing was sent"
    );
}

/// Each account has its own lock: a refresh of one goes on while another
/// account's lock is held by a peer (flock on `<store>.lock`), and the
/// held account's own refresh waits for its lock and times out, nothing sent.
#[test]
fn an_account_refreshes_while_another_accounts_lock_is_held() {
    let (sandbox, env) = given_sandbox();
    sandbox.authorise(&env);
    let redirect = redirect_as(&sandbox, &env, "bob", 2);
    assert_eq!(
        env.run(&["exchange", &redirect, "--account", "bob", "--no-railway"])
            .code,
        0
    );
    let lock_path = account_store(&env, "bob").with_file_name("bob.json.lock");
    let held = std::fs::OpenOptions::new().write(true).open(&lock_path).unwrap();
    held.lock().unwrap();
    let before = sandbox.stats();

    let out = env.run(&[
        "refresh",
        "--account",
        "default",
        "--no-railway",
        "--lock-timeout",
        "0s",
        "--json",
    ]);
    assert_eq!(out.code, 0, "{out:?}");
    let out = env.run(&[
        "refresh",
        "--account",
        "bob",
        "--no-railway",
        "--lock-timeout",
        "0s",
        "--json",
    ]);
    assert_eq!(out.code, 5, "{out:?}");
    assert_eq!(out.json()["error"]["code"], "LOCK_TIMEOUT");
    assert_eq!(
        stat_delta(&before, &sandbox.stats(), "token_requests"),
        1,
        "default's refresh only"
    );
    drop(held);
}
