//! `--server URL`: the one client of a running `withings-token serve`. The
//! commands that take it (`status`, `refresh`, `auth-url`, `exchange`,
//! `usage`) ask the server instead of Withings and print its report through
//! the same output module, so the outputs and exit codes are the local ones: the
//! server's JSON error object becomes [`Error::Remote`] with the same code,
//! and a refused `X-Admin-Token` is a configuration error naming
//! `ADMIN_API_TOKEN` (exit 3).
//!
//! `--account NAME` (or WITHINGS_TOKEN_ACCOUNT) goes to the server as
//! `?account=NAME` on every call; without it the server acts on its only
//! account, and says which to name when it keeps several.
//!
//! The admin API never sends a token unmasked, so what needs one
//! (`--output env`, `--reveal`) is refused before anything is sent: the
//! tokens leave the server only through the broker (`GET /v1/access-token`),
//! which `access-token` and `exec` ask with `WITHINGS_TOKEN_READER_TOKEN`
//! (or the admin token) as a bearer; `api` sends the same bearer to the
//! Withings proxy (`/v1/withings/PATH`), and gets Withings' answer, never a
//! token.

use chrono::{DateTime, Utc};
use reqwest::{Method, StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::accounts::AccountName;
use crate::data_call::{DataAnswer, DataRequest};
use crate::error::{Error, Result};
use crate::http::{Answer, HttpClient, Operation, Transient, Verdict};
use crate::output::{AuthUrlReport, ErrorReport, HealthReport, StatusReport, TokenReport, UsageReport, known_code};
use crate::redact::{clip, shown_url};
use crate::settings::{OutputFormat, Settings};

const WHAT: &str = crate::error::SERVER;

/// Reads are sent again after a lost answer.
const READ: Operation = Operation {
    name: "admin read",
    idempotent: true,
    resend_oversized: true,
    max_answer: 256 * 1024,
    document: (),
};

/// A refresh or exchange whose answer is lost may have rotated the set; it
/// is not sent twice (the server saved it: `status` shows it).
const CHANGE: Operation = Operation {
    name: "admin change",
    idempotent: false,
    resend_oversized: true,
    max_answer: 256 * 1024,
    document: (),
};

pub struct ServerClient {
    http: HttpClient,
    base: Url,
    credential: Credential,
    /// The account named, sent as `?account=`.
    account: Option<AccountName>,
}

/// What opens the server's door, and how it is sent.
enum Credential {
    /// `ADMIN_API_TOKEN`, as `X-Admin-Token`: the admin endpoints.
    Admin(SecretString),
    /// A bearer for the broker: `WITHINGS_TOKEN_READER_TOKEN`, else the
    /// admin token (the server takes either there). `name` is its variable.
    Bearer { token: SecretString, name: &'static str },
    /// Nothing: `GET /health`, which platforms probe without one.
    Nothing,
}

/// The broker's answer: an access token that lives at least `min_ttl` more.
pub struct BrokeredToken {
    pub access_token: SecretString,
    pub expires_at: Option<DateTime<Utc>>,
    pub userid: Option<String>,
}

/// `GET /v1/access-token`'s JSON; the token is wrapped as soon as it is read.
#[derive(Deserialize)]
struct BrokerAnswer {
    access_token: String,
    #[serde(default)]
    expires_at: Option<DateTime<Utc>>,
    #[serde(default)]
    userid: Option<String>,
}

/// `POST /admin/token/refresh`'s body.
#[derive(Serialize)]
pub struct RefreshBody {
    pub update_railway: bool,
    pub trigger_deployment: bool,
}

/// `POST /admin/token/exchange`'s body.
#[derive(Serialize)]
pub struct ExchangeBody<'a> {
    pub code: &'a str,
    pub update_railway: bool,
    pub trigger_deployment: bool,
    /// Sent only when set, so an older server's strict body still parses.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub replace: bool,
}

impl ServerClient {
    /// The client when `--server` is given; `needs_tokens` refuses what
    /// the admin API cannot give (`--output env`, `--reveal`).
    pub fn of(settings: &Settings, needs_tokens: bool) -> Result<Option<ServerClient>> {
        let Some(remote) = &settings.remote else {
            return Ok(None);
        };
        let base = remote.get()?.clone();
        if needs_tokens && (settings.output.format == OutputFormat::Env || settings.output.reveal) {
            return Err(Error::config(
                "--output env and --reveal need the tokens, which the admin API of --server never sends",
                "run the command where the store is, or fetch the access token from the server's GET /v1/access-token",
            ));
        }
        let admin = settings.server.admin_token.clone().ok_or_else(|| {
            Error::config(
                "ADMIN_API_TOKEN is not set (--server needs it: the admin endpoints ask for it)",
                "set ADMIN_API_TOKEN to the value the server was started with",
            )
        })?;
        let http = HttpClient::new(settings.http)?;
        Ok(Some(ServerClient {
            http,
            base,
            credential: Credential::Admin(admin),
            account: settings.account.clone(),
        }))
    }

    /// The client of the broker when `--server` is given, with
    /// `WITHINGS_TOKEN_READER_TOKEN`, else `ADMIN_API_TOKEN`.
    pub fn broker(settings: &Settings) -> Result<Option<ServerClient>> {
        let Some(remote) = &settings.remote else {
            return Ok(None);
        };
        let base = remote.get()?.clone();
        let server = &settings.server;
        let credential = match (&server.reader_token, &server.admin_token) {
            (Some(token), _) => Credential::Bearer {
                token: token.clone(),
                name: "WITHINGS_TOKEN_READER_TOKEN",
            },
            (None, Some(token)) => Credential::Bearer {
                token: token.clone(),
                name: "ADMIN_API_TOKEN",
            },
            (None, None) => {
                return Err(Error::config(
                    "neither WITHINGS_TOKEN_READER_TOKEN nor ADMIN_API_TOKEN is set (--server's GET /v1/access-token asks for one)",
                    "set WITHINGS_TOKEN_READER_TOKEN (or ADMIN_API_TOKEN) to the value the server was started with",
                ));
            }
        };
        let http = HttpClient::new(settings.http)?;
        Ok(Some(ServerClient {
            http,
            base,
            credential,
            account: settings.account.clone(),
        }))
    }

    /// The client of `GET /health` when `--server` is given: no credential
    /// (a health check runs where none may be set) and no account.
    pub fn prober(settings: &Settings) -> Result<Option<ServerClient>> {
        let Some(remote) = &settings.remote else {
            return Ok(None);
        };
        Ok(Some(ServerClient {
            http: HttpClient::new(settings.http)?,
            base: remote.get()?.clone(),
            credential: Credential::Nothing,
            account: None,
        }))
    }

    /// `GET /health`: the server's answer when it is healthy; its 503 is
    /// its error object's error (an unreadable store: exit 3).
    pub async fn health(&self) -> Result<HealthReport> {
        self.call(Method::GET, "/health", None::<&()>).await
    }

    /// An access token that lives at least `min_ttl` more, refreshed by the
    /// server first when needed.
    pub async fn access_token(&self, min_ttl: std::time::Duration) -> Result<BrokeredToken> {
        let min_ttl = format!("{}ms", min_ttl.as_millis());
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("min_ttl", &min_ttl)
            .finish();
        let answer: BrokerAnswer = self
            .call(Method::GET, &format!("/v1/access-token?{query}"), None::<&()>)
            .await?;
        let account = self.account.as_ref().map(ToString::to_string).unwrap_or_default();
        let slot = format!("brokered access token of {account}");
        crate::redact::remember_secret(&slot, &answer.access_token);
        Ok(BrokeredToken {
            access_token: SecretString::from(answer.access_token),
            expires_at: answer.expires_at,
            userid: answer.userid,
        })
    }

    pub async fn status(&self) -> Result<StatusReport> {
        self.call(Method::GET, "/admin/token/status", None::<&()>).await
    }

    pub async fn refresh(&self, body: &RefreshBody) -> Result<TokenReport> {
        self.call(Method::POST, "/admin/token/refresh", Some(body)).await
    }

    pub async fn authorization_url(&self) -> Result<AuthUrlReport> {
        self.call(Method::GET, "/admin/authorization-url", None::<&()>).await
    }

    pub async fn exchange(&self, body: &ExchangeBody<'_>) -> Result<TokenReport> {
        self.call(Method::POST, "/admin/token/exchange", Some(body)).await
    }

    /// `api`'s data call through the server's Withings proxy
    /// (`/v1/withings/PATH`), its answer read whole: whatever Withings
    /// answered comes back as it came; the proxy's own refusals (its JSON
    /// error object) are errors with their code. A read is sent again
    /// after a lost answer, a write never.
    pub async fn withings(&self, request: &DataRequest) -> Result<DataAnswer> {
        let path = match request.method {
            Method::GET => format!("/v1/withings/{}?{}", request.path, request.form()),
            _ => format!("/v1/withings/{}", request.path),
        };
        let url = self.url_of(&path);
        let operation = Operation {
            name: "Withings call through the proxy",
            idempotent: request.is_read(),
            resend_oversized: false,
            max_answer: usize::try_from(crate::withings::proxy::DEFAULT_MAX_ANSWER).unwrap_or(usize::MAX),
            document: (),
        };
        tracing::debug!("{} {} (action {})", request.method, shown_url(&url), request.action);
        let judge = |answer: &Answer| judge_proxied(answer, self.credential.name());
        self.http
            .with_retries(WHAT, || {
                let build = |client: &reqwest::Client| {
                    let sent = client.request(request.method.clone(), url.clone());
                    let sent = match &self.credential {
                        Credential::Admin(token) => sent.header("X-Admin-Token", token.expose_secret()),
                        Credential::Bearer { token, .. } => sent.bearer_auth(token.expose_secret()),
                        Credential::Nothing => sent,
                    };
                    match request.method {
                        Method::GET => sent,
                        _ => sent
                            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                            .body(request.form()),
                    }
                };
                self.http.attempt(&operation, build, judge)
            })
            .await
    }

    /// The Withings proxy's calls per reader and account (of the account
    /// named, when one is).
    pub async fn usage(&self) -> Result<UsageReport> {
        self.call(Method::GET, "/admin/usage", None::<&()>).await
    }

    /// `path` may carry a query; the account named is added to it.
    async fn call<B: Serialize, T: DeserializeOwned>(&self, method: Method, path: &str, body: Option<&B>) -> Result<T> {
        let url = self.url_of(path);
        let operation = if method == Method::GET { &READ } else { &CHANGE };
        tracing::debug!("{method} {}", shown_url(&url));
        let judge = |answer: &Answer| judge(answer, self.credential.name());
        self.http
            .with_retries(WHAT, || {
                let build = |client: &reqwest::Client| {
                    let request = client.request(method.clone(), url.clone());
                    let request = match &self.credential {
                        Credential::Admin(token) => request.header("X-Admin-Token", token.expose_secret()),
                        Credential::Bearer { token, .. } => request.bearer_auth(token.expose_secret()),
                        Credential::Nothing => request,
                    };
                    match body {
                        Some(body) => request.json(body),
                        None => request,
                    }
                };
                self.http.attempt(operation, build, judge)
            })
            .await
    }
}

impl ServerClient {
    /// The server's URL of `path` (which may carry a query), with
    /// `account=NAME` when an account is named.
    fn url_of(&self, path: &str) -> Url {
        let (path, query) = path.split_once('?').map_or((path, None), |(p, q)| (p, Some(q)));
        let mut url = self.base.clone();
        url.set_path(&format!("{}{path}", self.base.path().trim_end_matches('/')));
        url.set_query(query);
        if let Some(account) = &self.account {
            url.query_pairs_mut().append_pair("account", account.as_str());
        }
        url
    }
}

impl Credential {
    /// Its variable, for a refusal.
    fn name(&self) -> &'static str {
        match self {
            Credential::Admin(_) => "ADMIN_API_TOKEN",
            Credential::Bearer { name, .. } => name,
            Credential::Nothing => "no credential",
        }
    }
}

/// A 2xx report is the answer; the JSON error object is the server's
/// error, with its code; 5xx without one is retried. `credential` names
/// the variable whose token was sent.
fn judge<T: DeserializeOwned>(answer: &Answer, credential: &str) -> Verdict<T> {
    if answer.status.is_success() {
        return match serde_json::from_slice(&answer.body) {
            Ok(report) => Verdict::Done(report),
            Err(e) => Verdict::Stop(Error::Upstream {
                what: WHAT,
                attempts: 1,
                detail: format!("{} that is not the expected report ({e})", answer.describe()),
            }),
        };
    }
    if answer.status == StatusCode::UNAUTHORIZED {
        return Verdict::Stop(credential_refused(credential));
    }
    match serde_json::from_slice::<ErrorReport>(&answer.body) {
        Ok(report) => Verdict::Stop(refusal(answer.status, report, credential)),
        Err(_) if answer.status.is_server_error() => Verdict::Retry {
            kind: Transient::Upstream,
            detail: answer.describe(),
            wait: answer.retry_after(),
        },
        // A 4xx that is not a serve's error object: the URL names something
        // else, which waiting will not change.
        Err(_) => Verdict::Stop(Error::config(
            format!(
                "the server answered {} instead of a withings-token report",
                answer.describe()
            ),
            "point --server (or WITHINGS_TOKEN_SERVER) at a running `withings-token serve`, e.g. http://127.0.0.1:8080",
        )),
    }
}

/// The proxy's answer: Withings' as it came, unless it is the server's
/// own refusal (its JSON error object).
fn judge_proxied(answer: &Answer, credential: &str) -> Verdict<DataAnswer> {
    if answer.status.is_success() {
        return Verdict::Done(DataAnswer::new(answer.status, answer.body.clone().into()));
    }
    match serde_json::from_slice::<ErrorReport>(&answer.body) {
        Ok(report) => Verdict::Stop(refusal(answer.status, report, credential)),
        // A 401 of something in front of the server (an ingress) is a
        // credential refused all the same.
        Err(_) if answer.status == StatusCode::UNAUTHORIZED => Verdict::Stop(credential_refused(credential)),
        Err(_) => Verdict::Done(DataAnswer::new(answer.status, answer.body.clone().into())),
    }
}

/// The server's error object as this binary's error: a refused credential
/// names its variable (exit 3), any other keeps its code.
fn refusal(status: StatusCode, ErrorReport { error }: ErrorReport, credential: &str) -> Error {
    if status == StatusCode::UNAUTHORIZED {
        return credential_refused(credential);
    }
    Error::Remote {
        code: known_code(error.code),
        message: clip(&error.message),
        action: clip(&error.action),
    }
}

fn credential_refused(credential: &str) -> Error {
    Error::config(
        format!("the server refused {credential} (401)"),
        format!("set {credential} to the value the server was started with"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(base: &str, account: Option<&str>) -> ServerClient {
        ServerClient {
            http: HttpClient::new(crate::settings::Overrides::default().http).unwrap(),
            base: Url::parse(base).unwrap(),
            credential: Credential::Admin(SecretString::from("a")),
            account: account.map(|a| AccountName::parse(a).unwrap()),
        }
    }

    #[test]
    fn a_proxied_answer_is_withings_unless_it_is_the_server_s_error_object() {
        let forbidden = r#"{"error":{"code":"FORBIDDEN","message":"not yours","action":"ask for yours"}}"#;
        match judge_proxied(&crate::http::answer(403, forbidden), "WITHINGS_TOKEN_READER_TOKEN") {
            Verdict::Stop(e) => assert_eq!(
                (e.code(), e.exit_code(), e.action()),
                ("FORBIDDEN", 3, "ask for yours".into())
            ),
            _ => panic!("a 403 error object is the server's refusal"),
        }
        for body in [forbidden, "<html>Unauthorized</html>"] {
            match judge_proxied(&crate::http::answer(401, body), "WITHINGS_TOKEN_READER_TOKEN") {
                Verdict::Stop(e) => assert_eq!(
                    (e.to_string(), e.exit_code()),
                    ("the server refused WITHINGS_TOKEN_READER_TOKEN (401)".into(), 3)
                ),
                _ => panic!("a 401 names the credential, from the server or in front of it: {body}"),
            }
        }
        let timeout = r#"{"error":{"code":"UPSTREAM_TIMEOUT","message":"slow","action":"later"}}"#;
        match judge_proxied(&crate::http::answer(504, timeout), "ADMIN_API_TOKEN") {
            Verdict::Stop(e) => assert_eq!((e.code(), e.exit_code()), ("UPSTREAM_TIMEOUT", 5)),
            _ => panic!("a 504 error object is the server's"),
        }
        for (status, body) in [(200, r#"{"status":601}"#), (500, "<html>oops</html>")] {
            match judge_proxied(&crate::http::answer(status, body), "ADMIN_API_TOKEN") {
                Verdict::Done(answer) => assert_eq!(
                    (answer.http_status.as_u16(), &answer.body[..]),
                    (status, body.as_bytes())
                ),
                _ => panic!("Withings' own answer is passed on: {status}"),
            }
        }
    }

    #[test]
    fn the_account_named_goes_with_every_call() {
        let named = client("http://h:1/base/", Some("alice"));
        assert_eq!(
            named.url_of("/admin/token/status").as_str(),
            "http://h:1/base/admin/token/status?account=alice"
        );
        assert_eq!(
            named.url_of("/v1/access-token?min_ttl=300000ms").as_str(),
            "http://h:1/base/v1/access-token?min_ttl=300000ms&account=alice"
        );
        let none = client("http://h:1", None);
        assert_eq!(
            none.url_of("/admin/token/status").as_str(),
            "http://h:1/admin/token/status"
        );
    }
}
