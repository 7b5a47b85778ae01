//! Each account's copies hold its set under its own variable names: the
//! `WITHINGS_*` names for `default`, `NAME_WITHINGS_*` for another (`-` as
//! `_`), so a household's accounts can share an env file (or a Railway
//! service) without one overwriting another's.

use crate::support::*;

#[test]
fn two_accounts_share_an_env_file_each_under_its_own_names() {
    let (sandbox, env) = given_sandbox();
    sandbox.authorise(&env);
    let redirect = redirect_as(&sandbox, &env, "home-2", 2);
    assert_eq!(
        env.run(&["exchange", &redirect, "--account", "home-2", "--no-railway"])
            .code,
        0
    );
    let path = env.write_env_file(
        "# the household\nWITHINGS_REFRESH_TOKEN=old-default\nHOME_2_WITHINGS_REFRESH_TOKEN=old-home-2\nOTHER=kept\n",
    );

    let out = env.run(&["refresh", "--account", "home-2", "--no-railway", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let text = std::fs::read_to_string(&path).unwrap();
    let home_2 = std::fs::read(env.store_path().with_file_name("tokens.accounts/home-2.json")).unwrap();
    let home_2: serde_json::Value = serde_json::from_slice(&home_2).unwrap();
    assert_eq!(
        env_value(&text, "HOME_2_WITHINGS_REFRESH_TOKEN"),
        home_2["tokens"]["refresh_token"].as_str().unwrap()
    );
    assert_eq!(
        env_value(&text, "HOME_2_WITHINGS_ACCESS_TOKEN"),
        home_2["tokens"]["access_token"].as_str().unwrap()
    );
    assert_eq!(
        env_value(&text, "WITHINGS_REFRESH_TOKEN"),
        "old-default",
        "default's line untouched"
    );
    assert!(!text.contains("\nWITHINGS_ACCESS_TOKEN="), "{text}");
    assert!(
        text.starts_with("# the household\n") && text.contains("OTHER=kept"),
        "{text}"
    );

    let out = env.run(&["refresh", "--account", "default", "--no-railway", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(env_value(&text, "WITHINGS_REFRESH_TOKEN"), env.stored_refresh_token());
    assert_eq!(
        env_value(&text, "HOME_2_WITHINGS_REFRESH_TOKEN"),
        home_2["tokens"]["refresh_token"].as_str().unwrap(),
        "home-2's lines untouched by default's refresh"
    );
}
