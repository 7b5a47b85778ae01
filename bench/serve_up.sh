# Sourced by the `serve` benchmarks (bench/serve.sh, bench/flood.sh): the
# release binary (or BIN), the built-in sandbox, a fresh file store, and
# `serve` on it (SERVE_ARGS adds options), all on loopback. Sets bin, work,
# sandbox_url, admin, reader, serve_pid and addr (SANDBOX_WRAP, SERVE_WRAP:
# a command each is started under, e.g. `taskset -c 1`); on exit, stops what it
# started and any pid the caller appends to `extra_pids`. SANDBOX_ARGS adds
# sandbox options (`--expires-in 4s`). AUTHORISE=1: the
# store is a set the sandbox issued (consent and code exchange, with the
# sandbox's app), so that its access token passes the sandbox's data calls.
extra_pids=()
if [ -z "${BIN:-}" ]; then cargo build --release --quiet; fi
bin="${BIN:-$PWD/target/release/withings-token}"
work="$(mktemp -d)"
cleanup() {
  kill "${extra_pids[@]}" "${serve_pid:-}" "${sandbox_pid:-}" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

${SANDBOX_WRAP:-} "$bin" sandbox --listen 127.0.0.1:0 ${SANDBOX_ARGS:-} >"$work/sandbox.env" 2>/dev/null &
sandbox_pid=$!
for _ in $(seq 100); do grep -q RAILWAY_API_URL "$work/sandbox.env" 2>/dev/null && break; sleep 0.05; done
sandbox_url="$(sed -n 's/^WITHINGS_API_URL=//p' "$work/sandbox.env" | tr -d '"')"

admin=bench-admin-token-0123456789abcdef
reader=bench-reader-token-fedcba9876543210
client_id=bench client_secret=bench-secret
if [ "${AUTHORISE:-0}" = 1 ]; then
  sandbox_env=()
  while IFS='=' read -r key value; do
    case "$key" in WITHINGS_*) sandbox_env+=("$key=${value//\"/}") ;; esac
  done <"$work/sandbox.env"
  wt_sandbox() { env -i HOME="$work" PATH=/usr/bin:/bin "${sandbox_env[@]}" "$bin" --no-env-file --store "$work/tokens.json" "$@"; }
  consent_url="$(wt_sandbox auth-url --json | python3 -c 'import json, sys; print(json.load(sys.stdin)["authorization_url"])')"
  wt_sandbox exchange "$(curl -s -o /dev/null -w '%{redirect_url}' "$consent_url")" --no-railway --quiet
  client_id="$(sed -n 's/^WITHINGS_CLIENT_ID=//p' "$work/sandbox.env" | tr -d '"')"
  client_secret="$(sed -n 's/^WITHINGS_CLIENT_SECRET=//p' "$work/sandbox.env" | tr -d '"')"
else
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
fi

${SERVE_WRAP:-} env -i HOME="$work" PATH=/usr/bin:/bin ADMIN_API_TOKEN="$admin" WITHINGS_TOKEN_READER_TOKEN="$reader" \
  WITHINGS_CLIENT_ID="$client_id" WITHINGS_CLIENT_SECRET="$client_secret" WITHINGS_API_URL="$sandbox_url" \
  "$bin" --no-env-file --store "$work/tokens.json" serve --listen 127.0.0.1:0 ${SERVE_ARGS:-} 2>"$work/serve.log" &
serve_pid=$!
for _ in $(seq 100); do grep -q "listening on" "$work/serve.log" 2>/dev/null && break; sleep 0.05; done
addr="$(sed -n 's/.*listening on http:\/\/\([0-9.:]*\).*/\1/p' "$work/serve.log" | head -1)"
