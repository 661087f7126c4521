#!/usr/bin/env bash
# The berth CLI vs the stock docker CLI, both against the SAME berthd (release build), so the
# difference is the client: `cp` of a large file both ways, and `ps --format` over N containers.
# Usage (root): bench/cli.sh    env: RUNS (10), WARMUP (2), SIZE_MB (256), N (20)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-10}; WARMUP=${WARMUP:-2}; SIZE_MB=${SIZE_MB:-256}; N=${N:-20}
command -v hyperfine >/dev/null || { echo "apt-get install hyperfine" >&2; exit 1; }
command -v docker >/dev/null || { echo "apt-get install docker.io (the docker CLI)" >&2; exit 1; }
bin=$(scripts/build-release -q)
work=$(mktemp -d /tmp/berth-bench-cli.XXXXXX)
pids=()
cleanup() {
  BERTH_HOST="unix://$work/berth.sock" "$bin/berth" ps -aq 2>/dev/null |
    xargs -r "$bin/berth" -H "unix://$work/berth.sock" rm -f >/dev/null 2>&1 || true
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  grep " $work" /proc/mounts | awk '{print $2}' | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$work" 2>/dev/null || true
}
trap cleanup EXIT

scripts/make-busybox-image "$work/busybox-oci.tar" busybox:latest >/dev/null
wait_sock() { for _ in $(seq 400); do [ -S "$1" ] && return 0; sleep 0.05; done; echo "no socket $1" >&2; exit 1; }
"$bin/berthd" --data-root "$work/berth" --exec-root "$work/berth-run" -H "unix://$work/berth.sock" >"$work/berthd.log" 2>&1 &
pids+=($!)
wait_sock "$work/berth.sock"
export BERTH_HOST="unix://$work/berth.sock"
docker_cli="docker -H unix://$work/berth.sock"
"$bin/berth" load -q -i "$work/busybox-oci.tar" >/dev/null
"$bin/berth" run -d --network none --name target busybox sleep 1d >/dev/null
for i in $(seq 2 "$N"); do "$bin/berth" run -d --network none busybox sleep 1d >/dev/null; done
head -c "$((SIZE_MB * 1024 * 1024))" /dev/urandom >"$work/big.bin"
mkdir -p "$work/out"
# Each command once, visibly, so a failure is never timed; and the copies must be identical.
"$bin/berth" cp -q "$work/big.bin" target:/tmp/big.bin
"$bin/berth" cp -q target:/tmp/big.bin "$work/out/back.bin"
cmp "$work/big.bin" "$work/out/back.bin"
$docker_cli cp -q "$work/big.bin" target:/tmp/big.bin
$docker_cli cp -q target:/tmp/big.bin "$work/out/back.bin"
cmp "$work/big.bin" "$work/out/back.bin"

mkdir -p bench/results
stamp=$(date -u +%Y%m%dT%H%M%SZ)
out=bench/results/cli-$stamp
hyperfine -N -w "$WARMUP" -r "$RUNS" --export-markdown "$out-cp-in.md" \
  -n "berth cp in (${SIZE_MB} MB)" "$bin/berth cp -q $work/big.bin target:/tmp/big.bin" \
  -n "docker cp in (${SIZE_MB} MB)" "$docker_cli cp -q $work/big.bin target:/tmp/big.bin"
hyperfine -N -w "$WARMUP" -r "$RUNS" --export-markdown "$out-cp-out.md" \
  -n "berth cp out (${SIZE_MB} MB)" "$bin/berth cp -q target:/tmp/big.bin $work/out/back.bin" \
  -n "docker cp out (${SIZE_MB} MB)" "$docker_cli cp -q target:/tmp/big.bin $work/out/back.bin"
hyperfine -N -w "$WARMUP" -r "$((RUNS * 5))" --export-markdown "$out-ps.md" \
  -n "berth ps --format ($N containers)" "$bin/berth ps --format '{{.Names}} {{.Status}}'" \
  -n "docker ps --format ($N containers)" "$docker_cli ps --format '{{.Names}} {{.Status}}'"
echo "results: $out-*.md"
