//! An account's refresh policy as its sets are judged ([`Cadence`]): the
//! settings' `refresh_at_least`, and the account's own share of the jitter.

use crate::settings::RefreshPolicy;
use crate::tokens::Cadence;

use super::AccountName;

/// The longest anything here is taken to be: a refresh policy is about days.
const LONGEST: chrono::Duration = chrono::Duration::days(3660);

/// `policy` as `account`'s sets are judged by it. The jitter offset is
/// fixed per account (a hash of its name, from 0 to the whole jitter): the
/// same on every run and every host, so a household's refreshes spread out
/// and an account's due time never flaps between runs.
pub fn cadence_for(policy: &RefreshPolicy, account: &AccountName) -> Cadence {
    let jitter = to_chrono(policy.jitter);
    let early_by = match jitter.num_seconds() {
        0 => chrono::Duration::zero(),
        seconds => chrono::Duration::seconds((name_hash(account) % (seconds as u64 + 1)) as i64),
    };
    Cadence {
        refresh_at_least: policy.refresh_at_least.map(to_chrono),
        early_by,
    }
}

fn to_chrono(d: std::time::Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).map_or(LONGEST, |d| d.min(LONGEST))
}

/// FNV-1a of the name: std's hasher may change between Rust releases, and
/// an account's offset must not move with the binary.
fn name_hash(account: &AccountName) -> u64 {
    account.as_str().bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}
