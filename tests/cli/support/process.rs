//! Runs of the binary as child processes: started at once, waited for,
//! polled, and their reports read.

use super::*;

use std::process::{Child, Command as StdCommand, Stdio};
use std::time::{Duration, Instant};

pub fn report_of(output: &std::process::Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not a JSON report ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// Every child exited 0 (else the first failure's stderr).
pub fn assert_all_succeeded(outputs: &[std::process::Output]) {
    for (i, output) in outputs.iter().enumerate() {
        assert!(
            output.status.success(),
            "process {i} exited {:?}\nstdout: {}\nstderr: {}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// Starts `args` once per env given, all at once (each its own process),
/// and waits for all; returns the outputs and the wall time of the batch.
pub fn run_all_at_once<'a>(
    envs: impl Iterator<Item = &'a TestEnv>,
    args: &[&str],
) -> (Vec<std::process::Output>, Duration) {
    let started = Instant::now();
    let children: Vec<Child> = envs.map(|env| env.spawn(args)).collect();
    let outputs = children
        .into_iter()
        .map(|c| c.wait_with_output().expect("wait"))
        .collect();
    (outputs, started.elapsed())
}

impl TestEnv {
    /// `args` as a child process, stdout and stderr captured (for signals
    /// and waits while it runs).
    pub fn spawn(&self, args: &[&str]) -> Child {
        self.std_cmd()
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn withings-token")
    }
}

/// Whether the tests run as root.
pub fn is_root() -> bool {
    let id = StdCommand::new("id").arg("-u").output().expect("id -u");
    String::from_utf8_lossy(&id.stdout).trim() == "0"
}

/// Runs `n` copies of `work` at once (released together); their results in order.
pub fn concurrently<T: Send>(n: usize, work: impl Fn() -> T + Sync) -> Vec<T> {
    let start = std::sync::Barrier::new(n);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..n)
            .map(|_| {
                scope.spawn(|| {
                    start.wait();
                    work()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("thread")).collect()
    })
}

/// How many of `reports` have each `outcome`.
pub fn outcome_counts(reports: &[Value]) -> std::collections::BTreeMap<String, usize> {
    let mut counts = std::collections::BTreeMap::new();
    for report in reports {
        *counts
            .entry(report["outcome"].as_str().unwrap_or_default().to_owned())
            .or_default() += 1;
    }
    counts
}

/// Polls `check` until it holds or `deadline` passes.
pub fn wait_until(deadline: Duration, mut check: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// `args` as `env.run` runs them, but killed after 10 s and with its
/// address space capped at 2 GiB, so that a run that waits on a FIFO or
/// reads a device without end fails the test instead of the machine.
pub fn run_briefly(env: &TestEnv, args: &[&str]) -> Run {
    env.run_under_sh("ulimit -v 2097152", args, Duration::from_secs(10))
}
