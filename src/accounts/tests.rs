use std::path::PathBuf;

use secrecy::SecretString;

use super::*;
use crate::account_name::redis_index_key;

fn name(text: &str) -> AccountName {
    AccountName::parse(text).unwrap()
}

#[test]
fn names_take_what_a_file_a_key_and_a_label_take_and_nothing_else() {
    for good in ["default", "alice", "home-2", "2nd", &"a".repeat(64)] {
        assert_eq!(name(good).as_str(), good);
    }
    for bad in [
        "",
        "-a",
        "_a",
        "a_1",
        "Alice",
        "a b",
        "a/b",
        "a:b",
        "..",
        "a.b",
        "é",
        &"a".repeat(65),
    ] {
        let e = AccountName::parse(bad).unwrap_err();
        assert_eq!(e.exit_code(), 3, "{bad}");
    }
    assert_eq!(name("home-2").default_variable_prefix(), "HOME_2_");
    assert_eq!(name("default").default_variable_prefix(), "");
}

#[test]
fn a_file_accounts_store_lives_beside_the_default_one() {
    let base = StoreLocation::File(PathBuf::from("/s/withings-token/tokens.json"));
    let StoreLocation::File(alice) = location_of(&base, &name("alice")) else {
        panic!()
    };
    assert_eq!(alice, PathBuf::from("/s/withings-token/tokens.accounts/alice.json"));
    let StoreLocation::File(same) = location_of(&base, &name("default")) else {
        panic!()
    };
    assert_eq!(same, PathBuf::from("/s/withings-token/tokens.json"));
}

#[test]
fn a_redis_accounts_keys_name_the_app_and_the_account() {
    let url = SecretString::from("redis://127.0.0.1:1");
    let at = |key: &str, account: &str| match location_of(
        &StoreLocation::Redis {
            url: url.clone(),
            key: key.to_owned(),
            rescue_dir: None,
        },
        &name(account),
    ) {
        StoreLocation::Redis { key, .. } => key,
        StoreLocation::File(_) => panic!(),
    };
    assert_eq!(
        at("withings-token:cid:tokens", "alice"),
        "withings-token:cid:alice:tokens"
    );
    assert_eq!(at("withings-token:cid:tokens", "default"), "withings-token:cid:tokens");
    assert_eq!(at("mine", "alice"), "mine:account:alice");
    assert_eq!(
        redis_index_key("withings-token:cid:tokens"),
        "withings-token:cid:accounts"
    );
    assert_eq!(redis_index_key("mine"), "mine:accounts");
}

#[test]
fn a_file_deployment_lists_default_first_then_the_named_accounts_sorted() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("tokens.json");
    assert_eq!(names_in_files(&base).unwrap(), Vec::<AccountName>::new());
    std::fs::write(&base, "{}").unwrap();
    let accounts = accounts_dir(&base);
    std::fs::create_dir(&accounts).unwrap();
    for file in [
        "zoe.json",
        "bob.json",
        "bob.json.lock",
        "bob.json.rescue",
        ".tmp.json",
        "x y.json",
        "default.json",
    ] {
        std::fs::write(accounts.join(file), "{}").unwrap();
    }
    let listed: Vec<String> = names_in_files(&base).unwrap().iter().map(|n| n.to_string()).collect();
    assert_eq!(listed, ["default", "bob", "zoe"]);
}
