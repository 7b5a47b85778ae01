//! `login`: the loopback OAuth flow, for a person at a machine with a
//! browser. It listens on loopback, sends the person to the consent page
//! (the URL `auth-url` makes, its state kept in the store), catches the
//! redirect there and ends exactly as `exchange` does: the same state check
//! before anything is sent, the same save, copies and report. The browser
//! gets a short page that never carries a token or a code. The flow is the
//! core's (`consent::loopback`); this command plans the callback, shows
//! the URL (and opens a browser), and prints the report.
//!
//! Withings sends the browser only to a registered callback, so the one
//! used here must be registered too; where it cannot be (a server without
//! a browser), `auth-url` + `exchange` remain the way.

use std::process::{Command as Process, Stdio};
use std::time::Duration;

use clap::Args;

use crate::cli::{DeliveryArgs, parse_duration};
use crate::consent::callback::{Callback, plan_callback};
use crate::consent::loopback::{self, LoginRequest, Parties};
use crate::copies;
use crate::error::{Error, Result, Status};
use crate::http::{HttpClient, block_on};
use crate::output::Output;
use crate::redact::visible;
use crate::settings::Settings;

/// A person approves within minutes; beyond an hour `--wait` is a typo.
const MAX_WAIT: Duration = Duration::from_secs(3600);

/// Log in from this machine: open the consent page, catch the redirect on loopback, store the tokens
#[derive(Debug, Args)]
#[command(
    after_help = "Listens on loopback for Withings' redirect. The callback is WITHINGS_REDIRECT_URI when that is a loopback \
http:// URL (http://127.0.0.1:P/..., http://localhost:P/...; its port and path are used), else \
http://127.0.0.1:PORT/callback. Withings redirects only to a registered callback: register exactly that one with your \
Withings app. Only a redirect carrying this login's state ends the wait: a request with another or no state, or naming \
another Host than the listener's, gets an error page and the wait goes on. Then the \
tokens are stored, the env file and Railway updated and the report printed as `exchange` does. No browser is opened \
without DISPLAY or WAYLAND_DISPLAY (macOS: always). Not available with --server; there, or where no browser can \
reach this machine, use `auth-url`, then `exchange`. Over ssh, forward the port from the laptop first \
(`ssh -L 8585:127.0.0.1:8585 HOST`) and pass --no-browser.\n\n\
Examples:\n  withings-token login\n  withings-token login --port 9000 --no-railway\n  withings-token login --no-browser --wait 10m --json"
)]
pub struct LoginArgs {
    /// Loopback port to listen on [default: the port of a loopback WITHINGS_REDIRECT_URI, else 8585]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub port: Option<u16>,

    /// Do not open a browser; only print the URL to open
    #[arg(long)]
    pub no_browser: bool,

    /// How long to wait for the browser to come back (more than 0, at most 1h)
    #[arg(long, value_parser = parse_wait, default_value = "5m", value_name = "DURATION")]
    pub wait: Duration,

    /// Open Withings' demo account instead of a real one (`mode=demo`)
    #[arg(long)]
    pub demo_account: bool,

    /// Save the set even when it is another Withings user's than the account holds, or one another account holds (says what it replaced)
    #[arg(long)]
    pub replace: bool,

    #[command(flatten)]
    pub delivery: DeliveryArgs,
}

fn parse_wait(text: &str) -> std::result::Result<Duration, String> {
    let d = parse_duration(text)?;
    if d.is_zero() || d > MAX_WAIT {
        return Err(format!("`{}` is out of range: more than 0, at most 1h", text.trim()));
    }
    Ok(d)
}

pub fn run(args: &LoginArgs, settings: &Settings, out: &Output) -> Result<Status> {
    if settings.remote.is_some() {
        return Err(Error::config(
            "`login` is not available with --server (WITHINGS_TOKEN_SERVER): the browser would come back to this machine, while the server keeps the state",
            "with a server, run `withings-token auth-url`, then `withings-token exchange '<redirect URL>'`; or run `login` without --server where the store is",
        ));
    }
    let callback = plan_callback(args.port, settings.redirect_uri.as_deref())?;
    if let (false, Some(configured)) = (callback.from_setting, &settings.redirect_uri) {
        out.note(&format!(
            "note: WITHINGS_REDIRECT_URI ({}) is not a loopback URL, so `login` uses {}; that callback must be registered with your Withings app too",
            visible(configured),
            callback.redirect_uri
        ));
    }
    // `auth-url`'s URL and the code exchange both send this redirect URI.
    let mut settings = settings.clone();
    settings.redirect_uri = Some(callback.redirect_uri.clone());
    let targets = copies::targets(&settings, args.delivery.choices())?;
    let http = HttpClient::new(settings.http)?;
    let client = crate::withings::client_for(&settings, &http, "login")?;
    let store = crate::store::open(&settings)?;
    let client = client.sharing_budget_through(store.as_ref());
    let parties = Parties {
        settings: &settings,
        client: &client,
        store: store.as_ref(),
    };
    let request = LoginRequest {
        demo_account: args.demo_account,
        wait: args.wait,
        replace: crate::consent::Replace::when(args.replace),
    };
    let shown = |url: &str| invite(out, url, &callback, args.no_browser);
    block_on(async {
        let rotation = loopback::login(&request, &callback, &parties, shown, out).await?;
        super::deliver_and_report(&settings, &http, store.as_ref(), &targets, rotation, out).await
    })?
}

/// Prints the URL (even under `--quiet`: the run needs it) and opens it
/// when a browser can be shown; a browser that does not open is only said.
fn invite(out: &Output, url: &str, callback: &Callback, no_browser: bool) {
    out.instruction(&format!(
        "Open this URL in a browser and approve; withings-token waits for the redirect to {}:\n  {url}",
        callback.redirect_uri
    ));
    if no_browser {
        return;
    }
    if !crate::settings::graphical_session() {
        out.note("note: no browser opened (neither DISPLAY nor WAYLAND_DISPLAY is set): open the URL above yourself");
        return;
    }
    let opener = if cfg!(target_os = "macos") { "open" } else { "xdg-open" };
    let spawned = Process::new(opener)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    match spawned {
        Err(e) => out.note(&format!(
            "warning: could not open a browser ({opener}: {e}); open the URL above yourself"
        )),
        // `xdg-open` may run as long as the browser does: reaped aside.
        Ok(mut child) => {
            let _ = std::thread::Builder::new().name("browser".into()).spawn(move || {
                if let Ok(status) = child.wait()
                    && !status.success()
                {
                    tracing::warn!("{opener} could not open a browser ({status}); open the URL above yourself");
                }
            });
        }
    }
}

/// A login's waits are spinners (for a person at a terminal), its notes
/// the output's notes.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_is_bounded() {
        assert_eq!(parse_wait("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_wait("1h"), Ok(MAX_WAIT));
        for bad in ["0s", "61m", "x"] {
            assert!(parse_wait(bad).is_err(), "{bad}");
        }
    }
}
