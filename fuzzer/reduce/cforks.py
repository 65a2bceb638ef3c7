"""The C reproducer of a program that forks: its processes, their turns, and where it checks.

Every process of the program runs the same straight-line `main`, and makes
only the calls of its own number (`if (me == N)`), as the executor does
(fuzzer/executor/executor.c run_program). The order is the program's: each
process has a pipe, made before the first fork, on which it waits for its
turn before a call; after the call it writes the turn to the pipe of the
process that makes the next call (c/procs.h). A process that exits hands on
its pid with the turn, and the next one waits until it is gone, address
space and all, as the supervisor does.

The check runs where the oracle found the divergence (fuzzer/check/program.py
`_compare_all`): in the calling process, or, for a title that ends "in the
child", in the child the diverging fork made, or, for "in another process",
in every other live process in turn (the title does not say which; it
reproduces if any shows it). Each checks against the model's state of its
own process (`World`) after the diverging step. The first process of the
reproducer is none of the program's: it forks p0, waits for the checks'
statuses, then kills the processes' group and reaps them.
"""

from __future__ import annotations

import re

from fuzzer.model import Prediction, State, World
from fuzzer.model.features import Features
from fuzzer.model.pmd import REGIONS
from fuzzer.model.state import PMD_ORDER, RestVma
from fuzzer.model.world import step as world_step
from fuzzer.observe.mthp import FELL_BACK, KHUGEPAGED_RAN
from fuzzer.oracle.compare import IN_CHILD, IN_OTHER
from fuzzer.prog import Call, Program
from fuzzer.prog.syscalls import PAGE
from fuzzer.reduce import cparts, cwidth
from fuzzer.reduce.cchecks import Check
from fuzzer.reduce.cparts import fill, template
from fuzzer.reduce.finding import ExportError, Finding

FORK_BUDGET = 20  # seconds for every process's calls and checks (a UML guest is slow)
# Kinds a forked program's C does not check yet: what each check would need to expect
# (outside the arena, Pss shared with other processes, the run as a whole).
UNCHECKED = {
    "mapping": "what is mapped outside the arena",
    "rss": "Rss and Pss, which other processes' pages change",
    "locked": "smaps Locked, which is proportional over processes",
    "hang": "a hang",
    "crash": "a crash",
}


def forks(calls: tuple[Call, ...]) -> bool:
    """Whether the calls need the processes' machinery (a fork, or an exit)."""
    return any(c.name in ("fork", "exit") for c in calls)


def start_state() -> State:
    """The model's process as a reproducer starts it: one lockable VMA stands for the
    reproducer's own mappings; THP off as the executor has it without mTHP, but in the
    huge arena on in MADV_HUGEPAGE VMAs at 2 MiB alone, which c/thp.h makes sure of."""
    features = Features(mthp_orders=1 << PMD_ORDER) if REGIONS else Features()
    return State(rest=[RestVma(0, PAGE, lockable=True)], features=features)


def predict_world(program: Program, step: int) -> tuple[World, Prediction]:
    """The model's processes and the caller's prediction right after `step`."""
    world = World.start(start_state())
    pred = Prediction()
    for call in program.calls[: step + 1]:
        pred = world_step(world, call)
    return world, pred


def checkers(finding: Finding, world: World) -> list[int]:
    """The processes the check runs in, as the oracle named the divergence's."""
    call = finding.program.calls[finding.step]
    title = finding.title.removesuffix(KHUGEPAGED_RAN).removesuffix(FELL_BACK)
    if title.endswith(" " + IN_CHILD):
        if call.name != "fork":
            raise ExportError("a divergence 'in the child' at a call other than fork")
        return [world.children]
    if title.endswith(" " + IN_OTHER):
        new = world.children if call.name == "fork" else -1
        found = [n for n, _ in world.live() if n not in (call.proc, new)]
        if not found:
            raise ExportError("a divergence 'in another process' with no other process live")
        return found
    if call.name == "exit":
        raise ExportError("a divergence in a process that has just exited")
    return [call.proc]


def refuse(finding: Finding, calls: tuple[Call, ...]) -> None:
    """ExportError for what a forked program's C cannot check or make yet."""
    if finding.kind in UNCHECKED:
        raise ExportError(f"C reproducers of programs that fork cannot check "
                          f"{UNCHECKED[finding.kind]} yet (kind {finding.kind}); "
                          "use --format prog (and `mmfuzz exec`)")
    last = calls[-1]
    if finding.kind == "result" and last.name == "fork":
        raise ExportError("C reproducers do not check fork's result yet")
    for c in calls:
        if c.name == "process_madvise" and c.arg("target") != c.proc:
            raise ExportError("C reproducers cannot make process_madvise on another "
                              "process yet; use --format prog (and `mmfuzz exec`)")


def renamed(code: str, n: int) -> str:
    """A check's code with its top-level names made `NAME_pN` by macros around it, so one
    check per process fits in one source (each with its own process's expected values)."""
    names = sorted(set(re.findall(r"^static\b[^=(\[;]*?\b(\w+)\s*[\[(=;]", code, re.MULTILINE)))
    define = "".join(f"#define {x} {x}_p{n}\n" for x in names)
    undef = "".join(f"#undef {x}\n" for x in names)
    return f"/* p{n}'s check */\n{define}{code}{undef}"


def procs_part(calls: tuple[Call, ...]) -> str:
    return fill(template(cparts.PROCS), {
        "procs": 1 + sum(c.name == "fork" for c in calls), "fork_budget": FORK_BUDGET})


def main_body(calls: tuple[Call, ...], checks: list[tuple[int, Check]], fds: bool,
              setup: list[str], lines: list[tuple[str, str]]) -> list[str]:
    """`main` after the declarations: the first process, p0's set-up (`setup`, as the
    one-process reproducer has it), the calls by process, and the checks. `lines[i]` is
    call i's comment and statement (at two tabs; the fork and exit ones are made here)."""
    body = [
        "\n",
        "\tif (find_arena() != 0)\n",
        "\t\treturn report(2);\n",
        "\t/* this process waits for the program's processes and their\n",
        "\t * checks, then kills and reaps them (procs.h) */\n",
        "\tif (make_pipes() != 0 ||\n",
        "\t    prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0) {\n",
        "\t\tperror(\"pipes\");\n",
        "\t\treturn 2;\n",
        "\t}\n",
        "\tpid = fork();\n",
        "\tif (pid < 0) {\n",
        "\t\tperror(\"fork\");\n",
        "\t\treturn 2;\n",
        "\t}\n",
        "\tif (pid > 0) {\n",
        "\t\tsetpgid(pid, pid);\n",
        f"\t\treturn wait_all(pid, {len(checks)});\n",
        "\t}\n",
        "\t/* p0 */\n",
        "\tsetpgid(0, 0);\n",
        "\talarm(2 * BUDGET);\n",
        *setup,
        "\tpass(0, 0); /* p0 has the first turn */\n",
    ]
    first, last = checks[0][0], len(calls) - 1
    forked = 0
    for i, call in enumerate(calls):
        n = call.proc
        nxt = calls[i + 1].proc if i < last else first
        checks_here = i == last and first == n and call.name != "exit"
        comment, stmt = lines[i]
        body.append("\n" + comment + f"\tif (me == {n}) {{\n\t\tturn();\n")
        if call.name == "fork":
            forked += 1
            body.append(f"\t\tfork_as({forked});\n")
            if not checks_here:
                body.append(f"\t\tif (me == {n})\n\t\t\tpass({nxt}, 0);\n")
        elif call.name == "exit":
            body.append(f"\t\tpass({nxt}, getpid());\n\t\tsyscall(SYS_exit_group, 0);\n")
        else:
            body.append(stmt)
            if not checks_here:
                body.append(f"\t\tpass({nxt}, 0);\n")
        if checks_here:
            body += _check_lines(checks, 0, fds)
        body.append("\t}\n")
    for k, (n, _) in enumerate(checks):
        if k == 0 and n == calls[-1].proc and calls[-1].name != "exit":
            continue
        where = "where the divergence is" if len(checks) == 1 else "one it may be in"
        body.append("\n" + cwidth.comment(f"the check, in p{n}: {where}"))
        body.append(f"\tif (me == {n}) {{\n\t\tturn();\n")
        body += _check_lines(checks, k, fds)
        body.append("\t}\n")
    body.append("\thold();\n\treturn 0;\n")
    return body


def _check_lines(checks: list[tuple[int, Check]], k: int, fds: bool) -> list[str]:
    n, check = checks[k]
    name = "check" if len(checks) == 1 else f"check_p{n}"
    lines = ["\t\tdup2(out, 1);\n"] if fds else []
    if len(checks) > 1:
        lines.append(f"\t\tprintf(\"in p{n}:\\n\");\n")
    lines.append(f"\t\tdone(report({name}({'ret' if check.uses_ret else ''})));\n")
    if k + 1 < len(checks):
        lines.append(f"\t\tpass({checks[k + 1][0]}, 0);\n")
    return lines


__all__ = ["FORK_BUDGET", "checkers", "forks", "main_body", "predict_world", "procs_part",
           "refuse", "renamed"]
