//! The two credentials of `serve`: `ADMIN_API_TOKEN` in `X-Admin-Token`
//! opens everything; `WITHINGS_TOKEN_READER_TOKEN` as `Authorization:
//! Bearer` opens only the broker. Secrets are compared in constant time, so
//! the answer's timing does not tell how much of a guess was right.

use axum::http::{HeaderMap, header};
use secrecy::{ExposeSecret, SecretString};

use super::errors::ApiError;

pub const ADMIN_HEADER: &str = "x-admin-token";

pub struct Credentials {
    pub admin: SecretString,
    pub reader: Option<SecretString>,
}

/// Which credential a presented secret is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presented {
    Admin,
    Reader,
    Unknown,
}

impl Credentials {
    /// Compares with both credentials every time (no early exit), so the
    /// timing does not say which one was nearly matched.
    pub fn identify(&self, given: &[u8]) -> Presented {
        let admin = same_secret(given, self.admin.expose_secret().as_bytes());
        let reader = self
            .reader
            .as_ref()
            .is_some_and(|r| same_secret(given, r.expose_secret().as_bytes()));
        match (admin, reader) {
            (true, _) => Presented::Admin,
            (false, true) => Presented::Reader,
            (false, false) => Presented::Unknown,
        }
    }

    /// The admin endpoints: `X-Admin-Token` must be `ADMIN_API_TOKEN`.
    pub fn admit_admin(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let Some(given) = headers.get(ADMIN_HEADER) else {
            return Err(unauthorized("the X-Admin-Token header is missing"));
        };
        match self.identify(given.as_bytes()) {
            Presented::Admin => Ok(()),
            Presented::Reader => Err(ApiError::Forbidden),
            Presented::Unknown => Err(unauthorized("X-Admin-Token does not match ADMIN_API_TOKEN")),
        }
    }

    /// The broker: `Authorization: Bearer` with the reader or the admin
    /// credential (`X-Admin-Token` is accepted too, as on every admin call).
    pub fn admit_reader(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| bearer_token(v.as_bytes()));
        let given = bearer.or_else(|| headers.get(ADMIN_HEADER).map(|v| v.as_bytes()));
        let Some(given) = given else {
            return Err(unauthorized("the Authorization: Bearer header is missing"));
        };
        match self.identify(given) {
            Presented::Admin | Presented::Reader => Ok(()),
            Presented::Unknown => Err(unauthorized(
                "the bearer token is neither WITHINGS_TOKEN_READER_TOKEN nor ADMIN_API_TOKEN",
            )),
        }
    }
}

fn unauthorized(message: &str) -> ApiError {
    ApiError::Unauthorized {
        message: message.to_owned(),
        action: "send `X-Admin-Token: $ADMIN_API_TOKEN` (admin endpoints) or `Authorization: Bearer $WITHINGS_TOKEN_READER_TOKEN` (GET /v1/access-token), with the values the server was started with".to_owned(),
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
}
