#!/usr/bin/env bash
# `pull` of a ~450 MB (280 MB gzipped), 4-layer Debian bookworm + python3 image from a local
# docker-registry on 127.0.0.1: berth (berthd, release build) vs docker (Debian's dockerd) vs
# podman, in ONE hyperfine run. Before every timed run the image is removed (and pruned) so each
# pull downloads, verifies and unpacks every layer, and `sync` flushes the previous run's writes.
# The image is built once by bench/pull-image.sh and cached (BERTH_BENCH_CACHE, default
# /var/tmp/berth-bench), with the registry's storage, so re-runs skip debootstrap and the push.
# Usage (root): bench/pull.sh    env: RUNS (10), WARMUP (1), BERTH_BENCH_CACHE,
#   BERTH_BIN (a directory with release berthd/berth/berth-shim to time instead of building
#   target/release, e.g. a copy of an earlier build for a before/after in one sitting)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-10}; WARMUP=${WARMUP:-1}
cache=${BERTH_BENCH_CACHE:-/var/tmp/berth-bench}
for t in hyperfine docker-registry skopeo python3; do
  command -v "$t" >/dev/null || { echo "missing $t (scripts/install-deps)" >&2; exit 1; }
done
layout=$(bench/pull-image.sh "$cache")
if [ -n "${BERTH_BIN:-}" ]; then
  bin=$(cd "$BERTH_BIN" && pwd)
else
  bin=$(scripts/build-release -q)
fi
work=$(mktemp -d /tmp/berth-pullbench.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  # dockerd and podman leave overlay mounts under their roots.
  grep " $work" /proc/mounts | awk '{print $2}' | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$work" 2>/dev/null || true
}
trap cleanup EXIT

wait_sock() { for _ in $(seq 400); do [ -S "$1" ] && return 0; sleep 0.05; done; echo "no socket $1" >&2; exit 1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# The registry: Debian's docker-registry with its own config; storage cached between runs.
port=$(free_port)
mkdir -p "$cache/registry"
cat >"$work/registry.yml" <<EOF
version: 0.1
log: {level: error}
storage:
  filesystem: {rootdirectory: $cache/registry}
http: {addr: 127.0.0.1:$port}
EOF
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
image=127.0.0.1:$port/bench/debian-python:1
skopeo copy -q --dest-tls-verify=false "oci:$layout:bench" "docker://$image"

# berthd, release build, temporary roots
"$bin/berthd" --data-root "$work/berth" --exec-root "$work/berth-run" -H "unix://$work/berth.sock" \
  >"$work/berthd.log" 2>&1 &
pids+=($!)
wait_sock "$work/berth.sock"
berth="$bin/berth -H unix://$work/berth.sock"

cmds=(-n berth --prepare "$berth rmi -f $image >/dev/null 2>&1; sync" "$berth pull $image")
# dockerd (Debian's docker.io), without touching the host's firewall or bridges; 127.0.0.0/8 is
# an insecure registry for docker by default.
if command -v dockerd >/dev/null; then
  dockerd --data-root "$work/docker" --exec-root "$work/docker-run" -H "unix://$work/docker.sock" \
    --pidfile "$work/docker.pid" --iptables=false --ip-forward=false --bridge=none \
    --insecure-registry "127.0.0.1:$port" >"$work/dockerd.log" 2>&1 &
  pids+=($!)
  wait_sock "$work/docker.sock"
  docker="docker -H unix://$work/docker.sock"
  cmds+=(-n docker --prepare "$docker rmi -f $image >/dev/null 2>&1; $docker image prune -a -f >/dev/null; sync"
    "$docker pull $image")
fi
if command -v podman >/dev/null; then
  podman="podman --root $work/podman --runroot $work/podman-run"
  if $podman pull -q --tls-verify=false "$image" >/dev/null 2>"$work/podman.err"; then
    cmds+=(-n podman --prepare "$podman rmi -f $image >/dev/null 2>&1; $podman image prune -a -f >/dev/null; sync"
      "$podman pull -q --tls-verify=false $image")
  else
    echo "WARNING: podman cannot pull here, left out: $(tail -1 "$work/podman.err")" >&2
  fi
fi

# Each command once, visibly, so a failure is never timed.
for ((i = 1; i < ${#cmds[@]}; i += 5)); do
  name=${cmds[i]}; prep=${cmds[i+2]}; cmd=${cmds[i+3]}
  bash -c "$prep"
  bash -c "$cmd" >/dev/null || { echo "$name failed: $cmd" >&2; exit 1; }
done
mkdir -p bench/results
stamp=$(date -u +%Y%m%dT%H%M%SZ)
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
hyperfine -w "$WARMUP" -r "$RUNS" --export-markdown "bench/results/pull-$stamp.md" \
  --export-json "bench/results/pull-$stamp.json" "${cmds[@]}"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
# Where berth's time went in its last pull: one line per layer from berthd (see PERFORMANCE.md).
grep -a "layer pulled" "$work/berthd.log" | tail -4 || true
