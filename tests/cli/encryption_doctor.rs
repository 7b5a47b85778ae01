//! `doctor`'s encryption checks: whether the store is encrypted or plain
//! (plain tokens in Redis are a warning), the recipients by fingerprint,
//! each identity source, whether it loads and a file's mode, whether this
//! host reads back what it writes, and a store this host cannot open.

use crate::support::*;

/// The report line of check `name` and its `next:` text (empty when none).
fn check_line(run: &Run, name: &str) -> (String, String) {
    let (line, next) = check_of(run, name);
    let next = next
        .and_then(|l| l.trim_start().strip_prefix("next: "))
        .unwrap_or_default();
    (line.to_owned(), next.to_owned())
}

/// `RESULT  NAME  DETAIL`, as `doctor` aligns it.
fn line(result: &str, name: &str, detail: &str) -> String {
    format!("{result:<4}  {name:<17}  {detail}")
}

const SET_RECIPIENTS: &str = "set `encrypt_to` in the config file (or WITHINGS_TOKEN_RECIPIENTS, or `--encrypt-to`) to age recipients: `withings-token keygen` makes a key and prints its recipient (docs/encryption.md)";

/// A user whose set (3 h left) is in `redis`, which keeps what it is given.
fn given_redis_user(withings: &Upstream) -> (RedisServer, TestEnv) {
    let redis = RedisServer::start_with(&["--appendonly", "yes"]);
    let mut env = given_store_expiring_in(3 * 3600);
    env.withings(&withings.uri()).on_redis(&redis);
    (redis, env)
}

#[test]
fn doctor_warns_of_plain_tokens_in_redis() {
    let withings = silent_withings();
    let (redis, env) = given_redis_user(&withings);
    redis.write_store(&env.store_json());

    let run = env.run(&["doctor"]);
    assert_eq!(run.code, 0, "a warning: {run:?}");
    assert_eq!(
        check_line(&run, "encryption"),
        (
            line(
                "warn",
                "encryption",
                "plain tokens in Redis: whoever reads that Redis (other services sharing it, its backups) reads them"
            ),
            format!("{SET_RECIPIENTS}; then run `withings-token rekey`")
        )
    );
    let names: Vec<&str> = run
        .stdout
        .lines()
        .filter_map(|l| l.get(6..23))
        .map(str::trim_end)
        .collect();
    assert!(
        !names.contains(&"recipients") && !names.contains(&"identity"),
        "none configured: {run:?}"
    );

    let json = env.run(&["doctor", "--json"]);
    let checks = json.json()["checks"].as_array().unwrap().clone();
    let encryption: Vec<&Value> = checks.iter().filter(|c| c["name"] == "encryption").collect();
    assert_eq!(encryption.len(), 1, "{checks:?}");
    assert_eq!(encryption[0]["result"], "warn");
    withings.verify();
}

#[test]
fn doctor_on_a_sealed_redis_shows_the_recipients_and_the_identity_that_opens_it() {
    let withings = silent_withings();
    let (redis, mut env) = given_redis_user(&withings);
    let key = env.age_key("key.txt");
    redis.write_store(&sealed_store(&env.store_json(), &key.recipient));
    env.set("WITHINGS_TOKEN_RECIPIENTS", key.recipient.as_str());
    let identity = key.file.display().to_string();

    let run = env.run(&["doctor", "--identity", &identity]);
    assert_eq!(run.code, 0, "{run:?}");
    let fingerprint = key.fingerprint();
    let expected = [
        line(
            "ok",
            "encryption",
            "encrypted (age): the tokens and the consent state; generation, fence and copy records stay in clear",
        ),
        line(
            "ok",
            "recipients",
            &format!(
                "1 recipient: {fingerprint}; this host reads back what it writes (it holds the identity of {fingerprint})"
            ),
        ),
        line(
            "ok",
            "identity",
            &format!("--identity {identity}: 1 key ({fingerprint}), file mode 0600"),
        ),
    ];
    for want in &expected {
        assert!(run.stdout.lines().any(|l| l == want), "missing `{want}`:\n{run:?}");
    }
    // The token checks ran on the opened set.
    assert!(
        check_line(&run, "access token")
            .0
            .starts_with("ok    access token       expires at"),
        "{run:?}"
    );
    assert!(!run.stdout.contains(&key.recipient), "fingerprints, not keys: {run:?}");
    assert!(!run.stdout.contains("AGE-SECRET-KEY") && !run.stderr.contains("AGE-SECRET-KEY"));
    assert!(!run.stdout.contains(OLD_REFRESH) && !run.stdout.contains(OLD_ACCESS));
    withings.verify();
}

#[test]
fn doctor_fails_on_an_encrypted_store_this_host_cannot_open() {
    let withings = silent_withings();
    let mut env = given_store_expiring_in(3 * 3600);
    env.withings(&withings.uri());
    let key = env.age_key("key.txt");
    let sealed = serde_json::to_vec_pretty(&sealed_store(&env.store_json(), &key.recipient)).unwrap();
    env.write_store_bytes(&sealed);
    let store = env.store_path().display().to_string();

    let run = env.run(&["doctor"]);
    assert_eq!(run.code, 3, "{run:?}");
    let message = format!(
        "token store {store} is encrypted, and no identity (age private key) is configured to open it; nothing was sent"
    );
    let action = "give this host its age identity: `--identity FILE`, WITHINGS_TOKEN_IDENTITY (the key itself), WITHINGS_TOKEN_IDENTITY_FILE, or a systemd credential named withings-token.identity; `withings-token keygen` makes one";
    assert_eq!(
        check_line(&run, "store"),
        (line("fail", "store", &message), action.to_owned())
    );
    assert_eq!(
        check_line(&run, "encryption"),
        (line("fail", "encryption", &message), action.to_owned())
    );
    assert_eq!(
        check_line(&run, "identity"),
        (
            line(
                "fail",
                "identity",
                "none configured: the encrypted store cannot be opened on this host"
            ),
            action.to_owned()
        )
    );
    assert!(
        run.stderr
            .contains("error: doctor found problems: store, encryption, identity [CONFIGURATION_ERROR]"),
        "{run:?}"
    );
    assert_eq!(env.store_bytes(), sealed, "doctor changes nothing");

    // With the identity it opens: every line is ok.
    let identity = key.file.display().to_string();
    let run = env.run(&["doctor", "--identity", &identity, "--encrypt-to", &key.recipient]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        check_line(&run, "encryption")
            .0
            .starts_with("ok    encryption         encrypted (age)"),
        "{run:?}"
    );
    withings.verify();
}

#[test]
fn doctor_refuses_an_identity_file_others_may_read_with_the_chmod_to_run() {
    use std::os::unix::fs::PermissionsExt;
    let withings = silent_withings();
    let mut env = given_store_expiring_in(3 * 3600);
    env.withings(&withings.uri());
    let key = env.age_key("key.txt");
    std::fs::set_permissions(&key.file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let sealed = serde_json::to_vec_pretty(&sealed_store(&env.store_json(), &key.recipient)).unwrap();
    env.write_store_bytes(&sealed);
    let file = key.file.display().to_string();
    env.set("WITHINGS_TOKEN_IDENTITY_FILE", file.as_str())
        .set("WITHINGS_TOKEN_RECIPIENTS", key.recipient.as_str());

    let run = env.run(&["doctor"]);
    assert_eq!(run.code, 3, "{run:?}");
    let chmod = format!("run `chmod 600 {file}` (a private key is for its owner only)");
    assert_eq!(
        check_line(&run, "identity"),
        (
            line(
                "fail",
                "identity",
                &format!(
                    "the identity file of WITHINGS_TOKEN_IDENTITY_FILE {file} may be read by group or others (mode 644), so it is not used"
                )
            ),
            chmod.clone()
        )
    );
    let (encryption, next) = check_line(&run, "encryption");
    assert!(
        encryption.starts_with("fail  encryption         token store "),
        "{encryption}"
    );
    assert_eq!(next, chmod);
    assert_eq!(file_mode(&key.file), 0o644, "doctor changes nothing");
    withings.verify();
}

#[test]
fn doctor_fails_when_none_of_the_recipients_is_this_hosts_and_says_a_plain_file_is_encrypted_next() {
    let withings = silent_withings();
    let mut env = given_store_expiring_in(3 * 3600);
    env.withings(&withings.uri());
    let mine = env.age_key("mine.txt");
    let other = env.age_key("other.txt");
    let flags = ["--encrypt-to", other.recipient.as_str(), "--identity"];
    let mine_file = mine.file.display().to_string();

    let run = env.run(&[&["doctor"][..], &flags, &[mine_file.as_str()]].concat());
    assert_eq!(run.code, 3, "{run:?}");
    assert_eq!(
        check_line(&run, "encryption").0,
        line(
            "ok",
            "encryption",
            "plain for now: its next write (or `withings-token rekey`, at once) encrypts it to 1 recipient"
        )
    );
    let (recipients, next) = check_line(&run, "recipients");
    assert!(
        recipients.starts_with("fail  recipients         1 recipient: age1…"),
        "{recipients}"
    );
    assert!(
        recipients.ends_with(&format!(
            "; none is this host's (its identities come from --identity {mine_file}): it could not read back what it writes, so its writes are refused"
        )),
        "{recipients}"
    );
    assert_eq!(
        next,
        format!(
            "add this host's recipient to `encrypt_to` (WITHINGS_TOKEN_RECIPIENTS, `--encrypt-to`): {}",
            mine.recipient
        )
    );
    // And a refresh is refused the same way, with nothing sent.
    let refresh = env.run(&[&["refresh", "--no-railway"][..], &flags, &[mine_file.as_str()]].concat());
    assert_eq!(refresh.code, 3, "{refresh:?}");
    withings.verify();
}
