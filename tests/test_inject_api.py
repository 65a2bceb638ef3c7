"""The injection API on the real kernel: results of extra calls, fork hooks, process views.

Each plug-in here is Python text written to tmp_path and loaded as a user's
would be (`load("file.py:NAME")`); the test then reads what the injection saw.
`mmfuzz inject -- CMD` is driven with small C programs built here, that fork
with glibc's fork() (a clone) and with vfork().
"""

from __future__ import annotations

import errno
import resource
import shutil
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest

from fuzzer.check import check
from fuzzer.executor import executor_path
from fuzzer.inject import Injection, load
from fuzzer.inject.process import MmTracker
from fuzzer.prog import parse
from fuzzer.prog.syscalls import MCL_CURRENT, MCL_FUTURE, MCL_ONFAULT, PAGE, SYSCALLS
from fuzzer.trace import Supervisor
from fuzzer.trace.follow import run_command

RW = "PROT_READ|PROT_WRITE"
AP = "MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED"
MLOCKALL, MUNLOCKALL, MLOCK = (SYSCALLS[n].nr for n in ("mlockall", "munlockall", "mlock"))

# MmTracker, pure: (events, pid asked about, its MCL_FUTURE lock). An event is
# ("ran", pid, nr, flags, result), ("fork", parent, child, shares_mm) or ("exec", pid).
TRACKER_ROWS = [
    ([], 1, "unlocked"),
    ([("ran", 1, MLOCKALL, MCL_CURRENT | MCL_FUTURE, 0)], 1, "locked"),
    ([("ran", 1, MLOCKALL, MCL_FUTURE | MCL_ONFAULT, 0)], 1, "onfault"),
    # a failed call changes nothing; a successful one resets def_flags
    ([("ran", 1, MLOCKALL, MCL_FUTURE, 0), ("ran", 1, MLOCKALL, MCL_ONFAULT, -errno.EINVAL)],
     1, "locked"),
    ([("ran", 1, MLOCKALL, MCL_FUTURE, 0), ("ran", 1, MLOCKALL, MCL_CURRENT, 0)], 1, "unlocked"),
    ([("ran", 1, MLOCKALL, MCL_FUTURE, 0), ("ran", 1, MUNLOCKALL, 0, 0)], 1, "unlocked"),
    ([("ran", 1, MLOCKALL, MCL_FUTURE, 0), ("ran", 1, MLOCK, 0, 0)], 1, "locked"),
    # fork: the child's mm has none (VM_INIT_DEF_MASK), the parent keeps its own
    ([("ran", 1, MLOCKALL, MCL_FUTURE, 0), ("fork", 1, 2, False)], 2, "unlocked"),
    ([("ran", 1, MLOCKALL, MCL_FUTURE, 0), ("fork", 1, 2, False)], 1, "locked"),
    # vfork or a thread: one mm, so a call in either shows in both
    ([("fork", 1, 2, True), ("ran", 2, MLOCKALL, MCL_FUTURE, 0)], 1, "locked"),
    ([("ran", 1, MLOCKALL, MCL_FUTURE, 0), ("fork", 1, 2, True)], 2, "locked"),
    # exec: a new mm, and a vfork child that execs no longer shares its parent's
    ([("ran", 1, MLOCKALL, MCL_FUTURE, 0), ("exec", 1)], 1, "unlocked"),
    ([("fork", 1, 2, True), ("exec", 2), ("ran", 2, MLOCKALL, MCL_FUTURE, 0)], 1, "unlocked"),
]


@pytest.mark.parametrize(("events", "pid", "lock"), TRACKER_ROWS)
def test_mcl_future_tracking(events: list[tuple[Any, ...]], pid: int, lock: str) -> None:
    mm = MmTracker()
    for kind, *rest in events:
        if kind == "ran":
            who, nr, flags, result = rest
            mm.ran(who, nr, (flags, 0, 0, 0, 0, 0), result)
        elif kind == "fork":
            mm.forked(*rest)
        else:
            mm.execed(*rest)
    assert mm.future(pid) == lock


def _plugin(tmp_path: Path, text: str, name: str) -> Any:
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(text))
    return load(f"{path}:{name}")


THEN_PLUGIN = """
    import errno
    from fuzzer.inject import Extra, Injection, Then

    PAGE = 4096

    class then_results(Injection):
        def __init__(self):
            self.base, self.seen = 0, []

        def on_exit(self, call, result):
            if call.name == "mmap":  # lock its first page; an unaligned madvise fails
                self.base = result
                return Then((Extra("mlock", (result, PAGE)),
                             Extra("madvise", (result + 1, PAGE, 0))))
            if call.name == "munmap":
                return Then((), result=-errno.EIO)
            return None

        def on_then(self, call, results):
            base = call.args["addr"]
            self.seen.append((call.name, results, call.process.lock_at(base)))
            if call.name == "mmap" and len(self.seen) == 1:
                return Then((Extra("munlock", (base, PAGE)),))  # a second round
            if call.name == "munmap":
                return -errno.ENOMEM  # wins over the Then's result
            return None
"""


@pytest.mark.kernel
def test_then_gives_the_results_of_its_calls(tmp_path: Path) -> None:
    probe = _plugin(tmp_path, THEN_PLUGIN, "then_results")
    program = parse(f"mmap(@0, 2p, {RW}, {AP}, -1, 0)\nmunmap(@1, 1p)\n")
    with Supervisor(executor_path(), injections=[probe]).run(program) as run:
        steps = list(run.steps())
    assert probe.seen == [
        ("mmap", (0, -errno.EINVAL), "locked"),  # what the kernel returned, and did
        ("mmap", (0,), "unlocked"),
        ("munmap", (), None),
    ]
    assert steps[0].ret == probe.base > 0  # kept: on_then said None
    assert steps[1].ret == -errno.ENOMEM


PMADV_PLUGIN = """
    from fuzzer.inject import Injection, Rewrite

    class pmadv_seen(Injection):
        def __init__(self):
            self.seen = []

        def on_entry(self, call):
            if call.name == "process_madvise":
                self.seen.append(sorted(call.args))
                return Rewrite(advice=999)  # an advice no kernel knows: EINVAL
            return None
"""


@pytest.mark.kernel
def test_process_madvise_gives_an_injection_the_kernels_arguments(tmp_path: Path) -> None:
    # The program's arguments (a target process and two ranges) are not the kernel's
    # (a pidfd and an iovec array): an injection sees, and rewrites, the registers.
    # Seen: every injected campaign's worker died (IndexError) at its first
    # process_madvise.
    probe = _plugin(tmp_path, PMADV_PLUGIN, "pmadv_seen")
    program = parse(f"mmap(@0, 2p, {RW}, {AP}, -1, 0)\n"
                    "process_madvise(p0, @0, 1p, @1, 1p, 2, MADV_COLD, 0)\n")
    with Supervisor(executor_path(), injections=[probe]).run(program) as run:
        steps = list(run.steps())
    assert probe.seen == [["advice", "flags", "pidfd", "vec", "vlen"]]
    assert steps[1].ret == -errno.EINVAL


FORK_PLUGIN = """
    from fuzzer.inject import Extra, Injection, Skip, Then

    class child_munlock_noop(Injection):
        def __init__(self):
            self.forks = []

        def on_fork(self, parent, child):
            self.forks.append((parent.pid, parent.mcl_future, child.pid, child.mcl_future))
            return None

        def on_entry(self, call):
            children = {c for _, _, c, _ in self.forks}
            if call.name == "munlock" and call.pid in children:
                return Skip(0)
            return None

    class child_locked_at_birth(Injection):
        def __init__(self):
            self.base, self.seen, self.children = 0, [], []

        def on_exit(self, call, result):
            if call.name == "mmap":
                self.base = result
            return None

        def on_fork(self, parent, child):
            self.children.append(child.pid)
            return Then((Extra("mlock", (self.base, 4096)),))

        def on_then(self, call, results):
            self.seen.append((call.pid, call.name, results, call.process.lock_at(self.base)))
            return None
"""

FORK_PROGRAM = f"""
mmap(@0, 2p, {RW}, {AP}|MAP_LOCKED, -1, 0)
mlockall(MCL_CURRENT|MCL_FUTURE)
fork()
p1: mlock(@0, 2p)
p0: munlock(@1, 1p)
p1: munlock(@0, 1p)
"""


@pytest.mark.kernel
def test_on_fork_acts_in_the_child_only(tmp_path: Path) -> None:
    program = parse(FORK_PROGRAM)
    assert check(Supervisor(executor_path()), program).divergences == []
    noop = _plugin(tmp_path, FORK_PLUGIN, "child_munlock_noop")
    report = check(Supervisor(executor_path(), injections=[noop]), program)
    # p0's munlock (step 4) is untouched; p1's (step 5) is skipped
    assert [(d.step, d.title) for d in report.divergences][:1] == [
        (5, "lock: munlock left pages locked")]
    [(parent, parent_future, child, child_future)] = noop.forks
    assert parent != child
    assert (parent_future, child_future) == ("locked", "unlocked")  # not inherited


@pytest.mark.kernel
def test_on_fork_then_runs_in_the_child_before_it_runs(tmp_path: Path) -> None:
    program = parse(f"mmap(@0, 2p, {RW}, {AP}, -1, 0)\nfork()\np1: munmap(@1, 1p)\n")
    born = _plugin(tmp_path, FORK_PLUGIN, "child_locked_at_birth")
    report = check(Supervisor(executor_path(), injections=[born]), program)
    [(pid, name, results, lock)] = born.seen
    assert (name, results, lock) == ("fork", (0,), "locked")
    assert [pid] == born.children  # the extra call ran in the child
    # the child is compared as fork returns: it holds a lock no child may have
    assert report.divergences and report.divergences[0].step == 1
    assert report.divergences[0].kind == "lock"


PROBE_PLUGIN = """
    from fuzzer.inject import Injection

    PAGE = 4096

    class probe(Injection):
        def __init__(self):
            self.seen = []

        def on_exit(self, call, result):
            if call.name != "munmap":
                return None
            p, base = call.process, call.args["addr"] - 3 * PAGE
            self.seen.append((p.mcl_future, p.memlock, p.cap_ipc_lock, p.vmlck,
                              tuple(p.lock_at(base + i * PAGE) for i in range(4))))
            return None
"""

PROBE_PROGRAM = f"""
mmap(@0, 4p, {RW}, {AP}, -1, 0)
mlock2(@0, 1p, MLOCK_ONFAULT)
mlock(@1, 1p)
munmap(@3, 1p)
mlockall(MCL_CURRENT|MCL_FUTURE)
fork()
p1: munmap(@3, 1p)
mlockall(MCL_FUTURE|MCL_ONFAULT)
munmap(@3, 1p)
mlockall(MCL_ONFAULT)
munmap(@3, 1p)
munlockall()
prlimit_memlock(8p)
drop_cap_ipc_lock()
munmap(@3, 1p)
"""


@pytest.mark.kernel
def test_process_view(tmp_path: Path) -> None:
    probe = _plugin(tmp_path, PROBE_PLUGIN, "probe")
    report = check(Supervisor(executor_path(), injections=[probe]), parse(PROBE_PROGRAM))
    assert report.divergences == []
    limit = resource.getrlimit(resource.RLIMIT_MEMLOCK)  # the executor inherits ours
    unlocked = ("unlocked", "unlocked", "unlocked", None)
    # after mlockall(MCL_CURRENT) every VMA of the executor counts in VmLck
    everything = probe.seen[2][3]
    assert everything > 3 * PAGE
    assert probe.seen == [
        ("unlocked", limit, True, 2 * PAGE, ("onfault", "locked", "unlocked", None)),
        # the child after fork: no lock, no MCL_FUTURE (the parent has both)
        ("unlocked", limit, True, 0, unlocked),
        # MCL_FUTURE|MCL_ONFAULT without MCL_CURRENT leaves the VMAs as they were
        ("onfault", limit, True, everything, ("locked", "locked", "locked", None)),
        # mlockall(MCL_ONFAULT) alone fails: nothing changes
        ("onfault", limit, True, everything, ("locked", "locked", "locked", None)),
        ("unlocked", (8 * PAGE, 8 * PAGE), False, 0, unlocked),
    ]


FOLLOW_C = r"""
#define _GNU_SOURCE
#include <linux/sched.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

static long vmlck(void)
{
    char line[256];
    long kb = -1;
    FILE *f = fopen("/proc/self/status", "r");

    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "VmLck: %ld", &kb) == 1)
            break;
    fclose(f);
    return kb;
}

static char *area;

static int child_mlock(void)
{
    return mlock(area, 4096) == 0 && vmlck() > 0 ? 0 : 2;
}

static int clone_child(void *arg)
{
    return child_mlock();
}

static void *thread(void *arg)
{
    return (void *)(intptr_t)child_mlock();
}

/* Make a child by `how`; the status of what failed in it (2), 0 if nothing. */
static int by(const char *how)
{
    static char stack[1 << 16];
    struct clone_args args = {0};
    int status = 0;
    pthread_t tid;
    pid_t child;
    void *ret;

    if (!strcmp(how, "thread")) {  /* clone3(CLONE_VM|CLONE_THREAD|...) */
        pthread_create(&tid, 0, thread, 0);
        pthread_join(tid, &ret);
        return (int)(intptr_t)ret;
    }
    if (!strcmp(how, "fork"))  /* glibc: clone(SIGCHLD) */
        child = fork();
    else if (!strcmp(how, "clone"))  /* exit signal 0: PTRACE_EVENT_CLONE */
        return waitpid(clone(clone_child, stack + sizeof(stack), 0, 0), &status, __WALL),
               WEXITSTATUS(status);
    else  /* clone3, exit signal 0 */
        child = syscall(SYS_clone3, &args, sizeof(args));
    if (child == 0)
        _exit(child_mlock());
    waitpid(child, &status, __WALL);
    return WEXITSTATUS(status);
}

/* The exit status is a bit mask of what failed. argv[1] "fork": the child's mlock
 * must lock (else 2); "vfork": the child's mlock must show in the mm it shares with
 * its parent (else 4). Then the parent's own mlock must lock (else 1). */
int main(int argc, char **argv)
{
    char *p = mmap(0, 4 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    int status = 0, bad = 0;
    pid_t child;

    (void)argc;
    area = p;
    if (strcmp(argv[1], "vfork")) {
        bad |= by(argv[1]);
    } else {
        child = vfork();
        if (child == 0) {
            mlock(p + 4096, 4096);
            _exit(0);
        }
        waitpid(child, &status, 0);
        bad |= vmlck() > 0 ? 0 : 4;
    }
    munlock(p, 4 * 4096);
    bad |= mlock(p + 2 * 4096, 4096) == 0 && vmlck() > 0 ? 0 : 1;
    return bad;
}
"""

CHILD_PLUGIN = """
    from fuzzer.inject import Injection, Skip

    class child_mlock_skipped(Injection):
        def __init__(self):
            self.forks = []

        def on_fork(self, parent, child):
            self.forks.append((parent.pid, child.pid, child.memlock))
            return None

        def on_entry(self, call):
            if call.name == "mlock" and call.pid in {c for _, c, _ in self.forks}:
                return Skip(0)
            return None
"""


@pytest.fixture(scope="module")
def forker(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cc = shutil.which("cc") or shutil.which("gcc")
    assert cc is not None
    work = tmp_path_factory.mktemp("forker")
    (work / "forker.c").write_text(FOLLOW_C)
    subprocess.run([cc, "-Wall", "-O1", "-o", str(work / "forker"), str(work / "forker.c")],
                   check=True, timeout=60)
    return work / "forker"


@pytest.mark.kernel
@pytest.mark.parametrize(("how", "code", "forks"), [
    ("fork", 2, 1), ("vfork", 4, 1), ("clone", 2, 1), ("clone3", 2, 1),
    ("thread", 0, 0),  # a thread is no new process: no on_fork, its mlock runs
])
def test_inject_command_hooks_clone_and_vfork_children(
        forker: Path, tmp_path: Path, how: str, code: int, forks: int) -> None:
    assert subprocess.run([str(forker), how], timeout=30).returncode == 0
    assert run_command(executor_path(), [str(forker), how], []) == 0
    skip: Injection = _plugin(tmp_path, CHILD_PLUGIN, "child_mlock_skipped")
    assert run_command(executor_path(), [str(forker), how], [skip]) == code
    seen = skip.forks  # type: ignore[attr-defined]
    assert len(seen) == forks
    for parent, child, memlock in seen:
        assert parent != child and memlock == resource.getrlimit(resource.RLIMIT_MEMLOCK)
