"""Floods `serve` with clients that hold its connections (bench/flood.sh drives it).

  flood.py loris PORT CONNECTIONS SECONDS [SOURCE]
      opens CONNECTIONS non-blocking connections that send a partial request
      head and never finish it; reopens each one the server closes, until
      SECONDS have passed (a slowloris, from one source address).
  flood.py noread PORT CONNECTIONS SECONDS [REQUESTS]
      opens CONNECTIONS connections, each pipelining REQUESTS (default 2000)
      `GET /metrics` and never reading an answer, held for SECONDS.
Loopback only; every loop is bounded by SECONDS.
"""
import errno
import selectors
import socket
import sys
import time

PARTIAL = b"GET /health HTTP/1.1\r\nHost: x\r\n"


def loris(port, count, seconds, source="127.0.0.1"):
    sel = selectors.DefaultSelector()
    stats = {"open": 0, "reopened": 0, "refused": 0}

    def open_one():
        s = socket.socket()
        s.setblocking(False)
        try:
            s.bind((source, 0))
            s.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        except OSError:
            s.close()
            stats["refused"] += 1
            return
        sel.register(s, selectors.EVENT_WRITE, "connecting")
        stats["open"] += 1

    end = time.time() + seconds
    for _ in range(count):
        open_one()
    while time.time() < end:
        for key, _ in sel.select(timeout=0.2):
            s = key.fileobj
            if key.data == "connecting":
                try:
                    s.send(PARTIAL)
                    sel.modify(s, selectors.EVENT_READ, "waiting")
                    continue
                except OSError:
                    pass
            else:
                try:
                    if s.recv(100):
                        continue
                except OSError:
                    pass
            sel.unregister(s)
            s.close()
            stats["open"] -= 1
            stats["reopened"] += 1
            if time.time() < end:
                open_one()
    print("loris: open %(open)d, reopened %(reopened)d, refused %(refused)d" % stats, flush=True)


def noread(port, count, seconds, requests=2000):
    socks = []
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", port))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.setblocking(False)
        try:
            s.send(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n" * requests)
        except (BlockingIOError, OSError):
            pass
        socks.append(s)
    print("noread: sent", flush=True)
    time.sleep(seconds)
    for s in socks:
        s.close()


if __name__ == "__main__":
    mode, port, count, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    rest = sys.argv[5:]
    if mode == "loris":
        loris(port, count, seconds, *rest)
    elif mode == "noread":
        noread(port, count, seconds, *(int(r) for r in rest))
    else:
        sys.exit("usage: flood.py loris|noread PORT CONNECTIONS SECONDS [...]")
