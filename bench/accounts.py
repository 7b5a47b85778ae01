"""Scale with many accounts, for bench/compare.py (run bench/compare.sh).

One file-store deployment of ACCOUNTS accounts (`default` and acct-0001...),
written as store files directly (a consent per account would measure the
sandbox's consent page, not this tool): every set is a real one, minted by a
code grant at the sandbox, so that the all-due step rotates each for real.

Rows: `status --json` (every row), `accounts --json` and
`refresh --if-needed --all` with nothing due (hyperfine medians); `serve`
with every account loaded: idle RSS and the broker for one account under
wrk; then every account due at once: one `refresh --if-needed --all` with a
raised budget, counted at the sandbox (every account exactly once) and
against the budget (requests per minute).
"""

import json
import os
import secrets
import time
from datetime import datetime, timedelta, timezone

ACCOUNTS = 1000
BUDGET = 10_000  # --upstream-budget for the all-due run: requests a minute


def rfc3339(t):
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def store_file(refresh_token, access_token, expires_at, client_id):
    now = datetime.now(timezone.utc)
    return {
        "version": 1,
        "generation": 1,
        "tokens_generation": 1,
        "client_id": client_id,
        "tokens": {
            "access_token": access_token,
            "refresh_token": refresh_token,
            "expires_at": rfc3339(expires_at),
            "last_refreshed": rfc3339(now),
            "userid": "31415926",
            "scope": "user.info,user.metrics,user.activity",
        },
    }


def names(n):
    return ["default"] + [f"acct-{i:04d}" for i in range(1, n)]


def path_of(base, name):
    if name == "default":
        return base
    return os.path.join(os.path.dirname(base), "tokens.accounts", f"{name}.json")


def write_all(bench, base, refresh_tokens, expires_at):
    os.makedirs(os.path.join(os.path.dirname(base), "tokens.accounts"), mode=0o700, exist_ok=True)
    client_id = bench.sandbox_env["WITHINGS_CLIENT_ID"]
    for name, token in zip(names(len(refresh_tokens)), refresh_tokens):
        path = path_of(base, name)
        with open(path, "w") as f:
            json.dump(store_file(token, "bench-access-" + secrets.token_hex(8), expires_at, client_id), f)
        os.chmod(path, 0o600)


def scale_rows(bench, kit):
    """`kit`: the driver's module (its Broken, ms, mb, vm_rss)."""
    Broken, ms, mb, vm_rss = kit.Broken, kit.ms, kit.mb, kit.vm_rss

    n = ACCOUNTS
    base = os.path.join(bench.home, "many", "tokens.json")
    os.makedirs(os.path.dirname(base), mode=0o700)
    tokens = [bench.mint_refresh_token() for _ in range(n)]
    later = datetime.now(timezone.utc) + timedelta(hours=3)
    write_all(bench, base, tokens, later)

    cmds = [
        bench.wt(base, "status", "--json"),
        bench.wt(base, "accounts", "--json"),
        bench.wt(base, "refresh", "--if-needed", "--all", "--no-railway", "--json"),
    ]
    listed = json.loads(bench.run(cmds[1], env=bench.env()).stdout)
    rows = listed if isinstance(listed, list) else listed.get("accounts", [])
    if len(rows) != n:
        raise Broken(f"`accounts --json` listed {len(rows)} accounts, not {n}")
    times = bench.hyperfine("accounts", ["status", "accounts", "refresh --all"], cmds, bench.env())
    per = lambda t: f"{t / n * 1e6:.1f} µs/account"  # noqa: E731
    bench.row(f"`status --json`, {n} accounts (every row)", ms(times[0]), per(times[0]), "", "≤ 50 ms",
              times[0] <= 0.050)
    bench.row(f"`accounts --json`, {n} accounts", ms(times[1]), per(times[1]), "", "≤ 50 ms", times[1] <= 0.050)
    bench.row(f"`refresh --if-needed --all`, {n} accounts, none due", ms(times[2]), per(times[2]), "", "≤ 100 ms",
              times[2] <= 0.100)

    serve_rows(bench, base, n, ms, mb, vm_rss)
    all_due_row(bench, base, tokens, Broken, ms)


def serve_rows(bench, base, n, ms, mb, vm_rss):
    serve, url, _admin, reader = bench.start_serve(base, "serve-accounts.log", timeout=30)
    time.sleep(1 if bench.smoke else 3)
    rss = vm_rss(serve.pid)
    bench.row(f"`serve` idle RSS, {n} accounts", mb(rss), f"{(rss / n):,.0f} B/account", "", "≤ 30 MB",
              rss <= 30_000_000)
    one = f"{url}/v1/access-token?account=acct-{n // 2:04d}"
    if not bench.smoke:
        bench.run(["wrk", "-t2", "-c64", "-d1s", "-H", f"Authorization: Bearer {reader}", one], timeout=60)
    rps, p99 = bench.wrk(one, f"Authorization: Bearer {reader}")
    bench.row(f"`serve` broker, one account of {n}: requests/s (wrk -t2 -c64 -d{bench.wrk_seconds}s)",
              f"{rps:,.0f}/s", f"p99 {ms(p99)}", "", "≥ 40,000/s", rps >= 40_000)
    serve.terminate()
    serve.wait(10)


def all_due_row(bench, base, tokens, Broken, ms):
    n = len(tokens)
    write_all(bench, base, tokens, datetime.now(timezone.utc) - timedelta(minutes=1))
    before = bench.sandbox_stats()
    started = time.perf_counter()
    done = bench.run(
        bench.wt(base, "refresh", "--if-needed", "--all", "--no-railway", "--json", "--upstream-budget", str(BUDGET)),
        env=bench.env(), timeout=600, check=False)
    took = time.perf_counter() - started
    if done.returncode != 0:
        raise Broken(f"refresh --all exited {done.returncode}: {done.stderr.decode(errors='replace')[-300:]}")
    after = bench.sandbox_stats()
    sent = count(after) - count(before)
    changed = 0
    for name, token in zip(names(n), tokens):
        stored = json.load(open(path_of(base, name)))
        changed += stored["tokens"]["refresh_token"] != token
    per_minute = sent / max(took, 1e-9) * 60 if took < 60 else sent / (took / 60)
    bench.row(f"{n} accounts due at once: `refresh --if-needed --all` (budget {BUDGET}/min)",
              f"{changed} rotated, {sent} requests in {took:.1f} s", f"{ms(took / n)} per account",
              "", f"each exactly once, ≤ {BUDGET}/min",
              changed == n and sent == n and (took < 60 and sent <= BUDGET or per_minute <= BUDGET))


def count(stats):
    """Token requests the sandbox has answered (only refreshes run in between)."""
    return int(stats["token_requests"])
