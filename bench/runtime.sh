#!/usr/bin/env bash
# berth-runtime vs runc: wall time of `run` on a busybox bundle running `true`, with and without a
# network namespace (4 commands, one hyperfine run), then each command's peak RSS.
#
# Needs root, hyperfine, runc, busybox-static, jq and GNU time:
#   apt-get install hyperfine runc busybox-static jq time
# Usage: sudo bench/runtime.sh            (builds target/release/berth-runtime if missing)
#   BERTH_RUNTIME=/path/to/berth-runtime  use that binary instead
#   RUNS=200 WARMUP=20 RSS_RUNS=20        change the sample sizes
# Results: bench/results/runtime-<UTC timestamp>.{md,json} and a summary on stdout.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$here")"
runs="${RUNS:-100}"
warmup="${WARMUP:-10}"
rss_runs="${RSS_RUNS:-10}"

die() { echo "runtime.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "needs root (containers are created)"
for tool in hyperfine runc jq /usr/bin/time /bin/busybox; do
    command -v "$tool" >/dev/null || die "$tool missing: apt-get install hyperfine runc jq time busybox-static"
done

berth="${BERTH_RUNTIME:-$repo/target/release/berth-runtime}"
if [ -z "${BERTH_RUNTIME:-}" ] && [ ! -x "$berth" ]; then
    # Only the one binary, not the workspace.
    (cd "$repo" && cargo build --release -p berth-runtime --bin berth-runtime)
fi
[ -x "$berth" ] || die "no berth-runtime binary at $berth"
runc="$(command -v runc)"

work="$(mktemp -d /tmp/berth-bench-runtime.XXXXXX)"
cleanup() {
    for id in berth-net berth-nonet runc-net runc-nonet; do
        "$berth" --root "$work/root-berth" delete --force "bench-$id" >/dev/null 2>&1 || true
        "$runc" --root "$work/root-runc" delete --force "bench-$id" >/dev/null 2>&1 || true
    done
    rm -rf "$work"
}
trap cleanup EXIT

# One busybox rootfs shared by both bundles; the bundles differ only in the network namespace.
rootfs="$work/rootfs"
mkdir -p "$rootfs/bin" "$rootfs/proc" "$rootfs/sys" "$rootfs/dev" "$rootfs/tmp" "$rootfs/etc"
cp /bin/busybox "$rootfs/bin/busybox"
for applet in sh true; do ln -s busybox "$rootfs/bin/$applet"; done

make_bundle() { # dir, keep-network(yes|no)
    local dir="$1" net="$2"
    mkdir -p "$dir"
    (cd "$dir" && "$runc" spec)
    local filter=".process.terminal = false | .process.args = [\"true\"] | .root.path = \"$rootfs\""
    if [ "$net" = no ]; then
        filter="$filter | .linux.namespaces |= map(select(.type != \"network\"))"
    fi
    jq "$filter" "$dir/config.json" >"$dir/config.json.new"
    mv "$dir/config.json.new" "$dir/config.json"
}
make_bundle "$work/bundle-net" yes
make_bundle "$work/bundle-nonet" no

# name → command; `run` deletes the container when `true` exits, so ids are reused run after run.
names=(berth-net runc-net berth-nonet runc-nonet)
declare -A cmds=(
    [berth-net]="$berth --root $work/root-berth run --bundle $work/bundle-net bench-berth-net"
    [runc-net]="$runc --root $work/root-runc run --bundle $work/bundle-net bench-runc-net"
    [berth-nonet]="$berth --root $work/root-berth run --bundle $work/bundle-nonet bench-berth-nonet"
    [runc-nonet]="$runc --root $work/root-runc run --bundle $work/bundle-nonet bench-runc-nonet"
)

# Each command must work before it is timed: hyperfine would otherwise time failures.
for n in "${names[@]}"; do
    ${cmds[$n]} || die "'$n' failed: ${cmds[$n]}"
done

mkdir -p "$here/results"
stamp="$(date -u +%Y%m%dT%H%M%SZ)"
md="$here/results/runtime-$stamp.md"
json="$here/results/runtime-$stamp.json"
hyperfine_args=(--warmup "$warmup" --runs "$runs" --export-markdown "$md" --export-json "$json")
for n in "${names[@]}"; do
    hyperfine_args+=(--command-name "$n" "${cmds[$n]}")
done
hyperfine "${hyperfine_args[@]}"

# Peak RSS (KiB) of each command: GNU time's %M is the largest RSS among the processes it waited
# for (runtime parent and its init child). Median of $rss_runs runs.
declare -A rss
for n in "${names[@]}"; do
    samples=()
    for _ in $(seq "$rss_runs"); do
        /usr/bin/time -f %M -o "$work/rss" ${cmds[$n]} >/dev/null 2>&1
        samples+=("$(tail -n1 "$work/rss")")
    done
    rss[$n]="$(printf '%s\n' "${samples[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')"
done

# field of hyperfine's JSON for a command: mean, median, min, user, system.
stat() { jq -r --arg n "$1" --arg f "$2" '.results[] | select(.command == $n) | .[$f]' "$json"; }
cpu() { awk -v u="$(stat "$1" user)" -v s="$(stat "$1" system)" 'BEGIN { print u + s }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

{
    echo
    echo "## Peak RSS (median of $rss_runs runs, KiB)"
    echo
    echo "| Command | Peak RSS (KiB) |"
    echo "|:---|---:|"
    for n in "${names[@]}"; do echo "| \`$n\` | ${rss[$n]} |"; done
    echo
    echo "## berth-runtime / runc"
    echo
    echo "| | mean time | median time | min time | CPU (user+sys) | peak RSS |"
    echo "|:---|---:|---:|---:|---:|---:|"
    for net in net nonet; do
        b="berth-$net" r="runc-$net"
        echo "| $net | $(ratio "$(stat $b mean)" "$(stat $r mean)") |" \
            "$(ratio "$(stat $b median)" "$(stat $r median)") |" \
            "$(ratio "$(stat $b min)" "$(stat $r min)") |" \
            "$(ratio "$(cpu $b)" "$(cpu $r)") | $(ratio "${rss[$b]}" "${rss[$r]}") |"
    done
    echo
    echo "Ratios below 1 mean berth-runtime is faster or smaller. On a shared machine the CPU and"
    echo "min columns are steadier than the mean."
    echo
    echo "berth-runtime: $berth ($("$berth" --version 2>/dev/null | head -n1 || echo unknown version))"
    echo "runc: $runc ($("$runc" --version | head -n1))"
    echo "kernel: $(uname -r); CPUs: $(nproc); runs: $runs, warmup: $warmup; $(date -u +%FT%TZ)"
} | tee -a "$md"
echo
echo "results: $md"
