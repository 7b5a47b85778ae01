//! The built-in sandbox: an emulation of Withings' consent page and token
//! endpoint and of Railway's GraphQL API, served on loopback, so the whole
//! job runs with no account and no network (`demo`, `sandbox`, the tests).
//!
//! Withings: codes are single-use and live 30 s; every refresh rotates the
//! pair and the old refresh token is refused from then on; the same refresh
//! request repeated within 10 s gets status 601 with `wait_seconds`; errors
//! come back as HTTP 200 with a non-zero `status`, as the real one does.
//! `getdevice` on `/v2/user` answers status 0 for the access token issued
//! last to each user and status 401 for any other, as Withings does for a
//! dead token; `getmeas` on `/measure` and `getactivity` on `/v2/measure`
//! answer made-up data of that token's person ([`data`]). Two people use the app: the consent page logs in as user 1
//! ([`USERS`]`[0]`), or as user 2 when its URL carries `sandbox_user=2`
//! (a household's second account); each refresh token stays its user's.
//! Railway: `environments`, `variables`, `variableCollectionUpsert`
//! (honouring `skipDeploys` and `replace`) and `serviceInstanceRedeploy`,
//! with both header kinds and `Not Authorized` for a wrong token.
//! Tests queue faults with `POST /_sandbox/faults`, read counters from
//! `GET /_sandbox/stats`, and play a person revoking the app in Withings'
//! settings with `POST /_sandbox/revoke`: every refresh token issued so far
//! is refused from then on (as a rotated one is), and no access token
//! passes a data call, until new consent.

mod data;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

pub const CLIENT_ID: &str = "sandbox-client-id";
pub const CLIENT_SECRET: &str = "sandbox-client-secret";
pub const RAILWAY_PROJECT_TOKEN: &str = "sandbox-railway-project-token";
pub const RAILWAY_ACCOUNT_TOKEN: &str = "sandbox-railway-account-token";
pub const PROJECT_ID: &str = "sandbox-project";
pub const SERVICE_ID: &str = "sandbox-service";
pub const ENVIRONMENTS: [(&str, &str); 2] = [
    ("sandbox-env-production", "production"),
    ("sandbox-env-staging", "staging"),
];
/// The Withings `userid`s of the sandbox's two people.
pub const USERS: [&str; 2] = ["31415926", "27182818"];
const CODE_LIFETIME: Duration = Duration::from_secs(30);
const SAME_ARGUMENTS_WINDOW: Duration = Duration::from_secs(10);
const ACCESS_LIFETIME_SECS: u64 = 10_800;

/// How long the access tokens it issues live (`expires_in`): Withings'
/// three hours unless `sandbox --expires-in` says (a soak rotates often).
#[derive(Debug, Clone, Copy)]
struct AccessLifetime(Duration);

impl Default for AccessLifetime {
    fn default() -> AccessLifetime {
        AccessLifetime(Duration::from_secs(ACCESS_LIFETIME_SECS))
    }
}

/// A fault to serve instead of the next answer (tests and curious users).
#[derive(Debug, Clone, Deserialize)]
pub struct Fault {
    /// `withings` (default: the token endpoint and `/v2/user`), `railway`,
    /// or `data` (`/measure`, `/v2/measure`, `/v2/user`)
    #[serde(default = "default_target")]
    pub target: String,
    /// `http500`, `html502`, `html403`, `truncated`, `empty`, `status522`,
    /// `status601`, `refuse`, `http429`, `graphql_error`, `slow`; `delay`
    /// answers as usual after `delay_ms`
    pub kind: String,
    #[serde(default = "one")]
    pub count: u32,
    #[serde(default)]
    pub wait_seconds: Option<u64>,
    #[serde(default)]
    pub delay_ms: Option<u64>,
}

fn default_target() -> String {
    "withings".into()
}

fn one() -> u32 {
    1
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct Stats {
    pub token_requests: u64,
    pub tokens_issued: u64,
    pub refused: u64,
    pub rate_limited: u64,
    pub access_checks: u64,
    pub railway_requests: u64,
    pub railway_upserts: u64,
    pub deployments: u64,
    /// Calls to the data routes (`/measure`, `/v2/measure`, `/v2/user`).
    pub data_requests: u64,
    /// Data calls answered status 401: no live access token.
    pub data_refused: u64,
}

#[derive(Default)]
struct World {
    /// code → (issued at, scope, userid)
    codes: HashMap<String, (Instant, String, &'static str)>,
    /// refresh token → (still valid?, userid)
    refresh_tokens: HashMap<String, (bool, &'static str)>,
    last_refresh_request: Option<(String, Instant)>,
    /// userid → the access token issued last to that user and when: the
    /// only ones the data calls accept, for `access_lifetime`.
    current_access: HashMap<&'static str, (String, Instant)>,
    access_lifetime: AccessLifetime,
    faults: VecDeque<Fault>,
    stats: Stats,
    railway_variables: HashMap<String, BTreeMap<String, String>>,
}

#[derive(Clone)]
struct Shared {
    world: Arc<Mutex<World>>,
}

impl Shared {
    /// A poisoned lock only means a handler panicked; the data is still usable.
    fn world(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn take_fault(&self, target: &str) -> Option<Fault> {
        let mut world = self.world();
        let index = world.faults.iter().position(|f| f.target == target)?;
        let fault = world.faults.get_mut(index)?;
        fault.count = fault.count.saturating_sub(1);
        let taken = fault.clone();
        if fault.count == 0 {
            world.faults.remove(index);
        }
        Some(taken)
    }
}

/// A running sandbox on its own thread; dropped with the process.
pub struct Sandbox {
    pub addr: SocketAddr,
}

impl Sandbox {
    /// Binds `addr` (loopback only) and serves on a background thread.
    pub fn start(addr: SocketAddr) -> std::io::Result<Sandbox> {
        Sandbox::start_issuing(addr, AccessLifetime::default().0)
    }

    /// As [`Sandbox::start`], its access tokens living `access_lifetime`
    /// (at least a second: `expires_in` counts seconds).
    pub fn start_issuing(addr: SocketAddr, access_lifetime: Duration) -> std::io::Result<Sandbox> {
        if !addr.ip().is_loopback() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("the sandbox only listens on loopback addresses, not {addr}"),
            ));
        }
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        std::thread::Builder::new().name("sandbox".into()).spawn(move || {
            runtime.block_on(async move {
                match tokio::net::TcpListener::from_std(listener) {
                    Ok(listener) => {
                        let lifetime = AccessLifetime(access_lifetime.max(Duration::from_secs(1)));
                        if let Err(e) = axum::serve(listener, router(lifetime)).await {
                            eprintln!("sandbox stopped: {e}");
                        }
                    }
                    Err(e) => eprintln!("sandbox cannot listen: {e}"),
                }
            });
        })?;
        Ok(Sandbox { addr })
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The settings that point withings-token at this sandbox.
    pub fn env_vars(&self) -> Vec<(&'static str, String)> {
        let base = self.base_url();
        vec![
            ("WITHINGS_CLIENT_ID", CLIENT_ID.into()),
            ("WITHINGS_CLIENT_SECRET", CLIENT_SECRET.into()),
            ("WITHINGS_REDIRECT_URI", format!("{base}/callback")),
            ("WITHINGS_API_URL", base.clone()),
            ("WITHINGS_AUTHORIZE_URL", format!("{base}/oauth2_user/authorize2")),
            ("RAILWAY_TOKEN", RAILWAY_PROJECT_TOKEN.into()),
            ("RAILWAY_PROJECT_ID", PROJECT_ID.into()),
            ("RAILWAY_SERVICE_ID", SERVICE_ID.into()),
            ("RAILWAY_API_URL", format!("{base}/graphql/v2")),
        ]
    }
}

/// Plays the browser on the sandbox's consent page: follows the
/// authorization URL and returns the redirect URL carrying the code.
pub fn approve_consent(http: &crate::http::HttpClient, authorization_url: &str) -> crate::error::Result<String> {
    let internal = |message: String| crate::error::Error::internal(anyhow::anyhow!(message));
    let answer = crate::http::block_on(http.send(http.inner()?.get(authorization_url)))?
        .map_err(|e| internal(format!("the sandbox consent page did not answer: {e}")))?;
    answer
        .headers
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .ok_or_else(|| {
            internal(format!(
                "the sandbox consent page did not redirect ({})",
                answer.describe()
            ))
        })
}

fn router(access_lifetime: AccessLifetime) -> Router {
    let world = World {
        access_lifetime,
        ..World::default()
    };
    let shared = Shared {
        world: Arc::new(Mutex::new(world)),
    };
    Router::new()
        .route("/v2/oauth2", post(token_endpoint))
        .route("/v2/user", post(user_endpoint))
        .route("/measure", post(data::measure_endpoint))
        .route("/v2/measure", post(data::activity_endpoint))
        .route("/oauth2_user/authorize2", get(authorize))
        .route("/callback", get(callback))
        .route("/graphql/v2", post(graphql))
        .route("/_sandbox/faults", post(add_fault))
        .route("/_sandbox/stats", get(stats))
        .route("/_sandbox/revoke", post(revoke))
        .with_state(shared)
}

fn random_token(prefix: &str) -> String {
    format!(
        "{prefix}{}",
        crate::fsutil::random_hex(20).unwrap_or_else(|_| format!("{:?}", Instant::now()))
    )
}

/// A Withings error answer: HTTP 200, non-zero status.
struct Refusal {
    status: i64,
    body: Value,
    error: &'static str,
}

impl Refusal {
    fn new(status: i64, error: &'static str) -> Refusal {
        Refusal {
            status,
            body: json!({}),
            error,
        }
    }

    fn into_response(self) -> Response {
        withings(self.status, self.body, Some(self.error))
    }
}

/// A Withings answer, its members in Withings' order (`status` first:
/// the proxy reads it from the start of an answer too long to hold).
#[derive(serde::Serialize)]
struct WithingsAnswer<'a> {
    status: i64,
    body: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
}

fn withings(status: i64, body: Value, error: Option<&str>) -> Response {
    Json(WithingsAnswer { status, body, error }).into_response()
}

async fn add_fault(State(shared): State<Shared>, Json(fault): Json<Fault>) -> StatusCode {
    shared.world().faults.push_back(fault);
    StatusCode::NO_CONTENT
}

async fn stats(State(shared): State<Shared>) -> Json<Stats> {
    Json(shared.world().stats.clone())
}

/// The app's access revoked by both people: every refresh token issued so
/// far is refused as a rotated one is, and every access token is dead.
async fn revoke(State(shared): State<Shared>) -> StatusCode {
    let mut world = shared.world();
    for (valid, _) in world.refresh_tokens.values_mut() {
        *valid = false;
    }
    world.current_access.clear();
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
struct AuthorizeQuery {
    response_type: Option<String>,
    client_id: Option<String>,
    redirect_uri: Option<String>,
    scope: Option<String>,
    state: Option<String>,
    /// `2` logs in as the sandbox's second person; anything else, the first.
    sandbox_user: Option<String>,
}

/// The consent page: approves at once and redirects with a fresh code.
async fn authorize(State(shared): State<Shared>, Query(q): Query<AuthorizeQuery>) -> Response {
    if q.response_type.as_deref() != Some("code") || q.client_id.as_deref() != Some(CLIENT_ID) {
        return (
            StatusCode::BAD_REQUEST,
            "sandbox: response_type=code and the sandbox client_id are required\n",
        )
            .into_response();
    }
    let Some(redirect) = q.redirect_uri.and_then(|r| reqwest::Url::parse(&r).ok()) else {
        return (
            StatusCode::BAD_REQUEST,
            "sandbox: redirect_uri is missing or not a URL\n",
        )
            .into_response();
    };
    let code = random_token("code_");
    let scope = q.scope.unwrap_or_else(|| crate::settings::DEFAULT_SCOPE.into());
    let user = if q.sandbox_user.as_deref() == Some("2") {
        USERS[1]
    } else {
        USERS[0]
    };
    shared.world().codes.insert(code.clone(), (Instant::now(), scope, user));
    let mut location = redirect;
    location.query_pairs_mut().append_pair("code", &code);
    if let Some(state) = q.state {
        location.query_pairs_mut().append_pair("state", &state);
    }
    (StatusCode::FOUND, [(header::LOCATION, location.to_string())]).into_response()
}

async fn callback() -> &'static str {
    "Sandbox consent complete. Copy this page's URL and run: withings-token exchange '<URL>'\n"
}

async fn token_endpoint(State(shared): State<Shared>, Form(form): Form<HashMap<String, String>>) -> Response {
    shared.world().stats.token_requests += 1;
    match shared.take_fault("withings") {
        // Answers as usual, only later: a request that is in flight for a while.
        Some(fault) if fault.kind == "delay" => {
            tokio::time::sleep(Duration::from_millis(fault.delay_ms.unwrap_or(1000))).await;
        }
        Some(fault) => return serve_fault(&fault).await,
        None => {}
    }
    let field = |k: &str| form.get(k).map(String::as_str).unwrap_or_default();
    if field("action") != "requesttoken" {
        return withings(503, json!({}), Some("Invalid Params: invalid action"));
    }
    if field("client_id") != CLIENT_ID {
        return withings(503, json!({}), Some("Invalid Params: invalid client_id"));
    }
    if field("client_secret") != CLIENT_SECRET {
        return withings(503, json!({}), Some("Invalid Params: invalid client_secret"));
    }
    let mut world = shared.world();
    let answer = match field("grant_type") {
        "authorization_code" => exchange_code(&mut world, field("code")),
        "refresh_token" => rotate(&mut world, field("refresh_token")),
        _ => Err(Refusal::new(503, "Invalid Params: invalid grant_type")),
    };
    match answer {
        Ok(body) => {
            world.stats.tokens_issued += 1;
            withings(0, body, None)
        }
        Err(refusal) => {
            if refusal.status == 601 {
                world.stats.rate_limited += 1;
            } else {
                world.stats.refused += 1;
            }
            refusal.into_response()
        }
    }
}

/// `action=getdevice` with `Authorization: Bearer`: valid only for the
/// access token issued last to a person, answering that person's scale.
async fn user_endpoint(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    {
        let mut world = shared.world();
        world.stats.access_checks += 1;
        world.stats.data_requests += 1;
    }
    if let Some(fault) = shared.take_fault("withings") {
        return serve_fault(&fault).await;
    }
    if let Some(faulted) = data::take_data_fault(&shared).await {
        return faulted;
    }
    if form.get("action").map(String::as_str) != Some("getdevice") {
        return withings(503, json!({}), Some("Invalid Params: invalid action"));
    }
    match data::live_user(&shared, &headers) {
        Some(user) => withings(0, data::devices(user), None),
        None => data::invalid_token(&shared),
    }
}

fn exchange_code(world: &mut World, code: &str) -> Result<Value, Refusal> {
    match world.codes.remove(code) {
        Some((issued, scope, user)) if issued.elapsed() <= CODE_LIFETIME => Ok(issue(world, &scope, user)),
        _ => Err(Refusal::new(503, "Invalid Params: invalid code")),
    }
}

fn rotate(world: &mut World, refresh_token: &str) -> Result<Value, Refusal> {
    let now = Instant::now();
    if let Some((last, at)) = &world.last_refresh_request
        && last == refresh_token
        && now.duration_since(*at) < SAME_ARGUMENTS_WINDOW
    {
        let wait = (SAME_ARGUMENTS_WINDOW - now.duration_since(*at)).as_secs().max(1);
        return Err(Refusal {
            status: 601,
            body: json!({ "wait_seconds": wait }),
            error: "Same arguments in less than 10 seconds",
        });
    }
    world.last_refresh_request = Some((refresh_token.to_owned(), now));
    match world.refresh_tokens.get_mut(refresh_token) {
        Some((valid, user)) if *valid => {
            *valid = false;
            let user = *user;
            Ok(issue(world, crate::settings::DEFAULT_SCOPE, user))
        }
        _ => Err(Refusal::new(503, "Invalid Params: invalid refresh_token")),
    }
}

fn issue(world: &mut World, scope: &str, user: &'static str) -> Value {
    let refresh = random_token("sbx_refresh_");
    world.refresh_tokens.insert(refresh.clone(), (true, user));
    let access = random_token("sbx_access_");
    world.current_access.insert(user, (access.clone(), Instant::now()));
    json!({
        "userid": user,
        "access_token": access,
        "refresh_token": refresh,
        "expires_in": world.access_lifetime.0.as_secs(),
        "scope": scope,
        "csrf_token": random_token("csrf_"),
        "token_type": "Bearer",
    })
}

async fn serve_fault(fault: &Fault) -> Response {
    if let Some(ms) = fault.delay_ms {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let html = |status: StatusCode, text: &'static str| {
        (
            status,
            [(header::CONTENT_TYPE, "text/html")],
            format!("<html><body>{text}</body></html>"),
        )
            .into_response()
    };
    match fault.kind.as_str() {
        "http500" => (StatusCode::INTERNAL_SERVER_ERROR, "").into_response(),
        "html502" => html(StatusCode::BAD_GATEWAY, "502 Bad Gateway"),
        "html403" => html(StatusCode::FORBIDDEN, "Access denied"),
        "truncated" => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            "{\"status\":0,\"body\":{\"acc",
        )
            .into_response(),
        "empty" => StatusCode::OK.into_response(),
        "status522" => withings(522, json!({}), Some("Timeout")),
        "status601" => withings(
            601,
            json!({ "wait_seconds": fault.wait_seconds.unwrap_or(1) }),
            Some("Same arguments in less than 10 seconds"),
        ),
        "refuse" => withings(503, json!({}), Some("Invalid Params: invalid refresh_token")),
        "http429" => (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, fault.wait_seconds.unwrap_or(1).to_string())],
            "",
        )
            .into_response(),
        "graphql_error" => Json(json!({ "data": null, "errors": [{ "message": "Not Authorized" }] })).into_response(),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "").into_response(),
    }
}

#[derive(Deserialize)]
struct GraphqlRequest {
    query: String,
    #[serde(default)]
    variables: Value,
}

fn graphql_error(message: &str) -> Response {
    Json(json!({ "data": null, "errors": [{ "message": message }] })).into_response()
}

fn authorized(headers: &HeaderMap) -> bool {
    let project = headers.get("project-access-token").and_then(|v| v.to_str().ok());
    let bearer = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    project == Some(RAILWAY_PROJECT_TOKEN) || bearer == Some(&format!("Bearer {RAILWAY_ACCOUNT_TOKEN}"))
}

async fn graphql(State(shared): State<Shared>, headers: HeaderMap, Json(request): Json<GraphqlRequest>) -> Response {
    shared.world().stats.railway_requests += 1;
    if let Some(fault) = shared.take_fault("railway") {
        return serve_fault(&fault).await;
    }
    if !authorized(&headers) {
        return graphql_error("Not Authorized");
    }
    let vars = &request.variables;
    let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
    if text(vars, "projectId") != PROJECT_ID
        && text(&vars["input"], "projectId") != PROJECT_ID
        && !request.query.contains("serviceInstanceRedeploy")
    {
        return graphql_error("Project not found");
    }
    let query = request.query.as_str();
    let mut world = shared.world();
    if query.contains("variableCollectionUpsert") {
        upsert_variables(&mut world, &vars["input"])
    } else if query.contains("serviceInstanceRedeploy") {
        if text(vars, "serviceId") != SERVICE_ID || !known_environment(&text(vars, "environmentId")) {
            return graphql_error("Service instance not found");
        }
        world.stats.deployments += 1;
        Json(json!({ "data": { "serviceInstanceRedeploy": true } })).into_response()
    } else if query.contains("environments(") {
        let edges: Vec<Value> = ENVIRONMENTS
            .iter()
            .map(|(id, name)| json!({ "node": { "id": id, "name": name } }))
            .collect();
        Json(json!({ "data": { "environments": { "edges": edges } } })).into_response()
    } else if query.contains("variables(") {
        let key = format!("{}/{}", text(vars, "environmentId"), text(vars, "serviceId"));
        let current = world.railway_variables.get(&key).cloned().unwrap_or_default();
        Json(json!({ "data": { "variables": current } })).into_response()
    } else {
        graphql_error("sandbox: unsupported operation")
    }
}

fn known_environment(id: &str) -> bool {
    ENVIRONMENTS.iter().any(|(known, _)| *known == id)
}

fn upsert_variables(world: &mut World, input: &Value) -> Response {
    let service = input.get("serviceId").and_then(Value::as_str).unwrap_or("(shared)");
    let environment = input.get("environmentId").and_then(Value::as_str).unwrap_or_default();
    if !known_environment(environment) {
        return graphql_error("Environment not found");
    }
    let Some(new) = input.get("variables").and_then(Value::as_object) else {
        return graphql_error("variables must be an object");
    };
    let vars = world
        .railway_variables
        .entry(format!("{environment}/{service}"))
        .or_default();
    if input.get("replace").and_then(Value::as_bool) == Some(true) {
        vars.clear();
    }
    for (name, value) in new {
        vars.insert(
            name.clone(),
            value.as_str().map(str::to_owned).unwrap_or_else(|| value.to_string()),
        );
    }
    world.stats.railway_upserts += 1;
    if input.get("skipDeploys").and_then(Value::as_bool) != Some(true) {
        world.stats.deployments += 1;
    }
    Json(json!({ "data": { "variableCollectionUpsert": true } })).into_response()
}
