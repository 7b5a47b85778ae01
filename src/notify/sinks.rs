//! The sinks events go to, from the settings: commands and webhooks, each
//! with a stable id (its kind and a digest of its setting, so an outbox
//! entry owed to a sink follows that sink across runs and is forgotten
//! when the sink is removed), and how each is shown (a webhook's URL only
//! as scheme and host: its path is often its credential).

use std::time::Instant;

use super::command::CommandSink;
use super::sent::{Sent, SinkInfo};
use super::webhook::Webhook;
use crate::error::Result;
use crate::events::{Event, EventKind};
use crate::http::HttpClient;
use crate::settings::Settings;

pub struct Sinks {
    commands: Vec<CommandSink>,
    webhooks: Vec<Webhook>,
}

impl Sinks {
    /// The sinks `settings` configure; a webhook URL that is not one is a
    /// configuration error (exit 3).
    pub fn of(settings: &Settings) -> Result<Sinks> {
        let events = &settings.events;
        let commands = events.commands.iter().map(|c| CommandSink::new(c)).collect();
        let webhooks = events
            .webhook_urls
            .iter()
            .map(|url| Webhook::new(url, events.webhook_secret.as_ref(), events.webhook_format))
            .collect::<Result<Vec<_>>>()?;
        Ok(Sinks { commands, webhooks })
    }

    /// No sink at all.
    pub fn none() -> Sinks {
        Sinks {
            commands: Vec::new(),
            webhooks: Vec::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.commands.is_empty() && self.webhooks.is_empty()
    }

    /// Every sink's id, commands first, in the order configured.
    pub fn ids(&self) -> Vec<String> {
        self.describe().into_iter().map(|info| info.id).collect()
    }

    pub fn describe(&self) -> Vec<SinkInfo> {
        let commands = self.commands.iter().map(CommandSink::info);
        commands.chain(self.webhooks.iter().map(Webhook::info)).collect()
    }

    /// How the sink `id` is shown (an unknown id as itself).
    pub fn shown(&self, id: &str) -> String {
        self.describe()
            .into_iter()
            .find(|info| info.id == id)
            .map_or_else(|| id.to_owned(), |info| format!("{} {}", info.kind, info.shown))
    }

    /// One try (a webhook retries within it) to give `event` to the sink
    /// `id`, ending by `deadline`.
    pub async fn send(&self, id: &str, event: &Event, http: &HttpClient, deadline: Instant) -> Sent {
        if let Some(command) = self.commands.iter().find(|c| c.id() == id) {
            return command.run(event, deadline).await;
        }
        if let Some(webhook) = self.webhooks.iter().find(|w| w.id() == id) {
            return webhook.send(event, http, deadline).await;
        }
        Sent::Refused {
            why: "no such sink is configured any more".to_owned(),
        }
    }

    /// Gives `event` straight to every sink (not through the outbox: a
    /// test event is not kept), one after the other, until `deadline`.
    pub async fn try_each(&self, event: &Event, http: &HttpClient, deadline: Instant) -> Vec<(SinkInfo, Sent)> {
        let mut tried = Vec::new();
        for info in self.describe() {
            let sent = self.send(&info.id, event, http, deadline).await;
            tried.push((info, sent));
        }
        tried
    }
}

/// The event `notify --test` (and `doctor --online`) sends: `test`, code
/// `TEST`, saying which host sent it.
pub fn test_event(account: &str) -> Event {
    let message = format!("a test event from withings-token on {}", host_name());
    Event::new(
        EventKind::Test,
        account,
        crate::tokens::now(),
        "TEST",
        message,
        String::new(),
    )
}

/// This host's name, or `this host` when it has none to give.
fn host_name() -> String {
    let uname = rustix::system::uname();
    let name = uname.nodename().to_string_lossy();
    let name = name.trim();
    if name.is_empty() {
        "this host".to_owned()
    } else {
        crate::redact::visible(name)
    }
}
