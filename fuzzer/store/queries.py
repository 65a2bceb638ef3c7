"""The Store: every read and write the campaign and the CLI make, as plain values.

Each write is one short transaction, so a killed worker loses at most the
divergence it was recording and never leaves a half-written one. Rows come
back as frozen dataclasses (rows.py) detached from any session.

Operation counts (how often each call, flag and outcome was exercised) are
added with a campaign's progress, in the same transaction, so the two always
agree; a worker sends them as JSON-able lists, summed into one row per key.

Triage: a person labels a bucket (STATUSES); a label and its note survive
later sightings, except that a real (not injected) sighting of a "fixed"
bucket reopens it as "regression". The default bucket list holds only the
buckets still waiting for a look ("new" and "regression").
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import cast

from sqlalchemy import Engine, Table, case, distinct, exists, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fuzzer.store.db import StoreError, guarded, open_engine, writer
from fuzzer.store.models import (
    CAMPAIGN_STATUSES,
    OPEN_STATUSES,
    STATUSES,
    Bucket,
    Campaign,
    OpCount,
    Program,
    Sample,
)
from fuzzer.store.rows import (
    BucketDetail,
    BucketRow,
    CampaignRow,
    OpCountRow,
    bucket_detail,
    bucket_row,
    campaign_row,
    sample_row,
)

_HASH = re.compile(r"[0-9a-f]{16}")

# buckets(sort=...): times newest first, count most first, id ascending, kind A-Z.
_ORDER = {
    "last_seen": (Bucket.last_seen.desc(), Bucket.id.desc()),
    "first_seen": (Bucket.first_seen.desc(), Bucket.id.desc()),
    "count": (Bucket.count.desc(), Bucket.last_seen.desc(), Bucket.id.desc()),
    "id": (Bucket.id.asc(),),
    "kind": (Bucket.kind.asc(), Bucket.last_seen.desc(), Bucket.id.desc()),
}
SORTS = tuple(_ORDER)
# INSERT ... ON CONFLICT DO UPDATE, where the database has it (operation counts).
_UPSERTS: dict[str, Callable[[Table], sqlite.Insert | postgresql.Insert]] = {
    "sqlite": sqlite.insert, "postgresql": postgresql.insert}


def open_store(url: str | None = None, *, create: bool = True) -> Store:
    """Open the database at url (default: db/mmfuzz.sqlite under the current directory)."""
    engine, where = open_engine(url, create=create)
    return Store(engine, where)


class Store:
    """Campaigns, programs and divergence buckets in one database."""

    def __init__(self, engine: Engine, url: str) -> None:
        self.engine = engine
        self.url = url  # for people: the SQLite path, or the URL without its password
        self._writer = writer(engine)

    def close(self) -> None:
        """Close pooled connections (the store can still be used; it reconnects)."""
        self.engine.dispose()

    # -- campaigns ---------------------------------------------------------

    def start_campaign(self, *, kernel: str, host: str, options: dict[str, object]) -> int:
        """Record a campaign as running; returns its id."""
        row = Campaign(
            kernel=kernel,
            host=host,
            options=json.dumps(options, sort_keys=True, default=str),
            started=_now(),
            programs=0,
            steps=0,
            divergences=0,
            status="running",
        )
        with self._write() as s:
            s.add(row)
            s.flush()
            return row.id

    def add_progress(
        self,
        campaign_id: int,
        *,
        programs: int,
        steps: int,
        ops: Sequence[Sequence[str | int]] = (),
    ) -> None:
        """Add to the campaign's program and step counters, and to its operation counts.

        ops holds [call, what, value, count] items (OpCount says what they mean),
        each added to its row, all in the one transaction with the counters.
        """
        if programs < 0 or steps < 0:
            raise ValueError(f"negative progress: programs={programs} steps={steps}")
        counts = _op_counts(ops)
        with self._write() as s:
            _require_campaign(s, campaign_id)
            s.execute(
                update(Campaign)
                .where(Campaign.id == campaign_id)
                .values(programs=Campaign.programs + programs, steps=Campaign.steps + steps)
            )
            if counts:
                _add_ops(s, campaign_id, counts)

    def op_counts(self, campaign_id: int | None = None) -> list[OpCountRow]:
        """One campaign's operation counts (None: summed over every campaign).

        Sorted by call, what and value; a campaign that ran before mmfuzz counted
        operations has none.
        """
        total = func.sum(OpCount.count)
        query = (
            select(OpCount.call, OpCount.what, OpCount.value, total)
            .group_by(OpCount.call, OpCount.what, OpCount.value)
            .order_by(OpCount.call, OpCount.what, OpCount.value)
        )
        with self._read() as s:
            if campaign_id is not None:
                _require_campaign(s, campaign_id)
                query = query.where(OpCount.campaign_id == campaign_id)
            return [OpCountRow(c, w, v, int(n)) for c, w, v, n in s.execute(query)]

    def finish_campaign(self, campaign_id: int, status: str = "done") -> None:
        """Mark the campaign ended: 'done', 'interrupted' or 'failed'."""
        if status not in CAMPAIGN_STATUSES or status == "running":
            raise ValueError(f"a campaign cannot finish as {status!r}")
        with self._write() as s:
            row = _require_campaign(s, campaign_id)
            row.ended = _now()
            row.status = status

    def campaign(self, campaign_id: int) -> CampaignRow:
        with self._read() as s:
            return campaign_row(_require_campaign(s, campaign_id))

    def campaigns(self) -> list[CampaignRow]:
        """All campaigns, newest first."""
        with self._read() as s:
            rows = s.scalars(select(Campaign).order_by(Campaign.id.desc()))
            return [campaign_row(c) for c in rows]

    # -- divergences -------------------------------------------------------

    def record(
        self,
        *,
        campaign_id: int | None,
        program_text: str,
        program_hash: str,
        kind: str,
        title: str,
        step: int,
        expected: str,
        observed: str,
        kernel: str,
        injections: str = "",
        features: dict[str, object] | None = None,
    ) -> tuple[int, bool]:
        """Store one divergence in one transaction; returns (bucket id, is the bucket new).

        The program is stored once per hash and the bucket once per title (a
        repeat bumps its count and last_seen); the sample always is, with the
        kernel release and probed features (Features.as_dict()) it was seen on
        and the comma-separated names of the injections active then. A
        repeat never touches the bucket's label or note, except that a sighting
        on a real kernel (no injections) turns "fixed" into "regression".
        """
        _check_hash(program_hash)
        injections = ",".join(n.strip() for n in injections.split(",") if n.strip())
        with self._write() as s:
            s.connection()  # take the write lock first, so last_seen follows commit order
            now = _now()
            if campaign_id is not None:
                _require_campaign(s, campaign_id)
                s.execute(
                    update(Campaign)
                    .where(Campaign.id == campaign_id)
                    .values(divergences=Campaign.divergences + 1)
                )
            program_id = _program_id(s, program_text, program_hash, now)
            bucket_id, is_new = _bucket_id(s, kind, title, now, real=not injections)
            s.add(
                Sample(
                    bucket_id=bucket_id,
                    program_id=program_id,
                    campaign_id=campaign_id,
                    step=step,
                    expected=expected,
                    observed=observed,
                    kernel=kernel,
                    created=now,
                    injections=injections,
                    features=None if features is None else json.dumps(features, sort_keys=True),
                )
            )
        return bucket_id, is_new

    def buckets(
        self,
        *,
        status: list[str] | None = None,
        kind: str | None = None,
        kernel: str | None = None,
        since: datetime | None = None,
        include_labelled: bool = False,
        sort: str = "last_seen",
    ) -> list[BucketRow]:
        """Buckets still to triage ("new", "regression"), most recently seen first.

        status lists the statuses wanted instead (it wins over include_labelled,
        which lists every status); kernel keeps buckets with a sample from that
        kernel release; since keeps those seen at or after it; sort is one of
        SORTS (times newest first, count most first, id ascending, kind A-Z).
        """
        if sort not in _ORDER:
            raise StoreError(f"cannot sort by {sort!r} (one of: {', '.join(SORTS)})")
        if since is not None and since.tzinfo is None:
            raise ValueError(f"naive datetime {since!r}: pass times in UTC")
        query = select(Bucket).order_by(*_ORDER[sort])
        if status:
            query = query.where(Bucket.status.in_([_check_status(x) for x in status]))
        elif not include_labelled:
            query = query.where(Bucket.status.in_(OPEN_STATUSES))
        if kind is not None:
            query = query.where(Bucket.kind == kind)
        if kernel is not None:
            query = query.where(
                exists().where(Sample.bucket_id == Bucket.id, Sample.kernel == kernel)
            )
        if since is not None:
            query = query.where(Bucket.last_seen >= since)
        with self._read() as s:
            return [bucket_row(b) for b in s.scalars(query)]

    def bucket(self, bucket_id: int) -> BucketDetail:
        """One bucket with all its samples (oldest first) and its minimized program."""
        with self._read() as s:
            b = _require_bucket(s, bucket_id)
            rows = s.execute(
                select(Sample, Program)
                .join(Program, Sample.program_id == Program.id)
                .where(Sample.bucket_id == bucket_id)
                .order_by(Sample.created, Sample.id)
            )
            samples = [sample_row(sample, program) for sample, program in rows]
            minimized = None
            if b.minimized_program_id is not None:
                minimized = s.get(Program, b.minimized_program_id)
            return bucket_detail(b, samples, minimized)

    # -- triage ------------------------------------------------------------

    def label(
        self,
        bucket_id: int,
        status: str,
        *,
        note: str | None = None,
        duplicate_of: int | None = None,
    ) -> BucketRow:
        """Set a bucket's status; returns the bucket as labelled.

        "duplicate" needs duplicate_of, another existing bucket (not one that is,
        through its own duplicate_of, a duplicate of this one), and no other
        status takes it. note None keeps the old note; "" clears it.
        """
        _check_status(status)
        if status == "duplicate" and duplicate_of is None:
            raise StoreError("status duplicate needs the id of the bucket it duplicates")
        if status != "duplicate" and duplicate_of is not None:
            raise StoreError(f"only a duplicate names the bucket it duplicates, not {status!r}")
        with self._write() as s:
            b = _require_bucket(s, bucket_id)
            if duplicate_of is not None:
                _check_duplicate(s, bucket_id, duplicate_of)
            b.status = status
            b.duplicate_of = duplicate_of
            if note is not None:
                b.note = note or None
            return bucket_row(b)

    def set_minimized(
        self,
        bucket_id: int,
        *,
        program_text: str,
        program_hash: str,
        step: int,
        original_calls: int,
        minimized_calls: int,
    ) -> None:
        """Keep the bucket's minimized program (stored once per hash) and its diverging step."""
        _check_hash(program_hash)
        if not 0 < minimized_calls <= original_calls:
            raise ValueError(f"minimized {original_calls} calls to {minimized_calls}?")
        if not 0 <= step < minimized_calls:
            raise ValueError(f"step {step} is not in a program of {minimized_calls} calls")
        with self._write() as s:
            b = _require_bucket(s, bucket_id)
            b.minimized_program_id = _program_id(s, program_text, program_hash, _now())
            b.minimized_step = step
            b.original_calls = original_calls
            b.minimized_calls = minimized_calls

    def set_reliability(self, bucket_id: int, *, hits: int, runs: int) -> None:
        """Keep how often re-running the bucket's program diverged again: hits of runs."""
        if not 0 <= hits <= runs or runs < 1:
            raise ValueError(f"reliability {hits}/{runs}?")
        with self._write() as s:
            b = _require_bucket(s, bucket_id)
            b.reliability_hits = hits
            b.reliability_runs = runs

    def stats(self) -> dict[str, object]:
        """Totals: buckets by status (every status), kind and kernel; samples; campaigns' work.

        Keys: buckets, by_status, by_kind, by_kernel (buckets with a sample from
        that release), samples, injected_samples, campaigns, programs, steps.
        """
        count = func.count()
        with self._read() as s:
            by_status: dict[str, int] = dict.fromkeys(STATUSES, 0)
            for status, n in s.execute(select(Bucket.status, count).group_by(Bucket.status)):
                by_status[status] = n
            kinds = s.execute(
                select(Bucket.kind, count).group_by(Bucket.kind).order_by(Bucket.kind)
            )
            kernels = s.execute(
                select(Sample.kernel, func.count(distinct(Sample.bucket_id)))
                .group_by(Sample.kernel)
                .order_by(Sample.kernel)
            )
            work = s.execute(
                select(
                    count, func.coalesce(func.sum(Campaign.programs), 0),
                    func.coalesce(func.sum(Campaign.steps), 0),
                )
            ).one()
            return {
                "buckets": sum(by_status.values()),
                "by_status": by_status,
                "by_kind": {k: n for k, n in kinds},
                "by_kernel": {k: n for k, n in kernels},
                "samples": s.scalar(select(count).select_from(Sample)),
                "injected_samples": s.scalar(
                    select(count).select_from(Sample).where(Sample.injections != "")
                ),
                "campaigns": work[0],
                "programs": int(work[1]),
                "steps": int(work[2]),
            }

    # -- sessions ----------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[Session]:
        """One short write transaction, committed on leaving."""
        with guarded(self.url), Session(self._writer, expire_on_commit=False) as s, s.begin():
            yield s

    @contextmanager
    def _read(self) -> Iterator[Session]:
        with guarded(self.url), Session(self.engine) as s, s.begin():
            yield s


def _now() -> datetime:
    return datetime.now(UTC)


def _check_hash(program_hash: str) -> None:
    if not _HASH.fullmatch(program_hash):
        raise ValueError(f"program hash must be 16 lowercase hex digits: {program_hash!r}")


def _check_status(status: str) -> str:
    if status not in STATUSES:
        raise StoreError(f"unknown status {status!r} (one of: {', '.join(STATUSES)})")
    return status


def _require_campaign(s: Session, campaign_id: int) -> Campaign:
    row = s.get(Campaign, campaign_id)
    if row is None:
        raise StoreError(f"no campaign with id {campaign_id}")
    return row


def _require_bucket(s: Session, bucket_id: int) -> Bucket:
    row = s.get(Bucket, bucket_id)
    if row is None:
        raise StoreError(f"no bucket with id {bucket_id}")
    return row


def _check_duplicate(s: Session, bucket_id: int, other: int) -> None:
    """other may be what bucket_id duplicates: it exists, and is not bucket_id or its duplicate."""
    if other == bucket_id:
        raise StoreError(f"bucket {bucket_id} cannot be a duplicate of itself")
    if s.get(Bucket, other) is None:
        raise StoreError(f"no bucket with id {other} (the bucket it would duplicate)")
    seen, cur = set(), s.get(Bucket, other)
    while cur is not None and cur.duplicate_of is not None and cur.id not in seen:
        seen.add(cur.id)
        if cur.duplicate_of == bucket_id:
            raise StoreError(
                f"bucket {bucket_id} cannot be a duplicate of {other}: "
                f"{other} is already a duplicate of {bucket_id}"
            )
        cur = s.get(Bucket, cur.duplicate_of)


def _op_counts(ops: Sequence[Sequence[str | int]]) -> Counter[tuple[str, str, str]]:
    """[call, what, value, count] items as one total per key; rejects malformed items."""
    counts: Counter[tuple[str, str, str]] = Counter()
    for item in ops:
        if len(item) != 4:
            raise ValueError(f"an operation count is [call, what, value, count], not {item!r}")
        call, what, value, n = item
        if not (isinstance(call, str) and isinstance(what, str) and isinstance(value, str)
                and isinstance(n, int) and n >= 0):
            raise ValueError(f"an operation count is [call, what, value, count], not {item!r}")
        counts[call, what, value] += n
    return +counts  # without the zeros


def _add_ops(s: Session, campaign_id: int, counts: Counter[tuple[str, str, str]]) -> None:
    """Add counts to the op_count rows, creating the missing ones: one statement where
    the database has an upsert (SQLite, PostgreSQL), row by row elsewhere."""
    table = cast(Table, OpCount.__table__)
    rows = [{"campaign_id": campaign_id, "call": c, "what": w, "value": v, "count": n}
            for (c, w, v), n in sorted(counts.items())]
    conn = s.connection()
    upsert = _UPSERTS.get(conn.dialect.name)
    if upsert is not None:
        ins = upsert(table)
        conn.execute(ins.on_conflict_do_update(
            index_elements=list(table.primary_key),
            set_={"count": table.c.count + ins.excluded.count},
        ), rows)
        return
    for row in rows:
        key = {k: row[k] for k in ("campaign_id", "call", "what", "value")}
        done = conn.execute(
            update(table).filter_by(**key).values(count=table.c.count + row["count"])
        )
        if not done.rowcount:
            conn.execute(insert(table), [row])


def _program_id(s: Session, text: str, hash_: str, now: datetime) -> int:
    found = s.scalar(select(Program.id).where(Program.hash == hash_))
    if found is not None:
        return found
    row = Program(text=text, hash=hash_, created=now)
    try:
        with s.begin_nested():  # another writer may insert the same hash first
            s.add(row)
    except IntegrityError:
        return s.scalars(select(Program.id).where(Program.hash == hash_)).one()
    return row.id


def _bucket_id(s: Session, kind: str, title: str, now: datetime, *, real: bool) -> tuple[int, bool]:
    found = s.scalar(select(Bucket.id).where(Bucket.title == title))
    if found is None:
        row = Bucket(kind=kind, title=title, first_seen=now, last_seen=now, count=1, status="new")
        try:
            with s.begin_nested():  # another writer may insert the same title first
                s.add(row)
            return row.id, True
        except IntegrityError:
            found = s.scalars(select(Bucket.id).where(Bucket.title == title)).one()
    seen = {"count": Bucket.count + 1, "last_seen": now}
    if real:
        # A fixed bug seen again on a real kernel is back; an emulated one proves nothing.
        seen["status"] = case((Bucket.status == "fixed", "regression"), else_=Bucket.status)
    s.execute(update(Bucket).where(Bucket.id == found).values(**seen))
    return found, False
