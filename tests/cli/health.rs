//! `health`: the container's health check, against a running `serve`:
//! exit 0 with its answer when healthy, the server's error and its code
//! when no store can be read, exit 5 when nothing listens, exit 3 without
//! a server named. No credential is sent or needed.

use crate::support::*;

/// A user of the container: only the server's address, nothing stored, no token.
fn given_a_prober(server_url: &str) -> TestEnv {
    let mut prober = TestEnv::new();
    prober.set("WITHINGS_TOKEN_SERVER", server_url);
    prober
}

#[test]
fn a_healthy_server_is_exit_0_with_its_answer() {
    let withings = silent_withings();
    let env = given_fresh_server_user(&withings.uri());
    let server = env.serve(&[]);
    let prober = given_a_prober(&format!("http://{}", server.addr));
    let out = prober.run(&["health", "--json"]);
    assert_eq!((out.code, out.stderr.as_str()), (0, ""), "{out:?}");
    assert_eq!(
        out.json(),
        json!({
            "status": "ok",
            "service": "withings-token",
            "version": env!("CARGO_PKG_VERSION"),
            "token_configured": true,
        })
    );
    let table = prober.run(&["health"]);
    assert_eq!(table.code, 0, "{table:?}");
    for row in ["ok", "withings-token", env!("CARGO_PKG_VERSION"), "yes"] {
        assert!(table.stdout.contains(row), "{row} missing: {table:?}");
    }
    let quiet = prober.run(&["-q", "health"]);
    assert_eq!(
        (quiet.code, quiet.stdout.as_str(), quiet.stderr.as_str()),
        (0, "", ""),
        "{quiet:?}"
    );
}

#[test]
fn a_server_that_cannot_read_its_store_is_its_error_and_exit_3() {
    let withings = silent_withings();
    let env = given_fresh_server_user(&withings.uri());
    let server = env.serve(&[]);
    env.write_store_bytes(b"{not json");
    let out = given_a_prober(&format!("http://{}", server.addr)).run(&["health"]);
    let store = env.store_path().display().to_string();
    assert_eq!(
        (out.code, out.stdout.as_str(), out.stderr.clone()),
        (
            3,
            "",
            format!(
                "error: token store {store} is unreadable: not a withings-token store (key must be a string at line 1 column 2) [CONFIGURATION_ERROR]\n  \
next: inspect or move {store} aside (it was left untouched), then seed it again with `withings-token exchange` or WITHINGS_REFRESH_TOKEN\n"
            )
        ),
    );
}

#[test]
fn nothing_listening_is_exit_5() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let out = given_a_prober(&format!("http://{addr}")).run(&["--retries", "0", "--timeout", "5s", "health"]);
    assert_eq!(
        (out.code, out.stdout.as_str(), out.stderr.as_str()),
        (
            5,
            "",
            "error: could not reach the withings-token server after 1 attempt(s): connection failed (Connection refused (os error 111)) [NETWORK_ERROR]\n  \
next: check that `withings-token serve` runs at the URL --server (or WITHINGS_TOKEN_SERVER) names and listens there (its log says why it stopped), then retry; nothing was changed on this side\n"
        ),
    );
}

#[test]
fn without_a_server_named_it_is_a_configuration_error() {
    let out = TestEnv::new().run(&["health"]);
    assert_eq!((out.code, out.stdout.as_str()), (3, ""), "{out:?}");
    assert_eq!(
        out.stderr,
        "error: health asks a running `withings-token serve`, and no server is named [CONFIGURATION_ERROR]\n  \
next: name the server: `withings-token --server http://127.0.0.1:8080 health` (or set WITHINGS_TOKEN_SERVER)\n"
    );
}
