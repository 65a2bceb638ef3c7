"""The C reproducer's check of one divergence kind, filled with what the model predicts.

`check_for` picks the kind's `c/check_<kind>.c` (a `static int check(...)`
returning 1 when the kernel shows the divergence, 0 when it agrees, 2 when
/proc could not be read), the building blocks it uses, and the statements it
needs before the first call; it fills the template with the model's state and
prediction at the diverging step: per-page cells, shmem objects, sizes, the
signal or the call's result.
"""

from __future__ import annotations

from dataclasses import dataclass

from fuzzer.model import OUTSIDE, Prediction, State, mlocked
from fuzzer.model.pmd import HUGE
from fuzzer.oracle.compare import KINDS
from fuzzer.prog import Call
from fuzzer.prog.syscalls import PROT_EXEC, PROT_READ, PROT_WRITE
from fuzzer.reduce import cparts
from fuzzer.reduce.cparts import HANG_SECONDS, c_string, fill, template
from fuzzer.reduce.finding import ExportError, Finding

_CLASS_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+="


@dataclass(slots=True)
class Check:
    parts: list[str]  # the cparts the check uses, by name
    code: str  # the check function(s), `static int check(...)`
    setup: str = ""  # statements before the first call
    uses_ret: bool = False


_SM = [cparts.READ_TEXT, cparts.SMAPS]
# The C parts each kind's check uses (an unused static function is a warning).
_PARTS: dict[str, list[str]] = {
    "presence": [cparts.PAGEMAP, cparts.RUNS],
    "lock": [*_SM, cparts.IN_ARENA, cparts.VMA_OF, cparts.RUNS],
    "fork-flags": [*_SM, cparts.VMA_OF, cparts.RUNS],
    "seal": [*_SM, cparts.VMA_OF, cparts.RUNS],
    "prot": [*_SM, cparts.VMA_OF, cparts.RUNS],
    "mapping": [*_SM, cparts.IN_ARENA, cparts.VMA_OF, cparts.RUNS],
    "vma": [*_SM, cparts.IN_ARENA, cparts.ARENA_SPAN, cparts.RUNS, cparts.VMA_OF],
    "vmlck": [*_SM, cparts.IN_ARENA, cparts.ARENA_SPAN],
    "rss": [*_SM, cparts.IN_ARENA, cparts.ARENA_SPAN, cparts.PAGEMAP],
    "locked": [*_SM, cparts.IN_ARENA, cparts.ARENA_SPAN],
    "mlocked": [cparts.PAGEMAP, cparts.RUNS],
    "signal": [cparts.SIGNAL_TEXT],
    "hang": [cparts.ON_ALARM],
    "crash": [],
}
_SETUP = {
    "presence": "\tfind_zero_pfn();\n",
    "rss": "\tfind_zero_pfn();\n",
    "mlocked": "\tfind_zero_pfn();\n",
    "mapping": "\tif (read_smaps() != 0)\n\t\treturn report(2);\n"
               "\toutside_before = outside_kb();\n",
    "hang": f"\tsignal(SIGALRM, on_alarm);\n\talarm({HANG_SECONDS});\n",
}


def _fork_cell(dc: bool, wf: bool) -> str:
    return ("b" if wf else "d") if dc else ("w" if wf else "n")


def _lock_cell(lo: bool, lf: bool) -> str:
    return ("f" if lf else "l") if lo else ("?" if lf else "u")


def _prot(prot: int, shared: bool) -> str:
    bits = (("r", PROT_READ), ("w", PROT_WRITE), ("x", PROT_EXEC))
    return "".join(ch if prot & bit else "-" for ch, bit in bits) + ("s" if shared else "p")


def _cells(kind: str, state: State) -> str:
    """The model's expectation for a per-page kind: one cell per arena page."""
    if kind == "mlocked":
        return mlocked.cells(state)
    classes: dict[tuple[object, ...], str] = {}
    out = []
    for p in state.pages:
        if p is None:
            out.append({"presence": ".", "prot": "    ", "vma": " "}.get(kind, "-"))
            continue
        a = p.attrs
        match kind:
            case "presence":
                out.append(p.state[0])
            case "lock":
                out.append(_lock_cell(a.lo, a.lf))
            case "fork-flags":
                out.append(_fork_cell(a.dc, a.wf))
            case "seal":
                out.append("s" if a.sl else "n")
            case "prot":
                out.append(_prot(a.prot, a.shared))
            case "vma":
                key = (a.shared, a.prot, a.lo, a.lf, a.obj)
                out.append(classes.setdefault(key, _CLASS_CHARS[len(classes)]))
            case _:
                out.append("m")
    return "".join(out)


def _objects(state: State) -> str:
    """One letter per shmem object for shared pages, a blank elsewhere."""
    letters: dict[int, str] = {}
    return "".join(
        letters.setdefault(p.attrs.obj, _CLASS_CHARS[len(letters) % len(_CLASS_CHARS)])
        if p is not None and p.attrs.shared else " "
        for p in state.pages
    )


def _file(kind: str) -> str:
    return f"check_{kind.replace('-', '_')}.c"


def check_for(finding: Finding, state: State, pred: Prediction, call: Call) -> Check:
    """The check of `finding`'s kind at its diverging `call`, given the model's `state`/`pred`."""
    kind = finding.kind
    if kind == "result":
        if call.name == "touch":
            raise ExportError("a touch has no result to check (kind result at a touch)")
        return Check([cparts.ERRNO], _result(call, pred), uses_ret=True)
    if kind not in _PARTS:
        raise ExportError(f"cannot write a C check for divergences of kind {kind!r} "
                          f"(known: {', '.join(KINDS)})")
    whole = any(c.name in ("mlockall", "munlockall") for c in finding.program.calls)
    own = _lock_cell(state.rest[0].lo, state.rest[0].lf) if whole else ""
    sig, code = pred.signal or (0, 0)
    values = {
        "cells": c_string(_cells(kind, state)),
        # the regions a PMD maps a huge page in (the rss check's AnonHugePages)
        "pmds": c_string("".join("H" if r == HUGE else "-" for r in state.pmds)),
        "objects": c_string(_objects(state)),
        "own": f"'{own}'" if own else "0",  # our own VMAs' lock cell, after mlockall
        "arena_kb": sum(4 for p in state.pages if p is not None and p.attrs.lo),
        "outside_kb": state.outside_mapped * 4,
        "sig": sig,
        "code": code,
    }
    return Check(_PARTS[kind], fill(template(_file(kind)), values), setup=_SETUP.get(kind, ""))


def _result(call: Call, pred: Prediction) -> str:
    address = int(call.name in ("mmap", "mremap"))
    ret = pred.ret if pred.ret is not None else 0
    if ret == OUTSIDE:
        return fill(template("check_result_outside.c"), {"address": address})
    if address and ret >= 0:  # an address in the arena, wherever it is (head.h)
        want = f"(long)(ARENA + {ret:#x}UL)"
    else:
        want = f"{ret}L" if ret < 0 else f"(long){ret:#x}UL"
    return fill(template("check_result.c"), {"want": want, "address": address})


__all__ = ["Check", "check_for"]
