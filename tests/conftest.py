"""Shared fixtures: a real supervisor on the real kernel (CI runs as root)."""

from __future__ import annotations

import pytest

from fuzzer.check import Report, check
from fuzzer.executor import executor_path
from fuzzer.prog import parse
from fuzzer.trace import Supervisor


@pytest.fixture(scope="session")
def supervisor() -> Supervisor:
    return Supervisor(executor_path(), budget=10.0)


@pytest.fixture(scope="session")
def run_text(supervisor: Supervisor):  # type: ignore[no-untyped-def]
    """Run program text on the kernel against the model; returns the Report."""

    def run(text: str) -> Report:
        return check(supervisor, parse(text))

    return run
