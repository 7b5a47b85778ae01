//! `--output json`: a report's serde shape, pretty-printed, one object.

use serde::Serialize;

use crate::error::{Error, Result};

pub(super) fn render<T: Serialize>(value: &T) -> Result<String> {
    let json = serde_json::to_string_pretty(value).map_err(Error::internal)?;
    Ok(json + "\n")
}
