"""The store on a real PostgreSQL server (a throwaway one, tests/pg.py): reading and
writing, processes creating a new database together, read-only engines, and riding
out a server restart or outage without losing a sample (retry.py, spool.py)."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from fuzzer.campaign.options import Options
from fuzzer.campaign.run import run_campaign
from fuzzer.campaign.spool import Spool, drain_folder
from fuzzer.oracle import Divergence, DivergenceKind
from fuzzer.store import OpCount, SampleContext, Store, StoreError, open_store
from fuzzer.store.models import OpCount as OpCountRow
from fuzzer.store.models import Sample
from tests.pg import Server
from tests.test_store import check_corpus_batches

pytestmark = pytest.mark.slow  # a server of its own to start, and processes

pytestmark = pytest.mark.slow  # a server of its own to start, and processes

PAIRS = 10
STREAM = 300  # samples written while the server restarts
OUTAGE = 2.0  # seconds the server is away in the middle of a campaign


def _divergence(n: int) -> Divergence:
    return Divergence(DivergenceKind.LOCK, f"lock: VmLck differs {n % 7}", 1,
                      f"expected {n}", f"observed {n}")


def _seen(n: int, campaign_id: int | None = None) -> SampleContext:
    return SampleContext(campaign_id, f"mlock({n}, 1)", f"{n:016x}", "6.18.0")


def _samples(store: Store) -> int:
    with Session(store.engine) as s:
        return int(s.scalar(select(func.count()).select_from(Sample)) or 0)


def test_a_postgresql_database_stores_reads_and_dedups(pg_url: str) -> None:
    # A plain postgresql:// URL means the driver mmfuzz installs (psycopg 3).
    store = open_store(pg_url.replace("postgresql+psycopg://", "postgresql://"))
    cid = store.start_campaign(kernel="6.18.0", host="h", options={"workers": 1})
    assert store.record(_divergence(0), _seen(0, cid)) == (1, True)
    assert store.record(_divergence(7), _seen(7, cid)) == (1, False)  # same title
    store.add_progress(cid, programs=3, steps=9, ops=[OpCount("mlock", "", "ok", 9)])
    store.finish_campaign(cid)
    again = open_store(pg_url, create=False)
    (bucket,) = again.buckets()
    assert (bucket.count, again.campaign(cid).divergences) == (2, 2)
    assert (again.campaign(cid).steps, again.campaign(cid).status) == (9, "done")
    assert [o.count for o in again.op_counts(cid)] == [9]


def _open_and_write(url: str, go: object, worker: int) -> None:
    """A process opening a new database at the same moment as its twin, then writing."""
    go.wait(30)  # type: ignore[attr-defined]
    store = open_store(url)
    cid = store.start_campaign(kernel="6.18.0", host=f"w{worker}", options={})
    store.record(_divergence(worker), _seen(worker, cid))
    store.add_progress(cid, programs=1, steps=2, ops=[OpCount("mmap", "", "ok", 2)])
    store.finish_campaign(cid)


def test_pairs_of_processes_create_a_new_database_together(pg_server: Server) -> None:
    """Without the advisory lock, one of two processes creating the tables together
    fails about half the time (pg_class_relname_nsp_index)."""
    ctx = multiprocessing.get_context("fork")
    results = []
    for pair in range(PAIRS):
        url = pg_server.create_database(f"pair_{pair}_{os.getpid()}")
        go = ctx.Event()
        procs = [ctx.Process(target=_open_and_write, args=(url, go, w)) for w in range(2)]
        for p in procs:
            p.start()
        go.set()
        for p in procs:
            p.join(timeout=60)
            if p.is_alive():
                p.kill()
                p.join()
        results.append([p.exitcode for p in procs])
        assert len(open_store(url, create=False).campaigns()) == 2
    assert results == [[0, 0]] * PAIRS


@pytest.mark.slow
@pytest.mark.kernel
def test_two_campaigns_started_at_once_on_a_new_database(pg_url: str, tmp_path: Path) -> None:
    mmfuzz = Path(sys.executable).parent / "mmfuzz"
    cmd = [str(mmfuzz), "run", "--time", "3", "--db", pg_url]
    procs = [subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT) for _ in range(2)]
    try:
        outputs = [p.communicate(timeout=120)[0].decode() for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert [p.returncode for p in procs] == [0, 0], outputs
    campaigns = open_store(pg_url, create=False).campaigns()
    assert [c.status for c in campaigns] == ["done", "done"]
    assert all(c.programs > 0 for c in campaigns)


def test_a_read_only_store_reads_but_cannot_write(pg_url: str) -> None:
    cid = open_store(pg_url).start_campaign(kernel="6.18.0", host="h", options={})
    reader = open_store(pg_url, create=False, read_only=True)
    with reader.engine.connect() as conn:
        assert conn.exec_driver_sql("SHOW default_transaction_read_only").scalar() == "on"
    assert reader.campaign(cid).status == "running"
    with pytest.raises(StoreError, match="read-only transaction") as e:
        reader.finish_campaign(cid)
    assert "\n" not in str(e.value)
    assert open_store(pg_url).campaign(cid).status == "running"


def test_a_read_only_open_still_brings_an_older_database_up_to_date(pg_url: str) -> None:
    """A table added since (ADDED_TABLES) is created even by a command that only reads."""
    store = open_store(pg_url)
    with store.engine.begin() as conn:
        conn.execute(text(f"DROP TABLE {OpCountRow.__tablename__}"))
    reader = open_store(pg_url, create=False, read_only=True)
    assert reader.op_counts() == []


def test_an_empty_database_is_not_an_mmfuzz_database_to_read(pg_url: str) -> None:
    with pytest.raises(StoreError, match="missing tables"):
        open_store(pg_url, create=False, read_only=True)


def _stream(url: str, spool: Path, started: object) -> None:
    """A process writing STREAM samples, one by one, through a spool."""
    store = open_store(url)
    writes = Spool(store, spool)
    for n in range(STREAM):
        writes.call("record", _divergence(n), _seen(n))
        if n == 20:
            started.set()  # type: ignore[attr-defined]
        time.sleep(0.005)
    writes.drain(now=True, patience=30)
    sys.exit(1 if writes.pending or writes.failed else 0)


def test_a_server_restart_in_a_stream_of_writes_loses_no_sample(
        pg_server: Server, pg_url: str, tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    started = ctx.Event()
    proc = ctx.Process(target=_stream, args=(pg_url, tmp_path / "w.spool", started))
    proc.start()
    try:
        assert started.wait(60)
        pg_server.restart()  # pg_ctl restart -m fast: every connection is cut
        store = open_store(pg_url)
        assert _samples(store) < STREAM  # the restart was in the middle of the stream
        proc.join(timeout=120)
    finally:
        if proc.is_alive():
            proc.kill()
    assert proc.exitcode == 0
    assert _samples(store) == STREAM


def test_writes_are_spooled_while_the_server_is_away(
        pg_server: Server, pg_url: str, tmp_path: Path) -> None:
    store = open_store(pg_url)
    cid = store.start_campaign(kernel="6.18.0", host="h", options={})
    store.patience = 0.5
    told: list[tuple[str, object]] = []
    spool = Spool(store, tmp_path / "w.spool", on_replay=lambda n, a, r: told.append((n, r)))
    pg_server.stop()
    try:
        assert spool.call("record", _divergence(1), _seen(1, cid)) is None
        assert spool.call("add_progress", cid, programs=1, steps=4) is None
        assert spool.drain(now=True) == 2  # still away: kept, in order
        assert len((tmp_path / "w.spool").read_text().splitlines()) == 2
    finally:
        pg_server.start()
    assert spool.drain(now=True) == 0
    assert told == [("record", (1, True)), ("add_progress", None)]
    assert not (tmp_path / "w.spool").exists()
    row = store.campaign(cid)
    assert (row.divergences, row.programs, row.steps) == (1, 1, 4)


def test_a_campaign_writes_the_spool_its_worker_left(
        pg_server: Server, pg_url: str, tmp_path: Path) -> None:
    """A worker that ended while the server was away left its spool file in the
    campaign's scratch folder: the campaign's parent writes it, then removes the folder."""
    store = open_store(pg_url)
    cid = store.start_campaign(kernel="6.18.0", host="h", options={})
    store.patience = 0.2
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    pg_server.stop()
    try:
        assert Spool(store, scratch / "worker-1.spool").call(
            "record", _divergence(2), _seen(2, cid)) is None
        assert drain_folder(store, scratch, 0.2) == [
            f"1 store writes the database did not take are kept in {scratch / 'worker-1.spool'}"]
    finally:
        pg_server.start()
    assert drain_folder(open_store(pg_url), scratch, 5) == []
    assert not scratch.exists()
    assert store.campaign(cid).divergences == 1


@pytest.mark.kernel
def test_a_campaign_rides_out_a_server_restart_and_loses_no_sample(
        pg_server: Server, pg_url: str, tmp_path: Path) -> None:
    """Under an emulated bug that diverges often, the server goes away for OUTAGE seconds
    once the worker is writing: the campaign ends done, and every sample its workers
    told the parent of is stored."""
    store = open_store(pg_url)
    opts = Options(db=pg_url, time=8, minimize_budget=0, injections=("populate-needs-lock",),
                   calls=("mmap", "touch", "munmap"))
    away: list[int] = []

    def outage() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not away:
            rows = store.campaigns()
            if rows and rows[0].programs > 0:  # the worker has written its progress
                away.append(rows[0].programs)
                pg_server.stop()
                time.sleep(OUTAGE)
                pg_server.start()
            time.sleep(0.1)

    watcher = threading.Thread(target=outage)
    watcher.start()
    try:
        progress = run_campaign(store, opts, show=lambda p: None)
    finally:
        watcher.join(timeout=120)
    assert away and progress.status == "done" and not progress.warnings
    assert progress.programs > away[0]  # it went on fuzzing after the outage
    told = sum(progress.hits.values())
    assert told > 0
    row = open_store(pg_url, create=False).campaign(progress.campaign_id)
    assert (row.status, row.divergences, row.programs) == ("done", told, progress.programs)
    with Session(store.engine) as s:
        stored = s.scalar(select(func.count()).select_from(Sample)
                          .where(Sample.campaign_id == progress.campaign_id))
    assert stored == told


def test_corpus_batches_on_postgresql(pg_url: str) -> None:
    check_corpus_batches(open_store(pg_url))
