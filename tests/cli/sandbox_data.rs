//! The sandbox's Withings data calls (`getmeas`, `getdevice`,
//! `getactivity`): made-up data of the person whose live access token is
//! sent, status 401 inside HTTP 200 for any other token, counted in its
//! stats and faulted on demand, as the proxy's tests will need them.

use crate::support::*;

/// A sandbox, its first person authorised, and the access token issued.
fn given_access() -> (SandboxProcess, TestEnv, String) {
    let (sandbox, env) = given_authorised_sandbox();
    let access = access_token_of(&env);
    (sandbox, env, access)
}

fn access_token_of(env: &TestEnv) -> String {
    let out = env.run(&["access-token"]);
    assert_eq!(out.code, 0, "{out:?}");
    out.stdout.trim_end().to_owned()
}

fn invalid_token() -> Value {
    json!({
        "status": 401,
        "body": {},
        "error": "XRequestID: Not provided invalid_token: The access token provided is invalid",
    })
}

#[test]
fn getmeas_with_a_live_token_answers_the_persons_weights_in_withings_shape() {
    let (sandbox, _env, access) = given_access();

    let answer = sandbox.data_call(
        "/measure",
        Some(&access),
        "action=getmeas&meastype=1&startdate=1796191200",
    );

    assert_eq!(answer, json!({"status": 0, "body": first_persons_weights_body()}));
}

#[test]
fn the_second_persons_token_reads_the_second_persons_data() {
    let (sandbox, env) = given_sandbox();
    let redirect = redirect_as(&sandbox, &env, "default", 2);
    let out = env.run(&["exchange", &redirect, "--no-railway"]);
    assert_eq!(out.code, 0, "{out:?}");
    let access = access_token_of(&env);

    let weights = sandbox.data_call(
        "/measure",
        Some(&access),
        "action=getmeas&meastype=1&enddate=1796104800",
    );
    let devices = sandbox.data_call("/v2/user", Some(&access), "action=getdevice");

    assert_eq!(weights["body"]["measuregrps"][0]["grpid"], 271828180);
    assert_eq!(
        weights["body"]["measuregrps"][0]["measures"],
        json!([{"value": 61200, "type": 1, "unit": -3, "algo": 0, "fm": 1}])
    );
    assert_eq!(weights["body"]["measuregrps"].as_array().unwrap().len(), 1);
    assert_eq!(
        devices,
        json!({"status": 0, "body": {"devices": [{
            "type": "Scale", "model": "Body+", "model_id": 5, "battery": "high",
            "deviceid": "sbx-scale-27182818", "hash_deviceid": "sbx-scale-27182818",
            "timezone": "Europe/Paris", "last_session_date": 1_796_277_660,
        }]}})
    );
}

#[test]
fn getactivity_answers_the_days_asked_for() {
    let (sandbox, _env, access) = given_access();

    let answer = sandbox.data_call(
        "/v2/measure",
        Some(&access),
        "action=getactivity&startdateymd=2026-12-03&enddateymd=2026-12-31",
    );

    assert_eq!(
        answer,
        json!({"status": 0, "body": {"more": false, "offset": 0, "activities": [{
            "date": "2026-12-03", "timezone": "Europe/Paris", "deviceid": null, "hash_deviceid": null,
            "brand": 18, "is_tracker": false, "steps": 6590, "distance": 4942, "elevation": 0,
            "calories": 329, "totalcalories": 1929, "modified": 1_796_335_200,
        }]}})
    );
}

#[test]
fn a_missing_or_unknown_token_is_refused_with_status_401_and_counted() {
    let (sandbox, _env, _access) = given_access();
    let before = sandbox.stats();

    let missing = sandbox.data_call("/measure", None, "action=getmeas");
    let unknown = sandbox.data_call("/v2/measure", Some("sbx_access_made_up"), "action=getactivity");
    let device = sandbox.data_call("/v2/user", Some("sbx_access_made_up"), "action=getdevice");

    assert_eq!(
        (missing, unknown, device),
        (invalid_token(), invalid_token(), invalid_token())
    );
    let after = sandbox.stats();
    assert_eq!(stat_delta(&before, &after, "data_requests"), 3);
    assert_eq!(stat_delta(&before, &after, "data_refused"), 3);
    assert_eq!(
        stat_delta(&before, &after, "access_checks"),
        1,
        "getdevice still counts as one"
    );
}

#[test]
fn a_token_is_refused_once_the_app_is_revoked() {
    let (sandbox, _env, access) = given_access();
    assert_eq!(
        sandbox.data_call("/measure", Some(&access), "action=getmeas")["status"],
        0
    );

    sandbox.revoke();

    assert_eq!(
        sandbox.data_call("/measure", Some(&access), "action=getmeas"),
        invalid_token()
    );
    assert_eq!(stat(&sandbox.stats(), "data_refused"), 1);
}

#[test]
fn a_rotated_access_token_is_refused_and_the_new_one_reads() {
    let (sandbox, env, old_access) = given_access();
    let out = env.run(&["refresh", "--no-railway"]);
    assert_eq!(out.code, 0, "{out:?}");
    let new_access = access_token_of(&env);
    assert_ne!(new_access, old_access);

    assert_eq!(
        sandbox.data_call("/measure", Some(&old_access), "action=getmeas"),
        invalid_token()
    );
    assert_eq!(
        sandbox.data_call("/measure", Some(&new_access), "action=getmeas")["status"],
        0
    );
}

#[test]
fn an_unknown_action_answers_withings_wrong_action_status() {
    let (sandbox, _env, access) = given_access();

    let answer = sandbox.data_call("/measure", Some(&access), "action=getsleep");

    assert_eq!(
        answer,
        json!({"status": 2554, "body": {}, "error": "Wrong action or wrong webservice"})
    );
}

#[test]
fn data_calls_are_counted_apart_from_token_requests() {
    let (sandbox, _env, access) = given_access();
    let before = sandbox.stats();

    sandbox.data_call("/measure", Some(&access), "action=getmeas");
    sandbox.data_call("/v2/measure", Some(&access), "action=getactivity");

    let after = sandbox.stats();
    assert_eq!(stat_delta(&before, &after, "data_requests"), 2);
    assert_eq!(stat_delta(&before, &after, "data_refused"), 0);
    assert_eq!(stat_delta(&before, &after, "token_requests"), 0);
    assert_eq!(stat_delta(&before, &after, "access_checks"), 0);
}

#[test]
fn a_data_fault_answers_the_next_data_call_and_leaves_refreshes_alone() {
    let (sandbox, env, access) = given_access();
    sandbox.fault(json!({"target": "data", "kind": "status601", "wait_seconds": 7}));

    let out = env.run(&["refresh", "--no-railway"]);
    assert_eq!(out.code, 0, "a data fault is not the token endpoint's: {out:?}");
    let access_now = access_token_of(&env);
    let limited = sandbox.data_call("/measure", Some(&access_now), "action=getmeas");
    let answered = sandbox.data_call("/measure", Some(&access_now), "action=getmeas");

    assert_ne!(access_now, access);
    assert_eq!(
        limited,
        json!({"status": 601, "body": {"wait_seconds": 7}, "error": "Same arguments in less than 10 seconds"})
    );
    assert_eq!(answered["status"], 0);
    assert_eq!(stat(&sandbox.stats(), "data_requests"), 2);
}
