//! `auth-url`: the consent URL, with a state kept in the store for `exchange`.

use clap::Args;

use crate::consent::{self, AuthUrlRequest};
use crate::error::{Result, Status};
use crate::output::Output;
use crate::server_client::ServerClient;
use crate::settings::Settings;

/// Print the Withings authorization URL to open in a browser
#[derive(Debug, Args)]
#[command(
    after_help = "The state is kept in the store so that `exchange` can verify the redirect.\n\n\
Examples:\n  withings-token auth-url\n  withings-token auth-url --json | jq -r .authorization_url\n  withings-token auth-url --demo-account   # Withings' demo user, no real account needed"
)]
pub struct AuthUrlArgs {
    /// Use this state instead of a random one
    #[arg(long)]
    pub state: Option<String>,

    /// Open Withings' demo account instead of a real one (`mode=demo`)
    #[arg(long)]
    pub demo_account: bool,
}

pub fn run(args: &AuthUrlArgs, settings: &Settings, out: &Output) -> Result<Status> {
    if let Some(server) = ServerClient::of(settings, false)? {
        return by_server(&server, args, settings.next_command.as_deref(), out);
    }
    let store = crate::store::open(settings)?;
    let report = crate::http::block_on(consent::issue(&args.request(), settings, store.as_ref()))??;
    out.print(&report.with_next(settings.next_command.as_deref()))?;
    Ok(Status::Success)
}

impl AuthUrlArgs {
    /// What these flags ask the URL for.
    pub fn request(&self) -> AuthUrlRequest {
        AuthUrlRequest {
            state: self.state.clone(),
            demo_account: self.demo_account,
        }
    }
}

/// `auth-url` by the server, which keeps the state in its store.
fn by_server(server: &ServerClient, args: &AuthUrlArgs, next: Option<&str>, out: &Output) -> Result<Status> {
    if args.state.is_some() || args.demo_account {
        return Err(super::via_server::unsupported("--state and --demo-account"));
    }
    out.print(&crate::http::block_on(server.authorization_url())??.with_next(next))?;
    Ok(Status::Success)
}
