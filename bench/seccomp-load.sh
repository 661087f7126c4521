#!/usr/bin/env bash
# What loading Docker's default seccomp profile into the kernel costs: the median time of
# seccomp(SECCOMP_SET_MODE_FILTER) over RUNS forked children, for libseccomp's program and for the
# compacted one berth loads (crates/runtime/src/security/seccomp/compact.rs). No root needed
# (the children set no_new_privs). The kernel does the work, so a debug build measures the same.
# Usage: bench/seccomp-load.sh    env: RUNS (50)
set -euo pipefail
cd "$(dirname "$0")/.."
export RUNS=${RUNS:-50}
cargo test --locked -q -p berth-runtime --lib seccomp_load_time -- --ignored --nocapture 2>&1 |
  sed -n '/^seccomp(SET_MODE_FILTER)/,/faster/p'
echo "kernel $(uname -r), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
