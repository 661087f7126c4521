#!/usr/bin/env bash
# Which kernel knobs close the gap between container-to-container TCP and loopback? A private
# "host" namespace with a bridge, a copy of berth's nft table and two "container" namespaces;
# iperf3 between them with one knob changed at a time, interleaved over ROUNDS. Prints Gbit/s
# and Gbit per CPU-second (throughput / iperf3's own host+remote CPU use), the steadier figure on
# a busy machine. br_netfilter's sysctls are per namespace and on by default, as on the host.
# Usage (root): bench/network-knobs.sh    env: T (seconds per iperf3 run, 3), ROUNDS (2)
# Needs: iperf3 jq ethtool nftables.
set -euo pipefail
L="ip netns exec nbx-lab"
cleanup(){ for n in nbx-a nbx-b nbx-lab; do ip netns pids $n 2>/dev/null | xargs -r kill 2>/dev/null || true; ip netns del $n 2>/dev/null || true; done; }
trap cleanup EXIT
cleanup
ip netns add nbx-lab; $L ip link set lo up; $L sysctl -qw net.ipv4.ip_forward=1
$L ip link add br0 type bridge; $L ip addr add 10.233.0.1/24 dev br0; $L ip link set br0 up
i=10
for n in a b; do
  ip netns add nbx-$n
  $L ip link add v$n type veth peer name eth0 netns nbx-$n
  $L ip link set v$n master br0 up
  ip -n nbx-$n addr add 10.233.0.$i/24 dev eth0; i=$((i+1))
  ip -n nbx-$n link set eth0 up; ip -n nbx-$n link set lo up
  ip -n nbx-$n route add default via 10.233.0.1
done
$L nft -f - <<'NFT'
table ip berth {
  chain published { tcp dport 8080 dnat to 10.233.0.11:5201; }
  chain prerouting { type nat hook prerouting priority dstnat; policy accept; fib daddr type local jump published; }
  chain output { type nat hook output priority -100; policy accept; fib daddr type local jump published; }
  chain postrouting { type nat hook postrouting priority srcnat; policy accept;
    ip saddr 10.233.0.0/24 oifname != "br0" masquerade
    oifname "br0" ip saddr 127.0.0.0/8 masquerade
    oifname "br0" ip saddr 10.233.0.0/24 ct status dnat masquerade; }
  chain guard { type filter hook prerouting priority raw; policy accept; iifname { "br0" } ip daddr 127.0.0.0/8 drop; }
  chain forward { type filter hook forward priority filter; policy accept; ct status dnat accept; }
}
NFT
ip netns exec nbx-b iperf3 -s -D -p 5201
$L iperf3 -s -D -p 5202
sleep 0.5
T=${T:-3}
F='"\(.end.sum_received.bits_per_second/1e9*100|floor/100) Gbit/s, \(.end.sum_received.bits_per_second/1e9/((.end.cpu_utilization_percent.host_total+.end.cpu_utilization_percent.remote_total)/100)*100|floor/100) Gbit per CPU-s"'
c2c(){ ip netns exec nbx-a iperf3 -J -t $T -c ${1:-10.233.0.11} -p ${2:-5201} | jq -r "$F"; }
lo(){ $L iperf3 -J -t $T -c 127.0.0.1 -p 5202 | jq -r "$F"; }
nf(){ $L sysctl -qw net.bridge.bridge-nf-call-iptables=$1; }
mtu(){ $L ip link set br0 mtu $1; for n in a b; do $L ip link set v$n mtu $1; ip -n nbx-$n link set eth0 mtu $1; done; }
gro(){ for n in a b; do $L ethtool -K v$n gro $1; ip netns exec nbx-$n ethtool -K eth0 gro $1; done; }
notrack(){ if [ $1 = on ]; then $L nft add chain ip berth nt '{ type filter hook prerouting priority raw; policy accept; }'; $L nft add rule ip berth nt iifname br0 ip saddr 10.233.0.0/24 ip daddr 10.233.0.0/24 ip daddr != 10.233.0.1 notrack; else $L nft delete chain ip berth nt; fi; }
for round in $(seq "${ROUNDS:-2}"); do
  echo "round $round: loopback              $(lo)"
  echo "  base (br_netfilter on, mtu 1500)   $(c2c)"
  nf 0; echo "  br_netfilter off (sysctl)          $(c2c)"; nf 1
  notrack on; echo "  notrack between containers         $(c2c)"
  echo "  published port via gateway+notrack $(c2c 10.233.0.1 8080)"; notrack off
  gro on; echo "  veth GRO on                        $(c2c)"; gro off
  $L ip link set br0 txqueuelen 10000; for n in a b; do $L ip link set v$n txqueuelen 10000; done
  echo "  txqueuelen 10000                   $(c2c)"
  $L ip link set br0 txqueuelen 1000; for n in a b; do $L ip link set v$n txqueuelen 1000; done
  mtu 65520; echo "  mtu 65520                          $(c2c)"
  notrack on; echo "  mtu 65520 + notrack                $(c2c)"; notrack off; mtu 1500
done
