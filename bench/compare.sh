#!/usr/bin/env bash
# withings-token side by side with what it is measured against, in
# one run, on this machine, against the built-in sandbox on loopback. Prints
# one markdown table (figure, this tool, the comparison, ratio, goal, met?):
#   - `status --json` vs the same in Python's stdlib (bench/status.py) and vs
#     a hello-world Rust binary built here with `rustc -O`;
#   - `refresh --no-railway` vs a bare `curl` POST of the same form, and
#     with a webhook sink (answering at once; answering in 2 s) vs without;
#   - `access-token` with a fresh token vs `status`;
#   - encryption at rest (bench/sealed.py): `status --json` on a file store
#     sealed to an age key vs a plain one, and `refresh` on it vs `curl`;
#   - the binary's size, and the peak RSS of one `refresh`;
#   - `serve` under `wrk -t2 -c64` (admin status, broker; the sandbox's
#     trivial route as the floor), its idle RSS and its idle wakeups (strace);
#   - `serve`'s Withings proxy (bench/proxy.py): a `getmeas` POST through it
#     vs straight to the sandbox (wrk, p99 and requests/s), and its RSS with
#     a 20 MiB answer streamed to 50 consumers at once (bench/bigbody.py);
#   - the Redis store: `refresh --if-needed` with nothing due vs the file
#     store, and many processes on many "hosts" on an expiring set.
# How each figure is taken is said at the top of bench/compare.py.
#
# Usage: bench/compare.sh [--smoke]
#   Full mode exits 1 when a goal is missed (a skipped row counts as missed).
#   --smoke: a few iterations only (5 runs, wrk 2 s, strace 5 s, 20
#   processes, 10 consumers of the 20 MiB answer at 10 MiB/s), to show
#   every step works: not a measurement, exits 1 only when a step breaks.
#   .ci/run runs it so; it is never a timed test.
# Env: WITHINGS_TOKEN_BIN  the binary (else `cargo build --release --quiet`)
# Installs what is missing with apt-get (hyperfine, wrk, redis-server, strace,
# curl, time); a tool that stays missing skips its rows. Needs python3. Talks
# to nothing beyond loopback; every process it starts is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

smoke=""
case "${1:-}" in
  "") ;;
  --smoke) smoke=--smoke ;;
  -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
  *) echo "usage: bench/compare.sh [--smoke]" >&2; exit 2 ;;
esac
[[ $# -le 1 ]] || { echo "usage: bench/compare.sh [--smoke]" >&2; exit 2; }
for tool in python3 timeout; do
  command -v "$tool" >/dev/null || { echo "bench/compare.sh needs $tool" >&2; exit 2; }
done

if [[ -n "${WITHINGS_TOKEN_BIN:-}" ]]; then
  bin="$WITHINGS_TOKEN_BIN"
else
  cargo build --release --quiet
  bin="$PWD/target/release/withings-token"
fi
[[ -x "$bin" && -f "$bin" ]] || { echo "not an executable: $bin" >&2; exit 2; }
bin="$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")"

# Missing tools, as .ci/run installs redis-server: one apt-get for all, then
# one at a time if that failed (a package this release lacks must not stop
# the others). Failure is tolerated: the driver skips the rows.
missing=()
for pair in hyperfine:hyperfine wrk:wrk redis-server:redis-server strace:strace curl:curl /usr/bin/time:time; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
done
if ((${#missing[@]})) && command -v apt-get >/dev/null; then
  SUDO=""
  if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; fi
  apt() { DEBIAN_FRONTEND=noninteractive timeout 600 $SUDO apt-get "$@" >/dev/null 2>&1; }
  echo "compare: installing ${missing[*]}" >&2
  if ! apt install -y --no-install-recommends "${missing[@]}"; then
    apt update || true
    for package in "${missing[@]}"; do
      apt install -y --no-install-recommends "$package" || echo "compare: cannot install $package" >&2
    done
  fi
  if [[ " ${missing[*]} " == *" redis-server "* ]]; then
    # The package starts a system service; the bench never uses it.
    $SUDO service redis-server stop >/dev/null 2>&1 || true
  fi
fi

commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
git diff --quiet HEAD -- 2>/dev/null || commit="$commit+dirty"
[[ -n "${WITHINGS_TOKEN_BIN:-}" ]] && commit="$commit (worktree; binary from WITHINGS_TOKEN_BIN)"

work="$(mktemp -d)"
driver_pid=""
cleanup() {
  if [[ -n "$driver_pid" ]]; then
    # The driver leads its own process group: it and all it started.
    kill -TERM -- "-$driver_pid" 2>/dev/null || kill -TERM "$driver_pid" 2>/dev/null || true
    wait "$driver_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

budget=$([[ -n "$smoke" ]] && echo 300 || echo 1200)
setsid=$(command -v setsid || true)
$setsid timeout --kill-after=10 "$budget" python3 bench/compare.py \
  --bin "$bin" --work "$work" --repo "$PWD" --commit "$commit" $smoke &
driver_pid=$!
set +e
wait "$driver_pid"
status=$?
set -e
driver_pid=""
((status != 124)) || echo "compare: stopped after ${budget} s" >&2
exit "$status"
