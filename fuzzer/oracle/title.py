"""Stable, readable names for a call: the part of a divergence title that says what ran.

Only the argument features that change semantics appear (mapping type and
flags, protection, mlock2 flags, touch mode), never addresses, lengths or
counters, so the same bug found from two programs gets the same title.
"""

from __future__ import annotations

from fuzzer.oracle.kind import DivergenceKind as K
from fuzzer.prog import Call
from fuzzer.prog.syscalls import (
    MADV_ADVICE,
    MAP_ANONYMOUS,
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
    MREMAP_FLAGS,
    PROT_EXEC,
    PROT_READ,
    PROT_WRITE,
    RWX,
    errno_name,
    is_errno,
)

# Divergences about the state a call leaves behind, rather than its result.
STATE_KINDS = frozenset({K.PRESENCE, K.LOCK, K.FORK_FLAGS, K.SEAL, K.RSS, K.LOCKED, K.VMLCK,
                         K.PROT})
# The mmap flags that decide the state a new mapping starts in; placement
# (FIXED, FIXED_NOREPLACE) and accounting-only flags would split one bug into
# many buckets. For the same reason state titles name a protection class
# (NONE, RO, RW), not every combination of R, W and X.
STATE_MAP_FLAGS = MAP_TYPE | MAP_ANONYMOUS | MAP_POPULATE | MAP_LOCKED | MAP_NONBLOCK | \
    MAP_GROWSDOWN | MAP_HUGETLB


def prot_short(prot: int) -> str:
    text = "".join(ch for ch, bit in (("R", PROT_READ), ("W", PROT_WRITE), ("X", PROT_EXEC))
                   if prot & bit)
    text = text or "NONE"
    return text + "+?" if prot & ~RWX else text


def prot_class(prot: int) -> str:
    """Protection as it shapes state: what a fault or populate can do (NONE, RO, RW)."""
    if not prot & RWX:
        return "NONE"
    return "RW" if prot & PROT_WRITE else "RO"


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


def call_feature(call: Call, kind: str = K.RESULT) -> str:
    """`name(features)`; for state divergences only the features that shape the state."""
    match call.name:
        case "mmap":
            flags, prot = call.arg("flags"), call.arg("prot")
            if kind in STATE_KINDS:
                return f"mmap({map_short(flags & STATE_MAP_FLAGS)}, {prot_class(prot)})"
            return f"mmap({map_short(flags)}, {prot_short(prot)})"
        case "mprotect":
            prot = call.arg("prot")
            return f"mprotect({prot_class(prot) if kind in STATE_KINDS else prot_short(prot)})"
        case "mlock2":
            flags = call.arg("flags")
            text = "ONFAULT" if flags == MLOCK_ONFAULT else "0" if flags == 0 else "INVALID"
            return f"mlock2({text})"
        case "touch":
            return f"touch({'write' if call.arg('mode') else 'read'})"
        case "mlockall":
            return f"mlockall({_flags_short(call.arg('flags'), MCL_FLAGS, 'MCL_')})"
        case "mremap":
            return f"mremap({_flags_short(call.arg('flags'), MREMAP_FLAGS, 'MREMAP_')})"
        case "madvise":
            advice = call.arg("advice")
            name = next((n[5:] for n, v in MADV_ADVICE.items() if v == advice), "UNKNOWN")
            return f"madvise({name})"
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
