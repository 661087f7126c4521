#!/usr/bin/env bash
# Builds the pull benchmark's image once, as an OCI layout, and caches it:
#   layer 1  Debian bookworm, `debootstrap --variant=minbase` from this machine's apt mirror
#   layer 2  what `apt-get install python3` adds in a chroot of layer 1
#   layer 3  128 MB of random data (8 files of 16 MiB: incompressible)
#   layer 4  5,000 small files (1–8 KiB) in 50 directories
# Layers are diffed and gzipped by umoci (go-mtree), as an image builder would.
# Usage (root): bench/pull-image.sh [CACHE_DIR]   (default /var/tmp/berth-bench)
# Prints the OCI layout path ("oci:<dir>:bench" for skopeo). Re-runs reuse the cache.
set -euo pipefail
cache=${1:-${BERTH_BENCH_CACHE:-/var/tmp/berth-bench}}
layout=$cache/oci
if [ -f "$layout/.complete" ]; then
  echo "$layout"
  exit 0
fi
for t in debootstrap umoci chroot; do
  command -v "$t" >/dev/null || { echo "missing $t (apt-get install debootstrap umoci)" >&2; exit 1; }
done
# The first Debian archive configured for apt (deb822 .sources or one-line sources.list).
mirror=$(grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' | grep -v security | head -1)
[ -n "$mirror" ] || mirror=$(grep -hs '^deb ' /etc/apt/sources.list | awk '{print $2}' | grep -v security | head -1)
[ -n "$mirror" ] || { echo "no apt mirror found in /etc/apt/sources.list*" >&2; exit 1; }

mkdir -p "$cache"
work=$(mktemp -d "$cache/build.XXXXXX")
rootfs=$work/bundle/rootfs
mounted=()
cleanup() {
  for m in "${mounted[@]}"; do umount -l "$m" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

echo "debootstrap --variant=minbase bookworm from $mirror (a few minutes, once)" >&2
debootstrap --variant=minbase bookworm "$work/minbase" "$mirror" >"$work/debootstrap.log" 2>&1 || {
  tail -20 "$work/debootstrap.log" >&2; exit 1; }

rm -rf "$layout"
umoci init --layout "$layout"
umoci new --image "$layout:bench"
umoci config --image "$layout:bench" --os linux --architecture amd64 \
  --config.cmd /bin/bash --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
umoci unpack --image "$layout:bench" "$work/bundle" >/dev/null
repack() {
  umoci repack --refresh-bundle --history.created_by "$1" --image "$layout:bench" "$work/bundle"
}

# 1: minbase
cp -a "$work/minbase/." "$rootfs/"
repack "debootstrap --variant=minbase bookworm"

# 2: python3, installed in a chroot (proc and dev for maintainer scripts; resolv.conf for apt)
mount -t proc proc "$rootfs/proc"; mounted+=("$rootfs/proc")
mount --rbind /dev "$rootfs/dev"; mounted+=("$rootfs/dev")
cp /etc/resolv.conf "$rootfs/etc/resolv.conf"
chroot "$rootfs" /usr/bin/env DEBIAN_FRONTEND=noninteractive apt-get update -q >"$work/apt.log" 2>&1
chroot "$rootfs" /usr/bin/env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y -q --no-install-recommends python3 >>"$work/apt.log" 2>&1 || {
  tail -20 "$work/apt.log" >&2; exit 1; }
chroot "$rootfs" apt-get clean
umount -l "$rootfs/dev"; umount "$rootfs/proc"; mounted=()
repack "apt-get install python3"

# 3: 128 MB of random blobs
mkdir -p "$rootfs/blobs"
for i in $(seq 0 7); do head -c 16M /dev/urandom >"$rootfs/blobs/random-$i.bin"; done
repack "128 MB of random blobs"

# 4: 5,000 small files
for d in $(seq 0 49); do mkdir -p "$rootfs/small/$d"; done
for i in $(seq 0 4999); do
  head -c $((1024 + (i * 7919) % 7168)) /dev/urandom | base64 -w 76 >"$rootfs/small/$((i % 50))/file-$i.txt"
done
repack "5,000 small files"

umoci gc --layout "$layout"
touch "$layout/.complete"
echo "$layout"
