"""The copies of Attrs with a few fields changed, spelled out field by field
(state.py), equal dataclasses.replace, with every field of Attrs set at random; and
the dataclass methods spelled out for mypyc (Attrs, Page, Vma, Snapshot, Prediction)
agree with the ones @dataclass generates."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import astuple, fields, replace

import pytest

from fuzzer.model.pages import Prediction
from fuzzer.model.state import FLAG_NAMES, Attrs, Page
from fuzzer.snapshot.parse import Snapshot, Vma


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


Made = tuple[type, tuple[object, ...]]  # a class and the arguments of one instance


def _vma_args(rng: random.Random) -> tuple[object, ...]:
    start = rng.randrange(4) * 4096
    return (start, start + rng.randrange(1, 3) * 4096, rng.choice(["rw-p", "r--s"]),
            rng.randrange(2), rng.choice(["", "/memfd:x (deleted)"]), rng.randrange(2) * 4096,
            rng.randrange(2) * 4096, rng.randrange(2) * 4096,
            frozenset(rng.sample(["rd", "wr", "lo", "lf", "gu"], rng.randrange(3))),
            rng.randrange(2) * 2 << 20, rng.randrange(2) * 2 << 20)


def _random_vma(rng: random.Random) -> Made:
    return Vma, _vma_args(rng)


def _random_snapshot(rng: random.Random) -> Made:
    vmas = tuple(Vma(*_vma_args(rng)) for _ in range(rng.randrange(3)))  # type: ignore[arg-type]
    return Snapshot, (vmas, rng.randrange(2), tuple(rng.randrange(2) for _ in range(2)),
                      rng.randrange(2), rng.randrange(-1, 2))


def _random_prediction(rng: random.Random) -> Made:
    return Prediction, (rng.choice([None, 0, -12]), rng.choice([None, (11, 1), (7, 2)]))


@pytest.mark.parametrize("make", [_random_vma, _random_snapshot, _random_prediction],
                         ids=["Vma", "Snapshot", "Prediction"])
def test_spelled_out_dataclasses_equal_the_generated_ones(
        make: Callable[[random.Random], Made]) -> None:
    """Vma, Snapshot and Prediction spell out __init__, __eq__ and __hash__ too: each
    argument lands in its field, and equality and hashing go by the fields in order,
    as @dataclass's do."""
    rng = random.Random(5)
    equal = 0
    for _ in range(3000):
        (cls, args_a), (_, args_b) = make(rng), make(rng)
        if rng.random() < 0.3:  # equal but for one field, or equal outright
            i = rng.randrange(len(args_a))
            args_b = args_a[:i] + args_b[i:i + 1] + args_a[i + 1:]
        a, b = cls(*args_a), cls(*args_b)
        assert tuple(getattr(a, f.name) for f in fields(cls)) == args_a
        assert (a == b) == (args_a == args_b)
        assert a == replace(a)
        if a == b:
            equal += 1
            assert hash(a) == hash(b)
        assert a != args_a
    assert equal > 0  # equal pairs were met, so the hash rule was checked
