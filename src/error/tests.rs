use super::*;

#[test]
fn refused_grants_point_at_reauthorisation() {
    let e = Error::InvalidRefreshToken { detail: "x".into() };
    assert_eq!(e.exit_code(), 4);
    assert!(e.action().contains("`withings-token auth-url`"));
}

#[test]
fn transient_failures_never_say_reauthorise() {
    for e in [
        Error::Network {
            what: "Withings",
            attempts: 4,
            detail: "refused".into(),
        },
        Error::Upstream {
            what: "Withings",
            attempts: 4,
            detail: "HTML".into(),
        },
        Error::RateLimited {
            what: "Withings",
            detail: "wait 188 s".into(),
            wait: None,
        },
    ] {
        assert_eq!(e.exit_code(), 5);
        assert!(!e.action().contains("auth-url"), "{e}");
    }
}

/// The examples listed under each pattern, checked to match it; the
/// patterns also make a `match` that must name every variant, so a new
/// variant does not compile until it has a row here.
macro_rules! examples_of_every_variant {
    ($($variant:pat => [$($example:expr),+ $(,)?]),+ $(,)?) => {{
        // Never called: only the compiler's exhaustiveness check matters.
        let _names_every_variant = |e: &Error| match e {
            $($variant => ()),+
        };
        let mut all = Vec::new();
        $(
            for example in [$($example),+] {
                assert!(matches!(example, $variant), "listed under another variant: {example:?}");
                all.push(example);
            }
        )+
        all
    }};
}

/// Every variant (twice where a field changes the code or the action), so a
/// new one cannot miss the table.
fn every_variant() -> Vec<Error> {
    let d = || "d".to_owned();
    let upstream = || Error::Upstream {
        what: "Withings",
        attempts: 1,
        detail: d(),
    };
    examples_of_every_variant! {
        Error::Internal(_) => [Error::internal(anyhow::anyhow!("x"))],
        Error::Config { .. } => [Error::config("m", "a")],
        Error::CorruptStore { .. } => [Error::CorruptStore {
            place: "p".into(),
            reason: d(),
        }],
        Error::InvalidRefreshToken { .. } => [Error::InvalidRefreshToken { detail: d() }],
        Error::InvalidCode { .. } => [Error::InvalidCode { detail: d() }],
        Error::InvalidAccessToken { .. } => [Error::InvalidAccessToken { detail: d() }],
        Error::InvalidState { .. } => [Error::InvalidState { detail: d() }],
        Error::InvalidLoginState { .. } => [Error::InvalidLoginState { detail: d() }],
        Error::AccountMismatch { .. } => [Error::AccountMismatch {
            detail: d(),
            action: "a".into(),
        }],
        Error::Network { .. } => [Error::Network {
            what: "Withings",
            attempts: 1,
            detail: d(),
        }],
        Error::RateLimited { .. } => [Error::RateLimited {
            what: "Withings",
            detail: d(),
            wait: None,
        }],
        Error::Upstream { .. } => [upstream()],
        Error::LockTimeout { .. } => [Error::LockTimeout {
            place: "p".into(),
            waited: std::time::Duration::from_secs(1),
        }],
        Error::StoreUnavailable { .. } => [Error::StoreUnavailable { detail: d() }],
        Error::NotSaved { .. } => [
            Error::NotSaved {
                cause: Box::new(Error::StoreUnavailable { detail: d() }),
                kept: Some("p".into()),
            },
            Error::NotSaved {
                cause: Box::new(Error::StoreUnavailable { detail: d() }),
                kept: None,
            },
        ],
        Error::AnswerDropped { .. } => [Error::AnswerDropped { detail: d() }],
        Error::LoginTimeout { .. } => [Error::LoginTimeout {
            redirect_uri: "http://127.0.0.1:8585/callback".into(),
            waited: "300 s".into(),
        }],
        Error::RailwayUpdateFailed { .. } => [Error::RailwayUpdateFailed { detail: d() }],
        Error::EnvFileUpdateFailed { .. } => [Error::EnvFileUpdateFailed {
            path: "p".into(),
            detail: d(),
        }],
        Error::OutputFailed { .. } => [Error::OutputFailed { detail: d() }],
        Error::Interrupted { .. } => [
            Error::Interrupted {
                signal: 15,
                what: "Withings",
            },
            Error::Interrupted {
                signal: 15,
                what: "Railway",
            },
        ],
        Error::HeldBack { .. } => [Error::HeldBack {
            cause: Box::new(upstream()),
            retry_in: std::time::Duration::from_secs(7),
        }],
        Error::CommandNotStarted { .. } => [
            Error::CommandNotStarted {
                program: "p".into(),
                detail: d(),
                not_found: true,
            },
            Error::CommandNotStarted {
                program: "p".into(),
                detail: d(),
                not_found: false,
            },
        ],
        Error::Remote { .. } => [Error::Remote {
            code: "INVALID_REFRESH_TOKEN",
            message: d(),
            action: d(),
        }],
    }
}

#[test]
fn table_agrees_with_every_variant() {
    for e in every_variant() {
        let row = EXIT_STATUS_TABLE.iter().find(|r| r.exit == e.exit_code()).unwrap();
        let codes: Vec<&str> = row.codes.split(", ").collect();
        assert!(codes.contains(&e.code()), "{} not in row {}", e.code(), row.exit);
        assert!(!e.action().is_empty(), "{} has no action", e.code());
    }
}

#[test]
fn stale_copies_say_the_set_is_safe_and_name_the_repair() {
    for e in every_variant().into_iter().filter(|e| e.exit_code() == 6) {
        assert!(e.action().starts_with("the new set"), "{}", e.action());
        assert!(e.action().contains("`withings-token "), "{}", e.action());
    }
}

#[test]
fn an_interruption_names_what_it_cut_and_railway_s_says_the_set_is_saved() {
    let withings = Error::Interrupted {
        signal: 15,
        what: "Withings",
    };
    assert_eq!(
        withings.to_string(),
        "interrupted by signal 15 before Withings answered; nothing more was sent"
    );
    assert!(withings.action().contains("were not changed"), "{}", withings.action());
    let railway = Error::Interrupted {
        signal: 15,
        what: "Railway",
    };
    assert!(
        railway
            .to_string()
            .contains("before Railway answered (the token set is saved"),
        "{railway}"
    );
    assert!(!railway.action().contains("RAILWAY_PROJECT_ID"), "{}", railway.action());
    assert!(
        railway.action().contains("`withings-token refresh --if-needed`"),
        "{}",
        railway.action()
    );
    assert!(
        railway.action().contains("`withings-token railway-sync`"),
        "{}",
        railway.action()
    );
}

#[test]
fn a_held_back_refresh_is_its_cause_with_when_to_retry() {
    let held = Error::HeldBack {
        cause: Box::new(Error::Upstream {
            what: "Withings",
            attempts: 1,
            detail: "HTTP 500".into(),
        }),
        retry_in: std::time::Duration::from_secs(7),
    };
    assert_eq!((held.code(), held.exit_code()), ("UPSTREAM_ERROR", 5));
    assert_eq!(
        held.to_string(),
        "Withings gave no usable answer after 1 attempt(s): HTTP 500; not sent again before 7 s from now (the server backs off while Withings fails)"
    );
    assert!(held.action().starts_with("retry in 7 s or later"), "{}", held.action());
}

#[test]
fn a_lock_timeout_does_not_claim_the_holder_is_refreshing() {
    let e = Error::LockTimeout {
        place: "p".into(),
        waited: std::time::Duration::from_secs(60),
    };
    assert!(e.action().contains("may be refreshing or delivering"), "{}", e.action());
    assert!(e.action().contains("nothing was sent"), "{}", e.action());
}

#[test]
fn statuses_have_their_documented_codes() {
    assert_eq!(Status::Success.exit_code(), 0);
    assert_eq!(Status::StaleCopy.exit_code(), 6);
    assert_eq!(Status::RefreshDue.exit_code(), 7);
    assert_eq!(Status::Drift.exit_code(), 8);
    assert_eq!(Status::Signalled(15).exit_code(), 143);
    assert_eq!(Status::Signalled(2).exit_code(), 130);
    assert_eq!(Status::Success.worst(Status::StaleCopy), Status::StaleCopy);
    for status in [
        Status::StaleCopy,
        Status::RefreshDue,
        Status::Drift,
        Status::Signalled(2),
        Status::Signalled(1),
    ] {
        assert!(EXIT_STATUS_TABLE.iter().any(|r| r.exit == status.exit_code()));
    }
}

#[test]
fn several_accounts_end_with_the_most_serious_exit_not_the_largest() {
    let of = |exits: &[u8]| {
        exits
            .iter()
            .fold(Status::Success, |worst, exit| worst.most_serious(Status::Failed(*exit)))
            .exit_code()
    };
    assert_eq!(of(&[0, 4, 0]), 4);
    assert_eq!(of(&[6, 4]), 4);
    assert_eq!(of(&[5, 3, 6]), 3);
    assert_eq!(of(&[6, 5]), 5);
    assert_eq!(of(&[0, 6]), 6);
    assert_eq!(of(&[4, 1]), 1);
    assert_eq!(of(&[0, 0]), 0);
    assert_eq!(
        Status::Failed(4).most_serious(Status::Signalled(15)),
        Status::Signalled(15)
    );
    assert_eq!(Status::RefreshDue.most_serious(Status::StaleCopy), Status::StaleCopy);
}
