"""Checking one program: run it on the kernel, step the model beside it, compare each step.

This is the per-input hot path of every campaign, `exec`, `bench` and repro:
spawn, then per step one ptrace stop, one Snapshot, one model step, one
comparison. The first step that diverges ends the run (later steps would only
repeat the drift); a mismatch is re-read once before it counts, to rule out a
transient /proc state (docs/ARCHITECTURE.md, decision 5).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field

from fuzzer.check.coverage import Event, features, mapped, outcome, range_state
from fuzzer.model import Page, Prediction, State, mlocked
from fuzzer.model.pages import TASK_SIZE, mapcounts
from fuzzer.model.pmd import REGIONS
from fuzzer.model.state import PMD_ORDER, RestVma
from fuzzer.model.world import World
from fuzzer.model.world import step as world_step
from fuzzer.observe import Observer, Snapshot
from fuzzer.observe.mthp import (
    FELL_BACK,
    FELL_BACK_WHY,
    KHUGEPAGED_RAN,
    KHUGEPAGED_WHY,
    fallbacks,
    khugepaged_collapsed,
)
from fuzzer.observe.pageflags import page_flags
from fuzzer.observe.probe import CAP_SYS_RESOURCE, has_capability, memlock_limits, probe
from fuzzer.observe.proc import zero_pfn
from fuzzer.oracle import Divergence, DivergenceKind, call_feature, compare
from fuzzer.oracle.compare import IN_CHILD, IN_OTHER, StateKey, state_key
from fuzzer.oracle.views import kernel_presence, model_presence
from fuzzer.prog import ARENA, Call, Program
from fuzzer.prog.step import Step
from fuzzer.prog.syscalls import MAP_LOCKED, PAGE
from fuzzer.snapshot.parse import SmapsParser
from fuzzer.trace.supervisor import ChildCrash, Hang, Run, Supervisor

# StepReport.folio: the step mapped a large folio (mTHP, §19), a PMD-mapped huge page or
# the huge zero page (§22)
MTHP, PMD, HUGE_ZERO = "mTHP", "PMD", "huge zero page"


@dataclass(frozen=True, slots=True)
class StepReport:
    """One step: what the kernel did, what the model predicted, and where they differ."""

    step: Step
    prediction: Prediction
    divergences: tuple[Divergence, ...]
    before: str = ""  # the call's range before it (coverage.range_state), if asked for
    large_folios: int = 0  # large folios (mTHP) the model mapped in this step (§19)
    folio: str = ""  # "", MTHP, PMD or HUGE_ZERO: what it mapped (`mmfuzz stats ops`)

    @property
    def index(self) -> int:
        return self.step.index

    @property
    def call(self) -> Call:
        return self.step.call

    @property
    def ret(self) -> int | None:
        return self.step.ret

    @property
    def signal(self) -> tuple[int, int] | None:
        return self.step.signal


@dataclass(slots=True)
class Report:
    program: Program
    steps: list[StepReport] = field(default_factory=list)
    divergences: list[Divergence] = field(default_factory=list)
    snapshot: Snapshot | None = None  # the last one read
    initial: Snapshot | None = None  # the executor before its first call

    @property
    def diverged(self) -> bool:
        return bool(self.divergences)

    def features(self) -> frozenset[str]:
        """Its semantic features (coverage.py), and `CALL maps FOLIO` for each step that
        mapped a large folio, a PMD or the huge zero page (coverage.mapped); checked with
        ranges=True to mean anything."""
        return features([Event(st.call, outcome(st.ret, st.signal), st.before)
                         for st in self.steps]) | {mapped(st.call, st.folio)
                                                   for st in self.steps if st.folio}


# Called after every step with the caller's state and snapshot (None after its exit).
StepHook = Callable[[StepReport, State | None, Snapshot | None], None]
SPECIAL_FLAGS = frozenset({"io", "pf", "mm", "de"})  # what vma_supports_mlock() refuses


def rest_of_process(snap: Snapshot) -> list[RestVma]:
    """The executor's own VMAs, as the model needs them for whole-process calls."""
    return [
        RestVma(v.start, v.end, lockable=not v.flags & SPECIAL_FLAGS, lo=v.lo, lf=v.lf)
        for v in snap.vmas
        if not ARENA.contains(v.start)
        and v.start < TASK_SIZE  # the gate VMA ([vsyscall]) is not one of the mm's
    ]


def initial_state(snap: Snapshot) -> State:
    """The model's starting point: the executor as first observed, and what it inherits
    from us (the kernel's features, RLIMIT_MEMLOCK, CAP_SYS_RESOURCE)."""
    soft, hard = memlock_limits()
    return State(rest=rest_of_process(snap), features=probe(), memlock_limit=soft,
                 memlock_hard=hard, cap_sys_resource=has_capability(CAP_SYS_RESOURCE))


def check(supervisor: Supervisor, program: Program, on_step: StepHook | None = None, *,
          ranges: bool = False) -> Report:
    """Run `program` and compare every step with the model.

    With `ranges`, every StepReport says what the model had in the call's range
    before the call (`before`), for semantic coverage (coverage.py).

    A program that forks is compared in every live process after every step
    (what one process does can change what another shows: a shared page's X
    bit, its Pss); a fresh child is compared as soon as fork returns.
    """
    report = Report(program)
    try:
        with supervisor.run(program) as run:
            _check_run(run, report, on_step, ranges)
    except Hang as e:
        report.divergences = [Divergence(
            DivergenceKind.HANG,
            f"hang: {call_feature(_call_at(program, e.step), DivergenceKind.HANG)} did not return",
            e.step, "the call returns", f"no progress within {e.budget:g} s")]
    except ChildCrash as e:
        report.divergences = [Divergence(
            DivergenceKind.CRASH,
            f"crash: {call_feature(_call_at(program, e.step), DivergenceKind.CRASH)} killed the "
            "executor", e.step,
            "the executor survives", f"killed by signal {e.signo}")]
    return report


def _call_at(program: Program, index: int) -> Call:
    return program.calls[min(index, len(program.calls) - 1)]


def _check_run(run: Run, report: Report, on_step: StepHook | None, ranges: bool) -> None:
    """Step the model beside `run`, comparing after each step, until the first divergence."""
    with contextlib.ExitStack() as stack:
        # PG_mlocked is read where the executor settles it before each stop (markers),
        # in a program that can lock anything
        flags = page_flags() if run.markers and probe().madv_populate and \
            _may_lock(report.program) else None
        observers = {0: stack.enter_context(Observer(run.pid, _parser(0), flags))}
        report.initial = observers[0].snapshot()
        world = World.start(initial_state(report.initial))
        seen: dict[int, Shown] = {}
        known: dict[int, Known] = {}
        orders = world.proc(0).features.mthp_orders
        fell_back = fallbacks(orders) if orders else 0  # before the first call runs
        # khugepaged collapses only whole 2 MiB regions: the huge arena's, PMD size on
        collapsed = khugepaged_collapsed() if orders >> PMD_ORDER & 1 and REGIONS else None
        for st in run.steps():
            n = st.call.proc
            before = range_state(world, st.call) if ranges else ""
            caller = world.proc(n)  # a large folio is only ever mapped in the caller
            folios, pmds = caller.large_folios, (caller.huge_pages, caller.huge_zero_pages)
            if st.call.name in PLACING:
                caller.placed = _placed(st)
            pred = world_step(world, st.call)
            folios = caller.large_folios - folios
            folio = (PMD if caller.huge_pages > pmds[0] else
                     HUGE_ZERO if caller.huge_zero_pages > pmds[1] else MTHP if folios else "")
            if st.call.name == "fork" and world.children in run.pids:
                child = world.children
                observers[child] = stack.enter_context(
                    Observer(run.pids[child], _parser(child), flags))
            elif st.call.name == "exit":
                observers.pop(n).close()
            found, snap = _compare_all(st, pred, world, observers, seen, known)
            if found:  # re-read once: a transient /proc state is not a finding
                found, snap = _compare_all(st, pred, world, observers, seen, known)
            if found and orders and fallbacks(orders) != fell_back:
                found = [_marked(d, FELL_BACK, FELL_BACK_WHY) for d in found]
            if found and collapsed is not None and khugepaged_collapsed() != collapsed:
                found = [_marked(d, KHUGEPAGED_RAN, KHUGEPAGED_WHY) for d in found]
            rep = StepReport(st, pred, tuple(found), before, folios, folio)
            report.steps.append(rep)
            if snap is not None:  # not after the caller's exit
                report.snapshot = snap
            if on_step is not None:
                on_step(rep, world.procs[n], snap)
            if found:
                report.divergences = found
                return


PLACING = frozenset({"mmap", "mremap"})  # calls the kernel may place outside the arena
LOCKING = frozenset({"mlock", "mlock2", "mlockall"})


def _may_lock(program: Program) -> bool:
    """Whether any VMA of the program can become VM_LOCKED: without a call of the mlock
    family or a MAP_LOCKED mmap none does, so no page can be mlocked (§20)."""
    return any(c.name in LOCKING or (c.name == "mmap" and c.args[3] & MAP_LOCKED)
               for c in program.calls)


def _placed(st: Step) -> int:
    """Where the kernel put the mapping of an mmap or mremap, as a page number, if outside
    the arena (State.placed: the model cannot know it, and a fault-around window there
    depends on it); else 0."""
    ret = st.ret
    return ret // PAGE if ret is not None and 0 < ret < TASK_SIZE and not ARENA.contains(ret) \
        else 0


def _marked(d: Divergence, suffix: str, why: str) -> Divergence:
    """A divergence of a program during which a machine counter moved that says the kernel
    did what the model cannot predict (fuzzer/observe/mthp.py: an mTHP allocation fell
    back, khugepaged collapsed a huge page): marked in its title (`suffix`, a bucket
    apart) and in what was seen (`why`), never dropped."""
    return Divergence(d.kind, d.title + suffix, d.step, d.expected, f"{d.observed} ({why})")


Shown = tuple[list[Page | None], list[int]]

# One smaps parser per process number, kept from program to program: every program's
# processes are forks of one server, and most of their VMAs read as the last program's
# did (SmapsParser reuses a VMA only when its text is the same).
_PARSERS: dict[int, SmapsParser] = {}


def _parser(n: int) -> SmapsParser:
    return _PARSERS.setdefault(n, SmapsParser())


def _shown(state: State) -> Shown:
    """What the model says a process shows: its pages, and how often each is mapped."""
    return list(state.pages), mapcounts(state)


Known = tuple[Snapshot, StateKey]


def _compare_all(st: Step, pred: Prediction, world: World, observers: dict[int, Observer],
                 seen: dict[int, Shown], known: dict[int, Known],
                 ) -> tuple[list[Divergence], Snapshot | None]:
    """The calling process first (result, signal, state), then every other live one;
    with the caller's snapshot. `seen` keeps, per process, what the model said it
    shows when it was last compared whole. `known` keeps, until the program forks,
    the last snapshot the caller agreed with and the key of its state then: a step
    that changed neither (the Observer gives back the same Snapshot, about half
    the steps) has only its result compared (`compare`'s `known`)."""
    n = st.call.proc
    found: list[Divergence] = []
    snap = None
    if n in observers:  # after exit() there is nothing of the caller to compare
        observer = observers[n]
        text = observer.snapshot()
        state = world.proc(n)
        key = None if world.forked else state_key(state)
        last = known.get(n)
        same = key is not None and last is not None and last[0] is text and last[1] == key
        snap, judged = _with_flags(observer, state, text, read=not same)
        found = compare(st, pred, state, snap, known=same, judged=judged)
        if key is not None and not found:
            known[n] = (text, key)
        if world.forked:
            seen[n] = _shown(state)
    if not world.forked:
        return found, snap
    for other, state in world.live():
        if other == n or other not in observers:
            continue
        observer = observers[other]
        # A process the call should not have changed, whose pages read as the model
        # has them, is not read in full: pagemap is one pread, smaps is the costly
        # part of a snapshot. Any difference there, or any change the model
        # predicts (a frame no longer shared, a page cache page mapped again, a
        # fresh child), and it is compared whole.
        # process_madvise acts on another process: its target is always read whole.
        if st.call.name not in ("fork", "exit", "process_madvise") and \
                _shown(state) == seen.get(other) and \
                model_presence(state.pages) == kernel_presence(observer.pagemap(), zero_pfn()):
            continue
        where = IN_CHILD if st.call.name == "fork" and other == world.children else IN_OTHER
        # an exit's munlocks wait in its CPU's batch, which no stop has drained yet
        other_snap, judged = _with_flags(observer, state, observer.snapshot(),
                                         read=st.call.name != "exit")
        found += compare(st, pred, state, other_snap, where, judged=judged)
        seen[other] = _shown(state)
    return found, snap


def _with_flags(observer: Observer, state: State, snap: Snapshot, read: bool,
                ) -> tuple[Snapshot, tuple[int, int] | None]:
    """`snap` with the PG_mlocked of the pages the model judges, and those judgements
    (`mlocked.expected`, which compare takes too); `snap` and None where they are not
    read: not `read`, or an observer that reads no flags (§20)."""
    if not read or not observer.reads_flags:
        return snap, None
    judged = mlocked.expected(state)
    return observer.with_flags(snap, judged[0] | judged[1]), judged
