#!/usr/bin/env bash
# Measures what cron jobs and prompts pay: `status` (offline) and a whole
# `refresh` (one token round trip to the loopback sandbox + one durable
# write), with the release binary. Uses hyperfine when installed, else a
# plain loop. Usage: bench/run.sh [runs]
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-200}"

cargo build --release --quiet
bin="$PWD/target/release/withings-token"
work="$(mktemp -d)"
trap 'kill "${sandbox_pid:-}" 2>/dev/null || true; rm -rf "$work"' EXIT

"$bin" sandbox --listen 127.0.0.1:0 >"$work/sandbox.env" 2>/dev/null &
sandbox_pid=$!
for _ in $(seq 100); do grep -q RAILWAY_API_URL "$work/sandbox.env" 2>/dev/null && break; sleep 0.05; done

run() { env -i HOME="$work" PATH=/usr/bin:/bin "$bin" --env-file "$work/sandbox.env" --store "$work/tokens.json" "$@"; }

# Authorise once through the sandbox's consent page.
url="$(run auth-url --json | sed -n 's/.*"authorization_url": "\(.*\)".*/\1/p')"
redirect="$(curl -s -o /dev/null -w '%{redirect_url}' "$url")"
run exchange "$redirect" --no-railway --quiet >/dev/null

measure() { # name, command...
  local name="$1"; shift
  if command -v hyperfine >/dev/null; then
    hyperfine -N --warmup 5 --runs "$runs" --export-json "$work/$name.json" "$*" >/dev/null
    python3 -c "import json,sys; r=json.load(open(sys.argv[1]))['results'][0]; print(f\"$name: mean {r['mean']*1000:.2f} ms, median {r['median']*1000:.2f} ms, min {r['min']*1000:.2f} ms over {len(r['times'])} runs\")" "$work/$name.json"
  else
    python3 - "$name" "$runs" "$@" <<'PY'
import statistics, subprocess, sys, time
name, runs, cmd = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
times = []
for _ in range(runs):
    t = time.perf_counter(); subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL); times.append((time.perf_counter() - t) * 1000)
times.sort()
print(f"{name}: mean {statistics.mean(times):.2f} ms, median {statistics.median(times):.2f} ms, p95 {times[int(len(times)*0.95)-1]:.2f} ms, min {times[0]:.2f} ms over {runs} runs")
PY
  fi
}

common=(env -i HOME="$work" PATH=/usr/bin:/bin "$bin" --env-file "$work/sandbox.env" --store "$work/tokens.json")
measure status "${common[@]}" status --json
# Each refresh rotates the token; the sandbox refuses the same refresh request
# within 10 s, which never happens here because every run sends a new token.
measure refresh "${common[@]}" refresh --no-railway --retry-delay 0s --json
measure refresh-if-needed "${common[@]}" refresh --if-needed --no-railway --json
echo "store generation after the runs: $(python3 -c "import json; print(json.load(open('$work/tokens.json'))['generation'])")"
