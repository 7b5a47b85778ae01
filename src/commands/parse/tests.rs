use std::time::Duration;

use clap::Parser;

use super::*;
use crate::settings::OutputFormat;

fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
    Cli::try_parse_from(std::iter::once("withings-token").chain(args.iter().copied()))
}

#[test]
fn out_of_bounds_flags_are_usage_errors() {
    for args in [
        &["--timeout", "0", "status"][..],
        &["--timeout", "0s", "status"],
        &["--timeout", "0ms", "status"],
        &["--timeout", "2h", "status"],
        &["--retries", "11", "status"],
        &["--retries", "4294967295", "status"],
        &["--retry-delay", "6m", "status"],
        &["--lock-timeout", "25h", "status"],
        &["--lock-timeout", "100000000d", "status"],
        &["status", "--buffer", "100000000d"],
        &["status", "--buffer", "367d"],
        &["refresh", "--buffer", "100000000d"],
    ] {
        let err = parse(args).err().unwrap_or_else(|| panic!("{args:?} was accepted"));
        assert_eq!(err.exit_code(), 2, "{args:?}");
    }
}

/// `-o`/`--output` is the output format, except under `keygen`, where it
/// is the identity file (as `age-keygen -o`) and the format stays its
/// default.
#[test]
fn output_is_the_format_except_under_keygen_where_it_is_the_file() {
    use crate::cli::OutputFlag;
    let file = |cli: &Cli| match &cli.command {
        Command::Keygen(args) => args.output.clone(),
        _ => panic!("not keygen"),
    };
    let cli = parse(&["keygen", "-o", "json"]).unwrap();
    assert_eq!(file(&cli), Some(OutputFlag::File("json".into())));
    assert_eq!(cli.global.output_format(), OutputFormat::Table);
    assert!(!cli.global.explicit_format());

    let cli = parse(&["-o", "json", "keygen"]).unwrap();
    assert_eq!(file(&cli), Some(OutputFlag::Format(OutputFormat::Json)));
    assert_eq!(cli.global.output_format(), OutputFormat::Json);

    let cli = parse(&["--json", "keygen"]).unwrap();
    assert_eq!(file(&cli), None);
    assert_eq!(cli.global.output_format(), OutputFormat::Json);

    let cli = parse(&["status", "-o", "json"]).unwrap();
    assert_eq!(cli.global.output_format(), OutputFormat::Json);
    assert!(cli.global.explicit_format());
    assert_eq!(
        parse(&["status", "-o", "key.txt"]).err().map(|e| e.exit_code()),
        Some(2)
    );
}

#[test]
fn flags_at_their_bounds_are_accepted() {
    let cli = parse(&[
        "--timeout",
        "1h",
        "--retries",
        "10",
        "--retry-delay",
        "5m",
        "--lock-timeout",
        "24h",
        "status",
        "--buffer",
        "366d",
    ])
    .unwrap();
    assert_eq!(cli.global.retries, 10);
    let cli = parse(&[
        "--timeout",
        "1ms",
        "--retries",
        "0",
        "--retry-delay",
        "0s",
        "--lock-timeout",
        "0s",
        "status",
    ])
    .unwrap();
    assert_eq!(cli.global.lock_timeout, Duration::ZERO);
}

/// Every subcommand, at any depth, with clap's `help` left out and
/// help rendered unwrapped (the source's own line breaks).
fn every_subcommand() -> Vec<clap::Command> {
    fn walk(cmd: &clap::Command, into: &mut Vec<clap::Command>) {
        for sub in cmd.get_subcommands() {
            into.push(sub.clone());
            walk(sub, into);
        }
    }
    let mut root = command().disable_help_subcommand(true).term_width(0);
    root.build();
    let mut all = Vec::new();
    walk(&root, &mut all);
    all
}

/// The house style: every subcommand's help ends with examples, so a
/// new one cannot forget them (its man page's EXAMPLES comes from there).
#[test]
fn every_subcommand_help_ends_with_examples() {
    let all = every_subcommand();
    assert!(all.len() >= 14, "{} subcommands", all.len());
    for mut sub in all {
        let name = sub.get_display_name().unwrap_or_default().to_owned();
        let help = sub.render_long_help().to_string();
        let last = help.trim_end().rsplit("\n\n").next().unwrap_or_default();
        let examples = last
            .strip_prefix("Examples:\n")
            .unwrap_or_else(|| panic!("{name}: the help must end with an `Examples:` block:\n{help}"));
        for line in examples.lines() {
            assert!(
                line.starts_with("  ") && !line.trim().is_empty(),
                "{name}: an example is one indented command per line: {line:?}"
            );
        }
        // As it is typed, parents included (`withings-token accounts rename`).
        let typed = sub.get_bin_name().unwrap_or_default().to_owned();
        assert!(typed.starts_with("withings-token "), "{name}: typed as {typed:?}");
        assert!(
            examples.lines().any(|line| line.contains(&typed)),
            "{name}: no example runs `{typed}`:\n{examples}"
        );
    }
}

/// A subcommand built alone (the fast path of [`parse`]) is the one the
/// whole tree holds, down to every argument, once both are built.
#[test]
fn every_subcommand_is_built_alone_as_the_tree_builds_it() {
    let mut tree = command();
    tree.build();
    let names: Vec<&str> = tree
        .get_subcommands()
        .map(|s| s.get_name())
        .filter(|n| *n != "help")
        .collect();
    assert_eq!(names, SUBCOMMANDS);
    let every_global: Vec<String> = tree
        .get_arguments()
        .filter_map(|a| a.get_long())
        .map(|long| format!("--{long}"))
        .collect();
    for sub in tree.get_subcommands().filter(|s| s.get_name() != "help") {
        let mut lone = lone_tree(sub.get_name(), &every_global).unwrap();
        lone.build();
        // Its place in the root's list of commands is the one difference:
        // that list is shown only by the whole tree's help.
        let alone = lone.find_subcommand(sub.get_name()).unwrap().clone().display_order(0);
        let sub = sub.clone().display_order(0);
        assert_eq!(format!("{alone:?}"), format!("{sub:?}"), "{}", sub.get_name());
    }
}

fn argv(words: &[&str]) -> Vec<std::ffi::OsString> {
    std::iter::once("withings-token")
        .chain(words.iter().copied())
        .map(Into::into)
        .collect()
}

/// `parse` answers what the whole tree answers: the same command line,
/// or the same refusal, help or version text.
fn assert_parses_like_the_whole_tree(words: &[&str]) {
    let args = argv(words);
    let whole = Cli::try_parse_from(&args);
    for (path, answer) in [("plain", parse_plain(&args)), ("lone tree", parse_lone(&args))] {
        if let Some(ours) = answer {
            let whole = whole
                .as_ref()
                .unwrap_or_else(|e| panic!("{words:?}: only the {path} path accepts it: {e}"));
            assert_eq!(format!("{ours:?}"), format!("{whole:?}"), "{words:?} ({path})");
        }
    }
    match (super::parse(&args), whole) {
        (Ok(ours), Ok(whole)) => assert_eq!(format!("{ours:?}"), format!("{whole:?}"), "{words:?}"),
        (Err(ours), Err(whole)) => {
            assert_eq!(ours.kind(), whole.kind(), "{words:?}");
            assert_eq!(ours.to_string(), whole.to_string(), "{words:?}");
        }
        (ours, whole) => panic!("{words:?}: {ours:?} vs {whole:?}"),
    }
}

#[test]
fn lone_subcommand_parses_like_the_whole_tree() {
    for words in [
        &["status"][..],
        &["--json", "status", "--check", "--buffer", "30m"],
        &["status", "-qojson", "--store", "/tmp/s.json", "--no-env-file"],
        &["--store", "status", "refresh", "--if-needed"],
        &["--store", "refresh", "status"],
        &["--store=status", "status"],
        &["exec", "--", "status", "--json"],
        &["access-token", "--min-ttl", "4h"],
        &["refresh", "--no-railway", "--trigger-deployment"],
        &["status", "refresh"],
        &["help", "status"],
        &["status", "--help"],
        &["--help"],
        &["--version"],
        &["-V", "status"],
        &["status", "--bogus"],
        &["statu"],
        &[],
        &["--timeout", "0", "status"],
        &["--env-file", "x", "--no-env-file", "status"],
        &["completions", "bash"],
        &["serve", "--listen", "127.0.0.1:0"],
        &["-v", "status", "-vv"],
        &["--json", "status", "-o", "env"],
        &["-o", "json", "status", "--output-env"],
        &["status", "--json", "--output-env"],
        &["--store", "a", "status", "--store", "b"],
        &["--store", "a", "--store", "b", "status"],
        &["-q", "status", "-v"],
        &["status", "-qv"],
        &["--env-file", "x", "status", "--no-env-file"],
        &["status", "--timeout=2s", "--retries", "11"],
        &["keygen", "-o", "key.txt"],
        &["-o", "json", "keygen", "--output=key.txt"],
        &["--json", "keygen"],
        &["rekey", "--encrypt-to", "age1x", "--allow-plaintext"],
        &["import", "-", "--identity", "key.txt"],
    ] {
        assert_parses_like_the_whole_tree(words);
    }
    let plain = |words: &[&str]| parse_plain(&argv(words)).is_some();
    for taken in [
        &["--no-env-file", "--store", "s.json", "status", "--json"][..],
        &["status", "--check", "-q"],
        &[
            "--store=s.json",
            "status",
            "--buffer=2h",
            "--reveal",
            "--env-file",
            ".env",
        ],
        &["--store", "status", "status"],
        &["--no-env-file", "--store", "s.json", "access-token"],
        &["access-token", "--min-ttl", "30m", "--no-railway", "-q"],
        &["--json", "access-token", "--min-ttl=1h", "--no-env-file-update"],
        &["--account", "alice", "status", "--json"],
        &["status", "--account=home-2", "--check"],
        &["access-token", "--account", "alice", "--min-ttl", "30m"],
    ] {
        assert!(plain(taken), "the plain path takes {taken:?}");
        assert_parses_like_the_whole_tree(taken);
    }
    for left_to_clap in [
        &["-q", "status", "-q"][..],
        &["--store", "a", "status", "--store", "b"],
        &["--check", "status"],
        &["status", "--buffer", "367d"],
        &["status", "--store", "-"],
        &["--no-env-file", "--env-file", "x", "status"],
        &["status", "-v"],
        &["refresh"],
        &["access-token", "--trigger-deployment"],
        &["access-token", "--check"],
        &["status", "--min-ttl", "1h"],
        &["--min-ttl", "1h", "access-token"],
        &["status", "access-token"],
        &["status", "--account", "-x"],
        &["--account", "a", "status", "--account", "b"],
        &["accounts", "--account", "a"],
    ] {
        assert!(!plain(left_to_clap), "the plain path leaves {left_to_clap:?} to clap");
        assert_parses_like_the_whole_tree(left_to_clap);
    }
    for taken in [
        &["--json", "status"][..],
        &["--no-env-file", "--store", "s.json", "status", "--json"],
        &["-v", "status", "-vv"],
        &["--store", "a", "status", "--store", "b"],
        &["--json", "status", "-o", "env"],
        &["exec", "--", "status", "--json"],
    ] {
        assert!(parse_lone(&argv(taken)).is_some(), "the fast path takes {taken:?}");
    }
}

/// Words a command line may hold: every global option (long and
/// short, so a new one is covered), some subcommands and their options,
/// values, and words that look like neither.
fn vocabulary() -> Vec<String> {
    let tree = command();
    let globals = tree.get_arguments().flat_map(|a| {
        let long = a.get_long().map(|l| format!("--{l}"));
        let short = a.get_short().map(|c| format!("-{c}"));
        long.into_iter().chain(short)
    });
    let others = [
        "status",
        "refresh",
        "access-token",
        "exec",
        "serve",
        "help",
        "--",
        "-",
        "-qv",
        "-ojson",
        "--json=x",
        "json",
        "env",
        "--check",
        "--buffer",
        "30m",
        "--if-needed",
        "--min-ttl",
        "0",
        "1s",
        "x",
        "s.json",
        "--store=s.json",
        "--env-file=",
        "--buffer=2h",
        "--buffer=367d",
        "status=x",
        "accounts",
        "rename",
        "remove",
        "--yes",
        "--all",
        "alice",
    ];
    globals.chain(others.iter().map(|w| w.to_string())).collect()
}

/// The words of the lines `parse_plain` reads, and a few it must not.
const PLAIN_WORDS: &[&str] = &[
    "status",
    "status",
    "--check",
    "--buffer",
    "30m",
    "--buffer=2h",
    "--buffer=",
    "--no-env-file",
    "--json",
    "-q",
    "--quiet",
    "--reveal",
    "--store",
    "s.json",
    "--store=s.json",
    "--env-file",
    ".env",
    "--env-file=x",
    "-",
    "-v",
    "access-token",
    "--min-ttl",
    "--min-ttl=1h",
    "--no-railway",
    "--no-env-file-update",
    "--trigger-deployment",
    "--account",
    "alice",
    "--account=bob",
    "accounts",
];

proptest::proptest! {
    /// Any line of the words `parse_plain` reads: most are its to answer.
    #[test]
    fn any_plain_line_parses_like_the_whole_tree(
        words in proptest::collection::vec(proptest::sample::select(PLAIN_WORDS), 0..8)
    ) {
        assert_parses_like_the_whole_tree(&words);
    }

    /// Any sequence of words the command line knows, in any order.
    #[test]
    fn any_command_line_parses_like_the_whole_tree(
        words in proptest::collection::vec(proptest::sample::select(vocabulary()), 0..8)
    ) {
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        assert_parses_like_the_whole_tree(&words);
    }
}

#[test]
fn clap_definition_is_consistent() {
    command().debug_assert();
}

#[test]
fn sandbox_help_lists_only_its_own_options_and_still_parses_global_ones() {
    let options = |name: &str| {
        let mut root = command().term_width(0);
        root.build();
        let help = root.find_subcommand_mut(name).unwrap().render_long_help().to_string();
        help.split("Examples:").next().unwrap_or_default().to_owned()
    };
    let help = options("sandbox");
    assert!(help.contains("--listen"), "{help}");
    for global in [
        "--env-file",
        "--store",
        "--json",
        "--quiet",
        "--timeout",
        "--server",
        "--lock-timeout",
    ] {
        assert!(!help.contains(global), "{global} in\n{help}");
    }
    let argv = |args: &[&str]| -> Vec<std::ffi::OsString> {
        std::iter::once("withings-token")
            .chain(args.iter().copied())
            .map(Into::into)
            .collect()
    };
    let cli = super::parse(&argv(&["sandbox", "--quiet", "--listen", "127.0.0.1:0"])).unwrap();
    assert!(cli.global.quiet);
    let status = options("status");
    assert!(status.contains("--env-file"), "other commands keep them: {status}");
}

#[test]
fn global_options_work_after_the_subcommand() {
    let cli = Cli::try_parse_from(["withings-token", "refresh", "--output-env"]).unwrap();
    assert_eq!(cli.global.output_format(), OutputFormat::Env);
    let cli = Cli::try_parse_from(["withings-token", "--json", "status"]).unwrap();
    assert_eq!(cli.global.output_format(), OutputFormat::Json);
}
