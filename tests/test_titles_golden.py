"""Golden bucket titles: (program, how the kernel's side is bent) -> the exact titles.

Titles are bucket keys: a change to one splits or merges buckets in every
store, so each change should be deliberate. tests/golden/titles.txt lists, for
every row below, the program, the bend in words and the titles the oracle
gives, for every kind of divergence (fuzzer.oracle.KINDS). The "kernel" is
synthetic (tests/synthetic.py: the model's own state as a Snapshot, which
compares clean unbent); hangs and crashes come from check() with a supervisor
whose run raises what the real one raises. No kernel is needed.

After an intended change: `pytest tests/test_titles_golden.py --regen-golden`
and review `git diff tests/golden/titles.txt`.
"""

from __future__ import annotations

import signal as signals
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType

from fuzzer.check import check
from fuzzer.model import State, step
from fuzzer.model.state import RestVma
from fuzzer.observe import Snapshot, Vma
from fuzzer.oracle import KINDS, compare, signal_text
from fuzzer.prog import ARENA_BASE, Program, parse
from fuzzer.prog.step import Step
from fuzzer.prog.syscalls import PAGE, SIGSEGV
from fuzzer.snapshot.parse import PM_EXCLUSIVE, PM_PRESENT
from fuzzer.trace import ChildCrash, Hang
from tests.synthetic import EXECUTOR_VMA, ZERO_PFN, synthetic_snapshot

GOLDEN = Path(__file__).parent / "golden" / "titles.txt"
RW = "PROT_READ|PROT_WRITE"
PA = "MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED"


@dataclass(frozen=True)
class Observed:
    ret: int | None
    signal: tuple[int, int] | None
    snap: Snapshot


@dataclass(frozen=True)
class Bend:
    text: str  # what the row does to the kernel's side, as titles.txt shows it
    fn: Callable[[Observed], Observed] | None = None  # None: the run hangs or crashes
    raises: Exception | None = None


def ret(value: int) -> Bend:
    return Bend(f"the call returns {value:#x}" if value > 0xffff else f"the call returns {value}",
                lambda o: replace(o, ret=value))


def signal(sig: tuple[int, int] | None) -> Bend:
    return Bend(f"the touch raises {signal_text(sig)}", lambda o: replace(o, signal=sig))


def word(page: int, value: int, what: str) -> Bend:
    def fn(o: Observed) -> Observed:
        words = list(o.snap.pagemap)
        words[page] = value
        return replace(o, snap=replace(o.snap, pagemap=tuple(words)))
    return Bend(f"pagemap @{page} {what}", fn)


def vma(index: int, what: str, **changes: object) -> Bend:
    def fn(o: Observed) -> Observed:
        vmas = list(o.snap.vmas)
        vmas[index] = replace(vmas[index], **changes)  # type: ignore[arg-type]
        return replace(o, snap=replace(o.snap, vmas=tuple(vmas)))
    return Bend(f"VMA {index} (0 is the executor's) {what}", fn)


def flags(index: int, add: str = "", drop: str = "", **changes: object) -> Bend:
    def fn(o: Observed) -> Observed:
        vmas = list(o.snap.vmas)
        v = vmas[index]
        vmas[index] = replace(v, flags=(v.flags | set(add.split())) - set(drop.split()),
                              **changes)  # type: ignore[arg-type]
        return replace(o, snap=replace(o.snap, vmas=tuple(vmas)))
    what = " ".join([*(f"+{f}" for f in add.split()), *(f"-{f}" for f in drop.split()),
                     *(f"{k}={v}" for k, v in changes.items())])
    return Bend(f"VMA {index} (0 is the executor's) flags {what}", fn)


def merge(first: int) -> Bend:
    def fn(o: Observed) -> Observed:
        vmas = list(o.snap.vmas)
        a, b = vmas[first], vmas[first + 1]
        vmas[first : first + 2] = [replace(a, end=b.end, rss=a.rss + b.rss, pss=a.pss + b.pss)]
        return replace(o, snap=replace(o.snap, vmas=tuple(vmas)))
    return Bend(f"VMAs {first} and {first + 1} shown as one", fn)


def drop(index: int) -> Bend:
    def fn(o: Observed) -> Observed:
        vmas = list(o.snap.vmas)
        del vmas[index]
        return replace(o, snap=replace(o.snap, vmas=tuple(vmas)))
    return Bend(f"VMA {index} missing", fn)


def outside(pages: int, locked: bool) -> Bend:
    extra = Vma(0x10000000, 0x10000000 + pages * PAGE, "rw-p", 0, "", 0, 0, 0,
                frozenset({"rd", "wr", "mr", "mw", "me"} | ({"lo"} if locked else set())))

    def fn(o: Observed) -> Observed:
        vmlck = o.snap.vmlck + (extra.size if locked else 0)
        return replace(o, snap=replace(o.snap, vmas=(*o.snap.vmas, extra), vmlck=vmlck))
    return Bend(f"an extra {'locked ' if locked else ''}{pages}-page VMA outside the arena"
                f"{' (in VmLck too)' if locked else ''}", fn)


def vmlck(delta: int) -> Bend:
    return Bend(f"VmLck {delta:+d} bytes", lambda o: replace(o, snap=replace(
        o.snap, vmlck=o.snap.vmlck + delta)))


def mlocked(mask: int, what: str) -> Bend:
    return Bend(f"PG_mlocked {what}", lambda o: replace(o, snap=replace(o.snap, mlocked=mask)))


def hang(at: int) -> Bend:
    return Bend(f"step {at} never returns (5 s budget)", raises=Hang(at, 5.0))


def crash(at: int, signo: int) -> Bend:
    return Bend(f"the executor is killed by signal {signo} at step {at}",
                raises=ChildCrash(at, signo))


@dataclass(frozen=True)
class Row:
    name: str
    text: str
    bend: Bend
    where: str = ""  # compare as another process of the program ("in the child")


def row(name: str, text: str, bend: Bend, where: str = "") -> Row:
    return Row(name, textwrap.dedent(text).strip() + "\n", bend, where)


MAP2 = f"mmap(@0, 2p, {RW}, {PA}, -1, 0)"
ROWS = [
    # result
    row("result-errno", f"{MAP2}\nmlock2(@0, 2p, 0x2)", ret(0)),
    row("result-mmap-errno", f"{MAP2}", ret(-17)),
    row("result-mmap-outside", f"mmap(@0, 1p, {RW}, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED_NOREPLACE,"
        " -1, 0)", ret(0x7f0000000000)),
    row("result-munlock-errno", f"{MAP2}\nmunlock(@0, 2p)", ret(-12)),
    # process_madvise: the advice, and whether the caller advised itself or another
    row("result-process-madvise-partial",
        f"{MAP2}\nprocess_madvise(p0, @0, 1p, @1, 1p, 2, MADV_COLD, 0)", ret(4096)),
    row("result-process-madvise-errno",
        f"{MAP2}\nprocess_madvise(p0, @0, 1p, @1, 1p, 2, MADV_DONTNEED, 0)", ret(-22)),
    # signal
    row("signal-missing", f"mmap(@0, 1p, PROT_NONE, {PA}, -1, 0)\ntouch(@0, read)", signal(None)),
    row("signal-unexpected", f"{MAP2}\ntouch(@0, write)", signal((SIGSEGV, 2))),
    # mapping
    row("mapping-left-mapped", f"{MAP2}\nmunmap(@1, 1p)",
        vma(1, f"ends at @2 (end={ARENA_BASE + 2 * PAGE:#x})", end=ARENA_BASE + 2 * PAGE)),
    row("mapping-left-unmapped", MAP2, drop(1)),
    row("mapping-outside", MAP2, outside(2, locked=False)),
    # prot
    row("prot-kept", f"{MAP2}\nmprotect(@0, 2p, PROT_READ)", vma(1, "perms=rw-p", perms="rw-p")),
    row("prot-shared", f"{MAP2}", vma(1, "perms=rw-s", perms="rw-s")),
    row("prot-exec-named", f"{MAP2}\nmprotect(@0, 2p, PROT_EXEC)",
        vma(1, "perms=rw-p", perms="rw-p")),
    row("prot-write-named", f"{MAP2}\nmprotect(@0, 2p, PROT_WRITE)", vma(1, "perms=r--p",
                                                                       perms="r--p")),
    # lock
    row("lock-lost", f"{MAP2}\nmlock(@0, 2p)", flags(1, drop="lo", locked=0)),
    row("lock-kept", f"mmap(@0, 2p, {RW}, {PA}|MAP_LOCKED, -1, 0)\nmunlock(@0, 2p)",
        flags(1, add="lo")),
    row("lock-onfault-lost", f"{MAP2}\nmlock2(@0, 2p, MLOCK_ONFAULT)", flags(1, drop="lf")),
    row("lock-onfault-gained", f"{MAP2}\nmlock(@0, 2p)", flags(1, add="lf")),
    row("lock-lf-without-lo", f"{MAP2}", flags(1, add="lf")),
    row("lock-own-vmas", f"{MAP2}\nmlockall(MCL_CURRENT)", flags(0, drop="lo", locked=0)),
    # fork-flags
    row("fork-flags-dontfork", f"{MAP2}\nmadvise(@0, 2p, MADV_DONTFORK)", flags(1, drop="dc")),
    row("fork-flags-wipeonfork", f"{MAP2}\nmadvise(@0, 2p, MADV_WIPEONFORK)", flags(1, drop="wf")),
    row("fork-flags-dofork", f"{MAP2}\nmadvise(@0, 2p, MADV_DOFORK)", flags(1, add="dc")),
    # seal
    row("seal-lost", f"{MAP2}\nmseal(@0, 2p, 0)", flags(1, drop="sl")),
    row("seal-gained", f"{MAP2}\nmunmap(@1, 1p)", flags(1, add="sl")),
    # mlocked (PG_mlocked from /proc/kpageflags)
    row("mlocked-left-after-munlock", f"{MAP2}\nmlock(@0, 2p)\nmunlock(@0, 2p)",
        mlocked(0b11, "on @0-1")),
    row("mlocked-missing-in-locked-vma", f"mmap(@0, 2p, {RW}, {PA}|MAP_LOCKED, -1, 0)",
        mlocked(0b01, "on @0 only")),
    # presence
    row("presence-absent", f"mmap(@0, 4p, {RW}, {PA}|MAP_POPULATE, -1, 0)",
        word(2, 0, "absent")),
    row("presence-appeared", f"mmap(@0, 2p, PROT_READ, {PA}, -1, 0)",
        word(0, PM_PRESENT | ZERO_PFN, "the zero page")),
    row("presence-zero-not-anon", f"mmap(@0, 2p, {RW}, {PA}|MAP_LOCKED, -1, 0)",
        word(1, PM_PRESENT | ZERO_PFN, "the zero page")),
    row("presence-anon-in-child", f"mmap(@0, 2p, {RW}, {PA}|MAP_POPULATE, -1, 0)",
        word(0, PM_PRESENT | 0x5000, "anonymous, not exclusive"), where="in the child"),
    row("presence-anon-not-zero", f"mmap(@0, 1p, PROT_READ, {PA}|MAP_POPULATE, -1, 0)",
        word(0, PM_PRESENT | PM_EXCLUSIVE | 0x5000, "anonymous")),
    # vma
    row("vma-spans", f"mmap(@0, 1p, {RW}, {PA}, -1, 0)\nmmap(@1, 1p, PROT_READ, {PA}, -1, 0)",
        merge(1)),
    row("vma-shmem-objects", f"""
        mmap(@0, 1p, {RW}, MAP_SHARED|MAP_ANONYMOUS|MAP_FIXED, -1, 0)
        mmap(@1, 1p, {RW}, MAP_SHARED|MAP_ANONYMOUS|MAP_FIXED, -1, 0)
        """, vma(2, "inode=1 (the first mapping's)", inode=1)),
    # rss
    row("rss-not-present", f"mmap(@0, 2p, {RW}, {PA}|MAP_POPULATE, -1, 0)",
        vma(1, "rss=pss=4096", rss=PAGE, pss=PAGE)),
    row("rss-order", f"mmap(@0, 2p, {RW}, {PA}|MAP_POPULATE, -1, 0)",
        vma(1, "pss=12288", pss=3 * PAGE)),
    row("rss-pss-shares", """
        mmap(@0, 2p, PROT_READ|PROT_WRITE, MAP_SHARED|MAP_ANONYMOUS|MAP_FIXED, -1, 0)
        touch(@0, write)
        mremap(@0, 0, 2p, MREMAP_MAYMOVE|MREMAP_FIXED, @4)
        touch(@4, read)
        """, vma(1, "pss=4096", pss=PAGE)),
    # locked
    row("locked-not-pss", f"mmap(@0, 2p, {RW}, {PA}|MAP_POPULATE, -1, 0)\nmlock(@0, 2p)",
        vma(1, "locked=4096", locked=PAGE)),
    # vmlck
    row("vmlck-not-locked-vmas", f"{MAP2}\nmlock(@0, 2p)", vmlck(PAGE)),
    row("vmlck-not-model", f"{MAP2}\nmlock(@0, 2p)", outside(1, locked=True)),
    # placement never enters a title: these two are one bucket
    row("vmlck-mremap-dontunmap", """
        mmap(@5, 2p, PROT_NONE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_LOCKED, -1, 0)
        mremap(@5, 2p, 2p, MREMAP_MAYMOVE|MREMAP_DONTUNMAP, @0)
        """, vmlck(2 * PAGE)),
    row("vmlck-mremap-fixed-dontunmap", f"""
        mmap(@0, 1p, PROT_NONE, {PA}|MAP_LOCKED, -1, 0)
        mremap(@0, 1p, 1p, MREMAP_MAYMOVE|MREMAP_FIXED|MREMAP_DONTUNMAP, @1)
        """, vmlck(PAGE)),
    # hang, crash
    row("hang", f"{MAP2}\nmlock(@0, 2p)", hang(1)),
    row("hang-at-start", f"{MAP2}\nmlock(@0, 2p)", hang(0)),
    row("crash", f"{MAP2}\nmlockall(MCL_CURRENT|MCL_FUTURE)", crash(1, signals.SIGKILL)),
]


class _Raising:
    """A supervisor whose run raises what the real one raises on a hang or a crash."""

    def __init__(self, exc: Exception) -> None:
        self.exc = exc

    def run(self, program: Program) -> _Raising:
        return self

    def __enter__(self) -> None:
        raise self.exc

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        return None


def titles(r: Row) -> list[str]:
    program = parse(r.text)
    if r.bend.raises is not None:
        report = check(_Raising(r.bend.raises), program)  # type: ignore[arg-type]
        return [d.title for d in report.divergences]
    state = State(rest=[RestVma(EXECUTOR_VMA.start, EXECUTOR_VMA.end, lockable=True)])
    for call in program.calls[:-1]:
        step(state, call)
    last = program.calls[-1]
    pred = step(state, last)
    expected_ret = pred.ret
    if last.syscall.returns_address and pred.ret is not None and pred.ret >= 0:
        expected_ret = ARENA_BASE + pred.ret
    agreeing = Observed(expected_ret, pred.signal, synthetic_snapshot(state))
    index = len(program) - 1
    clean = compare(Step(index, last, agreeing.ret, agreeing.signal), pred, state, agreeing.snap,
                    r.where)
    assert clean == [], f"{r.name}: the unbent synthetic kernel must agree: {clean}"
    assert r.bend.fn is not None
    o = r.bend.fn(agreeing)
    bent = Step(index, last, o.ret, o.signal)
    return [d.title for d in compare(bent, pred, state, o.snap, r.where)]


def golden_text() -> str:
    out = ["# Divergence titles the oracle gives (tests/test_titles_golden.py writes this file:",
           "# pytest tests/test_titles_golden.py --regen-golden). One block per row: the program,",
           "# what is bent on the kernel's side after its last call, then `=> title` lines,",
           "# the primary one first (fuzzer/oracle/primary.py: the bucket the sample files under).",
           ""]
    for r in ROWS:
        out.append(f"== {r.name}")
        out += r.text.splitlines()
        out.append(f"-- {r.bend.text}" + (f", compared {r.where}" if r.where else ""))
        out += [f"=> {t}" for t in titles(r)] or ["=> (no divergence)"]
        out.append("")
    return "\n".join(out)


def test_titles_match_golden(golden: Callable[[Path, str], None]) -> None:
    golden(GOLDEN, golden_text())


def test_placement_never_splits_a_bucket() -> None:
    by_name = {r.name: titles(r) for r in ROWS}
    assert by_name["vmlck-mremap-dontunmap"] == by_name["vmlck-mremap-fixed-dontunmap"]
    assert all("FIXED" not in t for found in by_name.values() for t in found)


def test_rows_cover_every_kind_and_diverge() -> None:
    names = [r.name for r in ROWS]
    assert len(names) == len(set(names))
    kinds: set[str] = set()
    for r in ROWS:
        found = titles(r)
        assert found, f"{r.name}: the bend must make the oracle see a divergence"
        kinds.update(t.split(":", 1)[0] for t in found)
    assert kinds == set(KINDS)
