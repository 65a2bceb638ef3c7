"""The Store: every read and write the campaign and the CLI make, as plain values.

Each write is one short transaction, so a killed worker loses at most the
divergence it was recording and never leaves a half-written one. Rows come
back as frozen dataclasses detached from any session.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fuzzer.store.db import StoreError, guarded, open_engine, writer
from fuzzer.store.models import CAMPAIGN_STATUSES, Bucket, Campaign, Program, Sample

_HASH = re.compile(r"[0-9a-f]{16}")


@dataclass(frozen=True)
class CampaignRow:
    id: int
    kernel: str
    host: str
    options: dict[str, object]
    started: datetime
    ended: datetime | None
    programs: int
    steps: int
    divergences: int
    status: str


@dataclass(frozen=True)
class BucketRow:
    id: int
    title: str
    kind: str
    first_seen: datetime
    last_seen: datetime
    count: int
    status: str
    note: str | None


@dataclass(frozen=True)
class SampleRow:
    program_text: str
    program_hash: str
    step: int
    expected: str
    observed: str
    kernel: str
    campaign_id: int | None
    created: datetime


@dataclass(frozen=True)
class BucketDetail(BucketRow):
    samples: list[SampleRow]  # oldest first


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

    def add_progress(self, campaign_id: int, *, programs: int, steps: int) -> None:
        """Add to the campaign's program and step counters."""
        if programs < 0 or steps < 0:
            raise ValueError(f"negative progress: programs={programs} steps={steps}")
        with self._write() as s:
            _require_campaign(s, campaign_id)
            s.execute(
                update(Campaign)
                .where(Campaign.id == campaign_id)
                .values(programs=Campaign.programs + programs, steps=Campaign.steps + steps)
            )

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
            return _campaign_row(_require_campaign(s, campaign_id))

    def campaigns(self) -> list[CampaignRow]:
        """All campaigns, newest first."""
        with self._read() as s:
            rows = s.scalars(select(Campaign).order_by(Campaign.id.desc()))
            return [_campaign_row(c) for c in rows]

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
    ) -> tuple[int, bool]:
        """Store one divergence in one transaction; returns (bucket id, is the bucket new).

        The program is stored once per hash and the bucket once per title (a
        repeat bumps its count and last_seen); the sample always is.
        """
        if not _HASH.fullmatch(program_hash):
            raise ValueError(f"program hash must be 16 lowercase hex digits: {program_hash!r}")
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
            bucket_id, is_new = _bucket_id(s, kind, title, now)
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
                )
            )
        return bucket_id, is_new

    def buckets(self) -> list[BucketRow]:
        """All buckets, most recently seen first."""
        with self._read() as s:
            rows = s.scalars(select(Bucket).order_by(Bucket.last_seen.desc(), Bucket.id.desc()))
            return [_bucket_row(b) for b in rows]

    def bucket(self, bucket_id: int) -> BucketDetail:
        """One bucket with all its samples, oldest first."""
        with self._read() as s:
            b = s.get(Bucket, bucket_id)
            if b is None:
                raise StoreError(f"no bucket with id {bucket_id}")
            rows = s.execute(
                select(Sample, Program)
                .join(Program, Sample.program_id == Program.id)
                .where(Sample.bucket_id == bucket_id)
                .order_by(Sample.created, Sample.id)
            )
            samples = [_sample_row(sample, program) for sample, program in rows]
            return BucketDetail(**vars(_bucket_row(b)), samples=samples)

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


def _require_campaign(s: Session, campaign_id: int) -> Campaign:
    row = s.get(Campaign, campaign_id)
    if row is None:
        raise StoreError(f"no campaign with id {campaign_id}")
    return row


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


def _bucket_id(s: Session, kind: str, title: str, now: datetime) -> tuple[int, bool]:
    found = s.scalar(select(Bucket.id).where(Bucket.title == title))
    if found is None:
        row = Bucket(kind=kind, title=title, first_seen=now, last_seen=now, count=1, status="new")
        try:
            with s.begin_nested():  # another writer may insert the same title first
                s.add(row)
            return row.id, True
        except IntegrityError:
            found = s.scalars(select(Bucket.id).where(Bucket.title == title)).one()
    s.execute(
        update(Bucket).where(Bucket.id == found).values(count=Bucket.count + 1, last_seen=now)
    )
    return found, False


def _campaign_row(c: Campaign) -> CampaignRow:
    return CampaignRow(
        id=c.id,
        kernel=c.kernel,
        host=c.host,
        options=json.loads(c.options),
        started=c.started,
        ended=c.ended,
        programs=c.programs,
        steps=c.steps,
        divergences=c.divergences,
        status=c.status,
    )


def _bucket_row(b: Bucket) -> BucketRow:
    return BucketRow(
        id=b.id,
        title=b.title,
        kind=b.kind,
        first_seen=b.first_seen,
        last_seen=b.last_seen,
        count=b.count,
        status=b.status,
        note=b.note,
    )


def _sample_row(sample: Sample, program: Program) -> SampleRow:
    return SampleRow(
        program_text=program.text,
        program_hash=program.hash,
        step=sample.step,
        expected=sample.expected,
        observed=sample.observed,
        kernel=sample.kernel,
        campaign_id=sample.campaign_id,
        created=sample.created,
    )
