"""Model tables: program text, the result of every step and the final arena.

One row (`Case`) serves twice: `test_model*.py` steps the pure model through
it, and the `*_kernel.py` twin runs the same program on the real kernel,
asserting that no step diverges and that the kernel's own results and arena
match the table too. A row may carry a known model mistake or kernel bug, as
a strict xfail on the side it concerns.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from functools import cache
from typing import Any

import pytest

from fuzzer.check import Report
from fuzzer.model import OUTSIDE, Prediction, State
from fuzzer.model.features import NEWEST, Features
from fuzzer.model.pages import NEW_PID
from fuzzer.model.world import World
from fuzzer.model.world import step as world_step
from fuzzer.observe import Observer
from fuzzer.observe.probe import probe
from fuzzer.oracle import signal_text as oracle_signal_text
from fuzzer.oracle.views import arena_vmas, kernel_view, model_view, pmd_view, render
from fuzzer.prog import ARENA_BASE, ARENA_SIZE, Call, parse
from fuzzer.prog.syscalls import PAGE, errno_name, is_errno
from fuzzer.snapshot.parse import Vma
from fuzzer.trace import Supervisor


@dataclass(frozen=True)
class Case:
    name: str
    text: str
    results: tuple[str, ...]
    final: str
    locked: int | None = None  # State.locked_pages() (VmLck in pages), checked when given
    model_bug: str | None = None  # a known model mistake: strict xfail on both sides
    kernel_bug: str | None = None  # a known kernel bug: strict xfail on the kernel side
    # Probed features (fuzzer/model/features.py) the expectations depend on, where they
    # differ between machines: the model runs with them, and the kernel twin runs only
    # on a kernel that has them (a row for each value keeps both sides tested).
    features: tuple[tuple[str, int], ...] = ()  # a bool, or an int (mthp_orders)

    def model_features(self) -> Features:
        return replace(NEWEST, **dict(self.features))


def case(name: str, text: str, results: list[str], final: str, locked: int | None = None,
         model_bug: str | None = None, kernel_bug: str | None = None,
         features: Mapping[str, int] | None = None) -> Case:
    return Case(name, text, tuple(results), final, locked, model_bug, kernel_bug,
                tuple(sorted((features or {}).items())))


def model_params(rows: Iterable[Case]) -> list[Any]:
    return [pytest.param(c, id=c.name, marks=_xfail("model", c.model_bug)) for c in rows]


def kernel_params(rows: Iterable[Case]) -> list[Any]:
    return [pytest.param(c, id=c.name, marks=_skip_other_machine(c) + (
        _xfail("kernel", c.kernel_bug) if c.kernel_bug else _xfail("model", c.model_bug)))
        for c in rows]


@cache
def _machine() -> dict[str, object]:
    return probe().as_dict()


def _skip_other_machine(c: Case) -> list[pytest.MarkDecorator]:
    """Skip the kernel twin of a row written for features this machine lacks."""
    other = [f"{k}={v}" for k, v in c.features if not _same(k, _machine()[k], v)]
    if not other:
        return []
    return [pytest.mark.skip(reason=f"the row is for a kernel with {', '.join(other)}; this "
                             "machine's differs (its twin row runs here)")]


def _same(feature: str, machine: object, row: int) -> bool:
    """Whether the machine has the feature value a row was written for. The tmpfile rows
    use files of at most 32 pages, which any readahead the probe accepts (at least twice
    the arena) reads whole: only whether tmpfile works matters."""
    if feature == "disk_ra_pages":
        return bool(machine) == bool(row)
    return machine == row


def _xfail(side: str, reason: str | None) -> list[pytest.MarkDecorator]:
    return [pytest.mark.xfail(reason=f"{side}: {reason}", strict=True)] if reason else []


def signal_text(signal: tuple[int, int] | None) -> str:
    """As the oracle names it (`SIGSEGV/ACCERR`); `-` for none."""
    return "-" if signal is None else oracle_signal_text(signal)


def address_text(offset: int) -> str:
    page, rest = divmod(offset, PAGE)
    return f"@{page}+{rest}" if rest else f"@{page}"


def prediction_text(call: Call, pred: Prediction) -> str:
    if call.name == "touch":
        return signal_text(pred.signal)
    if call.name == "exit":
        return "exit"
    assert pred.ret is not None
    if pred.ret == NEW_PID:
        return "pid"
    if pred.ret == OUTSIDE:
        return "outside"
    if pred.ret < 0:
        return f"-{errno_name(-pred.ret)}"
    return address_text(pred.ret) if call.syscall.returns_address else str(pred.ret)


def kernel_result(call: Call, ret: int | None, signal: tuple[int, int] | None) -> str:
    if call.name == "touch":
        return signal_text(signal)
    if call.name == "exit":
        return "exit"
    assert ret is not None
    if is_errno(ret):
        return f"-{errno_name(-ret)}"
    if call.name == "fork":
        return "pid"
    if not call.syscall.returns_address:
        return str(ret)
    if ARENA_BASE <= ret < ARENA_BASE + ARENA_SIZE:
        return address_text(ret - ARENA_BASE)
    return "outside"


def run_model(text: str, state: State | None = None) -> tuple[list[str], State]:
    """Every step's result, and the state of the process that made the last call
    (of p0 if that call was its exit)."""
    world = World.start(State() if state is None else state)
    calls = parse(text).calls
    results = [prediction_text(call, world_step(world, call)) for call in calls]
    return results, world.procs[calls[-1].proc] or world.proc(0)


def check_model(c: Case, state: State | None = None) -> State:
    if state is None:
        state = State(features=c.model_features())
    results, state = run_model(c.text, state)
    shown = pmd_view(model_view(state.pages), state.pmds)  # what pagemap shows (§22)
    assert (results, render(shown)) == (list(c.results), c.final), c.text
    if c.locked is not None:
        assert state.locked_pages() == c.locked, c.text
    return state


def explain(report: Report) -> str:
    lines = [f"program:\n{report.program.text()}"]
    for d in report.divergences:
        call = report.program.calls[d.step].name if d.step < len(report.program) else "?"
        lines.append(f"step {d.step} ({call}): {d.title}\n"
                     f"    expected: {d.expected}\n    observed: {d.observed}")
    return "\n".join(lines)


def check_kernel(c: Case, run_text: Callable[[str], Report]) -> None:
    report = run_text(c.text)
    assert report.divergences == [], explain(report)
    results = [kernel_result(s.call, s.ret, s.signal) for s in report.steps]
    assert report.snapshot is not None
    final = render(kernel_view(report.snapshot))
    locked = report.snapshot.vmlck // PAGE if c.locked is not None else None
    assert (results, final, locked) == (list(c.results), c.final, c.locked), \
        f"kernel and model agree, but not with the table\n{report.program.text()}"


def check_table(rows: list[Case], at_least: int) -> None:
    names = [c.name for c in rows]
    assert len(names) == len(set(names)), "duplicate case names"
    assert len(names) >= at_least
    for c in rows:
        assert len(parse(c.text).calls) == len(c.results), c.name


# The two machines of PROT_EXEC-only mappings (Features.exec_only_readable): without
# protection keys such a page can be populated and read; with them (x86 OSPKE) it has
# the execute-only pkey, and every data access and populate fails.
EXEC_READABLE = {"exec_only_readable": True}
EXEC_PKEY = {"exec_only_readable": False}


def two_files_mapped(supervisor: Supervisor, create: str) -> list[Vma]:
    """The arena VMAs after two files made by `create` (`memfd_create()`, `tmpfile()`) are
    mapped: the first shared at @0 and private at @2, the second shared at @4, a page
    each (what the kernel twins check smaps names them)."""
    program = parse(f"""
        {create}
        {create}
        mmap(@0, 1p, PROT_READ, MAP_SHARED|MAP_FIXED, 0, 0)
        mmap(@2, 1p, PROT_READ, MAP_PRIVATE|MAP_FIXED, 0, 0)
        mmap(@4, 1p, PROT_READ, MAP_SHARED|MAP_FIXED, 1, 0)
        """)
    with supervisor.run(program) as run, Observer(run.pid) as observer:
        snaps = [observer.snapshot() for _ in run.steps()]
    return arena_vmas(snaps[-1])
