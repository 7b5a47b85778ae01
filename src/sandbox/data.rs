//! The sandbox's Withings data calls: `getmeas` on `/measure`,
//! `getactivity` on `/v2/measure` and the devices `getdevice` lists, with
//! made-up, fixed data for each of the two people, so a test can tell whose
//! access token reached it. Every answer needs a live access token the
//! sandbox issued (the one issued last to that person, younger than its
//! `expires_in`); any other gets status 401 inside HTTP 200, as Withings
//! answers a dead token. Faults queued with `"target": "data"` hit these
//! routes only, so a test can fault a data call without touching refreshes.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::extract::{Form, State};
use axum::http::{HeaderMap, header};
use axum::response::Response;
use serde_json::{Value, json};

use super::{Shared, USERS, serve_fault, withings};

const TIMEZONE: &str = "Europe/Paris";
/// 2026-12-01 00:00 UTC: the first of the fixed days the data covers.
const FIRST_DAY: i64 = 1_796_083_200;
const DAY: i64 = 86_400;
const DAYS: [&str; 3] = ["2026-12-01", "2026-12-02", "2026-12-03"];
const INVALID_TOKEN: &str = "XRequestID: Not provided invalid_token: The access token provided is invalid";

pub(super) const WEIGHT: i64 = 1;
pub(super) const FAT_RATIO: i64 = 6;
pub(super) const HEART_PULSE: i64 = 11;

/// One person's readings, one per day of [`DAYS`]: weight in grams, fat
/// ratio in thousandths of a percent, heart rate in bpm, then steps.
struct Readings {
    weight: [i64; 3],
    fat_ratio: [i64; 3],
    heart_rate: [i64; 3],
    steps: [i64; 3],
}

const READINGS: [Readings; 2] = [
    Readings {
        weight: [72_500, 72_300, 72_100],
        fat_ratio: [21_500, 21_400, 21_300],
        heart_rate: [62, 64, 61],
        steps: [8_432, 10_211, 6_590],
    },
    Readings {
        weight: [61_200, 61_000, 61_100],
        fat_ratio: [26_800, 26_700, 26_900],
        heart_rate: [70, 68, 71],
        steps: [12_050, 9_876, 11_002],
    },
];

fn readings(user: &str) -> &'static Readings {
    let index = USERS.iter().position(|u| *u == user).unwrap_or(0);
    &READINGS[index]
}

fn device_id(user: &str) -> String {
    format!("sbx-scale-{user}")
}

/// When the person stepped on the scale on day `day` (07:00 in Paris).
fn measured_at(day: usize) -> i64 {
    FIRST_DAY + day as i64 * DAY + 6 * 3600
}

/// Uploaded a minute after the weighing.
fn modified_at(day: usize) -> i64 {
    measured_at(day) + 60
}

/// The person whose live access token `headers` carry, if any.
pub(super) fn live_user(shared: &Shared, headers: &HeaderMap) -> Option<&'static str> {
    live_user_at(shared, headers, Instant::now())
}

fn live_user_at(shared: &Shared, headers: &HeaderMap, now: Instant) -> Option<&'static str> {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))?;
    let world = shared.world();
    let lifetime = world.access_lifetime.0;
    world
        .current_access
        .iter()
        .find(|(_, (token, issued))| token == given && now.saturating_duration_since(*issued) < lifetime)
        .map(|(user, _)| *user)
}

/// Status 401, counted as a refused data call.
pub(super) fn invalid_token(shared: &Shared) -> Response {
    shared.world().stats.data_refused += 1;
    withings(401, json!({}), Some(INVALID_TOKEN))
}

/// A queued `data` fault: `delay` answers as usual after `delay_ms`; any
/// other kind is served instead of the answer.
pub(super) async fn take_data_fault(shared: &Shared) -> Option<Response> {
    let fault = shared.take_fault("data")?;
    if fault.kind == "delay" {
        tokio::time::sleep(Duration::from_millis(fault.delay_ms.unwrap_or(1000))).await;
        return None;
    }
    Some(serve_fault(&fault).await)
}

/// What every data route does before its own work: count, fault, token.
async fn admit(shared: &Shared, headers: &HeaderMap) -> Result<&'static str, Response> {
    shared.world().stats.data_requests += 1;
    if let Some(faulted) = take_data_fault(shared).await {
        return Err(faulted);
    }
    live_user(shared, headers).ok_or_else(|| invalid_token(shared))
}

fn wrong_action() -> Response {
    withings(2554, json!({}), Some("Wrong action or wrong webservice"))
}

fn invalid_params(name: &str) -> Response {
    withings(503, json!({}), Some(&format!("Invalid Params: invalid {name}")))
}

/// `POST /measure`, `action=getmeas`.
pub(super) async fn measure_endpoint(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    data_call(&shared, &headers, &form, "getmeas", |user, form| {
        MeasureQuery::from_form(form).map(|query| measures(user, &query))
    })
    .await
}

/// `POST /v2/measure`, `action=getactivity`.
pub(super) async fn activity_endpoint(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    data_call(&shared, &headers, &form, "getactivity", |user, form| {
        ActivityQuery::from_form(form).map(|query| activities(user, &query))
    })
    .await
}

/// A data call of `action`: admitted by its token (see [`admit`]), then
/// answered with what `body` makes of the person and the form, or the
/// filter it names as not a number.
async fn data_call(
    shared: &Shared,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
    action: &str,
    body: impl FnOnce(&'static str, &HashMap<String, String>) -> Result<Value, &'static str>,
) -> Response {
    let user = match admit(shared, headers).await {
        Ok(user) => user,
        Err(answer) => return answer,
    };
    if form.get("action").map(String::as_str) != Some(action) {
        return wrong_action();
    }
    match body(user, form) {
        Ok(body) => withings(0, body, None),
        Err(name) => invalid_params(name),
    }
}

/// `getmeas`'s filters; each names itself when it is not a number.
#[derive(Debug, Default)]
pub(super) struct MeasureQuery {
    /// `meastype`, or `meastypes` (a comma-separated list)
    pub types: Option<Vec<i64>>,
    pub category: Option<i64>,
    pub startdate: Option<i64>,
    pub enddate: Option<i64>,
    pub lastupdate: Option<i64>,
    pub offset: Option<i64>,
}

fn number(form: &HashMap<String, String>, name: &'static str) -> Result<Option<i64>, &'static str> {
    form.get(name)
        .map(|v| v.trim().parse::<i64>().map_err(|_| name))
        .transpose()
}

impl MeasureQuery {
    pub(super) fn from_form(form: &HashMap<String, String>) -> Result<MeasureQuery, &'static str> {
        let single = number(form, "meastype")?.map(|t| vec![t]);
        let list = form
            .get("meastypes")
            .map(|v| {
                v.split(',')
                    .map(|t| t.trim().parse::<i64>().map_err(|_| "meastypes"))
                    .collect::<Result<Vec<i64>, _>>()
            })
            .transpose()?;
        Ok(MeasureQuery {
            types: single.or(list),
            category: number(form, "category")?,
            startdate: number(form, "startdate")?,
            enddate: number(form, "enddate")?,
            lastupdate: number(form, "lastupdate")?,
            offset: number(form, "offset")?,
        })
    }

    fn keeps_group(&self, day: usize) -> bool {
        let date = measured_at(day);
        self.category.is_none_or(|c| c == 1)
            && self.startdate.is_none_or(|start| date >= start)
            && self.enddate.is_none_or(|end| date <= end)
            && self.lastupdate.is_none_or(|since| modified_at(day) >= since)
    }

    fn keeps_type(&self, kind: i64) -> bool {
        self.types.as_ref().is_none_or(|types| types.contains(&kind))
    }
}

/// `getmeas`'s body: the person's groups, newest first, as filtered.
pub(super) fn measures(user: &str, query: &MeasureQuery) -> Value {
    let person = readings(user);
    let skip = usize::try_from(query.offset.unwrap_or(0)).unwrap_or(0);
    let groups: Vec<Value> = (0..DAYS.len())
        .rev()
        .filter(|day| query.keeps_group(*day))
        .filter_map(|day| {
            let readings = [
                (WEIGHT, person.weight[day], -3),
                (FAT_RATIO, person.fat_ratio[day], -3),
                (HEART_PULSE, person.heart_rate[day], 0),
            ];
            let kept: Vec<Value> = readings
                .iter()
                .filter(|(kind, _, _)| query.keeps_type(*kind))
                .map(|(kind, value, unit)| json!({ "value": value, "type": kind, "unit": unit, "algo": 0, "fm": 1 }))
                .collect();
            (!kept.is_empty()).then(|| group(user, day, kept))
        })
        .skip(skip)
        .collect();
    json!({
        "updatetime": modified_at(DAYS.len() - 1),
        "timezone": TIMEZONE,
        "measuregrps": groups,
        "more": 0,
        "offset": 0,
    })
}

fn group(user: &str, day: usize, measures: Vec<Value>) -> Value {
    let grpid = user.parse::<i64>().unwrap_or(0) * 10 + day as i64;
    json!({
        "grpid": grpid,
        "attrib": 0,
        "date": measured_at(day),
        "created": modified_at(day),
        "modified": modified_at(day),
        "category": 1,
        "deviceid": device_id(user),
        "hash_deviceid": device_id(user),
        "measures": measures,
        "modelid": 5,
        "model": "Body+",
        "comment": null,
    })
}

/// `getdevice`'s body: the person's one scale.
pub(super) fn devices(user: &str) -> Value {
    json!({ "devices": [{
        "type": "Scale",
        "model": "Body+",
        "model_id": 5,
        "battery": "high",
        "deviceid": device_id(user),
        "hash_deviceid": device_id(user),
        "timezone": TIMEZONE,
        "last_session_date": modified_at(DAYS.len() - 1),
    }] })
}

/// `getactivity`'s filters: days as `YYYY-MM-DD` (compared as text, which
/// orders such dates), `lastupdate` as a Unix time.
#[derive(Debug, Default)]
pub(super) struct ActivityQuery {
    pub startdateymd: Option<String>,
    pub enddateymd: Option<String>,
    pub lastupdate: Option<i64>,
}

impl ActivityQuery {
    pub(super) fn from_form(form: &HashMap<String, String>) -> Result<ActivityQuery, &'static str> {
        let day = |name: &'static str| -> Result<Option<String>, &'static str> {
            form.get(name)
                .map(|v| if is_ymd(v) { Ok(v.clone()) } else { Err(name) })
                .transpose()
        };
        Ok(ActivityQuery {
            startdateymd: day("startdateymd")?,
            enddateymd: day("enddateymd")?,
            lastupdate: number(form, "lastupdate")?,
        })
    }

    fn keeps(&self, day: usize) -> bool {
        let date = DAYS[day];
        self.startdateymd.as_deref().is_none_or(|start| date >= start)
            && self.enddateymd.as_deref().is_none_or(|end| date <= end)
            && self.lastupdate.is_none_or(|since| activity_modified_at(day) >= since)
    }
}

fn is_ymd(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == 10
        && bytes.iter().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                *b == b'-'
            } else {
                b.is_ascii_digit()
            }
        })
}

/// The day's total, synced at 22:00 UTC.
fn activity_modified_at(day: usize) -> i64 {
    FIRST_DAY + day as i64 * DAY + 22 * 3600
}

/// `getactivity`'s body: the person's days, oldest first, counted by the
/// phone (no device).
pub(super) fn activities(user: &str, query: &ActivityQuery) -> Value {
    let person = readings(user);
    let days: Vec<Value> = (0..DAYS.len())
        .filter(|day| query.keeps(*day))
        .map(|day| {
            let steps = person.steps[day];
            json!({
                "date": DAYS[day],
                "timezone": TIMEZONE,
                "deviceid": null,
                "hash_deviceid": null,
                "brand": 18,
                "is_tracker": false,
                "steps": steps,
                "distance": steps * 3 / 4,
                "elevation": 0,
                "calories": steps / 20,
                "totalcalories": 1_600 + steps / 20,
                "modified": activity_modified_at(day),
            })
        })
        .collect();
    json!({ "activities": days, "more": false, "offset": 0 })
}

#[cfg(test)]
mod tests;
