//! A new user's first steps: the README says how to install the binary and
//! which Rust it needs; its sandbox walk-through runs as written (with bash,
//! in an empty directory) and leaves no store and no setting behind; and the
//! README's test command (`.ci/test`) either gets `redis-server`, `faketime`,
//! `curl`, `promtool`, `python3` and its `prometheus_client` or stops saying
//! what to install; it never runs the suite
//! without them. That command runs here on a PATH of stand-ins (`sudo`,
//! `apt-get`, `cargo` as small scripts), so nothing is installed and no test
//! suite is started.
//! `cargo test --features failpoints --test cli setup::`

use crate::support::*;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command as StdCommand, Stdio};
use std::time::Duration;

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

/// The README's sandbox walk-through: the `sh` block under its heading.
fn sandbox_walk_through(readme: &str) -> &str {
    let part = &readme[readme.find("## Try it: the sandbox").expect("the sandbox part")..];
    let start = part.find("```sh\n").expect("an sh block") + "```sh\n".len();
    let end = start + part[start..].find("```").expect("the block's end");
    &part[start..end]
}

/// The PATH this test runs with (clippy.toml's ban is for the binary).
#[allow(clippy::disallowed_methods)]
fn test_path() -> std::ffi::OsString {
    std::env::var_os("PATH").unwrap_or_default()
}

/// Whether `program` is on the test's own PATH.
fn on_path(program: &str) -> bool {
    std::env::split_paths(&test_path()).any(|dir| dir.join(program).is_file())
}

/// Kills a process group when dropped: whatever a script left running.
struct ProcessGroup(u32);

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        let _ = StdCommand::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0)])
            .stderr(Stdio::null())
            .status();
    }
}

#[test]
fn the_readme_sandbox_walk_through_runs_as_written_and_leaves_nothing_behind() {
    assert!(
        on_path("curl"),
        "the README's sandbox walk-through needs curl, which is not on PATH: \
         `bash .ci/test` installs it; else `sudo apt-get install curl` or `brew install curl`"
    );
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let env = TestEnv::new();
    let tmp = env.home().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    // As written, under `-e`: the first command that fails stops it. The last
    // line shows whether the walk-through left the sandbox's settings set.
    let script = format!(
        "{}echo \"after the walk-through: WITHINGS_ENV_FILE=${{WITHINGS_ENV_FILE-unset}}\"\n",
        sandbox_walk_through(&readme)
    );
    std::fs::write(env.home().join("walk-through.sh"), script).unwrap();
    let bin_dir = Path::new(BIN).parent().unwrap();
    let path =
        std::env::join_paths(std::iter::once(bin_dir.to_owned()).chain(std::env::split_paths(&test_path()))).unwrap();
    let (stdout, stderr) = (env.home().join("stdout"), env.home().join("stderr"));
    // Its own process group, so that a sandbox a failed run left serving is
    // killed with it; files, not pipes, so that nothing waits on the sandbox.
    let mut child = StdCommand::new("bash")
        .args(["-euo", "pipefail"])
        .arg(env.home().join("walk-through.sh"))
        .current_dir(env.work_dir())
        .env_clear()
        .env("HOME", env.home())
        .env("TMPDIR", &tmp)
        .env("PATH", path)
        .stdout(std::fs::File::create(&stdout).unwrap())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .process_group(0)
        .spawn()
        .unwrap();
    let _group = ProcessGroup(child.id());
    let ended = wait_until(Duration::from_secs(60), || matches!(child.try_wait(), Ok(Some(_))));
    let said = || {
        format!(
            "stdout:\n{}\nstderr:\n{}",
            std::fs::read_to_string(&stdout).unwrap(),
            std::fs::read_to_string(&stderr).unwrap()
        )
    };
    assert!(ended, "the walk-through did not end within 60 s; {}", said());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{}", said());
    assert!(
        said().contains("after the walk-through: WITHINGS_ENV_FILE=unset"),
        "{}",
        said()
    );

    let printed = std::fs::read_to_string(&stdout).unwrap();
    let measures: Value = printed
        .lines()
        .find(|l| l.starts_with("{\"status\":"))
        .map(|l| serde_json::from_str(l).unwrap())
        .unwrap_or_else(|| panic!("no getmeas answer: {}", said()));
    assert_eq!(measures["status"], 0, "{measures}");
    assert_eq!(
        measures["body"]["measuregrps"][0]["measures"],
        json!([{"value": 72100, "type": 1, "unit": -3, "algo": 0, "fm": 1}]),
        "the access token read the first person's newest weight"
    );

    let settings = std::fs::read_to_string(env.work_dir().join("sandbox.env")).unwrap();
    let store = settings
        .lines()
        .find_map(|l| l.strip_prefix("WITHINGS_TOKEN_STORE="))
        .map(PathBuf::from)
        .expect("the sandbox names its store");
    assert!(
        store.starts_with(&tmp),
        "its store is in the temporary directory: {settings}"
    );
    assert!(
        said().contains(&store.display().to_string()),
        "the tables name the sandbox's store: {}",
        said()
    );
    let store_dir = store.parent().unwrap().to_owned();
    assert!(
        wait_until(Duration::from_secs(10), || !store_dir.exists()),
        "the stopped sandbox removes its store: {} remains",
        store_dir.display()
    );
    assert!(!env.store_path().exists(), "the user's own store was never written");
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
    assert!(
        out.stderr
            .contains("the tests need redis-server faketime curl promtool python3"),
        "{out:?}"
    );
    assert!(
        out.stderr
            .contains("`sudo apt-get install redis-server faketime curl prometheus python3`"),
        "{out:?}"
    );
    assert!(
        out.stderr
            .contains("`brew install redis libfaketime curl prometheus python`"),
        "{out:?}"
    );
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
    // python3's stand-in answers every `-c` with success: its
    // prometheus_client is there.
    let tools = ["redis-server", "faketime", "curl", "promtool", "python3"]
        .map(|t| path.dir.path().join(t).display().to_string());
    path.script(
        "apt-get",
        &format!(
            "[ \"$1\" = install ] && for p in {}; do printf '#!/bin/sh\\n' > $p && /bin/chmod 755 $p; done",
            tools.join(" ")
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
fn without_prometheus_client_and_no_way_to_install_it_the_test_command_says_what_to_install() {
    let path = FakePath::with_tools(TOOLS);
    path.script("sudo", "[ \"$1\" = -n ] && shift; \"$@\"");
    for tool in ["redis-server", "faketime", "curl", "promtool", "service"] {
        path.script(tool, "exit 0");
    }
    // No prometheus_client, and a pip that refuses (a Debian python3).
    path.script(
        "python3",
        "[ \"$1\" = -m ] && echo 'error: externally-managed-environment' >&2; exit 1",
    );
    path.script(
        "apt-get",
        "echo 'E: Unable to locate package python3-prometheus-client' >&2; exit 100",
    );
    let cargo = path.record_cargo();
    let out = path.run_test_command();
    assert_eq!((out.code, out.stdout.as_str()), (1, ""), "{out:?}");
    for said in [
        "error: externally-managed-environment",
        "E: Unable to locate package python3-prometheus-client",
        "error: the metrics tests need python3's prometheus_client (its OpenMetrics parser reads /metrics), and pip could not install it",
        "`python3 -m pip install --user prometheus_client`",
    ] {
        assert!(out.stderr.contains(said), "{said} not said: {out:?}");
    }
    assert!(!cargo.exists(), "no test ran without prometheus_client");
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
