"""`serve`'s Withings proxy (issue 23), for bench/compare.py (run
bench/compare.sh); bench/proxy.sh measures the same standalone.

Three rows:
- `POST /measure action=getmeas` straight to the sandbox with the account's
  access token vs `POST /v1/withings/measure` through `serve` with the
  reader token, the same body (bench/post.lua), `wrk -t2 -c64`: p99
  overhead (goal ≤ 0.5 ms) and requests/s (goal ≥ 0.8× direct). The rounds
  alternate (direct, proxied, …; medians); the sandbox's count of refused
  data calls must not move, and both ways must give the same answer first.
  `serve` runs with `--upstream-budget 10000000`: every proxied call takes
  a unit of the app's budget, which must never make one wait here.
- A 20 MiB answer (bench/bigbody.py: an upstream serving it from memory)
  through a second `serve` (default `--proxy-max-bytes`, 32 MiB) to 50
  consumers at once, each reading at 1 MiB/s: growth of `serve`'s VmRSS
  (peak sampled every 10 ms, or VmHWM after, whichever is higher, minus
  VmRSS before), goal ≤ 2× the answer. Every consumer must get exactly 20
  MiB and all must be reading at once, or the row is broken. Smoke: 10
  consumers at 10 MiB/s, not required to overlap.
"""

import json
import os
import statistics
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bigbody  # noqa: E402  (bench/bigbody.py)

POST_LUA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "post.lua")
FORM = b"action=getmeas&meastype=1&category=1"
BUDGET = {"WITHINGS_TOKEN_UPSTREAM_BUDGET": "10000000"}
SIZE = 20 * 1024 * 1024
MiB = 1024 * 1024


def post(url, bearer, Broken):
    """One call as wrk sends it: (HTTP status, body)."""
    request = urllib.request.Request(url, FORM, {"Authorization": f"Bearer {bearer}",
                                                 "Content-Type": "application/x-www-form-urlencoded"})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer.read()
    except OSError as e:  # urllib's HTTPError and URLError included
        raise Broken(f"POST {url}: {e}")


def withings_status(body):
    try:
        return json.loads(body).get("status")
    except ValueError:
        return None


def latency_rows(bench, kit, store):
    kit.need("wrk")
    access = bench.run(bench.wt(store, "access-token"), env=bench.env()).stdout.decode().strip()
    serve, base, _admin, reader = bench.start_serve(store, "serve-proxy.log", extra=BUDGET)
    direct_url, proxied_url = bench.api + "/measure", base + "/v1/withings/measure"
    direct_answer, proxied_answer = post(direct_url, access, kit.Broken), post(proxied_url, reader, kit.Broken)
    if direct_answer != proxied_answer or withings_status(direct_answer[1]) != 0:
        raise kit.Broken(f"the direct and proxied answers differ or are not status 0: {direct_answer[1][:120]!r} "
                         f"vs {proxied_answer[1][:120]!r}")
    refused_before = bench.sandbox_stats()["data_refused"]
    rounds = 1 if bench.smoke else 3
    direct, proxied = [], []
    if not bench.smoke:
        bench.run(["wrk", "-t2", "-c64", "-d1s", "-s", POST_LUA, "-H", f"Authorization: Bearer {reader}", proxied_url],
                  timeout=60)  # warm-up
    for _ in range(rounds):
        direct.append(bench.wrk(direct_url, f"Authorization: Bearer {access}", script=POST_LUA))
        proxied.append(bench.wrk(proxied_url, f"Authorization: Bearer {reader}", script=POST_LUA))
    serve.terminate()
    serve.wait()
    refused = bench.sandbox_stats()["data_refused"] - refused_before
    if refused:
        raise kit.Broken(f"the sandbox refused {refused} data calls during the load (a dead token measures nothing)")
    d_rps, d_p99 = (statistics.median(r[i] for r in direct) for i in (0, 1))
    p_rps, p_p99 = (statistics.median(r[i] for r in proxied) for i in (0, 1))
    bench.notes.append("proxy rounds (req/s, p99): " + "; ".join(
        f"direct {d[0]:,.0f}/s {kit.ms(d[1])}, proxied {p[0]:,.0f}/s {kit.ms(p[1])}" for d, p in zip(direct, proxied)))
    what = f"(wrk -t2 -c64 -d{bench.wrk_seconds}s, median of {rounds})"
    bench.row(f"`serve` proxy POST /v1/withings/measure vs the sandbox's /measure direct: p99 {what}", kit.ms(p_p99),
              f"direct: {kit.ms(d_p99)}", f"{(p_p99 - d_p99) * 1000:+.2f} ms", "≤ +0.5 ms", p_p99 - d_p99 <= 0.0005)
    bench.row(f"`serve` proxy POST /v1/withings/measure vs direct: requests/s {what}", f"{p_rps:,.0f}/s",
              f"direct: {d_rps:,.0f}/s", f"{p_rps / d_rps:.2f}×", "≥ 0.8×", p_rps / d_rps >= 0.8)


def memory_row(bench, kit, store):
    consumers, rate = (10, 10 * MiB) if bench.smoke else (50, 1 * MiB)
    upstream = bench.start([sys.executable, bigbody.__file__, "upstream", str(SIZE)], "bigbody.log")
    port = None
    for _ in range(200):
        text = open(os.path.join(bench.work, "bigbody.log")).read()
        if text.startswith("port "):
            port = int(text.split()[1])
            break
        if upstream.poll() is not None:
            break
        time.sleep(0.05)
    if port is None:
        raise kit.Broken("bench/bigbody.py did not start: " + text[-300:])
    big_store = os.path.join(bench.home, "proxy-big.json")
    fd = os.open(big_store, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(open(store).read())
    extra = dict(BUDGET, WITHINGS_API_URL=f"http://127.0.0.1:{port}")
    serve, base, _admin, reader = bench.start_serve(big_store, "serve-big.log", extra=extra)
    time.sleep(1)
    result = bigbody.consume(base + "/v1/withings/measure", serve.pid, consumers, SIZE, rate,
                             {"Authorization": f"Bearer {reader}"})
    serve.terminate()
    serve.wait()
    upstream.terminate()
    problems = bigbody.problems(result, consumers, all_at_once=not bench.smoke)
    if problems:
        raise kit.Broken("; ".join(problems))
    growth = max(result["rss_peak"], result["hwm_after"]) - result["rss_before"]
    pace = f"{rate / MiB:.0f} MiB/s each"
    bench.row(f"`serve` proxy: RSS growth, a 20 MiB answer to {consumers} consumers at once ({pace})",
              f"{growth / MiB:.1f} MiB (VmRSS {result['rss_before'] / MiB:.1f} → peak {result['rss_peak'] / MiB:.1f}, "
              f"VmHWM {result['hwm_after'] / MiB:.1f})",
              f"{consumers} × 20 MiB = {consumers * 20} MiB; each got exactly {SIZE:,} B in {result['seconds']:.1f} s",
              "", "≤ 40 MiB (2× the answer)", growth <= 2 * SIZE)


def latency(bench, kit):
    """The first two rows, on a store of their own."""
    store = os.path.join(bench.home, "proxy.json")
    bench.authorise(store)
    latency_rows(bench, kit, store)


def memory(bench, kit):
    """The memory row: `serve` on a copy of the first store (no call reaches
    the sandbox)."""
    memory_row(bench, kit, bench.store)
