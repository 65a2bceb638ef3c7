"""The kernel releases a database has seen, and the buckets that tell two of them apart.

A developer fuzzes a patched kernel and its base (two UML builds told apart by
LOCALVERSION); a bucket seen on one and never on the other is what the patch
changed -- a regression when it is only on the patched kernel.
"""

from __future__ import annotations

from dataclasses import dataclass

from fuzzer.store import BucketRow, Store


@dataclass(frozen=True)
class Release:
    release: str
    campaigns: int
    programs: int
    buckets: int  # buckets with at least one sample from this release


def releases(store: Store) -> list[Release]:
    """Every release with a campaign or a sample, by name."""
    by_kernel = store.stats()["by_kernel"]
    assert isinstance(by_kernel, dict)
    campaigns: dict[str, list[int]] = {}
    for c in store.campaigns():
        campaigns.setdefault(c.kernel, []).append(c.programs)
    names = sorted(set(by_kernel) | set(campaigns))
    return [Release(name, len(campaigns.get(name, [])), sum(campaigns.get(name, [])),
                    int(by_kernel.get(name, 0))) for name in names]


def only_on(store: Store, release: str, other: str) -> list[BucketRow]:
    """Buckets (any status) with a sample from `release` and none from `other`."""
    there = {b.id for b in store.buckets(kernel=other, include_labelled=True, sort="id")}
    return [b for b in store.buckets(kernel=release, include_labelled=True, sort="id")
            if b.id not in there]
