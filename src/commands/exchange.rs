//! `exchange CODE_OR_URL`: trade a consent code for the first token set.
//! `exchange -` (or no argument with stdin not a terminal) reads it from
//! stdin, so the code is not on the command line (`ps`) while it is used.

use std::io::{BufRead, IsTerminal};

use clap::Args;

use crate::cli::DeliveryArgs;
use crate::consent::{self, check_redirect_base, parse_code_or_url};
use crate::copies;
use crate::error::{Error, Result, Status};
use crate::http::{HttpClient, block_on};
use crate::output::Output;
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

    /// Save the set even when it is another Withings user's than the account holds, or one another account holds (says what it replaced)
    #[arg(long)]
    pub replace: bool,

    #[command(flatten)]
    pub delivery: DeliveryArgs,
}

/// A redirect URL is under 2 KiB; a longer first line on stdin is not one.
const MAX_STDIN_LINE: u64 = 64 * 1024;

pub fn run(args: &ExchangeArgs, settings: &Settings, out: &Output) -> Result<Status> {
    let input = code_or_url(args)?;
    if let Some(server) = crate::server_client::ServerClient::of(settings, true)? {
        return super::via_server::exchange(&server, &input, (&args.delivery, args.replace), out);
    }
    let redirect = parse_code_or_url(&input)?;
    let targets = copies::targets(settings, args.delivery.choices())?;
    check_redirect_base(&redirect, settings.redirect_uri("exchange")?)?;
    let http = HttpClient::new(settings.http)?;
    let client = crate::withings::client_for(settings, &http, "exchange")?;
    let store = crate::store::open(settings)?;
    let client = client.sharing_budget_through(store.as_ref());
    let _spinner = out.spinner("exchanging the code with Withings…");
    block_on(async {
        let rotation = consent::exchange(
            settings,
            store.as_ref(),
            &client,
            &redirect,
            consent::Replace::when(args.replace),
        )
        .await?;
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
}
