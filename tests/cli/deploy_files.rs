//! The deploy files at the repository's root, as far as they can be
//! checked without Docker or Railway: the `Dockerfile`'s stages, build,
//! user, signal, health check and entry point, and its health check run
//! against a real `serve`; `railway.toml`'s keys against Railway's
//! documented names, and its health check path against a real `serve`.
//! (No Docker daemon here: the image itself is not built.)

use crate::support::*;

use std::path::PathBuf;

fn repository_file(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// One instruction of a Dockerfile: its keyword (upper case) and the rest.
#[derive(Debug)]
struct Instruction {
    keyword: String,
    rest: String,
}

/// The instructions, continuation lines joined, comments and blank lines dropped.
fn instructions(dockerfile: &str) -> Vec<Instruction> {
    let mut joined = Vec::new();
    let mut pending = String::new();
    for line in dockerfile.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(start) => pending.push_str(start),
            None => {
                pending.push_str(line);
                joined.push(std::mem::take(&mut pending));
            }
        }
    }
    assert!(pending.is_empty(), "a continuation runs off the end: {pending}");
    joined
        .into_iter()
        .map(|line| {
            let (keyword, rest) = line.split_once(' ').unwrap_or((&line, ""));
            Instruction {
                keyword: keyword.to_uppercase(),
                rest: rest.trim().to_owned(),
            }
        })
        .collect()
}

/// The Dockerfile's stages, each from its `FROM`.
fn stages(instructions: &[Instruction]) -> Vec<&[Instruction]> {
    let starts: Vec<usize> = (0..instructions.len())
        .filter(|&i| instructions[i].keyword == "FROM")
        .collect();
    assert_eq!(starts.first(), Some(&0), "the first instruction is a FROM");
    let ends = starts.iter().skip(1).copied().chain([instructions.len()]);
    starts
        .iter()
        .zip(ends)
        .map(|(&start, end)| &instructions[start..end])
        .collect()
}

fn the<'a>(stage: &'a [Instruction], keyword: &str) -> Vec<&'a str> {
    stage
        .iter()
        .filter(|i| i.keyword == keyword)
        .map(|i| i.rest.as_str())
        .collect()
}

/// The shell command of the `HEALTHCHECK` (after its options and `CMD`).
fn health_check_command(runtime: &[Instruction]) -> String {
    let checks = the(runtime, "HEALTHCHECK");
    assert_eq!(checks.len(), 1, "{checks:?}");
    let (options, command) = checks[0].split_once("CMD ").expect("HEALTHCHECK ... CMD");
    assert!(options.split_whitespace().all(|o| o.starts_with("--")), "{options}");
    command.trim().to_owned()
}

#[test]
fn the_dockerfile_builds_locked_in_one_stage_and_runs_serve_unprivileged_in_another() {
    let dockerfile = repository_file("Dockerfile");
    let instructions = instructions(&dockerfile);
    let stages = stages(&instructions);
    assert_eq!(stages.len(), 2, "a build stage and a runtime stage");
    let (build, runtime) = (stages[0], stages[1]);
    assert!(the(build, "FROM")[0].starts_with("rust:1-slim"), "{build:?}");
    assert!(the(build, "FROM")[0].ends_with(" AS build"), "{build:?}");
    assert!(
        the(build, "RUN")
            .iter()
            .any(|run| run.starts_with("cargo build --release --locked")),
        "{build:?}"
    );
    assert_eq!(the(runtime, "FROM"), ["debian:bookworm-slim AS runtime"]);
    assert_eq!(
        the(runtime, "COPY"),
        ["--from=build /usr/local/bin/withings-token /usr/local/bin/withings-token"]
    );
    // Not root, and the user the image makes, who owns /data.
    assert_eq!(the(runtime, "USER"), ["withings"]);
    let runs = the(runtime, "RUN").join(" ");
    assert!(runs.contains("useradd --system --uid 10001"), "{runs}");
    assert!(runs.contains("chown withings:withings /data"), "{runs}");
    let env = the(runtime, "ENV").join(" ");
    for variable in ["WITHINGS_TOKEN_STORE=/data/tokens.json", "PORT=8080"] {
        assert!(
            env.split_whitespace().any(|v| v == variable),
            "{variable} missing: {env}"
        );
    }
    assert_eq!(the(runtime, "VOLUME"), ["[\"/data\"]"]);
    assert_eq!(the(runtime, "EXPOSE"), ["8080"]);
    assert_eq!(the(runtime, "STOPSIGNAL"), ["SIGTERM"]);
    assert_eq!(the(runtime, "ENTRYPOINT"), ["[\"withings-token\", \"serve\"]"]);
    assert!(the(runtime, "CMD").is_empty(), "serve's own defaults: {runtime:?}");
    let check = health_check_command(runtime);
    assert!(
        check.starts_with("withings-token ") && check.ends_with(" health"),
        "{check}"
    );
    // Nothing fetches or installs a client the image would carry.
    let all: Vec<&str> = instructions.iter().map(|i| i.rest.as_str()).collect();
    for absent in ["curl", "wget", "apt-get"] {
        assert!(all.iter().all(|i| !i.contains(absent)), "{absent} in {all:?}");
    }
}

#[test]
fn the_docker_context_holds_what_the_build_copies() {
    let ignored = repository_file(".dockerignore");
    let kept: Vec<&str> = ignored
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .collect();
    assert_eq!(kept, ["*", "!Cargo.toml", "!Cargo.lock", "!src/"]);
    let dockerfile = repository_file("Dockerfile");
    let instructions = instructions(&dockerfile);
    let build = stages(&instructions)[0];
    assert_eq!(the(build, "COPY"), ["Cargo.toml Cargo.lock ./", "src ./src"]);
}

/// Runs the Dockerfile's health check as Docker would (`/bin/sh -c`), with
/// the binary on PATH and `PORT` the server's.
fn run_health_check(env: &TestEnv, server: &ServeProcess) -> std::process::Output {
    let dockerfile = repository_file("Dockerfile");
    let instructions = instructions(&dockerfile);
    let command = health_check_command(stages(&instructions)[1]);
    let bin_dir = PathBuf::from(env!("CARGO_BIN_EXE_withings-token"));
    let path = format!("{}:/usr/bin:/bin", bin_dir.parent().unwrap().display());
    let port = server.addr.rsplit(':').next().unwrap();
    env.std_cmd_of("/bin/sh")
        .args(["-c", &command])
        .env("PATH", path)
        .env("PORT", port)
        .output()
        .unwrap()
}

#[test]
fn the_health_check_passes_on_a_healthy_serve_and_fails_when_its_store_is_unreadable() {
    let withings = silent_withings();
    let env = given_fresh_server_user(&withings.uri());
    let server = env.serve(&[]);
    let healthy = run_health_check(&env, &server);
    assert_eq!(
        (
            healthy.status.code(),
            healthy.stdout.as_slice(),
            healthy.stderr.as_slice()
        ),
        (Some(0), &b""[..], &b""[..]),
        "{healthy:?}"
    );
    env.write_store_bytes(b"{not json");
    let unhealthy = run_health_check(&env, &server);
    assert_eq!(unhealthy.status.code(), Some(3), "{unhealthy:?}");
    assert!(
        String::from_utf8_lossy(&unhealthy.stderr).contains("[CONFIGURATION_ERROR]"),
        "{unhealthy:?}"
    );
}

/// Railway's config-as-code keys, by section, as its reference page names
/// them (https://docs.railway.com/config-as-code/reference).
const RAILWAY_BUILD_KEYS: [&str; 8] = [
    "builder",
    "watchPatterns",
    "buildCommand",
    "dockerfilePath",
    "railpackVersion",
    "nixpacksConfigPath",
    "nixpacksPlan",
    "nixpacksVersion",
];
const RAILWAY_DEPLOY_KEYS: [&str; 10] = [
    "startCommand",
    "preDeployCommand",
    "multiRegionConfig",
    "healthcheckPath",
    "healthcheckTimeout",
    "restartPolicyType",
    "restartPolicyMaxRetries",
    "cronSchedule",
    "overlapSeconds",
    "drainingSeconds",
];
const RAILWAY_TOP_KEYS: [&str; 4] = ["$schema", "build", "deploy", "environments"];

fn railway_config() -> toml_edit::DocumentMut {
    repository_file("railway.toml")
        .parse()
        .unwrap_or_else(|e| panic!("railway.toml: {e}"))
}

#[test]
fn railway_toml_uses_only_railway_s_documented_keys_and_sets_the_deploy_it_needs() {
    let config = railway_config();
    for (key, _) in config.iter() {
        assert!(
            RAILWAY_TOP_KEYS.contains(&key),
            "{key} is not a key of Railway's config"
        );
    }
    let section = |name: &str, documented: &[&str]| {
        let table = config[name].as_table().unwrap_or_else(|| panic!("[{name}]"));
        for (key, _) in table.iter() {
            assert!(documented.contains(&key), "[{name}] {key} is not one of Railway's keys");
        }
        table.clone()
    };
    let build = section("build", &RAILWAY_BUILD_KEYS);
    let deploy = section("deploy", &RAILWAY_DEPLOY_KEYS);
    assert_eq!(build["builder"].as_str(), Some("DOCKERFILE"));
    let dockerfile = build["dockerfilePath"].as_str().unwrap();
    assert_eq!(dockerfile, "Dockerfile");
    assert!(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(dockerfile).is_file());
    assert_eq!(deploy["healthcheckPath"].as_str(), Some("/health"));
    assert_eq!(deploy["healthcheckTimeout"].as_integer(), Some(60));
    assert_eq!(deploy["restartPolicyType"].as_str(), Some("ON_FAILURE"));
    assert_eq!(deploy["restartPolicyMaxRetries"].as_integer(), Some(5));
    assert_eq!(deploy["drainingSeconds"].as_integer(), Some(30));
    // What cannot be said in Railway's keys is said in the comments.
    let text = repository_file("railway.toml");
    for said in [
        "/data",
        "RAILWAY_RUN_UID=0",
        "ADMIN_API_TOKEN",
        "WITHINGS_TOKEN_READER_TOKEN",
        "WITHINGS_CLIENT_ID",
        "WITHINGS_CLIENT_SECRET",
        "WITHINGS_REDIRECT_URI",
        "WITHINGS_TOKEN_PUBLIC_URL",
        "docs/deploy.md",
    ] {
        assert!(text.contains(said), "railway.toml does not mention {said}");
    }
}

#[test]
fn railway_s_health_check_path_answers_200_without_a_credential() {
    let path = railway_config()["deploy"]["healthcheckPath"]
        .as_str()
        .unwrap()
        .to_owned();
    let withings = silent_withings();
    let env = given_fresh_server_user(&withings.uri());
    let server = env.serve(&[]);
    let answer = server.get(&path, &[]);
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.json()["status"], "ok");
}
