use super::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A peer that reads one request head, then writes `answer` in `parts`
/// with `pause` between them, and keeps the connection open a while.
async fn peer(parts: Vec<&'static [u8]>, pause: Duration) -> (Url, tokio::task::JoinHandle<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = Url::parse(&format!(
        "http://{}/measure?action=getmeas",
        listener.local_addr().unwrap()
    ))
    .unwrap();
    let task = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut request = Vec::new();
        let mut buffer = [0_u8; 4096];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            let read = socket.read(&mut buffer).await.unwrap();
            assert!(read > 0, "the client closed before its request head was sent");
            request.extend_from_slice(&buffer[..read]);
        }
        for part in parts {
            socket.write_all(part).await.unwrap();
            tokio::time::sleep(pause).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        request
    });
    (url, task)
}

fn direct() -> StreamingClient {
    let client = StreamingClient::new(Duration::from_secs(1)).unwrap();
    assert!(
        matches!(client, StreamingClient::Direct(_)),
        "no proxy variable is set in the tests"
    );
    client
}

/// A GET of `url` by the direct client, within `within`.
async fn get(url: Url, within: Duration) -> std::result::Result<StreamedAnswer, StreamFailure> {
    direct()
        .send(Method::GET, url, HeaderMap::new(), Bytes::new(), within)
        .await
}

async fn whole(body: &mut StreamedBody) -> std::result::Result<Vec<u8>, BoxError> {
    let mut all = Vec::new();
    while let Some(chunk) = next_chunk(body).await? {
        all.extend_from_slice(&chunk);
    }
    Ok(all)
}

#[test]
fn an_answer_streams_back_and_the_request_goes_as_given() {
    runtime().block_on(async {
        let answer: &[u8] =
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n5\r\n{\"sta\r\n";
        let (url, peer) = peer(
            vec![answer, b"d\r\ntus\":0,\"x\":1}\r\n0\r\n\r\n"],
            Duration::from_millis(20),
        )
        .await;
        let mut headers = HeaderMap::new();
        headers.insert("x-consumer", HeaderValue::from_static("mcp"));
        let client = direct();
        let sent = client.send(
            Method::POST,
            url,
            headers,
            Bytes::from_static(b"meastype=1"),
            Duration::from_secs(5),
        );
        let mut answer = sent.await.unwrap();
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(answer.headers[header::CONTENT_TYPE], "application/json");
        assert_eq!(whole(&mut answer.body).await.unwrap(), b"{\"status\":0,\"x\":1}");
        let request = String::from_utf8(peer.await.unwrap()).unwrap().to_ascii_lowercase();
        assert!(
            request.starts_with("post /measure?action=getmeas http/1.1\r\n"),
            "{request}"
        );
        assert!(request.contains("\r\nx-consumer: mcp\r\n"), "{request}");
        assert!(
            request.contains(&format!("\r\nuser-agent: {}\r\n", super::super::USER_AGENT)),
            "{request}"
        );
        assert!(request.contains("\r\ncontent-length: 10\r\n"), "{request}");
        assert!(request.contains("\r\nhost: 127.0.0.1:"), "{request}");
    });
}

#[test]
fn a_body_still_coming_at_the_deadline_ends_with_timed_out() {
    runtime().block_on(async {
        let head: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{\"status\":0";
        let (url, _peer) = peer(vec![head, b"never in time"], Duration::from_secs(3)).await;
        let sent = get(url, Duration::from_millis(300));
        let mut answer = sent.await.unwrap();
        let first = next_chunk(&mut answer.body).await.unwrap().unwrap();
        assert_eq!(&first[..], b"{\"status\":0");
        let error = next_chunk(&mut answer.body).await.unwrap_err();
        assert!(error.is::<TimedOut>(), "{error}");
        assert_eq!(error.to_string(), "the answer did not end within 300 ms");
    });
}

#[test]
fn no_head_within_the_deadline_is_a_timeout() {
    runtime().block_on(async {
        let (url, _peer) = peer(vec![b"HTTP/1.1 200 OK\r\n"], Duration::from_secs(3)).await;
        let sent = get(url, Duration::from_millis(200));
        assert!(matches!(sent.await, Err(StreamFailure::Timeout)));
    });
}

#[test]
fn a_refused_connection_says_so() {
    runtime().block_on(async {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = Url::parse(&format!("http://{}/measure", listener.local_addr().unwrap())).unwrap();
        drop(listener);
        let sent = get(url, Duration::from_secs(2));
        let Err(StreamFailure::Unreachable(text)) = sent.await else {
            panic!("a closed port was reached");
        };
        assert!(text.starts_with("connection failed ("), "{text}");
        assert!(text.contains("refused"), "{text}");
    });
}

#[test]
fn an_answer_head_larger_than_the_read_buffer_is_refused() {
    runtime().block_on(async {
        let head = format!(
            "HTTP/1.1 200 OK\r\nx-padding: {}\r\ncontent-length: 2\r\n\r\n{{}}",
            "p".repeat(1024 * 1024)
        );
        let head: &'static [u8] = Box::leak(head.into_bytes().into_boxed_slice());
        let (url, _peer) = peer(vec![head], Duration::from_millis(10)).await;
        let sent = get(url, Duration::from_secs(2));
        match sent.await {
            Err(StreamFailure::Broken(text)) => assert_eq!(text, "request failed (message head is too large)"),
            Err(StreamFailure::Timeout) => panic!("timed out"),
            Err(StreamFailure::Unreachable(text)) => panic!("not sent: {text}"),
            Ok(answer) => panic!("passed: {} header bytes", answer.headers["x-padding"].len()),
        }
    });
}

/// A body that always has its next bytes ready and never ends.
struct Endless;

impl Body for Endless {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<std::result::Result<Frame<Bytes>, BoxError>>> {
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"x")))))
    }
}

fn paused() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap()
}

#[test]
fn bytes_ready_after_the_deadline_are_not_passed_on_and_the_body_stops_at_its_error() {
    paused().block_on(async {
        let within = Duration::from_secs(1);
        let mut body = Deadlined::new(Endless.boxed(), Instant::now() + within, within).boxed();
        assert_eq!(next_chunk(&mut body).await.unwrap().as_deref(), Some(&b"x"[..]));
        tokio::time::advance(Duration::from_secs(2)).await;
        let error = next_chunk(&mut body).await.unwrap_err();
        assert_eq!(error.to_string(), "the answer did not end within 1 s");
        assert!(
            next_chunk(&mut body).await.unwrap().is_none(),
            "nothing after the error"
        );
        assert!(body.is_end_stream());
    });
}

#[test]
fn a_body_whose_last_bytes_came_in_time_ends_cleanly_after_the_deadline() {
    paused().block_on(async {
        let within = Duration::from_secs(1);
        let whole = Full::new(Bytes::from_static(b"{}"))
            .map_err(|never| match never {})
            .boxed();
        let mut body = Deadlined::new(whole, Instant::now() + within, within).boxed();
        assert_eq!(next_chunk(&mut body).await.unwrap().as_deref(), Some(&b"{}"[..]));
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(next_chunk(&mut body).await.unwrap().is_none());
    });
}

#[test]
fn a_timeout_anywhere_in_the_causes_is_a_timeout() {
    #[derive(Debug, thiserror::Error)]
    #[error("tcp connect error")]
    struct Connect(#[source] std::io::Error);
    let connecting = Connect(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        "deadline has elapsed",
    ));
    assert!(matches!(failure(&connecting, true, "x".into()), StreamFailure::Timeout));
    assert!(matches!(
        failure(&connecting, false, "x".into()),
        StreamFailure::Timeout
    ));
    let refused = Connect(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
    let StreamFailure::Unreachable(text) = failure(&refused, true, "connection failed (refused)".into()) else {
        panic!("a refused connection sent nothing");
    };
    assert_eq!(text, "connection failed (refused)");
    let reset = Connect(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
    let StreamFailure::Broken(text) = failure(&reset, false, "request failed (reset)".into()) else {
        panic!("a call broken after its connection was made may have been sent");
    };
    assert_eq!(text, "request failed (reset)");
}

/// A TLS server on loopback with a self-signed certificate (for
/// `localhost` and 127.0.0.1, test-only key): it answers one handshake.
fn self_signed_server() -> (Url, std::thread::JoinHandle<()>) {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    let certificate = CertificateDer::from(include_bytes!("fixtures/self-signed.der").to_vec());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        include_bytes!("fixtures/self-signed.key.der").to_vec(),
    ));
    let config = rustls::ServerConfig::builder_with_provider(rustls::crypto::ring::default_provider().into())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![certificate], key)
        .unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = Url::parse(&format!("https://{}/measure", listener.local_addr().unwrap())).unwrap();
    let server = std::thread::spawn(move || {
        let (socket, _) = listener.accept().unwrap();
        let connection = rustls::ServerConnection::new(std::sync::Arc::new(config)).unwrap();
        let mut tls = rustls::StreamOwned::new(connection, socket);
        let mut request = [0_u8; 1];
        // The client gives up in the handshake: this read fails.
        assert!(std::io::Read::read(&mut tls, &mut request).is_err());
    });
    (url, server)
}

#[test]
fn a_certificate_no_known_authority_signed_is_refused() {
    runtime().block_on(async {
        let (url, server) = self_signed_server();
        let sent = get(url, Duration::from_secs(5));
        let Err(StreamFailure::Unreachable(text)) = sent.await else {
            panic!("a self-signed certificate was trusted");
        };
        assert_eq!(text, "connection failed (invalid peer certificate: UnknownIssuer)");
        server.join().unwrap();
    });
}
