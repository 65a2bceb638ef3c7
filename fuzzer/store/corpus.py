"""The shared corpus: programs that first reached semantic features, and those features.

A worker adds an entry when a program covers features it had not seen
(fuzzer/check/coverage.py); every worker plants its campaign's newest entries
and the newest of all into its libFuzzer corpus at start (a resumed campaign's
workers start from what it found) and pulls the ones added since, by id, while it runs.
`stats coverage` reads the features back with their times: a campaign's
coverage over time. Entries are unique per campaign and program hash.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import cast

from sqlalchemy import Table, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fuzzer.store.base import StoreBase, check_hash, require_campaign
from fuzzer.store.models import CorpusEntry
from fuzzer.store.stats import UPSERTS

# Rows per upsert statement at most. A statement of n rows is a statement of its own to
# SQLAlchemy's compiled cache and to the SQLite driver's prepared statements, and the
# driver keeps each one's last rows bound: with a statement per batch size, a worker's
# heap grew by tens of MB over ten minutes (heaptrack: 43 % of its growth was SQLite's
# prepared inserts and their bound texts). chunks() cuts a batch into powers of two, so
# a campaign uses at most 9 shapes (1, 2, 4, ... CHUNK), whatever its batch sizes.
CHUNK = 256


def chunks(rows: list[dict[str, object]]) -> list[list[dict[str, object]]]:
    """The rows in order, in runs whose lengths are powers of two up to CHUNK, longest
    first (45 rows: 32, 8, 4, 1)."""
    out = []
    i = 0
    while i < len(rows):
        n = min(CHUNK, 1 << ((len(rows) - i).bit_length() - 1))
        out.append(rows[i:i + n])
        i += n
    return out


class Corpus(StoreBase):
    def add_corpus(self, campaign_id: int, text: str, hash_: str,
                   features: list[str]) -> int | None:
        """Store a program and the features it reached first; its entry id, or None if
        the campaign holds this program already."""
        return self.add_corpus_many(campaign_id, [(text, hash_, features)])[0]

    def add_corpus_many(self, campaign_id: int,
                        entries: list[tuple[str, str, list[str]]]) -> list[int | None]:
        """add_corpus for (text, hash, features) entries, in one transaction and, where the
        database has an upsert (SQLite, PostgreSQL), in one statement: a worker writes what
        it found every half second, and a savepoint per entry took a tenth of its time."""
        for _, hash_, _ in entries:
            check_hash(hash_)
        first: dict[str, int] = {}  # hash -> its first entry's index (a later one is None)
        rows = []
        for i, (text, hash_, features) in enumerate(entries):
            if hash_ not in first:
                first[hash_] = i
                rows.append({"campaign_id": campaign_id, "hash": hash_, "text": text,
                             "features": json.dumps(sorted(features)), "created": self._now()})
        ids: dict[str, int] = {}
        with self._write() as s:
            require_campaign(s, campaign_id)
            if rows:
                ids = self._insert_new(s, rows)
        return [ids.get(hash_) if first[hash_] == i else None
                for i, (_, hash_, _) in enumerate(entries)]

    @staticmethod
    def _insert_new(s: Session, rows: list[dict[str, object]]) -> dict[str, int]:
        """Insert the rows whose (campaign, hash) is not stored yet (another worker of the
        campaign may be first); hash -> id of those inserted."""
        ids: dict[str, int] = {}
        upsert = UPSERTS.get(s.connection().dialect.name)
        if upsert is not None:
            t = cast(Table, CorpusEntry.__table__)
            for chunk in chunks(rows):
                done = s.execute(upsert(t).values(chunk)
                                 .on_conflict_do_nothing(index_elements=[t.c.campaign_id, t.c.hash])
                                 .returning(t.c.hash, t.c.id))
                ids.update((str(hash_), int(id_)) for hash_, id_ in done)
            return ids
        for values in rows:
            row = CorpusEntry(**values)
            try:
                with s.begin_nested():
                    s.add(row)
            except IntegrityError:
                continue
            ids[row.hash] = row.id
        return ids

    def corpus_newest(self, limit: int, campaign: int | None = None) -> tuple[list[str], int]:
        """The texts of the newest `limit` entries (one per program), of one campaign or
        (None) of all, and the highest entry id of all, after which corpus_after() goes
        on (0 for an empty corpus)."""
        e = CorpusEntry
        with self._read() as s:
            last = s.scalar(select(func.max(e.id))) or 0
            ours = select(e.hash, func.max(e.id).label("id"))
            if campaign is not None:
                ours = ours.where(e.campaign_id == campaign)
            newest = (ours.group_by(e.hash)
                      .order_by(func.max(e.id).desc()).limit(limit).subquery())
            texts = s.scalars(select(e.text).join(newest, e.id == newest.c.id)
                              .order_by(e.id))
            return list(texts), int(last)

    def corpus_after(self, after_id: int, limit: int = 1000) -> list[tuple[int, str]]:
        """(id, text) of the entries added after `after_id`, oldest first."""
        e = CorpusEntry
        with self._read() as s:
            rows = s.execute(select(e.id, e.text).where(e.id > after_id).order_by(e.id)
                             .limit(limit))
            return [(int(i), str(t)) for i, t in rows]

    def corpus_features(self, campaign_ids: list[int]) -> list[tuple[int, datetime, list[str]]]:
        """(campaign, time, features first covered) of every entry of the campaigns,
        oldest first."""
        e = CorpusEntry
        with self._read() as s:
            rows = s.execute(select(e.campaign_id, e.created, e.features)
                             .where(e.campaign_id.in_(campaign_ids)).order_by(e.created, e.id))
            return [(int(c), when, list(json.loads(f))) for c, when, f in rows]
