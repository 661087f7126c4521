#!/usr/bin/env bash
# Where the time of `berth run --rm --network none busybox true` goes: medians of each phase over
# N back-to-back runs, from kernel events (perf: scheduler wake-ups, execs, a few syscalls), so
# the runs themselves are not slowed by tracing. A fresh berthd on temporary roots.
# Usage (root): bench/engine-phases.sh    env: B (bin dir, default this tree's release build), N (30)
# Needs perf (Debian: linux-perf).
set -euo pipefail
cd "$(dirname "$0")/.."
B=${B:-$(scripts/build-release -q)}; N=${N:-30}
command -v perf >/dev/null || { echo "apt-get install linux-perf" >&2; exit 1; }
w=$(mktemp -d /tmp/berth-phases.XXXXXX)
cleanup() {
  [ -n "${d:-}" ] && kill "$d" 2>/dev/null && wait "$d" 2>/dev/null
  grep " $w" /proc/mounts | awk '{print $2}' | sort -r | xargs -r -n1 umount -l
  rm -rf "$w"
}
trap cleanup EXIT
mkdir -p "$w/run" && mount -t tmpfs tmpfs "$w/run"
scripts/make-busybox-image "$w/image.tar" busybox:latest >/dev/null
"$B/berthd" --data-root "$w/data" --exec-root "$w/run/berth" -H "unix://$w/s.sock" >"$w/log" 2>&1 &
d=$!
for _ in $(seq 200); do [ -S "$w/s.sock" ] && break; sleep 0.05; done
export BERTH_HOST="unix://$w/s.sock"
"$B/berth" load -i "$w/image.tar" >/dev/null
for _ in $(seq 8); do "$B/berth" run --rm --network none busybox true; done
perf record -q -a -o "$w/p.data" -e 'sched:sched_wakeup,sched:sched_process_exec,syscalls:sys_enter_connect,syscalls:sys_enter_clone3,syscalls:sys_enter_clone,syscalls:sys_enter_seccomp,syscalls:sys_enter_exit_group' \
  -- bash -c "for i in \$(seq $N); do '$B/berth' run --rm --network none busybox true; done" >/dev/null 2>&1
perf script -i "$w/p.data" -F comm,pid,tid,time,event,trace 2>/dev/null >"$w/events.txt"
python3 - "$w/events.txt" <<'PY'
import re, statistics as st, sys
runs, cur = [], None
for line in open(sys.argv[1]):
    m = re.match(r'\s*(\S+)\s+(\d+)/(\d+)\s+([\d.]+):\s+(\S+):\s*(.*)', line)
    if not m:
        continue
    comm, _pid, tid, t, ev, tr = m.groups()
    t = float(t) * 1000
    if ev == 'sched:sched_process_exec' and tr.split()[0].endswith('/berth'):
        cur = {'exec': t, 'cli': tid, 'connects': []}
        runs.append(cur)
    elif cur is None:
        continue
    elif ev == 'syscalls:sys_enter_connect' and tid == cur['cli']:
        cur['connects'].append(t)
    elif ev == 'sched:sched_wakeup' and 'comm=berth-spare' in tr and 'spare' not in cur and cur['connects']:
        cur['spare'] = t
    elif ev in ('syscalls:sys_enter_clone3', 'syscalls:sys_enter_clone') and comm == 'berth-launcher' and 'spare' in cur and 'clone' not in cur:
        cur['clone'] = t
    elif ev == 'syscalls:sys_enter_seccomp' and comm in ('berth-launcher', 'berth-sandbox') and 'spare' in cur and 'ready' not in cur:
        cur['ready'] = t
        # Made ahead: a warm spare's sandbox got its process (see containers::warm).
        cur['warm'] = comm == 'berth-sandbox'
    elif ev == 'sched:sched_process_exec' and '/bin/true' in tr:
        cur['true'] = t
    elif ev == 'syscalls:sys_enter_exit_group' and comm == 'true':
        cur['exit'] = t
    elif ev == 'syscalls:sys_enter_exit_group' and tid == cur['cli']:
        cur['end'] = t
phases = [
    ('CLI start -> create sent', 'exec', 'c1'),
    ('create sent -> spare woken', 'c1', 'spare'),
    ('spare woken -> clone (cold)', 'spare', 'clone'),
    ('clone -> seccomp (cold setup)', 'clone', 'ready'),
    ('spare woken -> seccomp', 'spare', 'ready'),
    ('seccomp -> exec true', 'ready', 'true'),
    ('true runs', 'true', 'exit'),
    ('exit -> CLI gone', 'exit', 'end'),
    ('total', 'exec', 'end'),
]
for r in runs:
    if r['connects']:
        r['c1'] = r['connects'][0]
print('%-30s %8s %8s %8s' % ('phase (ms)', 'median', 'p25', 'p75'))
for name, a, b in phases:
    v = [r[b] - r[a] for r in runs if a in r and b in r]
    if len(v) > 1:
        q = st.quantiles(v, n=4)
        print('%-30s %8.2f %8.2f %8.2f' % (name, st.median(v), q[0], q[2]))
print('(%d runs, %d in a container made ahead)' % (len(runs), sum(1 for r in runs if r.get('warm'))))
PY
