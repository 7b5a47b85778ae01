//! One-tap re-consent hosted by `serve`: `GET /auth/start` sends the
//! browser to Withings' consent page with a state naming the account, and
//! the callback (`/auth/callback`, or the path of WITHINGS_REDIRECT_URI)
//! exchanges the code at once, saves, pushes the copies and shows a page
//! naming the account, never a token. A replayed redirect, a state of
//! another account, a declined consent, a missing credential, a forged
//! link or an unknown account get a page saying so, and nothing is
//! exchanged. Every page is escaped HTML with its security headers.
//! `/admin/token/status`, `/admin/accounts` and `/metrics` say which
//! account needs new consent. (The signed one-time link is followed end to
//! end in `server::reconsent`'s unit tests.)

use crate::support::*;

use std::path::PathBuf;
use std::time::Duration;

const ALICE_USER: &str = "31415926";
const BOB_USER: &str = "27182818";

const CONTENT_SECURITY_POLICY: &str =
    "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// A household whose `serve` is the app's registered callback: alice holds
/// a set the sandbox issued (its first person), her lines are in the env
/// file, and bob holds a set written by hand (the sandbox's second person).
struct Household {
    sandbox: SandboxProcess,
    env: TestEnv,
    server: ServeProcess,
    env_file: PathBuf,
    /// `http://127.0.0.1:PORT`, where `serve` listens.
    base: String,
}

fn given_a_household_served_with_callback_at(callback_path: &str) -> Household {
    given_a_household_served_with(callback_path, |_, _| {})
}

/// The same, with `configure` given the user and `serve`'s address before
/// `serve` starts (its event sinks, its public URL).
fn given_a_household_served_with(callback_path: &str, configure: impl FnOnce(&mut TestEnv, &str)) -> Household {
    let (sandbox, mut env) = given_sandbox();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    env.set("WITHINGS_REDIRECT_URI", format!("{base}{callback_path}"))
        .serve_credentials();
    configure(&mut env, &base);
    let redirect = redirect_as(&sandbox, &env, "alice", 1);
    let out = env.run(&["exchange", &redirect, "--account", "alice", "--no-railway"]);
    assert_eq!(out.code, 0, "{out:?}");
    seed_account(&env, "bob", ("bob-access-000", "bob-refresh-000"), 3 * 3600, BOB_USER);
    let env_file = env.write_env_file("# the household\nALICE_WITHINGS_REFRESH_TOKEN=stale-alice\nOTHER=kept\n");
    let listen = format!("127.0.0.1:{port}");
    let server = env.serve_with(&["--listen", &listen, "--check-interval", "1h"]);
    Household {
        sandbox,
        env,
        server,
        env_file,
        base,
    }
}

impl Household {
    /// `GET` of a URL on this server, by its path.
    fn open(&self, url: &str) -> Answer {
        let path = url
            .strip_prefix(&self.base)
            .unwrap_or_else(|| panic!("{url} is not on {}", self.base));
        self.server.get(path, &[])
    }

    fn alice_store(&self) -> Vec<u8> {
        std::fs::read(account_store(&self.env, "alice")).expect("alice's store")
    }
}

/// The value of `key` in the query of `url`.
fn param(url: &str, key: &str) -> String {
    let query = url.split_once('?').expect("query").1;
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key} in {url}"))
        .to_owned()
}

/// The page's heading, after checking that it is a page with every
/// security header.
fn title_of(page: &Answer) -> &str {
    for (header, value) in [
        ("content-type", "text/html; charset=utf-8"),
        ("content-security-policy", CONTENT_SECURITY_POLICY),
        ("referrer-policy", "no-referrer"),
        ("x-content-type-options", "nosniff"),
        ("cache-control", "no-store"),
    ] {
        assert_eq!(page.header(header), Some(value), "{header}: {page:?}");
    }
    let heading = page
        .body
        .split_once("<h1>")
        .and_then(|(_, rest)| rest.split_once("</h1>"));
    heading.unwrap_or_else(|| panic!("no heading: {page:?}")).0
}

#[test]
fn a_revoked_account_is_connected_again_through_start_consent_and_callback() {
    let h = given_a_household_served_with_callback_at("/auth/callback");
    h.sandbox.revoke();
    let refused = h.server.admin_post("/admin/token/refresh?account=alice", None);
    assert_eq!(
        (refused.status, refused.error_code().as_str()),
        (400, "INVALID_REFRESH_TOKEN"),
        "{refused:?}"
    );
    let revoked = stored_at(&account_store(&h.env, "alice"));

    let start = h.server.admin_get("/auth/start?account=alice");
    assert_eq!(start.status, 302, "{start:?}");
    assert_eq!(start.header("cache-control"), Some("no-store"));
    assert_eq!(start.header("referrer-policy"), Some("no-referrer"));
    let consent = start.header("location").expect("location");
    let sandbox_base = &h.sandbox.env["WITHINGS_API_URL"];
    assert!(
        consent.starts_with(&format!("{sandbox_base}/oauth2_user/authorize2?")),
        "{consent}"
    );
    assert!(param(consent, "state").starts_with("alice."), "{consent}");
    let back = h.sandbox.approve(consent);
    assert!(back.starts_with(&format!("{}/auth/callback?code=", h.base)), "{back}");

    let before = h.sandbox.stats();
    let connected = h.open(&back);
    assert_eq!(connected.status, 200, "{connected:?}");
    assert_eq!(title_of(&connected), "Account alice is connected again");
    assert!(
        connected.body.contains(&format!(
            "<p>Withings user {ALICE_USER} gave consent, and withings-token saved the new tokens. You can close this tab.</p>"
        )),
        "{}",
        connected.body
    );
    let alice = stored_at(&account_store(&h.env, "alice"));
    let new_refresh = alice["tokens"]["refresh_token"].as_str().expect("a set");
    assert!(new_refresh.starts_with("sbx_refresh_"), "{alice}");
    assert_ne!(alice["tokens"]["refresh_token"], revoked["tokens"]["refresh_token"]);
    assert_eq!(alice["tokens"]["userid"], ALICE_USER);
    // The copies: the env file's lines of alice, and Railway.
    let text = std::fs::read_to_string(&h.env_file).expect("env file");
    assert_eq!(env_value(&text, "ALICE_WITHINGS_REFRESH_TOKEN"), new_refresh);
    assert!(
        text.starts_with("# the household\n") && text.contains("\nOTHER=kept\n"),
        "{text}"
    );
    let after = h.sandbox.stats();
    assert_eq!(stat_delta(&before, &after, "tokens_issued"), 1);
    assert_eq!(stat_delta(&before, &after, "railway_upserts"), 1);
    let code = param(&back, "code");
    for secret in [new_refresh, code.as_str()] {
        assert!(!connected.body.contains(secret), "{}", connected.body);
        assert!(!h.server.log().contains(secret), "{}", h.server.log());
    }

    // The same redirect again: Withings refuses the spent code, and the
    // store is as the first one left it.
    let kept = h.alice_store();
    let replayed = h.open(&back);
    assert_eq!(replayed.status, 400, "{replayed:?}");
    assert_eq!(title_of(&replayed), "Account alice was not connected");
    assert!(replayed.body.contains("<code>INVALID_CODE</code>"), "{}", replayed.body);
    assert!(!replayed.body.contains(&code), "{}", replayed.body);
    assert_eq!(h.alice_store(), kept);

    // And the account works again.
    let refreshed = h.server.admin_post(
        "/admin/token/refresh?account=alice",
        Some(r#"{"update_railway": false}"#),
    );
    assert_eq!(refreshed.status, 200, "{refreshed:?}");
    assert_eq!(refreshed.json()["outcome"], "refreshed");
}

#[test]
fn a_state_of_another_account_or_a_forged_one_is_refused_before_anything_is_sent() {
    let h = given_a_household_served_with_callback_at("/oauth/withings");
    let alice_start = h.server.admin_get("/auth/start?account=alice");
    let bob_start = h.server.admin_get("/auth/start?account=bob");
    assert_eq!((alice_start.status, bob_start.status), (302, 302));
    let bob_state = param(bob_start.header("location").expect("location"), "state");
    let (bob, bob_random) = bob_state.split_once('.').expect("a state names its account");
    assert_eq!(bob, "bob");
    let back = h.sandbox.approve(alice_start.header("location").expect("location"));
    assert!(back.starts_with(&format!("{}/oauth/withings?code=", h.base)), "{back}");
    let code = param(&back, "code");

    let before = h.sandbox.stats();
    let kept = h.alice_store();
    for forged in [
        format!("alice.{bob_random}"),
        bob_state.clone().replace("bob.", "carol."),
        "alice.00000000000000000000000000000000".to_owned(),
        "no-account-in-it".to_owned(),
    ] {
        let answer = h
            .server
            .get(&format!("/oauth/withings?code={code}&state={forged}"), &[]);
        assert_eq!(answer.status, 400, "{forged}: {answer:?}");
        assert_eq!(
            title_of(&answer),
            "Not a consent this server is waiting for",
            "{forged}"
        );
        assert!(answer.body.contains("<code>INVALID_STATE</code>"), "{}", answer.body);
    }
    assert_eq!(
        stat_delta(&before, &h.sandbox.stats(), "token_requests"),
        0,
        "nothing was sent"
    );
    assert_eq!(h.alice_store(), kept);

    // Alice's own redirect, at the registered path, still connects her.
    let connected = h.open(&back);
    assert_eq!(connected.status, 200, "{connected:?}");
    assert_eq!(title_of(&connected), "Account alice is connected again");
}

#[test]
fn a_declined_consent_shows_withings_words_escaped_and_exchanges_nothing() {
    let h = given_a_household_served_with_callback_at("/auth/callback");
    let before = h.sandbox.stats();
    let declined = h.server.get(
        "/auth/callback?error=access_denied&error_description=%3Cscript%3Ealert(1)%3C%2Fscript%3E&state=alice.0123",
        &[],
    );
    assert_eq!(declined.status, 400, "{declined:?}");
    assert_eq!(title_of(&declined), "Consent was declined");
    assert!(
        declined.body.contains(
            "<p>Withings says the consent was declined (&lt;script&gt;alert(1)&lt;/script&gt;). Nothing was exchanged: the account stays disconnected.</p>"
        ),
        "{}",
        declined.body
    );
    assert!(!declined.body.contains("<script>"), "{}", declined.body);
    assert!(
        declined.body.contains("<code>ACCESS_DENIED</code>"),
        "{}",
        declined.body
    );

    let bare = h.server.get("/auth/callback", &[]);
    assert_eq!((bare.status, title_of(&bare)), (400, "Not a consent redirect"));
    assert_eq!(stat_delta(&before, &h.sandbox.stats(), "token_requests"), 0);
}

#[test]
fn start_needs_a_link_or_the_admin_token_and_an_account_of_the_server() {
    let h = given_a_household_served_with_callback_at("/auth/callback");
    let pending_before = stored_at(&account_store(&h.env, "alice"))["pending_auth"].clone();

    let anonymous = h.server.get("/auth/start?account=alice", &[]);
    assert_eq!((anonymous.status, title_of(&anonymous)), (403, "A link is needed"));
    let forged = h.server.get(
        &format!(
            "/auth/start?account=alice&expires=99999999999&nonce={}&sig={}",
            "0".repeat(32),
            "0".repeat(64)
        ),
        &[],
    );
    assert_eq!((forged.status, title_of(&forged)), (403, "This link is not valid"));
    let unknown = h.server.admin_get("/auth/start?account=carol");
    assert_eq!((unknown.status, title_of(&unknown)), (404, "No such account"));
    assert!(
        unknown
            .body
            .contains("<p>There is no account carol on this server. Nothing was started.</p>"),
        "{}",
        unknown.body
    );
    let markup = h.server.admin_get("/auth/start?account=%3Cb%3E'%22");
    assert_eq!((markup.status, title_of(&markup)), (404, "No such account"));
    assert!(
        markup
            .body
            .contains("There is no account &lt;b&gt;&#39;&quot; on this server."),
        "{}",
        markup.body
    );
    assert_eq!(
        stored_at(&account_store(&h.env, "alice"))["pending_auth"],
        pending_before,
        "no consent was started"
    );
}

#[test]
fn status_accounts_and_metrics_say_which_account_needs_new_consent_since_when() {
    let h = given_a_household_served_with_callback_at("/auth/callback");
    let since = "2026-01-02T03:04:05Z";
    // Refused for the set in use (a refusal of an older set is over).
    let generation = stored_at(&account_store(&h.env, "alice"))["tokens_generation"].clone();
    let record = json!({
        "health": {"state": "needs_reauthorization", "since": since, "code": "INVALID_REFRESH_TOKEN", "generation": generation}
    });
    let events = account_store(&h.env, "alice").with_file_name("alice.events.json");
    std::fs::write(&events, record.to_string()).expect("event record");

    let alice = h.server.admin_get("/admin/token/status?account=alice").json();
    assert_eq!(
        (&alice["needs_reauthorization"], &alice["needs_reauthorization_since"]),
        (&json!(true), &json!(since))
    );
    let bob = h.server.admin_get("/admin/token/status?account=bob").json();
    assert_eq!(
        (&bob["needs_reauthorization"], &bob["needs_reauthorization_since"]),
        (&json!(false), &Value::Null)
    );
    let rows = h.server.admin_get("/admin/accounts").json();
    let needs: Vec<(Value, Value, Value)> = rows["accounts"]
        .as_array()
        .expect("accounts")
        .iter()
        .map(|row| {
            (
                row["name"].clone(),
                row["needs_reauthorization"].clone(),
                row["needs_reauthorization_since"].clone(),
            )
        })
        .collect();
    assert_eq!(
        needs,
        [
            (json!("alice"), json!(true), json!(since)),
            (json!("bob"), json!(false), Value::Null),
        ]
    );
    let metrics = h.server.get("/metrics", &[]).body;
    let mut gauges: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("withings_token_needs_reauthorization"))
        .collect();
    gauges.sort();
    assert_eq!(
        gauges,
        [
            "withings_token_needs_reauthorization{account=\"alice\"} 1",
            "withings_token_needs_reauthorization{account=\"bob\"} 0",
        ]
    );
}

/// The whole loop as a household meets it: Withings revokes alice's
/// consent, the refresh is refused, one `reauthorization_required` goes to
/// the Slack webhook (signed) and the hook with a one-time link to this
/// `serve`; the person follows the link through Withings' consent page
/// back to the callback, the set is saved and the env file rewritten, one
/// `recovered` follows, and `status` says the account works. No delivered
/// body holds a token or a secret.
#[test]
fn a_revoked_account_is_announced_with_a_link_that_brings_it_back() {
    let hooks = webhook_receiver();
    hooks.mount(
        hook_post()
            .and(signed_with(WEBHOOK_SECRET))
            .respond_with(ResponseTemplate::new(200)),
    );
    let mut log = PathBuf::new();
    let h = given_a_household_served_with("/auth/callback", |env, base| {
        log = env.work_dir().join("events.jsonl");
        env.set("WITHINGS_TOKEN_PUBLIC_URL", base)
            .set("WITHINGS_TOKEN_WEBHOOK_URL", hook_url(&hooks))
            .set("WITHINGS_TOKEN_WEBHOOK_SECRET", WEBHOOK_SECRET)
            .set("WITHINGS_TOKEN_WEBHOOK_FORMAT", "slack")
            .set(
                "WITHINGS_TOKEN_ON_EVENT",
                format!("cat >> {}; echo >> {}", log.display(), log.display()),
            );
    });
    let events_of = |kind: &str| -> Vec<Value> {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str::<Value>(l).expect("event json"))
            .filter(|e| e["type"] == kind && e["account"] == "alice")
            .collect()
    };
    let before = stored_at(&account_store(&h.env, "alice"));
    let revoked = before["tokens"]["refresh_token"].as_str().expect("a set").to_owned();
    h.sandbox.revoke();
    let refused = h.server.admin_post("/admin/token/refresh?account=alice", None);
    assert_eq!(refused.error_code(), "INVALID_REFRESH_TOKEN", "{refused:?}");
    assert!(wait_until(Duration::from_secs(15), || !events_of(
        "reauthorization_required"
    )
    .is_empty()));
    let announced = events_of("reauthorization_required");
    let link = announced[0]["link"].as_str().expect("a link").to_owned();
    assert!(
        link.starts_with(&format!("{}/auth/start?account=alice&expires=", h.base)),
        "{link}"
    );
    let slack = hook_requests(&hooks);
    let slack: Value = serde_json::from_slice(&slack.last().expect("a Slack message").body).expect("json");
    let text = slack["text"].as_str().expect("Slack text");
    // Slack's own escaping: `&` is `&amp;` in its markup, links included.
    let slack_link = link.replace('&', "&amp;");
    assert!(text.contains(&format!("<{slack_link}|Re-authorise alice>")), "{text}");
    assert!(text.contains("reauthorization_required"), "{text}");
    let status = h.server.admin_get("/admin/token/status?account=alice").json();
    assert_eq!(status["needs_reauthorization"], true);

    let start = h.open(&link);
    assert_eq!(start.status, 302, "{start:?}");
    let back = h.sandbox.approve(start.header("location").expect("consent page"));
    let connected = h.open(&back);
    assert_eq!(
        (connected.status, title_of(&connected)),
        (200, "Account alice is connected again")
    );
    assert!(wait_until(Duration::from_secs(15), || !events_of("recovered").is_empty()));
    assert_eq!(events_of("reauthorization_required").len(), 1, "said once");
    let recovered = &events_of("recovered")[0];
    assert_eq!(recovered["since"], announced[0]["at"]);

    let stored = stored_at(&account_store(&h.env, "alice"));
    let refresh = stored["tokens"]["refresh_token"]
        .as_str()
        .expect("a new set")
        .to_owned();
    let env_file = std::fs::read_to_string(&h.env_file).expect("env file");
    assert_eq!(env_value(&env_file, "ALICE_WITHINGS_REFRESH_TOKEN"), refresh);
    let status = h.env.run(&["status", "--account", "alice", "--json"]).json();
    assert_eq!(status["alert"]["state"], "healthy");
    assert_eq!(status["needs_reauthorization"], false);
    let admin = h.server.admin_get("/admin/token/status?account=alice").json();
    assert_eq!(admin["needs_reauthorization"], false);
    // The link is spent: it opens nothing again.
    assert_eq!(h.open(&link).status, 410);

    let access = stored["tokens"]["access_token"].as_str().unwrap_or_default().to_owned();
    let delivered = std::fs::read_to_string(&log).unwrap();
    let secrets = [
        refresh.as_str(),
        access.as_str(),
        revoked.as_str(),
        ADMIN_TOKEN,
        WEBHOOK_SECRET,
        HOOK_PATH,
        "sandbox-client-secret",
    ];
    for secret in secrets {
        assert!(!delivered.contains(secret), "a delivered event holds a secret");
    }
    assert_no_secret_in_bodies(&hooks, &secrets);
}

/// An event record that cannot be read costs `/admin/token/status` its
/// alert, not the whole status (nor the broker): the token's state is
/// still what the store says.
#[test]
fn an_unreadable_event_record_leaves_the_admin_status_answering() {
    let h = given_a_household_served_with_callback_at("/auth/callback");
    let events = account_store(&h.env, "alice").with_file_name("alice.events.json");
    std::fs::create_dir_all(&events).expect("a directory where the record should be");
    let status = h.server.admin_get("/admin/token/status?account=alice");
    assert_eq!(status.status, 200, "{status:?}");
    let status = status.json();
    assert_eq!(status["token_configured"], true);
    assert_eq!(status["alert"]["state"], "healthy");
    assert_eq!(status["needs_reauthorization"], false);
}
