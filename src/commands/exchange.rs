//! `exchange CODE_OR_URL`: trade a consent code for the first token set.

use reqwest::Url;

use crate::cli::ExchangeArgs;
use crate::error::{Error, Result};
use crate::http::{HttpClient, block_on};
use crate::output::Output;
use crate::rotation;
use crate::settings::Settings;

/// The code and, when a whole redirect URL was given, its state.
#[derive(Debug, PartialEq, Eq)]
pub struct Redirect {
    pub code: String,
    pub state: Option<String>,
}

pub fn run(args: &ExchangeArgs, settings: &Settings, out: &Output) -> Result<()> {
    let redirect = parse_code_or_url(&args.code_or_url)?;
    let http = HttpClient::new(settings.http)?;
    let client = super::withings_client(settings, &http, "exchange")?;
    let store = super::store_of(settings);
    let _spinner = out.spinner("exchanging the code with Withings…");
    block_on(async {
        let update_env = !args.delivery.no_env_file_update;
        let rotation = rotation::exchange(
            settings,
            &store,
            &client,
            &redirect.code,
            redirect.state.as_deref(),
            update_env,
        )
        .await?;
        super::finish_rotation(settings, &http, rotation, &args.delivery, out).await
    })?
}

pub fn parse_code_or_url(input: &str) -> Result<Redirect> {
    let input = input.trim();
    let looks_like_url = input.starts_with("http://") || input.starts_with("https://") || input.contains('?');
    if !looks_like_url {
        if input.is_empty() || input.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(Error::config(
                "the authorization code is empty or malformed",
                "pass the code, or the whole redirect URL in single quotes",
            ));
        }
        return Ok(Redirect {
            code: input.to_owned(),
            state: None,
        });
    }
    let url = Url::parse(input).or_else(|_| Url::parse(&format!("http://localhost/{}", input.trim_start_matches('/'))));
    let url = url.map_err(|e| {
        Error::config(
            format!("the redirect URL does not parse: {e}"),
            "paste the whole URL in single quotes",
        )
    })?;
    let get = |key: &str| url.query_pairs().find(|(k, _)| k == key).map(|(_, v)| v.into_owned());
    if let Some(error) = get("error") {
        return Err(Error::config(
            format!("the consent was not given (Withings answered error={error})"),
            "run `withings-token auth-url` again and approve the request",
        ));
    }
    let code = get("code").filter(|c| !c.is_empty()).ok_or_else(|| {
        Error::config(
            "the redirect URL has no `code` parameter",
            "paste the URL your browser was sent to after approving (it carries ?code=...&state=...)",
        )
    })?;
    Ok(Redirect {
        code,
        state: get("state"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_code_and_url_are_both_accepted() {
        assert_eq!(
            parse_code_or_url(" abc123 ").unwrap(),
            Redirect {
                code: "abc123".into(),
                state: None
            }
        );
        let r = parse_code_or_url("https://example.com/cb?code=abc&state=xyz").unwrap();
        assert_eq!(
            r,
            Redirect {
                code: "abc".into(),
                state: Some("xyz".into())
            }
        );
    }

    #[test]
    fn url_without_code_or_with_error_is_refused() {
        assert_eq!(
            parse_code_or_url("https://example.com/cb?state=x")
                .unwrap_err()
                .exit_code(),
            3
        );
        assert_eq!(
            parse_code_or_url("https://example.com/cb?error=access_denied")
                .unwrap_err()
                .exit_code(),
            3
        );
        assert_eq!(parse_code_or_url("").unwrap_err().exit_code(), 3);
    }
}
