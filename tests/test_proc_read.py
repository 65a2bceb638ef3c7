"""Observer reads each /proc file whole into its buffer, growing it as needed, and
keeps of status the VmLck line alone: the same values as reading the files with open()."""

from __future__ import annotations

import os
from pathlib import Path

from fuzzer.observe.proc import Observer
from fuzzer.snapshot.parse import parse_smaps, parse_vmlck


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
            text = obs._read_text(obs._smaps)
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
