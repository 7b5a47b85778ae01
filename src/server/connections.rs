//! How `serve` takes connections, so that a stranger who opens many and
//! sends little (slowloris) cannot starve the broker, the admin API or a
//! refresh (issue 18, item 8):
//!
//! - the soft open-files limit is raised to the hard one at start;
//! - at most [`Limits::max_connections`] connections are served at once,
//!   fewer than the open-files limit by [`RESERVED_DESCRIPTORS`], which stay
//!   free for the store, its lock and temp files, Withings, Railway and
//!   Redis. One more waits in the kernel's listen backlog, where it holds no
//!   descriptor of ours, until a served one closes;
//! - a connection that has not sent a whole request head within
//!   [`Limits::header_timeout`] is closed: a new one, and a kept-alive one
//!   between two requests alike (hyper starts the head's clock when it
//!   starts waiting for the next request), so the slots a stranger holds
//!   come free within that time.
//!
//! Request bodies need no clock of their own: only the admin endpoints read
//! one, after the credential is checked, and at most 4 KiB of it.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

/// Open files kept out of the connection cap: the store (file, lock, temp
/// file, directory, journal), the env file, pooled connections to Withings,
/// Railway and Redis, name resolution, and the runtime's own (stdio, epoll,
/// signal pipes); about 25 are used at the busiest moment of a refresh.
pub const RESERVED_DESCRIPTORS: u64 = 64;
/// The connection cap when the open-files limit allows more: beyond a few
/// thousand, an idle connection's buffers cost more than a client gains.
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;
/// The longest a connection may take to send a request head (`--header-timeout`).
pub const MAX_HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// What a connection may hold, decided once at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_connections: usize,
    pub header_timeout: Duration,
}

/// Raises the open-files limit, decides the cap (`asked`: `--max-connections`)
/// and says both in one log line.
pub fn limits(asked: Option<usize>, header_timeout: Duration) -> Limits {
    let open_files = raise_open_files_limit();
    let cap = connection_cap(open_files.now, asked);
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
        "open files: limit {limit}; at most {cap} connections at once (more wait), the rest kept for the store and Withings; a request head must arrive within {}",
        crate::http::humanize(header_timeout)
    );
    Limits {
        max_connections: cap,
        header_timeout,
    }
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
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    let mut connections = JoinSet::new();
    loop {
        // Taken before `accept`: a connection beyond the cap stays in the
        // backlog, costing no descriptor, instead of being accepted and shut.
        let slot = tokio::select! {
            slot = Arc::clone(&slots).acquire_owned() => slot.map_err(io::Error::other)?,
            () = stopping(&mut stop) => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    pause_after_accept_error(&e).await;
                    continue;
                }
            },
            () = stopping(&mut stop) => break,
        };
        while connections.try_join_next().is_some() {}
        let connection = builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app.clone()));
        let mut stop = stop.clone();
        connections.spawn(async move {
            let _slot = slot;
            let mut connection = std::pin::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => return,
                () = stopping(&mut stop) => {}
            }
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        });
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
    Ok(())
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
        // The default 1,024: the cap leaves 64 free.
        assert_eq!(connection_cap(Some(1024), None), 960);
        // A large limit: the default cap.
        assert_eq!(connection_cap(Some(1 << 20), None), DEFAULT_MAX_CONNECTIONS);
        assert_eq!(connection_cap(None, None), DEFAULT_MAX_CONNECTIONS);
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
}
