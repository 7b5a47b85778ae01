//! `export`: the stored set as the four env lines, offline; sealed to the
//! recipients given by `--encrypt-to` on the command line.

use clap::Args;

use crate::error::{Error, Result, Status};
use crate::output::Output;
use crate::settings::Settings;

/// Print the stored token set as the four env lines (prints secrets, unless encrypted with --encrypt-to)
#[derive(Debug, Args)]
#[command(
    after_help = "Prints the tokens UNMASKED: exactly the four lines of `--output env`, from the store. Sends nothing and writes nothing; a backup before a big change, or the way to seed another machine.\n\
Under GitHub Actions (GITHUB_ACTIONS=true) each token is first masked in the log with `::add-mask::` on stderr.\n\
With `--encrypt-to RECIPIENT` on the command line (not WITHINGS_TOKEN_RECIPIENTS nor `encrypt_to`), the four lines are \
printed encrypted to those recipients instead (age's armour, which `age -d -i key.txt` or `withings-token import` \
reads); no secret is printed then.\n\n\
Examples:\n  withings-token export > backup.env            # protect the file: it holds secrets\n  withings-token export >> \"$GITHUB_ENV\"          # CI: the values are masked in the log\n  withings-token export --encrypt-to age1… > backup.env.age   # an encrypted backup"
)]
pub struct ExportArgs {}

pub fn run(_args: &ExportArgs, settings: &Settings, out: &Output) -> Result<Status> {
    super::via_server::refuse(
        settings,
        "export",
        "run `withings-token export` on the server's host, where its store is (the admin API never sends the refresh token); for an access token, `withings-token --server URL access-token`",
    )?;
    let store = crate::store::open(settings)?;
    let state = super::load_now(store.as_ref())?;
    let tokens = state.tokens.ok_or_else(|| {
        Error::config(
            format!("the token store {} holds no token set to export", store.location()),
            "authorise once: run `withings-token auth-url`, then `withings-token exchange '<redirect URL>'`",
        )
    })?;
    let keyring = settings.keyring();
    if keyring.recipients_from_flag() {
        out.sealed_env(&tokens, keyring.recipients())?;
    } else {
        out.env(&tokens)?;
    }
    Ok(Status::Success)
}
