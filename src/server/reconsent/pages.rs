//! The words of the re-consent pages: what happened, and what to do next.
//! They are read on a phone by the person who tapped the link, so they say
//! it plainly; the error code is there for whoever runs the server.

use axum::http::StatusCode;
use chrono::{DateTime, Utc};

use crate::accounts::AccountName;
use crate::consent::page::Page;
use crate::error::Error;
use crate::output::{CopyStatus, TokenReport};
use crate::tokens::rfc3339;

use super::super::errors::http_status;

/// What a person can do when a link failed them.
fn new_link_for(account: &str) -> String {
    format!(
        "use the link of a newer notice, or ask whoever runs the server for a new one (`withings-token login --account {account}` reconnects the account from a terminal)"
    )
}

pub fn connected(account: &AccountName, report: &TokenReport) -> Page {
    let who = match &report.userid {
        Some(user) => format!("Withings user {user} gave consent"),
        None => "Withings gave consent".to_owned(),
    };
    let copies = if [report.env_file, report.railway].contains(&CopyStatus::Failed) {
        " The tokens are saved, but a copy of them (the env file or Railway) was not updated; the server's log says why."
    } else {
        ""
    };
    Page::new(
        StatusCode::OK,
        format!("Account {account} is connected again"),
        format!("{who}, and withings-token saved the new tokens.{copies} You can close this tab."),
    )
}

pub fn link_expired(account: &str, at: DateTime<Utc>) -> Page {
    Page::new(
        StatusCode::GONE,
        "This link has expired",
        format!(
            "This one-time link to reconnect account {account} stopped working at {} (a link works for an hour). Nothing was started.",
            rfc3339(at)
        ),
    )
    .with_action(new_link_for(account))
    .with_code("LINK_EXPIRED")
}

pub fn link_used(account: &AccountName) -> Page {
    Page::new(
        StatusCode::GONE,
        "This link was already used",
        format!(
            "This one-time link to reconnect account {account} was opened before, and a link works once. Nothing was started."
        ),
    )
    .with_action(format!(
        "if that consent was finished, account {account} is connected and nothing more is needed; otherwise {}",
        new_link_for(account.as_str())
    ))
    .with_code("LINK_USED")
}

pub fn link_invalid() -> Page {
    Page::new(
        StatusCode::FORBIDDEN,
        "This link is not valid",
        "The link's signature does not match what it says (it was changed or cut short, or made for another server). Nothing was started.",
    )
    .with_action("open the link exactly as the notice gave it; if it still fails, ask whoever runs the server for a new one")
    .with_code("INVALID_LINK")
}

pub fn link_needed() -> Page {
    Page::new(
        StatusCode::FORBIDDEN,
        "A link is needed",
        "This address starts a new consent only from a one-time link (a `reauthorization_required` notice carries one) or with the admin token. Nothing was started.",
    )
    .with_action("open the link of the notice; or send `X-Admin-Token: $ADMIN_API_TOKEN` with the request")
    .with_code("FORBIDDEN")
}

pub fn no_account_named() -> Page {
    Page::new(
        StatusCode::BAD_REQUEST,
        "No account named",
        "This address must name the account to reconnect (`?account=NAME`). Nothing was started.",
    )
    .with_action("open the link exactly as the notice gave it")
    .with_code("BAD_REQUEST")
}

pub fn no_such_account(account: &str) -> Page {
    Page::new(
        StatusCode::NOT_FOUND,
        "No such account",
        format!("There is no account {account} on this server. Nothing was started."),
    )
    .with_action("check the account's name in the address (`GET /admin/accounts` lists the server's accounts)")
    .with_code("NOT_FOUND")
}

pub fn malformed() -> Page {
    Page::new(
        StatusCode::BAD_REQUEST,
        "This address is malformed",
        "A parameter of this address is repeated or does not parse. Nothing was started.",
    )
    .with_action("open the link exactly as the notice gave it")
    .with_code("BAD_REQUEST")
}

pub fn not_started(account: &AccountName, error: &Error) -> Page {
    Page::new(
        http_status(error).0,
        "The consent could not be started",
        format!("Account {account}: {error}. Nothing was started."),
    )
    .with_action(error.action())
    .with_code(error.code())
}

pub fn declined(error: &str, description: Option<&str>) -> Page {
    let said = description
        .map(|d| format!(" ({})", crate::redact::clip(d)))
        .unwrap_or_default();
    let (title, text, code) = if error == "access_denied" {
        (
            "Consent was declined",
            format!(
                "Withings says the consent was declined{said}. Nothing was exchanged: the account stays disconnected."
            ),
            "ACCESS_DENIED",
        )
    } else {
        (
            "Withings did not give consent",
            format!(
                "Withings answered error={}{said}. Nothing was exchanged: the account stays disconnected.",
                crate::redact::clip(error)
            ),
            "CONSENT_NOT_GIVEN",
        )
    };
    Page::new(StatusCode::BAD_REQUEST, title, text)
        .with_action(
            "to reconnect the account, start again from a new link and approve the access withings-token asks for",
        )
        .with_code(code)
}

pub fn not_a_redirect(error: &Error) -> Page {
    Page::new(
        StatusCode::BAD_REQUEST,
        "Not a consent redirect",
        format!(
            "Withings sends the browser here after a consent, with a code and a state; this request is not such a redirect ({error}). Nothing was sent."
        ),
    )
    .with_action("start from the link of the notice; this address is not meant to be opened by hand")
    .with_code(error.code())
}

pub fn unknown_state() -> Page {
    Page::new(
        StatusCode::BAD_REQUEST,
        "Not a consent this server is waiting for",
        "The state of this redirect names no consent this server started: it belongs to another account, or is forged or stale. Nothing was sent to Withings.",
    )
    .with_action("start again from a new link")
    .with_code("INVALID_STATE")
}

/// The exchange failed: its error, with the code scrubbed should any text
/// quote it.
pub fn not_connected(account: &AccountName, error: &Error, code: &str) -> Page {
    if matches!(error, Error::InvalidState { .. }) {
        return unknown_state();
    }
    let action = match error {
        Error::InvalidCode { .. } => format!(
            "if this page came from opening the address again after account {account} was connected, nothing is wrong; otherwise start again from a new link (Withings' code works once, for 30 seconds)"
        ),
        _ => error.action(),
    };
    Page::new(
        http_status(error).0,
        format!("Account {account} was not connected"),
        crate::redact::scrub(&error.to_string(), &[code]),
    )
    .with_action(action)
    .with_code(error.code())
}
