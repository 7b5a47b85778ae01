//! `exchange CODE_OR_URL`: trade a consent code for the first token set.
//! `exchange -` (or no argument with stdin not a terminal) reads it from
//! stdin, so the code is not on the command line (`ps`) while it is used.

use std::io::{BufRead, IsTerminal};

use clap::Args;
use reqwest::Url;

use crate::cli::DeliveryArgs;
use crate::copies;
use crate::error::{Error, Result, Status};
use crate::http::{HttpClient, block_on};
use crate::output::Output;
use crate::rotation;
use crate::settings::Settings;

/// Trade an authorization code (or the whole redirect URL) for tokens
#[derive(Debug, Args)]
#[command(
    after_help = "A code is valid for 30 seconds and only once. Given the redirect URL, its state must match the one `auth-url` issued. \
With `-` (or no argument while stdin is not a terminal) the first line of stdin is read instead, so the code never shows \
in `ps` or the shell history.\n\n\
Examples:\n  withings-token exchange 'https://example.com/callback?code=abc&state=xyz'\n  withings-token exchange abc123 --no-railway\n  \
pbpaste | withings-token exchange -"
)]
pub struct ExchangeArgs {
    /// The code, or the redirect URL carrying `code` and `state`; `-` reads it from stdin [default: stdin when it is not a terminal]
    #[arg(value_name = "CODE_OR_URL")]
    pub code_or_url: Option<String>,

    #[command(flatten)]
    pub delivery: DeliveryArgs,
}

/// The code and, when a whole redirect URL was given, that URL's state.
#[derive(Debug, PartialEq, Eq)]
pub struct Redirect {
    pub code: String,
    /// `None` for a bare code; `Some(state)` for a redirect URL.
    pub url_state: Option<Option<String>>,
    /// The URL without its query, to compare with `WITHINGS_REDIRECT_URI`.
    pub url_base: Option<String>,
}

/// A redirect URL is under 2 KiB; a longer first line on stdin is not one.
const MAX_STDIN_LINE: u64 = 64 * 1024;

pub fn run(args: &ExchangeArgs, settings: &Settings, out: &Output) -> Result<Status> {
    let input = code_or_url(args)?;
    if let Some(server) = crate::server_client::ServerClient::of(settings, true)? {
        return super::remote::exchange(&server, &input, &args.delivery, out);
    }
    let redirect = parse_code_or_url(&input)?;
    let targets = copies::targets(settings, args.delivery.choices())?;
    check_redirect_base(&redirect, settings.redirect_uri("exchange")?)?;
    let http = HttpClient::new(settings.http)?;
    let client = super::withings_client(settings, &http, "exchange")?;
    let store = super::store_of(settings)?;
    let _spinner = out.spinner("exchanging the code with Withings…");
    block_on(async {
        let url_state = redirect.url_state.as_ref().map(|s| s.as_deref());
        let rotation = rotation::exchange(settings, store.as_ref(), &client, &redirect.code, url_state).await?;
        super::deliver_and_report(settings, &http, store.as_ref(), &targets, rotation, out).await
    })?
}

/// The argument, or the first line of stdin for `-` and for no argument
/// when stdin is not a terminal (a pipe, a file, a heredoc).
fn code_or_url(args: &ExchangeArgs) -> Result<String> {
    match args.code_or_url.as_deref() {
        Some("-") => read_first_line(std::io::stdin().lock()),
        Some(given) => Ok(given.to_owned()),
        None if !std::io::stdin().is_terminal() => read_first_line(std::io::stdin().lock()),
        None => Err(Error::config(
            "no authorization code or redirect URL given",
            "pass the redirect URL in single quotes (`withings-token exchange '<redirect URL>'`), or on stdin: `withings-token exchange -`",
        )),
    }
}

/// The first line of `input`, trimmed; at most [`MAX_STDIN_LINE`] bytes are read.
fn read_first_line(input: impl BufRead) -> Result<String> {
    let from_stdin = "pipe the redirect URL (or the code) on one line: `printf '%s\\n' '<redirect URL>' | withings-token exchange -`";
    let mut line = Vec::new();
    input
        .take(MAX_STDIN_LINE + 1)
        .read_until(b'\n', &mut line)
        .map_err(|e| Error::config(format!("cannot read the code from stdin: {e}"), from_stdin))?;
    if line.len() as u64 > MAX_STDIN_LINE {
        return Err(Error::config(
            format!(
                "the first line of stdin is longer than {} KiB: not a redirect URL",
                MAX_STDIN_LINE / 1024
            ),
            from_stdin,
        ));
    }
    let text = String::from_utf8(line).map_err(|_| Error::config("the code on stdin is not UTF-8 text", from_stdin))?;
    let text = text.trim();
    if text.is_empty() {
        return Err(Error::config(
            "stdin held no authorization code or redirect URL (its first line is empty)",
            from_stdin,
        ));
    }
    Ok(text.to_owned())
}

/// A redirect URL must be the registered callback: a code carried by any
/// other URL did not come back through this app's consent.
pub(crate) fn check_redirect_base(redirect: &Redirect, registered: &str) -> Result<()> {
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
            url_state: None,
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
                crate::http::clip(&error)
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
        url_state: Some(single(&url, "state")?),
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
mod tests {
    use super::*;

    #[test]
    fn stdin_gives_its_first_line_trimmed_and_nothing_else() {
        let read = |text: &[u8]| read_first_line(std::io::Cursor::new(text.to_vec()));
        assert_eq!(
            read(b"  https://e.com/cb?code=c&state=s \r\nsecond\n").unwrap(),
            "https://e.com/cb?code=c&state=s"
        );
        assert_eq!(read(b"abc123").unwrap(), "abc123");
        for empty in [&b""[..], b"\n", b"  \t \nabc\n"] {
            let e = read(empty).unwrap_err();
            assert_eq!(e.exit_code(), 3, "{empty:?}");
            assert!(e.to_string().contains("stdin held no"), "{e}");
            assert!(e.action().contains("| withings-token exchange -`"), "{}", e.action());
        }
        let long = vec![b'a'; MAX_STDIN_LINE as usize + 1];
        assert!(read(&long).unwrap_err().to_string().contains("longer than 64 KiB"));
        assert_eq!(read(&long[1..]).unwrap().len(), MAX_STDIN_LINE as usize);
        assert!(read(b"\xff\xfe\n").unwrap_err().to_string().contains("not UTF-8"));
    }

    #[test]
    fn bare_code_and_url_are_both_accepted() {
        assert_eq!(
            parse_code_or_url(" abc123 ").unwrap(),
            Redirect {
                code: "abc123".into(),
                url_state: None,
                url_base: None,
            }
        );
        let r = parse_code_or_url("https://example.com/cb?code=abc&state=xyz").unwrap();
        assert_eq!(
            r,
            Redirect {
                code: "abc".into(),
                url_state: Some(Some("xyz".into())),
                url_base: Some("https://example.com/cb".into()),
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

    #[test]
    fn repeated_or_hidden_parameters_never_skip_the_state_check() {
        let twice = "https://example.com/cb?code=c&state=good&state=bad";
        assert_eq!(parse_code_or_url(twice).unwrap_err().code(), "INVALID_STATE");
        let two_codes = "https://example.com/cb?code=a&code=b&state=s";
        assert_eq!(parse_code_or_url(two_codes).unwrap_err().code(), "INVALID_STATE");
        // A query pasted without its `?` is still a query, with its state.
        let r = parse_code_or_url("code=C11&state=BAD").unwrap();
        assert_eq!(r.url_state, Some(Some("BAD".into())));
        // A NUL in the code (percent-encoded) is refused before sending.
        assert_eq!(
            parse_code_or_url("https://example.com/cb?code=C8%00x&state=s")
                .unwrap_err()
                .exit_code(),
            3
        );
    }

    #[test]
    fn a_code_from_another_callback_is_refused_before_sending() {
        let registered = "https://example.com/callback";
        let ok = parse_code_or_url("https://example.com/callback?code=c&state=s").unwrap();
        assert!(check_redirect_base(&ok, registered).is_ok());
        for foreign in [
            "https://evil.example/callback?code=c&state=s",
            "https://example.com/other?code=c&state=s",
            "http://example.com/callback?code=c&state=s",
            "https://example.com:8443/callback?code=c&state=s",
        ] {
            let r = parse_code_or_url(foreign).unwrap();
            assert_eq!(
                check_redirect_base(&r, registered).unwrap_err().code(),
                "INVALID_STATE",
                "{foreign}"
            );
        }
        // A bare code has no URL to check.
        assert!(check_redirect_base(&parse_code_or_url("c0de").unwrap(), registered).is_ok());
    }
}
