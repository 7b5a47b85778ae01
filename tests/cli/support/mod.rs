//! The test kit, and the prelude of every topic module (`use crate::support::*;`).
//!
//! Every run of the real binary starts from a cleared environment in its own
//! temporary HOME, so the developer's machine never leaks into a test, and
//! every peer listens on a free loopback port: nothing here touches the
//! internet. The builders let a test say its situation on its first lines:
//!
//! ```text
//! let withings = withings_answering(new_tokens(NEW_ACCESS, NEW_REFRESH)).times(1);
//! let env = given_expired_store(&withings.uri());
//! let out = env.run_fast(&["refresh", "--json"]);
//! ```

/// Several accounts: their stores, sets written by hand, consents as one person.
mod accounts;
/// age keys, stores sealed and opened by hand with the `age` crate.
mod age_keys;
/// Checks of what a run said: error lines and objects, secrets, controls.
mod checks;
/// One user and one run: `TestEnv`, `Run`, the `given_*` stores.
mod env;
/// Permission bits, FIFOs, a tiny tmpfs.
mod fs;
/// Runs as child processes: at once, awaited, polled, their reports.
mod process;
/// A fake Railway (GraphQL on wiremock), alone or beside Withings.
mod railway_mock;
/// A real `redis-server` per test, and users on it.
mod redis_server;
/// The built-in sandbox as a child process.
mod sandbox;
/// `serve` as a child process, and a tiny HTTP client for it.
mod serve;
/// A webhook receiver that checks Standard Webhooks signatures.
mod webhooks;
/// A fake Withings (wiremock) and the answers it gives.
mod withings_mock;

pub use accounts::*;
pub use age_keys::*;
pub use checks::*;
pub use env::*;
pub use fs::*;
pub use process::*;
pub use railway_mock::*;
pub use redis_server::*;
pub use sandbox::*;
pub use serve::*;
pub use webhooks::*;
pub use withings_mock::*;

pub use serde_json::{Value, json};
pub use wiremock::{Mock, MockBuilder, ResponseTemplate};

pub const BIN: &str = env!("CARGO_BIN_EXE_withings-token");

/// The Withings app every [`TestEnv::withings`] user has.
pub const CLIENT_ID: &str = "test-client-id";
pub const CLIENT_SECRET: &str = "test-client-secret-value";

/// The set an expired store holds ([`given_expired_store`]) ...
pub const OLD_ACCESS: &str = "old-access-000";
pub const OLD_REFRESH: &str = "old-refresh-abc";
/// ... and the set a fake Withings issues for it ([`withings_rotating`]).
pub const NEW_ACCESS: &str = "new-access-123";
pub const NEW_REFRESH: &str = "new-refresh-xyz";

// How soon a run gives up. The four paces differ on purpose:

/// Core tests (wiremock and sandbox): no pause between attempts, 300 ms per
/// request. The timeout tests pin "timed out after 300 ms", so the value is
/// part of what they expect.
pub const FAST: [&str; 4] = ["--retry-delay", "0s", "--timeout", "300ms"];
/// The fault matrix: exactly two attempts, because its expected request
/// counts assume them, and 500 ms per request, for slack: every cell runs
/// against a sandbox process that also answers for Railway.
pub const FAST_ONE_RETRY: [&str; 6] = ["--retries", "1", "--retry-delay", "0s", "--timeout", "500ms"];
/// The Railway tests: no pause between attempts, the default 30 s timeout
/// (Railway's own waits, such as `Retry-After`, still apply).
pub const NO_RETRY_DELAY: [&str; 2] = ["--retry-delay", "0s"];
/// The oversized-answer tests: no pause between attempts and 2 s per
/// request: the lost redeploy pins "timed out after 2 s", and 5 MB answers
/// need more than [`FAST`]'s 300 ms.
pub const FAST_2S: [&str; 4] = ["--retry-delay", "0s", "--timeout", "2s"];
