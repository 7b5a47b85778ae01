//! The only writes to the config file: `accounts rename` and `accounts
//! remove` move or drop an account's table (and its name in the readers'
//! `accounts`), keeping every comment, blank line and the order of the
//! rest (`toml_edit`), written atomically in the file's own mode.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use toml_edit::{DocumentMut, Item, TableLike, Value};

use super::MAX_CONFIG_BYTES;
use crate::account_name::AccountName;
use crate::error::{Error, Result};

/// Renames `old`'s `[account.OLD]` table to `[account.NEW]` in place, and
/// `old` in every `[reader.*]`'s `accounts`. Refused when `new` already has
/// a table. `Ok(true)` when the file had a table for `old`.
pub fn rename_account(path: &Path, old: &AccountName, new: &AccountName) -> Result<bool> {
    edit(path, |doc| {
        let had = match accounts_mut(doc) {
            Some(accounts) if accounts.contains_key(new.as_str()) => {
                return Err(Error::config(
                    format!("config file {} already has an [account.{new}] table", path.display()),
                    format!("merge or delete [account.{new}] in it first, or choose another name than `{new}`"),
                ));
            }
            Some(accounts) => match accounts.remove(old.as_str()) {
                Some(table) => {
                    accounts.insert(new.as_str(), table);
                    true
                }
                None => false,
            },
            None => false,
        };
        for_each_reader_account(doc, |value| {
            if value.as_str() == Some(old.as_str()) {
                let decor = value.decor().clone();
                *value = Value::from(new.as_str());
                *value.decor_mut() = decor;
            }
        });
        Ok(had)
    })
}

/// Drops `name`'s `[account.NAME]` table and `name` from every
/// `[reader.*]`'s `accounts` (a later account of that name may be another
/// person). `Ok(true)` when the file had a table for `name`.
pub fn remove_account(path: &Path, name: &AccountName) -> Result<bool> {
    edit(path, |doc| {
        let had = accounts_mut(doc).is_some_and(|accounts| accounts.remove(name.as_str()).is_some());
        for_each_reader(doc, |accounts| accounts.retain(|v| v.as_str() != Some(name.as_str())));
        Ok(had)
    })
}

/// Reads the file at `path`, applies `change` and, when that changed the
/// text, writes it back atomically with the mode it had.
fn edit(path: &Path, change: impl FnOnce(&mut DocumentMut) -> Result<bool>) -> Result<bool> {
    // Write through a symlink to the real file rather than replacing the link.
    let real = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let (bytes, meta) =
        crate::fsutil::read_regular_file_and_metadata(&real, MAX_CONFIG_BYTES).map_err(|e| write_error(path, &e))?;
    let text = String::from_utf8(bytes).map_err(|_| write_error(path, &"it is not UTF-8 text"))?;
    // Checked as every run reads it: a file this run could not read is
    // not rewritten.
    super::Config::parse(path.to_path_buf(), super::ConfigOrigin::Flag, &text)?;
    let mut doc: DocumentMut = text
        .parse()
        .map_err(|e: toml_edit::TomlError| write_error(path, &e.message()))?;
    let had = change(&mut doc)?;
    let new_text = doc.to_string();
    if new_text != text {
        write(&real, new_text.as_bytes(), meta.permissions().mode() & 0o7777).map_err(|e| write_error(path, &e))?;
    }
    Ok(had)
}

fn write(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    crate::fsutil::remove_stale_temps(&[path]);
    let mut temp = crate::fsutil::reserve(path, 0)?;
    temp.set_mode(mode)?;
    temp.fill(bytes)?;
    temp.rename_into_place()
}

/// The `account` table of tables, if the file has one.
fn accounts_mut(doc: &mut DocumentMut) -> Option<&mut dyn TableLike> {
    doc.get_mut(super::parse::ACCOUNT_TABLES)
        .and_then(Item::as_table_like_mut)
}

/// Calls `each` with every `[reader.*]`'s `accounts` array.
fn for_each_reader(doc: &mut DocumentMut, mut each: impl FnMut(&mut toml_edit::Array)) {
    let Some(readers) = doc
        .get_mut(super::parse::READER_TABLES)
        .and_then(Item::as_table_like_mut)
    else {
        return;
    };
    for (_, reader) in readers.iter_mut() {
        if let Some(accounts) = reader
            .as_table_like_mut()
            .and_then(|t| t.get_mut("accounts"))
            .and_then(Item::as_array_mut)
        {
            each(accounts);
        }
    }
}

/// Calls `each` with every name in a `[reader.*]`'s `accounts`.
fn for_each_reader_account(doc: &mut DocumentMut, mut each: impl FnMut(&mut Value)) {
    for_each_reader(doc, |accounts| accounts.iter_mut().for_each(&mut each));
}

fn write_error(path: &Path, e: &dyn std::fmt::Display) -> Error {
    Error::config(
        format!("cannot rewrite config file {}: {e}", path.display()),
        "fix its permissions (or the path given with `--config`), then run the command again",
    )
}
