#!/usr/bin/env bash
# A fleet of hosts on one Redis store, on one machine: what `refresh
# --if-needed` from cron costs when every host fires in the same second.
#
# Starts its own redis-server and the built-in sandbox on free loopback ports,
# authorises once into the Redis store, then plays cron ticks: at each tick it
# releases HOSTS processes at once (all wait on one pipe, whose write end is
# then closed: one instant for all), each with its own HOME and
# XDG_STATE_HOME (a separate "host"), all running
#   withings-token refresh --if-needed --no-railway --json
# against the one Redis. Odd ticks find the set due (the script moves the
# stored `tokens.expires_at` a minute into the past first), even ticks find it
# fresh. Before the ticks, one host alone (the uncontended cost); after them,
# FORCED concurrent `refresh` (no --if-needed), each of which must rotate, in
# turn, under the lease.
#
# Per round it reports: processes and exit codes, the JSON outcomes
# (refreshed / not_due / already_refreshed_by_peer), Withings token requests,
# refusals and 601s (the sandbox's /_sandbox/stats), and from Redis' INFO
# commandstats: leases taken (INCR calls: only the take-the-lease script
# INCRs) and busy tries (SET calls, less one per lease try that won, less the
# journal mark and the save of each rotation), all commands (those run inside
# scripts included) and connections. Times per process, from its release:
# median and max wall time, max time until it held the lease (its `-vv` log
# line "took the Redis lease"), and the lease span (first to last lease of
# the round), and user+sys CPU per process. Exit status 1 when any process
# exited non-zero.
#
# Usage: bench/fleet.sh [hosts] [ticks]     (defaults: 100 hosts, 3 ticks)
# Env:   WITHINGS_TOKEN_BIN  the binary (else `cargo build --release`)
#        FORCED              concurrent forced refreshes (default 20; 0 skips)
#        REDIS_RTT_MS        put Redis behind a proxy adding this round-trip
#                            time (default 0: plain loopback)
#        PROC_TIMEOUT        seconds before a process is killed (default 120,
#                            above the default 60 s --lock-timeout)
# Needs redis-server and python3; no network beyond loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
hosts="${1:-100}"
ticks="${2:-3}"
forced="${FORCED:-20}"
proc_timeout="${PROC_TIMEOUT:-120}"
for n in "$hosts" "$ticks" "$forced" "$proc_timeout"; do
  [[ "$n" =~ ^[0-9]+$ ]] || { echo "usage: bench/fleet.sh [hosts] [ticks] (whole numbers)" >&2; exit 2; }
done
(( hosts >= 1 && ticks >= 1 )) || { echo "need at least 1 host and 1 tick" >&2; exit 2; }
for tool in redis-server python3 timeout; do
  command -v "$tool" >/dev/null || { echo "bench/fleet.sh needs $tool" >&2; exit 2; }
done

if [[ -n "${WITHINGS_TOKEN_BIN:-}" ]]; then
  bin="$WITHINGS_TOKEN_BIN"
else
  cargo build --release --quiet
  bin="$PWD/target/release/withings-token"
fi
[[ -x "$bin" ]] || { echo "not an executable: $bin" >&2; exit 2; }

work="$(mktemp -d)"
redis_pid="" sandbox_pid="" driver_pid=""
cleanup() {
  local pid
  for pid in "$driver_pid" "$sandbox_pid" "$redis_pid"; do
    [[ -n "$pid" ]] && kill "$pid" 2>/dev/null || true
  done
  for pid in "$driver_pid" "$sandbox_pid" "$redis_pid"; do
    [[ -n "$pid" ]] && wait "$pid" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# Redis on a free loopback port, nothing persisted.
for _ in 1 2 3 4 5; do
  redis_port="$(free_port)"
  redis-server --bind 127.0.0.1 --port "$redis_port" --save '' --appendonly no \
    --dir "$work" --logfile "$work/redis.log" &
  redis_pid=$!
  up=""
  for _ in $(seq 100); do
    if python3 - "$redis_port" 2>/dev/null <<'PY'; then up=1; break; fi
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1)
s.sendall(b"PING\r\n")
sys.exit(0 if s.recv(16).startswith(b"+PONG") else 1)
PY
    kill -0 "$redis_pid" 2>/dev/null || break
    sleep 0.05
  done
  [[ -n "$up" ]] && break
  kill "$redis_pid" 2>/dev/null || true; wait "$redis_pid" 2>/dev/null || true; redis_pid=""
done
[[ -n "$redis_pid" ]] || { echo "redis-server did not start" >&2; cat "$work/redis.log" >&2 || true; exit 1; }

# The sandbox (Withings' token endpoint and consent page) on a free port.
"$bin" sandbox --listen 127.0.0.1:0 >"$work/sandbox.env" 2>"$work/sandbox.err" &
sandbox_pid=$!
for _ in $(seq 100); do grep -q '^WITHINGS_API_URL=' "$work/sandbox.env" 2>/dev/null && break; sleep 0.05; done
grep -q '^WITHINGS_API_URL=' "$work/sandbox.env" || { echo "the sandbox did not start" >&2; cat "$work/sandbox.err" >&2; exit 1; }

store="redis://127.0.0.1:$redis_port"
# Authorise once, into the Redis store, from a host of its own.
mkdir -p "$work/admin"
admin() {
  env -i HOME="$work/admin" XDG_STATE_HOME="$work/admin" PATH=/usr/bin:/bin \
    WITHINGS_TOKEN_STORE="$store" timeout 60 "$bin" --env-file "$work/sandbox.env" "$@"
}
url="$(admin auth-url --json | sed -n 's/.*"authorization_url": "\(.*\)".*/\1/p')"
# Play the browser: the sandbox's consent page redirects at once with a code.
redirect="$(python3 - "$url" <<'PY'
import sys, urllib.error, urllib.request
class Stay(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None
try:
    urllib.request.build_opener(Stay).open(sys.argv[1], timeout=10)
except urllib.error.HTTPError as e:
    print(e.headers["Location"] or "")
PY
)"
[[ -n "$redirect" ]] || { echo "the sandbox consent page did not redirect" >&2; exit 1; }
admin exchange "$redirect" --no-railway --quiet >/dev/null

# The ticks, the forced round and the summary: one bounded Python driver.
timeout --kill-after=10 "$(( (ticks + 2) * (proc_timeout + 30) + 60 ))" \
  python3 - "$bin" "$work" "$redis_port" "$hosts" "$ticks" "$forced" "$proc_timeout" <<'PY' &
import json, os, resource, signal, socket, statistics, subprocess, sys, threading, time, urllib.request
from collections import Counter
from datetime import datetime, timedelta, timezone
sys.path.insert(0, "bench")  # this script runs from the repository's root
from resp import Redis

bin_, work, port, hosts, ticks, forced, proc_timeout = sys.argv[1], sys.argv[2], int(sys.argv[3]), *map(int, sys.argv[4:])
live = set()

def stop(*_):
    for p in list(live):
        try: p.kill()
        except OSError: pass
    sys.exit(130)
signal.signal(signal.SIGTERM, stop)

def delay_proxy(upstream_port, one_way):
    """A loopback TCP proxy that delays every chunk by `one_way` seconds in
    each direction (order kept, throughput not limited): a remote Redis."""
    import asyncio
    ready = threading.Event()
    box = {}
    async def pipe(reader, writer):
        queue = asyncio.Queue()
        async def send():
            while True:
                due, data = await queue.get()
                if data is None: break
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                writer.write(data)
                await writer.drain()
            writer.close()
        sender = asyncio.ensure_future(send())
        try:
            while data := await reader.read(65536):
                queue.put_nowait((time.monotonic() + one_way, data))
        except OSError:
            pass
        queue.put_nowait((0, None))
        await sender
    async def handle(client_r, client_w):
        try:
            up_r, up_w = await asyncio.open_connection("127.0.0.1", upstream_port)
        except OSError:
            client_w.close(); return
        await asyncio.gather(pipe(client_r, up_w), pipe(up_r, client_w), return_exceptions=True)
    async def main():
        server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=1024)
        box["port"] = server.sockets[0].getsockname()[1]
        ready.set()
        await server.serve_forever()
    threading.Thread(target=lambda: asyncio.run(main()), daemon=True).start()
    ready.wait(10)
    return box["port"]

rtt_ms = float(os.environ.get("REDIS_RTT_MS") or 0)
store_port = delay_proxy(port, rtt_ms / 2000) if rtt_ms else port
env_base = {"PATH": "/usr/bin:/bin", "WITHINGS_TOKEN_STORE": f"redis://127.0.0.1:{store_port}"}
for line in open(os.path.join(work, "sandbox.env")):
    if line.startswith("WITHINGS_") and "=" in line:
        k, v = line.rstrip("\n").split("=", 1)
        env_base[k] = v
api = env_base["WITHINGS_API_URL"]
key = f"withings-token:{env_base['WITHINGS_CLIENT_ID']}:tokens"
r = Redis(port)

def sandbox_stats():
    with urllib.request.urlopen(api + "/_sandbox/stats", timeout=10) as answer:
        return json.load(answer)

def commandstats():
    text = r.call("INFO", "commandstats").decode()
    calls = {}
    for line in text.splitlines():
        if line.startswith("cmdstat_"):
            name, fields = line[len("cmdstat_"):].split(":", 1)
            calls[name] = int(dict(f.split("=", 1) for f in fields.split(","))["calls"])
    return calls

def connections():
    text = r.call("INFO", "stats").decode()
    return int(next(l.split(":")[1] for l in text.splitlines() if l.startswith("total_connections_received:")))

def make_due():
    doc = json.loads(r.call("GET", key))
    past = datetime.now(timezone.utc) - timedelta(minutes=1)
    doc["tokens"]["expires_at"] = past.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert r.call("SET", key, json.dumps(doc, indent=2)) == "OK"

def spawn(i, args, tag, gate):
    """A gated host: `sh` waits on the round's gate (a pipe all hosts of the
    round read), then execs the binary; closing the gate's write end wakes
    them all at once, like cron on NTP-synchronised machines."""
    home = os.path.join(work, "hosts", f"{tag}{i:03d}")
    os.makedirs(os.path.join(home, "state"), exist_ok=True)
    env = dict(env_base, HOME=home, XDG_STATE_HOME=os.path.join(home, "state"))
    cmd = ["/bin/sh", "-c", 'read _ || true; exec "$@"', "sh",
           bin_, "--no-env-file", "-vv", "--log-format", "json", *args]
    p = subprocess.Popen(cmd, env=env, stdin=gate, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=home)
    live.add(p)
    return p

def collect(p, results, i):
    try:
        out, err = p.communicate(timeout=proc_timeout + 5)
        rc = p.returncode
    except subprocess.TimeoutExpired:
        p.kill(); out, err = p.communicate(); rc = "timeout"
    end = time.time()
    live.discard(p)
    outcome, lease_at = "?", None
    try: outcome = json.loads(out)["outcome"]
    except Exception: pass
    for line in err.decode(errors="replace").splitlines():
        try: entry = json.loads(line)
        except ValueError: continue
        if entry.get("message", "").startswith("took the Redis lease"):
            lease_at = datetime.fromisoformat(entry["timestamp"].replace("Z", "+00:00")).timestamp()
    results[i].update(rc=rc, outcome=outcome, end=end, lease_at=lease_at, stderr=err.decode(errors="replace"))

def round_(name, n, args, due):
    if due: make_due()
    gate_r, gate_w = os.pipe()
    procs = [spawn(i, args, name[:1], gate_r) for i in range(n)]
    os.close(gate_r)
    results = [dict() for _ in range(n)]
    threads = [threading.Thread(target=collect, args=(p, results, i)) for i, p in enumerate(procs)]
    for t in threads: t.start()
    time.sleep(0.5)  # every sh is up and blocked on the gate
    s0, c0, k0 = sandbox_stats(), commandstats(), connections()
    u0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.time()
    os.close(gate_w)  # EOF for every host at once
    for x in results: x["start"] = t0
    for t in threads: t.join()
    elapsed = max(x["end"] for x in results) - t0
    s1, c1, k1 = sandbox_stats(), commandstats(), connections()
    u1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_ms = ((u1.ru_utime + u1.ru_stime) - (u0.ru_utime + u0.ru_stime)) * 1000 / n
    d = lambda k: c1.get(k, 0) - c0.get(k, 0)
    outcomes = Counter(x["outcome"] for x in results)
    rotations = outcomes["refreshed"]
    leases = d("incr")
    tries = d("set") - 2 * rotations
    walls = sorted(x["end"] - x["start"] for x in results)
    lease_at = sorted(x["lease_at"] for x in results if x["lease_at"] is not None)
    to_lease = [x["lease_at"] - x["start"] for x in results if x["lease_at"] is not None]
    row = dict(
        round=name, due="yes" if due else "no", procs=n,
        exit0=sum(1 for x in results if x["rc"] == 0),
        refreshed=rotations, not_due=outcomes["not_due"], by_peer=outcomes["already_refreshed_by_peer"],
        upstream=s1["token_requests"] - s0["token_requests"],
        refused=s1["refused"] - s0["refused"], r601=s1["rate_limited"] - s0["rate_limited"],
        leases=leases, busy=tries - leases,
        redis_cmds=sum(d(k) for k in c1 if k != "info"),
        scripts=d("evalsha") + d("eval"), conns=k1 - k0,
        med_ms=statistics.median(walls) * 1000, max_ms=walls[-1] * 1000,
        lease_ms=max(0.0, max(to_lease)) * 1000 if to_lease else float("nan"),
        span_ms=(lease_at[-1] - lease_at[0]) * 1000 if lease_at else float("nan"),
        cpu_ms=cpu_ms, elapsed_s=elapsed,
    )
    bad = [x for x in results if x["rc"] != 0 or x["outcome"] == "?"]
    for x in bad[:5]:
        print(f"  !! {name}: exit {x['rc']}, outcome {x['outcome']}, after {(x['end'] - x['start'])*1000:.0f} ms; stderr:\n"
              + "\n".join("     " + l for l in x["stderr"].splitlines()[-6:]), file=sys.stderr)
    if len(bad) > 5: print(f"  !! {name}: {len(bad) - 5} more failed", file=sys.stderr)
    return row

rows = [round_("solo", 1, ["refresh", "--if-needed", "--no-railway", "--json"], due=False)]
for t in range(1, ticks + 1):
    rows.append(round_(f"tick{t}", hosts, ["refresh", "--if-needed", "--no-railway", "--json"], due=(t % 2 == 1)))
if forced:
    rows.append(round_("forced", forced, ["refresh", "--no-railway", "--json"], due=False))

redis_version = next(l.split(":")[1] for l in r.call("INFO", "server").decode().splitlines() if l.startswith("redis_version:"))
where = f"behind a {rtt_ms:g} ms RTT proxy" if rtt_ms else "on loopback"
print(f"# {hosts} hosts x {ticks} ticks, then {forced} forced; {os.cpu_count()} cores; redis {redis_version} {where}; "
      f"sandbox; {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC")
cols = [("round", "round", "{}"), ("due", "due", "{}"), ("procs", "procs", "{}"), ("exit0", "exit 0", "{}"),
        ("refreshed", "refreshed", "{}"), ("not_due", "not_due", "{}"), ("by_peer", "by_peer", "{}"),
        ("upstream", "upstream", "{}"), ("refused", "refused", "{}"), ("r601", "601", "{}"),
        ("leases", "leases", "{}"), ("busy", "busy tries", "{}"), ("redis_cmds", "redis cmds", "{}"),
        ("conns", "conns", "{}"), ("med_ms", "median ms", "{:.0f}"), ("max_ms", "max ms", "{:.0f}"),
        ("lease_ms", "max to lease ms", "{:.0f}"), ("span_ms", "lease span ms", "{:.0f}"),
        ("cpu_ms", "cpu ms/proc", "{:.1f}")]
table = [[c[1] for c in cols]] + [[f.format(row[k]) for k, _, f in cols] for row in rows]
widths = [max(len(line[i]) for line in table) for i in range(len(cols))]
for n, line in enumerate(table):
    print("| " + " | ".join(v.rjust(w) for v, w in zip(line, widths)) + " |")
    if n == 0: print("|" + "|".join("-" * (w + 1) + ":" for w in widths) + "|")
for row in rows:
    if row["round"] == "forced" and row["refreshed"]:
        print(f"forced: {row['refreshed']} rotations in {row['elapsed_s']*1000:.0f} ms, "
              f"{row['elapsed_s']*1000/row['refreshed']:.0f} ms per rotation (serialised under the lease)")
print("times from the round's release (one instant for all hosts); lease span: first to last lease taken in the round;\n"
      "busy tries: lease tries that found it taken; redis cmds include those run inside scripts; cpu: user+sys per process")
for row in rows:  # every script call is a lease try, a release, or one of a rotation's three
    expected = 2 * row["leases"] + row["busy"] + 3 * row["refreshed"]
    if row["scripts"] != expected:
        print(f"note: {row['round']}: {row['scripts']} script calls, {expected} expected "
              "(a lease renewal, a retried NOSCRIPT, or a release on an error path)")
generation = json.loads(r.call("GET", key))["generation"]
print(f"store generation at the end: {generation}")
failed = sum(row["procs"] - row["exit0"] for row in rows)
sys.exit(1 if failed else 0)
PY
driver_pid=$!
set +e
wait "$driver_pid"
status=$?
set -e
driver_pid=""
exit "$status"
