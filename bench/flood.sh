#!/usr/bin/env bash
# Floods `serve` with clients that hold its connections and prints what it cost
# (bench/flood.py does the flooding; loopback only, bounded in time):
#  1. never-reading clients: NOREAD_CONNS connections pipelining NOREAD_REQUESTS
#     (20000) `GET /metrics` each and reading nothing, for NOREAD_SECS; the server's
#     connections and VmRSS once a second, then VmRSS after they left;
#  2. a slowloris from 127.0.0.1: LORIS_CONNS half-sent request heads,
#     each reopened when closed, for LORIS_SECS; meanwhile how long
#     `/health` takes from 127.0.0.2 and from 127.0.0.1, and the broker;
#     VmRSS during and after.
# Usage: bench/flood.sh; BIN=path measures another build (e.g. the one
# before a change); SERVE_ARGS adds serve options. Timings are noisy: the
# flood shares the two cores.
set -euo pipefail
cd "$(dirname "$0")/.."
noread_conns="${NOREAD_CONNS:-10}"
noread_secs="${NOREAD_SECS:-25}"
noread_requests="${NOREAD_REQUESTS:-20000}"
loris_conns="${LORIS_CONNS:-6000}"
loris_secs="${LORIS_SECS:-40}"

ulimit -n "$(ulimit -Hn)"
# The binary, the sandbox, a fresh store and `serve` (see the file).
source bench/serve_up.sh
port="${addr##*:}"

rss() { awk '$1 == "VmRSS:" {print $2 / 1024 " MiB"}' "/proc/$serve_pid/status"; }
hwm() { awk '$1 == "VmHWM:" {print $2 / 1024 " MiB"}' "/proc/$serve_pid/status"; }
conns() { ss -Htn state established "( sport = :$port )" | wc -l; }
timed() { # name, curl args...: seconds to an answer, or the failure
  local name="$1"; shift
  local out
  out="$(curl -s -o /dev/null -m 30 -w '%{http_code} in %{time_total} s' "$@" 2>&1)" || true
  echo "  $name: ${out:-no answer}"
}

sleep 1
# Warm up the routes once, so that the idle figure includes their first use.
curl -s -o /dev/null "http://$addr/metrics"
curl -s -o /dev/null -H "Authorization: Bearer $reader" "http://$addr/v1/access-token"
echo "idle: VmRSS $(rss)"

echo "never-reading clients: $noread_conns connections x $noread_requests pipelined GET /metrics, held ${noread_secs} s"
python3 bench/flood.py noread "$port" "$noread_conns" "$noread_secs" "$noread_requests" >/dev/null &
flood_pid=$!
extra_pids+=("$flood_pid")
for second in $(seq "$noread_secs"); do
  sleep 1
  if [ $((second % 5)) -eq 0 ] || [ "$second" -le 2 ]; then
    echo "  ${second} s: $(conns) connections open, VmRSS $(rss)"
  fi
done
wait "$flood_pid" || true
sleep 3
echo "  after they left: $(conns) connections open, VmRSS $(rss), VmHWM $(hwm)"

echo "slowloris from 127.0.0.1: $loris_conns half-sent heads, reopened when closed, ${loris_secs} s"
python3 bench/flood.py loris "$port" "$loris_conns" "$loris_secs" 127.0.0.1 &
flood_pid=$!
extra_pids+=("$flood_pid")
sleep 8
echo "  8 s in: $(conns) connections open, VmRSS $(rss)"
timed "GET /health from 127.0.0.2" --interface 127.0.0.2 "http://$addr/health"
timed "GET /health from 127.0.0.1" "http://$addr/health"
timed "GET /v1/access-token from 127.0.0.2" --interface 127.0.0.2 -H "Authorization: Bearer $reader" "http://$addr/v1/access-token"
echo "  then: $(conns) connections open, VmRSS $(rss)"
wait "$flood_pid" || true
sleep 3
echo "  after it ended: $(conns) connections open, VmRSS $(rss), VmHWM $(hwm)"
