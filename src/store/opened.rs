//! The last value read from a store and what it was made into, so that a
//! value read again unchanged is not decrypted again.
//!
//! Redis gives no stamp (see `server::view`), so `serve` reads the set's
//! key on every request; a file gives none for two seconds after each
//! change (see `FileStore`), so it is read on every request then: with a
//! sealed store, opening it each time would put an X25519 decryption on
//! every broker answer. The same bytes open to
//! the same state (the keyring is the process's, read once), and a sealed
//! value is never written twice alike (age seals every write with a fresh
//! file key), so a value equal to the last one read is the state made of
//! it. What every load does after parsing (`store::bind`: this host's clock
//! lag, the app's check) is left to the caller, for each load.

use std::sync::Mutex;

use zeroize::Zeroizing;

use crate::locked;

pub(crate) struct LastOpened<T> {
    /// The bytes as read (plain ones hold the tokens: wiped when replaced).
    last: Mutex<Option<(Zeroizing<Vec<u8>>, T)>>,
}

impl<T: Clone> LastOpened<T> {
    pub(crate) fn new() -> LastOpened<T> {
        LastOpened { last: Mutex::new(None) }
    }

    /// What `kept` makes: the last result when `kept` is the last value
    /// read, else `open(kept)`, kept for next time when it succeeds (a
    /// failure is not kept: the next read tries again). The lock is held
    /// while opening (no await, a fraction of a millisecond), so requests
    /// that arrive together after a change decrypt it once, not each.
    pub(crate) fn open<E>(&self, kept: &[u8], open: impl FnOnce(&[u8]) -> Result<T, E>) -> Result<T, E> {
        let mut last = locked(&self.last);
        if let Some((bytes, made)) = &*last
            && bytes.as_slice() == kept
        {
            return Ok(made.clone());
        }
        let made = open(kept)?;
        *last = Some((Zeroizing::new(kept.to_vec()), made.clone()));
        Ok(made)
    }
}

impl<T> std::fmt::Debug for LastOpened<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // What it holds is a token set: never shown.
        f.write_str("LastOpened")
    }
}
