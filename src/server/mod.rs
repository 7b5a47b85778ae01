//! `serve`: the admin API of the Withings MCP service this tool grew from
//! (same paths, bodies and keys; docs/serve.md says what that service is), a
//! token broker for consumers (`GET /v1/access-token`) and a background
//! refresh, all on the same store, lock, decision (`tokens::assess`) and
//! rotation as the CLI, so the CLI and any number of servers can share one
//! store.
//!
//! `serve` serves every account of the deployment (`accounts`): one
//! [`AppState`] holds what they share (the settings, the one HTTP client,
//! the Withings clients and their budget, the credentials, the metrics),
//! and each account its store, view, flight mutex and memory of failed
//! refreshes (`failures`); every change to an account's store goes through
//! `jobs`, one at a time per account. The read-only endpoints see a store
//! through `view`, which reads it again only when it changed. A person
//! reconnects an account whose consent ended through `reconsent` (a
//! one-time link, Withings' consent page, the callback). `connections`
//! takes connections within limits a stranger
//! cannot exhaust (`peers` shares them out by address, `stall` cuts an
//! answer nobody reads). `outbox` records the events the refreshes noted
//! and delivers them in the background. On SIGTERM/SIGINT the server stops
//! accepting, lets a transaction in flight end (its save must happen), and
//! returns; a second signal ends it at once.

mod accounts;
mod api;
mod auth;
pub mod connections;
mod core_dumps;
mod errors;
mod exposition;
mod failures;
mod jobs;
mod metrics;
mod outbox;
mod peers;
mod proxy;
mod reconsent;
mod schedule;
mod shares;
mod stall;
mod usage;
mod view;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use secrecy::ExposeSecret;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::error::{Error, Result, Status};
use crate::http::HttpClient;
use crate::settings::{HttpPolicy, Settings};
use crate::store::TokenStore;
use crate::withings::WithingsClient;

pub use core_dumps::keep_out_of_core_dumps;

/// How long open connections get to finish after a signal. A transaction
/// in flight is waited for beyond it: its answer must be saved.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Shorter admin tokens are accepted (the MCP service's may be), with a warning.
const MIN_ADMIN_TOKEN_LEN: usize = 16;

/// Everything a request or the schedule needs, built once at start.
pub struct AppState {
    /// The deployment's settings (each account's are in `accounts`).
    pub settings: Settings,
    /// The deployment's store (the `default` account's), for the log.
    deployment_location: String,
    accounts: accounts::Accounts,
    pub http: HttpClient,
    pub withings: WithingsClient,
    /// The background refresh's client: one request per check, since the
    /// loop's backoff is its retry (and says once what a retry loop would
    /// say on every attempt).
    schedule_withings: WithingsClient,
    credentials: auth::Credentials,
    metrics: metrics::Metrics,
    /// The proxy's calls of the last day, per reader and account.
    usage: usage::Book,
    /// Whether `GET /metrics` asks for the admin token (`--metrics-auth`).
    pub metrics_auth: bool,
    /// The Withings proxy's timeout and answer cap.
    pub proxy: crate::withings::proxy::ProxyLimits,
    /// What the proxied calls take from: the app's budget, the readers' shares.
    budgets: shares::Budgets,
    stopping: AtomicBool,
}

impl AppState {
    /// Checks what `serve` cannot work without, before anything listens:
    /// `ADMIN_API_TOKEN`, the Withings app, a whole Railway configuration,
    /// the named readers' digests. `check_interval` is the background
    /// refresh's (the backoff after a failure starts from it).
    pub fn new(settings: Settings, check_interval: Duration) -> Result<AppState> {
        let admin = settings.server.admin_token.clone().ok_or_else(|| {
            Error::config(
                "ADMIN_API_TOKEN is not set (serve needs it: it guards the admin endpoints)",
                "set ADMIN_API_TOKEN to a long random secret (e.g. `openssl rand -hex 32`) in the environment or the env file",
            )
        })?;
        if admin.expose_secret().len() < MIN_ADMIN_TOKEN_LEN {
            tracing::warn!(
                "ADMIN_API_TOKEN is shorter than {MIN_ADMIN_TOKEN_LEN} characters: anyone who can reach the server may guess it (`openssl rand -hex 32` makes a good one)"
            );
        }
        let readers = settings
            .server
            .readers
            .iter()
            .map(auth::ScopedReader::of)
            .collect::<Result<Vec<_>>>()?;
        let http = HttpClient::new(settings.http)?;
        let withings = crate::withings::client_for(&settings, &http, "serve")?;
        let once = HttpClient::new(HttpPolicy {
            retries: 0,
            ..settings.http
        })?;
        let schedule_withings = crate::withings::client_for(&settings, &once, "serve")?;
        crate::copies::targets(&settings, crate::copies::Choices::default())?;
        // Every account's refreshes take from the app's one budget: a
        // shared store (Redis) shares it with other hosts too.
        let deployment = crate::store::open(&settings)?;
        let withings = withings.sharing_budget_through(deployment.as_ref());
        let schedule_withings = schedule_withings.sharing_budget_through(deployment.as_ref());
        // The proxied calls take from the same budget as the refreshes.
        let app_budget = crate::budget::for_client(settings.client_id("serve")?, settings.upstream_budget);
        let budgets = shares::Budgets::new(app_budget, deployment.shared_budget(), &readers);
        Ok(AppState {
            deployment_location: deployment.location(),
            accounts: accounts::Accounts::new(settings.clone(), check_interval),
            credentials: auth::Credentials {
                admin,
                reader: settings.server.reader_token.clone(),
                readers,
            },
            metrics: metrics::Metrics::new(),
            usage: usage::Book::default(),
            metrics_auth: false,
            proxy: crate::withings::proxy::ProxyLimits::default(),
            budgets,
            stopping: AtomicBool::new(false),
            settings,
            http,
            withings,
            schedule_withings,
        })
    }

    fn withings_for(&self, trigger: jobs::Trigger) -> &WithingsClient {
        match trigger {
            jobs::Trigger::Schedule => &self.schedule_withings,
            jobs::Trigger::Admin | jobs::Trigger::Broker | jobs::Trigger::Proxy => &self.withings,
        }
    }

    fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }
}

/// Serves on `listen` within `limits` until SIGTERM/SIGINT; the background
/// refresh checks the store every `check_interval`.
pub async fn serve(
    state: AppState,
    listen: SocketAddr,
    check_interval: Duration,
    limits: connections::Limits,
) -> Result<Status> {
    let state = Arc::new(state);
    // This process lives on: a set no file could take waits in memory.
    crate::rotation::keep_unsaved_in_memory();
    let accounts = state.accounts.list(true).await?;
    if let Some(account) = accounts.values().next() {
        warn_of_durability(account.store.as_ref()).await;
    }
    say_encryption(&state.settings);
    let mut signals = Signals::install()?;
    let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| {
        Error::config(
            format!("cannot listen on {listen}: {e}"),
            "pass a free address with `--listen ADDR` (or set PORT)",
        )
    })?;
    let local = listener.local_addr().map_err(Error::internal)?;
    crate::logging::user_line(tracing::Level::INFO, &format!("listening on http://{local}"));
    let names: Vec<&str> = accounts.keys().map(|n| n.as_str()).collect();
    tracing::info!(
        "token store {}; accounts: {}; checked every {} ms",
        state.deployment_location,
        names.join(", "),
        check_interval.as_millis()
    );
    drop(accounts);
    let (stop, stopped) = watch::channel(false);
    let app = api::router(Arc::clone(&state));
    let mut server = tokio::spawn(connections::serve(listener, app, limits, stopped.clone()));
    let schedule = tokio::spawn(schedule::run(Arc::clone(&state), check_interval, stopped.clone()));
    let outbox = tokio::spawn(outbox::run(Arc::clone(&state), check_interval, stopped));
    let signal = tokio::select! {
        signal = signals.next() => signal,
        ended = &mut server => return Err(server_ended(ended)),
    };
    tracing::info!("signal {signal}: stopping; a refresh in flight is finished first");
    state.stopping.store(true, Ordering::SeqCst);
    // A refresh in flight finishes its request, but retries nothing more.
    crate::signals::request_stop(signal);
    let _ = stop.send(true);
    tokio::select! {
        () = drain(&state, server, schedule, outbox) => {
            tracing::info!("stopped");
            Ok(Status::Success)
        }
        second = signals.next() => {
            tracing::warn!("second signal {second}: stopping at once");
            Ok(Status::Signalled(second))
        }
    }
}

/// A shared store that can lose the set (Redis evicting it, or keeping it
/// in memory only) is said at start, one line per problem; `doctor` fails
/// on the same findings.
async fn warn_of_durability(store: &dyn TokenStore) {
    let Some(durability) = store.durability().await else {
        return;
    };
    for problem in &durability.problems {
        tracing::warn!(
            "the token store {} may lose the set: {}; {}",
            store.location(),
            problem.detail,
            problem.action
        );
    }
}

/// Whether the sets are written encrypted (see `sealing`), and to which
/// recipients, said at start; plain sets in a Redis, which other services
/// often share, are warned of (`doctor` warns the same).
fn say_encryption(settings: &Settings) {
    let keyring = settings.keyring();
    let recipients = keyring.recipients();
    if keyring.seals() {
        let listed: Vec<String> = recipients.iter().map(crate::sealing::Recipient::fingerprint).collect();
        let count = match recipients.len() {
            1 => "1 recipient".to_owned(),
            n => format!("{n} recipients"),
        };
        tracing::info!("token store encrypted at rest to {count}: {}", listed.join(", "));
        return;
    }
    if let crate::settings::StoreLocation::Redis { .. } = settings.store {
        tracing::warn!(
            "token store plain: no recipient is configured, so the tokens are written to Redis unencrypted, readable by whoever reads that Redis; set `encrypt_to` (WITHINGS_TOKEN_RECIPIENTS), then run `withings-token rekey`"
        );
    } else {
        tracing::info!("token store plain: no recipient is configured (`encrypt_to` encrypts it: docs/encryption.md)");
    }
}

/// Waits for open connections (up to [`DRAIN_TIMEOUT`]), the schedule, and
/// the transactions still in flight (taking an account's flight means none
/// of its is).
async fn drain(
    state: &AppState,
    mut server: JoinHandle<std::io::Result<()>>,
    schedule: JoinHandle<()>,
    outbox: JoinHandle<()>,
) {
    if tokio::time::timeout(DRAIN_TIMEOUT, &mut server).await.is_err() {
        tracing::warn!("connections still open after {} s are closed", DRAIN_TIMEOUT.as_secs());
        server.abort();
    }
    let _ = schedule.await;
    for account in state.accounts.all().values() {
        let _ = account.flight.lock().await;
    }
    // Records the last notes (delivery is left to the next run or start);
    // a delivery under way is not waited for past the drain's time.
    if tokio::time::timeout(DRAIN_TIMEOUT, outbox).await.is_err() {
        tracing::warn!(
            "events still being delivered after {} s are left in the outbox",
            DRAIN_TIMEOUT.as_secs()
        );
    }
}

fn server_ended(ended: std::result::Result<std::io::Result<()>, tokio::task::JoinError>) -> Error {
    let why = match ended {
        Ok(Ok(())) => "it stopped by itself".to_owned(),
        Ok(Err(e)) => e.to_string(),
        Err(e) => e.to_string(),
    };
    Error::internal(anyhow::anyhow!("the HTTP server ended: {why}"))
}

/// SIGTERM (platforms stopping a service) and SIGINT (Ctrl-C).
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        let install =
            |kind| signal(kind).map_err(|e| Error::internal(anyhow::anyhow!("cannot handle SIGTERM/SIGINT: {e}")));
        Ok(Signals {
            term: install(SignalKind::terminate())?,
            int: install(SignalKind::interrupt())?,
        })
    }

    /// The next signal's number.
    async fn next(&mut self) -> i32 {
        tokio::select! {
            _ = self.term.recv() => signal_hook::consts::SIGTERM,
            _ = self.int.recv() => signal_hook::consts::SIGINT,
        }
    }
}
