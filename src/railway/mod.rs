//! `RailwayClient`: the only code that talks to Railway's GraphQL API.
//!
//! One upsert writes the four token variables on the service (never shared
//! variables, never `replace: true`, always `skipDeploys: true`); a deploy is
//! a separate, explicit `serviceInstanceRedeploy`. A non-empty `errors` array
//! is a failure whatever the HTTP status, and so is a mutation whose data
//! field is anything but `true`; HTML pages, 5xx and 429 are retried.
//! GraphQL errors may quote the input, so every value sent (ids, token values,
//! the Railway token) is scrubbed out of them.

use std::collections::BTreeMap;

use reqwest::Url;
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::http::{Answer, HttpClient, Operation, Transient, Verdict};
use crate::redact::{clip, scrub, shown_url, visible};
use crate::settings::{RailwayAuth, RailwaySettings};

const WHAT: &str = "Railway";

/// A GraphQL request: its `document` is the query text sent.
type Graphql = Operation<&'static str>;

/// Railway's answers are small JSON documents; the largest, `variables`,
/// holds one service's variables.
const MAX_ANSWER: usize = 1024 * 1024;

const ENVIRONMENTS: Graphql = Operation {
    name: "environments",
    idempotent: true,
    resend_oversized: true,
    max_answer: MAX_ANSWER,
    document: "query environments($projectId: String!) { environments(projectId: $projectId) { edges { node { id name } } } }",
};
const VARIABLES: Graphql = Operation {
    name: "variables",
    idempotent: true,
    resend_oversized: true,
    max_answer: MAX_ANSWER,
    document: "query variables($projectId: String!, $environmentId: String!, $serviceId: String) { variables(projectId: $projectId, environmentId: $environmentId, serviceId: $serviceId) }",
};
/// Writing the same values again leaves the same variables (and, with
/// `skipDeploys`, deploys nothing).
const UPSERT: Graphql = Operation {
    name: "variableCollectionUpsert",
    idempotent: true,
    resend_oversized: true,
    max_answer: MAX_ANSWER,
    document: "mutation variableCollectionUpsert($input: VariableCollectionUpsertInput!) { variableCollectionUpsert(input: $input) }",
};
/// A deploy that may have started must not be started twice.
const REDEPLOY: Graphql = Operation {
    name: "serviceInstanceRedeploy",
    idempotent: false,
    resend_oversized: true,
    max_answer: MAX_ANSWER,
    document: "mutation serviceInstanceRedeploy($serviceId: String!, $environmentId: String!) { serviceInstanceRedeploy(serviceId: $serviceId, environmentId: $environmentId) }",
};

/// The service whose variables hold the tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RailwayTarget {
    pub project_id: String,
    pub service_id: String,
    pub environment_id: String,
}

pub struct RailwayClient {
    http: HttpClient,
    url: Url,
    auth: RailwayAuth,
}

impl RailwayClient {
    /// Fails with a configuration error naming what is missing.
    pub fn new(http: HttpClient, settings: &RailwaySettings) -> Result<RailwayClient> {
        let Some(auth) = settings.auth.clone() else {
            return Err(not_configured(settings));
        };
        let url = settings.api_url()?.clone();
        Ok(RailwayClient { http, url, auth })
    }

    /// The ids from the settings; the environment is looked up by name when
    /// no id is given.
    pub async fn resolve_target(&self, settings: &RailwaySettings) -> Result<RailwayTarget> {
        let (Some(project_id), Some(service_id)) = (&settings.project_id, &settings.service_id) else {
            return Err(not_configured(settings));
        };
        let environment_id = match &settings.environment_id {
            Some(id) => id.clone(),
            None => {
                self.environment_id_by_name(project_id, &settings.environment_name)
                    .await?
            }
        };
        Ok(RailwayTarget {
            project_id: project_id.clone(),
            service_id: service_id.clone(),
            environment_id,
        })
    }

    async fn environment_id_by_name(&self, project_id: &str, name: &str) -> Result<String> {
        #[derive(Deserialize)]
        struct Data {
            environments: Edges,
        }
        #[derive(Deserialize)]
        struct Edges {
            edges: Vec<Edge>,
        }
        #[derive(Deserialize)]
        struct Edge {
            node: Node,
        }
        #[derive(Deserialize)]
        struct Node {
            id: String,
            name: String,
        }
        let data: Data = self.call(&ENVIRONMENTS, json!({ "projectId": project_id })).await?;
        let nodes: Vec<Node> = data.environments.edges.into_iter().map(|e| e.node).collect();
        if let Some(node) = nodes.iter().find(|n| n.name == name) {
            return Ok(node.id.clone());
        }
        // Railway's text, shown: one name cannot forge a line.
        let names: Vec<String> = nodes.iter().map(|n| clip(&n.name)).collect();
        Err(Error::config(
            format!(
                "Railway project {project_id} has no environment named `{name}` (it has: {})",
                if names.is_empty() {
                    "none".to_owned()
                } else {
                    names.join(", ")
                }
            ),
            "set RAILWAY_ENVIRONMENT_NAME to one of those names, or RAILWAY_ENVIRONMENT_ID to its id",
        ))
    }

    /// The service's current variables (name → value), as Railway holds
    /// them: `pull` imports them, so they must not be altered here. Callers
    /// that show them pass them through [`visible`] (see [`shown_variables`]).
    pub async fn variables(&self, target: &RailwayTarget) -> Result<BTreeMap<String, String>> {
        #[derive(Deserialize)]
        struct Data {
            variables: BTreeMap<String, Value>,
        }
        let data: Data = self
            .call(
                &VARIABLES,
                json!({ "projectId": target.project_id, "environmentId": target.environment_id, "serviceId": target.service_id }),
            )
            .await?;
        Ok(data
            .variables
            .into_iter()
            .map(|(name, value)| {
                let text = match value {
                    Value::String(text) => text,
                    other => other.to_string(),
                };
                (name, text)
            })
            .collect())
    }

    /// Writes `variables` on the service in one call, without a deploy.
    pub async fn upsert(&self, target: &RailwayTarget, variables: &BTreeMap<&str, String>) -> Result<()> {
        let input = json!({
            "projectId": target.project_id,
            "environmentId": target.environment_id,
            "serviceId": target.service_id,
            "variables": variables,
            "skipDeploys": true,
        });
        self.mutate(&UPSERT, json!({ "input": input })).await
    }

    /// Redeploys the service so that it starts with the new variables.
    pub async fn redeploy(&self, target: &RailwayTarget) -> Result<()> {
        self.mutate(
            &REDEPLOY,
            json!({ "serviceId": target.service_id, "environmentId": target.environment_id }),
        )
        .await
    }

    /// A mutation, which Railway answers with `true` when it was done.
    /// Any other answer (`false`, `null`, missing) is a failure, and it is
    /// not retried: the server answered, and said no.
    async fn mutate(&self, operation: &Graphql, variables: Value) -> Result<()> {
        let data: Value = self.call(operation, variables).await?;
        confirmed(operation.name, &data)
    }

    async fn call<T: DeserializeOwned>(&self, operation: &Graphql, variables: Value) -> Result<T> {
        let data: Value = self
            .http
            .with_retries(WHAT, || self.attempt(operation, &variables))
            .await?;
        serde_json::from_value(data).map_err(|e| Error::RailwayUpdateFailed {
            // serde quotes the value it could not read: Railway's text.
            detail: format!(
                "Railway's answer to {} has an unexpected shape ({})",
                operation.name,
                clip(&scrub(&e.to_string(), &self.sent_values(&variables)))
            ),
        })
    }

    async fn attempt(&self, operation: &Graphql, variables: &Value) -> Verdict<Value> {
        let sent = self.sent_values(variables);
        tracing::debug!("POST {} ({})", shown_url(&self.url), operation.name);
        let build = |client: &reqwest::Client| {
            let request = client
                .post(self.url.clone())
                .json(&json!({ "query": operation.document, "variables": variables }));
            match &self.auth {
                RailwayAuth::Project(token) => request.header("Project-Access-Token", token.expose_secret()),
                RailwayAuth::Account(token) => request.bearer_auth(token.expose_secret()),
            }
        };
        let judge = |answer: &Answer| match classify(answer, operation.name, &sent) {
            Verdict::Stop(Error::RailwayUpdateFailed { detail }) if detail.contains("Not Authorized") => {
                Verdict::Stop(Error::RailwayUpdateFailed {
                    detail: format!("{detail} ({})", self.auth_hint()),
                })
            }
            verdict => verdict,
        };
        self.http.attempt(operation, build, judge).await
    }

    /// Every string of `variables` (ids, token values) and the Railway token:
    /// ids are not secret, but telling them apart is not worth the risk.
    fn sent_values<'a>(&'a self, variables: &'a Value) -> Vec<&'a str> {
        fn strings<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
            match value {
                Value::String(s) => out.push(s),
                Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
                Value::Object(map) => map.values().for_each(|v| strings(v, out)),
                _ => {}
            }
        }
        let mut sent = Vec::new();
        strings(variables, &mut sent);
        sent.push(match &self.auth {
            RailwayAuth::Project(token) | RailwayAuth::Account(token) => token.expose_secret(),
        });
        sent
    }

    /// Which token was sent, for a `Not Authorized` message.
    fn auth_hint(&self) -> &'static str {
        match self.auth {
            RailwayAuth::Project(_) => {
                "RAILWAY_TOKEN was sent as a project token; check it belongs to this project and environment"
            }
            RailwayAuth::Account(_) => {
                "RAILWAY_API_TOKEN was sent as an account/team token; check it can reach this project"
            }
        }
    }
}

pub(crate) fn not_configured(settings: &RailwaySettings) -> Error {
    Error::config(
        format!("Railway is not configured: missing {}", settings.missing().join(", ")),
        "set RAILWAY_TOKEN (project token) or RAILWAY_API_TOKEN, RAILWAY_PROJECT_ID and RAILWAY_SERVICE_ID",
    )
}

/// Whether `data` holds `true` under the mutation's name.
fn confirmed(operation: &str, data: &Value) -> Result<()> {
    match data.get(operation) {
        Some(Value::Bool(true)) => Ok(()),
        answer => Err(Error::RailwayUpdateFailed {
            detail: format!(
                "{operation} answered {} instead of true",
                answer.map_or_else(|| "nothing".to_owned(), |v| clip(&v.to_string()))
            ),
        }),
    }
}

#[derive(Deserialize)]
struct GraphqlAnswer {
    #[serde(default)]
    data: Option<Value>,
    #[serde(default)]
    errors: Option<Vec<GraphqlError>>,
}

#[derive(Deserialize)]
struct GraphqlError {
    #[serde(default)]
    message: String,
}

/// Judges one answer; `sent` values are scrubbed out of the server's texts
/// before they are clipped, so that a cut cannot halve one.
fn classify(answer: &Answer, operation: &str, sent: &[&str]) -> Verdict<Value> {
    // The content type is the server's text too.
    let described = scrub(&answer.describe(), sent);
    if answer.status == reqwest::StatusCode::TOO_MANY_REQUESTS {
        return Verdict::Retry {
            kind: Transient::RateLimited,
            detail: "HTTP 429 Too Many Requests".into(),
            wait: answer.retry_after(),
        };
    }
    let Ok(parsed) = serde_json::from_slice::<GraphqlAnswer>(&answer.body) else {
        return Verdict::Retry {
            kind: Transient::Upstream,
            detail: format!("{described} instead of GraphQL JSON"),
            wait: None,
        };
    };
    if let Some(errors) = parsed.errors.filter(|e| !e.is_empty()) {
        let messages: Vec<String> = errors.iter().map(|e| clip(&scrub(e.message.trim(), sent))).collect();
        return Verdict::Stop(Error::RailwayUpdateFailed {
            detail: format!("{operation} failed: {}", messages.join("; ")),
        });
    }
    if answer.status.is_server_error() {
        return Verdict::Retry {
            kind: Transient::Upstream,
            detail: described,
            wait: None,
        };
    }
    match parsed.data {
        Some(data) if answer.status.is_success() && !data.is_null() => Verdict::Done(data),
        // JSON, but neither data nor errors: not a GraphQL answer (a proxy's
        // or another service's), retried like any garbled body.
        _ if answer.status.is_success() => Verdict::Retry {
            kind: Transient::Upstream,
            detail: format!("{described} without GraphQL data or errors"),
            wait: None,
        },
        _ => Verdict::Stop(Error::RailwayUpdateFailed {
            detail: format!("{operation}: {described} without data"),
        }),
    }
}

/// `variables` as they may be shown and compared: a control character in a
/// value (a pasted newline, an escape sequence) is written out, never acted
/// on by a terminal. Ours never hold one, so they compare as different.
pub fn shown_variables(variables: BTreeMap<String, String>) -> BTreeMap<String, String> {
    variables
        .into_iter()
        .map(|(name, value)| (name, visible(&value)))
        .collect()
}

#[cfg(test)]
mod tests;
