//! A webhook receiver for the event tests: an [`Upstream`] (wiremock on
//! loopback) whose mocks check each request's Standard Webhooks signature
//! exactly as a receiver's library does ([`signed_with`]: the `whsec_`
//! secret base64-decoded, HMAC-SHA256 of `{webhook-id}.{webhook-timestamp}.{body}`,
//! one of the space-separated `v1,` signatures matching, the timestamp
//! within 5 minutes), answer in turn from a list ([`answers`], [`statuses_in_turn`]: `500` then
//! `200`), and give back what was delivered for the tests' secret greps
//! ([`assert_no_secret_in_bodies`]).
//!
//! ```text
//! let hooks = webhook_receiver();
//! hooks.mount(hook_post().and(signed_with(WEBHOOK_SECRET)).respond_with(statuses_in_turn([500, 200])).expect(2));
//! env.set("WITHINGS_TOKEN_WEBHOOK_URL", hook_url(&hooks))
//!    .set("WITHINGS_TOKEN_WEBHOOK_SECRET", WEBHOOK_SECRET);
//! ```
//!
//! A request that is not signed right matches no mock, and wiremock
//! answers it 404: the sender reports the webhook `refused`.

use super::*;

use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine as _;
use wiremock::matchers::{method, path};
use wiremock::{Match, Request, Respond};

/// A signing secret as Standard Webhooks issue them: `whsec_` and the
/// base64 of 32 bytes (text here, so that a test can grep for the key too).
pub const WEBHOOK_SECRET: &str = "whsec_c2VjcmV0LWtleS1mb3ItdGhlLXdlYmhvb2stdGVzdHM=";

/// A webhook's path that is its credential, as Slack's and Discord's are:
/// no output, log or body may carry it.
pub const HOOK_PATH: &str = "/services/T0PATHSECRET/B0PATHSECRET/hook-path-secret-4711";

/// How far a timestamp may be from the receiver's clock (the libraries' 5 minutes).
const TOLERANCE_SECS: i64 = 5 * 60;

/// A receiver with nothing mounted yet.
pub fn webhook_receiver() -> Upstream {
    Upstream::start()
}

/// The URL of [`HOOK_PATH`] on `receiver`.
pub fn hook_url(receiver: &Upstream) -> String {
    format!("{}{HOOK_PATH}", receiver.uri())
}

/// A POST to [`HOOK_PATH`].
pub fn hook_post() -> MockBuilder {
    Mock::given(method("POST")).and(path(HOOK_PATH))
}

/// Every request `receiver` had on [`HOOK_PATH`], in order.
pub fn hook_requests(receiver: &Upstream) -> Vec<Request> {
    requests_to(receiver, HOOK_PATH)
}

/// Matches a request signed with `secret` (see [`verify_signature`]).
pub fn signed_with(secret: &str) -> SignedWith {
    SignedWith {
        secret: secret.to_owned(),
    }
}

pub struct SignedWith {
    secret: String,
}

impl Match for SignedWith {
    fn matches(&self, request: &Request) -> bool {
        verify_signature(request, &self.secret).is_ok()
    }
}

/// Checks a request as a Standard Webhooks receiver does; says why not.
pub fn verify_signature(request: &Request, secret: &str) -> Result<(), String> {
    let id = header(request, "webhook-id").ok_or("no webhook-id")?;
    let timestamp = header(request, "webhook-timestamp").ok_or("no webhook-timestamp")?;
    let signatures = header(request, "webhook-signature").ok_or("no webhook-signature")?;
    let sent_at: i64 = timestamp.parse().map_err(|_| format!("timestamp {timestamp:?}"))?;
    if (chrono::Utc::now().timestamp() - sent_at).abs() > TOLERANCE_SECS {
        return Err(format!("timestamp {sent_at} is not within 5 minutes"));
    }
    let key = match secret.strip_prefix("whsec_") {
        Some(encoded) => base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|e| format!("secret: {e}"))?,
        None => secret.as_bytes().to_vec(),
    };
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key);
    let mut signed = format!("{id}.{timestamp}.").into_bytes();
    signed.extend_from_slice(&request.body);
    let matches = signatures.split(' ').filter_map(|s| s.strip_prefix("v1,")).any(|tag| {
        base64::engine::general_purpose::STANDARD
            .decode(tag)
            .is_ok_and(|tag| ring::hmac::verify(&key, &signed, &tag).is_ok())
    });
    if matches {
        Ok(())
    } else {
        Err(format!("no v1 signature in {signatures:?} matches"))
    }
}

/// A header's value as text.
pub fn header(request: &Request, name: &str) -> Option<String> {
    request.headers.get(name)?.to_str().ok().map(str::to_owned)
}

/// Answers each request with the next of `answers`, the last one again
/// once they run out.
pub fn answers(answers: impl IntoIterator<Item = ResponseTemplate>) -> Answers {
    let answers: Vec<ResponseTemplate> = answers.into_iter().collect();
    assert!(!answers.is_empty(), "at least one answer");
    Answers {
        answers,
        next: AtomicUsize::new(0),
    }
}

/// [`answers`] of bare statuses.
pub fn statuses_in_turn(statuses: impl IntoIterator<Item = u16>) -> Answers {
    answers(statuses.into_iter().map(ResponseTemplate::new))
}

pub struct Answers {
    answers: Vec<ResponseTemplate>,
    next: AtomicUsize,
}

impl Respond for Answers {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let n = self.next.fetch_add(1, Ordering::SeqCst);
        self.answers[n.min(self.answers.len() - 1)].clone()
    }
}

/// No request `receiver` had carries any of `secrets`, in its body, its
/// headers or its URL's query.
pub fn assert_no_secret_in_bodies(receiver: &Upstream, secrets: &[&str]) {
    for request in receiver.requests() {
        let body = String::from_utf8_lossy(&request.body);
        let headers: Vec<String> = request
            .headers
            .iter()
            .map(|(name, value)| format!("{name}: {}", String::from_utf8_lossy(value.as_bytes())))
            .collect();
        for secret in secrets {
            assert!(!body.contains(secret), "a body carries {secret}: {body}");
            assert!(
                !headers.iter().any(|h| h.contains(secret)),
                "a header carries {secret}: {headers:?}"
            );
            assert!(
                !request.url.query().unwrap_or_default().contains(secret),
                "{}",
                request.url
            );
        }
    }
}

/// The decoded key of [`WEBHOOK_SECRET`], as text: no body may carry it
/// either.
pub fn webhook_key_text() -> String {
    let encoded = WEBHOOK_SECRET.trim_start_matches("whsec_");
    let key = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .expect("base64");
    String::from_utf8(key).expect("the test key is text")
}
