"""Resuming a campaign, without the kernel: the store's claim on the row (who may resume,
what it records), the campaign's running time across runs, the options a resumed
run takes, and the corpus its workers start from. On SQLite, and on a throwaway
PostgreSQL server for the claim.

The campaigns themselves, interrupted, killed and resumed, are test_resume_campaign.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from fuzzer.campaign import coverage, feedback
from fuzzer.campaign.feedback import SharedCorpus
from fuzzer.campaign.options import DEFAULTS, Options
from fuzzer.campaign.run import CampaignError, resume_options
from fuzzer.prog import parse
from fuzzer.store import CampaignRow, Store, StoreError, open_store
from tests.inbox import drained

T0 = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)


class Clock:
    """The store's clock, moved by hand."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def tick(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return open_store(f"sqlite:///{tmp_path}/r.sqlite")


@pytest.fixture
def clock(store: Store, monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(store, "_now", c)
    return c


def _options(**changes: object) -> dict[str, object]:
    return {**Options(time=100, **changes).as_json(), "features": {}}  # type: ignore[arg-type]


# -- the campaign's running time, across its runs ------------------------------------


def _row(resumed: tuple[tuple[datetime, float], ...] = (), **kw: object) -> CampaignRow:
    fields: dict[str, object] = dict(id=1, kernel="k", host="h", options={}, started=T0,
                                     ended=None, programs=0, steps=0, divergences=0,
                                     status="interrupted", resumed=resumed)
    return CampaignRow(**{**fields, **kw})  # type: ignore[arg-type]


def _at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


# Ran 0-30 s, paused until 100 s, ran again from 100 s (30 s before it), paused from
# 150 s until 1000 s, ran again (80 s before it).
RUNS = ((_at(100), 30.0), (_at(1000), 80.0))


@pytest.mark.parametrize(("wall", "seconds"), [
    (0, 0.0), (10, 10.0), (30, 30.0),
    (60, 30.0),  # in the pause: the end of the run before it
    (100, 30.0), (120, 50.0), (150, 80.0),
    (500, 80.0),
    (1000, 80.0), (1010, 90.0),
    (-5, 0.0),  # before its start (another machine's clock): its start
])
def test_a_moment_is_seconds_of_the_campaign_running_time(wall: float, seconds: float) -> None:
    assert _row(RUNS).seconds(_at(wall)) == seconds


def test_a_campaign_run_once_counts_from_its_start() -> None:
    row = _row()
    assert row.runs == ((T0, 0.0),)
    assert row.seconds(_at(42)) == 42.0
    assert row.ran(_at(42)) == 42.0


def test_the_time_a_campaign_ran_is_its_runs_without_the_pauses() -> None:
    assert _row(RUNS).ran(_at(1020)) == 100.0
    assert _row(RUNS[:1]).ran(_at(150)) == 80.0


def test_coverage_growth_of_a_resumed_campaign_is_one_rising_curve() -> None:
    entries = [(_at(5), ["a"]), (_at(25), ["b"]), (_at(110), ["c", "d"]),
               (_at(1005), ["a", "e"])]
    growth = coverage.summary(entries, _row(RUNS).seconds).growth
    assert growth == [(5.0, 1), (25.0, 2), (40.0, 4), (85.0, 5)]


# -- the claim on the row ---------------------------------------------------------


def test_an_interrupted_campaign_is_running_again_in_its_own_row(store: Store,
                                                                  clock: Clock) -> None:
    cid = store.start_campaign(kernel="k", host="a", options=_options())
    store.add_progress(cid, programs=10, steps=50)
    clock.tick(30)
    store.finish_campaign(cid, "interrupted")
    clock.tick(70)
    was = store.resume_campaign(cid, host="b")
    assert (was.status, was.ended, was.resumed) == ("interrupted", _at(30), ())
    row = store.campaign(cid)
    assert (row.status, row.ended, row.host, row.heartbeat) == ("running", None, "b", _at(100))
    assert (row.programs, row.steps, row.started) == (10, 50, T0)
    assert row.resumed == ((_at(100), 30.0),)
    assert [c.id for c in store.campaigns()] == [cid]
    # Its second run ends; the third starts from both.
    clock.tick(50)
    store.finish_campaign(cid, "failed")
    clock.tick(850)
    store.resume_campaign(cid, host="b")
    assert store.campaign(cid).resumed == RUNS


def test_a_lost_campaign_resumes_from_its_last_heartbeat(store: Store, clock: Clock) -> None:
    cid = store.start_campaign(kernel="k", host="a", options=_options())
    clock.tick(20)
    store.heartbeat(cid, alive=1)
    clock.tick(10)
    with pytest.raises(StoreError, match=f"campaign {cid} is still running on a .* 10 s ago"):
        store.resume_campaign(cid, host="a", after=30)
    clock.tick(25)
    store.resume_campaign(cid, host="a", after=30)
    assert store.campaign(cid).resumed == ((_at(55), 20.0),)
    # ... and now it is running: a second resume is refused.
    with pytest.raises(StoreError, match="still running"):
        store.resume_campaign(cid, host="c", after=30)


def test_a_done_or_unknown_campaign_is_not_resumed(store: Store, clock: Clock) -> None:
    cid = store.start_campaign(kernel="k", host="a", options=_options())
    store.finish_campaign(cid, "done")
    with pytest.raises(StoreError, match=f"campaign {cid} is done: it ran its whole time"):
        store.resume_campaign(cid, host="a")
    with pytest.raises(StoreError, match="no campaign with id 9"):
        store.resume_campaign(9, host="a")
    assert store.campaign(cid).status == "done"


def test_a_refusing_check_leaves_the_row_as_it_was(store: Store, clock: Clock) -> None:
    cid = store.start_campaign(kernel="k", host="a", options=_options())
    store.finish_campaign(cid, "interrupted")
    before = store.campaign(cid)

    def refuse(row: CampaignRow) -> None:
        raise CampaignError(f"no: {row.id}")

    with pytest.raises(CampaignError, match=f"no: {cid}"):
        store.resume_campaign(cid, host="b", check=refuse)
    assert store.campaign(cid) == before


def test_worker_totals_are_each_worker_last_point(store: Store, clock: Clock) -> None:
    cid = store.start_campaign(kernel="k", host="a", options=_options())
    other = store.start_campaign(kernel="k", host="a", options=_options())
    assert store.worker_totals(cid) == {}
    store.add_point(cid, worker=0, programs=5, steps=50)
    store.add_point(cid, worker=1, programs=7, steps=70)
    store.add_point(other, worker=0, programs=900, steps=9000)
    clock.tick(10)
    store.add_point(cid, worker=0, programs=9, steps=95)
    assert store.worker_totals(cid) == {0: (9, 95), 1: (7, 70)}


# -- the options of the next run -----------------------------------------------------


def _interrupted(store: Store, clock: Clock, ran: float = 30, **options: object) -> CampaignRow:
    cid = store.start_campaign(kernel="k", host="a", options=_options(**options))
    clock.tick(ran)
    store.finish_campaign(cid, "interrupted")
    return store.campaign(cid)


def test_a_resumed_run_keeps_the_stored_options_and_changes_the_machine_ones(
        store: Store, clock: Clock) -> None:
    row = _interrupted(store, clock, workers=2, injections=("populate-needs-lock",),
                       calls=("mmap", "mlock"), seed=7)
    opts = resume_options(row, {"workers": 4, "cpus": "0-3", "seed": 7, "time": 100,
                                "injections": ("populate-needs-lock",)})
    assert (opts.workers, opts.cpus, opts.seed, opts.time) == (4, "0-3", 7, 100)
    assert (opts.injections, opts.calls) == (("populate-needs-lock",), ("mmap", "mlock"))


@pytest.mark.parametrize(("change", "message"), [
    ({"injections": ()}, r"--inject \(none\) conflicts with campaign \d+, which runs with "
                         "populate-needs-lock"),
    ({"kernel": "uml:/usr/bin/linux"}, "--kernel uml:/usr/bin/linux conflicts"),
    ({"time": 600}, "--time 600 conflicts .* runs with 100"),
    ({"search": "bytes"}, "--search bytes conflicts"),
])
def test_changing_what_the_campaign_is_is_refused(store: Store, clock: Clock,
                                                  change: dict[str, object],
                                                  message: str) -> None:
    row = _interrupted(store, clock, injections=("populate-needs-lock",))
    with pytest.raises(CampaignError, match=message) as e:
        resume_options(row, change)
    assert "\n" not in str(e.value) and "only --db, --workers, --cpus" in str(e.value)


def test_a_campaign_without_time_left_is_refused(store: Store, clock: Clock) -> None:
    row = _interrupted(store, clock, ran=99.5)
    with pytest.raises(CampaignError, match=rf"campaign {row.id} has no time left: it ran "
                                            "100 s of its 100 s"):
        resume_options(row, {})


def test_options_stored_by_an_older_mmfuzz_take_the_defaults(store: Store) -> None:
    data = {k: v for k, v in _options().items() if k not in ("cpus", "guest_mem", "explore")}
    opts = Options.stored(data)
    assert (opts.cpus, opts.guest_mem, opts.explore) == (
        DEFAULTS.cpus, DEFAULTS.guest_mem, DEFAULTS.explore)
    assert opts.time == 100


# -- the corpus its workers start from ---------------------------------------------


PROGRAMS = [f"mmap(@0, {n}p, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED, -1, 0)"
            for n in range(1, 9)]


def _add(store: Store, cid: int, texts: list[str]) -> None:
    store.add_corpus_many(cid, [(t, parse(t).hash, [t]) for t in texts])


def test_a_campaign_plants_its_own_entries_when_others_are_newer(
        store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(feedback, "PLANTED_ENTRIES", 3)
    ours = store.start_campaign(kernel="k", host="a", options=_options())
    other = store.start_campaign(kernel="k", host="a", options=_options())
    _add(store, ours, PROGRAMS[:3])
    _add(store, other, PROGRAMS[3:])  # newer, and more than PLANTED_ENTRIES
    assert store.corpus_newest(10, campaign=ours)[0] == PROGRAMS[:3]
    corpus = SharedCorpus(store, ours, None)
    corpus.plant([])
    planted = set(drained(corpus))  # what libFuzzer is handed
    assert {parse(t).text() for t in PROGRAMS[:3]} <= planted
    assert {parse(t).text() for t in PROGRAMS[-3:]} <= planted  # the newest of all, too


# -- PostgreSQL ---------------------------------------------------------------------


@pytest.mark.slow
def test_resuming_on_postgresql(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    store = open_store(pg_url)
    clock = Clock()
    monkeypatch.setattr(store, "_now", clock)
    cid = store.start_campaign(kernel="k", host="a", options=_options())
    store.add_point(cid, worker=0, programs=3, steps=30)
    clock.tick(30)
    store.finish_campaign(cid, "interrupted")
    clock.tick(70)
    store.resume_campaign(cid, host="b")
    with pytest.raises(StoreError, match="still running"):
        store.resume_campaign(cid, host="c")
    row = open_store(pg_url, create=False, read_only=True).campaign(cid)
    assert (row.status, row.host, row.resumed) == ("running", "b", ((_at(100), 30.0),))
    assert store.worker_totals(cid) == {0: (3, 30)}
