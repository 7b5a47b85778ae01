"""Encryption at rest, for bench/compare.py (run bench/compare.sh).

Two rows, on file stores of their own sealed to the key in
bench/bench-identity.txt (age X25519, an identity file, no passphrase; a
key published on purpose, which protects nothing):
- `status --json` on a sealed store vs the same on a plain one, both
  authorised the same way, in one hyperfine run with one environment
  (WITHINGS_TOKEN_IDENTITY_FILE set for both: the identities are read only
  when a sealed store is opened, so the plain run pays nothing for it):
  goal ≤ 1.3×.
- `refresh --no-railway` on the sealed store vs a bare `curl` POST of the
  same form, as the plain row measures it (interleaved pairs, each curl with
  its own unused refresh token); every refresh opens the sealed set, writes
  it sealed again, and the store is checked sealed after: goal ≤ 1.0×.

And `serve`'s broker (`GET /v1/access-token`, wrk) on a sealed store vs a
plain one, file and Redis: it opens the seal when the store changes, not
per request, so its rate is unchanged (goal ≥ 0.9× plain: wrk's noise).
"""

import json
import os

KEY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bench-identity.txt")


def install_key(bench, Broken, name="identity.txt"):
    """The bench key as an identity file `status` accepts (0600; git
    checks files out 0644, which is refused): (path, recipient)."""
    text = open(KEY).read()
    recipient = next((line.split(": ", 1)[1].strip() for line in text.splitlines()
                      if line.startswith("# public key: ")), None)
    if not recipient:
        raise Broken(f"{KEY} names no public key")
    path = os.path.join(bench.work, name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return path, recipient


def check_sealed(path, Broken):
    doc = json.load(open(path))
    if doc.get("version") != 2 or "sealed" not in doc or "tokens" in doc:
        raise Broken(f"{path} is not a sealed store: version {doc.get('version')}, keys {sorted(doc)}")


def broker_rate(bench, store, log, extra):
    serve, base, _admin, reader = bench.start_serve(store, log, extra=extra)
    try:
        rps, _p99 = bench.wrk(base + "/v1/access-token", f"Authorization: Bearer {reader}")
    finally:
        serve.terminate()
        serve.wait()
    return rps


def broker_rows(bench, kit):
    Broken = kit.Broken
    identity, recipient = install_key(bench, Broken, "broker-identity.txt")
    sealing = {"WITHINGS_TOKEN_IDENTITY_FILE": identity, "WITHINGS_TOKEN_RECIPIENTS": recipient}
    bench.start_redis()
    redis = f"redis://127.0.0.1:{bench.redis_port}"
    for kind, store in (("file", None), ("Redis", redis)):
        rates = {}
        for label, extra in (("sealed", sealing), ("plain", {})):
            # Each its own store: a Redis key of its own, or a file.
            where = store or os.path.join(bench.home, f"broker-{label}", "tokens.json")
            if store is None:
                os.makedirs(os.path.dirname(where), mode=0o700)
            extra = dict(extra, WITHINGS_TOKEN_STORE_KEY=f"bench-broker-{label}")
            bench.authorise(where, env=bench.env(**extra))
            rates[label] = broker_rate(bench, where, f"serve-{kind}-{label}.log", extra)
        ratio = rates["sealed"] / rates["plain"]
        bench.row(f"`serve` GET /v1/access-token, encrypted {kind} store vs plain: requests/s",
                  f"{rates['sealed']:,.0f}/s", f"{rates['plain']:,.0f}/s", f"{ratio:.2f}×", "≥ 0.9× (unchanged)",
                  ratio >= 0.9)


def sealed_rows(bench, kit):
    """`kit`: the driver's module (its Broken, ms)."""
    Broken, ms = kit.Broken, kit.ms
    identity, recipient = install_key(bench, Broken)
    reading = bench.env(WITHINGS_TOKEN_IDENTITY_FILE=identity)
    writing = bench.env(WITHINGS_TOKEN_IDENTITY_FILE=identity, WITHINGS_TOKEN_RECIPIENTS=recipient)
    sealed = os.path.join(bench.home, "sealed", "tokens.json")
    plain = os.path.join(bench.home, "sealed-plain", "tokens.json")
    for path in (sealed, plain):
        os.makedirs(os.path.dirname(path), mode=0o700)
    bench.authorise(sealed, env=writing)
    bench.authorise(plain)
    check_sealed(sealed, Broken)

    status = [bench.wt(sealed, "status", "--json"), bench.wt(plain, "status", "--json")]
    for cmd in status:
        if not json.loads(bench.run(cmd, env=reading).stdout).get("token_configured"):
            raise Broken(f"`{' '.join(cmd)}` found no set")
    a, b = bench.hyperfine("sealed-status", ["sealed", "plain"], status, reading)
    bench.row("`status --json`: encrypted file store vs plain (age X25519 identity file)", ms(a), ms(b),
              f"{a / b:.2f}×", "≤ 1.3×", a / b <= 1.3)

    a, b = bench.refresh_vs_curl(sealed, writing)
    check_sealed(sealed, Broken)
    bench.row("`refresh --no-railway`, encrypted file store, vs bare `curl` POST of the same form", ms(a), ms(b),
              f"{a / b:.2f}×", "ours/curl ≤ 1.0×", a / b <= 1.0)
