"""native.stale: a compiled module left beside its source after it was taken off
native.MODULES is found (and `make setup` removes it), and nothing else is: the group's
library, stepcalls.c's extension and the listed modules stay."""

from __future__ import annotations

from pathlib import Path

import pytest

from fuzzer import native

SUFFIX = ".cpython-311-x86_64-linux-gnu.so"


@pytest.mark.parametrize(("files", "modules", "stale"), [
    (["check/program", "check/coverage"], ("fuzzer.check.coverage",), ["check/program"]),
    (["check/coverage", "prog/text"], ("fuzzer.check.coverage", "fuzzer.prog.text"), []),
    (["compiled__mypyc", "_stepcalls"], (), []),
    (["model/state", "model/calls"], ("fuzzer.model.calls",), ["model/state"]),
], ids=["dropped-one", "all-listed", "library-and-stepcalls", "other-package"])
def test_stale_compiled_modules(tmp_path: Path, files: list[str], modules: tuple[str, ...],
                                stale: list[str]) -> None:
    root = tmp_path / "fuzzer"
    for name in files:
        lib = root / (name + SUFFIX)
        lib.parent.mkdir(parents=True, exist_ok=True)
        lib.write_bytes(b"")
        (root / (name + ".py")).write_text("")
    assert native.stale(root, modules) == [root / (name + SUFFIX) for name in stale]


def test_this_checkout_has_none() -> None:
    assert native.stale() == []
