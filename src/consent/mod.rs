//! Consent, the work `auth-url`, `exchange`, `login` and `serve` share:
//! the authorization URL and the state kept for it in the store, the
//! redirect (a bare code or the whole redirect URL) parsed and checked
//! against the registered callback, and the exchange of its code for the
//! first token set under the store lock (`transaction`, saving through
//! rotation's save path). For a person at a machine with a browser, the
//! loopback consent: where the browser comes back (`callback`), the
//! listener that waits for this consent's redirect and exchanges it
//! (`loopback`), and the page the browser is shown (`page`).

mod binding;
pub(crate) mod callback;
pub(crate) mod loopback;
pub(crate) mod page;
mod transaction;

use reqwest::Url;

use crate::error::{Error, Result};
use crate::output::{AuthUrlReport, JSON_VERSION};
use crate::settings::Settings;
use crate::store::TokenStore;

pub(crate) use self::binding::{
    Replace, holder_of, refuse_another_accounts_seed, refuse_another_accounts_token, vet_seed,
};
pub(crate) use self::transaction::exchange;

/// What an authorization URL is asked with (`auth-url --state`,
/// `--demo-account`; `login`; the API asks with the defaults).
#[derive(Debug, Clone, Default)]
pub struct AuthUrlRequest {
    /// Use this state instead of a random one.
    pub state: Option<String>,
    /// Open Withings' demo account instead of a real one (`mode=demo`).
    pub demo_account: bool,
}

/// Makes the URL and keeps its state in the store.
pub async fn issue(request: &AuthUrlRequest, settings: &Settings, store: &dyn TokenStore) -> Result<AuthUrlReport> {
    let client_id = settings.client_id("auth-url")?;
    let redirect_uri = settings.redirect_uri("auth-url")?;
    let authorize_url = settings.authorize_url()?;
    let state = match &request.state {
        Some(state) if state.trim().is_empty() => {
            return Err(Error::config(
                "--state is empty",
                "pass a non-empty state, or omit --state for a random one",
            ));
        }
        Some(state) => state.clone(),
        None => crate::fsutil::random_hex(16).map_err(Error::internal)?,
    };
    transaction::remember_auth_state(settings, store, &state).await?;
    let url = authorization_url(
        authorize_url,
        client_id,
        &settings.scope,
        redirect_uri,
        &state,
        request.demo_account,
    );
    Ok(AuthUrlReport {
        version: JSON_VERSION,
        authorization_url: url.to_string(),
        redirect_uri: redirect_uri.to_owned(),
        scope: settings.scope.clone(),
        state,
    })
}

/// Withings' consent URL for this app, `state` and (with `demo`) its demo
/// account.
pub fn authorization_url(base: &Url, client_id: &str, scope: &str, redirect_uri: &str, state: &str, demo: bool) -> Url {
    let mut url = base.clone();
    {
        let mut query = url.query_pairs_mut();
        query
            .append_pair("response_type", "code")
            .append_pair("client_id", client_id)
            .append_pair("scope", scope)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("state", state);
        if demo {
            query.append_pair("mode", "demo");
        }
    }
    url
}

/// The code and the state that came with it.
#[derive(Debug, PartialEq, Eq)]
pub struct Redirect {
    pub code: String,
    pub state: RedirectState,
    /// The URL without its query, to compare with `WITHINGS_REDIRECT_URI`.
    pub url_base: Option<String>,
}

/// What a redirect says of the consent it comes from, checked against the
/// state `auth-url` kept in the store before anything is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedirectState {
    /// A bare code: nothing to check (the contract accepts it).
    BareCode,
    /// A redirect URL without a state: refused while a consent is pending.
    Missing,
    /// The state the redirect URL carries (or the API was given beside the
    /// code): it must be the pending one.
    Given(String),
}

/// A redirect URL must be the registered callback: a code carried by any
/// other URL did not come back through this app's consent.
pub fn check_redirect_base(redirect: &Redirect, registered: &str) -> Result<()> {
    let Some(base) = &redirect.url_base else { return Ok(()) };
    let registered = Url::parse(registered)
        .map(|u| without_query(&u))
        .unwrap_or_else(|_| registered.to_owned());
    if *base == registered {
        return Ok(());
    }
    Err(Error::InvalidState {
        detail: format!(
            "the redirect URL is not the registered WITHINGS_REDIRECT_URI ({registered}); a code from another callback was not sent to Withings"
        ),
    })
}

/// Scheme, host, port and path: what identifies a callback.
fn without_query(url: &Url) -> String {
    let mut url = url.clone();
    url.set_query(None);
    url.set_fragment(None);
    url.to_string()
}

/// The code, and a redirect URL's state and callback, from what was
/// pasted: a bare code, the whole redirect URL, or its query alone.
pub fn parse_code_or_url(input: &str) -> Result<Redirect> {
    let input = input.trim();
    let absolute = input.starts_with("http://") || input.starts_with("https://");
    // `code=...&state=...` pasted without its `?` is a query too: taking it
    // for a bare code would skip the state check.
    let looks_like_url = absolute || input.contains('?') || input.contains('=') || input.contains('&');
    if !looks_like_url {
        check_code(input)?;
        return Ok(Redirect {
            code: input.to_owned(),
            state: RedirectState::BareCode,
            url_base: None,
        });
    }
    let query_only = format!("http://localhost/?{}", input.trim_start_matches(['/', '?']));
    let url = Url::parse(input).or_else(|_| Url::parse(&query_only)).map_err(|e| {
        Error::config(
            format!("the redirect URL does not parse: {e}"),
            "paste the whole URL in single quotes",
        )
    })?;
    let error = single(&url, "error")?;
    if let Some(error) = error {
        return Err(Error::config(
            format!(
                "the consent was not given (Withings answered error={})",
                crate::redact::clip(&error)
            ),
            "run `withings-token auth-url` again and approve the request",
        ));
    }
    let code = single(&url, "code")?.filter(|c| !c.is_empty()).ok_or_else(|| {
        Error::config(
            "the redirect URL has no `code` parameter",
            "paste the URL your browser was sent to after approving (it carries ?code=...&state=...)",
        )
    })?;
    check_code(&code)?;
    Ok(Redirect {
        code,
        state: single(&url, "state")?.map_or(RedirectState::Missing, RedirectState::Given),
        // Only the query was pasted: there is no callback to compare.
        url_base: absolute.then(|| without_query(&url)),
    })
}

/// The one value of `key`; a URL that repeats it is not one Withings made,
/// and which copy counts would decide the state check, so it is refused.
fn single(url: &Url, key: &str) -> Result<Option<String>> {
    let mut values = url.query_pairs().filter(|(k, _)| k == key).map(|(_, v)| v.into_owned());
    let first = values.next();
    if values.next().is_some() {
        return Err(Error::InvalidState {
            detail: format!("the redirect URL carries `{key}` more than once; nothing was sent"),
        });
    }
    Ok(first)
}

/// Withings' codes are printable ASCII; anything else was not made by it.
fn check_code(code: &str) -> Result<()> {
    if code.is_empty() || code.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Error::config(
            "the authorization code is empty or malformed",
            "pass the code, or the whole redirect URL in single quotes",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
