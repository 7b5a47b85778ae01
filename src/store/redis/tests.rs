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
