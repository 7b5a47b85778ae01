//! `serve` under abuse and storms (issue 18, items 8-11, and the trial after
//! them, A-D): a stranger holding half-sent requests or never reading the
//! answers, failures that every caller used to repeat, a loop that never
//! backed off or slept past the token's expiry, a `min_ttl` no token could
//! meet, and a shutdown that blamed Railway's ids.

use crate::support::*;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wiremock::{Request, Respond};

fn broker(server: &ServeProcess) -> Answer {
    server.get(
        "/v1/access-token",
        &[("Authorization", &format!("Bearer {READER_TOKEN}"))],
    )
}

/// How many lines of `log` contain `text`.
fn lines_with(log: &str, text: &str) -> usize {
    log.lines().filter(|line| line.contains(text)).count()
}

// --- item 8: a stranger's half-sent requests ---

/// A connection that sent part of a request head, and will send no more.
fn half_sent(addr: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr).expect("connect serve");
    stream
        .write_all(b"GET /v1/access-token HTTP/1.1\r\nHost: stranger\r\n")
        .expect("write");
    stream
}

/// Whether the server closed `stream` within `deadline` (what it sent
/// before closing, such as a 408, is read and dropped).
fn closed_within(stream: &mut TcpStream, deadline: Duration) -> bool {
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    let started = Instant::now();
    let mut buffer = [0u8; 1024];
    while started.elapsed() < deadline {
        match stream.read(&mut buffer) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return true,
        }
    }
    false
}

/// Sends one whole request on a connection kept alive, and reads its answer.
fn keep_alive_request(addr: &str) -> (TcpStream, String) {
    let mut stream = TcpStream::connect(addr).expect("connect serve");
    stream
        .write_all(format!("GET /health HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
        .expect("write");
    stream.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    let mut answer = Vec::new();
    let mut buffer = [0u8; 1024];
    // The health answer is one small JSON object: read until it is whole.
    while !answer.ends_with(b"}") {
        let n = stream.read(&mut buffer).expect("read the answer");
        assert!(n > 0, "closed before answering");
        answer.extend_from_slice(&buffer[..n]);
    }
    (stream, String::from_utf8(answer).expect("utf-8"))
}

/// The issue's trial: 1,100 half-sent requests against the default 1,024
/// open files made every broker call time out. Here: a soft limit of 128
/// (the hard one 256), and 230 half-sent requests, more than the old limit
/// and more than the new cap (256 - 64 = 192).
#[test]
fn half_sent_requests_beyond_the_cap_starve_neither_the_broker_nor_a_refresh() {
    let withings = withings_rotating(OLD_REFRESH);
    let mut env = given_store_expiring_in(3 * 3600);
    env.withings(&withings.uri()).serve_credentials();
    let server = env.serve_under_sh(
        "ulimit -S -n 128 && ulimit -H -n 256",
        &["--header-timeout", "1s", "--check-interval", "1h"],
    );
    assert!(
        server
            .log()
            .contains("open files: limit raised from 128 to 256; at most 192 connections at once"),
        "{}",
        server.log()
    );
    let mut strangers: Vec<TcpStream> = (0..230).map(|_| half_sent(&server.addr)).collect();

    let answer = broker(&server);
    assert_eq!(answer.status, 200, "{answer:?}\n{}", server.log());
    assert_eq!(answer.json()["access_token"], OLD_ACCESS);
    let refreshed = server.admin_post("/admin/token/refresh", Some(r#"{"update_railway": false}"#));
    assert_eq!(refreshed.status, 200, "{refreshed:?}\n{}", server.log());
    assert_eq!(refreshed.json()["outcome"], "refreshed");
    assert_eq!(env.stored_refresh_token(), NEW_REFRESH);
    withings.verify();

    // Each half-sent request is closed once its head is overdue, the first
    // and the last alike.
    let last = strangers.len() - 1;
    for which in [0, last] {
        assert!(
            closed_within(&mut strangers[which], Duration::from_secs(20)),
            "half-sent request {which} is still open"
        );
    }
    // So is a connection kept alive that sends no next request.
    let (mut idle, answer) = keep_alive_request(&server.addr);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        closed_within(&mut idle, Duration::from_secs(20)),
        "the idle connection is still open"
    );
}

// --- item 9: one failure for every caller ---

/// A refresh token this store rotated away an hour ago (still in Withings'
/// grace, so a refusal of the current one tries it too).
const PREVIOUS_REFRESH: &str = "previous-refresh-def";

/// A server user whose set expires in two minutes (the broker's default
/// `min_ttl` refreshes it; the loop, with `--buffer 1m`, does not) and
/// whose store remembers [`PREVIOUS_REFRESH`].
fn given_an_expiring_set_with_a_previous_token(withings_url: &str) -> TestEnv {
    let mut env = given_store_expiring_in(120);
    let mut store = env.store_json();
    let rotated_at = chrono::Utc::now() - chrono::Duration::hours(1);
    store["previous"] = json!({ "refresh_token": PREVIOUS_REFRESH, "rotated_at": rfc3339(rotated_at) });
    env.write_store_bytes(&serde_json::to_vec_pretty(&store).expect("json"));
    env.withings(withings_url).serve_credentials();
    env
}

#[test]
fn a_refused_token_is_sent_once_for_all_concurrent_broker_calls_and_not_again_until_the_store_changes() {
    let withings = Upstream::start();
    for token in [OLD_REFRESH, PREVIOUS_REFRESH] {
        // Once for the broker, once for the operator's explicit retry.
        withings.mount(refresh_of(token).respond_with(refused_refresh()).expect(2));
    }
    let env = given_an_expiring_set_with_a_previous_token(&withings.uri());
    let server = env.serve(&["--buffer", "1m", "--check-interval", "1h"]);

    let answers = concurrently(10, || broker(&server));
    for answer in answers.iter().chain([broker(&server), broker(&server)].iter()) {
        assert_eq!(
            (answer.status, answer.error_code().as_str()),
            (400, "INVALID_REFRESH_TOKEN"),
            "{answer:?}"
        );
        assert!(answer.json()["error"]["action"].as_str().unwrap().contains("auth-url"));
    }
    assert_eq!(
        withings.requests().len(),
        2,
        "the current token and the previous one, once"
    );
    let later = broker(&server);
    let message = later.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(
        message.contains("it is not sent again until the store holds another set"),
        "{message}"
    );

    // The operator's POST /admin/token/refresh is an explicit retry: sent.
    let retried = server.admin_post("/admin/token/refresh", None);
    assert_eq!(retried.error_code(), "INVALID_REFRESH_TOKEN", "{retried:?}");
    assert_eq!(withings.requests().len(), 4);
    withings.verify();
    let log = server.log();
    assert_eq!(
        lines_with(
            &log,
            "Withings refused the refresh token in use: the broker and the background refresh do not send it again"
        ),
        1,
        "{log}"
    );

    // Re-authorised (here: by hand): the broker refreshes the new set.
    env.seed_store(OLD_ACCESS, "reauthorised-refresh", 120);
    withings.mount(
        refresh_of("reauthorised-refresh")
            .respond_with(new_tokens(NEW_ACCESS, NEW_REFRESH))
            .expect(1),
    );
    let answer = broker(&server);
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.json()["access_token"], NEW_ACCESS);
    assert_eq!(env.stored_refresh_token(), NEW_REFRESH);
    withings.verify();
}

/// The trial: Withings answering 500 made 5 consumers cause 23 requests,
/// the slowest waiting 41.5 s. Four consumers arrive while the first one's
/// refresh is failing; all five get its error, from one refresh's attempts.
#[test]
fn consumers_queued_behind_a_failing_refresh_get_its_error_without_sending_again() {
    let failing = ResponseTemplate::new(500).set_delay(Duration::from_millis(600));
    // --retries 2: one refresh is three attempts.
    let withings = withings_answering(failing).times(3);
    let mut env = given_store_expiring_in(120);
    env.withings(&withings.uri()).serve_credentials();
    let before = env.store_bytes();
    let server = env.serve(&[
        "--retries",
        "2",
        "--retry-delay",
        "0s",
        "--buffer",
        "1m",
        "--check-interval",
        "1h",
    ]);
    let answers = std::thread::scope(|scope| {
        let first = scope.spawn(|| broker(&server));
        until_asked(&withings);
        let mut answers = concurrently(4, || broker(&server));
        answers.push(first.join().expect("first consumer"));
        answers
    });
    for answer in &answers {
        assert_eq!(
            (answer.status, answer.error_code().as_str()),
            (502, "UPSTREAM_ERROR"),
            "{answer:?}"
        );
    }
    assert_eq!(
        withings.requests().len(),
        3,
        "one refresh's attempts for five consumers"
    );
    withings.verify();
    assert_eq!(env.store_bytes(), before, "the stored set is kept");
    assert_eq!(
        lines_with(&server.log(), "Token refresh failed (broker)"),
        1,
        "{}",
        server.log()
    );
}

// --- item 10: the loop backs off ---

#[test]
fn while_withings_fails_the_loop_backs_off_says_so_once_and_once_when_it_recovers() {
    let withings = Upstream::start();
    withings.mount(token_request().respond_with(ResponseTemplate::new(500)));
    let mut env = given_expired_store(&withings.uri());
    env.serve_credentials();
    // The old loop: four requests and four lines per 100 ms tick.
    let server = env.serve(&["--check-interval", "100ms", "--retry-delay", "0s"]);
    std::thread::sleep(Duration::from_secs(3));
    let calls = withings.requests().len();
    // 100 ms doubling to 1.6 s, jittered: at most seven checks in 3 s.
    assert!((2..=10).contains(&calls), "{calls} requests in 3 s:\n{}", server.log());
    let log = server.log();
    assert_eq!(
        lines_with(&log, "the background refresh failed [UPSTREAM_ERROR]"),
        1,
        "{log}"
    );
    assert_eq!(lines_with(&log, "retrying in"), 0, "{log}");
    assert_eq!(lines_with(&log, "Token refresh failed"), 0, "{log}");

    withings.mount(
        token_request()
            .respond_with(new_tokens(NEW_ACCESS, NEW_REFRESH))
            .with_priority(1)
            .expect(1),
    );
    let recovered = wait_until(Duration::from_secs(15), || {
        server.log().contains("the background refresh works again")
    });
    assert!(recovered, "{}", server.log());
    assert_eq!(env.stored_refresh_token(), NEW_REFRESH);
    let log = server.log();
    assert_eq!(lines_with(&log, "the background refresh works again"), 1, "{log}");
    assert_eq!(lines_with(&log, "Token refresh successful"), 1, "{log}");
    assert_eq!(lines_with(&log, "the background refresh failed"), 1, "{log}");
    withings.verify();
}

/// Withings' status 601 asks for a wait; longer than a run waits (60 s),
/// the old loop retried it every tick.
#[test]
fn the_loop_waits_as_long_as_withings_asks() {
    let slow_down = ResponseTemplate::new(200).set_body_json(json!({
        "status": 601,
        "body": { "wait_seconds": 120 },
        "error": "Same arguments in less than 10 seconds",
    }));
    let withings = withings_answering(slow_down).times(1);
    let mut env = given_expired_store(&withings.uri());
    env.serve_credentials();
    let server = env.serve(&["--check-interval", "100ms"]);
    until_asked(&withings);
    std::thread::sleep(Duration::from_secs(2));
    withings.verify();
    let log = server.log();
    assert_eq!(
        lines_with(&log, "the background refresh failed [RATE_LIMITED]"),
        1,
        "{log}"
    );
    assert!(log.contains("next check in 120 s"), "{log}");
}

// --- item 11: a min_ttl no token could meet ---

/// A Withings that honours only the refresh token it issued last (the
/// store's at first), as Withings does once a new token was used, and
/// issues sets that live `lifetime_secs`: `chain-access-<n>`, `chain-refresh-<n>`.
struct Chain {
    current: Mutex<String>,
    issued: AtomicU64,
    lifetime_secs: i64,
}

struct ChainAnswers(Arc<Chain>);

impl Respond for ChainAnswers {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let body = String::from_utf8_lossy(&request.body);
        let sent = body.split('&').find_map(|pair| pair.strip_prefix("refresh_token="));
        let mut current = self.0.current.lock().expect("chain");
        if sent != Some(current.as_str()) {
            return refused_refresh();
        }
        let n = self.0.issued.fetch_add(1, Ordering::SeqCst) + 1;
        *current = format!("chain-refresh-{n}");
        let answer = token_body(&format!("chain-access-{n}"), &current, self.0.lifetime_secs);
        ResponseTemplate::new(200).set_body_json(answer)
    }
}

fn withings_chain(first: &str, lifetime_secs: i64) -> (Upstream, Arc<Chain>) {
    let chain = Arc::new(Chain {
        current: Mutex::new(first.to_owned()),
        issued: AtomicU64::new(0),
        lifetime_secs,
    });
    let withings = Upstream::start();
    withings.mount(token_request().respond_with(ChainAnswers(Arc::clone(&chain))));
    (withings, chain)
}

impl Chain {
    fn issued(&self) -> u64 {
        self.issued.load(Ordering::SeqCst)
    }

    fn current(&self) -> String {
        self.current.lock().expect("chain").clone()
    }
}

/// Tokens that live 4 minutes, the broker's default `min_ttl` of 5: every
/// call rotated (two calls, two rotations, each pushed to the copies).
#[test]
fn two_broker_calls_on_tokens_that_live_less_than_min_ttl_rotate_once() {
    let (withings, chain) = withings_chain(OLD_REFRESH, 240);
    let mut env = given_store_expiring_in(90);
    let mut store = env.store_json();
    let expires = chrono::Utc::now() + chrono::Duration::seconds(90);
    store["tokens"]["expires_at"] = json!(rfc3339(expires));
    store["tokens"]["last_refreshed"] = json!(rfc3339(expires - chrono::Duration::minutes(4)));
    env.write_store_bytes(&serde_json::to_vec_pretty(&store).expect("json"));
    env.withings(&withings.uri()).serve_credentials();
    let generation = env.generation();
    let server = env.serve(&["--buffer", "30s", "--check-interval", "1h"]);
    for round in 1..=2 {
        let answer = broker(&server);
        assert_eq!(answer.status, 200, "round {round}: {answer:?}");
        assert_eq!(answer.json()["access_token"], "chain-access-1", "round {round}");
    }
    assert_eq!(chain.issued(), 1, "{}", server.log());
    assert_eq!(env.generation(), generation + 1);
    assert_eq!(
        env.stored_refresh_token(),
        chain.current(),
        "the peer's live token is stored"
    );
    assert_eq!(
        lines_with(
            &server.log(),
            "min_ttl 5m is more than half the token's lifetime (4m): 2m is used"
        ),
        1,
        "{}",
        server.log()
    );
}

/// `access-token --min-ttl 4h` on Withings' 3 h tokens rotated on every
/// run; capped to 1h30m, a set with an hour left rotates once.
#[test]
fn two_access_token_runs_with_a_min_ttl_beyond_the_lifetime_rotate_once() {
    let (withings, chain) = withings_chain(OLD_REFRESH, 3 * 3600);
    let env = given_expired_store(&withings.uri());
    env.seed_store(OLD_ACCESS, OLD_REFRESH, 3600);
    let generation = env.generation();
    let runs: Vec<Run> = (0..2)
        .map(|_| env.run(&["access-token", "--min-ttl", "4h", "--no-railway"]))
        .collect();
    for run in &runs {
        assert_eq!((run.code, run.stdout.as_str()), (0, "chain-access-1\n"), "{run:?}");
    }
    assert_eq!(chain.issued(), 1);
    assert_eq!(env.generation(), generation + 1);
    assert_eq!(
        env.stored_refresh_token(),
        chain.current(),
        "the peer's live token is stored"
    );
    // Each run (one process) says it once.
    for run in &runs {
        assert_eq!(
            lines_with(
                &run.stderr,
                "warning: --min-ttl 4h is more than half the token's lifetime (3h): 1h30m is used, so that a token just issued is not refreshed again on every call"
            ),
            1,
            "{run:?}"
        );
    }
}

// --- the trial after items 8-11, A: strangers who never finish or never read ---

/// A client that pipelines `count` requests for `path` and reads nothing:
/// the trial's `noread.py`. Its requests go out from another thread, which
/// stops when the server stops reading or closes.
fn pipelined_and_unread(addr: &str, path: &str, count: usize) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect serve");
    let mut writer = stream.try_clone().expect("clone");
    let requests = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").repeat(count);
    std::thread::spawn(move || {
        let _ = writer.write_all(requests.as_bytes());
    });
    stream
}

/// Reads `stream` until it ends (EOF or reset) or `deadline` passes with
/// nothing new; how many answers came and whether it ended.
fn answers_until_closed(stream: &mut TcpStream, deadline: Duration) -> (usize, bool) {
    stream.set_read_timeout(Some(deadline)).expect("timeout");
    let mut text = Vec::new();
    let mut buffer = vec![0u8; 64 * 1024];
    let ended = loop {
        match stream.read(&mut buffer) {
            Ok(0) => break true,
            Ok(n) => text.extend_from_slice(&buffer[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break false,
            Err(_) => break true,
        }
    };
    let answers = String::from_utf8_lossy(&text).matches("HTTP/1.1 200 OK").count();
    (answers, ended)
}

/// The trial's `noread.py`: 2,000 pipelined `GET /metrics` per connection,
/// never read, held the connection (and its buffers) for as long as the
/// client liked. An answer that makes no progress for --header-timeout is
/// cut: the client, reading at last, finds far fewer answers than it asked
/// for, and the connection closed.
#[test]
fn a_client_that_never_reads_its_answers_is_cut_after_the_header_timeout() {
    let withings = silent_withings();
    let mut env = given_store_expiring_in(3 * 3600);
    env.withings(&withings.uri()).serve_credentials();
    let server = env.serve(&["--header-timeout", "1s", "--check-interval", "1h"]);
    // Far more answer bytes than the kernel's buffers hold.
    let asked = 20_000;
    let mut stream = pipelined_and_unread(&server.addr, "/metrics", asked);
    // Not reading for three header timeouts.
    std::thread::sleep(Duration::from_secs(3));
    let (answers, ended) = answers_until_closed(&mut stream, Duration::from_secs(20));
    assert!(ended, "the connection is still open after {answers} answers");
    assert!(
        answers < asked,
        "all {asked} answers were kept for a client that did not read them"
    );
    // The server itself is fine.
    assert_eq!(server.get("/health", &[]).status, 200);
    withings.verify();
}

/// Connects to `addr` from the loopback address `source` (Linux routes all
/// of 127.0.0.0/8 on `lo`), as another host would.
fn connect_from(source: &str, addr: &str) -> TcpStream {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let source: std::net::SocketAddr = format!("{source}:0").parse().expect("source");
    let addr: std::net::SocketAddr = addr.parse().expect("addr");
    let stream = runtime
        .block_on(async {
            let socket = tokio::net::TcpSocket::new_v4()?;
            socket.bind(source)?;
            socket.connect(addr).await?.into_std()
        })
        .expect("connect from another loopback address");
    stream.set_nonblocking(false).expect("blocking");
    stream
}

/// `GET /health` on `stream`: the status line, or why none came within 5 s
/// (longer than a flood takes to be dealt with, half the header timeout
/// that frees a stranger's slots by itself).
fn health_on(mut stream: TcpStream) -> Result<String, String> {
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: serve\r\nConnection: close\r\n\r\n")
        .map_err(|e| format!("write: {e}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    let mut answer = Vec::new();
    match stream.read_to_end(&mut answer) {
        Ok(_) if !answer.is_empty() => {}
        Ok(_) => return Err("closed without an answer".into()),
        Err(e) => return Err(format!("no answer within 5 s ({e})")),
    }
    let text = String::from_utf8_lossy(&answer);
    Ok(text.lines().next().unwrap_or_default().to_owned())
}

/// The trial's `loris2.py` in small: `count` connections from `source`
/// that send part of a request head and no more, each reopened as soon as
/// the server closes it, until `stop`. `opened` counts the first openings.
fn flood(addr: &str, source: &str, count: usize, stop: &AtomicBool, opened: &AtomicUsize) {
    let open = || {
        let mut stream = connect_from(source, addr);
        stream
            .write_all(b"GET /v1/access-token HTTP/1.1\r\nHost: stranger\r\n")
            .expect("write");
        stream.set_nonblocking(true).expect("non-blocking");
        stream
    };
    let mut strangers: Vec<TcpStream> = Vec::new();
    for _ in 0..count {
        strangers.push(open());
        opened.fetch_add(1, Ordering::SeqCst);
    }
    let mut buffer = [0u8; 256];
    while !stop.load(Ordering::SeqCst) {
        for stranger in &mut strangers {
            let closed = match stranger.read(&mut buffer) {
                Ok(0) => true,
                Ok(_) => false,
                Err(e) => e.kind() != ErrorKind::WouldBlock,
            };
            if closed && !stop.load(Ordering::SeqCst) {
                *stranger = open();
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `serve` on a fresh set, at most 40 connections (10 per address), a
/// Withings that must not be asked.
fn a_server_of_40_connections() -> (Upstream, TestEnv, ServeProcess) {
    let withings = silent_withings();
    let mut env = given_store_expiring_in(3 * 3600);
    env.withings(&withings.uri()).serve_credentials();
    let server = env.serve(&[
        "--max-connections",
        "40",
        "--header-timeout",
        "10s",
        "--check-interval",
        "1h",
    ]);
    (withings, env, server)
}

/// The trial's slowloris from one address (6,000 half-sent heads, each
/// reopened when closed) kept `/health` from answering within 30 s. Here
/// 60 from 127.0.0.1 against 40 connections (a quarter, 10, per address):
/// a request from 127.0.0.2 gets in at once, and so does one from the
/// flooding address itself (its oldest half-sent connection makes room).
#[test]
fn a_flood_of_half_sent_heads_from_one_address_starves_neither_another_address_nor_itself() {
    let (withings, _env, server) = a_server_of_40_connections();
    let stop = AtomicBool::new(false);
    let opened = AtomicUsize::new(0);
    let (elsewhere, same_address) = std::thread::scope(|scope| {
        scope.spawn(|| flood(&server.addr, "127.0.0.1", 60, &stop, &opened));
        let flooded = wait_until(Duration::from_secs(10), || opened.load(Ordering::SeqCst) == 60);
        let elsewhere = health_on(connect_from("127.0.0.2", &server.addr));
        let same_address = health_on(TcpStream::connect(&server.addr).expect("connect"));
        stop.store(true, Ordering::SeqCst);
        assert!(flooded, "the flood never opened its connections");
        (elsewhere, same_address)
    });
    assert_eq!(
        elsewhere,
        Ok("HTTP/1.1 200 OK".to_owned()),
        "from 127.0.0.2:\n{}",
        server.log()
    );
    assert_eq!(
        same_address,
        Ok("HTTP/1.1 200 OK".to_owned()),
        "from 127.0.0.1:\n{}",
        server.log()
    );
    assert!(
        server
            .log()
            .contains("at most 40 connections at once, 10 from one address"),
        "{}",
        server.log()
    );
    assert_eq!(
        lines_with(
            &server.log(),
            "127.0.0.1 holds 10 connections, its share: each new one closes its oldest that has not sent a whole request head"
        ),
        1,
        "{}",
        server.log()
    );
    withings.verify();
}

/// Floods from four addresses, each within its share, fill every slot:
/// the oldest half-sent connection of any address makes room for a request
/// from a fifth, instead of that request waiting for a header timeout.
#[test]
fn floods_from_several_addresses_that_fill_every_slot_still_let_a_request_in() {
    let (withings, _env, server) = a_server_of_40_connections();
    let sources = ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"];
    let stop = AtomicBool::new(false);
    let opened = AtomicUsize::new(0);
    let answer = std::thread::scope(|scope| {
        for source in sources {
            let (addr, stop, opened) = (&server.addr, &stop, &opened);
            scope.spawn(move || flood(addr, source, 12, stop, opened));
        }
        let flooded = wait_until(Duration::from_secs(20), || opened.load(Ordering::SeqCst) == 48);
        let answer = health_on(connect_from("127.0.0.9", &server.addr));
        stop.store(true, Ordering::SeqCst);
        assert!(flooded, "the floods never opened their connections");
        answer
    });
    assert_eq!(
        answer,
        Ok("HTTP/1.1 200 OK".to_owned()),
        "from 127.0.0.9:\n{}",
        server.log()
    );
    withings.verify();
}

// --- B: a wait Withings asks for, against the token's expiry ---

/// Withings' status 601 asking for a wait of `seconds`.
fn asks_to_wait(seconds: u64) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "status": 601,
        "body": { "wait_seconds": seconds },
        "error": "Same arguments in less than 10 seconds",
    }))
}

const YEARS: u64 = 1_000_000_000_000;

/// The trial: `wait_seconds: 10^12` made the loop say "next check in
/// 3600 s, then less often while it fails (at most 16 s apart)" and sleep
/// past the token's expiry. The set here expires in 5 min 15 s: the next
/// check comes when 5 min are left, and the line says why it comes then.
#[test]
fn a_wait_withings_asks_for_never_puts_the_next_check_past_the_tokens_expiry() {
    let withings = Upstream::start();
    withings.mount(token_request().respond_with(asks_to_wait(YEARS)));
    let mut env = given_store_expiring_in(5 * 60 + 15);
    env.withings(&withings.uri()).serve_credentials();
    let server = env.serve(&["--buffer", "10m", "--check-interval", "1s"]);
    let checked_again = wait_until(Duration::from_secs(40), || withings.requests().len() >= 2);
    assert!(checked_again, "{}", server.log());
    let log = server.log();
    let line = log
        .lines()
        .find(|line| line.contains("the background refresh failed [RATE_LIMITED]"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(
        line.contains(&format!(
            "Withings asked to wait {YEARS} s: cut to 300 s before the access token expires at "
        )),
        "{line}"
    );
    assert!(!line.contains("next check in 3600 s"), "{line}");
}

/// The broker passed Withings' `Retry-After: 1000000000000` on to its
/// consumers.
#[test]
fn the_broker_never_tells_a_consumer_to_wait_longer_than_an_hour() {
    let withings = withings_answering(asks_to_wait(YEARS)).times(1);
    let mut env = given_store_expiring_in(120);
    env.withings(&withings.uri()).serve_credentials();
    let server = env.serve(&["--buffer", "1m", "--check-interval", "1h"]);
    let answer = broker(&server);
    assert_eq!(
        (answer.status, answer.error_code().as_str()),
        (503, "RATE_LIMITED"),
        "{answer:?}"
    );
    let retry_after: u64 = answer
        .header("retry-after")
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{answer:?}"));
    assert!((1..=3600).contains(&retry_after), "Retry-After: {retry_after}");
    withings.verify();
}

// --- C: broker refreshes back off with the loop ---

/// The trial: while Withings answered 500, 300 broker calls in 30 s caused
/// 20 Withings requests. After a failed refresh, callers get its error at
/// once, with the time left of the backoff as `Retry-After`, until it
/// ends; an operator's POST /admin/token/refresh is sent all the same.
#[test]
fn after_a_failed_refresh_broker_calls_get_its_error_at_once_until_the_backoff_ends() {
    let withings = Upstream::start();
    withings.mount(token_request().respond_with(ResponseTemplate::new(500)));
    let mut env = given_store_expiring_in(120);
    env.withings(&withings.uri()).serve_credentials();
    let before = env.store_bytes();
    let server = env.serve(&["--retries", "0", "--buffer", "1m", "--check-interval", "1h"]);

    let first = broker(&server);
    assert_eq!(
        (first.status, first.error_code().as_str()),
        (502, "UPSTREAM_ERROR"),
        "{first:?}"
    );
    let held: Vec<Answer> = (0..20).map(|_| broker(&server)).collect();
    for answer in &held {
        assert_eq!(
            (answer.status, answer.error_code().as_str()),
            (502, "UPSTREAM_ERROR"),
            "{answer:?}"
        );
        let retry_after: u64 = answer
            .header("retry-after")
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("{answer:?}"));
        assert!((1..=10).contains(&retry_after), "Retry-After: {retry_after}");
        let message = answer.json()["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(message.contains("not sent again before"), "{message}");
    }
    assert_eq!(withings.requests().len(), 1, "one refresh for 21 broker calls");
    assert_eq!(env.store_bytes(), before);

    // The operator's explicit retry is sent.
    let retried = server.admin_post("/admin/token/refresh", None);
    assert_eq!(retried.error_code(), "UPSTREAM_ERROR", "{retried:?}");
    assert_eq!(withings.requests().len(), 2);

    // Withings is back: once the backoff ends, a broker call refreshes.
    withings.mount(
        token_request()
            .respond_with(new_tokens(NEW_ACCESS, NEW_REFRESH))
            .with_priority(1)
            .expect(1),
    );
    let refreshed = wait_until(Duration::from_secs(60), || {
        std::thread::sleep(Duration::from_millis(250));
        broker(&server).status == 200
    });
    assert!(refreshed, "{}", server.log());
    assert_eq!(env.stored_refresh_token(), NEW_REFRESH);
    withings.verify();
}

// --- D: a shutdown during the Railway push ---

/// The trial: SIGTERM while a refresh was in flight left the Railway push
/// after the save failing with "interrupted by signal 15 before Withings
/// answered" (Withings had answered; the set was saved), and an action to
/// fix Railway's ids.
#[test]
fn a_railway_push_cut_by_shutdown_says_the_set_is_saved_and_how_railway_catches_up() {
    let slow = new_tokens(NEW_ACCESS, NEW_REFRESH).set_delay(Duration::from_millis(1500));
    let withings = withings_answering(slow).times(1);
    withings.mount(
        gql("variableCollectionUpsert")
            .respond_with(ResponseTemplate::new(200))
            .expect(0),
    );
    let mut env = given_store_expiring_in(3 * 3600);
    env.withings(&withings.uri())
        .serve_credentials()
        .set("RAILWAY_API_URL", format!("{}{GRAPHQL}", withings.uri()))
        .set("RAILWAY_TOKEN", "project-token-secret-ppp")
        .set("RAILWAY_PROJECT_ID", "proj-1111")
        .set("RAILWAY_SERVICE_ID", "svc-2222")
        .set("RAILWAY_ENVIRONMENT_ID", "env-3333");
    let mut server = env.serve(&["--check-interval", "1h"]);
    let answer = std::thread::scope(|scope| {
        let client = scope.spawn(|| server.admin_post("/admin/token/refresh", None));
        until_asked(&withings);
        server.signal("-TERM");
        client.join().expect("client")
    });
    assert_eq!(answer.status, 200, "{answer:?}\n{}", server.log());
    assert_eq!(answer.json()["outcome"], "refreshed");
    let railway = &answer.json()["railway_error"];
    assert_eq!(railway["code"], "INTERRUPTED", "{answer:?}");
    assert_eq!(
        railway["message"],
        "interrupted by signal 15 before Railway answered (the token set is saved in the store); nothing more was sent to Railway"
    );
    assert_eq!(
        railway["action"],
        "nothing is lost: the next `withings-token refresh --if-needed` (or `withings-token railway-sync`) brings Railway up to date"
    );
    let status = server.wait(Duration::from_secs(10)).expect("serve did not stop");
    assert_eq!(status.code(), Some(0), "{status:?}\n{}", server.log());
    assert_eq!(env.stored_refresh_token(), NEW_REFRESH, "the answer was saved");
    assert!(!server.log().contains("RAILWAY_PROJECT_ID"), "{}", server.log());
    withings.verify();
}
