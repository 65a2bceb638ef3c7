#!/bin/sh
# PID 1 of a guest that captures /proc fixtures (tests/golden/capture_proc.py uml):
# fuzzer/kernel/init.sh's setup, then the capture script instead of the guest server.
PATH=/usr/sbin:/usr/bin:/sbin:/bin
export PATH
mount -t proc proc /proc || echo "capture-init: cannot mount /proc" >/dev/console
mount -t sysfs sysfs /sys
for scratch in /run /mnt /tmp; do
  case "$mmfuzz_root/" in "$scratch"/*) continue ;; esac
  break
done
mount -t tmpfs -o size=64m,mode=1777 tmpfs "$scratch"
grep -q " /dev devtmpfs " /proc/mounts || mount -t devtmpfs devtmpfs /dev
export HOME="$scratch" TMPDIR="$scratch" PYTHONDONTWRITEBYTECODE=1
cd "$mmfuzz_root" && "$mmfuzz_python" tests/golden/capture_proc.py guest
echo "{\"exit\": $?}" >/dev/ttyS0
sync
poweroff -f 2>/dev/null
echo o >/proc/sysrq-trigger
