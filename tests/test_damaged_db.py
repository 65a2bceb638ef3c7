"""A damaged or read-only database: one line and exit 2, never a traceback; reads never write.

A real database is written through the Store (a campaign with its progress
and operation counts, buckets with samples and a label), then copied: random
bytes over some of its pages for the damage, or opened read-only.
"""

from __future__ import annotations

import hashlib
import random
import shutil
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from fuzzer.cli.app import app
from fuzzer.oracle import Divergence, DivergenceKind
from fuzzer.store import OpCount, SampleContext, StoreError, open_store

PAGE = 4096
runner = CliRunner()


def invoke(*args: str) -> Result:
    return runner.invoke(app, list(args), env={"COLUMNS": "250"})


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("real") / "real.sqlite"
    store = open_store(f"sqlite:///{path}")
    cid = store.start_campaign(kernel="6.18.0", host="box", options={"workers": 2})
    for i in range(60):
        text = f"mmap(@0, 0x{i + 1:x}000, rw, private|anon)\nmlock(@0, 0x1000)\n" * 3
        seen = SampleContext(cid, text, f"{i:016x}", "6.18.0", (), {"pkeys": True})
        store.record(Divergence(DivergenceKind.PRESENCE, f"presence: finding {i} " + "x" * 80,
                                1, "page 3 present " * 5, "page 3 absent " * 5), seen)
    store.add_progress(cid, programs=500, steps=6000,
                       ops=[OpCount("mlock", "outcome", f"E{i}", i) for i in range(40)])
    store.heartbeat(cid, 2)
    store.finish_campaign(cid, "done")
    store.label(3, "kernel-bug", note="seen twice")
    store.close()
    assert path.stat().st_size > 20 * PAGE
    return path


def _damaged(real: Path, tmp_path: Path, seed: int) -> Path:
    rng = random.Random(seed)
    data = bytearray(real.read_bytes())
    pages = len(data) // PAGE
    for page in rng.sample(range(pages), max(1, pages // 4)):
        data[page * PAGE:(page + 1) * PAGE] = rng.randbytes(PAGE)
    path = tmp_path / f"damaged-{seed}.sqlite"
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("seed", range(20))
def test_random_pages_in_the_database_are_one_line(real: Path, tmp_path: Path,
                                                   seed: int) -> None:
    url = f"sqlite:///{_damaged(real, tmp_path, seed)}"
    for args in (["triage", "list", "--all"], ["stats", "ops"], ["status"],
                 ["triage", "show", "3"]):
        result = invoke(*args, "--db", url)
        assert result.exception is None or isinstance(result.exception, SystemExit), (
            args, repr(result.exception))
        assert "Traceback" not in result.output
        assert result.exit_code in (0, 2), (args, result.output)
        if result.exit_code == 2:
            lines = result.stderr.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("mmfuzz: error: "), result.stderr


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_read_only_commands_do_not_write(real: Path, tmp_path: Path) -> None:
    path = tmp_path / "ro.sqlite"
    shutil.copy(real, path)
    path.chmod(0o444)  # root reads and writes it anyway: the digest says whether it did
    before, url = _digest(path), f"sqlite:///{path}"
    for args in (["triage", "list", "--all"], ["triage", "show", "3"], ["triage", "stats"],
                 ["stats", "ops"], ["status"], ["kernels"]):
        result = invoke(*args, "--db", url)
        assert result.exit_code == 0, (args, result.output)
    assert _digest(path) == before
    assert not Path(f"{path}-wal").exists() or Path(f"{path}-wal").stat().st_size == 0
    # What they open cannot write, whoever runs them.
    store = open_store(url, read_only=True)
    with pytest.raises(StoreError, match="readonly database"):
        store.label(3, "fixed")
    assert store.bucket(3).status == "kernel-bug"


@pytest.mark.parametrize(("column", "value"), [
    ("options", '{"workers": 2, "feat'),  # a torn JSON object: the JSONDecodeError users saw
    ("options", "[1, 2]"),
    ("started", "not a time"),
    ("host", b"\xff\xfe not UTF-8"),
])
def test_a_garbled_campaign_row_is_one_line(real: Path, tmp_path: Path, column: str,
                                            value: str | bytes) -> None:
    path = tmp_path / "garbled.sqlite"
    shutil.copy(real, path)
    with sqlite3.connect(path) as conn:
        conn.execute(f"UPDATE campaign SET {column} = ?", (value,))
    conn.close()
    for args in (["stats", "ops"], ["status"], ["kernels"]):
        result = invoke(*args, "--db", f"sqlite:///{path}")
        assert result.exception is None or isinstance(result.exception, SystemExit), (
            args, repr(result.exception))
        if result.exit_code != 0:
            assert result.exit_code == 2, (args, result.output)
            (line,) = result.stderr.strip().splitlines()
            assert line.startswith("mmfuzz: error: "), line
