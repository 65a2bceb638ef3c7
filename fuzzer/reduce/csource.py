"""The C reproducer: a standalone program that replays the calls and checks one property.

The program maps and calls exactly what the mmfuzz program did, at the same
addresses (the arena: chosen at run time as the executor chooses it on that
kernel, fuzzer/prog/arena.py, so one source runs on a host and in a UML guest),
with raw syscall(2); touches are volatile
accesses under a SIGSEGV/SIGBUS handler. After the diverging step it checks
the diverging property itself, read from /proc, against what the model
predicts at that step (the model runs here, so the C carries the expected
values): page presence, lock flags, protections, mappings, VmLck, smaps
Rss/Locked, VMA boundaries, the call's result, the touch's signal, a hang or
a crash, depending on the bucket's kind. Exit 1: it reproduces; 0: it does not.
A program that forks runs as processes that take turns, and checks in the
process the divergence is in (cforks.py).
"""

from __future__ import annotations

import textwrap

from fuzzer.model import Prediction, State
from fuzzer.model import step as model_step
from fuzzer.model.pmd import REGIONS
from fuzzer.oracle.compare import signal_text, value_text
from fuzzer.oracle.views import model_view, render
from fuzzer.prog import ARENA_BASE, ARENA_PAGES, Call, Program, format_call
from fuzzer.prog.arena import ARENAS, HOST, UML
from fuzzer.prog.syscalls import MAP_ANONYMOUS, SYSCALLS, Kind
from fuzzer.reduce import cforks, cparts, cwidth
from fuzzer.reduce.cchecks import Check, check_for
from fuzzer.reduce.cparts import c_string, fill, part, template
from fuzzer.reduce.finding import ExportError, Finding

# Calls whose descriptor numbers the reproducer must give as the executor does.
FD_CALLS = frozenset({"memfd_create", "tmpfile", "ftruncate", "close"})
# Where a reproducer makes its tmpfile (§21): it must be on ext4 with a readahead of at
# least 512 kB, as mmfuzz's own directory is (fuzzer/observe/probe.py files_problem).
TMPFILE_DIR = "/var/tmp"


# ------------------------------------------------------------ the model


def predict(program: Program, step: int) -> tuple[State, Prediction]:
    """The model's state and prediction right after `step` (from `cforks.start_state`:
    one lockable VMA stands for the reproducer's own mappings, so the state says what
    mlockall/munlockall should have done to them)."""
    state = cforks.start_state()
    pred = Prediction()
    for call in program.calls[: step + 1]:
        pred = model_step(state, call)
    return state, pred


# ------------------------------------------------------------ C text


def _comment(text: str) -> str:
    return text.replace("*/", "* /")


def _hex(value: int) -> str:
    return f"(unsigned long){value}" if value < 0 else f"{value:#x}UL"


def _arg(kind: Kind, value: int) -> str:
    if kind == Kind.ADDR:
        return "ARENA" if value == 0 else f"ARENA + {value:#x}"
    return _hex(value)


def call_parts(call: Call) -> tuple[str, list[str]]:
    """The C function and arguments that perform one call."""
    match call.name:
        case "touch":
            return "touch", [_arg(Kind.ADDR, call.arg("addr")), str(call.arg("mode"))]
        case "prlimit_memlock":
            return "prlimit_memlock", [_hex(call.args[0])]
        case "drop_cap_ipc_lock":
            return "drop_cap_ipc_lock", []
        case "memfd_create":
            return "sys", ["SYS_memfd_create", '(unsigned long)"mmfuzz"', *["0"] * 5]
        case "tmpfile":  # on ext4 (TMPFILE_DIR)
            return "sys", ["SYS_openat", "AT_FDCWD", f'(unsigned long)"{TMPFILE_DIR}"',
                           "O_TMPFILE | O_RDWR", "0600", "0", "0"]
        case "process_madvise":  # the target is the caller (cforks.refuse)
            spec = call.syscall.args[1:]
            return "process_madvise_self", [
                _arg(kind, v) for (_, kind), v in zip(spec, call.args[1:], strict=True)]
    args = [_arg(kind, v) for (_, kind), v in zip(call.syscall.args, call.args, strict=True)]
    return "sys", [f"SYS_{call.name}", *args, *["0"] * (6 - len(args))]


def call_expr(call: Call) -> str:
    """The C expression that performs one call."""
    head, args = call_parts(call)
    return f"{head}({', '.join(args)})"


# ------------------------------------------------------------ the program


def c_source(finding: Finding, bucket_id: int | None = None) -> str:
    """The reproducer's C source for `finding` (its program up to the diverging step)."""
    program, step = finding.program, finding.step
    if not 0 <= step < len(program.calls):
        raise ExportError(f"step {step} is not in a program of {len(program.calls)} calls")
    calls = program.calls[: step + 1]
    if cforks.forks(calls):
        # the check runs in the process(es) the divergence is in, against its own state
        cforks.refuse(finding, calls)
        world, pred = cforks.predict_world(program, step)
        checks = [(n, check_for(finding, world.proc(n), pred, calls[-1]))
                  for n in cforks.checkers(finding, world)]
        state = world.proc(checks[0][0])
    else:
        state, pred = predict(program, step)
        checks = [(0, check_for(finding, state, pred, calls[-1]))]
    check = checks[0][1]
    arenas = ", ".join(f"{a.base:#x}UL" for a in ARENAS)
    head = fill(template(cparts.HEAD), {"arenas": arenas, "pages": ARENA_PAGES,
                                        "title": c_string(finding.title)})
    blocks = [*_fallback_numbers({c.name for c in calls}, _uses_fds(calls))]
    blocks += [part(name) for name in _part_names(finding.kind, calls, check)]
    if cforks.forks(calls):
        blocks.append(cforks.procs_part(calls))
        blocks += [cforks.renamed(c.code, n) if len(checks) > 1 else c.code
                   for n, c in checks]
        blocks += [part(cparts.REPORT), _forked_main(calls, checks)]
    else:
        blocks += [check.code, part(cparts.REPORT), _main(calls, check)]
    where = [n for n, _ in checks] if cforks.forks(calls) else []
    model = model_text(calls[-1], state, pred, where[0] if where else None)
    # Every block after the head follows a blank line.
    source = _header(finding, bucket_id, model, where) + head + \
        "".join("\n" + b for b in blocks)
    return cwidth.fit(source)


def _part_names(kind: str, calls: tuple[Call, ...], check: Check) -> list[str]:
    """The building blocks the calls and the check use, in the order they are emitted."""
    names = {c.name for c in calls}
    parts = [cparts.ON_FAULT_CRASH if kind == "crash" else cparts.ON_FAULT, cparts.PIN_CPU]
    if names - {"touch"} or cparts.PAGEMAP in check.parts:
        parts.append(cparts.SYS)
    if "touch" in names:
        parts.append(cparts.TOUCH)
    if "prlimit_memlock" in names:
        parts.append(cparts.PRLIMIT)
    if "drop_cap_ipc_lock" in names:
        parts.append(cparts.DROP_CAP)
    if "process_madvise" in names:
        parts.append(cparts.PMADVISE)
    if REGIONS:
        parts += [cparts.READ_TEXT, cparts.THP]
    return parts + [p for p in check.parts if p not in parts]


def _fallback_numbers(names: set[str], fds: bool = False) -> list[str]:
    """`#define SYS_x N` for calls older C headers may not name (mlock2, prlimit64, ...):
    one block, or none."""
    nrs = {n: SYSCALLS[n].nr for n in sorted(names) if not SYSCALLS[n].is_pseudo}
    if "prlimit_memlock" in names:
        nrs["prlimit64"] = 302
    if "drop_cap_ipc_lock" in names:
        nrs.update(capget=125, capset=126)
    if "memfd_create" in names:
        nrs["memfd_create"] = 319
    if "tmpfile" in names:
        nrs["openat"] = 257
    if "process_madvise" in names:
        nrs.update(pidfd_open=434, close=3)
    if fds:
        nrs["close_range"] = 436
    if "fork" in names:
        nrs["pidfd_open"] = 434  # waiting for a process that exits (procs.h)
    if not nrs:
        return []
    return ["".join(f"#ifndef SYS_{n}\n#define SYS_{n} {nr}\n#endif\n" for n, nr in nrs.items())]


def model_text(call: Call, state: State, pred: Prediction, proc: int | None = None) -> str:
    """What the model predicts after a step, as the oracle prints it (`proc`: the process
    whose `state` it is, named when the program forks)."""
    parts = [(f"in p{proc}: " if proc is not None else "") + render(model_view(state.pages))]
    if call.name == "touch":
        parts.insert(0, signal_text(pred.signal))
    else:
        ret = pred.ret
        if call.name in ("mmap", "mremap") and ret is not None and ret >= 0:
            ret += ARENA_BASE
        parts.insert(0, f"returns {value_text(call, ret)}")
    return "; ".join(parts)


def _header(finding: Finding, bucket_id: int | None, model: str,
            where: list[int] | None = None) -> str:
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
        "Replays the program's calls with raw syscall(2) at mmfuzz's",
        "addresses (the arena where mmfuzz puts it on the kernel it runs",
        f"on: {HOST.base:#x} on an x86-64 host, {UML.base:#x} in a UML",
        "guest), then checks the diverging property in /proc against the",
        "model's prediction for that step.",
        *(_processes_text(where) if where else []),
        "",
        "Build: cc -Wall -static -o repro repro.c",
        "Run:   ./repro   (as root: pagemap shows PFNs, which tell the zero",
        "       page apart)",
        "Exit:  1 the divergence reproduces, 0 it does not, 2 /proc could",
        "       not be read" + (" or the processes did not finish" if where else ""),
        *(["", "Needs 6.18+ and THP as mmfuzz's huge arena has it: hugepages-2048kB "
           "enabled for MADV_HUGEPAGE ranges, every other size never, use_zero_page 1 "
           "(it exits 2 and says what is missing otherwise)."]
          if REGIONS else []),
    ]
    room = cwidth.WIDTH - 3
    # (a run of page letters longer than a line, in the huge arena's renders, is cut)
    body = "\n".join((" * " + _comment(part)).rstrip() for x in lines
                     for part in textwrap.wrap(x, room, subsequent_indent="  ",
                                               break_on_hyphens=False)
                     or [""])
    return f"/*\n{body}\n */\n"


def _processes_text(where: list[int]) -> list[str]:
    names = ", ".join(f"p{n}" for n in where)
    return [
        "",
        "The program's processes each make their own calls, in the",
        "program's order: a turn passes between them through pipes.",
        (f"The check runs in {names}, where the divergence is, against the model's "
         "state of that process." if len(where) == 1 else
         f"The check runs in each of {names} (the divergence is in one of them), "
         "against the model's state of each; it reproduces if any shows it."),
    ]


def _uses_fds(calls: tuple[Call, ...]) -> bool:
    """Whether descriptor numbers matter: memfds, or an mmap of a descriptor."""
    return any(c.name in FD_CALLS or (c.name == "mmap" and not c.arg("flags") & MAP_ANONYMOUS)
               for c in calls)


def _decls(calls: tuple[Call, ...], uses_ret: bool) -> list[str]:
    decls = ["\tstruct sigaction sa;\n"]
    if uses_ret:
        decls.append("\tlong ret;\n")
    if _uses_fds(calls):
        decls.append("\tint out;\n")
    return decls


def _setup(calls: tuple[Call, ...], check: Check) -> list[str]:
    """The executor's set-up, before the first call (forks inherit it)."""
    if REGIONS:
        thp = ["\tif (thp_pmd_only() != 0)\n", "\t\treturn 2;\n"]
    else:
        thp = ["\t/* as the executor does without mTHP: no THP, so presence is\n",
               "\t * exact to the page (the expected values below come from a\n",
               "\t * model without large folios) */\n",
               "\tprctl(PR_SET_THP_DISABLE, 1, 0, 0, 0);\n"]
    body = [
        *thp,
        "\t/* and on one CPU, which MADV_PAGEOUT's results depend on */\n",
        "\tif (pin_to_one_cpu() != 0) {\n",
        "\t\tperror(\"sched_setaffinity\");\n",
        "\t\treturn 2;\n",
        "\t}\n",
        "\tmemset(&sa, 0, sizeof(sa));\n",
        "\tsa.sa_sigaction = on_fault;\n",
        "\tsa.sa_flags = SA_SIGINFO | SA_NODEFER;\n",
        "\tsigaction(SIGSEGV, &sa, NULL);\n",
        "\tsigaction(SIGBUS, &sa, NULL);\n",
        check.setup,
    ]
    if _uses_fds(calls):
        body += [
            "\t/* as the executor does: no descriptor open, so memfds are\n",
            "\t * numbered from 0 (stdout waits at 1000 until the calls are\n",
            "\t * done) */\n",
            "\tout = fcntl(1, F_DUPFD, 1000);\n",
            "\tsys(SYS_close_range, 0, 999, 0, 0, 0, 0);\n",
        ]
    return body


def _call_lines(calls: tuple[Call, ...], uses_ret: bool, indent: str) -> list[tuple[str, str]]:
    """Each call's comment (at one tab) and statement (at `indent`)."""
    out = []
    last = len(calls) - 1
    for i, call in enumerate(calls):
        note = " -- the diverging step" if i == last else ""
        comment = cwidth.comment(f"{i}: {_comment(format_call(call))}{note}")
        assign = "ret = " if i == last and uses_ret else ""
        fn, args = call_parts(call)
        out.append((comment, cwidth.call(assign + fn, args, ";", indent)))
    return out


def _main(calls: tuple[Call, ...], check: Check) -> str:
    body = ["\n", "\tif (find_arena() != 0)\n", "\t\treturn report(2);\n", "\n",
            *_setup(calls, check)]
    for comment, stmt in _call_lines(calls, check.uses_ret, "\t"):
        body.append("\n" + comment + stmt)
    if _uses_fds(calls):
        body.append("\n\tdup2(out, 1);\n")
    body.append("\n\treturn report(check(" + ("ret" if check.uses_ret else "") + "));\n")
    return "int main(void)\n{\n" + "".join(_decls(calls, check.uses_ret)) + "".join(body) + "}\n"


def _forked_main(calls: tuple[Call, ...], checks: list[tuple[int, Check]]) -> str:
    """main for a program that forks (fuzzer/reduce/cforks.py)."""
    uses_ret = any(c.uses_ret for _, c in checks)
    decls = [*_decls(calls, uses_ret), "\tpid_t pid;\n"]
    body = cforks.main_body(calls, checks, _uses_fds(calls), _setup(calls, checks[0][1]),
                            _call_lines(calls, uses_ret, "\t\t"))
    return "int main(void)\n{\n" + "".join(decls) + "".join(body) + "}\n"


__all__ = ["c_source", "call_expr", "call_parts", "model_text", "predict"]
