//! One-time re-consent links: `PUBLIC/auth/start?account=NAME&expires=T&
//! nonce=N&sig=S`, where `S` is an HMAC-SHA256 over the account, the expiry
//! and the nonce under a key derived from `ADMIN_API_TOKEN` (so the CLI
//! that saw the refusal and the `serve` that checks the link agree without
//! a new secret, and a link cannot name another account or live longer).
//! It works for an hour; `serve` remembers a nonce once used (in the
//! account's event record), so it works once.

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};

use crate::account_name::AccountName;
use crate::error::{Error, Result};

/// How long a link works.
pub const LINK_LIFETIME: chrono::Duration = chrono::Duration::hours(1);

/// What the key of the links is derived with, apart from every other use
/// of the admin token.
const KEY_LABEL: &[u8] = b"withings-token one-time consent link v1";

/// The path `serve` starts consent at.
pub const START_PATH: &str = "/auth/start";

/// What a valid link grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub account: AccountName,
    pub nonce: String,
    pub expires_at: DateTime<Utc>,
}

/// Why a link is refused, for the page that says so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Missing or malformed parts, or a signature that does not match.
    Invalid,
    Expired {
        at: DateTime<Utc>,
    },
}

/// A new link for `account`, working for [`LINK_LIFETIME`] from `now`.
pub fn issue(
    public_url: &str,
    admin_token: &SecretString,
    account: &AccountName,
    now: DateTime<Utc>,
) -> Result<String> {
    let refused = |why: &str| {
        Error::config(
            format!("WITHINGS_TOKEN_PUBLIC_URL {why}; no re-consent link is made"),
            "set it to the address people reach `serve` at, like `https://tokens.example.com` (http or https, no user, query or fragment)",
        )
    };
    let mut url = url::Url::parse(public_url.trim()).map_err(|_| refused("is not a URL"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(refused("is not an http(s) address"));
    }
    if !url.username().is_empty() || url.password().is_some() || url.query().is_some() || url.fragment().is_some() {
        return Err(refused("holds a user, a query or a fragment"));
    }
    let expires = (now + LINK_LIFETIME).timestamp().to_string();
    let nonce = crate::fsutil::random_hex(16).map_err(Error::internal)?;
    let sig = signature(admin_token, account.as_str(), &expires, &nonce);
    let base = url.path().trim_end_matches('/').to_owned();
    url.set_path(&format!("{base}{START_PATH}"));
    url.query_pairs_mut()
        .clear()
        .append_pair("account", account.as_str())
        .append_pair("expires", &expires)
        .append_pair("nonce", &nonce)
        .append_pair("sig", &sig);
    Ok(url.to_string())
}

/// Checks a link's parts (as its query gave them) at `now`.
pub fn verify(
    admin_token: &SecretString,
    account: &str,
    expires: &str,
    nonce: &str,
    sig: &str,
    now: DateTime<Utc>,
) -> std::result::Result<Claim, Refusal> {
    let account_name = AccountName::parse(account).map_err(|_| Refusal::Invalid)?;
    let at = expires
        .parse::<i64>()
        .ok()
        .and_then(|t| DateTime::<Utc>::from_timestamp(t, 0))
        .ok_or(Refusal::Invalid)?;
    let well_formed = nonce.len() == 32 && nonce.bytes().all(|b| b.is_ascii_hexdigit());
    let tag = decode_hex(sig).ok_or(Refusal::Invalid)?;
    let key = link_key(admin_token);
    let message = signed_text(account, expires, nonce);
    if !well_formed || ring::hmac::verify(&key, message.as_bytes(), &tag).is_err() {
        return Err(Refusal::Invalid);
    }
    if now >= at {
        return Err(Refusal::Expired { at });
    }
    Ok(Claim {
        account: account_name,
        nonce: nonce.to_owned(),
        expires_at: at,
    })
}

fn link_key(admin_token: &SecretString) -> ring::hmac::Key {
    let root = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, admin_token.expose_secret().as_bytes());
    let derived = ring::hmac::sign(&root, KEY_LABEL);
    ring::hmac::Key::new(ring::hmac::HMAC_SHA256, derived.as_ref())
}

fn signed_text(account: &str, expires: &str, nonce: &str) -> String {
    format!("{account}\n{expires}\n{nonce}")
}

fn signature(admin_token: &SecretString, account: &str, expires: &str, nonce: &str) -> String {
    let tag = ring::hmac::sign(&link_key(admin_token), signed_text(account, expires, nonce).as_bytes());
    tag.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if text.len() != 64 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SecretString {
        SecretString::from("admin-token-for-links-0123456789")
    }

    fn parts(link: &str) -> (String, String, String, String) {
        let url = url::Url::parse(link).unwrap();
        let get = |k: &str| url.query_pairs().find(|(n, _)| n == k).unwrap().1.into_owned();
        (get("account"), get("expires"), get("nonce"), get("sig"))
    }

    #[test]
    fn a_link_names_its_account_and_verifies_within_its_hour_only() {
        let now = Utc::now();
        let alice = AccountName::parse("alice").unwrap();
        let link = issue("https://tokens.example.com/base/", &key(), &alice, now).unwrap();
        assert!(
            link.starts_with("https://tokens.example.com/base/auth/start?account=alice&expires="),
            "{link}"
        );
        let (account, expires, nonce, sig) = parts(&link);
        let claim = verify(&key(), &account, &expires, &nonce, &sig, now).unwrap();
        assert_eq!(claim.account, alice);
        assert_eq!(claim.expires_at.timestamp(), (now + LINK_LIFETIME).timestamp());
        let later = now + LINK_LIFETIME + chrono::Duration::seconds(1);
        assert!(matches!(
            verify(&key(), &account, &expires, &nonce, &sig, later),
            Err(Refusal::Expired { .. })
        ));
    }

    #[test]
    fn a_public_url_that_is_no_http_address_or_carries_more_makes_no_link() {
        let alice = AccountName::parse("alice").unwrap();
        for bad in [
            "javascript:alert(1)",
            "ftp://tokens.example.com",
            "https://user:pw@tokens.example.com",
            "https://tokens.example.com/?x=1",
            "https://tokens.example.com/#frag",
            "not a url",
        ] {
            let refused = issue(bad, &key(), &alice, Utc::now()).unwrap_err();
            assert_eq!(refused.code(), "CONFIGURATION_ERROR", "{bad}");
            assert!(!refused.to_string().contains("pw@"), "{refused}");
        }
    }

    #[test]
    fn a_link_moved_to_another_account_or_signed_with_another_key_is_refused() {
        let now = Utc::now();
        let alice = AccountName::parse("alice").unwrap();
        let (_, expires, nonce, sig) = parts(&issue("https://t.example", &key(), &alice, now).unwrap());
        assert_eq!(
            verify(&key(), "bob", &expires, &nonce, &sig, now),
            Err(Refusal::Invalid)
        );
        let other = SecretString::from("another-admin-token-0123456789");
        assert_eq!(
            verify(&other, "alice", &expires, &nonce, &sig, now),
            Err(Refusal::Invalid)
        );
        let later = (now + chrono::Duration::hours(5)).timestamp().to_string();
        assert_eq!(
            verify(&key(), "alice", &later, &nonce, &sig, now),
            Err(Refusal::Invalid)
        );
        assert_eq!(
            verify(&key(), "alice", &expires, &nonce, "zz", now),
            Err(Refusal::Invalid)
        );
    }
}
