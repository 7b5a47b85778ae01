//! The loopback consent: listen on the callback, send the person to the
//! consent page (the URL `auth-url` makes, its state kept in the store),
//! catch the redirect there and exchange its code as `exchange` does: the
//! same state check before anything is sent, the same save. The browser
//! gets a [`Page`] that never carries a token or a code.
//!
//! Any page the browser shows can send it to the listener, so a request ends
//! the login only when it carries the state this login issued (a declined
//! consent included); any other gets an error page and the wait goes on. A
//! request whose `Host` is not the listener's own address (DNS rebinding:
//! a foreign name resolved to loopback) is refused before anything is read.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use reqwest::Url;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

use super::binding::Replace;
use super::callback::Callback;
use super::page::Page;
use super::{AuthUrlRequest, exchange, issue, parse_code_or_url};
use crate::duration::humanize;
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::redact::clip;
use crate::rotation::Rotation;
use crate::settings::Settings;
use crate::store::TokenStore;
use crate::withings::WithingsClient;

/// How long the browser's page may take to leave before the listener closes.
const PAGE_DRAIN: Duration = Duration::from_secs(2);
const LOGIN_AGAIN: &str = "run `withings-token login` again and approve the request";

/// What one login asks the person for, and how long it waits for them.
#[derive(Debug, Clone)]
pub(crate) struct LoginRequest {
    /// Open Withings' demo account instead of a real one (`mode=demo`).
    pub demo_account: bool,
    /// How long to wait for the browser to come back.
    pub wait: Duration,
    /// Whether the consent may replace another person's set (`--replace`).
    pub replace: Replace,
}

/// The outside parties of one login, resolved before anything is bound.
pub(crate) struct Parties<'a> {
    pub settings: &'a Settings,
    pub client: &'a WithingsClient,
    pub store: &'a dyn TokenStore,
}

/// Binds first (a port in use fails before a state is stored or the person
/// invited), has `invite` show the authorization URL, waits for this
/// login's redirect, exchanges, answers the browser. The set is saved when
/// this returns; its copies and report are the caller's.
pub(crate) async fn login(
    request: &LoginRequest,
    callback: &Callback,
    p: &Parties<'_>,
    invite: impl FnOnce(&str),
    progress: &impl Progress,
) -> Result<Rotation> {
    let listener = bind(callback).await?;
    let auth_request = AuthUrlRequest {
        state: None,
        demo_account: request.demo_account,
    };
    let auth = issue(&auth_request, p.settings, p.store).await?;
    invite(&auth.authorization_url);
    let mut server = CallbackServer::start(listener, callback);
    let waited = {
        let _waiting = progress.waiting("waiting for the browser to come back…");
        wait_for_ours(&mut server, request.wait, callback, &auth.state, progress).await
    };
    let (arrival, url) = match waited {
        Ok(ours) => ours,
        Err(e) => {
            server.stop().await;
            return Err(e);
        }
    };
    let exchanged = match declined(&url) {
        Some(declined) => Err(declined),
        None => {
            let _waiting = progress.waiting("exchanging the code with Withings…");
            exchange_callback(p, &url, request.replace).await
        }
    };
    // The set is saved by now: the browser hears first, the copies follow.
    let _ = arrival.reply.send(Page::of(&exchanged));
    server.stop().await;
    exchanged
}

/// The first callback request that carries `state`, with its URL; every
/// other one gets [`Page::not_this_login`] and the wait goes on, up to `wait`
/// in all.
async fn wait_for_ours(
    server: &mut CallbackServer,
    wait: Duration,
    callback: &Callback,
    state: &str,
    progress: &impl Progress,
) -> Result<(Arrival, Url)> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let arrival = server.next(deadline, wait, callback).await?;
        match with_state(callback, &arrival.query, state)? {
            Some(url) => return Ok((arrival, url)),
            None => {
                let _ = arrival.reply.send(Page::not_this_login());
                progress.tell(
                    "warning: a request to the callback without this login's state was refused (another page, an old tab?); still waiting for the redirect of this consent",
                );
            }
        }
    }
}

/// The callback URL with `query`, when the query carries exactly the state
/// this login issued; `None` for anything else (no state, another state,
/// two states), which did not come from this consent and ends nothing.
fn with_state(callback: &Callback, query: &str, state: &str) -> Result<Option<Url>> {
    let mut url = Url::parse(&callback.redirect_uri).map_err(Error::internal)?;
    url.set_query((!query.is_empty()).then_some(query));
    let mut states = url.query_pairs().filter(|(k, _)| k == "state").map(|(_, v)| v);
    let ours = states.next().is_some_and(|given| given == state) && states.next().is_none();
    Ok(ours.then_some(url))
}

async fn bind(callback: &Callback) -> Result<TcpListener> {
    TcpListener::bind(callback.listen).await.map_err(|e| {
        let port = callback.listen.port();
        let message = match e.kind() {
            std::io::ErrorKind::AddrInUse => format!(
                "port {port} is already in use on {}, so `login` cannot listen there for the callback",
                callback.listen.ip()
            ),
            _ => format!("cannot listen on {} for the login callback: {e}", callback.listen),
        };
        let action = if callback.from_setting {
            format!(
                "stop what listens on port {port}, or move the callback to a free port: change WITHINGS_REDIRECT_URI and the callback registered with Withings (`--port` must match it)"
            )
        } else {
            format!(
                "stop what listens on port {port}, or pass `--port N` with a free port and register http://127.0.0.1:N/callback with Withings"
            )
        };
        Error::config(message, action)
    })
}

/// The callback's URL, checked and exchanged as `exchange` does with a
/// pasted redirect URL (its base is ours: only the callback path gets here).
async fn exchange_callback(p: &Parties<'_>, url: &Url, replace: Replace) -> Result<Rotation> {
    let redirect = parse_code_or_url(url.as_str()).map_err(|e| match e {
        Error::Config { message, .. } => Error::config(message, LOGIN_AGAIN),
        other => other,
    })?;
    exchange(p.settings, p.store, p.client, &redirect, replace)
        .await
        .map_err(|e| match e {
            // The redirect carries this login's state (checked on arrival):
            // the store's was replaced meanwhile by another consent.
            Error::InvalidState { .. } => Error::InvalidLoginState {
                detail: "the store no longer holds this login's state: another `auth-url` or `login` replaced it while this one waited; nothing was sent".into(),
            },
            other => other,
        })
}

/// Withings sends `error=access_denied` when the person declines (other
/// `error`s for a request it refused): there is no code to exchange.
fn declined(url: &Url) -> Option<Error> {
    let (_, error) = url.query_pairs().find(|(k, _)| k == "error")?;
    let message = if error == "access_denied" {
        "the consent was declined in the browser (Withings answered error=access_denied); nothing was sent".to_owned()
    } else {
        format!(
            "Withings sent the browser back with error={}; nothing was sent",
            clip(&error)
        )
    };
    Some(Error::config(message, LOGIN_AGAIN))
}

/// A callback request handed to the flow, which answers it with a page.
struct Arrival {
    query: String,
    reply: oneshot::Sender<Page>,
}

/// What the request handler needs.
#[derive(Clone)]
struct Listening {
    path: Arc<str>,
    /// The `Host` values that name this listener (see [`own_hosts`]).
    hosts: Arc<[String]>,
    arrivals: mpsc::Sender<Arrival>,
}

/// The `Host` a browser sends to reach the listener: the callback's own
/// (`localhost:P` for a `localhost` callback) and the address listened on,
/// each without the port when it is 80.
fn own_hosts(callback: &Callback) -> Vec<String> {
    let port = callback.listen.port();
    let ip = match callback.listen.ip() {
        IpAddr::V6(ip) => format!("[{ip}]"),
        IpAddr::V4(ip) => ip.to_string(),
    };
    let named = Url::parse(&callback.redirect_uri)
        .ok()
        .and_then(|url| url.host_str().map(str::to_ascii_lowercase));
    let mut hosts: Vec<String> = Vec::new();
    for host in std::iter::once(ip).chain(named) {
        let with_port = format!("{host}:{port}");
        let forms = [Some(with_port), (port == 80).then_some(host)];
        for form in forms.into_iter().flatten() {
            if !hosts.contains(&form) {
                hosts.push(form);
            }
        }
    }
    hosts
}

/// The listener, serving on its own task while the flow waits.
struct CallbackServer {
    arrivals: mpsc::Receiver<Arrival>,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl CallbackServer {
    fn start(listener: TcpListener, callback: &Callback) -> CallbackServer {
        // One waits while the flow works; later ones get the "ended" page.
        let (sender, arrivals) = mpsc::channel(1);
        let (stop, stopped) = oneshot::channel::<()>();
        let state = Listening {
            path: callback.path.as_str().into(),
            hosts: own_hosts(callback).into(),
            arrivals: sender,
        };
        let app = Router::new().fallback(answer).with_state(state);
        let server = axum::serve(listener, app).with_graceful_shutdown(async move {
            let _ = stopped.await;
        });
        let task = tokio::spawn(async move { server.await });
        CallbackServer { arrivals, stop, task }
    }

    /// The next callback request, or LOGIN_TIMEOUT at `deadline` (`wait`
    /// after the wait began).
    async fn next(&mut self, deadline: tokio::time::Instant, wait: Duration, callback: &Callback) -> Result<Arrival> {
        match tokio::time::timeout_at(deadline, self.arrivals.recv()).await {
            Ok(Some(arrival)) => Ok(arrival),
            Ok(None) => Err(Error::internal(anyhow::anyhow!(
                "the callback listener on {} stopped",
                callback.listen
            ))),
            Err(_) => Err(Error::LoginTimeout {
                redirect_uri: callback.redirect_uri.clone(),
                waited: humanize(wait),
            }),
        }
    }

    /// Lets the page leave (at most [`PAGE_DRAIN`]), then closes the port.
    async fn stop(self) {
        let CallbackServer {
            arrivals,
            stop,
            mut task,
        } = self;
        drop(arrivals);
        let _ = stop.send(());
        if tokio::time::timeout(PAGE_DRAIN, &mut task).await.is_err() {
            task.abort();
        }
    }
}

/// Every request: one naming another host is refused; a GET of the
/// callback path goes to the flow; anything else (`/favicon.ico`) is a 404
/// and the wait goes on. The path is compared here, not routed: a route
/// would read the user's path as syntax.
async fn answer(State(listening): State<Listening>, method: Method, uri: Uri, headers: HeaderMap) -> Response {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    if !host.is_some_and(|host| listening.hosts.iter().any(|own| own.eq_ignore_ascii_case(host))) {
        tracing::warn!(
            "a request to the login listener naming another host ({}) was refused; still waiting",
            host.map_or_else(|| "none".to_owned(), clip)
        );
        return Page::foreign_host().into_response();
    }
    if uri.path() != &*listening.path {
        return (StatusCode::NOT_FOUND, "not found\n").into_response();
    }
    if method != Method::GET {
        return (StatusCode::METHOD_NOT_ALLOWED, "the callback takes GET\n").into_response();
    }
    let (reply, page) = oneshot::channel();
    let arrival = Arrival {
        query: uri.query().unwrap_or_default().to_owned(),
        reply,
    };
    if listening.arrivals.send(arrival).await.is_err() {
        return Page::ended().into_response();
    }
    page.await.unwrap_or_else(|_| Page::ended()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consent::callback::plan_callback;

    #[test]
    fn a_declined_consent_is_said_plainly() {
        let url = Url::parse("http://127.0.0.1:8585/callback?error=access_denied&state=s").unwrap();
        let e = declined(&url).unwrap();
        assert_eq!(e.exit_code(), 3);
        assert!(e.to_string().contains("declined"), "{e}");
        assert!(e.action().contains("`withings-token login`"), "{}", e.action());
        let url = Url::parse("http://127.0.0.1:8585/callback?code=c&state=s").unwrap();
        assert!(declined(&url).is_none());
    }

    #[test]
    fn only_the_state_this_login_issued_makes_a_request_its_redirect() {
        let c = plan_callback(Some(8585), None).unwrap();
        let ours = with_state(&c, "code=c&state=s1", "s1").unwrap().unwrap();
        assert_eq!(ours.as_str(), "http://127.0.0.1:8585/callback?code=c&state=s1");
        assert!(with_state(&c, "error=access_denied&state=s1", "s1").unwrap().is_some());
        for foreign in [
            "code=c",
            "code=c&state=s2",
            "error=x",
            "",
            "state=s1&state=s1",
            "state=s1x",
        ] {
            assert!(with_state(&c, foreign, "s1").unwrap().is_none(), "{foreign}");
        }
    }

    #[test]
    fn the_listener_answers_only_to_its_own_host_names() {
        let hosts = |uri: &str| own_hosts(&plan_callback(None, Some(uri)).unwrap());
        assert_eq!(hosts("https://example.com/cb"), ["127.0.0.1:8585"]);
        assert_eq!(hosts("http://localhost:7777/cb"), ["127.0.0.1:7777", "localhost:7777"]);
        assert_eq!(hosts("http://[::1]:7000/cb"), ["[::1]:7000"]);
        assert_eq!(hosts("http://127.0.0.1/cb"), ["127.0.0.1:80", "127.0.0.1"]);
    }
}
