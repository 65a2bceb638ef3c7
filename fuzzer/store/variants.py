"""A bucket's variants: which changes of its minimized program still trigger it.

fuzzer/reduce/variants_run.py computes them; a new run replaces the bucket's
earlier ones. Programs are stored once per hash, like any other.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, select

from fuzzer.store.base import StoreBase, check_hash, program_id, require_bucket
from fuzzer.store.models import BucketVariant, Program


@dataclass(frozen=True, slots=True)
class VariantValue:
    """One variant and what its run showed, going in or coming out."""

    axis: str
    value: str
    label: str
    base: bool
    program_text: str
    program_hash: str
    step: int
    triggers: bool
    diverged_step: int | None  # the variant's first divergence (the matching one if it
    diverged_kind: str  # triggers): where, its kind and its title; None, "", "" if none
    title: str


class Variants(StoreBase):
    def set_variants(self, bucket_id: int, values: list[VariantValue]) -> None:
        """Replace the bucket's variants with these."""
        for v in values:
            check_hash(v.program_hash)
        with self._write() as s:
            require_bucket(s, bucket_id)
            s.execute(delete(BucketVariant).where(BucketVariant.bucket_id == bucket_id))
            now = self._now()
            for v in values:
                s.add(BucketVariant(
                    bucket_id=bucket_id, axis=v.axis, value=v.value, label=v.label,
                    base=v.base, program_id=program_id(s, v.program_text, v.program_hash, now),
                    step=v.step, triggers=v.triggers, diverged_step=v.diverged_step,
                    diverged_kind=v.diverged_kind, title=v.title, created=now))

    def variants(self, bucket_id: int) -> list[VariantValue]:
        """The bucket's variants in the order they were made (empty if never run)."""
        with self._read() as s:
            require_bucket(s, bucket_id)
            rows = s.execute(
                select(BucketVariant, Program.text, Program.hash)
                .join(Program, Program.id == BucketVariant.program_id)
                .where(BucketVariant.bucket_id == bucket_id).order_by(BucketVariant.id))
            return [VariantValue(axis=r.axis, value=r.value, label=r.label, base=r.base,
                                 program_text=text, program_hash=hash_, step=r.step,
                                 triggers=r.triggers, diverged_step=r.diverged_step,
                                 diverged_kind=r.diverged_kind, title=r.title)
                    for r, text, hash_ in rows]


__all__ = ["VariantValue", "Variants"]
