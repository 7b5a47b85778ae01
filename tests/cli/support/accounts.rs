//! Several accounts in one store: where each lives, a set written for one
//! by hand, and a consent at the sandbox as one of its two people.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::{SandboxProcess, TestEnv, rfc3339};

/// Where the account `name` of `env`'s default store lives.
pub fn account_store(env: &TestEnv, name: &str) -> PathBuf {
    env.store_path()
        .with_file_name("tokens.accounts")
        .join(format!("{name}.json"))
}

/// A whole store (generation `generation`) holding `access`/`refresh` of
/// Withings user `userid`, expiring in `expires_in_secs`, refreshed three
/// hours before that.
pub fn account_set((access, refresh): (&str, &str), expires_in_secs: i64, userid: &str, generation: u64) -> Value {
    let expires = chrono::Utc::now() + chrono::Duration::seconds(expires_in_secs);
    json!({
        "version": 1,
        "generation": generation,
        "tokens": {
            "access_token": access,
            "refresh_token": refresh,
            "expires_at": rfc3339(expires),
            "last_refreshed": rfc3339(expires - chrono::Duration::hours(3)),
            "userid": userid,
            "scope": "user.info,user.metrics",
        },
    })
}

/// Writes account `name`'s store with [`account_set`] at generation 1.
pub fn seed_account(env: &TestEnv, name: &str, pair: (&str, &str), expires_in_secs: i64, userid: &str) {
    let path = account_store(env, name);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("accounts dir");
    let store = account_set(pair, expires_in_secs, userid, 1);
    std::fs::write(&path, serde_json::to_vec_pretty(&store).expect("json")).expect("write store");
}

/// The store at `path`, as JSON (`null` when there is none).
pub fn stored_at(path: &Path) -> Value {
    std::fs::read(path)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

/// A redirect from the sandbox's consent page for `env`'s `account`,
/// logged in as the sandbox's person `user` (1 or 2).
pub fn redirect_as(sandbox: &SandboxProcess, env: &TestEnv, account: &str, user: u8) -> String {
    let out = env.run(&["auth-url", "--account", account, "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let url = out.json()["authorization_url"]
        .as_str()
        .expect("authorization_url")
        .to_owned();
    sandbox.approve(&format!("{url}&sandbox_user={user}"))
}

/// The value of `key` in the env file `text`.
pub fn env_value(text: &str, key: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key} in {text}"))
        .trim_matches('\'')
        .to_owned()
}
