"""Storage of campaigns and divergences: `open_store(url)` gives a Store.

SQLite in WAL mode at db/mmfuzz.sqlite by default, any SQLAlchemy URL
otherwise. Users' mistakes come out as StoreError, one line each. Databases
made by an older mmfuzz gain the newer columns in place when opened.
"""

from fuzzer.store.buckets import SORTS
from fuzzer.store.db import DEFAULT_URL, StoreError, StoreUnreachable
from fuzzer.store.facade import Store, open_store
from fuzzer.store.models import OPEN_STATUSES, STATUSES
from fuzzer.store.rows import BucketDetail, BucketRow, CampaignRow, PointRow, SampleRow
from fuzzer.store.values import OpCount, SampleContext

__all__ = [
    "DEFAULT_URL",
    "OPEN_STATUSES",
    "SORTS",
    "STATUSES",
    "BucketDetail",
    "BucketRow",
    "CampaignRow",
    "OpCount",
    "PointRow",
    "SampleContext",
    "SampleRow",
    "Store",
    "StoreError",
    "StoreUnreachable",
    "open_store",
]
