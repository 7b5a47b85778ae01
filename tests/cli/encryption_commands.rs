//! The commands of encryption at rest: `keygen` (a new identity, never
//! over an existing file), `rekey` (every account's store encrypted again
//! to the recipients configured now, while other runs refresh), `export
//! --encrypt-to` (an encrypted backup) and `import` (an export read back by
//! the seed's rule). Keys are made with the `age` crate, or by `keygen`;
//! what is encrypted is opened by hand with the `age` crate's reader.

use crate::support::*;

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use age::secrecy::ExposeSecret;

/// A new age key: the identity and its recipient.
fn new_key() -> (age::x25519::Identity, String) {
    let identity = age::x25519::Identity::generate();
    let recipient = identity.to_public().to_string();
    (identity, recipient)
}

/// Writes `identity` to `name` in `env`'s HOME, mode 0600, as age-keygen
/// would; returns its path.
fn identity_file(env: &TestEnv, name: &str, identity: &age::x25519::Identity) -> PathBuf {
    let path = env.home().join(name);
    std::fs::write(&path, format!("{}\n", identity.to_string().expose_secret())).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

/// `armour` opened by hand with `identity` alone (age's reader): `None`
/// when it is encrypted to other keys.
fn open_by_hand(armour: &[u8], identity: &age::x25519::Identity) -> Option<Vec<u8>> {
    let reader = age::armor::ArmoredReader::new(armour);
    let decryptor = age::Decryptor::new_buffered(reader).expect("age's format");
    match decryptor.decrypt(std::iter::once(identity as &dyn age::Identity)) {
        Ok(mut stream) => {
            let mut plain = Vec::new();
            stream.read_to_end(&mut plain).expect("the payload decrypts");
            Some(plain)
        }
        Err(age::DecryptError::NoMatchingKeys) => None,
        Err(e) => panic!("not a sealed store: {e}"),
    }
}

/// The sealed part of the store at `path`, opened by hand with `identity`.
fn sealed_part_at(path: &Path, identity: &age::x25519::Identity) -> Option<Value> {
    let store = stored_at(path);
    assert_eq!(store["version"], 2, "{store}");
    let sealed = store["sealed"].as_str().expect("a sealed field");
    open_by_hand(sealed.as_bytes(), identity).map(|plain| serde_json::from_slice(&plain).expect("sealed JSON"))
}

fn sealed_part(env: &TestEnv, identity: &age::x25519::Identity) -> Option<Value> {
    sealed_part_at(&env.store_path(), identity)
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// `rekey`'s table of one account, as comfy-table draws it: each column
/// as wide as its widest cell.
fn one_row(account: &str, before: &str, after: &str, generation: u64) -> String {
    let cells = [
        ("account", account.to_owned()),
        ("before", before.to_owned()),
        ("after", after.to_owned()),
        ("generation", generation.to_string()),
    ];
    let widths: Vec<usize> = cells
        .iter()
        .map(|(head, cell)| head.chars().count().max(cell.chars().count()))
        .collect();
    let rule = |left: &str, fill: &str, join: &str, right: &str| {
        let parts: Vec<String> = widths.iter().map(|w| fill.repeat(w + 2)).collect();
        format!("{left}{}{right}\n", parts.join(join))
    };
    let line = |texts: Vec<&str>| {
        let parts: Vec<String> = texts.iter().zip(&widths).map(|(t, w)| format!(" {t:<w$} ")).collect();
        format!("│{}│\n", parts.join("┆"))
    };
    [
        rule("┌", "─", "┬", "┐"),
        line(cells.iter().map(|(head, _)| *head).collect()),
        rule("╞", "═", "╪", "╡"),
        line(cells.iter().map(|(_, cell)| cell.as_str()).collect()),
        rule("└", "─", "┴", "┘"),
    ]
    .concat()
}

fn path_str(path: &Path) -> &str {
    path.to_str().unwrap()
}

// keygen

#[test]
fn keygen_writes_a_private_identity_beside_the_config_file_and_prints_only_its_recipient() {
    let env = TestEnv::new();
    let out = env.run(&["keygen"]);
    assert_eq!(out.code, 0, "{out:?}");

    let path = env.home().join(".config/withings-token/identity.txt");
    assert_eq!(file_mode(&path), 0o600);
    assert_eq!(file_mode(path.parent().unwrap()), 0o700);
    let text = std::fs::read_to_string(&path).unwrap();
    let identities: Vec<age::x25519::Identity> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.parse().unwrap())
        .collect();
    assert_eq!(identities.len(), 1, "{text}");
    let recipient = identities[0].to_public().to_string();
    assert_eq!(out.stdout, format!("{recipient}\n"));
    assert!(text.contains(&format!("# public key: {recipient}\n")), "{text}");
    assert!(!out.stderr.contains("AGE-SECRET-KEY-"), "{out:?}");
    assert_eq!(
        out.stderr,
        format!(
            "wrote a new identity (private key) to {} (mode 600); it is read by default when no other identity is given; keep a copy somewhere safe: what is encrypted to it alone cannot be read without it\n  next: encrypt to it: set WITHINGS_TOKEN_RECIPIENTS={recipient} (or `encrypt_to` in the config file), then run `withings-token rekey`\n",
            path.display()
        )
    );

    // The recipient printed is the one a store sealed to it opens with.
    env.seed_store(OLD_ACCESS, OLD_REFRESH, 7200);
    let rekey = env.run(&["rekey", "--encrypt-to", &recipient]);
    assert_eq!(rekey.code, 0, "{rekey:?}");
    let status = env.run(&["status", "--json"]);
    assert_eq!(status.code, 0, "the default identity opens it: {status:?}");
    assert_eq!(status.json()["token_configured"], true);
}

#[test]
fn keygen_output_makes_the_directory_private_and_json_names_the_file() {
    let env = TestEnv::new();
    let path = env.home().join("keys/new/identity.txt");
    let out = env.run(&["keygen", "--output", path_str(&path)]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(file_mode(&path), 0o600);
    assert_eq!(file_mode(path.parent().unwrap()), 0o700);
    let text = std::fs::read_to_string(&path).unwrap();
    let recipient = out.stdout.trim_end().to_owned();
    assert!(recipient.starts_with("age1") && !recipient.contains('\n'), "{out:?}");
    assert!(text.contains(&format!("# public key: {recipient}\n")), "{text}");
    assert!(
        out.stderr.contains(&format!(
            "give it to the runs that open the store: `--identity {0}` or WITHINGS_TOKEN_IDENTITY_FILE={0}",
            path.display()
        )),
        "{out:?}"
    );

    let json = env.run(&["keygen", "--json"]);
    assert_eq!(json.code, 0, "{json:?}");
    let report = json.json();
    let default = env.home().join(".config/withings-token/identity.txt");
    assert_eq!(report["version"], 1);
    assert_eq!(report["identity_file"], path_str(&default));
    let text = std::fs::read_to_string(&default).unwrap();
    assert!(
        text.contains(&format!("# public key: {}\n", report["recipient"].as_str().unwrap())),
        "{text}"
    );
}

#[test]
fn keygen_never_overwrites_a_file_and_leaves_it_byte_for_byte() {
    let env = TestEnv::new();
    let path = env.home().join("identity.txt");
    std::fs::write(
        &path,
        b"# the key the backups are encrypted to\nAGE-SECRET-KEY-1NOTREAL\n",
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let before = std::fs::read(&path).unwrap();

    let out = env.run(&["keygen", "-o", path_str(&path)]);
    assert_eq!(out.code, 3, "{out:?}");
    assert_eq!(out.stdout, "");
    let shown = path.display();
    assert_stderr_error(
        &out.stderr,
        "CONFIGURATION_ERROR",
        &format!(
            "{shown} already exists, and keygen never overwrites a file (it may hold the key a store is encrypted to); it was not changed"
        ),
        &format!(
            "choose another file: `withings-token keygen --output FILE`; or, if the key in {shown} encrypts nothing any more, remove it first"
        ),
    );
    assert_eq!(std::fs::read(&path).unwrap(), before);
    assert_eq!(file_mode(&path), 0o600);
    let mut names: Vec<String> = std::fs::read_dir(env.home())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["identity.txt", "work"], "no temporary file left");
}

// rekey

#[test]
fn rekey_encrypts_a_plain_store_keeping_its_set_and_its_generation() {
    let env = given_store_expiring_in(7200);
    let (key, recipient) = new_key();
    let key_file = identity_file(&env, "key.txt", &key);

    let out = env.run(&["rekey", "--identity", path_str(&key_file), "--encrypt-to", &recipient]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout, one_row("default", "plain", "encrypted", 2));

    let bytes = env.store_bytes();
    for token in [OLD_ACCESS, OLD_REFRESH] {
        assert!(!contains(&bytes, token), "{token} in the store's bytes");
    }
    let store = env.store_json();
    assert_eq!(store["version"], 2);
    assert_eq!(store["generation"], 2);
    assert_eq!(store["tokens_generation"], 1, "the set is the same: no copy is owed");
    let part = sealed_part(&env, &key).expect("the key opens it");
    assert_eq!(part["tokens"]["refresh_token"], OLD_REFRESH);
    assert_eq!(part["tokens"]["access_token"], OLD_ACCESS);
    assert_eq!(part["tokens"]["userid"], "363");

    let status = env.run(&["status", "--json", "--identity", path_str(&key_file)]);
    assert_eq!(status.code, 0, "{status:?}");
    assert_eq!(status.json()["set_generation"], 1);
    assert_eq!(status.json()["generation"], 2);
}

#[test]
fn rekey_adds_a_recipient_then_removes_the_old_one() {
    let env = given_store_expiring_in(7200);
    let (old, old_recipient) = new_key();
    let (new, new_recipient) = new_key();
    let old_file = identity_file(&env, "old.txt", &old);
    let new_file = identity_file(&env, "new.txt", &new);
    let (old_file, new_file) = (path_str(&old_file).to_owned(), path_str(&new_file).to_owned());
    let first = env.run(&["rekey", "--identity", &old_file, "--encrypt-to", &old_recipient]);
    assert_eq!(first.code, 0, "{first:?}");

    // Added: read with the old key, written to both.
    let added = env.run(&[
        "rekey",
        "--identity",
        &old_file,
        "--encrypt-to",
        &old_recipient,
        "--encrypt-to",
        &new_recipient,
    ]);
    assert_eq!(added.code, 0, "{added:?}");
    assert_eq!(added.stdout, one_row("default", "encrypted", "encrypted", 3));
    assert_eq!(sealed_part(&env, &old).unwrap()["tokens"]["refresh_token"], OLD_REFRESH);
    assert_eq!(sealed_part(&env, &new).unwrap()["tokens"]["refresh_token"], OLD_REFRESH);

    // Removed: read with either, written to the new one alone.
    let removed = env.run(&[
        "rekey",
        "--identity",
        &old_file,
        "--identity",
        &new_file,
        "--encrypt-to",
        &new_recipient,
    ]);
    assert_eq!(removed.code, 0, "{removed:?}");
    assert_eq!(removed.stdout, one_row("default", "encrypted", "encrypted", 4));
    assert_eq!(sealed_part(&env, &old), None, "the old key no longer opens it");
    assert_eq!(sealed_part(&env, &new).unwrap()["tokens"]["refresh_token"], OLD_REFRESH);

    let before = env.store_bytes();
    let with_old = env.run(&["status", "--identity", &old_file]);
    assert_eq!(with_old.code, 3, "{with_old:?}");
    assert_stderr_error(
        &with_old.stderr,
        "CONFIGURATION_ERROR",
        &format!(
            "token store {} is encrypted to other keys: no key from --identity {old_file} opens it; nothing was sent",
            env.store_path().display()
        ),
        "give the identity it was encrypted to (`--identity FILE`, WITHINGS_TOKEN_IDENTITY, WITHINGS_TOKEN_IDENTITY_FILE or $CREDENTIALS_DIRECTORY/withings-token.identity); an identity file may hold several keys, one per line",
    );
    assert_eq!(env.store_bytes(), before);
    let with_new = env.run(&["status", "--json", "--identity", &new_file]);
    assert_eq!(with_new.code, 0, "{with_new:?}");
    assert_eq!(with_new.json()["token_configured"], true);
}

#[test]
fn rekey_allow_plaintext_writes_the_store_plain_again() {
    let env = given_store_expiring_in(7200);
    let (key, recipient) = new_key();
    let key_file = identity_file(&env, "key.txt", &key);
    assert_eq!(
        env.run(&["rekey", "--identity", path_str(&key_file), "--encrypt-to", &recipient])
            .code,
        0
    );

    let out = env.run(&[
        "rekey",
        "--allow-plaintext",
        "--identity",
        path_str(&key_file),
        "--json",
    ]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        out.json(),
        json!({
            "version": 1,
            "accounts": [{"account": "default", "before": "encrypted", "after": "plain", "generation": 3}],
        })
    );
    let store = env.store_json();
    assert_eq!(store["version"], 1);
    assert_eq!(store["sealed"], Value::Null);
    assert_eq!(store["tokens"]["refresh_token"], OLD_REFRESH);
    assert_eq!(store["tokens_generation"], 1);
}

#[test]
fn rekey_without_a_recipient_is_refused_and_changes_nothing() {
    let env = given_store_expiring_in(7200);
    let (key, recipient) = new_key();
    let key_file = identity_file(&env, "key.txt", &key);
    assert_eq!(
        env.run(&["rekey", "--identity", path_str(&key_file), "--encrypt-to", &recipient])
            .code,
        0
    );
    let before = env.store_bytes();

    let out = env.run(&["rekey", "--identity", path_str(&key_file)]);
    assert_eq!(out.code, 3, "{out:?}");
    assert_eq!(out.stdout, "");
    assert_stderr_error(
        &out.stderr,
        "CONFIGURATION_ERROR",
        "no recipient is configured, so there is nothing to encrypt the stores to; nothing was changed",
        "set WITHINGS_TOKEN_RECIPIENTS (or `encrypt_to` in the config file, or pass `--encrypt-to`) to the age recipients (age1…) to encrypt to; `withings-token keygen` makes a key; to write every store plain (decrypted) on purpose, pass `--allow-plaintext`",
    );
    assert_eq!(env.store_bytes(), before);
}

#[test]
fn rekey_with_no_store_yet_says_so_and_writes_nothing() {
    let env = TestEnv::new();
    let (key, recipient) = new_key();
    let key_file = identity_file(&env, "key.txt", &key);
    let key_file = path_str(&key_file);
    let out = env.run(&["rekey", "--identity", key_file, "--encrypt-to", &recipient]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout, "");
    assert_eq!(out.stderr, "no account has a store yet: nothing to re-encrypt\n");
    assert!(!env.store_path().exists());
    let json = env.run(&["rekey", "--identity", key_file, "--encrypt-to", &recipient, "--json"]);
    assert_eq!(json.json(), json!({"version": 1, "accounts": []}));
}

#[test]
fn rekey_to_keys_this_host_cannot_open_is_refused_before_any_store() {
    let env = given_store_expiring_in(7200);
    let (mine, _) = new_key();
    let (_, theirs) = new_key();
    let mine_file = identity_file(&env, "mine.txt", &mine);
    let before = env.store_bytes();

    let out = env.run(&["rekey", "--identity", path_str(&mine_file), "--encrypt-to", &theirs]);
    assert_eq!(out.code, 3, "{out:?}");
    assert_eq!(out.stdout, "");
    assert_stderr_error(
        &out.stderr,
        "CONFIGURATION_ERROR",
        &format!(
            "every account's store would be encrypted only to recipients this host holds no key of (1 of them; its keys come from --identity {}): it could not read back what it writes; nothing was sent and it was not changed",
            mine_file.display()
        ),
        &format!(
            "add this host's recipient to `encrypt_to` (WITHINGS_TOKEN_RECIPIENTS, `--encrypt-to`): {}",
            mine.to_public()
        ),
    );
    assert_eq!(env.store_bytes(), before);
}

#[test]
fn rekey_goes_through_every_account_and_says_which_it_could_not_open() {
    let env = given_store_expiring_in(7200);
    seed_account(&env, "alice", ("alice-access", "alice-refresh"), 7200, "271");
    seed_account(&env, "bob", ("bob-access", "bob-refresh"), 7200, "272");
    let (key, recipient) = new_key();
    let (lost, lost_recipient) = new_key();
    let key_file = identity_file(&env, "key.txt", &key);
    let lost_file = identity_file(&env, "lost.txt", &lost);
    let bob = account_store(&env, "bob");
    let sealed_to_lost = env.run(&[
        "rekey",
        "--account",
        "bob",
        "--identity",
        path_str(&lost_file),
        "--encrypt-to",
        &lost_recipient,
    ]);
    assert_eq!(sealed_to_lost.code, 0, "{sealed_to_lost:?}");
    assert_eq!(sealed_to_lost.stdout, one_row("bob", "plain", "encrypted", 2));
    let bob_before = std::fs::read(&bob).unwrap();

    let out = env.run(&[
        "rekey",
        "--identity",
        path_str(&key_file),
        "--encrypt-to",
        &recipient,
        "--json",
    ]);
    assert_eq!(out.code, 3, "{out:?}");
    let report = out.json();
    assert_eq!(
        report["accounts"][0],
        json!({"account": "default", "before": "plain", "after": "encrypted", "generation": 2})
    );
    assert_eq!(
        report["accounts"][1],
        json!({"account": "alice", "before": "plain", "after": "encrypted", "generation": 2})
    );
    let failed = &report["accounts"][2];
    assert_eq!(failed["account"], "bob");
    assert_eq!(failed["before"], Value::Null);
    assert_eq!(failed["generation"], Value::Null);
    assert_eq!(failed["error"]["code"], "CONFIGURATION_ERROR");
    let message = format!(
        "token store {} is encrypted to other keys: no key from --identity {} opens it; nothing was sent",
        bob.display(),
        key_file.display()
    );
    assert_eq!(failed["error"]["message"], message.as_str());
    assert_stderr_error(
        &out.stderr,
        "CONFIGURATION_ERROR",
        &format!("account bob: {message}"),
        failed["error"]["action"].as_str().unwrap(),
    );
    assert_eq!(std::fs::read(&bob).unwrap(), bob_before, "bob's store is untouched");
    assert_eq!(
        sealed_part_at(&account_store(&env, "alice"), &key).unwrap()["tokens"]["refresh_token"],
        "alice-refresh"
    );
    assert_eq!(sealed_part(&env, &key).unwrap()["tokens"]["refresh_token"], OLD_REFRESH);

    // With bob's old key given as well, bob follows.
    let both = env.run(&[
        "rekey",
        "--identity",
        path_str(&key_file),
        "--identity",
        path_str(&lost_file),
        "--encrypt-to",
        &recipient,
        "--account",
        "bob",
    ]);
    assert_eq!(both.code, 0, "{both:?}");
    assert_eq!(both.stdout, one_row("bob", "encrypted", "encrypted", 3));
    assert_eq!(
        sealed_part_at(&bob, &key).unwrap()["tokens"]["refresh_token"],
        "bob-refresh"
    );
}

#[test]
fn rekey_seals_the_event_record_with_the_store() {
    let env = given_store_expiring_in(7200);
    let events = env.store_path().with_file_name("tokens.events.json");
    let record = br#"{"dropped":7}"#;
    std::fs::write(&events, record).unwrap();
    let (key, recipient) = new_key();
    let key_file = identity_file(&env, "key.txt", &key);

    let out = env.run(&["rekey", "--identity", path_str(&key_file), "--encrypt-to", &recipient]);
    assert_eq!(out.code, 0, "{out:?}");
    let sealed = std::fs::read(&events).unwrap();
    assert!(
        sealed.starts_with(b"-----BEGIN AGE ENCRYPTED FILE-----"),
        "{}",
        String::from_utf8_lossy(&sealed)
    );
    assert_eq!(open_by_hand(&sealed, &key).unwrap(), record);

    let status = env.run(&["status", "--json", "--identity", path_str(&key_file)]);
    assert_eq!(status.code, 0, "{status:?}");
    assert_eq!(status.json()["events_dropped"], 7);
}

/// The issue's rotation without downtime: keys added and removed while
/// another process refreshes against the sandbox, which refuses a refresh
/// token it rotated away. Each rekey waits for one more refresh than the
/// last (polled, never slept), so they interleave; the refresher reads and
/// writes with both keys, as every host would during a rotation.
#[test]
fn rekey_adding_and_removing_a_key_while_another_process_refreshes_loses_no_set() {
    const REKEYS: u64 = 6;
    let (sandbox, env) = given_authorised_sandbox();
    let (old, old_recipient) = new_key();
    let (new, new_recipient) = new_key();
    let old_file = path_str(&identity_file(&env, "old.txt", &old)).to_owned();
    let new_file = path_str(&identity_file(&env, "new.txt", &new)).to_owned();
    let first = env.run(&["rekey", "--identity", &old_file, "--encrypt-to", &old_recipient]);
    assert_eq!(first.code, 0, "{first:?}");
    let before = sandbox.stats();

    let both_keys = ["--identity", &old_file, "--identity", &new_file];
    let stop = AtomicBool::new(false);
    let refreshes: Vec<Run> = std::thread::scope(|scope| {
        let refresher = scope.spawn(|| {
            let mut runs = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                let mut args = vec!["refresh", "--no-railway", "--json", "--reveal"];
                args.extend(both_keys);
                args.extend(["--encrypt-to", &old_recipient, "--encrypt-to", &new_recipient]);
                let run = env.run(&args);
                let failed = run.code != 0;
                runs.push(run);
                if failed {
                    break;
                }
            }
            runs
        });
        for i in 0..REKEYS {
            sandbox.until_asked(&before, i + 1);
            let mut args = vec!["rekey", "--encrypt-to", &new_recipient];
            if i % 2 == 0 {
                args.extend(["--encrypt-to", &old_recipient]);
            }
            args.extend(both_keys);
            let rekey = env.run(&args);
            assert_eq!(rekey.code, 0, "rekey {i}: {rekey:?}");
        }
        sandbox.until_asked(&before, REKEYS + 1);
        stop.store(true, Ordering::SeqCst);
        refresher.join().unwrap()
    });

    assert!(refreshes.len() as u64 > REKEYS, "{} refreshes", refreshes.len());
    for run in &refreshes {
        assert_eq!(run.code, 0, "{run:?}");
        assert_eq!(run.json()["outcome"], "refreshed", "{run:?}");
        assert!(
            !run.stderr.contains("rescue") && !run.stderr.contains("could not"),
            "{run:?}"
        );
    }
    let after = sandbox.stats();
    assert_eq!(
        stat_delta(&before, &after, "refused"),
        0,
        "no refresh sent a dead token"
    );
    assert_eq!(stat_delta(&before, &after, "tokens_issued"), refreshes.len() as u64);

    // The last key alone: the store holds the last set issued, and the
    // sandbox still takes its refresh token.
    let last = refreshes.last().unwrap().json();
    let rekey = env.run(&[
        "rekey",
        "--encrypt-to",
        &new_recipient,
        "--identity",
        &old_file,
        "--identity",
        &new_file,
    ]);
    assert_eq!(rekey.code, 0, "{rekey:?}");
    assert_eq!(sealed_part(&env, &old), None);
    let part = sealed_part(&env, &new).expect("the new key opens it");
    assert_eq!(part["tokens"]["refresh_token"], last["refresh_token"]);
    assert_refreshes_with(&sandbox, &env, &new_file, &new_recipient);
}

/// A refresh with the key `file` (recipient `recipient`) alone rotates the
/// set, and the sandbox refused no token along the way.
fn assert_refreshes_with(sandbox: &SandboxProcess, env: &TestEnv, file: &str, recipient: &str) {
    let refresh = env.run(&[
        "refresh",
        "--no-railway",
        "--json",
        "--identity",
        file,
        "--encrypt-to",
        recipient,
    ]);
    assert_eq!(refresh.code, 0, "{refresh:?}");
    assert_eq!(refresh.json()["outcome"], "refreshed");
    assert_eq!(stat(&sandbox.stats(), "refused"), 0);
}

// export --encrypt-to, import

/// A store sealed to `key` (its file `key.txt`), holding OLD_* (expiring in 2 h).
fn given_sealed_store(key: &age::x25519::Identity) -> TestEnv {
    let env = given_store_expiring_in(7200);
    let key_file = identity_file(&env, "key.txt", key);
    let recipient = key.to_public().to_string();
    let out = env.run(&["rekey", "--identity", path_str(&key_file), "--encrypt-to", &recipient]);
    assert_eq!(out.code, 0, "{out:?}");
    env
}

#[test]
fn export_encrypt_to_prints_the_four_lines_encrypted_and_nothing_else() {
    let (key, _) = new_key();
    let (backup, backup_recipient) = new_key();
    let env = given_sealed_store(&key);
    let key_file = identity_file(&env, "key.txt", &key);
    let key_file = path_str(&key_file);

    let plain = env.run(&["export", "--identity", key_file]);
    assert_eq!(plain.code, 0, "{plain:?}");
    assert_eq!(plain.stdout.lines().count(), 4, "{plain:?}");
    assert!(plain.stdout.starts_with(&format!(
        "WITHINGS_ACCESS_TOKEN={OLD_ACCESS}\nWITHINGS_REFRESH_TOKEN={OLD_REFRESH}\n"
    )));

    let sealed = env
        .cmd()
        .env("GITHUB_ACTIONS", "true")
        .args(["export", "--identity", key_file, "--encrypt-to", &backup_recipient])
        .output()
        .unwrap();
    assert!(sealed.status.success(), "{}", stderr_of(&sealed));
    let armour = String::from_utf8(sealed.stdout.clone()).unwrap();
    assert!(armour.starts_with("-----BEGIN AGE ENCRYPTED FILE-----\n"), "{armour}");
    assert!(armour.ends_with("-----END AGE ENCRYPTED FILE-----\n"), "{armour}");
    for token in [OLD_ACCESS, OLD_REFRESH] {
        assert!(!armour.contains(token));
        assert!(!stderr_of(&sealed).contains(token), "no mask needed, none printed");
    }
    assert_eq!(stderr_of(&sealed), "");
    let opened = open_by_hand(armour.as_bytes(), &backup).expect("the backup key opens it");
    assert_eq!(String::from_utf8(opened).unwrap(), plain.stdout);
    assert_eq!(open_by_hand(armour.as_bytes(), &key), None, "only the recipients given");
}

#[test]
fn export_without_the_flag_prints_plain_lines_even_when_the_store_is_encrypted() {
    let (key, recipient) = new_key();
    let mut env = given_sealed_store(&key);
    let key_file = identity_file(&env, "key.txt", &key);
    env.set("WITHINGS_TOKEN_RECIPIENTS", recipient.clone())
        .set("WITHINGS_TOKEN_IDENTITY_FILE", path_str(&key_file));
    let out = env.run(&["export"]);
    assert_eq!(out.code, 0, "{out:?}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines[..2],
        [
            format!("WITHINGS_ACCESS_TOKEN={OLD_ACCESS}"),
            format!("WITHINGS_REFRESH_TOKEN={OLD_REFRESH}")
        ]
    );
    assert_eq!(lines.len(), 4);
}

#[test]
fn an_encrypted_export_imported_into_an_empty_store_is_the_set_status_shows() {
    let (key, recipient) = new_key();
    let source = given_sealed_store(&key);
    let source_key = identity_file(&source, "key.txt", &key);
    let export = source.run(&[
        "export",
        "--identity",
        path_str(&source_key),
        "--encrypt-to",
        &recipient,
    ]);
    assert_eq!(export.code, 0, "{export:?}");
    let source_status = source
        .run(&["status", "--json", "--identity", path_str(&source_key)])
        .json();

    let target = TestEnv::new();
    let backup = target.home().join("backup.env.age");
    std::fs::write(&backup, &export.stdout).unwrap();
    let key_file = identity_file(&target, "key.txt", &key);
    let out = target.run(&["import", path_str(&backup), "--identity", path_str(&key_file), "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let status = out.json();
    assert_eq!(status["token_configured"], true);
    assert_eq!(status["source"], "store");
    assert_eq!(status["expires_at"], source_status["expires_at"]);
    assert_eq!(status["last_refreshed"], source_status["last_refreshed"]);
    assert_eq!(status["generation"], 1);
    assert_eq!(status["store"], path_str(&target.store_path()));
    assert_eq!(
        out.stderr,
        format!(
            "imported the set of {} (last refreshed {}) into an empty store\n",
            backup.display(),
            source_status["last_refreshed"].as_str().unwrap()
        )
    );
    // Written as this host's settings say: plain here.
    assert_eq!(target.stored_refresh_token(), OLD_REFRESH);
    assert_eq!(target.store_json()["tokens"]["access_token"], OLD_ACCESS);
}

#[test]
fn an_export_on_stdin_is_imported_and_encrypted_as_configured() {
    let (key, recipient) = new_key();
    let source = given_store_expiring_in(7200);
    let export = source.run(&["export"]);
    assert_eq!(export.code, 0, "{export:?}");

    let target = TestEnv::new();
    let key_file = identity_file(&target, "key.txt", &key);
    let out = target
        .cmd()
        .args([
            "import",
            "-",
            "--identity",
            path_str(&key_file),
            "--encrypt-to",
            &recipient,
        ])
        .write_stdin(export.stdout.clone())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).starts_with("imported the set of stdin (last refreshed "),
        "{}",
        stderr_of(&out)
    );
    assert!(!contains(&target.store_bytes(), OLD_REFRESH));
    assert_eq!(
        sealed_part(&target, &key).unwrap()["tokens"]["refresh_token"],
        OLD_REFRESH
    );
    let status = target.run(&["status", "--json", "--identity", path_str(&key_file)]);
    assert_eq!(status.json()["token_configured"], true, "{status:?}");
}

#[test]
fn an_encrypted_export_without_an_identity_is_refused_naming_what_is_missing() {
    let (_, recipient) = new_key();
    let source = given_store_expiring_in(7200);
    let export = source.run(&["export", "--encrypt-to", &recipient]);
    assert_eq!(export.code, 0, "{export:?}");
    let target = TestEnv::new();
    let backup = target.home().join("backup.env.age");
    std::fs::write(&backup, &export.stdout).unwrap();

    let out = target.run(&["import", path_str(&backup)]);
    assert_eq!(out.code, 3, "{out:?}");
    assert_eq!(out.stdout, "");
    assert_stderr_error(
        &out.stderr,
        "CONFIGURATION_ERROR",
        &format!(
            "the export {} is encrypted, and no identity (age private key) is configured to open it; nothing was sent",
            backup.display()
        ),
        "give this host its age identity: `--identity FILE`, WITHINGS_TOKEN_IDENTITY (the key itself), WITHINGS_TOKEN_IDENTITY_FILE, or a systemd credential named withings-token.identity; `withings-token keygen` makes one",
    );
    assert!(!target.store_path().exists(), "no store was made");
}

#[test]
fn an_export_older_than_the_store_is_refused_and_the_store_is_untouched() {
    let source = given_store_expiring_in(3600);
    let export = source.run(&["export"]);
    assert_eq!(export.code, 0, "{export:?}");
    let exported_refreshed = env_value(&export.stdout, "WITHINGS_TOKEN_LAST_REFRESHED");

    let target = given_store_expiring_in(7200);
    let stored_refreshed = target.store_json()["tokens"]["last_refreshed"]
        .as_str()
        .unwrap()
        .to_owned();
    let before = target.store_bytes();
    let out = target
        .cmd()
        .arg("import")
        .write_stdin(export.stdout.replace(OLD_REFRESH, "older-refresh"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr_of(&out));
    assert!(out.stdout.is_empty());
    assert_stderr_error(
        &stderr_of(&out),
        "CONFIGURATION_ERROR",
        &format!(
            "the token store {} holds a set last refreshed {stored_refreshed}, and the export's was last refreshed {exported_refreshed}: the store's is not older, so it stays; the store was not changed",
            target.store_path().display()
        ),
        "keep the store's set (`withings-token status` shows it); to restore the export anyway, move the store aside first, then import it",
    );
    assert_eq!(target.store_bytes(), before);
}

#[test]
fn a_newer_export_replaces_the_stores_set_keeping_its_token_as_the_previous_one() {
    let source = given_store_expiring_in(7200);
    let export = source.run(&["export"]);
    let target = given_store_expiring_in(3600);
    let newer = export
        .stdout
        .replace(OLD_REFRESH, "newer-refresh")
        .replace(OLD_ACCESS, "newer-access");

    let out = target
        .cmd()
        .args(["import", "--json"])
        .write_stdin(newer)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let store = target.store_json();
    assert_eq!(store["tokens"]["refresh_token"], "newer-refresh");
    assert_eq!(store["tokens"]["userid"], "363", "the account is the same");
    assert_eq!(store["previous"]["refresh_token"], OLD_REFRESH);
    assert_eq!(store["generation"], 2);
    assert_eq!(store["tokens_generation"], 2);
}

#[test]
fn rekey_encrypts_a_redis_store_under_its_lease_and_refreshes_go_on() {
    let (sandbox, redis, envs) = given_fleet(1);
    let env = &envs[0];
    let (old, old_recipient) = new_key();
    let (new, new_recipient) = new_key();
    let old_file = path_str(&identity_file(env, "old.txt", &old)).to_owned();
    let new_file = path_str(&identity_file(env, "new.txt", &new)).to_owned();
    let plain = redis.store_json();
    let refresh_token = plain["tokens"]["refresh_token"].as_str().unwrap().to_owned();

    let out = env.run(&["rekey", "--identity", &old_file, "--encrypt-to", &old_recipient]);
    assert_eq!(out.code, 0, "{out:?}");
    let generation = plain["generation"].as_u64().unwrap() + 1;
    assert_eq!(out.stdout, one_row("default", "plain", "encrypted", generation));
    let value = redis.command(&["GET", REDIS_KEY]).unwrap();
    assert!(!value.contains(&refresh_token), "{value}");
    let stored = redis.store_json();
    assert_eq!(stored["version"], 2);
    assert_eq!(stored["tokens_generation"], plain["tokens_generation"]);
    let sealed = stored["sealed"].as_str().unwrap();
    let part: Value = serde_json::from_slice(&open_by_hand(sealed.as_bytes(), &old).unwrap()).unwrap();
    assert_eq!(part["tokens"]["refresh_token"], refresh_token.as_str());

    let moved = env.run(&[
        "rekey",
        "--encrypt-to",
        &new_recipient,
        "--identity",
        &old_file,
        "--identity",
        &new_file,
    ]);
    assert_eq!(moved.code, 0, "{moved:?}");
    assert_eq!(
        moved.stdout,
        one_row("default", "encrypted", "encrypted", generation + 1)
    );
    let sealed = redis.store_json()["sealed"].as_str().unwrap().to_owned();
    assert_eq!(open_by_hand(sealed.as_bytes(), &old), None);
    assert_refreshes_with(&sandbox, env, &new_file, &new_recipient);
    let with_old = env.run(&["status", "--identity", &old_file]);
    assert_eq!(with_old.code, 3, "{with_old:?}");
}

#[test]
fn keygen_output_dash_or_a_format_name_is_refused_and_writes_nothing() {
    let env = TestEnv::new();
    for word in ["-", "json"] {
        let out = env.run(&["keygen", "--output", word]);
        assert_eq!(out.code, 3, "{out:?}");
        assert_eq!(out.stdout, "");
        assert!(
            out.stderr.starts_with(&format!(
                "error: `keygen --output {word}` would write the private key to a file named `{word}`; nothing was written [CONFIGURATION_ERROR]\n"
            )),
            "{out:?}"
        );
        assert!(!env.work_dir().join(word).exists());
    }
}

#[test]
fn an_import_takes_in_a_set_waiting_in_the_rescue_file_first_and_never_outdates_it() {
    let env = given_store_expiring_in(7200); // OLD_*, refreshed an hour ago, generation 1
    let now = chrono::Utc::now();
    let at = |minutes_ago: i64| rfc3339(now - chrono::Duration::minutes(minutes_ago));
    // A run received a set ten minutes ago and could not save it.
    let rescued = json!({
        "version": 1,
        "generation": 2,
        "tokens_generation": 2,
        "tokens": {
            "access_token": "rescued-access",
            "refresh_token": "rescued-refresh",
            "expires_at": rfc3339(now + chrono::Duration::minutes(170)),
            "last_refreshed": at(10),
            "userid": "363",
            "scope": "user.info,user.metrics",
        },
    });
    let rescue = PathBuf::from(format!("{}.rescue", env.store_path().display()));
    std::fs::write(&rescue, serde_json::to_vec_pretty(&rescued).unwrap()).unwrap();
    // An export of a set from thirty minutes ago: newer than the store's,
    // older than the rescued one.
    let export = format!(
        "WITHINGS_ACCESS_TOKEN=export-access\nWITHINGS_REFRESH_TOKEN=export-refresh\nWITHINGS_TOKEN_EXPIRES_AT={}\nWITHINGS_TOKEN_LAST_REFRESHED={}\n",
        rfc3339(now + chrono::Duration::minutes(150)),
        at(30)
    );
    let file = env.home().join("backup.env");
    std::fs::write(&file, export).unwrap();

    let out = env.run(&["import", path_str(&file)]);
    assert_eq!(out.code, 3, "the rescued set is newer: {out:?}");
    assert_eq!(env.stored_refresh_token(), "rescued-refresh");
    assert!(!rescue.exists(), "adopted into the store");
}
