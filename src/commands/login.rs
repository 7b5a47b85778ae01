//! `login`: the loopback OAuth flow, for a person at a machine with a
//! browser. It listens on loopback, sends the person to the consent page
//! (the URL `auth-url` makes, its state kept in the store), catches the
//! redirect there and ends exactly as `exchange` does: the same state check
//! before anything is sent, the same save, copies and report. The browser
//! gets a short page that never carries a token or a code.
//!
//! Any page the browser shows can send it to the listener, so a request ends
//! the login only when it carries the state this login issued (a declined
//! consent included); any other gets an error page and the wait goes on. A
//! request whose `Host` is not the listener's own address (DNS rebinding:
//! a foreign name resolved to loopback) is refused before anything is read.
//!
//! Withings sends the browser only to a registered callback, so the one
//! used here must be registered too; where it cannot be (a server without
//! a browser), `auth-url` + `exchange` remain the way.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::{Command as Process, Stdio};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use clap::Args;
use reqwest::Url;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

use crate::cli::{DeliveryArgs, parse_duration};
use crate::consent::{self, AuthUrlRequest};
use crate::copies::{self, Targets};
use crate::error::{Error, Result, Status};
use crate::http::{HttpClient, block_on, clip, humanize, visible};
use crate::output::Output;
use crate::rotation::Rotation;
use crate::settings::Settings;
use crate::store::TokenStore;
use crate::withings::WithingsClient;

/// The default callback is `http://127.0.0.1:8585/callback`.
pub const DEFAULT_PORT: u16 = 8585;
const DEFAULT_PATH: &str = "/callback";
/// A person approves within minutes; beyond an hour `--wait` is a typo.
const MAX_WAIT: Duration = Duration::from_secs(3600);
/// How long the browser's page may take to leave before the listener closes.
const PAGE_DRAIN: Duration = Duration::from_secs(2);
const LOGIN_AGAIN: &str = "run `withings-token login` again and approve the request";

/// Log in from this machine: open the consent page, catch the redirect on loopback, store the tokens
#[derive(Debug, Args)]
#[command(
    after_help = "Listens on loopback for Withings' redirect. The callback is WITHINGS_REDIRECT_URI when that is a loopback \
http:// URL (http://127.0.0.1:P/..., http://localhost:P/...; its port and path are used), else \
http://127.0.0.1:PORT/callback. Withings redirects only to a registered callback: register exactly that one with your \
Withings app. Only a redirect carrying this login's state ends the wait: a request with another or no state, or naming \
another Host than the listener's, gets an error page and the wait goes on. Then the \
tokens are stored, the env file and Railway updated and the report printed as `exchange` does. No browser is opened \
without DISPLAY or WAYLAND_DISPLAY (macOS: always). Not available with --server; there, or where no browser can \
reach this machine, use `auth-url`, then `exchange`. Over ssh, forward the port from the laptop first \
(`ssh -L 8585:127.0.0.1:8585 HOST`) and pass --no-browser.\n\n\
Examples:\n  withings-token login\n  withings-token login --port 9000 --no-railway\n  withings-token login --no-browser --wait 10m --json"
)]
pub struct LoginArgs {
    /// Loopback port to listen on [default: the port of a loopback WITHINGS_REDIRECT_URI, else 8585]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub port: Option<u16>,

    /// Do not open a browser; only print the URL to open
    #[arg(long)]
    pub no_browser: bool,

    /// How long to wait for the browser to come back (more than 0, at most 1h)
    #[arg(long, value_parser = parse_wait, default_value = "5m", value_name = "DURATION")]
    pub wait: Duration,

    /// Open Withings' demo account instead of a real one (`mode=demo`)
    #[arg(long)]
    pub demo_account: bool,

    #[command(flatten)]
    pub delivery: DeliveryArgs,
}

fn parse_wait(text: &str) -> std::result::Result<Duration, String> {
    let d = parse_duration(text)?;
    if d.is_zero() || d > MAX_WAIT {
        return Err(format!("`{}` is out of range: more than 0, at most 1h", text.trim()));
    }
    Ok(d)
}

/// Where the browser comes back, decided before anything is bound or stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Callback {
    /// The loopback address to listen on.
    pub listen: SocketAddr,
    /// The redirect URI sent to Withings: the setting as written, or the default.
    pub redirect_uri: String,
    /// Its path: the only one answered as the callback.
    pub path: String,
    /// It is WITHINGS_REDIRECT_URI (so `--port` cannot move it).
    pub from_setting: bool,
}

/// The loopback WITHINGS_REDIRECT_URI when there is one, else the default
/// callback on `port` (or 8585).
pub fn plan_callback(port: Option<u16>, configured: Option<&str>) -> Result<Callback> {
    if let Some(text) = configured
        && let Some((url, ip)) = loopback(text)
    {
        return from_setting(port, text, &url, ip);
    }
    let port = port.unwrap_or(DEFAULT_PORT);
    Ok(Callback {
        listen: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        redirect_uri: format!("http://127.0.0.1:{port}{DEFAULT_PATH}"),
        path: DEFAULT_PATH.to_owned(),
        from_setting: false,
    })
}

/// The URL and the address to listen on, when `text` names a loopback host.
/// `localhost` is listened for on 127.0.0.1: browsers fall back to it.
fn loopback(text: &str) -> Option<(Url, IpAddr)> {
    let url = Url::parse(text).ok()?;
    let ip = match url.host()? {
        url::Host::Domain(d) if d.eq_ignore_ascii_case("localhost") => IpAddr::V4(Ipv4Addr::LOCALHOST),
        url::Host::Domain(_) => return None,
        url::Host::Ipv4(ip) => IpAddr::V4(ip),
        url::Host::Ipv6(ip) => IpAddr::V6(ip),
    };
    ip.is_loopback().then_some((url, ip))
}

/// The registered loopback callback: its port is fixed, so a `--port`
/// that differs could only end in Withings refusing the redirect.
fn from_setting(flag: Option<u16>, text: &str, url: &Url, ip: IpAddr) -> Result<Callback> {
    let shown = visible(text);
    let port = url.port_or_known_default().unwrap_or(0);
    if url.scheme() != "http" || port == 0 {
        return Err(Error::config(
            format!(
                "WITHINGS_REDIRECT_URI ({shown}) is a loopback URL that `login` cannot listen on: it needs http:// and a port"
            ),
            "register and set a callback such as http://127.0.0.1:8585/callback, or use `withings-token auth-url`, then `exchange`",
        ));
    }
    if let Some(flag) = flag
        && flag != port
    {
        return Err(Error::config(
            format!(
                "--port {flag} differs from the port of WITHINGS_REDIRECT_URI ({shown}); Withings redirects only to the registered callback"
            ),
            format!(
                "drop --port (login then listens on {port}), or change WITHINGS_REDIRECT_URI and the callback registered with Withings to port {flag}"
            ),
        ));
    }
    Ok(Callback {
        listen: SocketAddr::new(ip, port),
        redirect_uri: text.to_owned(),
        path: url.path().to_owned(),
        from_setting: true,
    })
}

/// The outside parties of one login, resolved before anything is bound.
struct Parties<'a> {
    settings: &'a Settings,
    http: &'a HttpClient,
    client: &'a WithingsClient,
    store: &'a dyn TokenStore,
    targets: &'a Targets,
}

pub fn run(args: &LoginArgs, settings: &Settings, out: &Output) -> Result<Status> {
    if settings.remote.is_some() {
        return Err(Error::config(
            "`login` is not available with --server (WITHINGS_TOKEN_SERVER): the browser would come back to this machine, while the server keeps the state",
            "with a server, run `withings-token auth-url`, then `withings-token exchange '<redirect URL>'`; or run `login` without --server where the store is",
        ));
    }
    let callback = plan_callback(args.port, settings.redirect_uri.as_deref())?;
    if let (false, Some(configured)) = (callback.from_setting, &settings.redirect_uri) {
        out.note(&format!(
            "note: WITHINGS_REDIRECT_URI ({}) is not a loopback URL, so `login` uses {}; that callback must be registered with your Withings app too",
            visible(configured),
            callback.redirect_uri
        ));
    }
    // `auth-url`'s URL and the code exchange both send this redirect URI.
    let mut settings = settings.clone();
    settings.redirect_uri = Some(callback.redirect_uri.clone());
    let targets = copies::targets(&settings, args.delivery.choices())?;
    let http = HttpClient::new(settings.http)?;
    let client = crate::withings::client_for(&settings, &http, "login")?;
    let store = crate::store::open(&settings)?;
    let parties = Parties {
        settings: &settings,
        http: &http,
        client: &client,
        store: store.as_ref(),
        targets: &targets,
    };
    block_on(flow(args, &callback, &parties, out))?
}

/// Binds first (a port in use fails before a state is stored or a browser
/// opened), invites, waits for this login's redirect, exchanges, answers
/// the browser, delivers.
async fn flow(args: &LoginArgs, callback: &Callback, p: &Parties<'_>, out: &Output) -> Result<Status> {
    let listener = bind(callback).await?;
    let request = AuthUrlRequest {
        state: None,
        demo_account: args.demo_account,
    };
    let auth = consent::issue(&request, p.settings, p.store).await?;
    invite(out, &auth.authorization_url, callback, args.no_browser);
    let mut server = CallbackServer::start(listener, callback);
    let waited = {
        let _spinner = out.spinner("waiting for the browser to come back…");
        wait_for_ours(&mut server, args.wait, callback, &auth.state, out).await
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
            let _spinner = out.spinner("exchanging the code with Withings…");
            exchange_callback(p, &url).await
        }
    };
    // The set is saved by now: the browser hears first, the copies follow.
    let _ = arrival.reply.send(Page::of(&exchanged));
    server.stop().await;
    super::deliver_and_report(p.settings, p.http, p.store, p.targets, exchanged?, out).await
}

/// The first callback request that carries `state`, with its URL; every
/// other one gets [`Page::not_this_login`] and the wait goes on, up to `wait`
/// in all.
async fn wait_for_ours(
    server: &mut CallbackServer,
    wait: Duration,
    callback: &Callback,
    state: &str,
    out: &Output,
) -> Result<(Arrival, Url)> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let arrival = server.next(deadline, wait, callback).await?;
        match with_state(callback, &arrival.query, state)? {
            Some(url) => return Ok((arrival, url)),
            None => {
                let _ = arrival.reply.send(Page::not_this_login());
                out.note(
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
    let mut url = Url::parse(&callback.redirect_uri).map_err(|e| Error::Internal(e.into()))?;
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

/// Prints the URL (even under `--quiet`: the run needs it) and opens it
/// when a browser can be shown; a browser that does not open is only said.
fn invite(out: &Output, url: &str, callback: &Callback, no_browser: bool) {
    out.instruction(&format!(
        "Open this URL in a browser and approve; withings-token waits for the redirect to {}:\n  {url}",
        callback.redirect_uri
    ));
    if no_browser {
        return;
    }
    if !crate::settings::graphical_session() {
        out.note("note: no browser opened (neither DISPLAY nor WAYLAND_DISPLAY is set): open the URL above yourself");
        return;
    }
    let opener = if cfg!(target_os = "macos") { "open" } else { "xdg-open" };
    let spawned = Process::new(opener)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    match spawned {
        Err(e) => out.note(&format!(
            "warning: could not open a browser ({opener}: {e}); open the URL above yourself"
        )),
        // `xdg-open` may run as long as the browser does: reaped aside.
        Ok(mut child) => {
            let _ = std::thread::Builder::new().name("browser".into()).spawn(move || {
                if let Ok(status) = child.wait()
                    && !status.success()
                {
                    tracing::warn!("{opener} could not open a browser ({status}); open the URL above yourself");
                }
            });
        }
    }
}

/// The callback's URL, checked and exchanged as `exchange` does with a
/// pasted redirect URL (its base is ours: only the callback path gets here).
async fn exchange_callback(p: &Parties<'_>, url: &Url) -> Result<Rotation> {
    let redirect = consent::parse_code_or_url(url.as_str()).map_err(|e| match e {
        Error::Config { message, .. } => Error::config(message, LOGIN_AGAIN),
        other => other,
    })?;
    consent::exchange(p.settings, p.store, p.client, &redirect)
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
            Ok(None) => Err(Error::Internal(anyhow::anyhow!(
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

/// The browser's answer: a few words, never a token or a code.
struct Page {
    status: StatusCode,
    title: &'static str,
    text: String,
}

impl Page {
    fn of(exchanged: &Result<Rotation>) -> Page {
        match exchanged {
            Ok(_) => Page {
                status: StatusCode::OK,
                title: "Logged in",
                text: "withings-token saved the new tokens. You can close this tab; the terminal shows the rest."
                    .into(),
            },
            Err(e) => Page {
                status: match e.exit_code() {
                    3 | 4 => StatusCode::BAD_REQUEST,
                    5 => StatusCode::BAD_GATEWAY,
                    _ => StatusCode::INTERNAL_SERVER_ERROR,
                },
                title: "Login failed",
                text: format!("{e} [{}]. The terminal says what to do next.", e.code()),
            },
        }
    }

    /// A callback without this login's state: not its redirect.
    fn not_this_login() -> Page {
        Page {
            status: StatusCode::BAD_REQUEST,
            title: "Not this login",
            text: "This request does not carry the state of the login withings-token is waiting for, so it was ignored and nothing was sent. The login goes on waiting for the redirect of its own consent.".into(),
        }
    }

    /// A request whose `Host` names something else than this listener.
    fn foreign_host() -> Page {
        Page {
            status: StatusCode::MISDIRECTED_REQUEST,
            title: "Wrong address",
            text: "This withings-token login answers only requests to its own loopback address; this one named another host and was refused.".into(),
        }
    }

    fn ended() -> Page {
        Page {
            status: StatusCode::GONE,
            title: "Login already ended",
            text: "This withings-token login has already ended; the terminal says how.".into(),
        }
    }

    fn html(&self) -> String {
        format!(
            "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>withings-token: {title}</title></head>\n\
<body><h1>{title}</h1><p>{text}</p></body></html>\n",
            title = escape_html(self.title),
            text = escape_html(&self.text)
        )
    }
}

impl IntoResponse for Page {
    fn into_response(self) -> Response {
        let headers = [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (header::REFERRER_POLICY, "no-referrer"),
        ];
        (self.status, headers, self.html()).into_response()
    }
}

fn escape_html(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_loopback_setting_the_default_callback_is_used() {
        for configured in [None, Some("https://example.com/callback"), Some("not a url")] {
            let c = plan_callback(None, configured).unwrap();
            assert_eq!(c.listen.to_string(), "127.0.0.1:8585");
            assert_eq!(c.redirect_uri, "http://127.0.0.1:8585/callback");
            assert_eq!(c.path, "/callback");
            assert!(!c.from_setting);
        }
        let c = plan_callback(Some(9000), Some("https://example.com/callback")).unwrap();
        assert_eq!(c.redirect_uri, "http://127.0.0.1:9000/callback");
        assert_eq!(c.listen.port(), 9000);
    }

    #[test]
    fn a_loopback_setting_is_the_callback_as_written() {
        let c = plan_callback(None, Some("http://localhost:7777/oauth/withings")).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:7777");
        assert_eq!(c.redirect_uri, "http://localhost:7777/oauth/withings");
        assert_eq!(c.path, "/oauth/withings");
        assert!(c.from_setting);
        let c = plan_callback(Some(7777), Some("http://127.0.0.2:7777")).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.2:7777");
        assert_eq!(c.redirect_uri, "http://127.0.0.2:7777");
        assert_eq!(c.path, "/");
        let c = plan_callback(None, Some("http://[::1]:7000/cb")).unwrap();
        assert_eq!(c.listen.to_string(), "[::1]:7000");
    }

    #[test]
    fn a_port_flag_that_moves_a_registered_loopback_callback_is_refused() {
        let e = plan_callback(Some(9000), Some("http://127.0.0.1:8585/callback")).unwrap_err();
        assert_eq!(e.code(), "CONFIGURATION_ERROR");
        assert!(e.to_string().contains("--port 9000 differs"), "{e}");
        assert!(e.action().contains("WITHINGS_REDIRECT_URI"), "{}", e.action());
        for unusable in ["https://127.0.0.1:8585/callback", "http://127.0.0.1:0/callback"] {
            assert_eq!(
                plan_callback(None, Some(unusable)).unwrap_err().exit_code(),
                3,
                "{unusable}"
            );
        }
    }

    #[test]
    fn wait_is_bounded() {
        assert_eq!(parse_wait("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_wait("1h"), Ok(MAX_WAIT));
        for bad in ["0s", "61m", "x"] {
            assert!(parse_wait(bad).is_err(), "{bad}");
        }
    }

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

    #[test]
    fn pages_escape_what_they_show() {
        let page = Page {
            status: StatusCode::BAD_REQUEST,
            title: "Login failed",
            text: "<script>alert('x')</script> & \"more\"".into(),
        };
        let html = page.html();
        assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;more&quot;"));
        assert!(!html.contains("<script>"));
    }
}
