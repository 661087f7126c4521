#!/usr/bin/env bash
# CPU time per `berth run --rm --network none busybox true`: berthd, the CLI, the shims and the
# runtime's children all run in one cpuacct cgroup (v1), whose usage is read before and after N
# runs. The container's own process moves to its cgroup and is not counted (it runs `true`).
# Also the whole machine's busy time (/proc/stat, kernel workers included: network namespace
# and cgroup clean-up run there), read after a short tail that lets the last clean-up finish.
# Usage (root, cgroup v1 cpuacct): bench/engine-cpu.sh
# env: N (30 runs), TMPFS_ROOTS=1 (data and exec roots on tmpfs), BERTH_BIN (default: release build)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-30}
acct=/sys/fs/cgroup/cpuacct
[ -d "$acct" ] || { echo "needs cgroup v1's cpuacct at $acct" >&2; exit 1; }
if [ -n "${BERTH_BIN:-}" ]; then bin=$BERTH_BIN; else
  bin=$(scripts/build-release -q)
fi
work=$(mktemp -d /tmp/berth-cpu.XXXXXX)
cg=$acct/berth-bench-cpu-$$
mkdir "$cg"
cleanup() {
  [ -f "$work/berthd.pid" ] && kill "$(cat "$work/berthd.pid")" 2>/dev/null && sleep 1
  grep " $work" /proc/mounts | awk '{print $2}' | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$work"
  # Relative cgroupsPath: the containers' cgroups were made under ours.
  find "$cg" -depth -type d -exec rmdir {} \; 2>/dev/null || true
}
trap cleanup EXIT
mkdir -p "$work/data" "$work/run"
if [ -n "${TMPFS_ROOTS:-}" ]; then
  mount -t tmpfs tmpfs "$work/data"
  mount -t tmpfs tmpfs "$work/run"
fi
scripts/make-busybox-image "$work/busybox.tar" busybox:latest >/dev/null
echo $$ > "$cg/cgroup.procs"
"$bin/berthd" --data-root "$work/data" --exec-root "$work/run" -H "unix://$work/berth.sock" \
  >"$work/berthd.log" 2>&1 &
echo $! > "$work/berthd.pid"
for _ in $(seq 400); do [ -S "$work/berth.sock" ] && break; sleep 0.05; done
export BERTH_HOST="unix://$work/berth.sock"
"$bin/berth" load -i "$work/busybox.tar" >/dev/null
for _ in 1 2 3; do "$bin/berth" run --rm --network none busybox true; done
sleep 1
busy() { awk '/^cpu /{print $2+$3+$4+$7+$8}' /proc/stat; } # user nice system irq softirq
u0=$(cat "$cg/cpuacct.usage"); b0=$(busy); t0=$(date +%s%N)
for _ in $(seq "$N"); do "$bin/berth" run --rm --network none busybox true; done
t1=$(date +%s%N); u1=$(cat "$cg/cpuacct.usage")
sleep 0.3
b1=$(busy); hz=$(getconf CLK_TCK)
fs=$(stat -f -c %T "$work/data")
echo "$N runs: CPU $(( (u1 - u0) / N / 1000 )) us per run, wall $(( (t1 - t0) / N / 1000 )) us per run" \
  "(roots on $fs; load $(cut -d' ' -f1-3 /proc/loadavg))"
echo "whole machine: $(( (b1 - b0) * 1000000 / hz / N )) us busy per run (incl. a 0.3 s tail)"
echo $$ > "$acct/cgroup.procs"
