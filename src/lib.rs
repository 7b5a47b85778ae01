//! withings-token: keeps one Withings account's OAuth2 tokens alive.
//!
//! `run()` is the whole program; `main.rs` only calls it. Modules: `cli`
//! (the command line), `settings` (flag > env > env file > default),
//! `store` (the durable token store), `envfile`, `withings` and `railway`
//! (the two outside parties), `rotation` (the one place a token set
//! changes), `output` (stdout), `error`, and one file per subcommand.

pub mod cli;
pub mod commands;
pub mod envfile;
pub mod error;
pub mod fsutil;
pub mod http;
pub mod logging;
pub mod manpage;
pub mod output;
pub mod railway;
pub mod rotation;
pub mod sandbox;
pub mod settings;
pub mod store;
pub mod tokens;
pub mod withings;

use std::process::ExitCode;

use clap::Parser;

use crate::output::Output;
use crate::settings::OutputOptions;

/// Parses the command line, runs the command, reports any error and
/// returns the documented exit code.
pub fn run() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    logging::init(&cli.global);
    let out = Output::new(OutputOptions {
        format: cli.global.output_format(),
        reveal: cli.global.reveal,
        quiet: cli.global.quiet,
    });
    match commands::dispatch(cli, &out) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            out.error(&error);
            ExitCode::from(error.exit_code())
        }
    }
}
