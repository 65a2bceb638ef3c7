"""The Recorder on real runs: a hang is stored only if it recurs with a longer budget."""

from __future__ import annotations

from pathlib import Path

import pytest

from fuzzer.campaign import record
from fuzzer.campaign.record import Recorder
from fuzzer.executor import executor_path
from fuzzer.prog import parse
from fuzzer.store import open_store
from fuzzer.trace import Supervisor

pytestmark = pytest.mark.kernel

PROGRAM = parse("mmap(@0, 1p, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED, -1, 0)\n")


def _recorder(tmp_path: Path, budget: float) -> tuple[Recorder, Supervisor]:
    store = open_store(f"sqlite:///{tmp_path}/db.sqlite", create=True)
    cid = store.start_campaign(kernel="k", host="h", options={})
    supervisor = Supervisor(executor_path(), budget=budget)
    return Recorder(store, cid, supervisor), supervisor


def test_a_hang_that_recurs_is_stored(tmp_path: Path) -> None:
    # A budget no run can meet, four times over as well: a hang each time.
    recorder, supervisor = _recorder(tmp_path, budget=1e-6)
    report = recorder.check(PROGRAM)
    assert [d.kind for d in report.divergences] == ["hang"]
    assert len(recorder.store.buckets()) == 1
    assert supervisor.budget == 1e-6  # the longer budget was for the second run only


def test_a_hang_that_does_not_recur_is_not_stored(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # The first run cannot meet its budget; the confirming run has seconds.
    monkeypatch.setattr(record, "HANG_CONFIRM_FACTOR", 5e6)
    recorder, _ = _recorder(tmp_path, budget=1e-6)
    report = recorder.check(PROGRAM)
    assert report.divergences == []
    assert len(report.steps) == 1
    assert recorder.store.buckets() == []
    assert (recorder.programs, recorder.steps) == (1, 1)
