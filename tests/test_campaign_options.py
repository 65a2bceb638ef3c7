"""A campaign's options travel to workers as one JSON text; the import order workers rely on."""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest

from fuzzer.campaign.options import DEFAULTS, Job, Options
from fuzzer.cli.app import run_cmd

ROOT = Path(__file__).resolve().parents[1]


def test_a_job_survives_json() -> None:
    opts = Options(db="sqlite:///x.sqlite", time=12.5, runs=3, seed=7,
                   corpus=Path("c"), seeds=None, crashes=Path("/tmp/crashes"),
                   injections=("populate-needs-lock", "plug.py:name"), calls=("mmap", "mlock"),
                   stop_on_first=True, kernel="uml:/usr/bin/linux", guest_mem=256)
    job = Job(opts, campaign=4, cpu=1, features={"thp": False, "release": "6.1"})
    assert Job.from_json(job.to_json()) == job
    assert Job.from_json(Job(DEFAULTS, 1).to_json()) == Job(DEFAULTS, 1)


def test_options_as_stored_with_the_campaign() -> None:
    data = Options(corpus=Path("c"), injections=("a",)).as_json()
    assert list(data) == [f.name for f in fields(Options)]
    assert data["corpus"] == "c" and data["injections"] == ["a"] and data["seeds"] is None


@pytest.mark.parametrize("name", ["time", "runs", "db", "seed", "workers", "budget",
                                  "minimize_budget", "explore", "kernel", "guest_mem",
                                  "worker_rss", "fresh"])
def test_mmfuzz_run_takes_its_defaults_from_options(name: str) -> None:
    assert inspect.signature(run_cmd).parameters[name].default == getattr(DEFAULTS, name)


@pytest.mark.parametrize("module", ["fuzzer.campaign.worker", "fuzzer.campaign.guest"])
def test_worker_entries_leave_the_model_to_atheris(module: str) -> None:
    """A worker instruments the model as it imports it: nothing may import it before."""
    code = (f"import sys, {module}; "
            "sys.exit(any(m == 'fuzzer.model' or m.startswith('fuzzer.model.') "
            "or m == 'fuzzer.prog.generate' for m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0


def _imports(package: str) -> set[str]:
    found = set()
    for path in (ROOT / "fuzzer" / package).glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                found.add(node.module)
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
    return found


def test_kernel_imports_neither_campaign_nor_cli() -> None:
    assert not {m for m in _imports("kernel")
                if m.startswith(("fuzzer.campaign", "fuzzer.cli"))}
