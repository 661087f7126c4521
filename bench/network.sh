#!/usr/bin/env bash
# Bridge networking: berth (berthd, release build) vs Debian's dockerd, each in a private network
# namespace of its own (a "lab host" with one address on a veth of its own), so neither touches
# this host's firewall, bridges or addresses and both see the same clean kernel state.
#   (a) `run --rm busybox true` on the default bridge vs --network none (hyperfine, one run)
#   (b) iperf3 container -> container on the default bridge vs the lab host's loopback
#   (c) iperf3 through a published port: from the host on 127.0.0.1 and on the host's address,
#       and from another container to the host's address (hairpin); berth (kernel DNAT) vs
#       docker (docker-proxy where Docker uses it)
# iperf3 is the host's binary run in a container's network namespace (nsenter -n).
# Usage (root): bench/network.sh
# env: RUNS (30), WARMUP (3), SECS (5 per iperf3 run), REPS (3), BERTH_BIN (default: release build)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-30}; WARMUP=${WARMUP:-3}; SECS=${SECS:-5}; REPS=${REPS:-3}
for t in hyperfine iperf3 jq nsenter skopeo; do
  command -v $t >/dev/null || { echo "missing $t (apt-get install $t)" >&2; exit 1; }
done
# BERTH_BIN=<dir with berthd, berth, berth-shim> measures another build.
if [ -n "${BERTH_BIN:-}" ]; then bin=$BERTH_BIN; else
  bin=$(scripts/build-release -q)
fi
work=$(mktemp -d /tmp/berth-netbench.XXXXXX)
tag=$$
ns_b=nbb$tag; ns_d=nbd$tag   # the two lab hosts
HOST_ADDR=10.79.250.1        # the lab host's own address (in both labs)
pids=()
cleanup() {
  set +e
  [ -n "${BERTH_HOST:-}" ] && "$bin/berth" rm -f $("$bin/berth" ps -aq 2>/dev/null) >/dev/null 2>&1
  [ -S "$work/docker.sock" ] && docker -H "unix://$work/docker.sock" rm -f \
    $(docker -H "unix://$work/docker.sock" ps -aq 2>/dev/null) >/dev/null 2>&1
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  for ns in $ns_b $ns_d; do
    ip netns pids $ns 2>/dev/null | xargs -r kill -9 2>/dev/null
    ip netns del $ns 2>/dev/null
  done
  grep " $work" /proc/mounts | awk '{print $2}' | sort -r | xargs -r -n1 umount -l 2>/dev/null
  rm -rf "$work" 2>/dev/null
}
trap cleanup EXIT

lab() { # a network namespace standing in for a host: loopback up, one address on a "NIC"
  ip netns add "$1"
  ip -n "$1" link set lo up
  # a veth pair with both ends in the lab (the dummy driver is not always there)
  ip -n "$1" link add nbhost0 type veth peer name nbhost1
  ip -n "$1" addr add $HOST_ADDR/24 dev nbhost0
  ip -n "$1" link set nbhost1 up
  ip -n "$1" link set nbhost0 up
}
lab $ns_b; lab $ns_d
# nsenter, not `ip netns exec`: that remounts /sys and hides the cgroup mounts from the daemons
B="nsenter --net=/run/netns/$ns_b"; D="nsenter --net=/run/netns/$ns_d"

scripts/make-busybox-image "$work/busybox-oci.tar" busybox:latest >/dev/null
skopeo copy -q "oci-archive:$work/busybox-oci.tar" "docker-archive:$work/busybox-docker.tar:busybox:latest"
wait_sock() { for _ in $(seq 600); do [ -S "$1" ] && return 0; sleep 0.05; done; echo "no socket $1" >&2; exit 1; }

# berthd in its lab, with its own table, bridge and subnets
BERTH_NETWORK_SETTINGS='{"table":"berth_bench","default_network":"bridge","default_bridge":"nbb0","default_subnet":"10.79.0.0/24","pool":"10.79.1.0/24","pool_prefix":28}' \
  $B "$bin/berthd" --data-root "$work/berth" --exec-root "$work/berth-run" -H "unix://$work/berth.sock" \
  >"$work/berthd.log" 2>&1 &
pids+=($!)
wait_sock "$work/berth.sock"
export BERTH_HOST="unix://$work/berth.sock"
berth() { "$bin/berth" "$@"; }
berth load -i "$work/busybox-oci.tar" >/dev/null

# dockerd (Debian's docker.io) in its lab: iptables, docker-proxy and its bridge stay in there
$D dockerd --data-root "$work/docker" --exec-root "$work/docker-run" -H "unix://$work/docker.sock" \
  --pidfile "$work/docker.pid" --bip 10.79.8.1/24 >"$work/dockerd.log" 2>&1 &
pids+=($!)
wait_sock "$work/docker.sock"
dk() { docker -H "unix://$work/docker.sock" "$@"; }
for _ in $(seq 300); do dk info >/dev/null 2>&1 && break; sleep 0.1; done
dk info >/dev/null || { tail -20 "$work/dockerd.log" >&2; exit 1; }
dk load -i "$work/busybox-docker.tar" >/dev/null

mkdir -p bench/results
stamp=$(date -u +%Y%m%dT%H%M%SZ)
report=bench/results/network-$stamp.md
say() { echo "$*" | tee -a "$report"; }

# (a) run --rm on the bridge vs without a network
berth run --rm busybox true && berth run --rm --network none busybox true
say "## (a) run --rm busybox true: default bridge vs --network none"
hyperfine -N -w "$WARMUP" -r "$RUNS" --export-markdown "$work/a.md" \
  --export-json "bench/results/network-$stamp-run.json" \
  -n bridge "$bin/berth run --rm busybox true" \
  -n none "$bin/berth run --rm --network none busybox true"
cat "$work/a.md" >>"$report"
say "bridge - none (mean): $(jq -r '(.results[0].mean - .results[1].mean) * 1000 | . * 100 | round / 100' \
  "bench/results/network-$stamp-run.json") ms"

# iperf3 helpers: Gbit/s received, median of REPS runs
gbit() { jq -r 'if .error then error("iperf3: " + .error) else .end.sum_received.bits_per_second / 1e9 end'; }
median() { sort -g | awk '{a[NR]=$1} END {printf "%.2f", (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
# serve PORT CMD-PREFIX...: an iperf3 server that outlives REPS clients
serve() { local port=$1; shift; "$@" iperf3 -s -p "$port" >/dev/null 2>&1 & pids+=($!); sleep 0.5; }
measure() { # measure TARGET PORT CMD-PREFIX...
  local target=$1 port=$2; shift 2
  for _ in $(seq "$REPS"); do "$@" iperf3 -J -t "$SECS" -c "$target" -p "$port" | gbit || exit 1; done | median
}
pid_of() { "$1" inspect -f '{{.State.Pid}}' "$2"; }
ip_of() { "$1" inspect -f '{{.NetworkSettings.IPAddress}}' "$2"; }

# (b) container -> container vs loopback (berth's lab)
berth run -d --name srv -p 15201:5201 busybox sleep 1d >/dev/null
berth run -d --name cli busybox sleep 1d >/dev/null
srv_pid=$(pid_of berth srv); cli_pid=$(pid_of berth cli); srv_ip=$(ip_of berth srv)
serve 5201 nsenter -n -t "$srv_pid"
serve 5299 $B
lo=$(measure 127.0.0.1 5299 $B)
c2c=$(measure "$srv_ip" 5201 nsenter -n -t "$cli_pid")
say ""
say "## (b) TCP throughput, iperf3 -t $SECS, median of $REPS"
say ""
say "| path | Gbit/s | of loopback |"
say "|:--|--:|--:|"
say "| host loopback | $lo | 100% |"
say "| berth container -> container (bridge) | $c2c | $(awk "BEGIN {printf \"%.0f%%\", 100 * $c2c / $lo}") |"

# (c) published ports, berth vs docker, same image and same commands
dk run -d --name srv -p 15201:5201 busybox sleep 1d >/dev/null
dk run -d --name cli busybox sleep 1d >/dev/null
dsrv_pid=$(pid_of dk srv); dcli_pid=$(pid_of dk cli)
serve 5201 nsenter -n -t "$dsrv_pid"
say ""
say "## (c) published port 15201 -> 5201, iperf3 -t $SECS, median of $REPS"
say ""
say "| from | to | berth (DNAT) | docker |"
say "|:--|:--|--:|--:|"
for row in "host 127.0.0.1" "host $HOST_ADDR" "container $HOST_ADDR"; do
  set -- $row
  if [ "$1" = host ]; then
    b=$(measure "$2" 15201 $B); d=$(measure "$2" 15201 $D)
  else
    b=$(measure "$2" 15201 nsenter -n -t "$cli_pid"); d=$(measure "$2" 15201 nsenter -n -t "$dcli_pid")
  fi
  say "| $1 | $2:15201 | $b | $d |"
done
say ""
say "docker-proxy processes in docker's lab: $(ip netns pids $ns_d | xargs -r ps -o comm= -p | grep -c docker-proxy || true)"
say ""
say "berthd $(git rev-parse --short HEAD), dockerd $(dockerd --version | cut -d, -f1 | awk '{print $3}'),"\
  "kernel $(uname -r), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)," \
  "br_netfilter call-iptables (lab): $($B cat /proc/sys/net/bridge/bridge-nf-call-iptables 2>/dev/null || echo n/a)"
echo "written: $report"
