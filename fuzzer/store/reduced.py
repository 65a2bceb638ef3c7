"""What reducing a bucket found: its minimized program, and how reliably it reproduces.

Both are kept on the bucket (fuzzer/reduce computes them), and reliability per
kernel build too (a repro on a base kernel never overwrites the patched one's); the minimized
program is stored once per hash, like any other. Two buckets whose programs
minimize to the same program are one bug seen two ways: the later one is
marked a duplicate of the earliest (status "duplicate", duplicate_of), unless
a person has labelled it already.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from fuzzer.store.base import StoreBase, check_hash, program_id, require_bucket
from fuzzer.store.identity import KernelId
from fuzzer.store.models import OPEN_STATUSES, Bucket, Program, Reliability, Sample


class Reduced(StoreBase):
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
        """Keep the bucket's minimized program (stored once per hash), its diverging step
        and what it shows there (expected, observed). If another bucket has minimized to
        the same program, the later of the two is marked a duplicate of the earlier one:
        returns (duplicate, original) then."""
        check_hash(program_hash)
        if not 0 < minimized_calls <= original_calls:
            raise ValueError(f"minimized {original_calls} calls to {minimized_calls}?")
        if not 0 <= step < minimized_calls:
            raise ValueError(f"step {step} is not in a program of {minimized_calls} calls")
        with self._write() as s:
            b = require_bucket(s, bucket_id)
            b.minimized_program_id = program_id(s, program_text, program_hash, self._now())
            b.minimized_step = step
            b.original_calls = original_calls
            b.minimized_calls = minimized_calls
            b.minimized_expected, b.minimized_observed = expected, observed
            return _mark_duplicate(s, b)

    def minimized_programs(self, limit: int) -> list[str]:
        """The texts of buckets' minimized programs, the most recently seen first (plain
        values: a guest's worker asks for them through its store proxy)."""
        with self._read() as s:
            query = (select(Program.text).join(Bucket, Bucket.minimized_program_id == Program.id)
                     .order_by(Bucket.last_seen.desc(), Bucket.id.desc()).limit(limit))
            return list(s.scalars(query))

    def set_reliability(self, bucket_id: int, *, hits: int, runs: int,
                        kernel: str | None = None, build: str | None = None,
                        binary: str | None = None, kernel_name: str | None = None) -> None:
        """Keep how often re-running the bucket's program diverged again: hits of runs.

        With `kernel` (a release, with the build's string, binary hash and name), the
        figure is that build's own: it replaces that build's earlier figure only, and
        is the bucket's figure too unless the bucket was first seen on another build
        that has a figure of its own (which no other build then overwrites). Without
        it, it is the bucket's figure."""
        if not 0 <= hits <= runs or runs < 1:
            raise ValueError(f"reliability {hits}/{runs}?")
        with self._write() as s:
            b = require_bucket(s, bucket_id)
            if kernel is not None:
                this = KernelId(kernel, build, binary, kernel_name)
                rows = s.scalars(select(Reliability).where(Reliability.bucket_id == bucket_id,
                                                           Reliability.kernel == kernel))
                for row in rows:
                    if KernelId(row.kernel, row.build, row.binary).key == this.key:
                        s.delete(row)
                s.add(Reliability(bucket_id=bucket_id, kernel=kernel, build=build,
                                  binary=binary, kernel_name=kernel_name, hits=hits,
                                  runs=runs, at=self._now()))
                first = s.scalar(select(Sample).where(Sample.bucket_id == bucket_id)
                                 .order_by(Sample.created, Sample.id).limit(1))
                found = None if first is None else KernelId(
                    first.kernel, first.build, first.binary)
                if found is not None and not found.agrees(this) and any(
                        found.agrees(KernelId(r.kernel, r.build, r.binary)) for r in s.scalars(
                            select(Reliability).where(Reliability.bucket_id == bucket_id))):
                    return  # the build it was found on has its figure: the bucket's stays
            b.reliability_hits = hits
            b.reliability_runs = runs


def _mark_duplicate(s: Session, b: Bucket) -> tuple[int, int] | None:
    """Of b and the earliest other bucket with b's minimized program (not itself a
    duplicate), mark the later a duplicate of the earlier, unless a person labelled it."""
    other = s.scalar(select(Bucket).where(
        Bucket.minimized_program_id == b.minimized_program_id, Bucket.id != b.id,
        Bucket.duplicate_of.is_(None)).order_by(Bucket.id).limit(1))
    if other is None:
        return None
    original, duplicate = sorted((b, other), key=lambda x: x.id)
    if duplicate.status not in OPEN_STATUSES or duplicate.duplicate_of is not None:
        return None
    duplicate.status, duplicate.duplicate_of = "duplicate", original.id
    return duplicate.id, original.id
