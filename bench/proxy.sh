#!/usr/bin/env bash
# Measures `serve`'s Withings proxy (issue 23) against what it stands in for:
#  1. `POST /measure action=getmeas` straight to the sandbox with the
#     account's access token vs `POST /v1/withings/measure` through `serve`
#     with the reader token, the same body (bench/post.lua), `wrk -t2 -c64
#     --latency`, rounds interleaved: req/s and p99 of both, the proxy's p99
#     overhead (goal ≤ 0.5 ms) and its share of the direct rate (goal ≥ 0.8×);
#     the sandbox's count of refused data calls must not move; then both
#     at 1 connection (p50, p99: the overhead with nothing queued; no goal);
#  2. a 20 MiB answer (bench/bigbody.py: an upstream serving it from memory)
#     streamed through a second `serve` to CONSUMERS (50) clients at once, each
#     reading at RATE bytes/s: `serve`'s VmRSS before and at its peak (sampled
#     every 10 ms, and VmHWM), goal: growth ≤ 2× the answer (40 MiB); every
#     consumer must get exactly 20 MiB, all in flight at once.
# Needs wrk, curl and python3. The load generator shares the machine: repeat
# runs and read the figures as noisy. PIN=1 (needs taskset and 2 cores) gives
# `serve` core 0 and the sandbox and wrk core 1 for rows 1 and 1-connection,
# both ways: the upstream and the consumers off the proxy's core, as with
# Withings across the internet, rather than three processes on two cores. Usage: bench/proxy.sh [seconds] [rounds]
# BIN=path measures another build; SERVE_ARGS adds serve options (both
# servers); CONSUMERS, RATE (default 1 MiB/s: each read lasts 20 s) and
# SIZE (bytes, default 20 MiB) shape row 2; KEEP_JSON=path keeps its raw
# figures (bench/bigbody.py's JSON). Exits 1 when a goal is missed, 2 when a
# step breaks.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-10}"
rounds="${2:-3}"
consumers="${CONSUMERS:-50}"
rate="${RATE:-1048576}"
size="${SIZE:-20971520}"

# Pinned from their start, so that each sizes its runtime to its one core.
pin=()
if [ "${PIN:-0}" = 1 ]; then
  SERVE_WRAP="taskset -c 0" SANDBOX_WRAP="taskset -c 1"
  pin=(taskset -c 1)
  echo "pinned: serve on core 0; the sandbox and wrk on core 1"
fi
# Every proxied call takes a unit of the app's upstream budget (120 a
# minute by default): far above what wrk sends, so that it never waits.
SERVE_ARGS="--upstream-budget 10000000 ${SERVE_ARGS:-}"
# The binary, the sandbox, a store the sandbox issued, `serve` (see the file).
AUTHORISE=1 source bench/serve_up.sh
missed=0

env -i HOME="$work" PATH=/usr/bin:/bin "$bin" --no-env-file --store "$work/tokens.json" access-token >"$work/access"
direct=(-H "Authorization: Bearer $(cat "$work/access")")
proxied=(-H "Authorization: Bearer $reader")
refused() { curl -s "$sandbox_url/_sandbox/stats" | python3 -c 'import json, sys; print(json.load(sys.stdin)["data_refused"])'; }
answer() { curl -s -X POST --data-binary 'action=getmeas&meastype=1&category=1' "$@"; }

# Both ways give the same answer, Withings status 0, before any load.
sleep 1
answer "${direct[@]}" "$sandbox_url/measure" >"$work/direct.json"
answer "${proxied[@]}" "http://$addr/v1/withings/measure" >"$work/proxied.json"
status_of() { python3 -c 'import json, sys; print(json.load(open(sys.argv[1])).get("status"))' "$1" 2>/dev/null || true; }
if [ "$(status_of "$work/direct.json")" != 0 ] || ! cmp -s "$work/direct.json" "$work/proxied.json"; then
  echo "proxy: the direct and proxied answers differ or are not status 0:" >&2
  head -c 300 "$work/direct.json" "$work/proxied.json" >&2
  exit 2
fi

wrk_round() { # name, url, header args...: prints "rps p99_ms"
  local name="$1" url="$2"; shift 2
  "${pin[@]}" wrk -t2 -c64 -d"${secs}s" --latency --timeout 5s -s bench/post.lua "$@" "$url" >"$work/wrk.$name"
  if grep -q 'Non-2xx' "$work/wrk.$name"; then
    echo "proxy: $name: $(grep Non-2xx "$work/wrk.$name")" >&2
    exit 2
  fi
  awk '/Requests\/sec/ {rps = $2}
       $1 == "99%" {v = $2; u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v);
                    p99 = (u == "us") ? v / 1000 : (u == "s") ? v * 1000 : v}
       END {print rps, p99}' "$work/wrk.$name"
}

refused_before="$(refused)"
"${pin[@]}" wrk -t2 -c64 -d1s -s bench/post.lua "${proxied[@]}" "http://$addr/v1/withings/measure" >/dev/null # warm-up
: >"$work/rounds"
for round in $(seq "$rounds"); do
  read -r d_rps d_p99 < <(wrk_round direct "$sandbox_url/measure" "${direct[@]}")
  read -r p_rps p_p99 < <(wrk_round proxied "http://$addr/v1/withings/measure" "${proxied[@]}")
  echo "round $round: direct ${d_rps} req/s, p99 ${d_p99} ms; proxied ${p_rps} req/s, p99 ${p_p99} ms"
  echo "$d_rps $d_p99 $p_rps $p_p99" >>"$work/rounds"
done
refused_after="$(refused)"
if [ "$refused_after" != "$refused_before" ]; then
  echo "proxy: the sandbox refused $((refused_after - refused_before)) data calls (a dead token measures nothing)" >&2
  exit 2
fi
# Medians over the rounds, then the verdicts.
read -r verdict row1 < <(sort -n "$work/rounds" | python3 -c '
import statistics, sys
rows = [list(map(float, line.split())) for line in sys.stdin]
d_rps, d_p99, p_rps, p_p99 = (statistics.median(r[i] for r in rows) for i in range(4))
overhead, ratio = p_p99 - d_p99, p_rps / d_rps
ok = overhead <= 0.5 and ratio >= 0.8
print("PASS" if ok else "FAIL", f"median of {len(rows)}: direct {d_rps:,.0f} req/s, p99 {d_p99:.2f} ms; "
      f"proxied {p_rps:,.0f} req/s, p99 {p_p99:.2f} ms; overhead p99 {overhead:+.2f} ms (goal <= 0.5), "
      f"rate {ratio:.2f}x direct (goal >= 0.8)")')
echo "row 1 $verdict: $row1"
[ "$verdict" = PASS ] || missed=1
# What one call costs with nothing queued (1 connection): not a goal, the
# overhead itself rather than what the shared cores make of it at 64.
one_conn() { # name, url, header args...: "p50 p99" in ms
  local name="$1" url="$2"; shift 2
  "${pin[@]}" wrk -t1 -c1 -d"${secs}s" --latency -s bench/post.lua "$@" "$url" >"$work/wrk1.$name"
  awk '$1 == "50%" || $1 == "99%" {v = $2; u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v);
       printf "%.3f ", (u == "us") ? v / 1000 : (u == "s") ? v * 1000 : v} END {print ""}' "$work/wrk1.$name"
}
read -r d50 d99 < <(one_conn direct "$sandbox_url/measure" "${direct[@]}")
read -r p50 p99 < <(one_conn proxied "http://$addr/v1/withings/measure" "${proxied[@]}")
echo "1 connection: direct p50 ${d50} ms, p99 ${d99} ms; proxied p50 ${p50} ms, p99 ${p99} ms" \
  "(overhead p50 $(awk -v a="$p50" -v b="$d50" 'BEGIN {printf "%+.3f", a - b}') ms," \
  "p99 $(awk -v a="$p99" -v b="$d99" 'BEGIN {printf "%+.3f", a - b}') ms)"

# Row 2: a second `serve` (default --proxy-max-bytes) on a copy of the
# store, its API URL the big answer's upstream.
python3 bench/bigbody.py upstream "$size" >"$work/upstream.out" &
extra_pids+=($!)
for _ in $(seq 100); do grep -q '^port ' "$work/upstream.out" 2>/dev/null && break; sleep 0.05; done
big_url="http://127.0.0.1:$(awk '/^port / {print $2}' "$work/upstream.out")"
install -m 600 "$work/tokens.json" "$work/big.json"
env -i HOME="$work" PATH=/usr/bin:/bin ADMIN_API_TOKEN="$admin" WITHINGS_TOKEN_READER_TOKEN="$reader" \
  WITHINGS_CLIENT_ID="$client_id" WITHINGS_CLIENT_SECRET="$client_secret" WITHINGS_API_URL="$big_url" \
  "$bin" --no-env-file --store "$work/big.json" serve --listen 127.0.0.1:0 $SERVE_ARGS 2>"$work/big.log" &
big_pid=$!
extra_pids+=("$big_pid")
for _ in $(seq 100); do grep -q "listening on" "$work/big.log" 2>/dev/null && break; sleep 0.05; done
big_addr="$(sed -n 's/.*listening on http:\/\/\([0-9.:]*\).*/\1/p' "$work/big.log" | head -1)"
sleep 1
set +e
python3 bench/bigbody.py consume "http://$big_addr/v1/withings/measure" "$big_pid" "$consumers" "$size" "$rate" \
  "Authorization: Bearer $reader" >"$work/big.json.out"
consumed=$?
[ -z "${KEEP_JSON:-}" ] || cp "$work/big.json.out" "$KEEP_JSON"
set -e
read -r verdict row2 < <(python3 - "$work/big.json.out" "$consumers" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
MiB = 1024 * 1024
if r["problems"]:
    print("BROKEN", "; ".join(r["problems"]))
    sys.exit()
growth = max(r["rss_peak"], r["hwm_after"]) - r["rss_before"]
ok = growth <= 2 * r["size"]
print("PASS" if ok else "FAIL", f"{sys.argv[2]} consumers x {r['size'] / MiB:.0f} MiB, all in flight at once, "
      f"each got exactly {r['size']} B, {r['seconds']:.1f} s: VmRSS {r['rss_before'] / MiB:.1f} MiB before, "
      f"peak {r['rss_peak'] / MiB:.1f} MiB (VmHWM {r['hwm_after'] / MiB:.1f}); growth {growth / MiB:.1f} MiB "
      f"(goal <= {2 * r['size'] / MiB:.0f} MiB)")
PY
)
echo "row 2 $verdict: $row2"
if [ "$verdict" = BROKEN ] || [ "$consumed" -ne 0 ]; then exit 2; fi
[ "$verdict" = PASS ] || missed=1
exit "$missed"
