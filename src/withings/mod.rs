//! `WithingsClient`: the only code that talks to Withings' token endpoint.
//!
//! Withings answers almost everything with HTTP 200 and a `status` inside the
//! body, so the HTTP status alone means little. Tokens are read only from a
//! `status: 0` answer; a refused grant stops at once (exit 4); anything
//! garbled or overloaded is retried by the shared loop in `http`. Withings
//! quotes its input in error texts, so every value we sent is scrubbed out of
//! them before they reach an error or a log line.
//!
//! A refresh that reached Withings has rotated the token, so an answer that
//! carries the new one must never be thrown away. The rule: whenever
//! `status` is 0 and the body holds a non-empty `refresh_token` string, the
//! answer IS a new token set and is returned to be saved. Every other field
//! is read leniently: `expires_in` as an integer, a float or a numeric
//! string, and when it is missing, not a number, not positive or beyond any
//! clock, Withings' documented 3 h is assumed (with a warning); `userid`
//! from a string or any number; `scope` only when a string; `access_token`
//! only when a non-empty string (else none, and the set is saved all the
//! same). Only an answer with no usable refresh token is retried. The body
//! is read as its first JSON value, after an optional UTF-8 BOM; bytes
//! after that value are ignored.
//!
//! [`probe`] is `doctor --online`'s one request: a refresh with a made-up
//! refresh token, which Withings refuses without rotating anything; any
//! answer proves the host reachable, and its `Date` header shows the clock.

use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use crate::budget::{SharedBudget, UpstreamBudget};
use crate::error::{Error, Result};
use crate::http::{Answer, HttpClient, Operation, Transient, Verdict};
use crate::redact::{clip, scrub, shown_url};
use crate::store::TokenStore;
use crate::tokens::TokenSet;

const WHAT: &str = "Withings";

/// The token request (`action=requesttoken`), for a refresh or a code.
///
/// Not idempotent in the strict sense: a refresh that reached Withings has
/// rotated the token even if its answer was lost. It is retried on a
/// transport failure all the same. A connection that failed to open sent
/// nothing. After a lost answer the refresh token we hold stays valid (for
/// about 8 hours, or until the new access token is first used, and nobody
/// has it), so the next try just gets another new set; a later run is
/// covered by the store's previous-token fallback. A code is single-use: a
/// retry after a lost answer is refused (exit 4), which does no harm.
const REQUEST_TOKEN: Operation = Operation {
    name: "requesttoken",
    idempotent: true,
    resend_oversized: false,
    // A token answer is under 2 KB, but one that carries a new set must
    // not be thrown away for padding a proxy added: read up to 1 MiB.
    max_answer: 1024 * 1024,
    document: (),
};

/// The access-token check (`action=getdevice` on `/v2/user`): a read, so
/// it may be sent again after a lost answer. A device list is a few KB.
const GET_DEVICE: Operation = Operation {
    name: "getdevice",
    idempotent: true,
    resend_oversized: true,
    max_answer: 256 * 1024,
    document: (),
};

/// What Withings said of an access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessCheck {
    /// `status: 0`: the token works.
    Valid,
    /// An authentication-failed status: the token was refused. The detail
    /// is Withings' status and text, with the token scrubbed out.
    Refused { detail: String },
}

/// Form fields whose values are the protocol's own words (`requesttoken`,
/// `refresh_token`), not ours: scrubbing them would blank out the very
/// words that tell a refused grant from a bad setting.
const PROTOCOL_FIELDS: [&str; 2] = ["action", "grant_type"];

/// What is traded for tokens.
pub enum Grant<'a> {
    Refresh(&'a SecretString),
    Code { code: &'a str, redirect_uri: &'a str },
}

impl Grant<'_> {
    fn refused(&self, detail: String) -> Error {
        match self {
            Grant::Refresh(_) => Error::InvalidRefreshToken { detail },
            Grant::Code { .. } => Error::InvalidCode { detail },
        }
    }

    /// The word Withings uses for this grant's secret in its error texts.
    fn param_name(&self) -> &'static str {
        match self {
            Grant::Refresh(_) => "refresh_token",
            Grant::Code { .. } => "code",
        }
    }
}

pub struct WithingsClient {
    http: HttpClient,
    token_url: Url,
    /// `/v2/user`, where `getdevice` proves an access token works.
    user_url: Url,
    client_id: String,
    client_secret: SecretString,
    /// Taken before every token request; `None` for a client built
    /// without settings (tests), which sends unbudgeted.
    budget: Option<Arc<UpstreamBudget>>,
    /// The store whose hosts share the budget, when it is shared.
    shared_budget: Option<Arc<dyn SharedBudget>>,
}

/// The Withings client of `settings`' app, under the app's upstream budget
/// in this process; fails on missing credentials (naming `needed_for`)
/// before anything is locked or sent.
pub fn client_for(settings: &crate::settings::Settings, http: &HttpClient, needed_for: &str) -> Result<WithingsClient> {
    let id = settings.client_id(needed_for)?;
    let secret = settings.client_secret(needed_for)?;
    let mut client = WithingsClient::new(http.clone(), settings.api_url()?, id, secret)?;
    client.budget = Some(crate::budget::for_client(id, settings.upstream_budget));
    Ok(client)
}

impl WithingsClient {
    /// `api_url` is the base (`https://wbsapi.withings.net`); `/v2/oauth2` is
    /// appended to its path (a query it carries stays a query).
    pub fn new(http: HttpClient, api_url: &Url, client_id: &str, client_secret: &SecretString) -> Result<Self> {
        Ok(WithingsClient {
            http,
            token_url: endpoint(api_url, "/v2/oauth2")?,
            user_url: endpoint(api_url, "/v2/user")?,
            client_id: client_id.to_owned(),
            client_secret: client_secret.clone(),
            budget: None,
            shared_budget: None,
        })
    }

    /// Takes the budget through `store` as well, which every host using it
    /// shares (a file store shares nothing: see `TokenStore::take_shared_budget`).
    pub fn sharing_budget_through(mut self, store: &dyn TokenStore) -> Self {
        self.shared_budget = store.shared_budget();
        self
    }

    /// Trades `grant` for a new token set, retrying transient failures.
    pub async fn request_token(&self, grant: &Grant<'_>) -> Result<TokenSet> {
        self.request_token_while(grant, || Ok(())).await
    }

    /// [`WithingsClient::request_token`], retrying only while `may_send`
    /// agrees (see [`HttpClient::with_retries_while`]).
    pub async fn request_token_while(&self, grant: &Grant<'_>, may_send: impl Fn() -> Result<()>) -> Result<TokenSet> {
        self.http
            .with_retries_while(WHAT, || self.attempt(grant), may_send)
            .await
    }

    async fn attempt(&self, grant: &Grant<'_>) -> Verdict<TokenSet> {
        // Every attempt is a request Withings counts. A refusal stops the
        // retries with nothing sent; the caller's in-flight mark is ended
        // as after any failure.
        if let Some(budget) = &self.budget
            && let Err(refused) = budget.take(self.shared_budget.as_deref()).await
        {
            return Verdict::Stop(refused);
        }
        let form = self.form(grant);
        let sent: Vec<&str> = form
            .iter()
            .filter(|(name, _)| !PROTOCOL_FIELDS.contains(name))
            .map(|(_, value)| *value)
            .collect();
        tracing::debug!("POST {} (grant {})", shown_url(&self.token_url), grant.param_name());
        let build = |client: &reqwest::Client| client.post(self.token_url.clone()).form(&form);
        let judge = |answer: &Answer| {
            // Withings' own time when this host's clock is off.
            let received_at = crate::clock::received_at(date_of(answer));
            tracing::debug!("Withings answered {}", scrub(&answer.describe(), &sent));
            classify(answer, grant, &sent, received_at)
        };
        self.http.attempt(&REQUEST_TOKEN, build, judge).await
    }

    /// Asks Withings whether `access_token` works (`getdevice`), retrying
    /// transient failures; an error means no answer could tell (unknown).
    pub async fn check_access_token(&self, access_token: &SecretString) -> Result<AccessCheck> {
        self.http.with_retries(WHAT, || self.check_attempt(access_token)).await
    }

    async fn check_attempt(&self, access_token: &SecretString) -> Verdict<AccessCheck> {
        let token = access_token.expose_secret();
        tracing::debug!("POST {} (getdevice)", shown_url(&self.user_url));
        // The token goes to Withings only, in the header it asks for.
        let build = |client: &reqwest::Client| {
            client
                .post(self.user_url.clone())
                .bearer_auth(token)
                .form(&[("action", "getdevice")])
        };
        let judge = |answer: &Answer| classify_check(answer, &[token]);
        self.http.attempt(&GET_DEVICE, build, judge).await
    }

    /// The request's form fields, secrets exposed: they go to Withings only.
    fn form<'a>(&'a self, grant: &'a Grant<'_>) -> Vec<(&'static str, &'a str)> {
        let mut form: Vec<(&str, &str)> = vec![
            ("action", "requesttoken"),
            ("client_id", &self.client_id),
            ("client_secret", self.client_secret.expose_secret()),
        ];
        match grant {
            Grant::Refresh(token) => {
                form.push(("grant_type", "refresh_token"));
                form.push(("refresh_token", token.expose_secret()));
            }
            Grant::Code { code, redirect_uri } => {
                form.push(("grant_type", "authorization_code"));
                form.push(("code", code));
                form.push(("redirect_uri", redirect_uri));
            }
        }
        form
    }
}

/// `path` appended to the path of `api_url` (a query it carries stays a query).
fn endpoint(api_url: &Url, path: &str) -> Result<Url> {
    if api_url.cannot_be_a_base() {
        return Err(Error::config(
            "WITHINGS_API_URL is not usable: it is not a base URL",
            "set it to an https:// base URL",
        ));
    }
    let base = api_url.path().trim_end_matches('/');
    let mut url = api_url.clone();
    url.set_path(&format!("{base}{path}"));
    Ok(url)
}

/// `doctor --online`'s request: a refresh with a refresh token that cannot
/// exist, so that Withings refuses it and rotates nothing. The account's
/// own tokens are never sent by it.
const PROBE: Operation = Operation {
    name: "requesttoken (probe)",
    idempotent: true,
    resend_oversized: true,
    max_answer: 64 * 1024,
    document: (),
};

/// The made-up refresh token the probe sends.
pub const PROBE_REFRESH_TOKEN: &str = "withings-token-doctor-probe";

/// What the probe learnt: Withings' reply, and the clocks of both sides.
#[derive(Debug)]
pub struct Probe {
    pub reply: ProbeReply,
    /// The answer's `Date` header, when it has a readable one.
    pub server_time: Option<chrono::DateTime<chrono::Utc>>,
    /// This host's clock when the answer came (whole seconds, like `Date`).
    pub received_at: chrono::DateTime<chrono::Utc>,
}

/// How Withings answered the probe.
#[derive(Debug)]
pub enum ProbeReply {
    /// Withings' JSON, with its `status` (a refusal is what the probe
    /// expects) and its text, scrubbed.
    Answered { status: i64, message: String },
    /// Withings named the app's credentials (client id or secret) as wrong.
    CredentialsRefused(Error),
    /// Something answered, but not with Withings' JSON (a proxy's HTML
    /// page, HTTP 429, an empty body): the description says what.
    Unusable(String),
}

/// Sends the probe once per attempt of `http`'s policy. `credentials`, when
/// given, go along so that Withings can say whether it knows them. Only a
/// request that got no answer at all is an error (`NETWORK_ERROR`).
pub async fn probe(http: &HttpClient, api_url: &Url, credentials: Option<(&str, &SecretString)>) -> Result<Probe> {
    let token_url = endpoint(api_url, "/v2/oauth2")?;
    let mut form = vec![
        ("action", "requesttoken"),
        ("grant_type", "refresh_token"),
        ("refresh_token", PROBE_REFRESH_TOKEN),
    ];
    if let Some((id, secret)) = credentials {
        form.extend([("client_id", id), ("client_secret", secret.expose_secret())]);
    }
    let sent: Vec<&str> = form
        .iter()
        .filter(|(name, _)| !PROTOCOL_FIELDS.contains(name))
        .map(|(_, value)| *value)
        .collect();
    tracing::debug!("POST {} (probe)", shown_url(&token_url));
    let attempt = || {
        let build = |client: &reqwest::Client| client.post(token_url.clone()).form(&form);
        let judge = |answer: &Answer| Verdict::Done(read_probe(answer, &sent, credentials.is_some()));
        http.attempt(&PROBE, build, judge)
    };
    http.with_retries(WHAT, attempt).await
}

/// Judges the probe's answer: any answer is one (the probe only asks
/// whether Withings is there and what its clock says).
fn read_probe(answer: &Answer, sent: &[&str], sent_credentials: bool) -> Probe {
    // This host's own clock: the probe is what measures it.
    let received_at = crate::clock::host_now();
    let server_time = date_of(answer);
    let reply = match read_envelope::<()>(answer, sent) {
        Ok(Envelope { status, message, .. }) if sent_credentials && status != 0 && mentions_client(&message) => {
            ProbeReply::CredentialsRefused(bad_credentials(status, &message))
        }
        Ok(Envelope { status, message, .. }) => ProbeReply::Answered { status, message },
        Err(Verdict::Retry { detail, .. }) => ProbeReply::Unusable(detail),
        Err(_) => ProbeReply::Unusable(scrub(&answer.describe(), sent)),
    };
    Probe {
        reply,
        server_time,
        received_at,
    }
}

/// The answer's `Date` header, when it has a readable one.
fn date_of(answer: &Answer) -> Option<chrono::DateTime<chrono::Utc>> {
    let text = answer.headers.get(reqwest::header::DATE)?.to_str().ok()?;
    let date = chrono::DateTime::parse_from_rfc2822(text.trim()).ok()?;
    Some(date.with_timezone(&chrono::Utc))
}

/// The longest `expires_in` believed: a day (Withings documents 3 h).
const MAX_BELIEVED_LIFETIME_SECS: i64 = 24 * 3600;

/// Withings' documented access-token lifetime, assumed when an answer
/// carrying a new refresh token gives no usable `expires_in`.
const DOCUMENTED_LIFETIME_SECS: i64 = 3 * 3600;

/// The first JSON value of `body`, after an optional UTF-8 BOM. Whatever
/// follows that value (a proxy's trailer, a second document) is ignored:
/// a token set must not be lost to bytes after it.
fn first_json_value(body: &[u8]) -> Option<Value> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let parse = |bytes: &[u8]| {
        serde_json::Deserializer::from_slice(bytes)
            .into_iter::<Value>()
            .next()?
            .ok()
    };
    // serde_json refuses a whole document over one number beyond f64
    // (`"expires_in":1e400`); such a number is read as `null` instead.
    parse(body).or_else(|| parse(&without_huge_numbers(body)?))
}

/// `body` with every number literal too large for an f64 (outside
/// strings) replaced by `null`; `None` when there is none.
fn without_huge_numbers(body: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(body.len());
    let (mut in_string, mut escaped, mut replaced) = (false, false, false);
    let mut i = 0;
    while let Some(&byte) = body.get(i) {
        if in_string {
            (in_string, escaped) = (escaped || byte != b'"', !escaped && byte == b'\\');
        } else if byte == b'-' || byte.is_ascii_digit() {
            let len = body[i..]
                .iter()
                .take_while(|b| b.is_ascii_digit() || b"+-.eE".contains(b))
                .count();
            let literal = &body[i..i + len];
            let huge = std::str::from_utf8(literal)
                .ok()
                .and_then(|text| text.parse::<f64>().ok())
                .is_some_and(f64::is_infinite);
            out.extend_from_slice(if huge { b"null" } else { literal });
            replaced |= huge;
            i += len;
            continue;
        } else {
            in_string = byte == b'"';
        }
        out.push(byte);
        i += 1;
    }
    replaced.then_some(out)
}

/// Withings' `status`: an integer, also taken as an integral float or a
/// numeric string, since a 0 may carry a new token.
fn status_of(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 1e15)
                .map(|f| f as i64)
        }),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    }
}

/// Judges one answer. Every text taken from it is scrubbed of the `sent`
/// values first, so the classification and the messages see only the
/// server's own words.
fn classify(
    answer: &Answer,
    grant: &Grant<'_>,
    sent: &[&str],
    received_at: chrono::DateTime<chrono::Utc>,
) -> Verdict<TokenSet> {
    let Envelope { status, body, message } = match read_envelope(answer, sent) {
        Ok(envelope) => envelope,
        Err(verdict) => return verdict,
    };
    match status_family(status) {
        StatusFamily::Ok => match read_tokens(body.as_ref(), received_at) {
            Some(tokens) => Verdict::Done(tokens),
            None => Verdict::Retry {
                kind: Transient::Upstream,
                detail: "status 0 without a complete token set".into(),
                wait: None,
            },
        },
        StatusFamily::RateLimited => Verdict::Retry {
            kind: Transient::RateLimited,
            detail: format!("Withings status 601 ({})", or_unknown(&message)),
            wait: wait_seconds(body.as_ref()),
        },
        StatusFamily::Transient => Verdict::Retry {
            kind: Transient::Upstream,
            detail: format!("Withings status {status} ({})", or_unknown(&message)),
            wait: None,
        },
        StatusFamily::AuthFailed => refusal(grant, status, &message),
        StatusFamily::InvalidParams => invalid_params(grant, status, &message),
        StatusFamily::Other if answer.status.is_server_error() => garbled(answer, sent),
        StatusFamily::Other => Verdict::Retry {
            kind: Transient::Upstream,
            detail: format!("unexpected Withings status {status} ({})", or_unknown(&message)),
            wait: None,
        },
    }
}

/// What a Withings `status` means, in the families every answer is judged
/// by (a token answer, an access check, a data call of `api`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFamily {
    /// `0`: done.
    Ok,
    /// Authentication failed: the grant or the access token sent was refused.
    AuthFailed,
    /// `601`: too many requests.
    RateLimited,
    /// Timeout, bad state, wrong action, "an unknown error occurred":
    /// Withings' trouble, not a verdict on what was sent.
    Transient,
    /// "Invalid params".
    InvalidParams,
    /// Any other status.
    Other,
}

pub fn status_family(status: i64) -> StatusFamily {
    match status {
        0 => StatusFamily::Ok,
        601 => StatusFamily::RateLimited,
        522 | 524 | 2554 | 2555 => StatusFamily::Transient,
        100..=102 | 200 | 401 | 214 | 277 | 2553 => StatusFamily::AuthFailed,
        201..=213 | 501..=511 => StatusFamily::InvalidParams,
        _ => StatusFamily::Other,
    }
}

/// What every Withings answer carries: its `status`, its `body`, and its
/// `error` text (secrets scrubbed, controls escaped).
struct Envelope {
    status: i64,
    body: Option<Value>,
    message: String,
}

/// Reads the envelope, or says why the answer is retried (HTTP 429, a body
/// that is not Withings' JSON).
fn read_envelope<T>(answer: &Answer, sent: &[&str]) -> Result<Envelope, Verdict<T>> {
    if answer.status == reqwest::StatusCode::TOO_MANY_REQUESTS {
        return Err(Verdict::Retry {
            kind: Transient::RateLimited,
            detail: "HTTP 429 Too Many Requests".into(),
            wait: answer.retry_after(),
        });
    }
    let envelope = first_json_value(&answer.body).ok_or_else(|| garbled(answer, sent))?;
    let status = envelope
        .get("status")
        .and_then(status_of)
        .ok_or_else(|| garbled(answer, sent))?;
    let message = envelope
        .get("error")
        .and_then(Value::as_str)
        .map(|text| clip(&scrub(text.trim(), sent)))
        .unwrap_or_default();
    Ok(Envelope {
        status,
        body: envelope.get("body").cloned(),
        message,
    })
}

fn garbled<T>(answer: &Answer, sent: &[&str]) -> Verdict<T> {
    Verdict::Retry {
        kind: Transient::Upstream,
        detail: scrub(&format!("{} instead of the expected JSON", answer.describe()), sent),
        wait: None,
    }
}

/// Judges a `getdevice` answer: status 0 is valid, the authentication-failed
/// family is refused, a wait or a garbled answer is retried like a token
/// request's, and any other status cannot tell (an upstream error).
fn classify_check(answer: &Answer, sent: &[&str]) -> Verdict<AccessCheck> {
    let Envelope { status, body, message } = match read_envelope(answer, sent) {
        Ok(envelope) => envelope,
        Err(verdict) => return verdict,
    };
    let detail = format!("Withings status {status} ({})", or_unknown(&message));
    match status_family(status) {
        StatusFamily::Ok => Verdict::Done(AccessCheck::Valid),
        StatusFamily::AuthFailed => Verdict::Done(AccessCheck::Refused { detail }),
        StatusFamily::RateLimited => Verdict::Retry {
            kind: Transient::RateLimited,
            detail,
            wait: wait_seconds(body.as_ref()),
        },
        _ if answer.status.is_server_error() => garbled(answer, sent),
        _ => Verdict::Retry {
            kind: Transient::Upstream,
            detail,
            wait: None,
        },
    }
}

fn or_unknown(message: &str) -> &str {
    if message.is_empty() { "no message" } else { message }
}

fn mentions_client(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    lower.contains("client_id") || lower.contains("client_secret") || lower.contains("invalid client")
}

/// An authentication failure: the grant, or the app's own credentials.
fn refusal(grant: &Grant<'_>, status: i64, message: &str) -> Verdict<TokenSet> {
    if mentions_client(message) {
        return Verdict::Stop(bad_credentials(status, message));
    }
    Verdict::Stop(grant.refused(format!("status {status}: {}", or_unknown(message))))
}

/// "Invalid params": refused when the text names the grant, else a setting.
fn invalid_params(grant: &Grant<'_>, status: i64, message: &str) -> Verdict<TokenSet> {
    let lower = message.to_ascii_lowercase();
    if mentions_client(message) {
        return Verdict::Stop(bad_credentials(status, message));
    }
    if lower.contains(grant.param_name()) || (matches!(grant, Grant::Refresh(_)) && lower.contains("refresh")) {
        return Verdict::Stop(grant.refused(format!("status {status}: {message}")));
    }
    if lower.contains("redirect_uri") {
        return Verdict::Stop(Error::config(
            format!("Withings refused the redirect URI (status {status}: {message})"),
            "set WITHINGS_REDIRECT_URI to exactly the callback registered for your Withings app",
        ));
    }
    Verdict::Stop(Error::Upstream {
        what: WHAT,
        attempts: 1,
        detail: format!(
            "Withings refused the request as invalid (status {status}: {})",
            or_unknown(message)
        ),
    })
}

fn bad_credentials(status: i64, message: &str) -> Error {
    Error::config(
        format!("Withings refused the app credentials (status {status}: {message})"),
        "check WITHINGS_CLIENT_ID and WITHINGS_CLIENT_SECRET against your app on developer.withings.com",
    )
}

fn wait_seconds(body: Option<&Value>) -> Option<Duration> {
    body?.get("wait_seconds")?.as_u64().map(Duration::from_secs)
}

/// The new token set of a `status: 0` body, read by the module's rule:
/// `None` only when the body holds no usable refresh token.
fn read_tokens(body: Option<&Value>, received_at: chrono::DateTime<chrono::Utc>) -> Option<TokenSet> {
    let body = body?;
    let refresh_token = body.get("refresh_token")?.as_str().filter(|t| !t.is_empty())?;
    let access_token = body
        .get("access_token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty());
    if access_token.is_none() {
        tracing::warn!("Withings sent a new refresh token without an access token; the new set is saved all the same");
    }
    let expires_in = match lifetime(body.get("expires_in")) {
        Lifetime::Given(seconds) => seconds,
        Lifetime::Assumed(why) => {
            tracing::warn!("Withings gave no usable token lifetime ({why}); assumed the documented 3 h");
            DOCUMENTED_LIFETIME_SECS
        }
    };
    Some(TokenSet {
        access_token: access_token.map(SecretString::from),
        refresh_token: SecretString::from(refresh_token),
        expires_at: Some(expiry(received_at, expires_in)),
        last_refreshed: Some(received_at),
        userid: body.get("userid").and_then(userid_of),
        scope: body.get("scope").and_then(Value::as_str).map(str::to_owned),
    })
}

/// How long a new access token lives, by the answer's `expires_in`.
#[derive(Debug, PartialEq, Eq)]
enum Lifetime {
    /// Whole seconds, at least one.
    Given(i64),
    /// None usable; the reason names what was wrong, never the value.
    Assumed(&'static str),
}

fn lifetime(expires_in: Option<&Value>) -> Lifetime {
    let seconds = match expires_in {
        None | Some(Value::Null) => return Lifetime::Assumed("expires_in is missing or null"),
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(text)) => text.trim().parse::<f64>().ok(),
        Some(_) => None,
    };
    match seconds {
        None => Lifetime::Assumed("expires_in is not a number"),
        // Beyond any clock (or `inf`, `NaN` from a string).
        Some(s) if !s.is_finite() || s >= i64::MAX as f64 => Lifetime::Assumed("expires_in is out of range"),
        Some(s) if s < 1.0 => Lifetime::Assumed("expires_in is not positive"),
        // A lifetime far beyond the documented one would leave the set
        // unrefreshed for as long, and a refresh token unused for a year
        // dies: believing less only refreshes sooner.
        Some(s) if s > MAX_BELIEVED_LIFETIME_SECS as f64 => {
            Lifetime::Assumed("expires_in is more than a day, far beyond the documented 3 h")
        }
        // Whole seconds: a fraction is dropped.
        Some(s) => Lifetime::Given(s as i64),
    }
}

/// Withings has sent `userid` both as a string and as a number; an
/// integral float (`363.0`) is shown without its `.0`.
fn userid_of(value: &Value) -> Option<String> {
    match value {
        Value::String(text) if !text.is_empty() => Some(text.clone()),
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() && f.fract() == 0.0 => Some(format!("{f:.0}")),
            _ => Some(n.to_string()),
        },
        _ => None,
    }
}

/// `received_at + expires_in`, capped at a year so that an absurd value
/// from the server cannot overflow the clock after the token has rotated.
fn expiry(received_at: chrono::DateTime<chrono::Utc>, expires_in: i64) -> chrono::DateTime<chrono::Utc> {
    const YEAR_SECS: i64 = 366 * 24 * 3600;
    received_at + chrono::Duration::seconds(expires_in.min(YEAR_SECS))
}

pub mod proxy;

#[cfg(test)]
mod tests;
