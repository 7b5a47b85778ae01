//! Consent's two transactions on the store, each under the store lock: the
//! state `auth-url` issued is kept, and a redirect's code is traded for the
//! first token set after its state is checked against the kept one. The
//! new set is saved through rotation's one save path (`rotation::keep`:
//! the rescue file, or memory, when the store cannot take it), as a
//! refreshed set is.

use super::binding::Replace;
use super::{Redirect, RedirectState};
use crate::error::{Error, Result};
use crate::rotation::{self, Outcome, Rotation};
use crate::settings::Settings;
use crate::signals::HeldSignals;
use crate::store::{StoreState, TokenStore};
use crate::tokens::{TokenSource, now};
use crate::withings::{Grant, WithingsClient};

/// Trades the redirect's code for the first token set under the lock,
/// saved in the store, after checking its state against the store's
/// ([`check_state`]). Check its base first ([`super::check_redirect_base`]).
pub(crate) async fn exchange(
    settings: &Settings,
    store: &dyn TokenStore,
    client: &WithingsClient,
    redirect: &Redirect,
    replace: Replace,
) -> Result<Rotation> {
    let code = redirect.code.as_str();
    let redirect_uri = settings.redirect_uri("exchange")?;
    let lock = store.lock(settings.lock_timeout).await?;
    let state = lock.load().await?;
    rotation::report_interrupted(lock.as_ref(), &state).await;
    let state = rotation::adopt_unsaved(settings, lock.as_ref(), &store.location(), state).await?;
    check_state(&state, &redirect.state)?;
    lock.check_write(&state)?;
    lock.begin_request(state.generation, "authorization_code").await?;
    let held = HeldSignals::hold();
    let result = client.request_token(&Grant::Code { code, redirect_uri }).await;
    // The state stays: a second paste of the same redirect then reaches
    // Withings and is reported as what it is, a reused code.
    let saved = match result {
        Ok(new) => match super::binding::check(settings, &state, &new, replace).await {
            Err(e) => Err(e),
            Ok(()) => {
                let mut next = StoreState {
                    tokens: Some(new.clone()),
                    previous: None,
                    ..state.clone()
                };
                crate::clock::record_into(&mut next.clock_offsets);
                rotation::keep(lock.as_ref(), &store.location(), &state, next)
                    .await
                    .map(|saved| (new, saved))
            }
        },
        Err(e) => Err(e),
    };
    lock.end_request().await;
    let signal = held.release();
    let (new, state) = saved?;
    crate::events::note_consented(&settings.account_name(), &state);
    let outcome = Outcome::Exchanged;
    Ok(Rotation {
        outcome,
        tokens: new,
        source: TokenSource::Store,
        state,
        lock: Some(lock),
        signal,
    })
}

/// Keeps the pending `auth-url` state (for `exchange`) under the lock.
pub(crate) async fn remember_auth_state(settings: &Settings, store: &dyn TokenStore, state: &str) -> Result<()> {
    let lock = store.lock(settings.lock_timeout).await?;
    let current = lock.load().await?;
    let current = rotation::adopt_unsaved(settings, lock.as_ref(), &store.location(), current).await?;
    let next = StoreState {
        pending_auth: Some(crate::store::PendingAuth {
            state: state.to_owned(),
            created_at: now(),
        }),
        ..current.clone()
    };
    let saved = lock.save(current.generation, &next).await.map(|_| ());
    lock.release().await;
    saved
}

/// A redirect URL must carry the state `auth-url` issued. A bare code has
/// none to check (the contract accepts it); a URL without one, while a
/// consent is pending, would skip the check, so it is refused.
fn check_state(state: &StoreState, given: &RedirectState) -> Result<()> {
    match (&state.pending_auth, given) {
        (_, RedirectState::BareCode) => {
            tracing::info!("a bare code carries no state; it is exchanged without a state check");
            Ok(())
        }
        (None, RedirectState::Missing) => Ok(()),
        (Some(_), RedirectState::Missing) => Err(Error::InvalidState {
            detail: "the redirect URL carries no state, but `auth-url` issued one; a URL without it may not come from that consent, so nothing was sent".into(),
        }),
        (Some(pending), RedirectState::Given(given)) if pending.state == *given => Ok(()),
        (Some(_), RedirectState::Given(_)) => Err(Error::InvalidState {
            detail: "the redirect URL's state does not match the one `auth-url` issued; it may come from another consent or another person, so nothing was sent".into(),
        }),
        (None, RedirectState::Given(_)) => Err(Error::InvalidState {
            detail: "the redirect URL carries a state, but this store has no pending `auth-url` (it was never issued here or was already used); nothing was sent".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::PendingAuth;

    fn pending(state: Option<&str>) -> StoreState {
        StoreState {
            pending_auth: state.map(|state| PendingAuth {
                state: state.to_owned(),
                created_at: now(),
            }),
            ..StoreState::default()
        }
    }

    fn refusal(state: &StoreState, given: &RedirectState) -> Option<&'static str> {
        check_state(state, given).err().map(|e| e.code())
    }

    #[test]
    fn a_redirect_url_must_carry_the_state_auth_url_issued() {
        let given = |s: &str| RedirectState::Given(s.to_owned());
        let issued = pending(Some("s1"));
        assert_eq!(refusal(&issued, &given("s1")), None);
        assert_eq!(refusal(&issued, &given("s2")), Some("INVALID_STATE"));
        assert_eq!(refusal(&issued, &RedirectState::Missing), Some("INVALID_STATE"));
        let none_issued = pending(None);
        assert_eq!(refusal(&none_issued, &given("s1")), Some("INVALID_STATE"));
        assert_eq!(refusal(&none_issued, &RedirectState::Missing), None);
    }

    #[test]
    fn a_bare_code_has_no_state_to_check() {
        assert_eq!(refusal(&pending(Some("s1")), &RedirectState::BareCode), None);
        assert_eq!(refusal(&pending(None), &RedirectState::BareCode), None);
    }
}
