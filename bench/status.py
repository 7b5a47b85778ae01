#!/usr/bin/env python3
"""`withings-token status --json`, in Python's standard library only.

The comparison for bench/compare.sh: it reads the same store file and prints
the same JSON report, with the same rules (src/report.rs,
src/tokens/mod.rs):

- the refresh buffer is WITHINGS_REFRESH_BUFFER (or --buffer) when set, else
  min(24h, lifetime / 3), the lifetime being expires_at - last_refreshed (3 h
  when either is unknown or the difference is not positive);
- a refresh is due when the expiry is unknown or now >= expires_at - buffer;
- expires_in_hours has one decimal, rounded half away from zero, never -0.0;
- times are RFC 3339, UTC, whole seconds, `Z`; `now` has no fraction.

The account's event record beside the store (`tokens.events.json`: its
alert state and outbox) is read as `status` reads it: a failure recorded
for an older set than the one in use is over.

What it leaves out, because the bench never needs it: a seed in the
environment (WITHINGS_REFRESH_TOKEN, ...) is not consulted, a Redis store is
refused, and `copies` is always empty (no env file, no Railway).

Usage: status.py [--store PATH] [--buffer DURATION]
"""

import json
import os
import sys
from datetime import datetime, timezone

NS = 1_000_000_000
HOUR_NS = 3600 * NS
ASSUMED_LIFETIME_NS = 3 * HOUR_NS
MAX_DEFAULT_BUFFER_NS = 24 * HOUR_NS
UNITS_MS = {"ms": 1, "": 1000, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def fail(message, code=3):
    print(json.dumps({"error": {"code": "CONFIGURATION_ERROR", "message": message}}), file=sys.stderr)
    sys.exit(code)


def parse_duration_ns(text):
    """The CLI's duration syntax: a whole number and ms, s, m, h or d."""
    text = text.strip()
    digits = len(text) - len(text.lstrip("0123456789"))
    number, unit = text[:digits], text[digits:].strip()
    if not number or unit not in UNITS_MS:
        fail(f"`{text}` is not a duration; use e.g. 30s, 500ms, 90m, 24h")
    return int(number) * UNITS_MS[unit] * 1_000_000


def parse_time_ns(text):
    """An RFC 3339 time as nanoseconds since the epoch (fraction kept)."""
    if text is None:
        return None
    base, _, rest = text.replace("Z", "+00:00").partition(".")
    fraction = ""
    if rest:
        fraction = rest[: len(rest) - len(rest.lstrip("0123456789"))]
        base += rest[len(fraction):]
    seconds = int(datetime.fromisoformat(base).timestamp())
    return seconds * NS + int((fraction + "000000000")[:9])


def rfc3339(ns):
    """Whole seconds, truncated as chrono's `SecondsFormat::Secs` does."""
    if ns is None:
        return None
    return datetime.fromtimestamp(ns // NS, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def store_path(args):
    if "--store" in args:
        return args[args.index("--store") + 1]
    if os.environ.get("WITHINGS_TOKEN_STORE"):
        return os.environ["WITHINGS_TOKEN_STORE"]
    state = os.environ.get("XDG_STATE_HOME") or (
        os.path.join(os.environ["HOME"], ".local", "state") if os.environ.get("HOME") else None
    )
    if not state:
        fail("cannot place the token store: neither XDG_STATE_HOME nor HOME is set")
    return os.path.join(state, "withings-token", "tokens.json")


def hours_one_decimal(seconds):
    tenths = abs(seconds) / 360.0
    tenths = float(int(tenths + 0.5)) * (1 if seconds >= 0 else -1)
    return 0.0 if tenths == 0 else tenths / 10


def alert_of(events, set_generation):
    health = events.get("health", {"state": "healthy"})
    state = {"failing": "refresh_failing", "needs_reauthorization": "needs_reauthorization"}.get(health.get("state"))
    if state is None or health.get("generation", 0) < set_generation:
        return {"state": "healthy", "since": None, "code": None, "attempts": None}
    return {"state": state, "since": health["since"], "code": health["code"],
            "attempts": health.get("attempts") if state == "refresh_failing" else None}


def report(store, path, now_ns, explicit_buffer_ns, events):
    tokens = store.get("tokens")
    previous = store.get("previous")
    out = {
        "version": 1,
        "token_configured": tokens is not None,
        "source": "store" if tokens is not None else "none",
        "expires_at": None,
        "expires_in_hours": None,
        "should_refresh": False,
        "next_refresh_recommended": None,
        "last_refreshed": None,
        "refresh_buffer_minutes": None,
        "userid": None,
        "scope": None,
        "generation": store["generation"],
        "store_generation": store["generation"],
        "set_generation": store.get("tokens_generation", store["generation"]) if tokens is not None else 0,
        "previous_rotated_at": rfc3339(parse_time_ns(previous["rotated_at"])) if previous else None,
        "store": path,
        "copies": [],
    }
    alert = alert_of(events, out["set_generation"])
    needs = alert["state"] == "needs_reauthorization"
    out.update(
        needs_reauthorization=needs,
        needs_reauthorization_since=alert["since"] if needs else None,
        alert=alert,
        events_waiting=len(events.get("outbox", [])),
        events_dropped=events.get("dropped", 0),
    )
    if tokens is None:
        return out
    expires = parse_time_ns(tokens.get("expires_at"))
    last = parse_time_ns(tokens.get("last_refreshed"))
    if explicit_buffer_ns is not None:
        buffer = explicit_buffer_ns
    else:
        lifetime = expires - last if expires is not None and last is not None else 0
        buffer = min((lifetime if lifetime > 0 else ASSUMED_LIFETIME_NS) // 3, MAX_DEFAULT_BUFFER_NS)
    refresh_at = expires - buffer if expires is not None else None
    out.update(
        expires_at=rfc3339(expires),
        expires_in_hours=hours_one_decimal(int((expires - now_ns) / NS)) if expires is not None else None,
        should_refresh=refresh_at is None or now_ns >= refresh_at,
        next_refresh_recommended=rfc3339(refresh_at),
        last_refreshed=rfc3339(last),
        refresh_buffer_minutes=buffer // (60 * NS),
        userid=tokens.get("userid"),
        scope=tokens.get("scope"),
    )
    if expires is None:
        out["refresh_reason"] = "the expiry time is unknown"
    elif now_ns >= expires:
        out["refresh_reason"] = "the access token has expired"
    elif out["should_refresh"]:
        out["refresh_reason"] = "the access token expires within the refresh buffer"
    return out


def main(args):
    path = store_path(args)
    if path.startswith(("redis://", "rediss://")):
        fail("status.py reads file stores only")
    path = os.path.realpath(path)
    buffer_text = args[args.index("--buffer") + 1] if "--buffer" in args else os.environ.get("WITHINGS_REFRESH_BUFFER")
    buffer_ns = parse_duration_ns(buffer_text) if buffer_text else None
    try:
        with open(path, "rb") as f:
            store = json.load(f)
    except FileNotFoundError:
        store = {"version": 1, "generation": 0}
    except ValueError as e:
        fail(f"the token store {path} is not a withings-token store ({e.__class__.__name__})")
    if store.get("version", 0) > 1:
        fail(f"the token store {path} was written by a newer withings-token (version {store['version']})")
    stem = os.path.splitext(os.path.basename(path))[0]
    try:
        with open(os.path.join(os.path.dirname(path), f"{stem}.events.json"), "rb") as f:
            events = json.load(f)
    except (FileNotFoundError, ValueError):
        events = {}
    now_ns = int(datetime.now(timezone.utc).timestamp()) * NS
    print(json.dumps(report(store, path, now_ns, buffer_ns, events), indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])
