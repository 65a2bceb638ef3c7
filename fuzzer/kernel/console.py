"""The guest's console log, and the kernel crashes in it.

UML prints its kernel messages (and whatever the guest's init and Python write
to /dev/console) on its standard output and error, which the host keeps in a
bounded buffer. The guest boots with printk.time=1: only lines with a
timestamp are the kernel's, so a program's "WARNING:" is never taken for one.
A panic, oops, BUG or WARNING in it is a fault of the kernel
under test: a finding of kind `kernel-crash`, titled by its first such line
with addresses and numbers that change from run to run taken out, so that the
same bug lands in the same bucket (docs/ARCHITECTURE.md, decision 7).
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import IO

from fuzzer.oracle.kind import DivergenceKind

KEEP = 1 << 20  # bytes of console kept per guest
KIND = DivergenceKind.KERNEL_CRASH  # the bucket kind of a guest kernel's fault
EXCERPT_LINES = 60  # lines kept with a sample: some before the first crash line, all after

# The first line of every way a kernel reports its own fault (UML adds "Kernel
# mode fault/signal" for faults in kernel code).
_CRASH = re.compile(
    r"Kernel panic - not syncing|kernel BUG at |BUG: |Oops|WARNING: |"
    r"general protection fault|Unable to handle kernel|Kernel mode (fault|signal)"
)
_TIMESTAMP = re.compile(r"^\[\s*\d+\.\d+\]\s*")
_HEX = re.compile(r"\b(0x)?[0-9a-fA-F]{8,}\b|\b0x[0-9a-fA-F]+\b")
_NUMBER = re.compile(r"\b(pid|PID|exitcode|addr|ip)([:= ]+)\d+")


@dataclass(frozen=True)
class Crash:
    title: str  # "kernel-crash: ..." -- the bucket's key
    log: str  # the console around it, kept with the sample


def find_crash(console: str) -> Crash | None:
    """The first kernel fault in a console log, if there is one."""
    lines = console.splitlines()
    for i, line in enumerate(lines):
        if not _TIMESTAMP.match(line):
            continue  # not the kernel's: init, Python and libFuzzer write here too
        text = _TIMESTAMP.sub("", line).strip()
        if _CRASH.search(text):
            excerpt = lines[max(0, i - 10):][:EXCERPT_LINES]
            return Crash(f"{KIND}: {normalize(text)}", "\n".join(excerpt))
    return None


def normalize(line: str) -> str:
    """A crash line without what differs between runs of the same bug (addresses, pids)."""
    line = _HEX.sub("ADDR", line)
    line = _NUMBER.sub(lambda m: f"{m.group(1)}{m.group(2)}N", line)
    return line[:160].rstrip()


class ConsoleLog:
    """Reads a stream to its end on a thread of its own, keeping the last KEEP bytes."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self._data = bytearray()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        while chunk := self._stream.read1(1 << 16):  # type: ignore[attr-defined]
            with self._lock:
                self._data += chunk
                if len(self._data) > 2 * KEEP:
                    del self._data[:-KEEP]

    def text(self) -> str:
        with self._lock:
            return self._data[-KEEP:].decode(errors="replace")

    def wait(self, timeout: float) -> None:
        """Until the stream ends (the guest is gone) or `timeout` seconds pass."""
        self._thread.join(timeout)
