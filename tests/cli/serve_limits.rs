//! `serve` against clients that hold its connections: half-sent requests
//! beyond the cap, a client that never reads its answers, and floods from
//! one or several addresses starve neither the broker nor a refresh.

use crate::support::*;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------
// connections

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

/// Half-sent requests beyond the open-file limit would make every broker
/// call time out. Here: a soft limit of 128 (the hard one 256), and 230
/// half-sent requests, more than the soft limit and more than the cap
/// (256 - 64 = 192).
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

/// A client that pipelines `count` requests for `path` and reads nothing.
/// Its requests go out from another thread, which
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

/// 2,000 pipelined `GET /metrics` per connection, never read, would hold
/// the connection (and its buffers) for as long as the client liked. An
/// answer that makes no progress for --header-timeout is cut: the client, reading at last, finds far fewer answers than it asked
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

/// A slowloris in small: `count` connections from `source`
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

/// A slowloris from one address (half-sent heads, each reopened when
/// closed) must not keep others out. Here 60 from 127.0.0.1 against 40 connections (a quarter, 10, per address):
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
