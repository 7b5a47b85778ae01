//! `demo`: the whole tour against its own sandbox, from an empty
//! environment, writing nothing into HOME or the working directory.

use crate::support::*;

use std::time::Duration;

// ---------------------------------------------------------------------------
// demo

#[test]
fn demo_exits_0_with_an_empty_environment() {
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    // A hostile .env in the working directory must not be read.
    std::fs::write(
        work.path().join(".env"),
        "WITHINGS_API_URL=http://example.com\nWITHINGS_REFRESH_TOKEN=not-this-one\n",
    )
    .unwrap();
    let out = Run::of(
        assert_cmd::Command::new(BIN)
            .arg("demo")
            .env_clear()
            .env("HOME", home.path())
            .current_dir(work.path())
            .timeout(Duration::from_secs(60)),
    );

    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("demo finished"), "{}", out.stdout);
    // A run that shows everything working warns of nothing, and tells the
    // person to do nothing it does itself.
    for misleading in ["stale copy", "is behind", "Open the URL above"] {
        assert!(!out.stdout.contains(misleading), "{misleading}:\n{}", out.stdout);
        assert!(!out.stderr.contains(misleading), "{misleading}:\n{}", out.stderr);
    }
    assert!(
        out.stdout
            .contains("(the demo plays the browser: it opened the URL above in the sandbox"),
        "{}",
        out.stdout
    );
    assert_eq!(
        out.stdout.matches("│ railway        ┆ updated").count(),
        5,
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("step 8/13: withings-token railway-sync --dry-run"),
        "{}",
        out.stdout
    );
    // The household: a second person's account, then one refresh of both.
    let household = out
        .stdout
        .split("step 11/13: withings-token accounts")
        .nth(1)
        .unwrap_or_default();
    for row in [
        "│ default ┆ 31415926 ┆",
        "│ partner ┆ 27182818 ┆",
        "│ default ┆ refreshed ┆",
        "│ partner ┆ refreshed ┆",
    ] {
        assert!(household.contains(row), "{row}:\n{}", out.stdout);
    }
    assert!(
        !out.stdout.contains("sbx_refresh_"),
        "demo must mask tokens:\n{}",
        out.stdout
    );
    assert_eq!(
        std::fs::read_dir(home.path()).unwrap().count(),
        0,
        "demo wrote into HOME"
    );
    assert_eq!(std::fs::read_dir(work.path()).unwrap().count(), 1);
}
