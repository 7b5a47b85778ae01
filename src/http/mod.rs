//! The one HTTP stack (reqwest + rustls; `streaming`, hyper's own client
//! with the same TLS, for the proxy's answers) and the one retry loop.
//!
//! Clients (Withings, Railway) classify each answer into a [`Verdict`]; this
//! module owns what happens next: a final answer is returned, a refusal stops
//! at once, a transient failure is retried `--retries` times with a doubling
//! `--retry-delay`, honouring the server's wait hint when it asks for one.
//! Nothing here is built by offline commands, and a blocking runtime is made
//! only when a command really goes to the network.
//!
//! Every request is an [`Operation`] sent through [`HttpClient::attempt`]:
//! one place reads answers under a size cap, decides whether a request whose
//! answer was lost may be sent again, and [`scrub`]s what was sent out of any
//! text a server sends back.
//!
//! A server's text reaches a terminal only through [`scrub`] or [`clip`],
//! and both show it through [`visible`]: every control character and bidi
//! override is written as an escape (`\u{1b}`), so an upstream text cannot
//! forge a line of our output, retitle the terminal or reverse what follows.
//! A URL reaches one only through [`shown_url`], which leaves out the parts
//! that can hold credentials.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::{RequestBuilder, StatusCode};

use crate::duration::humanize;
use crate::error::{Error, Result};
use crate::redact::{shown_url, visible};
use crate::settings::HttpPolicy;

/// How this tool names itself to the servers it calls.
pub const USER_AGENT: &str = concat!("withings-token/", env!("CARGO_PKG_VERSION"));

/// The answer cap of a call that names none (the sandbox's consent page).
pub const DEFAULT_MAX_ANSWER: usize = 1024 * 1024;

/// The longest server-requested wait we sit through; beyond it we stop and
/// tell the user how long to wait instead of hanging a cron job.
pub const MAX_HONOURED_WAIT: Duration = Duration::from_secs(60);

/// Runs one future to completion on a single-threaded runtime.
pub fn block_on<F: Future>(future: F) -> Result<F::Output> {
    check_runtime_descriptors()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| runtime_error(&e))?;
    Ok(runtime.block_on(future))
}

/// The descriptors an async runtime takes (its poller, its waker, and the
/// socket pair tokio's signal handling makes once per process and clones,
/// whose failure it cannot report: it panics), checked free before one is
/// built, so that a process at its descriptor limit is told so.
pub fn check_runtime_descriptors() -> Result<()> {
    const NEEDED_PAIRS: usize = 3;
    let mut held = Vec::with_capacity(NEEDED_PAIRS);
    for _ in 0..NEEDED_PAIRS {
        held.push(std::os::unix::net::UnixStream::pair().map_err(|e| runtime_error(&e))?);
    }
    Ok(())
}

fn runtime_error(e: &std::io::Error) -> Error {
    if crate::fsutil::out_of_descriptors(e) {
        return Error::config(
            format!("cannot start: {e}; nothing was sent"),
            crate::error::OUT_OF_DESCRIPTORS,
        );
    }
    Error::internal(anyhow::anyhow!("cannot start the async runtime: {e}"))
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
    /// Stop now: a request that must not be repeated blindly lost its
    /// answer, so it may or may not have been carried out. Apart from
    /// `Stop` so that the retry loop, which knows the attempt count, words
    /// the error.
    Unsure {
        detail: String,
    },
    /// Stop now and report the failure as a transient one of `kind`: an
    /// answer came but must not be asked for again in this run.
    GiveUp {
        kind: Transient,
        detail: String,
    },
}

/// One kind of request a client makes. `D` is whatever else the client
/// needs to build it: Railway's GraphQL document; nothing for Withings.
#[derive(Debug, Clone, Copy)]
pub struct Operation<D = ()> {
    /// How logs and errors name it (`requesttoken`, `serviceInstanceRedeploy`).
    pub name: &'static str,
    /// Whether a request that may have reached the server can be sent again
    /// when its answer is lost. When false, a transport failure stops the
    /// retries instead of doing the thing twice.
    pub idempotent: bool,
    /// Whether a request whose answer was over `max_answer` may be sent
    /// again. Not for a refresh: the answer came, so Withings may have
    /// rotated the token it carried, and the same token is not sent twice
    /// in one run.
    pub resend_oversized: bool,
    /// The most bytes of answer read. A token or GraphQL answer is small;
    /// a larger one is a broken or hostile peer, not worth the memory.
    pub max_answer: usize,
    /// Carried here so that a request's name, its retry rule and its text
    /// are one constant and cannot drift apart.
    pub document: D,
}

/// Why [`HttpClient::send`] has no answer to judge.
#[derive(Debug)]
pub enum SendFailure {
    /// No whole answer came back (refused, reset, timed out); the request
    /// may or may not have reached the server.
    Transport(String),
    /// The server answered with more than the cap; reading stopped there.
    TooLarge(String),
    /// No connection could be opened: this process is out of file
    /// descriptors (nothing was sent, and retrying now cannot help).
    OutOfDescriptors(String),
}

impl fmt::Display for SendFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendFailure::Transport(detail) | SendFailure::TooLarge(detail) | SendFailure::OutOfDescriptors(detail) => {
                f.write_str(detail)
            }
        }
    }
}

/// A whole answer, read to the end within the timeout and the size cap.
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
            format!("{} bytes of {}", self.body.len(), visible(self.content_type()))
        };
        format!("HTTP {} with {kind}", self.status.as_u16())
    }
}

/// Cheap to make: the reqwest client (TLS roots, connection pool) is built
/// on the first request, so a `refresh --if-needed` that finds nothing due
/// never pays for it; and once per policy in a process, so a run that
/// refreshes and then delivers its events builds it once (it is most of
/// what a delivered event costs a run). Safe across runtimes (each CLI
/// command's ends with it): a pooled connection whose runtime ended is
/// found closed and dropped when the pool is asked for one.
#[derive(Clone)]
pub struct HttpClient {
    inner: SharedClient,
    policy: HttpPolicy,
}

type SharedClient = std::sync::Arc<Clients>;

/// A policy's clients, each built on its first use.
#[derive(Default)]
struct Clients {
    whole: std::sync::OnceLock<std::result::Result<reqwest::Client, String>>,
    streaming: std::sync::OnceLock<std::result::Result<streaming::StreamingClient, String>>,
}

/// The process's clients, one per policy.
static CLIENTS: std::sync::Mutex<Vec<(HttpPolicy, SharedClient)>> = std::sync::Mutex::new(Vec::new());

impl HttpClient {
    pub fn new(policy: HttpPolicy) -> Result<HttpClient> {
        let mut clients = crate::locked(&CLIENTS);
        let inner = match clients.iter().find(|(made_for, _)| *made_for == policy) {
            Some((_, inner)) => std::sync::Arc::clone(inner),
            None => {
                let inner = SharedClient::default();
                clients.push((policy, std::sync::Arc::clone(&inner)));
                inner
            }
        };
        Ok(HttpClient { inner, policy })
    }

    /// The shared reqwest client, built on first use.
    pub fn inner(&self) -> Result<&reqwest::Client> {
        let built = self
            .inner
            .whole
            .get_or_init(|| reqwest_client(self.policy.timeout, |builder| builder.timeout(self.policy.timeout)));
        built.as_ref().map_err(|e| Error::internal(anyhow::anyhow!("{e}")))
    }

    /// The client that streams an answer as it comes (`serve`'s proxy),
    /// built on first use.
    pub fn streaming(&self) -> Result<&streaming::StreamingClient> {
        let built = self
            .inner
            .streaming
            .get_or_init(|| streaming::StreamingClient::new(self.policy.timeout));
        built.as_ref().map_err(|e| Error::internal(anyhow::anyhow!("{e}")))
    }

    /// One try of `operation`: `build` makes the request on the shared
    /// client, the answer is read within the operation's cap, and `judge`
    /// classifies it. A transport failure is retried for an idempotent
    /// operation and ends the retries for another one.
    pub async fn attempt<D, T>(
        &self,
        operation: &Operation<D>,
        build: impl FnOnce(&reqwest::Client) -> RequestBuilder,
        judge: impl FnOnce(&Answer) -> Verdict<T>,
    ) -> Verdict<T> {
        let client = match self.inner() {
            Ok(client) => client,
            Err(e) => return Verdict::Stop(e),
        };
        match self.send_within(build(client), operation.max_answer).await {
            Ok(answer) => judge(&answer),
            Err(SendFailure::OutOfDescriptors(detail)) => Verdict::Stop(Error::config(
                format!(
                    "cannot open a connection for {}: {detail}; nothing was sent",
                    operation.name
                ),
                crate::error::OUT_OF_DESCRIPTORS,
            )),
            Err(SendFailure::TooLarge(detail)) if !operation.resend_oversized => Verdict::GiveUp {
                kind: Transient::Upstream,
                detail: format!(
                    "{detail}; not sent again with the same token in this run (the answer may have carried a new set, and the token sent stays valid for a few hours because that set was never used)"
                ),
            },
            // An answer came, so the request was received; like any other
            // unusable answer, it is worth another try.
            Err(SendFailure::TooLarge(detail)) => Verdict::Retry {
                kind: Transient::Upstream,
                detail,
                wait: None,
            },
            Err(SendFailure::Transport(detail)) if operation.idempotent => Verdict::Retry {
                kind: Transient::Network,
                detail,
                wait: None,
            },
            Err(SendFailure::Transport(detail)) => Verdict::Unsure {
                detail: format!("{} got no answer ({detail})", operation.name),
            },
        }
    }

    /// Sends a request and reads its body, up to [`DEFAULT_MAX_ANSWER`];
    /// for a one-off call that names no cap of its own.
    pub async fn send(&self, request: RequestBuilder) -> std::result::Result<Answer, SendFailure> {
        self.send_within(request, DEFAULT_MAX_ANSWER).await
    }

    /// Sends a request and reads at most `max_answer` bytes of its body. No
    /// failure text contains the request body.
    pub async fn send_within(
        &self,
        request: RequestBuilder,
        max_answer: usize,
    ) -> std::result::Result<Answer, SendFailure> {
        let transport = |e: reqwest::Error| {
            let detail = self.describe_transport(&e);
            if out_of_descriptors(&e) {
                SendFailure::OutOfDescriptors(detail)
            } else {
                SendFailure::Transport(detail)
            }
        };
        let mut response = request.send().await.map_err(transport)?;
        let status = response.status();
        let too_large = || {
            SendFailure::TooLarge(format!(
                "HTTP {} with an answer larger than {}",
                status.as_u16(),
                byte_size(max_answer)
            ))
        };
        let announced = response.content_length().map(usize::try_from);
        let capacity = match announced {
            // Refused before a byte of the body is read.
            Some(Ok(length)) if length <= max_answer => length,
            Some(_) => return Err(too_large()),
            None => 0,
        };
        let headers = response.headers().clone();
        let mut body = Vec::with_capacity(capacity);
        while let Some(chunk) = response.chunk().await.map_err(transport)? {
            // Checked before the chunk is kept: memory stays within the cap
            // plus one chunk, however much the server sends.
            if chunk.len() > max_answer - body.len() {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Answer { status, headers, body })
    }

    pub fn describe_transport(&self, e: &reqwest::Error) -> String {
        let what = if e.is_timeout() {
            format!("timed out after {}", humanize(self.policy.timeout))
        } else if e.is_connect() {
            "connection failed".to_owned()
        } else if e.is_body() || e.is_decode() {
            "the connection broke while reading the answer".to_owned()
        } else {
            "request failed".to_owned()
        };
        // Only the innermost cause: the cause chain is what helps. When that
        // is reqwest's own error, its Display names the URL, shown here
        // without what may be a credential.
        format!("{what} ({})", visible(&reqwest_cause(e)))
    }

    /// Calls `attempt` until it is done, stops, or the retries run out.
    pub async fn with_retries<T, F, Fut>(&self, what: &'static str, attempt: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Verdict<T>>,
    {
        self.with_retries_while(what, attempt, || Ok(())).await
    }

    /// [`HttpClient::with_retries`], asking `may_send` before every attempt
    /// after the first: a refusal (the store's lease ran out, so another run
    /// may be sending the same token) stops the retries with its error.
    pub async fn with_retries_while<T, F, Fut>(
        &self,
        what: &'static str,
        mut attempt: F,
        may_send: impl Fn() -> Result<()>,
    ) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Verdict<T>>,
    {
        let attempts = self.policy.retries.saturating_add(1);
        let mut delay = self.policy.retry_delay;
        for number in 1..=attempts {
            // A signal held since the last attempt: send nothing more.
            if let Some(signal) = crate::signals::pending() {
                return Err(Error::Interrupted { signal, what });
            }
            if number > 1 {
                may_send()?;
            }
            let (kind, detail, wait) = match crate::signals::announce_held(attempt()).await {
                Verdict::Done(value) => return Ok(value),
                Verdict::Stop(error) => return Err(error),
                Verdict::Unsure { detail } => return Err(unsure_error(what, number, detail)),
                Verdict::GiveUp { kind, detail } => return Err(final_error(what, kind, number, detail, None)),
                Verdict::Retry { kind, detail, wait } => (kind, detail, wait),
            };
            if let Some(wait) = wait.filter(|w| *w > MAX_HONOURED_WAIT) {
                return Err(Error::RateLimited {
                    what,
                    detail: format!("{detail}; asked to wait {}", humanize(wait)),
                    wait: Some(wait),
                });
            }
            if number == attempts {
                return Err(final_error(what, kind, number, detail, wait));
            }
            let pause = wait.unwrap_or(delay);
            tracing::warn!(
                "{what}: attempt {number}/{attempts} failed ({detail}); retrying in {}",
                humanize(pause)
            );
            crate::signals::sleep_unless_held(pause).await;
            delay = delay.saturating_mul(2);
        }
        Err(Error::internal(anyhow::anyhow!("retry loop ended without an answer")))
    }
}

/// A reqwest client as every one of this tool's is (no redirects, its
/// user agent, `connect_within` to connect), with what `and` adds.
fn reqwest_client(
    connect_within: Duration,
    and: impl FnOnce(reqwest::ClientBuilder) -> reqwest::ClientBuilder,
) -> std::result::Result<reqwest::Client, String> {
    let builder = reqwest::Client::builder()
        .connect_timeout(connect_within)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(USER_AGENT);
    and(builder)
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))
}

/// The innermost cause's text: the one that says what happened.
pub fn innermost(e: &dyn std::error::Error) -> String {
    let mut source = e;
    while let Some(next) = source.source() {
        source = next;
    }
    source.to_string()
}

/// reqwest's innermost cause. When that is reqwest's own error, its
/// Display names the URL, shown here without what may be a credential.
fn reqwest_cause(e: &reqwest::Error) -> String {
    let mut cause = innermost(e);
    if let Some(url) = e.url() {
        cause = cause.replace(url.as_str(), &shown_url(url));
    }
    cause
}

/// Whether `e` comes from running out of file descriptors (EMFILE, ENFILE).
fn out_of_descriptors(e: &reqwest::Error) -> bool {
    has_io_cause(e, crate::fsutil::out_of_descriptors)
}

/// Whether an I/O error among `e`'s causes (`e` included) is one `matches` says.
pub fn has_io_cause(e: &(dyn std::error::Error + 'static), matches: impl Fn(&std::io::Error) -> bool) -> bool {
    let mut source = Some(e);
    while let Some(error) = source {
        if error.downcast_ref::<std::io::Error>().is_some_and(&matches) {
            return true;
        }
        source = error.source();
    }
    false
}

/// `wait`: the last answer's wait hint, kept so that a caller with a
/// schedule of its own (`serve`'s background refresh) can honour it.
fn final_error(what: &'static str, kind: Transient, attempts: u32, detail: String, wait: Option<Duration>) -> Error {
    match kind {
        Transient::Network => Error::Network { what, attempts, detail },
        Transient::Upstream => Error::Upstream { what, attempts, detail },
        Transient::RateLimited => Error::RateLimited {
            what,
            detail: format!("{detail} (still limited after {attempts} attempt(s))"),
            wait,
        },
    }
}

fn unsure_error(what: &'static str, attempts: u32, detail: String) -> Error {
    Error::Upstream {
        what,
        attempts,
        detail: format!(
            "{detail}; it may have been carried out, so it was not sent again: check {what} before repeating it"
        ),
    }
}

/// `64 KiB`, `1 MiB`: caps are round numbers, so they read best that way.
fn byte_size(bytes: usize) -> String {
    crate::fsutil::byte_size(u64::try_from(bytes).unwrap_or(u64::MAX))
}

/// A whole answer for the clients' unit tests of `classify`.
#[cfg(test)]
pub fn answer(status: u16, body: &str) -> Answer {
    Answer {
        status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        headers: HeaderMap::new(),
        body: body.as_bytes().to_vec(),
    }
}

#[cfg(test)]
mod tests;

pub mod streaming;
