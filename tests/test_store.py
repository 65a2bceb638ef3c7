"""The store on real SQLite files: dedup, counters, ordering, errors, concurrent writers,
migration of older databases, and triage (labels, filters, sorting, totals)."""

from __future__ import annotations

import json
import multiprocessing
import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from fuzzer.oracle import Divergence
from fuzzer.store import (
    DEFAULT_URL,
    STATUSES,
    OpCount,
    SampleContext,
    Store,
    StoreError,
    open_store,
)
from fuzzer.store import stats as store_stats
from fuzzer.store.corpus import CHUNK, chunks
from fuzzer.store.models import Program, Sample
from fuzzer.store.values import injection_names, injections_column

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
        Divergence(title.split(":")[0], title, n, f"expected {n}", f"observed {n}"),
        SampleContext(campaign_id, f"r0 = mmap(0, 1, RW, PRIVATE|ANONYMOUS)\nmlock({n}, 1)",
                      f"{n:016x}", "6.18.0"),
    )


def _seen(kernel: str, *, campaign_id: int | None = None, text: str = "p",
          digest: str = "00000000000000ff", injections: tuple[str, ...] = (),
          features: Any = None) -> SampleContext:
    return SampleContext(campaign_id, text, digest, kernel, injections, features)


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
        store.record(Divergence("k", "k: t", 0, "", ""), _seen("", text="x", digest="xyz"))
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


def test_progress_points_are_per_worker_in_time_order(store: Store) -> None:
    cid = store.start_campaign(kernel="k", host="h", options={})
    other = store.start_campaign(kernel="k", host="h", options={})
    store.add_point(cid, worker=1, programs=10, steps=90)
    store.add_point(cid, worker=0, programs=20, steps=200)
    store.add_point(other, worker=0, programs=1, steps=2)
    store.add_point(cid, worker=1, programs=30, steps=260)
    got = [(p.campaign_id, p.worker, p.programs, p.steps) for p in store.points(cid)]
    assert got == [(cid, 0, 20, 200), (cid, 1, 10, 90), (cid, 1, 30, 260)]
    assert len(store.points()) == 4
    first, last = store.points(cid)[1:]
    assert first.at.tzinfo == UTC and last.at >= first.at
    with pytest.raises(StoreError, match="no campaign with id 9"):
        store.add_point(9, worker=0, programs=1, steps=1)
    with pytest.raises(ValueError):
        store.add_point(cid, worker=0, programs=-1, steps=0)
    assert len(store.points()) == 4


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


@pytest.mark.slow
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


@pytest.mark.slow
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


# -- migration ---------------------------------------------------------------

# The tables as the first release made them (before triage), verbatim.
OLD_SCHEMA = """
CREATE TABLE campaign (
    id INTEGER NOT NULL, kernel VARCHAR(200) NOT NULL, host VARCHAR(200) NOT NULL,
    options TEXT NOT NULL, started DATETIME NOT NULL, ended DATETIME,
    programs INTEGER NOT NULL, steps INTEGER NOT NULL, divergences INTEGER NOT NULL,
    status VARCHAR(16) NOT NULL, PRIMARY KEY (id),
    CONSTRAINT campaign_status CHECK (status IN ('running', 'done', 'interrupted', 'failed'))
);
CREATE TABLE program (
    id INTEGER NOT NULL, text TEXT NOT NULL, hash VARCHAR(16) NOT NULL,
    created DATETIME NOT NULL, PRIMARY KEY (id), UNIQUE (hash)
);
CREATE TABLE bucket (
    id INTEGER NOT NULL, title VARCHAR(500) NOT NULL, kind VARCHAR(32) NOT NULL,
    first_seen DATETIME NOT NULL, last_seen DATETIME NOT NULL, count INTEGER NOT NULL,
    status VARCHAR(32) NOT NULL, note TEXT, PRIMARY KEY (id), UNIQUE (title)
);
CREATE INDEX ix_bucket_last_seen ON bucket (last_seen);
CREATE TABLE sample (
    id INTEGER NOT NULL, bucket_id INTEGER NOT NULL, program_id INTEGER NOT NULL,
    campaign_id INTEGER, step INTEGER NOT NULL, expected TEXT NOT NULL,
    observed TEXT NOT NULL, kernel VARCHAR(200) NOT NULL, created DATETIME NOT NULL,
    PRIMARY KEY (id),
    FOREIGN KEY(bucket_id) REFERENCES bucket (id),
    FOREIGN KEY(program_id) REFERENCES program (id),
    FOREIGN KEY(campaign_id) REFERENCES campaign (id)
);
CREATE INDEX ix_sample_program_id ON sample (program_id);
CREATE INDEX ix_sample_campaign_id ON sample (campaign_id);
CREATE INDEX ix_sample_bucket_id ON sample (bucket_id);
INSERT INTO campaign VALUES
    (1, '6.17.0', 'old', '{}', '2026-10-01 10:00:00.000000', '2026-10-01 11:00:00.000000',
     500, 6000, 2, 'done');
INSERT INTO program VALUES (1, 'r0 = mmap(0, 1, RW, PRIVATE|ANONYMOUS)', '00000000000000aa',
    '2026-10-01 10:05:00.000000');
INSERT INTO bucket VALUES
    (1, 'presence: old finding', 'presence', '2026-10-01 10:05:00.000000',
     '2026-10-01 10:30:00.000000', 2, 'new', 'looked at it once'),
    (2, 'lock: another', 'lock', '2026-10-01 10:06:00.000000',
     '2026-10-01 10:06:00.000000', 1, 'new', NULL);
INSERT INTO sample VALUES
    (1, 1, 1, 1, 0, 'A', '.', '6.17.0', '2026-10-01 10:05:00.000000'),
    (2, 1, 1, 1, 0, 'A', '.', '6.17.0', '2026-10-01 10:30:00.000000'),
    (3, 2, 1, NULL, 0, 'L', '-', '6.17.0', '2026-10-01 10:06:00.000000');
"""


def _old_database(path: Path) -> Path:
    with sqlite3.connect(path) as conn:
        conn.executescript(OLD_SCHEMA)
    conn.close()
    return path


def _columns(path: Path) -> dict[str, list[str]]:
    with sqlite3.connect(path) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        found = {t: sorted(r[1] for r in conn.execute(f"PRAGMA table_info({t})")) for t in tables}
    conn.close()
    return found


def _rows(path: Path, table: str, columns: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute(f"SELECT {columns} FROM {table} ORDER BY id").fetchall()
    conn.close()
    return rows


OLD_BUCKET_COLUMNS = "id, title, kind, first_seen, last_seen, count, status, note"
OLD_SAMPLE_COLUMNS = "id, bucket_id, program_id, campaign_id, step, expected, observed, kernel"
OLD_CAMPAIGN_COLUMNS = ("id, kernel, host, options, started, ended, programs, steps, "
                        "divergences, status")


@pytest.mark.parametrize("create", [True, False])
def test_an_old_database_gains_the_new_columns_in_place(tmp_path: Path, create: bool) -> None:
    path = _old_database(tmp_path / "old.sqlite")
    buckets_before = _rows(path, "bucket", OLD_BUCKET_COLUMNS)
    samples_before = _rows(path, "sample", OLD_SAMPLE_COLUMNS + ", created")
    campaigns_before = _rows(path, "campaign", OLD_CAMPAIGN_COLUMNS)

    store = open_store(_url(path), create=create)
    fresh = tmp_path / "fresh.sqlite"
    open_store(_url(fresh)).close()
    assert _columns(path) == _columns(fresh)
    # Nothing dropped or rewritten.
    assert _rows(path, "bucket", OLD_BUCKET_COLUMNS) == buckets_before
    assert _rows(path, "sample", OLD_SAMPLE_COLUMNS + ", created") == samples_before
    assert _rows(path, "campaign", OLD_CAMPAIGN_COLUMNS) == campaigns_before
    assert _rows(path, "campaign", "heartbeat, alive, runs") == [(None, None, None)]
    assert _rows(path, "sample", "injections") == [("",), ("",), ("",)]

    # The old rows read back with the new fields empty ...
    old = store.bucket(1)
    assert (old.title, old.count, old.status, old.note) == ("presence: old finding", 2, "new",
                                                            "looked at it once")
    assert (old.duplicate_of, old.reliability_runs, old.minimized_calls) == (None, None, None)
    assert old.minimized_program_text is None
    assert [s.injections for s in old.samples] == [(), ()]
    assert old.samples[0].created.tzinfo == UTC
    assert [(s.build, s.symptoms) for s in old.samples] == [(None, ()), (None, ())]
    assert (old.minimized_expected, old.minimized_observed) == (None, None)
    # ... and every new operation works on them.
    assert _record(store, "presence: old finding", n=5)[1] is False
    store.label(1, "kernel-bug")
    store.label(2, "duplicate", duplicate_of=1)
    store.set_reliability(1, hits=3, runs=4)
    store.set_minimized(1, program_text="x", program_hash="00000000000000bb", step=0,
                        original_calls=3, minimized_calls=1)
    again = store.bucket(1)
    assert (again.count, again.status, again.note) == (3, "kernel-bug", "looked at it once")
    assert (again.reliability_hits, again.minimized_program_text) == (3, "x")
    assert store.stats()["campaigns"] == 1
    store.close()

    # Opening again changes nothing more; the file is sound.
    reopened = open_store(_url(path), create=False)
    assert reopened.bucket(2).duplicate_of == 1
    with reopened.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
        assert conn.exec_driver_sql("PRAGMA foreign_key_check").all() == []


def test_a_migrated_database_still_reads_in_the_old_shape(tmp_path: Path) -> None:
    """An older mmfuzz reading the file after an upgrade still finds its columns."""
    path = _old_database(tmp_path / "old.sqlite")
    _record(open_store(_url(path)), "presence: old finding", n=1)
    assert _rows(path, "bucket", "id, count, status") == [(1, 3, "new"), (2, 1, "new")]
    with sqlite3.connect(path) as conn:  # an old-style insert, without the new columns
        conn.execute("INSERT INTO sample (bucket_id, program_id, step, expected, observed, "
                     "kernel, created) VALUES (2, 1, 0, 'a', 'b', 'k', '2026-10-02 00:00:00')")
    conn.close()
    assert [s.injections for s in open_store(_url(path)).bucket(2).samples] == [(), ()]


# -- triage: labels -------------------------------------------------------------


def test_label_sets_status_note_and_duplicate(store: Store) -> None:
    a, _ = _record(store, "a: one")
    b, _ = _record(store, "b: two")
    row = store.label(a, "kernel-bug", note="reported upstream")
    assert (row.id, row.status, row.duplicate_of) == (a, "kernel-bug", None)
    assert row.note == "reported upstream"
    assert store.label(a, "model-bug").note == "reported upstream"  # None keeps the note
    assert store.label(a, "model-bug", note="").note is None  # "" clears it
    dup = store.label(b, "duplicate", duplicate_of=a, note="same as a")
    assert (dup.status, dup.duplicate_of) == ("duplicate", a)
    assert store.bucket(b).duplicate_of == a
    assert store.label(b, "new").duplicate_of is None  # leaving duplicate forgets the other


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((99, "fixed"), "no bucket with id 99"),
        ((1, "wontfix"), "unknown status 'wontfix' (one of: new, kernel-bug,"),
        ((1, "duplicate"), "status duplicate needs the id of the bucket it duplicates"),
        ((1, "duplicate", 1), "bucket 1 cannot be a duplicate of itself"),
        ((1, "duplicate", 42), "no bucket with id 42"),
        ((1, "fixed", 2), "only a duplicate names the bucket it duplicates"),
        ((2, "duplicate", 3), "bucket 2 cannot be a duplicate of 3: 3 is already a duplicate"),
    ],
)
def test_label_errors_change_nothing(
    store: Store, args: tuple[int, str] | tuple[int, str, int], message: str
) -> None:
    for title in ("a: one", "b: two", "c: three"):
        _record(store, title)
    store.label(3, "duplicate", duplicate_of=2)  # so 2 -> 3 would close a loop
    before = [store.bucket(i) for i in (1, 2, 3)]
    bucket_id, status, *other = args
    with pytest.raises(StoreError) as info:
        store.label(bucket_id, status, note="x", duplicate_of=other[0] if other else None)
    assert message in str(info.value) and "\n" not in str(info.value)
    assert [store.bucket(i) for i in (1, 2, 3)] == before


def test_labels_and_notes_survive_later_sightings(store: Store) -> None:
    a, _ = _record(store, "a: one")
    b, _ = _record(store, "b: two")
    store.label(a, "kernel-bug", note="reported")
    store.label(b, "duplicate", duplicate_of=a)
    for n in range(3):
        _record(store, "a: one", n=n)
        _record(store, "b: two", n=n)
    assert [(x.status, x.note, x.count) for x in (store.bucket(a), store.bucket(b))] == [
        ("kernel-bug", "reported", 4),
        ("duplicate", None, 4),
    ]
    assert store.bucket(b).duplicate_of == a


def test_a_fixed_bucket_seen_again_on_a_real_kernel_is_a_regression(store: Store) -> None:
    a, _ = _record(store, "a: one")
    store.label(a, "fixed", note="fixed in 6.19")
    # Seen under an injection: an emulated bug says nothing about the fix.
    store.record(Divergence("a", "a: one", 0, "", ""),
                 _seen("6.19.0", injections=("populate-needs-lock",)))
    assert store.bucket(a).status == "fixed"
    assert store.buckets() == []
    assert _record(store, "a: one") == (a, False)
    row = store.bucket(a)
    assert (row.status, row.note, row.count) == ("regression", "fixed in 6.19", 3)
    assert [x.id for x in store.buckets()] == [a]  # back on the default list


def test_injections_are_kept_on_the_sample(store: Store) -> None:
    store.record(Divergence("a", "a: one", 0, "", ""),
                 _seen("k", injections=(" populate-needs-lock", "mlock-skips-vma ", "")))
    _record(store, "a: one")
    samples = store.bucket(1).samples
    assert [s.injections for s in samples] == [("populate-needs-lock", "mlock-skips-vma"), ()]
    assert _rows(Path(store.url), "sample", "injections") == [
        ("populate-needs-lock,mlock-skips-vma",), ("",)]  # the column's format, as ever


def test_injection_names_and_their_column() -> None:
    assert injections_column(()) == "" and injection_names("") == ()
    assert injections_column(["a", " b ", ""]) == "a,b"
    assert injection_names("a,b") == ("a", "b")
    assert injections_column(["a,b", "c"]) == "a,b,c"  # as the comma-joined string was
    assert injection_names(injections_column(["x:y.py", "z"])) == ("x:y.py", "z")


# -- triage: minimization and reliability ----------------------------------------


def test_set_minimized_and_reliability(store: Store) -> None:
    a, _ = _record(store, "a: one", n=1)
    detail = store.bucket(a)
    assert (detail.minimized_program_text, detail.minimized_step, detail.original_calls) == (
        None, None, None)
    store.set_minimized(a, program_text="r0 = mmap(0, 1, RW, PRIVATE|ANONYMOUS)",
                        program_hash="00000000000000aa", step=0, original_calls=2,
                        minimized_calls=1)
    store.set_reliability(a, hits=9, runs=10)
    detail = store.bucket(a)
    assert detail.minimized_program_text == "r0 = mmap(0, 1, RW, PRIVATE|ANONYMOUS)"
    assert (detail.minimized_program_hash, detail.minimized_step) == ("00000000000000aa", 0)
    assert (detail.original_calls, detail.minimized_calls) == (2, 1)
    assert (detail.reliability_hits, detail.reliability_runs) == (9, 10)
    row = store.buckets()[0]
    assert (row.original_calls, row.minimized_calls, row.reliability_hits) == (2, 1, 9)
    # A minimized program equal to a sample's is stored once.
    store.set_minimized(a, program_text="ignored: same hash", program_hash=f"{1:016x}", step=1,
                        original_calls=2, minimized_calls=2)
    assert store.bucket(a).minimized_program_text == detail.samples[0].program_text
    assert _count(store, Program) == 2


def test_minimized_programs_newest_first(store: Store,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """What a program search plants in its corpus: minimized programs only, by last sighting."""
    monkeypatch.setattr(store, "_now", Clock())
    a, _ = _record(store, "a: one", n=1)
    b, _ = _record(store, "b: two", n=2)
    _record(store, "c: three", n=3)  # never minimized
    for bucket, text in ((a, "mlock(@0, 1p)\n"), (b, "munlock(@0, 1p)\n")):
        store.set_minimized(bucket, program_text=text, program_hash=f"{bucket + 16:016x}",
                            step=0, original_calls=2, minimized_calls=1)
    assert store.minimized_programs(10) == ["munlock(@0, 1p)\n", "mlock(@0, 1p)\n"]
    _record(store, "a: one", n=1)  # seen again: now the newest
    assert store.minimized_programs(1) == ["mlock(@0, 1p)\n"]


def test_set_minimized_and_reliability_errors(store: Store) -> None:
    a, _ = _record(store, "a: one")
    good: dict[str, Any] = {"program_text": "x", "program_hash": "00000000000000aa", "step": 0,
                            "original_calls": 3, "minimized_calls": 1}
    with pytest.raises(StoreError, match="no bucket with id 9"):
        store.set_minimized(9, **good)
    with pytest.raises(StoreError, match="no bucket with id 9"):
        store.set_reliability(9, hits=1, runs=1)
    for bad in ({"program_hash": "nope"}, {"step": 1}, {"minimized_calls": 4},
                {"minimized_calls": 0}, {"step": -1}):
        with pytest.raises(ValueError):
            store.set_minimized(a, **{**good, **bad})
    for hits, runs in ((2, 1), (-1, 3), (0, 0)):
        with pytest.raises(ValueError):
            store.set_reliability(a, hits=hits, runs=runs)
    detail = store.bucket(a)
    assert (detail.minimized_program_text, detail.reliability_runs) == (None, None)


# -- triage: listing ------------------------------------------------------------


class Clock:
    """Stands in for the store's clock: one day later at every reading."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(days=1)
        return self.now


@pytest.fixture
def triaged(store: Store, monkeypatch: pytest.MonkeyPatch) -> Store:
    """Four buckets on two kernels, seen on Nov 2..7 (12:00 UTC), in several states."""
    monkeypatch.setattr(store, "_now", Clock())
    _record(store, "presence: one", n=1)  # 1: Nov 2, again Nov 6 and Nov 7
    _record(store, "lock: two", n=2)  # 2: Nov 3
    store.record(Divergence("vmlck", "vmlck: three", 0, "", ""), _seen("6.19.0"))  # 3: Nov 4
    _record(store, "lock: four", n=4)  # 4: Nov 5
    _record(store, "presence: one", n=5)
    store.label(2, "kernel-bug")
    store.label(4, "duplicate", duplicate_of=2)
    _record(store, "presence: one", n=6)
    return store


def _ids(rows: list[Any]) -> list[int]:
    return [r.id for r in rows]


def test_buckets_default_list_holds_only_the_untriaged(triaged: Store) -> None:
    assert _ids(triaged.buckets()) == [1, 3]
    triaged.label(3, "fixed")
    _record(triaged, "vmlck: three")
    assert [(r.id, r.status) for r in triaged.buckets()] == [(3, "regression"), (1, "new")]
    assert _ids(triaged.buckets(include_labelled=True)) == [3, 1, 4, 2]
    assert _ids(triaged.buckets(status=["kernel-bug", "duplicate"])) == [4, 2]
    assert _ids(triaged.buckets(status=["fixed"], include_labelled=True)) == []


def test_buckets_filters(triaged: Store) -> None:
    every: dict[str, Any] = {"include_labelled": True}
    assert _ids(triaged.buckets(kind="lock", **every)) == [4, 2]
    assert _ids(triaged.buckets(kind="lock")) == []
    assert _ids(triaged.buckets(kernel="6.19.0", **every)) == [3]
    assert _ids(triaged.buckets(kernel="6.18.0", **every)) == [1, 4, 2]
    assert _ids(triaged.buckets(kernel="5.0", **every)) == []
    assert _ids(triaged.buckets(since=datetime(2026, 11, 4, 12, tzinfo=UTC), **every)) == [
        1, 4, 3]
    assert _ids(triaged.buckets(since=datetime(2026, 11, 4, 12, 0, 1, tzinfo=UTC), **every)) == [
        1, 4]
    later = datetime(2026, 11, 9, tzinfo=timezone(timedelta(hours=-12)))  # Nov 9 12:00 UTC
    assert _ids(triaged.buckets(since=later, **every)) == []
    with pytest.raises(ValueError, match="naive"):
        triaged.buckets(since=datetime(2026, 11, 1))


@pytest.mark.parametrize(
    ("sort", "ids"),
    [
        ("last_seen", [1, 4, 3, 2]),
        ("first_seen", [4, 3, 2, 1]),
        ("count", [1, 4, 3, 2]),
        ("id", [1, 2, 3, 4]),
        ("kind", [4, 2, 1, 3]),
    ],
)
def test_buckets_sort(triaged: Store, sort: str, ids: list[int]) -> None:
    assert _ids(triaged.buckets(include_labelled=True, sort=sort)) == ids


def test_buckets_bad_sort_or_status(triaged: Store) -> None:
    with pytest.raises(StoreError, match=r"^cannot sort by 'title' \(one of: last_seen, "):
        triaged.buckets(sort="title")
    with pytest.raises(StoreError, match=r"^unknown status 'open'"):
        triaged.buckets(status=["new", "open"])


def test_stats(triaged: Store) -> None:
    cid = triaged.start_campaign(kernel="6.18.0", host="h", options={})
    triaged.add_progress(cid, programs=10, steps=100)
    triaged.add_progress(triaged.start_campaign(kernel="k", host="h", options={}),
                         programs=5, steps=7)
    triaged.record(Divergence("lock", "lock: two", 0, "", ""),
                   _seen("6.19.0", campaign_id=cid, injections=("mlock-skips-vma",)))
    assert triaged.stats() == {
        "buckets": 4,
        "by_status": {"new": 2, "kernel-bug": 1, "model-bug": 0, "false-positive": 0,
                      "fixed": 0, "duplicate": 1, "regression": 0},
        "by_kind": {"lock": 2, "presence": 1, "vmlck": 1},
        "by_kernel": {"6.18.0": 3, "6.19.0": 2},
        "samples": 7,
        "injected_samples": 1,
        "campaigns": 2,
        "programs": 15,
        "steps": 107,
    }


def test_stats_of_an_empty_database(store: Store) -> None:
    stats = store.stats()
    assert stats["buckets"] == stats["samples"] == stats["campaigns"] == stats["steps"] == 0
    assert stats["by_status"] == dict.fromkeys(STATUSES, 0)
    assert stats["by_kind"] == stats["by_kernel"] == {}


def _open_and_record(url: str, worker: int) -> None:
    """Worker process: opens (and so upgrades) an old database, then records into it."""
    store = open_store(url, create=False)
    _record(store, f"presence: from worker {worker}", n=worker)


@pytest.mark.slow
def test_workers_upgrading_one_old_database_together(tmp_path: Path) -> None:
    path = _old_database(tmp_path / "old.sqlite")
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_open_and_record, args=(_url(path), w)) for w in range(WORKERS)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0] * WORKERS
    fresh = tmp_path / "fresh.sqlite"
    open_store(_url(fresh)).close()
    assert _columns(path) == _columns(fresh)
    assert len(open_store(_url(path)).buckets()) == 2 + WORKERS


# -- per-sample kernel records ---------------------------------------------------

FEATURES: dict[str, object] = {
    "release": "6.1.0", "lf_mnemonic": False, "pagemap_scan": False, "madv_populate": True,
    "madv_dontneed_locked": True, "mremap_multi_vma_move": False, "map_fixed_noreplace": True,
}


def test_each_sample_keeps_its_kernel_and_features(store: Store) -> None:
    """One bucket seen on two kernels: each sample says which, with what it could do."""
    for kernel, features in (("6.1.0", FEATURES), ("6.18.0", {"release": "6.18.0"}), ("x", None)):
        store.record(Divergence("lock", "lock: t", 0, "", ""),
                     _seen(kernel, text="x", digest="00000000000000aa", features=features))
    samples = store.bucket(1).samples
    assert [(s.kernel, s.features) for s in samples] == [
        ("6.1.0", FEATURES), ("6.18.0", {"release": "6.18.0"}), ("x", None)]


# -- operation counts ----------------------------------------------------------------


def as_tuples(rows: list[OpCount]) -> list[tuple[str, str, str, int]]:
    return [(r.call, r.what, r.value, r.count) for r in rows]


def test_op_counts_are_summed_per_campaign(store: Store) -> None:
    a = store.start_campaign(kernel="k", host="h", options={})
    b = store.start_campaign(kernel="k", host="h", options={})
    store.add_progress(a, programs=1, steps=3, ops=[
        OpCount("mmap", "steps", "", 2), OpCount("mmap", "outcome", "ok", 2),
        OpCount("touch", "steps", "", 1), OpCount("touch", "outcome", "SIGSEGV/MAPERR", 1)])
    store.add_progress(a, programs=1, steps=2, ops=[
        OpCount("mmap", "steps", "", 2), OpCount("mmap", "outcome", "EINVAL", 1),
        OpCount("mmap", "outcome", "ok", 1),
        OpCount("mmap", "outcome", "ok", 0)])  # a zero adds nothing, not even a row
    store.add_progress(b, programs=1, steps=1, ops=[OpCount("mmap", "steps", "", 1),
                                                    OpCount("mmap", "outcome", "ok", 1)])
    store.add_progress(b, programs=1, steps=0)  # progress without counts
    assert as_tuples(store.op_counts(a)) == [
        ("mmap", "outcome", "EINVAL", 1), ("mmap", "outcome", "ok", 3), ("mmap", "steps", "", 4),
        ("touch", "outcome", "SIGSEGV/MAPERR", 1), ("touch", "steps", "", 1)]
    assert as_tuples(store.op_counts(b)) == [("mmap", "outcome", "ok", 1),
                                             ("mmap", "steps", "", 1)]
    assert as_tuples(store.op_counts()) == [
        ("mmap", "outcome", "EINVAL", 1), ("mmap", "outcome", "ok", 4), ("mmap", "steps", "", 5),
        ("touch", "outcome", "SIGSEGV/MAPERR", 1), ("touch", "steps", "", 1)]
    # The counts and the counters move together: every step is counted once.
    assert store.campaign(a).steps == sum(r.count for r in store.op_counts(a) if r.what == "steps")
    assert store.op_counts(store.start_campaign(kernel="k", host="h", options={})) == []


def test_op_counts_without_an_upsert(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """Databases without ON CONFLICT get the same sums, row by row."""
    cid = store.start_campaign(kernel="k", host="h", options={})
    store.add_progress(cid, programs=1, steps=1, ops=[OpCount("mmap", "steps", "", 1)])
    monkeypatch.setattr(store_stats, "UPSERTS", {})
    store.add_progress(cid, programs=1, steps=2, ops=[OpCount("mmap", "steps", "", 2),
                                                      OpCount("mlock", "steps", "", 1)])
    assert [(r.call, r.count) for r in store.op_counts(cid)] == [("mlock", 1), ("mmap", 3)]


@pytest.mark.parametrize("item", [
    ["mmap", "steps", "", -1],
    ["mmap", "steps", 3],
    ["mmap", "steps", "", "1"],
    ["mmap", "steps", "", 1, 2],
    ["mmap", "steps", "", True],
    {"call": "mmap"},
])
def test_malformed_op_counts_are_refused(item: Any) -> None:
    """Counts arriving as JSON (from a guest) are checked where they become OpCount rows."""
    with pytest.raises(ValueError, match="call, what, value, count"):
        OpCount.from_json(item)


def test_op_counts_round_trip_through_json() -> None:
    op = OpCount("mmap", "flags", "MAP_PRIVATE", 3)
    assert op.to_json() == ["mmap", "flags", "MAP_PRIVATE", 3]
    assert OpCount.from_json(json.loads(json.dumps(op.to_json()))) == op


def test_op_counts_for_an_unknown_campaign(store: Store) -> None:
    with pytest.raises(StoreError, match="no campaign with id 7"):
        store.op_counts(7)
    with pytest.raises(StoreError, match="no campaign with id 7"):
        store.add_progress(7, programs=1, steps=1, ops=[OpCount("mmap", "steps", "", 1)])
    assert store.op_counts() == []


def test_an_old_database_gains_counts_and_sample_features(tmp_path: Path) -> None:
    """A database from before both: the new table and column appear in place, the old
    rows read back as "not recorded", and both work from then on."""
    path = _old_database(tmp_path / "old.sqlite")
    store = open_store(_url(path), create=False)  # reading is enough to upgrade
    assert "op_count" in _columns(path) and "features" in _columns(path)["sample"]
    assert [s.features for s in store.bucket(1).samples] == [None, None]
    assert store.op_counts(1) == [] and store.op_counts() == []
    store.add_progress(1, programs=1, steps=2, ops=[OpCount("mlock", "steps", "", 2)])
    assert [(r.call, r.count) for r in store.op_counts(1)] == [("mlock", 2)]
    assert store.campaign(1).steps == 6002
    store.record(Divergence("presence", "presence: old finding", 0, "", ""),
                 _seen("6.1.0", campaign_id=1, text="x", digest="00000000000000cc",
                       features=FEATURES))
    assert [s.features for s in store.bucket(1).samples] == [None, None, FEATURES]
    store.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    conn.close()


def test_same_minimized_program_marks_the_later_bucket_a_duplicate(store: Store) -> None:
    a, _ = _record(store, "a: one", n=1)
    b, _ = _record(store, "b: two", n=2)
    c, _ = _record(store, "c: three", n=3)
    store.label(c, "kernel-bug")
    same = {"program_text": "mlock(@0, 1p)\n", "program_hash": f"{99:016x}", "step": 0,
            "original_calls": 2, "minimized_calls": 1}
    # b minimized first: nothing to compare with yet; then a, the earlier, finds b.
    assert store.set_minimized(b, **same) is None
    assert store.set_minimized(a, **same, expected="VmLck 8 kB", observed="VmLck 16 kB") == (b, a)
    row_a, row_b = store.bucket(a), store.bucket(b)
    assert (row_a.status, row_a.duplicate_of) == ("new", None)
    assert (row_b.status, row_b.duplicate_of) == ("duplicate", a)
    assert (row_a.minimized_expected, row_a.minimized_observed) == ("VmLck 8 kB", "VmLck 16 kB")
    # A bucket a person labelled keeps the label; another program marks nothing.
    assert store.set_minimized(c, **same) is None
    assert store.bucket(c).status == "kernel-bug"
    assert store.set_minimized(c, **{**same, "program_hash": f"{98:016x}"}) is None


def test_a_sample_keeps_its_build_and_other_symptoms(store: Store) -> None:
    seen = SampleContext(None, "mlock(@0, 1p)\n", f"{5:016x}", "6.18.0", build="#1 SMP",
                         symptoms=("vmlck: mlock made VmLck differ", "locked: mlock left"))
    assert SampleContext.from_json(json.loads(json.dumps(seen.to_json()))) == seen
    bucket, _ = store.record(Divergence("lock", "lock: mlock left pages unlocked", 0, "e", "o"),
                             seen)
    sample = store.bucket(bucket).samples[0]
    assert (sample.build, sample.symptoms) == ("#1 SMP", seen.symptoms)
    plain, _ = _record(store, "a: one", n=1)
    assert (store.bucket(plain).samples[0].build, store.bucket(plain).samples[0].symptoms) == (
        None, ())
# -- the shared corpus -------------------------------------------------------


def test_corpus_entries_are_unique_per_campaign_and_pulled_by_id(store: Store) -> None:
    a = store.start_campaign(kernel="k", host="h", options={})
    b = store.start_campaign(kernel="k", host="h", options={})
    assert store.corpus_newest(10) == ([], 0)
    first = store.add_corpus(a, "munlockall()", "00000000000000a1", ["munlockall ok on absent"])
    assert first is not None
    assert store.add_corpus(a, "munlockall()", "00000000000000a1", ["x"]) is None
    again = store.add_corpus(b, "munlockall()", "00000000000000a1",
                             ["y", "munlockall ok on absent"])
    other = store.add_corpus(b, "mlockall(MCL_CURRENT)", "00000000000000a2", ["z"])
    assert again is not None and other is not None
    # Planting takes each program once, the newest first entries last; pulling goes on
    # from the highest id.
    assert store.corpus_newest(10) == (["munlockall()", "mlockall(MCL_CURRENT)"], other)
    assert store.corpus_newest(1) == (["mlockall(MCL_CURRENT)"], other)
    assert store.corpus_after(first) == [(again, "munlockall()"), (other, "mlockall(MCL_CURRENT)")]
    assert store.corpus_after(other) == []
    features = store.corpus_features([b])
    assert [(c, f) for c, _, f in features] == [
        (b, ["munlockall ok on absent", "y"]), (b, ["z"])]
    assert features[0][1] <= features[1][1]
    with pytest.raises(StoreError, match="no campaign"):
        store.add_corpus(99, "munlockall()", "00000000000000a3", [])
    with pytest.raises(ValueError, match="hash"):
        store.add_corpus(a, "munlockall()", "A1", [])


def check_corpus_batches(store: Store) -> None:
    """A batch of entries: each stored once per campaign, an id for each one stored (None
    for one the campaign has, or that came earlier in the batch). Run on SQLite here and
    on PostgreSQL (test_store_pg.py): both take it as one insert that skips conflicts."""
    a = store.start_campaign(kernel="k", host="h", options={})
    (known,) = store.add_corpus_many(a, [("munlockall()", "00000000000000b1", ["f"])])
    ids = store.add_corpus_many(a, [
        ("munlockall()", "00000000000000b1", ["g"]),  # stored already
        ("mlockall(MCL_CURRENT)", "00000000000000b2", ["h", "e"]),
        ("mlockall(MCL_FUTURE)", "00000000000000b3", []),
        ("mlockall(MCL_CURRENT)", "00000000000000b2", ["h"]),  # twice in the batch
    ])
    assert known is not None and ids[0] is None and ids[3] is None
    assert ids[1] is not None and ids[2] is not None and known < ids[1] < ids[2]
    assert store.corpus_after(known) == [(ids[1], "mlockall(MCL_CURRENT)"),
                                         (ids[2], "mlockall(MCL_FUTURE)")]
    assert [f for _, _, f in store.corpus_features([a])] == [["f"], ["e", "h"], []]
    assert store.add_corpus_many(a, []) == []
    with pytest.raises(StoreError, match="no campaign"):
        store.add_corpus_many(99, [("munlockall()", "00000000000000b4", [])])
    check_batch_shapes(store, a)


def check_batch_shapes(store: Store, campaign: int) -> None:
    """Batches of every size from 1 to 40, and one of 300, use at most one insert statement
    per power of two (the database's and the driver's statement caches hold each shape,
    with its last rows bound): every row is stored, and the ids follow the batch order."""
    inserts: set[str] = set()

    def seen(conn: object, cursor: object, statement: str, *args: object) -> None:
        if statement.startswith("INSERT INTO corpus_entry"):
            inserts.add(statement)

    event.listen(store.engine, "before_cursor_execute", seen)
    try:
        n = 0
        for size in [*range(1, 41), 300]:
            batch = [(f"munmap(@{i % 64}, {i}p)", f"{0xc0000 + i:016x}", [f"s{i}"])
                     for i in range(n, n + size)]
            n += size
            ids = store.add_corpus_many(campaign, batch)
            assert None not in ids and ids == sorted(ids), size
    finally:
        event.remove(store.engine, "before_cursor_execute", seen)
    assert len(inserts) == len(chunk_sizes(300) | {1, 2, 4, 8, 16, 32}) == 7
    assert len(store.corpus_after(0, limit=n + 10)) >= n


def chunk_sizes(n: int) -> set[int]:
    return {len(c) for c in chunks([{"row": i} for i in range(n)])}


@pytest.mark.parametrize(("rows", "runs"), [
    (0, []),
    (1, [1]),
    (3, [2, 1]),
    (45, [32, 8, 4, 1]),
    (256, [256]),
    (300, [256, 32, 8, 4]),
    (600, [256, 256, 64, 16, 8]),
])
def test_a_batch_is_cut_into_powers_of_two(rows: int, runs: list[int]) -> None:
    cut = chunks([{"row": i} for i in range(rows)])
    assert [len(c) for c in cut] == runs
    assert [r["row"] for c in cut for r in c] == list(range(rows))
    assert all(len(c) <= CHUNK for c in cut)


def test_corpus_batches_are_one_insert_that_skips_what_is_stored(store: Store) -> None:
    check_corpus_batches(store)


def test_an_old_database_gains_the_corpus_table(tmp_path: Path) -> None:
    path = _old_database(tmp_path / "old.sqlite")
    store = open_store(_url(path), create=False)
    assert "corpus_entry" in _columns(path)
    assert store.add_corpus(1, "munlockall()", "00000000000000a1", ["f"]) is not None
    assert store.corpus_after(0) == [(1, "munlockall()")]
    store.close()
def test_a_running_campaign_without_a_recent_heartbeat_is_lost(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    now = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
    monkeypatch.setattr(store, "_now", lambda: now)
    quiet = store.start_campaign(kernel="k", host="a", options={})
    beating = store.start_campaign(kernel="k", host="b", options={})
    ended = store.start_campaign(kernel="k", host="c", options={})
    store.finish_campaign(ended, "done")
    now += timedelta(seconds=40)
    store.heartbeat(beating, alive=2)
    assert [c.id for c in store.lost_campaigns(after=30)] == [quiet]
    row = store.campaign(beating)
    assert (row.heartbeat, row.alive, row.status) == (now, 2, "running")
    assert store.lost_campaigns(after=60) == []
