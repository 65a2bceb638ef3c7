"""The copies of Attrs with a few fields changed, spelled out field by field
(state.py), equal dataclasses.replace, with every field of Attrs set at random."""

from __future__ import annotations

import random
from dataclasses import astuple, fields, replace

from fuzzer.model.state import FLAG_NAMES, Attrs, Page


def random_attrs(rng: random.Random) -> Attrs:
    values: dict[str, object] = {}
    for f in fields(Attrs):
        values[f.name] = rng.randrange(8) if f.type in ("int", int) else rng.random() < 0.5
    return Attrs(**values)  # type: ignore[arg-type]


def test_attrs_copies_equal_replace() -> None:
    rng = random.Random(3)
    assert {f.name for f in fields(Attrs) if f.type in ("bool", bool)} - {"shared"} == FLAG_NAMES
    for _ in range(5000):
        a = random_attrs(rng)
        lo, lf, xo = (rng.random() < 0.5 for _ in range(3))
        n = rng.randrange(100)
        assert a.with_lock(lo, lf) == replace(a, lo=lo, lf=lf)
        assert a.with_pgoff(n) == replace(a, pgoff=n)
        assert a.with_obj(n) == replace(a, obj=n)
        assert a.with_prot(n % 8, xo) == replace(a, prot=n % 8, xo=xo)
        assert a.merge_key() == replace(a, pgoff=0, gu=False)
        flags = {n: rng.random() < 0.5 for n in rng.sample(sorted(FLAG_NAMES), rng.randrange(4))}
        assert a.with_flags(flags) == replace(a, **flags)
        assert a.flags_key() == replace(a, shared=False, obj=0, pgoff=0, gu=False)
        assert a.anon_key() == replace(a, prot=0, pgoff=0, gu=False)


def test_attrs_methods_equal_the_generated_ones() -> None:
    """__init__, __eq__ and __hash__ are spelled out for mypyc (state.py): they agree
    with what @dataclass would make of the fields, for Attrs and for Page."""
    rng = random.Random(4)
    names = [f.name for f in fields(Attrs)]
    for _ in range(5000):
        a, b = random_attrs(rng), random_attrs(rng)
        if rng.random() < 0.3:  # equal but for one field, or equal outright
            name = rng.choice(names)
            b = replace(a, **{name: getattr(b, name)})
        key_a, key_b = astuple(a), astuple(b)
        assert [getattr(a, n) for n in names] == list(key_a)
        assert (a == b) == (key_a == key_b)
        if a == b:
            assert hash(a) == hash(b)
        state = rng.choice("._ZAF")
        pa, pb = Page(a, state), Page(b, rng.choice([state, "A"]))
        assert (pa == pb) == ((key_a, pa.state) == (key_b, pb.state))
        if pa == pb:
            assert hash(pa) == hash(pb)
    assert Page(Attrs(False, 3)).state == "."
    assert Attrs(False, 3) != (False, 3)
