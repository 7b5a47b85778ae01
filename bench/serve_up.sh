# Sourced by the `serve` benchmarks (bench/serve.sh, bench/flood.sh): the
# release binary (or BIN), the built-in sandbox, a fresh file store, and
# `serve` on it (SERVE_ARGS adds options), all on loopback. Sets bin, work,
# sandbox_url, admin, reader, serve_pid and addr; on exit, stops what it
# started and any pid the caller appends to `extra_pids`.
extra_pids=()
if [ -z "${BIN:-}" ]; then cargo build --release --quiet; fi
bin="${BIN:-$PWD/target/release/withings-token}"
work="$(mktemp -d)"
cleanup() {
  kill "${extra_pids[@]}" "${serve_pid:-}" "${sandbox_pid:-}" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

"$bin" sandbox --listen 127.0.0.1:0 >"$work/sandbox.env" 2>/dev/null &
sandbox_pid=$!
for _ in $(seq 100); do grep -q RAILWAY_API_URL "$work/sandbox.env" 2>/dev/null && break; sleep 0.05; done
sandbox_url="$(sed -n 's/^WITHINGS_API_URL=//p' "$work/sandbox.env" | tr -d '"')"

admin=bench-admin-token-0123456789abcdef
reader=bench-reader-token-fedcba9876543210
now=$(date -u +%s)
python3 - "$work/tokens.json" "$now" <<'PY'
import json, sys, datetime
path, now = sys.argv[1], int(sys.argv[2])
t = lambda s: datetime.datetime.fromtimestamp(now + s, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
json.dump({"version": 1, "generation": 1, "tokens": {
    "access_token": "bench-access", "refresh_token": "bench-refresh",
    "expires_at": t(3 * 3600), "last_refreshed": t(0),
    "userid": "363", "scope": "user.info,user.metrics"}}, open(path, "w"), indent=2)
PY
chmod 600 "$work/tokens.json"

env -i HOME="$work" PATH=/usr/bin:/bin ADMIN_API_TOKEN="$admin" WITHINGS_TOKEN_READER_TOKEN="$reader" \
  WITHINGS_CLIENT_ID=bench WITHINGS_CLIENT_SECRET=bench-secret WITHINGS_API_URL="$sandbox_url" \
  "$bin" --no-env-file --store "$work/tokens.json" serve --listen 127.0.0.1:0 ${SERVE_ARGS:-} 2>"$work/serve.log" &
serve_pid=$!
for _ in $(seq 100); do grep -q "listening on" "$work/serve.log" 2>/dev/null && break; sleep 0.05; done
addr="$(sed -n 's/.*listening on http:\/\/\([0-9.:]*\).*/\1/p' "$work/serve.log" | head -1)"
