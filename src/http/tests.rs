use super::*;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread::JoinHandle;

fn client(retries: u32) -> HttpClient {
    HttpClient::new(HttpPolicy {
        timeout: Duration::from_secs(1),
        retries,
        retry_delay: Duration::ZERO,
    })
    .unwrap()
}

#[test]
fn transient_failures_are_retried_then_reported() {
    let calls = AtomicU32::new(0);
    let result: Result<()> = block_on(client(2).with_retries("Withings", || async {
        calls.fetch_add(1, Ordering::SeqCst);
        Verdict::Retry {
            kind: Transient::Upstream,
            detail: "HTTP 500".into(),
            wait: None,
        }
    }))
    .unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    let err = result.unwrap_err();
    assert_eq!(err.code(), "UPSTREAM_ERROR");
    assert!(err.to_string().contains("3 attempt(s)"), "{err}");
}

#[test]
fn a_stop_is_not_retried() {
    let calls = AtomicU32::new(0);
    let result: Result<()> = block_on(client(3).with_retries("Withings", || async {
        calls.fetch_add(1, Ordering::SeqCst);
        Verdict::Stop(Error::InvalidRefreshToken { detail: "no".into() })
    }))
    .unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(result.unwrap_err().exit_code(), 4);
}

#[test]
fn a_long_wait_hint_stops_with_rate_limited() {
    let calls = AtomicU32::new(0);
    let result: Result<()> = block_on(client(3).with_retries("Withings", || async {
        calls.fetch_add(1, Ordering::SeqCst);
        Verdict::Retry {
            kind: Transient::RateLimited,
            detail: "601".into(),
            wait: Some(Duration::from_secs(188)),
        }
    }))
    .unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let err = result.unwrap_err();
    assert_eq!(err.code(), "RATE_LIMITED");
    assert!(err.to_string().contains("188 s"), "{err}");
}

/// A one-shot loopback server: reads a request head, then lets `reply`
/// write the answer; the thread returns the body bytes it wrote.
fn serve_once(reply: impl FnOnce(&mut TcpStream) -> usize + Send + 'static) -> (String, JoinHandle<usize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
            head.push(byte[0]);
        }
        reply(&mut stream)
    });
    (url, server)
}

/// Writes up to 64 MiB of chunked body, stopping when the client hangs up.
fn endless_chunks(stream: &mut TcpStream) -> usize {
    let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
    let mut written = 0;
    if stream.write_all(head.as_bytes()).is_err() {
        return written;
    }
    let chunk = [b'x'; 8192];
    while written < 64 * 1024 * 1024 {
        let framed = [b"2000\r\n".as_slice(), &chunk, b"\r\n"].concat();
        if stream.write_all(&framed).is_err() {
            break;
        }
        written += chunk.len();
    }
    written
}

fn get(http: &HttpClient, url: &str, cap: usize) -> std::result::Result<Answer, SendFailure> {
    block_on(http.send_within(http.inner().unwrap().get(url), cap)).unwrap()
}

#[test]
fn an_endless_answer_is_cut_off_at_the_cap() {
    let (url, server) = serve_once(endless_chunks);
    let failure = get(&client(0), &url, 64 * 1024).err().expect("over the cap");
    assert!(matches!(failure, SendFailure::TooLarge(_)), "{failure}");
    assert_eq!(failure.to_string(), "HTTP 200 with an answer larger than 64 KiB");
    let written = server.join().unwrap();
    assert!(written < 64 * 1024 * 1024, "the client read on: {written} bytes");
}

#[test]
fn an_announced_length_over_the_cap_is_refused_before_reading() {
    let (url, server) = serve_once(|stream| {
        let head = "HTTP/1.1 200 OK\r\nContent-Length: 1073741824\r\n\r\n{";
        let _ = stream.write_all(head.as_bytes());
        // Holds the connection: only the announced length can end the call.
        std::thread::sleep(Duration::from_millis(1500));
        0
    });
    let failure = get(&client(0), &url, 1024 * 1024).err().expect("over the cap");
    assert_eq!(failure.to_string(), "HTTP 200 with an answer larger than 1 MiB");
    server.join().unwrap();
}

#[test]
fn an_answer_within_the_cap_is_read_whole() {
    let (url, server) = serve_once(|stream| {
        let body = r#"{"status":0}"#;
        let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}", body.len());
        stream.write_all(head.as_bytes()).unwrap();
        body.len()
    });
    let answer = get(&client(0), &url, 12).unwrap();
    assert_eq!(answer.body, br#"{"status":0}"#);
    server.join().unwrap();
}

/// A loopback URL where nothing listens: every request fails to connect.
fn closed_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}/", listener.local_addr().unwrap())
}

/// Runs `operation` against a closed port with 2 retries; returns the
/// number of requests built and the error.
fn fail_every_transport(operation: Operation) -> (u32, Error) {
    let http = client(2);
    let url = closed_url();
    let builds = AtomicU32::new(0);
    let result: Result<()> = block_on(http.with_retries("Railway", || {
        http.attempt(
            &operation,
            |client| {
                builds.fetch_add(1, Ordering::SeqCst);
                client.post(url.as_str())
            },
            |_| Verdict::Done(()),
        )
    }))
    .unwrap();
    (builds.load(Ordering::SeqCst), result.unwrap_err())
}

#[test]
fn a_transport_failure_of_an_idempotent_operation_is_retried() {
    let (sent, err) = fail_every_transport(Operation {
        name: "variables",
        idempotent: true,
        resend_oversized: true,
        max_answer: 1024,
        document: (),
    });
    assert_eq!(sent, 3);
    assert_eq!(err.code(), "NETWORK_ERROR");
}

#[test]
fn a_transport_failure_of_a_non_idempotent_operation_is_never_sent_again() {
    let (sent, err) = fail_every_transport(Operation {
        name: "serviceInstanceRedeploy",
        idempotent: false,
        resend_oversized: true,
        max_answer: 1024,
        document: (),
    });
    assert_eq!(sent, 1);
    assert_eq!(err.exit_code(), 5);
    let text = err.to_string();
    assert!(
        text.starts_with(
            "Railway gave no usable answer after 1 attempt(s): serviceInstanceRedeploy got no answer (connection failed"
        ),
        "{text}"
    );
    assert!(
        text.ends_with("it may have been carried out, so it was not sent again: check Railway before repeating it"),
        "{text}"
    );
}

#[test]
fn caps_are_named_in_round_units() {
    assert_eq!(byte_size(64 * 1024), "64 KiB");
    assert_eq!(byte_size(1024 * 1024), "1 MiB");
    assert_eq!(byte_size(1000), "1000 bytes");
}

#[test]
fn a_transport_failure_names_no_url_credential() {
    let http = client(0);
    let url = format!(
        "{}?token=query-secret",
        closed_url().replace("http://", "http://user:pass-secret@")
    );
    let failure = block_on(http.send(http.inner().unwrap().get(&url))).unwrap();
    let text = failure.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(text.starts_with("connection failed ("), "{text}");
    assert!(!text.contains("secret") && !text.contains("user"), "{text}");
}
