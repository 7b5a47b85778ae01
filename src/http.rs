//! The one HTTP stack (reqwest + rustls) and the one retry loop.
//!
//! Clients (Withings, Railway) classify each answer into a [`Verdict`]; this
//! module owns what happens next: a final answer is returned, a refusal stops
//! at once, a transient failure is retried `--retries` times with a doubling
//! `--retry-delay`, honouring the server's wait hint when it asks for one.
//! Nothing here is built by offline commands, and a blocking runtime is made
//! only when a command really goes to the network.

use std::future::Future;
use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::{RequestBuilder, StatusCode};

use crate::error::{Error, Result};
use crate::settings::HttpPolicy;

/// The longest server-requested wait we sit through; beyond it we stop and
/// tell the user how long to wait instead of hanging a cron job.
pub const MAX_HONOURED_WAIT: Duration = Duration::from_secs(60);

/// Runs one future to completion on a single-threaded runtime.
pub fn block_on<F: Future>(future: F) -> Result<F::Output> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Internal(anyhow::anyhow!("cannot start the async runtime: {e}")))?;
    Ok(runtime.block_on(future))
}

/// Why an attempt should be tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transient {
    /// No answer: connection refused, reset, timed out.
    Network,
    /// An answer that is not a usable one (5xx, HTML, garbled JSON).
    Upstream,
    /// The server asked us to slow down.
    RateLimited,
}

/// How a client judges one attempt.
pub enum Verdict<T> {
    Done(T),
    /// Stop now: retrying cannot help (a refused grant, bad credentials).
    Stop(Error),
    Retry {
        kind: Transient,
        detail: String,
        /// The server's own wait hint, when it gave one.
        wait: Option<Duration>,
    },
}

/// A whole answer, read to the end within the timeout.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn content_type(&self) -> &str {
        self.headers
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("no content type")
    }

    /// `Retry-After` in whole seconds, as Railway and most proxies send it.
    pub fn retry_after(&self) -> Option<Duration> {
        let text = self.headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
        text.trim().parse::<u64>().ok().map(Duration::from_secs)
    }

    /// A short, secret-free description for error messages.
    pub fn describe(&self) -> String {
        let kind = if self.body.is_empty() {
            "an empty body".to_owned()
        } else if self.content_type().contains("html") || self.body.trim_ascii_start().starts_with(b"<") {
            "an HTML page".to_owned()
        } else {
            format!("{} bytes of {}", self.body.len(), self.content_type())
        };
        format!("HTTP {} with {kind}", self.status.as_u16())
    }
}

/// Cheap to make: the reqwest client (TLS roots, connection pool) is built
/// on the first request, so a `refresh --if-needed` that finds nothing due
/// never pays for it.
#[derive(Clone)]
pub struct HttpClient {
    inner: std::sync::Arc<std::sync::OnceLock<std::result::Result<reqwest::Client, String>>>,
    policy: HttpPolicy,
}

impl HttpClient {
    pub fn new(policy: HttpPolicy) -> Result<HttpClient> {
        Ok(HttpClient {
            inner: Default::default(),
            policy,
        })
    }

    /// The shared reqwest client, built on first use.
    pub fn inner(&self) -> Result<&reqwest::Client> {
        let built = self.inner.get_or_init(|| {
            reqwest::Client::builder()
                .timeout(self.policy.timeout)
                .connect_timeout(self.policy.timeout)
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(concat!("withings-token/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|e| format!("cannot build the HTTP client: {e}"))
        });
        built.as_ref().map_err(|e| Error::Internal(anyhow::anyhow!("{e}")))
    }

    /// Sends a request and reads its whole body; `Err` is a transport failure
    /// already phrased for the user (never contains the request body).
    pub async fn send(&self, request: RequestBuilder) -> std::result::Result<Answer, String> {
        let response = request.send().await.map_err(|e| self.describe_transport(&e))?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.bytes().await.map_err(|e| self.describe_transport(&e))?;
        Ok(Answer {
            status,
            headers,
            body: body.to_vec(),
        })
    }

    fn describe_transport(&self, e: &reqwest::Error) -> String {
        let what = if e.is_timeout() {
            format!("timed out after {}", humanize(self.policy.timeout))
        } else if e.is_connect() {
            "connection failed".to_owned()
        } else if e.is_body() || e.is_decode() {
            "the connection broke while reading the answer".to_owned()
        } else {
            "request failed".to_owned()
        };
        // Only the innermost cause: reqwest's Display includes the URL, which
        // carries no secret here, but the cause chain is what helps.
        let mut source: &dyn std::error::Error = e;
        while let Some(next) = source.source() {
            source = next;
        }
        format!("{what} ({source})")
    }

    /// Calls `attempt` until it is done, stops, or the retries run out.
    pub async fn with_retries<T, F, Fut>(&self, what: &'static str, mut attempt: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Verdict<T>>,
    {
        let attempts = self.policy.retries.saturating_add(1);
        let mut delay = self.policy.retry_delay;
        for number in 1..=attempts {
            let (kind, detail, wait) = match attempt().await {
                Verdict::Done(value) => return Ok(value),
                Verdict::Stop(error) => return Err(error),
                Verdict::Retry { kind, detail, wait } => (kind, detail, wait),
            };
            if let Some(wait) = wait.filter(|w| *w > MAX_HONOURED_WAIT) {
                return Err(Error::RateLimited {
                    what,
                    detail: format!("{detail}; asked to wait {}", humanize(wait)),
                });
            }
            if number == attempts {
                return Err(final_error(what, kind, number, detail));
            }
            let pause = wait.unwrap_or(delay);
            tracing::warn!(
                "{what}: attempt {number}/{attempts} failed ({detail}); retrying in {}",
                humanize(pause)
            );
            tokio::time::sleep(pause).await;
            delay = delay.saturating_mul(2);
        }
        Err(Error::Internal(anyhow::anyhow!("retry loop ended without an answer")))
    }
}

fn final_error(what: &'static str, kind: Transient, attempts: u32, detail: String) -> Error {
    match kind {
        Transient::Network => Error::Network { what, attempts, detail },
        Transient::Upstream => Error::Upstream { what, attempts, detail },
        Transient::RateLimited => Error::RateLimited {
            what,
            detail: format!("{detail} (still limited after {attempts} attempt(s))"),
        },
    }
}

pub fn humanize(d: Duration) -> String {
    if d.as_millis() < 1000 && !d.is_zero() {
        format!("{} ms", d.as_millis())
    } else {
        format!("{} s", d.as_secs())
    }
}

/// Cuts a server's message to a readable length on a character boundary.
pub fn clip(text: &str) -> String {
    const MAX: usize = 200;
    let text = text.trim();
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

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

    #[test]
    fn clip_respects_char_boundaries() {
        let long = "é".repeat(300);
        assert_eq!(clip(&long).chars().count(), 201);
        assert_eq!(clip(" short "), "short");
    }
}
