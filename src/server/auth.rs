//! The credentials of `serve`: `ADMIN_API_TOKEN` in `X-Admin-Token`
//! opens everything; `WITHINGS_TOKEN_READER_TOKEN` as `Authorization:
//! Bearer` opens only the broker, for every account; a named reader of the
//! config file (`[reader.NAME]`, known by the SHA-256 of its token) opens
//! the broker for its accounts only. Secrets and digests are compared in
//! constant time, each with every credential, so the answer's timing does
//! not tell how much of a guess was right, nor which credential it neared.

use axum::http::{HeaderMap, header};
use secrecy::{ExposeSecret, SecretString};

use crate::accounts::AccountName;
use crate::error::{Error, Result};
use crate::settings::ReaderGrant;

use super::errors::ApiError;

pub const ADMIN_HEADER: &str = "x-admin-token";

pub struct Credentials {
    pub admin: SecretString,
    pub reader: Option<SecretString>,
    pub readers: Vec<ScopedReader>,
}

/// A named reader: the digest of its token, what it may read, and its
/// share of the app's budget (`shares`).
pub struct ScopedReader {
    pub name: String,
    digest: [u8; 32],
    accounts: Vec<AccountName>,
    all_accounts: bool,
    pub budget: Option<crate::budget::Rate>,
}

impl ScopedReader {
    /// `grant.sha256` must be 64 hex digits (either case).
    pub fn of(grant: &ReaderGrant) -> Result<ScopedReader> {
        let digest = hex_digest(&grant.sha256).ok_or_else(|| {
            Error::config(
                format!("[reader.{}]: sha256 is not 64 hex digits", grant.name),
                "set it to the SHA-256 of the reader's token, e.g. `printf %s \"$TOKEN\" | sha256sum`",
            )
        })?;
        Ok(ScopedReader {
            name: grant.name.clone(),
            digest,
            accounts: grant.accounts.clone(),
            all_accounts: grant.all_accounts,
            budget: grant.budget,
        })
    }
}

fn hex_digest(text: &str) -> Option<[u8; 32]> {
    let text = text.trim().as_bytes();
    if text.len() != 64 {
        return None;
    }
    let mut digest = [0u8; 32];
    for (byte, pair) in digest.iter_mut().zip(text.chunks_exact(2)) {
        let high = char::from(pair[0]).to_digit(16)?;
        let low = char::from(pair[1]).to_digit(16)?;
        *byte = u8::try_from(high * 16 + low).ok()?;
    }
    Some(digest)
}

/// Which credential a presented secret is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presented {
    Admin,
    Reader,
    /// The named reader at this index of [`Credentials::readers`].
    Scoped(usize),
    Unknown,
}

/// Who is asking the broker or the proxy, once admitted.
#[derive(Clone, Copy)]
pub enum Caller<'a> {
    /// `ADMIN_API_TOKEN`: every account.
    Admin,
    /// `WITHINGS_TOKEN_READER_TOKEN`: every account.
    Reader,
    Scoped(&'a ScopedReader),
}

/// How usage names the admin token and the unnamed reader token: not a
/// reader name (those are lower case), so never one of the config file's.
pub const ADMIN_LABEL: &str = "(admin)";
pub const READER_LABEL: &str = "(reader)";

impl Caller<'_> {
    pub fn may_read(&self, account: &AccountName) -> bool {
        match self {
            Caller::Admin | Caller::Reader => true,
            Caller::Scoped(reader) => reader.all_accounts || reader.accounts.contains(account),
        }
    }

    /// The named reader's name, for the refusal's count.
    pub fn reader_name(&self) -> Option<&str> {
        match self {
            Caller::Admin | Caller::Reader => None,
            Caller::Scoped(reader) => Some(&reader.name),
        }
    }

    /// Who called, as usage counts it: the named reader's name, or
    /// [`ADMIN_LABEL`] / [`READER_LABEL`].
    pub fn label(&self) -> &str {
        match self {
            Caller::Admin => ADMIN_LABEL,
            Caller::Reader => READER_LABEL,
            Caller::Scoped(reader) => &reader.name,
        }
    }
}

impl Credentials {
    /// Compares with every credential every time (no early exit), so the
    /// timing does not say which one was nearly matched. The digest is
    /// taken only when named readers exist.
    pub fn identify(&self, given: &[u8]) -> Presented {
        let admin = same_secret(given, self.admin.expose_secret().as_bytes());
        let reader = self
            .reader
            .as_ref()
            .is_some_and(|r| same_secret(given, r.expose_secret().as_bytes()));
        let scoped = self.scoped(given);
        match (admin, reader, scoped) {
            (true, _, _) => Presented::Admin,
            (false, true, _) => Presented::Reader,
            (false, false, Some(index)) => Presented::Scoped(index),
            (false, false, None) => Presented::Unknown,
        }
    }

    fn scoped(&self, given: &[u8]) -> Option<usize> {
        if self.readers.is_empty() {
            return None;
        }
        let digest = ring::digest::digest(&ring::digest::SHA256, given);
        let mut found = None;
        for (index, reader) in self.readers.iter().enumerate() {
            if same_secret(digest.as_ref(), &reader.digest) {
                found = found.or(Some(index));
            }
        }
        found
    }

    /// The admin endpoints: `X-Admin-Token` must be `ADMIN_API_TOKEN`.
    pub fn admit_admin(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let Some(given) = headers.get(ADMIN_HEADER) else {
            return Err(unauthorized("the X-Admin-Token header is missing"));
        };
        match self.identify(given.as_bytes()) {
            Presented::Admin => Ok(()),
            Presented::Reader | Presented::Scoped(_) => Err(ApiError::Forbidden),
            Presented::Unknown => Err(unauthorized("X-Admin-Token does not match ADMIN_API_TOKEN")),
        }
    }

    /// The broker: `Authorization: Bearer` with a reader or the admin
    /// credential (`X-Admin-Token` is accepted too, as on every admin call).
    pub fn admit_reader(&self, headers: &HeaderMap) -> Result<Caller<'_>, ApiError> {
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| bearer_token(v.as_bytes()));
        let given = bearer.or_else(|| headers.get(ADMIN_HEADER).map(|v| v.as_bytes()));
        let Some(given) = given else {
            return Err(unauthorized("the Authorization: Bearer header is missing"));
        };
        match self.identify(given) {
            Presented::Admin => Ok(Caller::Admin),
            Presented::Reader => Ok(Caller::Reader),
            Presented::Scoped(index) => self
                .readers
                .get(index)
                .map(Caller::Scoped)
                .ok_or_else(|| ApiError::Failed(Error::internal(anyhow::anyhow!("reader {index} vanished")))),
            Presented::Unknown => Err(unauthorized(
                "the bearer token is neither a reader's token (WITHINGS_TOKEN_READER_TOKEN, a [reader.NAME] of the config file) nor ADMIN_API_TOKEN",
            )),
        }
    }
}

fn unauthorized(message: &str) -> ApiError {
    ApiError::Unauthorized {
        message: message.to_owned(),
        action: "send `X-Admin-Token: $ADMIN_API_TOKEN` (admin endpoints) or `Authorization: Bearer $WITHINGS_TOKEN_READER_TOKEN` (GET /v1/access-token, the Withings proxy /v1/withings/…), with the values the server was started with".to_owned(),
    }
}

/// The token of an `Authorization: Bearer <token>` value (scheme in any case).
pub fn bearer_token(value: &[u8]) -> Option<&[u8]> {
    let (scheme, token) = value.split_at_checked(7)?;
    scheme.eq_ignore_ascii_case(b"bearer ").then_some(token)
}

/// Equal bytes, in time that depends on the lengths only: every byte of
/// `given` is looked at, whatever matched before.
pub fn same_secret(given: &[u8], expected: &[u8]) -> bool {
    // An empty credential is never configured (settings treat it as unset).
    if expected.is_empty() {
        return false;
    }
    let mut difference = given.len() ^ expected.len();
    // `cycle` wraps by the lengths alone (no division per byte, as `i %
    // len` would cost on every request).
    for (byte, other) in given.iter().zip(expected.iter().cycle()) {
        difference |= usize::from(byte ^ other);
    }
    std::hint::black_box(difference) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn credentials(reader: Option<&str>) -> Credentials {
        Credentials {
            admin: SecretString::from("admin-secret-123"),
            reader: reader.map(SecretString::from),
            readers: Vec::new(),
        }
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        map
    }

    #[test]
    fn same_secret_needs_every_byte_and_the_length() {
        assert!(same_secret(b"abc", b"abc"));
        assert!(!same_secret(b"abd", b"abc"));
        assert!(!same_secret(b"ab", b"abc"));
        assert!(!same_secret(b"abcabc", b"abc"));
        assert!(!same_secret(b"", b"abc"));
        assert!(!same_secret(b"", b""));
    }

    #[test]
    fn bearer_scheme_is_case_insensitive_and_required() {
        assert_eq!(bearer_token(b"Bearer tok"), Some(&b"tok"[..]));
        assert_eq!(bearer_token(b"bearer tok"), Some(&b"tok"[..]));
        assert_eq!(bearer_token(b"Basic dG9r"), None);
        assert_eq!(bearer_token(b"Bear"), None);
    }

    #[test]
    fn admin_endpoints_take_only_the_admin_token() {
        let c = credentials(Some("reader-secret"));
        assert!(c.admit_admin(&headers(&[(ADMIN_HEADER, "admin-secret-123")])).is_ok());
        for (given, forbidden) in [("admin-secret-12", false), ("wrong", false), ("reader-secret", true)] {
            let err = c.admit_admin(&headers(&[(ADMIN_HEADER, given)])).unwrap_err();
            assert_eq!(matches!(err, ApiError::Forbidden), forbidden, "{given}");
        }
        let bearer = headers(&[("authorization", "Bearer admin-secret-123")]);
        assert!(matches!(c.admit_admin(&bearer), Err(ApiError::Unauthorized { .. })));
    }

    #[test]
    fn the_broker_takes_the_reader_or_the_admin_token() {
        let c = credentials(Some("reader-secret"));
        assert!(
            c.admit_reader(&headers(&[("authorization", "Bearer reader-secret")]))
                .is_ok()
        );
        assert!(
            c.admit_reader(&headers(&[("authorization", "Bearer admin-secret-123")]))
                .is_ok()
        );
        assert!(c.admit_reader(&headers(&[(ADMIN_HEADER, "admin-secret-123")])).is_ok());
        assert!(c.admit_reader(&headers(&[("authorization", "Bearer nope")])).is_err());
        assert!(c.admit_reader(&HeaderMap::new()).is_err());
        // Without a reader credential configured, only the admin one opens it.
        let c = credentials(None);
        assert!(
            c.admit_reader(&headers(&[("authorization", "Bearer reader-secret")]))
                .is_err()
        );
        assert!(
            c.admit_reader(&headers(&[("authorization", "Bearer admin-secret-123")]))
                .is_ok()
        );
    }

    fn sha256_hex(token: &str) -> String {
        let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
        digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
    }

    fn grant(name: &str, token: &str, accounts: &[&str], all_accounts: bool) -> ReaderGrant {
        ReaderGrant {
            name: name.into(),
            sha256: sha256_hex(token),
            accounts: accounts.iter().map(|a| AccountName::parse(a).unwrap()).collect(),
            all_accounts,
            budget: None,
        }
    }

    fn with_readers(grants: &[ReaderGrant]) -> Credentials {
        Credentials {
            readers: grants.iter().map(|g| ScopedReader::of(g).unwrap()).collect(),
            ..credentials(Some("reader-secret"))
        }
    }

    fn account(name: &str) -> AccountName {
        AccountName::parse(name).unwrap()
    }

    #[test]
    fn a_named_reader_reads_its_accounts_only() {
        let c = with_readers(&[
            grant("mcp-alice", "alice-token", &["alice"], false),
            grant("mcp-household", "house-token", &["alice", "bob"], false),
            grant("ops", "ops-token", &[], true),
            grant("nobody", "nobody-token", &[], false),
        ]);
        let caller_of = |token: &str| {
            let headers = headers(&[("authorization", &format!("Bearer {token}"))]);
            let caller = c.admit_reader(&headers).ok()?;
            Some((
                caller.reader_name().map(str::to_owned),
                caller.may_read(&account("alice")),
                caller.may_read(&account("bob")),
            ))
        };
        assert_eq!(caller_of("alice-token"), Some((Some("mcp-alice".into()), true, false)));
        assert_eq!(
            caller_of("house-token"),
            Some((Some("mcp-household".into()), true, true))
        );
        assert_eq!(caller_of("ops-token"), Some((Some("ops".into()), true, true)));
        assert_eq!(caller_of("nobody-token"), Some((Some("nobody".into()), false, false)));
        // The broker's token and the admin's read every account.
        assert_eq!(caller_of("reader-secret"), Some((None, true, true)));
        assert_eq!(caller_of("admin-secret-123"), Some((None, true, true)));
        assert_eq!(caller_of("alice-token-"), None);
        assert_eq!(caller_of(&sha256_hex("alice-token")), None);
    }

    #[test]
    fn a_named_reader_opens_no_admin_endpoint() {
        let c = with_readers(&[grant("ops", "ops-token", &[], true)]);
        let err = c.admit_admin(&headers(&[(ADMIN_HEADER, "ops-token")])).unwrap_err();
        assert!(matches!(err, ApiError::Forbidden));
    }

    #[test]
    fn a_digest_is_sixty_four_hex_digits_in_either_case() {
        let upper = grant("r", "t", &[], false).sha256.to_uppercase();
        let parsed = ScopedReader::of(&ReaderGrant {
            sha256: upper,
            ..grant("r", "t", &[], false)
        })
        .unwrap();
        assert_eq!(
            parsed.digest.as_slice(),
            ring::digest::digest(&ring::digest::SHA256, b"t").as_ref()
        );
        for bad in ["", "abc", &"g".repeat(64), &"a".repeat(63), &"a".repeat(65)] {
            let grant = ReaderGrant {
                sha256: bad.to_owned(),
                ..grant("r", "t", &[], false)
            };
            let Err(e) = ScopedReader::of(&grant) else {
                panic!("{bad}")
            };
            assert_eq!(e.code(), "CONFIGURATION_ERROR");
            assert!(e.to_string().contains("[reader.r]"), "{e}");
        }
    }
}
