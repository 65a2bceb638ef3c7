"""Stable, readable names for a call: the part of a divergence title that says what ran.

A title keys on the call, the argument features that matter for its kind of
divergence, and the symptom (docs/ARCHITECTURE.md, decision 7). Never in a
title: addresses, lengths, counters, and placement (MAP_FIXED,
MAP_FIXED_NOREPLACE, MREMAP_FIXED say where a mapping goes, not what it is),
so one bug found from many programs lands in one bucket. The protection and
the mapping kind enter only for the kinds they shape (`FEATURES`), and then
name the protection exactly (`R`, `X`, `W`, `RW`, `RWX`, `NONE`).
"""

from __future__ import annotations

from fuzzer.oracle.kind import DivergenceKind as K
from fuzzer.prog import Call
from fuzzer.prog.syscalls import (
    MADV_ADVICE,
    MAP_ANONYMOUS,
    MAP_FIXED,
    MAP_FIXED_NOREPLACE,
    MAP_FLAGS,
    MAP_GROWSDOWN,
    MAP_HUGETLB,
    MAP_LOCKED,
    MAP_NONBLOCK,
    MAP_POPULATE,
    MAP_TYPE,
    MAP_TYPES,
    MCL_FLAGS,
    MLOCK_ONFAULT,
    MREMAP_FIXED,
    MREMAP_FLAGS,
    PROT_EXEC,
    PROT_READ,
    PROT_WRITE,
    RWX,
    errno_name,
    is_errno,
)

# Where a mapping goes, never what it is: out of every title.
PLACEMENT_MAP_FLAGS = MAP_FIXED | MAP_FIXED_NOREPLACE
PLACEMENT_MREMAP_FLAGS = MREMAP_FIXED
# The mmap flags that decide the state a new mapping starts in; accounting-only
# flags (NORESERVE, STACK, ...) would split one state bug into many buckets.
STATE_MAP_FLAGS = MAP_TYPE | MAP_ANONYMOUS | MAP_POPULATE | MAP_LOCKED | MAP_NONBLOCK | \
    MAP_GROWSDOWN | MAP_HUGETLB
ALL_MAP_FLAGS = ~PLACEMENT_MAP_FLAGS

# Per kind: which mmap flags the title names, and whether it names the protection of
# mmap and mprotect. The protection enters where it decides the symptom: a call's
# result, a signal, the protection left behind, Rss, VMA boundaries (a protection
# change splits a VMA). Presence titles name the state the call should have left
# (anonymous, zero-page, ...), which is what the protection decides there. Lock state,
# seals, fork flags, accounting, mappings, hangs and crashes do not depend on it.
FEATURES: dict[K, tuple[int, bool]] = {
    K.RESULT: (ALL_MAP_FLAGS, True),
    K.SIGNAL: (ALL_MAP_FLAGS, True),
    K.MAPPING: (ALL_MAP_FLAGS, False),
    K.PROT: (STATE_MAP_FLAGS, True),
    K.LOCK: (STATE_MAP_FLAGS, False),
    K.SEAL: (STATE_MAP_FLAGS, False),
    K.FORK_FLAGS: (STATE_MAP_FLAGS, False),
    K.PRESENCE: (STATE_MAP_FLAGS, False),  # the expected state says what prot decides
    K.VMA: (STATE_MAP_FLAGS, True),
    K.RSS: (STATE_MAP_FLAGS, True),
    K.LOCKED: (STATE_MAP_FLAGS, False),
    K.VMLCK: (STATE_MAP_FLAGS, False),
    K.MLOCKED: (STATE_MAP_FLAGS, False),
    K.HANG: (ALL_MAP_FLAGS, False),
    K.CRASH: (ALL_MAP_FLAGS, False),
    K.KERNEL_CRASH: (ALL_MAP_FLAGS, False),
}


def prot_short(prot: int) -> str:
    """The protection named exactly: R, W, X and their combinations, NONE; +? for others."""
    text = "".join(ch for ch, bit in (("R", PROT_READ), ("W", PROT_WRITE), ("X", PROT_EXEC))
                   if prot & bit)
    text = text or "NONE"
    return text + "+?" if prot & ~RWX else text


def map_short(flags: int) -> str:
    parts = [name[4:] for name, bit in MAP_TYPES.items() if flags & MAP_TYPE == bit]
    if not parts:
        parts.append(f"TYPE{flags & MAP_TYPE}")
    rest = flags & ~MAP_TYPE
    for name, bit in MAP_FLAGS.items():
        if rest & bit:
            parts.append(name[4:])
            rest &= ~bit
    if rest:
        parts.append("?")
    return "|".join(parts)


def _flags_short(value: int, table: dict[str, int], prefix: str) -> str:
    parts = [name.removeprefix(prefix) for name, bit in table.items() if value & bit]
    if value & ~sum(table.values()):
        parts.append("?")
    return "|".join(parts) or "0"


def call_feature(call: Call, kind: K = K.RESULT) -> str:
    """`name(features)`: the call with the features that matter for `kind` (FEATURES)."""
    map_flags, with_prot = FEATURES[kind]
    match call.name:
        case "mmap":
            prot = f", {prot_short(call.arg('prot'))}" if with_prot else ""
            return f"mmap({map_short(call.arg('flags') & map_flags)}{prot})"
        case "mprotect":
            return f"mprotect({prot_short(call.arg('prot'))})" if with_prot else "mprotect"
        case "mlock2":
            flags = call.arg("flags")
            text = "ONFAULT" if flags == MLOCK_ONFAULT else "0" if flags == 0 else "INVALID"
            return f"mlock2({text})"
        case "touch":
            return f"touch({'write' if call.arg('mode') else 'read'})"
        case "mlockall":
            return f"mlockall({_flags_short(call.arg('flags'), MCL_FLAGS, 'MCL_')})"
        case "mremap":
            moves = call.arg("flags") & ~PLACEMENT_MREMAP_FLAGS
            return f"mremap({_flags_short(moves, MREMAP_FLAGS, 'MREMAP_')})"
        case "madvise":
            advice = call.arg("advice")
            name = next((n[5:] for n, v in MADV_ADVICE.items() if v == advice), "UNKNOWN")
            return f"madvise({name})"
        case "process_madvise":  # the advice, and whether the caller advised itself
            advice = call.arg("advice")
            name = next((n[5:] for n, v in MADV_ADVICE.items() if v == advice), "UNKNOWN")
            who = "self" if call.arg("target") == call.proc else "other"
            return f"process_madvise({name}, {who})"
        case name:
            return name


def result_text(call: Call, ret: int | None, arena_offset: int | None = None) -> str:
    """A result as a title may show it: errno names, '0', or 'an address'."""
    if ret is None:
        return "nothing"
    if is_errno(ret):
        return "-" + errno_name(-ret)
    if call.name == "fork":
        return "a child pid"  # never the number itself: titles must be stable
    if call.syscall.returns_address:
        return "an address" if arena_offset is None else "an arena address"
    return str(ret)


__all__ = ["call_feature", "map_short", "prot_short", "result_text"]
