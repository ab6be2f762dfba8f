#!/usr/bin/env bash
# Boots Debian's 6.1 LTS kernel under QEMU and runs a script inside it.
#
# Our development kernel lacks kprobes and fentry; users' kernels have them.
# This boots the kernel Debian ships for cloud machines (unpacked, never
# installed on the host) with an initramfs that holds busybox, the script and
# the given files (each at the same path, with every library `ldd` lists
# and the separate debug files the host has for them),
# mounts proc, sysfs, devtmpfs, tracefs and bpffs, runs the script as root, and exits
# with the script's status. The guest's console goes to stdout.
#
# usage: boot.sh SCRIPT [FILE...]
#   SCORCH_GUEST_CACHE  where the kernel is kept between runs
#                       (default /var/cache/scorch-guest)
#   SCORCH_GUEST_TIMEOUT  seconds before the guest is killed (default 300)
#
# `boot.sh --fetch` only downloads and unpacks the kernel.
set -euo pipefail

cache=${SCORCH_GUEST_CACHE:-/var/cache/scorch-guest}

fetch_kernel() {
  mkdir -p "$cache"
  # One download even when several tests boot guests at once (the lock
  # goes with the process).
  exec 9>"$cache/.lock"
  flock 9
  local kernel
  kernel=$(find "$cache/root/boot" -name 'vmlinuz-*' 2>/dev/null | head -n 1 || true)
  if [ -n "$kernel" ]; then
    echo "$kernel"
    return
  fi
  # The cloud kernel boots fastest under emulation; the meta package names
  # the current 6.1 build.
  local package
  package=$(apt-cache depends linux-image-cloud-amd64 |
    awk '/Depends: linux-image-6\.1/ { print $2; exit }')
  [ -n "$package" ] || {
    echo "boot.sh: apt knows no 6.1 cloud kernel (linux-image-cloud-amd64): run apt-get update" >&2
    exit 2
  }
  (cd "$cache" && apt-get download "$package" >&2)
  rm -rf "$cache/root.part"
  dpkg-deb -x "$cache/$package"_*.deb "$cache/root.part"
  rm -rf "$cache/root"
  mv "$cache/root.part" "$cache/root"
  find "$cache/root/boot" -name 'vmlinuz-*' | head -n 1
}

if [ "${1:-}" = "--fetch" ]; then
  fetch_kernel
  exit 0
fi
[ $# -ge 1 ] || { echo "usage: boot.sh SCRIPT [FILE...]" >&2; exit 2; }
script=$1
shift
for tool in qemu-system-x86_64 busybox cpio; do
  command -v "$tool" >/dev/null || {
    echo "boot.sh: $tool is missing: apt-get install qemu-system-x86 busybox-static cpio" >&2
    exit 2
  }
done
kernel=$(fetch_kernel)

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,dev,proc,sys,tmp}
cp "$(command -v busybox)" "$root/bin/busybox"
mknod "$root/dev/console" c 5 1

copy() { mkdir -p "$root$(dirname "$1")" && cp -L "$1" "$root$1"; }
# An ELF file's separate debug file by build-id (Debian's -dbg packages, e.g.
# libc6-dbg, whose symbol tables name libc's local functions), if the host
# has one: the guest's scorch then names what the host's does.
copy_debug_file() {
  command -v readelf >/dev/null || return 0
  local id debug
  id=$(readelf -n "$1" 2>/dev/null | awk '/Build ID:/ { print $3; exit }' || true)
  [ -n "$id" ] || return 0
  debug=/usr/lib/debug/.build-id/${id:0:2}/${id:2}.debug
  if [ -e "$debug" ] && [ ! -e "$root$debug" ]; then copy "$debug"; fi
}
for file in "$@"; do
  copy "$(realpath "$file")"
  copy_debug_file "$file"
  # Libraries as `ldd` lists them: `name => /path (addr)` or `/path (addr)`;
  # none for a script or a data file.
  { ldd "$file" 2>/dev/null || true; } | { grep -o '/[^ ]*' || true; } | while read -r lib; do
    [ -e "$root$lib" ] || { copy "$lib" && copy_debug_file "$lib"; }
  done
done
cp "$script" "$root/test.sh"

cat > "$root/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t tracefs tracefs /sys/kernel/tracing
mount -t bpf bpf /sys/fs/bpf
mount -t devtmpfs devtmpfs /dev
cd /tmp
# The boot's last escape codes end with no newline: end that line here, so
# the script's first line starts one of its own.
echo
sh /test.sh
echo "GUEST_RC=$?"
poweroff -f
INIT
chmod +x "$root/init"
(cd "$root" && find . | cpio -o -H newc 2>/dev/null | gzip -1) > "$root.initrd"
trap 'rm -rf "$root" "$root.initrd"' EXIT

log=$(mktemp)
trap 'rm -rf "$root" "$root.initrd" "$log"' EXIT
# KVM is not available on our machines: emulate (about 4 s a boot). One
# guest at a time: emulation wants both cores, and tests boot in parallel.
exec 8>"$cache/.boot-lock"
flock 8
timeout "${SCORCH_GUEST_TIMEOUT:-300}" qemu-system-x86_64 -accel tcg -smp 2 -m 512M \
  -nographic -no-reboot -kernel "$kernel" -initrd "$root.initrd" \
  -append "console=ttyS0 quiet panic=-1" | tee "$log" || true
status=$(grep -ao 'GUEST_RC=[0-9]*' "$log" | tail -n 1 | cut -d= -f2)
[ -n "$status" ] || { echo "boot.sh: the guest did not finish the script" >&2; exit 3; }
exit "$status"
