//! The committed man pages (withings-token(1) and one per subcommand) and
//! completion scripts must match what the clap definition generates, and
//! `man/` must hold no page for a command that is gone. Regenerate with:
//!   WITHINGS_TOKEN_BLESS=1 cargo test --features failpoints --test cli generated::

use crate::support::*;

use std::path::Path;

fn check(path: &Path, fresh: &[u8]) -> Option<String> {
    if bless() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, fresh).unwrap();
        return None;
    }
    match std::fs::read(path) {
        Ok(committed) if committed == fresh => None,
        Ok(_) => Some(format!("{} is stale", path.display())),
        Err(e) => Some(format!("{} is missing ({e})", path.display())),
    }
}

fn bless() -> bool {
    #[allow(clippy::disallowed_methods)]
    std::env::var_os("WITHINGS_TOKEN_BLESS").is_some()
}

const REGENERATE: &str =
    "regenerate with: WITHINGS_TOKEN_BLESS=1 cargo test --features failpoints --test cli generated::";

#[test]
fn committed_man_pages_and_completions_are_fresh() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut stale = Vec::new();
    let pages = withings_token::generated::man_pages().unwrap();
    for (name, page) in &pages {
        stale.extend(check(&root.join("man").join(name), page));
    }
    // A page left behind by a removed or renamed subcommand.
    for entry in std::fs::read_dir(root.join("man")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if pages.iter().any(|(page, _)| *page == name) {
            continue;
        }
        if bless() {
            std::fs::remove_file(&path).unwrap();
        } else {
            stale.push(format!("{} documents no command: delete it", path.display()));
        }
    }
    for (name, script) in withings_token::generated::completion_scripts() {
        stale.extend(check(&root.join("completions").join(&name), &script));
    }
    assert!(stale.is_empty(), "{}\n{REGENERATE}", stale.join("\n"));
}

/// The subcommands a user can type, at any depth (parents first, joined
/// by `-`: `accounts-rename`), read from clap itself (not from the page
/// generator), without clap's own `help`.
fn subcommands() -> Vec<String> {
    typed_subcommands().into_iter().map(|words| words.join("-")).collect()
}

/// [`subcommands`] as typed, a word each.
fn typed_subcommands() -> Vec<Vec<String>> {
    fn walk(cmd: &clap::Command, above: &[String], into: &mut Vec<Vec<String>>) {
        for sub in cmd
            .get_subcommands()
            .filter(|s| s.get_name() != "help" && !s.is_hide_set())
        {
            let words: Vec<String> = above.iter().cloned().chain([sub.get_name().to_owned()]).collect();
            into.push(words.clone());
            walk(sub, &words, into);
        }
    }
    let mut all = Vec::new();
    walk(&withings_token::generated::command(), &[], &mut all);
    all
}

#[test]
fn every_subcommand_has_its_own_man_page() {
    let pages = withings_token::generated::man_pages().unwrap();
    let mut names: Vec<String> = pages.iter().map(|(name, _)| name.clone()).collect();
    let mut expected: Vec<String> = std::iter::once("withings-token.1".to_owned())
        .chain(subcommands().iter().map(|sub| format!("withings-token-{sub}.1")))
        .collect();
    names.sort();
    expected.sort();
    assert_eq!(names, expected);
    for words in typed_subcommands() {
        let sub = words.join("-");
        let name = format!("withings-token-{sub}.1");
        let page = pages
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, p)| String::from_utf8_lossy(p))
            .unwrap();
        let page_name = format!("withings\\-token\\-{}", sub.replace('-', "\\-"));
        let typed = format!("\\fBwithings\\-token {}\\fR", words.join(" ").replace('-', "\\-"));
        assert!(
            page.starts_with(&format!(
                ".ie \\n(.g .ds Aq \\(aq\n.el .ds Aq '\n.TH withings-token-{sub} 1 "
            )),
            "{name}: title\n{page}"
        );
        assert!(
            page.contains(&format!(".SH NAME\n{page_name} \\- ")),
            "{name}: NAME\n{page}"
        );
        assert!(
            page.contains(&format!(".SH SYNOPSIS\n{typed} ")),
            "{name}: SYNOPSIS\n{page}"
        );
        assert!(page.contains(".SH EXAMPLES\n.nf\n"), "{name}: EXAMPLES\n{page}");
        assert!(
            page.contains(".SH \"EXIT STATUS\"\n.TP\n\\fB0\\fR SUCCESS"),
            "{name}: EXIT STATUS\n{page}"
        );
        // The pages above it: withings-token(1), then each parent's.
        let parents: String = (1..words.len())
            .map(|n| format!(",\n.BR \\%withings\\-token\\-{} (1)", words[..n].join("\\-")))
            .collect();
        assert!(
            page.ends_with(&format!(".SH \"SEE ALSO\"\n.BR \\%withings\\-token (1){parents}\n")),
            "{name}: SEE ALSO\n{page}"
        );
        // The global options are pointed at, not repeated.
        assert!(
            !page.contains("\\fB\\-\\-lock\\-timeout\\fR \\fI<DURATION>\\fR"),
            "{name}"
        );
        assert!(page.contains(".SH \"GLOBAL OPTIONS\"\n"), "{name}");
    }
}

/// withings-token(1)'s SEE ALSO and SUBCOMMANDS name exactly the pages
/// that exist: one per subcommand, and none for clap's `help`.
#[test]
fn main_man_page_points_at_exactly_the_pages_that_exist() {
    let page = String::from_utf8(withings_token::generated::man_page().unwrap()).unwrap();
    let see_also = page.split(".SH \"SEE ALSO\"\n").nth(1).expect("a SEE ALSO section");
    let see_also = see_also.split("\n.SH ").next().unwrap();
    let listed: Vec<String> = see_also
        .lines()
        .filter_map(|line| line.strip_prefix(".BR \\%"))
        .map(|entry| entry.split(' ').next().unwrap().replace("\\-", "-") + ".1")
        .collect();
    let expected: Vec<String> = subcommands()
        .iter()
        .map(|sub| format!("withings-token-{sub}.1"))
        .collect();
    assert_eq!(listed, expected);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for name in &listed {
        assert!(
            root.join("man").join(name).is_file() || bless(),
            "man/{name} is listed but missing\n{REGENERATE}"
        );
    }
    assert!(!page.contains("withings\\-token\\-help"), "clap's `help` has no page");
    // SUBCOMMANDS lists the top level; a nested page is its parent's.
    for sub in typed_subcommands()
        .iter()
        .filter(|words| words.len() == 1)
        .map(|w| &w[0])
    {
        assert!(
            page.contains(&format!(".TP\nwithings\\-token\\-{}(1)\n", sub.replace('-', "\\-"))),
            "{sub}"
        );
    }
}

#[test]
fn man_page_has_exit_status_and_environment() {
    let page = String::from_utf8(withings_token::generated::man_page().unwrap()).unwrap();
    assert!(page.contains(".SH \"EXIT STATUS\""));
    assert!(page.contains("RAILWAY\\_UPDATE\\_FAILED") || page.contains("RAILWAY_UPDATE_FAILED"));
    assert!(page.contains(".SH ENVIRONMENT"));
    let environment = page.split(".SH ENVIRONMENT\n").nth(1).unwrap();
    let environment = environment.split("\n.SH ").next().unwrap();
    for setting in withings_token::generated::SETTINGS {
        assert!(
            environment.contains(&format!(".TP\n\\fB{}", setting.name)),
            "{} is not in ENVIRONMENT",
            setting.name
        );
    }
}

#[test]
fn completions_subcommand_prints_the_committed_script() {
    let out = std::process::Command::new(BIN)
        .args(["completions", "bash"])
        .env_clear()
        .output()
        .unwrap();
    assert!(out.status.success());
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let committed = std::fs::read(root.join("completions/withings-token.bash")).unwrap_or_default();
    assert_eq!(out.stdout, committed);
}

/// The troubleshooting page's table under "## Exit codes" is generated from
/// the one list of codes (`error::EXIT_STATUS_TABLE`), like the man page's
/// EXIT STATUS.
#[test]
fn troubleshooting_exit_code_table_is_generated_from_the_error_type() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let path = root.join("docs/troubleshooting.md");
    let page = std::fs::read_to_string(&path).unwrap();
    let heading = "## Exit codes\n\n";
    let start = page.find(heading).expect("the page has an Exit codes section") + heading.len();
    let end = start + page[start..].find("\n\n").expect("the table ends with a blank line") + 1;
    let mut fresh = page.clone();
    fresh.replace_range(start..end, &withings_token::generated::exit_status_markdown());
    let stale = check(&path, fresh.as_bytes());
    assert!(
        stale.is_none(),
        "{}'s exit-code table is stale\n{REGENERATE}",
        path.display()
    );
    for row in withings_token::generated::EXIT_STATUS_TABLE {
        assert!(
            page.contains(&format!("| {} | {} |", row.exit, row.codes)),
            "{}",
            row.exit
        );
    }
}

/// The configuration page's settings tables, between their markers, are
/// generated from the one list of settings (`settings::SETTINGS`), like the
/// man page's ENVIRONMENT.
#[test]
fn configuration_settings_tables_are_generated_from_the_settings_table() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let path = root.join("docs/configuration.md");
    let page = std::fs::read_to_string(&path).unwrap();
    let begin = "<!-- settings: generated from src/settings/table.rs -->\n";
    let start = page.find(begin).expect("the page has the settings marker") + begin.len();
    let end = page.find("<!-- end of settings -->").expect("the end marker");
    let mut fresh = page.clone();
    fresh.replace_range(start..end, &withings_token::generated::settings_markdown());
    let stale = check(&path, fresh.as_bytes());
    assert!(
        stale.is_none(),
        "{}'s settings tables are stale\n{REGENERATE}",
        path.display()
    );
    // Every group has its table: no setting falls out of the page.
    for setting in withings_token::generated::SETTINGS {
        assert!(fresh.contains(&format!("| `{}` |", setting.name)), "{}", setting.name);
    }
}

#[test]
fn ci_runs_the_readme_test_command() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let block = readme.split("```sh\n").nth(1).unwrap().split("```").next().unwrap();
    let commands: Vec<&str> = block.lines().collect();
    assert_eq!(commands, ["cargo run --release -- demo", "bash .ci/test"]);
    let test = std::fs::read_to_string(root.join(".ci/test")).unwrap();
    assert!(
        test.lines()
            .any(|l| l.trim() == r#"exec cargo test --features failpoints "$@" "${extra[@]}""#),
        ".ci/test must run the whole suite"
    );
    let ci = std::fs::read_to_string(root.join(".ci/run")).unwrap();
    assert!(
        ci.lines().any(|l| l.trim() == commands[1]),
        ".ci/run must run `{}`",
        commands[1]
    );
}
