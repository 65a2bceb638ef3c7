"""The store operations a caller needs, as Protocols, for callers that may be given
something else than a Store.

ReductionStore is what reducing a bucket writes (fuzzer/reduce/bucket.py,
variants_run.py): the minimized program and the variants. The Store implements it,
and so does a guest's StoreProxy (fuzzer/kernel/proxy.py), whose calls travel to
the host's Store, so `mmfuzz minimize` and `variants` in a guest need no cast.

WorkerStore is everything a campaign worker calls on its store (campaign/worker.py,
harness.py, record.py, feedback.py, reduce/bucket.py): a Store on the host, a
StoreProxy in a guest kernel. WORKER_CALLS names its methods: the only calls the
host serves for a guest (kernel/proxy.py, serve).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Protocol

from fuzzer.store.rows import BucketDetail
from fuzzer.store.values import OpCount, SampleContext
from fuzzer.store.variants import VariantValue

if TYPE_CHECKING:  # the oracle imports the model: a guest's worker imports it instrumented
    from fuzzer.oracle import Divergence


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


class WorkerStore(ReductionStore, Protocol):
    def record(self, divergence: Divergence, seen: SampleContext) -> tuple[int, bool]:
        """File a divergence and its sample; (bucket id, is the bucket new)."""
        ...

    def add_progress(
        self, campaign_id: int, *, programs: int, steps: int, ops: Iterable[OpCount] = ()
    ) -> None:
        """Add programs, steps and operation counts to the campaign."""
        ...

    def add_point(self, campaign_id: int, *, worker: int, programs: int, steps: int) -> None:
        """A progress point of one worker's running totals, stamped now."""
        ...

    def add_corpus_many(self, campaign_id: int,
                        entries: list[tuple[str, str, list[str]]]) -> list[int | None]:
        """Corpus entries (text, hash, features); each one's id, None if already there."""
        ...

    def corpus_newest(self, limit: int, campaign: int | None = None) -> tuple[list[str], int]:
        """The newest distinct programs (of a campaign, or of all) and the highest id."""
        ...

    def corpus_after(self, after_id: int, limit: int = 1000) -> list[tuple[int, str]]:
        """Entries (id, text) after after_id, oldest first."""
        ...

    def minimized_programs(self, limit: int) -> list[str]:
        """The minimized programs of the buckets seen last."""
        ...

    def bucket(self, bucket_id: int) -> BucketDetail:
        """One bucket with its samples (for its crashes/ folder)."""
        ...


WORKER_CALLS: frozenset[str] = frozenset(
    name for protocol in (ReductionStore, WorkerStore)
    for name, member in vars(protocol).items()
    if callable(member) and not name.startswith("_"))
