"""The generator's aim (prog/generate.py): its view of what each process mapped,
and the arguments it gives from that view, as tables.

The view is checked against the model: after each table's program, the pages a
process has mapped by the view are those the model has mapped. The aim is
checked by the model too: calls generated after a table's program mostly succeed
there, while a share still reaches the errors the arguments can cause (a hole,
a bad alignment), so every errno path stays reachable.
"""

from __future__ import annotations

import random
from collections import Counter

import pytest

from fuzzer.campaign.ops import MM_CALLS
from fuzzer.check.coverage import outcome
from fuzzer.model import SUPPORTED, State, Unsupported, covers
from fuzzer.model.features import Features
from fuzzer.model.world import World
from fuzzer.model.world import step as world_step
from fuzzer.prog import parse
from fuzzer.prog.generate import NEEDS_MAPPING, ByteSource, Generator, generate
from fuzzer.prog.program import ARENA_PAGES

ANON = "MAP_PRIVATE|MAP_ANONYMOUS"
RW = "PROT_READ|PROT_WRITE"


def _render(pages: list[int]) -> str:
    """A view's pages: each mapping's run as "first-last" (or one page), apart."""
    runs: list[str] = []
    i = 0
    while i < len(pages):
        j = i
        while j + 1 < len(pages) and pages[j + 1] == pages[i]:
            j += 1
        if pages[i]:
            runs.append(f"{i}-{j}" if j > i else f"{i}")
        i = j + 1
    return " ".join(runs)


def _tracked(text: str) -> Generator:
    gen = Generator(ByteSource(b""), None, None)
    for call in parse(text).calls:
        gen.track(call)
    return gen


def _model(text: str) -> World:
    world = World.start(State())
    for call in parse(text).calls:
        world_step(world, call)
    return world


# (name, program, the view of each live process after it)
VIEWS = [
    ("fixed", f"mmap(@2, 3p, {RW}, {ANON}|MAP_FIXED, -1, 0)", {0: "2-4"}),
    ("a-free-hint-is-taken", f"mmap(@2, 1p, PROT_READ, {ANON}, -1, 0)", {0: "2"}),
    ("a-taken-hint-maps-outside", f"""
        mmap(@0, 4p, {RW}, {ANON}|MAP_FIXED, -1, 0)
        mmap(@2, 1p, PROT_READ, {ANON}, -1, 0)
        """, {0: "0-3"}),
    ("noreplace-on-a-mapping-changes-nothing", f"""
        mmap(@0, 2p, {RW}, {ANON}|MAP_FIXED, -1, 0)
        mmap(@1, 2p, {RW}, {ANON}|MAP_FIXED_NOREPLACE, -1, 0)
        """, {0: "0-1"}),
    ("munmap-a-middle", f"""
        mmap(@0, 4p, {RW}, {ANON}|MAP_FIXED, -1, 0)
        munmap(@1, 2p)
        """, {0: "0 3"}),
    ("mprotect-splits", f"""
        mmap(@0, 4p, {RW}, {ANON}|MAP_FIXED, -1, 0)
        mprotect(@1, 1p, PROT_READ)
        """, {0: "0 1 2-3"}),
    ("mlock-rounds-its-range", f"""
        mmap(@0, 4p, {RW}, {ANON}|MAP_FIXED, -1, 0)
        mlock(@1+100, 1p)
        """, {0: "0 1-2 3"}),
    ("fork-copies-exit-drops", f"""
        mmap(@0, 2p, {RW}, {ANON}|MAP_FIXED, -1, 0)
        fork()
        p1: munmap(@0, 1p)
        fork()
        p2: exit()
        """, {0: "0-1", 1: "1"}),
    ("mremap-fixed-moves", f"""
        mmap(@0, 2p, {RW}, {ANON}|MAP_FIXED, -1, 0)
        mremap(@0, 2p, 2p, MREMAP_MAYMOVE|MREMAP_FIXED, @8)
        """, {0: "8-9"}),
    ("mremap-dontunmap-keeps-the-old-range", f"""
        mmap(@0, 2p, {RW}, {ANON}|MAP_FIXED, -1, 0)
        mremap(@0, 2p, 2p, MREMAP_MAYMOVE|MREMAP_DONTUNMAP, @8)
        """, {0: "0-1 8-9"}),
    ("mremap-grows-in-place", f"""
        mmap(@0, 2p, {RW}, {ANON}|MAP_FIXED, -1, 0)
        mremap(@0, 2p, 4p, 0, @0)
        """, {0: "0-3"}),
    ("mremap-moves-out-of-the-arena", f"""
        mmap(@0, 2p, {RW}, {ANON}|MAP_FIXED, -1, 0)
        mmap(@2, 1p, PROT_READ, {ANON}|MAP_FIXED, -1, 0)
        mremap(@0, 2p, 4p, MREMAP_MAYMOVE, @0)
        """, {0: "2"}),
    ("mremap-shrinks", f"""
        mmap(@0, 4p, {RW}, {ANON}|MAP_FIXED, -1, 0)
        mremap(@0, 4p, 1p, 0, @0)
        """, {0: "0"}),
    ("a-failed-mremap-changes-nothing", f"""
        mmap(@0, 2p, {RW}, {ANON}|MAP_FIXED, -1, 0)
        mremap(@0, 2p, 4p, MREMAP_DONTUNMAP|MREMAP_MAYMOVE, @8)
        """, {0: "0-1"}),
]


@pytest.mark.parametrize(("name", "text", "expected"), VIEWS, ids=[r[0] for r in VIEWS])
def test_the_view_follows_the_program(name: str, text: str, expected: dict[int, str]) -> None:
    gen, world = _tracked(text), _model(text)
    assert {p: _render(v.pages) for p, v in gen.views.items()} == expected
    for proc, view in gen.views.items():  # ... and agrees with the model on what is mapped
        state = world.proc(proc)
        assert [bool(p) for p in view.pages] == [p is not None for p in state.pages], proc


PREFIX = f"""
    mmap(@4, 4p, {RW}, {ANON}|MAP_FIXED, -1, 0)
    mmap(@8, 2p, PROT_READ, MAP_SHARED|MAP_ANONYMOUS|MAP_FIXED, -1, 0)
    mmap(@20, 6p, {RW}, {ANON}|MAP_FIXED, -1, 0)
    """
# (call, the least share of its generated calls that succeed after PREFIX, the
# outcomes that must still be among them)
AIMS = [
    ("mlock", 0.65, {"ENOMEM"}),
    ("mlock2", 0.60, {"ENOMEM", "EINVAL"}),
    ("munlock", 0.65, {"ENOMEM"}),
    ("mprotect", 0.60, {"ENOMEM", "EINVAL"}),
    ("madvise", 0.55, {"ENOMEM", "EINVAL"}),
    ("mremap", 0.50, {"EFAULT", "EINVAL", "ENOMEM"}),
    ("mseal", 0.60, {"ENOMEM", "EINVAL"}),
    ("munmap", 0.85, {"EINVAL"}),
]


@pytest.mark.parametrize(("name", "least", "errors"), AIMS, ids=[r[0] for r in AIMS])
def test_calls_aim_at_the_mappings(name: str, least: float, errors: set[str]) -> None:
    rng = random.Random(name)
    outcomes: Counter[str] = Counter()
    for _ in range(400):
        gen = _tracked(PREFIX)
        gen.src = ByteSource(rng.randbytes(64))
        call = gen.named(name)
        world = _model(PREFIX)
        try:
            prediction = world_step(world, call)
        except Unsupported:
            continue
        outcomes[outcome(prediction.ret, prediction.signal)] += 1
    assert outcomes["ok"] >= least * sum(outcomes.values()), outcomes
    assert errors <= set(outcomes), outcomes


def test_with_nothing_mapped_a_call_on_a_mapping_is_mostly_an_mmap_first() -> None:
    rng = random.Random(3)
    made = Counter(Generator(ByteSource(rng.randbytes(8)), None, None).instead("mlock")
                   for _ in range(300))
    assert made["mmap"] > 0.75 * 300 and made["mlock"] > 0  # a few still meet the hole
    gen = _tracked(PREFIX)
    gen.src = ByteSource(rng.randbytes(300))
    assert all(gen.instead(name) == name for name in sorted(NEEDS_MAPPING))


def test_with_no_file_open_ftruncate_is_mostly_a_memfd_create_or_tmpfile_first() -> None:
    rng = random.Random(4)
    made = Counter(Generator(ByteSource(rng.randbytes(8)), None, None).instead("ftruncate")
                   for _ in range(300))
    assert made["memfd_create"] + made["tmpfile"] > 0.75 * 300 and made["ftruncate"] > 0
    assert made["memfd_create"] > made["tmpfile"] > 0.2 * 300


def test_a_call_by_a_child_aims_at_the_childs_mappings() -> None:
    gen = _tracked(f"""
        mmap(@0, 2p, {RW}, {ANON}|MAP_FIXED, -1, 0)
        fork()
        p1: munmap(@0, 2p)
        p1: mmap(@30, 4p, {RW}, {ANON}|MAP_FIXED, -1, 0)
        """)
    rng = random.Random(5)
    starts = Counter()
    for _ in range(200):
        gen.src, gen.proc = ByteSource(rng.randbytes(64)), 1
        starts[gen.named("mlock").args[0] // 4096] += 1
    assert sum(n for page, n in starts.items() if 29 <= page <= 34) > 0.75 * 200


# Every errno (and signal) a call reached in a campaign of the seed programs and
# the generator before it aimed at mappings (mmfuzz stats ops): each still comes.
ERRNO_PATHS = {
    "mmap": {"EINVAL", "EEXIST", "EBADF", "ENOMEM", "EPERM", "EAGAIN", "EOPNOTSUPP",
             "EOVERFLOW"},
    "munmap": {"EINVAL", "EPERM"},
    "mprotect": {"ENOMEM", "EINVAL", "EPERM"},
    "mlock": {"ENOMEM", "EINVAL", "EPERM"},
    "munlock": {"ENOMEM", "EINVAL"},
    # (EPERM too, in campaigns: it needs CAP_IPC_LOCK dropped and a zero limit first,
    # and then valid flags, too rare for these programs without feedback)
    "mlock2": {"ENOMEM", "EINVAL"},
    "mremap": {"EFAULT", "EINVAL", "ENOMEM", "EPERM"},
    "madvise": {"ENOMEM", "EINVAL", "EFAULT", "EPERM", "EACCES"},
    "mlockall": {"EINVAL", "ENOMEM", "EPERM"},
    "mseal": {"ENOMEM", "EINVAL"},
    "process_madvise": {"ENOMEM", "EINVAL"},
    "ftruncate": {"EBADF", "EINVAL", "EFBIG"},  # EFBIG: a tmpfile past ext4's largest
    "close": {"EBADF"},
    "touch": {"SIGSEGV/MAPERR", "SIGSEGV/ACCERR", "SIGBUS/ADRERR"},
}


@pytest.mark.slow
def test_generated_programs_mostly_succeed_and_reach_every_errno() -> None:
    """Over generated programs, as the model runs them: more than half of the mm
    calls succeed, and every errno path above is still reached."""
    # mlockall's EPERM and ENOMEM need drop_cap_ipc_lock and a small limit before it:
    # about one program in 4000 gets there, so which seed reaches them moves with any
    # change to the call table (11 did before process_madvise joined it; 12 before the
    # mTHP block lengths and MADV_HUGEPAGE; 5 before tmpfile; 1 does now).
    rng = random.Random(1)
    seen: dict[str, Counter[str]] = {}
    for _ in range(4000):
        program = generate(ByteSource(rng.randbytes(256)), SUPPORTED, covers)
        world = World.start(State(features=Features(exec_only_readable=True)))
        for call in program.calls:
            try:
                prediction = world_step(world, call)
            except Unsupported:
                break
            seen.setdefault(call.name, Counter())[outcome(prediction.ret, prediction.signal)] += 1
    ok = sum(seen[name]["ok"] for name in MM_CALLS)
    total = sum(sum(seen[name].values()) for name in MM_CALLS)
    assert ok > 0.55 * total, (ok, total)
    missing = {name: errors - set(seen.get(name, {})) for name, errors in ERRNO_PATHS.items()}
    assert {name: errors for name, errors in missing.items() if errors} == {}


def test_the_arena_bounds_the_view() -> None:
    assert len(Generator(ByteSource(b""), None, None).views[0].pages) == ARENA_PAGES
