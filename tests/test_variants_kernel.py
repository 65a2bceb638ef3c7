"""Variants on the real kernel: an emulated bug's and the 6.18 kernel's own.

`mmfuzz variants` runs them and stores them, `triage show` prints their summary
(and --json has them), and a campaign's reduction of a new bucket runs them
with what its budget has left.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fuzzer.check import check
from fuzzer.cli.app import app
from fuzzer.executor import executor_path
from fuzzer.inject import load
from fuzzer.prog import parse
from fuzzer.reduce.bucket import reduce_new_bucket
from fuzzer.store import SampleContext, Store, open_store
from fuzzer.trace import Supervisor

pytestmark = pytest.mark.kernel
runner = CliRunner()

ONFAULT = """
    mmap(@0, 2p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED, -1, 0)
    mlock2(@0, 2p, MLOCK_ONFAULT)
    """
# README "Findings": mremap(DONTUNMAP) of a locked VMA leaks locked_vm on 6.18.
DONTUNMAP = """
    mmap(@0, 1p, PROT_NONE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_LOCKED, -1, 0)
    mremap(@0, 1p, 1p, MREMAP_MAYMOVE|MREMAP_FIXED|MREMAP_DONTUNMAP, @1)
    """


def _supervisor(injection: str | None) -> Supervisor:
    return Supervisor(executor_path(), injections=[load(injection)] if injection else [])


def _record(store: Store, text: str, injection: str | None) -> int:
    """Run the program and store its first divergence, as a campaign would."""
    program = parse(textwrap.dedent(text))
    with _supervisor(injection) as supervisor:
        divergence = check(supervisor, program).divergences[0]
    bucket, _ = store.record(divergence, SampleContext(
        None, program.text(), program.hash, "6.18", (injection,) if injection else ()))
    return bucket


def _summary(output: str) -> dict[str, str]:
    return dict(line.strip().split(": ", 1) for line in output.split("variants (", 1)[1]
                .splitlines()[1:] if line.startswith("  ") and ": " in line)


def test_an_emulated_bug_needs_its_flag(tmp_path: Path) -> None:
    """mlock2-onfault-ignored: MLOCK_ONFAULT is needed, any mapping kind and protection
    does, in a child too; the stored variants are what `triage show` prints."""
    db = f"sqlite:///{tmp_path / 'v.sqlite'}"
    store = open_store(db)
    bucket = _record(store, ONFAULT, "mlock2-onfault-ignored")
    result = runner.invoke(app, ["variants", str(bucket), "--db", db])
    assert result.exit_code == 0, result.output
    summary = _summary(result.output)
    assert summary["needs"] == "MLOCK_ONFAULT on mlock2"
    assert summary["triggers with"].split(", ")[2:4] == ["every mapping kind",
                                                         "every protection"]
    assert "every process" in summary["triggers with"]
    assert summary["kind"].startswith("anonymous private (base) yes; anonymous shared yes")
    stored = store.variants(bucket)
    assert {(v.axis, v.value, v.triggers) for v in stored} >= {
        ("drop", "MLOCK_ONFAULT on mlock2", False), ("kind", "memfd shared", True),
        ("process", "child", True)}

    shown = runner.invoke(app, ["triage", "show", str(bucket), "--db", db])
    assert shown.exit_code == 0, shown.output
    assert "  needs: MLOCK_ONFAULT on mlock2" in shown.output
    as_json = json.loads(runner.invoke(app, ["triage", "show", str(bucket), "--json",
                                             "--db", db]).output)
    assert as_json["summary"][0] == "needs: MLOCK_ONFAULT on mlock2"
    assert len(as_json["variants"]) == len(stored)


def test_the_dontunmap_leak_needs_a_lock_and_dontunmap(tmp_path: Path) -> None:
    """The 6.18 kernel's own bug: without a lock or without DONTUNMAP nothing diverges;
    MAP_LOCKED, mlock and mlock2(ONFAULT) all lead to it, at every size."""
    db = f"sqlite:///{tmp_path / 'v.sqlite'}"
    store = open_store(db)
    bucket = _record(store, DONTUNMAP, None)
    result = runner.invoke(app, ["variants", str(bucket), "--db", db])
    assert result.exit_code == 0, result.output
    summary = _summary(result.output)
    needs = summary["needs"].split(", ")
    assert "MAP_LOCKED on mmap" in needs and "MREMAP_DONTUNMAP on mremap" in needs
    assert "unlocked" in summary["not with"].split(", ")
    assert "locking MAP_LOCKED, mlock and mlock2 ONFAULT" in summary["triggers with"]
    assert "every size" in summary["triggers with"]


@pytest.mark.parametrize("budget", [1, 80])
def test_a_campaign_runs_them_within_the_budget(tmp_path: Path, budget: int) -> None:
    """The runs minimization leaves: none of 1, some of 80 (fewer than 80 programs)."""
    store = open_store(f"sqlite:///{tmp_path / 'v.sqlite'}")
    bucket = _record(store, ONFAULT, "mlock2-onfault-ignored")
    detail = store.bucket(bucket)
    program = parse(detail.samples[0].program_text)
    with _supervisor("mlock2-onfault-ignored") as supervisor:
        reduce_new_bucket(store, supervisor, bucket, detail.title, program, 1, budget, None,
                          detail.kind)
    stored = store.variants(bucket)
    if budget == 1:
        assert stored == []
        return
    assert 0 < len({(v.program_text, v.step) for v in stored}) < budget
    assert ("drop", "MLOCK_ONFAULT on mlock2", False) in \
        {(v.axis, v.value, v.triggers) for v in stored}
