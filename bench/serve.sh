#!/usr/bin/env bash
# Measures `serve`: requests/s and p99 of `GET /admin/token/status`
# and `GET /v1/access-token` (a fresh token: no refresh) at 64 connections,
# the sandbox's trivial route as the floor, idle RSS and idle wakeups.
# Needs wrk and strace. The load generator shares the machine: repeat runs
# and read the figures as noisy. Usage: bench/serve.sh [seconds] [rounds]
# BIN=path measures another build (e.g. the one before a change);
# IDLE_SECS=0 skips the idle measurement; SERVE_ARGS adds serve options.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-10}"
rounds="${2:-3}"
idle_secs="${IDLE_SECS:-30}"

# The binary, the sandbox, a fresh store and `serve` (see the file).
source bench/serve_up.sh

load() { # name, url, header...
  local name="$1" url="$2"; shift 2
  for round in $(seq "$rounds"); do
    wrk -t2 -c64 -d"${secs}s" --latency "$@" "$url" >"$work/wrk.out"
    local rps p99
    rps="$(awk '/Requests\/sec/ {print $2}' "$work/wrk.out")"
    p99="$(awk '$1 == "99%" {print $2}' "$work/wrk.out")"
    local non2xx
    non2xx="$(awk '/Non-2xx/ {print $NF}' "$work/wrk.out")"
    echo "$name round $round: ${rps} req/s, p99 ${p99}${non2xx:+, NON-2xx $non2xx}"
  done
}

vm() { awk -v k="$1:" '$1 == k {print $2 " " $3}' "/proc/$serve_pid/status"; }

# The store must be older than 2 s for the server to keep its copy.
sleep 3
if [ "$idle_secs" -gt 0 ]; then
  echo "idle before load: VmRSS $(vm VmRSS), VmHWM $(vm VmHWM), threads $(vm Threads)"
  ctxt_before="$(cat /proc/$serve_pid/task/*/status | awk '/voluntary_ctxt_switches/ {n += $2} END {print n}')"
  timeout -s INT "$idle_secs" strace -f -c -p "$serve_pid" -o "$work/strace.idle" || true
  ctxt_after="$(cat /proc/$serve_pid/task/*/status | awk '/voluntary_ctxt_switches/ {n += $2} END {print n}')"
  echo "idle ${idle_secs}s: $((ctxt_after - ctxt_before)) context switches (all threads); syscalls (strace -f -c):"
  if [ -s "$work/strace.idle" ]; then cat "$work/strace.idle"; else echo "  none"; fi
fi

load floor "${sandbox_url}/_sandbox/stats"
load status "http://$addr/admin/token/status" -H "X-Admin-Token: $admin"
load access-token "http://$addr/v1/access-token" -H "Authorization: Bearer $reader"
sleep 2
echo "after load: VmRSS $(vm VmRSS), VmHWM $(vm VmHWM), threads $(vm Threads)"
