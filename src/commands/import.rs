//! `import [FILE]`: an export (plain or encrypted) put into the store when
//! it is not older than the store's set (`importing` decides and saves);
//! then the status.

use std::path::PathBuf;

use clap::Args;

use crate::error::{Result, Status};
use crate::http::block_on;
use crate::importing::{Imported, when};
use crate::output::Output;
use crate::report::status_report;
use crate::settings::Settings;

/// Put an export (plain, or encrypted by `export --encrypt-to`) into the store, unless the store's set is newer
#[derive(Debug, Args)]
#[command(
    after_help = "Reads the four WITHINGS_* lines `withings-token export` printed, or their age encryption (opened \
with this host's identities: `--identity FILE`, WITHINGS_TOKEN_IDENTITY, WITHINGS_TOKEN_IDENTITY_FILE, a systemd \
credential), and saves the set under the store's lock by the rule WITHINGS_REFRESH_TOKEN follows: into an empty \
store, or over the store's set when WITHINGS_TOKEN_LAST_REFRESHED dates it newer (the store's refresh token is kept as \
the previous one). A store whose set is as new or newer is left untouched (exit 3, naming both times). Then prints the \
status. Nothing is sent to Withings; the copies (env file, Railway) catch up on the next `refresh --if-needed`.\n\n\
Examples:\n  withings-token import backup.env\n  withings-token import backup.env.age --identity key.txt\n  ssh old-host withings-token export | withings-token import   # from stdin"
)]
pub struct ImportArgs {
    /// The export; `-` or none reads stdin
    #[arg(value_name = "FILE", value_hint = clap::ValueHint::FilePath)]
    pub file: Option<PathBuf>,
}

pub fn run(args: &ImportArgs, settings: &Settings, out: &Output) -> Result<Status> {
    super::via_server::refuse(
        settings,
        "import",
        "run `withings-token import` on the server's host, where its store is",
    )?;
    let (bytes, place) = crate::importing::read_source(args.file.as_deref(), std::io::stdin().lock())?;
    let set = crate::importing::read_export(&bytes, &settings.keyring(), &place)?;
    let store = crate::store::open(settings)?;
    let (imported, state) = block_on(crate::importing::import(settings, store.as_ref(), set))??;
    let imported_when = state.tokens.as_ref().map(when).unwrap_or_default();
    out.print(&status_report(&state, settings, store.location()))?;
    out.note(&match imported {
        Imported::IntoEmpty => format!("imported the set of {place} (last refreshed {imported_when}) into an empty store"),
        Imported::Replaced(old) => format!(
            "imported the set of {place} (last refreshed {imported_when}), replacing the store's (last refreshed {}), kept as the previous refresh token",
            when(&old)
        ),
        Imported::AlreadyHeld => format!("the store already holds the set of {place}; nothing was written"),
    });
    Ok(Status::Success)
}
