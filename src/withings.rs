//! `WithingsClient`: the only code that talks to Withings' token endpoint.
//!
//! Withings answers almost everything with HTTP 200 and a `status` inside the
//! body, so the HTTP status alone means little. Tokens are read only from a
//! `status: 0` answer; a refused grant stops at once (exit 4); anything
//! garbled or overloaded is retried by the shared loop in `http.rs`. Withings
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

use std::time::Duration;

use reqwest::Url;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::http::{Answer, HttpClient, Operation, Transient, Verdict, clip, scrub, shown_url};
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
}

/// The Withings client of `settings`' app; fails on missing credentials
/// (naming `needed_for`) before anything is locked or sent.
pub fn client_for(settings: &crate::settings::Settings, http: &HttpClient, needed_for: &str) -> Result<WithingsClient> {
    let id = settings.client_id(needed_for)?;
    let secret = settings.client_secret(needed_for)?;
    WithingsClient::new(http.clone(), settings.api_url()?, id, secret)
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
        })
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
        let form = self.form(grant);
        let sent: Vec<&str> = form
            .iter()
            .filter(|(name, _)| !PROTOCOL_FIELDS.contains(name))
            .map(|(_, value)| *value)
            .collect();
        tracing::debug!("POST {} (grant {})", shown_url(&self.token_url), grant.param_name());
        let build = |client: &reqwest::Client| client.post(self.token_url.clone()).form(&form);
        let judge = |answer: &Answer| {
            // Withings' own time when this host's clock is off (issue 18).
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
    match status {
        0 => match read_tokens(body.as_ref(), received_at) {
            Some(tokens) => Verdict::Done(tokens),
            None => Verdict::Retry {
                kind: Transient::Upstream,
                detail: "status 0 without a complete token set".into(),
                wait: None,
            },
        },
        601 => Verdict::Retry {
            kind: Transient::RateLimited,
            detail: format!("Withings status 601 ({})", or_unknown(&message)),
            wait: wait_seconds(body.as_ref()),
        },
        // Timeout, bad state, wrong action, "an unknown error occurred":
        // Withings' trouble, not a verdict on the grant.
        522 | 524 | 2554 | 2555 => Verdict::Retry {
            kind: Transient::Upstream,
            detail: format!("Withings status {status} ({})", or_unknown(&message)),
            wait: None,
        },
        100..=102 | 200 | 401 | 214 | 277 | 2553 => refusal(grant, status, &message),
        201..=213 | 501..=511 => invalid_params(grant, status, &message),
        _ if answer.status.is_server_error() => garbled(answer, sent),
        _ => Verdict::Retry {
            kind: Transient::Upstream,
            detail: format!("unexpected Withings status {status} ({})", or_unknown(&message)),
            wait: None,
        },
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
    match status {
        0 => Verdict::Done(AccessCheck::Valid),
        100..=102 | 200 | 401 | 214 | 277 | 2553 => Verdict::Done(AccessCheck::Refused { detail }),
        601 => Verdict::Retry {
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use crate::http::answer;
    use crate::tokens::now;

    fn answer_with_date(status: u16, body: &str, date: &str) -> Answer {
        let mut answer = answer(status, body);
        if let Ok(value) = reqwest::header::HeaderValue::from_str(date) {
            answer.headers.insert(reqwest::header::DATE, value);
        }
        answer
    }

    #[test]
    fn the_probe_reads_any_answer_and_the_date_header() {
        let refused = r#"{"status":503,"body":{},"error":"Invalid Params: invalid refresh_token"}"#;
        let probe = read_probe(
            &answer_with_date(200, refused, "Tue, 15 Nov 1994 08:12:31 GMT"),
            &[CLIENT_SECRET],
            true,
        );
        assert!(
            matches!(&probe.reply, ProbeReply::Answered { status: 503, message } if message == "Invalid Params: invalid refresh_token"),
            "{probe:?}"
        );
        assert_eq!(
            probe.server_time.map(crate::tokens::rfc3339).as_deref(),
            Some("1994-11-15T08:12:31Z")
        );
        let garbled = read_probe(&answer_with_date(502, "<html>", "yesterday"), &[], true);
        assert!(matches!(garbled.reply, ProbeReply::Unusable(_)), "{garbled:?}");
        assert_eq!(garbled.server_time, None);
    }

    #[test]
    fn the_probe_names_refused_credentials_only_when_it_sent_them() {
        let body = r#"{"status":503,"body":{},"error":"Invalid Params: invalid client_id"}"#;
        let with = read_probe(&answer(200, body), &[CLIENT_ID, CLIENT_SECRET], true);
        match with.reply {
            ProbeReply::CredentialsRefused(e) => {
                assert_eq!(e.exit_code(), 3);
                assert!(e.to_string().starts_with("Withings refused the app credentials"), "{e}");
            }
            other => panic!("{other:?}"),
        }
        let without = read_probe(&answer(200, body), &[], false);
        assert!(
            matches!(without.reply, ProbeReply::Answered { status: 503, .. }),
            "{without:?}"
        );
    }

    fn refresh_grant() -> SecretString {
        SecretString::from("old-refresh-token")
    }

    const CLIENT_ID: &str = "client-id-123";
    const CLIENT_SECRET: &str = "client-secret-456";

    fn judge(status: u16, body: &str) -> Verdict<TokenSet> {
        let token = refresh_grant();
        let sent = [CLIENT_ID, CLIENT_SECRET, token.expose_secret()];
        classify(&answer(status, body), &Grant::Refresh(&token), &sent, now())
    }

    /// Every text a verdict carries: what could reach stderr or stdout.
    fn texts(verdict: &Verdict<TokenSet>) -> String {
        match verdict {
            Verdict::Done(_) => String::new(),
            Verdict::Stop(e) => format!("{e} {}", e.action()),
            Verdict::Retry { detail, .. } | Verdict::Unsure { detail } | Verdict::GiveUp { detail, .. } => {
                detail.clone()
            }
        }
    }

    #[test]
    fn withings_error_texts_never_echo_a_sent_value() {
        let echo = format!("refresh_token old-refresh-token with {CLIENT_ID} and {CLIENT_SECRET} refused");
        for status in [2555, 401, 503, 601, 522, 999] {
            let body = json!({ "status": status, "body": {}, "error": echo }).to_string();
            let verdict = judge(200, &body);
            let text = texts(&verdict);
            assert!(text.contains("[redacted]"), "{status}: {text}");
            for value in ["old-refresh-token", CLIENT_ID, CLIENT_SECRET] {
                assert!(!text.contains(value), "{status} leaks {value}: {text}");
            }
        }
    }

    #[test]
    fn a_sent_value_across_the_clip_is_scrubbed_whole() {
        // Clipping first would cut the token at character 200 and leave its
        // first half for the match to miss.
        let error = format!("{} old-refresh-token", "x".repeat(190));
        let body = json!({ "status": 2555, "body": {}, "error": error }).to_string();
        let text = texts(&judge(200, &body));
        assert!(!text.contains("old-refr"), "{text}");
    }

    #[test]
    fn a_code_grant_scrubs_the_code_and_the_redirect_uri() {
        let sent = [CLIENT_ID, CLIENT_SECRET, "one-time-code-789", "https://example.com/cb"];
        let grant = Grant::Code {
            code: "one-time-code-789",
            redirect_uri: "https://example.com/cb",
        };
        let error = "Invalid Params: invalid code one-time-code-789 for https://example.com/cb";
        let body = json!({ "status": 503, "body": {}, "error": error }).to_string();
        let verdict = classify(&answer(200, &body), &grant, &sent, now());
        let Verdict::Stop(e) = &verdict else {
            panic!("not a stop")
        };
        assert_eq!(e.code(), "INVALID_CODE");
        assert_eq!(
            e.to_string(),
            "Withings refused the authorization code: status 503: Invalid Params: invalid code [redacted] for [redacted]"
        );
    }

    #[test]
    fn tokens_come_only_from_status_zero() {
        let ok = r#"{"status":0,"body":{"userid":363,"access_token":"a","refresh_token":"r","expires_in":10800,"scope":"user.info"}}"#;
        let Verdict::Done(set) = judge(200, ok) else {
            panic!("not done")
        };
        assert_eq!(set.userid.as_deref(), Some("363"));
        assert_eq!(
            set.expires_at.unwrap() - set.last_refreshed.unwrap(),
            chrono::Duration::seconds(10800)
        );
        let nulls = r#"{"status":503,"body":{"access_token":"a","refresh_token":"r","expires_in":1}}"#;
        assert!(!matches!(judge(200, nulls), Verdict::Done(_)));
    }

    /// The lifetime (seconds), user id, scope and whether an access token
    /// came, of a `status: 0` answer whose body is `body`; panics unless
    /// the answer is a new set holding `NEWR`.
    fn saved(body: &str) -> (i64, Option<String>, Option<String>, bool) {
        let Verdict::Done(set) = judge(200, body) else {
            panic!("not saved: {body}")
        };
        assert_eq!(set.refresh_token.expose_secret(), "NEWR", "{body}");
        let (Some(expires), Some(refreshed)) = (set.expires_at, set.last_refreshed) else {
            panic!("no expiry: {body}")
        };
        let lifetime = (expires - refreshed).num_seconds();
        (lifetime, set.userid, set.scope, set.access_token.is_some())
    }

    fn with_expires_in(expires_in: &str) -> String {
        format!(
            r#"{{"status":0,"body":{{"access_token":"A","refresh_token":"NEWR","expires_in":{expires_in},"userid":"1"}}}}"#
        )
    }

    #[test]
    fn a_new_refresh_token_is_saved_whatever_shape_expires_in_has() {
        for (expires_in, lifetime) in [
            (r#""10800""#, 10800),
            ("10800.5", 10800),
            (r#"" 3600.9 ""#, 3600),
            ("null", DOCUMENTED_LIFETIME_SECS),
            ("0", DOCUMENTED_LIFETIME_SECS),
            ("-5", DOCUMENTED_LIFETIME_SECS),
            ("0.5", DOCUMENTED_LIFETIME_SECS),
            ("18446744073709551616", DOCUMENTED_LIFETIME_SECS),
            ("1e400", DOCUMENTED_LIFETIME_SECS),
            (&format!("-{}", "9".repeat(400)), DOCUMENTED_LIFETIME_SECS),
            (r#""NaN""#, DOCUMENTED_LIFETIME_SECS),
            (r#""soon""#, DOCUMENTED_LIFETIME_SECS),
            ("[10800]", DOCUMENTED_LIFETIME_SECS),
        ] {
            let body = with_expires_in(expires_in);
            assert_eq!(saved(&body).0, lifetime, "{body}");
        }
        let missing = r#"{"status":0,"body":{"access_token":"A","refresh_token":"NEWR","userid":"1"}}"#;
        assert_eq!(saved(missing).0, DOCUMENTED_LIFETIME_SECS);
    }

    #[test]
    fn an_unusable_lifetime_is_assumed_and_says_why() {
        assert_eq!(lifetime(Some(&json!(10800))), Lifetime::Given(10800));
        assert_eq!(lifetime(None), Lifetime::Assumed("expires_in is missing or null"));
        assert_eq!(
            lifetime(Some(&json!("x"))),
            Lifetime::Assumed("expires_in is not a number")
        );
        assert_eq!(
            lifetime(Some(&json!(-5))),
            Lifetime::Assumed("expires_in is not positive")
        );
        assert_eq!(
            lifetime(Some(&json!(1e300))),
            Lifetime::Assumed("expires_in is out of range")
        );
        assert_eq!(lifetime(Some(&json!(86_400))), Lifetime::Given(86_400));
        for absurd in [
            json!(86_401),
            json!(1_000_000_000),
            json!(4_611_686_018_427_387_904_u64),
        ] {
            assert_eq!(
                lifetime(Some(&absurd)),
                Lifetime::Assumed("expires_in is more than a day, far beyond the documented 3 h"),
                "{absurd}"
            );
        }
    }

    #[test]
    fn a_new_refresh_token_is_saved_whatever_shape_the_other_fields_have() {
        let body =
            |fields: &str| format!(r#"{{"status":0,"body":{{"refresh_token":"NEWR","expires_in":10800{fields}}}}}"#);
        let (_, userid, _, _) = saved(&body(r#","access_token":"A","userid":363.0"#));
        assert_eq!(userid.as_deref(), Some("363"));
        let (_, userid, _, _) = saved(&body(r#","access_token":"A","userid":363"#));
        assert_eq!(userid.as_deref(), Some("363"));
        let (_, userid, scope, _) = saved(&body(r#","access_token":"A","userid":[1],"scope":5"#));
        assert_eq!((userid, scope), (None, None));
        let (_, _, scope, _) = saved(&body(r#","access_token":"A","scope":"user.info""#));
        assert_eq!(scope.as_deref(), Some("user.info"));
        for access in [
            r#","access_token":"""#,
            r#","access_token":null"#,
            r#","access_token":7"#,
            "",
        ] {
            let (_, _, _, has_access) = saved(&body(access));
            assert!(!has_access, "{access}");
        }
    }

    #[test]
    fn a_new_refresh_token_is_saved_from_a_body_with_a_bom_or_trailing_bytes() {
        let tokens = with_expires_in("10800");
        for body in [
            format!("\u{feff}{tokens}"),
            format!("{tokens}\n<!-- cached -->"),
            format!("\u{feff} {tokens}{{\"status\":503}}"),
        ] {
            assert_eq!(saved(&body).0, 10800, "{body}");
        }
        let huge_userid =
            r#"{"status":0,"body":{"refresh_token":"NEWR","expires_in":10800,"userid":1e999,"x":"1e999 \"-2e999"}}"#;
        assert_eq!(saved(huge_userid).1, None);
        let status_as_text = r#"{"status":"0","body":{"refresh_token":"NEWR","expires_in":10800}}"#;
        assert_eq!(saved(status_as_text).0, 10800);
    }

    #[test]
    fn only_numbers_beyond_f64_are_replaced_and_never_inside_strings() {
        let body = br#"{"a":1e400,"b":"2e400 \" 3e400","c":[-1e999,1.5e3],"d":"\\"}"#;
        let tamed = without_huge_numbers(body).map(String::from_utf8);
        assert_eq!(
            tamed,
            Some(Ok(
                r#"{"a":null,"b":"2e400 \" 3e400","c":[null,1.5e3],"d":"\\"}"#.to_owned()
            ))
        );
        assert_eq!(without_huge_numbers(br#"{"a":1e300,"b":"1e400"}"#), None);
    }

    #[test]
    fn only_an_answer_without_a_usable_refresh_token_is_retried() {
        for refresh in [
            r#""refresh_token":"","#,
            r#""refresh_token":null,"#,
            r#""refresh_token":5,"#,
            "",
        ] {
            let body = format!(r#"{{"status":0,"body":{{{refresh}"access_token":"A","expires_in":10800}}}}"#);
            assert!(matches!(judge(200, &body), Verdict::Retry { .. }), "{body}");
        }
        for body in [r#"{"status":0,"body":"NEWR"}"#, r#"{"status":0}"#, r#"[0]"#, "\u{feff}"] {
            assert!(matches!(judge(200, body), Verdict::Retry { .. }), "{body}");
        }
    }

    #[test]
    fn absurd_expires_in_is_capped_not_a_panic() {
        let body = r#"{"status":0,"body":{"access_token":"a","refresh_token":"r","expires_in":9000000000000}}"#;
        let Verdict::Done(set) = judge(200, body) else {
            panic!("not done")
        };
        assert_eq!(
            set.expires_at.unwrap() - set.last_refreshed.unwrap(),
            chrono::Duration::hours(3)
        );
    }

    #[test]
    fn a_withings_error_text_is_shown_on_one_line_without_terminal_controls() {
        let error = "Invalid Params: invalid refresh_token \u{1b}]0;TITLE\u{7}\u{202e}\r\nerror: fake line\r\n";
        let body = json!({ "status": 503, "body": {}, "error": error }).to_string();
        let Verdict::Stop(e) = judge(200, &body) else {
            panic!("not a stop")
        };
        assert_eq!(
            e.to_string(),
            r"Withings refused the refresh token: status 503: Invalid Params: invalid refresh_token \u{1b}]0;TITLE\u{7}\u{202e}\u{d}\u{a}error: fake line"
        );
    }

    #[test]
    fn the_token_endpoint_is_appended_to_the_base_path_keeping_its_query() {
        let token_url = |base: &str| {
            let http = HttpClient::new(crate::settings::HttpPolicy {
                timeout: Duration::from_secs(1),
                retries: 0,
                retry_delay: Duration::ZERO,
            });
            let base = Url::parse(base).map_err(|e| e.to_string());
            let client = http.map_err(|e| e.to_string()).and_then(|http| {
                WithingsClient::new(http, &base?, CLIENT_ID, &refresh_grant()).map_err(|e| e.to_string())
            });
            client.map(|c| c.token_url.to_string())
        };
        assert_eq!(
            token_url("https://wbsapi.withings.net").as_deref(),
            Ok("https://wbsapi.withings.net/v2/oauth2")
        );
        assert_eq!(
            token_url("http://u:p@127.0.0.1:9/proxy/?key=v#f").as_deref(),
            Ok("http://u:p@127.0.0.1:9/proxy/v2/oauth2?key=v#f")
        );
    }

    #[test]
    fn refused_refresh_token_stops_with_exit_4() {
        let body = r#"{"status":503,"body":{},"error":"Invalid Params: invalid refresh_token"}"#;
        let Verdict::Stop(e) = judge(200, body) else {
            panic!("not a stop")
        };
        assert_eq!(e.code(), "INVALID_REFRESH_TOKEN");
        let Verdict::Stop(e) = judge(200, r#"{"status":401,"body":{},"error":"invalid_token"}"#) else {
            panic!()
        };
        assert_eq!(e.exit_code(), 4);
    }

    #[test]
    fn wrong_client_secret_is_a_configuration_error() {
        let body = r#"{"status":503,"body":{},"error":"Invalid Params: invalid client_secret"}"#;
        let Verdict::Stop(e) = judge(200, body) else { panic!() };
        assert_eq!(e.code(), "CONFIGURATION_ERROR");
    }

    #[test]
    fn transient_answers_are_retried() {
        for (status, body) in [
            (500, ""),
            (502, "<html>Bad gateway</html>"),
            (200, r#"{"status":0,"body":{"access_"#),
            (200, r#"{"status":522,"body":{}}"#),
            (200, r#"{"status":0,"body":{}}"#),
            (200, r#"{"status":2554,"body":{}}"#),
            (200, r#"{"status":2555,"body":{},"error":"An unknown error occurred"}"#),
        ] {
            assert!(matches!(judge(status, body), Verdict::Retry { .. }), "{status} {body}");
        }
    }

    #[test]
    fn an_access_token_check_reads_valid_refused_or_unknown() {
        let check = |status: u16, body: &str| classify_check(&answer(status, body), &["acc-tok-1"]);
        let ok = r#"{"status":0,"body":{"devices":[]}}"#;
        assert_eq!(check(200, ok).done(), Some(AccessCheck::Valid));
        let refused = r#"{"status":401,"body":{},"error":"invalid_token: acc-tok-1 is invalid"}"#;
        let Some(AccessCheck::Refused { detail }) = check(200, refused).done() else {
            panic!("not refused")
        };
        assert_eq!(detail, "Withings status 401 (invalid_token: [redacted] is invalid)");
        for (status, body) in [
            (200, r#"{"status":2554}"#),
            (200, r#"{"status":2555}"#),
            (502, "<html>"),
            (200, ""),
        ] {
            assert!(matches!(check(status, body), Verdict::Retry { .. }), "{body}");
        }
    }

    impl<T> Verdict<T> {
        fn done(self) -> Option<T> {
            match self {
                Verdict::Done(value) => Some(value),
                _ => None,
            }
        }
    }

    #[test]
    fn rate_limit_carries_the_wait() {
        let body = r#"{"status":601,"body":{"wait_seconds":5},"error":"Same arguments in less than 10 seconds"}"#;
        let Verdict::Retry { kind, wait, .. } = judge(200, body) else {
            panic!()
        };
        assert_eq!(kind, Transient::RateLimited);
        assert_eq!(wait, Some(Duration::from_secs(5)));
    }
}
