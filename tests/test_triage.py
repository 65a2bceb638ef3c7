"""`mmfuzz triage` through Typer's CliRunner on temporary SQLite files.

What people read (tables, the show page, labels) and what programs read
(`--json`), filters and sorting, labels surviving new sightings, and every
mistake a user can make as one line with exit status 2.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from datetime import datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from fuzzer.cli.app import app
from fuzzer.oracle import Divergence
from fuzzer.store import STATUSES, SampleContext, Store, open_store

runner = CliRunner()

PROGRAM = "\n".join([
    "r0 = mmap(0, 4, RW, PRIVATE|ANONYMOUS)",
    "mlock(r0, 4)",
    "munlock(r0, 1)",
    "touch(r0, read)",
])
MINIMIZED = "r0 = mmap(0, 4, RW, PRIVATE|ANONYMOUS)\nmlock(r0, 4)"
LONG = ("presence: mmap(MAP_POPULATE|MAP_LOCKED) over a range straddling two VMAs "
        "left pages [0,4) absent where the model populated them")
LOCK = "lock: mlock(RW) left VmLck at 0 [direction: up]"
VMLCK = "vmlck: munlock left VmLck at 16 kB"


def invoke(*args: str, width: int = 250) -> Result:
    return runner.invoke(app, ["triage", *args], env={"COLUMNS": str(width)})


def ok(*args: str, width: int = 250) -> str:
    result = invoke(*args, width=width)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == 0, result.output
    return result.stdout


def assert_user_error(result: Result, *needles: str) -> str:
    """Exit 2 with exactly one line, `mmfuzz: error: ...`, on stderr and nothing on stdout."""
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("mmfuzz: error: "), lines[0]
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def _record(store: Store, title: str, *, n: int = 0, kernel: str = "6.18.0",
            injections: tuple[str, ...] = ()) -> int:
    bucket_id, _ = store.record(
        Divergence(title.split(":")[0], title, 1, "AAAA", "...."),
        SampleContext(None, PROGRAM, f"{n:016x}", kernel, injections))
    return bucket_id


@pytest.fixture(scope="module")
def db_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """1: LONG (seen twice, minimized, 9/10), 2: LOCK (under injection), 3: VMLCK (6.19.0)."""
    path = tmp_path_factory.mktemp("triage-template") / "t.sqlite"
    store = open_store(f"sqlite:///{path}")
    cid = store.start_campaign(kernel="6.18.0", host="test", options={})
    store.add_progress(cid, programs=1000, steps=12345)
    _record(store, LONG)
    _record(store, LOCK, injections=("populate-needs-lock",))
    _record(store, VMLCK, kernel="6.19.0")
    _record(store, LONG, n=1)
    store.set_minimized(1, program_text=MINIMIZED, program_hash="00000000000000aa", step=1,
                        original_calls=4, minimized_calls=2)
    store.set_reliability(1, hits=9, runs=10)
    store.close()
    return path


@pytest.fixture
def db(tmp_path: Path, db_template: Path) -> str:
    """A copy of the template database for each test (building one per test is slow)."""
    shutil.copytree(db_template.parent, tmp_path / "db")  # with any -wal file beside it
    return f"sqlite:///{tmp_path / 'db' / 't.sqlite'}"


def _table_ids(stdout: str) -> list[int]:
    return [int(line.split()[0]) for line in stdout.splitlines()[1:] if line[:1].isdigit()]


# -- list ------------------------------------------------------------------------


def test_list_table(db: str) -> None:
    out = ok("list", "--db", db)
    lines = [line.rstrip() for line in out.splitlines()]
    assert lines[0].split() == ["id", "kind", "count", "runs", "calls", "first", "seen", "last",
                                "seen", "status", "dup", "of", "title"]
    row = next(line for line in lines if line.endswith(LONG))
    assert row.split()[:5] == ["1", "presence", "2", "9/10", "4→2"]
    assert row.split()[9:11] == ["new", "-"]  # after two dates of two words each
    lock = next(line for line in lines if line.endswith(LOCK))  # "[...]" is not markup
    assert lock.split()[:5] == ["2", "lock", "1", "-", "-"]
    assert _table_ids(out) == [1, 3, 2]


@pytest.mark.parametrize("width", [40, 80, 120])
def test_list_never_cuts_a_title(db: str, width: int) -> None:
    out = ok("list", "--db", db, width=width)
    for title in (LONG, LOCK, VMLCK):
        assert any(line.rstrip().endswith(title) for line in out.splitlines()), (width, out)
    assert "…" not in out


def test_list_json(db: str) -> None:
    rows = json.loads(ok("list", "--json", "--db", db))
    assert [r["id"] for r in rows] == [1, 3, 2]
    first = rows[0]
    assert first["title"] == LONG and first["status"] == "new" and first["count"] == 2
    assert (first["reliability_hits"], first["reliability_runs"]) == (9, 10)
    assert (first["original_calls"], first["minimized_calls"]) == (4, 2)
    assert first["duplicate_of"] is None and first["note"] is None
    assert datetime.fromisoformat(first["last_seen"]).utcoffset() is not None
    assert rows[1]["reliability_runs"] is None


def test_list_filters_and_sort(db: str) -> None:
    def ids(*args: str) -> list[int]:
        return [r["id"] for r in json.loads(ok("list", "--json", "--db", db, *args))]

    assert ids("--kind", "lock") == [2]
    assert ids("--kernel", "6.19.0") == [3]
    assert ids("--kernel", "4.0") == []
    assert ids("--since", "1h") == [1, 3, 2]
    assert ids("--since", "2000-01-01") == [1, 3, 2]
    assert ids("--since", "2999-01-01T00:00") == []
    assert ids("--sort", "count") == [1, 3, 2]
    assert ids("--sort", "id") == [1, 2, 3]
    assert ids("--sort", "kind") == [2, 1, 3]
    assert ids("--status", "kernel-bug") == []
    ok("label", "2", "kernel-bug", "--db", db)
    assert ids() == [1, 3]
    assert ids("--all") == [1, 3, 2]
    assert ids("--status", "kernel-bug") == [2]
    assert ids("--status", "kernel-bug", "--status", "new", "--sort", "id") == [1, 2, 3]
    assert ids("--status", "kernel-bug,new", "--sort", "id") == [1, 2, 3]


def test_list_empty(db: str, tmp_path: Path) -> None:
    empty = f"sqlite:///{tmp_path / 'empty.sqlite'}"
    open_store(empty).close()
    assert json.loads(ok("list", "--json", "--db", empty)) == []
    assert ok("list", "--db", empty).strip() == "no divergence buckets to triage (--all lists " \
        "labelled ones too)"
    assert ok("list", "--all", "--db", empty).strip() == "no divergence buckets"


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--since", "yesterday"], ["--since 'yesterday'", "7d"]),
        (["--since", "7x"], ["--since '7x'"]),
        (["--since", "2026-13-01"], ["--since '2026-13-01'"]),
        (["--sort", "title"], ["cannot sort by 'title'", "last_seen"]),
        (["--status", "open"], ["unknown status 'open'", "kernel-bug"]),
    ],
)
def test_list_bad_values_are_one_line(db: str, args: list[str], needles: list[str]) -> None:
    assert_user_error(invoke("list", "--db", db, *args), *needles)


# -- show ------------------------------------------------------------------------


def test_show_minimized_and_reliability(db: str) -> None:
    out = ok("show", "1", "--db", db)
    lines = out.splitlines()
    assert lines[0] == f"#1 {LONG}"
    assert "kind presence, status new, seen 2 times" in lines[1]
    assert "reliability: 9/10 re-runs diverged again" in lines
    assert "first sample (kernel 6.18.0, program 0000000000000000), diverging at step 1:" in out
    start = lines.index("minimized program (4 → 2 calls), diverging at step 1:")
    assert lines[start + 1:start + 3] == [
        "      0  r0 = mmap(0, 4, RW, PRIVATE|ANONYMOUS)",
        " >>   1  mlock(r0, 4)",
    ]
    assert sum(line.startswith(" >> ") for line in lines) == 2  # the sample and the minimized
    assert "injection" not in out
    assert "2 samples stored; kernels: 6.18.0" in out


def test_show_injection_label_note_and_duplicate(db: str) -> None:
    out = ok("show", "2", "--db", db)
    assert ("seen under injection: populate-needs-lock — an emulated bug, not the kernel's"
            in out.splitlines())
    assert "reliability: not measured (mmfuzz repro 2)" in out
    assert "minimized program" not in out
    ok("label", "2", "duplicate", "--duplicate-of", "1", "--note", "same [root] cause", "--db", db)
    lines = ok("show", "2", "--db", db).splitlines()
    assert "status duplicate" in lines[1]
    assert f"duplicate of #1: {LONG}" in lines
    assert "note: same [root] cause" in lines
    row = next(line for line in ok("list", "--all", "--db", db).splitlines()
               if line.rstrip().endswith(LOCK))
    assert row.split()[9:11] == ["duplicate", "#1"]


def test_show_lists_the_other_symptoms_of_the_first_sample(db: str) -> None:
    store = open_store(db)
    bucket, _ = store.record(Divergence("lock", "lock: mlock left pages unlocked", 1, "e", "o"),
                             SampleContext(None, PROGRAM, f"{77:016x}", "6.18.0",
                                           symptoms=(VMLCK,)))
    assert f"  also:     {VMLCK}" in ok("show", str(bucket), "--db", db).splitlines()


def test_show_counts_injected_samples_after_the_first(db: str) -> None:
    store = open_store(db)
    _record(store, VMLCK, n=3, injections=("a", "b"))
    store.close()
    out = ok("show", "3", "--db", db)
    assert "seen under injection:" not in out  # the first sample was seen on a real kernel
    assert "1 of 2 samples were seen under injection" in out


def test_show_lists_each_sample_with_its_kernel_and_features(db: str) -> None:
    """A bucket seen on two kernels: each sample's release and what its kernel lacked."""
    store = open_store(db)
    old = {"release": "6.1.0", "lf_mnemonic": False, "pagemap_scan": False, "madv_populate": True}
    for n, kernel, features in ((5, "6.1.0", old), (6, "6.19.0", {"release": "6.19.0"})):
        store.record(Divergence("vmlck", VMLCK, 2, "a", "b"),
                     SampleContext(1, PROGRAM, f"{n:016x}", kernel, features=features))
    store.close()
    lines = [line.rstrip() for line in ok("show", "3", "--db", db).splitlines()]
    start = lines.index("3 samples stored; kernels: 6.1.0, 6.19.0")
    header, *rows = lines[start + 1:]
    assert header.split() == ["seen", "campaign", "step", "program", "kernel", "features"]
    assert [row.split(maxsplit=6)[2:] for row in rows] == [  # after the two words of "seen"
        ["-", "1", "0000000000000000", "6.19.0", "features not recorded"],
        ["1", "2", "0000000000000005", "6.1.0", "without lf_mnemonic, pagemap_scan"],
        ["1", "2", "0000000000000006", "6.19.0", "all features"],
    ]
    assert len({row.index(" 6.1") for row in rows}) == 1  # in columns
    samples = json.loads(ok("show", "3", "--json", "--db", db))["samples"]
    assert [(s["kernel"], s["features"]) for s in samples] == [
        ("6.19.0", None), ("6.1.0", old), ("6.19.0", {"release": "6.19.0"})]


def test_show_lists_only_the_latest_samples(db: str) -> None:
    store = open_store(db)
    for n in range(25):
        _record(store, VMLCK, n=10 + n)
    store.close()
    lines = ok("show", "3", "--db", db).splitlines()
    start = lines.index("26 samples stored; kernels: 6.18.0, 6.19.0")
    assert len(lines[start + 2:]) == 21  # 20 samples, and a line about the rest
    assert lines[-1] == "  (6 earlier samples not shown; --json lists all)"
    assert lines[-2].split()[4] == f"{34:016x}"  # the latest, last


def test_show_json(db: str) -> None:
    detail = json.loads(ok("show", "1", "--json", "--db", db))
    assert detail["title"] == LONG
    assert detail["minimized_program_text"] == MINIMIZED
    assert (detail["minimized_step"], detail["minimized_program_hash"]) == (1, "00000000000000aa")
    assert [s["program_text"] for s in detail["samples"]] == [PROGRAM, PROGRAM]
    assert [s["injections"] for s in detail["samples"]] == ["", ""]
    datetime.fromisoformat(detail["samples"][0]["created"])
    lock = json.loads(ok("show", "2", "--json", "--db", db))
    assert lock["samples"][0]["injections"] == "populate-needs-lock"
    assert lock["minimized_program_text"] is None


def test_show_unknown_id(db: str) -> None:
    assert_user_error(invoke("show", "7", "--db", db), "no bucket with id 7")
    assert_user_error(invoke("show", "7", "--json", "--db", db), "no bucket with id 7")


# -- label -----------------------------------------------------------------------


def test_label(db: str) -> None:
    out = ok("label", "3", "kernel-bug", "--note", "reported upstream", "--db", db)
    assert out.splitlines() == [f"#3 {VMLCK}", "status: kernel-bug", "note: reported upstream"]
    assert [r["id"] for r in json.loads(ok("list", "--json", "--db", db))] == [1, 2]
    ok("label", "3", "model-bug", "--db", db)  # no --note: the note stays
    row = json.loads(ok("show", "3", "--json", "--db", db))
    assert (row["status"], row["note"]) == ("model-bug", "reported upstream")
    out = ok("label", "2", "duplicate", "--duplicate-of", "3", "--db", db)
    assert out.splitlines()[1] == "status: duplicate of #3"


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["1", "wontfix"], ["unknown status 'wontfix'", ", ".join(STATUSES)]),
        (["9", "fixed"], ["no bucket with id 9"]),
        (["1", "duplicate"], ["duplicate needs the id"]),
        (["1", "duplicate", "--duplicate-of", "1"], ["cannot be a duplicate of itself"]),
        (["1", "duplicate", "--duplicate-of", "8"], ["no bucket with id 8"]),
        (["1", "fixed", "--duplicate-of", "2"], ["only a duplicate"]),
    ],
)
def test_label_mistakes_are_one_line_and_change_nothing(
    db: str, args: list[str], needles: list[str]
) -> None:
    before = ok("list", "--all", "--json", "--db", db)
    assert_user_error(invoke("label", *args, "--db", db), *needles)
    assert ok("list", "--all", "--json", "--db", db) == before


def test_labels_survive_new_sightings(db: str) -> None:
    ok("label", "1", "kernel-bug", "--note", "reported", "--db", db)
    ok("label", "3", "fixed", "--note", "fixed in 6.20", "--db", db)
    ok("label", "2", "false-positive", "--db", db)
    store = open_store(db)
    _record(store, LONG, n=4)
    _record(store, LOCK, n=4, injections=("populate-needs-lock",))
    store.close()
    assert ok("list", "--db", db).strip().startswith("no divergence buckets")
    store = open_store(db)
    _record(store, VMLCK, n=4)  # a fixed bug seen again on a real kernel
    store.close()
    rows = {r["id"]: r for r in json.loads(ok("list", "--all", "--json", "--db", db))}
    assert {i: (r["status"], r["note"], r["count"]) for i, r in rows.items()} == {
        1: ("kernel-bug", "reported", 3),
        2: ("false-positive", None, 2),
        3: ("regression", "fixed in 6.20", 2),
    }
    assert _table_ids(ok("list", "--db", db)) == [3]


# -- stats -----------------------------------------------------------------------


def test_stats(db: str) -> None:
    ok("label", "2", "false-positive", "--db", db)
    stats = json.loads(ok("stats", "--json", "--db", db))
    assert stats["buckets"] == 3 and stats["samples"] == 4 and stats["injected_samples"] == 1
    assert stats["by_status"]["new"] == 2 and stats["by_status"]["false-positive"] == 1
    assert list(stats["by_status"]) == list(STATUSES)
    assert stats["by_kind"] == {"lock": 1, "presence": 1, "vmlck": 1}
    assert stats["by_kernel"] == {"6.18.0": 2, "6.19.0": 1}
    assert (stats["campaigns"], stats["programs"], stats["steps"]) == (1, 1000, 12345)
    lines = ok("stats", "--db", db).splitlines()
    assert lines[0] == "3 buckets, 4 samples (1 seen under injection)"
    assert lines[1].startswith("status: new 2, kernel-bug 0, model-bug 0, false-positive 1")
    assert lines[2] == "kind:   lock 1, presence 1, vmlck 1"
    assert lines[3] == "kernel: 6.18.0 2, 6.19.0 1"
    assert lines[4] == "1 campaigns ran 1,000 programs, 12,345 steps"


def test_commands_need_an_existing_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'none.sqlite'}"
    for args in (["list"], ["show", "1"], ["label", "1", "fixed"], ["stats"]):
        assert_user_error(invoke(*args, "--db", url), "no database at")
    assert not (tmp_path / "none.sqlite").exists()


# -- an older database -------------------------------------------------------------


def test_triage_upgrades_a_database_made_before_triage(tmp_path: Path) -> None:
    from tests.test_store import OLD_SCHEMA

    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as conn:
        conn.executescript(OLD_SCHEMA)
    conn.close()
    url = f"sqlite:///{path}"
    rows = json.loads(ok("list", "--json", "--db", url))
    assert [(r["id"], r["note"], r["count"]) for r in rows] == [
        (1, "looked at it once", 2), (2, None, 1)]
    ok("label", "1", "kernel-bug", "--db", url)
    out = ok("show", "1", "--db", url)
    assert "status kernel-bug" in out and "note: looked at it once" in out
    assert "injection" not in out


def test_help_has_examples() -> None:
    for command in ("list", "show", "label", "stats"):
        result = invoke(command, "--help")
        assert result.exit_code == 0, command
        assert "Example: mmfuzz triage " + command in result.stdout, command
