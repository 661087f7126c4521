#!/usr/bin/env bash
# Two builds of berth, interleaved: `run --rm --network none busybox true` alternately against
# two berthds (one per build, each on its own temporary roots, exec-root on tmpfs), one run at a
# time, so both see the same moments of a noisy machine (engine-ab.sh runs one build after the
# other and its pairs drift with the hour). Times include python's fork+exec of the CLI (the
# same for both builds), so compare the two, not with hyperfine's figures.
# Usage (root): OLD=/path/to/old/bin/dir bench/engine-abi.sh
#   env: NEW (default: this tree's release build), N (150 runs each)
set -euo pipefail
cd "$(dirname "$0")/.."
: "${OLD:?set OLD to the bin directory of the build to compare with}"
NEW=${NEW:-$(scripts/build-release -q)}; N=${N:-150}
image=$(mktemp /tmp/berth-abi-image.XXXXXX)
dirs=()
cleanup() {
  for w in "${dirs[@]}"; do
    kill "$(cat "$w/pid")" 2>/dev/null || true
  done
  sleep 0.5
  for w in "${dirs[@]}"; do
    grep " $w" /proc/mounts | awk '{print $2}' | sort -r | xargs -r -n1 umount -l
    rm -rf "$w"
  done
  rm -f "$image"
}
trap cleanup EXIT
scripts/make-busybox-image "$image" busybox:latest >/dev/null

start_daemon() { # bin dir -> its work dir (on stdout)
  local w
  w=$(mktemp -d /tmp/berth-abi.XXXXXX)
  mkdir -p "$w/run" && mount -t tmpfs tmpfs "$w/run"
  "$1/berthd" --data-root "$w/data" --exec-root "$w/run/berth" -H "unix://$w/s.sock" >"$w/log" 2>&1 &
  echo $! >"$w/pid"
  for _ in $(seq 200); do [ -S "$w/s.sock" ] && break; sleep 0.05; done
  BERTH_HOST="unix://$w/s.sock" "$1/berth" load -i "$image" >/dev/null
  echo "$w"
}
wold=$(start_daemon "$OLD"); dirs+=("$wold")
wnew=$(start_daemon "$NEW"); dirs+=("$wnew")
python3 - "$OLD" "$wold" "$NEW" "$wnew" "$N" <<'PY'
import os, statistics as st, subprocess, sys, time
old, wold, new, wnew, n = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
def run(bin_dir, work):
    env = dict(os.environ, BERTH_HOST='unix://%s/s.sock' % work)
    t = time.perf_counter()
    subprocess.run([bin_dir + '/berth', 'run', '--rm', '--network', 'none', 'busybox', 'true'],
                   env=env, check=True)
    return (time.perf_counter() - t) * 1000
for _ in range(5):  # warm-up: spares made, caches hot
    run(old, wold); run(new, wnew)
a, b = [], []
for i in range(n):  # alternate which goes first
    if i % 2:
        a.append(run(old, wold)); b.append(run(new, wnew))
    else:
        b.append(run(new, wnew)); a.append(run(old, wold))
for name, v in (('old', a), ('new', b)):
    q = st.quantiles(v, n=4)
    print('%s median %.2f ms  p25 %.2f  p75 %.2f  (%d runs)' % (name, st.median(v), q[0], q[2], len(v)))
print('new/old median: %.3f' % (st.median(b) / st.median(a)))
PY
