//! The env file (`--env-file`, or `.env` in the working directory): read as
//! python-dotenv reads it, refused when it is not a small regular text file,
//! and rewritten in place by `refresh` (token keys only, every other line
//! kept byte for byte) unless it changed meanwhile or cannot be written.

use crate::support::*;

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use wiremock::ResponseTemplate;
use wiremock::matchers::{body_string_contains, method};

// ---------------------------------------------------------------------------
// reading

fn seed_lines() -> &'static str {
    "WITHINGS_REFRESH_TOKEN=seed-refresh\nWITHINGS_TOKEN_EXPIRES_AT=2099-01-01T00:00:00Z\nWITHINGS_TOKEN_LAST_REFRESHED=2098-12-31T21:00:00Z\n"
}

#[test]
fn a_dot_env_written_for_python_dotenv_is_read_as_python_dotenv_reads_it_without_a_warning() {
    let env = TestEnv::new();
    let text = format!(
        "\u{feff}# the app's settings\nAPP_NAME=My Secret App\nmy-key=hunter2\nDEBUG\nGREETING=\"tab\\tzq9here\"\n{}",
        seed_lines()
    );
    env.write_env_file(&text);
    let out = env.run(&["status", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let report = out.json();
    assert_eq!(report["source"], "env");
    assert_eq!(report["expires_at"], "2099-01-01T00:00:00Z");
    assert_eq!(out.stderr, "", "python-dotenv reads every line: nothing to warn about");
}

#[test]
fn a_setting_of_ours_written_unquoted_with_spaces_is_taken_verbatim_up_to_its_comment() {
    let mut env = TestEnv::new();
    env.set("RAILWAY_TOKEN", "t")
        .set("RAILWAY_PROJECT_ID", "p")
        .set("RAILWAY_SERVICE_ID", "s");
    env.write_env_file(&format!(
        "RAILWAY_ENVIRONMENT_NAME=pr 42 review   # the review app\n{}",
        seed_lines()
    ));
    let out = env.run(&["refresh", "--dry-run", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        out.json()["railway"],
        "service s (project p, environment named pr 42 review)"
    );
    assert_eq!(out.stderr.matches("ignored line").count(), 0, "{out:?}");
}

#[test]
fn lines_no_dotenv_reader_takes_are_skipped_with_one_warning_naming_their_numbers() {
    let env = TestEnv::new();
    let text = format!(
        "APP_NAME=My App\nNOTE=\"zq9 never closed\nPAIR=\"x\" zq9y\n{}",
        seed_lines()
    );
    env.write_env_file(&text);
    let out = env.run(&["status", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let warnings: Vec<&str> = out.stderr.lines().filter(|l| l.contains("ignored line")).collect();
    assert_eq!(warnings.len(), 1, "one warning: {}", out.stderr);
    assert!(warnings[0].contains("line(s) 2, 3 of"), "{}", out.stderr);
    assert!(!out.stderr.contains("zq9"), "echoes no content: {}", out.stderr);
    // `--quiet` silences the warning.
    let quiet = env.run(&["status", "--json", "--quiet"]);
    assert_eq!(quiet.code, 0);
    assert_eq!(quiet.stderr, "");
}

#[test]
fn a_bad_line_of_ours_names_its_real_line_number_and_no_value() {
    let env = TestEnv::new();
    env.write_env_file("# header\nAPP=1\n\nWITHINGS_REFRESH_TOKEN=\"s3cret-never-closed\nOTHER=2\n");
    let out = env.run(&["status"]);
    assert_eq!(out.code, 3, "{out:?}");
    assert!(
        out.stderr.contains("line 4 sets WITHINGS_REFRESH_TOKEN"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("./.env (found in the working directory)"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("s3cret"), "{}", out.stderr);
}

#[test]
fn a_non_utf8_dot_env_found_in_the_working_directory_says_where_it_came_from() {
    let env = TestEnv::new();
    let bytes = b"APP_NAME=Caf\xe9\nWITHINGS_REFRESH_TOKEN=r\n";
    std::fs::write(env.work_dir().join(".env"), bytes).expect("write .env");
    let out = env.run(&["status"]);
    assert_eq!(out.code, 3, "{out:?}");
    assert!(
        out.stderr.contains("./.env (found in the working directory)"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("not UTF-8"), "{}", out.stderr);
    assert!(out.stderr.contains("`--env-file PATH`"), "{}", out.stderr);
    assert!(out.stderr.contains("`--no-env-file`"), "{}", out.stderr);
    assert!(!out.stderr.contains("given with `--env-file`"), "{}", out.stderr);

    // Named explicitly, the same file is blamed on the flag.
    let other = env.work_dir().join("other.env");
    std::fs::write(&other, bytes).expect("write other.env");
    let out = env.run(&["--env-file", other.to_str().expect("utf-8 path"), "status"]);
    assert_eq!(out.code, 3, "{out:?}");
    assert!(out.stderr.contains("given with `--env-file`"), "{}", out.stderr);
}

#[test]
fn a_token_key_set_twice_in_the_env_file_uses_the_last_value_as_bash_does_and_warns_once() {
    let withings = withings_rotating(OLD_REFRESH);
    let mut env = TestEnv::new();
    env.withings(&withings.uri());
    let env_path = env.write_env_file(&format!(
        "WITHINGS_REFRESH_TOKEN=stale-first-value\nAPP=1\nWITHINGS_REFRESH_TOKEN={OLD_REFRESH}\n"
    ));
    let out = env.run(&["refresh", "--no-railway", "--retries", "0"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(env.stored_refresh_token(), NEW_REFRESH);
    let warnings: Vec<&str> = out.stderr.lines().filter(|l| l.contains("is set on lines")).collect();
    assert_eq!(warnings.len(), 1, "{out:?}");
    assert!(
        warnings[0].contains("WITHINGS_REFRESH_TOKEN is set on lines 1, 3 of"),
        "{out:?}"
    );
    assert!(!out.stderr.contains("stale-first-value"), "{out:?}");
    // Both lines are rewritten, so every reader agrees again.
    let text = std::fs::read_to_string(&env_path).expect("read .env");
    assert!(
        text.starts_with(&format!(
            "WITHINGS_REFRESH_TOKEN={NEW_REFRESH}\nAPP=1\nWITHINGS_REFRESH_TOKEN={NEW_REFRESH}\n"
        )),
        "{text}"
    );
    withings.verify();
}

#[test]
fn a_nul_in_the_env_files_refresh_token_is_refused_by_name_and_never_sent() {
    let withings = silent_withings();
    let mut env = TestEnv::new();
    env.withings(&withings.uri());
    env.write_env_file("WITHINGS_REFRESH_TOKEN=s3cret\0tail\n");
    let out = env.run_fast(&["refresh", "--no-railway"]);
    assert_refused(&out, "WITHINGS_REFRESH_TOKEN", "holds a control character");
    assert!(!out.stderr.contains("s3cret"), "{out:?}");
    withings.verify();
}

// ---------------------------------------------------------------------------
// files that are not an env file

#[test]
fn a_fifo_as_the_dot_env_in_the_working_directory_is_refused_not_waited_on() {
    let env = given_store_expiring_in(3600);
    mkfifo(&env.work_dir().join(".env"));
    let out = run_briefly(&env, &["status"]);
    assert_refused(&out, "./.env", "a named pipe (FIFO), not a regular file");
    assert!(out.stderr.contains("`--no-env-file`"), "{out:?}");
}

#[test]
fn dev_zero_as_the_env_file_is_refused_not_read_without_end() {
    let env = given_store_expiring_in(3600);
    let out = run_briefly(&env, &["--env-file", "/dev/zero", "status"]);
    assert_refused(&out, "/dev/zero", "a character device, not a regular file");
}

#[test]
fn an_env_file_larger_than_1_mib_is_refused_unread() {
    let env = given_store_expiring_in(3600);
    let big = env.work_dir().join("big.env");
    let file = std::fs::File::create(&big).expect("create");
    file.set_len(200 * 1024 * 1024).expect("sparse 200 MB"); // costs no disk
    let out = run_briefly(&env, &["--env-file", "big.env", "status"]);
    assert_refused(&out, "big.env", "larger than 1 MiB");
}

// ---------------------------------------------------------------------------
// rewriting

#[test]
fn env_file_token_keys_are_rewritten_in_place_keeping_comments_order_and_other_keys() {
    let withings = withings_rotating("env-refresh-old");
    let env = TestEnv::new();
    let head = format!(
        "# Withings app (developer.withings.com)\n\
         WITHINGS_CLIENT_ID=test-client-id\n\
         export WITHINGS_CLIENT_SECRET=\"test-client-secret-value\"\n\
         WITHINGS_API_URL={}\n\
         \n\
         # tokens: rotated by withings-token\n",
        withings.uri()
    );
    let tail = "OTHER_SERVICE_KEY='keep me, exactly'\n\
                # a trailing comment\n\
                DATABASE_URL=postgres://u:p@localhost/db\n";
    let original = format!(
        "{head}WITHINGS_ACCESS_TOKEN=env-access-old\n\
         WITHINGS_REFRESH_TOKEN=env-refresh-old\n\
         # between the token keys\n\
         WITHINGS_TOKEN_EXPIRES_AT=2020-01-01T03:00:00Z\n\
         WITHINGS_TOKEN_LAST_REFRESHED=2020-01-01T00:00:00Z\n\
         {tail}"
    );
    let dot_env = env.write_env_file(&original);

    let out = env.run_fast(&["refresh", "--json"]);

    assert_eq!(out.code, 0, "{out:?}");
    let report = out.json();
    assert_eq!(report["source"], "env");
    let tokens = &env.store_json()["tokens"];
    let expected = format!(
        "{head}WITHINGS_ACCESS_TOKEN={NEW_ACCESS}\n\
         WITHINGS_REFRESH_TOKEN={NEW_REFRESH}\n\
         # between the token keys\n\
         WITHINGS_TOKEN_EXPIRES_AT={}\n\
         WITHINGS_TOKEN_LAST_REFRESHED={}\n\
         {tail}",
        rfc3339(time(&tokens["expires_at"])),
        rfc3339(time(&tokens["last_refreshed"])),
    );
    assert_eq!(std::fs::read_to_string(&dot_env).unwrap(), expected);
    assert_eq!(
        std::fs::canonicalize(report["env_file_updated"].as_str().unwrap()).unwrap(),
        std::fs::canonicalize(&dot_env).unwrap()
    );
    let mut files: Vec<String> = std::fs::read_dir(env.work_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(files, [".env"], "no temp file may be left beside .env");
    withings.verify();
}

#[test]
fn no_env_file_update_leaves_the_env_file_alone() {
    let withings = withings_answering(new_tokens(NEW_ACCESS, NEW_REFRESH)).times(1);
    let mut env = TestEnv::new();
    env.withings(&withings.uri());
    let original = "# mine\nWITHINGS_REFRESH_TOKEN=env-refresh-old\nOTHER=1\n";
    let dot_env = env.write_env_file(original);

    let out = env.run_fast(&["refresh", "--no-env-file-update", "--json"]);

    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.json()["env_file_updated"], Value::Null);
    assert_eq!(std::fs::read_to_string(&dot_env).unwrap(), original);
    assert_eq!(env.stored_refresh_token(), NEW_REFRESH);
    withings.verify();
}

#[test]
fn refresh_rewrites_a_messy_env_file_keeping_every_other_line() {
    let withings = withings_rotating("old-refresh-abc");
    withings.mount(
        Mock::given(method("POST"))
            .and(body_string_contains("client_secret=test-client-secret-value"))
            .respond_with(ResponseTemplate::new(500))
            .expect(1)
            .named("the secret came from the env file's single-quoted value"),
    );
    let mut env = TestEnv::new();
    // Credentials and tokens come from the env file only.
    env.set("WITHINGS_API_URL", withings.uri());
    let original = concat!(
        "# Withings app (keep this file private)\r\n",
        "export WITHINGS_CLIENT_ID=\"test-client-id\"\r\n",
        "WITHINGS_CLIENT_SECRET='test-client-secret-value'\r\n",
        "\r\n",
        "   # indented comment: WITHINGS_REFRESH_TOKEN=not-this-one\r\n",
        "#WITHINGS_ACCESS_TOKEN=commented-out\r\n",
        "export WITHINGS_REFRESH_TOKEN=\"old-refresh-abc\"\r\n",
        "WITHINGS_ACCESS_TOKEN = old-access-000\r\n",
        "GREETING=\"hello world # not a comment\"\r\n",
        "SPACED = 'a value with spaces'\r\n",
        "DOLLAR='$HOME stays literal'\r\n",
        "EMPTY=\r\n",
        "WITHINGS_REFRESH_TOKEN=old-refresh-abc\r\n",
        "WITHINGS_REFRESH_TOKEN_BACKUP=keep-me\r\n",
        "  export WITHINGS_SCOPE=user.info,user.metrics\r\n",
        "LAST=no-newline-at-the-end",
    );
    let env_path = env.write_env_file(original);

    let out = env.run(&["refresh", "--json", "--retries", "0"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let report = out.json();
    assert_eq!(report["source"], "env");
    assert_eq!(report["env_file_updated"], env_path.display().to_string());
    let store = env.store_json();
    let tokens = &store["tokens"];
    assert_eq!(tokens["refresh_token"], "new-refresh-xyz");
    let expires_at = tokens["expires_at"].as_str().expect("expires_at");
    let last_refreshed = tokens["last_refreshed"].as_str().expect("last_refreshed");

    let expected = format!(
        concat!(
            "# Withings app (keep this file private)\r\n",
            "export WITHINGS_CLIENT_ID=\"test-client-id\"\r\n",
            "WITHINGS_CLIENT_SECRET='test-client-secret-value'\r\n",
            "\r\n",
            "   # indented comment: WITHINGS_REFRESH_TOKEN=not-this-one\r\n",
            "#WITHINGS_ACCESS_TOKEN=commented-out\r\n",
            "export WITHINGS_REFRESH_TOKEN=new-refresh-xyz\r\n",
            "WITHINGS_ACCESS_TOKEN=new-access-123\r\n",
            "GREETING=\"hello world # not a comment\"\r\n",
            "SPACED = 'a value with spaces'\r\n",
            "DOLLAR='$HOME stays literal'\r\n",
            "EMPTY=\r\n",
            "WITHINGS_REFRESH_TOKEN=new-refresh-xyz\r\n",
            "WITHINGS_REFRESH_TOKEN_BACKUP=keep-me\r\n",
            "  export WITHINGS_SCOPE=user.info,user.metrics\r\n",
            "LAST=no-newline-at-the-end\r\n",
            "WITHINGS_TOKEN_EXPIRES_AT={expires_at}\r\n",
            "WITHINGS_TOKEN_LAST_REFRESHED={last_refreshed}\r\n",
        ),
        expires_at = expires_at,
        last_refreshed = last_refreshed,
    );
    let rewritten = std::fs::read_to_string(&env_path).expect("read .env");
    assert_eq!(rewritten, expected);

    // The rewritten file is read back as it should be: the next run uses the
    // store (same set), and the secret still comes from the env file (the
    // catch-all 500 above proves it was sent).
    let status = env.run(&["status", "--json"]);
    assert_eq!(status.code, 0, "{}", status.stderr);
    let status = status.json();
    assert_eq!(status["source"], "store");
    assert_eq!(status["expires_at"], expires_at);
    let again = env.run(&["refresh", "--json", "--retries", "0"]);
    assert_eq!(again.code, 5, "the catch-all answers 500: {}", again.stderr);
    assert_eq!(std::fs::read_to_string(&env_path).expect("read .env"), expected);
    withings.verify();
}

#[test]
fn a_refresh_keeps_the_lines_only_python_dotenv_reads_byte_for_byte() {
    let withings = withings_rotating(OLD_REFRESH);
    let mut env = TestEnv::new();
    env.withings(&withings.uri());
    let others = "APP_NAME=My App\r\nexport GREETING = hello there   # hi\r\nDEBUG\r\nmy-key=1\r\n";
    let env_path = env.write_env_file(&format!("{others}WITHINGS_REFRESH_TOKEN={OLD_REFRESH}\r\n"));

    let out = env.run(&["refresh", "--retries", "0"]);

    assert_eq!(out.code, 0, "{out:?}");
    assert!(!out.stderr.contains("ignored line"), "{out:?}");
    let text = std::fs::read_to_string(&env_path).expect("read .env");
    assert!(
        text.starts_with(&format!("{others}WITHINGS_REFRESH_TOKEN={NEW_REFRESH}\r\n")),
        "{text:?}"
    );
    withings.verify();
}

#[test]
fn a_rewritten_env_file_with_a_byte_order_mark_keeps_one_token_line() {
    let withings = withings_rotating(OLD_REFRESH);
    let mut env = TestEnv::new();
    env.withings(&withings.uri());
    let env_path = env.write_env_file(&format!(
        "\u{feff}WITHINGS_REFRESH_TOKEN={OLD_REFRESH}\nAPP_NAME=My App\n"
    ));
    let out = env.run(&["refresh", "--retries", "0"]);
    assert_eq!(out.code, 0, "{out:?}");
    let text = std::fs::read_to_string(&env_path).expect("read .env");
    assert!(
        text.starts_with(&format!(
            "\u{feff}WITHINGS_REFRESH_TOKEN={NEW_REFRESH}\nAPP_NAME=My App\n"
        )),
        "{text:?}"
    );
    assert_eq!(text.matches("WITHINGS_REFRESH_TOKEN=").count(), 1, "{text:?}");
    withings.verify();
}

/// A Withings that rotates [`OLD_REFRESH`] into a pair whose refresh token
/// holds a newline (as a hostile or broken server might send), once.
fn withings_sending_a_newline() -> Upstream {
    let withings = Upstream::start();
    withings.mount(
        refresh_of(OLD_REFRESH)
            .respond_with(new_tokens(NEW_ACCESS, "new-refresh\nINJECTED=1"))
            .expect(1),
    );
    withings
}

#[test]
fn a_token_with_a_newline_is_never_written_into_the_env_file() {
    let withings = withings_sending_a_newline();
    let mut env = TestEnv::new();
    env.withings(&withings.uri());
    let original = format!("# mine\nWITHINGS_REFRESH_TOKEN={OLD_REFRESH}\nWITHINGS_ACCESS_TOKEN=old-access\n");
    let env_path = env.write_env_file(&original);

    let out = env.run(&["refresh", "--output-env", "--retries", "0"]);
    // Exit 6: the set is saved, but neither copy (env file, stdout) could take it.
    assert_eq!(out.code, 6, "{out:?}");
    assert!(out.stderr.contains("[ENV_FILE_UPDATE_FAILED]"), "{out:?}");
    assert!(out.stderr.contains("[OUTPUT_FAILED]"), "{out:?}");
    // The set is kept in the store, where JSON escapes the newline...
    assert_eq!(env.stored_refresh_token(), "new-refresh\nINJECTED=1", "{out:?}");
    // ...and never reaches the env file or the env output as a line of its own.
    assert_eq!(std::fs::read_to_string(&env_path).expect("read .env"), original);
    assert!(!out.stdout.lines().any(|l| l.starts_with("INJECTED")), "{out:?}");
    assert!(out.stderr.contains("WITHINGS_REFRESH_TOKEN"), "names the key: {out:?}");
    assert!(!out.stderr.contains("INJECTED"), "echoes no value: {out:?}");
    withings.verify();
}

// ---------------------------------------------------------------------------
// a rewrite that cannot be done

#[test]
#[ignore = "needs root (mounts a tmpfs): `bash .ci/test` runs it as root"]
fn a_failed_env_file_rewrite_is_exit_6_under_quiet_and_the_next_if_needed_heals_it() {
    let disk = TinyDisk::mount();
    let withings = withings_answering(new_tokens(NEW_ACCESS, NEW_REFRESH)).times(1);
    let env = given_expired_store(&withings.uri());
    let env_file = disk.root.join("app.env");
    std::fs::write(
        &env_file,
        format!("APP_NAME=My App\nWITHINGS_REFRESH_TOKEN={OLD_REFRESH}\n"),
    )
    .unwrap();
    let env_file_arg = env_file.display().to_string();
    disk.set_read_only(true);

    let out = env.run_fast(&["refresh", "--quiet", "--env-file", &env_file_arg]);

    assert_eq!(out.code, 6, "{out:?}");
    assert_eq!(out.stdout, "", "--quiet prints no table");
    assert!(
        out.stderr
            .contains(&format!("error: env file {env_file_arg} was not updated: ")),
        "{out:?}"
    );
    assert!(
        out.stderr.contains("[ENV_FILE_UPDATE_FAILED]"),
        "--quiet never hides a stale copy: {out:?}"
    );
    assert!(
        out.stderr
            .contains("  next: the new set is safe in the store; fix the env file (permissions, disk), then run `withings-token refresh --if-needed`"),
        "{out:?}"
    );
    assert_eq!(env.stored_refresh_token(), NEW_REFRESH);
    let status = env.run(&["status", "--json", "--env-file", &env_file_arg]).json();
    let copies = status["copies"].as_array().expect("copies").clone();
    assert_eq!(copies.len(), 1, "{status}");
    assert_eq!(copies[0]["copy"], format!("env_file:{env_file_arg}"));
    assert_eq!(copies[0]["behind"], true);

    disk.set_read_only(false);
    let healed = env.run_fast(&["refresh", "--if-needed", "--json", "--env-file", &env_file_arg]);

    assert_eq!(healed.code, 0, "{healed:?}");
    let report = healed.json();
    assert_eq!(report["outcome"], "not_due", "no second rotation");
    assert_eq!(report["env_file"], "updated");
    assert_eq!(report["env_file_updated"], env_file_arg);
    let text = std::fs::read_to_string(&env_file).unwrap();
    assert!(text.starts_with("APP_NAME=My App\n"), "{text}");
    assert!(
        text.contains(&format!("WITHINGS_REFRESH_TOKEN={NEW_REFRESH}\n")),
        "{text}"
    );
    let status = env.run(&["status", "--json", "--env-file", &env_file_arg]).json();
    assert_eq!(status["copies"][0]["behind"], false, "{status}");
    withings.verify();
}

/// A set authorised elsewhere and written into the env file while a
/// refresh is in flight is theirs: overwriting it would leave it nowhere.
#[test]
fn an_env_file_changed_during_the_refresh_is_left_as_it_is() {
    let answer = new_tokens(NEW_ACCESS, NEW_REFRESH).set_delay(Duration::from_millis(1200));
    let withings = withings_answering(answer).times(1);
    let env = given_expired_store(&withings.uri());
    let env_file = env.write_env_file(&format!("WITHINGS_REFRESH_TOKEN={OLD_REFRESH}\n"));
    let mut cmd = env.std_cmd();
    cmd.args(["refresh", "--retries", "0", "--timeout", "10s"]);
    cmd.stdout(Stdio::null()).stderr(Stdio::piped());
    let child = cmd.spawn().expect("spawn refresh");
    assert!(wait_until(Duration::from_secs(10), || !withings.requests().is_empty()));
    let theirs = "WITHINGS_REFRESH_TOKEN=reauthorised-elsewhere\n";
    std::fs::write(&env_file, theirs).unwrap();

    let out = child.wait_with_output().expect("wait");

    let stderr = stderr_of(&out);
    assert_eq!(out.status.code(), Some(6), "{stderr}");
    assert!(stderr.contains("changed while this run was working"), "{stderr}");
    assert!(stderr.contains("[ENV_FILE_UPDATE_FAILED]"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&env_file).unwrap(), theirs, "their set is kept");
    assert_eq!(env.stored_refresh_token(), NEW_REFRESH, "ours is in the store");
}
