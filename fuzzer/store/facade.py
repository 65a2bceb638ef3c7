"""The Store: one object for every read and write the campaign and the CLI make.

It is composed of the parts that own each concern, all sharing one engine
and its short transactions (base.py): campaigns and their progress
(campaigns.py), divergence buckets, samples and triage labels (buckets.py),
what reducing a bucket found (reduced.py), which variants of its program trigger it
(variants.py), and operation counts and totals
(stats.py). Rows come back as frozen dataclasses (rows.py) detached from any
session; divergences and progress go in as typed values (values.py).
"""

from __future__ import annotations

from fuzzer.store.buckets import Buckets
from fuzzer.store.campaigns import Campaigns
from fuzzer.store.db import open_engine
from fuzzer.store.reduced import Reduced
from fuzzer.store.stats import Stats
from fuzzer.store.variants import Variants


class Store(Campaigns, Buckets, Reduced, Stats, Variants):
    """Campaigns, programs and divergence buckets in one database."""


def open_store(url: str | None = None, *, create: bool = True) -> Store:
    """Open the database at url (default: db/mmfuzz.sqlite under the current directory)."""
    engine, where = open_engine(url, create=create)
    return Store(engine, where)
