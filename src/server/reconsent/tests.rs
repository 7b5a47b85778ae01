use super::*;

use std::collections::HashMap;

use axum::http::HeaderValue;
use secrecy::SecretString;

use crate::sandbox::Sandbox;

const ADMIN: &str = "reconsent-admin-token-0123456789";

fn credentials() -> Credentials {
    Credentials {
        admin: SecretString::from(ADMIN),
        reader: None,
        readers: Vec::new(),
    }
}

fn account(name: &str) -> AccountName {
    AccountName::parse(name).unwrap()
}

/// The query of a link as `/auth/start` receives it.
fn query_of(link: &str) -> StartQuery {
    let url = url::Url::parse(link).unwrap();
    Query::<StartQuery>::try_from_uri(&format!("/?{}", url.query().unwrap()).parse().unwrap())
        .unwrap()
        .0
}

fn refusal(opened: Result<Opener, Page>) -> (u16, String) {
    let page = opened.unwrap_err();
    (page.status().as_u16(), page.title().to_owned())
}

#[test]
fn a_signed_link_opens_for_its_account_within_its_hour() {
    let now = crate::tokens::now();
    let link = link::issue("https://tokens.example", &credentials().admin, &account("alice"), now).unwrap();
    let query = query_of(&link);
    let Ok(Opener::Link(claim)) = open(&credentials(), &HeaderMap::new(), &query, now) else {
        panic!("refused");
    };
    assert_eq!(claim.account, account("alice"));
    let later = now + link::LINK_LIFETIME + chrono::Duration::seconds(1);
    assert_eq!(
        refusal(open(&credentials(), &HeaderMap::new(), &query, later)),
        (410, "This link has expired".into())
    );
}

#[test]
fn a_changed_cut_or_foreign_link_is_refused() {
    let now = crate::tokens::now();
    let link = link::issue("https://tokens.example", &credentials().admin, &account("alice"), now).unwrap();
    let invalid = (403, "This link is not valid".to_owned());
    let moved = StartQuery {
        account: Some("bob".into()),
        ..query_of(&link)
    };
    assert_eq!(refusal(open(&credentials(), &HeaderMap::new(), &moved, now)), invalid);
    let cut = StartQuery {
        sig: None,
        ..query_of(&link)
    };
    assert_eq!(refusal(open(&credentials(), &HeaderMap::new(), &cut, now)), invalid);
    let other_server = Credentials {
        admin: SecretString::from("another-admin-token-0123456789"),
        ..credentials()
    };
    assert_eq!(
        refusal(open(&other_server, &HeaderMap::new(), &query_of(&link), now)),
        invalid
    );
    // A link's parts beside the admin token are still the link's to verify.
    let mut admin = HeaderMap::new();
    admin.insert(ADMIN_HEADER, HeaderValue::from_static(ADMIN));
    assert_eq!(refusal(open(&credentials(), &admin, &moved, now)), invalid);
}

#[test]
fn without_a_link_only_the_admin_token_opens() {
    let now = crate::tokens::now();
    let named = StartQuery {
        account: Some("alice".into()),
        ..StartQuery::default()
    };
    let mut headers = HeaderMap::new();
    headers.insert(ADMIN_HEADER, HeaderValue::from_static(ADMIN));
    let Ok(Opener::Admin(name)) = open(&credentials(), &headers, &named, now) else {
        panic!("refused");
    };
    assert_eq!(name, "alice");
    let needed = (403, "A link is needed".to_owned());
    assert_eq!(refusal(open(&credentials(), &HeaderMap::new(), &named, now)), needed);
    headers.insert(ADMIN_HEADER, HeaderValue::from_static("not-the-admin-token"));
    assert_eq!(refusal(open(&credentials(), &headers, &named, now)), needed);
    assert_eq!(
        refusal(open(&credentials(), &headers, &StartQuery::default(), now)),
        (400, "No account named".into())
    );
}

#[test]
fn the_callback_is_served_at_the_registered_path_unless_an_endpoint_has_it() {
    assert_eq!(registered_path(None), None);
    assert_eq!(registered_path(Some("not a url")), None);
    assert_eq!(registered_path(Some("https://t.example/auth/callback?x=1")), None);
    assert_eq!(
        registered_path(Some("https://t.example/oauth/withings")),
        Some("/oauth/withings".into())
    );
    assert_eq!(registered_path(Some("https://t.example")), Some("/".into()));
    for taken in [
        "https://t.example/health",
        "https://t.example/metrics",
        "https://t.example/v1/access-token",
        "https://t.example/auth/start",
        "https://t.example/admin",
        "https://t.example/admin/token/status",
        "https://t.example/cb/:id",
        "https://t.example/cb/*rest",
    ] {
        assert_eq!(registered_path(Some(taken)), None, "{taken}");
    }
}

#[test]
fn a_state_names_its_account() {
    let state = new_state(&account("home-2"), None).unwrap();
    let (name, random) = state.split_once('.').unwrap();
    assert_eq!(name, "home-2");
    assert!(
        random.len() == 32 && random.bytes().all(|b| b.is_ascii_hexdigit()),
        "{state}"
    );
    assert_eq!(account_of_state(&state), Some("home-2"));
    assert_eq!(account_of_state("no-dot"), None);
}

#[test]
fn withings_error_is_read_from_the_redirect() {
    assert_eq!(withings_error("code=c&state=s"), None);
    assert_eq!(
        withings_error("error=access_denied&error_description=%3Cb%3Eno%3C%2Fb%3E&state=s"),
        Some(("access_denied".into(), Some("<b>no</b>".into())))
    );
    assert_eq!(withings_error("error=x&error=y"), Some(("x".into(), None)));
}

// ---------------------------------------------------------------------------
// the signed link through the whole router, against the in-process sandbox

/// `serve`'s router on a loopback port, its store in `dir` with an account
/// `alice`, Withings the sandbox; the callback is this server's.
async fn a_server(dir: &std::path::Path, sandbox: &Sandbox) -> (String, Settings) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let mut vars: HashMap<String, String> = sandbox.env_vars().into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    vars.insert("WITHINGS_REDIRECT_URI".into(), format!("{base}{CALLBACK_PATH}"));
    vars.insert("ADMIN_API_TOKEN".into(), ADMIN.into());
    let store = dir.join("tokens.json");
    std::fs::create_dir_all(dir.join("tokens.accounts")).unwrap();
    std::fs::write(
        dir.join("tokens.accounts/alice.json"),
        br#"{"version": 1, "generation": 0}"#,
    )
    .unwrap();
    let global = crate::cli::overrides(&["--no-env-file", "--store", &store.display().to_string()]);
    let settings = Settings::resolve(&global, None, &|k: &str| vars.get(k).cloned()).unwrap();
    let state = AppState::new(settings.clone(), std::time::Duration::from_secs(3600)).unwrap();
    state.accounts.list(true).await.unwrap();
    let router = super::super::api::router(Arc::new(state));
    tokio::spawn(async move { axum::serve(listener, router).await });
    (base, settings)
}

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn page(url: &str) -> (u16, Option<String>, String) {
    let answer = browser().get(url).send().await.unwrap();
    let status = answer.status().as_u16();
    let location = answer
        .headers()
        .get(header::LOCATION)
        .map(|v| v.to_str().unwrap().to_owned());
    (status, location, answer.text().await.unwrap())
}

fn title_of(html: &str) -> &str {
    html.split_once("<h1>").unwrap().1.split_once("</h1>").unwrap().0
}

#[tokio::test(flavor = "multi_thread")]
async fn a_one_time_link_reconnects_its_account_once() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = Sandbox::start("127.0.0.1:0".parse().unwrap()).unwrap();
    let (base, settings) = a_server(dir.path(), &sandbox).await;
    let admin = SecretString::from(ADMIN);
    let link = link::issue(&base, &admin, &account("alice"), crate::tokens::now()).unwrap();

    // A preview's HEAD spends nothing.
    let head = browser().head(&link).send().await.unwrap();
    assert_eq!(
        (head.status().as_u16(), head.headers().get(header::LOCATION)),
        (200, None)
    );
    let (status, consent, html) = page(&link).await;
    assert_eq!(status, 302, "{html}");
    let consent = consent.unwrap();
    assert!(
        consent.starts_with(&format!("{}/oauth2_user/authorize2?", sandbox.base_url())),
        "{consent}"
    );
    let consent_url = url::Url::parse(&consent).unwrap();
    let state = consent_url.query_pairs().find(|(k, _)| k == "state").unwrap().1;
    assert!(state.starts_with("alice."), "{state}");

    // A preview (or a mail scanner) that opened the link first does not use
    // it up, nor replace its state: the person's own tap continues the
    // consent it started, and opening it writes nothing.
    let alice_store = crate::store::open(&settings.for_account(&account("alice")).unwrap()).unwrap();
    let generation = alice_store.load().await.unwrap().generation;
    let (status, again, html) = page(&link).await;
    assert_eq!(status, 302, "{html}");
    let consent = again.unwrap();
    assert_eq!(consent, consent_url.to_string(), "the same consent, the same state");
    assert_eq!(
        alice_store.load().await.unwrap().generation,
        generation,
        "nothing written"
    );
    let (status, back, _) = page(&consent).await;
    assert_eq!(status, 302);
    let (status, _, html) = page(&back.unwrap()).await;
    assert_eq!(
        (status, title_of(&html)),
        (200, "Account alice is connected again"),
        "{html}"
    );
    assert!(
        html.contains(&format!("Withings user {}", crate::sandbox::USERS[0])),
        "{html}"
    );
    let alice = crate::store::open(&settings.for_account(&account("alice")).unwrap()).unwrap();
    let tokens = alice.load().await.unwrap().tokens.unwrap();
    assert_eq!(tokens.userid.as_deref(), Some(crate::sandbox::USERS[0]));
    let refresh = secrecy::ExposeSecret::expose_secret(&tokens.refresh_token).to_owned();
    assert!(!html.contains(&refresh), "no token on the page");

    // Once its consent is saved, the link is spent: refused, nothing started.
    let (status, location, html) = page(&link).await;
    assert_eq!(
        (status, location, title_of(&html)),
        (410, None, "This link was already used")
    );

    // A link made an hour and more ago has expired; nothing is started.
    let old = crate::tokens::now() - link::LINK_LIFETIME - chrono::Duration::seconds(5);
    let expired = link::issue(&base, &admin, &account("alice"), old).unwrap();
    let (status, location, html) = page(&expired).await;
    assert_eq!(
        (status, location, title_of(&html)),
        (410, None, "This link has expired")
    );
    // A link for an account the server does not have.
    let carol = link::issue(&base, &admin, &account("carol"), crate::tokens::now()).unwrap();
    let (status, _, html) = page(&carol).await;
    assert_eq!((status, title_of(&html)), (404, "No such account"));
}
