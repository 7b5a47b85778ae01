//! `sandbox`: serve the emulation on loopback until interrupted.

use crate::cli::SandboxArgs;
use crate::envfile::format_line;
use crate::error::{Error, Result, Status};
use crate::sandbox::Sandbox;

pub fn run(args: &SandboxArgs) -> Result<Status> {
    let sandbox = Sandbox::start(args.listen).map_err(|e| {
        Error::config(
            format!("cannot start the sandbox on {}: {e}", args.listen),
            "pass a free loopback address, e.g. `--listen 127.0.0.1:0`",
        )
    })?;
    let mut lines = format!(
        "# withings-token sandbox on {} (fake credentials; nothing here is real)\n",
        sandbox.base_url()
    );
    for (key, value) in sandbox.env_vars() {
        // The sandbox's own values are plain ASCII: a refusal is a bug.
        lines.push_str(&format_line(key, &value).map_err(|e| Error::Internal(e.into()))?);
    }
    crate::output::write_text(&lines)?;
    eprintln!(
        "sandbox listening on {}; save the lines above as an env file and use `--env-file`. Ctrl-C stops it.",
        sandbox.base_url()
    );
    loop {
        std::thread::park();
    }
}
