"""Injections end to end: each catalogue bug makes a short program diverge with its title.

The kernel is correct, so without the injection every program here agrees with
the model; with it, the oracle must name the emulated bug. Plug-ins written
only against the documented API, broken plug-ins, and `mmfuzz inject --
COMMAND` (forks followed, exit status passed through) are covered too.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fuzzer.check import check
from fuzzer.cli.app import app
from fuzzer.executor import executor_path
from fuzzer.inject import InjectionError, load
from fuzzer.inject.catalogue import CATALOGUE
from fuzzer.observe.probe import probe
from fuzzer.prog import ARENA, parse
from fuzzer.prog.arena import HUGE_PAGES
from fuzzer.store import open_store
from fuzzer.trace import Supervisor
from tests.test_model_mthp_kernel import mthp_sizes

pytestmark = pytest.mark.kernel
runner = CliRunner()

RW = "PROT_READ|PROT_WRITE"
AP = "MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED"

MTHP_CASES = {"hugepage-advice-ignored"}
# need the huge arena (MMFUZZ_ARENA=huge): tests/test_huge_arena.py runs them there
HUGE_CASES = {"huge-split-drops-rest", "huge-mprotect-whole-pmd", "huge-munlock-whole-pmd",
              "huge-mlock-splits-pmd"}
HG512 = f"""
        mmap(@0, 512p, {RW}, {AP}, -1, 0)
        madvise(@0, 512p, MADV_HUGEPAGE)"""
TMPFILE_CASES = {"random-advice-reads-around"}  # need tmpfile's files (disk_ra_pages)
# (injection, program, the title its first divergence must have)
CASES = [
    # needs an mTHP size (the case runs with hugepages-64kB "madvise": MTHP_CASES)
    ("hugepage-advice-ignored", f"""
        mmap(@16, 32p, {RW}, {AP}, -1, 0)
        madvise(@16, 32p, MADV_HUGEPAGE)
        touch(@20, write)
        """, "presence: touch(write) left pages not anonymous"),
    # PMD-mapped huge pages (docs/SEMANTICS.md §22): HUGE_CASES
    ("huge-split-drops-rest", f"""{HG512}
        touch(@7, write)
        munmap(@100, 1p)
        """, "presence: munmap left pages not anonymous"),
    ("huge-mprotect-whole-pmd", f"""{HG512}
        touch(@7, write)
        mprotect(@0, 10p, PROT_READ)
        """, "prot: mprotect(R) left pages r--p instead of rw-p"),
    ("huge-munlock-whole-pmd", f"""{HG512}
        mlock(@0, 512p)
        munlock(@256, 256p)
        """, "lock: munlock left pages unlocked"),
    # only AnonHugePages shows it: the pages, their lock and the VMAs stay the same
    ("huge-mlock-splits-pmd", f"""{HG512}
        touch(@7, write)
        mlock(@0, 512p)
        """, "rss: mlock left AnonHugePages different from the huge pages PMDs map"),
    ("guard-dropped-on-fork", f"""
        mmap(@0, 2p, {RW}, {AP}, -1, 0)
        madvise(@1, 1p, MADV_GUARD_INSTALL)
        fork()
        """, "presence: fork left pages not guard in the child"),
    ("guard-dropped-by-hole-punch", f"""
        mmap(@0, 3p, {RW}, MAP_SHARED|MAP_ANONYMOUS|MAP_FIXED, -1, 0)
        madvise(@1, 1p, MADV_GUARD_INSTALL)
        madvise(@0, 4p, MADV_REMOVE)
        """, "presence: madvise(REMOVE) left pages not guard"),
    ("mseal-hole-seals-head", f"""
        mmap(@0, 2p, {RW}, {AP}, -1, 0)
        mseal(@0, 3p, 0)
        """, "seal: mseal left pages sealed"),
    ("munmap-sealed-unmaps-head", f"""
        mmap(@0, 3p, {RW}, {AP}, -1, 0)
        mseal(@2, 1p, 0)
        munmap(@0, 3p)
        """, "mapping: munmap left pages unmapped"),
    ("populate-needs-lock", f"""
        mmap(@0, 4p, {RW}, {AP}|MAP_POPULATE, -1, 0)
        """, "presence: mmap(PRIVATE|ANONYMOUS|POPULATE) left pages not anonymous"),
    ("mlockall-onfault-accepted", f"""
        mmap(@0, 2p, {RW}, {AP}|MAP_LOCKED, -1, 0)
        mlockall(MCL_ONFAULT)
        """, "result: mlockall(ONFAULT) returned 0 instead of -EINVAL"),
    ("mlock2-onfault-ignored", f"""
        mmap(@0, 2p, {RW}, {AP}, -1, 0)
        mlock2(@0, 2p, MLOCK_ONFAULT)
        """, "lock: mlock2(ONFAULT) left pages without lock-on-fault"),
    ("munlock-skipped", f"""
        mmap(@0, 2p, {RW}, {AP}|MAP_LOCKED, -1, 0)
        munlock(@0, 2p)
        """, "lock: munlock left pages locked"),
    ("mremap-grow-unlocked", f"""
        mmap(@0, 2p, {RW}, {AP}|MAP_LOCKED, -1, 0)
        mremap(@0, 2p, 4p, 0, @0)
        """, "lock: mremap(0) left pages unlocked"),
    ("fixed-noreplace-as-hint", f"""
        mmap(@0, 2p, {RW}, {AP}, -1, 0)
        mmap(@0, 1p, {RW}, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED_NOREPLACE, -1, 0)
        """, "result: mmap(PRIVATE|ANONYMOUS, RW) returned an address outside "
             "the arena instead of -EEXIST"),
    ("mmap-len0-accepted", f"""
        mmap(@0, 0, {RW}, {AP}, -1, 0)
        """, "result: mmap(PRIVATE|ANONYMOUS, RW) returned an arena address instead of "
             "-EINVAL"),
    ("mprotect-locked-no-cow", f"""
        mmap(@0, 2p, PROT_READ, {AP}|MAP_LOCKED, -1, 0)
        mprotect(@0, 2p, {RW})
        """, "presence: mprotect left pages not anonymous"),
    ("pageout-reclaims-locked", f"""
        mmap(@0, 2p, {RW}, {AP}|MAP_LOCKED, -1, 0)
        madvise(@0, 2p, MADV_PAGEOUT)
        """, "result: madvise(PAGEOUT) returned 0 instead of -EINVAL"),
    ("droppable-locked-accepted", f"""
        mmap(@0, 2p, {RW}, MAP_DROPPABLE|MAP_ANONYMOUS|MAP_FIXED|MAP_LOCKED, -1, 0)
        """, "result: mmap(DROPPABLE|ANONYMOUS|LOCKED, RW) returned an arena address "
             "instead of -EINVAL"),
    # deep ones (fuzzer/inject/deep.py): each needs every call before the last
    # (needs tmpfile's files on disk: TMPFILE_CASES)
    ("random-advice-reads-around", """
        tmpfile()
        ftruncate(0, 8p)
        mmap(@0, 8p, PROT_READ, MAP_SHARED, 0, 0)
        madvise(@0, 8p, MADV_RANDOM)
        touch(@0, read)
        """, "presence: touch(read) made pages present"),
    ("fork-inherits-mcl-future", f"""
        mmap(@0, 1p, {RW}, {AP}, -1, 0)
        mlockall(MCL_FUTURE)
        fork()
        p1: mmap(@2, 2p, {RW}, {AP}, -1, 0)
        """, "lock: mmap(PRIVATE|ANONYMOUS) left pages locked"),
    ("mremap-grow-split-onfault", f"""
        mmap(@0, 2p, {RW}, {AP}|MAP_LOCKED, -1, 0)
        munlock(@0, 1p)
        mremap(@1, 1p, 3p, 0, @0)
        """, "lock: mremap(0) left pages lock-on-fault"),
    ("mlock2-onfault-over-limit", f"""
        mmap(@0, 4p, {RW}, {AP}, -1, 0)
        prlimit_memlock(2p)
        drop_cap_ipc_lock()
        mlock(@0, 1p)
        mlock2(@0, 4p, MLOCK_ONFAULT)
        """, "result: mlock2(ONFAULT) returned 0 instead of -ENOMEM"),
    ("mprotect-moved-onfault-populates", f"""
        mmap(@0, 2p, PROT_READ, {AP}, -1, 0)
        mlock2(@0, 2p, MLOCK_ONFAULT)
        mremap(@0, 2p, 2p, MREMAP_MAYMOVE|MREMAP_FIXED, @4)
        mprotect(@4, 2p, {RW})
        """, "presence: mprotect made pages present"),
    ("munmap-inside-onfault-kept", f"""
        mmap(@0, 3p, {RW}, {AP}, -1, 0)
        mlock2(@0, 3p, MLOCK_ONFAULT)
        touch(@1, write)
        munmap(@1, 1p)
        """, "mapping: munmap left pages mapped"),
    ("mremap-move-split-locks", f"""
        mmap(@0, 3p, {RW}, {AP}, -1, 0)
        mlock2(@0, 3p, MLOCK_ONFAULT)
        munlock(@0, 1p)
        mremap(@1, 2p, 2p, MREMAP_MAYMOVE|MREMAP_FIXED, @5)
        """, "lock: mremap(MAYMOVE) left pages without lock-on-fault"),
]

# A deep injection does nothing unless all its preconditions hold: each program here is
# its case above with one precondition missing, and agrees with the kernel under it.
SHORT_OF_ONE = [
    ("random-advice-reads-around", """
        tmpfile()
        ftruncate(0, 8p)
        mmap(@0, 8p, PROT_READ, MAP_SHARED, 0, 0)
        madvise(@0, 8p, MADV_NORMAL)
        touch(@0, read)
        """),
    ("random-advice-reads-around", f"""
        mmap(@0, 8p, PROT_READ, {AP}, -1, 0)
        madvise(@0, 8p, MADV_RANDOM)
        touch(@0, read)
        """),
    ("fork-inherits-mcl-future", f"""
        mmap(@0, 1p, {RW}, {AP}, -1, 0)
        mlockall(MCL_CURRENT)
        fork()
        p1: mmap(@2, 2p, {RW}, {AP}, -1, 0)
        """),
    ("mremap-grow-split-onfault", f"""
        mmap(@1, 1p, {RW}, {AP}|MAP_LOCKED, -1, 0)
        mremap(@1, 1p, 3p, 0, @0)
        """),
    ("mlock2-onfault-over-limit", f"""
        mmap(@0, 4p, {RW}, {AP}, -1, 0)
        prlimit_memlock(2p)
        mlock(@0, 1p)
        mlock2(@0, 4p, MLOCK_ONFAULT)
        """),
    ("mlock2-onfault-over-limit", f"""
        mmap(@0, 4p, {RW}, {AP}, -1, 0)
        prlimit_memlock(2p)
        drop_cap_ipc_lock()
        mlock2(@0, 4p, MLOCK_ONFAULT)
        """),
    ("mprotect-moved-onfault-populates", f"""
        mmap(@0, 2p, PROT_READ, {AP}, -1, 0)
        mlock2(@0, 2p, MLOCK_ONFAULT)
        mprotect(@0, 2p, {RW})
        """),
    ("munmap-inside-onfault-kept", f"""
        mmap(@0, 3p, {RW}, {AP}, -1, 0)
        mlock2(@0, 3p, MLOCK_ONFAULT)
        munmap(@1, 1p)
        """),
    ("mremap-move-split-locks", f"""
        mmap(@0, 3p, {RW}, {AP}, -1, 0)
        mlock2(@0, 3p, MLOCK_ONFAULT)
        mremap(@0, 3p, 3p, MREMAP_MAYMOVE|MREMAP_FIXED, @5)
        """),
]


def test_catalogue_buckets_stay_distinct() -> None:
    titles = [title for _, _, title in CASES]
    assert len(set(titles)) == len(titles), "two injections would share a bucket"


def test_every_catalogue_entry_has_a_case() -> None:
    assert {name for name, _, _ in CASES} == set(CATALOGUE)
    for cls in CATALOGUE.values():
        assert cls.description and cls.source, cls.name


@pytest.mark.parametrize(("name", "text", "title"), CASES, ids=[c[0] for c in CASES])
def test_injection_is_detected(name: str, text: str, title: str) -> None:
    if name in HUGE_CASES and ARENA.pages < HUGE_PAGES:
        pytest.skip("needs the huge arena: tests/test_huge_arena.py runs it there")
    sizes = 1 << 4 if name in MTHP_CASES else 1 << 9 if name in HUGE_CASES else 0
    with mthp_sizes(sizes) if sizes else contextlib.nullcontext():
        if name in HUGE_CASES and not probe().mthp_orders >> 9 & 1:
            pytest.skip("no PMD-sized THP for advised VMAs here (before 6.18, or THP off)")
        if name in MTHP_CASES and not probe().mthp_orders:
            pytest.skip("no mTHP here (a kernel before 6.18, or no hugepages-64kB)")
        if name in TMPFILE_CASES and not probe().disk_ra_pages:
            pytest.skip("no directory for tmpfile's files (docs/SEMANTICS.md §21)")
        program = parse(textwrap.dedent(text))
        assert check(Supervisor(executor_path()), program).divergences == []
        report = check(Supervisor(executor_path(), injections=[load(name)]), program)
    assert report.divergences, f"{name} went unnoticed"
    assert report.divergences[0].title == title


def test_fallback_marks_the_divergence(monkeypatch: pytest.MonkeyPatch) -> None:
    """A divergence in a program during which the mTHP fallback counters moved is marked
    (check/program.py): here the counters are made to move, and the injection makes the
    fault map fewer pages than the model, as a real fallback would."""
    import fuzzer.check.program as checking
    reads = iter(range(100))
    monkeypatch.setattr(checking, "fallbacks", lambda orders: next(reads))
    name, text, title = CASES[0]
    with mthp_sizes(1 << 4):
        if not probe().mthp_orders:
            pytest.skip("no mTHP here (a kernel before 6.18, or no hugepages-64kB)")
        report = check(Supervisor(executor_path(), injections=[load(name)]),
                       parse(textwrap.dedent(text)))
    assert [d.title for d in report.divergences][:1] == [title + checking.FELL_BACK]
    assert "anon_fault_fallback moved" in report.divergences[0].observed


@pytest.mark.parametrize(("name", "text"), SHORT_OF_ONE, ids=[c[0] for c in SHORT_OF_ONE])
def test_deep_injection_needs_every_precondition(name: str, text: str) -> None:
    assert CATALOGUE[name].deep
    program = parse(textwrap.dedent(text))
    report = check(Supervisor(executor_path(), injections=[load(name)]), program)
    assert report.divergences == [], report.divergences[0].title


PLUGIN = '''
from fuzzer.inject import Injection, Skip

class no_munmap(Injection):
    description = "munmap does nothing"
    source = "a test"

    def on_entry(self, call):
        return Skip(0) if call.name == "munmap" else None

class raises(Injection):
    def on_exit(self, call, result):
        raise KeyError("boom")

class _Base(Injection):
    """A helper base: private, so not an injection."""
'''

UNMAP = f"""
mmap(@0, 2p, {RW}, {AP}, -1, 0)
munmap(@0, 2p)
"""


def test_plugin_outside_the_project(tmp_path: Path) -> None:
    plugin = tmp_path / "myplugin.py"
    plugin.write_text(PLUGIN)
    program = tmp_path / "p.prog"
    program.write_text(UNMAP)
    result = runner.invoke(app, ["exec", str(program), "--inject", f"{plugin}:no_munmap"])
    assert result.exit_code == 1, result.output
    assert "mapping: munmap left pages mapped" in result.output


@pytest.mark.parametrize(("spec", "message"), [
    ("{dir}/missing.py:x", "does not exist"),
    ("{dir}/broken.py:x", "failed to load: ModuleNotFoundError"),
    ("{dir}/myplugin.py:nothing",
     "defines no injection named 'nothing' (injections in it: no_munmap, raises)"),
    ("{dir}/myplugin.py:_Base", "defines no injection named '_Base'"),
    ("{dir}/myplugin.py", "a plug-in is named as FILE.py:NAME (injections in it: no_munmap, "
     "raises)"),
    ("{dir}/myplugin.py:raises", "injection raises raised in on_exit: KeyError"),
    ("no-such-injection", "unknown injection 'no-such-injection'"),
])
def test_broken_plugin_is_one_line(tmp_path: Path, spec: str, message: str) -> None:
    (tmp_path / "myplugin.py").write_text(PLUGIN)
    (tmp_path / "broken.py").write_text("import no_such_module_anywhere\n")
    program = tmp_path / "p.prog"
    program.write_text(UNMAP)
    before = _children()
    result = runner.invoke(app, ["exec", str(program), "--inject", spec.format(dir=tmp_path)])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    lines = [ln for ln in result.output.splitlines() if ln.startswith("mmfuzz: error:")]
    assert len(lines) == 1 and message in lines[0], result.output
    assert _children() == before


def test_injection_error_type() -> None:
    with pytest.raises(InjectionError):
        load("nope")


def _children() -> set[int]:
    me, kids = os.getpid(), set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == me:
                        kids.add(int(entry))
            except (OSError, IndexError, ValueError):
                continue
    return kids


REPRO_C = r"""
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

/* Exits 1 if MAP_POPULATE left a page absent, in the parent or in a forked child. */
static int absent(void)
{
    char *p = mmap(0, 4 * 4096, PROT_READ | PROT_WRITE,
               MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    int fd = open("/proc/self/pagemap", O_RDONLY), n = 0;
    uint64_t w;

    for (int i = 0; i < 4; i++) {
        pread(fd, &w, 8, ((uintptr_t)p / 4096 + i) * 8);
        n += !(w >> 63);
    }
    close(fd);
    return n;
}

int main(void)
{
    pid_t child = fork();
    int status;

    if (child == 0)
        return absent() ? 3 : 0;
    waitpid(child, &status, 0);
    if (WEXITSTATUS(status))
        return WEXITSTATUS(status);
    return absent() ? 1 : 0;
}
"""


@pytest.fixture(scope="module")
def repro(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cc = shutil.which("cc") or shutil.which("gcc")
    assert cc is not None
    work = tmp_path_factory.mktemp("repro")
    (work / "repro.c").write_text(REPRO_C)
    subprocess.run([cc, "-Wall", "-static", "-o", str(work / "repro"), str(work / "repro.c")],
                   check=True)
    return work / "repro"


def test_inject_command_follows_forks_and_passes_status(repro: Path) -> None:
    assert subprocess.run([str(repro)]).returncode == 0
    plain = runner.invoke(app, ["inject", "--", str(repro)])
    assert plain.exit_code == 0
    # The child (forked first) sees the bug first: its status 3 comes through.
    buggy = runner.invoke(app, ["inject", "--inject", "populate-needs-lock", "--", str(repro)])
    assert buggy.exit_code == 3
    status = runner.invoke(app, ["inject", "--", "/bin/sh", "-c", "exit 7"])
    assert status.exit_code == 7


def test_inject_lists_the_catalogue() -> None:
    result = runner.invoke(app, ["inject", "--list"])
    assert result.exit_code == 0
    for name in CATALOGUE:
        assert name in result.output


def test_inject_list_marks_the_deep_ones() -> None:
    result = runner.invoke(app, ["inject", "--list"])
    assert result.exit_code == 0
    for name, cls in CATALOGUE.items():
        assert (f"{name} (deep)" in result.output) == cls.deep, name
    assert sum(cls.deep for cls in CATALOGUE.values()) >= 6


def test_inject_list_marks_the_huge_arena_ones() -> None:
    result = runner.invoke(app, ["inject", "--list"])
    for name, cls in CATALOGUE.items():
        assert (f"{name} (huge arena)" in result.output) == cls.huge, name
    assert {n for n, c in CATALOGUE.items() if c.huge} == HUGE_CASES


def test_bench_detect_of_a_huge_arena_injection_elsewhere_is_one_line() -> None:
    """Nothing in the 64-page arena can meet a PMD: measuring such an injection there is
    refused, and the default list leaves them out."""
    if ARENA.pages >= HUGE_PAGES:
        pytest.skip("this process has the huge arena")
    result = runner.invoke(app, ["bench", "detect", "--inject", "huge-split-drops-rest",
                                 "--runs", "1", "--time", "1"])
    assert result.exit_code == 2
    assert "huge-split-drops-rest needs the huge arena: run with MMFUZZ_ARENA=huge" \
        in result.output
    assert "Traceback" not in result.output


def test_bench_detect_deep_with_inject_is_one_line() -> None:
    result = runner.invoke(app, ["bench", "detect", "--deep", "--inject", "munlock-skipped"])
    assert result.exit_code == 2
    assert "--deep and --inject do not go together" in result.output
    assert "Traceback" not in result.output


@pytest.mark.slow
def test_bench_detect_runs_start_from_nothing_stored(tmp_path: Path) -> None:
    """Each run of `bench detect` is a campaign of its own on one database, and starts
    fresh: planted the corpus and minimized bucket of the run before, it replayed the
    program that run found."""
    db = f"sqlite:///{tmp_path / 'd.sqlite'}"
    result = runner.invoke(app, ["bench", "detect", "--runs", "2", "--time", "60",
                                 "--no-baseline", "--inject", "munlock-skipped", "--db", db])
    assert result.exit_code == 0, result.output
    assert "2/2" in result.output
    campaigns = open_store(db, create=False).campaigns()
    assert len(campaigns) == 2 and all(c.options["fresh"] is True for c in campaigns)
