//! `completions SHELL`: clap_complete's script for the shell, on stdout.

use crate::cli::CompletionsArgs;
use crate::error::Result;

pub fn run(args: &CompletionsArgs) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    clap_complete::generate(args.shell, &mut crate::cli::command(), "withings-token", &mut stdout);
    Ok(())
}
