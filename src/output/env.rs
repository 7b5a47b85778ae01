//! `--output env`: the token set as the contract's env lines, or one
//! comment for a report that has no tokens to give.

use secrecy::ExposeSecret;

use super::{Env, mask_in_ci_logs};
use crate::envfile::format_line;
use crate::error::{Error, Result};
use crate::tokens::token_variables;

/// The text of `env`, empty for a report without a set.
pub(super) fn render(env: &Env<'_>) -> Result<String> {
    match env {
        Env::Tokens(Some(tokens)) => {
            let secrets = [tokens.access_token.as_ref(), Some(&tokens.refresh_token)];
            mask_in_ci_logs(&secrets.iter().flatten().map(|s| s.expose_secret()).collect::<Vec<_>>());
            token_lines(tokens)
        }
        Env::Tokens(None) => Ok(String::new()),
        Env::Comment(comment) => Ok(format!("# {comment}\n")),
    }
}

/// Exactly the four contract lines, unmasked, quoted only when needed. A
/// value no reader could take back exactly prints nothing at all.
pub(super) fn token_lines(tokens: &crate::tokens::TokenSet) -> Result<String> {
    let mut out = String::new();
    for (key, value) in token_variables(tokens) {
        let line = format_line(key, &value).map_err(|e| Error::OutputFailed { detail: e.to_string() })?;
        out.push_str(&line);
    }
    Ok(out)
}
