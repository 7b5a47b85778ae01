//! What this process observed and has not settled yet. The core notes here
//! where it learns a fact (`rotation`, `consent`, `copies`), so that no
//! caller has to carry observations back through its results; `notify`
//! takes them (at the end of a CLI run, or on `serve`'s next turn) and
//! turns them into events. Noting is cheap and never fails.

use std::collections::BTreeMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};

use super::Observation;
use crate::account_name::AccountName;
use crate::error::Error;

/// Notes beyond this many are dropped until the next settle: a process that
/// never settles (a test harness) must not grow without bound.
const MAX_NOTES: usize = 10_000;

static NOTES: Mutex<Vec<Noted>> = Mutex::new(Vec::new());

/// Wakes `serve`'s outbox task when something is noted, so that it sleeps
/// otherwise (an idle server wakes only for its checks).
static NOTED: tokio::sync::Notify = tokio::sync::Notify::const_new();

/// Returns once something was noted (or [`nudge`] was called) since the
/// last call returned.
pub async fn noted() {
    NOTED.notified().await;
}

/// Wakes `serve`'s outbox task without a note: the background refresh
/// does at each of its wakes, so that the outbox's sweep rides on them
/// instead of waking the server on a timer of its own.
pub fn nudge() {
    NOTED.notify_one();
}

/// An observation of an account, at the time it was made.
#[derive(Debug, Clone)]
pub struct Noted {
    pub account: AccountName,
    pub at: DateTime<Utc>,
    pub observation: Observation,
}

/// Notes what was seen of `account`.
pub fn note(account: &AccountName, observation: Observation) {
    let mut notes = crate::locked(&NOTES);
    if notes.len() < MAX_NOTES {
        notes.push(Noted {
            account: account.clone(),
            at: crate::tokens::now(),
            observation,
        });
    }
    NOTED.notify_one();
}

/// Notes what `error`, ending a refresh of the set of `generation`, says
/// about `account` (nothing for most errors).
pub fn note_error(account: &AccountName, error: &Error, generation: u64) {
    if let Some(observation) = super::observation_of(error, generation) {
        note(account, observation);
    }
}

/// Notes that `account` has a set in use, `state`'s (`rotated`: this run
/// got it from Withings), and a store that answered.
pub fn note_in_use(account: &AccountName, state: &crate::store::StoreState, rotated: bool) {
    note(account, Observation::StoreAvailable);
    let Some(tokens) = &state.tokens else { return };
    let age = tokens.last_refreshed.map(|at| crate::tokens::now() - at);
    note(
        account,
        Observation::Checked {
            generation: state.tokens_generation,
            rotated,
            refresh_token_age: age,
        },
    );
}

/// Notes that `account` got a set by new consent, `state`'s.
pub fn note_consented(account: &AccountName, state: &crate::store::StoreState) {
    note(account, Observation::StoreAvailable);
    note(
        account,
        Observation::Consented {
            generation: state.tokens_generation,
        },
    );
}

/// Notes what `error`, ending a refresh of the set of `generation` after
/// Withings was asked, says about `account`: what [`note_error`] would,
/// and any other failure (the app's credentials refused, a store that
/// could not take the answer) as a failed refresh.
pub fn note_failed_request(account: &AccountName, error: &Error, generation: u64) {
    // A person's Ctrl-C, or a peer's answer kept instead: nothing failed.
    if matches!(error, Error::Interrupted { .. } | Error::AnswerDropped { .. }) {
        return;
    }
    let observation = super::observation_of(error, generation).unwrap_or_else(|| Observation::RefreshFailed {
        problem: super::Problem::of(error),
        generation,
    });
    note(account, observation);
}

/// [`take_notes`], each account's in the order they were noted.
pub fn take_notes_by_account() -> BTreeMap<AccountName, Vec<Noted>> {
    let mut by_account: BTreeMap<AccountName, Vec<Noted>> = BTreeMap::new();
    for noted in take_notes() {
        by_account.entry(noted.account.clone()).or_default().push(noted);
    }
    by_account
}

/// Puts back notes taken but not settled, before any noted since.
pub fn restore_notes(mut taken: Vec<Noted>) {
    let mut notes = crate::locked(&NOTES);
    taken.append(&mut notes);
    *notes = taken;
}

/// Whether anything was noted since the last [`take_notes`].
pub fn has_notes() -> bool {
    !crate::locked(&NOTES).is_empty()
}

/// Every note so far, oldest first; the journal is left empty.
fn take_notes() -> Vec<Noted> {
    std::mem::take(&mut *crate::locked(&NOTES))
}
