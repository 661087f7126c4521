#!/usr/bin/env bash
# Two builds of berth side by side: `run --rm --network none busybox true`, one hyperfine run
# per build (a fresh berthd on temporary roots, exec-root on tmpfs), optionally with a pause
# before each run (GAP seconds: a start after a quiet moment, not in a tight loop).
# Usage (root): OLD=/path/to/old/bin/dir bench/engine-ab.sh
#   env: NEW (default: this tree's release build), RUNS (60), GAP (0), PAIRS (1)
set -euo pipefail
cd "$(dirname "$0")/.."
: "${OLD:?set OLD to the bin directory of the build to compare with}"
NEW=${NEW:-$(scripts/build-release -q)}; RUNS=${RUNS:-60}; GAP=${GAP:-0}; PAIRS=${PAIRS:-1}
command -v hyperfine >/dev/null || { echo "apt-get install hyperfine" >&2; exit 1; }
image=$(mktemp /tmp/berth-ab-image.XXXXXX)
trap 'rm -f "$image"' EXIT
scripts/make-busybox-image "$image" busybox:latest >/dev/null

median_of() { # bin dir -> median ms
  local bin=$1 w
  w=$(mktemp -d /tmp/berth-ab.XXXXXX)
  mkdir -p "$w/run" && mount -t tmpfs tmpfs "$w/run"
  "$bin/berthd" --data-root "$w/data" --exec-root "$w/run/berth" -H "unix://$w/s.sock" >"$w/log" 2>&1 &
  local d=$!
  for _ in $(seq 200); do [ -S "$w/s.sock" ] && break; sleep 0.05; done
  BERTH_HOST="unix://$w/s.sock" "$bin/berth" load -i "$image" >/dev/null
  BERTH_HOST="unix://$w/s.sock" hyperfine -N -w 5 -r "$RUNS" --prepare "sleep $GAP" \
    --export-json "$w/hf.json" "$bin/berth run --rm --network none busybox true" >/dev/null 2>&1
  python3 -c "import json,statistics as s;print('%.1f' % (s.median(json.load(open('$w/hf.json'))['results'][0]['times'])*1000))"
  kill "$d"; wait "$d" 2>/dev/null || true
  grep " $w" /proc/mounts | awk '{print $2}' | sort -r | xargs -r -n1 umount -l
  rm -rf "$w"
}

for _ in $(seq "$PAIRS"); do
  echo "old $(median_of "$OLD") ms   new $(median_of "$NEW") ms   (median of $RUNS, gap ${GAP}s)"
done
