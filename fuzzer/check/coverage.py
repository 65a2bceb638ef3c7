"""Semantic coverage: the features a checked program reaches (pure: no I/O).

A campaign's feedback should count what the kernel was asked to do, not which
lines of the model ran: line coverage of the model drifts to its cheapest
error paths. A step's *event* is its call with a small flag class, its outcome
(ok, an errno name, a signal) and the state of the call's range before the
call, as the model sees it:

    mlock2(ONFAULT) ok on present
    mremap(MAYMOVE,grow) -EFAULT on onfault+child

The range state is one of absent, partial (some pages mapped), present,
shared (with another process), locked, onfault (the first that applies, from
the end of that list), or `none` (the call's range is empty or wraps, or the
call does not act on the arena: memfd_create, tmpfile, ftruncate, close, the privilege
calls). The youngest mm code has words of its own after it, in this order:
` folio` where the range holds a page of a large folio (an mTHP, docs/SEMANTICS.md
§19), ` pmd` where it meets a 2 MiB region a PMD maps (a huge page or the huge zero
page: the huge arena's, §22), ` guard` a guard marker (§15), ` sealed` a sealed VMA
(§14), ` droppable` a MAP_DROPPABLE one (§17): `locked folio`, `partial guard sealed`.
What a call does to part of a large folio, over a guard marker or to a sealed range is
code apart,
and without the word a program that reaches it would look like any other, so the
search would not keep it. The words stay in pairs. Then `+child` for a call of a
forked process, `+nocap` once
CAP_IPC_LOCK is dropped and `+rlimit` under an RLIMIT_MEMLOCK lower than the
arena. mlockall, munlockall, fork and exit see the whole arena; a touch its
page. A failure keeps those modifiers only when the lock limits can cause it
(EPERM, EAGAIN, ENOMEM): an EINVAL in a child is the EINVAL of the parent, and
counting it twice would pull the search towards argument errors.

A program's features are its events, a `CALL maps FOLIO` for each step that mapped a
large folio, a PMD or the huge zero page (`mapped`), and a pair for every successful event
whose range overlaps the range of the latest earlier successful event of the
same process: "A > B", both without the modifiers. About 180 call classes
times a dozen outcomes and 48 states, each with 16 combinations of words, bound the
single events; the ones a
campaign reaches, and the pairs among them, are a few thousand.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from fuzzer.model.pmd import HUGE, HUGE_ZERO
from fuzzer.model.state import GUARD, LARGE, SHARED_ANON, Page, State
from fuzzer.model.world import World
from fuzzer.oracle import signal_text
from fuzzer.prog.arena import PMD_PAGES
from fuzzer.prog.program import ARENA_PAGES, ARENA_SIZE, WRAP_MIN, Call
from fuzzer.prog.syscalls import (
    MADV_ADVICE,
    MAP_ANONYMOUS,
    MAP_LOCKED,
    MAP_POPULATE,
    MAP_PRIVATE,
    MAP_SHARED,
    MAP_SHARED_VALIDATE,
    MAP_TYPE,
    MCL_FLAGS,
    MLOCK_ONFAULT,
    MREMAP_DONTUNMAP,
    MREMAP_FIXED,
    MREMAP_MAYMOVE,
    PAGE,
    PROT_WRITE,
    RWX,
    errno_name,
    is_errno,
)

OK = "ok"
PAIR = " > "  # between the two events of a pair feature
# The words of the youngest code (module docstring), in the order they are written
FOLIO, GUARD_WORD, SEALED, DROPPABLE = " folio", " guard", " sealed", " droppable"
PMD_WORD = " pmd"
OFF_ARENA = frozenset({"memfd_create", "tmpfile", "ftruncate", "close", "prlimit_memlock",
                       "drop_cap_ipc_lock"})  # no range state, no pairs
LIMIT_ERRORS = frozenset({"EPERM", "EAGAIN", "ENOMEM"})  # failures that keep the modifiers
_ADVICE = {v: name[5:] for name, v in MADV_ADVICE.items()}
_MAP_TYPE = {MAP_PRIVATE: "P", MAP_SHARED: "S", MAP_SHARED_VALIDATE: "SV"}
_MREMAP = {0: "0", MREMAP_MAYMOVE: "MAYMOVE", MREMAP_MAYMOVE | MREMAP_FIXED: "FIXED",
           MREMAP_MAYMOVE | MREMAP_DONTUNMAP: "DONTUNMAP",
           MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP: "FIXED|DONTUNMAP"}


@dataclass(frozen=True, slots=True)
class Event:
    """One checked step as coverage sees it."""

    call: Call
    outcome: str  # outcome(): ok, an errno name, a signal
    before: str  # range_state() of the call, before it ran

    def text(self, modifiers: bool = True) -> str:
        keep = modifiers and (self.outcome == OK or self.outcome in LIMIT_ERRORS)
        before = self.before if keep else self.before.split("+")[0]
        return f"{call_class(self.call)} {self.outcome} on {before}"


def outcome(ret: int | None, signal: tuple[int, int] | None) -> str:
    """A step's result as counted: ok, an errno name (EINVAL) or a signal (SIGSEGV/ACCERR)."""
    if signal is not None:
        return signal_text(signal)
    if ret is not None and is_errno(ret):
        return errno_name(-ret)
    return OK


def call_class(call: Call) -> str:
    """The call with the few argument classes that change what it does (never an
    address or a length, but whether mremap grows or shrinks)."""
    match call.name:
        case "mmap":
            flags = call.arg("flags")
            parts = [_MAP_TYPE.get(flags & MAP_TYPE, "T?"),
                     "ANON" if flags & MAP_ANONYMOUS else "FD"]
            parts += [name for name, bit in (("LOCKED", MAP_LOCKED), ("POPULATE", MAP_POPULATE))
                      if flags & bit]
            return f"mmap({'|'.join(parts)},{_prot(call.arg('prot'))})"
        case "mprotect":
            return f"mprotect({_prot(call.arg('prot'))})"
        case "mlock2":
            flags = call.arg("flags")
            return f"mlock2({'0' if flags == 0 else 'ONFAULT' if flags == MLOCK_ONFAULT else '?'})"
        case "mlockall":
            flags = call.arg("flags")
            names = [name[4:] for name, bit in MCL_FLAGS.items() if flags & bit]
            rest = flags & ~sum(MCL_FLAGS.values())
            return f"mlockall({'|'.join(names + (['?'] if rest else [])) or '0'})"
        case "mremap":
            old, new = call.arg("old_len"), call.arg("new_len")
            size = "same" if old == new else "grow" if new > old else "shrink"
            return f"mremap({_MREMAP.get(call.arg('flags'), '?')},{size})"
        case "madvise":
            return f"madvise({_ADVICE.get(call.arg('advice'), '?')})"
        case "touch":
            return f"touch({'write' if call.arg('mode') else 'read'})"
        case name:
            return name


def _prot(prot: int) -> str:
    if not prot & RWX:
        return "NONE"
    return "RW" if prot & PROT_WRITE else "RO"


def call_pages(call: Call) -> range:
    """The arena pages a call's range covers (its first range: mremap's old one); a
    rangeless call covers the arena, a touch its page; empty if the range wraps or
    the call does not act on the arena."""
    ranges = call.syscall.ranges
    if call.name in OFF_ARENA:
        return range(0)
    if call.name == "touch":
        first = call.args[0] // PAGE
        return range(first, first + 1)
    if not ranges:
        return range(ARENA_PAGES)
    addr, length = call.args[ranges[0][0]], call.args[ranges[0][1]]
    if length >= WRAP_MIN or addr >= ARENA_SIZE:
        return range(0)
    return range(addr // PAGE, min(ARENA_PAGES, -(-(addr + length) // PAGE)))


def range_state(world: World, call: Call) -> str:
    """The state of the call's range before the call (see the module docstring)."""
    state = world.procs[call.proc] if call.proc < len(world.procs) else None
    if state is None:
        return "gone"
    return _primary(world, state, call_pages(call)) + _modifiers(call, state)


def _primary(world: World, state: State, pages: range) -> str:
    if not pages:
        return "none"
    mapped = [p for p in (state.pages[i] for i in pages) if p is not None]
    if not mapped:
        return "absent"
    young = _young(mapped)
    if state.pmds and _meets_pmd(state, pages):
        young = young.replace(FOLIO, FOLIO + PMD_WORD) if FOLIO in young else PMD_WORD + young
    if any(p.attrs.lf for p in mapped):
        return "onfault" + young
    if any(p.attrs.lo for p in mapped):
        return "locked" + young
    others = len(world.live()) > 1
    if others and any(p.state.startswith(SHARED_ANON) or p.attrs.shared for p in mapped):
        return "shared" + young
    return ("present" if len(mapped) == len(pages) else "partial") + young


def _young(mapped: list[Page]) -> str:
    """The words of the youngest code for the mapped pages of a range (module docstring)."""
    words = ""
    if any(p.state.endswith(LARGE) for p in mapped):
        words += FOLIO
    if any(p.state == GUARD for p in mapped):
        words += GUARD_WORD
    if any(p.attrs.sl for p in mapped):
        words += SEALED
    if any(p.attrs.dp for p in mapped):
        words += DROPPABLE
    return words


def _meets_pmd(state: State, pages: range) -> bool:
    """Whether `pages` meet a region a PMD maps (huge page or huge zero page, §22)."""
    return any(kind in (HUGE, HUGE_ZERO) and pages.start < (r + 1) * PMD_PAGES and
               r * PMD_PAGES < pages.stop for r, kind in enumerate(state.pmds))


def _modifiers(call: Call, state: State) -> str:
    text = "+child" if call.proc else ""
    if not state.cap_ipc_lock:
        text += "+nocap"
    if state.memlock_limit < ARENA_SIZE:
        text += "+rlimit"
    return text


def mapped(call: Call, folio: str) -> str:
    """The feature of a step that mapped a large folio (`folio`: mTHP, PMD, or huge zero
    page; StepReport.folio): what the step did, which its range state before it cannot
    say (a touch of an absent page maps one page or 512 by the page tables around it), so
    that the search keeps the program that first reaches one."""
    return f"{call_class(call)} maps {folio}"


def features(events: Sequence[Event]) -> frozenset[str]:
    """A program's features: every event, and every pair of successive successful
    events of one process on overlapping ranges (module docstring)."""
    found = {e.text() for e in events}
    latest: list[tuple[Event, range]] = []  # successful events, newest last
    for e in events:
        if e.outcome != OK:
            continue
        pages = call_pages(e.call)
        prev = next((p for p, r in reversed(latest) if p.call.proc == e.call.proc
                     and _overlap(r, pages)), None)
        if prev is not None:
            found.add(prev.text(modifiers=False) + PAIR + e.text(modifiers=False))
        latest.append((e, pages))
    return frozenset(found)


def _overlap(a: range, b: range) -> bool:
    return bool(a) and bool(b) and a.start < b.stop and b.start < a.stop


def feature_call(feature: str) -> str:
    """The call a feature is about (a pair's: its second event's)."""
    last = feature.rsplit(PAIR, 1)[-1]
    return last.split("(", 1)[0].split(" ", 1)[0]
