//! Encryption at rest in the file store, as an operator meets it: a set
//! sealed to an age recipient goes round (exchange, refresh, status, export)
//! with the matching identity and leaves no token, nor the consent state,
//! in any file; the age crate opens what it wrote by hand; the identity
//! comes from a flag, WITHINGS_TOKEN_IDENTITY, WITHINGS_TOKEN_IDENTITY_FILE
//! or a systemd credential; and every way it cannot be opened or written
//! (no identity, other keys, an identity file others may read, no
//! recipient for a sealed store, a recipient this host cannot open, a
//! damaged seal) is exit 3 with the store byte for byte untouched and
//! nothing sent to Withings. The sandbox plays Withings and counts what
//! it is asked.

use crate::support::*;

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use secrecy::ExposeSecret;

/// The first line of age's ASCII armour.
const ARMOR_BEGIN: &str = "-----BEGIN AGE ENCRYPTED FILE-----";

/// An age X25519 key pair made for one test, its identity in a 0600 file.
struct Key {
    identity: age::x25519::Identity,
    recipient: String,
    file: String,
}

impl Key {
    /// A new key pair, its identity written to `<home>/keys/<name>.txt` as
    /// `age-keygen` writes one (a comment, then the key).
    fn new(env: &TestEnv, name: &str) -> Key {
        let identity = age::x25519::Identity::generate();
        let recipient = identity.to_public().to_string();
        let path = env.home().join("keys").join(format!("{name}.txt"));
        let text = format!("# public key: {recipient}\n{}\n", secret_of(&identity));
        write_identity_file(&path, &text, 0o600);
        Key {
            identity,
            recipient,
            file: path.display().to_string(),
        }
    }

    /// The private key's text (`AGE-SECRET-KEY-1…`).
    fn secret(&self) -> String {
        secret_of(&self.identity)
    }

    /// `--encrypt-to <recipient> --identity <file>`.
    fn flags(&self) -> [&str; 4] {
        ["--encrypt-to", &self.recipient, "--identity", &self.file]
    }

    /// `--identity <file>` alone.
    fn identity_flag(&self) -> [&str; 2] {
        ["--identity", &self.file]
    }
}

fn secret_of(identity: &age::x25519::Identity) -> String {
    identity.to_string().expose_secret().to_owned()
}

fn write_identity_file(path: &std::path::Path, text: &str, mode: u32) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("keys dir");
    std::fs::write(path, text).expect("write identity");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod identity");
}

/// `args` then `more`, as one command line.
fn args<'a>(args: &[&'a str], more: &[&'a str]) -> Vec<&'a str> {
    args.iter().chain(more).copied().collect()
}

/// A user of `sandbox` with a key of their own, who ran `auth-url` and
/// `exchange` with its `--encrypt-to` and `--identity`: a sealed store
/// holding a live set.
fn sealed_user(sandbox: &SandboxProcess) -> (TestEnv, Key) {
    let mut env = TestEnv::new();
    sandbox.configure(&mut env);
    let key = Key::new(&env, "k");
    seal_with(sandbox, &env, &key);
    (env, key)
}

/// `auth-url`, the consent page and `exchange`, as `env`'s user, with the
/// `--encrypt-to` and `--identity` of `key`.
fn seal_with(sandbox: &SandboxProcess, env: &TestEnv, key: &Key) {
    let out = env.run(&args(&["auth-url", "--json"], &key.flags()));
    assert_eq!(out.code, 0, "{out:?}");
    let redirect = sandbox.approve(out.json()["authorization_url"].as_str().expect("url"));
    let out = env.run(&args(&["exchange", &redirect, "--no-railway"], &key.flags()));
    assert_eq!(out.code, 0, "{out:?}");
}

/// The set `export` prints with `flags`: (access token, refresh token).
fn exported(env: &TestEnv, flags: &[&str]) -> (String, String) {
    let out = env.run(&args(&["export"], flags));
    assert_eq!(out.code, 0, "{out:?}");
    let line = |name: &str| {
        out.stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("export printed no {name}: {out:?}"))
            .to_owned()
    };
    (line("WITHINGS_ACCESS_TOKEN"), line("WITHINGS_REFRESH_TOKEN"))
}

/// The store's `sealed` field: age armour.
fn sealed_field(env: &TestEnv) -> String {
    let store = env.store_json();
    assert_eq!(store["version"], 2, "{store:#}");
    let sealed = store["sealed"]
        .as_str()
        .unwrap_or_else(|| panic!("no sealed field: {store:#}"));
    assert!(sealed.starts_with(ARMOR_BEGIN), "{sealed}");
    for clear in ["tokens", "previous", "pending_auth"] {
        assert!(store.get(clear).is_none(), "{clear} is in clear: {store:#}");
    }
    sealed.to_owned()
}

/// `armour` opened by hand with the age crate's own reader and `key`.
fn open_by_hand(armour: &[u8], key: &Key) -> Value {
    let decryptor = age::Decryptor::new_buffered(age::armor::ArmoredReader::new(armour)).expect("an age file");
    let mut reader = decryptor
        .decrypt(std::iter::once(&key.identity as &dyn age::Identity))
        .expect("sealed to the key");
    let mut plain = Vec::new();
    reader.read_to_end(&mut plain).expect("decrypts");
    serde_json::from_slice(&plain).expect("JSON under the seal")
}

fn events_path(env: &TestEnv) -> PathBuf {
    env.store_path().with_file_name("tokens.events.json")
}

/// Every file beside the store (the store, its lock, the event record,
/// any rescue or temp file) and its bytes.
fn store_dir_files(env: &TestEnv) -> Vec<(String, Vec<u8>)> {
    env.store_dir_entries()
        .into_iter()
        .map(|name| {
            let bytes = std::fs::read(env.store_path().with_file_name(&name)).expect("read");
            (name, bytes)
        })
        .collect()
}

fn assert_no_secret_in_store_dir(env: &TestEnv, secrets: &[&str]) {
    for (name, bytes) in store_dir_files(env) {
        let text = String::from_utf8_lossy(&bytes);
        for secret in secrets {
            assert!(!text.contains(secret), "{name} holds {secret} in clear:\n{text}");
        }
    }
}

/// A failure of a run with `--json`: exit 3, CONFIGURATION_ERROR, exactly
/// `message` and `action`, on stdout's JSON and on stderr.
fn assert_refused_with(out: &Run, message: &str, action: &str) {
    let (said, next) = assert_json_error(out, 3, "CONFIGURATION_ERROR");
    assert_eq!(said, message, "{out:?}");
    assert_eq!(next, action, "{out:?}");
}

/// `run` sent Withings nothing, and left the store byte for byte as it was.
fn assert_nothing_sent_and_untouched(sandbox: &SandboxProcess, env: &TestEnv, run: impl FnOnce() -> Run) -> Run {
    let before = sandbox.stats();
    let bytes = env.store_bytes();
    let out = run();
    assert_eq!(
        stat_delta(&before, &sandbox.stats(), "token_requests"),
        0,
        "a request was sent: {out:?}"
    );
    assert_eq!(env.store_bytes(), bytes, "the store was changed: {out:?}");
    out
}

const IDENTITY_ACTION: &str = "give this host its age identity: `--identity FILE`, WITHINGS_TOKEN_IDENTITY (the key itself), WITHINGS_TOKEN_IDENTITY_FILE, or a systemd credential named withings-token.identity; `withings-token keygen` makes one";

const OTHER_KEYS_ACTION: &str = "give the identity it was encrypted to (`--identity FILE`, WITHINGS_TOKEN_IDENTITY, WITHINGS_TOKEN_IDENTITY_FILE or $CREDENTIALS_DIRECTORY/withings-token.identity); an identity file may hold several keys, one per line";

// ---------------------------------------------------------------------------
// the round trip, and what the files hold

#[test]
fn a_sealed_store_goes_round_exchange_refresh_status_and_export_with_the_key() {
    let sandbox = SandboxProcess::start();
    let (env, key) = sealed_user(&sandbox);
    sealed_field(&env);

    let out = env.run(&args(&["refresh", "--no-railway", "--json", "--reveal"], &key.flags()));
    assert_eq!(out.code, 0, "{out:?}");
    let refreshed = out.json();
    assert_eq!(refreshed["outcome"], "refreshed");
    assert_eq!(refreshed["generation"], 3);

    let out = env.run(&args(&["status", "--json"], &key.identity_flag()));
    assert_eq!(out.code, 0, "{out:?}");
    let status = out.json();
    assert_eq!(status["token_configured"], true, "{status:#}");
    assert_eq!(status["source"], "store");
    assert_eq!(status["set_generation"], 3);
    assert_eq!(status["userid"], refreshed["userid"]);
    assert_eq!(status["expires_at"], refreshed["expires_at"]);
    assert_eq!(
        exported(&env, &key.identity_flag()),
        (
            refreshed["access_token"].as_str().expect("access").to_owned(),
            refreshed["refresh_token"].as_str().expect("refresh").to_owned()
        )
    );
    sealed_field(&env);
}

#[test]
fn no_token_previous_token_nor_consent_state_is_in_any_file_of_a_sealed_store() {
    let sandbox = SandboxProcess::start();
    let mut env = TestEnv::new();
    sandbox.configure(&mut env);
    let key = Key::new(&env, "k");
    let out = env.run(&args(&["auth-url", "--json"], &key.flags()));
    assert_eq!(out.code, 0, "{out:?}");
    let auth = out.json();
    let state = auth["state"].as_str().expect("state").to_owned();
    sealed_field(&env);
    assert_no_secret_in_store_dir(&env, &[&state]);
    let pending = open_by_hand(sealed_field(&env).as_bytes(), &key);
    assert_eq!(pending["pending_auth"]["state"], state.as_str(), "{pending:#}");

    let redirect = sandbox.approve(auth["authorization_url"].as_str().expect("url"));
    let out = env.run(&args(&["exchange", &redirect, "--no-railway"], &key.flags()));
    assert_eq!(out.code, 0, "{out:?}");
    let (first_access, first_refresh) = exported(&env, &key.identity_flag());
    let out = env.run(&args(&["refresh", "--no-railway"], &key.flags()));
    assert_eq!(out.code, 0, "{out:?}");
    let (access, refresh) = exported(&env, &key.identity_flag());
    assert_ne!(refresh, first_refresh);
    let secrets = [&*access, &*refresh, &*first_access, &*first_refresh, &*state];
    assert_no_secret_in_store_dir(&env, &secrets);

    // A refused grant writes the event record (its alert state and outbox).
    sandbox.revoke();
    let out = env.run_fast(&args(&["refresh", "--no-railway"], &key.flags()));
    assert_eq!(out.code, 4, "{out:?}");
    assert!(
        env.store_dir_entries().contains(&"tokens.events.json".to_owned()),
        "{:?}",
        env.store_dir_entries()
    );
    assert_no_secret_in_store_dir(&env, &secrets);
    sealed_field(&env);
}

#[test]
fn the_age_crate_opens_the_sealed_field_by_hand_to_the_set_export_prints() {
    let sandbox = SandboxProcess::start();
    let (env, key) = sealed_user(&sandbox);
    let (_, first_refresh) = exported(&env, &key.identity_flag());
    let out = env.run(&args(&["refresh", "--no-railway"], &key.flags()));
    assert_eq!(out.code, 0, "{out:?}");

    let opened = open_by_hand(sealed_field(&env).as_bytes(), &key);
    let (access, refresh) = exported(&env, &key.identity_flag());
    assert_eq!(opened["tokens"]["refresh_token"], refresh.as_str(), "{opened:#}");
    assert_eq!(opened["tokens"]["access_token"], access.as_str(), "{opened:#}");
    assert_eq!(
        opened["previous"]["refresh_token"],
        first_refresh.as_str(),
        "{opened:#}"
    );
}

// ---------------------------------------------------------------------------
// no identity, other keys

#[test]
fn a_sealed_store_without_an_identity_is_exit_3_with_nothing_sent_and_the_file_untouched() {
    let sandbox = SandboxProcess::start();
    let (env, key) = sealed_user(&sandbox);
    let store = env.store_path().display().to_string();
    let message = format!(
        "token store {store} is encrypted, and no identity (age private key) is configured to open it; nothing was sent"
    );
    for command in [
        &["refresh", "--no-railway", "--json", "--encrypt-to", &key.recipient][..],
        &["refresh", "--json"],
        &["status", "--json"],
        &["export", "--json"],
    ] {
        let out = assert_nothing_sent_and_untouched(&sandbox, &env, || env.run_fast(command));
        assert_refused_with(&out, &message, IDENTITY_ACTION);
    }
}

#[test]
fn a_store_sealed_to_other_keys_is_exit_3_with_nothing_sent_and_the_file_untouched() {
    let sandbox = SandboxProcess::start();
    let (env, key) = sealed_user(&sandbox);
    let other = Key::new(&env, "other");
    let store = env.store_path().display().to_string();
    let message = format!(
        "token store {store} is encrypted to other keys: no key from --identity {} opens it; nothing was sent",
        other.file
    );
    for command in [&["refresh", "--no-railway", "--json"][..], &["status", "--json"]] {
        let out = assert_nothing_sent_and_untouched(&sandbox, &env, || env.run_fast(&args(command, &other.flags())));
        assert_refused_with(&out, &message, OTHER_KEYS_ACTION);
    }
    let out = env.run(&args(&["status", "--json"], &key.identity_flag()));
    assert_eq!(out.code, 0, "the key it was sealed to still opens it: {out:?}");
}

// ---------------------------------------------------------------------------
// where the identity comes from

#[test]
fn the_identity_is_read_from_the_variable_the_variable_s_file_and_a_systemd_credential() {
    let sandbox = SandboxProcess::start();
    for source in [
        "WITHINGS_TOKEN_IDENTITY",
        "WITHINGS_TOKEN_IDENTITY_FILE",
        "CREDENTIALS_DIRECTORY",
    ] {
        let (mut env, key) = sealed_user(&sandbox);
        let value = match source {
            "WITHINGS_TOKEN_IDENTITY" => key.secret(),
            "WITHINGS_TOKEN_IDENTITY_FILE" => key.file.clone(),
            _ => {
                // As systemd leaves a credential: the key alone, read-only to its owner.
                let credentials = env.home().join("credentials");
                let credential = credentials.join("withings-token.identity");
                write_identity_file(&credential, &format!("{}\n", key.secret()), 0o400);
                credentials.display().to_string()
            }
        };
        env.set(source, value);
        let (_, before) = exported(&env, &[]);

        env.set("WITHINGS_TOKEN_RECIPIENTS", key.recipient.clone());
        let out = env.run(&["refresh", "--no-railway", "--json", "--reveal"]);
        assert_eq!(out.code, 0, "{source}: {out:?}");
        let refreshed = out.json()["refresh_token"].as_str().expect("refresh").to_owned();
        assert_ne!(refreshed, before, "{source}");
        let opened = open_by_hand(sealed_field(&env).as_bytes(), &key);
        assert_eq!(opened["tokens"]["refresh_token"], refreshed.as_str(), "{source}");
        assert_eq!(exported(&env, &[]).1, refreshed, "{source}");
        assert_no_leak(&out, &[&key.secret()]);
    }
}

#[test]
fn an_identity_file_of_two_keys_opens_a_store_sealed_to_the_second() {
    let sandbox = SandboxProcess::start();
    let (env, key) = sealed_user(&sandbox);
    let first = age::x25519::Identity::generate();
    let both = env.home().join("keys/both.txt");
    let text = format!(
        "# created: 2026-01-01T00:00:00Z\n# public key: {}\n{}\n\n# the key the store is sealed to\n{}\n",
        first.to_public(),
        secret_of(&first),
        key.secret()
    );
    write_identity_file(&both, &text, 0o600);
    let both = both.display().to_string();

    let out = env.run(&[
        "refresh",
        "--no-railway",
        "--json",
        "--reveal",
        "--encrypt-to",
        &key.recipient,
        "--identity",
        &both,
    ]);
    assert_eq!(out.code, 0, "{out:?}");
    let refreshed = out.json()["refresh_token"].as_str().expect("refresh").to_owned();
    assert_eq!(exported(&env, &["--identity", &both]).1, refreshed);
}

#[test]
fn an_identity_file_group_or_others_may_read_is_refused_with_nothing_sent() {
    let sandbox = SandboxProcess::start();
    let (env, key) = sealed_user(&sandbox);
    let store = env.store_path().display().to_string();
    for mode in [0o644, 0o640] {
        std::fs::set_permissions(&key.file, std::fs::Permissions::from_mode(mode)).expect("chmod");
        let out = assert_nothing_sent_and_untouched(&sandbox, &env, || {
            env.run_fast(&args(&["refresh", "--no-railway", "--json"], &key.flags()))
        });
        assert_refused_with(
            &out,
            &format!(
                "token store {store} is encrypted, and the identity file of --identity {} may be read by group or others (mode {mode:o}), so it is not used; nothing was sent",
                key.file
            ),
            &format!("run `chmod 600 {}` (a private key is for its owner only)", key.file),
        );
    }
    std::fs::set_permissions(&key.file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let out = env.run(&args(&["refresh", "--no-railway"], &key.flags()));
    assert_eq!(out.code, 0, "once private, the same file opens it: {out:?}");
}

// ---------------------------------------------------------------------------
// plain and sealed

#[test]
fn a_plain_store_is_sealed_by_its_next_write_and_status_still_reads_it() {
    let sandbox = SandboxProcess::start();
    let mut env = TestEnv::new();
    sandbox.configure(&mut env);
    sandbox.authorise(&env);
    assert_eq!(env.store_json()["version"], 1);
    let plain_refresh = env.stored_refresh_token();
    let key = Key::new(&env, "k");

    let out = env.run(&args(&["refresh", "--no-railway", "--json", "--reveal"], &key.flags()));
    assert_eq!(out.code, 0, "{out:?}");
    let refreshed = out.json();
    let opened = open_by_hand(sealed_field(&env).as_bytes(), &key);
    assert_eq!(opened["tokens"]["refresh_token"], refreshed["refresh_token"]);
    assert_eq!(opened["previous"]["refresh_token"], plain_refresh.as_str());
    assert_no_secret_in_store_dir(&env, &[&plain_refresh]);

    let out = env.run(&args(&["status", "--json"], &key.identity_flag()));
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.json()["set_generation"], refreshed["set_generation"]);
    let out = env.run(&["status", "--json"]);
    assert_eq!(out.code, 3, "without the identity the store is closed now: {out:?}");
}

#[test]
fn a_sealed_store_is_never_written_plain_unless_allow_plaintext_says_so() {
    let sandbox = SandboxProcess::start();
    let (env, key) = sealed_user(&sandbox);
    let store = env.store_path().display().to_string();
    let out = assert_nothing_sent_and_untouched(&sandbox, &env, || {
        env.run_fast(&args(&["refresh", "--no-railway", "--json"], &key.identity_flag()))
    });
    assert_refused_with(
        &out,
        &format!(
            "token store {store} is encrypted, and no recipient is configured to encrypt its next write to; nothing was sent and it was not changed"
        ),
        &format!(
            "set WITHINGS_TOKEN_RECIPIENTS={} (this host's identity's recipient), or `encrypt_to` in the config file, or pass `--encrypt-to`; to write it plain on purpose, pass `--allow-plaintext`",
            key.recipient
        ),
    );

    // A failure and a recovery leave a sealed event record, which the
    // plain write below does not change.
    sandbox.fault(json!({"kind": "http500", "count": 1}));
    let out = env.run_with(
        &args(&["refresh", "--no-railway"], &key.flags()),
        &["--retries", "0", "--retry-delay", "0s"],
    );
    assert_eq!(out.code, 5, "{out:?}");
    let out = env.run(&args(&["refresh", "--no-railway"], &key.flags()));
    assert_eq!(out.code, 0, "{out:?}");
    let record = std::fs::read_to_string(events_path(&env)).expect("the event record");
    assert!(record.starts_with(ARMOR_BEGIN), "{record}");

    let out = env.run(&args(
        &["refresh", "--no-railway", "--json", "--reveal", "--allow-plaintext"],
        &key.identity_flag(),
    ));
    assert_eq!(out.code, 0, "{out:?}");
    let store = env.store_json();
    assert_eq!(store["version"], 1, "{store:#}");
    assert!(store.get("sealed").is_none(), "{store:#}");
    assert_eq!(store["tokens"]["refresh_token"], out.json()["refresh_token"]);
    let record: Value = serde_json::from_slice(&std::fs::read(events_path(&env)).expect("record")).expect("plain JSON");
    assert_eq!(record["health"]["state"], "healthy", "{record:#}");

    let out = env.run(&["status", "--json"]);
    assert_eq!(out.code, 0, "a plain store needs no identity: {out:?}");
    assert!(!out.stderr.contains("warning:"), "{out:?}");
    assert_eq!(out.json()["alert"]["state"], "healthy");
}

#[test]
fn a_recipient_this_host_cannot_open_is_refused_before_anything_is_sent() {
    let sandbox = SandboxProcess::start();
    let mut plain = TestEnv::new();
    sandbox.configure(&mut plain);
    sandbox.authorise(&plain);
    let key = Key::new(&plain, "k");
    let mut sealed = TestEnv::new();
    sandbox.configure(&mut sealed);
    seal_with(&sandbox, &sealed, &key);
    let elsewhere = age::x25519::Identity::generate().to_public().to_string();
    for env in [&plain, &sealed] {
        let store = env.store_path().display().to_string();
        let out = assert_nothing_sent_and_untouched(&sandbox, env, || {
            env.run_fast(&[
                "refresh",
                "--no-railway",
                "--json",
                "--encrypt-to",
                &elsewhere,
                "--identity",
                &key.file,
            ])
        });
        assert_refused_with(
            &out,
            &format!(
                "token store {store} would be encrypted only to recipients this host holds no key of (1 of them; its keys come from --identity {}): it could not read back what it writes; nothing was sent and it was not changed",
                key.file
            ),
            &format!(
                "add this host's recipient to `encrypt_to` (WITHINGS_TOKEN_RECIPIENTS, `--encrypt-to`): {}",
                key.recipient
            ),
        );
    }
}

#[test]
fn a_host_with_a_recipient_and_no_identity_is_refused_before_it_locks_itself_out() {
    let sandbox = SandboxProcess::start();
    let mut plain = TestEnv::new();
    sandbox.configure(&mut plain);
    sandbox.authorise(&plain);
    let recipient = age::x25519::Identity::generate().to_public().to_string();
    let store = plain.store_path().display().to_string();
    let out = assert_nothing_sent_and_untouched(&sandbox, &plain, || {
        plain.run_fast(&["refresh", "--no-railway", "--json", "--encrypt-to", &recipient])
    });
    assert_refused_with(
        &out,
        &format!(
            "token store {store} is to be encrypted, and no identity (age private key) is configured on this host: it could not read back what it writes; nothing was sent and it was not changed"
        ),
        "give this host its age identity: `--identity FILE`, WITHINGS_TOKEN_IDENTITY (the key itself), WITHINGS_TOKEN_IDENTITY_FILE, or a systemd credential named withings-token.identity; `withings-token keygen` makes one",
    );
}

// ---------------------------------------------------------------------------
// a damaged seal

/// `sealed` with one character of the armour's last body line (the
/// payload, past age's header) changed to another base64 character.
fn flipped(sealed: &str) -> String {
    let mut lines: Vec<String> = sealed.lines().map(str::to_owned).collect();
    let last_body = lines.len() - 2;
    let line = &mut lines[last_body];
    let replacement = if line.starts_with('A') { "B" } else { "A" };
    line.replace_range(0..1, replacement);
    lines.join("\n") + "\n"
}

/// `sealed` cut inside age's header: its first line and two body lines
/// (128 bytes; a header to one X25519 recipient is longer), no end line.
fn truncated(sealed: &str) -> String {
    let lines: Vec<&str> = sealed.lines().collect();
    lines[..3].join("\n") + "\n"
}

#[test]
fn a_damaged_seal_is_exit_3_naming_the_store_with_nothing_sent_and_the_file_untouched() {
    let sandbox = SandboxProcess::start();
    let (env, key) = sealed_user(&sandbox);
    let store = env.store_path().display().to_string();
    let whole = env.store_json();
    let sealed = sealed_field(&env);
    for (damage, reason) in [
        (
            flipped(&sealed),
            "its encrypted part cannot be decrypted (the payload does not decrypt: invalid data)",
        ),
        (
            truncated(&sealed),
            "its encrypted part cannot be decrypted (it cannot be read: invalid data)",
        ),
    ] {
        let mut damaged = whole.clone();
        damaged["sealed"] = json!(damage);
        env.write_store_bytes(&serde_json::to_vec_pretty(&damaged).expect("json"));
        for command in [&["refresh", "--no-railway", "--json"][..], &["status", "--json"]] {
            let out = assert_nothing_sent_and_untouched(&sandbox, &env, || env.run_fast(&args(command, &key.flags())));
            assert_refused_with(
                &out,
                &format!("token store {store} is unreadable: {reason}"),
                &format!(
                    "inspect or move {store} aside (it was left untouched), then seed it again with `withings-token exchange` or WITHINGS_REFRESH_TOKEN"
                ),
            );
        }
    }
}

// ---------------------------------------------------------------------------
// the event record

#[test]
fn the_event_record_is_sealed_whole_and_status_opens_it_for_the_alert() {
    let sandbox = SandboxProcess::start();
    let (env, key) = sealed_user(&sandbox);
    sandbox.revoke();
    let out = env.run_fast(&args(&["refresh", "--no-railway"], &key.flags()));
    assert_eq!(out.code, 4, "{out:?}");

    let record = std::fs::read(events_path(&env)).expect("the event record");
    let text = String::from_utf8(record.clone()).expect("armour is text");
    assert!(text.starts_with(ARMOR_BEGIN), "{text}");
    for clear in [
        "needs_reauthorization",
        "reauthorization_required",
        "INVALID_REFRESH_TOKEN",
        "health",
        "outbox",
    ] {
        assert!(!text.contains(clear), "{clear} in clear in the event record:\n{text}");
    }
    let opened = open_by_hand(&record, &key);
    assert_eq!(opened["health"]["state"], "needs_reauthorization", "{opened:#}");

    let out = env.run(&args(&["status", "--json"], &key.identity_flag()));
    assert_eq!(out.code, 0, "{out:?}");
    let alert = &out.json()["alert"];
    assert_eq!(alert["state"], "needs_reauthorization", "{alert:#}");
    assert_eq!(alert["code"], "INVALID_REFRESH_TOKEN", "{alert:#}");
}

#[test]
fn a_recipient_variable_that_is_not_utf8_is_refused_not_read_as_unset() {
    use std::os::unix::ffi::OsStringExt;
    let sandbox = SandboxProcess::start();
    let mut env = TestEnv::new();
    sandbox.configure(&mut env);
    sandbox.authorise(&env);
    let key = Key::new(&env, "k");
    let mut value = vec![0xff];
    value.extend_from_slice(key.recipient.as_bytes());
    let out = assert_nothing_sent_and_untouched(&sandbox, &env, || {
        Run::of(
            env.cmd()
                .args(["refresh", "--no-railway", "--json"])
                .env("WITHINGS_TOKEN_RECIPIENTS", std::ffi::OsString::from_vec(value.clone())),
        )
    });
    assert_refused_with(
        &out,
        "WITHINGS_TOKEN_RECIPIENTS is not valid UTF-8 text; nothing was done",
        "set WITHINGS_TOKEN_RECIPIENTS again as plain text, or unset it",
    );
}
