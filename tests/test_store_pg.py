"""The store on a real PostgreSQL server (a throwaway one, tests/pg.py): reading and
writing, processes creating a new database together, read-only engines."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from fuzzer.oracle import Divergence, DivergenceKind
from fuzzer.store import OpCount, SampleContext, Store, StoreError, open_store
from fuzzer.store.models import OpCount as OpCountRow
from fuzzer.store.models import Sample
from tests.pg import Server

pytestmark = pytest.mark.slow  # a server of its own to start, and processes

PAIRS = 10


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
    outputs = []
    for p in procs:
        try:
            outputs.append(p.communicate(timeout=120)[0].decode())
        finally:
            if p.poll() is None:
                p.kill()
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
