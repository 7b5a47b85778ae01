//! The reports of encryption at rest: `keygen` (the new recipient) and
//! `rekey` (each account's store before and after). JSON: `"version": 1`;
//! an account `rekey` could not re-encrypt carries its `error` object.

use std::borrow::Cow;

use serde::Serialize;

use super::reports::ErrorBody;
use super::{Afterword, Human, Report};
use crate::settings::OutputFormat;

/// `keygen`: the recipient alone on stdout, so that `$(withings-token
/// keygen)` is the key to encrypt to; where the identity went, on stderr.
#[derive(Debug, Serialize)]
pub struct KeygenReport {
    pub version: u32,
    pub recipient: String,
    pub identity_file: String,
    /// What to do next, said on stderr after the recipient.
    #[serde(skip)]
    pub next: String,
}

impl Report for KeygenReport {
    fn human(&self) -> Human {
        Human::Text(format!("{}\n", self.recipient))
    }

    /// The recipient is what the command is for.
    fn hidden_by_quiet(&self) -> bool {
        false
    }

    fn afterword(&self, _: OutputFormat) -> Option<Afterword<'_>> {
        Some(Afterword::Note(Cow::Borrowed(&self.next)))
    }
}

/// `rekey`: every account's store, in a row.
#[derive(Debug, Serialize)]
pub struct RekeyReport {
    pub version: u32,
    pub accounts: Vec<RekeyedAccount>,
    /// Said on stderr when there was no account to re-encrypt.
    #[serde(skip)]
    pub note: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct RekeyedAccount {
    pub account: String,
    /// `plain` or `encrypted`, as it was read; null when it could not be.
    pub before: Option<&'static str>,
    /// As it is written now; null when it was not written.
    pub after: Option<&'static str>,
    /// The store's generation after the write (the token set's own
    /// generation, which copies follow, is unchanged).
    pub generation: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
}

impl Report for RekeyReport {
    fn human(&self) -> Human {
        if self.accounts.is_empty() {
            return Human::Nothing;
        }
        let rows = self
            .accounts
            .iter()
            .map(|a| match &a.error {
                Some(error) => vec![
                    a.account.clone(),
                    a.before.unwrap_or("-").to_owned(),
                    format!("unchanged ({})", error.code),
                    "-".to_owned(),
                ],
                None => vec![
                    a.account.clone(),
                    a.before.unwrap_or("-").to_owned(),
                    a.after.unwrap_or("-").to_owned(),
                    a.generation.map_or_else(|| "-".to_owned(), |g| g.to_string()),
                ],
            })
            .collect();
        Human::Table {
            header: vec!["account", "before", "after", "generation"],
            rows,
        }
    }

    fn afterword(&self, _: OutputFormat) -> Option<Afterword<'_>> {
        self.note.as_deref().map(|note| Afterword::Note(Cow::Borrowed(note)))
    }
}
