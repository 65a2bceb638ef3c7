"""`mmfuzz minimize`, `repro` and `export` through Typer's CliRunner on a temporary database.

Buckets are filled with Store.record, as a campaign would; the ones found under
an injection are re-run under it (kernel tests). Bad input is one line and exit 2.
"""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.orm import Session
from typer.testing import CliRunner, Result

from fuzzer.cli.app import app
from fuzzer.oracle import Divergence
from fuzzer.prog import parse
from fuzzer.store import SampleContext, Store, open_store
from fuzzer.store.models import Bucket

runner = CliRunner()
RW = "PROT_READ|PROT_WRITE"
AP = "MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED"
TITLE = "presence: mmap(PRIVATE|ANONYMOUS|POPULATE) left pages not anonymous"
PROGRAM = textwrap.dedent(f"""\
    mmap(@8, 2p, PROT_READ, {AP}, -1, 0)
    mlock(@8, 1p)
    mmap(@2, 3p, {RW}, {AP}|MAP_POPULATE, -1, 0)
    touch(@9, write)
    munmap(@8, 1p)
    """)


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'mmfuzz.sqlite'}"


def _record(store: Store, text: str = PROGRAM, title: str = TITLE, step: int = 2,
            injections: tuple[str, ...] = ("populate-needs-lock",)) -> int:
    program = parse(text)
    bucket, _ = store.record(
        Divergence(title.split(":")[0], title, step, "@2-4 rw-p AAA", "@2-4 rw-p ..."),
        SampleContext(None, program.text(), program.hash, "6.18.0", injections))
    return bucket


def _error(result: Result, *words: str) -> str:
    code, output = result.exit_code, result.output
    assert code == 2, output
    lines = [ln for ln in output.splitlines() if ln.startswith("mmfuzz: error:")]
    assert len(lines) == 1 and "Traceback" not in output, output
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("fmt", ["c", "prog", "syz"])
def test_export_to_stdout(db: str, fmt: str) -> None:
    bucket = _record(open_store(db))
    result = runner.invoke(app, ["export", str(bucket), "--format", fmt, "--db", db])
    assert result.exit_code == 0, result.output
    # The C comment wraps the title at 72 columns: compare the words.
    words = " ".join(result.output.replace("\n *", " ").split())
    assert TITLE in words
    first = {"c": "/*", "prog": "# bucket #1", "syz": "# bucket #1"}[fmt]
    assert result.output.startswith(first)


def test_export_uses_the_minimized_program(db: str) -> None:
    store = open_store(db)
    bucket = _record(store)
    small = parse(f"mmap(@0, 1p, {RW}, MAP_PRIVATE|MAP_ANONYMOUS|MAP_POPULATE, -1, 0)\n")
    store.set_minimized(bucket, program_text=small.text(), program_hash=small.hash, step=0,
                        original_calls=5, minimized_calls=1)
    result = runner.invoke(app, ["export", str(bucket), "--format", "prog", "--db", db])
    assert result.exit_code == 0, result.output
    assert parse(result.output) == small


def test_export_output_and_crashes(db: str, tmp_path: Path) -> None:
    bucket = _record(open_store(db))
    target = tmp_path / "repro.c"
    result = runner.invoke(app, ["export", str(bucket), "-o", str(target),
                                 "--crashes", str(tmp_path / "crashes"), "--db", db])
    assert result.exit_code == 0, result.output
    assert "int main(void)" in target.read_text()
    name = f"presence-mmap-private-anonymous-populate-left-pages-not-anonymous-{bucket}"
    folder = tmp_path / "crashes" / name
    assert {p.name for p in folder.iterdir()} == {"original.prog", "repro.c", "report.txt"}
    assert f"wrote {folder}" in result.output


def test_export_bad_input(db: str, tmp_path: Path) -> None:
    store = open_store(db)
    bucket = _record(store)
    (tmp_path / "file").write_text("")
    _error(runner.invoke(app, ["export", "99", "--db", db]), "no bucket with id 99")
    _error(runner.invoke(app, ["export", str(bucket), "--format", "pdf", "--db", db]), "pdf")
    _error(runner.invoke(app, ["export", str(bucket), "-o", str(tmp_path / "no" / "x.c"),
                               "--db", db]), str(tmp_path / "no" / "x.c"))
    _error(runner.invoke(app, ["export", str(bucket), "--crashes", str(tmp_path / "file"),
                               "--db", db]), str(tmp_path / "file"))


def test_bucket_without_a_program(db: str) -> None:
    store = open_store(db)
    now = datetime.now(UTC)
    with Session(store.engine) as s, s.begin():
        s.add(Bucket(id=5, kind="lock", title="lock: nothing stored", first_seen=now,
                     last_seen=now, count=0, status="new"))
    for command in (["export", "5"], ["minimize", "5"], ["repro", "5"]):
        _error(runner.invoke(app, [*command, "--db", db]), "bucket 5 has no stored program")


def test_bucket_with_an_unreadable_program(db: str) -> None:
    store = open_store(db)
    store.record(Divergence("lock", "lock: old format", 0, "", ""),
                 SampleContext(None, "r0 = mmap(0, 1, RW)\n", "00000000000000aa", "6.18.0"))
    _error(runner.invoke(app, ["export", "1", "--db", db]), "bucket 1:1")


def test_missing_database(tmp_path: Path) -> None:
    _error(runner.invoke(app, ["export", "1", "--db", f"sqlite:///{tmp_path / 'none.sqlite'}"]))


def test_every_command_has_an_example() -> None:
    for command in ("minimize", "repro", "export"):
        result = runner.invoke(app, [command, "--help"])
        assert result.exit_code == 0 and f"Example: mmfuzz {command}" in result.output


# ---------------------------------------------------------------- on the kernel


@pytest.mark.kernel
def test_minimize_repro_export(db: str, tmp_path: Path) -> None:
    store = open_store(db)
    bucket = _record(store)
    result = runner.invoke(app, ["minimize", str(bucket), "--budget", "200", "--db", db])
    assert result.exit_code == 0, result.output
    assert "before (5 calls, diverging at step 2)" in result.output
    assert "after (1 calls, diverging at step 0)" in result.output
    assert "5 calls -> 1" in result.output
    detail = store.bucket(bucket)
    assert detail.minimized_program_text == (
        # a presence title names the state expected, not the protection: PROT_WRITE
        # alone still expects anonymous pages, so minimizing drops PROT_READ
        "mmap(@0, 1p, PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_POPULATE, -1, 0)\n")
    assert (detail.minimized_step, detail.original_calls, detail.minimized_calls) == (0, 5, 1)

    result = runner.invoke(app, ["repro", str(bucket), "--runs", "5", "--db", db])
    assert result.exit_code == 0, result.output
    assert f"5/5 runs show: {TITLE}" in result.output
    assert "minimized program, 1 calls under populate-needs-lock" in result.output
    detail = store.bucket(bucket)
    assert (detail.reliability_hits, detail.reliability_runs) == (5, 5)

    result = runner.invoke(app, ["repro", str(bucket), "--runs", "3", "--original", "--db", db])
    assert "3/3 runs show" in result.output and "original program, 5 calls" in result.output

    result = runner.invoke(app, ["export", str(bucket), "--crashes", str(tmp_path), "--db", db])
    assert result.exit_code == 0, result.output
    report = next(tmp_path.glob("*/report.txt")).read_text()
    assert "3/3 runs reproduce it" in report and "5 calls -> 1" in report  # the last repro


@pytest.mark.kernel
def test_repro_on_the_plain_kernel(db: str) -> None:
    """--inject overrides the stored injections: without the bug, nothing reproduces."""
    store = open_store(db)
    bucket = _record(store)
    result = runner.invoke(app, ["repro", str(bucket), "--runs", "2", "--inject",
                                 "munlock-skipped", "--db", db])
    assert result.exit_code == 0, result.output
    assert f"0/2 runs show: {TITLE}" in result.output


@pytest.mark.kernel
def test_minimize_refuses_what_does_not_reproduce(db: str) -> None:
    store = open_store(db)
    bucket = _record(store, injections=())
    result = runner.invoke(app, ["minimize", str(bucket), "--db", db])
    assert result.exit_code == 1
    assert "does not show its divergence on this host" in result.output
    assert store.bucket(bucket).minimized_program_text is None


@pytest.mark.kernel
def test_bad_injection_is_one_line(db: str) -> None:
    bucket = _record(open_store(db))
    _error(runner.invoke(app, ["repro", str(bucket), "--inject", "nope", "--db", db]),
           "unknown injection 'nope'")
