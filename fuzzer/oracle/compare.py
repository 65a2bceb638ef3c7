"""Compares the model's prediction with what the kernel did and /proc shows.

After every step: the call's result and signal; per arena page its mapping,
protection, lock flags and presence (zero page told apart); per arena VMA its
Rss, Pss, Locked and the sizes PMDs map (§22); for the whole process VmLck
against the sizes of locked VMAs (docs/SEMANTICS.md §12, invariants 1-4, 10, 13).
Each difference becomes a `Divergence` whose title is `kind: call-feature
what-happened`.
"""

from __future__ import annotations

from itertools import pairwise

from fuzzer.model import OUTSIDE, Prediction, State, mlocked
from fuzzer.model.pages import NEW_PID, TASK_SIZE, mapcounts
from fuzzer.model.pmd import HUGE
from fuzzer.model.state import RestVma
from fuzzer.oracle.divergence import Divergence
from fuzzer.oracle.kind import PRECEDENCE, DivergenceKind
from fuzzer.oracle.title import call_feature, result_text
from fuzzer.oracle.views import (
    PRESENCE_NAMES,
    PageView,
    View,
    arena_vmas,
    kernel_view,
    model_view,
    pmd_view,
    render,
)
from fuzzer.prog import ARENA, Call
from fuzzer.prog.arena import PMD_PAGES
from fuzzer.prog.step import Step
from fuzzer.prog.syscalls import PAGE, SIGBUS, SIGSEGV, errno_name, is_errno, signal_name
from fuzzer.snapshot.parse import Snapshot, Vma

K = DivergenceKind
SIGNAL_CODES = {SIGSEGV: {1: "MAPERR", 2: "ACCERR", 4: "PKUERR"},  # si_code names, per signal
                SIGBUS: {1: "ADRALN", 2: "ADRERR", 3: "OBJERR"}}
PSS_SHIFT = 12  # fs/proc/task_mmu.c: Pss is summed in 1/4096 byte
# The kinds check() finds (and the C exporter knows); kernel-crash is a guest's, not theirs.
KINDS = tuple(k for k in DivergenceKind if k is not K.KERNEL_CRASH)
_RANK = {kind: i for i, kind in enumerate(PRECEDENCE)}


# compare's `where` for a process other than the caller, appended to the titles
IN_CHILD, IN_OTHER = "in the child", "in another process"

# One difference before it is titled: (kind, what happened, expected, observed).
Finding = tuple[DivergenceKind, str, str, str]


def compare(step: Step, pred: Prediction, state: State, snap: Snapshot,
            where: str = "", known: bool = False,
            judged: tuple[int, int] | None = None) -> list[Divergence]:
    """Every divergence at one step (empty when the kernel agrees with the model).

    `where` is empty for the process that made the call; for another process
    of the program it says which ("in the child", "in another process"), is
    appended to the titles, and only that process's state (`state`, `snap`)
    is compared.

    `known`: the caller has compared this very snapshot with a state of the same
    `state_key` before, and that found nothing: only the result and the signal
    are compared (the rest reads nothing but the snapshot and what the key holds).

    `judged`: `mlocked.expected(state)`, where the caller has it already (it read the
    flags of those pages).
    """
    findings = [] if where else _result_checks(step, pred)
    if not known:
        findings += _state_checks(state, snap, judged)
    findings.sort(key=lambda f: _RANK[f[0]])  # the primary first (oracle/primary.py)
    return [_divergence(step, kind, what, exp, obs, where) for kind, what, exp, obs in findings]


StateKey = tuple[object, ...]


def state_key(state: State) -> StateKey:
    """Everything of a process's State that `_state_checks` reads, for a program that has
    not forked (with other processes, Pss depends on their pages too): its pages (the
    objects, which are immutable), the executor's own VMAs' lock flags, what lies
    outside the arena, and what of it maps arena pages' frames and page-cache pages
    (`mapcounts`). tests/test_compare_known.py holds it to the full comparison."""
    return (tuple(state.pages), tuple(state.pmds),
            tuple((r.start, r.end, r.lo, r.lf) for r in state.rest),
            state.outside_mapped, state.outside_locked, tuple(state.outside_frames),
            tuple((v.obj, tuple(sorted(v.mapped))) for v in state.outside_shmem_vmas))


def _state_checks(state: State, snap: Snapshot,
                  judged: tuple[int, int] | None = None) -> list[Finding]:
    """Pages, VMAs, the process and VmLck: all but the result."""
    findings: list[Finding] = []
    expected, observed = model_view(state.pages), kernel_view(snap)
    if HUGE in state.pmds:
        expected = pmd_view(expected, state.pmds)
    if expected != observed:
        findings += [(kind, what, render(expected), render(observed))
                     for kind, what in _page_differences(expected, observed)]
    findings += _vma_checks(state, snap, observed)
    findings += _process_checks(state, snap)
    findings += _lock_invariant(snap)
    lock_found = any(f[0] == K.LOCK for f in findings)
    findings += _vmlck_checks(state, snap, lock_found)
    if snap.mlocked >= 0 and not lock_found:  # a wrong lock flag explains any flag
        findings += _mlocked_checks(judged or mlocked.expected(state), snap.mlocked)
    return findings


def _divergence(step: Step, kind: DivergenceKind, what: str, expected: str, observed: str,
                where: str) -> Divergence:
    title = f"{kind}: {call_feature(step.call, kind)} {what}"
    if where:
        title = f"{title} {where}"
    return Divergence(kind, title, step.index, expected, observed)


# ---------------------------------------------------------------- results


def _result_checks(step: Step, pred: Prediction) -> list[Finding]:
    """The call's result and the signal it raised (the calling process only)."""
    call, ret, signal = step.call, step.ret, step.signal
    out: list[Finding] = []
    expected_ret = _absolute(call, pred.ret)
    if call.name != "touch" and not _result_matches(call, expected_ret, ret):
        out.append((K.RESULT, f"returned {_result_title(call, ret)} instead of "
                    f"{_result_title(call, expected_ret)}",
                    value_text(call, expected_ret), value_text(call, ret)))
    if pred.signal != signal:
        out.append((K.SIGNAL, f"raised {signal_text(signal)} instead of "
                    f"{signal_text(pred.signal)}", signal_text(pred.signal), signal_text(signal)))
    return out


def _absolute(call: Call, ret: int | None) -> int | None:
    """The model's mmap/mremap result (an arena offset) as the address the kernel returns."""
    if call.syscall.returns_address and ret is not None and ret >= 0:
        return ARENA.base + ret
    return ret


def _result_matches(call: Call, expected: int | None, observed: int | None) -> bool:
    """Both sides as the kernel returns them (mmap: absolute addresses, or OUTSIDE)."""
    if expected is None or observed is None:
        return expected == observed
    if expected == OUTSIDE:
        return not is_errno(observed) and _arena_offset(call, observed) is None
    if expected == NEW_PID:
        return observed > 0
    return expected == observed


def _arena_offset(call: Call, ret: int | None) -> int | None:
    """An mmap result as an arena offset; None for errors and addresses outside the arena."""
    if ret is None or ret == OUTSIDE or is_errno(ret):
        return None
    if not call.syscall.returns_address:
        return ret
    return ret - ARENA.base if ARENA.contains(ret) else None


def _result_title(call: Call, ret: int | None) -> str:
    outside = call.syscall.returns_address and ret is not None and not is_errno(ret) and \
        _arena_offset(call, ret) is None
    if outside:
        return "an address outside the arena"
    return result_text(call, ret, _arena_offset(call, ret))


def value_text(call: Call, ret: int | None) -> str:
    if ret is None:
        return "nothing"
    if is_errno(ret):
        return f"-{errno_name(-ret)}"
    if ret == OUTSIDE:
        return "an address outside the arena"
    if call.name == "fork":
        return "a child pid" if ret == NEW_PID else f"pid {ret}"
    if call.syscall.returns_address:
        offset = _arena_offset(call, ret)
        return f"{ret:#x}" if offset is None else f"@{offset // PAGE}"
    return str(ret)


def signal_text(sig: tuple[int, int] | None) -> str:
    if sig is None:
        return "no signal"
    signo, code = sig
    return f"{signal_name(signo)}/{SIGNAL_CODES.get(signo, {}).get(code, code)}"


# ------------------------------------------------------------------ pages


def _page_differences(expected: View, observed: View) -> list[tuple[DivergenceKind, str]]:
    """(kind, what) for the first page that differs in each aspect."""
    seen: dict[DivergenceKind, str] = {}
    for e, o in zip(expected, observed, strict=True):
        if e == o:
            continue
        if e is None or o is None:
            seen.setdefault(K.MAPPING, "left pages unmapped" if o is None else "left pages mapped")
            continue
        if (e.prot, e.shared) != (o.prot, o.shared):
            seen.setdefault(K.PROT, f"left pages {_prot(o)} instead of {_prot(e)}")
        if e.lo != o.lo:
            seen.setdefault(K.LOCK, "left pages locked" if o.lo else "left pages unlocked")
        elif e.lf != o.lf:
            seen.setdefault(K.LOCK, "left pages lock-on-fault" if o.lf else
                            "left pages without lock-on-fault")
        if (e.dc, e.wf) != (o.dc, o.wf):
            flag, on = ("dc", o.dc) if e.dc != o.dc else ("wf", o.wf)
            seen.setdefault(K.FORK_FLAGS, f"left pages {'with' if on else 'without'} {flag}")
        if e.sl != o.sl:
            seen.setdefault(K.SEAL, "left pages sealed" if o.sl else "left pages unsealed")
        if e.presence != o.presence:
            seen.setdefault(K.PRESENCE, _presence_what(e.presence, o.presence))
    return list(seen.items())


def _prot(p: PageView) -> str:
    return p.prot + ("s" if p.shared else "p")


def _presence_what(expected: str, observed: str) -> str:
    """The symptom keyed on what the call should have left, not on what the kernel shows
    instead: one missing populate or COW break shows absent, zero or shared pages
    depending on the mapping, and each would open a bucket of its own (the sample keeps
    what was observed, page by page)."""
    if expected == ".":
        return "made pages present"
    return f"left pages not {PRESENCE_NAMES[expected]}"


# ------------------------------------------------------------------- VMAs


def _vma_checks(
    state: State, snap: Snapshot, observed: View
) -> list[Finding]:
    """Per arena VMA: one set of page attributes, one shmem object, Rss, Pss, Locked."""
    out: list[Finding] = []
    inode_of: dict[int, int] = {}
    obj_of: dict[int, int] = {}
    counts: list[int] = []
    for v in arena_vmas(snap):
        first = (v.start - ARENA.base) // PAGE
        idx = range(first, first + v.size // PAGE)
        model = [state.pages[i] for i in idx]
        attrs = {(p.attrs.shared, p.attrs.prot, p.attrs.lo, p.attrs.lf, p.attrs.dc, p.attrs.wf,
                  p.attrs.sl, p.attrs.obj) for p in model if p is not None}
        if len(attrs) > 1:
            out.append((K.VMA, "left one VMA spanning pages the model keeps apart",
                        "separate VMAs", _vma_text(v)))
        elif any(inode_of.setdefault(p.attrs.obj, v.inode) != v.inode
                 or obj_of.setdefault(v.inode, p.attrs.obj) != p.attrs.obj
                 for p in model if p is not None and p.attrs.obj):
            # AS, FS and FP pages: one inode per shmem object (an anonymous shared
            # mmap's, or a memfd's), whichever mappings show it
            out.append((K.VMA, "mixed up shared mappings' shmem objects",
                        "one shmem object per mmap or memfd", _vma_text(v)))
        letters = [p.presence for p in (observed[i] for i in idx) if p is not None]
        resident = sum(PAGE for c in letters if c in "AaFf")
        if v.rss != resident:
            out.append((K.RSS, "left Rss different from the present pages",
                        f"Rss {resident // 1024} kB", _vma_text(v)))
        huge = _pmd_regions(state, idx) * PMD_PAGES * PAGE
        if v.anon_huge != huge:
            out.append((K.RSS, "left AnonHugePages different from the huge pages PMDs map",
                        f"AnonHugePages {huge // 1024} kB", _vma_text(v, pmd=True)))
        elif v.file_pmd:  # the model maps no shmem or file page by a PMD (§22)
            out.append((K.RSS, "left file pages mapped by a PMD",
                        "ShmemPmdMapped + FilePmdMapped 0 kB", _vma_text(v, pmd=True)))
        want_locked = v.pss if v.lo else 0
        if v.locked != want_locked:
            out.append((K.LOCKED, "left smaps Locked different from Pss of a locked VMA",
                        f"Locked {want_locked // 1024} kB", _vma_text(v)))
        # (a PMD's pages all show its first page's exclusive bit, not their own: §22)
        exclusive = all(c in "AF" for c in letters if c in "AaFf") and not huge
        if not v.locked <= v.pss <= v.rss <= v.size or (exclusive and v.pss != v.rss):
            out.append((K.RSS, "broke Locked <= Pss <= Rss <= Size",
                        "Locked <= Pss <= Rss <= Size", _vma_text(v)))
        elif not exclusive and v.rss == resident:
            # Pages mapped more than once count a share each (smaps_account), in
            # units of 1/4096 byte, shown in whole kB.
            counts = counts or mapcounts(state)
            shares = sum((PAGE << PSS_SHIFT) // counts[i] for i in idx
                         if 0 <= i < len(counts) and counts[i])
            want = (shares >> PSS_SHIFT) >> 10 << 10
            if v.pss != want:
                out.append((K.RSS, "left Pss different from the shares of pages mapped twice",
                            f"Pss {want // 1024} kB", _vma_text(v)))
    return out


def _pmd_regions(state: State, idx: range) -> int:
    """How many regions a PMD maps a huge page in, among the arena pages `idx` (a VMA:
    a PMD lies in one VMA whole). The huge zero page counts in no smaps field."""
    if HUGE not in state.pmds:
        return 0
    return sum(kind == HUGE and idx.start <= r * PMD_PAGES < idx.stop
               for r, kind in enumerate(state.pmds))


def _process_checks(state: State, snap: Snapshot) -> list[Finding]:
    """Outside the arena: the executor's own VMAs keep their place and follow mlockall;
    whatever else is there is what the kernel placed outside the arena for the program."""
    out: list[Finding] = []
    rest = {(r.start, r.end): r for r in state.rest}
    outside = outside_locked = 0
    base, end = ARENA.base, ARENA.end  # ARENA.overlaps spelled out (Arena is interpreted)
    for v in snap.vmas:
        if (v.end > base and v.start < end) or v.start >= TASK_SIZE:
            continue  # the arena is checked page by page; the gate VMA never changes
        r = rest.get((v.start, v.end)) or _merged(state, v)
        if r is None:
            outside += v.size
            outside_locked += v.size if v.lo else 0
        elif (r.lo, r.lf) != (v.lo, v.lf) and not out:
            flags = " ".join(f for f, on in (("lo", r.lo), ("lf", r.lf)) if on) or "unlocked"
            out.append((K.LOCK, "left the executor's own VMAs "
                        + ("locked" if v.lo and not r.lo else "unlocked" if r.lo and not v.lo
                           else "with other lock flags"),
                        f"{v.name or 'anonymous'} {flags}", _vma_text(v)))
    if (outside, outside_locked) != (state.outside_mapped * PAGE, state.outside_locked * PAGE):
        out.append((K.MAPPING, "left mappings outside the arena other than predicted",
                    f"{state.outside_mapped * 4} kB outside, {state.outside_locked * 4} kB locked",
                    f"{outside // 1024} kB outside, {outside_locked // 1024} kB locked"))
    return out


def _lock_invariant(snap: Snapshot) -> list[Finding]:
    """Invariant 1, over the whole process: lock-on-fault only with VM_LOCKED."""
    for v in snap.vmas:
        if v.lf and not v.lo:
            return [(K.LOCK, "left a VMA lock-on-fault without VM_LOCKED", "lf only with lo",
                     _vma_text(v))]
    return []


def _vmlck_checks(state: State, snap: Snapshot, lock_found: bool) -> list[Finding]:
    """VmLck against the locked VMAs' sizes, then (unless a lock divergence already
    explains it) against the model's locked size."""
    locked_vmas = snap.locked_size()
    if snap.vmlck != locked_vmas:
        return [(K.VMLCK, "made VmLck differ from the size of locked VMAs",
                 f"VmLck {locked_vmas // 1024} kB", f"VmLck {snap.vmlck // 1024} kB")]
    if not lock_found and snap.vmlck != state.locked_pages() * PAGE:
        return [(K.VMLCK, "left VmLck different from the model's locked size",
                 f"VmLck {state.locked_pages() * 4} kB", f"VmLck {snap.vmlck // 1024} kB")]
    return []


def _mlocked_checks(judged: tuple[int, int], observed: int) -> list[Finding]:
    """PG_mlocked of the arena's pages (`snap.mlocked`) against the locked VMAs that map
    them: `judged` (fuzzer/model/mlocked.py) says which pages must and must not be."""
    must, must_not = judged
    leaked, missing = observed & must_not, must & ~observed
    if not leaked and not missing:
        return []
    expected = f"mlocked: {_page_list(must)}; not mlocked: {_page_list(must_not)}"
    seen = f"mlocked: {_page_list(observed & (must | must_not))}"
    if leaked:
        return [(K.MLOCKED, "left pages mlocked that no locked VMA maps", expected, seen)]
    return [(K.MLOCKED, "left pages of a locked VMA not mlocked", expected, seen)]


def _page_list(mask: int) -> str:
    """Arena pages of a bit mask as runs: "@0-3 @7"; "none" when empty."""
    runs, i = [], 0
    while mask >> i:
        if mask >> i & 1:
            j = i
            while mask >> (j + 1) & 1:
                j += 1
            runs.append(f"@{i}-{j}" if j > i else f"@{i}")
            i = j + 1
        else:
            i += 1
    return " ".join(runs) or "none"


def _merged(state: State, v: Vma) -> RestVma | None:
    """The executor's own VMAs that tile `v` exactly, as one: mlock_fixup merges adjacent
    ones with equal flags (the bss and a brk heap right after it, without brk
    randomization), which is the same memory, not a new mapping."""
    parts = sorted((r for r in state.rest if v.start <= r.start and r.end <= v.end),
                   key=lambda r: r.start)
    if len(parts) < 2 or parts[0].start != v.start or parts[-1].end != v.end:
        return None
    if any(a.end != b.start or (a.lo, a.lf) != (b.lo, b.lf) for a, b in pairwise(parts)):
        return None
    return parts[0]


def _vma_text(v: Vma, pmd: bool = False) -> str:
    """One VMA as smaps shows it; `pmd`: with its PMD-mapped sizes."""
    if ARENA.contains(v.start):
        where = f"@{(v.start - ARENA.base) // PAGE}-{(v.end - ARENA.base) // PAGE - 1}"
    else:
        where = f"{v.start:#x}-{v.end:#x} {v.name}".rstrip()
    sizes = f"Rss {v.rss // 1024} kB Pss {v.pss // 1024} kB Locked {v.locked // 1024} kB"
    if pmd:
        sizes += (f" AnonHugePages {v.anon_huge // 1024} kB"
                  f" ShmemPmdMapped + FilePmdMapped {v.file_pmd // 1024} kB")
    return f"{where} {v.perms} Size {v.size // 1024} kB {sizes} [{' '.join(sorted(v.flags))}]"
