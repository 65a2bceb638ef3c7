"""The Store: one object for every read and write the campaign and the CLI make.

It is composed of the parts that own each concern, all sharing one engine
and its short transactions (base.py): campaigns and their progress
(campaigns.py), divergence buckets, samples and triage labels (buckets.py),
what reducing a bucket found (reduced.py), which variants of its program trigger it
(variants.py), operation counts and totals (stats.py), and the shared corpus with
the features its programs reached (corpus.py). Rows come back as frozen dataclasses
(rows.py) detached from any session; divergences and progress go in as typed values
(values.py). Every public method rides out a database server that is away for a
while (retry.py).
"""

from __future__ import annotations

from fuzzer.store.buckets import Buckets
from fuzzer.store.campaigns import Campaigns
from fuzzer.store.corpus import Corpus
from fuzzer.store.db import open_engine
from fuzzer.store.reduced import Reduced
from fuzzer.store.retry import retry_when_unreachable
from fuzzer.store.stats import Stats
from fuzzer.store.variants import Variants


@retry_when_unreachable
class Store(Campaigns, Buckets, Reduced, Stats, Corpus, Variants):
    """Campaigns, programs and divergence buckets in one database."""


def open_store(url: str | None = None, *, create: bool = True, read_only: bool = False) -> Store:
    """Open the database at url (default: db/mmfuzz.sqlite under the current directory);
    read_only for a command that only reads (db.py): a SQLite file is opened read-only,
    a PostgreSQL session's transactions are read-only."""
    engine, where = open_engine(url, create=create and not read_only, read_only=read_only)
    return Store(engine, where)
