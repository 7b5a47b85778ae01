//! An account's refresh policy as its sets are judged ([`Cadence`]): the
//! settings' `refresh_at_least`, and the account's own share of the jitter.

use super::RefreshPolicy;
use crate::tokens::Cadence;

use crate::account_name::AccountName;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_accounts_jitter_offset_is_fixed_by_its_name_and_within_the_jitter() {
        use std::time::Duration;
        let policy = RefreshPolicy {
            refresh_at_least: Some(Duration::from_secs(7 * 86_400)),
            jitter: Duration::from_secs(600),
        };
        let offsets: Vec<i64> = ["default", "alice", "bob", "home-2"]
            .iter()
            .map(|n| {
                cadence_for(&policy, &AccountName::parse(n).unwrap())
                    .early_by
                    .num_seconds()
            })
            .collect();
        // FNV-1a of each name, modulo 601 s: the same on every run and host.
        assert_eq!(
            offsets,
            [
                fnv_mod("default", 601),
                fnv_mod("alice", 601),
                fnv_mod("bob", 601),
                fnv_mod("home-2", 601)
            ]
        );
        assert!(offsets.iter().all(|o| (0..=600).contains(o)));
        assert!(
            offsets.windows(2).any(|w| w[0] != w[1]),
            "a household spreads out: {offsets:?}"
        );
        let alice = cadence_for(&policy, &AccountName::parse("alice").unwrap());
        assert_eq!(alice.refresh_at_least, Some(chrono::Duration::days(7)));
        let none = cadence_for(&RefreshPolicy::default(), &AccountName::parse("alice").unwrap());
        assert_eq!(none, crate::tokens::Cadence::EXPIRY_ONLY);
    }

    fn fnv_mod(text: &str, m: u64) -> i64 {
        let mut hash: u64 = 0xcbf29ce484222325;
        for b in text.bytes() {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x100000001b3);
        }
        (hash % m) as i64
    }
}
