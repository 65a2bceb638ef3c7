"""The Recorder on real runs: a hang is stored only if it recurs with a longer budget."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fuzzer.campaign import record
from fuzzer.campaign.record import Recorder
from fuzzer.executor import executor_path
from fuzzer.inject import Injection, Skip, Syscall
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


UNMAPPED = parse("mmap(@0, 1p, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED, -1, 0)\n"
                 "munmap(@0, 1p)\n")


@pytest.mark.parametrize(("baseline_injected", "stored"), [
    (False, ("skip-munmap",)),  # only the injection makes munmap leave the page: its finding
    (True, ()),  # the program shows it without the injection too: not the injection's
])
def test_a_divergence_is_credited_to_injections_only_if_they_cause_it(
        tmp_path: Path, baseline_injected: bool, stored: tuple[str, ...]) -> None:
    store = open_store(f"sqlite:///{tmp_path}/db.sqlite", create=True)
    cid = store.start_campaign(kernel="k", host="h", options={})
    injected = Supervisor(executor_path(), budget=5.0, injections=[_SkipMunmap()])
    # The baseline stands for the kernel without the injections; run with the same
    # emulated bug, it shows the divergence as a kernel bug would.
    baseline = Supervisor(executor_path(), budget=5.0,
                          injections=[_SkipMunmap()] if baseline_injected else [])
    recorder = Recorder(store, cid, injected, plain=baseline)
    report = recorder.check(UNMAPPED)
    assert report.divergences, "the injection must make the program diverge"
    assert [d.title for d in recorder.injected] == (
        [] if stored == () else [d.title for d in report.divergences])
    (bucket,) = store.buckets()
    assert store.bucket(bucket.id).samples[0].injections == stored


class _SkipMunmap(Injection):
    name = "skip-munmap"

    def on_entry(self, call: Syscall) -> Skip | None:
        return Skip(0) if call.name == "munmap" else None


def test_one_step_with_several_symptoms_is_one_sample_under_its_primary(tmp_path: Path) -> None:
    """The 6.18 DONTUNMAP bug, moving a locked page next to itself, leaves it unlocked
    (lock), merged with the old VMA (vma) and VmLck wrong (vmlck): one bucket, the lock
    one, whose sample keeps the other two."""
    store = open_store(f"sqlite:///{tmp_path}/db.sqlite", create=True)
    report = Recorder(store, None, Supervisor(executor_path(), budget=5.0)).check(parse(
        "mmap(@0, 1p, PROT_NONE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED|MAP_LOCKED, -1, 0)\n"
        "mremap(@0, 1p, 1p, MREMAP_MAYMOVE|MREMAP_FIXED|MREMAP_DONTUNMAP, @1)\n"))
    if not report.divergences:
        pytest.skip(f"{os.uname().release} moves locked pages with DONTUNMAP correctly")
    assert [d.kind for d in report.divergences] == ["lock", "vma", "vmlck"]
    (bucket,) = store.buckets()
    assert bucket.title == "lock: mremap(MAYMOVE|DONTUNMAP) left pages unlocked"
    sample = store.bucket(bucket.id).samples[0]
    assert sample.symptoms == tuple(d.title for d in report.divergences[1:])
    assert sample.build == os.uname().version
