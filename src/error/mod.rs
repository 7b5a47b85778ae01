//! The one error type callers match on. Every variant knows its stable code,
//! its exit code and the next thing a person (or an agent) should do; the
//! exit-code table of docs/troubleshooting.md and the man page is generated from the same
//! `match`es, so they cannot drift apart.

use std::path::PathBuf;

/// Re-authorisation is the only cure for a refused grant.
const REAUTHORISE: &str =
    "re-authorise: run `withings-token auth-url`, open the URL, then `withings-token exchange '<redirect URL>'`";
const RETRY_LATER: &str = "retry later (after 30 s or more); the stored tokens were not changed";
/// How `--server`'s peer is named in errors (`server_client`).
pub const SERVER: &str = "the withings-token server";
/// The action when that server gave no usable answer: the tokens are its.
const CHECK_SERVER: &str = "check that `withings-token serve` runs at the URL --server (or WITHINGS_TOKEN_SERVER) names and listens there (its log says why it stopped), then retry; nothing was changed on this side";
/// The action for EMFILE/ENFILE: the limit is the fault, not the disk.
pub const OUT_OF_DESCRIPTORS: &str = "raise the limit on open files (`ulimit -n 1024` in the shell, LimitNOFILE= in a systemd unit) and run the command again";
/// The action for EFBIG: the process's file-size limit, not the disk.
pub const FILE_SIZE_LIMIT: &str = "raise the file-size limit (`ulimit -f unlimited` in the shell, LimitFSIZE= in a systemd unit) and run the command again";

/// The action for an I/O error that a process limit caused (open files,
/// file size) rather than the disk or the permissions, if it is one.
pub fn limit_action(e: &std::io::Error) -> Option<&'static str> {
    if crate::fsutil::out_of_descriptors(e) {
        return Some(OUT_OF_DESCRIPTORS);
    }
    // EFBIG: `ulimit -f`.
    (e.raw_os_error() == Some(27)).then_some(FILE_SIZE_LIMIT)
}

/// The `what` of a refusal by this tool's own upstream budget (`budget`),
/// which [`Error::action`] tells apart from Withings' rate limiting; here,
/// with the errors, so that they need not import the budget.
pub const UPSTREAM_BUDGET: &str = "this tool's upstream budget";
/// The longest a request waits for the upstream budget before that refusal.
pub const BUDGET_MAX_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// A setting is missing or invalid, or a file cannot be used.
    #[error("{message}")]
    Config { message: String, action: String },

    /// The store file exists but is not a store this binary can read.
    #[error("token store {place} is unreadable: {reason}")]
    CorruptStore { place: String, reason: String },

    /// Withings refused the refresh token.
    #[error("Withings refused the refresh token: {detail}")]
    InvalidRefreshToken { detail: String },

    /// Withings refused the authorization code (reused, expired or foreign).
    #[error("Withings refused the authorization code: {detail}")]
    InvalidCode { detail: String },

    /// Withings refused the access token (`validate`); the refresh token
    /// may still be good.
    #[error("Withings refused the access token: {detail}")]
    InvalidAccessToken { detail: String },

    /// The redirect URL carries a state this tool did not issue.
    #[error("{detail}")]
    InvalidState { detail: String },

    /// A consent's set belongs to another Withings user than the account
    /// holds, or to one another account holds; it was not saved.
    #[error("{detail}")]
    AccountMismatch { detail: String, action: String },

    /// `login`: the store no longer holds the state this login issued
    /// (another `auth-url` or `login` replaced it); nothing was sent.
    #[error("{detail}")]
    InvalidLoginState { detail: String },

    /// No answer at all after the retries (connection refused, timeouts).
    #[error("could not reach {what} after {attempts} attempt(s): {detail}")]
    Network {
        what: &'static str,
        attempts: u32,
        detail: String,
    },

    /// Withings (or Railway) asked us to slow down for longer than we wait.
    #[error("{what} is rate limiting this client: {detail}")]
    RateLimited {
        what: &'static str,
        detail: String,
        /// How long the server asked us to wait, when it said.
        wait: Option<std::time::Duration>,
    },

    /// An answer came back but it was not a usable one.
    #[error("{what} gave no usable answer after {attempts} attempt(s): {detail}")]
    Upstream {
        what: &'static str,
        attempts: u32,
        detail: String,
    },

    /// Another process held the store lock for longer than `--lock-timeout`.
    #[error("the lock on {place} was not free within {}: other withings-token runs held it", crate::duration::humanize(*waited))]
    LockTimeout { place: String, waited: std::time::Duration },

    /// The store (or its lease) cannot be reached; nothing was sent.
    #[error("the token store is unavailable: {detail}")]
    StoreUnavailable { detail: String },

    /// Withings answered, but the store could not take the new set: it was
    /// kept in the rescue file `kept` (which the next run saves into the
    /// store), or nowhere. Code and exit status are the cause's.
    #[error("{cause}; {}", match kept {
        Some(place) => format!("the new set is kept in {place}, and the next refresh saves it into the store"),
        None => "the new set could not be kept anywhere either".to_owned(),
    })]
    NotSaved { cause: Box<Error>, kept: Option<String> },

    /// A shared store kept another run's set over this run's answer (this
    /// run's lease had run out); the answer was never used.
    #[error("this run's new set was not saved: {detail}")]
    AnswerDropped { detail: String },
    /// `login`: no browser came back to the loopback callback within
    /// `--wait`; nothing was sent to Withings.
    #[error("no browser came back to {redirect_uri} within {waited}; nothing was sent to Withings")]
    LoginTimeout { redirect_uri: String, waited: String },

    /// New tokens are saved, but Railway did not take them.
    #[error("Railway was not updated: {detail}")]
    RailwayUpdateFailed { detail: String },

    /// New tokens are saved, but the env file still holds the old ones.
    #[error("env file {path} was not updated: {detail}")]
    EnvFileUpdateFailed { path: PathBuf, detail: String },

    /// The report could not be written to stdout (closed pipe, full disk,
    /// a value that cannot be written as an env line).
    #[error("the output could not be written: {detail}")]
    OutputFailed { detail: String },

    /// A held SIGINT/SIGTERM/SIGHUP (or `serve` stopping) stopped the run
    /// before `what` answered (exit 128 + n). Withings: nothing was changed.
    /// Railway: the set was saved first (a copy is written only after the
    /// save), so only this copy of it is missing.
    #[error("interrupted by signal {signal} before {what} answered{}", match *what {
        "Withings" => "; nothing more was sent",
        _ => " (the token set is saved in the store); nothing more was sent to Railway",
    })]
    Interrupted { signal: i32, what: &'static str },

    /// `serve`: a refresh of the same set failed moments ago, and none is
    /// sent again before its backoff ends, `retry_in` from now; `cause` is
    /// that failure. Code and exit status are the cause's.
    #[error("{cause}; not sent again before {} from now (the server backs off while Withings fails)", crate::duration::humanize(*retry_in))]
    HeldBack {
        cause: Box<Error>,
        retry_in: std::time::Duration,
    },

    /// `exec`'s command could not be started (exit 127 not found, 126 not
    /// executable, as a shell says it).
    #[error("cannot run `{program}`: {detail}")]
    CommandNotStarted {
        program: String,
        detail: String,
        not_found: bool,
    },

    /// A `--server` answered with its JSON error object: the same code,
    /// message and action as a local run would give, and its exit code.
    #[error("{message}")]
    Remote {
        code: &'static str,
        message: String,
        action: String,
    },

    /// A bug: something that should not happen did.
    #[error("internal error: {0:#}")]
    Internal(std::sync::Arc<anyhow::Error>),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A bug's cause is shared, not copied: `serve` answers every request that
/// waited for a failed refresh with a clone of its error.
impl From<anyhow::Error> for Error {
    fn from(e: anyhow::Error) -> Error {
        Error::Internal(std::sync::Arc::new(e))
    }
}

impl Error {
    /// A bug: `cause` should not have happened.
    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        Error::from(cause.into())
    }

    pub fn config(message: impl Into<String>, action: impl Into<String>) -> Self {
        Error::Config {
            message: message.into(),
            action: action.into(),
        }
    }

    /// A required variable is absent; `needed_for` says which command needs it.
    pub fn missing_setting(var: &str, needed_for: &str) -> Self {
        Error::config(
            format!("{var} is not set ({needed_for} needs it)"),
            format!("set {var} in the environment or in the env file (`--env-file`, default ./.env)"),
        )
    }

    /// The stable, documented code that scripts match on.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Config { .. } | Error::CorruptStore { .. } => "CONFIGURATION_ERROR",
            Error::InvalidRefreshToken { .. } => "INVALID_REFRESH_TOKEN",
            Error::InvalidCode { .. } => "INVALID_CODE",
            Error::InvalidAccessToken { .. } => "INVALID_ACCESS_TOKEN",
            Error::InvalidState { .. } | Error::InvalidLoginState { .. } => "INVALID_STATE",
            Error::AccountMismatch { .. } => "ACCOUNT_MISMATCH",
            Error::Network { .. } => "NETWORK_ERROR",
            Error::RateLimited { .. } => "RATE_LIMITED",
            Error::Upstream { .. } => "UPSTREAM_ERROR",
            Error::LockTimeout { .. } => "LOCK_TIMEOUT",
            Error::StoreUnavailable { .. } | Error::AnswerDropped { .. } => "STORE_UNAVAILABLE",
            Error::NotSaved { cause, .. } | Error::HeldBack { cause, .. } => cause.code(),
            Error::LoginTimeout { .. } => "LOGIN_TIMEOUT",
            Error::RailwayUpdateFailed { .. } => "RAILWAY_UPDATE_FAILED",
            Error::EnvFileUpdateFailed { .. } => "ENV_FILE_UPDATE_FAILED",
            Error::OutputFailed { .. } => "OUTPUT_FAILED",
            Error::Interrupted { .. } => "INTERRUPTED",
            Error::CommandNotStarted { not_found: true, .. } => "COMMAND_NOT_FOUND",
            Error::CommandNotStarted { not_found: false, .. } => "COMMAND_NOT_EXECUTABLE",
            Error::Remote { code, .. } => code,
            Error::Internal(_) => "INTERNAL_ERROR",
        }
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Internal(_) => 1,
            Error::NotSaved { cause, .. } | Error::HeldBack { cause, .. } => cause.exit_code(),
            Error::Config { .. } | Error::CorruptStore { .. } => 3,
            Error::InvalidRefreshToken { .. }
            | Error::InvalidCode { .. }
            | Error::InvalidState { .. }
            | Error::InvalidLoginState { .. }
            | Error::AccountMismatch { .. }
            | Error::InvalidAccessToken { .. } => 4,
            Error::Network { .. }
            | Error::RateLimited { .. }
            | Error::Upstream { .. }
            | Error::LockTimeout { .. }
            | Error::StoreUnavailable { .. }
            | Error::AnswerDropped { .. }
            | Error::LoginTimeout { .. } => 5,
            Error::RailwayUpdateFailed { .. } | Error::EnvFileUpdateFailed { .. } | Error::OutputFailed { .. } => 6,
            Error::Interrupted { signal, .. } => Status::Signalled(*signal).exit_code(),
            Error::CommandNotStarted { not_found: true, .. } => 127,
            Error::CommandNotStarted { not_found: false, .. } => 126,
            Error::Remote { code, .. } => remote_exit_code(code),
        }
    }

    /// What to do next, naming the command in backticks.
    pub fn action(&self) -> String {
        match self {
            Error::Config { action, .. } | Error::AccountMismatch { action, .. } => action.clone(),
            Error::NotSaved { cause, kept: Some(place) } => format!(
                "{}; then run `withings-token refresh --if-needed`, which saves the set kept in {place} into the store first (the stored refresh token stays valid meanwhile: the new set was never used)",
                cause.action()
            ),
            Error::NotSaved { cause, kept: None } => cause.action(),
            Error::CorruptStore { place, .. } => format!(
                "inspect or move {place} aside (it was left untouched), then seed it again with `withings-token exchange` or WITHINGS_REFRESH_TOKEN"
            ),
            Error::InvalidRefreshToken { .. } | Error::InvalidCode { .. } => REAUTHORISE.to_owned(),
            Error::InvalidAccessToken { .. } => {
                "run `withings-token refresh` for a new access token (or `withings-token validate --refresh-if-invalid`); re-authorise only if that refresh is refused".to_owned()
            }
            Error::InvalidState { .. } => {
                "run `withings-token auth-url` again and use the redirect URL of that consent (or `withings-token login`, which does both)".to_owned()
            }
            Error::InvalidLoginState { .. } => {
                "run `withings-token login` again, and no other `auth-url` or `login` for this store until it ends; the stored tokens were not changed".to_owned()
            }
            Error::Network { what: SERVER, .. } | Error::Upstream { what: SERVER, .. } => CHECK_SERVER.to_owned(),
            Error::Network { .. } | Error::Upstream { .. } | Error::StoreUnavailable { .. } => RETRY_LATER.to_owned(),
            Error::AnswerDropped { .. } => {
                "nothing to do: the store keeps the other run's set (`withings-token status` shows it), and this run's answer was never used, so no live token was lost".to_owned()
            }
            Error::RateLimited {
                what: UPSTREAM_BUDGET,
                wait,
                ..
            } => format!(
                "retry in {} or later; if Withings allows your app more than 120 requests a minute, raise `--upstream-budget` (WITHINGS_TOKEN_UPSTREAM_BUDGET); the stored tokens were not changed",
                crate::duration::humanize(wait.unwrap_or(BUDGET_MAX_WAIT))
            ),
            Error::RateLimited { .. } => {
                "wait as long as the message says, then retry; the stored tokens were not changed".to_owned()
            }
            Error::LockTimeout { .. } => {
                "retry later, or raise `--lock-timeout`; the holder may be refreshing or delivering the same tokens, and nothing was sent".to_owned()
            }
            Error::LoginTimeout { .. } => {
                "run `withings-token login` again and approve in the browser within `--wait` (or raise it); the stored tokens were not changed. If no browser can reach that address (a server, a container), use `withings-token auth-url`, then `withings-token exchange '<redirect URL>'`".to_owned()
            }
            Error::RailwayUpdateFailed { .. } => {
                "the new set is safe in the store; fix the Railway token/ids (RAILWAY_TOKEN or RAILWAY_API_TOKEN, RAILWAY_PROJECT_ID, RAILWAY_SERVICE_ID) if they are wrong, then run `withings-token railway-sync` (if Railway was only unavailable, the next `withings-token refresh --if-needed` catches up)".to_owned()
            }
            Error::EnvFileUpdateFailed { .. } => {
                "the new set is safe in the store; fix the env file (permissions, disk), then run `withings-token refresh --if-needed` to bring it up to date without rotating (a token with a control character is never written to an env file; it is kept, JSON-escaped, in the store `withings-token status` names)".to_owned()
            }
            Error::OutputFailed { .. } => {
                "the new set (if any) is safe in the store; if stdout was the problem, print it again with `withings-token export` to a writable place (a value with a control character cannot be an env line at all; it is kept, JSON-escaped, in the store `withings-token status` names)".to_owned()
            }
            Error::Interrupted { what: "Withings", .. } => {
                "the stored tokens were not changed (the request in flight got no usable answer); run the command again".to_owned()
            }
            Error::Interrupted { .. } => {
                "nothing is lost: the next `withings-token refresh --if-needed` (or `withings-token railway-sync`) brings Railway up to date".to_owned()
            }
            Error::HeldBack { retry_in, .. } => format!(
                "retry in {} or later (the answer's `Retry-After`); the stored tokens were not changed",
                crate::duration::humanize(*retry_in)
            ),
            Error::CommandNotStarted { .. } => {
                "check the command's name and PATH (or its execute permission); the token set is safe in the store".to_owned()
            }
            Error::Remote { action, .. } => action.clone(),
            Error::Internal(_) => "this is a bug: report it with the command you ran and `-vvv` output".to_owned(),
        }
    }
}

/// The exit code of a server's error code, by the exit table; the admin
/// API's own codes (a request it refused) are usage-like configuration
/// errors (3), and a code this binary does not know is an upstream one (5).
fn remote_exit_code(code: &str) -> u8 {
    EXIT_STATUS_TABLE
        .iter()
        .find(|row| row.exit < 128 && row.codes.split(", ").any(|c| c == code))
        .map(|row| row.exit)
        .unwrap_or(match code {
            // The Withings proxy's own: Withings was slow or said too much.
            // A write the proxy did not send again is to be sent again.
            "UPSTREAM_ERROR" | "UPSTREAM_TIMEOUT" | "ANSWER_TOO_LARGE" | "WRITE_NOT_RETRIED" => 5,
            _ => 3,
        })
}

/// How a command that ran to its end finished. A non-zero status here is
/// not an error: it comes with a report that was already printed (xh's
/// `run() -> Result<ExitCode>`); errors travel as [`Error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Success,
    /// The new set is saved in the store, but a copy of it is stale (exit 6).
    StaleCopy,
    /// `status --check`: a refresh is due or the token expired (exit 7).
    RefreshDue,
    /// `railway-sync --check`: Railway's variables differ from the store (exit 8).
    Drift,
    /// A deferred SIGINT/SIGTERM arrived; the set was saved first (128 + n).
    Signalled(i32),
    /// A report that carries its own error (`validate`: invalid, unknown)
    /// was printed; the run exits with that error's code.
    Failed(u8),
}

impl Status {
    pub fn exit_code(self) -> u8 {
        match self {
            Status::Success => 0,
            Status::StaleCopy => 6,
            Status::RefreshDue => 7,
            Status::Drift => 8,
            Status::Signalled(n) => u8::try_from(128 + n).unwrap_or(u8::MAX),
            Status::Failed(exit) => exit,
        }
    }

    /// The more serious of the statuses of two accounts' runs, by
    /// [`SEVERITY`] (not by the larger number: a refused grant, which needs
    /// a person, outranks a stale copy).
    pub fn most_serious(self, other: Status) -> Status {
        if severity_rank(other.exit_code()) < severity_rank(self.exit_code()) {
            other
        } else {
            self
        }
    }

    /// The more serious of two statuses (a stale copy beats success).
    pub fn worst(self, other: Status) -> Status {
        if other.exit_code() > self.exit_code() {
            other
        } else {
            self
        }
    }
}

/// The exit codes from most to least serious, for a run over several
/// accounts (`refresh --all`, `status` of every account), whose exit is
/// its most serious account's: a signal (128+n) first, then a bug, a
/// refused grant (someone must re-authorise), configuration, usage,
/// the transient failures (retry later), a stale copy, a refresh due, a
/// drift, and success last.
pub const SEVERITY: [u8; 8] = [1, 4, 3, 2, 5, 6, 7, 8];

fn severity_rank(exit: u8) -> usize {
    match exit {
        0 => SEVERITY.len() + 1,
        128.. => 0,
        exit => SEVERITY
            .iter()
            .position(|e| *e == exit)
            .map_or(SEVERITY.len(), |at| at + 1),
    }
}

/// One row of the exit-code table, shared by docs/troubleshooting.md and the man page.
pub struct ExitStatusRow {
    pub exit: u8,
    pub codes: &'static str,
    pub meaning: &'static str,
}

pub const EXIT_STATUS_TABLE: &[ExitStatusRow] = &[
    ExitStatusRow {
        exit: 0,
        codes: "SUCCESS",
        meaning: "done (also `refresh --if-needed` with nothing due)",
    },
    ExitStatusRow {
        exit: 1,
        codes: "INTERNAL_ERROR",
        meaning: "a bug; report it",
    },
    ExitStatusRow {
        exit: 2,
        codes: "USAGE_ERROR",
        meaning: "bad flags or arguments; see `--help`",
    },
    ExitStatusRow {
        exit: 3,
        codes: "CONFIGURATION_ERROR",
        meaning: "missing or invalid setting, unreadable or corrupt store or env file, no token to work with",
    },
    ExitStatusRow {
        exit: 4,
        codes: "INVALID_REFRESH_TOKEN, INVALID_CODE, INVALID_STATE, INVALID_ACCESS_TOKEN, ACCOUNT_MISMATCH",
        meaning: "Withings refused the grant; re-authorise with `auth-url`, then `exchange` (`validate`: the access token was refused; run `refresh`; ACCOUNT_MISMATCH: the consent was another person's than the account's, nothing saved; `--replace` to mean it)",
    },
    ExitStatusRow {
        exit: 5,
        codes: "NETWORK_ERROR, RATE_LIMITED, UPSTREAM_ERROR, LOCK_TIMEOUT, STORE_UNAVAILABLE, LOGIN_TIMEOUT",
        meaning: "no usable answer after the retries, the store's lock could not be had, or (`login`) no browser came back within `--wait`; retry later, nothing was changed",
    },
    ExitStatusRow {
        exit: 6,
        codes: "RAILWAY_UPDATE_FAILED, ENV_FILE_UPDATE_FAILED, OUTPUT_FAILED",
        meaning: "the new set is saved in the store, but a copy of it is stale (Railway, the env file, or stdout); the action names the command that repairs it",
    },
    ExitStatusRow {
        exit: 7,
        codes: "REFRESH_DUE",
        meaning: "`status --check` only: a refresh is due or the token expired",
    },
    ExitStatusRow {
        exit: 8,
        codes: "DRIFT",
        meaning: "`railway-sync --check` only: Railway's variables differ from the store (or one is missing); run `railway-sync`, or `pull --from railway` when Railway is newer",
    },
    ExitStatusRow {
        exit: 126,
        codes: "COMMAND_NOT_EXECUTABLE",
        meaning: "`exec` only: the command exists but cannot be run",
    },
    ExitStatusRow {
        exit: 127,
        codes: "COMMAND_NOT_FOUND",
        meaning: "`exec` only: the command was not found (otherwise `exec` exits with the command's own code)",
    },
    ExitStatusRow {
        exit: 129,
        codes: "INTERRUPTED",
        meaning: "SIGHUP; held like SIGINT",
    },
    ExitStatusRow {
        exit: 130,
        codes: "INTERRUPTED",
        meaning: "SIGINT; one that arrives while Withings is answering is held: the answer is saved first, nothing more is sent, a second signal stops at once",
    },
    ExitStatusRow {
        exit: 143,
        codes: "INTERRUPTED",
        meaning: "SIGTERM; held like SIGINT",
    },
];

/// The exit-code table of docs/troubleshooting.md, generated from [`EXIT_STATUS_TABLE`].
pub fn exit_status_markdown() -> String {
    let mut table = String::from("| exit | code | meaning |\n|---|---|---|\n");
    for row in EXIT_STATUS_TABLE {
        table.push_str(&format!("| {} | {} | {} |\n", row.exit, row.codes, row.meaning));
    }
    table
}

#[cfg(test)]
mod tests;
