//! A new user's first steps: the README says how to
//! install the binary and which Rust it needs, and the README's test command
//! (`.ci/test`) either gets `redis-server` or stops saying what to install;
//! it never runs the suite without it. The command runs here on a PATH of
//! stand-ins (`sudo`, `apt-get`, `cargo` as small scripts), so nothing is
//! installed and no test suite is started.
//! `cargo test --features failpoints --test cli setup::`

use crate::support::*;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `rust-version` of Cargo.toml.
fn rust_version() -> String {
    let manifest = std::fs::read_to_string(repo().join("Cargo.toml")).unwrap();
    let line = manifest
        .lines()
        .find(|l| l.starts_with("rust-version"))
        .expect("rust-version in Cargo.toml");
    line.split('"').nth(1).expect("a quoted version").to_owned()
}

#[test]
fn the_readme_says_how_to_install_and_which_rust_it_needs() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let install = readme.find("## Install").expect("an Install part");
    let setup = readme.find("bash .ci/test\n```").expect("the set-up commands");
    let quick_start = readme.find("## Quick start").expect("Quick start");
    assert!(
        setup < install && install < quick_start,
        "Install comes right after the set-up commands"
    );
    let part = &readme[install..quick_start];
    assert!(part.contains("cargo install --locked --path ."), "{part}");
    let rust = format!("Rust {}", rust_version());
    assert!(part.contains(&rust), "names {rust} (Cargo.toml's rust-version): {part}");
}

/// A directory to run `.ci/test` with as its whole PATH: the system tools it
/// uses, and the stand-ins a test writes.
struct FakePath {
    dir: tempfile::TempDir,
}

impl FakePath {
    fn with_tools(tools: &[&str]) -> FakePath {
        let dir = tempfile::tempdir().unwrap();
        for tool in tools {
            let real = ["/usr/bin", "/bin"]
                .iter()
                .map(|d| Path::new(d).join(tool))
                .find(|p| p.exists())
                .unwrap_or_else(|| panic!("{tool} is not in /usr/bin or /bin"));
            std::os::unix::fs::symlink(real, dir.path().join(tool)).unwrap();
        }
        FakePath { dir }
    }

    /// A stand-in for `name`: a shell script.
    fn script(&self, name: &str, body: &str) {
        let path = self.dir.path().join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// `cargo`, which only records how it was called.
    fn record_cargo(&self) -> PathBuf {
        let record = self.dir.path().join("cargo-ran");
        self.script("cargo", &format!("echo \"$@\" > {}", record.display()));
        record
    }

    /// Runs `bash .ci/test --lib` with this PATH and nothing else set.
    fn run_test_command(&self) -> Run {
        Run::of(
            assert_cmd::Command::new(self.dir.path().join("bash"))
                .args([".ci/test", "--lib"])
                .current_dir(repo())
                .env_clear()
                .env("PATH", self.dir.path()),
        )
    }
}

/// The tools `.ci/test` itself needs.
const TOOLS: &[&str] = &["bash", "dirname", "id", "env", "mktemp", "tail", "rm"];

fn assert_says_what_to_install(out: &Run) {
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("the tests need redis-server faketime"), "{out:?}");
    assert!(
        out.stderr.contains("`sudo apt-get install redis-server faketime`"),
        "{out:?}"
    );
    assert!(out.stderr.contains("`brew install redis libfaketime`"), "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
}

#[test]
fn without_redis_server_and_no_way_to_install_it_the_test_command_says_what_to_install() {
    // No apt-get, no sudo: what a user without root on macOS or Fedora has.
    let path = FakePath::with_tools(TOOLS);
    let cargo = path.record_cargo();
    let out = path.run_test_command();
    assert_says_what_to_install(&out);
    assert!(!cargo.exists(), "no test ran without redis-server");
}

#[test]
fn a_failing_apt_get_is_shown_and_the_test_command_stops() {
    let path = FakePath::with_tools(TOOLS);
    // sudo that needs no password (root does without it).
    path.script("sudo", "[ \"$1\" = -n ] && shift; \"$@\"");
    path.script(
        "apt-get",
        "echo 'E: Unable to locate package redis-server' >&2; exit 100",
    );
    let cargo = path.record_cargo();
    let out = path.run_test_command();
    assert_says_what_to_install(&out);
    assert!(
        out.stderr.contains("E: Unable to locate package redis-server"),
        "apt's words are shown: {out:?}"
    );
    assert!(!cargo.exists(), "no test ran without redis-server");
}

#[test]
fn once_apt_get_installs_redis_server_the_test_command_runs_the_whole_suite() {
    let path = FakePath::with_tools(TOOLS);
    path.script("sudo", "[ \"$1\" = -n ] && shift; \"$@\"");
    let (redis, faketime) = (path.dir.path().join("redis-server"), path.dir.path().join("faketime"));
    path.script(
        "apt-get",
        &format!(
            "[ \"$1\" = install ] && for p in {0} {1}; do printf '#!/bin/sh\\n' > $p && /bin/chmod 755 $p; done",
            redis.display(),
            faketime.display()
        ),
    );
    path.script("service", "exit 0");
    let cargo = path.record_cargo();
    let out = path.run_test_command();
    assert_eq!(out.code, 0, "{out:?}");
    // Root also runs the tests only root can (see `.ci/test`).
    let root_only = if is_root() { " -- --include-ignored" } else { "" };
    assert_eq!(
        std::fs::read_to_string(&cargo).unwrap(),
        format!("test --features failpoints --lib{root_only}\n"),
        "{out:?}"
    );
}

#[test]
fn the_redis_tests_fail_without_redis_server_naming_the_readme_test_command() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    assert!(readme.contains("\nbash .ci/test\n"));
    assert!(
        REDIS_SERVER_MISSING.contains("`bash .ci/test`"),
        "{REDIS_SERVER_MISSING}"
    );
    assert!(!REDIS_SERVER_MISSING.contains(".ci/run"), "{REDIS_SERVER_MISSING}");
}
