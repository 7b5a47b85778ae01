//! `--server URL`: the one client of a running `withings-token serve`. The
//! commands that take it (`status`, `refresh`, `auth-url`, `exchange`) ask
//! the server instead of Withings and print its report through the same
//! output module, so the outputs and exit codes are the local ones: the
//! server's JSON error object becomes [`Error::Remote`] with the same code,
//! and a refused `X-Admin-Token` is a configuration error naming
//! `ADMIN_API_TOKEN` (exit 3).
//!
//! The admin API never sends a token unmasked, so what needs one
//! (`--output env`, `--reveal`) is refused before anything is sent: the
//! tokens leave the server only through the broker (`GET /v1/access-token`).

use reqwest::{Method, StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::cli::OutputFormat;
use crate::error::{Error, Result};
use crate::http::{Answer, HttpClient, Operation, Transient, Verdict, clip, shown_url};
use crate::output::{AuthUrlReport, ErrorReport, StatusReport, TokenReport, known_code};
use crate::settings::Settings;

const WHAT: &str = "the withings-token server";

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
    admin: SecretString,
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
        Ok(Some(ServerClient { http, base, admin }))
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

    async fn call<B: Serialize, T: DeserializeOwned>(&self, method: Method, path: &str, body: Option<&B>) -> Result<T> {
        let mut url = self.base.clone();
        url.set_path(&format!("{}{path}", self.base.path().trim_end_matches('/')));
        let operation = if method == Method::GET { &READ } else { &CHANGE };
        tracing::debug!("{method} {}", shown_url(&url));
        self.http
            .with_retries(WHAT, || {
                let build = |client: &reqwest::Client| {
                    let request = client
                        .request(method.clone(), url.clone())
                        .header("X-Admin-Token", self.admin.expose_secret());
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

/// A 2xx report is the answer; the JSON error object is the server's
/// error, with its code; 5xx without one is retried.
fn judge<T: DeserializeOwned>(answer: &Answer) -> Verdict<T> {
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
        return Verdict::Stop(Error::config(
            "the server refused ADMIN_API_TOKEN (401)",
            "set ADMIN_API_TOKEN to the value the server was started with",
        ));
    }
    match serde_json::from_slice::<ErrorReport>(&answer.body) {
        Ok(ErrorReport { error }) => Verdict::Stop(Error::Remote {
            code: known_code(error.code),
            message: clip(&error.message),
            action: clip(&error.action),
        }),
        Err(_) if answer.status.is_server_error() => Verdict::Retry {
            kind: Transient::Upstream,
            detail: answer.describe(),
            wait: answer.retry_after(),
        },
        Err(_) => Verdict::Stop(Error::Upstream {
            what: WHAT,
            attempts: 1,
            detail: format!(
                "{} instead of a report (is --server a withings-token serve?)",
                answer.describe()
            ),
        }),
    }
}
