//! A fake Withings: a wiremock server on loopback ([`Upstream`]) and the
//! answers the tests mount on it.

use super::*;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use wiremock::matchers::{any, body_string_contains, method, path};
use wiremock::{MockServer, Request, Respond};

/// A wiremock server on its own runtime, standing in for Withings (and in
/// the Railway tests for Railway too). Each mock's `expect` is checked by
/// [`Upstream::verify`], and again when the server drops.
pub struct Upstream {
    // Field order matters: the server drops before its runtime.
    server: MockServer,
    rt: tokio::runtime::Runtime,
}

impl Upstream {
    pub fn start() -> Upstream {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let server = rt.block_on(MockServer::start());
        Upstream { server, rt }
    }

    pub fn uri(&self) -> String {
        self.server.uri()
    }

    pub fn mount(&self, mock: Mock) {
        self.rt.block_on(mock.mount(&self.server));
    }

    /// Every request received, in order.
    pub fn requests(&self) -> Vec<Request> {
        self.rt
            .block_on(self.server.received_requests())
            .expect("request recording is on")
    }

    pub fn verify(&self) {
        self.rt.block_on(self.server.verify());
    }
}

/// A POST to Withings' token endpoint.
pub fn token_request() -> MockBuilder {
    Mock::given(method("POST")).and(path("/v2/oauth2"))
}

/// A POST to the token endpoint that sends `refresh_token`.
pub fn refresh_of(refresh_token: &str) -> MockBuilder {
    token_request().and(body_string_contains(format!("refresh_token={refresh_token}")))
}

/// A Withings success body.
pub fn token_body(access: &str, refresh: &str, expires_in: i64) -> Value {
    json!({
        "status": 0,
        "body": {
            "userid": "363",
            "access_token": access,
            "refresh_token": refresh,
            "expires_in": expires_in,
            "scope": "user.info,user.metrics",
            "csrf_token": "csrf",
            "token_type": "Bearer",
        }
    })
}

/// Withings issuing `access` / `refresh`, valid for 3 h.
pub fn new_tokens(access: &str, refresh: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(token_body(access, refresh, 10800))
}

/// Withings refusing the refresh token (its status 503 on HTTP 200).
pub fn refused_refresh() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "status": 503,
        "body": {},
        "error": "Invalid Params: invalid refresh_token",
    }))
}

/// A Withings that must not be called: any request fails `verify`.
pub fn silent_withings() -> Upstream {
    let withings = Upstream::start();
    withings.mount(
        Mock::given(any())
            .respond_with(new_tokens("a-never", "r-never"))
            .expect(0)
            .named("no request may reach Withings"),
    );
    withings
}

/// A Withings that answers every token request with `answer`; say how many
/// it must receive with [`Answering::times`].
pub fn withings_answering(answer: ResponseTemplate) -> Answering {
    Answering(token_request().respond_with(answer))
}

pub struct Answering(Mock);

impl Answering {
    /// Exactly `n` token requests, checked by `verify` and on drop.
    pub fn times(self, n: u64) -> Upstream {
        let withings = Upstream::start();
        withings.mount(self.0.expect(n));
        withings
    }
}

/// A Withings that rotates `refresh_token` into [`NEW_ACCESS`] /
/// [`NEW_REFRESH`], once.
pub fn withings_rotating(refresh_token: &str) -> Upstream {
    let withings = Upstream::start();
    withings.mount(
        refresh_of(refresh_token)
            .respond_with(new_tokens(NEW_ACCESS, NEW_REFRESH))
            .expect(1),
    );
    withings
}

/// A Withings stand-in that accepts any refresh token (as Withings does for a
/// rotated token during its grace period) and issues a new pair each time:
/// `mock-access-<n>` / `mock-refresh-<n>`, `n` counted in `issued` from 1.
pub struct Rotating {
    pub issued: Arc<AtomicU64>,
}

impl Respond for Rotating {
    fn respond(&self, _request: &Request) -> ResponseTemplate {
        let n = self.issued.fetch_add(1, Ordering::SeqCst) + 1;
        new_tokens(&format!("mock-access-{n}"), &format!("mock-refresh-{n}"))
    }
}

/// A Withings that honours any refresh token ([`Rotating`]); also returns
/// how many sets it issued.
pub fn withings_always_rotating() -> (Upstream, Arc<AtomicU64>) {
    let withings = Upstream::start();
    let issued = Arc::new(AtomicU64::new(0));
    withings.mount(token_request().respond_with(Rotating { issued: issued.clone() }));
    (withings, issued)
}

/// `http://` and a loopback port where nothing listens.
pub fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

pub fn requests_to(peer: &Upstream, route: &str) -> Vec<Request> {
    peer.requests().into_iter().filter(|r| r.url.path() == route).collect()
}

/// 5 MB of JSON-looking bytes: far over either cap, quick to serve.
pub fn huge_answer() -> ResponseTemplate {
    let mut body = b"{\"status\":0,\"pad\":\"".to_vec();
    body.resize(5 * 1024 * 1024, b'x');
    ResponseTemplate::new(200).set_body_raw(body, "application/json")
}

/// Waits (at most 10 s) until `withings` has received one request.
pub fn until_asked(withings: &Upstream) {
    assert!(
        wait_until(Duration::from_secs(10), || withings.requests().len() == 1),
        "the run asked Withings"
    );
}

/// Runs `args` on `env` and, once `withings` (which must delay its answer)
/// has the request, does `meanwhile`; returns the finished run.
pub fn while_withings_answers(
    env: &TestEnv,
    args: &[&str],
    withings: &Upstream,
    meanwhile: impl FnOnce(),
) -> std::process::Output {
    let child = env.spawn(args);
    until_asked(withings);
    meanwhile();
    child.wait_with_output().expect("wait")
}
