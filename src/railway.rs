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
use crate::http::{Answer, HttpClient, Operation, Transient, Verdict, clip, scrub, shown_url, visible};
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
mod tests {
    use super::*;

    use crate::http::answer;

    #[test]
    fn errors_array_fails_even_on_http_200() {
        let v = classify(
            &answer(200, r#"{"data":null,"errors":[{"message":"Not Authorized"}]}"#),
            "upsert",
            &[],
        );
        let Verdict::Stop(e) = v else { panic!() };
        assert_eq!(e.exit_code(), 6);
        assert!(e.to_string().contains("Not Authorized"));
    }

    fn client(auth: RailwayAuth) -> RailwayClient {
        let http = HttpClient::new(crate::settings::HttpPolicy {
            timeout: std::time::Duration::from_secs(1),
            retries: 0,
            retry_delay: std::time::Duration::ZERO,
        })
        .unwrap();
        let (var, token) = match auth {
            RailwayAuth::Project(t) => ("RAILWAY_TOKEN", t),
            RailwayAuth::Account(t) => ("RAILWAY_API_TOKEN", t),
        };
        let token = secrecy::ExposeSecret::expose_secret(&token).to_owned();
        let global = crate::cli::global_args(&["--no-env-file"]);
        let lookup = |name: &str| match name {
            "HOME" => Some("/home/test".to_owned()),
            _ if name == var => Some(token.clone()),
            _ => None,
        };
        let settings = crate::settings::Settings::resolve(&global, None, &lookup).unwrap();
        RailwayClient::new(http, &settings.railway).unwrap()
    }

    fn graphql_error(message: &str) -> Answer {
        answer(
            200,
            &json!({ "data": null, "errors": [{ "message": message }] }).to_string(),
        )
    }

    #[test]
    fn upstream_messages_never_echo_what_was_sent() {
        let railway = client(RailwayAuth::Account("account-token-value".into()));
        let variables = json!({ "input": { "variables": { "WITHINGS_REFRESH_TOKEN": "secret-refresh-value" } } });
        let sent = railway.sent_values(&variables);
        let message = "Invalid value \"secret-refresh-value\" for field; token account-token-value";
        let Verdict::Stop(e) = classify(&graphql_error(message), "upsert", &sent) else {
            panic!("not a stop")
        };
        assert_eq!(
            e.to_string(),
            "Railway was not updated: upsert failed: Invalid value \"[redacted]\" for field; token [redacted]"
        );
    }

    #[test]
    fn a_sent_value_across_the_clip_is_scrubbed_whole() {
        // Clipping first would cut the value at character 200 and leave
        // its first half for the match to miss.
        let message = format!("{} secret-refresh-value", "x".repeat(190));
        let Verdict::Stop(e) = classify(&graphql_error(&message), "upsert", &["secret-refresh-value"]) else {
            panic!("not a stop")
        };
        assert!(!e.to_string().contains("secret-re"), "{e}");
    }

    #[test]
    fn only_the_redeploy_is_never_sent_twice_blindly() {
        for operation in [ENVIRONMENTS, VARIABLES, UPSERT, REDEPLOY] {
            let blind_repeat_is_harmless = operation.name != "serviceInstanceRedeploy";
            assert_eq!(operation.idempotent, blind_repeat_is_harmless, "{}", operation.name);
        }
    }

    #[test]
    fn each_operation_sends_the_query_it_is_named_after() {
        for operation in [ENVIRONMENTS, VARIABLES, UPSERT, REDEPLOY] {
            let word = operation.document.split_whitespace().nth(1).unwrap_or_default();
            assert!(word.starts_with(&format!("{}(", operation.name)), "{}", operation.name);
        }
    }

    #[test]
    fn html_and_429_are_retried() {
        assert!(matches!(
            classify(&answer(403, "<html>Access denied</html>"), "x", &[]),
            Verdict::Retry { .. }
        ));
        assert!(matches!(
            classify(&answer(429, ""), "x", &[]),
            Verdict::Retry {
                kind: Transient::RateLimited,
                ..
            }
        ));
    }

    #[test]
    fn json_without_data_or_errors_is_retried() {
        for body in [r#"{"status":522,"body":{}}"#, r#"{"data":null}"#, "{}"] {
            assert!(
                matches!(
                    classify(&answer(200, body), "x", &[]),
                    Verdict::Retry {
                        kind: Transient::Upstream,
                        ..
                    }
                ),
                "{body}"
            );
        }
    }

    #[test]
    fn a_mutation_is_done_only_when_railway_answers_true() {
        for operation in ["variableCollectionUpsert", "serviceInstanceRedeploy"] {
            assert!(confirmed(operation, &json!({ operation: true })).is_ok());
            for (data, shown) in [
                (json!({ operation: false }), "false"),
                (json!({ operation: null }), "null"),
                (json!({ operation: "true" }), "\"true\""),
                (json!({}), "nothing"),
            ] {
                let Err(e) = confirmed(operation, &data) else {
                    panic!("{data} counted as done")
                };
                assert_eq!(e.code(), "RAILWAY_UPDATE_FAILED");
                assert_eq!(
                    e.to_string(),
                    format!("Railway was not updated: {operation} answered {shown} instead of true")
                );
            }
        }
    }

    #[test]
    fn a_graphql_error_message_is_shown_on_one_line_without_terminal_controls() {
        let message = "Problem\u{1b}[2J\u{202e}\r\nerror: fake line\n";
        let Verdict::Stop(e) = classify(&graphql_error(message), "upsert", &[]) else {
            panic!("not a stop")
        };
        assert_eq!(
            e.to_string(),
            r"Railway was not updated: upsert failed: Problem\u{1b}[2J\u{202e}\u{d}\u{a}error: fake line"
        );
    }

    #[test]
    fn data_is_returned() {
        let Verdict::Done(v) = classify(&answer(200, r#"{"data":{"variableCollectionUpsert":true}}"#), "x", &[]) else {
            panic!()
        };
        assert_eq!(v["variableCollectionUpsert"], Value::Bool(true));
    }
}
