#!/usr/bin/env bash
# `run --rm IMAGE true` with --network none: berth (berthd, release build) vs docker (Debian's
# dockerd) vs podman, in ONE hyperfine run on the same busybox image; then berthd's idle RSS and
# the memory of N idle containers (shims + daemon growth, PSS).
# Usage (root): bench/engine.sh    env: RUNS (30), WARMUP (3), IDLE (50), SETTLE (3 s)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-30}; WARMUP=${WARMUP:-3}; IDLE=${IDLE:-50}
command -v hyperfine >/dev/null || { echo "apt-get install hyperfine" >&2; exit 1; }
bin=$(scripts/build-release -q)
work=$(mktemp -d /tmp/berth-bench.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  # dockerd and podman leave overlay mounts under their roots.
  grep " $work" /proc/mounts | awk '{print $2}' | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$work" 2>/dev/null || true
}
trap cleanup EXIT

scripts/make-busybox-image "$work/busybox-oci.tar" busybox:latest >/dev/null
skopeo copy -q "oci-archive:$work/busybox-oci.tar" "docker-archive:$work/busybox-docker.tar:busybox:latest"

wait_sock() { for _ in $(seq 400); do [ -S "$1" ] && return 0; sleep 0.05; done; echo "no socket $1" >&2; exit 1; }

# Exec roots (sockets, exit files, runtime state) on a tmpfs, as /run/berth and /run/docker are
# on a standard host (this VM's /run is on its disk; its ext4 has no journal, and inode churn
# there costs every engine several ms per container).
mkdir -p "$work/run"
mount -t tmpfs -o mode=0711 tmpfs "$work/run"

# berthd
"$bin/berthd" --data-root "$work/berth" --exec-root "$work/run/berth" -H "unix://$work/berth.sock" >"$work/berthd.log" 2>&1 &
pids+=($!); berthd_pid=$!
wait_sock "$work/berth.sock"
export BERTH_HOST="unix://$work/berth.sock"
"$bin/berth" load -i "$work/busybox-oci.tar" >/dev/null

# dockerd (Debian's docker.io), without touching the host's firewall or bridges
have_docker=0
if command -v dockerd >/dev/null; then
  dockerd --data-root "$work/docker" --exec-root "$work/run/docker" -H "unix://$work/docker.sock" \
    --pidfile "$work/docker.pid" --iptables=false --ip-forward=false --bridge=none \
    >"$work/dockerd.log" 2>&1 &
  pids+=($!)
  wait_sock "$work/docker.sock"
  DOCKER_HOST="unix://$work/docker.sock" docker load -i "$work/busybox-docker.tar" >/dev/null
  have_docker=1
fi
have_podman=0
if command -v podman >/dev/null; then
  podman --root "$work/podman" --runroot "$work/run/podman" load -i "$work/busybox-docker.tar" >/dev/null
  have_podman=1
fi

# podman asks for more (nofile, nproc) than this sandbox lets its runc set: ask for less (the
# limits do not change what is measured).
cmds=(-n berth "$bin/berth run --rm --network none busybox true")
[ $have_docker = 1 ] && cmds+=(-n docker "docker -H unix://$work/docker.sock run --rm --network none busybox true")
# podman's runc refuses its rlimits in some sandboxes (EPERM on RLIMIT_NPROC): then it is left out.
if [ $have_podman = 1 ] && ! podman --root "$work/podman" --runroot "$work/run/podman" run --rm --network none \
    --ulimit nofile=1024:1024 --ulimit nproc=4096:4096 busybox true >/dev/null 2>"$work/podman.err"; then
  echo "WARNING: podman cannot run containers here, left out: $(tail -1 "$work/podman.err")" >&2
  have_podman=0
fi
[ $have_podman = 1 ] && cmds+=(-n podman "podman --root $work/podman --runroot $work/run/podman run --rm --network none --ulimit nofile=1024:1024 --ulimit nproc=4096:4096 busybox true")
# Each command once, visibly, so a failure is never timed.
for ((i = 1; i < ${#cmds[@]}; i += 3)); do
  name=${cmds[i]}; cmd=${cmds[i+1]}
  $cmd || { echo "$name failed: $cmd" >&2; exit 1; }
done
# Let the daemons finish what the loads and those first runs left them (dockerd's and podman's
# cleanups, berthd's spares): berth is timed first and would meet it.
sleep "${SETTLE:-3}"
mkdir -p bench/results
stamp=$(date -u +%Y%m%dT%H%M%SZ)
hyperfine -N -w "$WARMUP" -r "$RUNS" --export-markdown "bench/results/engine-$stamp.md" \
  --export-json "bench/results/engine-$stamp.json" "${cmds[@]}"

rss() { awk '/^Rss:/{print $2}' "/proc/$1/smaps_rollup"; }
pss() { awk '/^Pss:/{print $2}' "/proc/$1/smaps_rollup"; }
echo
echo "berthd idle: RSS $(rss $berthd_pid) KiB, PSS $(pss $berthd_pid) KiB"
before=$(pss $berthd_pid)
for i in $(seq "$IDLE"); do "$bin/berth" run -d --network none busybox sleep 1d >/dev/null; done
sleep 1
# This daemon's shims only (other daemons may run on the machine): a shim started by berthd
# names its socket under $work, one that began as a spare names its owner. The spares waiting
# for the next containers (named berth-spare) are a cost per daemon, reported on their own; a
# spare's launcher (berth-launcher, cgroup v1) shares its spare's memory and is not counted.
shims=""; spares=""
for p in $(pgrep -f "berth-shim .*(--owner $berthd_pid |$work/)"); do
  case "$(cat /proc/$p/comm 2>/dev/null)" in
    berth-spare) spares="$spares $p" ;;
    berth-launcher) ;;
    *) shims="$shims $p" ;;
  esac
done
shim_pss=0; for p in $shims; do shim_pss=$((shim_pss + $(pss "$p"))); done
after=$(pss $berthd_pid)
one=$(echo $shims | cut -d' ' -f1)
echo "one shim: RSS $(rss "$one") KiB, PSS $(pss "$one") KiB"
spare_rss=0; spare_pss=0
for p in $spares; do spare_rss=$((spare_rss + $(rss "$p"))); spare_pss=$((spare_pss + $(pss "$p"))); done
[ -n "$spares" ] && echo "spare shims ($(echo $spares | wc -w) per daemon): RSS $spare_rss KiB, PSS $spare_pss KiB in all"
echo "$IDLE idle containers ($(echo $shims | wc -w) shims): shims PSS ${shim_pss} KiB + berthd growth $((after - before)) KiB" \
     "=> $(( (shim_pss + after - before) / IDLE )) KiB per container"
# berthd gives back pages after 5 quiet seconds (berth_api::server::serve).
sleep 5
settled=$(pss $berthd_pid)
echo "5 s later: berthd growth $((settled - before)) KiB => $(( (shim_pss + settled - before) / IDLE )) KiB per container"
"$bin/berth" rm -f $("$bin/berth" ps -q) >/dev/null
