//! Accounts in a Redis store: each account's set under its own key
//! (`withings-token:<client id>:NAME:tokens`) with its own lease, listed in
//! `withings-token:<client id>:accounts`; the default account stays at the
//! key it always had.

use crate::support::*;

#[test]
fn two_hosts_on_one_redis_keep_two_accounts_under_their_own_keys() {
    let (sandbox, redis, envs) = given_fleet(2);
    let (first, second) = (&envs[0], &envs[1]);
    let out = first.run(&["auth-url", "--account", "bob", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let url = out.json()["authorization_url"].as_str().unwrap().to_owned();
    let redirect = sandbox.approve(&format!("{url}&sandbox_user=2"));
    let out = first.run(&["exchange", &redirect, "--account", "bob", "--no-railway", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");

    let bob_key = format!("{}:bob:tokens", REDIS_KEY.trim_end_matches(":tokens"));
    let index = format!("{}:accounts", REDIS_KEY.trim_end_matches(":tokens"));
    let bob: serde_json::Value = serde_json::from_str(&redis.command(&["GET", &bob_key]).unwrap()).unwrap();
    assert_eq!(bob["tokens"]["userid"], "27182818");
    assert_eq!(redis.store_json()["tokens"]["userid"], "31415926");
    assert_eq!(redis.command(&["SISMEMBER", &index, "bob"]).as_deref(), Some("1"));

    let out = second.run(&["refresh", "--no-railway", "--json"]);
    assert_eq!(out.code, 3, "the other host sees both accounts: {out:?}");
    assert_eq!(
        out.json()["error"]["message"],
        "this store keeps 2 accounts (default, bob) and none was named; nothing was sent"
    );
    let out = second.run(&["status", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let status = out.json();
    let rows: Vec<&str> = status["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["account"].as_str().unwrap())
        .collect();
    assert_eq!(rows, ["default", "bob"]);
    let out = second.run(&["refresh", "--account", "bob", "--no-railway", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.json()["userid"], "27182818");
    let bob_after: serde_json::Value = serde_json::from_str(&redis.command(&["GET", &bob_key]).unwrap()).unwrap();
    assert_ne!(bob_after["tokens"]["refresh_token"], bob["tokens"]["refresh_token"]);
    assert_eq!(
        redis.command(&["EXISTS", &format!("{bob_key}:fence")]).as_deref(),
        Some("1"),
        "bob's own lease"
    );
    let out = first.run(&["refresh", "--account", "default", "--no-railway", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.json()["userid"], "31415926");
}
