"""Shared fixtures: a real supervisor on the real kernel (CI runs as root), golden
files (`--regen-golden`), and the speed markers (`kernel`, `slow`, `uml`)."""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from fuzzer.check import Report, check
from fuzzer.executor import executor_path
from fuzzer.prog import ARENA, parse
from fuzzer.prog.arena import HOST, SIZE_ENV
from fuzzer.trace import Supervisor
from tests.uml import UML


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--regen-golden", action="store_true",
                     help="rewrite the golden files (tests/golden, tests/fixtures/proc/*/*/"
                          "expected.txt) from what the code produces now, instead of comparing")


# A 6.1 UML built with tests/fixtures/uml/mprotect-locked-no-cow.patch (LOCALVERSION=-nocow):
# a real regression the `mprotect-locked-no-cow` injection emulates.
# .ci/run builds it with `mmfuzz kernels build` into its cache (MMFUZZ_CACHE) when missing.
NOCOW_UML = Path(os.environ.get("MMFUZZ_NOCOW_UML", os.path.join(
    os.environ.get("MMFUZZ_CACHE", "/var/cache/mmfuzz"), "kernels", "linux-6.1-nocow")))


# What runs in the huge arena (MMFUZZ_ARENA=huge): the rest is written for the 64-page
# arena (goldens, address tables), and tests/test_huge_arena.py runs these from there.
HUGE_ARENA_TESTS = ("tests/test_model_pmd.py", "tests/test_model_pmd_kernel.py",
                    "tests/test_export_huge.py",
                    "tests/test_inject.py::test_injection_is_detected[huge-")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Markers that follow from what a test uses: the real supervisor means the real
    kernel; a UML guest means the real kernel too, and a skip (with its reason, which
    -rs lists) where there is no UML kernel to boot. In the huge arena, everything but
    HUGE_ARENA_TESTS is skipped, with the reason."""
    no_uml = None if os.access(UML, os.X_OK) else pytest.mark.skip(reason=_UML_SKIP)
    other_arena = pytest.mark.skip(reason=_ARENA_SKIP) if ARENA.pages != HOST.pages else None
    for item in items:
        if other_arena is not None and not item.nodeid.startswith(HUGE_ARENA_TESTS):
            item.add_marker(other_arena)
        if {"supervisor", "run_text"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.kernel)
        if item.get_closest_marker("uml"):
            item.add_marker(pytest.mark.kernel)
            if no_uml is not None:
                item.add_marker(no_uml)


@pytest.fixture(scope="session")
def nocow_uml() -> Path:
    """The patched UML kernel's path, or a skip saying where it was looked for."""
    if not os.access(NOCOW_UML, os.X_OK):
        pytest.skip(f"no patched UML kernel at {NOCOW_UML} (mmfuzz kernels build "
                    "/usr/src/linux-source-6.1.tar.xz --patch tests/fixtures/uml/"
                    f"mprotect-locked-no-cow.patch --name nocow --out {NOCOW_UML}, as .ci/run "
                    "does, or set MMFUZZ_NOCOW_UML)")
    return NOCOW_UML


# Listed with its reason at the end of every run (addopts -rs in pyproject.toml).
_ARENA_SKIP = (f"written for the {HOST.pages}-page arena; this run has {SIZE_ENV}=huge (unset "
               "it: tests/test_huge_arena.py runs the huge arena's tests itself)")
_UML_SKIP = (f"no User-Mode Linux kernel at {UML} (apt-get install user-mode-linux, or set "
             "MMFUZZ_UML to one built by `mmfuzz kernels build`)")


@pytest.fixture
def golden(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    """golden(path, text): compare text with the file (a unified diff on failure),
    or rewrite the file under --regen-golden."""
    regen = bool(request.config.getoption("--regen-golden"))

    def check_golden(path: Path, actual: str) -> None:
        if regen:
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists() or path.read_text() != actual:
                path.write_text(actual)
            return
        if not path.exists():
            pytest.fail(f"{path} is missing: run pytest {request.node.fspath} --regen-golden")
        expected = path.read_text()
        if expected != actual:
            diff = "".join(difflib.unified_diff(
                expected.splitlines(keepends=True), actual.splitlines(keepends=True),
                f"{path} (golden)", "produced now"))
            pytest.fail(f"differs from the golden file; if the change is intended, rerun with "
                        f"--regen-golden and review `git diff`:\n{diff}", pytrace=False)

    return check_golden


@pytest.fixture(scope="session")
def supervisor() -> Iterator[Supervisor]:
    with Supervisor(executor_path(), budget=10.0) as sup:
        yield sup


@pytest.fixture(scope="session")
def run_text(supervisor: Supervisor):  # type: ignore[no-untyped-def]
    """Run program text on the kernel against the model; returns the Report."""

    def run(text: str) -> Report:
        return check(supervisor, parse(text))

    return run


@pytest.fixture(scope="session")
def pg_server():  # type: ignore[no-untyped-def]
    """A throwaway PostgreSQL server for the whole run (tests/pg.py); the tests that use
    it are skipped, with the reason, only where the PostgreSQL binaries are absent."""
    from tests import pg

    why = pg.missing()
    if why is not None:
        pytest.skip(why)
    with pg.server() as server:
        yield server


@pytest.fixture
def pg_url(pg_server, request: pytest.FixtureRequest) -> str:  # type: ignore[no-untyped-def]
    """A new, empty database on the throwaway server, named after the test."""
    name = "t_" + "".join(c if c.isalnum() else "_" for c in request.node.name)[:50].lower()
    return str(pg_server.create_database(f"{name}_{os.getpid()}_{id(request)}"[:63]))
