#!/usr/bin/env bash
# Soaks `serve` (issue 25): against the sandbox issuing 4-second access
# tokens (`sandbox --expires-in`, EXPIRES_IN), with the background loop every
# second, two consumers polling the broker (`GET /v1/access-token`), one the
# proxy (`POST /v1/withings/measure` action=getmeas, PROXY_RATE a second, 20)
# and one driver of admin refreshes (`POST /admin/token/refresh`, RATE a
# second, 40), until the sandbox has issued ROTATIONS sets (argument, default
# 10000). bench/soak.py samples serve's VmRSS (RssAnon, RssFile), open
# descriptors (/proc/PID/fd), threads and the broker's latency as it goes,
# prints a table, and fails (exit 1) when, after the warm-up (the first
# tenth, and at least 70 s: the upstream budget's log of the last minute's
# sends must be full), VmRSS grew more than 1 MiB, descriptors grew at all,
# or threads by more than two (the runtime's blocking pool). Never a test:
# it runs for minutes and its latencies are noisy.
# Usage: bench/soak.sh [ROTATIONS]; BIN=path soaks another build;
# SERVE_ARGS adds serve options.
set -euo pipefail
cd "$(dirname "$0")/.."
rotations="${1:-10000}"

# Every rotation and every proxied call takes a unit of the app's upstream
# budget (120 a minute by default), and the budget logs each send for a
# minute (memory bounded by the budget, not by the rotations): 6000 a
# minute holds the paced load (about 3,700) without a wait.
SANDBOX_ARGS="--expires-in ${EXPIRES_IN:-4s}"
SERVE_ARGS="--check-interval 1s --upstream-budget 6000 ${SERVE_ARGS:-}"
AUTHORISE=1
# The binary, the sandbox, an authorised store and `serve` (see the file).
source bench/serve_up.sh

python3 bench/soak.py --pid "$serve_pid" --addr "$addr" --sandbox "$sandbox_url" \
  --admin "$admin" --reader "$reader" --rotations "$rotations" --rate "${RATE:-40}" \
  --proxy-rate "${PROXY_RATE:-20}"
