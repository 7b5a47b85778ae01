"""The soak of bench/soak.sh: drives `serve` until the sandbox has issued
--rotations sets, sampling serve's VmRSS, descriptors, threads and broker
latency, and judges the growth after the warm-up (the first tenth of the
rotations, and at least WARM_UP_SECONDS).

Load: two broker consumers, each on one kept-alive connection, polling
back to back; one proxy consumer (--proxy-rate calls a second) and one
admin driver posting refreshes (--rate a second): what takes a unit of
the upstream budget is paced, so that the budget's log of the last
minute's sends (at most the budget) is the same size all along (the background loop and the broker's own refreshes of the
4-second tokens rotate too). VmRSS is split into RssAnon (the heap) and
RssFile (the binary's pages as they are first touched). Every answer must be 200 (a proxied call's
Withings status aside: the proxy passes the answer on as it came).
"""

import argparse
import http.client
import json
import os
import sys
import threading
import time

RSS_BOUND_KIB = 1024
# The upstream budget keeps a log of the last minute's sends (bounded by
# the budget, not by the rotations): it is full once a minute has passed.
WARM_UP_SECONDS = 70
# serve's runtime starts a blocking thread when more store reads and
# writes overlap than it has threads, and keeps it while it is used: one
# or two more than at the warm-up is that pool, a leak grows past it.
THREAD_SLACK = 2
NO_COPIES = json.dumps({"update_railway": False, "trigger_deployment": False})
FORM = "action=getmeas&meastype=1&category=1"


class Load:
    def __init__(self, addr, admin, reader, rates):
        self.host, port = addr.rsplit(":", 1)
        self.port = int(port)
        self.admin, self.reader = admin, reader
        self.rates = rates  # calls a second by kind; none: back to back
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.broker_ms = []  # since the last sample
        self.counts = {"broker": 0, "proxy": 0, "admin": 0}
        self.failures = []

    def connection(self):
        return http.client.HTTPConnection(self.host, self.port, timeout=30)

    def call(self, conn, method, path, body, headers):
        start = time.perf_counter()
        try:
            conn.request(method, path, body, headers)
            answer = conn.getresponse()
            text = answer.read()
        except (OSError, http.client.HTTPException) as e:
            conn.close()
            return None, str(e).encode(), 0.0
        return answer.status, text, (time.perf_counter() - start) * 1000

    def run(self, kind):
        conn = self.connection()
        bearer = {"Authorization": f"Bearer {self.reader}"}
        started, sent = time.monotonic(), 0
        while not self.stop.is_set():
            rate = self.rates.get(kind)
            if rate:
                # Paced: what takes the upstream budget comes at a steady rate.
                time.sleep(max(0.0, started + sent / rate - time.monotonic()))
                sent += 1
            if kind == "broker":
                status, body, ms = self.call(conn, "GET", "/v1/access-token", None, bearer)
            elif kind == "proxy":
                headers = dict(bearer, **{"Content-Type": "application/x-www-form-urlencoded"})
                status, body, ms = self.call(conn, "POST", "/v1/withings/measure", FORM, headers)
            else:
                headers = {"X-Admin-Token": self.admin, "Content-Type": "application/json"}
                status, body, ms = self.call(conn, "POST", "/admin/token/refresh", NO_COPIES, headers)
            with self.lock:
                self.counts[kind] += 1
                if status != 200:
                    self.failures.append(f"{kind}: {status} {body[:300]!r}")
                elif kind == "broker":
                    self.broker_ms.append(ms)
            if status is None:
                conn = self.connection()

    def take_latencies(self):
        with self.lock:
            taken, self.broker_ms = self.broker_ms, []
        return taken


def status_field(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise SystemExit(f"no {key} in /proc/{pid}/status")


def descriptors(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def steady(read, times=5):
    """The least of a few readings 20 ms apart: a refresh in flight holds
    the store's lock file and a temporary file for a moment, the proxy a
    connection to Withings; what stays is what leaks."""
    values = []
    for _ in range(times):
        values.append(read())
        time.sleep(0.02)
    return min(values)


def issued(sandbox):
    host, port = sandbox.removeprefix("http://").rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.request("GET", "/_sandbox/stats")
    return json.loads(conn.getresponse().read())["tokens_issued"]


def percentile(values, share):
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


def sample(args, load, done, started):
    latencies = load.take_latencies()
    return {
        "rotations": done,
        "seconds": time.monotonic() - started,
        "rss": status_field(args.pid, "VmRSS"),
        "anon": status_field(args.pid, "RssAnon"),
        "file": status_field(args.pid, "RssFile"),
        "fds": steady(lambda: descriptors(args.pid)),
        "threads": steady(lambda: status_field(args.pid, "Threads")),
        "p50": percentile(latencies, 0.50),
        "p99": percentile(latencies, 0.99),
        "broker": len(latencies),
    }


def row(s, label=""):
    return (f"{s['rotations']:>9} {s['seconds']:>7.0f} {s['rss'] / 1024:>9.2f} {s['anon'] / 1024:>8.2f} "
            f"{s['file'] / 1024:>8.2f} {s['fds']:>5} "
            f"{s['threads']:>7} {s['p50']:>8.2f} {s['p99']:>8.2f} {s['broker']:>8}  {label}")


def main():
    parser = argparse.ArgumentParser()
    for name in ("pid", "rotations"):
        parser.add_argument(f"--{name}", type=int, required=True)
    parser.add_argument("--rate", type=float, default=40.0)
    parser.add_argument("--proxy-rate", type=float, default=20.0)
    for name in ("addr", "sandbox", "admin", "reader"):
        parser.add_argument(f"--{name}", required=True)
    args = parser.parse_args()
    first = issued(args.sandbox)
    load = Load(args.addr, args.admin, args.reader, {"admin": args.rate, "proxy": args.proxy_rate})
    threads = [threading.Thread(target=load.run, args=(kind,), daemon=True)
               for kind in ("broker", "broker", "proxy", "admin")]
    for thread in threads:
        thread.start()
    warm_up = max(args.rotations // 10, 1)
    step = max(args.rotations // 20, 1)
    print(f"soak: {args.rotations} rotations, admin refreshes at {args.rate}/s, proxied calls at "
          f"{args.proxy_rate}/s, warm-up {warm_up} "
          f"rotations and {WARM_UP_SECONDS} s; serve pid {args.pid}")
    print(f"{'rotations':>9} {'s':>7} {'RSS MiB':>9} {'anon':>8} {'file':>8} {'fds':>5} {'threads':>7} "
          f"{'p50 ms':>8} {'p99 ms':>8} {'broker':>8}")
    started = time.monotonic()
    samples, next_row, warm = [], step, None
    while True:
        time.sleep(0.5)
        done = issued(args.sandbox) - first
        if done < next_row and done < args.rotations:
            continue
        s = sample(args, load, done, started)
        samples.append(s)
        label = ""
        if warm is None and done >= warm_up and s["seconds"] >= WARM_UP_SECONDS:
            warm, label = s, "(warm)"
        print(row(s, label), flush=True)
        next_row = done + step
        if done >= args.rotations:
            break
    load.stop.set()
    for thread in threads:
        thread.join(timeout=35)
    if warm is None:
        sys.exit(f"too short: no row after {warm_up} rotations and {WARM_UP_SECONDS} s to judge from; "
                 "ask for more rotations or a lower RATE")
    end = samples[-1]
    # Descriptors and threads: the least of three rows at each end, so that
    # one caught mid-refresh does not count as growth.
    at_warm = samples.index(warm)
    least = lambda rows, key: min(r[key] for r in rows)
    fds = (least(samples[at_warm:at_warm + 3], "fds"), least(samples[-3:], "fds"))
    threads = (least(samples[at_warm:at_warm + 3], "threads"), least(samples[-3:], "threads"))
    print(f"calls: {load.counts['broker']} broker, {load.counts['proxy']} proxied, "
          f"{load.counts['admin']} admin refreshes; {len(load.failures)} not 200")
    for failure in load.failures[:10]:
        print(f"  {failure}")
    print(row(samples[0], "first row"))
    print(row(warm, "after warm-up"))
    print(row(end, "end"))
    verdicts = [
        (end["rss"] - warm["rss"] <= RSS_BOUND_KIB,
         f"VmRSS after warm-up grew {end['rss'] - warm['rss']} KiB (bound {RSS_BOUND_KIB})"),
        (fds[1] <= fds[0], f"descriptors {fds[0]} -> {fds[1]} (least of three rows)"),
        (threads[1] <= threads[0] + THREAD_SLACK,
         f"threads {threads[0]} -> {threads[1]} (least of three rows; bound +{THREAD_SLACK})"),
        (not load.failures, f"{len(load.failures)} calls not 200"),
    ]
    failed = False
    for ok, text in verdicts:
        print(f"{'ok  ' if ok else 'FAIL'} {text}")
        failed |= not ok
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
