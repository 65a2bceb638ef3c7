"""The C reproducer's template files compile as they are, so a broken one fails here, fast.

Each `c/check_<kind>.c` is compiled in a translation unit of its own (every
check defines `check`), after head.h and every building block, with each
`TPL_<NAME>` placeholder defined to a value of the right type. Unused parts
are no error here (a reproducer emits only the ones it uses; test_export.py
builds those with -Wall -Werror).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from importlib.resources import files
from pathlib import Path

import pytest

from fuzzer.reduce import cparts

CC = shutil.which("cc") or shutil.which("gcc")
DIR = Path(str(files("fuzzer.reduce").joinpath("c")))
CHECKS = sorted(p.name for p in DIR.glob("check_*.c"))
# Every building block but head.h, on_fault*.h and report.h, each after the ones it uses.
PARTS = [cparts.PIN_CPU, cparts.SYS, cparts.TOUCH, cparts.PRLIMIT, cparts.DROP_CAP,
         cparts.PMADVISE, cparts.READ_TEXT, cparts.THP,
         cparts.SMAPS, cparts.IN_ARENA, cparts.VMA_OF, cparts.ARENA_SPAN,
         cparts.PAGEMAP, cparts.RUNS, cparts.ERRNO, cparts.SIGNAL_TEXT, cparts.ON_ALARM,
         cparts.PROCS]

# A value of the right type for every placeholder (TPL_BUDGET sits in a string literal).
VALUES = {
    "TPL_ARENAS": "0x200000000000UL, 0x4000000000UL",
    "TPL_PAGES": "64",
    "TPL_TITLE": '"presence: a title"',
    "TPL_ERRNO_CASES": 'case 1: return "EPERM";',
    "TPL_BUDGET": "5",
    "TPL_CELLS": '"...."',
    "TPL_PMDS": '"H-"',
    "TPL_OBJECTS": '"a  b"',
    "TPL_OWN": "'l'",
    "TPL_ARENA_KB": "8",
    "TPL_OUTSIDE_KB": "4",
    "TPL_SIG": "11",
    "TPL_CODE": "2",
    "TPL_WANT": "(long)0x200000000000UL",
    "TPL_ADDRESS": "1",
    "TPL_PROCS": "2",
    "TPL_FORK_BUDGET": "20",
}


def _unit(check: str) -> str:
    """head.h, every part but the other on_fault, the check, and a main that calls it."""
    fault = cparts.ON_FAULT_CRASH if check == "check_crash.c" else cparts.ON_FAULT
    includes = [cparts.HEAD, fault, *PARTS, check, cparts.REPORT]
    arg = "-1" if check.startswith("check_result") else ""
    return ("".join(f"#define {k} {v}\n" for k, v in VALUES.items())
            + "".join(f'#include "{name}"\n' for name in includes)
            + f"\nint main(void)\n{{\n\treturn report(check({arg}));\n}}\n")


def test_every_placeholder_has_a_test_value() -> None:
    used = {m for p in DIR.iterdir() for m in re.findall(r"\bTPL_[A-Z0-9_]+\b", p.read_text())}
    assert used == set(VALUES)


def test_named_parts_exist() -> None:
    names = [v for k, v in vars(cparts).items() if k.isupper() and isinstance(v, str)
             and v.endswith(".h")]
    on_disk = {p.name for p in DIR.glob("*.h")}
    assert set(names) == on_disk
    assert on_disk == {*PARTS, cparts.HEAD, cparts.ON_FAULT, cparts.ON_FAULT_CRASH, cparts.REPORT}
    assert all(cparts.template(n) for n in names)


@pytest.mark.parametrize("check", CHECKS)
def test_template_compiles(tmp_path: Path, check: str) -> None:
    assert CC is not None, "no C compiler"
    unit = tmp_path / "unit.c"
    unit.write_text(_unit(check))
    proc = subprocess.run([CC, "-fsyntax-only", "-Wall", "-Wextra", "-Werror",
                           "-Wno-unused-function", "-iquote", str(DIR), str(unit)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
