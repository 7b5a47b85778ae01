//! `sandbox`: serve the emulation on loopback until interrupted.

use clap::Args;

use crate::envfile::format_line;
use crate::error::{Error, Result, Status};
use crate::fsutil::ScratchDir;
use crate::sandbox::Sandbox;

/// Serve an emulation of Withings (and Railway) on loopback for trying the tool
#[derive(Debug, Args)]
#[command(
    after_help = "Prints the env lines that point withings-token at it, then serves until interrupted. \
The lines name a token store of the sandbox's own (WITHINGS_TOKEN_STORE, in a private temporary \
directory removed when the sandbox stops), so a sandbox token never lands in your real store. \
Its consent page approves at once as the sandbox's first person (userid 31415926), or as its second \
(27182818) when the authorization URL carries `&sandbox_user=2`. It answers the data calls \
`getmeas` (POST /measure), `getactivity` (POST /v2/measure) and `getdevice` (POST /v2/user) with \
made-up data of the person whose access token is sent.\n\n\
Examples:\n  withings-token sandbox --listen 127.0.0.1:8788 > sandbox.env\n  withings-token --env-file sandbox.env auth-url"
)]
pub struct SandboxArgs {
    /// Loopback address to listen on (port 0 picks a free one)
    #[arg(long, default_value = "127.0.0.1:0", value_name = "ADDR")]
    pub listen: std::net::SocketAddr,

    /// How long the access tokens it issues live (`expires_in`), from 1s: short ones make `serve` rotate often (a soak test)
    #[arg(long, value_parser = parse_expires_in, default_value = "3h", value_name = "DURATION")]
    pub expires_in: std::time::Duration,
}

fn parse_expires_in(text: &str) -> std::result::Result<std::time::Duration, String> {
    let lifetime = crate::duration::parse_duration(text)?;
    if lifetime < std::time::Duration::from_secs(1) {
        return Err("must be at least 1s".into());
    }
    Ok(lifetime)
}

pub fn run(args: &SandboxArgs) -> Result<Status> {
    let sandbox = Sandbox::start_issuing(args.listen, args.expires_in).map_err(|e| {
        Error::config(
            format!("cannot start the sandbox on {}: {e}", args.listen),
            "pass a free loopback address, e.g. `--listen 127.0.0.1:0`",
        )
    })?;
    // Its tokens are the sandbox's alone: with the default store, a sandbox
    // set would replace the user's real one.
    let scratch = ScratchDir::new("withings-token-sandbox").map_err(|e| {
        Error::config(
            format!("cannot make the sandbox's token store directory: {e}"),
            "set TMPDIR to a writable directory",
        )
    })?;
    let store = scratch.path().join("tokens.json");
    let mut lines = format!(
        "# withings-token sandbox on {} (fake credentials; nothing here is real)\n",
        sandbox.base_url()
    );
    let mut vars = sandbox.env_vars();
    vars.push(("WITHINGS_TOKEN_STORE", store.display().to_string()));
    for (key, value) in vars {
        lines.push_str(&format_line(key, &value).map_err(Error::internal)?);
    }
    crate::output::write_text(&lines)?;
    eprintln!(
        "sandbox listening on {}; save the lines above as an env file and use `--env-file`. Ctrl-C stops it (and removes its store).",
        sandbox.base_url()
    );
    let signal = crate::signals::wait_for_stop();
    drop(scratch);
    Ok(signal.map_or(Status::Success, Status::Signalled))
}
