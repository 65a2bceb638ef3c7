"""What every part of the Store shares: its engine, short transactions, row lookups.

Each write is one short transaction, so a killed worker loses at most the
divergence it was recording and never leaves a half-written one. The helpers
here find a campaign, bucket or program row inside such a transaction, or
raise the StoreError a user sees.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fuzzer.store.db import StoreError, guarded, writer
from fuzzer.store.models import Bucket, Campaign, Program
from fuzzer.store.retry import PATIENCE

_HASH = re.compile(r"[0-9a-f]{16}")


class StoreBase:
    """The database connection the Store's parts (campaigns, samples, ...) share."""

    def __init__(self, engine: Engine, url: str) -> None:
        self.engine = engine
        self.url = url  # for people: the SQLite path, or the URL without its password
        self._writer = writer(engine)
        self._networked = engine.dialect.name != "sqlite"
        self.patience = PATIENCE  # seconds a call retries while the server is away (retry.py)
        self._retrying = False

    def _now(self) -> datetime:
        """The time a write is stamped with (UTC)."""
        return datetime.now(UTC)

    def close(self) -> None:
        """Close pooled connections (the store can still be used; it reconnects)."""
        self.engine.dispose()

    @contextmanager
    def _write(self) -> Iterator[Session]:
        """One short write transaction, committed on leaving."""
        with (guarded(self.url, networked=self._networked),
              Session(self._writer, expire_on_commit=False) as s, s.begin()):
            yield s

    @contextmanager
    def _read(self) -> Iterator[Session]:
        """One read transaction. A value that does not convert (a time that is not
        one, text that is not UTF-8) is a damaged database: a StoreError."""
        try:
            with guarded(self.url, networked=self._networked), Session(self.engine) as s, \
                    s.begin():
                yield s
        except ValueError as e:  # raised by a column's conversion while rows are read
            raise StoreError(f"{self.url}: the database is damaged: "
                             f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from e


def check_hash(program_hash: str) -> None:
    if not _HASH.fullmatch(program_hash):
        raise ValueError(f"program hash must be 16 lowercase hex digits: {program_hash!r}")


def require_campaign(s: Session, campaign_id: int) -> Campaign:
    row = s.get(Campaign, campaign_id)
    if row is None:
        raise StoreError(f"no campaign with id {campaign_id}")
    return row


def require_bucket(s: Session, bucket_id: int) -> Bucket:
    row = s.get(Bucket, bucket_id)
    if row is None:
        raise StoreError(f"no bucket with id {bucket_id}")
    return row


def program_id(s: Session, text: str, hash_: str, when: datetime) -> int:
    """The id of the program with this hash, stored now if it is new."""
    found = s.scalar(select(Program.id).where(Program.hash == hash_))
    if found is not None:
        return found
    row = Program(text=text, hash=hash_, created=when)
    try:
        with s.begin_nested():  # another writer may insert the same hash first
            s.add(row)
    except IntegrityError:
        return s.scalars(select(Program.id).where(Program.hash == hash_)).one()
    return row.id
