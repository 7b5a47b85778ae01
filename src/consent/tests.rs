use super::*;

#[test]
fn bare_code_and_url_are_both_accepted() {
    assert_eq!(
        parse_code_or_url(" abc123 ").unwrap(),
        Redirect {
            code: "abc123".into(),
            state: RedirectState::BareCode,
            url_base: None,
        }
    );
    let r = parse_code_or_url("https://example.com/cb?code=abc&state=xyz").unwrap();
    assert_eq!(
        r,
        Redirect {
            code: "abc".into(),
            state: RedirectState::Given("xyz".into()),
            url_base: Some("https://example.com/cb".into()),
        }
    );
}

#[test]
fn url_without_code_or_with_error_is_refused() {
    assert_eq!(
        parse_code_or_url("https://example.com/cb?state=x")
            .unwrap_err()
            .exit_code(),
        3
    );
    assert_eq!(
        parse_code_or_url("https://example.com/cb?error=access_denied")
            .unwrap_err()
            .exit_code(),
        3
    );
    assert_eq!(parse_code_or_url("").unwrap_err().exit_code(), 3);
}

#[test]
fn repeated_or_hidden_parameters_never_skip_the_state_check() {
    let twice = "https://example.com/cb?code=c&state=good&state=bad";
    assert_eq!(parse_code_or_url(twice).unwrap_err().code(), "INVALID_STATE");
    let two_codes = "https://example.com/cb?code=a&code=b&state=s";
    assert_eq!(parse_code_or_url(two_codes).unwrap_err().code(), "INVALID_STATE");
    // A query pasted without its `?` is still a query, with its state.
    let r = parse_code_or_url("code=C11&state=BAD").unwrap();
    assert_eq!(r.state, RedirectState::Given("BAD".into()));
    // A NUL in the code (percent-encoded) is refused before sending.
    assert_eq!(
        parse_code_or_url("https://example.com/cb?code=C8%00x&state=s")
            .unwrap_err()
            .exit_code(),
        3
    );
}

#[test]
fn a_code_from_another_callback_is_refused_before_sending() {
    let registered = "https://example.com/callback";
    let ok = parse_code_or_url("https://example.com/callback?code=c&state=s").unwrap();
    assert!(check_redirect_base(&ok, registered).is_ok());
    for foreign in [
        "https://evil.example/callback?code=c&state=s",
        "https://example.com/other?code=c&state=s",
        "http://example.com/callback?code=c&state=s",
        "https://example.com:8443/callback?code=c&state=s",
    ] {
        let r = parse_code_or_url(foreign).unwrap();
        assert_eq!(
            check_redirect_base(&r, registered).unwrap_err().code(),
            "INVALID_STATE",
            "{foreign}"
        );
    }
    // A bare code has no URL to check.
    assert!(check_redirect_base(&parse_code_or_url("c0de").unwrap(), registered).is_ok());
}
