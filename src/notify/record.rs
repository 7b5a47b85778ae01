//! The account's event record as `notify` reads and changes it: through
//! the store's compare-and-set, retried while other runs swap theirs.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::events::EventRecord;
use crate::store::TokenStore;

/// How often a swap of the record is tried against other runs' swaps.
const SWAP_TRIES: usize = 20;

/// The record as stored (an unreadable one counts as empty, and is
/// replaced: it holds no token, and refusing to record would silence every
/// alert), with the bytes it was read from for the swap.
pub async fn load_record(store: &dyn TokenStore) -> Result<(EventRecord, Option<Vec<u8>>)> {
    let bytes = store.load_events().await?;
    Ok((parse_record(bytes.as_deref()), bytes))
}

/// The record as stored, refused when it cannot be read as one: what a
/// one-time link is checked against (a record started anew would forget
/// the links already used).
pub async fn load_record_strictly(store: &dyn TokenStore) -> Result<EventRecord> {
    let Some(bytes) = store.load_events().await? else {
        return Ok(EventRecord::default());
    };
    serde_json::from_slice(&bytes).map_err(|e| {
        Error::config(
            format!("the event record of {} cannot be read ({e})", store.location()),
            "move it aside (it holds alert state and undelivered events, no token); a one-time link works again after that",
        )
    })
}

/// [`load_record`] without a runtime (a file store); `None` for Redis.
pub fn load_record_local(store: &dyn TokenStore) -> Option<Result<EventRecord>> {
    let bytes = store.load_events_local()?;
    Some(bytes.map(|bytes| parse_record(bytes.as_deref())))
}

fn parse_record(bytes: Option<&[u8]>) -> EventRecord {
    let Some(bytes) = bytes else {
        return EventRecord::default();
    };
    serde_json::from_slice(bytes).unwrap_or_else(|e| {
        tracing::warn!("the event record could not be read ({e}); starting a new one");
        EventRecord::default()
    })
}

/// Applies `change` to the stored record and saves it when it changed,
/// retried while other runs swap theirs in between.
pub async fn swap_record(store: &dyn TokenStore, mut change: impl FnMut(&mut EventRecord)) -> Result<()> {
    for _ in 0..SWAP_TRIES {
        let (mut record, bytes) = load_record(store).await?;
        let before = record.clone();
        change(&mut record);
        if record == before {
            return Ok(());
        }
        let next = serde_json::to_vec(&record).map_err(Error::internal)?;
        if store.swap_events(bytes.as_deref(), &next).await? {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Err(kept_busy(store))
}

/// Writes the record again as it is, sealed as the store's keyring says
/// now (`rekey`): the same content, swapped in unless another run changed
/// it meanwhile (then read again). No record: nothing to do.
pub async fn reseal_record(store: &dyn TokenStore) -> Result<()> {
    for _ in 0..SWAP_TRIES {
        let Some(bytes) = store.load_events().await? else {
            return Ok(());
        };
        if store.swap_events(Some(&bytes), &bytes).await? {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Err(kept_busy(store))
}

/// Busy, not unreachable: other runs kept swapping the record meanwhile.
fn kept_busy(store: &dyn TokenStore) -> Error {
    Error::LockTimeout {
        place: format!("the event record of {}", store.location()),
        waited: Duration::from_millis(5).saturating_mul(SWAP_TRIES as u32),
    }
}
