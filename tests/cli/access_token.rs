//! `access-token` (issue 13, item 1): the access token alone on stdout,
//! refreshed first below `--min-ttl` and not above it.
//! `cargo test --features failpoints --test cli access_token::`

use crate::support::*;

#[test]
fn a_token_with_more_than_min_ttl_left_is_printed_without_a_request() {
    let withings = silent_withings();
    let mut env = given_store_expiring_in(3 * 3600);
    env.withings(&withings.uri());

    let out = env.run(&["access-token"]);

    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout, format!("{OLD_ACCESS}\n"));
    assert!(!out.stderr.contains(OLD_ACCESS), "{out:?}");
    assert_eq!(env.stored_refresh_token(), OLD_REFRESH);
    withings.verify();
}

#[test]
fn a_token_with_less_than_min_ttl_left_is_refreshed_first() {
    let withings = withings_answering(new_tokens(NEW_ACCESS, NEW_REFRESH)).times(1);
    let mut env = given_store_expiring_in(3 * 60);
    env.withings(&withings.uri());

    let out = env.run_fast(&["access-token", "--no-env-file"]);

    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout, format!("{NEW_ACCESS}\n"), "only the new access token");
    assert_eq!(env.stored_refresh_token(), NEW_REFRESH, "saved as refresh does");
    withings.verify();
}

#[test]
fn min_ttl_decides_when_a_refresh_comes_first() {
    let withings = withings_answering(new_tokens(NEW_ACCESS, NEW_REFRESH)).times(1);
    let mut env = given_store_expiring_in(3 * 3600);
    env.withings(&withings.uri());

    let kept = env.run_fast(&["access-token", "--min-ttl", "2h"]);
    assert_eq!(kept.stdout, format!("{OLD_ACCESS}\n"), "{kept:?}");
    let refreshed = env.run_fast(&["access-token", "--min-ttl", "4h"]);
    assert_eq!(refreshed.code, 0, "{refreshed:?}");
    assert_eq!(refreshed.stdout, format!("{NEW_ACCESS}\n"), "{refreshed:?}");
    withings.verify();
}
