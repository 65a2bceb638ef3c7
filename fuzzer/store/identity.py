"""A kernel's identity is its build: release, build string, binary hash and a name.

Two builds of one release (a patched tree and its base, both 6.1.192) differ in
their build string (`uname -v`: "#1 SMP ..." with the build's number and date)
and, for a User-Mode Linux binary, in the binary itself: `binary` is the first
BINARY_HEX hex digits of its SHA-256 (None on the host, where the build string
is what tells kernels apart). `name` is the user's word for it, given as
`--kernel uml:PATH#NAME` (or `host#NAME`); a LOCALVERSION is in the release
already.

Rows stored before builds were recorded know less (a release only, or no
binary hash): `canonical` attaches each such partial identity to the one full
identity that agrees with everything it knows, so old and new rows of one
build count together. `pick` finds the build a user means by a name, a binary
hash prefix, a release or a build string, and says which ones a word could mean
when it is ambiguous. Pure: no I/O here (the hash is taken in fuzzer/kernel/spec.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

BINARY_HEX = 12  # hex digits of a UML binary's SHA-256 kept as its identity
MIN_PREFIX = 4  # a binary hash prefix a user types must be at least this long


class AmbiguousKernel(ValueError):
    """A word that names no build, or several (the message lists them; one line)."""


@dataclass(frozen=True, order=True)
class KernelId:
    release: str
    build: str | None = None  # `uname -v` of the kernel (what a guest reports for UML)
    binary: str | None = None  # BINARY_HEX digits of the UML binary's SHA-256; None: host
    name: str | None = None  # the user's name for the build, if given

    @property
    def key(self) -> tuple[str, str | None, str | None]:
        """What makes two builds the same build (the name is only a label)."""
        return self.release, self.build, self.binary

    def agrees(self, other: KernelId) -> bool:
        """Whether nothing known of both builds differs (None: not known; names aside)."""
        return (self.release == other.release
                and _same(self.build, other.build) and _same(self.binary, other.binary))

    def label(self) -> str:
        """How the build is shown: its name, else its release and binary hash."""
        if self.name:
            return self.name
        return f"{self.release}@{self.binary}" if self.binary else self.release

    def describe(self) -> str:
        """One line: label, release, binary hash and build string, what is known."""
        parts = [self.label()]
        if self.name:
            parts.append(self.release)
        if self.binary and self.name:
            parts.append(f"binary {self.binary}")
        if self.build:
            parts.append(repr(self.build))
        return ", ".join(dict.fromkeys(parts))


def _same(a: str | None, b: str | None) -> bool:
    return a is None or b is None or a == b


def canonical(ids: Iterable[KernelId]) -> dict[KernelId, KernelId]:
    """Each identity mapped to the build it stands for.

    A full identity stands for itself, named by the (alphabetically) first name
    any agreeing row gave it. A partial one (no build string or no binary hash)
    stands for the one more complete identity that agrees with it, when exactly
    one does; otherwise for itself."""
    ids = sorted(set(ids), key=_order)
    out: dict[KernelId, KernelId] = {}
    for i in ids:
        richer = [j for j in ids if j != i and i.agrees(j) and _known(j) > _known(i)]
        # the richest rows that agree with i (they may still be partial themselves)
        best = max((_known(j) for j in richer), default=-1)
        top = {_unnamed(j) for j in richer if _known(j) == best}
        out[i] = _unnamed(next(iter(top))) if len(top) == 1 else _unnamed(i)
    named: dict[KernelId, str] = {}
    for i in ids:
        if i.name:
            named.setdefault(out[i], i.name)
    return {i: KernelId(*c.key, named.get(c)) for i, c in out.items()}


def _known(i: KernelId) -> int:
    return (i.build is not None) + (i.binary is not None)


def _unnamed(i: KernelId) -> KernelId:
    return KernelId(*i.key)


def _order(i: KernelId) -> tuple[str, str, str, str]:
    return i.release, i.build or "", i.binary or "", i.name or ""


def pick(word: str, builds: Sequence[KernelId]) -> KernelId:
    """The build `word` means: a name, a binary hash prefix, a release or a build string,
    tried in that order; AmbiguousKernel (one line, with the candidates) otherwise."""
    word = word.strip()
    def named(b: KernelId) -> bool:
        return b.name == word or b.label() == word

    def hashed(b: KernelId) -> bool:
        return (len(word) >= MIN_PREFIX and b.binary is not None
                and b.binary.startswith(word.lower()))

    def released(b: KernelId) -> bool:
        return b.release == word

    def built(b: KernelId) -> bool:
        return b.build == word

    for test in (named, hashed, released, built):
        found = list(dict.fromkeys(b for b in builds if test(b)))
        if len(found) == 1:
            return found[0]
        if found:
            raise AmbiguousKernel(f"{word!r} could be {len(found)} builds: "
                                  f"{'; '.join(b.describe() for b in found)} "
                                  "(name one by its binary hash or its name)")
    known = "; ".join(b.describe() for b in builds) or "none"
    raise AmbiguousKernel(f"no kernel build {word!r} in the database (known: {known})")
