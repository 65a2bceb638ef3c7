"""The kernel builds a database has seen, and the buckets that tell two of them apart.

A developer fuzzes a patched kernel and its base: two builds, which may share a
release (two UML binaries of 6.1.192), told apart by their build string and
binary hash (store/identity.py). A bucket seen on one and never on the other is what
the patch changed -- a regression when it is only on the patched kernel.
Campaigns and samples stored before builds were recorded count with the build
they agree with (identity.canonical).
"""

from __future__ import annotations

from dataclasses import dataclass

from fuzzer.store import BucketRow, Store
from fuzzer.store.identity import KernelId, canonical, pick


@dataclass(frozen=True)
class Build:
    kernel: KernelId
    campaigns: int
    programs: int
    buckets: int  # buckets with at least one sample from this build
    targets: tuple[str, ...] = ()  # the --kernel its campaigns ran with ("host", "uml:PATH")


def builds(store: Store) -> tuple[list[Build], dict[KernelId, set[int]]]:
    """Every build with a campaign or a sample, by release; and each one's bucket ids."""
    campaigns = store.campaigns()
    sightings = store.sightings()
    canon = canonical([c.kernel_id for c in campaigns] + [k for _, k in sightings])
    runs: dict[KernelId, list[int]] = {}
    targets: dict[KernelId, set[str]] = {}
    for c in campaigns:
        runs.setdefault(canon[c.kernel_id], []).append(c.programs)
        targets.setdefault(canon[c.kernel_id], set()).add(c.target)
    seen: dict[KernelId, set[int]] = {}
    for bucket_id, k in sightings:
        seen.setdefault(canon[k], set()).add(bucket_id)
    found = sorted(set(runs) | set(seen), key=lambda k: (k.release, k.label()))
    return [Build(k, len(runs.get(k, [])), sum(runs.get(k, [])), len(seen.get(k, set())),
                  tuple(sorted(targets.get(k, set())))) for k in found], seen


def only_on(store: Store, build: KernelId, other: KernelId,
            seen: dict[KernelId, set[int]]) -> list[BucketRow]:
    """Buckets (any status) with a sample from `build` and none from `other`."""
    ids = seen.get(build, set()) - seen.get(other, set())
    return [b for b in store.buckets(include_labelled=True, sort="id") if b.id in ids]


__all__ = ["Build", "builds", "only_on", "pick"]
