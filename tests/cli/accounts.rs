//! Several accounts in one deployment: a store written before accounts
//! existed is the `default` account with nothing sent; each account's set
//! is refreshed on its own (`refresh --all`, one failure not stopping the
//! others); several and none named is exit 3; `status` shows a row each;
//! `accounts` lists, renames and removes them.

use crate::support::*;

const ALICE_ACCESS: &str = "alice-access-000";
const ALICE_REFRESH: &str = "alice-refresh-abc";

fn stored_refresh_of(path: &std::path::Path) -> String {
    let store: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    store["tokens"]["refresh_token"].as_str().unwrap().to_owned()
}

/// A household: the default store (user 363) and alice's (user 271),
/// both expiring `expires_in_secs` from now, Withings at `withings`.
fn given_two_accounts(withings: &Upstream, expires_in_secs: i64) -> TestEnv {
    let mut env = given_store_expiring_in(expires_in_secs);
    env.withings(&withings.uri());
    seed_account(&env, "alice", (ALICE_ACCESS, ALICE_REFRESH), expires_in_secs, "271");
    env
}

#[test]
fn a_store_written_before_accounts_is_the_default_account_and_nothing_is_sent() {
    let withings = silent_withings();
    let env = given_expired_store(&withings.uri());
    env.seed_store(OLD_ACCESS, OLD_REFRESH, 7200);
    let before = env.store_bytes();

    let out = env.run_fast(&["accounts", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let listed = &out.json()["accounts"];
    assert_eq!(listed.as_array().unwrap().len(), 1, "{out:?}");
    assert_eq!(listed[0]["account"], "default");
    assert_eq!(listed[0]["userid"], "363");
    assert_eq!(listed[0]["should_refresh"], false);
    assert_eq!(listed[0]["copies_behind"], json!([]));
    assert_eq!(listed[0]["refresh_token_age_hours"], json!(1.0));

    // One account: `status` is the single report, with or without its name.
    let status = env.run_fast(&["status", "--json"]);
    assert_eq!(status.code, 0, "{status:?}");
    assert_eq!(status.json()["token_configured"], true);
    assert!(status.json().get("accounts").is_none(), "{status:?}");
    let named = env.run_fast(&["status", "--json", "--account", "default"]);
    assert_eq!(named.stdout, status.stdout);

    let refresh = env.run_fast(&["refresh", "--if-needed", "--json"]);
    assert_eq!(refresh.code, 0, "{refresh:?}");
    assert_eq!(refresh.json()["outcome"], "not_due");
    assert_eq!(env.store_bytes(), before, "the old store is used as it is");
    withings.verify();
}

#[test]
fn refresh_all_refreshes_each_account_with_its_own_token() {
    let withings = Upstream::start();
    withings.mount(
        refresh_of(OLD_REFRESH)
            .respond_with(new_tokens(NEW_ACCESS, NEW_REFRESH))
            .expect(1),
    );
    withings.mount(
        refresh_of(ALICE_REFRESH)
            .respond_with(new_tokens("alice-access-new", "alice-refresh-new"))
            .expect(1),
    );
    let env = given_two_accounts(&withings, -60);

    let out = env.run_fast(&["refresh", "--if-needed", "--all", "--no-railway", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let reports = out.json()["accounts"].as_array().unwrap().clone();
    let summary: Vec<(Value, Value, Value)> = reports
        .iter()
        .map(|r| (r["account"].clone(), r["outcome"].clone(), r["exit"].clone()))
        .collect();
    assert_eq!(
        summary,
        [
            (json!("default"), json!("refreshed"), json!(0)),
            (json!("alice"), json!("refreshed"), json!(0)),
        ]
    );
    assert_eq!(env.stored_refresh_token(), NEW_REFRESH);
    assert_eq!(stored_refresh_of(&account_store(&env, "alice")), "alice-refresh-new");
    withings.verify();

    // Nothing due now: a second run sends nothing (the mocks expect one each).
    let again = env.run_fast(&["refresh", "--if-needed", "--all", "--no-railway", "--json"]);
    assert_eq!(again.code, 0, "{again:?}");
    let outcomes: Vec<Value> = again.json()["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["outcome"].clone())
        .collect();
    assert_eq!(outcomes, [json!("not_due"), json!("not_due")]);
    withings.verify();
}

#[test]
fn refresh_all_goes_on_past_a_refused_account_and_exits_4() {
    let withings = Upstream::start();
    withings.mount(refresh_of(OLD_REFRESH).respond_with(refused_refresh()).expect(1));
    withings.mount(
        refresh_of(ALICE_REFRESH)
            .respond_with(new_tokens("alice-access-new", "alice-refresh-new"))
            .expect(1),
    );
    let env = given_two_accounts(&withings, -60);

    let out = env.run_fast(&["refresh", "--if-needed", "--all", "--no-railway", "--json"]);
    assert_eq!(out.code, 4, "{out:?}");
    let json = out.json();
    assert_eq!(json["accounts"][0]["account"], "default");
    assert_eq!(json["accounts"][0]["exit"], 4);
    assert_eq!(json["accounts"][0]["error"]["code"], "INVALID_REFRESH_TOKEN");
    assert_eq!(json["accounts"][1]["account"], "alice");
    assert_eq!(json["accounts"][1]["outcome"], "refreshed");
    assert!(out.stderr.contains("account default: "), "{out:?}");
    assert_eq!(env.stored_refresh_token(), OLD_REFRESH, "the refused set is kept");
    assert_eq!(stored_refresh_of(&account_store(&env, "alice")), "alice-refresh-new");
    withings.verify();
}

#[test]
fn several_accounts_and_none_named_is_exit_3_listing_them_with_nothing_sent() {
    let withings = silent_withings();
    let env = given_two_accounts(&withings, -60);
    for args in [&["refresh", "--if-needed"][..], &["access-token"], &["export"]] {
        let out = env.run_fast(args);
        assert_eq!(out.code, 3, "{args:?}: {out:?}");
        assert!(
            out.stderr
                .contains("this store keeps 2 accounts (default, alice) and none was named; nothing was sent"),
            "{out:?}"
        );
    }
    let out = env.run_fast(&["refresh", "--all", "--account", "alice"]);
    assert_eq!(out.code, 3, "{out:?}");
    assert!(
        out.stderr.contains("--all refreshes every account, but --account"),
        "{out:?}"
    );
    withings.verify();
}

#[test]
fn status_shows_a_row_per_account_and_check_exits_7_when_any_is_due() {
    let withings = silent_withings();
    let env = given_two_accounts(&withings, 7200);
    seed_account(&env, "bob", ("bob-access", "bob-refresh"), -60, "314");

    let out = env.run_fast(&["status", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let json = out.json();
    let rows: Vec<(Value, Value, Value)> = json["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["account"].clone(), r["userid"].clone(), r["should_refresh"].clone()))
        .collect();
    assert_eq!(
        rows,
        [
            (json!("default"), json!("363"), json!(false)),
            (json!("alice"), json!("271"), json!(false)),
            (json!("bob"), json!("314"), json!(true)),
        ]
    );
    assert_eq!(json["accounts"][2]["refresh_reason"], "the access token has expired");

    let check = env.run_fast(&["status", "--check"]);
    assert_eq!(check.code, 7, "{check:?}");
    assert!(
        check.stderr.contains("a refresh is due for bob [REFRESH_DUE]"),
        "{check:?}"
    );
    let table_rows: Vec<&str> = check.stdout.lines().filter(|l| l.starts_with("│ ")).collect();
    assert_eq!(table_rows.len(), 4, "a header and a row each:\n{}", check.stdout);
    assert!(table_rows[3].starts_with("│ bob "), "{}", check.stdout);

    // One named: its own report, as before.
    let alice = env.run_fast(&["status", "--json", "--account", "alice"]);
    assert_eq!(alice.code, 0, "{alice:?}");
    assert_eq!(alice.json()["userid"], "271");
    withings.verify();
}

#[test]
fn rename_moves_an_accounts_store_and_refuses_a_name_in_use() {
    let withings = silent_withings();
    let env = given_two_accounts(&withings, 7200);
    let alice = std::fs::read(account_store(&env, "alice")).unwrap();

    let out = env.run_fast(&["accounts", "rename", "alice", "default"]);
    assert_eq!(out.code, 3, "{out:?}");
    assert!(
        out.stderr.contains("holds a token set already; nothing was moved"),
        "{out:?}"
    );
    assert_eq!(std::fs::read(account_store(&env, "alice")).unwrap(), alice);

    let out = env.run_fast(&["accounts", "rename", "alice", "carol", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.json()["change"], "renamed");
    assert_eq!(out.json()["new_name"], "carol");
    assert!(!account_store(&env, "alice").exists());
    assert_eq!(std::fs::read(account_store(&env, "carol")).unwrap(), alice);

    // The default store moves into the accounts directory too.
    let out = env.run_fast(&["accounts", "rename", "default", "dave"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(!env.store_path().exists());
    let listed = env.run_fast(&["accounts", "--json"]).json();
    let names: Vec<&Value> = listed["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["account"])
        .collect();
    assert_eq!(names, [&json!("carol"), &json!("dave")]);

    let out = env.run_fast(&["accounts", "rename", "nobody", "x"]);
    assert_eq!(out.code, 3, "{out:?}");
    withings.verify();
}

#[test]
fn remove_needs_yes_and_says_the_consent_at_withings_remains() {
    let withings = silent_withings();
    let env = given_two_accounts(&withings, 7200);
    let alice = account_store(&env, "alice");

    let out = env.run_fast(&["accounts", "remove", "alice"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains("would delete the token set of account alice in")
            && out
                .stderr
                .contains("run `withings-token accounts remove alice --yes` to remove it"),
        "{out:?}"
    );
    assert!(alice.exists());

    let out = env.run_fast(&["accounts", "remove", "alice", "--yes"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stderr
            .contains("the consent given at Withings remains: revoke it in the Withings app"),
        "{out:?}"
    );
    let left: Vec<String> = std::fs::read_dir(alice.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, Vec::<String>::new(), "the store and its lock are gone");
    // One account again: commands need no name.
    let status = env.run_fast(&["status", "--json"]);
    assert_eq!(status.code, 0, "{status:?}");
    assert_eq!(status.json()["userid"], "363");
    withings.verify();
}
