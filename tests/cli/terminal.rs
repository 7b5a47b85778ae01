//! Progress and terminals. On pipes and files the output is plain text: no
//! escape code and no carriage return, whatever `TERM` says. On a terminal,
//! the spinner's frames (on stderr, only while the network is asked, never
//! under `--quiet` or `--json`) are the only codes this program writes;
//! colour comes only from clap's own help and usage errors, and `NO_COLOR`
//! turns that off too.
//!
//! The terminal is a pseudo-terminal made by util-linux `script` (in
//! Debian's base system, package bsdutils). Nothing here asserts timing:
//! whether the spinner got to draw a frame before the answer came does not
//! change what is checked.

use crate::support::*;

use std::path::Path;
use std::time::Duration;

/// How long the fake Withings takes to answer on the spinner tests: long
/// enough for a frame or two, never asserted.
const SLOW: Duration = Duration::from_millis(400);
/// Paces for those runs: the default `FAST` timeout is shorter than `SLOW`.
const PATIENT: [&str; 4] = ["--retry-delay", "0s", "--timeout", "10s"];

const SPINNER_TEXT: &str = "refreshing the Withings tokens";

/// A run's output holds no escape code and no carriage return.
#[track_caller]
fn assert_plain(what: &str, bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    assert!(!bytes.contains(&0x1b), "{what} holds an escape code:\n{text:?}");
    assert!(!bytes.contains(&b'\r'), "{what} holds a carriage return:\n{text:?}");
}

#[track_caller]
fn assert_run_plain(run: &Run) {
    assert_plain("stdout", run.stdout.as_bytes());
    assert_plain("stderr", run.stderr.as_bytes());
}

/// Every escape sequence in `bytes`: ESC and what follows up to the final
/// byte of a CSI sequence (or the one byte after ESC otherwise).
fn escape_sequences(bytes: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    let mut i = 0;
    while let Some(start) = bytes[i..].iter().position(|&b| b == 0x1b).map(|p| p + i) {
        let mut end = start + 1;
        if bytes.get(end) == Some(&b'[') {
            end += 1;
            while end < bytes.len() && !(0x40..=0x7e).contains(&bytes[end]) {
                end += 1;
            }
        }
        end = (end + 1).min(bytes.len());
        found.push(String::from_utf8_lossy(&bytes[start..end]).into_owned());
        i = end;
    }
    found
}

/// No colour: no SGR sequence (`ESC [ ... m`) anywhere.
#[track_caller]
fn assert_no_colour(what: &str, bytes: &[u8]) {
    let colours: Vec<String> = escape_sequences(bytes)
        .into_iter()
        .filter(|seq| seq.starts_with("\x1b[") && seq.ends_with('m'))
        .collect();
    assert!(
        colours.is_empty(),
        "{what} is coloured {colours:?}:\n{:?}",
        String::from_utf8_lossy(bytes)
    );
}

// ---------------------------------------------------------------------------
// Pipes: the kit's default

/// `TERM` says the terminal could do colour: the pipe alone must keep the
/// output plain.
fn colour_capable(env: &mut TestEnv) -> &mut TestEnv {
    env.set("TERM", "xterm-256color")
}

#[test]
fn refresh_on_pipes_writes_no_escape_codes_nor_carriage_returns() {
    let (withings, issued) = withings_always_rotating();
    let mut env = given_expired_store(&withings.uri());
    colour_capable(&mut env);
    for args in [
        &["refresh"][..],
        &["refresh", "-vvv"],
        &["refresh", "--json"],
        &["refresh", "--output-env"],
        &["refresh", "--log-format", "json", "-vv"],
    ] {
        let run = env.run_fast(args);
        assert_eq!(run.code, 0, "{args:?}: {run:?}");
        assert_run_plain(&run);
    }
    assert_eq!(issued.load(std::sync::atomic::Ordering::SeqCst), 5);
}

#[test]
fn status_and_its_logs_on_pipes_are_plain() {
    let mut env = given_store_expiring_in(2 * 3600);
    colour_capable(&mut env);
    for args in [
        &["status"][..],
        &["status", "-v"],
        &["status", "-vvv"],
        &["status", "--json"],
        &["status", "--check", "--buffer", "3h"],
        &["--help"],
        &["status", "--help"],
    ] {
        let run = env.run(args);
        assert!(run.code == 0 || run.code == 7, "{args:?}: {run:?}");
        assert_run_plain(&run);
    }
}

#[test]
fn failures_on_pipes_are_plain() {
    let withings = withings_answering(refused_refresh()).times(1);
    let mut env = given_expired_store(&withings.uri());
    colour_capable(&mut env);
    let refused = env.run_fast(&["refresh", "-v"]);
    assert_eq!(refused.code, 4, "{refused:?}");
    assert!(refused.stderr.contains("[INVALID_REFRESH_TOKEN]"), "{refused:?}");
    assert_run_plain(&refused);

    let usage = env.run(&["status", "--no-such-flag"]);
    assert_eq!(usage.code, 2, "{usage:?}");
    assert_run_plain(&usage);
    let usage_json = env.run(&["status", "--no-such-flag", "--json"]);
    assert_eq!(usage_json.code, 2, "{usage_json:?}");
    assert_run_plain(&usage_json);

    env.write_store_bytes(b"{ not json");
    let corrupt = env.run(&["status", "-vv"]);
    assert_eq!(corrupt.code, 3, "{corrupt:?}");
    assert_run_plain(&corrupt);
}

// ---------------------------------------------------------------------------
// A pseudo-terminal

/// Which of the binary's streams is the terminal; another goes to a file.
#[derive(Clone, Copy)]
enum Terminal {
    Stdout,
    Stderr,
    Both,
}

struct TerminalRun {
    code: i32,
    /// What the terminal received, without the tty's own CR before LF.
    terminal: Vec<u8>,
    /// The stream that was not the terminal (empty with `Both`).
    file: Vec<u8>,
}

impl std::fmt::Debug for TerminalRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- terminal\n{:?}\n--- file\n{:?}",
            self.code,
            String::from_utf8_lossy(&self.terminal),
            String::from_utf8_lossy(&self.file)
        )
    }
}

const SCRIPT: &str = "/usr/bin/script";

fn shell_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// Runs the binary with `args` on a pseudo-terminal (`script -qfec`), the
/// env's variables plus `vars`. `stty -onlcr` first: the CRs left in the
/// capture are the program's own, not the tty's translation of LF.
fn run_on_terminal(env: &TestEnv, vars: &[(&str, &str)], args: &[&str], on: Terminal) -> TerminalRun {
    let file = env.home().join("not-the-terminal");
    let mut line = format!("stty -onlcr 2>/dev/null; exec {}", shell_quote(BIN));
    for arg in args {
        line.push(' ');
        line.push_str(&shell_quote(arg));
    }
    let quoted_file = shell_quote(&file.display().to_string());
    match on {
        Terminal::Stdout => line.push_str(&format!(" 2>{quoted_file}")),
        Terminal::Stderr => line.push_str(&format!(" >{quoted_file}")),
        Terminal::Both => {}
    }
    let mut cmd = env.std_cmd_of(SCRIPT);
    cmd.args(["-qfec", &line, "/dev/null"]);
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let mut cmd = assert_cmd::Command::from_std(cmd);
    cmd.timeout(Duration::from_secs(60));
    let output = cmd.output().expect("run script");
    TerminalRun {
        code: output.status.code().expect("script exited normally"),
        terminal: output.stdout,
        file: std::fs::read(&file).unwrap_or_default(),
    }
}

/// util-linux `script` is in every Debian (bsdutils is essential): the
/// terminal tests need it, and fail saying so where it is missing.
fn need_a_terminal() {
    assert!(
        Path::new(SCRIPT).exists(),
        "{SCRIPT} (util-linux's `script`, Debian's bsdutils) is needed for a pseudo-terminal"
    );
}

const NO_COLOR: (&str, &str) = ("NO_COLOR", "1");
const XTERM: (&str, &str) = ("TERM", "xterm-256color");

#[test]
fn with_no_color_a_terminal_gets_plain_tables_logs_and_errors() {
    need_a_terminal();
    let env = given_store_expiring_in(2 * 3600);
    let table = run_on_terminal(&env, &[NO_COLOR, XTERM], &["status", "-vvv"], Terminal::Stdout);
    assert_eq!(table.code, 0, "{table:?}");
    assert!(
        String::from_utf8_lossy(&table.terminal).contains("set generation"),
        "{table:?}"
    );
    assert_plain("the table on a terminal", &table.terminal);
    assert_plain("stderr in a file", &table.file);

    let logs = run_on_terminal(&env, &[NO_COLOR, XTERM], &["status", "-vvv"], Terminal::Stderr);
    assert_eq!(logs.code, 0, "{logs:?}");
    assert!(!logs.terminal.is_empty(), "-vvv logs something: {logs:?}");
    assert_plain("the logs on a terminal", &logs.terminal);

    for args in [&["status", "--no-such-flag"][..], &["status", "--help"], &["--help"]] {
        let clap = run_on_terminal(&env, &[NO_COLOR, XTERM], args, Terminal::Both);
        assert!(clap.code == 0 || clap.code == 2, "{args:?}: {clap:?}");
        assert_plain("clap's text on a terminal under NO_COLOR", &clap.terminal);
    }

    env.write_store_bytes(b"{ not json");
    let failed = run_on_terminal(&env, &[NO_COLOR, XTERM], &["status"], Terminal::Both);
    assert_eq!(failed.code, 3, "{failed:?}");
    assert!(
        String::from_utf8_lossy(&failed.terminal).contains("[CONFIGURATION_ERROR]"),
        "{failed:?}"
    );
    assert_plain("an error on a terminal", &failed.terminal);
}

/// Without `NO_COLOR` the only colour is clap's, in its help and usage
/// errors; our tables, logs and error lines stay plain on a terminal.
#[test]
fn without_no_color_only_clap_colours_a_terminal() {
    need_a_terminal();
    let env = given_store_expiring_in(2 * 3600);
    let usage = run_on_terminal(&env, &[XTERM], &["status", "--no-such-flag"], Terminal::Stderr);
    assert_eq!(usage.code, 2, "{usage:?}");
    assert!(
        escape_sequences(&usage.terminal).iter().any(|seq| seq.ends_with('m')),
        "clap colours its usage errors on a terminal: {usage:?}"
    );
    // NO_COLOR set but empty does not count (no-color.org).
    let empty = run_on_terminal(
        &env,
        &[XTERM, ("NO_COLOR", "")],
        &["status", "--no-such-flag"],
        Terminal::Stderr,
    );
    assert!(!escape_sequences(&empty.terminal).is_empty(), "{empty:?}");

    for args in [&["status"][..], &["status", "-vvv"], &["status", "--json"]] {
        let ours = run_on_terminal(&env, &[XTERM], args, Terminal::Both);
        assert_eq!(ours.code, 0, "{args:?}: {ours:?}");
        assert_plain("our output on a terminal", &ours.terminal);
    }

    env.write_store_bytes(b"{ not json");
    let failed = run_on_terminal(&env, &[XTERM], &["status", "-v"], Terminal::Both);
    assert_eq!(failed.code, 3, "{failed:?}");
    assert_plain("our error on a terminal", &failed.terminal);
}

/// On a terminal the spinner may draw while Withings answers; whatever it
/// drew, it has no colour, it is cleared at the end, and stdout (a file
/// here) never gets any of it.
#[test]
fn the_spinner_is_the_only_code_on_a_terminal_and_is_cleared() {
    need_a_terminal();
    let withings = withings_answering(new_tokens(NEW_ACCESS, NEW_REFRESH).set_delay(SLOW)).times(1);
    let env = given_expired_store(&withings.uri());
    let args = [&["refresh"][..], &PATIENT].concat();
    let run = run_on_terminal(&env, &[NO_COLOR, XTERM], &args, Terminal::Stderr);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(String::from_utf8_lossy(&run.file).contains("refreshed"), "{run:?}");
    assert_plain("stdout in a file", &run.file);
    assert_no_colour("the spinner", &run.terminal);
    for seq in escape_sequences(&run.terminal) {
        // The spinner's cursor and erase codes (today only `ESC [ 2 K`).
        assert!(
            seq.starts_with("\x1b[") && !seq.ends_with('m'),
            "{seq:?} is not the spinner's: {run:?}"
        );
    }
    let screen = String::from_utf8_lossy(&run.terminal);
    let last_frame_cleared = screen.rsplit("\x1b[2K").next().unwrap_or_default();
    assert!(
        !last_frame_cleared.contains(SPINNER_TEXT),
        "the spinner is left on screen: {run:?}"
    );
}

/// stdout and stderr on one terminal: the report starts on a line of its
/// own, never glued to a spinner frame.
#[test]
fn the_report_is_not_glued_to_the_spinner() {
    need_a_terminal();
    let withings = withings_answering(new_tokens(NEW_ACCESS, NEW_REFRESH).set_delay(SLOW)).times(1);
    let env = given_expired_store(&withings.uri());
    let args = [&["refresh"][..], &PATIENT].concat();
    let run = run_on_terminal(&env, &[XTERM], &args, Terminal::Both);
    assert_eq!(run.code, 0, "{run:?}");
    let screen = String::from_utf8_lossy(&run.terminal).into_owned();
    let corner = screen.find('┌').unwrap_or_else(|| panic!("no table: {run:?}"));
    let before = &screen[..corner];
    assert!(
        before.is_empty() || before.ends_with('\n') || before.ends_with("\x1b[2K"),
        "the table does not start a line: {run:?}"
    );
    let after = &screen[corner..];
    assert!(
        !after.contains(SPINNER_TEXT),
        "the spinner ticks after the report: {run:?}"
    );
    assert_no_colour("refresh on a terminal", &run.terminal);
}

/// `--quiet`, `--json` and a terminal that cannot move the cursor
/// (`TERM=dumb`) get no spinner at all: stderr stays plain on a terminal.
#[test]
fn quiet_json_and_dumb_terminals_get_no_spinner() {
    need_a_terminal();
    /// (arguments, variables) of one run.
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)]);
    let cases: [Case; 4] = [
        (&["refresh", "--quiet"], &[XTERM]),
        (&["refresh", "--json"], &[XTERM]),
        (&["refresh", "--output", "json"], &[XTERM]),
        (&["refresh"], &[("TERM", "dumb")]),
    ];
    let withings = withings_answering(new_tokens(NEW_ACCESS, NEW_REFRESH).set_delay(SLOW)).times(cases.len() as u64);
    for (args, vars) in cases {
        let env = given_expired_store(&withings.uri());
        let args = [args, &PATIENT].concat();
        let run = run_on_terminal(&env, vars, &args, Terminal::Stderr);
        assert_eq!(run.code, 0, "{args:?}: {run:?}");
        assert_plain("stderr on a terminal", &run.terminal);
        assert!(
            !String::from_utf8_lossy(&run.terminal).contains(SPINNER_TEXT),
            "{args:?}: {run:?}"
        );
        assert_plain("stdout in a file", &run.file);
    }
}
