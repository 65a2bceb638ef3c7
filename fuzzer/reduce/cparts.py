"""The C reproducer's building blocks: the template files in c/, loaded and filled.

Each file in `c/` is one block of the reproducer, emitted as it is but for its
placeholders, `TPL_<NAME>` tokens that `fill` replaces with text made here or
in `cchecks.py` (`TPL_CELLS` becomes the model's expected cells, ...). A
placeholder is a plain C identifier, so the files compile as they are once
`TPL_<NAME>` is defined (tests/test_ctemplates.py); one inside a string
literal is replaced too. `head.h` opens the source; every later block follows
a blank line.

The `*.h` parts are libc-only functions, emitted only when used (an unused
static function would be a `-Wall` warning); `check_<kind>.c` is one kind's
`static int check(...)`. Every part compiles with `cc -Wall -Wextra -static`;
nothing allocates after the first call of the program (stdio's buffer is
taken only when printing, after /proc was read), so the process the checks
see is the one the calls made.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from importlib.resources import files

from fuzzer.prog.syscalls import ERRNO_NAMES

HEAD = "head.h"  # includes, ARENA, PAGES, the title, the touch's state
ON_FAULT = "on_fault.h"
ON_FAULT_CRASH = "on_fault_crash.h"  # kind crash: a fault outside a touch is the finding
PIN_CPU = "pin_cpu.h"  # every reproducer: the executor's one CPU
SYS = "sys.h"
TOUCH = "touch.h"
PRLIMIT = "prlimit.h"
DROP_CAP = "drop_cap.h"
PMADVISE = "pmadvise.h"  # process_madvise on the caller itself
THP = "thp.h"  # the huge arena's THP: on in MADV_HUGEPAGE VMAs, at 2 MiB alone
PROCS = "procs.h"  # a program that forks: its processes and their turns (cforks.py)
READ_TEXT = "read_text.h"
SMAPS = "smaps.h"
IN_ARENA = "in_arena.h"
VMA_OF = "vma_of.h"
ARENA_SPAN = "arena_span.h"
PAGEMAP = "pagemap.h"
RUNS = "runs.h"
ERRNO = "errno_name.h"
SIGNAL_TEXT = "signal_text.h"
ON_ALARM = "on_alarm.h"
REPORT = "report.h"

HANG_SECONDS = 5  # the budget a hang's reproducer gives the calls
_PLACEHOLDER = re.compile(r"\bTPL_([A-Z0-9_]+)\b")


@cache
def template(name: str) -> str:
    """The text of c/<name>, placeholders and all."""
    return files("fuzzer.reduce").joinpath("c", name).read_text(encoding="utf-8")


def fill(text: str, values: Mapping[str, object]) -> str:
    """`text` with each `TPL_<NAME>` replaced by str(values[name.lower()])."""

    def one(match: re.Match[str]) -> str:
        key = match.group(1).lower()
        if key not in values:
            raise KeyError(f"no value for the C template's placeholder {match.group(0)}")
        return str(values[key])

    return _PLACEHOLDER.sub(one, text)


def _errno_cases() -> str:
    return "\n".join(f'\tcase {n}: return "{name}";' for n, name in sorted(ERRNO_NAMES.items()))


@cache
def part(name: str) -> str:
    """A building block other than HEAD and the checks: the same for every reproducer."""
    return fill(template(name), {"errno_cases": _errno_cases(), "budget": HANG_SECONDS})


def c_string(text: str) -> str:
    """`text` as a C string literal (octal escapes for anything but printable ASCII)."""
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif " " <= ch <= "~":
            out.append(ch)
        else:
            out.append("".join(f"\\{b:03o}" for b in ch.encode()))
    return '"' + "".join(out) + '"'


__all__ = ["HANG_SECONDS", "c_string", "fill", "part", "template"]
