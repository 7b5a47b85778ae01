//! The man page and the completion scripts, generated from the clap
//! definition; `tests/cli/generated.rs` fails when the committed copies under
//! `man/` and `completions/` are stale.

use clap_complete::{Generator, Shell};

use crate::error::EXIT_STATUS_TABLE;

/// Settings documented in the ENVIRONMENT section, as in the contract.
const ENVIRONMENT: &[(&str, &str)] = &[
    (
        "WITHINGS_CLIENT_ID, WITHINGS_CLIENT_SECRET",
        "the Withings app's credentials (network commands)",
    ),
    (
        "WITHINGS_REFRESH_TOKEN, WITHINGS_ACCESS_TOKEN",
        "seed tokens, used when the store holds none or an older set",
    ),
    (
        "WITHINGS_TOKEN_EXPIRES_AT, WITHINGS_TOKEN_LAST_REFRESHED",
        "RFC 3339 UTC times of the seed tokens",
    ),
    (
        "WITHINGS_REDIRECT_URI",
        "the callback registered with Withings (auth-url, exchange; login listens on it when it is a loopback http:// URL, else on http://127.0.0.1:8585/callback)",
    ),
    (
        "WITHINGS_SCOPE",
        "comma-separated scopes (default user.info,user.metrics,user.activity)",
    ),
    (
        "WITHINGS_API_URL",
        "base of the token API (default https://wbsapi.withings.net)",
    ),
    (
        "WITHINGS_AUTHORIZE_URL",
        "authorization page (default https://account.withings.com/oauth2_user/authorize2)",
    ),
    (
        "WITHINGS_TOKEN_STORE",
        "token store file (default $XDG_STATE_HOME/withings-token/tokens.json)",
    ),
    (
        "WITHINGS_REFRESH_BUFFER",
        "how long before expiry a refresh is due (default min(24h, lifetime/3))",
    ),
    ("WITHINGS_ENV_FILE", "env file to read instead of ./.env"),
    (
        "RAILWAY_TOKEN",
        "Railway project token (Project-Access-Token header; wins over RAILWAY_API_TOKEN)",
    ),
    (
        "RAILWAY_API_TOKEN",
        "Railway account or team token (Authorization: Bearer)",
    ),
    (
        "RAILWAY_PROJECT_ID, RAILWAY_SERVICE_ID",
        "the Railway service that holds the tokens",
    ),
    (
        "RAILWAY_ENVIRONMENT_ID",
        "its environment; else looked up by RAILWAY_ENVIRONMENT_NAME (default production)",
    ),
    (
        "RAILWAY_API_URL",
        "Railway GraphQL endpoint (default https://backboard.railway.com/graphql/v2)",
    ),
    (
        "ADMIN_API_TOKEN",
        "serve: required; the X-Admin-Token value that opens the admin endpoints",
    ),
    (
        "WITHINGS_TOKEN_READER_TOKEN",
        "serve: the bearer credential that opens only GET /v1/access-token",
    ),
    (
        "PORT",
        "serve: listen on 0.0.0.0:$PORT when --listen is not given (as Railway sets it)",
    ),
];

fn escape(text: &str) -> String {
    text.replace('\\', "\\\\").replace('-', "\\-").replace('\'', "\\(aq")
}

pub fn man_page() -> std::io::Result<Vec<u8>> {
    let man = clap_mangen::Man::new(crate::cli::command());
    let mut page = Vec::new();
    man.render_title(&mut page)?;
    man.render_name_section(&mut page)?;
    man.render_synopsis_section(&mut page)?;
    man.render_description_section(&mut page)?;
    man.render_options_section(&mut page)?;
    man.render_subcommands_section(&mut page)?;
    let mut extra = String::from(".SH ENVIRONMENT\n");
    for (name, meaning) in ENVIRONMENT {
        extra.push_str(&format!(".TP\n\\fB{}\\fR\n{}\n", escape(name), escape(meaning)));
    }
    extra.push_str(".SH \"EXIT STATUS\"\n");
    for row in EXIT_STATUS_TABLE {
        extra.push_str(&format!(
            ".TP\n\\fB{}\\fR {}\n{}\n",
            row.exit,
            escape(row.codes),
            escape(row.meaning)
        ));
    }
    page.extend_from_slice(extra.as_bytes());
    man.render_extra_section(&mut page)?;
    man.render_version_section(&mut page)?;
    Ok(page)
}

/// (file name under `completions/`, script) for each shell we ship.
pub fn completion_scripts() -> Vec<(String, Vec<u8>)> {
    [Shell::Bash, Shell::Zsh, Shell::Fish]
        .into_iter()
        .map(|shell| {
            let mut script = Vec::new();
            let mut cmd = crate::cli::command();
            clap_complete::generate(shell, &mut cmd, "withings-token", &mut script);
            (shell.file_name("withings-token"), script)
        })
        .collect()
}
