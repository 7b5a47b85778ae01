//! The Railway service's copy of the set read back, the work `pull`,
//! `railway-sync` and `doctor --online` share: its four variables compared
//! with the stored set (`drift`), and taken into the store when newer
//! (`pull`). The Railway client (`railway`) does the talking; nothing here
//! sends a mutation to Railway or anything to Withings.

pub(crate) mod drift;
pub(crate) mod pull;

#[cfg(test)]
mod tests;
