//! `serve`: the long-running service (see `server`): admin API, token
//! broker, background refresh, on the CLI's store and lock.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;

use crate::cli::{GlobalArgs, LogFormat, parse_buffer, parse_duration};
use crate::error::{Error, Result, Status};
use crate::server::{self, AppState};
use crate::settings::Settings;

/// Where `serve` listens when neither `--listen` nor `PORT` says.
const DEFAULT_LISTEN: ([u8; 4], u16) = ([127, 0, 0, 1], 8080);
const MIN_CHECK_INTERVAL: Duration = Duration::from_millis(100);
const MAX_CHECK_INTERVAL: Duration = Duration::from_secs(3600);
/// Below this a slow but honest client (a phone on a bad network) would
/// lose its requests.
const MIN_HEADER_TIMEOUT: Duration = Duration::from_millis(100);
/// A proxied call longer than this is a hung one (Withings answers in seconds).
const MAX_PROXY_TIMEOUT: Duration = Duration::from_secs(600);
/// The most threads that serve requests (see [`worker_threads`]).
const MAX_WORKERS: usize = 2;

/// Run as a service: the admin API, a token broker and a background refresh
#[derive(Debug, Args)]
#[command(
    after_help = "Endpoints: GET /admin/health and /health (no auth); with `X-Admin-Token: $ADMIN_API_TOKEN`: \
GET /admin/token/status, POST /admin/token/refresh, GET /admin/authorization-url, POST /admin/token/exchange?code=CODE, GET /admin/token/validate; GET /metrics (Prometheus text, no auth unless --metrics-auth); \
with `Authorization: Bearer $WITHINGS_TOKEN_READER_TOKEN` (or the admin token): GET /v1/access-token?min_ttl=5m, \
which answers the access token UNMASKED (a secret: serve it over TLS or loopback only).\n\
Every account of the store is served (no flag): each of those endpoints takes ?account=NAME (without it: the only account; \
several and none named: 400 listing them; unknown: 404), GET /admin/accounts lists them, and a [reader.NAME] of the config file \
reads only its accounts with GET /v1/access-token (403 on another, counted in /metrics).\n\
With the same reader credential, ANY /v1/withings/PATH?account=NAME (or `Withings-Account: NAME`) calls $WITHINGS_API_URL/PATH \
with the account's access token (refreshed first when it lives less than 5m): the query (without account) and body go on, \
the answer comes back unchanged (status, content type, body), within --proxy-timeout and --proxy-max-bytes.\n\
ADMIN_API_TOKEN is required. Every --check-interval each account's store is checked (four at a time) and refreshed when due (one request per check), \
under the same lock as the CLI, so `withings-token refresh` and other servers can share the store. While Withings fails, \
checks back off (doubling with jitter, up to 16 intervals or 1h; longer when Withings asks to wait, up to 1h; never past \
5m before the access token expires), logged once when they start failing and once when they work again. A refresh \
failure is the answer of every request that waited for it; after Withings failed, the broker and the checks get that \
failure at once (with Retry-After) until a short backoff ends (5-10s, doubling); a refused refresh token is not sent \
again by the broker or the checks until the store holds another set (POST /admin/token/refresh still tries it, backoff \
or not). A min_ttl longer than half the token's lifetime is capped to that half. \
The soft open-files limit is raised to the hard one; at most --max-connections are served at once, at most \
--max-connections-per-ip from one address, and beyond either the oldest connection that has not sent a whole request head \
is closed to make room; a connection that sends no whole request head within --header-timeout, or whose answer makes no \
progress for as long (a client that does not read), is closed. Logs are JSON lines on stderr unless \
`--log-format text`. On Linux core dumps are off while it runs (PR_SET_DUMPABLE 0: a crash leaves no token in a core file; \
debuggers need root); the start says whether the store is encrypted at rest, and to which recipients. SIGTERM/SIGINT: stop accepting, finish a refresh in flight, exit 0.\n\n\
Examples:\n  ADMIN_API_TOKEN=$(openssl rand -hex 32) withings-token serve\n  withings-token serve --listen 0.0.0.0:8080 --check-interval 5m\n  \
PORT=8080 withings-token serve          # Railway: listens on 0.0.0.0:$PORT\n  \
curl -s localhost:8080/admin/token/status -H \"X-Admin-Token: $ADMIN_API_TOKEN\""
)]
pub struct ServeArgs {
    /// Address to listen on, IP:PORT [default: 127.0.0.1:8080, or 0.0.0.0:$PORT when PORT is set]
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,

    /// How often the store is checked for a refresh that is due, from 100ms to 1h
    #[arg(long, value_parser = parse_check_interval, default_value = "60s", value_name = "DURATION")]
    pub check_interval: Duration,

    /// How long before expiry the background refresh is due, at most 366d [env: WITHINGS_REFRESH_BUFFER] [default: min(24h, lifetime/3)]
    #[arg(long, value_parser = parse_buffer, value_name = "DURATION")]
    pub buffer: Option<Duration>,

    /// Ask for `X-Admin-Token` on GET /metrics too (open by default: it holds no token)
    #[arg(long)]
    pub metrics_auth: bool,

    /// The most connections served at once; beyond it, the oldest that has not sent a whole request head is closed, or a new one waits [default: 1024, fewer when the open-files limit leaves 64 free for the store and Withings]
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..), value_name = "N")]
    pub max_connections: Option<u32>,

    /// The most connections one address (an IPv4 address, an IPv6 /64) holds; beyond it, its oldest that has not sent a whole request head is closed [default: a quarter of --max-connections; behind a proxy, where every connection comes from it, set it to --max-connections]
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..), value_name = "N")]
    pub max_connections_per_ip: Option<u32>,

    /// Close a connection that has not sent a whole request head within this time (a kept-alive one too, between requests), or whose answer makes no progress for as long, from 100ms to 10s
    #[arg(long, value_parser = parse_header_timeout, default_value = "10s", value_name = "DURATION")]
    pub header_timeout: Duration,

    /// How long a call through the Withings proxy (/v1/withings/PATH) may take, answer included, from 100ms to 10m; no answer head within it: 504
    #[arg(long, value_parser = parse_proxy_timeout, default_value = "30s", value_name = "DURATION")]
    pub proxy_timeout: Duration,

    /// The largest answer the Withings proxy passes back, in bytes (32 MiB by default); one announced larger: 502 ANSWER_TOO_LARGE, one that grows larger is cut
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..), default_value = "33554432", value_name = "BYTES")]
    pub proxy_max_bytes: u64,
}

/// A service logs for collectors: the MCP service's JSON lines at info level,
/// unless `--log-format`, `-q` or `-v` say otherwise.
pub fn log_defaults(global: &mut GlobalArgs) {
    global.log_format.get_or_insert(LogFormat::Json);
    if !global.quiet && global.verbose == 0 {
        global.verbose = 1;
    }
}

pub fn run(args: &ServeArgs, settings: &Settings) -> Result<Status> {
    // A log reader that stalls costs log lines, never a refresh or a request.
    let _log = crate::logging::write_in_background();
    let listen = listen_address(args.listen, settings.server.port()?);
    let mut state = AppState::new(settings.clone(), args.check_interval)?;
    state.metrics_auth = args.metrics_auth;
    state.proxy = crate::withings::proxy::ProxyLimits {
        timeout: args.proxy_timeout,
        max_answer: args.proxy_max_bytes,
    };
    // Before any refresh: this process stops on its own terms (see `signals`).
    if !crate::signals::leave_to_the_process() {
        return Err(Error::internal(anyhow::anyhow!(
            "signal handling was set up before serve started"
        )));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(worker_threads())
        .enable_all()
        .thread_name("serve")
        .build()
        .map_err(|e| Error::internal(anyhow::anyhow!("cannot start the async runtime: {e}")))?;
    let count = |n: u32| usize::try_from(n).unwrap_or(usize::MAX);
    let limits = server::connections::limits(
        args.max_connections.map(count),
        args.max_connections_per_ip.map(count),
        args.header_timeout,
    );
    let status = runtime.block_on(server::serve(state, listen, args.check_interval, limits));
    // After a second signal a transaction may still run on a blocking
    // thread: do not wait for it.
    runtime.shutdown_timeout(Duration::from_millis(500));
    status
}

/// One per core, at most [`MAX_WORKERS`]. A request costs the server a
/// `stat` and a copy of a rendered answer (see `server::view`): two workers
/// keep up with a load generator on the same two cores, and one did about a
/// tenth less (bench/serve.sh). Each more would keep an allocator arena of its own
/// (resident memory) on a large host, for nothing.
fn worker_threads() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(MAX_WORKERS)
}

/// `--listen`, else `0.0.0.0:$PORT` (a platform routes to it), else loopback.
fn listen_address(flag: Option<SocketAddr>, port: Option<u16>) -> SocketAddr {
    match (flag, port) {
        (Some(addr), _) => addr,
        (None, Some(port)) => SocketAddr::from(([0, 0, 0, 0], port)),
        (None, None) => SocketAddr::from(DEFAULT_LISTEN),
    }
}

fn parse_proxy_timeout(text: &str) -> std::result::Result<Duration, String> {
    let timeout = parse_duration(text)?;
    if !(MIN_HEADER_TIMEOUT..=MAX_PROXY_TIMEOUT).contains(&timeout) {
        return Err("must be from 100ms to 10m".into());
    }
    Ok(timeout)
}

fn parse_check_interval(text: &str) -> std::result::Result<Duration, String> {
    let d = parse_duration(text)?;
    if d < MIN_CHECK_INTERVAL || d > MAX_CHECK_INTERVAL {
        return Err(format!("`{}` is out of range: from 100ms to 1h", text.trim()));
    }
    Ok(d)
}

fn parse_header_timeout(text: &str) -> std::result::Result<Duration, String> {
    let d = parse_duration(text)?;
    if d < MIN_HEADER_TIMEOUT || d > server::connections::MAX_HEADER_TIMEOUT {
        return Err(format!("`{}` is out of range: from 100ms to 10s", text.trim()));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_flag_beats_port_which_beats_the_default() {
        let flag: SocketAddr = "127.0.0.1:9000".parse().unwrap();
        assert_eq!(listen_address(Some(flag), Some(7000)), flag);
        assert_eq!(listen_address(None, Some(7000)).to_string(), "0.0.0.0:7000");
        assert_eq!(listen_address(None, None).to_string(), "127.0.0.1:8080");
    }

    #[test]
    fn check_interval_is_bounded() {
        assert_eq!(parse_check_interval("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_check_interval("100ms"), Ok(Duration::from_millis(100)));
        assert_eq!(parse_check_interval("1h"), Ok(Duration::from_secs(3600)));
        for bad in ["0s", "99ms", "61m", "2h", "x"] {
            assert!(parse_check_interval(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn header_timeout_is_at_most_ten_seconds() {
        assert_eq!(parse_header_timeout("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_header_timeout("100ms"), Ok(Duration::from_millis(100)));
        for bad in ["0s", "99ms", "11s", "1m", "x"] {
            assert!(parse_header_timeout(bad).is_err(), "{bad}");
        }
    }
}
