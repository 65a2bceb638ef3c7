"""Semantic coverage (fuzzer/check/coverage.py), pure: a table of programs in text and
the exact features each reaches, the model standing in for the kernel's outcomes.

Each expectation is derived by hand from the module's rules: an event per step
(class, outcome, range state before the call), a pair per successful event and
the latest earlier successful event of the same process on an overlapping range.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from fuzzer.check.coverage import (
    Event,
    call_class,
    feature_call,
    features,
    mapped,
    outcome,
    range_state,
)
from fuzzer.model import State
from fuzzer.model.features import NEWEST
from fuzzer.model.world import World
from fuzzer.model.world import step as world_step
from fuzzer.prog import parse

ROWS: list[tuple[str, str, set[str]]] = [
    # The motivating pair: an ONFAULT lock of populated pages, then the range moves.
    ("onfault-then-mremap", """
        mmap(@0, 4p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED|MAP_POPULATE, -1, 0)
        mlock2(@0, 4p, MLOCK_ONFAULT)
        mremap(@0, 4p, 8p, MREMAP_MAYMOVE, @0)
        """, {
        "mmap(P|ANON|POPULATE,RW) ok on absent",
        "mlock2(ONFAULT) ok on present",
        "mremap(MAYMOVE,grow) ok on onfault",
        "mmap(P|ANON|POPULATE,RW) ok on absent > mlock2(ONFAULT) ok on present",
        "mlock2(ONFAULT) ok on present > mremap(MAYMOVE,grow) ok on onfault",
    }),
    # A failed call is an event but starts no pair.
    ("failure-makes-no-pair", """
        mlock(@0, 1p)
        munmap(@0, 1p)
        """, {"mlock ENOMEM on absent", "munmap ok on absent"}),
    # Ranges that do not overlap make no pair; a partly mapped range is partial.
    ("disjoint-ranges", """
        mmap(@0, 2p, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED, -1, 0)
        mmap(@4, 2p, PROT_NONE, MAP_SHARED|MAP_ANONYMOUS|MAP_FIXED|MAP_LOCKED, -1, 0)
        munlock(@5, 1p)
        """, {
        "mmap(P|ANON,RO) ok on absent",
        "mmap(S|ANON|LOCKED,NONE) ok on absent",
        "munlock ok on locked",
        "mmap(S|ANON|LOCKED,NONE) ok on absent > munlock ok on locked",
    }),
    # After a fork, a MAP_SHARED range is shared with the other process; the child's
    # first call pairs with nothing (the parent's events are another process's).
    ("child-on-shared", """
        mmap(@0, 2p, PROT_READ|PROT_WRITE, MAP_SHARED|MAP_ANONYMOUS|MAP_FIXED, -1, 0)
        fork()
        p1: mlock(@0, 2p)
        p1: mlock2(@0, 1p, 0x2)
        """, {
        "mmap(S|ANON,RW) ok on absent",
        "fork ok on partial",
        "mlock ok on shared+child",
        "mlock2(?) EINVAL on locked",  # an argument error: the same in any process
        "mmap(S|ANON,RW) ok on absent > fork ok on partial",
    }),
    # Privileges: modifiers on the events, not on the pairs; the privilege calls
    # themselves act on no range and pair with nothing. ENOMEM can be the limit's.
    ("lowered-rlimit", """
        drop_cap_ipc_lock()
        prlimit_memlock(1p)
        mmap(@0, 2p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED, -1, 0)
        mlock(@0, 2p)
        mlock(@0, 0xffffffffffffffff)
        """, {
        "drop_cap_ipc_lock ok on none",
        "prlimit_memlock ok on none+nocap",
        "mmap(P|ANON,RW) ok on absent+nocap+rlimit",
        "mlock ENOMEM on present+nocap+rlimit",
        "mlock ok on none+nocap+rlimit",  # the wrapping range is empty: nothing to lock
    }),
    # Calls on descriptors act on no range: no state, no pairs.
    ("descriptors", """
        memfd_create()
        ftruncate(0, 2p)
        close(3)
        mmap(@0, 2p, PROT_READ, MAP_SHARED, 0, 0)
        """, {
        "memfd_create ok on none", "ftruncate ok on none", "close EBADF on none",
        "mmap(S|FD,RO) ok on absent",
    }),
    # A touch sees its page, a signal is its outcome; mlockall sees the whole arena.
    ("touch-and-mlockall", """
        mmap(@0, 1p, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED, -1, 0)
        touch(@0, write)
        mlockall(MCL_CURRENT|MCL_ONFAULT)
        """, {
        "mmap(P|ANON,RO) ok on absent",
        "touch(write) SIGSEGV/ACCERR on present",
        "mlockall(CURRENT|ONFAULT) ok on partial",
        "mmap(P|ANON,RO) ok on absent > mlockall(CURRENT|ONFAULT) ok on partial",
    }),
    # The youngest code's words: a guard marker, a sealed VMA, a droppable one (with the
    # folio of FOLIO_ROWS, in that order); a failure keeps them and makes no pair.
    ("guard-sealed-droppable", """
        mmap(@0, 4p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED, -1, 0)
        madvise(@1, 1p, MADV_GUARD_INSTALL)
        munlock(@0, 2p)
        mseal(@2, 2p, 0)
        mprotect(@1, 2p, PROT_READ)
        mmap(@8, 1p, PROT_READ|PROT_WRITE, MAP_DROPPABLE|MAP_ANONYMOUS|MAP_FIXED, -1, 0)
        touch(@8, write)
        """, {
        "mmap(P|ANON,RW) ok on absent",
        "madvise(GUARD_INSTALL) ok on present",
        "munlock ok on present guard",
        "mseal ok on present",
        "mprotect(RO) EPERM on present guard sealed",
        "mmap(T?|ANON,RW) ok on absent",
        "touch(write) ok on present droppable",
        "mmap(P|ANON,RW) ok on absent > madvise(GUARD_INSTALL) ok on present",
        "madvise(GUARD_INSTALL) ok on present > munlock ok on present guard",
        "mmap(P|ANON,RW) ok on absent > mseal ok on present",
        "mmap(T?|ANON,RW) ok on absent > touch(write) ok on present droppable",
    }),
    # A length that wraps covers no page of the arena.
    ("wrapping-range", """
        munmap(@0, 0xffffffffffffffff)
        mremap(@0, 1p, 1p, 0x8, @0)
        """, {"munmap EINVAL on none", "mremap(?,same) EINVAL on absent"}),
]


# With hugepages-16kB on (docs/SEMANTICS.md §19), a write fault in a MADV_HUGEPAGE VMA
# maps the aligned 4-page block around it as one large folio, and a range holding any
# page of it is a `folio` range; the same program without mTHP maps one page and has
# no folio state (the feedback that pulls a campaign towards calls on large folios).
HG_PROGRAM = """
        mmap(@0, 8p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED, -1, 0)
        madvise(@0, 8p, MADV_HUGEPAGE)
        touch(@1, write)
        mlock(@3, 2p)
        munlock(@1, 1p)
        mprotect(@4, 2p, PROT_READ)
        """
HG_COMMON = {
    "mmap(P|ANON,RW) ok on absent",
    "madvise(HUGEPAGE) ok on present",
    "touch(write) ok on present",
    "mprotect(RO) ok on locked",
    "mmap(P|ANON,RW) ok on absent > madvise(HUGEPAGE) ok on present",
    "madvise(HUGEPAGE) ok on present > touch(write) ok on present",
}
FOLIO_ROWS: list[tuple[str, int, set[str]]] = [
    # @0-3 is the folio: mlock(@3, 2p) covers its last page and munlock(@1) one inside;
    # mlock's populate of @4 (the block @4-7 is not inside the VMA @3-4) maps one page,
    # so mprotect's @4-5 holds no folio page; each pairs with the latest overlapping
    # event (madvise, touch, mlock)
    ("folio-16k", 1 << 2, HG_COMMON | {
        "mlock ok on present folio",
        "munlock ok on present folio",
        "madvise(HUGEPAGE) ok on present > mlock ok on present folio",
        "touch(write) ok on present > munlock ok on present folio",
        "mlock ok on present folio > mprotect(RO) ok on locked",
    }),
    ("no-mthp", 0, HG_COMMON | {
        "mlock ok on present",
        "munlock ok on present",
        "madvise(HUGEPAGE) ok on present > mlock ok on present",
        "touch(write) ok on present > munlock ok on present",
        "mlock ok on present > mprotect(RO) ok on locked",
    }),
]


def model_features(text: str, orders: int = 0) -> frozenset[str]:
    """The features of a program as the model predicts its outcomes (with the mTHP
    orders `orders` enabled)."""
    world = World.start(State(features=replace(NEWEST, mthp_orders=orders)))
    events = []
    for call in parse(text).calls:
        before = range_state(world, call)
        pred = world_step(world, call)
        events.append(Event(call, outcome(pred.ret, pred.signal), before))
    return features(events)


@pytest.mark.parametrize(("name", "text", "expected"), ROWS, ids=[r[0] for r in ROWS])
def test_features(name: str, text: str, expected: set[str]) -> None:
    assert model_features(text) == expected


@pytest.mark.parametrize(("name", "orders", "expected"), FOLIO_ROWS,
                         ids=[r[0] for r in FOLIO_ROWS])
def test_folio_features(name: str, orders: int, expected: set[str]) -> None:
    assert model_features(HG_PROGRAM, orders) == expected


@pytest.mark.parametrize(("line", "cls"), [
    ("mmap(@0, 1p, PROT_EXEC, MAP_SHARED_VALIDATE|MAP_POPULATE|MAP_LOCKED, 3, 0)",
     "mmap(SV|FD|LOCKED|POPULATE,RO)"),
    ("mprotect(@0, 1p, PROT_READ|PROT_WRITE|PROT_EXEC)", "mprotect(RW)"),
    ("mlock2(@0, 1p, 0x2)", "mlock2(?)"),
    ("mlockall(0x10)", "mlockall(?)"),
    ("mlockall(0)", "mlockall(0)"),
    ("mremap(@0, 2p, 1p, MREMAP_MAYMOVE|MREMAP_FIXED, @8)", "mremap(FIXED,shrink)"),
    ("madvise(@0, 1p, MADV_DONTNEED_LOCKED)", "madvise(DONTNEED_LOCKED)"),
    ("madvise(@0, 1p, 77)", "madvise(?)"),
    ("munlockall()", "munlockall"),
])
def test_call_class(line: str, cls: str) -> None:
    assert call_class(parse(line).calls[0]) == cls


@pytest.mark.parametrize(("line", "folio", "feature"), [
    ("touch(@20, write)", "mTHP", "touch(write) maps mTHP"),
    ("madvise(@0, 1p, MADV_POPULATE_WRITE)", "PMD", "madvise(POPULATE_WRITE) maps PMD"),
    ("touch(@0, read)", "huge zero page", "touch(read) maps huge zero page"),
])
def test_a_step_that_maps_a_large_folio_is_a_feature(line: str, folio: str,
                                                     feature: str) -> None:
    """What a step mapped is not in its range's state before it: a feature of its own."""
    assert mapped(parse(line).calls[0], folio) == feature
    assert feature_call(feature) == line.split("(")[0]


def test_feature_call() -> None:
    assert feature_call("mlock2(ONFAULT) ok on present") == "mlock2"
    assert feature_call("fork ok on partial") == "fork"
    assert feature_call("mmap(P|ANON,RW) ok on absent > munlockall ok on locked") == "munlockall"
