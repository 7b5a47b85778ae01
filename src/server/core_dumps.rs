//! No core file of `serve`: it holds every account's tokens (and, with
//! encryption at rest, this host's identity) in memory for as long as it
//! runs, and a core file outlives the process, is often kept by
//! systemd-coredump or apport, and is read by whoever debugs the crash.
//! So on Linux the process marks itself not dumpable (`PR_SET_DUMPABLE`
//! 0) before the settings, and the secrets in them, are read. That also
//! keeps debuggers of the same user out (ptrace): only root can attach.
//! There is no switch to turn it back on: to debug a running server,
//! attach as root.

/// Turns core dumps off for the rest of the process, and says so (or why
/// not) in the log.
pub fn keep_out_of_core_dumps() {
    #[cfg(target_os = "linux")]
    {
        use rustix::process::{DumpableBehavior, dumpable_behavior, set_dumpable_behavior};
        // Read back: what the kernel holds now is what the log says.
        match set_dumpable_behavior(DumpableBehavior::NotDumpable).and_then(|()| dumpable_behavior()) {
            Ok(DumpableBehavior::NotDumpable) => tracing::info!(
                "core dumps are off while serve runs (PR_SET_DUMPABLE 0): a crash leaves no token in a core file"
            ),
            Ok(other) => tracing::warn!(
                "core dumps could not be turned off (the process is still {other:?}): a crash may leave tokens in a core file; run serve with `ulimit -c 0` (LimitCORE=0 under systemd)"
            ),
            Err(e) => tracing::warn!(
                "core dumps could not be turned off ({e}): a crash may leave tokens in a core file; run serve with `ulimit -c 0` (LimitCORE=0 under systemd)"
            ),
        }
    }
    #[cfg(not(target_os = "linux"))]
    tracing::info!(
        "core dumps are left to the system here (PR_SET_DUMPABLE is Linux's): run serve with `ulimit -c 0` so that a crash leaves no token in a core file"
    );
}
