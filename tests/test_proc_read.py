"""Observer reads each /proc file whole into its buffer, growing it as needed, and
keeps of status the VmLck line alone: the same values as reading the files with open()."""

from __future__ import annotations

import os
from pathlib import Path

from fuzzer.executor import executor_path
from fuzzer.observe.proc import Observer
from fuzzer.prog.syscalls import PAGE
from fuzzer.prog.text import parse
from fuzzer.snapshot.parse import parse_smaps, parse_vmlck
from fuzzer.trace.supervisor import Supervisor


def _status() -> str:
    return Path("/proc/self/status").read_text()


def test_status_line_and_whole_files_in_a_small_buffer() -> None:
    with Observer(os.getpid()) as obs:
        for size in (1 << 18, 64, 1):  # the buffer grows while a file is read
            obs._view.release()
            obs._buf = bytearray(size)
            obs._view = memoryview(obs._buf)
            line = obs._vmlck_line()
            assert line.startswith("VmLck:") and "\n" not in line
            assert parse_vmlck(line) == parse_vmlck(_status())
            text = str(obs._read(obs._smaps), "utf-8")
            assert text.count("VmFlags:") == len(parse_smaps(text)) > 0
            snap = obs.snapshot()
            assert snap.vmlck == parse_vmlck(_status())
            assert len(snap.vmas) > 0


def test_status_without_vmlck_is_parse_vmlck_error(tmp_path: Path) -> None:
    f = tmp_path / "status"
    f.write_text("Name:\tx\nVmRSS:\t4 kB\n")
    with Observer(os.getpid()) as obs:
        fd = os.open(f, os.O_RDONLY)
        try:
            obs._status = fd
            assert obs._vmlck_line() == "Name:\tx\nVmRSS:\t4 kB\n"
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
