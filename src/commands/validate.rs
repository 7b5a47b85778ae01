//! `validate`: proves the access token works by using it once with
//! Withings (`getdevice`), not just that it has not expired. `valid` exits
//! 0, `invalid` (Withings refused it) 4, `unknown` (no answer could tell) 5.
//! `--refresh-if-invalid` runs the same transaction as `refresh` once (the
//! store, then the copies) and asks again with the new token
//! (`validation::validate`).

use std::ops::ControlFlow;

use clap::Args;

use crate::cli::DeliveryArgs;
use crate::copies;
use crate::error::{Result, Status};
use crate::http::{HttpClient, block_on};
use crate::output::Output;
use crate::report::{Ending, deliver_and_build_report};
use crate::rotation;
use crate::settings::Settings;
use crate::tokens::Policy;
use crate::validation::{Checked, Recheck, Refreshed, tokens_in_use, validate};

/// Check with Withings that the stored access token works
#[derive(Debug, Args)]
#[command(
    after_help = "Calls Withings' `getdevice` with the access token (scope user.info). Exit 0 when valid, \
4 (INVALID_ACCESS_TOKEN) when Withings refused it, 5 when no answer could tell. Using a new access token ends \
the grace period of the previous refresh token, as any use does.\n\n\
Examples:\n  withings-token validate\n  withings-token validate --json | jq -r .validation\n  \
withings-token validate --refresh-if-invalid   # refresh once (store, env file, Railway), then ask again"
)]
pub struct ValidateArgs {
    /// When the token is refused, refresh once (as `refresh` does) and validate the new one
    #[arg(long)]
    pub refresh_if_invalid: bool,

    #[command(flatten)]
    pub delivery: DeliveryArgs,
}

pub fn run(args: &ValidateArgs, settings: &Settings, out: &Output) -> Result<Status> {
    super::via_server::refuse(
        settings,
        "validate",
        "ask the server: `curl -H \"X-Admin-Token: $ADMIN_API_TOKEN\" URL/admin/token/validate`",
    )?;
    let targets = args
        .refresh_if_invalid
        .then(|| copies::targets(settings, args.delivery.choices()))
        .transpose()?;
    let store = crate::store::open(settings)?;
    let store = store.as_ref();
    block_on(async {
        let seen_before = store.load().await?;
        let tokens = tokens_in_use(settings, &seen_before)?;
        let http = HttpClient::new(settings.http)?;
        let client = crate::withings::client_for(settings, &http, "validate")?.sharing_budget_through(store);
        let _spinner = out.spinner("asking Withings whether the access token works…");
        let (seen_before, http, client) = (&seen_before, &http, &client);
        let mut status = Status::Success;
        let copies = &mut status;
        let refresh = targets.map(|targets| {
            async move || -> Result<ControlFlow<Status, Refreshed>> {
                out.note("the access token was refused: refreshing once");
                let policy = Policy {
                    buffer: settings.buffer,
                    force: true,
                    cadence: settings.cadence(),
                };
                // Forced: the lock is always taken.
                let rotation = rotation::refresh(settings, store, seen_before, client, policy, false).await?;
                let done =
                    match deliver_and_build_report(settings, http, store, &targets, rotation, out.secrets()).await {
                        Ending::Interrupted { signal, saved } => {
                            return Ok(ControlFlow::Break(super::interrupted(out, signal, &saved)));
                        }
                        Ending::Delivered(done) => done,
                    };
                *copies = super::say_stale_copies(out, &done.deliveries);
                let newest = done.newest();
                Ok(ControlFlow::Continue(Refreshed {
                    report: done.report,
                    newest,
                }))
            }
        });
        let generation = seen_before.tokens_generation;
        match validate(client, &tokens, generation, refresh, Recheck::Saved).await? {
            ControlFlow::Break(ended) => Ok(ended),
            ControlFlow::Continue(checked) => finish(out, &checked, status),
        }
    })?
}

/// Prints the report; a token that is not valid exits with its error's code.
fn finish(out: &Output, checked: &Checked, status: Status) -> Result<Status> {
    out.print(&checked.report)?;
    Ok(match &checked.result {
        Ok(()) => status,
        Err(error) => Status::Failed(error.exit_code()).worst(status),
    })
}
