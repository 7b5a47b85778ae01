//! The committed man page and completion scripts must match what the clap
//! definition generates. Regenerate with:
//!   WITHINGS_TOKEN_BLESS=1 cargo test --test cli generated::

use crate::support::*;

use std::path::Path;

fn check(path: &Path, fresh: &[u8]) -> Option<String> {
    #[allow(clippy::disallowed_methods)]
    let bless = std::env::var_os("WITHINGS_TOKEN_BLESS").is_some();
    if bless {
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

#[test]
fn committed_man_page_and_completions_are_fresh() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut stale = Vec::new();
    stale.extend(check(
        &root.join("man/withings-token.1"),
        &withings_token::manpage::man_page().unwrap(),
    ));
    for (name, script) in withings_token::manpage::completion_scripts() {
        stale.extend(check(&root.join("completions").join(&name), &script));
    }
    assert!(
        stale.is_empty(),
        "{}\nregenerate with: WITHINGS_TOKEN_BLESS=1 cargo test --test cli generated::",
        stale.join("\n")
    );
}

#[test]
fn man_page_has_exit_status_and_environment() {
    let page = String::from_utf8(withings_token::manpage::man_page().unwrap()).unwrap();
    assert!(page.contains(".SH \"EXIT STATUS\""));
    assert!(page.contains("RAILWAY\\_UPDATE\\_FAILED") || page.contains("RAILWAY_UPDATE_FAILED"));
    assert!(page.contains(".SH ENVIRONMENT"));
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

/// The README's table under "## Exit codes" is generated from the one list
/// of codes (`error::EXIT_STATUS_TABLE`), like the man page's EXIT STATUS.
#[test]
fn readme_exit_code_table_is_generated_from_the_error_type() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let path = root.join("README.md");
    let readme = std::fs::read_to_string(&path).unwrap();
    let heading = "## Exit codes\n\n";
    let start = readme.find(heading).expect("README has an Exit codes section") + heading.len();
    let end = start + readme[start..].find("\n\n").expect("the table ends with a blank line") + 1;
    let mut fresh = readme.clone();
    fresh.replace_range(start..end, &withings_token::error::exit_status_markdown());
    let stale = check(&path, fresh.as_bytes());
    assert!(
        stale.is_none(),
        "README's exit-code table is stale\nregenerate with: WITHINGS_TOKEN_BLESS=1 cargo test --test cli generated::"
    );
    for row in withings_token::error::EXIT_STATUS_TABLE {
        assert!(
            readme.contains(&format!("| {} | {} |", row.exit, row.codes)),
            "{}",
            row.exit
        );
    }
}

#[test]
fn ci_runs_the_readme_test_command() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let block = readme.split("```sh\n").nth(1).unwrap().split("```").next().unwrap();
    let commands: Vec<&str> = block.lines().collect();
    assert_eq!(
        commands,
        ["cargo run --release -- demo", "cargo test --features failpoints"]
    );
    let ci = std::fs::read_to_string(root.join(".ci/run")).unwrap();
    assert!(
        ci.lines().any(|l| l.trim() == commands[1]),
        ".ci/run must run `{}`",
        commands[1]
    );
}
