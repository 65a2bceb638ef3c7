#!/bin/sh
# PID 1 of an mmfuzz guest (fuzzer/kernel/uml.py boots it with init=this file).
#
# The root file system is the host's, over hostfs, read-only: until /proc is
# mounted here, /proc is the host's directory, so it is mounted before anything
# can read it. Scratch space is a tmpfs (on /run, or wherever the project is not). The guest writes results only to the
# channel (/dev/ttyS0); its exit status goes there too, then the guest halts.
# mmfuzz_root, mmfuzz_python and, to run a script of the project's instead of the
# guest's server, mmfuzz_script come from the kernel command line.
PATH=/usr/sbin:/usr/bin:/sbin:/bin
export PATH
mount -t proc proc /proc || echo "mmfuzz-init: cannot mount /proc" >/dev/console
mount -t sysfs sysfs /sys
# The scratch tmpfs must not hide the project (a checkout under /tmp, say).
for scratch in /run /mnt /tmp; do
  case "$mmfuzz_root/" in "$scratch"/*) continue ;; esac
  break
done
mount -t tmpfs -o size=64m,mode=1777 tmpfs "$scratch"
grep -q " /dev devtmpfs " /proc/mounts || mount -t devtmpfs devtmpfs /dev
# tmpfile's files: the ext4 disk the host made (ubd0; not with MMFUZZ_GUEST_FILES=0),
# with a readahead the model follows (fuzzer/observe/probe.py files_problem).
if [ -b /dev/ubda ] && mkdir -p "$scratch/files" &&
    mount -t ext4 /dev/ubda "$scratch/files" &&
    echo 8192 >/sys/block/ubda/queue/read_ahead_kb; then
  export MMFUZZ_FILES="$scratch/files"
fi
export HOME="$scratch" TMPDIR="$scratch" PYTHONDONTWRITEBYTECODE=1
if [ -n "$mmfuzz_script" ]; then
  cd "$mmfuzz_root" && "$mmfuzz_python" "$mmfuzz_script" guest
else
  cd "$mmfuzz_root" && "$mmfuzz_python" -m fuzzer.campaign.guest
fi
status=$?
echo "{\"exit\": $status}" >/dev/ttyS0
sync
poweroff -f 2>/dev/null
echo o >/proc/sysrq-trigger
