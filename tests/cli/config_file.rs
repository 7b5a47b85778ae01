//! The config file: found at `--config`, `WITHINGS_TOKEN_CONFIG` or under
//! the config directory; its place between the environment and the env
//! file; its errors (exit 3, with the line); `doctor` saying where each
//! value came from.

use crate::support::*;

use std::path::PathBuf;

/// Writes the default config file of this HOME; returns its path.
fn write_default_config(env: &TestEnv, text: &str) -> PathBuf {
    let path = env.home().join(".config/withings-token/config.toml");
    std::fs::create_dir_all(path.parent().expect("dir")).expect("config dir");
    std::fs::write(&path, text).expect("write config");
    path
}

/// `status --json`'s refresh buffer, in minutes, after `args`.
fn buffer_minutes(env: &TestEnv, args: &[&str]) -> Value {
    let run = env.run(&[&["status", "--json"], args].concat());
    assert_eq!(run.code, 0, "{run:?}");
    run.json()["refresh_buffer_minutes"].clone()
}

/// `doctor --json`'s row for `setting`.
fn source_of(run: &Run, setting: &str) -> Value {
    let report = run.json();
    let sources = report["sources"].as_array().expect("sources");
    sources
        .iter()
        .find(|s| s["setting"] == setting)
        .unwrap_or_else(|| panic!("no `{setting}` in {report}"))
        .clone()
}

#[test]
fn flag_beats_environment_beats_account_table_beats_top_beats_env_file_beats_default() {
    let mut env = TestEnv::new();
    env.seed_store(OLD_ACCESS, OLD_REFRESH, 3 * 3600);
    assert_eq!(buffer_minutes(&env, &[]), 60, "the default: a third of a 3 h token");
    env.write_env_file("WITHINGS_REFRESH_BUFFER=50m\n");
    assert_eq!(buffer_minutes(&env, &[]), 50, "the env file");
    write_default_config(&env, "buffer = \"40m\"\n");
    assert_eq!(buffer_minutes(&env, &[]), 40, "the top of the config file");
    write_default_config(&env, "buffer = \"40m\"\n\n[account.default]\nbuffer = \"30m\"\n");
    assert_eq!(buffer_minutes(&env, &[]), 30, "the account's table");
    env.set("WITHINGS_REFRESH_BUFFER", "20m");
    assert_eq!(buffer_minutes(&env, &[]), 20, "the environment");
    assert_eq!(buffer_minutes(&env, &["--buffer", "10m"]), 10, "the flag");
}

#[test]
fn doctor_says_where_each_value_came_from() {
    let mut env = TestEnv::new();
    env.seed_store(OLD_ACCESS, OLD_REFRESH, 3 * 3600);
    let config = write_default_config(
        &env,
        "# the app\nclient_id = \"cid-from-config\"\nrefresh_at_least = \"3d\"\n\n[account.alice]\njitter = \"5m\"\n",
    );
    let env_file = env.write_env_file("WITHINGS_REDIRECT_URI=https://example.com/from-env-file\n");
    env.set("WITHINGS_TOKEN_UPSTREAM_BUDGET", "90");

    let run = env.run(&[
        "doctor",
        "--json",
        "--account",
        "alice",
        "--store",
        &env.store_path().display().to_string(),
    ]);
    let file = config.display().to_string();
    let env_file = env_file.canonicalize().expect("env file").display().to_string();
    assert_eq!(
        source_of(&run, "config file"),
        json!({ "setting": "config file", "variable": "WITHINGS_TOKEN_CONFIG", "value": file, "from": "default" })
    );
    assert_eq!(
        source_of(&run, "client id"),
        json!({ "setting": "client id", "variable": "WITHINGS_CLIENT_ID", "value": "cid-from-config",
                "from": "config file", "file": file, "line": 2 })
    );
    assert_eq!(
        source_of(&run, "jitter"),
        json!({ "setting": "jitter", "variable": "WITHINGS_TOKEN_JITTER", "value": "5m",
                "from": "config file", "file": file, "line": 6, "table": "account.alice" })
    );
    assert_eq!(source_of(&run, "refresh at least")["line"], 3);
    assert_eq!(
        source_of(&run, "redirect uri"),
        json!({ "setting": "redirect uri", "variable": "WITHINGS_REDIRECT_URI",
                "value": "https://example.com/from-env-file", "from": "env file", "file": env_file })
    );
    assert_eq!(source_of(&run, "upstream budget")["from"], "environment");
    assert_eq!(source_of(&run, "account")["flag"], "--account");
    assert_eq!(source_of(&run, "store")["flag"], "--store");
    assert_eq!(
        source_of(&run, "buffer"),
        json!({ "setting": "buffer", "variable": "WITHINGS_REFRESH_BUFFER",
                "value": "min(24h, lifetime / 3)", "from": "default" })
    );

    let text = env.run(&["doctor", "--account", "alice"]);
    let line = format!("from  jitter             5m (config file {file}:6 [account.alice])");
    assert!(text.stdout.lines().any(|l| l == line), "no `{line}`:\n{text:?}");
}

#[test]
fn an_unknown_key_is_exit_3_naming_the_file_the_line_and_the_key() {
    let env = TestEnv::new();
    let config = write_default_config(
        &env,
        "client_id = \"x\"\n\n[account.alice]\nbuffer = \"1h\"\nbufer = \"2h\"\n",
    );
    for command in [&["status"][..], &["refresh", "--dry-run"], &["doctor"]] {
        let run = env.run(command);
        assert_eq!(run.code, 3, "{command:?}: {run:?}");
        let message = format!("{}:5: unknown key `bufer` in [account.alice]", config.display());
        if command == ["doctor"] {
            let line = format!("fail  settings           {message}");
            assert!(run.stdout.lines().any(|l| l == line), "{run:?}");
        } else {
            let action = "fix or delete it; an [account.NAME] table takes scope, env_file, buffer, refresh_at_least, jitter, railway_token, railway_api_token, railway_project_id, railway_service_id, railway_environment_id, railway_environment_name, on_event, webhook_url, webhook_secret, webhook_format, ping_url, refresh_token_aging, variable_prefix";
            assert_stderr_error(&run.stderr, "CONFIGURATION_ERROR", &message, action);
        }
    }
}

#[test]
fn a_bad_value_is_exit_3_with_its_line_in_json_too() {
    let env = TestEnv::new();
    let config = write_default_config(&env, "# budget\nupstream_budget = \"lots\"\n");
    let run = env.run(&["status", "--json"]);
    let (message, action) = assert_json_error(&run, 3, "CONFIGURATION_ERROR");
    assert_eq!(
        message,
        format!(
            "{}:2: `upstream_budget` at the top of the file: `lots` is not a number from 1 to 10000000",
            config.display()
        )
    );
    assert_eq!(
        action,
        "set it to a number of requests a minute from 1 to 10000000, like 120 (the default, Withings' own limit)"
    );
}

#[test]
fn a_config_file_named_by_flag_or_variable_must_exist() {
    let mut env = TestEnv::new();
    let missing = env.home().join("nowhere.toml");
    let run = env.run(&["status", "--config", &missing.display().to_string()]);
    assert_eq!(run.code, 3, "{run:?}");
    assert_stderr_error(
        &run.stderr,
        "CONFIGURATION_ERROR",
        &format!("cannot read config file {}: no such file", missing.display()),
        "fix the path given with `--config`",
    );
    env.set("WITHINGS_TOKEN_CONFIG", missing.display().to_string());
    let run = env.run(&["status"]);
    assert_eq!(run.code, 3, "{run:?}");
    assert_stderr_error(
        &run.stderr,
        "CONFIGURATION_ERROR",
        &format!("cannot read config file {}: no such file", missing.display()),
        "fix WITHINGS_TOKEN_CONFIG, or unset it to use the default config file",
    );
}

#[test]
fn the_flag_beats_the_variable_and_the_default_is_under_xdg_config_home() {
    let mut env = TestEnv::new();
    env.seed_store(OLD_ACCESS, OLD_REFRESH, 3 * 3600);
    let xdg = env.home().join("xdg");
    std::fs::create_dir_all(xdg.join("withings-token")).expect("dir");
    std::fs::write(xdg.join("withings-token/config.toml"), "buffer = \"11m\"\n").expect("write");
    write_default_config(&env, "buffer = \"99m\"\n");
    env.set("XDG_CONFIG_HOME", xdg.display().to_string());
    assert_eq!(buffer_minutes(&env, &[]), 11, "XDG_CONFIG_HOME's, not ~/.config's");

    let named = env.home().join("named.toml");
    std::fs::write(&named, "buffer = \"22m\"\n").expect("write");
    let flagged = env.home().join("flagged.toml");
    std::fs::write(&flagged, "buffer = \"33m\"\n").expect("write");
    env.set("WITHINGS_TOKEN_CONFIG", named.display().to_string());
    assert_eq!(buffer_minutes(&env, &[]), 22);
    assert_eq!(buffer_minutes(&env, &["--config", &flagged.display().to_string()]), 33);
}

#[test]
fn a_config_file_holding_a_secret_that_others_may_read_is_warned_about() {
    let env = TestEnv::new();
    let config = write_default_config(&env, "client_id = \"x\"\nclient_secret = \"config-secret-value\"\n");
    let chmod = |mode| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&config, std::fs::Permissions::from_mode(mode)).expect("chmod");
    };
    chmod(0o644);
    let run = env.run(&["status"]);
    assert_eq!(run.code, 0, "{run:?}");
    let warning = format!(
        "{}:2 holds a secret (`client_secret`) and group or others may read it: run `chmod 600 {}`",
        config.display(),
        config.display()
    );
    assert!(run.stderr.contains(&warning), "{run:?}");
    assert_no_secrets(&run, &["config-secret-value"]);
    chmod(0o600);
    let run = env.run(&["status"]);
    assert_eq!((run.code, run.stderr.as_str()), (0, ""), "{run:?}");
}
