"""model_view and kernel_view, which cache and intern their PageViews, give the very
views of a new PageView per page (model_view_full, kernel_view_full), at every
comparison of many generated programs' checks, forks included.
"""

from __future__ import annotations

import random

import pytest

from fuzzer.campaign.throughput import workload
from fuzzer.check import check
from fuzzer.check import program as check_program
from fuzzer.model import Prediction, State, Unsupported
from fuzzer.model.state import Page
from fuzzer.oracle import views
from fuzzer.prog import ARENA
from fuzzer.prog.step import Step
from fuzzer.snapshot.parse import Snapshot
from fuzzer.trace import Supervisor
from tests.test_attrs_copies import random_attrs

PROGRAMS = 1000


@pytest.mark.kernel
@pytest.mark.slow
def test_cached_views_equal_full_views(supervisor: Supervisor,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    compared = 0
    real = check_program.compare

    def both(step: Step, pred: Prediction, state: State, snap: Snapshot,
             where: str = "", known: bool = False,
             judged: tuple[int, int] | None = None) -> list[object]:
        nonlocal compared
        compared += 1
        assert views.model_view(state.pages) == views.model_view_full(state.pages)
        assert views.kernel_view(snap) == views.kernel_view_full(snap)
        return real(step, pred, state, snap, where, known, judged)  # type: ignore[return-value]

    monkeypatch.setattr(check_program, "compare", both)
    for program in workload(PROGRAMS, 11):
        try:
            check(supervisor, program)
        except Unsupported:
            continue
    assert compared > 5 * PROGRAMS


def test_views_of_random_pages_equal_full_views() -> None:
    rng = random.Random(5)
    pool = [Page(random_attrs(rng), rng.choice([".", "Z", "A", "F", "f", "a3", "G"]))
            for _ in range(40)]
    for _ in range(2000):
        pages: list[Page | None] = [rng.choice([None, *pool]) for _ in range(ARENA.pages)]
        assert views.model_view(pages) == views.model_view_full(pages)


def test_kernel_view_needs_a_word_per_page() -> None:
    snap = Snapshot((), 0, (0,) * (ARENA.pages - 1), 0)
    with pytest.raises(ValueError):
        views.kernel_view(snap)
    with pytest.raises(ValueError):
        views.kernel_view_full(snap)
