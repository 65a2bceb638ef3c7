"""The store operations a caller needs, as Protocols, for callers that may be given
something else than a Store.

ReductionStore is what reducing a bucket writes (fuzzer/reduce/bucket.py,
variants_run.py): the minimized program and the variants. The Store implements it,
and so does a guest's StoreProxy (fuzzer/kernel/proxy.py), whose calls travel to
the host's Store, so `mmfuzz minimize` and `variants` in a guest need no cast.
"""

from __future__ import annotations

from typing import Protocol

from fuzzer.store.variants import VariantValue


class ReductionStore(Protocol):
    def set_minimized(
        self,
        bucket_id: int,
        *,
        program_text: str,
        program_hash: str,
        step: int,
        original_calls: int,
        minimized_calls: int,
        expected: str | None = None,
        observed: str | None = None,
    ) -> tuple[int, int] | None:
        """Keep the bucket's minimized program; (duplicate, original) when it makes the
        later of two buckets a duplicate of the earlier."""
        ...

    def set_variants(self, bucket_id: int, values: list[VariantValue]) -> None:
        """Replace the bucket's variants with these."""
        ...
