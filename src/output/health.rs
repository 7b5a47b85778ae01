//! `health`: a running `serve`'s `GET /health` answer as the server gives
//! it (`--json` prints the same object).

use serde::{Deserialize, Serialize};

use super::{Human, Report};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthReport {
    /// `ok`: every account's store could be read (else the server answers
    /// 503 with its error object, which is the command's error).
    pub status: String,
    pub service: String,
    /// The server's version.
    pub version: String,
    /// Some account holds a set (or the environment seeds one).
    pub token_configured: bool,
}

impl Report for HealthReport {
    fn human(&self) -> Human {
        // A server's words, shown to a person: nothing a terminal would act on.
        let visible = crate::redact::visible;
        let configured = if self.token_configured { "yes" } else { "no" };
        Human::Rows(vec![
            ("status", visible(&self.status)),
            ("service", visible(&self.service)),
            ("version", visible(&self.version)),
            ("token configured", configured.to_owned()),
        ])
    }
}
