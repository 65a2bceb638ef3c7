"""Exports: syzkaller lines (golden), program text, the crashes/ folder, and C reproducers.

The C reproducer must compile with `cc -Wall -Werror -static` for every kind,
and, on this (correct) kernel, exit 0 when run plainly and 1 when run under
`mmfuzz inject` with the catalogue injection whose divergence it reproduces.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

from fuzzer.oracle.compare import KINDS
from fuzzer.prog import ARENA_BASE, format_call, parse
from fuzzer.reduce.csource import c_source
from fuzzer.reduce.cwidth import fit, too_wide
from fuzzer.reduce.export import export, finding_of, slug, write_bucket_folder
from fuzzer.reduce.finding import ExportError, Finding
from fuzzer.reduce.syz import SYZ_BASE, syz_call
from fuzzer.store import BucketDetail, SampleRow

RW = "PROT_READ|PROT_WRITE"
AP = "MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED"
MMFUZZ = Path(sys.executable).with_name("mmfuzz")
CC = shutil.which("cc") or shutil.which("gcc")

SYZ = [
    (f"mmap(@0, 4p, {RW}, {AP}, -1, 0)",
     "mmap(&(0x7f0000000000/0x4000)=nil, 0x4000, 0x3, 0x32, 0xffffffffffffffff, 0x0)"),
    (f"mmap(@2, 1p+5, PROT_READ, {AP}|MAP_POPULATE|MAP_LOCKED, -1, 4096)",
     "mmap(&(0x7f0000002000/0x2000)=nil, 0x1005, 0x1, 0xa032, 0xffffffffffffffff, 0x1000)"),
    ("mlock(@1+5, 2p)", "mlock(&(0x7f0000001005/0x2000)=nil, 0x2000)"),
    ("mlock2(@0, 2p, MLOCK_ONFAULT)", "mlock2(&(0x7f0000000000/0x2000)=nil, 0x2000, 0x1)"),
    ("munlock(@3, 1p)", "munlock(&(0x7f0000003000/0x1000)=nil, 0x1000)"),
    ("mprotect(@0, 3p, PROT_NONE)", "mprotect(&(0x7f0000000000/0x3000)=nil, 0x3000, 0x0)"),
    ("munmap(@63, 1p)", "munmap(&(0x7f000003f000/0x1000)=nil, 0x1000)"),
    ("mremap(@0, 2p, 4p, MREMAP_MAYMOVE|MREMAP_FIXED, @8)",
     "mremap(&(0x7f0000000000/0x2000)=nil, 0x2000, 0x4000, 0x3, &(0x7f0000008000/0x4000)=nil)"),
    ("madvise(@0, 2p, MADV_DONTNEED)", "madvise(&(0x7f0000000000/0x2000)=nil, 0x2000, 0x4)"),
    ("mlockall(MCL_CURRENT|MCL_ONFAULT)", "mlockall(0x5)"),
    ("munlockall()", "munlockall()"),
    ("tmpfile()", "openat(0xffffffffffffff9c, &(0x7f0001000000)='/var/tmp\\x00', 0x410002, "
                  "0x180)"),
    ("mlock(@0, 0xffffffffffffffff)", "mlock(&(0x7f0000000000/0x1000)=nil, 0xffffffffffffffff)"),
    ("touch(@1, write)", "# touch(@1, write): a page access, no syscall"),
    ("prlimit_memlock(2p)", "prlimit64(0x0, 0x8, &(0x7f0001000000)={0x2000, 0x2000}, 0x0)"),
    ("process_madvise(p0, @1, 2p, @4, 100, 2, MADV_PAGEOUT, 0)",
     "r0 = getpid()\nr1 = pidfd_open(r0, 0x0)\nprocess_madvise(r1, &(0x7f0001000000)="
     "[{&(0x7f0000001000/0x2000)=nil, 0x2000}, {&(0x7f0000004000/0x1000)=nil, 0x64}], 0x2, "
     "0x15, 0x0)\nclose(r1)"),
]


@pytest.mark.parametrize(("text", "line"), SYZ, ids=[t.split("(")[0] + str(i)
                                                     for i, (t, _) in enumerate(SYZ)])
def test_syz_golden(text: str, line: str) -> None:
    assert syz_call(parse(text).calls[0]) == line


def _finding(text: str, step: int = -1, kind: str = "presence", title: str = "t: x") -> Finding:
    program = parse(textwrap.dedent(text))
    return Finding(program, step % len(program), title, kind, "@0-3 rw-p AAAA", "@0-3 rw-p ....")


def test_syz_header_names_the_arena() -> None:
    text = export(_finding(f"mmap(@0, 4p, {RW}, {AP}|MAP_POPULATE, -1, 0)\n"), "syz")
    head = [ln for ln in text.splitlines() if ln.startswith("#")]
    assert any(f"{ARENA_BASE:#x}" in ln for ln in head)  # mmfuzz's arena ...
    assert any(f"{SYZ_BASE:#x}" in ln for ln in head)  # ... is not syzkaller's
    assert text.splitlines()[-1].startswith("mmap(&(0x7f0000000000/0x4000)=nil")


def test_prog_export_runs_as_it_is() -> None:
    finding = _finding(f"mmap(@0, 4p, {RW}, {AP}|MAP_POPULATE, -1, 0)\ntouch(@1, write)\n", 0)
    text = export(finding, "prog")
    assert parse(text) == finding.program
    assert text.startswith("# t: x\n# kind presence, diverging at step 0: mmap(@0, 4p")
    assert "# observed: @0-3 rw-p ....\n" in text


def test_bad_step_and_kind() -> None:
    finding = _finding("munlockall()\n")
    with pytest.raises(ExportError, match="step 3"):
        export(Finding(finding.program, 3, "t", "lock"), "c")
    with pytest.raises(ExportError, match="kind 'nonsense'"):
        c_source(Finding(finding.program, 0, "t", "nonsense"))
    with pytest.raises(ExportError, match="unknown format"):
        export(finding, "pdf")


def test_slug() -> None:
    title = "presence: mmap(PRIVATE|ANONYMOUS|POPULATE) left pages not anonymous"
    assert slug(title) == "presence-mmap-private-anonymous-populate-left-pages-not-anonymous"
    long = slug("result: " + "mremap(MAYMOVE|FIXED|DONTUNMAP) " * 4)
    assert len(long) <= 80 and not long.endswith("-")
    assert slug("***") == "bucket"


# ---------------------------------------------------------------- crashes/


def _bucket(minimized: str | None = None) -> BucketDetail:
    when = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    sample = SampleRow(
        program_text=f"mmap(@2, 4p, {RW}, {AP}|MAP_POPULATE, -1, 0)\ntouch(@3, write)\n",
        program_hash="0123456789abcdef", step=0, expected="@2-5 rw-p AAAA",
        observed="@2-5 rw-p ....", kernel="6.18.0", campaign_id=None, created=when,
        injections=("populate-needs-lock",))
    return BucketDetail(
        id=7, title="presence: mmap(PRIVATE|ANONYMOUS|POPULATE) left pages not anonymous",
        kind="presence", first_seen=when, last_seen=when, count=3, status="new", note=None,
        reliability_hits=9 if minimized else None, reliability_runs=10 if minimized else None,
        original_calls=2 if minimized else None, minimized_calls=1 if minimized else None,
        samples=[sample], minimized_program_text=minimized,
        minimized_program_hash="fedcba9876543210" if minimized else None,
        minimized_step=0 if minimized else None)


def test_bucket_folder(tmp_path: Path) -> None:
    minimized = f"mmap(@0, 1p, {RW}, MAP_PRIVATE|MAP_ANONYMOUS|MAP_POPULATE, -1, 0)\n"
    folder = write_bucket_folder(tmp_path / "crashes", _bucket(minimized))
    assert folder.name == "presence-mmap-private-anonymous-populate-left-pages-not-anonymous-7"
    assert sorted(p.name for p in folder.iterdir()) == [
        "minimized.prog", "original.prog", "report.txt", "repro.c"]
    assert parse((folder / "minimized.prog").read_text()).text() == minimized
    assert "touch(@3, write)" in (folder / "original.prog").read_text()
    assert "sys(SYS_mmap, ARENA, 0x1000UL" in (folder / "repro.c").read_text()
    report = (folder / "report.txt").read_text()
    for want in ("kernel:       6.18.0", "9/10 runs", "2 calls -> 1", "count:        3",
                 "populate-needs-lock", "expected:   @2-5 rw-p AAAA",
                 "first seen:   2025-01-02 03:04:05"):
        assert want in report, want


def test_bucket_folder_without_minimized(tmp_path: Path) -> None:
    folder = write_bucket_folder(tmp_path, _bucket())
    assert not (folder / "minimized.prog").exists()
    assert "not minimized" in (folder / "report.txt").read_text()
    assert "not measured" in (folder / "report.txt").read_text()
    assert finding_of(_bucket()).step == 0


def test_bucket_folder_unwritable(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(OSError):
        write_bucket_folder(tmp_path / "file", _bucket())


# ---------------------------------------------------------------- C

# One program per kind: the check for that kind, on a kernel that agrees, exits 0.
AGREEING = [
    ("presence", f"mmap(@0, 4p, {RW}, {AP}|MAP_POPULATE, -1, 0)\ntouch(@5, read)\n", 0),
    ("lock", f"mmap(@0, 2p, {RW}, {AP}, -1, 0)\nmlock2(@0, 2p, MLOCK_ONFAULT)\n", 1),
    ("lock", f"mmap(@0, 2p, {RW}, {AP}, -1, 0)\nmlockall(MCL_CURRENT|MCL_ONFAULT)\n", 1),
    ("fork-flags", f"mmap(@0, 2p, {RW}, {AP}, -1, 0)\nmadvise(@1, 1p, MADV_WIPEONFORK)\n", 1),
    ("seal", f"mmap(@0, 2p, {RW}, {AP}, -1, 0)\nmseal(@1, 1p, 0)\n", 1),
    ("vmlck", f"mmap(@0, 2p, {RW}, {AP}|MAP_LOCKED, -1, 0)\nmunlock(@0, 1p)\n", 1),
    ("mapping", f"mmap(@0, 2p, {RW}, {AP}, -1, 0)\nmmap(@0, 1p, {RW}, MAP_PRIVATE|"
                f"MAP_ANONYMOUS|MAP_FIXED_NOREPLACE, -1, 0)\n", 1),
    ("prot", f"mmap(@0, 2p, {RW}, {AP}, -1, 0)\nmprotect(@1, 1p, PROT_READ)\n", 1),
    ("rss", f"mmap(@0, 3p, {RW}, MAP_SHARED|MAP_ANONYMOUS|MAP_FIXED, -1, 0)\n"
            "touch(@1, write)\n", 1),
    ("locked", f"mmap(@0, 2p, {RW}, {AP}|MAP_LOCKED, -1, 0)\n", 0),
    ("mlocked", f"mmap(@0, 4p, {RW}, {AP}|MAP_LOCKED, -1, 0)\nmunlock(@1, 2p)\n", 1),
    ("vma", f"mmap(@0, 4p, {RW}, {AP}, -1, 0)\nmlock(@1, 2p)\n", 1),
    ("result", f"mmap(@0, 2p, {RW}, {AP}, -1, 0)\nmlock(@0, 3p)\n", 1),
    ("result", f"mmap(@0, 2p, {RW}, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)\n"
               f"mmap(@0, 2p, {RW}, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)\n", 1),
    ("signal", f"mmap(@0, 1p, PROT_READ, {AP}, -1, 0)\ntouch(@0, write)\ntouch(@3, read)\n", 2),
    ("hang", f"mmap(@0, 1p, {RW}, {AP}, -1, 0)\n", 0),
    ("crash", "touch(@0, read)\n", 0),
    ("result", f"prlimit_memlock(1p)\ndrop_cap_ipc_lock()\n"
               f"mmap(@0, 2p, {RW}, {AP}|MAP_LOCKED, -1, 0)\n", 2),
    # memfds: numbered from 0 as in the executor (the reproducer closes its stdio first)
    ("presence", f"memfd_create()\nftruncate(0, 2p)\n"
                 f"mmap(@0, 4p, {RW}, MAP_PRIVATE|MAP_FIXED|MAP_POPULATE, 0, 0)\n", 2),
    ("result", "memfd_create()\nmemfd_create()\nclose(0)\nftruncate(0, 1p)\n", 3),
    ("result", f"mmap(@0, 1p, {RW}, MAP_SHARED|MAP_FIXED, 1, 0)\n", 0),
    # what MADV_PAGEOUT reclaims depends on the CPU each call ran on (a fresh page waits
    # in its CPU's batch): the reproducer pins itself, as the executor does
    ("presence", f"mmap(@0, 2p, {RW}, MAP_SHARED|MAP_ANONYMOUS|MAP_FIXED, -1, 0)\n"
                 "touch(@0, read)\nmadvise(@0, 2p, MADV_PAGEOUT)\n", 2),
    # process_madvise on the caller itself: its pidfd opened and closed around the call,
    # with a memfd open (the pidfd takes the next free number, and gives it back)
    ("presence", f"memfd_create()\nmmap(@0, 3p, {RW}, {AP}|MAP_POPULATE, -1, 0)\n"
                 "process_madvise(p0, @0, 1p, @2, 1p, 2, MADV_DONTNEED, 0)\n", 2),
    ("result", f"mmap(@0, 2p, {RW}, {AP}|MAP_POPULATE, -1, 0)\n"
               "process_madvise(p0, @0, 1p, @3, 1p, 2, MADV_COLD, 0)\n", 1),
    # a tmpfile in TMPFILE_DIR (ext4 here): the miss reads ahead, the retry maps the
    # window; an unaligned shrink leaves a folio unread that fault-around skips
    ("presence", "memfd_create()\ntmpfile()\nftruncate(1, 4p)\nftruncate(1, 3p+5)\n"
                 "mmap(@0, 4p, PROT_READ, MAP_SHARED|MAP_FIXED, 1, 0)\ntouch(@1, read)\n", 5),
]


def test_every_kind_has_a_case() -> None:
    assert {kind for kind, _, _ in AGREEING} == set(KINDS)


def _build(tmp: Path, finding: Finding) -> Path:
    assert CC is not None, "no C compiler"
    source = tmp / "repro.c"
    source.write_text(export(finding, "c"))
    proc = subprocess.run([CC, "-Wall", "-Werror", "-static", "-o", str(tmp / "repro"),
                           str(source)], capture_output=True, text=True)
    assert proc.returncode == 0 and not proc.stderr, proc.stderr
    return tmp / "repro"


@pytest.mark.parametrize(("kind", "text", "step"), AGREEING,
                         ids=[f"{k}{i}" for i, (k, _, _) in enumerate(AGREEING)])
def test_c_compiles_without_warnings(tmp_path: Path, kind: str, text: str, step: int) -> None:
    source = export(_finding(text, step, kind), "c")
    unwrapped = source.replace("\n\t * ", " ")  # comments wrap at 72 columns
    for i, line in enumerate(parse(text).text().splitlines()[: step + 1]):
        assert f"/* {i}: {line}" in unwrapped  # one comment per call: its program line
    assert "\tif (pin_to_one_cpu() != 0) {" in source  # the executor's one CPU
    _build(tmp_path, _finding(text, step, kind))


@pytest.mark.kernel
@pytest.mark.parametrize(("kind", "text", "step"), AGREEING,
                         ids=[f"{k}{i}" for i, (k, _, _) in enumerate(AGREEING)])
def test_c_agrees_on_this_kernel(tmp_path: Path, kind: str, text: str, step: int) -> None:
    binary = _build(tmp_path, _finding(text, step, kind))
    proc = subprocess.run([str(binary)], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stdout
    assert "not reproduced" in proc.stdout


# (injection, program, kind): the C of the divergence the injection causes.
INJECTED = [
    ("populate-needs-lock", f"mmap(@0, 4p, {RW}, {AP}|MAP_POPULATE, -1, 0)\n"),
    ("mlock2-onfault-ignored", f"mmap(@0, 2p, {RW}, {AP}, -1, 0)\n"
                               "mlock2(@0, 2p, MLOCK_ONFAULT)\n"),
    ("munlock-skipped", f"mmap(@0, 1p, PROT_NONE, {AP}|MAP_LOCKED, -1, 0)\nmunlock(@0, 1p)\n"),
    ("mlockall-onfault-accepted", "mlockall(MCL_ONFAULT)\n"),
    ("mmap-len0-accepted", f"mmap(@0, 0, {RW}, {AP}|MAP_POPULATE, -1, 0)\n"),
    ("fixed-noreplace-as-hint", f"mmap(@0, 1p, PROT_NONE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)\n"
                                f"mmap(@0, 1p, {RW}, MAP_PRIVATE|MAP_ANONYMOUS|"
                                "MAP_FIXED_NOREPLACE, -1, 0)\n"),
    ("mremap-grow-unlocked", f"mmap(@0, 2p, PROT_NONE, {AP}|MAP_LOCKED, -1, 0)\n"
                             "mremap(@0, 2p, 3p, 0, @0)\n"),
    ("mprotect-locked-no-cow", f"mmap(@0, 1p, PROT_READ, {AP}|MAP_LOCKED, -1, 0)\n"
                               f"mprotect(@0, 1p, {RW})\n"),
]


@pytest.mark.slow
@pytest.mark.kernel
@pytest.mark.parametrize(("name", "text"), INJECTED, ids=[n for n, _ in INJECTED])
def test_c_reproduces_only_under_the_injection(tmp_path: Path, name: str, text: str) -> None:
    from fuzzer.check import check
    from fuzzer.executor import executor_path
    from fuzzer.inject import load
    from fuzzer.trace import Supervisor

    program = parse(text)
    report = check(Supervisor(executor_path(), injections=[load(name)]), program)
    assert report.divergences, f"{name} went unnoticed"
    d = report.divergences[0]
    binary = _build(tmp_path, Finding(program, d.step, d.title, d.kind, d.expected, d.observed))
    plain = subprocess.run([str(binary)], capture_output=True, text=True, timeout=30)
    assert plain.returncode == 0, plain.stdout
    injected = subprocess.run([str(MMFUZZ), "inject", "--inject", name, "--", str(binary)],
                              capture_output=True, text=True, timeout=60)
    assert injected.returncode == 1, injected.stdout + injected.stderr
    assert f"reproduced: {d.title}" in injected.stdout


@pytest.mark.parametrize(("kind", "text", "step"), AGREEING,
                         ids=[f"{k}-{i}" for i, (k, _, _) in enumerate(AGREEING)])
def test_c_fits_in_a_mail(kind: str, text: str, step: int) -> None:
    """72 columns, tabs at 8: the C goes inline into `export --format report`."""
    title = f"{kind}: a title long enough to need a second line in the C source " * 2
    source = c_source(Finding(parse(text), step, title, kind), 12345)
    assert too_wide(source) == [], source


def test_a_long_literal_is_cut_at_one_indent() -> None:
    """The huge arena's expected cells run to a thousand letters: each piece of the
    literal goes one tab in from the line, not one more per piece (which ran out of room
    after six and left the rest one line of 900 columns)."""
    line = "\t\t\texpect(" + '"' + "A" * 1024 + '"' + ");"
    pieces = fit(line).splitlines()
    assert too_wide("\n".join(pieces)) == []
    assert {p[: len(p) - len(p.lstrip())] for p in pieces[1:]} == {"\t\t\t\t"}
    assert "".join(p.strip().strip('");').removeprefix("expect(").strip('"')
                   for p in pieces) == "A" * 1024


# ---------------------------------------------------------------- C, programs that fork

# (kind, program, step, title, where the check runs): the check runs in the process the
# title names (the caller; "in the child": the fork's; "in another process": every other
# live one), against the model's state of that process.
FORKED = [
    # the UML 6.1 DONTFORK bug's program: the child reads its parent's DONTFORK page
    ("signal", f"mmap(@0, 2p, {RW}, {AP}, -1, 0)\ntouch(@0, write)\n"
               "madvise(@0, 1p, MADV_DONTFORK)\nfork()\np1: touch(@0, read)\n", 4,
     "signal: touch(read) raised no signal instead of SIGSEGV/MAPERR", [1]),
    ("presence", f"mmap(@0, 2p, {RW}, {AP}|MAP_POPULATE, -1, 0)\nfork()\n", 1,
     "presence: fork left pages not shared anonymous in the child", [1]),
    ("presence", f"mmap(@0, 2p, {RW}, {AP}|MAP_POPULATE, -1, 0)\nfork()\n"
                 "p1: touch(@0, write)\n", 2,
     "presence: touch(write) left pages not anonymous in another process", [0]),
    # an exit: the next process waits until the exited one is gone (its pages are
    # exclusive again)
    ("presence", f"mmap(@0, 2p, {RW}, {AP}|MAP_POPULATE, -1, 0)\nfork()\np1: exit()\n", 2,
     "presence: exit left pages not anonymous in another process", [0]),
    ("presence", f"mmap(@0, 2p, {RW}, {AP}|MAP_POPULATE, -1, 0)\nfork()\np1: exit()\n"
                 "touch(@1, write)\n", 3, "presence: touch(write) left pages absent", [0]),
    # three processes, a divergence "in another process": checked in both others
    ("presence", f"mmap(@0, 2p, {RW}, {AP}|MAP_POPULATE, -1, 0)\nfork()\nfork()\n"
                 "madvise(@0, 1p, MADV_DONTNEED)\n", 3,
     "presence: madvise(DONTNEED) left pages absent in another process", [1, 2]),
    # a grandchild: p1 forks p2
    ("presence", f"mmap(@0, 1p, {RW}, {AP}|MAP_POPULATE, -1, 0)\nfork()\np1: fork()\n"
                 "p2: touch(@0, write)\n", 3, "presence: touch(write) left pages absent", [2]),
    ("result", f"mmap(@0, 2p, {RW}, {AP}, -1, 0)\nfork()\np1: mlock(@0, 3p)\n", 2,
     "result: mlock returned 0 instead of -ENOMEM", [1]),
    ("lock", f"mmap(@0, 2p, {RW}, {AP}, -1, 0)\nmlock(@0, 2p)\nfork()\n", 2,
     "lock: fork left pages locked in the child", [1]),
    ("lock", f"mmap(@0, 2p, {RW}, {AP}, -1, 0)\nmlock(@0, 2p)\nfork()\n"
             "p1: munlock(@0, 1p)\n", 3, "lock: munlock left pages unlocked in another process",
     [0]),
    # mlockall: the check sees the reproducer's own VMAs locked in p0, not in the child
    ("lock", f"mmap(@0, 2p, {RW}, {AP}, -1, 0)\nmlockall(MCL_CURRENT)\nfork()\n", 2,
     "lock: fork left pages locked in the child", [1]),
    ("lock", f"mmap(@0, 2p, {RW}, {AP}, -1, 0)\nmlockall(MCL_CURRENT)\nfork()\n"
             "touch(@1, read)\n", 3, "lock: touch(read) left pages unlocked", [0]),
    # PG_mlocked: the child's copy is not mlocked, the frames it shares with the locked
    # parent are not judged
    ("mlocked", f"mmap(@0, 2p, {RW}, {AP}|MAP_LOCKED, -1, 0)\nfork()\np1: touch(@0, write)\n",
     2, "mlocked: touch(write) left pages mlocked that no locked VMA maps", [1]),
    ("vmlck", f"mmap(@0, 2p, {RW}, {AP}|MAP_LOCKED, -1, 0)\nfork()\n", 1,
     "vmlck: fork made VmLck differ from the size of locked VMAs in the child", [1]),
    ("fork-flags", f"mmap(@0, 3p, {RW}, {AP}, -1, 0)\nmadvise(@1, 1p, MADV_WIPEONFORK)\n"
                   "madvise(@2, 1p, MADV_DONTFORK)\nfork()\n", 3,
     "fork-flags: fork left pages dc in the child", [1]),
    ("prot", f"mmap(@0, 2p, {RW}, {AP}, -1, 0)\nfork()\np1: mprotect(@1, 1p, PROT_READ)\n",
     2, "prot: mprotect left pages rw-p", [1]),
    ("vma", f"mmap(@0, 4p, {RW}, {AP}, -1, 0)\nfork()\np1: mlock(@1, 2p)\n", 2,
     "vma: mlock left VMAs merged", [1]),
    # memfds are numbered from 0 in every process; the pipes sit above 1000
    ("presence", f"memfd_create()\nftruncate(0, 2p)\n"
                 f"mmap(@0, 2p, {RW}, MAP_SHARED|MAP_FIXED, 0, 0)\ntouch(@0, write)\n"
                 "fork()\np1: memfd_create()\np1: ftruncate(1, 1p)\n"
                 f"p1: mmap(@4, 1p, {RW}, MAP_SHARED|MAP_FIXED|MAP_POPULATE, 1, 0)\n"
                 "p1: touch(@0, read)\n", 8, "presence: touch(read) left pages absent", [1]),
]
FORKED_IDS = [f"{k}{i}" for i, (k, *_) in enumerate(FORKED)]


def _forked(text: str, step: int, kind: str, title: str) -> Finding:
    return Finding(parse(text), step, title, kind)


@pytest.mark.parametrize(("kind", "text", "step", "title", "where"), FORKED, ids=FORKED_IDS)
def test_forked_c_checks_where_the_divergence_is(tmp_path: Path, kind: str, text: str,
                                                 step: int, title: str,
                                                 where: list[int]) -> None:
    source = export(_forked(text, step, kind, title), "c")
    assert too_wide(source) == [], source
    names = " and ".join(f"p{n}" for n in where)
    assert f"The check runs in {'each of ' if len(where) > 1 else ''}" in source
    unwrapped = " ".join(source.split())
    assert f" {', '.join(f'p{n}' for n in where)}" in unwrapped, names
    program = parse(text)
    for i, call in enumerate(program.calls[: step + 1]):
        assert f"/* {i}: {format_call(call)}" in source.replace("\n\t * ", " ")
        if call.name not in ("fork", "exit"):
            assert f"\tif (me == {call.proc}) {{\n\t\tturn();\n" in source
    checks = source.count("done(report(check")
    assert checks == len(where)
    if len(where) > 1:
        assert all(f"#define check check_p{n}\n" in source for n in where)
    _build(tmp_path, _forked(text, step, kind, title))


@pytest.mark.kernel
@pytest.mark.parametrize(("kind", "text", "step", "title", "where"), FORKED, ids=FORKED_IDS)
def test_forked_c_agrees_on_this_kernel(tmp_path: Path, kind: str, text: str, step: int,
                                        title: str, where: list[int]) -> None:
    from fuzzer.check import check
    from fuzzer.executor import executor_path
    from fuzzer.trace import Supervisor

    report = check(Supervisor(executor_path()), parse(text))
    assert not report.divergences, report.divergences  # the model is right here
    binary = _build(tmp_path, _forked(text, step, kind, title))
    proc = subprocess.run([str(binary)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout
    assert proc.stdout.count("not reproduced") == len(where), proc.stdout
    assert _left_running(binary) == []


def _left_running(binary: Path) -> list[int]:
    """Processes still running `binary` (none may be: the first one kills and reaps)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and (proc / "exe").resolve() == binary.resolve():
                found.append(int(proc.name))
        except OSError:
            continue
    return found


FORK_INJECTED = [
    ("guard-dropped-on-fork", f"mmap(@0, 2p, {RW}, {AP}, -1, 0)\n"
                              "madvise(@1, 1p, MADV_GUARD_INSTALL)\nfork()\n"),
    ("fork-inherits-mcl-future", f"mmap(@0, 1p, {RW}, {AP}, -1, 0)\nmlockall(MCL_FUTURE)\n"
                                 f"fork()\np1: mmap(@2, 2p, {RW}, {AP}, -1, 0)\n"),
]


@pytest.mark.slow
@pytest.mark.kernel
@pytest.mark.parametrize(("name", "text"), FORK_INJECTED, ids=[n for n, _ in FORK_INJECTED])
def test_forked_c_reproduces_only_under_the_injection(tmp_path: Path, name: str,
                                                      text: str) -> None:
    test_c_reproduces_only_under_the_injection(tmp_path, name, text)
    assert _left_running(tmp_path / "repro") == []


@pytest.mark.parametrize(("kind", "text", "step", "title", "match"), [
    ("rss", f"mmap(@0, 2p, {RW}, {AP}|MAP_POPULATE, -1, 0)\nfork()\n", 1,
     "rss: fork x in the child", "cannot check Rss"),
    ("hang", f"mmap(@0, 2p, {RW}, {AP}, -1, 0)\nfork()\n", 1, "hang: fork x", "a hang"),
    ("result", f"mmap(@0, 2p, {RW}, {AP}, -1, 0)\nfork()\n", 1, "result: fork x",
     "fork's result"),
    ("presence", f"mmap(@0, 2p, {RW}, {AP}, -1, 0)\nfork()\n"
                 "p1: process_madvise(p0, @0, 1p, @2, 1p, 2, MADV_DONTNEED, 0)\n", 2,
     "presence: x in another process", "process_madvise on another process"),
    ("presence", f"mmap(@0, 2p, {RW}, {AP}, -1, 0)\nfork()\np1: touch(@0, read)\n", 2,
     "presence: x in the child", "'in the child' at a call other than fork"),
    ("presence", f"mmap(@0, 2p, {RW}, {AP}, -1, 0)\nfork()\np1: exit()\n", 2,
     "presence: exit x", "just exited"),
], ids=["rss", "hang", "fork-result", "pmadvise-other", "child-not-fork", "exited"])
def test_forked_c_refuses(kind: str, text: str, step: int, title: str, match: str) -> None:
    with pytest.raises(ExportError, match=match):
        c_source(_forked(text, step, kind, title))


def test_forked_syz_stays_refused() -> None:
    finding = _forked(f"mmap(@0, 2p, {RW}, {AP}, -1, 0)\nfork()\n", 1, "presence", "t: x")
    with pytest.raises(ExportError, match="--format prog"):
        export(finding, "syz")


@pytest.mark.uml
@pytest.mark.slow
def test_forked_c_reproduces_the_uml_dontfork_bug(tmp_path: Path) -> None:
    """UML 6.1's fork child reads its parent's MADV_DONTFORK page (the host raises
    SIGSEGV there, as the model says): the C reproducer, run in a guest, exits 1."""
    from fuzzer.campaign.target import target_of
    from fuzzer.kernel import parse_kernel
    from tests.uml import UML

    kind, text, step, title, _ = FORKED[0]
    binary = _build(tmp_path, _forked(text, step, kind, title))
    status, said = target_of(parse_kernel(f"uml:{UML}")).run_c(binary, 120)
    assert status == 1, said
    assert f"reproduced: {title}" in said and "observed: no signal" in said
