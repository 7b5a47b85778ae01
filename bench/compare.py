#!/usr/bin/env python3
"""The driver of bench/compare.sh (run that, not this): measures withings-token
side by side with what it is measured against, in one run, on this machine,
against the built-in sandbox on loopback, and prints one markdown table.

compare.sh finds the binary, installs the tools and bounds this driver with a
timeout; this file starts everything it measures (sandbox, redis-server,
`serve`, wrk, strace, hyperfine) and stops it again, in a temp dir it is
given. Every child is killed on the way out, SIGTERM included.

Choices that shape the figures:
- Times are medians (a machine shared with builds has a long tail). hyperfine
  runs with `-N` (no shell) for every command, and every command gets the same
  small environment (PATH, HOME, the sandbox's WITHINGS_* settings).
- The curl comparison sends a real, unused refresh token on every run: before
  the loop, one authorization-code grant per run mints an independent set (the
  sandbox keeps every issued refresh token valid until it is used). So both
  sides get a successful rotation from the sandbox, and no request repeats
  (the sandbox answers a repeated refresh within 10 s with 601). The two
  loops are interleaved, one of each in turn, so drift hits both alike.
- Idle wakeups: `strace -f -tt` on the idle server; a "burst" is syscalls
  less than 5 s apart, since tokio's timer wheel may wake up to one 4.1 s slot
  before a long timer (a 60 s check) fires, then again at the deadline. The
  goal holds when there are no more bursts than checks can fall in the
  window, and each lasts at most 5 s (a periodic ticker makes one long one).
- MB is 10^6 bytes (RSS: the kernel's kB are KiB, converted).
"""

import argparse
import json
import math
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from datetime import datetime, timedelta, timezone

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from resp import Redis  # noqa: E402  (bench/resp.py, beside this file)
import accounts  # noqa: E402  (bench/accounts.py: the rows with many accounts)
import events  # noqa: E402  (bench/events.py: refresh with event sinks)
import proxy  # noqa: E402  (bench/proxy.py: serve's Withings proxy)
import sealed  # noqa: E402  (bench/sealed.py: encryption at rest)

CHECK_INTERVAL_S = 60  # serve's default --check-interval (src/commands/serve.rs)
BURST_GAP_S = 5.0
MB = 1_000_000


class Broken(Exception):
    """A step that did not work (as opposed to a goal that was missed)."""


class Skipped(Exception):
    """A tool the row needs is not installed."""

    def __init__(self, tool):
        super().__init__(f"skipped: {tool} not available")


def need(tool):
    if not shutil.which(tool) and not os.access(tool, os.X_OK):
        raise Skipped(tool)


def say(text):
    print(f"compare: {text}", file=sys.stderr, flush=True)


def ms(seconds):
    return f"{seconds * 1000:.2f} ms"


def mb(n_bytes):
    return f"{n_bytes / MB:.2f} MB"


class Bench:
    def __init__(self, args):
        self.bin = args.bin
        self.work = args.work
        self.repo = args.repo
        self.smoke = args.smoke
        self.commit = args.commit
        self.children = []
        self.rows = []
        self.notes = []
        self.broken = []
        # Iterations: a smoke run only shows that every step works.
        self.runs = 5 if self.smoke else 200
        self.warmup = 1 if self.smoke else 10
        self.loop_runs = 5 if self.smoke else 100
        self.wrk_seconds = 2 if self.smoke else 10
        self.idle_seconds = 5 if self.smoke else 30
        self.fleet_procs = 20 if self.smoke else 100
        self.per_host = 5
        self.python = comparison_python()
        self.home = os.path.join(self.work, "home")
        os.makedirs(self.home, mode=0o700)
        self.sandbox_env = {}
        self.api = ""
        self.redis_port = None
        self.load_at_start = open("/proc/loadavg").read().split()[:3]

    # --- processes -------------------------------------------------------

    def start(self, cmd, log, env=None):
        out = open(os.path.join(self.work, log), "wb")
        p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                             cwd=self.work)
        self.children.append(p)
        return p

    def stop_all(self):
        for p in self.children:
            if p.poll() is None:
                p.terminate()
        deadline = time.monotonic() + 5
        for p in self.children:
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def run(self, cmd, timeout=60, env=None, check=True, **kw):
        try:
            done = subprocess.run(cmd, capture_output=True, timeout=timeout, env=env, cwd=self.work, **kw)
        except subprocess.TimeoutExpired:
            raise Broken(f"`{shlex.join(map(str, cmd))[:120]}` took more than {timeout} s")
        if check and done.returncode != 0:
            err = done.stderr.decode(errors="replace").strip().splitlines()
            raise Broken(f"`{shlex.join(map(str, cmd))[:120]}` exited {done.returncode}: {' / '.join(err[-3:])}")
        return done

    def env(self, **extra):
        env = {"PATH": "/usr/bin:/bin", "HOME": self.home, **self.sandbox_env}
        env.update(extra)
        return env

    def wt(self, store, *args):
        return [self.bin, "--no-env-file", "--store", store, *args]

    # --- the parties -----------------------------------------------------

    def start_sandbox(self):
        path = os.path.join(self.work, "sandbox.env")
        self.sandbox = subprocess.Popen(
            [self.bin, "sandbox", "--listen", "127.0.0.1:0"],
            stdout=open(path, "wb"),
            stderr=open(os.path.join(self.work, "sandbox.err"), "wb"),
            stdin=subprocess.DEVNULL,
        )
        self.children.append(self.sandbox)
        for _ in range(200):
            text = open(path).read()
            if "RAILWAY_API_URL=" in text:
                break
            if self.sandbox.poll() is not None:
                break
            time.sleep(0.05)
        for line in text.splitlines():
            key, sep, value = line.partition("=")
            if sep and key.startswith("WITHINGS_"):
                self.sandbox_env[key] = value
        if "WITHINGS_API_URL" not in self.sandbox_env:
            raise Broken("the sandbox did not start: " + open(os.path.join(self.work, "sandbox.err")).read()[-300:])
        self.api = self.sandbox_env["WITHINGS_API_URL"]

    def sandbox_stats(self):
        with urllib.request.urlopen(self.api + "/_sandbox/stats", timeout=10) as answer:
            return json.load(answer)

    def consent(self, url):
        """Plays the browser on the sandbox's consent page: the redirect URL."""

        class Stay(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args, **kwargs):
                return None

        try:
            urllib.request.build_opener(Stay).open(url, timeout=10)
        except urllib.error.HTTPError as e:
            if e.headers.get("Location"):
                return e.headers["Location"]
        raise Broken(f"the sandbox consent page did not redirect: {url}")

    def authorise(self, store, env=None):
        """auth-url, consent, exchange: a fresh set in `store`."""
        env = env or self.env()
        answer = self.run(self.wt(store, "auth-url", "--json"), env=env)
        url = json.loads(answer.stdout)["authorization_url"]
        self.run(self.wt(store, "exchange", self.consent(url), "--no-railway", "--quiet"), env=env)

    def mint_refresh_token(self):
        """An independent, unused refresh token: one code grant, as curl would."""
        query = urllib.parse.urlencode(
            {
                "response_type": "code",
                "client_id": self.sandbox_env["WITHINGS_CLIENT_ID"],
                "redirect_uri": self.sandbox_env["WITHINGS_REDIRECT_URI"],
                "scope": "user.info,user.metrics,user.activity",
                "state": "bench",
            }
        )
        redirect = self.consent(f"{self.sandbox_env['WITHINGS_AUTHORIZE_URL']}?{query}")
        code = urllib.parse.parse_qs(urllib.parse.urlparse(redirect).query)["code"][0]
        form = self.form("authorization_code", code=code, redirect_uri=self.sandbox_env["WITHINGS_REDIRECT_URI"])
        with urllib.request.urlopen(self.api + "/v2/oauth2", urllib.parse.urlencode(form).encode(), timeout=10) as a:
            body = json.load(a)
        if body.get("status") != 0:
            raise Broken(f"the sandbox refused a code grant: {body}")
        return body["body"]["refresh_token"]

    def form(self, grant, **fields):
        return {
            "action": "requesttoken",
            "grant_type": grant,
            "client_id": self.sandbox_env["WITHINGS_CLIENT_ID"],
            "client_secret": self.sandbox_env["WITHINGS_CLIENT_SECRET"],
            **fields,
        }

    def curl_refresh(self, refresh_token):
        args = ["curl", "-sS", "--max-time", "10"]
        for key, value in self.form("refresh_token", refresh_token=refresh_token).items():
            args += ["-d", f"{key}={value}"]
        return args + [self.api + "/v2/oauth2"]

    def start_redis(self):
        need("redis-server")
        for _ in range(5):
            port = free_port()
            p = self.start(
                ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
                 "--dir", self.work],
                "redis.log",
            )
            for _ in range(100):
                try:
                    if Redis(port).call("PING") == "PONG":
                        self.redis_port = port
                        return
                except OSError:
                    pass
                if p.poll() is not None:
                    break
                time.sleep(0.05)
            p.kill()
        raise Broken("redis-server did not start: " + open(os.path.join(self.work, "redis.log")).read()[-300:])

    # --- measuring -------------------------------------------------------

    def hyperfine(self, name, labels, cmds, env):
        """Median seconds of each command, one hyperfine run for all."""
        need("hyperfine")
        out = os.path.join(self.work, f"{name}.json")
        args = ["hyperfine", "-N", "--style", "none", "--warmup", str(self.warmup), "--runs", str(self.runs),
                "--export-json", out] + [shlex.join(c) for c in cmds]
        self.run(args, timeout=600, env=env)
        results = json.load(open(out))["results"]
        self.notes.append(f"hyperfine {name}: " + "; ".join(
            f"{label} median {r['median'] * 1000:.2f} ms, min {r['min'] * 1000:.2f}, σ {r['stddev'] * 1000:.2f}"
            for label, r in zip(labels, results)))
        return [r["median"] for r in results]

    def wrk(self, url, header=None, script=None):
        """(requests/s, p99 seconds); `script`: a wrk Lua script (a POST)."""
        need("wrk")
        args = ["wrk", "-t2", "-c64", f"-d{self.wrk_seconds}s", "--latency", "--timeout", "5s"]
        if header:
            args += ["-H", header]
        if script:
            args += ["-s", script]
        text = self.run(args + [url], timeout=self.wrk_seconds + 60).stdout.decode()
        rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
        p99 = re.search(r"^\s*99%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
        if not rps or not p99:
            raise Broken(f"cannot read wrk's answer for {url}: {text[-300:]}")
        non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
        if non2xx:
            raise Broken(f"{url}: {non2xx.group(1)} answers were not 2xx (a refused credential measures nothing)")
        errors = re.search(r"Socket errors: (.*)", text)
        if errors:
            self.notes.append(f"wrk {urllib.parse.urlparse(url).path}: socket errors: {errors.group(1)}")
        scale = {"us": 1e-6, "ms": 1e-3, "s": 1.0}[p99.group(2)]
        return float(rps.group(1)), float(p99.group(1)) * scale

    def row(self, figure, ours, comparison, ratio, goal, met):
        self.rows.append([figure, ours, comparison, ratio, goal, met])

    def step(self, figures, fn):
        """Runs one measurement; a skipped tool or a broken step becomes rows."""
        say(f"measuring: {figures[0]}")
        before = len(self.rows)
        try:
            fn()
        except Skipped as e:
            say(str(e))
            for figure in figures[len(self.rows) - before:]:
                self.row(figure, str(e), "", "", "", "skipped")
        except Broken as e:
            self.broken.append(f"{figures[0]}: {e}")
            say(f"BROKEN: {e}")
            for figure in figures[len(self.rows) - before:]:
                self.row(figure, "broken (see below)", "", "", "", "broken")

    # --- the rows --------------------------------------------------------

    def seed_file_store(self):
        self.store = os.path.join(self.home, "tokens.json")
        self.authorise(self.store)
        # status.py must say what `status --json` says (retried across a second boundary).
        for _ in range(3):
            ours = json.loads(self.run(self.wt(self.store, "status", "--json"), env=self.env()).stdout)
            theirs = json.loads(self.run([self.python, self.status_py, "--store", self.store], env=self.env()).stdout)
            if ours == theirs:
                return
        raise Broken(f"bench/status.py disagrees with `status --json`: {theirs} vs {ours}")

    def status_rows(self):
        cmds = [self.wt(self.store, "status", "--json"), [self.python, self.status_py, "--store", self.store]]
        labels = ["status --json", "status.py"]
        hello = self.build_hello()
        if hello:
            cmds.append([hello])
            labels.append("hello")
        times = self.hyperfine("status", labels, cmds, self.env())
        ours, python = times[0], times[1]
        version = self.run([self.python, "--version"]).stdout.decode().split()[-1]
        self.row(f"`status --json` vs Python stdlib (`bench/status.py`, {self.python} {version})", ms(ours), ms(python),
                 f"{python / ours:.1f}×", "Python/ours ≥ 30×", python / ours >= 30)
        if hello:
            self.row("`status --json` vs hello-world Rust (`rustc -O`)", ms(ours), ms(times[2]),
                     f"{ours / times[2]:.2f}×", "ours/hello ≤ 1.5×", ours / times[2] <= 1.5)
        else:
            self.row("`status --json` vs hello-world Rust (`rustc -O`)", "skipped: rustc not available", "", "", "",
                     "skipped")

    def build_hello(self):
        if not shutil.which("rustc"):
            return None
        src = os.path.join(self.work, "hello.rs")
        with open(src, "w") as f:
            f.write('fn main() {\n    println!("hello, world");\n}\n')
        out = os.path.join(self.work, "hello")
        # Cargo's release profile strips debug info by default (Cargo.toml's
        # [profile.release] says nothing about `strip`), so the same here.
        self.run(["rustc", "-O", "-C", "strip=debuginfo", "-o", out, src], timeout=120, env=None)
        return out

    def access_token_row(self):
        cmds = [self.wt(self.store, "access-token"), self.wt(self.store, "status")]
        times = self.hyperfine("access", ["access-token", "status"], cmds, self.env())
        self.row("`access-token`, fresh token (no network) vs `status`", ms(times[0]), ms(times[1]),
                 f"{times[0] / times[1]:.2f}×", "ours/status ≤ 1.1×", times[0] / times[1] <= 1.1)

    def refresh_vs_curl(self, store, env):
        """Medians of `refresh --no-railway` on `store` (run with `env`) and
        of a bare curl POST, in interleaved pairs."""
        need("curl")
        warm = 1 if self.smoke else 5
        tokens = [self.mint_refresh_token() for _ in range(self.loop_runs + warm)]
        ours, theirs = [], []
        refresh = self.wt(store, "refresh", "--no-railway")
        for i, token in enumerate(tokens):
            t = time.perf_counter()
            self.run(refresh, env=env, timeout=60)
            t_ours = time.perf_counter() - t
            t = time.perf_counter()
            answer = self.run(self.curl_refresh(token), env=self.env(), timeout=30)
            t_curl = time.perf_counter() - t
            if json.loads(answer.stdout).get("status") != 0:
                raise Broken(f"the sandbox refused curl's refresh: {answer.stdout[:200]!r}")
            if i >= warm:
                ours.append(t_ours)
                theirs.append(t_curl)
        return statistics.median(ours), statistics.median(theirs)

    def refresh_row(self):
        a, b = self.refresh_vs_curl(self.store, self.env())
        self.row("`refresh --no-railway` vs bare `curl` POST of the same form", ms(a), ms(b), f"{a / b:.2f}×",
                 "ours/curl ≤ 1.0×", a / b <= 1.0)

    def size_row(self):
        size = os.path.getsize(self.bin)
        self.row("release binary size (every feature in)", f"{mb(size)} ({size:,} B)", "", "", "≤ 5 MB",
                 size <= 5 * MB)

    def rss_row(self):
        time_bin = "/usr/bin/time"
        need(time_bin)
        need("curl")

        def peak(cmd):
            done = self.run([time_bin, "-v", *cmd], env=self.env(), timeout=60)
            found = re.search(rb"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
            if not found:
                raise Broken("/usr/bin/time -v printed no maximum resident set size")
            return int(found.group(1)) * 1024, done

        ours, _ = peak(self.wt(self.store, "refresh", "--no-railway"))
        theirs, done = peak(self.curl_refresh(self.mint_refresh_token()))
        if json.loads(done.stdout).get("status") != 0:
            raise Broken("the sandbox refused curl's refresh")
        self.row("peak RSS of one `refresh --no-railway`", mb(ours), f"curl POST: {mb(theirs)}", "", "≤ 8 MB",
                 ours <= 8 * MB)

    def start_serve(self, store, log, timeout=15, extra=None):
        """`serve` on `store` on a free port, once it answers /health:
        (process, base URL, admin token, reader token). `extra`: more
        variables for it."""
        admin, reader = secrets.token_hex(32), secrets.token_hex(32)
        port = free_port()
        serve = self.start(
            self.wt(store, "serve", "--listen", f"127.0.0.1:{port}"),
            log,
            env=self.env(ADMIN_API_TOKEN=admin, WITHINGS_TOKEN_READER_TOKEN=reader, **(extra or {})),
        )
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + timeout
        while True:
            try:
                urllib.request.urlopen(base + "/health", timeout=2).read()
                return serve, base, admin, reader
            except OSError:
                if serve.poll() is not None or time.monotonic() > deadline:
                    raise Broken("serve did not start: " + open(os.path.join(self.work, log)).read()[-300:])
                time.sleep(0.05)

    def serve_rows(self):
        store = os.path.join(self.home, "serve.json")
        self.authorise(store)
        serve, base, admin, reader = self.start_serve(store, "serve.log")
        try:
            self.load_rows(base, admin, reader)
            time.sleep(2)  # the load is over; let the last connections close
            loaded = True
        except Skipped as e:
            for name in ("GET /admin/token/status", "GET /v1/access-token (fresh)"):
                for what in ("requests/s", "p99 latency"):
                    self.row(f"`serve` {name}: {what}", str(e), "", "", "", "skipped")
            loaded = False
        self.idle_rows(serve, store, loaded)

    def load_rows(self, base, admin, reader):
        floor_rps, floor_p99 = self.wrk(self.api + "/callback")
        targets = [
            ("GET /admin/token/status", base + "/admin/token/status", f"X-Admin-Token: {admin}"),
            ("GET /v1/access-token (fresh)", base + "/v1/access-token", f"Authorization: Bearer {reader}"),
        ]
        for name, url, header in targets:
            if not self.smoke:
                self.run(["wrk", "-t2", "-c64", "-d1s", "-H", header, url], timeout=60)  # warm-up
            rps, p99 = self.wrk(url, header)
            self.row(f"`serve` {name}: requests/s (wrk -t2 -c64 -d{self.wrk_seconds}s)", f"{rps:,.0f}/s",
                     f"sandbox trivial route: {floor_rps:,.0f}/s", f"{rps / floor_rps:.2f}×", "≥ 40,000/s",
                     rps >= 40_000)
            self.row(f"`serve` {name}: p99 latency", ms(p99), f"sandbox trivial route: {ms(floor_p99)}", "",
                     "≤ 5 ms", p99 <= 0.005)

    def idle_rows(self, serve, store, loaded):
        rss = vm_rss(serve.pid)
        floor_rss = vm_rss(self.sandbox.pid)
        when = "after the load" if loaded else "no load: wrk not available"
        self.row(f"`serve` idle RSS ({when})", mb(rss), f"sandbox: {mb(floor_rss)}", "", "≤ 12 MB", rss <= 12 * MB)
        figure = f"`serve` idle wakeups over {self.idle_seconds} s (strace -f)"
        expected = math.ceil(self.idle_seconds / CHECK_INTERVAL_S)
        comparison = f"check every {CHECK_INTERVAL_S} s: ≤ {expected} burst(s)"
        try:
            need("strace")
        except Skipped as e:
            self.row(figure, str(e), comparison, "", "", "skipped")
            return
        log = os.path.join(self.work, "strace.log")
        done = self.run(["timeout", "-s", "INT", str(self.idle_seconds), "strace", "-f", "-tt", "-o", log, "-p",
                         str(serve.pid)], timeout=self.idle_seconds + 30, check=False)
        if not os.path.exists(log) or done.returncode not in (0, 124, 130):
            raise Broken(f"strace -p failed: {done.stderr.decode(errors='replace').strip()[-200:]}")
        calls, bursts, reads = parse_strace(open(log).read(), store)
        longest = max((b[1] - b[0] for b in bursts), default=0.0)
        met = len(bursts) <= expected and longest <= BURST_GAP_S
        self.row(figure, f"{calls} syscalls in {len(bursts)} burst(s), longest {longest:.2f} s; {reads} store read(s)",
                 comparison, "", "wakes only for its check interval", met)

    def redis_rows(self):
        self.start_redis()
        url = f"redis://127.0.0.1:{self.redis_port}"
        self.authorise(url)
        if_needed = ("refresh", "--if-needed", "--no-railway")
        cmds = [self.wt(url, *if_needed), self.wt(self.store, *if_needed)]
        times = self.hyperfine("if-needed", ["redis", "file"], cmds, self.env())
        self.row("`refresh --if-needed`, nothing due: Redis store vs file store", ms(times[0]), ms(times[1]),
                 f"{times[0] / times[1]:.2f}×", "Redis/file ≤ 2×", times[0] / times[1] <= 2)

    def fleet_row(self):
        if self.redis_port is None:
            raise Skipped("redis-server")
        n, hosts = self.fleet_procs, self.fleet_procs // self.per_host
        figure = f"{n} processes on {hosts} hosts at once, expiring set: upstream calls"
        redis = Redis(self.redis_port)
        key = f"withings-token:{self.sandbox_env['WITHINGS_CLIENT_ID']}:tokens"
        doc = json.loads(redis.call("GET", key))
        # Expiring, not expired: due through the default buffer (a third of 3 h).
        expires = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(minutes=5)
        doc["tokens"]["expires_at"] = expires.strftime("%Y-%m-%dT%H:%M:%SZ")
        doc["tokens"]["last_refreshed"] = (expires - timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
        if redis.call("SET", key, json.dumps(doc, indent=2)) != "OK":
            raise Broken("cannot make the Redis set expire")
        gate_r, gate_w = os.pipe()
        procs = []
        for i in range(n):
            home = os.path.join(self.work, "hosts", f"host{i // self.per_host:02d}")
            os.makedirs(os.path.join(home, "state"), exist_ok=True)
            env = self.env(HOME=home, XDG_STATE_HOME=os.path.join(home, "state"))
            # Each waits on the gate (a pipe all read); closing it releases all at once.
            cmd = ["/bin/sh", "-c", 'read _ || true; exec "$@"', "sh",
                   *self.wt(f"redis://127.0.0.1:{self.redis_port}", "refresh", "--if-needed", "--no-railway", "--json")]
            p = subprocess.Popen(cmd, env=env, stdin=gate_r, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=home)
            self.children.append(p)
            procs.append(p)
        os.close(gate_r)
        results = [None] * n

        def collect(i, p):
            try:
                out, err = p.communicate(timeout=120)
                results[i] = (p.returncode, out, err, time.perf_counter())
            except subprocess.TimeoutExpired:
                p.kill()
                out, err = p.communicate()
                results[i] = ("timeout", out, err, time.perf_counter())

        threads = [threading.Thread(target=collect, args=(i, p)) for i, p in enumerate(procs)]
        for t in threads:
            t.start()
        time.sleep(0.5 if self.smoke else 1.0)  # every sh is up and blocked on the gate
        before = self.sandbox_stats()
        t0 = time.perf_counter()
        os.close(gate_w)
        for t in threads:
            t.join()
        after = self.sandbox_stats()
        upstream = after["token_requests"] - before["token_requests"]
        failed = [r for r in results if r[0] != 0]
        if failed:
            rc, _, err, _ = failed[0]
            raise Broken(f"{len(failed)} of {n} processes failed (first: exit {rc}: "
                         f"{err.decode(errors='replace').strip()[-200:]})")
        outcomes = Counter(outcome_of(r[1]) for r in results)
        slowest = max(r[3] for r in results) - t0
        self.row(figure, f"{upstream} (slowest process {slowest * 1000:.0f} ms)",
                 ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())), "", "exactly 1", upstream == 1)

    # --- the report ------------------------------------------------------

    def report(self):
        cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
        cores = len(os.sched_getaffinity(0))
        size = os.path.getsize(self.bin)
        now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        load_now = " ".join(open("/proc/loadavg").read().split()[:3])
        print(f"# withings-token bench/compare.sh{' --smoke' if self.smoke else ''}: {now}; {cores} cores "
              f"({cpu}); load average {' '.join(self.load_at_start)} at start, {load_now} at the end; binary "
              f"{size:,} B, commit {self.commit}")
        if self.smoke:
            print("(smoke: not a measurement)")
        print()
        header = ["figure", "withings-token", "comparison", "ratio", "goal", "met"]
        print("| " + " | ".join(header) + " |")
        print("|" + "|".join(["---"] * len(header)) + "|")
        for figure, ours, comparison, ratio, goal, met in self.rows:
            shown = {True: "yes", False: "NO"}.get(met, met)
            print(f"| {figure} | {ours} | {comparison} | {ratio} | {goal} | {shown} |")
        print()
        print(f"Times are medians (hyperfine -N, {self.runs} runs after {self.warmup} warm-up runs; refresh/curl: "
              f"{self.loop_runs} interleaved pairs, each curl with its own unused refresh token). The load "
              "generator, the servers and the sandbox share the cores; other builds may be running: figures "
              "are noisy. MB = 10^6 bytes.")
        for note in self.notes:
            print(f"note: {note}")
        for text in self.broken:
            print(f"broken: {text}")


def comparison_python():
    """The stock interpreter a cron job would run (Debian's), else this one:
    a pyenv or virtualenv with many packages can spend most of its start-up
    in `site` (.pth files), which is not what a Python script costs."""
    for candidate in ("/usr/bin/python3", sys.executable):
        if os.access(candidate, os.X_OK):
            return candidate
    return sys.executable


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def outcome_of(stdout):
    try:
        return json.loads(stdout).get("outcome", "?")
    except ValueError:
        return "?"


def vm_rss(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise Broken(f"no VmRSS for pid {pid}")


def parse_strace(text, store):
    """Completed syscalls (a call in progress when strace attached counts when
    it returns), their bursts as (first, last) times, and reads of the store."""
    times, reads = [], 0
    for line in text.splitlines():
        found = re.match(r"\d+\s+(\d+):(\d+):(\d+\.\d+) (.*)", line)
        if not found:
            continue
        rest = found.group(4)
        if rest.startswith(("+++", "---")) or rest.endswith(("<unfinished ...>", "<detached ...>")):
            continue
        h, m, s = int(found.group(1)), int(found.group(2)), float(found.group(3))
        times.append(h * 3600 + m * 60 + s)
        if rest.startswith("openat(") and store in rest:
            reads += 1
    times.sort()
    bursts = []
    for t in times:
        if bursts and t - bursts[-1][1] < BURST_GAP_S:
            bursts[-1][1] = t
        else:
            bursts.append([t, t])
    return len(times), bursts, reads


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", required=True)
    parser.add_argument("--work", required=True)
    parser.add_argument("--repo", required=True)
    parser.add_argument("--commit", default="?")
    parser.add_argument("--smoke", action="store_true")
    bench = Bench(parser.parse_args())
    bench.status_py = os.path.join(bench.repo, "bench", "status.py")

    def stop(signum, _frame):
        bench.stop_all()
        sys.exit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        bench.start_sandbox()
        bench.seed_file_store()
        bench.step(["`status --json` vs Python stdlib", "`status --json` vs hello-world Rust"], bench.status_rows)
        bench.step(["`access-token` vs `status`"], bench.access_token_row)
        bench.step(["`refresh --no-railway` vs bare `curl`"], bench.refresh_row)
        bench.step(
            ["`status --json`: encrypted file store vs plain", "`refresh`, encrypted file store, vs bare `curl`"],
            lambda: sealed.sealed_rows(bench, sys.modules[__name__]),
        )
        bench.step(
            ["`serve` broker on an encrypted file store vs plain", "`serve` broker on an encrypted Redis store vs plain"],
            lambda: sealed.broker_rows(bench, sys.modules[__name__]),
        )
        bench.step(["release binary size"], bench.size_row)
        bench.step(["peak RSS of `refresh`"], bench.rss_row)
        bench.step(
            ["`serve` GET /admin/token/status: requests/s", "`serve` GET /admin/token/status: p99",
             "`serve` GET /v1/access-token: requests/s", "`serve` GET /v1/access-token: p99",
             "`serve` idle RSS", "`serve` idle wakeups"],
            bench.serve_rows,
        )
        bench.step(
            ["`serve` proxy vs the sandbox direct: p99", "`serve` proxy vs the sandbox direct: requests/s"],
            lambda: proxy.latency(bench, sys.modules[__name__]),
        )
        bench.step(["`serve` proxy: RSS growth, a 20 MiB answer to many consumers"],
                   lambda: proxy.memory(bench, sys.modules[__name__]))
        bench.step(
            ["`refresh` with a webhook answering at once vs without a sink",
             "`refresh` with a webhook answering in 2 s: beyond the notify timeout"],
            lambda: events.event_rows(bench, sys.modules[__name__]),
        )
        bench.step(["`refresh --if-needed` not due: Redis vs file"], bench.redis_rows)
        bench.step(["processes on hosts at once: upstream calls"], bench.fleet_row)
        bench.step(
            [f"`status --json`, {accounts.ACCOUNTS} accounts", f"`accounts --json`, {accounts.ACCOUNTS} accounts",
             f"`refresh --if-needed --all`, {accounts.ACCOUNTS} accounts, none due",
             f"`serve` idle RSS, {accounts.ACCOUNTS} accounts", "`serve` broker, one account of many",
             f"{accounts.ACCOUNTS} accounts due at once"],
            lambda: accounts.scale_rows(bench, sys.modules[__name__]),
        )
    except Broken as e:
        bench.broken.append(str(e))
    finally:
        bench.stop_all()
    bench.report()
    if bench.broken:
        sys.exit(1)
    if bench.smoke:
        sys.exit(0)
    sys.exit(0 if all(row[5] is True for row in bench.rows) else 1)


if __name__ == "__main__":
    main()
