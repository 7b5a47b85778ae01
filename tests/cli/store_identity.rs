//! Whose set a store holds: the sandbox keeps its tokens in a store of its
//! own, and a store records the Withings app (client id) that saved it, so
//! a set of another app (the sandbox's, a second app's) is refused before
//! anything is sent with it.

use crate::support::*;

use std::os::unix::fs::PermissionsExt;

/// The env file a user saves from `withings-token sandbox > sandbox.env`.
fn sandbox_env_file(sandbox: &SandboxProcess, env: &TestEnv) -> std::path::PathBuf {
    let mut lines: Vec<String> = sandbox.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    lines.push(format!("WITHINGS_TOKEN_STORE={}", sandbox.own_store.display()));
    let path = env.work_dir().join("sandbox.env");
    std::fs::write(&path, lines.join("\n") + "\n").expect("write sandbox.env");
    path
}

#[test]
fn the_sandbox_keeps_its_tokens_in_a_store_of_its_own_which_its_stop_removes() {
    let mut sandbox = SandboxProcess::start();
    let env = TestEnv::new();
    sandbox_env_file(&sandbox, &env);
    let own_dir = sandbox.own_store.parent().expect("store dir").to_path_buf();
    assert!(!own_dir.starts_with(env.home()), "{}", own_dir.display());
    assert_eq!(file_mode(&own_dir), 0o700);

    let auth = env.run(&["--env-file", "sandbox.env", "auth-url", "--json"]);
    assert_eq!(auth.code, 0, "{auth:?}");
    let redirect = sandbox.approve(auth.json()["authorization_url"].as_str().expect("url"));
    let out = env.run(&[
        "--env-file",
        "sandbox.env",
        "exchange",
        &redirect,
        "--no-railway",
        "--json",
    ]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.json()["store"], sandbox.own_store.display().to_string());

    // The user's real store was never made; the sandbox's holds the set.
    assert!(!env.store_path().exists(), "the sandbox wrote the real store");
    let stored: Value =
        serde_json::from_slice(&std::fs::read(&sandbox.own_store).expect("sandbox store")).expect("store parses");
    assert_eq!(stored["client_id"], "sandbox-client-id");
    assert_eq!(stat(&sandbox.stats(), "tokens_issued"), 1);

    // Ctrl-C: exit 130, and the sandbox's store goes with it.
    assert_eq!(sandbox.interrupt().code(), Some(130));
    assert!(!own_dir.exists(), "{} left behind", own_dir.display());
}

/// A store holding the sandbox's set, used with the real app's settings.
fn given_a_store_of_another_app(withings_url: &str) -> TestEnv {
    let env = given_expired_store(withings_url);
    let mut store = env.store_json();
    store["client_id"] = json!("sandbox-client-id");
    env.write_store_bytes(&serde_json::to_vec_pretty(&store).expect("json"));
    std::fs::set_permissions(env.store_path(), std::fs::Permissions::from_mode(0o600)).expect("chmod");
    env
}

#[test]
fn a_store_of_another_app_is_refused_before_anything_is_sent_naming_both() {
    let withings = silent_withings();
    let env = given_a_store_of_another_app(&withings.uri());
    let before = env.store_bytes();
    let said = format!(
        "error: token store {} holds the set of Withings app (client id) sandbox-client-id, but WITHINGS_CLIENT_ID is {CLIENT_ID}; nothing was sent [CONFIGURATION_ERROR]",
        env.store_path().display()
    );
    for args in [
        &["refresh", "--no-railway"][..],
        &["refresh", "--if-needed", "--no-railway"],
        &["exchange", "some-code", "--no-railway"],
        &["access-token"],
        &["status"],
    ] {
        let out = env.run_fast(args);
        assert_eq!(out.code, 3, "{args:?}: {out:?}");
        assert!(out.stderr.lines().any(|l| l == said), "{args:?}: {out:?}");
        assert!(
            out.stderr.contains(&format!("next: point `--store` (or WITHINGS_TOKEN_STORE) at the store of app {CLIENT_ID}, or set WITHINGS_CLIENT_ID back to sandbox-client-id")),
            "{out:?}"
        );
        assert_eq!(out.stdout, "", "{args:?}");
    }
    assert_eq!(env.store_bytes(), before, "the store was touched");
    withings.verify();
}

#[test]
fn a_store_records_the_app_that_saved_it_and_keeps_working_for_that_app() {
    let (sandbox, env) = given_authorised_sandbox();
    assert_eq!(env.store_json()["client_id"], "sandbox-client-id");
    env.make_store_due();
    let out = env.run(&["refresh", "--if-needed", "--no-railway", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.json()["outcome"], "refreshed");
    assert_eq!(env.store_json()["client_id"], "sandbox-client-id");
    // The stored token is the one the sandbox honours now.
    let before = sandbox.stats();
    let out = env.run(&["refresh", "--no-railway"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(stat_delta(&before, &sandbox.stats(), "refused"), 0);
}

#[test]
fn a_store_written_before_client_ids_were_recorded_is_adopted_on_its_next_save() {
    let withings = withings_rotating(OLD_REFRESH);
    let env = given_expired_store(&withings.uri());
    assert!(env.store_json().get("client_id").is_none());
    let out = env.run_fast(&["refresh", "--no-railway"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(env.store_json()["client_id"], CLIENT_ID);
    assert_eq!(env.stored_refresh_token(), NEW_REFRESH);
    withings.verify();
}
