//! `serve`'s Withings proxy (`/v1/withings/PATH`): the account's token is
//! the bearer and the consumer's credentials go nowhere, the call and the
//! answer pass through byte for byte, an expired token is refreshed once
//! for every call waiting on it, and the cap, the timeout and the account
//! scope of a named reader hold.

use crate::support::*;

use std::time::Duration;

use wiremock::matchers::{any, header, method, path, query_param};

const READING: &str = "{\"status\":0,\"body\":{\"updatetime\":1700000000,\"measuregrps\":[]}}";
const FORM: &str = "action=getmeas&meastype=1%2C4&lastupdate=1700000000";

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn reading() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(READING, "application/json")
}

#[test]
fn the_token_is_injected_the_consumer_s_credentials_dropped_and_the_call_passed_as_sent() {
    let withings = Upstream::start();
    withings.mount(
        Mock::given(method("POST"))
            .and(path("/measure"))
            .respond_with(reading())
            .expect(1),
    );
    let env = given_fresh_server_user(&withings.uri());
    let server = env.serve(&["--check-interval", "1h"]);
    let reader = bearer(READER_TOKEN);
    let answer = server.post(
        "/v1/withings/measure?action=getmeas&account=default&meastype=1",
        &[
            ("Authorization", &reader),
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Cookie", "session=consumer"),
            ("X-Admin-Token", "not-for-withings"),
            ("Connection", "close, X-Private-Hop"),
            ("X-Private-Hop", "1"),
            ("X-Request-Id", "req-77"),
        ],
        Some(FORM),
    );
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.header("content-type"), Some("application/json"));
    assert_eq!(answer.body, READING);
    withings.verify();
    let sent = &withings.requests()[0];
    assert_eq!(sent.url.query(), Some("action=getmeas&meastype=1"));
    assert_eq!(sent.body, FORM.as_bytes());
    let headers: Vec<(String, String)> = sent
        .headers
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap().to_owned()))
        .collect();
    let values = |name: &str| {
        headers
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect::<Vec<_>>()
    };
    assert_eq!(values("authorization"), [bearer(OLD_ACCESS)]);
    assert_eq!(values("content-type"), ["application/x-www-form-urlencoded"]);
    assert_eq!(values("x-request-id"), ["req-77"]);
    assert_eq!(values("accept-encoding"), ["identity"]);
    for dropped in ["cookie", "x-admin-token", "x-private-hop", "withings-account"] {
        assert_eq!(values(dropped), Vec::<&str>::new(), "{dropped}: {headers:?}");
    }
    assert_no_secret_in(&server.log());
}

#[test]
fn any_answer_comes_back_as_it_came_and_the_header_names_the_account() {
    let withings = Upstream::start();
    let csv = "date,weight\n2026-12-01,71.2\n";
    withings.mount(
        Mock::given(method("GET"))
            .and(path("/v2/export"))
            .and(header("authorization", bearer(OLD_ACCESS).as_str()))
            .respond_with(ResponseTemplate::new(418).set_body_raw(csv, "text/csv; charset=utf-8"))
            .expect(1),
    );
    let env = given_fresh_server_user(&withings.uri());
    let server = env.serve(&["--check-interval", "1h"]);
    let answer = server.get(
        "/v1/withings/v2/export?format=csv",
        &[
            ("Authorization", &bearer(READER_TOKEN)),
            ("Withings-Account", "default"),
        ],
    );
    assert_eq!(answer.status, 418, "{answer:?}");
    assert_eq!(answer.header("content-type"), Some("text/csv; charset=utf-8"));
    assert_eq!(answer.body, csv);
    assert!(
        answer.headers.iter().all(|(_, v)| !v.contains(OLD_ACCESS)),
        "{answer:?}"
    );
    withings.verify();
    assert_eq!(withings.requests()[0].url.query(), Some("format=csv"));
    assert!(withings.requests()[0].headers.get("withings-account").is_none());
}

#[test]
fn a_call_without_a_reader_credential_or_for_another_reader_s_account_sends_nothing() {
    let withings = silent_withings();
    let alice_reader = "mcp-alice-token-0123456789";
    let env = crate::serve_accounts::given_alice_and_her_reader(&withings.uri(), alice_reader);
    let server = env.serve(&["--check-interval", "1h"]);
    let as_alice = bearer(alice_reader);
    let by_query = server.post(
        "/v1/withings/measure?account=default",
        &[("Authorization", &as_alice)],
        Some(FORM),
    );
    let by_header = server.post(
        "/v1/withings/measure",
        &[("Authorization", &as_alice), ("Withings-Account", "default")],
        Some(FORM),
    );
    for refused in [&by_query, &by_header] {
        assert_eq!(refused.status, 403, "{refused:?}");
        assert_eq!(refused.error_code(), "FORBIDDEN");
        assert_no_secret_in(&refused.body);
    }
    let anonymous = server.post("/v1/withings/measure?account=alice", &[], Some(FORM));
    assert_eq!(anonymous.status, 401, "{anonymous:?}");
    let wrong = server.post(
        "/v1/withings/measure",
        &[("Authorization", "Bearer nope-nope-nope")],
        Some(FORM),
    );
    assert_eq!(wrong.status, 401, "{wrong:?}");
    // The log is read as serve writes it: the line may come just after the answer.
    let refusal = "the reader mcp-alice was refused account default (/v1/withings)";
    let logged = wait_until(Duration::from_secs(10), || server.log().contains(refusal));
    assert!(logged, "{}", server.log());
    withings.verify();
}

#[test]
fn forty_proxied_calls_on_an_expired_token_share_one_refresh() {
    let slow = new_tokens(NEW_ACCESS, NEW_REFRESH).set_delay(Duration::from_millis(300));
    let withings = withings_answering(slow).times(1);
    withings.mount(
        Mock::given(method("POST"))
            .and(path("/measure"))
            .and(header("authorization", bearer(NEW_ACCESS).as_str()))
            .respond_with(reading())
            .expect(40),
    );
    let mut env = given_expired_store(&withings.uri());
    env.serve_credentials();
    let server = env.serve(&["--check-interval", "1h"]);
    let reader = bearer(READER_TOKEN);
    let answers = concurrently(40, || {
        server.post(
            "/v1/withings/measure?action=getmeas",
            &[
                ("Authorization", &reader),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            Some(FORM),
        )
    });
    for answer in &answers {
        assert_eq!((answer.status, answer.body.as_str()), (200, READING), "{answer:?}");
    }
    withings.verify();
    assert_eq!(requests_to(&withings, "/v2/oauth2").len(), 1);
    assert_eq!(env.stored_refresh_token(), NEW_REFRESH);
    let said = wait_until(Duration::from_secs(10), || {
        server.log().contains("Token refresh successful")
    });
    assert!(said, "{}", server.log());
    assert_no_secret_in(&server.log());
}

#[test]
fn an_answer_over_the_cap_is_refused_and_one_at_the_cap_passes() {
    let withings = Upstream::start();
    let at_cap = "x".repeat(100);
    let over_cap = "y".repeat(101);
    for (action, body) in [("small", &at_cap), ("big", &over_cap)] {
        withings.mount(
            Mock::given(method("POST"))
                .and(path("/measure"))
                .and(query_param("action", action))
                .respond_with(ResponseTemplate::new(200).set_body_raw(body.as_str(), "text/plain"))
                .expect(1),
        );
    }
    let env = given_fresh_server_user(&withings.uri());
    let server = env.serve(&["--check-interval", "1h", "--proxy-max-bytes", "100"]);
    let reader = bearer(READER_TOKEN);
    let passed = server.post(
        "/v1/withings/measure?action=small",
        &[("Authorization", &reader)],
        Some(FORM),
    );
    assert_eq!(
        (passed.status, passed.body.as_str()),
        (200, at_cap.as_str()),
        "{passed:?}"
    );
    let refused = server.post(
        "/v1/withings/measure?action=big",
        &[("Authorization", &reader)],
        Some(FORM),
    );
    assert_eq!(refused.status, 502, "{refused:?}");
    assert_eq!(refused.error_code(), "ANSWER_TOO_LARGE");
    assert!(!refused.body.contains(&over_cap), "{refused:?}");
    assert_no_secret_in(&refused.body);
    withings.verify();
}

#[test]
fn a_withings_that_does_not_answer_in_time_is_a_504_and_one_unreachable_a_502() {
    let withings = Upstream::start();
    withings.mount(
        Mock::given(any())
            .respond_with(reading().set_delay(Duration::from_secs(5)))
            .expect(1),
    );
    let env = given_fresh_server_user(&withings.uri());
    let server = env.serve(&["--check-interval", "1h", "--proxy-timeout", "300ms"]);
    let reader = bearer(READER_TOKEN);
    let late = server.post(
        "/v1/withings/measure?action=getmeas",
        &[("Authorization", &reader)],
        Some(FORM),
    );
    assert_eq!(late.status, 504, "{late:?}");
    assert_eq!(late.error_code(), "UPSTREAM_TIMEOUT");
    assert_eq!(
        late.json()["error"]["message"],
        "Withings gave no answer within 300 ms; it may or may not have carried the call out"
    );
    assert_no_secret_in(&late.body);
    withings.verify();
    let said = wait_until(Duration::from_secs(10), || {
        server.log().contains("the proxied call to Withings timed out")
    });
    assert!(said, "{}", server.log());
    assert_no_secret_in(&server.log());

    let closed = given_fresh_server_user(&closed_port_url());
    let server = closed.serve(&["--check-interval", "1h"]);
    let unreachable = server.post("/v1/withings/measure", &[("Authorization", &reader)], Some(FORM));
    assert_eq!(unreachable.status, 502, "{unreachable:?}");
    assert_eq!(unreachable.error_code(), "NETWORK_ERROR");
    assert_no_secret_in(&unreachable.body);
    let said = wait_until(Duration::from_secs(10), || {
        server.log().contains("the proxied call to Withings failed")
    });
    assert!(said, "{}", server.log());
    assert_no_secret_in(&server.log());
}

/// A Withings that answers one call with `chunks` of a chunked body (no
/// length announced), then ends it; its address.
fn withings_chunking(chunks: Vec<String>) -> (String, std::thread::JoinHandle<()>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = format!("http://{}", listener.local_addr().expect("addr"));
    let answering = std::thread::spawn(move || {
        let (stream, _) = listener.accept().expect("accept");
        let mut reader = BufReader::new(stream.try_clone().expect("clone"));
        let mut length = 0;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).expect("head");
            if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = value.trim().parse().expect("length");
            }
            if line == "\r\n" {
                break;
            }
        }
        reader.read_exact(&mut vec![0; length]).expect("body");
        let mut stream = stream;
        let mut answer = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n".to_owned();
        for chunk in chunks {
            answer.push_str(&format!("{:x}\r\n{chunk}\r\n", chunk.len()));
        }
        answer.push_str("0\r\n\r\n");
        // The proxy may hang up as soon as it has seen too much.
        let _ = stream.write_all(answer.as_bytes());
    });
    (addr, answering)
}

#[test]
fn an_answer_of_unannounced_length_is_cut_at_the_cap() {
    // Past the first 64 KiB (read before the head is passed on), the body
    // is streamed: the cap cuts it.
    let kib = |n: usize| "z".repeat(n * 1024);
    let (url, answering) = withings_chunking(vec![kib(40), kib(40), kib(40)]);
    let env = given_fresh_server_user(&url);
    let cap = (100 * 1024).to_string();
    let server = env.serve(&["--check-interval", "1h", "--proxy-max-bytes", &cap]);
    let cut = server.post(
        "/v1/withings/measure",
        &[("Authorization", &bearer(READER_TOKEN))],
        Some(FORM),
    );
    answering.join().expect("the fake Withings answered");
    assert_eq!(cut.status, 200, "{}", cut.status);
    assert_eq!(cut.header("transfer-encoding"), Some("chunked"));
    // Never more than the cap, and never the last chunk that says the body is whole.
    let passed = cut.body.matches('z').count();
    assert!((64 * 1024..=100 * 1024).contains(&passed), "{passed} bytes passed");
    assert!(!cut.body.ends_with("0\r\n\r\n"));
}

#[test]
fn a_small_answer_of_unannounced_length_over_the_cap_is_refused_before_anything_is_passed_on() {
    let (url, answering) = withings_chunking(vec!["z".repeat(60), "z".repeat(60)]);
    let env = given_fresh_server_user(&url);
    let server = env.serve(&["--check-interval", "1h", "--proxy-max-bytes", "100"]);
    let refused = server.post(
        "/v1/withings/measure",
        &[("Authorization", &bearer(READER_TOKEN))],
        Some(FORM),
    );
    answering.join().expect("the fake Withings answered");
    assert_eq!(refused.status, 502, "{refused:?}");
    assert_eq!(
        refused.body,
        r#"{"error":{"code":"ANSWER_TOO_LARGE","message":"Withings' answer is larger than the proxy's cap of 100 bytes; nothing of it was passed on","action":"ask for less (a shorter date range, fewer types), or raise `serve --proxy-max-bytes`"}}"#
    );
}

#[test]
fn only_get_and_post_are_sent_and_a_request_body_must_come_whole_and_in_time() {
    let withings = Upstream::start();
    withings.mount(
        Mock::given(any())
            .respond_with(reading())
            .expect(0)
            .named("nothing may reach Withings"),
    );
    let env = given_fresh_server_user(&withings.uri());
    let server = env.serve(&["--check-interval", "1h", "--proxy-timeout", "1s"]);
    let reader = bearer(READER_TOKEN);
    for method in ["PUT", "DELETE", "TRACE", "PATCH"] {
        let refused = request(
            &server.addr,
            method,
            "/v1/withings/measure",
            &[("Authorization", &reader)],
            None,
        );
        assert_eq!(
            (refused.status, refused.error_code().as_str()),
            (405, "METHOD_NOT_ALLOWED"),
            "{method}"
        );
    }
    let twice = server.post(
        "/v1/withings/measure?account=default&account=alice",
        &[("Authorization", &reader)],
        Some(FORM),
    );
    assert_eq!((twice.status, twice.error_code().as_str()), (400, "BAD_REQUEST"));
    // A body announced larger than 1 MiB is refused before any of it is read.
    let announced = raw_exchange(
        &server.addr,
        &format!(
            "POST /v1/withings/measure HTTP/1.1\r\nHost: x\r\nAuthorization: {reader}\r\nContent-Length: 99999999999\r\n\r\n"
        ),
    );
    assert!(announced.starts_with("HTTP/1.1 413"), "{announced}");
    // A body that stops coming is given up on within --proxy-timeout.
    let trickled = raw_exchange(
        &server.addr,
        &format!(
            "POST /v1/withings/measure HTTP/1.1\r\nHost: x\r\nAuthorization: {reader}\r\nContent-Length: 100\r\n\r\naction=get"
        ),
    );
    assert!(trickled.starts_with("HTTP/1.1 408"), "{trickled}");
    assert!(trickled.contains("\"code\":\"REQUEST_TIMEOUT\""), "{trickled}");
    withings.verify();
}

/// Writes `request` as it is, and reads the answer's head and body until
/// the server closes or answers in full.
fn raw_exchange(addr: &str, request: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("connect serve");
    stream.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    stream.write_all(request.as_bytes()).expect("write");
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    while let Ok(n) = stream.read(&mut chunk) {
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&answer);
        if text.contains("\r\n\r\n{") && text.trim_end().ends_with('}') {
            break;
        }
    }
    String::from_utf8_lossy(&answer).into_owned()
}

#[test]
fn with_an_outbound_proxy_variable_set_the_call_goes_through_that_proxy() {
    // Nothing listens at the API URL: only the outbound proxy can answer.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let unreachable = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let outbound = Upstream::start();
    outbound.mount(
        Mock::given(method("POST"))
            .and(path("/measure"))
            .and(header("authorization", bearer(OLD_ACCESS).as_str()))
            .respond_with(reading())
            .expect(1),
    );
    let mut env = given_fresh_server_user(&unreachable);
    env.set("HTTP_PROXY", outbound.uri());
    let server = env.serve(&["--check-interval", "1h"]);
    let reader = bearer(READER_TOKEN);
    let answer = server.post("/v1/withings/measure", &[("Authorization", &reader)], Some(FORM));
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.body, READING);
    outbound.verify();
    let sent = &outbound.requests()[0];
    assert_eq!(sent.url.as_str(), format!("{unreachable}/measure"));
    assert_no_secret_in(&server.log());
}

#[test]
fn an_answer_head_of_a_mebibyte_is_a_clean_502_and_the_next_call_passes() {
    let withings = Upstream::start();
    withings.mount(
        Mock::given(method("POST"))
            .and(path("/measure"))
            .respond_with(reading().insert_header("x-padding", "p".repeat(1024 * 1024).as_str()))
            .up_to_n_times(1),
    );
    withings.mount(
        Mock::given(method("POST"))
            .and(path("/measure"))
            .respond_with(reading()),
    );
    let env = given_fresh_server_user(&withings.uri());
    let server = env.serve(&["--check-interval", "1h"]);
    let reader = bearer(READER_TOKEN);
    let refused = server.post("/v1/withings/measure", &[("Authorization", &reader)], Some(FORM));
    assert_eq!(refused.status, 502, "{}", refused.body);
    assert_eq!(refused.json()["error"]["code"], "UPSTREAM_ERROR", "{}", refused.body);
    assert!(refused.headers.iter().all(|(name, _)| name != "x-padding"));
    let passed = server.post("/v1/withings/measure", &[("Authorization", &reader)], Some(FORM));
    assert_eq!(passed.status, 200, "{}", passed.body);
    assert_eq!(passed.body, READING);
    assert_no_secret_in(&server.log());
}

/// A Withings that reads one request (head and announced body), answers
/// `reply` as it is and closes: the request it read, once it did.
fn raw_withings(reply: &'static [u8]) -> (String, std::thread::JoinHandle<String>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let peer = std::thread::spawn(move || {
        let (mut socket, _) = listener.accept().unwrap();
        let mut request = Vec::new();
        let mut buffer = [0_u8; 4096];
        let whole = |request: &[u8]| {
            let text = String::from_utf8_lossy(request).to_ascii_lowercase();
            let Some((head, body)) = text.split_once("\r\n\r\n") else {
                return false;
            };
            let announced = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length:"))
                .map_or(0, |n| n.trim().parse::<usize>().unwrap());
            body.len() >= announced
        };
        while !whole(&request) {
            let read = socket.read(&mut buffer).unwrap();
            assert!(read > 0, "the proxy closed before its request was whole");
            request.extend_from_slice(&buffer[..read]);
        }
        socket.write_all(reply).unwrap();
        String::from_utf8(request).unwrap()
    });
    (url, peer)
}

#[test]
fn a_write_whose_answer_broke_after_it_was_sent_says_it_may_have_been_done() {
    let (url, withings) = raw_withings(b"HTTP/1.1 200 OK\r\nContent-Le");
    let env = given_fresh_server_user(&url);
    let server = env.serve(&["--check-interval", "1h"]);
    let reader = bearer(READER_TOKEN);
    let answer = server.post(
        "/v1/withings/notify",
        &[("Authorization", &reader)],
        Some("action=subscribe&appli=1"),
    );
    assert_eq!(answer.status, 502, "{answer:?}");
    let error = &answer.json()["error"];
    assert_eq!(error["code"], "UPSTREAM_ERROR");
    assert_eq!(
        error["message"],
        "the connection to Withings broke after the call was sent (request failed (connection closed before message completed)); it may or may not have carried the call out"
    );
    assert_eq!(
        error["action"],
        "try again later; a write (subscribe, revoke) may have been done: check before repeating it"
    );
    assert!(withings.join().unwrap().ends_with("action=subscribe&appli=1"));
    assert!(
        server
            .log()
            .contains("action=subscribe status=502 withings_status=- outcome=unreachable"),
        "{}",
        server.log()
    );
    assert_no_secret_in(&server.log());
}

#[test]
fn a_final_101_from_withings_is_not_passed_on() {
    let (url, withings) =
        raw_withings(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: upgrade\r\n\r\n");
    let env = given_fresh_server_user(&url);
    let server = env.serve(&["--check-interval", "1h"]);
    let reader = bearer(READER_TOKEN);
    let answer = server.post("/v1/withings/measure", &[("Authorization", &reader)], Some(FORM));
    assert_eq!(answer.status, 502, "{answer:?}");
    assert_eq!(answer.error_code(), "UPSTREAM_ERROR");
    assert_eq!(
        answer.json()["error"]["message"],
        "the connection to Withings broke after the call was sent (the answer was HTTP 101 Switching Protocols); it may or may not have carried the call out"
    );
    withings.join().unwrap();
}

#[test]
fn a_call_whose_consumer_went_away_is_audited_as_abandoned() {
    use std::io::Write;
    let withings = Upstream::start();
    withings.mount(
        Mock::given(method("POST"))
            .and(path("/notify"))
            .respond_with(reading().set_delay(Duration::from_secs(5))),
    );
    let env = given_fresh_server_user(&withings.uri());
    let server = env.serve(&["--check-interval", "1h"]);
    let body = "action=subscribe&appli=1";
    let mut consumer = std::net::TcpStream::connect(&server.addr).unwrap();
    let head = format!(
        "POST /v1/withings/notify HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {READER_TOKEN}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    consumer.write_all(head.as_bytes()).unwrap();
    until_asked(&withings);
    drop(consumer);
    let audited = "proxied call: reader=(reader) account=default path=notify action=subscribe status=499 withings_status=- outcome=abandoned";
    assert!(
        wait_until(Duration::from_secs(10), || server.log().contains(audited)),
        "{}",
        server.log()
    );
    let usage = server.admin_get("/admin/usage").json();
    assert_eq!(
        usage["usage"][0]["last_hour"]["outcomes"],
        serde_json::json!({"abandoned": 1})
    );
}

#[test]
fn an_outbound_proxy_s_407_is_a_502_and_its_answer_is_not_passed_on() {
    let outbound = Upstream::start();
    outbound.mount(
        Mock::given(any()).respond_with(ResponseTemplate::new(407).set_body_string("proxy says no to Bearer x")),
    );
    let mut env = given_fresh_server_user(&closed_port_url());
    env.set("HTTP_PROXY", outbound.uri());
    let server = env.serve(&["--check-interval", "1h"]);
    let reader = bearer(READER_TOKEN);
    let answer = server.post("/v1/withings/measure", &[("Authorization", &reader)], Some(FORM));
    assert_eq!(answer.status, 502, "{answer:?}");
    assert_eq!(answer.error_code(), "NETWORK_ERROR");
    assert!(
        answer.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("the outbound proxy (HTTPS_PROXY, HTTP_PROXY or ALL_PROXY) asked for credentials: HTTP 407"),
        "{answer:?}"
    );
    assert!(!answer.body.contains("proxy says no"));
}

#[test]
fn an_answer_header_echoing_the_refresh_token_or_a_credential_is_dropped() {
    let withings = Upstream::start();
    withings.mount(
        Mock::given(method("POST")).and(path("/measure")).respond_with(
            reading()
                .insert_header("x-refresh", format!("echo {OLD_REFRESH}").as_str())
                .insert_header("x-secret", CLIENT_SECRET)
                .insert_header("x-kept", "plain"),
        ),
    );
    let env = given_fresh_server_user(&withings.uri());
    let server = env.serve(&["--check-interval", "1h"]);
    let reader = bearer(READER_TOKEN);
    let answer = server.post("/v1/withings/measure", &[("Authorization", &reader)], Some(FORM));
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.header("x-kept"), Some("plain"));
    assert_eq!(answer.header("x-refresh"), None);
    assert_eq!(answer.header("x-secret"), None);
}
