use super::*;
use secrecy::ExposeSecret;

fn global(args: &[&str]) -> Overrides {
    crate::cli::overrides(args)
}

fn file_of(s: &Settings) -> PathBuf {
    match &s.store {
        StoreLocation::File(path) => path.clone(),
        StoreLocation::Redis { .. } => panic!("a Redis store"),
    }
}

#[test]
fn a_redis_url_is_a_redis_store_keyed_by_the_client_id() {
    let g = global(&["--no-env-file", "--store", "redis://:pw@127.0.0.1:6390/2"]);
    let s = Settings::resolve(&g, None, &env(&[("HOME", "/h"), ("WITHINGS_CLIENT_ID", "abc")])).unwrap();
    let StoreLocation::Redis { url, key, .. } = &s.store else {
        panic!("a file store")
    };
    assert_eq!(url.expose_secret(), "redis://:pw@127.0.0.1:6390/2");
    assert_eq!(key, "withings-token:abc:tokens");
    assert_eq!(s.lease_ttl, DEFAULT_LEASE_TTL);
    let g = global(&["--no-env-file", "--store", "rediss://h", "--store-key", "k1"]);
    let s = Settings::resolve(&g, None, &env(&[("HOME", "/h")])).unwrap();
    assert!(matches!(&s.store, StoreLocation::Redis { key, .. } if key == "k1"));
}

#[test]
fn a_redis_store_without_a_key_or_a_store_key_on_a_file_is_a_configuration_error() {
    let g = global(&["--no-env-file", "--store", "redis://127.0.0.1"]);
    let err = Settings::resolve(&g, None, &env(&[("HOME", "/h")])).err().unwrap();
    assert_eq!(err.code(), "CONFIGURATION_ERROR");
    assert!(err.to_string().contains("WITHINGS_CLIENT_ID is not set"), "{err}");
    let g = global(&["--no-env-file", "--store", "/f", "--store-key", "k"]);
    let err = Settings::resolve(&g, None, &env(&[("HOME", "/h")])).err().unwrap();
    assert!(err.to_string().contains("the store is a file"), "{err}");
}

#[test]
fn a_store_url_in_any_case_is_redis_and_another_scheme_is_refused_never_a_file() {
    assert_eq!(
        store_url(" REDIS://:pw@h:6379/0\n").unwrap().unwrap(),
        "redis://:pw@h:6379/0"
    );
    assert_eq!(store_url("Rediss://h").unwrap().unwrap(), "rediss://h");
    for other in ["unix:///run/redis.sock", "redis+unix:///s", "postgres://:pw@h/db"] {
        let err = store_url(other).unwrap().err().unwrap();
        assert_eq!(err.code(), "CONFIGURATION_ERROR");
        assert!(!err.to_string().contains("pw"), "{err}");
    }
    assert!(store_url("/var/lib/tokens.json").is_none());
    assert!(store_url("./dir with :// inside/tokens.json").is_none());
}

#[test]
fn the_lease_ttl_is_bounded() {
    let g = global(&["--no-env-file"]);
    let s = Settings::resolve(&g, None, &env(&[("HOME", "/h"), ("WITHINGS_TOKEN_LEASE_TTL", "2s")])).unwrap();
    assert_eq!(s.lease_ttl, Duration::from_secs(2));
    for bad in [("WITHINGS_TOKEN_LEASE_TTL", "0s"), ("WITHINGS_TOKEN_LEASE_TTL", "11m")] {
        let pairs: &'static [(&'static str, &'static str)] = Box::leak(Box::new([("HOME", "/h"), bad]));
        assert!(Settings::resolve(&g, None, &env(pairs)).is_err(), "{bad:?}");
    }
}

fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
    move |name| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
}

#[test]
fn the_region_picks_both_withings_hosts_and_explicit_urls_win() {
    let us = Settings::resolve(
        &global(&["--no-env-file", "--region", "us"]),
        None,
        &env(&[("HOME", "/h")]),
    )
    .unwrap();
    assert_eq!(us.api_url().unwrap().as_str(), "https://wbsapi.us.withingsmed.net/");
    assert_eq!(
        us.authorize_url().unwrap().as_str(),
        "https://account.us.withingsmed.com/oauth2_user/authorize2"
    );
    let by_env = Settings::resolve(
        &global(&["--no-env-file"]),
        None,
        &env(&[("HOME", "/h"), ("WITHINGS_REGION", "US")]),
    )
    .unwrap();
    assert_eq!(by_env.api_url().unwrap().as_str(), "https://wbsapi.us.withingsmed.net/");
    let flag_wins = Settings::resolve(
        &global(&["--no-env-file", "--region", "eu"]),
        None,
        &env(&[("HOME", "/h"), ("WITHINGS_REGION", "us")]),
    )
    .unwrap();
    assert_eq!(flag_wins.api_url().unwrap().as_str(), "https://wbsapi.withings.net/");
    let explicit = env(&[("HOME", "/h"), ("WITHINGS_API_URL", "https://proxy.example.com")]);
    let explicit = Settings::resolve(&global(&["--no-env-file", "--region", "us"]), None, &explicit).unwrap();
    assert_eq!(explicit.api_url().unwrap().as_str(), "https://proxy.example.com/");
    let bad = Settings::resolve(
        &global(&["--no-env-file"]),
        None,
        &env(&[("HOME", "/h"), ("WITHINGS_REGION", "mars")]),
    );
    assert_eq!(bad.err().map(|e| e.exit_code()), Some(3));
}

#[test]
fn a_bad_url_setting_is_named_without_its_password_or_query() {
    for text in [
        "http://user:PASSWORD@example.com/x?token=QSECRET",
        "ftp://u:PASSWORD@h?token=QSECRET",
        "not a url?token=QSECRET",
    ] {
        let shown = shown_setting(text);
        assert!(!shown.contains("PASSWORD") && !shown.contains("QSECRET"), "{shown}");
    }
}

#[test]
fn plain_http_is_only_for_loopback() {
    assert!(checked_url("http://127.0.0.1:8080").is_ok());
    assert!(checked_url("http://localhost:1").is_ok());
    assert!(checked_url("http://[::1]:1").is_ok());
    assert!(checked_url("http://example.com").is_err());
    assert!(checked_url("ftp://127.0.0.1").is_err());
    assert!(checked_url("https://example.com").is_ok());
}

#[test]
fn store_path_follows_xdg_then_home() {
    let g = global(&["--no-env-file"]);
    let s = Settings::resolve(&g, None, &env(&[("XDG_STATE_HOME", "/x"), ("HOME", "/h")])).unwrap();
    assert_eq!(file_of(&s), PathBuf::from("/x/withings-token/tokens.json"));
    let s = Settings::resolve(&g, None, &env(&[("HOME", "/h")])).unwrap();
    assert_eq!(file_of(&s), PathBuf::from("/h/.local/state/withings-token/tokens.json"));
    let s = Settings::resolve(
        &global(&["--no-env-file", "--store", "/f"]),
        None,
        &env(&[("HOME", "/h")]),
    )
    .unwrap();
    assert_eq!(file_of(&s), PathBuf::from("/f"));
}

#[test]
fn serve_credentials_and_port_are_read_and_port_checked_on_use() {
    let g = global(&["--no-env-file"]);
    let s = Settings::resolve(
        &g,
        None,
        &env(&[("HOME", "/h"), ("ADMIN_API_TOKEN", "a"), ("PORT", "8081")]),
    )
    .unwrap();
    assert!(s.server.admin_token.is_some() && s.server.reader_token.is_none());
    assert_eq!(s.server.port().unwrap(), Some(8081));
    let s = Settings::resolve(&g, None, &env(&[("HOME", "/h"), ("PORT", "http")])).unwrap();
    assert_eq!(s.server.port().unwrap_err().code(), "CONFIGURATION_ERROR");
}

#[test]
fn project_token_wins_over_account_token() {
    let g = global(&["--no-env-file"]);
    let s = Settings::resolve(
        &g,
        None,
        &env(&[("HOME", "/h"), ("RAILWAY_TOKEN", "p"), ("RAILWAY_API_TOKEN", "a")]),
    )
    .unwrap();
    assert!(matches!(s.railway.auth, Some(RailwayAuth::Project(_))));
}

#[test]
fn bad_time_variable_is_named() {
    let g = global(&["--no-env-file"]);
    let err = Settings::resolve(
        &g,
        None,
        &env(&[
            ("HOME", "/h"),
            ("WITHINGS_REFRESH_TOKEN", "r"),
            ("WITHINGS_TOKEN_EXPIRES_AT", "tomorrow"),
        ]),
    )
    .err()
    .unwrap();
    assert_eq!(err.exit_code(), 3);
    assert!(err.to_string().contains("WITHINGS_TOKEN_EXPIRES_AT"), "{err}");
}

#[test]
fn bad_urls_do_not_stop_loading_and_are_reported_on_use() {
    let g = global(&["--no-env-file"]);
    let s = Settings::resolve(
        &g,
        None,
        &env(&[
            ("HOME", "/h"),
            ("WITHINGS_API_URL", "http://example.com"),
            ("WITHINGS_AUTHORIZE_URL", "not a url"),
            ("RAILWAY_API_URL", "ftp://127.0.0.1"),
        ]),
    )
    .unwrap();
    let err = s.api_url().unwrap_err();
    assert_eq!(err.exit_code(), 3);
    assert_eq!(
        err.to_string(),
        "WITHINGS_API_URL is not usable: plain http:// is only allowed for loopback hosts (`http://example.com`)"
    );
    assert_eq!(err.action(), "set WITHINGS_API_URL to an https:// URL");
    assert!(
        s.authorize_url()
            .unwrap_err()
            .to_string()
            .starts_with("WITHINGS_AUTHORIZE_URL is not usable")
    );
    assert!(
        s.railway_api_url()
            .unwrap_err()
            .to_string()
            .starts_with("RAILWAY_API_URL is not usable")
    );
}

#[test]
fn url_defaults_are_resolved_here() {
    let s = Settings::resolve(&global(&["--no-env-file"]), None, &env(&[("HOME", "/h")])).unwrap();
    assert_eq!(s.api_url().unwrap().as_str(), "https://wbsapi.withings.net/");
    assert_eq!(s.authorize_url().unwrap().as_str(), DEFAULT_AUTHORIZE_URL);
    assert_eq!(s.railway_api_url().unwrap().as_str(), DEFAULT_RAILWAY_API_URL);
}

#[test]
fn railway_configuration_is_absent_partial_or_complete() {
    let g = global(&["--no-env-file"]);
    let config = |vars: &'static [(&'static str, &'static str)]| {
        Settings::resolve(&g, None, &env(vars)).unwrap().railway.configuration()
    };
    assert_eq!(
        config(&[("HOME", "/h"), ("RAILWAY_ENVIRONMENT_ID", "e")]),
        RailwayConfig::Absent
    );
    assert_eq!(
        config(&[("HOME", "/h"), ("RAILWAY_API_TOKEN", "t"), ("RAILWAY_PROJECT_ID", "p")]),
        RailwayConfig::Partial {
            missing: vec!["RAILWAY_SERVICE_ID"]
        }
    );
    assert_eq!(
        config(&[("HOME", "/h"), ("RAILWAY_SERVICE_ID", "s")]),
        RailwayConfig::Partial {
            missing: vec!["RAILWAY_TOKEN (or RAILWAY_API_TOKEN)", "RAILWAY_PROJECT_ID"]
        }
    );
    assert_eq!(
        config(&[
            ("HOME", "/h"),
            ("RAILWAY_TOKEN", "t"),
            ("RAILWAY_PROJECT_ID", "p"),
            ("RAILWAY_SERVICE_ID", "s")
        ]),
        RailwayConfig::Complete
    );
}

#[test]
fn an_absurd_buffer_variable_is_a_configuration_error() {
    let g = global(&["--no-env-file"]);
    for bad in ["100000000d", "367d", "18446744073709551615s"] {
        let vars = move |name: &str| match name {
            "HOME" => Some("/h".to_owned()),
            "WITHINGS_REFRESH_BUFFER" => Some(bad.to_owned()),
            _ => None,
        };
        let err = Settings::resolve(&g, None, &vars).err().unwrap();
        assert_eq!(err.exit_code(), 3, "{bad}");
        assert!(err.to_string().contains("WITHINGS_REFRESH_BUFFER"), "{err}");
    }
    let s = Settings::resolve(&g, None, &env(&[("HOME", "/h"), ("WITHINGS_REFRESH_BUFFER", "366d")])).unwrap();
    assert_eq!(s.buffer, Some(chrono::Duration::days(366)));
}

#[test]
fn env_file_lines_of_other_apps_are_read_as_python_dotenv_reads_them_or_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.env");
    std::fs::write(
        &path,
        "\u{feff}APP_NAME=My App\nWITHINGS_CLIENT_ID=abc\nRAILWAY_STATIC_URL=x y\nNOTE=\"never closed\n",
    )
    .unwrap();
    let g = global(&["--env-file", path.to_str().unwrap()]);
    let s = Settings::resolve(&g, None, &env(&[("HOME", "/h")])).unwrap();
    assert_eq!(s.client_id.as_deref(), Some("abc"));
    let loaded = s.env_file.unwrap();
    assert_eq!(loaded.file.get("APP_NAME"), Some("My App"));
    assert_eq!(loaded.file.skipped_lines(), [4]);
}

#[test]
fn a_bad_env_file_line_of_ours_is_named_by_its_real_number() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.env");
    std::fs::write(&path, "A=1\n\nWITHINGS_CLIENT_SECRET=\"s3cret\nB=2\n").unwrap();
    let g = global(&["--env-file", path.to_str().unwrap()]);
    let err = Settings::resolve(&g, None, &env(&[("HOME", "/h")])).err().unwrap();
    assert_eq!(err.exit_code(), 3);
    let text = format!("{err} {}", err.action());
    assert!(text.contains("line 3 sets WITHINGS_CLIENT_SECRET"), "{text}");
    assert!(text.contains("`--env-file`"), "{text}");
    assert!(!text.contains("s3cret"), "{text}");
}

#[test]
fn a_token_variable_with_a_control_character_is_refused_by_name() {
    let g = global(&["--no-env-file"]);
    for (name, value) in [
        ("WITHINGS_REFRESH_TOKEN", "s3cret\0tail"),
        ("WITHINGS_REFRESH_TOKEN", "s3cret\n"),
        ("WITHINGS_ACCESS_TOKEN", "s3cret\ttail"),
    ] {
        let vars = move |n: &str| match n {
            "HOME" => Some("/h".to_owned()),
            "WITHINGS_REFRESH_TOKEN" if n != name => Some("r".to_owned()),
            _ if n == name => Some(value.to_owned()),
            _ => None,
        };
        let err = Settings::resolve(&g, None, &vars).err().unwrap();
        assert_eq!((err.code(), err.exit_code()), ("CONFIGURATION_ERROR", 3), "{name}");
        let text = format!("{err} {}", err.action());
        assert!(text.starts_with(&format!("{name} holds a control character")), "{text}");
        assert!(!text.contains("s3cret"), "{text}");
    }
}

#[test]
fn a_token_set_twice_in_the_env_file_is_read_with_its_last_value() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.env");
    std::fs::write(&path, "WITHINGS_REFRESH_TOKEN=first\nWITHINGS_REFRESH_TOKEN=last\n").unwrap();
    let g = global(&["--env-file", path.to_str().unwrap()]);
    let s = Settings::resolve(&g, None, &env(&[("HOME", "/h")])).unwrap();
    let seed = s.seed_tokens.unwrap();
    assert_eq!(secrecy::ExposeSecret::expose_secret(&seed.refresh_token), "last");
}

#[test]
fn buffer_flag_beats_variable() {
    let g = global(&["--no-env-file"]);
    let vars = env(&[("HOME", "/h"), ("WITHINGS_REFRESH_BUFFER", "2h")]);
    let s = Settings::resolve(&g, Some(Duration::from_secs(60)), &vars).unwrap();
    assert_eq!(s.buffer, Some(chrono::Duration::minutes(1)));
    let s = Settings::resolve(&g, None, &vars).unwrap();
    assert_eq!(s.buffer, Some(chrono::Duration::hours(2)));
}

// ---------------------------------------------------------------------------
// The config file

/// A config file `text` beside an env file `env_text` (named `app.env`).
fn config_dir(text: &str, env_text: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, text).unwrap();
    std::fs::write(dir.path().join("app.env"), env_text).unwrap();
    (dir, path.to_string_lossy().into_owned())
}

fn account(text: &str) -> AccountName {
    AccountName::parse(text).unwrap()
}

/// The source of `variable` among the settings' origins.
fn source_of(s: &Settings, variable: &str) -> Source {
    s.origins
        .iter()
        .find(|o| o.variable == variable)
        .unwrap()
        .source
        .clone()
}

fn in_file(line: usize, account: Option<&str>) -> Source {
    Source::ConfigFile(crate::config::Place {
        line,
        account: account.map(|a| AccountName::parse(a).unwrap()),
    })
}

#[test]
fn each_layer_wins_over_the_ones_below_it() {
    let (_dir, path) = config_dir(
        "env_file = \"app.env\"\nbuffer = \"4h\"\njitter = \"4m\"\nrefresh_at_least = \"4d\"\n[account.alice]\nbuffer = \"3h\"\njitter = \"3m\"\n",
        "WITHINGS_REFRESH_BUFFER=5h\nWITHINGS_TOKEN_JITTER=5m\nWITHINGS_TOKEN_REFRESH_AT_LEAST=5d\nWITHINGS_TOKEN_UPSTREAM_BUDGET=55\n",
    );
    let g = global(&["--config", &path, "--account", "alice"]);
    let vars = env(&[("HOME", "/h"), ("WITHINGS_REFRESH_BUFFER", "2h")]);
    let s = Settings::resolve(&g, Some(Duration::from_secs(3600)), &vars).unwrap();
    assert_eq!(s.buffer, Some(chrono::Duration::hours(1)), "the flag");
    assert_eq!(source_of(&s, "WITHINGS_REFRESH_BUFFER"), Source::Flag("--buffer"));
    let s = Settings::resolve(&g, None, &vars).unwrap();
    assert_eq!(
        s.policy.jitter,
        Duration::from_secs(240),
        "the deployment's, until the account is chosen"
    );
    let s = s.for_account(&account("alice")).unwrap();
    assert_eq!(s.buffer, Some(chrono::Duration::hours(2)), "the environment");
    assert_eq!(source_of(&s, "WITHINGS_REFRESH_BUFFER"), Source::Environment);
    assert_eq!(s.policy.jitter, Duration::from_secs(180), "the account's table");
    assert_eq!(source_of(&s, "WITHINGS_TOKEN_JITTER"), in_file(7, Some("alice")));
    assert_eq!(
        s.policy.refresh_at_least,
        Some(Duration::from_secs(4 * 86_400)),
        "the top"
    );
    assert_eq!(source_of(&s, "WITHINGS_TOKEN_REFRESH_AT_LEAST"), in_file(4, None));
    assert_eq!(s.upstream_budget, 55, "the env file");
    assert_eq!(source_of(&s, "WITHINGS_TOKEN_UPSTREAM_BUDGET"), Source::EnvFile);
    assert_eq!(source_of(&s, "WITHINGS_ENV_FILE"), in_file(1, None));
    assert_eq!(s.lease_ttl, DEFAULT_LEASE_TTL, "the default");
    assert_eq!(source_of(&s, "WITHINGS_CLIENT_ID"), Source::Default);
}

#[test]
fn for_account_reads_that_accounts_table() {
    let (dir, path) = config_dir(
        "buffer = \"4h\"\n[account.alice]\nenv_file = \"app.env\"\nbuffer = \"3h\"\nrailway_service_id = \"svc-alice\"\nvariable_prefix = \"AL_\"\n[account.bob]\njitter = \"1m\"\n",
        "WITHINGS_CLIENT_ID=from-alices-file\nAL_WITHINGS_REFRESH_TOKEN=alice-seed\n",
    );
    let g = global(&["--config", &path]);
    let vars = env(&[("HOME", "/h"), ("WITHINGS_REFRESH_TOKEN", "default-seed")]);
    let s = Settings::resolve(&g, None, &vars).unwrap();
    assert_eq!((s.account.clone(), s.buffer), (None, Some(chrono::Duration::hours(4))));
    assert!(s.env_file.is_none() && s.railway.service_id.is_none());

    let alice = s.for_account(&account("alice")).unwrap();
    assert_eq!(alice.buffer, Some(chrono::Duration::hours(3)));
    assert_eq!(
        alice.env_file.as_ref().unwrap().path,
        dir.path().join("app.env").canonicalize().unwrap()
    );
    assert_eq!(
        alice.client_id, s.client_id,
        "the app is the deployment's: an account's env file cannot change it"
    );
    assert_eq!(alice.railway.service_id.as_deref(), Some("svc-alice"));
    assert_eq!(alice.variable_prefix, "AL_");
    let seed = alice.seed_tokens.as_ref().unwrap();
    assert_eq!(
        seed.refresh_token.expose_secret(),
        "alice-seed",
        "its own seed, never default's"
    );
    assert_eq!(
        file_of(&alice),
        PathBuf::from("/h/.local/state/withings-token/tokens.accounts/alice.json")
    );

    let bob = s.for_account(&account("bob")).unwrap();
    assert_eq!(
        (bob.buffer, bob.policy.jitter),
        (Some(chrono::Duration::hours(4)), Duration::from_secs(60))
    );
    assert_eq!(bob.variable_prefix, "BOB_");
    assert!(bob.seed_tokens.is_none(), "no prefix given: no seed");
    let default = s.for_account(&AccountName::default_account()).unwrap();
    assert_eq!(
        default.seed_tokens.unwrap().refresh_token.expose_secret(),
        "default-seed"
    );
}

#[test]
fn readers_come_from_the_config_file() {
    let digest = "A".repeat(64);
    let (_dir, path) = config_dir(&format!("[reader.r]\nsha256 = \"{digest}\"\naccounts = [\"*\"]\n"), "");
    let s = Settings::resolve(&global(&["--config", &path]), None, &env(&[("HOME", "/h")])).unwrap();
    assert_eq!(s.server.readers.len(), 1);
    assert_eq!(s.server.readers[0].sha256, "a".repeat(64));
    assert!(s.server.readers[0].all_accounts);
}

#[test]
fn the_refresh_policy_is_read_without_a_config_file_too() {
    let g = global(&["--no-env-file"]);
    let s = Settings::resolve(&g, None, &env(&[("HOME", "/h")])).unwrap();
    assert_eq!(
        s.policy,
        RefreshPolicy {
            refresh_at_least: Some(Duration::from_secs(7 * 86_400)),
            jitter: Duration::ZERO
        }
    );
    let vars = env(&[
        ("HOME", "/h"),
        ("WITHINGS_TOKEN_REFRESH_AT_LEAST", "0s"),
        ("WITHINGS_TOKEN_JITTER", "10m"),
    ]);
    let s = Settings::resolve(&g, None, &vars).unwrap();
    assert_eq!(
        s.policy,
        RefreshPolicy {
            refresh_at_least: None,
            jitter: Duration::from_secs(600)
        }
    );
    let err = Settings::resolve(&g, None, &env(&[("HOME", "/h"), ("WITHINGS_TOKEN_JITTER", "2d")]))
        .err()
        .unwrap();
    assert_eq!(
        err.to_string(),
        "WITHINGS_TOKEN_JITTER is invalid: `2d` is not a duration of at most 1d"
    );
}

#[test]
fn a_variable_prefix_on_default_moves_its_seed_too() {
    let (_dir, path) = config_dir("[account.default]\nvariable_prefix = \"HOME_\"\n", "");
    let vars = env(&[
        ("HOME", "/h"),
        ("WITHINGS_REFRESH_TOKEN", "plain-seed"),
        ("HOME_WITHINGS_REFRESH_TOKEN", "prefixed-seed"),
    ]);
    let s = Settings::resolve(&global(&["--config", &path]), None, &vars).unwrap();
    let default = s.for_account(&AccountName::default_account()).unwrap();
    assert_eq!(default.variable_prefix, "HOME_");
    assert_eq!(
        default.seed_tokens.unwrap().refresh_token.expose_secret(),
        "prefixed-seed"
    );
}

#[test]
fn blanks_around_a_seed_token_are_a_pastes_not_the_tokens() {
    let vars = env(&[
        ("HOME", "/h"),
        ("WITHINGS_REFRESH_TOKEN", "  r-123 "),
        ("WITHINGS_ACCESS_TOKEN", " a-456"),
    ]);
    let s = Settings::resolve(&global(&["--no-env-file"]), None, &vars).unwrap();
    let seed = s.seed_tokens.unwrap();
    assert_eq!(seed.refresh_token.expose_secret(), "r-123");
    assert_eq!(seed.access_token.unwrap().expose_secret(), "a-456");
}

#[test]
fn an_outbound_proxy_variable_is_seen_in_either_case_and_an_empty_one_is_not() {
    let only = |set: &'static str, value: &'static str| {
        move |name: &str| (name == set).then(|| std::ffi::OsString::from(value))
    };
    assert!(names_outbound_proxy(only("HTTPS_PROXY", "http://proxy.internal:3128")));
    assert!(names_outbound_proxy(only("http_proxy", "http://proxy.internal:3128")));
    assert!(names_outbound_proxy(only("ALL_PROXY", "socks5://proxy.internal")));
    assert!(!names_outbound_proxy(only("HTTPS_PROXY", "")));
    assert!(!names_outbound_proxy(only("NO_PROXY", "localhost")));
    assert!(!names_outbound_proxy(|_| None));
}

#[test]
fn each_account_s_webhook_is_scrubbed_however_many_accounts_have_one() {
    let hook = |name: &str| format!("https://hooks.example.com/{name}-0123456789");
    let mut file = format!("webhook_url = \"{}\"\n", hook("top"));
    for name in ["alice", "bob", "carol"] {
        file.push_str(&format!("[account.{name}]\nwebhook_url = \"{}\"\n", hook(name)));
    }
    let (_dir, path) = config_dir(&file, "");
    let g = global(&["--config", &path]);
    let s = Settings::resolve(&g, None, &env(&[("HOME", "/h")])).unwrap();
    for name in ["alice", "bob", "carol"] {
        s.for_account(&account(name)).unwrap();
    }
    let echoed = ["top", "alice", "bob", "carol"].map(hook).join(" ");
    assert_eq!(
        crate::redact::scrub(&echoed, &[]),
        "[redacted] [redacted] [redacted] [redacted]"
    );
}
