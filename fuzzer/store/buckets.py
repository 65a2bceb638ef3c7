"""Divergence buckets and their samples: recording a sighting, listing, showing, labelling.

A bucket is stored once per title (a repeat bumps its count and last_seen),
its program once per hash, and every sighting as a sample. Triage: a person
labels a bucket (STATUSES); a label and its note survive later sightings,
except that a real (not injected) sighting of a "fixed" bucket reopens it as
"regression". The default bucket list holds only the buckets still waiting
for a look ("new" and "regression").
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import case, exists, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fuzzer.store.base import (
    StoreBase,
    check_hash,
    program_id,
    require_bucket,
    require_campaign,
)
from fuzzer.store.db import StoreError
from fuzzer.store.identity import KernelId
from fuzzer.store.models import (
    OPEN_STATUSES,
    STATUSES,
    Bucket,
    Campaign,
    Program,
    Reliability,
    Sample,
)
from fuzzer.store.rows import (
    BucketDetail,
    BucketRow,
    bucket_detail,
    bucket_row,
    reliability_row,
    sample_row,
)
from fuzzer.store.values import SampleContext, injections_column

if TYPE_CHECKING:  # the oracle imports the model, which a campaign worker may import only
    from fuzzer.oracle import Divergence  # under Atheris's instrumentation (worker.py)

# buckets(sort=...): times newest first, count most first, id ascending, kind A-Z.
_ORDER = {
    "last_seen": (Bucket.last_seen.desc(), Bucket.id.desc()),
    "first_seen": (Bucket.first_seen.desc(), Bucket.id.desc()),
    "count": (Bucket.count.desc(), Bucket.last_seen.desc(), Bucket.id.desc()),
    "id": (Bucket.id.asc(),),
    "kind": (Bucket.kind.asc(), Bucket.last_seen.desc(), Bucket.id.desc()),
}
SORTS = tuple(_ORDER)


class Buckets(StoreBase):
    def record(self, divergence: Divergence, seen: SampleContext) -> tuple[int, bool]:
        """Store one divergence, seen as `seen` says, in one transaction; returns
        (bucket id, is the bucket new).

        The sample keeps the kernel release, probed features and injections of
        `seen`, and the build its campaign recorded (binary hash, name). A repeat
        never touches the bucket's label or note, except that a sighting on a real
        kernel (no injections) turns "fixed" into "regression".
        """
        check_hash(seen.program_hash)
        d, injections = divergence, injections_column(seen.injections)
        features = None if seen.features is None else json.dumps(seen.features, sort_keys=True)
        with self._write() as s:
            s.connection()  # take the write lock first, so last_seen follows commit order
            when = self._now()
            binary = name = None
            build = seen.build
            if seen.campaign_id is not None:
                campaign = require_campaign(s, seen.campaign_id)
                if campaign.kernel == seen.kernel:  # the campaign's build, as it recorded it
                    binary, name = campaign.binary, campaign.kernel_name
                    build = build or campaign.build
                s.execute(
                    update(Campaign)
                    .where(Campaign.id == seen.campaign_id)
                    .values(divergences=Campaign.divergences + 1)
                )
            program = program_id(s, seen.program_text, seen.program_hash, when)
            bucket_id, is_new = _bucket_id(s, d.kind, d.title, when, real=not injections)
            s.add(Sample(
                bucket_id=bucket_id, program_id=program, campaign_id=seen.campaign_id,
                step=d.step, expected=d.expected, observed=d.observed, kernel=seen.kernel,
                created=when, injections=injections, features=features, build=build,
                binary=binary, kernel_name=name,
                symptoms=json.dumps(list(seen.symptoms)) if seen.symptoms else None,
            ))
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
            b = require_bucket(s, bucket_id)
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
            reliabilities = tuple(reliability_row(r) for r in s.scalars(
                select(Reliability).where(Reliability.bucket_id == bucket_id)
                .order_by(Reliability.at, Reliability.id)))
            return bucket_detail(b, samples, minimized, reliabilities)

    def sightings(self) -> list[tuple[int, KernelId]]:
        """Every (bucket id, kernel build) with a sample of that bucket from that build."""
        query = select(Sample.bucket_id, Sample.kernel, Sample.build, Sample.binary,
                       Sample.kernel_name).distinct()
        with self._read() as s:
            return [(b, KernelId(k, build, binary, name))
                    for b, k, build, binary, name in s.execute(query)]

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
            b = require_bucket(s, bucket_id)
            if duplicate_of is not None:
                _check_duplicate(s, bucket_id, duplicate_of)
            b.status = status
            b.duplicate_of = duplicate_of
            if note is not None:
                b.note = note or None
            return bucket_row(b)


def _check_status(status: str) -> str:
    if status not in STATUSES:
        raise StoreError(f"unknown status {status!r} (one of: {', '.join(STATUSES)})")
    return status


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


def _bucket_id(s: Session, kind: str, title: str, when: datetime, *,
               real: bool) -> tuple[int, bool]:
    found = s.scalar(select(Bucket.id).where(Bucket.title == title))
    if found is None:
        row = Bucket(kind=kind, title=title, first_seen=when, last_seen=when, count=1,
                     status="new")
        try:
            with s.begin_nested():  # another writer may insert the same title first
                s.add(row)
            return row.id, True
        except IntegrityError:
            found = s.scalars(select(Bucket.id).where(Bucket.title == title)).one()
    seen = {"count": Bucket.count + 1, "last_seen": when}
    if real:
        # A fixed bug seen again on a real kernel is back; an emulated one proves nothing.
        seen["status"] = case((Bucket.status == "fixed", "regression"), else_=Bucket.status)
    s.execute(update(Bucket).where(Bucket.id == found).values(**seen))
    return found, False
