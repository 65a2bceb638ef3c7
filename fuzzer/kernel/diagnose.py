"""Why a User-Mode Linux guest did not boot, from its console: one line naming the cause
and the fix.

`diagnose` is a pure function of the console text (and of facts about the host
the caller measured: the size of its XSAVE area, a source to build from); it
knows the common ways a UML binary fails before the guest says it is ready.
Anything it does not recognise is left to the caller (the console's last line).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

UML_XSTATE = 2696  # the XSAVE area size UML trees without the fix assume (HOST_FP_SIZE)


@dataclass(frozen=True)
class Host:
    xstate: int | None = None  # bytes of the host's XSAVE area (NT_X86_XSTATE), if measured
    source: str = "/usr/src/linux-source-6.1.tar.xz"  # what to suggest building from


def _fp(console: str, host: Host) -> str:
    size = (f"this CPU's XSAVE area is {host.xstate} bytes, the build assumes {UML_XSTATE}"
            if host.xstate else f"the build assumes an XSAVE area of {UML_XSTATE} bytes")
    return (f"this UML build cannot save FP registers on this CPU ({size}): "
            f"build one with mmfuzz kernels build {host.source}")


def _too_big(console: str, host: Host) -> str:
    m = re.search(r"XSTATE takes (\d+) bytes, more than the (\d+)", console)
    have, room = (m.group(1), m.group(2)) if m else ("?", "?")
    return (f"this CPU's XSAVE area ({have} bytes) is larger than the {room} the UML build "
            "holds: raise HOST_FP_SIZE in arch/x86/um/user-offsets.c and rebuild")


OOM = "the guest ran out of memory at boot: give it more with --guest-mem"
STARVED_KB = 16 * 1024  # a kernel left less free memory than this cannot start its init


def _starved(console: str) -> str | None:
    m = re.search(r"Memory: (\d+)K/\d+K available", console)
    return OOM if m and int(m.group(1)) < STARVED_KB else None


# (pattern, cause) in order: the first that matches the console names the cause.
_CAUSES: list[tuple[re.Pattern[str], object]] = [
    (re.compile(r"ptrace set fp regs failed|(get|put)_fp_registers\s+failed"), _fp),
    (re.compile(r"XSTATE takes \d+ bytes, more than the"), _too_big),
    (re.compile(r"must be not mounted noexec|Checking PROT_EXEC mmap in .*(Operation not "
                r"permitted|failed)"),
     "UML cannot map executable memory in its temporary directory (a noexec TMPDIR?): "
     "let it use one mounted exec"),
    (re.compile(r"check_ptrace|(start|stop)_ptraced_child"),
     "the host does not let UML use ptrace here (a container or seccomp policy?): "
     "allow ptrace (e.g. podman/docker --cap-add SYS_PTRACE "
     "--security-opt seccomp=unconfined) or boot it outside"),
    (re.compile(r"Out of memory|Cannot allocate memory|Failed to allocate \d+ bytes|"
                r"physmem.*fail", re.I),
     OOM),
    # Too little memory also shows as a failure somewhere else first (a WARN of a self-test
    # thread that could not start, with panic_on_warn set): the memory map says it.
    (re.compile(r"Memory: (\d+)K/\d+K available"), lambda console, host: _starved(console)),
    (re.compile(r"VFS: Unable to mount root fs|Cannot open root device|"
                r"unknown-block.*hostfs|hostfs.*not.*supported", re.I),
     "the kernel cannot mount the host's root over hostfs: it needs CONFIG_HOSTFS=y "
     "(mmfuzz kernels build sets it)"),
    (re.compile(r"No working init found|Requested init \S+ failed|"
                r"Failed to execute \S+ \(error"),
     "the guest could not start its init (fuzzer/kernel/init.sh) over hostfs: the project "
     "must be readable at the same path by the guest (no noexec mount, no private /tmp)"),
    (re.compile(r"Attempted to kill init!"),
     "the guest's init died at boot (see the lines before it on the console)"),
    (re.compile(r"Kernel panic - not syncing: (.*)"), "the guest kernel panicked at boot: {0}"),
]


def diagnose(console: str, host: Host = Host()) -> str | None:
    """The cause of a failed boot and its fix, one line; None if nothing here explains it."""
    for pattern, cause in _CAUSES:
        m = pattern.search(console)
        if m is None:
            continue
        if callable(cause):
            said = cause(console, host)
            if said is None:  # it looked, and it is not this
                continue
            return str(said)
        text = str(cause)
        return text.format(m.group(1).strip()[:160]) if "{0}" in text else text
    return None
