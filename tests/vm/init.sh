#!/bin/busybox sh
# /init of the cgroup v2 test VM (see scripts/vm-cgroup2-test and docs/VM-TESTS.md).
# Runs berth-runtime against a pure cgroup v2 hierarchy and prints one "VMTEST PASS <name>" or
# "VMTEST FAIL <name>: <why>" line per check, then "VMTEST DONE" and powers off.
# The bundles' config.json files were written on the host; they share the rootfs /vm/rootfs.

export PATH=/bin:/sbin:/usr/bin:/usr/sbin:/usr/local/bin

# Stage 1: the initramfs root is "rootfs", which pivot_root(2) refuses to leave. Copy ourselves
# onto a tmpfs and switch_root there so the runtime's pivot_root is exercised as on a real host.
if [ ! -e /.stage2 ]; then
  /bin/busybox mkdir -p /proc /sys /dev /newroot
  /bin/busybox --install -s /bin
  mount -t devtmpfs devtmpfs /dev
  mount -t tmpfs -o size=512m tmpfs /newroot
  for d in /*; do
    case "$d" in /newroot | /proc | /sys | /dev) continue ;; esac
    cp -a "$d" /newroot/
  done
  mkdir -p /newroot/proc /newroot/sys /newroot/dev
  touch /newroot/.stage2
  umount /dev
  exec switch_root /newroot /init
fi

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm /run /tmp
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
mount -t cgroup2 cgroup2 /sys/fs/cgroup || echo "VMTEST FAIL mount-cgroup2: mount failed"
for ko in /vm/modules/*.ko; do
  [ -e "$ko" ] && insmod "$ko"
done

RT=/usr/local/bin/berth-runtime
B=/vm/bundles
CG=/sys/fs/cgroup
FAILS=0

pass() { echo "VMTEST PASS $1"; }
fail() {
  echo "VMTEST FAIL $1: $2"
  FAILS=$((FAILS + 1))
  return 1
}
# check NAME EXPECTED ACTUAL WHAT
check() {
  if [ "$2" = "$3" ]; then pass "$1"; else fail "$1" "$4: expected '$2', got '$3'"; fi
}
# Run a runtime command, keeping its output in /tmp/out and returning its exit code.
rt() {
  "$RT" "$@" >/tmp/out 2>&1
}
show() { sed 's/^/    | /' /tmp/out; }

echo "VMTEST INFO kernel $(uname -r)"
echo "VMTEST INFO overlayfs: $(grep -cw overlay /proc/filesystems) (1: the runtime can seal itself on a read-only overlay)"

echo "VMTEST INFO /proc/self/cgroup: $(tr '\n' ' ' </proc/self/cgroup)"
echo "VMTEST INFO root cgroup.controllers: $(cat $CG/cgroup.controllers)"
echo "VMTEST INFO root cgroup.subtree_control (before): '$(cat $CG/cgroup.subtree_control)'"
# CGROUP2_SUPER_MAGIC; no cgroup v1 hierarchy may exist (cgroup_no_v1=all).
check host-is-v2 63677270 "$(stat -f -c %t /sys/fs/cgroup)" "statfs type of /sys/fs/cgroup"
check no-v1-hierarchies "" "$(awk '$3 == "cgroup"' /proc/mounts)" "cgroup v1 mounts"
# With cgroup_no_v1=all the kernel refuses to mount a v1 hierarchy at all.
mkdir -p /tmp/v1
if mount -t cgroup -o memory cgroup /tmp/v1 2>/dev/null; then
  fail v1-mount-refused "a cgroup v1 memory hierarchy could be mounted"
  umount /tmp/v1
else
  pass v1-mount-refused
fi

# (1) run true -> 0. The runtime must enable the controllers itself (nothing enabled them yet).
rt run -b $B/true t-true
check run-true 0 $? "exit code of 'run' with 'true'" || show
sub=$(cat $CG/cgroup.subtree_control)
echo "VMTEST INFO root cgroup.subtree_control (after run): '$sub'"
missing=""
for c in cpu memory pids; do
  case " $sub " in *" $c "*) ;; *) missing="$missing $c" ;; esac
done
check controllers-enabled-by-runtime "" "$missing" "controllers missing from the root's subtree_control"

# (2) memory.limit 32M, dd with a 256M buffer -> OOM kill -> 137.
rt run -b $B/oom t-oom
rc=$?
check oom-kill-137 137 $rc "exit code of dd bs=256M under memory.limit 32M"
[ $rc = 137 ] || show
# The kill was the memory controller's: the parent's memory.events counts its children's.
ooms=$(sed -n 's/^oom_kill //p' $CG/berth/memory.events)
if [ "${ooms:-0}" -ge 1 ]; then pass oom-kill-counted; else fail oom-kill-counted "oom_kill='$ooms' in $CG/berth/memory.events"; fi

# (3) pids.limit 10: the 10th process cannot be forked.
rt run -b $B/pids t-pids
started=$(grep -c '^started' /tmp/out)
# pids.max counts the shell itself: exactly 10 - 1 sleeps fit.
if grep -q "can't fork" /tmp/out && [ "$started" = $((10 - 1)) ]; then
  pass pids-limit-refuses-fork
else
  fail pids-limit-refuses-fork "started=$started, expected 9 then \"can't fork\""
  show
fi

# (4) limits as files in the container's cgroup (long-running container t-lim, cgroupsPath
# /berth-vm/t-lim, memory 32M, pids 10, cpu quota 50000 / period 100000, shares 512).
D=$CG/berth-vm/t-lim
if ! rt --debug run -d -b $B/limits t-lim; then
  fail run-detached "run -d t-lim failed"
  show
else
  pass run-detached
fi
# Born in its cgroup by clone3(CLONE_INTO_CGROUP), not moved there: the fallback (clone, then
# cgroup.procs) logs something else.
if grep -q "cloned into cgroup $D\$" /tmp/out; then
  pass cloned-into-cgroup
else
  fail cloned-into-cgroup "no 'cloned into cgroup $D' in the --debug log"
  show
fi
check cgroup-memory.max 33554432 "$(cat $D/memory.max 2>&1)" "$D/memory.max"
check cgroup-pids.max 10 "$(cat $D/pids.max 2>&1)" "$D/pids.max"
check cgroup-cpu.max "50000 100000" "$(cat $D/cpu.max 2>&1)" "$D/cpu.max"
# runc's shares -> weight mapping, computed here rather than copied.
check cgroup-cpu.weight $((1 + (512 - 2) * 9999 / 262142)) "$(cat $D/cpu.weight 2>&1)" "$D/cpu.weight"
check cgroup-memory.swap.max 0 "$(cat $D/memory.swap.max 2>&1)" "$D/memory.swap.max (spec swap = limit)"
check cgroup-memory.high 50331648 "$(cat $D/memory.high 2>&1)" "$D/memory.high (from linux.resources.unified)"
check cgroup-io.weight "default $((1 + (500 - 10) * 9999 / 990))" "$(head -n1 $D/io.weight 2>&1)" "$D/io.weight (blkio weight 500)"
# cpu.cpus needs the cpuset controller, which nothing enabled before this container.
check cgroup-cpuset.cpus 0 "$(cat $D/cpuset.cpus 2>&1)" "$D/cpuset.cpus"
check cgroup-cpuset.cpus.effective 0 "$(cat $D/cpuset.cpus.effective 2>&1)" "$D/cpuset.cpus.effective"
pid=$("$RT" state t-lim | sed -n 's/.*"pid": *\([0-9]*\).*/\1/p' | head -n1)
check init-in-cgroup "0::/berth-vm/t-lim" "$(cat /proc/"$pid"/cgroup 2>&1)" "/proc/<init>/cgroup"
if grep -qx "$pid" $D/cgroup.procs; then pass init-in-cgroup.procs; else fail init-in-cgroup.procs "pid $pid not in $D/cgroup.procs"; fi
# Inside: cgroup namespace + cgroup2 mount show the container's own limits at its root.
rt exec t-lim sh -c 'cat /proc/self/cgroup; cat /sys/fs/cgroup/memory.max'
check in-container-cgroupns "0::/ 33554432" "$(tr '\n' ' ' </tmp/out | sed 's/ $//')" "/proc/self/cgroup and memory.max seen inside"

# (5) device rules through the eBPF program: /dev/kmsg (c 1:11) is bind-mounted into both
# containers; one denies it explicitly, the other allows it. /dev/null must work in both.
# The probe opens /dev/kmsg write-only: opening it for reading would need CAP_SYSLOG
# (dmesg_restrict), an EPERM that has nothing to do with the device cgroup.
rt run -b $B/dev-deny t-devdeny
if grep -q "kmsg.*Operation not permitted" /tmp/out && grep -q '^null-ok$' /tmp/out && ! grep -q '^kmsg-opened$' /tmp/out; then
  pass device-deny-eperm
else
  fail device-deny-eperm "expected EPERM on /dev/kmsg and /dev/null usable"
  show
fi
rt run -b $B/dev-allow t-devallow
if grep -q '^kmsg-opened$' /tmp/out && grep -q '^null-ok$' /tmp/out; then
  pass device-allow-opens
else
  fail device-allow-opens "expected /dev/kmsg to open under an allow rule"
  show
fi

# update -r with new device rules replaces the program (several attached programs must all
# allow, so re-allowing works only if the deny program was detached, not stacked).
kprobe() { rt exec t-devupd sh -c 'echo berth-vm-test >/dev/kmsg && echo kmsg-opened'; }
rules() { echo "{\"devices\": [{\"allow\": false, \"access\": \"rwm\"}, {\"allow\": $1, \"type\": \"c\", \"major\": 1, \"minor\": 11, \"access\": \"rwm\"}]}" >/tmp/rules.json; }
if rt run -d -b $B/dev-update t-devupd; then
  kprobe
  if grep -q '^kmsg-opened$' /tmp/out; then pass device-update-start-allowed; else fail device-update-start-allowed "exec could not open /dev/kmsg"; show; fi
  rules false
  rt update -r /tmp/rules.json t-devupd || { fail device-update-deny "update -r failed"; show; }
  kprobe
  if grep -q "kmsg.*Operation not permitted" /tmp/out; then pass device-update-deny; else fail device-update-deny "expected EPERM after update"; show; fi
  rules true
  rt update -r /tmp/rules.json t-devupd || { fail device-update-allow-again "update -r failed"; show; }
  kprobe
  if grep -q '^kmsg-opened$' /tmp/out; then pass device-update-allow-again; else fail device-update-allow-again "old deny program still attached?"; show; fi
  rt delete --force t-devupd || { fail device-update-delete "delete --force failed"; show; }
else
  fail device-update-run "run -d t-devupd failed"
  show
fi

# (6) pause / resume through cgroup.freeze.
rt pause t-lim || { fail pause "pause failed"; show; }
status=$("$RT" state t-lim | sed -n 's/.*"status": *"\([a-z]*\)".*/\1/p')
check pause-state paused "$status" "state after pause"
check pause-cgroup.freeze 1 "$(cat $D/cgroup.freeze)" "$D/cgroup.freeze"
check pause-frozen-event "frozen 1" "$(grep frozen $D/cgroup.events)" "frozen in $D/cgroup.events"
st=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' /proc/"$pid"/status)
echo "VMTEST INFO init state while frozen: $st"
rt resume t-lim || { fail resume "resume failed"; show; }
status=$("$RT" state t-lim | sed -n 's/.*"status": *"\([a-z]*\)".*/\1/p')
check resume-state running "$status" "state after resume"
check resume-frozen-event "frozen 0" "$(grep frozen $D/cgroup.events)" "frozen in $D/cgroup.events"
rt exec t-lim true
check exec-after-resume 0 $? "exec after resume" || show

# (7) events --stats: one JSON line with memory usage > 0 and the limits.
"$RT" events --stats t-lim >/tmp/ev 2>&1
echo "VMTEST INFO events: $(head -c 600 /tmp/ev)"
usage=$(jq -r '.data.memory.usage.usage' /tmp/ev 2>/dev/null)
echo "VMTEST INFO stats: memory usage $usage bytes, cpu throttled periods $(jq -r '.data.cpu.throttling.throttled_periods' /tmp/ev 2>/dev/null)"
if [ -n "$usage" ] && [ "$usage" != null ] && [ "$usage" -gt 0 ] 2>/dev/null; then
  pass events-memory-usage
else
  fail events-memory-usage "memory.usage.usage='$usage'"
fi
check events-memory-limit 33554432 "$(jq -r '.data.memory.usage.limit' /tmp/ev 2>&1)" "memory limit in stats"
check events-pids-limit 10 "$(jq -r '.data.pids.limit' /tmp/ev 2>&1)" "pids limit in stats"
pc=$(jq -r '.data.pids.current' /tmp/ev 2>/dev/null)
if [ "$pc" -ge 1 ] 2>/dev/null; then pass events-pids-current; else fail events-pids-current "pids.current='$pc'"; fi

# update on v2: new memory limit reaches memory.max.
rt update --memory 67108864 t-lim
check update-memory.max 67108864 "$(cat $D/memory.max 2>&1)" "$D/memory.max after update" || show

# ps / kill --all: a second process started with exec -d is listed and killed with init.
rt exec -d t-lim sleep 1000 || { fail exec-detached "exec -d failed"; show; }
rt ps -f json t-lim
n=$(jq length /tmp/out 2>/dev/null)
check ps-lists-both 2 "$n" "number of pids from 'ps -f json'" || show
check pids.current-matches-ps "$n" "$(cat $D/pids.current)" "$D/pids.current"

# (8) kill --all + delete removes the cgroup.
rt kill --all t-lim KILL
for _ in 1 2 3 4 5 6 7 8 9 10; do
  "$RT" state t-lim 2>/dev/null | grep -q '"stopped"' && break
  sleep 0.2
done
rt delete t-lim || { fail delete "delete failed"; show; }
if [ -e "$D" ]; then fail delete-removes-cgroup "$D still exists"; else pass delete-removes-cgroup; fi
# A systemd-style cgroupsPath ("slice:prefix:name") on a host without systemd.
rt run -d -b $B/systemd t-sd
SD=$CG/vm.slice/berth-t-sd.scope
sdpid=$("$RT" state t-sd | sed -n 's/.*"pid": *\([0-9]*\).*/\1/p' | head -n1)
check systemd-path-cgroup "0::/vm.slice/berth-t-sd.scope" "$(cat /proc/"$sdpid"/cgroup 2>&1)" "/proc/<init>/cgroup" || show
rt delete --force t-sd || { fail systemd-path-delete "delete --force failed"; show; }
if [ -e "$SD" ]; then fail systemd-path-removed "$SD still exists"; else pass systemd-path-removed; fi

# The foreground runs must not have left their cgroups behind either.
left=$(find $CG/berth $CG/berth-vm $CG/vm.slice -mindepth 1 -type d 2>/dev/null | tr '\n' ' ')
check no-cgroups-left "" "$left" "container cgroups left after all runs"

echo "VMTEST INFO failures: $FAILS"
echo "VMTEST DONE"
sync
poweroff -f
