//! `completions SHELL`: clap_complete's script for the shell, on stdout.

use clap::Args;

use crate::error::{Result, Status};

/// Print a shell completion script
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  withings-token completions bash > ~/.local/share/bash-completion/completions/withings-token\n  withings-token completions zsh > ~/.zfunc/_withings-token\n  withings-token completions fish > ~/.config/fish/completions/withings-token.fish"
)]
pub struct CompletionsArgs {
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

pub fn run(args: &CompletionsArgs) -> Result<Status> {
    // Generated into memory: clap_complete panics on a failed write.
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut super::command(), "withings-token", &mut script);
    crate::output::write_text(&String::from_utf8_lossy(&script))?;
    Ok(Status::Success)
}
