"""Storage of campaigns and divergences: `open_store(url)` gives a Store.

SQLite in WAL mode at db/mmfuzz.sqlite by default, any SQLAlchemy URL
otherwise. Users' mistakes come out as StoreError, one line each.
"""

from fuzzer.store.db import DEFAULT_URL, StoreError
from fuzzer.store.queries import (
    BucketDetail,
    BucketRow,
    CampaignRow,
    SampleRow,
    Store,
    open_store,
)

__all__ = [
    "DEFAULT_URL",
    "BucketDetail",
    "BucketRow",
    "CampaignRow",
    "SampleRow",
    "Store",
    "StoreError",
    "open_store",
]
