"""`mmfuzz stats ops` through Typer's CliRunner: counts stored by hand (exact output),
a real campaign's counts (they add up to its steps), and users' mistakes as one line."""

from __future__ import annotations

import json
import os
import re
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from fuzzer.cli.app import app
from fuzzer.store import OpCount, open_store
from tests.test_store import OLD_SCHEMA

runner = CliRunner()


def _ops(*rows: list[str | int]) -> list[OpCount]:
    return [OpCount.from_json(row) for row in rows]


def invoke(*args: str) -> Result:
    return runner.invoke(app, ["stats", "ops", *args], env={"COLUMNS": "200"})


def ok(*args: str) -> str:
    result = invoke(*args)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == 0, result.output
    return result.stdout


def assert_user_error(result: Result, *needles: str) -> None:
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mmfuzz: error: "), result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture
def db(tmp_path: Path) -> str:
    """Campaign 1: 4 mmap steps and 2 touches; campaign 2 (the latest): 1 mlockall."""
    url = f"sqlite:///{tmp_path / 'db' / 's.sqlite'}"
    store = open_store(url)
    first = store.start_campaign(kernel="6.18.0", host="h", options={})
    store.add_progress(first, programs=2, steps=6, ops=_ops(
        ["mmap", "steps", "", 4], ["mmap", "prot", "PROT_READ", 4],
        ["mmap", "prot", "PROT_WRITE", 1], ["mmap", "flags", "MAP_PRIVATE", 3],
        ["mmap", "flags", "MAP_FIXED_NOREPLACE", 1], ["mmap", "outcome", "ok", 3],
        ["mmap", "outcome", "EEXIST", 1], ["touch", "steps", "", 2],
        ["touch", "mode", "read", 2], ["touch", "outcome", "SIGSEGV/MAPERR", 2]))
    store.finish_campaign(first)
    second = store.start_campaign(kernel="6.19.0", host="h", options={})
    store.add_progress(second, programs=1, steps=1, ops=_ops(
        ["mlockall", "steps", "", 1], ["mlockall", "flags", "0", 1],
        ["mlockall", "outcome", "EINVAL", 1]))
    store.close()
    return url


def test_one_campaign(db: str) -> None:
    lines = ok("--campaign", "1", "--db", db).splitlines()
    assert lines[0].startswith("campaign 1 (done, kernel 6.18.0, ")
    assert lines[0].endswith("): 2 programs, 6 checked steps")
    assert [line.rstrip() for line in lines[1:]] == [
        "succeeded: all mm calls 75.0% · mmap 75.0%",  # touches are not mm calls
        "",
        "mmap: 4 steps (66.7% of all)",
        "  prot     PROT_READ            4  100.0%",
        "           PROT_WRITE           1   25.0%",
        "  flags    MAP_PRIVATE          3   75.0%",
        "           MAP_FIXED_NOREPLACE  1   25.0%",
        "  outcome  ok                   3   75.0%",
        "           EEXIST               1   25.0%",
        "",
        "touch: 2 steps (33.3% of all)",
        "  mode     read                 2  100.0%",
        "  outcome  SIGSEGV/MAPERR       2  100.0%",
        "",
        "not exercised: " + ", ".join(
            n for n in json.loads(ok("--campaign", "1", "--json", "--db", db))["not_exercised"]),
    ]
    assert "munlockall" in lines[-1] and "mmap" not in lines[-1]


def test_the_latest_campaign_by_default(db: str) -> None:
    out = ok("--db", db)
    assert out.startswith("campaign 2 (running, kernel 6.19.0, ")
    assert "mlockall: 1 steps (100.0% of all)" in out
    assert "  flags    0       1  100.0%" in out
    assert "mmap" not in out.split("not exercised:")[0]


def test_all_campaigns(db: str) -> None:
    out = ok("--campaign", "all", "--db", db)
    assert out.splitlines()[0] == "2 campaigns: 3 programs, 7 checked steps"
    assert "mmap: 4 steps (57.1% of all)" in out
    assert "mlockall: 1 steps (14.3% of all)" in out
    data = json.loads(ok("--campaign", "all", "--json", "--db", db))
    assert (data["campaign"], data["campaigns"], data["steps"]) == (None, [2, 1], 7)
    assert data["campaign_steps"] == 7 and data["programs"] == 3


def test_json(db: str) -> None:
    data = json.loads(ok("--campaign", "1", "--json", "--db", db))
    assert (data["campaign"], data["campaigns"], data["programs"]) == (1, [1], 2)
    assert data["steps"] == data["campaign_steps"] == 6
    assert list(data["calls"]) == ["mmap", "touch"]
    assert data["calls"]["mmap"] == {
        "steps": 4,
        "args": {"prot": {"PROT_READ": 4, "PROT_WRITE": 1},
                 "flags": {"MAP_PRIVATE": 3, "MAP_FIXED_NOREPLACE": 1}},
        "outcomes": {"ok": 3, "EEXIST": 1},
    }
    assert "mmap" not in data["not_exercised"] and "mlockall" in data["not_exercised"]
    assert data["success"] == {"all mm calls": [3, 4], "mmap": [3, 4]}


def test_success_over_all_campaigns(db: str) -> None:
    data = json.loads(ok("--campaign", "all", "--json", "--db", db))
    assert data["success"] == {"all mm calls": [3, 5], "mmap": [3, 4], "mlockall": [0, 1]}
    assert "succeeded: all mm calls 60.0% · mmap 75.0% · mlockall 0.0%" in ok(
        "--campaign", "all", "--db", db)


def test_a_campaign_without_counts(db: str, tmp_path: Path) -> None:
    """Campaigns from before mmfuzz counted operations: said, not an error."""
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as conn:
        conn.executescript(OLD_SCHEMA)
    conn.close()
    out = ok("--db", f"sqlite:///{path}")
    assert out.splitlines() == [
        "campaign 1 (done, kernel 6.17.0, 2026-10-01 10:00): 500 programs, 6,000 checked steps",
        "no operation counts stored (campaigns before mmfuzz counted them have none)"]
    assert json.loads(ok("--json", "--db", f"sqlite:///{path}"))["calls"] == {}
    store = open_store(f"sqlite:///{path}")  # now a newer campaign adds counts
    cid = store.start_campaign(kernel="6.18.0", host="h", options={})
    store.add_progress(cid, programs=1, steps=1, ops=_ops(["munlockall", "steps", "", 1],
                                                          ["munlockall", "outcome", "ok", 1]))
    store.close()
    out = ok("--campaign", "all", "--db", f"sqlite:///{path}")
    assert "operation counts cover 1 of the 6,001 steps" in out


def test_mistakes_are_one_line(db: str, tmp_path: Path) -> None:
    assert_user_error(invoke("--campaign", "9", "--db", db), "no campaign with id 9")
    assert_user_error(invoke("--campaign", "latest", "--db", db),
                      "--campaign 'latest'", "'all'")
    missing = f"sqlite:///{tmp_path / 'none.sqlite'}"
    assert_user_error(invoke("--db", missing), "no database at")
    assert not (tmp_path / "none.sqlite").exists()
    corrupt = tmp_path / "corrupt.sqlite"
    corrupt.write_bytes(b"this is not a database" * 100)
    assert_user_error(invoke("--db", f"sqlite:///{corrupt}"), "not a readable mmfuzz database")
    empty = f"sqlite:///{tmp_path / 'empty.sqlite'}"
    open_store(empty).close()
    assert_user_error(invoke("--db", empty), "no campaign in", "mmfuzz run")
    assert_user_error(invoke("--campaign", "all", "--json", "--db", empty), "no campaign in")


def test_help_has_an_example() -> None:
    result = invoke("--help")
    assert result.exit_code == 0
    assert "Example: mmfuzz stats ops" in result.stdout


# -- a real campaign ---------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.kernel
def test_a_real_campaign_counts_every_step(tmp_path: Path) -> None:
    """A short campaign on an emulated bug: its operation counts add up to its checked
    steps, call by call, and the sample it stores names this kernel and its features."""
    url = f"sqlite:///{tmp_path / 'x.sqlite'}"
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "p.prog").write_text(  # the mmap diverges under the injection: the last step
        "mlockall(0)\n"
        "touch(@40, read)\n"
        "mmap(@0, 4p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED|MAP_POPULATE,"
        " -1, 0)\n"
        "touch(@1, write)\n")
    result = runner.invoke(app, [
        "run", "--time", "5", "--runs", "30", "--db", url, "--seeds", str(seeds),
        "--corpus", str(tmp_path / "corpus"), "--crashes", str(tmp_path / "crashes"),
        "--minimize-budget", "0", "--inject", "populate-needs-lock"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    (campaign,) = open_store(url, create=False).campaigns()
    assert campaign.steps > 0

    data = json.loads(ok("--json", "--db", url))
    assert data["campaign"] == campaign.id
    assert data["steps"] == data["campaign_steps"] == campaign.steps
    for name, call in data["calls"].items():
        assert sum(call["outcomes"].values()) == call["steps"], name
        for arg, values in call["args"].items():  # a flag is set in at most every step
            assert all(0 < n <= call["steps"] for n in values.values()), (name, arg)
    # The seed ran before anything else, its diverging step included: its flags and
    # outcomes are among the counts.
    mmap = data["calls"]["mmap"]
    assert mmap["args"]["flags"]["MAP_POPULATE"] >= 1
    assert mmap["args"]["prot"]["PROT_WRITE"] >= 1
    assert data["calls"]["mlockall"]["args"]["flags"]["0"] >= 1
    assert data["calls"]["mlockall"]["outcomes"]["EINVAL"] >= 1
    assert data["calls"]["touch"]["outcomes"]["SIGSEGV/MAPERR"] >= 1

    out = ok("--db", url)
    assert out.startswith(f"campaign {campaign.id} (done, kernel {os.uname().release}, ")
    assert f"mmap: {mmap['steps']:,} steps (" in out
    assert "  outcome  " in out and "MAP_POPULATE" in out

    # The populate-needs-lock sample records the kernel and its probed features.
    show = runner.invoke(app, ["triage", "show", "1", "--json", "--db", url])
    assert show.exit_code == 0, show.output
    (sample, *_) = json.loads(show.stdout)["samples"]
    assert sample["kernel"] == os.uname().release
    assert sample["features"]["release"] == os.uname().release
    assert set(sample["features"]) >= {"lf_mnemonic", "pagemap_scan", "madv_populate"}
    assert sample["injections"] == "populate-needs-lock"


# -- stats coverage ----------------------------------------------------------------


def coverage(*args: str) -> Result:
    return runner.invoke(app, ["stats", "coverage", *args], env={"COLUMNS": "200"})


def test_coverage_of_stored_entries(db: str) -> None:
    """Features are counted once per campaign, by call (a pair by its second call)."""
    store = open_store(db)
    store.add_corpus(2, "mlockall(0)", "00000000000000b1",
                     ["mlockall(0) EINVAL on absent", "munlockall ok on absent"])
    store.add_corpus(2, "munlockall()", "00000000000000b2", [
        "munlockall ok on absent", "mlockall(CURRENT) ok on absent > munlockall ok on absent"])
    store.add_corpus(1, "munlockall()", "00000000000000b2", ["munlockall ok on partial"])
    store.close()
    result = coverage("--db", db)
    assert result.exit_code == 0, result.output
    lines = [line.rstrip() for line in result.stdout.splitlines()]
    assert lines[0].startswith("campaign 2 (running, ")
    assert lines[0].endswith("): 3 semantic features (2 events, 1 pairs)")
    assert lines[1:6] == ["", "  call         events    pairs",
                          "  mlockall          1        0",
                          "  munlockall        1        1", ""]
    assert lines[6].startswith("reached after: ") and lines[6].endswith(" s 3")
    data = json.loads(coverage("--campaign", "all", "--json", "--db", db).stdout)
    assert data["campaign"] is None and data["campaigns"] == [2, 1]
    assert (data["features"], data["events"], data["pairs"]) == (4, 3, 1)
    assert data["by_call"] == {"mlockall": [1, 0], "munlockall": [2, 1]}
    assert data["growth"] == []  # over several campaigns it would mean nothing
    one = json.loads(coverage("--campaign", "1", "--json", "--db", db).stdout)
    assert one["features"] == 1 and [n for _, n in one["growth"]] == [1]


def test_coverage_mistakes_are_one_line(db: str, tmp_path: Path) -> None:
    assert_user_error(coverage("--campaign", "9", "--db", db), "no campaign with id 9")
    assert_user_error(coverage("--campaign", "x", "--db", db), "--campaign 'x'")
    assert_user_error(coverage("--db", f"sqlite:///{tmp_path / 'none.sqlite'}"), "no database")
    result = coverage("--campaign", "1", "--db", db)
    assert result.exit_code == 0 and "no corpus entries stored" in result.stdout


@pytest.mark.slow
@pytest.mark.kernel
def test_a_real_campaign_records_its_coverage(tmp_path: Path) -> None:
    """A short campaign stores the programs that reached features first; stats coverage
    counts them, they grow over the run, and the next campaign plants them."""
    url = f"sqlite:///{tmp_path / 'c.sqlite'}"
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "p.prog").write_text("mlockall(0)\nmunlockall()\n")

    def run(corpus: str) -> str:
        result = runner.invoke(app, [
            "run", "--time", "5", "--runs", "40", "--db", url, "--seeds", str(seeds),
            "--corpus", str(tmp_path / corpus), "--crashes", str(tmp_path / "crashes")],
            env={"COLUMNS": "200"})
        assert result.exit_code == 0, result.output
        assert " semantic features" in result.stdout
        return result.stdout

    run("first")
    store = open_store(url, create=False)
    (campaign,) = store.campaigns()
    rows = store.corpus_features([campaign.id])
    reached = {f for _, _, features in rows for f in features}
    # The seed ran first; its two events and their pair are among the features.
    assert {"mlockall(0) EINVAL on absent", "munlockall ok on absent"} <= reached
    data = json.loads(coverage("--json", "--db", url).stdout)
    assert data["features"] == len(reached) == data["events"] + data["pairs"]
    assert sum(e + p for e, p in data["by_call"].values()) == data["features"]
    counts = [n for _, n in data["growth"]]
    assert counts == sorted(counts) and counts[-1] == data["features"]
    assert "reached after: " in coverage("--db", url).stdout

    texts, _ = store.corpus_newest(10_000)
    assert {p.read_text() for p in (tmp_path / "first").iterdir()} == set(texts)
    # a fresh corpus folder: the stored entries are planted from the database
    planted = re.search(r"corpus: ([\d,]+) programs planted", run("second"))
    assert planted is not None and int(planted[1].replace(",", "")) >= len(texts)

    # bench coverage replays folders: the first holds the first campaign's stored
    # entries, so it reaches at least the features they were stored for.
    result = runner.invoke(app, ["bench", "coverage", "--json", str(tmp_path / "first"),
                                 str(tmp_path / "second")])
    assert result.exit_code == 0, result.output
    first, second = json.loads(result.stdout)
    assert first["programs"] > 0 and first["other"] == 0
    assert first["features"] == first["events"] + first["pairs"] > 0
    assert first["features"] >= len(reached)  # programs run the same way every time
    assert second["programs"] > 0
    assert_user_error(runner.invoke(app, ["bench", "coverage", str(tmp_path / "none")]),
                      "not a folder")
