//! What an adversarial trial threw at the binary from upstream, end to end:
//! a Withings success in an odd shape is still a rotation and is saved; a
//! Railway mutation answering `false` is a failure; upstream text cannot
//! forge lines or drive the terminal; a URL's password and query never
//! reach the logs.

use crate::support::*;

// ---------------------------------------------------------------------------
// A success in an odd shape is a rotation: saved, never retried

#[test]
fn a_withings_success_with_a_bom_trailing_bytes_and_odd_fields_is_saved_after_one_request() {
    let tokens = json!({
        "status": 0,
        "body": {
            "access_token": NEW_ACCESS,
            "refresh_token": NEW_REFRESH,
            "expires_in": "soon",
            "userid": 363.0,
            "scope": 5,
        }
    });
    let mut body = "\u{feff}".as_bytes().to_vec();
    body.extend_from_slice(tokens.to_string().as_bytes());
    body.extend_from_slice(b"\n<!-- served by a proxy -->");
    let withings = withings_answering(ResponseTemplate::new(200).set_body_raw(body, "application/json")).times(1);
    let env = given_expired_store(&withings.uri());

    let out = env.run_fast(&["refresh", "--retries", "2"]);

    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(env.stored_refresh_token(), NEW_REFRESH, "the rotated token is kept");
    let stored = env.store_json()["tokens"].clone();
    assert_eq!(stored["access_token"], NEW_ACCESS);
    assert_eq!(stored["userid"], "363");
    let expires = chrono::DateTime::parse_from_rfc3339(stored["expires_at"].as_str().unwrap_or_default());
    let refreshed = chrono::DateTime::parse_from_rfc3339(stored["last_refreshed"].as_str().unwrap_or_default());
    let lifetime = expires.expect("expires_at") - refreshed.expect("last_refreshed");
    assert_eq!(lifetime, chrono::Duration::hours(3), "the documented 3 h is assumed");
    assert!(
        out.stderr
            .lines()
            .any(|l| l.starts_with("warning: ") && l.contains("assumed")),
        "the assumed lifetime is said: {out:?}"
    );
    assert!(
        !out.stderr.contains(NEW_REFRESH) && !out.stderr.contains(NEW_ACCESS),
        "{out:?}"
    );
    withings.verify();
}
