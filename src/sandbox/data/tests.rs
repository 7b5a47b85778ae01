use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderValue, header};
use serde_json::{Value, json};

use super::*;
use crate::sandbox::{ACCESS_LIFETIME_SECS, World};

fn form(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn measure_query(pairs: &[(&str, &str)]) -> MeasureQuery {
    MeasureQuery::from_form(&form(pairs)).unwrap()
}

fn group_ids(body: &Value) -> Vec<i64> {
    body["measuregrps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["grpid"].as_i64().unwrap())
        .collect()
}

fn types_of(group: &Value) -> Vec<i64> {
    group["measures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["type"].as_i64().unwrap())
        .collect()
}

#[test]
fn getmeas_without_filters_answers_three_groups_newest_first() {
    let body = measures(USERS[0], &MeasureQuery::default());
    assert_eq!(group_ids(&body), [314159262, 314159261, 314159260]);
    assert_eq!(
        body["measuregrps"][2],
        json!({
            "grpid": 314159260, "attrib": 0, "date": 1_796_104_800, "created": 1_796_104_860,
            "modified": 1_796_104_860, "category": 1, "deviceid": "sbx-scale-31415926",
            "hash_deviceid": "sbx-scale-31415926",
            "measures": [
                {"value": 72500, "type": 1, "unit": -3, "algo": 0, "fm": 1},
                {"value": 21500, "type": 6, "unit": -3, "algo": 0, "fm": 1},
                {"value": 62, "type": 11, "unit": 0, "algo": 0, "fm": 1},
            ],
            "modelid": 5, "model": "Body+", "comment": null,
        })
    );
    assert_eq!(body["updatetime"], 1_796_277_660);
    assert_eq!(body["timezone"], "Europe/Paris");
    assert_eq!((body["more"].clone(), body["offset"].clone()), (json!(0), json!(0)));
}

#[test]
fn each_person_has_data_of_their_own() {
    let second = measures(USERS[1], &measure_query(&[("meastype", "1")]));
    assert_eq!(group_ids(&second), [271828182, 271828181, 271828180]);
    assert_eq!(second["measuregrps"][0]["measures"][0]["value"], 61100);
    assert_eq!(second["measuregrps"][0]["deviceid"], "sbx-scale-27182818");
    assert_eq!(devices(USERS[1])["devices"][0]["deviceid"], "sbx-scale-27182818");
}

#[test]
fn meastype_keeps_only_that_kind_of_measure() {
    let body = measures(USERS[0], &measure_query(&[("meastype", "11")]));
    let kinds: Vec<Vec<i64>> = body["measuregrps"].as_array().unwrap().iter().map(types_of).collect();
    assert_eq!(kinds, [[11], [11], [11]]);
    let both = measures(USERS[0], &measure_query(&[("meastypes", "1,6")]));
    assert_eq!(types_of(&both["measuregrps"][0]), [1, 6]);
}

#[test]
fn a_meastype_nobody_measured_answers_no_groups() {
    let body = measures(USERS[0], &measure_query(&[("meastype", "76")]));
    assert_eq!(body["measuregrps"], json!([]));
}

#[test]
fn date_range_lastupdate_category_and_offset_narrow_the_groups() {
    let day_two = measures(
        USERS[0],
        &measure_query(&[("startdate", "1796191200"), ("enddate", "1796191200")]),
    );
    assert_eq!(group_ids(&day_two), [314159261]);
    let since = measures(USERS[0], &measure_query(&[("lastupdate", "1796191261")]));
    assert_eq!(group_ids(&since), [314159262]);
    let goals = measures(USERS[0], &measure_query(&[("category", "2")]));
    assert_eq!(group_ids(&goals), Vec::<i64>::new());
    let skipped = measures(USERS[0], &measure_query(&[("offset", "2")]));
    assert_eq!(group_ids(&skipped), [314159260]);
}

#[test]
fn a_filter_that_is_not_a_number_is_named() {
    assert_eq!(
        MeasureQuery::from_form(&form(&[("startdate", "yesterday")])).unwrap_err(),
        "startdate"
    );
    assert_eq!(
        MeasureQuery::from_form(&form(&[("meastypes", "1,x")])).unwrap_err(),
        "meastypes"
    );
    assert_eq!(
        ActivityQuery::from_form(&form(&[("enddateymd", "2026-12")])).unwrap_err(),
        "enddateymd"
    );
}

#[test]
fn getactivity_answers_the_days_in_range_oldest_first() {
    let all = activities(USERS[0], &ActivityQuery::default());
    assert_eq!(
        all["activities"][0],
        json!({
            "date": "2026-12-01", "timezone": "Europe/Paris", "deviceid": null, "hash_deviceid": null,
            "brand": 18, "is_tracker": false, "steps": 8432, "distance": 6324, "elevation": 0,
            "calories": 421, "totalcalories": 2021, "modified": 1_796_162_400,
        })
    );
    let query =
        ActivityQuery::from_form(&form(&[("startdateymd", "2026-12-02"), ("enddateymd", "2026-12-03")])).unwrap();
    let second = activities(USERS[1], &query);
    let days: Vec<&str> = second["activities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["date"].as_str().unwrap())
        .collect();
    assert_eq!(days, ["2026-12-02", "2026-12-03"]);
    assert_eq!(second["activities"][0]["steps"], 9876);
}

fn shared_with(user: &'static str, token: &str, issued: Instant) -> Shared {
    let mut world = World::default();
    world.current_access.insert(user, (token.to_owned(), issued));
    Shared {
        world: Arc::new(Mutex::new(world)),
    }
}

fn bearer(token: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
    );
    headers
}

#[test]
fn a_live_token_names_its_person() {
    let shared = shared_with(USERS[1], "sbx_access_a", Instant::now());
    assert_eq!(live_user(&shared, &bearer("sbx_access_a")), Some(USERS[1]));
}

#[test]
fn an_unknown_or_missing_token_names_nobody() {
    let shared = shared_with(USERS[0], "sbx_access_a", Instant::now());
    assert_eq!(live_user(&shared, &bearer("sbx_access_b")), None);
    assert_eq!(live_user(&shared, &HeaderMap::new()), None);
}

#[test]
fn a_token_expires_after_its_lifetime() {
    let issued = Instant::now();
    let shared = shared_with(USERS[0], "sbx_access_a", issued);
    let lifetime = Duration::from_secs(ACCESS_LIFETIME_SECS);
    let headers = bearer("sbx_access_a");
    let last_second = issued + lifetime - Duration::from_secs(1);
    assert_eq!(live_user_at(&shared, &headers, last_second), Some(USERS[0]));
    assert_eq!(live_user_at(&shared, &headers, issued + lifetime), None);
}

fn fault(target: &str, kind: &str) -> crate::sandbox::Fault {
    serde_json::from_value(json!({"target": target, "kind": kind, "delay_ms": 0})).unwrap()
}

fn take_data_fault_now(shared: &Shared) -> Option<axum::response::Response> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(take_data_fault(shared))
}

#[test]
fn a_data_fault_is_served_once_and_other_targets_are_left_queued() {
    let shared = shared_with(USERS[0], "sbx_access_a", Instant::now());
    shared.world().faults.push_back(fault("withings", "status601"));
    shared.world().faults.push_back(fault("data", "http500"));

    let served = take_data_fault_now(&shared).expect("the data fault");

    assert_eq!(served.status(), axum::http::StatusCode::INTERNAL_SERVER_ERROR);
    assert!(take_data_fault_now(&shared).is_none(), "served once");
    let left: Vec<String> = shared.world().faults.iter().map(|f| f.target.clone()).collect();
    assert_eq!(left, ["withings"]);
}

#[test]
fn a_delay_fault_lets_the_data_call_answer_as_usual() {
    let shared = shared_with(USERS[0], "sbx_access_a", Instant::now());
    shared.world().faults.push_back(fault("data", "delay"));

    assert!(take_data_fault_now(&shared).is_none());
    assert!(shared.world().faults.is_empty(), "taken");
}
