//! The one integration test binary (`cargo test --test cli`): the real
//! `withings-token` against loopback peers, one module per topic, all built
//! on the kit in `support` (every module starts with `use crate::support::*;`).
//! Run one topic with `cargo test --features failpoints --test cli core::`.

mod support;

mod access_token;
mod attack_files;
mod attack_upstream;
mod bad_input;
mod clock;
mod concurrency;
mod core;
mod crash;
mod doctor;
mod fault_matrix;
mod generated;
mod hardening_core;
mod hardening_env;
mod hardening_http;
mod hardening_store;
mod login;
mod railway;
mod redis_store;
mod rescue;
mod secrets;
mod serve;
mod serve_abuse;
mod setup;
mod store_identity;
mod terminal;
mod validate;
