"""The C reproducer: a standalone program that replays the calls and checks one property.

The program maps and calls exactly what the mmfuzz program did, at the same
addresses (the arena at ARENA_BASE), with raw syscall(2); touches are volatile
accesses under a SIGSEGV/SIGBUS handler. After the diverging step it checks
the diverging property itself, read from /proc, against what the model
predicts at that step (the model runs here, so the C carries the expected
values): page presence, lock flags, protections, mappings, VmLck, smaps
Rss/Locked, VMA boundaries, the call's result, the touch's signal, a hang or
a crash, depending on the bucket's kind. Exit 1: it reproduces; 0: it does not.
"""

from __future__ import annotations

from dataclasses import dataclass

from fuzzer.model import OUTSIDE, Prediction, State
from fuzzer.model import step as model_step
from fuzzer.model.state import RestVma
from fuzzer.oracle.compare import KINDS, signal_text, value_text
from fuzzer.oracle.views import model_view, render
from fuzzer.prog import ARENA_BASE, ARENA_PAGES, Call, Program, format_call
from fuzzer.prog.syscalls import (
    ERRNO_NAMES,
    MAP_ANONYMOUS,
    PAGE,
    PROT_EXEC,
    PROT_READ,
    PROT_WRITE,
    Kind,
)
from fuzzer.reduce import cchecks, cparts

# Calls whose descriptor numbers the reproducer must give as the executor does.
FD_CALLS = frozenset({"memfd_create", "ftruncate", "close"})

HANG_SECONDS = 5
_CLASS_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+="


class ExportError(ValueError):
    """A finding that cannot be exported (unknown kind, step outside the program)."""


@dataclass(frozen=True, slots=True)
class Finding:
    """What an export needs: the program, where it diverges, and how."""

    program: Program
    step: int
    title: str
    kind: str
    expected: str = ""
    observed: str = ""


# ------------------------------------------------------------ the model


def predict(program: Program, step: int) -> tuple[State, Prediction]:
    """The model's state and prediction right after `step`.

    One lockable VMA stands for the reproducer's own mappings, so the state
    says what mlockall/munlockall should have done to them.
    """
    state = State(rest=[RestVma(0, PAGE, lockable=True)])
    pred = Prediction()
    for call in program.calls[: step + 1]:
        pred = model_step(state, call)
    return state, pred


def _fork_cell(dc: bool, wf: bool) -> str:
    return ("b" if wf else "d") if dc else ("w" if wf else "n")


def _lock_cell(lo: bool, lf: bool) -> str:
    return ("f" if lf else "l") if lo else ("?" if lf else "u")


# ------------------------------------------------------------ C text


def c_string(text: str) -> str:
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif " " <= ch <= "~":
            out.append(ch)
        else:
            out.append("".join(f"\\{b:03o}" for b in ch.encode()))
    return '"' + "".join(out) + '"'


def _comment(text: str) -> str:
    return text.replace("*/", "* /")


def _hex(value: int) -> str:
    return f"(unsigned long){value}" if value < 0 else f"{value:#x}UL"


def _arg(kind: Kind, value: int) -> str:
    if kind == Kind.ADDR:
        return "ARENA" if value == 0 else f"ARENA + {value:#x}"
    return _hex(value)


def call_expr(call: Call) -> str:
    """The C expression that performs one call."""
    match call.name:
        case "touch":
            return f"touch({_arg(Kind.ADDR, call.arg('addr'))}, {call.arg('mode')})"
        case "prlimit_memlock":
            return f"prlimit_memlock({_hex(call.args[0])})"
        case "drop_cap_ipc_lock":
            return "drop_cap_ipc_lock()"
        case "memfd_create":
            return 'sys(SYS_memfd_create, (unsigned long)"mmfuzz", 0, 0, 0, 0, 0)'
    args = [_arg(kind, v) for (_, kind), v in zip(call.syscall.args, call.args, strict=True)]
    args += ["0"] * (6 - len(args))
    return f"sys(SYS_{call.name}, {', '.join(args)})"


# ------------------------------------------------------------ the checks


@dataclass(slots=True)
class _Check:
    parts: list[str]  # cparts needed by the check
    code: str  # the check function(s), `static int check(...)`
    setup: str = ""  # statements before the first call
    uses_ret: bool = False


_SM = [cparts.READ_TEXT, cparts.SMAPS]
# The C parts each kind's check uses (an unused static function is a warning).
_PARTS: dict[str, list[str]] = {
    "presence": [cparts.PAGEMAP, cparts.RUNS],
    "lock": [*_SM, cparts.IN_ARENA, cparts.VMA_OF, cparts.RUNS],
    "fork-flags": [*_SM, cparts.VMA_OF, cparts.RUNS],
    "prot": [*_SM, cparts.VMA_OF, cparts.RUNS],
    "mapping": [*_SM, cparts.IN_ARENA, cparts.VMA_OF, cparts.RUNS],
    "vma": [*_SM, cparts.IN_ARENA, cparts.ARENA_SPAN, cparts.RUNS, cparts.VMA_OF],
    "vmlck": [*_SM, cparts.IN_ARENA, cparts.ARENA_SPAN],
    "rss": [*_SM, cparts.IN_ARENA, cparts.ARENA_SPAN, cparts.PAGEMAP],
    "locked": [*_SM, cparts.IN_ARENA, cparts.ARENA_SPAN],
    "signal": [cparts.SIGNAL_TEXT],
    "hang": [cparts.ON_ALARM % {"budget": HANG_SECONDS}],
    "crash": [],
}
_CODE = {"presence": cchecks.PRESENCE, "lock": cchecks.LOCK, "fork-flags": cchecks.FORK,
         "prot": cchecks.PROT, "mapping": cchecks.MAPPING, "vma": cchecks.VMA,
         "vmlck": cchecks.VMLCK, "rss": cchecks.RSS, "locked": cchecks.LOCKED,
         "signal": cchecks.SIGNAL, "hang": cchecks.HANG, "crash": cchecks.CRASH}
_SETUP = {
    "presence": "\tfind_zero_pfn();\n",
    "rss": "\tfind_zero_pfn();\n",
    "mapping": "\tif (read_smaps() != 0)\n\t\treturn report(2);\n"
               "\toutside_before = outside_kb();\n",
    "hang": f"\tsignal(SIGALRM, on_alarm);\n\talarm({HANG_SECONDS});\n",
}


def _cells(kind: str, state: State) -> str:
    """The model's expectation for a per-page kind: one cell per arena page."""
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


def _check(finding: Finding, state: State, pred: Prediction, call: Call) -> _Check:
    kind = finding.kind
    if kind == "result":
        if call.name == "touch":
            raise ExportError("a touch has no result to check (kind result at a touch)")
        return _Check([_errno_part()], _result(call, pred), uses_ret=True)
    if kind not in _CODE:
        raise ExportError(f"cannot write a C check for divergences of kind {kind!r} "
                          f"(known: {', '.join(KINDS)})")
    whole = any(c.name in ("mlockall", "munlockall") for c in finding.program.calls)
    own = _lock_cell(state.rest[0].lo, state.rest[0].lf) if whole else ""
    sig, code = pred.signal or (0, 0)
    values = {
        "cells": c_string(_cells(kind, state)),
        "objects": c_string(_objects(state)),
        "own": f"'{own}'" if own else "0",  # our own VMAs' lock cell, after mlockall
        "arena_kb": sum(4 for p in state.pages if p is not None and p.attrs.lo),
        "outside_kb": state.outside_mapped * 4,
        "sig": sig,
        "code": code,
    }
    return _Check(_PARTS[kind], _CODE[kind] % values, setup=_SETUP.get(kind, ""))


def _prot(prot: int, shared: bool) -> str:
    bits = (("r", PROT_READ), ("w", PROT_WRITE), ("x", PROT_EXEC))
    return "".join(ch if prot & bit else "-" for ch, bit in bits) + ("s" if shared else "p")


def _errno_part() -> str:
    cases = "".join(f'\tcase {n}: return "{name}";\n' for n, name in sorted(ERRNO_NAMES.items()))
    return cparts.ERRNO % {"cases": cases}


def _result(call: Call, pred: Prediction) -> str:
    address = int(call.name in ("mmap", "mremap"))
    ret = pred.ret if pred.ret is not None else 0
    if ret == OUTSIDE:
        return cchecks.RESULT_OUTSIDE % {"address": address}
    if address and ret >= 0:
        ret += ARENA_BASE
    return cchecks.RESULT % {"want": f"{ret}L" if ret < 0 else f"(long){ret:#x}UL",
                      "address": address}


# ------------------------------------------------------------ the program


def c_source(finding: Finding, bucket_id: int | None = None) -> str:
    """The reproducer's C source for `finding` (its program up to the diverging step)."""
    program, step = finding.program, finding.step
    if not 0 <= step < len(program.calls):
        raise ExportError(f"step {step} is not in a program of {len(program.calls)} calls")
    calls = program.calls[: step + 1]
    if any(c.name == "fork" for c in calls):
        raise ExportError("C reproducers of programs that fork are not written yet; "
                          "use --format prog (and `mmfuzz exec`) or --format syz")
    state, pred = predict(program, step)
    check = _check(finding, state, pred, calls[-1])
    names = {c.name for c in calls}
    parts = [cparts.HEAD % {"arena": ARENA_BASE, "pages": ARENA_PAGES,
                            "title": c_string(finding.title)}]
    parts += _fallback_numbers(names, _uses_fds(calls))
    parts.append(cparts.ON_FAULT_CRASH if finding.kind == "crash" else cparts.ON_FAULT)
    if names - {"touch"} or cparts.PAGEMAP in check.parts:
        parts.append(cparts.SYS)
    if "touch" in names:
        parts.append(cparts.TOUCH)
    if "prlimit_memlock" in names:
        parts.append(cparts.PRLIMIT)
    if "drop_cap_ipc_lock" in names:
        parts.append(cparts.DROP_CAP)
    parts += [p for p in check.parts if p not in parts]
    parts.append(check.code)
    parts.append(cparts.REPORT)
    model = model_text(calls[-1], state, pred)
    return _header(finding, bucket_id, model) + "".join(parts) + _main(calls, check)


def _fallback_numbers(names: set[str], fds: bool = False) -> list[str]:
    """`#define SYS_x N` for calls older C headers may not name (mlock2, prlimit64, ...)."""
    from fuzzer.prog.syscalls import SYSCALLS

    nrs = {n: SYSCALLS[n].nr for n in sorted(names) if not SYSCALLS[n].is_pseudo}
    if "prlimit_memlock" in names:
        nrs["prlimit64"] = 302
    if "drop_cap_ipc_lock" in names:
        nrs.update(capget=125, capset=126)
    if "memfd_create" in names:
        nrs["memfd_create"] = 319
    if fds:
        nrs["close_range"] = 436
    return [f"\n#ifndef SYS_{n}\n#define SYS_{n} {nr}\n#endif" for n, nr in nrs.items()] + \
        (["\n"] if nrs else [])


def model_text(call: Call, state: State, pred: Prediction) -> str:
    """What the model predicts after a step, as the oracle prints it."""
    parts = [render(model_view(state.pages))]
    if call.name == "touch":
        parts.insert(0, signal_text(pred.signal))
    else:
        ret = pred.ret
        if call.name in ("mmap", "mremap") and ret is not None and ret >= 0:
            ret += ARENA_BASE
        parts.insert(0, f"returns {value_text(call, ret)}")
    return "; ".join(parts)


def _header(finding: Finding, bucket_id: int | None, model: str) -> str:
    which = f" for bucket #{bucket_id}" if bucket_id is not None else ""
    call = format_call(finding.program.calls[finding.step])
    lines = [
        f"mmfuzz reproducer{which}:",
        "",
        f"  {finding.title}",
        "",
        f"kind {finding.kind}, diverging at step {finding.step}: {call}",
        f"the model after that step: {model}",
        *([f"expected (when found): {finding.expected}"] if finding.expected else []),
        *([f"observed (when found): {finding.observed}"] if finding.observed else []),
        "",
        "Replays the program's calls with raw syscall(2) at mmfuzz's addresses (the arena",
        f"at {ARENA_BASE:#x}), then checks the diverging property in /proc against the",
        "model's prediction for that step.",
        "",
        "Build: cc -Wall -static -o repro repro.c",
        "Run:   ./repro   (as root: pagemap shows PFNs, which tell the zero page apart)",
        "Exit:  1 the divergence reproduces, 0 it does not, 2 /proc could not be read",
    ]
    body = "\n".join((" * " + _comment(x)).rstrip() for x in lines)
    return f"/*\n{body}\n */\n"


def _uses_fds(calls: tuple[Call, ...]) -> bool:
    """Whether descriptor numbers matter: memfds, or an mmap of a descriptor."""
    return any(c.name in FD_CALLS or (c.name == "mmap" and not c.arg("flags") & MAP_ANONYMOUS)
               for c in calls)


def _main(calls: tuple[Call, ...], check: _Check) -> str:
    decls = ["\tstruct sigaction sa;\n"]
    if check.uses_ret:
        decls.append("\tlong ret;\n")
    fds = _uses_fds(calls)
    if fds:
        decls.append("\tint out;\n")
    body = [
        "\n",
        "\t/* as the executor does: no THP, so presence is exact to the page */\n",
        "\tprctl(PR_SET_THP_DISABLE, 1, 0, 0, 0);\n",
        "\tmemset(&sa, 0, sizeof(sa));\n",
        "\tsa.sa_sigaction = on_fault;\n",
        "\tsa.sa_flags = SA_SIGINFO | SA_NODEFER;\n",
        "\tsigaction(SIGSEGV, &sa, NULL);\n",
        "\tsigaction(SIGBUS, &sa, NULL);\n",
        check.setup,
    ]
    if fds:
        body += [
            "\t/* as the executor does: no descriptor open, so memfds are numbered from 0\n",
            "\t   (stdout waits at 1000 until the calls are done) */\n",
            "\tout = fcntl(1, F_DUPFD, 1000);\n",
            "\tsys(SYS_close_range, 0, 999, 0, 0, 0, 0);\n",
        ]
    last = len(calls) - 1
    for i, call in enumerate(calls):
        note = " -- the diverging step" if i == last else ""
        body.append(f"\n\t/* {i}: {_comment(format_call(call))}{note} */\n")
        assign = "ret = " if i == last and check.uses_ret else ""
        body.append(f"\t{assign}{call_expr(call)};\n")
    if fds:
        body.append("\n\tdup2(out, 1);\n")
    body.append("\n\treturn report(check(" + ("ret" if check.uses_ret else "") + "));\n")
    return "\nint main(void)\n{\n" + "".join(decls) + "".join(body) + "}\n"


__all__ = ["KINDS", "ExportError", "Finding", "c_source", "call_expr", "predict"]
