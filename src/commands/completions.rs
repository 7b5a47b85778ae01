//! `completions SHELL`: clap_complete's script for the shell, on stdout.

use crate::cli::CompletionsArgs;
use crate::error::{Result, Status};

pub fn run(args: &CompletionsArgs) -> Result<Status> {
    // Generated into memory: clap_complete panics on a failed write.
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut crate::cli::command(), "withings-token", &mut script);
    crate::output::write_text(&String::from_utf8_lossy(&script))?;
    Ok(Status::Success)
}
