//! `auth-url`: the consent URL, with a state kept in the store for `exchange`.

use clap::Args;
use reqwest::Url;

use crate::error::{Error, Result, Status};
use crate::output::{AuthUrlReport, JSON_VERSION, Output};
use crate::rotation;
use crate::settings::Settings;
use crate::store::TokenStore;

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
    if let Some(server) = crate::server_client::ServerClient::of(settings, false)? {
        return super::remote::auth_url(&server, args, settings.next_command.as_deref(), out);
    }
    let store = super::store_of(settings)?;
    let report = crate::http::block_on(issue(args, settings, store.as_ref()))??;
    out.print(&report.with_next(settings.next_command.as_deref()))?;
    Ok(Status::Success)
}

/// Makes the URL and keeps its state in the store.
pub async fn issue(args: &AuthUrlArgs, settings: &Settings, store: &dyn TokenStore) -> Result<AuthUrlReport> {
    let client_id = settings.client_id("auth-url")?;
    let redirect_uri = settings.redirect_uri("auth-url")?;
    let authorize_url = settings.authorize_url()?;
    let state = match &args.state {
        Some(state) if state.trim().is_empty() => {
            return Err(Error::config(
                "--state is empty",
                "pass a non-empty state, or omit --state for a random one",
            ));
        }
        Some(state) => state.clone(),
        None => crate::fsutil::random_hex(16).map_err(|e| Error::Internal(e.into()))?,
    };
    rotation::remember_auth_state(settings, store, &state).await?;
    let url = authorization_url(
        authorize_url,
        client_id,
        &settings.scope,
        redirect_uri,
        &state,
        args.demo_account,
    );
    Ok(AuthUrlReport {
        version: JSON_VERSION,
        authorization_url: url.to_string(),
        redirect_uri: redirect_uri.to_owned(),
        scope: settings.scope.clone(),
        state,
    })
}

pub fn authorization_url(base: &Url, client_id: &str, scope: &str, redirect_uri: &str, state: &str, demo: bool) -> Url {
    let mut url = base.clone();
    {
        let mut query = url.query_pairs_mut();
        query
            .append_pair("response_type", "code")
            .append_pair("client_id", client_id)
            .append_pair("scope", scope)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("state", state);
        if demo {
            query.append_pair("mode", "demo");
        }
    }
    url
}
