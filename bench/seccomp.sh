#!/usr/bin/env bash
# What Docker's default seccomp profile costs a container start: `run --rm --network none busybox
# true` through berthd with the default profile (compiled BPF from the runtime's cache), with the
# cache emptied before every run (libseccomp compiles the profile each time), and unconfined.
# Usage (root): bench/seccomp.sh    env: RUNS (30), WARMUP (3), PROFILE (release | debug)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-30}; WARMUP=${WARMUP:-3}; PROFILE=${PROFILE:-release}
command -v hyperfine >/dev/null || { echo "apt-get install hyperfine" >&2; exit 1; }
if [ "$PROFILE" = release ]; then
  bin=$(scripts/build-release -q)
else
  cargo build --locked -p berth-daemon -p berth-shim -p berth-cli >/dev/null
  bin=$PWD/target/debug
fi
work=$(mktemp -d /tmp/berth-bench.XXXXXX)
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work" 2>/dev/null || true
}
trap cleanup EXIT

scripts/make-busybox-image "$work/busybox-oci.tar" busybox:latest >/dev/null
"$bin/berthd" --data-root "$work/berth" --exec-root "$work/run" -H "unix://$work/berth.sock" >"$work/berthd.log" 2>&1 &
pid=$!
for _ in $(seq 400); do [ -S "$work/berth.sock" ] && break; sleep 0.05; done
export BERTH_HOST="unix://$work/berth.sock"
"$bin/berth" load -i "$work/busybox-oci.tar" >/dev/null

run="$bin/berth run --rm --network none"
# (The cold case empties the cache in the same command: rm costs well under a millisecond.)
hyperfine -w "$WARMUP" -r "$RUNS" \
  -n "default profile (cached BPF)" "$run busybox true" \
  -n "default profile (compiled every run)" "rm -rf $work/run/runtime/.cache/seccomp; $run busybox true" \
  -n "unconfined" "$run --security-opt seccomp=unconfined busybox true"
