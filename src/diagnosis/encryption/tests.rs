use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use secrecy::{ExposeSecret, SecretString};

use super::*;
use crate::output::CheckResult;
use crate::sealing::IdentitySources;

fn key() -> (age::x25519::Identity, Recipient) {
    let identity = age::x25519::Identity::generate();
    let recipient = Recipient::parse(&identity.to_public().to_string()).unwrap();
    (identity, recipient)
}

fn in_variable(identity: &age::x25519::Identity) -> IdentitySource {
    IdentitySource::Variable(SecretString::from(identity.to_string().expose_secret().to_owned()))
}

fn keyring(recipients: &[&Recipient], sources: Vec<IdentitySource>) -> Keyring {
    let recipients = recipients.iter().map(|r| (*r).clone()).collect();
    Keyring::new(recipients, IdentitySources(sources), false)
}

fn state(generation: u64, sealed: bool) -> StoreState {
    StoreState {
        generation,
        sealed,
        ..StoreState::default()
    }
}

fn said(check: &DoctorCheck) -> (&str, CheckResult, &str, Option<&str>) {
    (check.name, check.result, check.detail.as_str(), check.action.as_deref())
}

/// An identity file of `identity` with `mode`, in a directory of its own.
fn identity_file(identity: &age::x25519::Identity, mode: u32) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("key.txt");
    std::fs::write(
        &path,
        format!("# a test key\n{}\n", identity.to_string().expose_secret()),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    (dir, path)
}

#[test]
fn a_plain_file_store_is_a_note_and_plain_redis_a_warning() {
    let none = Keyring::default();
    assert_eq!(
        said(&form_check(&none, &state(3, false), false)),
        (
            "encryption",
            CheckResult::Ok,
            "plain: no recipient is configured (mode 0600 keeps the file this user's); `encrypt_to` encrypts it (docs/encryption.md)",
            None
        )
    );
    assert_eq!(
        said(&form_check(&none, &state(3, false), true)),
        (
            "encryption",
            CheckResult::Warn,
            "plain tokens in Redis: whoever reads that Redis (other services sharing it, its backups) reads them",
            Some(format!("{SET_RECIPIENTS}; then run `withings-token rekey`").as_str())
        )
    );
    let empty_redis = form_check(&none, &state(0, false), true);
    assert_eq!(empty_redis.result, CheckResult::Warn);
    assert_eq!(empty_redis.action.as_deref(), Some(SET_RECIPIENTS));
    assert_eq!(form_check(&none, &state(0, false), false).result, CheckResult::Ok);
}

#[test]
fn recipients_and_a_store_still_plain_say_the_next_write_encrypts_it() {
    let (_, a) = key();
    let (_, b) = key();
    let two = keyring(&[&a, &b], Vec::new());
    assert_eq!(
        said(&form_check(&two, &state(3, false), false)),
        (
            "encryption",
            CheckResult::Ok,
            "plain for now: its next write (or `withings-token rekey`, at once) encrypts it to 2 recipients",
            None
        )
    );
    assert_eq!(
        said(&form_check(&two, &state(3, false), true)),
        (
            "encryption",
            CheckResult::Warn,
            "the Redis value holds plain tokens until its next write, which encrypts them to 2 recipients",
            Some("run `withings-token rekey` to encrypt them now")
        )
    );
    assert_eq!(
        said(&form_check(&two, &state(0, false), true)),
        (
            "encryption",
            CheckResult::Ok,
            "nothing stored yet: its first write is encrypted to 2 recipients",
            None
        )
    );
}

#[test]
fn an_encrypted_store_without_recipients_fails_unless_plaintext_is_allowed() {
    let (identity, recipient) = key();
    let sealed = state(3, true);
    let kept = keyring(&[&recipient], vec![in_variable(&identity)]);
    assert_eq!(
        said(&form_check(&kept, &sealed, true)),
        (
            "encryption",
            CheckResult::Ok,
            "encrypted (age): the tokens and the consent state; generation, fence and copy records stay in clear",
            None
        )
    );
    let unkept = keyring(&[], vec![in_variable(&identity)]);
    let check = form_check(&unkept, &sealed, false);
    assert_eq!(
        (check.result, check.detail.as_str()),
        (
            CheckResult::Fail,
            "encrypted, and no recipient is configured: its next write is refused (nothing is sent to Withings)"
        )
    );
    let action = check.action.unwrap_or_default();
    assert!(
        action.starts_with(&format!(
            "set WITHINGS_TOKEN_RECIPIENTS={} (this host's identity's recipient)",
            recipient.as_str()
        )),
        "{action}"
    );
    let allowed = Keyring::new(Vec::new(), IdentitySources(vec![in_variable(&identity)]), true);
    assert_eq!(form_check(&allowed, &sealed, false).result, CheckResult::Warn);
}

#[test]
fn recipients_are_shown_by_fingerprint_and_one_must_be_this_hosts() {
    let (mine, my_recipient) = key();
    let (_, other) = key();
    assert!(recipients_check(&Keyring::default()).is_none(), "no recipient, no line");

    let both = keyring(&[&other, &my_recipient], vec![in_variable(&mine)]);
    let listed = format!("2 recipients: {}, {}", other.fingerprint(), my_recipient.fingerprint());
    assert_eq!(
        said(&recipients_check(&both).unwrap()),
        (
            "recipients",
            CheckResult::Ok,
            format!(
                "{listed}; this host reads back what it writes (it holds the identity of {})",
                my_recipient.fingerprint()
            )
            .as_str(),
            None
        )
    );
    assert!(
        !listed.contains(&my_recipient.as_str()[..20]),
        "fingerprints, not keys: {listed}"
    );

    let not_mine = keyring(&[&other], vec![in_variable(&mine)]);
    assert_eq!(
        said(&recipients_check(&not_mine).unwrap()),
        (
            "recipients",
            CheckResult::Fail,
            format!(
                "1 recipient: {}; none is this host's (its identities come from WITHINGS_TOKEN_IDENTITY): it could not read back what it writes, so its writes are refused",
                other.fingerprint()
            )
            .as_str(),
            Some(
                format!(
                    "add this host's recipient to `encrypt_to` (WITHINGS_TOKEN_RECIPIENTS, `--encrypt-to`): {}",
                    my_recipient.as_str()
                )
                .as_str()
            )
        )
    );
    // Without an identity the identity line says it; the list stands.
    let no_identity = keyring(&[&other], Vec::new());
    assert_eq!(recipients_check(&no_identity).unwrap().result, CheckResult::Ok);
}

#[test]
fn each_identity_source_says_whether_it_loads_and_a_files_mode() {
    let (identity, recipient) = key();
    let (_dir, private) = identity_file(&identity, 0o600);
    let sources = vec![IdentitySource::Flag(private.clone()), in_variable(&identity)];
    let checks = identity_checks(&keyring(&[&recipient], sources), false);
    let fingerprint = recipient.fingerprint();
    let expected = [
        format!(
            "--identity {}: 1 key ({fingerprint}), file mode 0600",
            private.display()
        ),
        format!("WITHINGS_TOKEN_IDENTITY: 1 key ({fingerprint})"),
    ];
    assert_eq!(checks.len(), 2);
    for (check, detail) in checks.iter().zip(&expected) {
        assert_eq!(said(check), ("identity", CheckResult::Ok, detail.as_str(), None));
    }
    for check in &checks {
        assert!(!check.detail.contains("AGE-SECRET-KEY"), "{}", check.detail);
    }
}

#[test]
fn an_identity_file_others_may_read_fails_with_the_chmod_to_run() {
    let (identity, recipient) = key();
    let (_dir, open) = identity_file(&identity, 0o644);
    let source = || vec![IdentitySource::Flag(open.clone())];
    let checks = identity_checks(&keyring(&[&recipient], source()), false);
    assert_eq!(
        said(&checks[0]),
        (
            "identity",
            CheckResult::Fail,
            format!(
                "the identity file of --identity {} may be read by group or others (mode 644), so it is not used",
                open.display()
            )
            .as_str(),
            Some(
                format!(
                    "run `chmod 600 {}` (a private key is for its owner only)",
                    open.display()
                )
                .as_str()
            )
        )
    );
    // Nothing encrypted and nothing to encrypt: a warning only.
    let idle = identity_checks(&keyring(&[], source()), false);
    assert_eq!(idle[0].result, CheckResult::Warn);
    assert!(
        idle[0].detail.ends_with("(unused while nothing is encrypted)"),
        "{}",
        idle[0].detail
    );
}

#[test]
fn no_identity_fails_for_an_encrypted_store_and_warns_before_one() {
    let (_, recipient) = key();
    assert_eq!(
        said(&identity_checks(&Keyring::default(), true)[0]),
        (
            "identity",
            CheckResult::Fail,
            "none configured: the encrypted store cannot be opened on this host",
            Some(IDENTITY_ACTION)
        )
    );
    assert_eq!(
        said(&identity_checks(&keyring(&[&recipient], Vec::new()), false)[0]),
        (
            "identity",
            CheckResult::Warn,
            "none configured: once the store is encrypted, this host cannot read it",
            Some(IDENTITY_ACTION)
        )
    );
    assert!(
        identity_checks(&Keyring::default(), false).is_empty(),
        "no encryption, no line"
    );
}

#[test]
fn a_store_that_does_not_open_is_the_sealing_errors_failed_check() {
    let (identity, recipient) = key();
    let (stranger, _) = key();
    let armour = crate::sealing::seal_to(std::slice::from_ref(&recipient), b"{\"tokens\":null}").unwrap();
    let place = "/s/tokens.json";

    let none = unread_check(&Keyring::default(), &armour, place);
    assert_eq!(
        said(&none),
        (
            "encryption",
            CheckResult::Fail,
            "token store /s/tokens.json is encrypted, and no identity (age private key) is configured to open it; nothing was sent",
            Some(IDENTITY_ACTION)
        )
    );
    let other = unread_check(&keyring(&[], vec![in_variable(&stranger)]), &armour, place);
    assert_eq!(other.result, CheckResult::Fail);
    assert!(
        other
            .detail
            .starts_with("token store /s/tokens.json is encrypted to other keys"),
        "{}",
        other.detail
    );

    let opens = unread_check(&keyring(&[], vec![in_variable(&identity)]), &armour, place);
    assert_eq!(opens.result, CheckResult::Ok);
}
