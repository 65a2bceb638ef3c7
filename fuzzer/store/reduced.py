"""What reducing a bucket found: its minimized program, and how reliably it reproduces.

Both are kept on the bucket (fuzzer/reduce computes them); the minimized
program is stored once per hash, like any other.
"""

from __future__ import annotations

from sqlalchemy import select

from fuzzer.store.base import StoreBase, check_hash, program_id, require_bucket
from fuzzer.store.models import Bucket, Program


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
    ) -> None:
        """Keep the bucket's minimized program (stored once per hash) and its diverging step."""
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

    def minimized_programs(self, limit: int) -> list[str]:
        """The texts of buckets' minimized programs, the most recently seen first (plain
        values: a guest's worker asks for them through its store proxy)."""
        with self._read() as s:
            query = (select(Program.text).join(Bucket, Bucket.minimized_program_id == Program.id)
                     .order_by(Bucket.last_seen.desc(), Bucket.id.desc()).limit(limit))
            return list(s.scalars(query))

    def set_reliability(self, bucket_id: int, *, hits: int, runs: int) -> None:
        """Keep how often re-running the bucket's program diverged again: hits of runs."""
        if not 0 <= hits <= runs or runs < 1:
            raise ValueError(f"reliability {hits}/{runs}?")
        with self._write() as s:
            b = require_bucket(s, bucket_id)
            b.reliability_hits = hits
            b.reliability_runs = runs
