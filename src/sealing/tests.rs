use super::*;
use secrecy::{ExposeSecret, SecretString};

fn key() -> (age::x25519::Identity, Recipient) {
    let identity = age::x25519::Identity::generate();
    let recipient = Recipient::parse(&identity.to_public().to_string()).unwrap();
    (identity, recipient)
}

fn keyring_of(recipients: Vec<Recipient>, identities: &[&age::x25519::Identity]) -> Keyring {
    let text: String = identities
        .iter()
        .map(|i| format!("{}\n", i.to_string().expose_secret()))
        .collect();
    let sources = if identities.is_empty() {
        IdentitySources::default()
    } else {
        IdentitySources(vec![IdentitySource::Variable(SecretString::from(text))])
    };
    Keyring::new(recipients, sources, false)
}

#[test]
fn what_is_sealed_opens_with_its_identity_and_is_armoured() {
    let (identity, recipient) = key();
    let keyring = keyring_of(vec![recipient], &[&identity]);
    let sealed = keyring.seal(b"{\"refresh_token\":\"secret-rt\"}").unwrap();
    assert!(sealed.starts_with(ARMOR_BEGIN), "{sealed}");
    assert!(!sealed.contains("secret-rt"));
    assert!(is_sealed(sealed.as_bytes()));
    assert!(!is_sealed(b"{\"version\":1}"));
    let plain = keyring.open(sealed.as_bytes(), "token store", "X").unwrap();
    assert_eq!(&plain[..], b"{\"refresh_token\":\"secret-rt\"}");
}

#[test]
fn any_of_several_identities_opens_and_several_recipients_each_open() {
    let (old, old_r) = key();
    let (new, new_r) = key();
    let sealed = seal_to(&[old_r.clone(), new_r.clone()], b"x").unwrap();
    assert_eq!(
        &open_with(std::slice::from_ref(&old), sealed.as_bytes()).unwrap()[..],
        b"x"
    );
    assert_eq!(
        &open_with(std::slice::from_ref(&new), sealed.as_bytes()).unwrap()[..],
        b"x"
    );
    let only_new = seal_to(&[new_r], b"y").unwrap();
    assert_eq!(&open_with(&[old, new], only_new.as_bytes()).unwrap()[..], b"y");
}

#[test]
fn another_key_or_altered_bytes_are_told_apart() {
    let (_, recipient) = key();
    let (stranger, _) = key();
    let sealed = seal_to(&[recipient], b"payload").unwrap();
    assert_eq!(
        open_with(std::slice::from_ref(&stranger), sealed.as_bytes()).unwrap_err(),
        OpenFailure::NoMatchingKey
    );
    let (identity, recipient) = key();
    let sealed = seal_to(&[recipient], b"payload").unwrap();
    // A character of the payload's base64 changed: the armour still
    // decodes, the ciphertext does not authenticate.
    let mut lines: Vec<String> = sealed.lines().map(str::to_owned).collect();
    let last = lines.len() - 2;
    let mut chars: Vec<char> = lines[last].chars().collect();
    chars[0] = if chars[0] == 'A' { 'B' } else { 'A' };
    lines[last] = chars.into_iter().collect();
    let altered = lines.join("\n") + "\n";
    assert!(matches!(
        open_with(std::slice::from_ref(&identity), altered.as_bytes()),
        Err(OpenFailure::Damaged(_))
    ));
    assert!(matches!(
        open_with(std::slice::from_ref(&identity), b"not age at all"),
        Err(OpenFailure::Damaged(_))
    ));
}

#[test]
fn open_without_identity_or_with_the_wrong_one_is_exit_3_naming_the_place() {
    let (_, recipient) = key();
    let sealed = seal_to(std::slice::from_ref(&recipient), b"p").unwrap();
    let none = keyring_of(vec![], &[]);
    let e = none.open(sealed.as_bytes(), "token store", "/s.json").unwrap_err();
    assert_eq!((e.code(), e.exit_code()), ("CONFIGURATION_ERROR", 3));
    assert!(e.to_string().contains("token store /s.json is encrypted"), "{e}");
    let (other, _) = key();
    let wrong = keyring_of(vec![], &[&other]);
    let e = wrong.open(sealed.as_bytes(), "token store", "/s.json").unwrap_err();
    assert_eq!(e.exit_code(), 3);
    assert!(e.to_string().contains("encrypted to other keys"), "{e}");
}

#[test]
fn a_sealed_store_is_not_written_plain_nor_to_keys_this_host_cannot_open() {
    let (identity, recipient) = key();
    let plain_host = keyring_of(vec![], &[&identity]);
    let e = plain_host.check_write(true, "token store S").unwrap_err();
    assert_eq!(e.exit_code(), 3);
    assert!(e.action().contains(recipient.as_str()), "{}", e.action());
    plain_host.check_write(false, "token store S").unwrap();
    Keyring::new(vec![], IdentitySources::default(), true)
        .check_write(true, "S")
        .unwrap();

    let (_, elsewhere) = key();
    let locked_out = keyring_of(vec![elsewhere.clone()], &[&identity]);
    let e = locked_out.check_write(false, "token store S").unwrap_err();
    assert!(e.to_string().contains("could not read back"), "{e}");
    keyring_of(vec![elsewhere.clone(), recipient], &[&identity])
        .check_write(true, "S")
        .unwrap();
    // A host with no identity at all would lock itself out on its first write.
    let e = keyring_of(vec![elsewhere], &[])
        .check_write(false, "token store S")
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("no identity (age private key) is configured on this host"),
        "{e}"
    );
}

#[test]
fn recipients_are_checked_without_echoing_a_private_key() {
    let (identity, recipient) = key();
    let secret = identity.to_string().expose_secret().to_owned();
    let why = Recipient::parse(&secret).unwrap_err();
    assert!(!why.contains(&secret) && why.contains("private key"), "{why}");
    assert!(Recipient::parse("age1nope").is_err());
    assert!(Recipient::parse("ssh-ed25519 AAAA").unwrap_err().contains("X25519"));
    let parsed = Recipient::parse(&format!("  {}  ", recipient.as_str())).unwrap();
    assert_eq!(parsed, recipient);
    let print = parsed.fingerprint();
    assert!(print.starts_with("age1…") && print.contains("SHA256:"), "{print}");
}

#[test]
fn identity_text_takes_comments_blank_lines_and_several_keys() {
    let (a, _) = key();
    let (b, _) = key();
    let text = format!(
        "# created: now\n\n{}\n  {}  \n",
        a.to_string().expose_secret(),
        b.to_string().expose_secret()
    );
    assert_eq!(identities::parse_identities(&text, "F").unwrap().len(), 2);
    let (message, _) = identities::parse_identities("# only a comment\n", "F").err().unwrap();
    assert!(message.contains("holds no identity"));
    let (message, _) = identities::parse_identities("AGE-PLUGIN-YUBIKEY-1XYZ\n", "F")
        .err()
        .unwrap();
    assert!(message.contains("line 1 of F is a plugin"), "{message}");
}

#[test]
fn a_generated_identity_is_age_keygen_s_format_and_matches_its_recipient() {
    let now = chrono::DateTime::parse_from_rfc3339("2026-12-07T07:00:00Z")
        .unwrap()
        .to_utc();
    let (text, recipient) = identities::generate_identity(now);
    let text = text.expose_secret();
    assert!(text.starts_with(&format!(
        "# created: 2026-12-07T07:00:00Z\n# public key: {recipient}\nAGE-SECRET-KEY-1"
    )));
    let identities = identities::parse_identities(text, "F").unwrap();
    assert_eq!(identities[0].to_public().to_string(), recipient);
}

#[test]
fn identity_files_readable_by_others_are_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("key.txt");
    let (text, _) = identities::generate_identity(chrono::Utc::now());
    std::fs::write(&path, text.expose_secret()).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (message, action) = IdentitySource::Flag(path.clone()).load().err().unwrap();
    assert!(message.contains("mode 644"), "{message}");
    assert_eq!(
        action,
        format!(
            "run `chmod 600 {}` (a private key is for its owner only)",
            path.display()
        )
    );
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(IdentitySource::Flag(path.clone()).load().unwrap().len(), 1);
    // systemd's credential of a `User=` service: 0400 with an ACL, seen as
    // 0440; systemd guards it, so its mode is not held against it.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o440)).unwrap();
    assert!(IdentitySource::Flag(path.clone()).load().is_err());
    assert_eq!(IdentitySource::Credential(path).load().unwrap().len(), 1);
}

#[test]
fn sources_take_every_one_given_and_the_default_only_alone() {
    let dir = tempfile::tempdir().unwrap();
    let default = dir.path().join("identity.txt");
    std::fs::write(&default, "x").unwrap();
    let creds = dir.path().join("creds");
    std::fs::create_dir(&creds).unwrap();
    std::fs::write(creds.join(identities::CREDENTIAL_NAME), "x").unwrap();
    let alone = IdentitySources::of(&[], None, None, None, Some(default.clone()));
    assert_eq!(alone.describe(), format!("{} (keygen's default)", default.display()));
    let given = IdentitySources::of(
        &[PathBuf::from("/k1")],
        Some(SecretString::from("k")),
        Some(PathBuf::from("/k2")),
        Some(creds.clone()),
        Some(default),
    );
    assert_eq!(
        given.describe(),
        format!(
            "--identity /k1, WITHINGS_TOKEN_IDENTITY, WITHINGS_TOKEN_IDENTITY_FILE /k2, the systemd credential {}",
            creds.join(identities::CREDENTIAL_NAME).display()
        )
    );
    assert!(IdentitySources::of(&[], None, None, Some(dir.path().join("none")), None).is_empty());
}

use std::path::PathBuf;

#[test]
fn an_x25519_recipient_whose_random_part_starts_like_another_kind_is_still_taken() {
    // One in 1024 keys starts `age1pq`, as post-quantum recipients do.
    let lookalike = std::iter::repeat_with(|| age::x25519::Identity::generate().to_public().to_string())
        .take(200_000)
        .find(|r| r.starts_with("age1pq"))
        .unwrap();
    assert_eq!(Recipient::parse(&lookalike).unwrap().as_str(), lookalike);
    let longer = format!("{lookalike}qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq");
    assert!(Recipient::parse(&longer).unwrap_err().contains("only age X25519"));
}

#[test]
fn a_refused_event_record_write_says_the_tokens_are_not_affected() {
    let (identity, _) = key();
    let plain_host = keyring_of(vec![], &[&identity]);
    let e = plain_host
        .check_record_write(true, "the event record /s/tokens.events.json")
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "the event record /s/tokens.events.json is encrypted, and no recipient is configured to encrypt its next write to; it was not changed (the tokens are not affected)"
    );
    let e = plain_host.check_write(true, "token store /s/tokens.json").unwrap_err();
    assert!(
        e.to_string().ends_with("; nothing was sent and it was not changed"),
        "{e}"
    );
}
