//! `WithingsClient`: the only code that talks to Withings' token endpoint.
//!
//! Withings answers almost everything with HTTP 200 and a `status` inside the
//! body, so the HTTP status alone means little. Tokens are read only from a
//! `status: 0` answer; a refused grant stops at once (exit 4); anything
//! garbled or overloaded is retried by the shared loop in `http.rs`. Withings
//! quotes its input in error texts, so every value we sent is scrubbed out of
//! them before they reach an error or a log line.

use std::time::Duration;

use reqwest::Url;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::http::{Answer, HttpClient, Operation, Transient, Verdict, clip, scrub};
use crate::tokens::{TokenSet, now};

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
    // A token answer is under 2 KB.
    max_answer: 64 * 1024,
    document: (),
};

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
    client_id: String,
    client_secret: SecretString,
}

impl WithingsClient {
    /// `api_url` is the base (`https://wbsapi.withings.net`); `/v2/oauth2` is appended.
    pub fn new(http: HttpClient, api_url: &Url, client_id: &str, client_secret: &SecretString) -> Result<Self> {
        let base = api_url.as_str().trim_end_matches('/');
        let token_url = Url::parse(&format!("{base}/v2/oauth2")).map_err(|e| {
            Error::config(
                format!("WITHINGS_API_URL is not usable: {e}"),
                "set it to an https:// base URL",
            )
        })?;
        Ok(WithingsClient {
            http,
            token_url,
            client_id: client_id.to_owned(),
            client_secret: client_secret.clone(),
        })
    }

    /// Trades `grant` for a new token set, retrying transient failures.
    pub async fn request_token(&self, grant: &Grant<'_>) -> Result<TokenSet> {
        self.http.with_retries(WHAT, || self.attempt(grant)).await
    }

    async fn attempt(&self, grant: &Grant<'_>) -> Verdict<TokenSet> {
        let form = self.form(grant);
        let sent: Vec<&str> = form
            .iter()
            .filter(|(name, _)| !PROTOCOL_FIELDS.contains(name))
            .map(|(_, value)| *value)
            .collect();
        tracing::debug!("POST {} (grant {})", self.token_url, grant.param_name());
        let build = |client: &reqwest::Client| client.post(self.token_url.clone()).form(&form);
        let judge = |answer: &Answer| {
            let received_at = now();
            tracing::debug!("Withings answered {}", scrub(&answer.describe(), &sent));
            classify(answer, grant, &sent, received_at)
        };
        self.http.attempt(&REQUEST_TOKEN, build, judge).await
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

#[derive(Deserialize)]
struct Envelope {
    status: Option<i64>,
    #[serde(default)]
    body: Option<serde_json::Value>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct TokenBody {
    access_token: String,
    refresh_token: Option<String>,
    expires_in: i64,
    #[serde(default)]
    userid: Option<UserId>,
    #[serde(default)]
    scope: Option<String>,
}

/// Withings has sent `userid` both as a string and as a number.
#[derive(Deserialize)]
#[serde(untagged)]
enum UserId {
    Text(String),
    Number(i64),
}

impl UserId {
    fn into_string(self) -> String {
        match self {
            UserId::Text(s) => s,
            UserId::Number(n) => n.to_string(),
        }
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
    let garbled = || Verdict::Retry {
        kind: Transient::Upstream,
        detail: scrub(&format!("{} instead of the expected JSON", answer.describe()), sent),
        wait: None,
    };
    if answer.status == reqwest::StatusCode::TOO_MANY_REQUESTS {
        return Verdict::Retry {
            kind: Transient::RateLimited,
            detail: "HTTP 429 Too Many Requests".into(),
            wait: answer.retry_after(),
        };
    }
    let Ok(envelope) = serde_json::from_slice::<Envelope>(&answer.body) else {
        return garbled();
    };
    let Some(status) = envelope.status else {
        return garbled();
    };
    let message = envelope
        .error
        .as_deref()
        .map(|text| clip(&scrub(text, sent)))
        .unwrap_or_default();
    match status {
        0 => read_tokens(envelope.body, received_at).unwrap_or_else(|| Verdict::Retry {
            kind: Transient::Upstream,
            detail: "status 0 without a complete token set".into(),
            wait: None,
        }),
        601 => Verdict::Retry {
            kind: Transient::RateLimited,
            detail: format!("Withings status 601 ({})", or_unknown(&message)),
            wait: wait_seconds(envelope.body.as_ref()),
        },
        522 | 524 => Verdict::Retry {
            kind: Transient::Upstream,
            detail: format!("Withings status {status} ({})", or_unknown(&message)),
            wait: None,
        },
        100..=102 | 200 | 401 | 214 | 277 | 2553 | 2555 => refusal(grant, status, &message),
        201..=213 | 501..=511 => invalid_params(grant, status, &message),
        _ if answer.status.is_server_error() => garbled(),
        _ => Verdict::Retry {
            kind: Transient::Upstream,
            detail: format!("unexpected Withings status {status} ({})", or_unknown(&message)),
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

fn wait_seconds(body: Option<&serde_json::Value>) -> Option<Duration> {
    body?.get("wait_seconds")?.as_u64().map(Duration::from_secs)
}

fn read_tokens(
    body: Option<serde_json::Value>,
    received_at: chrono::DateTime<chrono::Utc>,
) -> Option<Verdict<TokenSet>> {
    let body: TokenBody = serde_json::from_value(body?).ok()?;
    if body.access_token.is_empty() || body.expires_in <= 0 {
        return None;
    }
    let refresh_token = body.refresh_token.filter(|t| !t.is_empty())?;
    Some(Verdict::Done(TokenSet {
        access_token: Some(SecretString::from(body.access_token)),
        refresh_token: SecretString::from(refresh_token),
        expires_at: Some(expiry(received_at, body.expires_in)),
        last_refreshed: Some(received_at),
        userid: body.userid.map(UserId::into_string),
        scope: body.scope,
    }))
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
            Verdict::Retry { detail, .. } | Verdict::Unsure { detail } => detail.clone(),
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

    #[test]
    fn absurd_expires_in_is_capped_not_a_panic() {
        let body = r#"{"status":0,"body":{"access_token":"a","refresh_token":"r","expires_in":9000000000000}}"#;
        let Verdict::Done(set) = judge(200, body) else {
            panic!("not done")
        };
        assert!(set.expires_at.unwrap() - set.last_refreshed.unwrap() <= chrono::Duration::days(366));
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
        ] {
            assert!(matches!(judge(status, body), Verdict::Retry { .. }), "{status} {body}");
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
