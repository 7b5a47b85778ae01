"""Events and refresh, for bench/compare.py (run bench/compare.sh).

Two rows, both against a webhook receiver in this process (a raw socket
on loopback, answering 204):
- `refresh --no-railway` with a webhook sink that answers at once vs the
  same refresh without a sink, on a store of its own whose record knows no
  sink (interleaved pairs, each run a real rotation at the sandbox; the
  sink gets `refreshed`): goal ≤ 1.2×.
- `refresh --no-railway --notify-timeout 1s` with a sink that answers after
  2 s: the run returns its exit code by the notify timeout (its wall time
  minus the refresh without a sink is at most the timeout and 300 ms).
"""

import socket
import statistics
import threading
import time
import os


class Receiver:
    """A webhook receiver answering 204 after `delay` seconds: a raw socket
    loop that reads the request (headers, then Content-Length bytes) and
    writes a canned answer, so that "answers at once" costs the sender
    little more than the loopback round trip (Python's http.server alone
    takes ~0.6 ms a request, which is not ours to count)."""

    ANSWER = b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"

    def __init__(self, delay):
        self.delay = delay
        self.count = 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/hook"
        self.open = True
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while self.open:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.answer, args=(conn,), daemon=True).start()

    def answer(self, conn):
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            while len(body) < length:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                body += chunk
            self.count += 1
            if self.delay:
                time.sleep(self.delay)
            conn.sendall(self.ANSWER)

    def close(self):
        self.open = False
        self.sock.close()


def event_rows(bench, kit):
    """`kit`: the driver's module (its Broken, ms)."""
    Broken, ms = kit.Broken, kit.ms
    # Two stores: a run without sinks on a store whose record knows some
    # queues its events for them (so that no alert is lost), which is not
    # what a deployment without sinks costs.
    store = os.path.join(bench.home, "events", "tokens.json")
    plain_store = os.path.join(bench.home, "events-plain", "tokens.json")
    for path in (store, plain_store):
        os.makedirs(os.path.dirname(path), mode=0o700)
        bench.authorise(path)
    warm = 1 if bench.smoke else 3
    fast = Receiver(0)
    try:
        with_sink = bench.wt(store, "refresh", "--no-railway", "--webhook-url", fast.url)
        without = bench.wt(plain_store, "refresh", "--no-railway")
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
