//! One call of Withings' data API for the command line (`api`), `gh api`
//! style: an action, a path and `KEY=VALUE` parameters become Withings'
//! form (`action=getmeas&meastypes=1%2C6`), sent either through a running
//! `serve`'s proxy (`server_client`) or, locally, straight to Withings with
//! the account's access token by the proxy's own call
//! (`withings::proxy::send`: the same header rules, cap and timeout).
//!
//! Withings says how a call went inside an HTTP 200 body (`{"status": N}`):
//! [`judge`] reads that status by the families every Withings answer is
//! judged by (`withings::status_family`), so that a refused token, a rate
//! limit or an invalid call exits with the code the exit table gives it,
//! while the body itself is always shown as it came.

use std::pin::Pin;

use axum::body::Bytes;
use hyper::body::Body;
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use secrecy::SecretString;

use crate::error::{Error, Result};
use crate::http::HttpClient;
use crate::redact::clip;
use crate::settings::Settings;
use crate::withings::proxy::{self, Call, ProxyFailure, ProxyLimits};
use crate::withings::{StatusFamily, status_family};

const WHAT: &str = "Withings";

/// A data call as the command line gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataRequest {
    /// `POST` (Withings' own way) or `GET` (the form in the query).
    pub method: Method,
    /// Withings' path without its leading `/` (`measure`, `v2/user`).
    pub path: String,
    /// Withings' `action` (`getmeas`).
    pub action: String,
    /// The other parameters, in the order given.
    pub params: Vec<(String, String)>,
}

impl DataRequest {
    /// The form Withings reads: `action` first, then the parameters.
    pub fn form(&self) -> String {
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        form.append_pair("action", &self.action);
        for (key, value) in &self.params {
            form.append_pair(key, value);
        }
        form.finish()
    }

    /// Whether it only reads (`get*`, `list*`): only those are sent again
    /// after a refused token.
    pub fn is_read(&self) -> bool {
        proxy::is_read(Some(&self.action))
    }

    /// The form as the body of a POST, or the query of a GET.
    fn call(&self) -> Call {
        let mut headers = HeaderMap::new();
        let (query, body) = if self.method == Method::GET {
            (Some(self.form()), Bytes::new())
        } else {
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/x-www-form-urlencoded"),
            );
            (None, Bytes::from(self.form()))
        };
        Call {
            method: self.method.clone(),
            path: self.path.clone(),
            query,
            headers,
            body,
        }
    }
}

/// `KEY=VALUE` (the value may hold `=`; the key may not be empty): a
/// parameter of the call. `action` is refused: it is the first argument.
pub fn parse_param(pair: &str) -> std::result::Result<(String, String), String> {
    let Some((key, value)) = pair.split_once('=') else {
        return Err(format!("`{pair}` is not KEY=VALUE (e.g. meastypes=1,6)"));
    };
    if key.is_empty() {
        return Err(format!("`{pair}` has an empty key: write KEY=VALUE"));
    }
    if key == "action" {
        return Err("the action is the first argument (`api getmeas measure`), not a KEY=VALUE".into());
    }
    Ok((key.to_owned(), value.to_owned()))
}

/// Withings' path as given, with or without its leading `/`; its query
/// parameters go as KEY=VALUE instead.
pub fn parse_path(path: &str) -> std::result::Result<String, String> {
    let bare = path.trim_start_matches('/');
    if bare.is_empty() {
        return Err("the path is empty: give Withings' path, e.g. `measure` or `v2/user`".into());
    }
    if bare.contains('?') || bare.contains('#') {
        return Err(format!(
            "`{path}` holds a query: give its parameters as KEY=VALUE after the path"
        ));
    }
    // Through a server, a path that climbs would leave its proxy (e.g. for
    // its broker, whose answer is a token).
    let climbs = |segment: &str| matches!(segment.to_ascii_lowercase().replace("%2e", ".").as_str(), "." | "..");
    if bare.contains('\\') || bare.to_ascii_lowercase().contains("%5c") || bare.split('/').any(climbs) {
        return Err(format!(
            "`{path}` is not a Withings path: no `.`, `..` or `\\` segments (e.g. `measure`, `v2/user`)"
        ));
    }
    Ok(bare.to_owned())
}

/// Withings' answer to a data call, read whole.
#[derive(Debug, Clone)]
pub struct DataAnswer {
    pub http_status: StatusCode,
    pub body: Bytes,
    /// The `status` of Withings' JSON, when the body has one.
    pub withings_status: Option<i64>,
}

impl DataAnswer {
    pub fn new(http_status: StatusCode, body: Bytes) -> DataAnswer {
        let withings_status = proxy::status_of_whole(&body);
        DataAnswer {
            http_status,
            body,
            withings_status,
        }
    }

    /// Withings refused the access token sent (`{"status": 401}`).
    pub fn refused_token(&self) -> bool {
        self.http_status == StatusCode::OK && self.withings_status == Some(proxy::INVALID_TOKEN_STATUS)
    }

    /// The object `serve`'s proxy added to Withings' answer (`"proxy"`:
    /// a write it did not send again), as an error of this binary.
    fn proxy_said(&self) -> Option<Error> {
        #[derive(serde::Deserialize)]
        struct Added {
            proxy: Option<crate::output::ErrorBody>,
        }
        let said = serde_json::from_slice::<Added>(&self.body).ok()?.proxy?;
        Some(Error::Remote {
            code: said.code,
            message: clip(&said.message),
            action: clip(&said.action),
        })
    }

    /// Withings' own text of what went wrong (`"error"`), clipped.
    fn error_text(&self) -> String {
        #[derive(serde::Deserialize)]
        struct Said {
            error: Option<String>,
        }
        let said = serde_json::from_slice::<Said>(&self.body)
            .ok()
            .and_then(|said| said.error);
        clip(said.as_deref().unwrap_or("no message"))
    }
}

/// What the answer means for the run: `None` when Withings did the call
/// (`status` 0), else the error of its status family; an answer without
/// Withings' `status` is not one of its answers (an error too).
pub fn judge(answer: &DataAnswer) -> Option<Error> {
    if answer.http_status != StatusCode::OK {
        return Some(Error::Upstream {
            what: WHAT,
            attempts: 1,
            detail: format!("HTTP {} instead of Withings' JSON", answer.http_status.as_u16()),
        });
    }
    let Some(status) = answer.withings_status else {
        return Some(Error::Upstream {
            what: WHAT,
            attempts: 1,
            detail: "an answer without Withings' `status` (not Withings' JSON)".to_owned(),
        });
    };
    let detail = format!("status {status} ({})", answer.error_text());
    match status_family(status) {
        StatusFamily::Ok => None,
        StatusFamily::AuthFailed => Some(Error::InvalidAccessToken { detail }),
        StatusFamily::RateLimited => Some(Error::RateLimited {
            what: WHAT,
            detail,
            wait: None,
        }),
        StatusFamily::InvalidParams => Some(Error::Upstream {
            what: WHAT,
            attempts: 1,
            detail: format!("Withings refused the call as invalid: {detail}"),
        }),
        StatusFamily::Transient | StatusFamily::Other => Some(Error::Upstream {
            what: WHAT,
            attempts: 1,
            detail: format!("Withings answered {detail}"),
        }),
    }
}

/// What an answer through `serve`'s proxy means: as [`judge`], but the
/// proxy's own object is its word, and a token still refused (the server
/// refreshed once already) is for the server's operator to see to, not
/// for this host's `refresh`.
pub fn judge_proxied(answer: &DataAnswer) -> Option<Error> {
    let error = judge(answer)?;
    if let Some(said) = answer.proxy_said() {
        return Some(said);
    }
    match error {
        Error::InvalidAccessToken { detail } => Some(Error::Remote {
            code: "INVALID_ACCESS_TOKEN",
            message: format!("Withings refused the server's access token, after the server replaced it once: {detail}"),
            action: "ask the server's operator to check the account (`withings-token status`, then `withings-token auth-url` if its consent ended)".to_owned(),
        }),
        other => Some(other),
    }
}

/// Sends `request` to Withings with `token` as the bearer, once, after
/// taking its unit of the app's upstream budget (the one refreshes take
/// from), and reads the answer whole.
pub async fn send(settings: &Settings, request: &DataRequest, token: &SecretString) -> Result<DataAnswer> {
    let http = HttpClient::new(settings.http)?;
    // The budget is the app's: without a client id there is no app to count.
    if let Ok(client_id) = settings.client_id("api") {
        let store = crate::store::open(settings)?;
        let shared = store.shared_budget();
        crate::budget::for_client(client_id, settings.upstream_budget)
            .take(shared.as_deref())
            .await?;
    }
    let limits = ProxyLimits {
        timeout: settings.http.timeout,
        ..ProxyLimits::default()
    };
    tracing::debug!("{} /{} (action {})", request.method, request.path, request.action);
    let answer = proxy::send(&http, settings.api_url()?, &request.call(), token, limits)
        .await
        .map_err(failed)?;
    let status = answer.status;
    let body = collected(answer.body).await?;
    Ok(DataAnswer::new(status, body))
}

/// The whole body, within the proxy's cap.
async fn collected(mut body: proxy::CappedBody) -> Result<Bytes> {
    let mut all = Vec::new();
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        let frame = frame.map_err(|e| Error::Network {
            what: WHAT,
            attempts: 1,
            detail: format!("the answer was cut: {e}"),
        })?;
        if let Ok(data) = frame.into_data() {
            all.extend_from_slice(&data);
        }
    }
    Ok(Bytes::from(all))
}

fn failed(failure: ProxyFailure) -> Error {
    match failure {
        ProxyFailure::BadPath(message) => Error::config(message, "give Withings' path, e.g. `measure` or `v2/user`"),
        ProxyFailure::Timeout(detail) | ProxyFailure::Unreachable(detail) => Error::Network {
            what: WHAT,
            attempts: 1,
            detail,
        },
        ProxyFailure::Broken(detail) => Error::Upstream {
            what: WHAT,
            attempts: 1,
            detail: format!(
                "the connection broke after the call was sent ({detail}); it may have been carried out: check before repeating a write"
            ),
        },
        ProxyFailure::TooLarge(cap) => Error::Upstream {
            what: WHAT,
            attempts: 1,
            detail: format!("the answer is larger than {cap} bytes; ask for less (a shorter date range, fewer types)"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_parameter_is_split_at_its_first_equals_sign() {
        assert_eq!(parse_param("meastypes=1,6"), Ok(("meastypes".into(), "1,6".into())));
        assert_eq!(parse_param("note=a=b"), Ok(("note".into(), "a=b".into())));
        assert_eq!(parse_param("lastupdate="), Ok(("lastupdate".into(), String::new())));
        assert_eq!(
            parse_param("=1"),
            Err("`=1` has an empty key: write KEY=VALUE".to_owned())
        );
        assert_eq!(
            parse_param("meastypes"),
            Err("`meastypes` is not KEY=VALUE (e.g. meastypes=1,6)".to_owned())
        );
        assert!(parse_param("action=getmeas").unwrap_err().contains("first argument"));
    }

    #[test]
    fn a_path_is_taken_with_or_without_its_leading_slash() {
        assert_eq!(parse_path("measure"), Ok("measure".to_owned()));
        assert_eq!(parse_path("/v2/user"), Ok("v2/user".to_owned()));
        assert_eq!(parse_path("//measure"), Ok("measure".to_owned()));
        assert!(parse_path("/").unwrap_err().contains("empty"));
        assert!(parse_path("").unwrap_err().contains("empty"));
        assert!(parse_path("measure?action=getmeas").unwrap_err().contains("KEY=VALUE"));
        for climbing in [
            "../access-token",
            "v2/../../v1/access-token",
            "%2E%2e/x",
            "a\\..\\b",
            "a%5cb",
            "./measure",
        ] {
            let refused = parse_path(climbing).unwrap_err();
            assert!(refused.contains("is not a Withings path"), "{climbing}: {refused}");
        }
    }

    fn request(method: Method) -> DataRequest {
        DataRequest {
            method,
            path: "measure".into(),
            action: "getmeas".into(),
            params: vec![
                ("meastypes".into(), "1,6".into()),
                ("lastupdate".into(), "1700000000".into()),
            ],
        }
    }

    #[test]
    fn the_form_goes_in_the_body_of_a_post_and_the_query_of_a_get() {
        let post = request(Method::POST).call();
        assert_eq!(post.body, "action=getmeas&meastypes=1%2C6&lastupdate=1700000000");
        assert_eq!(post.query, None);
        assert_eq!(
            post.headers.get(header::CONTENT_TYPE).unwrap(),
            "application/x-www-form-urlencoded"
        );
        assert_eq!(post.action().as_deref(), Some("getmeas"));
        let get = request(Method::GET).call();
        assert_eq!(
            get.query.as_deref(),
            Some("action=getmeas&meastypes=1%2C6&lastupdate=1700000000")
        );
        assert!(get.body.is_empty());
        assert!(request(Method::POST).is_read());
        let write = DataRequest {
            action: "subscribe".into(),
            ..request(Method::POST)
        };
        assert!(!write.is_read());
    }

    fn answer(http: u16, body: &str) -> DataAnswer {
        DataAnswer::new(StatusCode::from_u16(http).unwrap(), Bytes::from(body.to_owned()))
    }

    #[test]
    fn withings_status_decides_the_error_and_its_exit_code() {
        let judged = |http, body| judge(&answer(http, body)).map(|e| (e.code(), e.exit_code(), e.to_string()));
        assert_eq!(judged(200, r#"{"status":0,"body":{}}"#), None);
        for odd in ["not json", "{}", r#"{"status":"0"}"#, "null", ""] {
            assert_eq!(
                judged(200, odd).map(|j| (j.0, j.1)),
                Some(("UPSTREAM_ERROR", 5)),
                "{odd}"
            );
        }
        assert_eq!(
            judged(200, r#"{"status":401,"error":"invalid_token"}"#),
            Some((
                "INVALID_ACCESS_TOKEN",
                4,
                "Withings refused the access token: status 401 (invalid_token)".into()
            ))
        );
        assert_eq!(
            judged(200, r#"{"status":601,"body":{}}"#),
            Some((
                "RATE_LIMITED",
                5,
                "Withings is rate limiting this client: status 601 (no message)".into()
            ))
        );
        assert_eq!(
            judged(200, r#"{"status":503,"error":"Invalid Params"}"#).map(|j| (j.0, j.1)),
            Some(("UPSTREAM_ERROR", 5))
        );
        assert_eq!(judged(500, "<html>").map(|j| (j.0, j.1)), Some(("UPSTREAM_ERROR", 5)));
        assert!(answer(200, r#"{"status":401}"#).refused_token());
        let proxied = |body| judge_proxied(&answer(200, body)).map(|e| (e.code(), e.exit_code(), e.action()));
        let write =
            r#"{"status":401,"body":{},"proxy":{"code":"WRITE_NOT_RETRIED","message":"m","action":"send it again"}}"#;
        assert_eq!(proxied(write), Some(("WRITE_NOT_RETRIED", 5, "send it again".into())));
        let (code, exit, action) = proxied(r#"{"status":401,"body":{}}"#).expect("refused");
        assert_eq!((code, exit), ("INVALID_ACCESS_TOKEN", 4));
        assert!(action.starts_with("ask the server's operator"), "{action}");
        assert_eq!(
            proxied(r#"{"status":601,"body":{}}"#).map(|j| j.0),
            Some("RATE_LIMITED")
        );
        assert!(!answer(200, r#"{"status":601}"#).refused_token());
    }
}
