"""Events and refresh, for bench/compare.py (run bench/compare.sh).

Two rows, both against a webhook receiver in this process (Python's
http.server on loopback, answering 204):
- `refresh --no-railway` with a webhook sink that answers at once vs the
  same refresh without a sink (interleaved pairs, each run a real rotation
  at the sandbox; the sink gets `refreshed`): goal ≤ 1.2×.
- `refresh --no-railway --notify-timeout 1s` with a sink that answers after
  2 s: the run returns its exit code by the notify timeout (its wall time
  minus the refresh without a sink is at most the timeout and 300 ms).
"""

import http.server
import statistics
import threading
import time
import os


class Receiver:
    """A webhook receiver answering 204 after `delay` seconds."""

    def __init__(self, delay):
        delay_s = delay
        self.count = 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", "0"))
                self.rfile.read(length)
                outer.count += 1
                if delay_s:
                    time.sleep(delay_s)
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


def event_rows(bench, kit):
    """`kit`: the driver's module (its Broken, ms)."""
    Broken, ms = kit.Broken, kit.ms
    store = os.path.join(bench.home, "events", "tokens.json")
    os.makedirs(os.path.dirname(store), mode=0o700)
    bench.authorise(store)
    warm = 1 if bench.smoke else 3
    fast = Receiver(0)
    try:
        with_sink = bench.wt(store, "refresh", "--no-railway", "--webhook-url", fast.url)
        without = bench.wt(store, "refresh", "--no-railway")
        ours, plain = [], []
        for i in range(bench.loop_runs + warm):
            for cmd, times in ((with_sink, ours), (without, plain)):
                t = time.perf_counter()
                bench.run(cmd, env=bench.env(), timeout=60)
                if i >= warm:
                    times.append(time.perf_counter() - t)
        delivered = fast.count
    finally:
        fast.close()
    if delivered < bench.loop_runs:
        raise Broken(f"the fast sink got {delivered} events for {bench.loop_runs + warm} refreshes")
    a, b = statistics.median(ours), statistics.median(plain)
    bench.row("`refresh --no-railway` with a webhook answering at once vs without a sink", ms(a), ms(b),
              f"{a / b:.2f}×", "≤ 1.2×", a / b <= 1.2)

    slow = Receiver(2)
    try:
        cmd = bench.wt(store, "refresh", "--no-railway", "--webhook-url", slow.url, "--notify-timeout", "1s")
        t = time.perf_counter()
        bench.run(cmd, env=bench.env(), timeout=60)
        wall = time.perf_counter() - t
    finally:
        slow.close()
    over = wall - b
    bench.row("`refresh` with a webhook answering in 2 s, `--notify-timeout 1s`: time beyond a refresh without",
              ms(over), "the notify timeout: 1000 ms", "", "≤ 1300 ms", over <= 1.3)
