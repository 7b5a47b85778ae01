use super::*;

#[test]
fn the_shown_url_never_holds_the_password() {
    let url = url::Url::parse("redis://user:s3cr%40t@db.example:6380/2").unwrap();
    assert_eq!(shown_url(&url), "redis://db.example:6380/2");
    assert_eq!(percent_decoded("s3cr%40t+x%2"), "s3cr@t+x%2");
    assert_eq!(
        scrub("auth failed for s3cr@t", &[Some("s3cr@t")]),
        "auth failed for *****"
    );
    let url = url::Url::parse("redis://only-a-secret@db.example").unwrap();
    assert_eq!(shown_url(&url), "redis://db.example");
}

#[test]
fn a_url_redis_cannot_use_is_a_configuration_error_without_the_password() {
    let url = SecretString::from("redis://:pw@[::1".to_owned());
    let err = RedisStore::new(&url, "k".into(), Duration::from_secs(1)).err().unwrap();
    assert_eq!(err.code(), "CONFIGURATION_ERROR");
    assert!(!err.to_string().contains("pw"), "{err}");
}

#[test]
fn owners_differ_and_jitter_stays_within_the_pause() {
    assert_ne!(new_owner().unwrap(), new_owner().unwrap());
    let pause = Duration::from_millis(100);
    for _ in 0..50 {
        let j = jittered(pause);
        assert!(j >= pause / 2 && j <= pause, "{j:?}");
    }
}

// ---------------------------------------------------------------------------
// a value read again unchanged is not opened again (see `opened`)

fn sealing_keyring() -> crate::sealing::Keyring {
    use crate::sealing::{IdentitySource, IdentitySources, Recipient};
    let identity = age::x25519::Identity::generate();
    let recipient = Recipient::parse(&identity.to_public().to_string()).unwrap();
    let key = SecretString::from(identity.to_string().expose_secret().to_owned());
    let sources = IdentitySources(vec![IdentitySource::Variable(key)]);
    crate::sealing::Keyring::new(vec![recipient], sources, false)
}

fn state_holding(refresh: &str) -> StoreState {
    StoreState {
        tokens: Some(crate::tokens::TokenSet {
            access_token: Some(SecretString::from(format!("access-of-{refresh}"))),
            refresh_token: SecretString::from(refresh.to_owned()),
            expires_at: None,
            last_refreshed: None,
            userid: Some("42".to_owned()),
            scope: None,
        }),
        ..StoreState::default()
    }
}

#[test]
fn a_sealed_value_read_again_unchanged_is_not_decrypted_again() {
    let keyring = sealing_keyring();
    let first = crate::store::serialize_store(&state_holding("rt-1"), 3, 3, Some(2), &keyring).unwrap();
    let second = crate::store::serialize_store(&state_holding("rt-2"), 4, 4, Some(2), &keyring).unwrap();
    let last = LastOpened::new();
    let opened = std::cell::Cell::new(0);
    let read = |bytes: &[u8]| {
        let parse = |b: &[u8]| {
            opened.set(opened.get() + 1);
            parse_store(b, &keyring, "test")
        };
        let state = last.open(bytes, parse).ok().unwrap();
        (
            state.sealed,
            state.generation,
            state.tokens.unwrap().refresh_token.expose_secret().to_owned(),
        )
    };

    assert_eq!(read(&first), (true, 3, "rt-1".to_owned()));
    assert_eq!(read(&first), (true, 3, "rt-1".to_owned()), "the same state");
    assert_eq!(opened.get(), 1, "opened once for two reads");
    assert_eq!(read(&second), (true, 4, "rt-2".to_owned()), "a new value is opened");
    assert_eq!(opened.get(), 2);
    assert_eq!(
        read(&first),
        (true, 3, "rt-1".to_owned()),
        "only the last value is kept"
    );
    assert_eq!(opened.get(), 3);
    // The same set sealed again is other bytes (a fresh age file key).
    let again = crate::store::serialize_store(&state_holding("rt-1"), 3, 3, Some(2), &keyring).unwrap();
    assert_ne!(&again[..], &first[..]);
}

#[test]
fn a_value_that_failed_to_open_is_opened_again_next_time() {
    let last: LastOpened<u32> = LastOpened::new();
    let tries = std::cell::Cell::new(0);
    let mut outcomes = vec![Ok(7), Err("no identity")];
    let mut open = |_: &[u8]| {
        tries.set(tries.get() + 1);
        outcomes.pop().unwrap()
    };
    assert_eq!(last.open(b"v", &mut open), Err("no identity"));
    assert_eq!(last.open(b"v", &mut open), Ok(7));
    assert_eq!(last.open(b"v", &mut open), Ok(7));
    assert_eq!(tries.get(), 2, "the failure was not kept, the success was");
}
