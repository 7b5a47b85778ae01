#!/usr/bin/env python3
"""A large answer through `serve`'s Withings proxy, for bench/proxy.sh and
bench/proxy.py: an upstream that answers any POST with one body of SIZE
bytes held in memory (a Withings-shaped `{"status":0,"body":{"pad":"…"}}`,
so the proxy's 64 KiB peek finds status 0), and CONSUMERS clients that each
read the whole answer at RATE bytes/s (0: as fast as they can) while the
server's VmRSS is sampled. Every consumer must get exactly SIZE bytes and
all must have been in flight at the same time, or the run is broken.

  bigbody.py upstream SIZE            serve until killed; prints `port N`
  bigbody.py consume URL PID N SIZE RATE [HEADER...]
                                      prints one JSON object (see consume())
"""

import http.client
import http.server
import json
import sys
import threading
import time
import urllib.parse

CHUNK = 64 * 1024


def body_of(size):
    head, tail = b'{"status":0,"body":{"pad":"', b'"}}'
    if size < len(head) + len(tail):
        raise ValueError(f"an answer of {size} bytes cannot hold the JSON frame")
    return head + b"x" * (size - len(head) - len(tail)) + tail


def start_upstream(size):
    """A threaded HTTP/1.1 server on a free loopback port: (server, port)."""
    body = memoryview(body_of(size))

    class Answer(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1]


def vm(pid, key):
    """A /proc/PID/status figure in bytes (the kernel's kB are KiB)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {key} for pid {pid}")


def consume(url, pid, consumers, size, rate, headers, form=b"action=getmeas&meastype=1"):
    """Runs the consumers against `url` (POST `form`) and samples `pid`'s
    VmRSS every 10 ms: a dict with rss_cold (before any call), rss_before
    (after one whole answer, alone), rss_peak (sampled),
    hwm_after, received (bytes per consumer), statuses, most_in_flight
    (consumers that had their head and were still reading, at once),
    seconds, errors."""
    target = urllib.parse.urlparse(url)
    path = target.path + (f"?{target.query}" if target.query else "")
    heads = {"Content-Type": "application/x-www-form-urlencoded", **headers}
    received, statuses, errors = [0] * consumers, [None] * consumers, []
    in_flight, most = [0], [0]
    lock = threading.Lock()
    start = threading.Barrier(consumers + 1)

    def one(i):
        connection = http.client.HTTPConnection(target.hostname, target.port, timeout=120)
        try:
            start.wait()
            connection.request("POST", path, body=form, headers=heads)
            answer = connection.getresponse()
            statuses[i] = answer.status
            with lock:
                in_flight[0] += 1
                most[0] = max(most[0], in_flight[0])
            began = time.monotonic()
            try:
                while chunk := answer.read(CHUNK):
                    received[i] += len(chunk)
                    if rate:
                        ahead = received[i] / rate - (time.monotonic() - began)
                        if ahead > 0:
                            time.sleep(ahead)
            finally:
                with lock:
                    in_flight[0] -= 1
        except (OSError, http.client.HTTPException, threading.BrokenBarrierError) as e:
            with lock:
                errors.append(f"consumer {i}: {type(e).__name__}: {e}")
        finally:
            connection.close()

    rss_cold = vm(pid, "VmRSS")
    # One whole answer first, so that the figure is what the consumers at
    # once cost, not the HTTP client the first call builds.
    warm = http.client.HTTPConnection(target.hostname, target.port, timeout=120)
    try:
        warm.request("POST", path, body=form, headers=heads)
        warmed = len(warm.getresponse().read())
    except (OSError, http.client.HTTPException) as e:
        errors.append(f"warm-up: {type(e).__name__}: {e}")
        warmed = 0
    finally:
        warm.close()
    if warmed != size:
        errors.append(f"warm-up: got {warmed} bytes, not {size}")
    time.sleep(0.5)
    rss_before = vm(pid, "VmRSS")
    peak, done = [rss_before], threading.Event()

    def sample():
        while not done.wait(0.01):
            try:
                peak[0] = max(peak[0], vm(pid, "VmRSS"))
            except (OSError, RuntimeError):
                return

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(consumers)]
    for t in threads:
        t.start()
    began = time.monotonic()
    start.wait()
    for t in threads:
        t.join()
    seconds = time.monotonic() - began
    done.set()
    sampler.join()
    return {
        "rss_cold": rss_cold,
        "rss_before": rss_before,
        "rss_peak": peak[0],
        "hwm_after": vm(pid, "VmHWM"),
        "received": received,
        "statuses": statuses,
        "most_in_flight": most[0],
        "seconds": seconds,
        "errors": errors,
        "size": size,
    }


def problems(result, consumers, all_at_once=True):
    """Why a consume() run measured nothing: [] when every consumer got a
    200 and exactly `size` bytes, all in flight at once (unless not
    `all_at_once`: a smoke run on a busy machine may not overlap them)."""
    found = list(result["errors"][:3])
    wrong = [(i, s, n) for i, (s, n) in enumerate(zip(result["statuses"], result["received"]))
             if s != 200 or n != result["size"]]
    if wrong:
        i, status, n = wrong[0]
        found.append(f"{len(wrong)} of {consumers} consumers did not get exactly {result['size']} bytes "
                     f"(first: consumer {i}, HTTP {status}, {n} bytes)")
    if all_at_once and result["most_in_flight"] < consumers:
        found.append(f"only {result['most_in_flight']} of {consumers} consumers were reading at once")
    return found


def main(argv):
    if len(argv) == 2 and argv[0] == "upstream":
        server, port = start_upstream(int(argv[1]))
        print(f"port {port}", flush=True)
        threading.Event().wait()
    elif len(argv) >= 6 and argv[0] == "consume":
        url, pid, consumers, size, rate = argv[1], int(argv[2]), int(argv[3]), int(argv[4]), float(argv[5])
        headers = dict(h.split(": ", 1) for h in argv[6:])
        result = consume(url, pid, consumers, size, rate, headers)
        result["problems"] = problems(result, consumers)
        print(json.dumps(result))
        return 1 if result["problems"] else 0
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
