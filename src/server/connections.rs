//! How `serve` takes connections, so that a stranger who opens many and
//! sends little (slowloris), or asks much and reads nothing, cannot starve
//! the broker, the admin API or a refresh:
//!
//! - the soft open-files limit is raised to the hard one at start;
//! - at most [`Limits::max_connections`] connections are served at once,
//!   fewer than the open-files limit by [`RESERVED_DESCRIPTORS`], which stay
//!   free for the store, its lock and temp files, Withings, Railway and
//!   Redis; one address holds at most [`Limits::per_peer`] of them, and
//!   beyond either cap the oldest connection that has not sent a whole
//!   request head makes room (see `peers`). A new connection that finds
//!   none to close waits for a slot (the ones after it in the kernel's
//!   listen backlog, where they hold no descriptor of ours);
//! - a connection that has not sent a whole request head within
//!   [`Limits::header_timeout`] is closed: a new one, and a kept-alive one
//!   between two requests alike (hyper starts the head's clock when it
//!   starts waiting for the next request), so the slots a stranger holds
//!   come free within that time;
//! - an answer that makes no progress for as long is cut (see `stall`): a
//!   client that pipelines requests and reads nothing holds nothing;
//! - hyper's buffers are kept to [`MAX_BUFFER`] a connection (its default
//!   lets a pipelining client make it hold about 800 KiB), so what a flood
//!   can make the server allocate is about the cap times that.
//!
//! Request bodies need no clock of their own: only the admin endpoints read
//! one, after the credential is checked, and at most 4 KiB of it.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper::service::Service;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;

use super::peers::{Admitted, Closing, Peers};
use super::stall::StallLimit;

/// Open files kept out of the connection cap: the store (file, lock, temp
/// file, directory, journal), the env file, pooled connections to Withings,
/// Railway and Redis, name resolution, and the runtime's own (stdio, epoll,
/// signal pipes); about 25 are used at the busiest moment of a refresh.
pub const RESERVED_DESCRIPTORS: u64 = 64;
/// The connection cap when the open-files limit allows more. A connection
/// a flood holds costs about 28 KiB (hyper's buffers, the task, the socket):
/// 6,000 half-sent heads from one address cost 35 MiB of RSS under a cap
/// of 4,096 (its quarter, 1,024, held), 17 MiB under 1,024, and the
/// allocator keeps that after the flood. A token broker has a handful of
/// consumers, not thousands.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// The longest a connection may take to send a request head, and an answer
/// may make no progress (`--header-timeout`).
pub const MAX_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// One address's share of the connections when `--max-connections-per-ip`
/// does not say: a quarter, so that it takes four addresses to fill them.
const DEFAULT_PEER_SHARE: usize = 4;
/// hyper's read and write buffers, each, per connection: a request head
/// (and the admin endpoints' bodies, at most 4 KiB) fits with room to spare,
/// and the largest answer (`/metrics`) is written in a few turns.
pub const MAX_BUFFER: usize = 16 * 1024;

/// What a connection may hold, decided once at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_connections: usize,
    /// The most connections one address holds (see `peers`).
    pub per_peer: usize,
    pub header_timeout: Duration,
}

/// Raises the open-files limit, decides the caps (`asked`:
/// `--max-connections`; `asked_per_peer`: `--max-connections-per-ip`) and
/// says them in one log line.
pub fn limits(asked: Option<usize>, asked_per_peer: Option<usize>, header_timeout: Duration) -> Limits {
    let open_files = raise_open_files_limit();
    let cap = connection_cap(open_files.now, asked);
    let per_peer = peer_share(cap, asked_per_peer);
    if let Some(asked) = asked.filter(|asked| *asked > cap) {
        tracing::warn!(
            "--max-connections {asked} is more than the open-files limit ({}) leaves after {RESERVED_DESCRIPTORS} kept for the store and Withings: {cap} are served at once",
            describe_limit(open_files.now)
        );
    }
    let limit = match (open_files.before, open_files.now) {
        (before, now) if before != now => {
            format!("raised from {} to {}", describe_limit(before), describe_limit(now))
        }
        (_, now) => describe_limit(now),
    };
    if let Some(why) = &open_files.not_raised {
        tracing::warn!("the open-files limit could not be raised to the hard limit: {why}");
    }
    tracing::info!(
        "open files: limit {limit}; at most {cap} connections at once, {per_peer} from one address (beyond that, the oldest that has not sent a whole request head is closed, or the new one waits), the rest kept for the store and Withings; a request head must arrive within {}, and an answer that makes no progress for as long is cut",
        crate::duration::humanize(header_timeout)
    );
    Limits {
        max_connections: cap,
        per_peer,
        header_timeout,
    }
}

/// One address's share: `asked`, else a [`DEFAULT_PEER_SHARE`]th of the
/// cap; at least one, at most the cap.
fn peer_share(cap: usize, asked: Option<usize>) -> usize {
    asked.unwrap_or(cap / DEFAULT_PEER_SHARE).clamp(1, cap.max(1))
}

/// The soft open-files limit before and after raising it (`None`: unlimited).
struct OpenFiles {
    before: Option<u64>,
    now: Option<u64>,
    not_raised: Option<String>,
}

/// Sets the soft limit to the hard one: the default soft limit (1,024 on
/// most Linux hosts) is kept low for old `select` users, not for servers.
fn raise_open_files_limit() -> OpenFiles {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current == limit.maximum {
        return OpenFiles {
            before: limit.current,
            now: limit.current,
            not_raised: None,
        };
    }
    let raised = Rlimit {
        current: limit.maximum,
        maximum: limit.maximum,
    };
    match setrlimit(Resource::Nofile, raised) {
        Ok(()) => OpenFiles {
            before: limit.current,
            now: getrlimit(Resource::Nofile).current,
            not_raised: None,
        },
        Err(e) => OpenFiles {
            before: limit.current,
            now: limit.current,
            not_raised: Some(e.to_string()),
        },
    }
}

fn describe_limit(limit: Option<u64>) -> String {
    limit.map_or_else(|| "unlimited".to_owned(), |n| n.to_string())
}

/// How many connections fit under `open_files` with [`RESERVED_DESCRIPTORS`]
/// kept free (half of a limit too small for that), capped by `asked`, else
/// by [`DEFAULT_MAX_CONNECTIONS`]; at least one.
fn connection_cap(open_files: Option<u64>, asked: Option<usize>) -> usize {
    let room = open_files.map_or(u64::MAX, |n| n.saturating_sub(RESERVED_DESCRIPTORS).max(n / 2));
    let room = usize::try_from(room).unwrap_or(usize::MAX);
    asked.unwrap_or(DEFAULT_MAX_CONNECTIONS).min(room).max(1)
}

/// Serves `app` on `listener` within `limits` until `stop` turns true, then
/// stops accepting and asks each connection to close once its request in
/// flight is answered; returns when all are closed.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
) -> io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let peers = Peers::new(limits.per_peer);
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(MAX_BUFFER)
        .keep_alive(true);
    let mut connections = JoinSet::new();
    loop {
        let (stream, from) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    pause_after_accept_error(&e).await;
                    continue;
                }
            },
            () = stopping(&mut stop) => break,
        };
        while connections.try_join_next().is_some() {}
        // None: its address holds its share, all busy; dropped, so closed.
        let Some((admitted, closing)) = peers.admit(from.ip()) else {
            continue;
        };
        let slot = tokio::select! {
            slot = slot_for(&slots, &peers) => slot?,
            () = stopping(&mut stop) => break,
        };
        let connection = Connection {
            stream,
            admitted,
            closing,
            _slot: slot,
        };
        connections.spawn(connection.serve(builder.clone(), app.clone(), limits, stop.clone()));
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
    Ok(())
}

/// A free slot, after closing the oldest connection still waiting for its
/// first head when there is none; else the first to come free.
async fn slot_for(slots: &Arc<Semaphore>, peers: &Peers) -> io::Result<OwnedSemaphorePermit> {
    if let Ok(slot) = Arc::clone(slots).try_acquire_owned() {
        return Ok(slot);
    }
    peers.close_oldest();
    Arc::clone(slots).acquire_owned().await.map_err(io::Error::other)
}

/// One accepted connection and what it holds until it ends.
struct Connection {
    stream: TcpStream,
    admitted: Admitted,
    closing: Closing,
    _slot: OwnedSemaphorePermit,
}

impl Connection {
    /// Serves it until the peer leaves, hyper ends it (a timeout, a broken
    /// request), it is closed to make room, or the server stops (then its
    /// request in flight is answered first).
    async fn serve(self, builder: http1::Builder, app: Router, limits: Limits, mut stop: watch::Receiver<bool>) {
        let Connection {
            stream,
            admitted,
            mut closing,
            _slot,
        } = self;
        let admitted = Arc::new(admitted);
        let app = TowerToHyperService::new(app);
        let service = hyper::service::service_fn(move |request| {
            admitted.head_arrived();
            app.call(request)
        });
        let io = TokioIo::new(StallLimit::new(stream, limits.header_timeout));
        let connection = builder.serve_connection(io, service);
        let mut connection = std::pin::pin!(connection);
        tokio::select! {
            _ = connection.as_mut() => return,
            Ok(()) = &mut closing => return,
            () = stopping(&mut stop) => {}
        }
        connection.as_mut().graceful_shutdown();
        let _ = connection.await;
    }
}

/// Returns once `stop` is true (its guard is not kept: it cannot cross an
/// `.await` of a task that may move between threads).
async fn stopping(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

/// A failed `accept` that is about one connection (reset before it was
/// taken) is nothing; any other (out of descriptors after all) is logged
/// and waited out for a moment, rather than retried in a spin.
async fn pause_after_accept_error(error: &io::Error) {
    use io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(error.kind(), ConnectionAborted | ConnectionRefused | ConnectionReset) {
        return;
    }
    tracing::warn!("cannot accept a connection: {error}; trying again in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_keeps_descriptors_for_the_store_and_withings() {
        // The default limit of 1,024: the cap leaves 64 free.
        assert_eq!(connection_cap(Some(1024), None), 960);
        // A large limit: the default cap.
        assert_eq!(connection_cap(Some(1 << 20), None), DEFAULT_MAX_CONNECTIONS);
        assert_eq!(connection_cap(None, None), DEFAULT_MAX_CONNECTIONS);
        assert_eq!(connection_cap(Some(20_000), None), 1024);
        // Asked for more than fits: what fits; for fewer: that.
        assert_eq!(connection_cap(Some(1024), Some(5000)), 960);
        assert_eq!(connection_cap(Some(1024), Some(10)), 10);
        assert_eq!(connection_cap(None, Some(100_000)), 100_000);
        // A tiny limit keeps half for the store; never no connection at all.
        assert_eq!(connection_cap(Some(100), None), 50);
        assert_eq!(connection_cap(Some(128), None), 64);
        assert_eq!(connection_cap(Some(1), None), 1);
        assert_eq!(connection_cap(Some(0), None), 1);
    }

    #[test]
    fn an_address_gets_a_quarter_of_the_connections_unless_told() {
        assert_eq!(peer_share(4096, None), 1024);
        assert_eq!(peer_share(40, None), 10);
        assert_eq!(peer_share(3, None), 1);
        assert_eq!(peer_share(1, None), 1);
        // Behind a proxy every connection comes from it: the whole cap.
        assert_eq!(peer_share(960, Some(960)), 960);
        assert_eq!(peer_share(960, Some(5000)), 960);
        assert_eq!(peer_share(960, Some(7)), 7);
    }
}
