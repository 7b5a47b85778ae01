//! `rekey`: every account's store encrypted again to the recipients
//! configured now (`rekeying` does it); a row per account.

use clap::Args;

use crate::accounts::AccountName;
use crate::error::{Result, Status};
use crate::http::block_on;
use crate::output::{ErrorBody, JSON_VERSION, Output, RekeyReport, RekeyedAccount};
use crate::rekeying::Rekeyed;
use crate::settings::Settings;

/// Encrypt every account's store again to the recipients configured now (add or remove a key), under each one's lock
#[derive(Debug, Args)]
#[command(
    after_help = "Each account's store is read with any identity configured (the old key or the new one: give both, \
e.g. `--identity old.txt --identity new.txt`, or both keys in one file) and written again, atomically and under its \
lock (or Redis lease), encrypted to the recipients configured now (WITHINGS_TOKEN_RECIPIENTS, `encrypt_to`, \
`--encrypt-to`); its event record (the outbox) too. Refreshes by other runs go on meanwhile: each waits for the lock \
and reloads. The token set is unchanged (no copy is owed, nothing is sent to Withings); the store's generation moves \
by one.\n\
With no recipient it is refused (exit 3), unless `--allow-plaintext`, which writes every store plain (decrypted).\n\
`--account NAME` re-encrypts that account only. An account that cannot be opened (no identity for it, another key) \
is said on stderr and left unchanged, the others are still done; exit 3 then.\n\n\
Examples:\n  WITHINGS_TOKEN_RECIPIENTS=age1new… withings-token rekey --identity old.txt --identity new.txt\n  withings-token rekey --encrypt-to age1old… --encrypt-to age1new…   # add a key\n  withings-token rekey --allow-plaintext --identity key.txt           # decrypt every store\n  withings-token rekey --account alice --json"
)]
pub struct RekeyArgs {}

pub fn run(_args: &RekeyArgs, settings: &Settings, out: &Output) -> Result<Status> {
    super::via_server::refuse(
        settings,
        "rekey",
        "run `withings-token rekey` on the server's host, where its store is; the server goes on running meanwhile",
    )?;
    crate::rekeying::check_keys(&settings.keyring())?;
    let done = block_on(async {
        let names = crate::rekeying::accounts_to_rekey(settings).await?;
        Ok::<_, crate::error::Error>(crate::rekeying::rekey_each(settings, names).await)
    })??;
    let mut status = Status::Success;
    let accounts = done
        .into_iter()
        .map(|(name, rekeyed)| {
            let (row, exit) = row_of(&name, rekeyed, out);
            status = status.most_serious(exit);
            row
        })
        .collect::<Vec<_>>();
    let note = accounts
        .is_empty()
        .then(|| "no account has a store yet: nothing to re-encrypt".to_owned());
    out.print(&RekeyReport {
        version: JSON_VERSION,
        accounts,
        note,
    })?;
    Ok(status)
}

/// An account's row, and its exit; a failure is said on stderr, naming it.
fn row_of(name: &AccountName, rekeyed: Result<Rekeyed>, out: &Output) -> (RekeyedAccount, Status) {
    match rekeyed {
        Ok(r) => {
            let row = RekeyedAccount {
                account: name.to_string(),
                before: Some(r.before.word()),
                after: Some(r.after.word()),
                generation: Some(r.generation),
                error: None,
            };
            (row, Status::Success)
        }
        Err(e) => {
            out.status_line(e.code(), &format!("account {name}: {e}"), &e.action());
            let row = RekeyedAccount {
                account: name.to_string(),
                before: None,
                after: None,
                generation: None,
                error: Some(ErrorBody::of(&e)),
            };
            (row, Status::Failed(e.exit_code()))
        }
    }
}
