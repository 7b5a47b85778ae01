//! The upstream fault matrix: every upstream fault × every command that talks
//! upstream, end to end against the sandbox (or a dead port, or a peer that
//! stalls mid-body). Each cell pins the exit code, the error code and the
//! store: byte-identical unless a new set was obtained, with no journal or
//! temporary file left behind.

use crate::support::*;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------
// the matrix

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    Http500,
    Html502,
    TruncatedJson,
    EmptyBody,
    Status522,
    /// Withings' 601 asking for more than we wait (Railway: 429 + Retry-After).
    RateLimitedLong,
    /// Withings refuses the grant (Railway refuses the token).
    RefusedGrant,
    ConnectionRefused,
    /// Headers say 100 bytes, 10 arrive, then nothing.
    StalledMidBody,
    /// One HTTP 500, then a normal answer: the retry gets a new set.
    Http500Once,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmd {
    Refresh,
    Exchange,
    RailwaySync,
}

/// What a cell must show.
struct Expect {
    exit: i32,
    /// `error.code` in the JSON output (`None`: success, no error object).
    code: Option<&'static str>,
    /// Whether the store holds a new set afterwards.
    new_set: bool,
}

fn expect(fault: Fault, cmd: Cmd) -> Expect {
    let failed = |exit, code| Expect {
        exit,
        code: Some(code),
        new_set: false,
    };
    if fault == Fault::Http500Once {
        return Expect {
            exit: 0,
            code: None,
            new_set: cmd != Cmd::RailwaySync,
        };
    }
    if cmd == Cmd::RailwaySync {
        return failed(6, "RAILWAY_UPDATE_FAILED");
    }
    match fault {
        Fault::Http500 | Fault::Html502 | Fault::TruncatedJson | Fault::EmptyBody | Fault::Status522 => {
            failed(5, "UPSTREAM_ERROR")
        }
        Fault::RateLimitedLong => failed(5, "RATE_LIMITED"),
        Fault::RefusedGrant if cmd == Cmd::Exchange => failed(4, "INVALID_CODE"),
        Fault::RefusedGrant => failed(4, "INVALID_REFRESH_TOKEN"),
        Fault::ConnectionRefused | Fault::StalledMidBody => failed(5, "NETWORK_ERROR"),
        Fault::Http500Once => unreachable!(),
    }
}

/// Requests the sandbox sees: a transient fault is tried twice (`--retries
/// 1`), a refusal or a wait longer than we honour only once, a dead or
/// stalling peer never reaches it.
fn expected_requests(fault: Fault, cmd: Cmd) -> u64 {
    match fault {
        Fault::Http500 | Fault::Html502 | Fault::TruncatedJson | Fault::EmptyBody | Fault::Status522 => 2,
        Fault::RateLimitedLong | Fault::RefusedGrant => 1,
        Fault::ConnectionRefused | Fault::StalledMidBody => 0,
        // Railway: the environment lookup twice, then the upsert.
        Fault::Http500Once if cmd == Cmd::RailwaySync => 3,
        Fault::Http500Once => 2,
    }
}

/// Reads one request (headers, then a Content-Length body) so that the
/// client is waiting for the answer, not still sending.
fn read_request(stream: &mut std::net::TcpStream) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = stream.read(&mut buf) {
        if n == 0 {
            return;
        }
        seen.extend_from_slice(&buf[..n]);
        let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&seen[..end]).to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        if seen.len() >= end + 4 + length {
            return;
        }
    }
}

/// A peer that reads the request, promises 100 bytes, sends 10 and stalls.
fn stalling_peer_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                read_request(&mut stream);
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"status\":",
                );
                let _ = stream.flush();
                std::thread::sleep(Duration::from_secs(10));
            });
        }
    });
    format!("http://{addr}")
}

/// The sandbox fault for this cell, aimed at `target`.
fn sandbox_fault(fault: Fault, target: &str) -> Option<Value> {
    let (kind, count) = match fault {
        Fault::Http500 => ("http500", 2),
        Fault::Html502 => ("html502", 2),
        Fault::TruncatedJson => ("truncated", 2),
        Fault::EmptyBody => ("empty", 2),
        Fault::Status522 => ("status522", 2),
        Fault::RateLimitedLong if target == "railway" => ("http429", 2),
        Fault::RateLimitedLong => ("status601", 2),
        Fault::Http500Once => ("http500", 1),
        Fault::RefusedGrant | Fault::ConnectionRefused | Fault::StalledMidBody => return None,
    };
    Some(json!({ "target": target, "kind": kind, "count": count, "wait_seconds": 120 }))
}

struct Cell {
    fault: Fault,
    cmd: Cmd,
    exit: i32,
    code: String,
    store: &'static str,
    upstream: String,
    elapsed: Duration,
}

fn run_cell(fault: Fault, cmd: Cmd) -> Cell {
    let what = format!("{fault:?} × {cmd:?}");
    let (sandbox, env) = given_authorised_sandbox();

    // The command's input, prepared before the fault.
    let mut args: Vec<String> = Vec::new();
    match cmd {
        Cmd::Refresh => args.push("refresh".into()),
        Cmd::RailwaySync => args.push("railway-sync".into()),
        Cmd::Exchange => {
            let Consent { redirect, .. } = sandbox.consent(&env);
            if fault == Fault::RefusedGrant {
                // A real code, already used once: Withings refuses it.
                let out = env.run(&["exchange", &redirect, "--no-railway"]);
                assert_eq!(out.code, 0, "{out:?}");
            }
            args.extend(["exchange".into(), redirect]);
        }
    }
    args.push("--json".into());
    args.extend(FAST_ONE_RETRY.iter().map(|s| s.to_string()));

    // The fault.
    let target = if cmd == Cmd::RailwaySync { "railway" } else { "withings" };
    let url_var = if cmd == Cmd::RailwaySync {
        "RAILWAY_API_URL"
    } else {
        "WITHINGS_API_URL"
    };
    let path = if cmd == Cmd::RailwaySync { "/graphql/v2" } else { "" };
    let mut overrides: Vec<(&str, String)> = Vec::new();
    match fault {
        Fault::ConnectionRefused => overrides.push((url_var, format!("{}{path}", closed_port_url()))),
        Fault::StalledMidBody => overrides.push((url_var, format!("{}{path}", stalling_peer_url()))),
        Fault::RefusedGrant if cmd == Cmd::RailwaySync => {
            overrides.push(("RAILWAY_TOKEN", "not-the-sandbox-project-token".into()))
        }
        Fault::RefusedGrant if cmd == Cmd::Refresh => sandbox.fault(json!({ "kind": "refuse" })),
        _ => {}
    }
    if let Some(spec) = sandbox_fault(fault, target) {
        sandbox.fault(spec);
    }

    let before = env.store_bytes();
    let stats_before = sandbox.stats();
    let mut command = env.cmd();
    command.args(&args);
    for (k, v) in &overrides {
        command.env(k, v);
    }
    let started = Instant::now();
    let Run {
        code: exit,
        stdout,
        stderr,
    } = Run::of(&mut command);
    let elapsed = started.elapsed();
    let stats = sandbox.stats();
    let after = env.store_bytes();

    let want = expect(fault, cmd);
    assert_eq!(exit, want.exit, "{what}: exit\nstdout: {stdout}\nstderr: {stderr}");
    let report: Value =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{what}: stdout is not JSON ({e}): {stdout}"));
    let code = report["error"]["code"].as_str().map(str::to_owned);
    assert_eq!(code.as_deref(), want.code, "{what}: error code\n{stdout}\n{stderr}");
    if let Some(error) = report.get("error") {
        let action = error["action"].as_str().unwrap_or_default();
        assert_eq!(
            action.contains("auth-url"),
            want.exit == 4,
            "{what}: only a refused grant says re-authorise: {action}"
        );
        assert!(
            stderr.contains(&format!("[{}]", want.code.unwrap_or_default())),
            "{what}: {stderr}"
        );
    }
    if want.new_set {
        assert_ne!(after, before, "{what}: a new set was obtained and must be saved");
    } else if want.exit == 0 {
        // A successful push records which generation Railway holds; the set is untouched.
        let tokens = |bytes: &[u8]| serde_json::from_slice::<Value>(bytes).map(|v| v["tokens"].clone()).ok();
        assert_eq!(
            tokens(&after),
            tokens(&before),
            "{what}: the stored set changed\n{stderr}"
        );
    } else {
        assert!(after == before, "{what}: the store changed\n{stderr}");
    }
    let issued = |s: &Value| s["tokens_issued"].as_u64().unwrap_or_default();
    assert_eq!(
        issued(&stats) - issued(&stats_before),
        u64::from(want.new_set),
        "{what}: tokens issued upstream"
    );
    if cmd == Cmd::RailwaySync || want.exit != 0 {
        let upserts = |s: &Value| s["railway_upserts"].as_u64().unwrap_or_default();
        assert_eq!(
            upserts(&stats) - upserts(&stats_before),
            u64::from(want.exit == 0),
            "{what}: Railway upserts"
        );
    }
    let strays: Vec<String> = env
        .store_dir_entries()
        .into_iter()
        .filter(|name| !STORE_WITH_ALERT_STATE.contains(&name.as_str()))
        .collect();
    assert!(strays.is_empty(), "{what}: left beside the store: {strays:?}");
    assert!(elapsed < Duration::from_secs(20), "{what}: took {elapsed:?}");

    let key = if cmd == Cmd::RailwaySync {
        "railway_requests"
    } else {
        "token_requests"
    };
    let requests = stats[key].as_u64().unwrap_or_default() - stats_before[key].as_u64().unwrap_or_default();
    assert_eq!(requests, expected_requests(fault, cmd), "{what}: {key}");
    let upstream = format!("{requests} {target}");
    Cell {
        fault,
        cmd,
        exit,
        code: code.unwrap_or_else(|| "SUCCESS".into()),
        store: if after == before { "identical" } else { "new set" },
        upstream,
        elapsed,
    }
}

#[test]
fn every_upstream_fault_against_every_upstream_command() {
    let faults = [
        Fault::Http500,
        Fault::Html502,
        Fault::TruncatedJson,
        Fault::EmptyBody,
        Fault::Status522,
        Fault::RateLimitedLong,
        Fault::RefusedGrant,
        Fault::ConnectionRefused,
        Fault::StalledMidBody,
        Fault::Http500Once,
    ];
    let cmds = [Cmd::Refresh, Cmd::Exchange, Cmd::RailwaySync];
    let mut cells = Vec::new();
    for fault in faults {
        for cmd in cmds {
            cells.push(run_cell(fault, cmd));
        }
    }
    eprintln!(
        "\n{:<18} {:<12} {:>4}  {:<22} {:<10} {:<11} {:>7}",
        "fault", "command", "exit", "error code", "store", "upstream", "time"
    );
    for c in &cells {
        eprintln!(
            "{:<18} {:<12} {:>4}  {:<22} {:<10} {:<11} {:>5}ms",
            format!("{:?}", c.fault),
            format!("{:?}", c.cmd),
            c.exit,
            c.code,
            c.store,
            c.upstream,
            c.elapsed.as_millis()
        );
    }
    assert_eq!(cells.len(), faults.len() * cmds.len());
}
