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
        out.stdout.contains("step 8/15: withings-token railway-sync --dry-run"),
        "{}",
        out.stdout
    );
    // The household: a second person's account, then one refresh of both.
    let household = out
        .stdout
        .split("step 11/15: withings-token accounts")
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
    // A consumer reads the latest weight as Withings' JSON, with the
    // account's token, then through `serve` with a reader token only.
    let weight = concat!(
        r#"{"status":0,"body":{"measuregrps":[{"attrib":0,"category":1,"comment":null,"created":1796277660,"date":1796277600,"#,
        r#""deviceid":"sbx-scale-31415926","grpid":314159262,"hash_deviceid":"sbx-scale-31415926","#,
        r#""measures":[{"algo":0,"fm":1,"type":1,"unit":-3,"value":72100}],"model":"Body+","modelid":5,"#,
        r#""modified":1796277660}],"more":0,"offset":0,"timezone":"Europe/Paris","updatetime":1796277660}}"#,
    );
    let call = "api getmeas measure meastype=1 startdate=1796277600 --account default --json\n";
    let local = format!(
        "\n== step 14/15: withings-token {call}{weight}\n== step 15/15: withings-token --server http://127.0.0.1:"
    );
    assert!(out.stdout.contains(&local), "{}", out.stdout);
    let (_, proxied) = out.stdout.split_once(&local).unwrap();
    let (port, rest) = proxied.split_once(' ').unwrap();
    assert!(port.parse::<u16>().is_ok(), "{}", out.stdout);
    let server = format!("http://127.0.0.1:{port}");
    assert_eq!(
        rest,
        format!(
            "{call}(the demo started `withings-token serve` on loopback; this step holds only a reader token \
(WITHINGS_TOKEN_READER_TOKEN), no Withings token: the server adds the account's. With curl: \
`curl -s -H \"Authorization: Bearer $WITHINGS_TOKEN_READER_TOKEN\" -d action=getmeas -d meastype=1 '{server}/v1/withings/measure?account=default'`)\n\
{weight}\ndemo finished: every step exited 0. Try it for real: see README \"Quick start\".\n"
        )
    );
    assert!(!out.stdout.contains("sbx_access_"), "{}", out.stdout);
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
