"""The copies of Attrs with a few fields changed, spelled out field by field
(state.py), equal dataclasses.replace, with every field of Attrs set at random."""

from __future__ import annotations

import random
from dataclasses import fields, replace

from fuzzer.model.state import Attrs


def random_attrs(rng: random.Random) -> Attrs:
    values: dict[str, object] = {}
    for f in fields(Attrs):
        values[f.name] = rng.randrange(8) if f.type in ("int", int) else rng.random() < 0.5
    return Attrs(**values)  # type: ignore[arg-type]


def test_attrs_copies_equal_replace() -> None:
    rng = random.Random(3)
    for _ in range(5000):
        a = random_attrs(rng)
        lo, lf, xo = (rng.random() < 0.5 for _ in range(3))
        n = rng.randrange(100)
        assert a.with_lock(lo, lf) == replace(a, lo=lo, lf=lf)
        assert a.with_pgoff(n) == replace(a, pgoff=n)
        assert a.with_prot(n % 8, xo) == replace(a, prot=n % 8, xo=xo)
        assert a.merge_key() == replace(a, pgoff=0, gu=False)


