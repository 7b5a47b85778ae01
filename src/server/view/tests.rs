use super::*;
use crate::events::{EventRecord, Health};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use secrecy::SecretString;

use crate::store::StoreLease;

/// A store in memory whose stamp the test sets, counting its reads.
#[derive(Default)]
struct Memory {
    /// The state and its stamp's number (`None`: the store gives none).
    held: Mutex<(StoreState, Option<u64>)>,
    loads: AtomicUsize,
    /// The event record, and how often it was read.
    events: Mutex<Option<Vec<u8>>>,
    event_loads: AtomicUsize,
}

impl Memory {
    fn holding(tokens: Option<TokenSet>, stamp: Option<u64>) -> Arc<Memory> {
        let memory = Arc::new(Memory::default());
        memory.replace(tokens, stamp);
        memory
    }

    fn replace(&self, tokens: Option<TokenSet>, stamp: Option<u64>) {
        let mut held = locked(&self.held);
        let generation = held.0.generation + 1;
        *held = (
            StoreState {
                generation,
                tokens,
                ..StoreState::default()
            },
            stamp,
        );
    }

    fn loads(&self) -> usize {
        self.loads.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl TokenStore for Memory {
    fn location(&self) -> String {
        "memory".into()
    }

    async fn load(&self) -> Result<StoreState> {
        Ok(self.load_stamped().await?.0)
    }

    fn stamp(&self) -> Option<StoreStamp> {
        locked(&self.held).1.map(StoreStamp::numbered)
    }

    async fn load_stamped(&self) -> Result<(StoreState, Option<StoreStamp>)> {
        self.loads.fetch_add(1, Ordering::SeqCst);
        let held = locked(&self.held);
        Ok((held.0.clone(), held.1.map(StoreStamp::numbered)))
    }

    async fn lock(&self, _: Duration) -> Result<Box<dyn StoreLease>> {
        unreachable!("the view never locks")
    }

    async fn load_events(&self) -> Result<Option<Vec<u8>>> {
        self.event_loads.fetch_add(1, Ordering::SeqCst);
        Ok(locked(&self.events).clone())
    }

    async fn swap_events(&self, expected: Option<&[u8]>, next: &[u8]) -> Result<bool> {
        let mut events = locked(&self.events);
        if events.as_deref() != expected {
            return Ok(false);
        }
        *events = Some(next.to_vec());
        Ok(true)
    }
}

const HOUR: chrono::Duration = chrono::Duration::hours(1);

fn tokens(access: &str, expires_in: chrono::Duration) -> TokenSet {
    let now = now();
    TokenSet {
        access_token: Some(SecretString::from(access)),
        refresh_token: SecretString::from(format!("refresh-of-{access}")),
        expires_at: Some(now + expires_in),
        last_refreshed: Some(now + expires_in - HOUR * 3),
        userid: Some("363".into()),
        scope: Some("user.metrics".into()),
    }
}

fn settings() -> Settings {
    let global = crate::cli::overrides(&["--no-env-file", "--store", "/unused"]);
    Settings::resolve(&global, None, &|_: &str| None).unwrap()
}

fn snapshot_of(view: &StoreView, settings: &Settings) -> Arc<Snapshot> {
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    runtime.block_on(view.snapshot(settings)).unwrap()
}

fn access_of(snapshot: &Snapshot) -> String {
    let tokens = snapshot.state.tokens.as_ref().unwrap();
    tokens.access_token.as_ref().unwrap().expose_secret().to_owned()
}

#[test]
fn a_store_is_read_again_only_when_its_stamp_changes() {
    let store = Memory::holding(Some(tokens("first", HOUR * 3)), Some(1));
    let view = StoreView::new(Arc::clone(&store) as Arc<dyn TokenStore>);
    let settings = settings();
    for _ in 0..5 {
        assert_eq!(access_of(&snapshot_of(&view, &settings)), "first");
    }
    assert_eq!(store.loads(), 1);
    store.replace(Some(tokens("second", HOUR * 3)), Some(2));
    assert_eq!(access_of(&snapshot_of(&view, &settings)), "second");
    assert_eq!(access_of(&snapshot_of(&view, &settings)), "second");
    assert_eq!(store.loads(), 2);
}

#[test]
fn a_store_without_a_stamp_is_read_on_every_request() {
    let store = Memory::holding(Some(tokens("first", HOUR * 3)), None);
    let view = StoreView::new(Arc::clone(&store) as Arc<dyn TokenStore>);
    let settings = settings();
    for _ in 0..3 {
        snapshot_of(&view, &settings);
    }
    assert_eq!(store.loads(), 3);
    // Losing its stamp (a file just changed) drops what was kept.
    store.replace(Some(tokens("stamped", HOUR * 3)), Some(7));
    snapshot_of(&view, &settings);
    store.replace(Some(tokens("changing", HOUR * 3)), None);
    assert_eq!(access_of(&snapshot_of(&view, &settings)), "changing");
    assert_eq!(store.loads(), 5);
}

#[test]
fn the_status_rendered_in_one_second_is_what_a_fresh_render_gives() {
    let store = Memory::holding(Some(tokens("the-access", HOUR * 3)), Some(1));
    let view = StoreView::new(store as Arc<dyn TokenStore>);
    let settings = settings();
    let snapshot = snapshot_of(&view, &settings);
    let at = now();
    let first = snapshot
        .status_body_at(&settings, "here", &EventRecord::default(), at)
        .unwrap();
    let again = snapshot
        .status_body_at(&settings, "here", &EventRecord::default(), at)
        .unwrap();
    assert_eq!(first.as_ptr(), again.as_ptr(), "one render per second");
    let expected = status_report_of(
        assess_status(&snapshot.state, None, &settings, at),
        &snapshot.state,
        &settings,
        "here".into(),
        at,
    );
    assert_eq!(first, serde_json::to_vec(&expected).unwrap());
    // Another second is rendered again: `expires_in_hours` moves.
    let later = snapshot
        .status_body_at(
            &settings,
            "here",
            &EventRecord::default(),
            at + chrono::Duration::minutes(30),
        )
        .unwrap();
    let later: serde_json::Value = serde_json::from_slice(&later).unwrap();
    assert_eq!(later["expires_in_hours"], 2.5);
}

#[test]
fn the_broker_serves_a_set_that_lives_min_ttl_more_and_refreshes_one_that_does_not() {
    let store = Memory::holding(Some(tokens("the-access", HOUR)), Some(1));
    let view = StoreView::new(store as Arc<dyn TokenStore>);
    let settings = settings();
    let snapshot = snapshot_of(&view, &settings);
    let at = now();
    let five_minutes = chrono::Duration::minutes(5);
    let (Broker::Serve(body), _) = snapshot.broker_at(&settings, five_minutes, at).unwrap() else {
        panic!("not served");
    };
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({
            "access_token": "the-access",
            "expires_at": rfc3339(at + HOUR),
            "userid": "363",
            "scope": "user.metrics",
        })
    );
    // The same second, another min_ttl: decided for that one, capped
    // to half the set's 3 h lifetime.
    let (broker, in_force) = snapshot.broker_at(&settings, HOUR * 2, at).unwrap();
    let ninety_minutes = chrono::Duration::minutes(90);
    assert!(
        matches!(broker, Broker::Refresh(Want::IfDue { buffer: Some(b) }) if b == ninety_minutes),
        "{broker:?}"
    );
    assert_eq!((in_force.asked, in_force.capped_by), (HOUR * 2, Some(HOUR * 3)));
    // Later, the same min_ttl: the set no longer lives long enough.
    let later = at + chrono::Duration::minutes(56);
    let (broker, _) = snapshot.broker_at(&settings, five_minutes, later).unwrap();
    assert!(matches!(broker, Broker::Refresh(_)), "{broker:?}");
}

#[test]
fn an_empty_store_has_no_tokens_for_the_broker() {
    let store = Memory::holding(None, Some(1));
    let view = StoreView::new(store as Arc<dyn TokenStore>);
    let settings = settings();
    let snapshot = snapshot_of(&view, &settings);
    let (broker, _) = snapshot.broker(&settings, chrono::Duration::minutes(5)).unwrap();
    assert!(matches!(broker, Broker::NoTokens), "{broker:?}");
}

#[test]
fn the_event_record_is_read_at_most_once_a_second() {
    let store = Memory::holding(Some(tokens("the-access", HOUR * 3)), Some(1));
    let view = StoreView::new(Arc::clone(&store) as Arc<dyn TokenStore>);
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    // No record yet: healthy.
    let at = now();
    assert_eq!(runtime.block_on(view.event_record()).unwrap().health, Health::Healthy);
    let since = at - HOUR;
    let record = serde_json::json!({
        "health": {"state": "needs_reauthorization", "since": rfc3339(since), "code": "INVALID_REFRESH_TOKEN", "generation": 1}
    });
    *locked(&store.events) = Some(record.to_string().into_bytes());
    // The second of the first read answers as read then; the next reads again.
    let read_in = |second: i64| runtime.block_on(view.event_record_in(second)).unwrap().health.clone();
    let second = at.timestamp() + 10;
    *locked(&view.events) = Some((second, Arc::new(EventRecord::default())));
    let loads = store.event_loads.load(Ordering::SeqCst);
    assert_eq!(read_in(second), Health::Healthy, "kept for its second");
    assert_eq!(store.event_loads.load(Ordering::SeqCst), loads);
    let needs = |health: Health| matches!(health, Health::NeedsReauthorization { since: at, .. } if at == since);
    assert!(needs(read_in(second + 1)));
    assert!(needs(read_in(second + 1)));
    assert_eq!(store.event_loads.load(Ordering::SeqCst), loads + 1);
}

#[test]
fn the_status_says_since_when_new_consent_is_needed() {
    let store = Memory::holding(Some(tokens("the-access", HOUR * 3)), Some(1));
    let view = StoreView::new(store as Arc<dyn TokenStore>);
    let settings = settings();
    let snapshot = snapshot_of(&view, &settings);
    let at = now();
    let body = |record: &EventRecord| {
        let body = snapshot.status_body_at(&settings, "here", record, at).unwrap();
        serde_json::from_slice::<serde_json::Value>(&body).unwrap()
    };
    let fine = body(&EventRecord::default());
    assert_eq!(fine["needs_reauthorization"], false);
    assert_eq!(fine["needs_reauthorization_since"], serde_json::Value::Null);
    assert_eq!(fine["alert"]["state"], "healthy");
    // The same second, another answer of the record: rendered again.
    let since = at - HOUR;
    let refused = EventRecord {
        health: Health::NeedsReauthorization {
            since,
            code: "INVALID_REFRESH_TOKEN".into(),
            generation: 1,
        },
        ..EventRecord::default()
    };
    let refused = body(&refused);
    assert_eq!(refused["needs_reauthorization"], true);
    assert_eq!(refused["needs_reauthorization_since"], rfc3339(since));
    assert_eq!(refused["alert"]["state"], "needs_reauthorization");
    assert_eq!(refused["alert"]["since"], rfc3339(since));
}
