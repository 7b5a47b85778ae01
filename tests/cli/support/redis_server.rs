//! A real Redis (Debian's `redis-server`, installed by `bash .ci/test`) on a
//! free loopback port per test, and the users that keep their set in it.

use super::*;

use std::process::{Child, Command as StdCommand, Stdio};
use std::time::Duration;

use tempfile::TempDir;

/// Why a Redis test fails where `redis-server` is missing: it fails, never
/// passes by skipping, and says how to get one.
pub const REDIS_SERVER_MISSING: &str = "redis-server is not installed: `bash .ci/test` installs it on Debian with root or sudo; else `sudo apt-get install redis-server` (Debian, Ubuntu) or `brew install redis` (macOS)";

/// The key a Redis store of [`CLIENT_ID`]'s app uses by default.
pub const REDIS_KEY: &str = "withings-token:test-client-id:tokens";

/// A `redis-server` of the test's own, on a free loopback port, in a
/// temporary directory, persisting nothing; killed on drop.
pub struct RedisServer {
    child: Child,
    pub port: u16,
    _dir: TempDir,
}

impl RedisServer {
    pub fn start() -> RedisServer {
        Self::start_with(&[])
    }

    /// With extra `redis-server` arguments, e.g. `["--requirepass", "pw"]`.
    /// A free port can be taken by another test between `free_port` and
    /// the bind: a server that exits is started again on another port, and
    /// it counts as up only once it answers while still running.
    pub fn start_with(extra: &[&str]) -> RedisServer {
        for _ in 0..5 {
            if let Some(server) = Self::try_start(extra) {
                return server;
            }
        }
        panic!("redis-server did not start on any of 5 free ports");
    }

    fn try_start(extra: &[&str]) -> Option<RedisServer> {
        let dir = tempfile::tempdir().expect("redis dir");
        let port = free_port();
        let child = StdCommand::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(dir.path())
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect(REDIS_SERVER_MISSING);
        let mut server = RedisServer { child, port, _dir: dir };
        // Up means it answers PING (another test's listener on the port
        // does not) or the process ended (the port was taken: try another).
        let mut exited = false;
        let up = wait_until(Duration::from_secs(10), || {
            exited = !matches!(server.child.try_wait(), Ok(None));
            exited || server.answers_ping()
        });
        assert!(up, "redis-server did not start on port {port}");
        let running = !exited;
        running.then_some(server)
    }

    fn answers_ping(&self) -> bool {
        let Ok(client) = redis::Client::open(self.url()) else {
            return false;
        };
        let Ok(mut connection) = client.get_connection_with_timeout(Duration::from_millis(500)) else {
            return false;
        };
        let _ = connection.set_read_timeout(Some(Duration::from_millis(500)));
        let pong: redis::RedisResult<String> = redis::cmd("PING").query(&mut connection);
        // A server started with --requirepass refuses PING with NOAUTH: still ours.
        match pong {
            Ok(_) => true,
            Err(e) => e.code() == Some("NOAUTH"),
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Stops (`STOP`) or resumes (`CONT`) the server: a Redis that stops
    /// answering without closing its connections.
    pub fn signal(&self, name: &str) {
        let status = StdCommand::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill -{name} redis-server");
    }

    fn connection(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .and_then(|c| c.get_connection())
            .expect("connect to the test redis")
    }

    /// One command, for a test's own checks; `None` for a nil reply.
    pub fn command(&self, args: &[&str]) -> Option<String> {
        let mut cmd = redis::cmd(args[0]);
        for arg in &args[1..] {
            cmd.arg(*arg);
        }
        let value: redis::Value = cmd.query(&mut self.connection()).expect("redis command");
        match value {
            redis::Value::Nil => None,
            redis::Value::Int(n) => Some(n.to_string()),
            redis::Value::BulkString(bytes) => Some(String::from_utf8_lossy(&bytes).into_owned()),
            redis::Value::SimpleString(s) => Some(s),
            redis::Value::Okay => Some("OK".into()),
            other => Some(format!("{other:?}")),
        }
    }

    /// The stored set at [`REDIS_KEY`], as JSON.
    pub fn store_json(&self) -> Value {
        let text = self.command(&["GET", REDIS_KEY]).expect("the Redis store holds a set");
        serde_json::from_str(&text).expect("the Redis store parses")
    }

    pub fn write_store(&self, store: &Value) {
        self.command(&["SET", REDIS_KEY, &store.to_string()]);
    }

    /// Moves the stored set's expiry a minute into the past.
    pub fn make_store_due(&self) {
        let mut store = self.store_json();
        store["tokens"]["expires_at"] = json!(rfc3339(chrono::Utc::now() - chrono::Duration::seconds(60)));
        self.write_store(&store);
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port nothing listens on (right now).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

impl TestEnv {
    /// Keeps the token set in `redis` (the default key of [`CLIENT_ID`]).
    pub fn on_redis(&mut self, redis: &RedisServer) -> &mut Self {
        self.set("WITHINGS_TOKEN_STORE", redis.url())
    }
}

/// `hosts` users, each with its own HOME (as on separate machines), all
/// pointed at one sandbox and one Redis store, authorised once by the first.
pub fn given_fleet(hosts: usize) -> (SandboxProcess, RedisServer, Vec<TestEnv>) {
    let sandbox = SandboxProcess::start();
    let redis = RedisServer::start();
    let envs: Vec<TestEnv> = (0..hosts)
        .map(|_| {
            let mut env = TestEnv::new();
            sandbox.configure(&mut env);
            env.on_redis(&redis).set("WITHINGS_TOKEN_STORE_KEY", REDIS_KEY);
            env
        })
        .collect();
    sandbox.authorise(&envs[0]);
    (sandbox, redis, envs)
}

/// A Redis of its own and a user whose set, kept in it, expired a minute
/// ago (as [`given_expired_store`], with Withings at `withings_url`).
pub fn given_expired_redis_store(withings_url: &str) -> (RedisServer, TestEnv) {
    let redis = RedisServer::start();
    let mut env = given_expired_store(withings_url);
    env.on_redis(&redis);
    redis.write_store(&env.store_json());
    (redis, env)
}
