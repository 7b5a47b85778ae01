//! The client of `serve`'s Withings proxy: one request, its answer's body
//! streamed as it comes, under one deadline for the head and the body.
//!
//! Not the shared reqwest client, for memory: a consumer slower than
//! Withings leaves the client's read buffer full, and hyper lets that
//! buffer grow to ~400 KiB per connection, which reqwest 0.12 cannot
//! lower; 50 consumers of a 20 MiB answer then held ~40 MiB. This one is
//! hyper's own client (the same hyper, rustls, ring and webpki roots as
//! reqwest) with the buffer capped at [`READ_BUFFER`].
//!
//! reqwest is kept where it does what this one does not: when an
//! `HTTP(S)_PROXY`/`ALL_PROXY` variable asks for an outbound proxy, the
//! calls go through reqwest, which honours them (and `NO_PROXY`).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, SizeHint};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode, Url};
use tokio::time::{Instant, Sleep};

use crate::duration::humanize;
use crate::redact::visible;

/// The most one upstream read takes into memory (hyper's floor is 8 KiB):
/// what a slow stream holds is about two of them.
pub const READ_BUFFER: usize = 64 * 1024;
/// How often an idle upstream connection is probed by the kernel (reqwest's).
const TCP_KEEPALIVE: Duration = Duration::from_secs(15);
/// How long an idle upstream connection is kept for the next call.
const IDLE_KEPT: Duration = Duration::from_secs(90);

/// An error of a streamed body, as the server passes it on (it cuts the
/// consumer's connection).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// An answer's body, whichever client read it.
pub type StreamedBody = BoxBody<Bytes, BoxError>;

/// Why no answer came.
#[derive(Debug)]
pub enum StreamFailure {
    /// No head within the deadline.
    Timeout,
    /// Nothing reached the server: refused, no route, bad TLS, an outbound
    /// proxy that said no. What happened, fit to show.
    Unreachable(String),
    /// The connection was made and the call sent (or partly): it broke
    /// before a usable answer came, so the server may have acted on it.
    Broken(String),
}

/// An answer's head, and its body still to come.
pub struct StreamedAnswer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: StreamedBody,
}

impl StreamedAnswer {
    /// The length the answer announced, if it did.
    pub fn content_length(&self) -> Option<u64> {
        self.headers.get(header::CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
    }
}

type DirectClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// See the module doc.
pub enum StreamingClient {
    Direct(Box<DirectClient>),
    Outbound(reqwest::Client),
}

impl StreamingClient {
    /// `connect_within` bounds a connection's set-up; a call's own deadline
    /// is given to [`StreamingClient::send`].
    pub fn new(connect_within: Duration) -> std::result::Result<StreamingClient, String> {
        if crate::settings::outbound_proxy_asked() {
            // No total timeout: the call's deadline is `send`'s.
            return super::reqwest_client(connect_within, |builder| builder).map(StreamingClient::Outbound);
        }
        StreamingClient::direct(connect_within)
    }

    /// The client of its own (see the module doc), whatever the environment says.
    pub fn direct(connect_within: Duration) -> std::result::Result<StreamingClient, String> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(connect_within));
        http.set_nodelay(true);
        // As reqwest does: a peer that vanished is found by the kernel.
        http.set_keepalive(Some(TCP_KEEPALIVE));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
            .map_err(|e| format!("cannot set up TLS: {e}"))?
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(IDLE_KEPT)
            .http1_max_buf_size(READ_BUFFER)
            .build(https);
        Ok(StreamingClient::Direct(Box::new(client)))
    }

    /// Sends one request; the answer's head and body must both come within
    /// `within` (a body still coming then ends with [`TimedOut`]).
    pub async fn send(
        &self,
        method: Method,
        url: Url,
        headers: HeaderMap,
        body: Bytes,
        within: Duration,
    ) -> std::result::Result<StreamedAnswer, StreamFailure> {
        let deadline = Instant::now() + within;
        let head = async move {
            match self {
                StreamingClient::Direct(client) => send_direct(client, method, &url, headers, body).await,
                StreamingClient::Outbound(client) => send_outbound(client, method, url, headers, body).await,
            }
        };
        let answer = tokio::time::timeout_at(deadline, head)
            .await
            .map_err(|_| StreamFailure::Timeout)??;
        if answer.status.is_informational() {
            // A final 1xx (a 101 switch): no answer an HTTP consumer can take.
            return Err(StreamFailure::Broken(format!("the answer was HTTP {}", answer.status)));
        }
        let body = Deadlined::new(answer.body, deadline, within).boxed();
        Ok(StreamedAnswer { body, ..answer })
    }
}

async fn send_outbound(
    client: &reqwest::Client,
    method: Method,
    url: Url,
    headers: HeaderMap,
    body: Bytes,
) -> std::result::Result<StreamedAnswer, StreamFailure> {
    let sent = client.request(method, url).headers(headers).body(body);
    let answer = sent
        .send()
        .await
        .map_err(|e| failure(&e, e.is_connect(), reqwest_text(&e)))?;
    if answer.status() == StatusCode::PROXY_AUTHENTICATION_REQUIRED {
        // The outbound proxy's refusal, not Withings' answer: not passed on.
        return Err(StreamFailure::Unreachable(
            "the outbound proxy (HTTPS_PROXY, HTTP_PROXY or ALL_PROXY) asked for credentials: HTTP 407".into(),
        ));
    }
    let (status, headers) = (answer.status(), answer.headers().clone());
    let body = BodyExt::map_err(reqwest::Body::from(answer), BoxError::from).boxed();
    Ok(StreamedAnswer { status, headers, body })
}

async fn send_direct(
    client: &DirectClient,
    method: Method,
    url: &Url,
    mut headers: HeaderMap,
    body: Bytes,
) -> std::result::Result<StreamedAnswer, StreamFailure> {
    let uri: hyper::Uri = url
        .as_str()
        .parse()
        .map_err(|e| StreamFailure::Unreachable(format!("not a URL to send to ({e})")))?;
    // What reqwest sends when the consumer names none.
    if !headers.contains_key(header::USER_AGENT) {
        headers.insert(header::USER_AGENT, HeaderValue::from_static(super::USER_AGENT));
    }
    if !headers.contains_key(header::ACCEPT) {
        headers.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
    }
    let mut request = hyper::Request::new(Full::new(body));
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.headers_mut() = headers;
    let answer = client
        .request(request)
        .await
        .map_err(|e| failure(&e, e.is_connect(), direct_text(&e)))?;
    let (head, body) = answer.into_parts();
    Ok(StreamedAnswer {
        status: head.status,
        headers: head.headers,
        body: BodyExt::map_err(body, BoxError::from).boxed(),
    })
}

/// A failed call: a timeout (connecting, say) wherever it is in the
/// causes; else, with `text`, unreachable when it failed `connecting`,
/// broken when the call may have been sent.
fn failure(e: &(dyn std::error::Error + 'static), connecting: bool, text: String) -> StreamFailure {
    if super::has_io_cause(e, |io| io.kind() == std::io::ErrorKind::TimedOut) {
        return StreamFailure::Timeout;
    }
    if connecting {
        StreamFailure::Unreachable(text)
    } else {
        StreamFailure::Broken(text)
    }
}

/// What went wrong with a direct call, as [`super::HttpClient::describe_transport`] says it.
fn direct_text(e: &hyper_util::client::legacy::Error) -> String {
    let what = if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    format!("{what} ({})", visible(&super::innermost(e)))
}

/// What went wrong with a call through reqwest (outbound proxy).
fn reqwest_text(e: &reqwest::Error) -> String {
    let what = if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    format!("{what} ({})", visible(&super::reqwest_cause(e)))
}

/// The error that ends a body still coming at the call's deadline.
#[derive(Debug, thiserror::Error)]
#[error("the answer did not end within {}", humanize(*.0))]
pub struct TimedOut(Duration);

/// A body that ends with [`TimedOut`] once its deadline passed, even
/// when the next bytes are already there (a consumer slower than Withings
/// would otherwise hold the call for as long as it reads), and ends for
/// good at its first error.
struct Deadlined {
    /// `None` once it ended or failed.
    inner: Option<StreamedBody>,
    deadline: Pin<Box<Sleep>>,
    within: Duration,
}

impl Deadlined {
    fn new(inner: StreamedBody, deadline: Instant, within: Duration) -> Deadlined {
        Deadlined {
            inner: Some(inner),
            deadline: Box::pin(tokio::time::sleep_until(deadline)),
            within,
        }
    }
}

impl Body for Deadlined {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<std::result::Result<Frame<Bytes>, BoxError>>> {
        let late = self.deadline.as_mut().poll(cx).is_ready();
        let Some(inner) = self.inner.as_mut() else {
            return Poll::Ready(None);
        };
        let polled = Pin::new(inner).poll_frame(cx);
        let ended = matches!(polled, Poll::Ready(None) | Poll::Ready(Some(Err(_))));
        if late && !ended {
            self.inner = None;
            return Poll::Ready(Some(Err(Box::new(TimedOut(self.within)))));
        }
        if ended {
            self.inner = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Body::size_hint)
    }
}

/// The next bytes of `body` (empty frames and trailers skipped), or `None`
/// once it ended.
pub async fn next_chunk(body: &mut StreamedBody) -> std::result::Result<Option<Bytes>, BoxError> {
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data()
            && !data.is_empty()
        {
            return Ok(Some(data));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests;
