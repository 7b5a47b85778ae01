//! A webhook sink: POST, signed as Standard Webhooks say, retried.
//! TO BE WRITTEN (helper A): this is the interface notify/sinks.rs calls.

use std::time::Instant;

use secrecy::{ExposeSecret, SecretString};

use super::sinks::{Sent, SinkInfo, shown_url, sink_id};
use crate::error::{Error, Result};
use crate::events::Event;
use crate::http::HttpClient;
use crate::settings::WebhookFormat;

pub struct Webhook {
    url: url::Url,
    id: String,
    #[allow(dead_code)]
    secret: Option<SecretString>,
    #[allow(dead_code)]
    format: WebhookFormat,
}

impl Webhook {
    pub fn new(url: &SecretString, secret: Option<&SecretString>, format: WebhookFormat) -> Result<Webhook> {
        let text = url.expose_secret();
        let parsed = url::Url::parse(text.trim()).map_err(|e| {
            Error::config(
                format!("WITHINGS_TOKEN_WEBHOOK_URL holds a value that is not a URL ({e})"),
                "set it to the whole https:// URL the receiver gave you",
            )
        })?;
        Ok(Webhook {
            id: sink_id("webhook", text.trim()),
            url: parsed,
            secret: secret.cloned(),
            format,
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn info(&self) -> SinkInfo {
        SinkInfo {
            id: self.id.clone(),
            kind: "webhook",
            shown: shown_url(&self.url),
        }
    }

    pub async fn send(&self, _event: &Event, _http: &HttpClient, _deadline: Instant) -> Sent {
        Sent::Retry {
            after: None,
            why: "webhooks are not written yet".to_owned(),
        }
    }
}
