//! The one integration test binary (`cargo test --test cli`): the real
//! `withings-token` against loopback peers, one module per subject, all built
//! on the kit in `support` (every module starts with `use crate::support::*;`).
//! Run one subject with `cargo test --features failpoints --test cli refresh::`.

mod support;

/// `access-token`, locally and with `--server`.
mod access_token;
/// Each account's copies under its own variable names.
mod account_copies;
/// Hints and refusals that keep the account in view.
mod account_hints;
/// One account's tokens never reach another: seeds, pulls, shared env
/// files, links in the store, rename's order, rescues of removed accounts.
mod account_safety;
/// Several accounts: `accounts`, `status` rows, `refresh --all`, rename, remove.
mod accounts;
/// The alert state from the event record: `status`, `accounts`, `doctor`'s sinks.
mod alert_state;
mod api;
/// A wrong clock never poisons the store.
mod clock;
/// Many processes on one store: the lock, `--if-needed` peers.
mod concurrency;
/// The config file: where it is found, its precedence, its errors' lines.
mod config_file;
/// `auth-url` and `exchange`: the URL, its state, the redirect, the code.
mod consent;
/// Consent binds an account to one person (`--replace`); each account's own lock.
mod consent_binding;
/// Killed or aborted at any instant: the old or the new complete store.
mod crash;
/// `demo` from an empty environment.
mod demo;
/// The Dockerfile and railway.toml, read and their health checks run.
mod deploy_files;
/// `doctor [--online]`.
mod doctor;
/// Encryption at rest in the file store: sealed round trips, what the
/// files hold, identities and their sources, refusals with nothing sent.
mod encryption;
/// The commands of encryption at rest: `keygen`, `rekey` (while another
/// process refreshes), `export --encrypt-to`, `import`.
mod encryption_commands;
/// `doctor`'s encryption checks: encrypted or plain, recipients, identities.
mod encryption_doctor;
/// Encryption at rest in a Redis store, and `serve` on one.
mod encryption_redis;
/// The env file: read as python-dotenv reads it, rewritten in place.
mod env_file;
/// Events: once per change of state, kept until delivered, never a secret.
mod events;
/// `exec`: a command run with the access token.
mod exec;
/// The committed man pages and completions are what clap generates.
mod generated;
/// `health`: a running serve's GET /health, the container's health check.
mod health;
/// `login`: the loopback redirect, with the test playing the browser.
mod login;
/// `/metrics` in the classic text format and OpenMetrics, read by promtool
/// and an OpenMetrics parser.
mod metrics_formats;
/// `notify --test`: the sinks (signed webhooks, their retries and
/// refusals, command hooks and their limit) and the dead-man ping.
mod notify;
/// Formats, `--quiet`, `-vv`, GitHub Actions' masks, a stdout that fails.
mod output;
/// Railway failing: exit 6 keeps the new tokens, retries, half a setup.
mod railway_failures;
/// `pull --from railway`: a host recovered from Railway's copy.
mod railway_pull;
/// Railway on `refresh`: the push (upsert), the environment, headers, redeploys.
mod railway_push;
/// `railway-sync`: push, `--dry-run`, `--check` for drift.
mod railway_sync;
/// One-tap re-consent hosted by `serve`: `/auth/start`, Withings' consent
/// page, `/auth/callback`; the pages, their refusals, `needs_reauthorization`.
mod reconsent;
/// Many hosts on one Redis: the lease and its fence.
/// Accounts in a Redis store: own keys, own leases, one index.
mod redis_accounts;
mod redis_lease;
/// A Redis store: its URL, keys, errors and durability.
mod redis_store;
/// `refresh`: a rotation saved, a refused grant, `--dry-run`, `--if-needed`.
mod refresh;
/// The sandbox's data calls: made-up measures for a live access token only.
mod sandbox_data;
/// No secret reaches stderr, whatever the command and log format.
mod secrets;
/// `serve` with several accounts: the loop, `?account=`, listing, metrics, named readers.
mod serve_accounts;
/// `serve`'s admin API, metrics, and the CLI's `--server`.
mod serve_api;
/// `serve` while Withings fails or asks to wait: failures shared, back-off.
mod serve_backoff;
/// `serve`'s broker and background refresh, and the store's other writers.
mod serve_broker;
/// `serve`'s proxy under the app's budget and the readers' shares: 429, nothing sent.
mod serve_budget;
/// `serve` against clients that hold its connections.
mod serve_limits;
/// `serve` whose log reader stalls: lines dropped and counted, no refresh stalled.
mod serve_logs;
/// `serve`'s Withings proxy: the token injected, the call and answer passed through.
mod serve_proxy;
/// The proxy after Withings refused its token: one refresh, a read sent again, a write never.
mod serve_proxy_retry;
/// `serve`'s usage per consumer: `/admin/usage`, `/metrics`, the audit line, `usage`.
mod serve_usage;
/// Settings a run cannot use: exit 3 naming the variable.
mod settings;
/// A new user's first steps: the README's install, sandbox walk-through and
/// test commands.
mod setup;
/// SIGTERM and SIGINT during a refresh and in `serve`.
mod signals;
/// `status`: offline, `--check`, the report.
mod status;
/// The store file: corrupt, not a file, linked, its permissions and owner.
mod store_file;
/// Whose set a store holds: the Withings app that saved it.
mod store_identity;
/// A Withings answer never lost because the store could not take it.
mod store_save;
/// Progress and terminals: plain text on pipes, the spinner on a terminal.
mod terminal;
/// Which refresh token a refresh sends: store, seed, previous generation.
mod token_source;
/// The upstream budget: a process's, a run's retries', and hosts' on Redis.
mod upstream_budget;
/// Every upstream fault × every command that talks upstream.
mod upstream_fault_matrix;
/// Withings' transient faults, rate limits and odd or hostile answers.
mod upstream_faults;
/// Command lines the binary cannot take: exit 2, and JSON usage errors.
mod usage;
/// `validate`: the access token tried once with Withings.
mod validate;
