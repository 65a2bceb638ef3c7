"""The store on real SQLite files: dedup, counters, ordering, errors, concurrent writers."""

from __future__ import annotations

import multiprocessing
import sqlite3
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fuzzer.store import DEFAULT_URL, Store, StoreError, open_store
from fuzzer.store.models import Program, Sample

WORKERS = 4
PER_WORKER = 50


def _url(path: Path) -> str:
    return f"sqlite:///{path}"


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return open_store(_url(tmp_path / "db" / "t.sqlite"))


def _record(
    store: Store, title: str, *, n: int = 0, campaign_id: int | None = None
) -> tuple[int, bool]:
    return store.record(
        campaign_id=campaign_id,
        program_text=f"r0 = mmap(0, 1, RW, PRIVATE|ANONYMOUS)\nmlock({n}, 1)",
        program_hash=f"{n:016x}",
        kind=title.split(":")[0],
        title=title,
        step=n,
        expected=f"expected {n}",
        observed=f"observed {n}",
        kernel="6.18.0",
    )


def _count(store: Store, table: type[Program] | type[Sample]) -> int:
    with Session(store.engine) as s:
        return s.scalars(select(func.count()).select_from(table)).one()


def _error(url: str, *, create: bool = True) -> str:
    with pytest.raises(StoreError) as info:
        open_store(url, create=create)
    message = str(info.value)
    assert "\n" not in message and "Traceback" not in message
    return message


# -- recording ---------------------------------------------------------------


def test_record_dedups_buckets_by_title_and_counts(store: Store) -> None:
    a1 = _record(store, "presence: mmap(POPULATE) left pages absent", n=1)
    b1 = _record(store, "lock: mlock(RW) left VmLck at 0", n=2)
    a2 = _record(store, "presence: mmap(POPULATE) left pages absent", n=3)
    assert a1 == (a1[0], True) and b1 == (b1[0], True) and a1[0] != b1[0]
    assert a2 == (a1[0], False)
    counts = {b.title: (b.count, b.kind, b.status) for b in store.buckets()}
    assert counts == {
        "presence: mmap(POPULATE) left pages absent": (2, "presence", "new"),
        "lock: mlock(RW) left VmLck at 0": (1, "lock", "new"),
    }
    detail = store.bucket(a1[0])
    assert [s.step for s in detail.samples] == [1, 3]  # oldest first
    assert detail.first_seen <= detail.last_seen
    assert detail.samples[1].observed == "observed 3"
    assert detail.samples[1].program_hash == f"{3:016x}"
    assert detail.samples[1].created.tzinfo == UTC
    assert _count(store, Sample) == 3


def test_programs_are_stored_once_per_hash(store: Store) -> None:
    for title in ("a: one", "b: two", "c: three"):
        _record(store, title, n=7)
    _record(store, "a: one", n=8)
    assert _count(store, Program) == 2
    assert _count(store, Sample) == 4
    texts = {s.program_text for b in store.buckets() for s in store.bucket(b.id).samples}
    assert texts == {
        "r0 = mmap(0, 1, RW, PRIVATE|ANONYMOUS)\nmlock(7, 1)",
        "r0 = mmap(0, 1, RW, PRIVATE|ANONYMOUS)\nmlock(8, 1)",
    }


def test_record_rejects_a_malformed_hash(store: Store) -> None:
    with pytest.raises(ValueError, match="16 lowercase hex"):
        store.record(
            campaign_id=None,
            program_text="x",
            program_hash="xyz",
            kind="k",
            title="k: t",
            step=0,
            expected="",
            observed="",
            kernel="",
        )
    assert store.buckets() == []


def test_record_for_an_unknown_campaign_writes_nothing(store: Store) -> None:
    with pytest.raises(StoreError, match="no campaign with id 99"):
        _record(store, "a: one", campaign_id=99)
    assert store.buckets() == []
    assert _count(store, Program) == 0


def test_buckets_are_ordered_newest_last_seen_first(store: Store) -> None:
    a, _ = _record(store, "a: one")
    b, _ = _record(store, "b: two")
    c, _ = _record(store, "c: three")
    assert [x.id for x in store.buckets()] == [c, b, a]
    _record(store, "a: one")
    assert [x.id for x in store.buckets()] == [a, c, b]


def test_bucket_of_a_missing_id_is_a_store_error(store: Store) -> None:
    with pytest.raises(StoreError, match=r"^no bucket with id 42$"):
        store.bucket(42)


# -- campaigns ---------------------------------------------------------------


def test_campaign_counters_and_finish(store: Store) -> None:
    cid = store.start_campaign(kernel="6.18.0", host="box", options={"workers": 2, "seed": None})
    other = store.start_campaign(kernel="6.18.0", host="box", options={})
    row = store.campaign(cid)
    assert (row.status, row.ended) == ("running", None)
    assert (row.programs, row.steps, row.divergences) == (0, 0, 0)
    assert row.options == {"workers": 2, "seed": None}
    assert row.started.tzinfo == UTC
    store.add_progress(cid, programs=10, steps=120)
    store.add_progress(cid, programs=5, steps=30)
    _record(store, "a: one", campaign_id=cid)
    _record(store, "a: one", campaign_id=cid)
    _record(store, "b: two", campaign_id=cid)
    store.finish_campaign(cid)
    row = store.campaign(cid)
    assert (row.programs, row.steps, row.divergences, row.status) == (15, 150, 3, "done")
    assert row.ended is not None and row.ended >= row.started
    assert store.campaign(other).divergences == 0
    store.finish_campaign(other, "interrupted")
    assert [(c.id, c.status) for c in store.campaigns()] == [
        (other, "interrupted"),
        (cid, "done"),
    ]


def test_campaign_errors(store: Store) -> None:
    cid = store.start_campaign(kernel="k", host="h", options={})
    with pytest.raises(StoreError, match="no campaign with id 5"):
        store.campaign(5)
    with pytest.raises(StoreError, match="no campaign with id 5"):
        store.add_progress(5, programs=1, steps=1)
    with pytest.raises(ValueError):
        store.finish_campaign(cid, "running")
    with pytest.raises(ValueError):
        store.add_progress(cid, programs=-1, steps=0)
    assert store.campaign(cid).status == "running"


# -- opening -----------------------------------------------------------------


def test_default_url_is_relative_to_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = open_store(None)
    assert DEFAULT_URL == "sqlite:///db/mmfuzz.sqlite"
    assert store.url == "db/mmfuzz.sqlite"
    assert (tmp_path / "db" / "mmfuzz.sqlite").is_file()


def test_sqlite_connections_use_wal_busy_timeout_and_foreign_keys(store: Store) -> None:
    with store.engine.connect() as conn:
        pragmas = [
            conn.exec_driver_sql(f"PRAGMA {name}").scalar()
            for name in ("journal_mode", "busy_timeout", "foreign_keys")
        ]
    assert pragmas == ["wal", 30000, 1]


def test_reopening_keeps_existing_data(tmp_path: Path) -> None:
    url = _url(tmp_path / "t.sqlite")
    first = open_store(url)
    bucket_id, _ = _record(first, "a: one")
    first.close()
    for count, create in ((1, True), (2, False)):
        again = open_store(url, create=create)
        assert [(b.id, b.count) for b in again.buckets()] == [(bucket_id, count)]
        assert _record(again, "a: one")[1] is False
        again.close()


def test_missing_file_without_create(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    message = _error("sqlite:///db/x.sqlite", create=False)
    assert message == "no database at db/x.sqlite (run a campaign first, or pass --db)"
    assert not (tmp_path / "db").exists()


@pytest.mark.parametrize("create", [True, False])
def test_corrupt_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, create: bool) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "db").mkdir()
    garbage = bytes(range(256)) * 64
    (tmp_path / "db" / "x.sqlite").write_bytes(garbage)
    message = _error("sqlite:///db/x.sqlite", create=create)
    assert message == "db/x.sqlite is not a readable mmfuzz database: file is not a database"
    assert (tmp_path / "db" / "x.sqlite").read_bytes() == garbage  # never rewritten


def test_foreign_sqlite_database_without_create(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE notes (x)")
    message = _error(_url(path), create=False)
    assert message.startswith(f"{path} is not a readable mmfuzz database: missing tables")
    assert "bucket" in message


def test_unwritable_location(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    message = _error(_url(tmp_path / "file" / "sub" / "x.sqlite"))
    assert message.startswith("cannot create directory for ")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("not a url", "bad database URL 'not a url'"),
        ("nosuchdb://host/x", "bad database URL nosuchdb://host/x: unknown database"),
    ],
)
def test_bad_url(url: str, expected: str) -> None:
    assert _error(url).startswith(expected)


# -- concurrency -------------------------------------------------------------


def _record_many(url: str, worker: int, n: int) -> None:
    """Worker process: a campaign recording n divergences over shared titles and programs."""
    store = open_store(url)
    cid = store.start_campaign(kernel="6.18.0", host=f"w{worker}", options={"worker": worker})
    for i in range(n):
        # Titles and hashes repeat across workers, so inserts of the same key race.
        _record(store, f"presence: title {i % 7}", n=i % 13, campaign_id=cid)
        store.add_progress(cid, programs=1, steps=3)
    store.finish_campaign(cid)


def _record_forever(url: str, done: Any) -> None:
    """Worker process: records until killed, reporting each committed record."""
    store = open_store(url)
    cid = store.start_campaign(kernel="6.18.0", host="doomed", options={})
    done.put(cid)
    i = 0
    while True:
        _record(store, f"doomed: title {i % 5}", n=i % 11, campaign_id=cid)
        i += 1
        done.put(i)


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    url = _url(tmp_path / "db" / "shared.sqlite")  # created by the racing workers themselves
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_record_many, args=(url, w, PER_WORKER)) for w in range(WORKERS)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0] * WORKERS

    store = open_store(url, create=False)
    buckets = store.buckets()
    assert len(buckets) == 7
    assert sum(b.count for b in buckets) == WORKERS * PER_WORKER
    samples = [s for b in buckets for s in store.bucket(b.id).samples]
    assert len(samples) == WORKERS * PER_WORKER
    assert _count(store, Program) == 13
    campaigns = store.campaigns()
    assert len(campaigns) == WORKERS
    for c in campaigns:
        assert (c.status, c.programs, c.steps) == ("done", PER_WORKER, 3 * PER_WORKER)
        assert c.divergences == PER_WORKER
        assert sum(s.campaign_id == c.id for s in samples) == PER_WORKER


def test_a_killed_worker_loses_nothing_it_recorded(tmp_path: Path) -> None:
    url = _url(tmp_path / "shared.sqlite")
    open_store(url).close()
    ctx = multiprocessing.get_context("spawn")
    done = ctx.Queue()
    proc = ctx.Process(target=_record_forever, args=(url, done))
    proc.start()
    try:
        cid = done.get(timeout=60)
        committed = 0
        while committed < 30:
            committed = done.get(timeout=60)
    finally:
        proc.kill()
        proc.join(timeout=30)

    store = open_store(url, create=False)
    samples = [s for b in store.buckets() for s in store.bucket(b.id).samples]
    assert len(samples) >= committed
    # The counter and the samples were written together, or not at all.
    assert store.campaign(cid).divergences == len(samples)
    assert sum(b.count for b in store.buckets()) == len(samples)
    # The file is intact and nobody is left holding the write lock.
    assert _record(store, "after: kill")[1] is True
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
