"""Just enough of Redis's protocol (RESP) for the benchmarks' own checks,
with the standard library only: one connection, one command at a time.
Shared by bench/compare.py and the driver in bench/fleet.sh."""

import socket


class RedisError(OSError):
    """An error reply, or a reply this client does not read."""


class Redis:
    """One connection for the whole run, so the bench itself adds no
    connection and no command but its own to Redis's counters."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.f = self.s.makefile("rb")

    def call(self, *args):
        out = b"*%d\r\n" % len(args)
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        self.s.sendall(out)
        return self.read()

    def read(self):
        line = self.f.readline()
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RedisError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self.f.read(n + 2)[:-2]
        if kind == b"*":
            return [self.read() for _ in range(int(rest))]
        raise RedisError(f"unexpected reply {line!r}")
