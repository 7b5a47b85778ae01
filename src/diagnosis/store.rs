//! The store: can it be read, does it keep the set (Redis' eviction and
//! persistence), and is its file this user's alone.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::{fail, failed, ok, warn};
use crate::error::Error;
use crate::output::DoctorCheck;
use crate::settings::{Settings, StoreLocation};
use crate::store::{Durability, FileStore, StoreState};

/// The store's checks, and its state when it could be read.
pub(super) async fn store_checks(settings: &Settings) -> (Vec<DoctorCheck>, Option<StoreState>) {
    match &settings.store {
        StoreLocation::File(path) => file_store_checks(
            &FileStore::new(path.clone())
                .for_client(settings.client_id.clone())
                .sealed_with(settings.keyring()),
        ),
        StoreLocation::Redis { .. } => {
            let loaded = async {
                let store = crate::store::open(settings)?;
                let state = store.load().await?;
                Ok::<_, Error>((store.location(), state, store.durability().await))
            };
            match loaded.await {
                Ok((location, state, durability)) => {
                    let detail = format!("{location}, a Redis store (store generation {})", state.generation);
                    let mut checks = vec![ok("store", detail)];
                    checks.extend(durability.map(|d| durability_check(&d)));
                    (checks, Some(state))
                }
                Err(e) => (vec![failed("store", &e)], None),
            }
        }
    }
}

/// Whether the store keeps the set: Redis' eviction and persistence.
fn durability_check(durability: &Durability) -> DoctorCheck {
    const NAME: &str = "store durability";
    let Some(worst) = durability.problems.iter().max_by_key(|p| p.fatal) else {
        return ok(NAME, durability.summary.clone());
    };
    let detail = durability
        .problems
        .iter()
        .map(|p| p.detail.as_str())
        .collect::<Vec<_>>()
        .join("; ");
    let actions = durability
        .problems
        .iter()
        .map(|p| p.action.as_str())
        .collect::<Vec<_>>()
        .join("; ");
    if worst.fatal {
        fail(NAME, detail, actions)
    } else {
        warn(NAME, detail, actions)
    }
}

fn file_store_checks(store: &FileStore) -> (Vec<DoctorCheck>, Option<StoreState>) {
    let path = store.path();
    if let Ok(false) = path.try_exists() {
        let detail = format!(
            "{} does not exist yet (the first `exchange`, or a `refresh` seeded from WITHINGS_REFRESH_TOKEN, creates it)",
            path.display()
        );
        return (vec![ok("store", detail)], Some(StoreState::default()));
    }
    let loaded = store.load();
    let first = match &loaded {
        Ok(state) => ok(
            "store",
            format!("{} (store generation {})", path.display(), state.generation),
        ),
        Err(e) => failed("store", e),
    };
    (vec![first, permissions(path)], loaded.ok())
}

/// The store file and its directory should be this user's alone (0600 in
/// 0700): the file holds the tokens, the directory their names.
fn permissions(path: &Path) -> DoctorCheck {
    const NAME: &str = "store permissions";
    let mode = |p: &Path| std::fs::metadata(p).map(|m| m.permissions().mode() & 0o777);
    let dir = crate::fsutil::parent_dir(path);
    let (file_mode, dir_mode) = match (mode(path), mode(dir)) {
        (Ok(file), Ok(dir)) => (file, dir),
        (Err(e), _) | (_, Err(e)) => {
            return warn(
                NAME,
                format!("cannot read the modes of {} and its directory: {e}", path.display()),
                "check that this user may read the store and its directory",
            );
        }
    };
    let mut problems = Vec::new();
    let mut actions = Vec::new();
    if file_mode & 0o077 != 0 {
        problems.push(format!(
            "{} is mode {file_mode:04o}: group or others can read the tokens",
            path.display()
        ));
        actions.push(format!(
            "run `chmod 600 {}` (the next save also rewrites it 0600)",
            path.display()
        ));
    }
    if dir_mode & 0o077 != 0 {
        problems.push(format!(
            "its directory {} is mode {dir_mode:04o}: group or others can look inside",
            dir.display()
        ));
        actions.push(format!("run `chmod 700 {}`", dir.display()));
    }
    if problems.is_empty() {
        return ok(NAME, format!("file {file_mode:04o}, directory {dir_mode:04o}"));
    }
    warn(NAME, problems.join("; "), actions.join("; "))
}
