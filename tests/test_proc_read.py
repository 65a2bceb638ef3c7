"""Observer reads each /proc file whole, growing its buffer as needed, and keeps of status
the VmLck line alone: the same values as reading the files with open(). Both ways of
reading are tested: fuzzer/stepcalls.c's and its Python twins (`PyReads`)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fuzzer import stepcalls
from fuzzer.executor import executor_path
from fuzzer.observe import proc
from fuzzer.observe.proc import VMLCK, Observer, PyReads, Reads
from fuzzer.prog.syscalls import PAGE
from fuzzer.prog.text import parse
from fuzzer.snapshot.parse import parse_smaps, parse_vmlck
from fuzzer.trace.supervisor import Supervisor


def _status() -> str:
    return Path("/proc/self/status").read_text()


def _c() -> Reads:
    module = stepcalls.load()
    assert module is not None, f"fuzzer/stepcalls.c: {stepcalls.why_not()}"
    return module


def _small(size: int) -> PyReads:
    """Python twins whose buffer starts at `size` bytes."""
    reads = PyReads()
    reads._view.release()
    reads._buf = bytearray(size)
    reads._view = memoryview(reads._buf)
    return reads


READERS = {"C": _c, "Python, 256 kB": lambda: _small(1 << 18), "Python, 64 B": lambda: _small(64),
           "Python, 1 B": lambda: _small(1)}


@pytest.mark.parametrize("reader", READERS)
def test_status_line_and_whole_files(reader: str, monkeypatch: pytest.MonkeyPatch) -> None:
    reads = READERS[reader]()
    monkeypatch.setattr(proc, "READS", reads)
    with Observer(os.getpid()) as obs:
        line = reads.read_line(obs._status, VMLCK)
        assert line.startswith("VmLck:") and "\n" not in line
        assert parse_vmlck(line) == parse_vmlck(_status())
        text = str(reads.read_file(obs._smaps), "utf-8")
        assert text.count("VmFlags:") == len(parse_smaps(text)) > 0
        snap = obs.snapshot()
        assert snap.vmlck == parse_vmlck(_status())
        assert len(snap.vmas) > 0


# (file text, prefix, the line read_line gives)
LINES = [
    ("Name:\tx\nVmLck:\t4 kB\nVmRSS:\t8 kB\n", b"VmLck:", "VmLck:\t4 kB"),
    ("VmLck:\t0 kB\nName:\tx\n", b"VmLck:", "VmLck:\t0 kB"),  # the first line
    ("Name:\tx\nVmLck:\t12 kB", b"VmLck:", "VmLck:\t12 kB"),  # the last, no newline
    ("Name:\tx\nVmLck:\t1 kB\nVmLck:\t2 kB\n", b"VmLck:", "VmLck:\t1 kB"),  # the first
    ("Name:\tx\nVmRSS:\t4 kB\n", b"VmLck:", "Name:\tx\nVmRSS:\t4 kB\n"),  # none: the text
    ("Name:\tVmLck:\n", b"VmLck:", "Name:\tVmLck:\n"),  # not at a line's start
    ("", b"VmLck:", ""),
    ("VmLck", b"VmLck:", "VmLck"),  # shorter than the prefix
    ("x" * 200_000 + "\nVmLck:\t8 kB\n", b"VmLck:", "VmLck:\t8 kB"),  # past any buffer
]


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize(("text", "prefix", "line"), LINES,
                         ids=[f"line{i}" for i in range(len(LINES))])
def test_read_line_and_file(reader: str, text: str, prefix: bytes, line: str,
                            tmp_path: Path) -> None:
    reads = READERS[reader]()
    f = tmp_path / "status"
    f.write_text(text)
    fd = os.open(f, os.O_RDONLY)
    try:
        assert reads.read_line(fd, prefix) == line
        assert reads.read_file(fd) == text.encode()
        assert reads.read_file(fd) == text.encode()  # again, from offset 0
    finally:
        os.close(fd)


@pytest.mark.parametrize("reader", READERS)
def test_read_words_and_their_errors(reader: str, tmp_path: Path) -> None:
    reads = READERS[reader]()
    f = tmp_path / "words"
    f.write_bytes(b"".join(w.to_bytes(8, "little") for w in (0, 1, 1 << 63, (1 << 64) - 1, 7)))
    fd = os.open(f, os.O_RDONLY)
    try:
        assert reads.read_words(fd, 8, 3) == (1, 1 << 63, (1 << 64) - 1)
        assert reads.read_words(fd, 0, 0) == ()
        with pytest.raises(OSError) as short:  # fewer words than asked for
            reads.read_words(fd, 16, 4)
        assert short.value.errno == 5
    finally:
        os.close(fd)
    for call in (lambda: reads.read_words(fd, 0, 1), lambda: reads.read_file(fd),
                 lambda: reads.read_line(fd, VMLCK)):
        with pytest.raises(OSError) as closed:
            call()
        assert closed.value.errno == 9  # EBADF


def test_status_without_vmlck_is_parse_vmlck_error(tmp_path: Path) -> None:
    f = tmp_path / "status"
    f.write_text("Name:\tx\nVmRSS:\t4 kB\n")
    with Observer(os.getpid()) as obs:
        fd = os.open(f, os.O_RDONLY)
        try:
            obs._status = fd
            with pytest.raises(ValueError):
                obs.snapshot()
        finally:
            os.close(fd)


def test_an_unchanged_process_gives_the_same_snapshot_again() -> None:
    """A step that changed nothing /proc shows (a call that failed) gives back the last
    Snapshot, the same object; one that changed it gives a new one, equal to what a
    fresh Observer reads and parses from scratch."""
    program = parse(
        "mmap(@0, 8p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED, -1, 0)\n"
        "mprotect(@0, 3p, 0x99)\n"  # EINVAL: nothing changes
        "mlock(@0, 2p)\n")  # two pages present and locked
    with Supervisor(executor_path(), budget=10.0) as supervisor, \
            supervisor.run(program) as run:
        steps = run.steps()
        with Observer(run.pid) as obs:
            seen = []
            for _ in range(3):
                step = next(steps)
                snap = obs.snapshot()
                with Observer(run.pid) as fresh:
                    assert fresh.snapshot() == snap
                seen.append((step.ret, snap))
        (_, mapped), (failed, again), (_, locked) = seen
        assert failed is not None and failed < 0
        assert again is mapped
        assert locked is not again and locked.vmlck == 2 * PAGE != again.vmlck
