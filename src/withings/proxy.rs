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

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use reqwest::header::{self, HeaderMap, HeaderName};
use reqwest::{Method, StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};

use crate::http::HttpClient;

/// The query parameter that names the account: the service's, not Withings'.
pub const ACCOUNT_PARAM: &str = "account";
/// The header alternative to [`ACCOUNT_PARAM`].
pub const ACCOUNT_HEADER: &str = "withings-account";
/// How long an upstream call may take, answer included, unless configured.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest answer passed back, unless configured: Withings' biggest
/// (a month of intraday activity) are a few MiB.
pub const DEFAULT_MAX_ANSWER: u64 = 32 * 1024 * 1024;

/// Request headers that speak for the consumer or for the service.
const CREDENTIAL_HEADERS: [&str; 4] = ["authorization", "cookie", "x-admin-token", ACCOUNT_HEADER];
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

/// Why no answer can be passed back.
#[derive(Debug)]
pub enum ProxyFailure {
    /// The path is not one to send (empty, or with `.`/`..` segments that
    /// would climb out of `WITHINGS_API_URL`).
    BadPath(String),
    /// No answer within the timeout.
    Timeout(String),
    /// No answer: refused, reset, no route.
    Unreachable(String),
    /// The answer announced more than the cap.
    TooLarge(u64),
}

/// Withings' answer: its status and headers, and its body still to come.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: CappedBody,
}

/// Sends `call` with `token` as the bearer, and returns the answer once
/// its head came. A body announced over the cap is refused before it is
/// read; one that grows past it is cut there.
pub async fn send(
    http: &HttpClient,
    api_url: &Url,
    call: Call,
    token: &SecretString,
    limits: ProxyLimits,
) -> std::result::Result<Answer, ProxyFailure> {
    let url = upstream_url(api_url, &call.path, call.query.as_deref())?;
    let client = http.inner().map_err(|e| ProxyFailure::Unreachable(e.to_string()))?;
    let mut headers = forwarded(&call.headers);
    let mut bearer = header::HeaderValue::try_from(format!("Bearer {}", token.expose_secret()))
        .map_err(|_| ProxyFailure::Unreachable("the stored access token is not a valid header value".into()))?;
    bearer.set_sensitive(true);
    headers.insert(header::AUTHORIZATION, bearer);
    let request = client
        .request(call.method, url)
        .headers(headers)
        .body(call.body)
        .timeout(limits.timeout);
    let response = request.send().await.map_err(|e| {
        if e.is_timeout() {
            ProxyFailure::Timeout(format!(
                "no answer within {}",
                crate::duration::humanize(limits.timeout)
            ))
        } else {
            ProxyFailure::Unreachable(http.describe_transport(&e))
        }
    })?;
    if let Some(length) = response.content_length()
        && length > limits.max_answer
    {
        return Err(ProxyFailure::TooLarge(limits.max_answer));
    }
    let status = response.status();
    let headers = passed_back(response.headers(), token);
    Ok(Answer {
        status,
        headers,
        body: CappedBody::new(reqwest::Body::from(response), limits.max_answer),
    })
}

/// `{api_url}/{path}?{query without account}`.
fn upstream_url(api_url: &Url, path: &str, query: Option<&str>) -> std::result::Result<Url, ProxyFailure> {
    // URLs read `%2e` as a dot in a path segment (WHATWG), so it climbs too.
    let climbs = |segment: &str| matches!(segment.to_ascii_lowercase().replace("%2e", ".").as_str(), "." | "..");
    if path.is_empty() || path.split('/').any(climbs) {
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
        if CREDENTIAL_HEADERS.contains(&name.as_str()) || hop_by_hop(name, &named) || name == header::CONTENT_LENGTH {
            continue;
        }
        kept.append(name.clone(), value.clone());
    }
    kept
}

/// Withings' headers that go back to the consumer: not the hop-by-hop ones
/// (the server frames the body itself), and never one that carries `token`.
fn passed_back(answer: &HeaderMap, token: &SecretString) -> HeaderMap {
    let named = connection_names(answer);
    let secret = token.expose_secret().as_bytes();
    let mut kept = HeaderMap::with_capacity(answer.len());
    for (name, value) in answer {
        let carries_token = !secret.is_empty() && value.as_bytes().windows(secret.len()).any(|w| w == secret);
        if hop_by_hop(name, &named) || name == header::CONTENT_LENGTH || carries_token {
            continue;
        }
        kept.append(name.clone(), value.clone());
    }
    kept
}

/// An answer body passed through chunk by chunk, cut with an error once it
/// has given more than its cap (memory stays within one chunk).
pub struct CappedBody {
    inner: reqwest::Body,
    cap: u64,
    left: u64,
}

/// The error that cuts a body over the cap (the consumer sees the
/// connection end before the body did).
#[derive(Debug, thiserror::Error)]
#[error("the answer is larger than the proxy's cap of {0} bytes")]
pub struct OverCap(u64);

impl CappedBody {
    fn new(inner: reqwest::Body, cap: u64) -> CappedBody {
        CappedBody { inner, cap, left: cap }
    }
}

impl Body for CappedBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<std::result::Result<Frame<Bytes>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        let Poll::Ready(Some(Ok(frame))) = polled else {
            return polled.map(|next| next.map(|frame| frame.map_err(Into::into)));
        };
        let size = frame.data_ref().map_or(0, |data| data.len() as u64);
        if size > self.left {
            return Poll::Ready(Some(Err(Box::new(OverCap(self.cap)))));
        }
        self.left -= size;
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests;
