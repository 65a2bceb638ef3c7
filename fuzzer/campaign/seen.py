"""The distinct semantic features a process has seen, held small (pure).

A long campaign reaches tens of thousands of features (fuzzer/check/coverage.py),
and a worker and the campaign process each keep the set of those seen so far:
the one structure of theirs that grows for as long as the search finds
something. A set of the strings takes about 200 bytes a feature (the string,
about 110, and the set's slot); `FeatureSet` keeps each feature's 64-bit hash()
(fixed within one process, which is all a set of this process needs): the
newest in a set of at most MERGE_AT, the others in a sorted array of 8 bytes
each. Two features of one campaign sharing a hash is a chance of about n²/2⁶⁵
(3·10⁻¹⁰ for 100,000): the second would go unreported as new, nothing worse.
"""

from __future__ import annotations

import heapq
from array import array
from bisect import bisect_left
from collections.abc import Iterable

MERGE_AT = 4096  # hashes kept in the set before they go into the sorted array


class FeatureSet:
    """A set of features that answers `in`, `len` and which of some are new."""

    __slots__ = ("_new", "_old")

    def __init__(self, features: Iterable[str] = ()) -> None:
        self._old = array("q")  # sorted
        self._new: set[int] = set()
        self.update(features)

    def add_new(self, features: Iterable[str]) -> list[str]:
        """The features not seen before, sorted, now seen."""
        new = sorted({f for f in features if not self._has(hash(f))})
        for f in new:
            self._add(hash(f))
        return new

    def update(self, features: Iterable[str]) -> None:
        for f in features:
            key = hash(f)
            if not self._has(key):
                self._add(key)

    def _has(self, key: int) -> bool:
        if key in self._new:
            return True
        old = self._old
        i = bisect_left(old, key)
        return i < len(old) and old[i] == key

    def _add(self, key: int) -> None:
        self._new.add(key)
        if len(self._new) >= MERGE_AT:
            self._old = array("q", heapq.merge(self._old, sorted(self._new)))
            self._new = set()

    def __contains__(self, feature: object) -> bool:
        return self._has(hash(feature))

    def __len__(self) -> int:
        return len(self._old) + len(self._new)

    def __ior__(self, features: Iterable[str]) -> FeatureSet:
        self.update(features)
        return self
