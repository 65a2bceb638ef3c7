"""The bucket_variant table: variants stored, read back in order, replaced by a new run;
an older database gains the table in place. And `mmfuzz variants` on bad input."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fuzzer.cli.app import app
from fuzzer.kernel.proxy import serve
from fuzzer.oracle import Divergence, DivergenceKind
from fuzzer.prog import parse
from fuzzer.store import SampleContext, Store, StoreError, open_store
from fuzzer.store.variants import VariantValue
from fuzzer.store.wire import to_wire

PROGRAM = parse("mmap(@0, 1p, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED, -1, 0)\n")


def _bucket(store: Store) -> int:
    bucket, _ = store.record(
        Divergence(DivergenceKind.LOCK, "lock: mmap left pages unlocked", 0, "a", "b"),
        SampleContext(None, PROGRAM.text(), PROGRAM.hash, "6.18.0", ()))
    return bucket


def _value(value: str, triggers: bool, base: bool = False) -> VariantValue:
    return VariantValue(axis="prot", value=value, label=value, base=base,
                        program_text=PROGRAM.text(), program_hash=PROGRAM.hash, step=0,
                        triggers=triggers, diverged_step=0 if triggers else None,
                        diverged_kind="lock" if triggers else "",
                        title="lock: mmap left pages unlocked" if triggers else "")


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "mmfuzz.sqlite"


def test_stored_read_back_and_replaced(path: Path) -> None:
    store = open_store(f"sqlite:///{path}")
    bucket = _bucket(store)
    assert store.variants(bucket) == []
    first = [_value("R", True, base=True), _value("RW", False)]
    store.set_variants(bucket, first)
    assert store.variants(bucket) == first
    store.set_variants(bucket, first[1:])
    assert store.variants(bucket) == first[1:]
    with pytest.raises(StoreError, match="no bucket with id 9"):
        store.variants(9)
    with pytest.raises(StoreError, match="no bucket with id 9"):
        store.set_variants(9, first)


def test_an_older_database_gains_the_table(path: Path) -> None:
    store = open_store(f"sqlite:///{path}")
    bucket = _bucket(store)
    store.close()
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TABLE bucket_variant")
    conn.close()
    store = open_store(f"sqlite:///{path}", create=False)
    assert store.variants(bucket) == []
    store.set_variants(bucket, [_value("R", True)])
    assert [v.value for v in store.variants(bucket)] == ["R"]


def test_variants_cross_the_wire(path: Path) -> None:
    """A guest's worker stores its variants through the store proxy, as JSON."""
    store = open_store(f"sqlite:///{path}")
    bucket = _bucket(store)
    values = [_value("R", True, base=True), _value("RW", False)]
    message = json.loads(json.dumps({"store": "set_variants",
                                     "args": to_wire([bucket, values]), "kwargs": {}}))
    assert serve(store, message) == {"ret": None}
    assert store.variants(bucket) == values


def test_variants_bad_input(path: Path) -> None:
    runner = CliRunner()
    url = f"sqlite:///{path}"
    result = runner.invoke(app, ["variants", "3", "--db", url])
    assert result.exit_code == 2 and result.output.startswith("mmfuzz: error: no database at")
    _bucket(open_store(url))
    result = runner.invoke(app, ["variants", "7", "--db", url])
    lines = [ln for ln in result.output.splitlines() if ln.startswith("mmfuzz: error:")]
    assert result.exit_code == 2 and lines == ["mmfuzz: error: no bucket with id 7"]
