//! One call of Withings' data API on a consumer's behalf (`serve`'s
//! `/v1/withings/{path}`): the consumer's method, path, query and body go
//! to `{WITHINGS_API_URL}/{path}` with the account's access token as the
//! bearer, through the one HTTP stack (`http`); the answer comes back as
//! it came, its body streamed under a size cap.
//!
//! What a consumer sends that would speak for it (its own `Authorization`,
//! `Cookie`, the service's credentials and account header) is never
//! forwarded, nor what concerns one connection only (the hop-by-hop
//! headers of RFC 9110 §7.6.1 and those its `Connection` names). The token
//! is in no error text, and an answer header that carries it is dropped.
//!
//! Withings says what went wrong inside an HTTP 200 body (`{"status": 401,
//! …}` for a refused token), so the head of a 200 answer is held until its
//! first [`PEEK_LIMIT`] bytes came: an answer that small (every error is)
//! is read whole and its status known before anything is passed on, which
//! lets the service refresh and retry a read. That is also why the proxy
//! asks Withings for an uncompressed answer (`Accept-Encoding` is not
//! forwarded): a compressed body would hide its status.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use reqwest::header::{self, HeaderMap, HeaderName};
use reqwest::{Method, StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};

use crate::http::streaming::{BoxError, StreamFailure, StreamedBody, TimedOut, next_chunk};
use crate::http::{HttpClient, innermost};

/// The query parameter that names the account: the service's, not Withings'.
pub const ACCOUNT_PARAM: &str = "account";
/// The header alternative to [`ACCOUNT_PARAM`].
pub const ACCOUNT_HEADER: &str = "withings-account";
/// How long an upstream call may take, answer included, unless configured.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest answer passed back, unless configured: Withings' biggest
/// (a month of intraday activity) are a few MiB.
pub const DEFAULT_MAX_ANSWER: u64 = 32 * 1024 * 1024;
/// How much of a 200 answer is read before its head is passed on: every
/// Withings error fits many times over.
pub const PEEK_LIMIT: usize = 64 * 1024;
/// Withings' status for an access token it does not take.
pub const INVALID_TOKEN_STATUS: i64 = 401;

/// Request headers that speak for the consumer or for the service.
const CREDENTIAL_HEADERS: [&str; 4] = ["authorization", "cookie", "x-admin-token", ACCOUNT_HEADER];
/// Request headers the proxy sets its own way (see the module doc).
const PROXY_OWN: [&str; 1] = ["accept-encoding"];
/// Headers that concern one connection (RFC 9110 §7.6.1), plus those the
/// client sets itself for the body it sends (`host`, `content-length`).
const HOP_BY_HOP: [&str; 10] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
];

/// The proxy's limits (`serve --proxy-timeout`, `--proxy-max-bytes`).
#[derive(Debug, Clone, Copy)]
pub struct ProxyLimits {
    pub timeout: Duration,
    pub max_answer: u64,
}

impl Default for ProxyLimits {
    fn default() -> ProxyLimits {
        ProxyLimits {
            timeout: DEFAULT_TIMEOUT,
            max_answer: DEFAULT_MAX_ANSWER,
        }
    }
}

/// What the consumer asked for, as it asked.
pub struct Call {
    pub method: Method,
    /// The path after `/v1/withings/`, still percent-encoded.
    pub path: String,
    /// The raw query, `account` included (it is taken out here).
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// The action of a call that names two different ones (say, `getmeas` in
/// the query and `subscribe` in the body): which one Withings would act on
/// is not known, so it is treated as a write.
pub const AMBIGUOUS_ACTION: &str = "(ambiguous)";

impl Call {
    /// Withings' `action`, from the query and the form body (Withings reads
    /// both); `None` when neither has one, [`AMBIGUOUS_ACTION`] when they
    /// name different ones.
    pub fn action(&self) -> Option<String> {
        let query = self.query.as_deref().unwrap_or_default().as_bytes();
        let mut named = url::form_urlencoded::parse(query)
            .chain(url::form_urlencoded::parse(&self.body))
            .filter(|(name, _)| name == "action")
            .map(|(_, value)| value);
        let first = named.next()?;
        if named.any(|other| other != first) {
            return Some(AMBIGUOUS_ACTION.to_owned());
        }
        Some(first.into_owned())
    }
}

/// Whether an action only reads (`get*`, `list*`): those are safe to send
/// again; `subscribe`, `revoke`, `update` change state at Withings.
pub fn is_read(action: Option<&str>) -> bool {
    action.is_some_and(|action| action.starts_with("get") || action.starts_with("list"))
}

/// Why no answer can be passed back.
#[derive(Debug)]
pub enum ProxyFailure {
    /// The path is not one to send (empty, or with `.`/`..` segments that
    /// would climb out of `WITHINGS_API_URL`).
    BadPath(String),
    /// No answer within the timeout.
    Timeout(String),
    /// No answer, and nothing reached Withings: refused, no route.
    Unreachable(String),
    /// No usable answer, though the call was sent (or partly): Withings
    /// may have acted on it.
    Broken(String),
    /// The answer announced more than the cap.
    TooLarge(u64),
}

/// Withings' answer: its status and headers, and its body still to come.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    /// The `status` of Withings' JSON, when the answer is a 200 whose
    /// first bytes say it (see the module doc).
    pub withings_status: Option<i64>,
    /// The whole body, when it ended within [`PEEK_LIMIT`].
    pub whole: Option<Bytes>,
    pub body: CappedBody,
}

impl Answer {
    /// Withings refused the token sent (`{"status": 401}`).
    pub fn refused_token(&self) -> bool {
        self.withings_status == Some(INVALID_TOKEN_STATUS)
    }
}

/// Where `call` goes, when its path is one to send (see
/// [`ProxyFailure::BadPath`]): asked before the call takes from the
/// budget, and built once however many times the call is sent.
pub fn check_path(api_url: &Url, call: &Call) -> std::result::Result<Url, ProxyFailure> {
    upstream_url(api_url, &call.path, call.query.as_deref())
}

/// Sends `call` with `token` as the bearer, and returns the answer once
/// its head came. A body announced over the cap is refused before it is
/// read; one that grows past it is cut there.
pub async fn send(
    http: &HttpClient,
    api_url: &Url,
    call: &Call,
    token: &SecretString,
    limits: ProxyLimits,
) -> std::result::Result<Answer, ProxyFailure> {
    send_to(http, check_path(api_url, call)?, call, token, limits).await
}

/// [`send`] to `url`, the one [`check_path`] gave for `call`.
pub async fn send_to(
    http: &HttpClient,
    url: Url,
    call: &Call,
    token: &SecretString,
    limits: ProxyLimits,
) -> std::result::Result<Answer, ProxyFailure> {
    let client = http.streaming().map_err(|e| ProxyFailure::Unreachable(e.to_string()))?;
    let mut headers = forwarded(&call.headers);
    let mut bearer = header::HeaderValue::try_from(format!("Bearer {}", token.expose_secret()))
        .map_err(|_| ProxyFailure::Unreachable("the stored access token is not a valid header value".into()))?;
    bearer.set_sensitive(true);
    headers.insert(header::AUTHORIZATION, bearer);
    // Said, not left out: without it a server may pick any coding.
    headers.insert(header::ACCEPT_ENCODING, header::HeaderValue::from_static("identity"));
    let timed_out = || {
        ProxyFailure::Timeout(format!(
            "no answer within {}",
            crate::duration::humanize(limits.timeout)
        ))
    };
    let failed = |failure| match failure {
        StreamFailure::Timeout => timed_out(),
        StreamFailure::Unreachable(text) => ProxyFailure::Unreachable(text),
        StreamFailure::Broken(text) => ProxyFailure::Broken(text),
    };
    let sent = client.send(call.method.clone(), url, headers, call.body.clone(), limits.timeout);
    let mut answer = sent.await.map_err(failed)?;
    if answer.content_length().is_some_and(|length| length > limits.max_answer) {
        return Err(ProxyFailure::TooLarge(limits.max_answer));
    }
    let status = answer.status;
    let headers = passed_back(&answer.headers, token);
    if status != StatusCode::OK {
        let body = CappedBody::new(Some(answer.body), Bytes::new(), limits.max_answer);
        return Ok(Answer {
            status,
            headers,
            withings_status: None,
            whole: None,
            body,
        });
    }
    let (first, ended) = peek(&mut answer.body, limits.max_answer).await.map_err(|e| match e {
        Peeked::OverCap => ProxyFailure::TooLarge(limits.max_answer),
        Peeked::Failed(e) if e.is::<TimedOut>() => timed_out(),
        Peeked::Failed(e) => ProxyFailure::Broken(format!(
            "the connection broke while reading the answer ({})",
            crate::redact::visible(&innermost(&*e))
        )),
    })?;
    let withings_status = if ended {
        status_of_whole(&first)
    } else {
        status_in_prefix(&first)
    };
    let rest = (!ended).then_some(answer.body);
    let whole = ended.then(|| first.clone());
    Ok(Answer {
        status,
        headers,
        withings_status,
        whole,
        body: CappedBody::new(rest, first, limits.max_answer),
    })
}

/// Why the first bytes could not be read.
enum Peeked {
    OverCap,
    Failed(BoxError),
}

/// The answer's first [`PEEK_LIMIT`] bytes (or more: whole chunks), and
/// whether that was all of it.
async fn peek(body: &mut StreamedBody, cap: u64) -> std::result::Result<(Bytes, bool), Peeked> {
    // A small answer comes in one chunk: kept as it came, not copied.
    let Some(chunk) = next_chunk(body).await.map_err(Peeked::Failed)? else {
        return Ok((Bytes::new(), true));
    };
    if chunk.len() as u64 > cap {
        return Err(Peeked::OverCap);
    }
    if chunk.len() >= PEEK_LIMIT {
        return Ok((chunk, false));
    }
    let Some(next) = next_chunk(body).await.map_err(Peeked::Failed)? else {
        return Ok((chunk, true));
    };
    let mut first = Vec::with_capacity(chunk.len() + next.len());
    first.extend_from_slice(&chunk);
    if (first.len() + next.len()) as u64 > cap {
        return Err(Peeked::OverCap);
    }
    first.extend_from_slice(&next);
    while first.len() < PEEK_LIMIT {
        match next_chunk(body).await.map_err(Peeked::Failed)? {
            Some(chunk) => {
                if (first.len() + chunk.len()) as u64 > cap {
                    return Err(Peeked::OverCap);
                }
                first.extend_from_slice(&chunk);
            }
            None => return Ok((Bytes::from(first), true)),
        }
    }
    Ok((Bytes::from(first), false))
}

/// The `status` of a whole Withings answer, when it is JSON that has one.
pub fn status_of_whole(body: &[u8]) -> Option<i64> {
    #[derive(serde::Deserialize)]
    struct Status {
        status: Option<i64>,
    }
    serde_json::from_slice::<Status>(body).ok()?.status
}

/// The `status` of an answer of which only the start is known: Withings
/// writes it first (`{"status":0,"body":…`); else unknown.
fn status_in_prefix(body: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(body.get(..body.len().min(64))?).ok()?;
    let rest = text.trim_start().strip_prefix('{')?.trim_start();
    let rest = rest
        .strip_prefix("\"status\"")?
        .trim_start()
        .strip_prefix(':')?
        .trim_start();
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit() || *c == '-').collect();
    digits.parse().ok()
}

/// `{api_url}/{path}?{query without account}`.
fn upstream_url(api_url: &Url, path: &str, query: Option<&str>) -> std::result::Result<Url, ProxyFailure> {
    // URLs read `%2e` as a dot in a path segment (WHATWG), so it climbs too.
    let climbs = |segment: &str| matches!(segment.to_ascii_lowercase().replace("%2e", ".").as_str(), "." | "..");
    // Some servers read `\` (and a decoded `%2F`) as `/`, which would hide a
    // climbing segment: a path that holds one is not sent.
    let lower = path.to_ascii_lowercase();
    let hidden_slash = path.contains('\\') || lower.contains("%5c") || lower.contains("%2f");
    if path.is_empty() || hidden_slash || path.split('/').any(climbs) {
        return Err(ProxyFailure::BadPath(format!(
            "`/{path}` is not a Withings path to call (e.g. `/v1/withings/measure`)"
        )));
    }
    let mut url = super::endpoint(api_url, &format!("/{path}")).map_err(|e| ProxyFailure::BadPath(e.to_string()))?;
    let kept = query.map(without_account).filter(|q| !q.is_empty());
    url.set_query(kept.as_deref());
    Ok(url)
}

/// The query's pairs as sent, but those naming the account.
fn without_account(query: &str) -> String {
    let names_account = |pair: &&str| {
        let name = pair.split_once('=').map_or(*pair, |(name, _)| name);
        url::form_urlencoded::parse(format!("{name}=").as_bytes())
            .next()
            .is_some_and(|(decoded, _)| decoded == ACCOUNT_PARAM)
    };
    query
        .split('&')
        .filter(|pair| !names_account(pair))
        .collect::<Vec<_>>()
        .join("&")
}

/// Whether a header concerns one connection only, given what the
/// message's own `Connection` header names.
fn hop_by_hop(name: &HeaderName, connection_names: &[String]) -> bool {
    HOP_BY_HOP.contains(&name.as_str()) || connection_names.iter().any(|named| named == name.as_str())
}

/// The header names a message's `Connection` header lists.
fn connection_names(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|name| name.trim().to_ascii_lowercase())
        .filter(|name| !name.is_empty())
        .collect()
}

/// The consumer's headers that go on to Withings.
fn forwarded(incoming: &HeaderMap) -> HeaderMap {
    let named = connection_names(incoming);
    let mut kept = HeaderMap::with_capacity(incoming.len());
    for (name, value) in incoming {
        let own = CREDENTIAL_HEADERS.contains(&name.as_str()) || PROXY_OWN.contains(&name.as_str());
        if own || hop_by_hop(name, &named) || name == header::CONTENT_LENGTH {
            continue;
        }
        kept.append(name.clone(), value.clone());
    }
    kept
}

/// Withings' headers that go back to the consumer: not the hop-by-hop ones
/// (the server frames the body itself), and never one that carries `token`
/// or another secret this process knows (the token before it, the refresh
/// token).
fn passed_back(answer: &HeaderMap, token: &SecretString) -> HeaderMap {
    let named = connection_names(answer);
    let sent = [token.expose_secret()];
    let mut kept = HeaderMap::with_capacity(answer.len());
    for (name, value) in answer {
        let carries_secret = crate::redact::holds_secret(value.as_bytes(), &sent);
        if hop_by_hop(name, &named) || name == header::CONTENT_LENGTH || carries_secret {
            continue;
        }
        kept.append(name.clone(), value.clone());
    }
    kept
}

/// How large the pieces are that an upstream chunk is copied into: the
/// server's write buffer (16 KiB, see `server::connections`) then holds a
/// piece or two, never a share of hyper's client read buffer.
const PIECE: usize = 16 * 1024;

/// An answer body passed through chunk by chunk after the bytes already
/// read, cut with an error once it has given more than its cap.
///
/// Each upstream chunk (up to `http::streaming::READ_BUFFER`, once a
/// consumer is slower than Withings) is copied into [`PIECE`]s and let go
/// at once, so that the client's read buffer is no longer shared when it
/// reads the next one; a chunk passed on as it came stays allocated until
/// a slow consumer has read its last byte. A slow stream holds the chunk
/// the client reads ahead and what is left of the last one (about 0.2 MiB;
/// docs/performance.md, "Withings proxy").
pub struct CappedBody {
    /// The part of the body read before the head was passed on.
    first: Option<Bytes>,
    /// What is left of the last upstream chunk, copied.
    pieces: VecDeque<Bytes>,
    /// The rest, still to come (`None`: `first` was all of it).
    inner: Option<StreamedBody>,
    cap: u64,
    left: u64,
}

/// The error that cuts a body over the cap (the consumer sees the
/// connection end before the body did).
#[derive(Debug, thiserror::Error)]
#[error("the answer is larger than the proxy's cap of {0} bytes")]
pub struct OverCap(u64);

impl CappedBody {
    /// `first` is within the cap (checked as it was read).
    fn new(inner: Option<StreamedBody>, first: Bytes, cap: u64) -> CappedBody {
        let left = cap.saturating_sub(first.len() as u64);
        let first = (!first.is_empty()).then_some(first);
        CappedBody {
            first,
            pieces: VecDeque::new(),
            inner,
            cap,
            left,
        }
    }
}

impl Body for CappedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<std::result::Result<Frame<Bytes>, Self::Error>>> {
        if let Some(next) = self.first.take().or_else(|| self.pieces.pop_front()) {
            return Poll::Ready(Some(Ok(Frame::data(next))));
        }
        let Some(inner) = self.inner.as_mut() else {
            return Poll::Ready(None);
        };
        let polled = Pin::new(inner).poll_frame(cx);
        let Poll::Ready(Some(Ok(frame))) = polled else {
            if let Poll::Ready(None) = polled {
                // Ended: said by `is_end_stream` from now on, whatever the inner body says.
                self.inner = None;
            }
            return polled;
        };
        let chunk = match frame.into_data() {
            Ok(chunk) => chunk,
            Err(trailers) => return Poll::Ready(Some(Ok(trailers))),
        };
        if chunk.len() as u64 > self.left {
            return Poll::Ready(Some(Err(Box::new(OverCap(self.cap)))));
        }
        self.left -= chunk.len() as u64;
        self.pieces.extend(chunk.chunks(PIECE).map(Bytes::copy_from_slice));
        let next = self.pieces.pop_front().unwrap_or_default();
        Poll::Ready(Some(Ok(Frame::data(next))))
    }

    fn is_end_stream(&self) -> bool {
        self.first.is_none() && self.pieces.is_empty() && self.inner.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        let held = self.first.iter().chain(&self.pieces);
        let first = held.map(|piece| piece.len() as u64).sum::<u64>();
        let rest = self
            .inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Body::size_hint);
        let mut hint = SizeHint::new();
        hint.set_lower(rest.lower() + first);
        if let Some(upper) = rest.upper() {
            hint.set_upper(upper + first);
        }
        hint
    }
}

#[cfg(test)]
mod tests;
