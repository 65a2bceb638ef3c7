"""A campaign's workers: each one's process, channel and log, its deaths and restarts.

A Slot is one worker place of a campaign (worker i). Its process reports on a
pipe of its own (channel.py); its stdout and stderr, libFuzzer's chatter and
any traceback, go to `worker-i.log` in the campaign's scratch folder, and
libFuzzer's artifacts to `worker-i/` there. When its process dies before its
time (a signal, a non-zero status) it is started again after a back-off
(RESTART_DELAYS); a worker that dies more often than that in RESTART_WINDOW
seconds is given up, and its death says why in one line quoting its log.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from fuzzer.campaign.channel import parse_line

RESTART_DELAYS = (1.0, 2.0, 4.0)  # seconds before the 1st, 2nd, 3rd restart in a window
RESTART_WINDOW = 60.0  # seconds: one more death than RESTART_DELAYS in it gives up
STOP_GRACE = 5.0  # seconds a worker has to end after SIGINT before SIGKILL
# libFuzzer's lines that say nothing about why a worker failed.
_NOISE = ("INFO:", "#", "MS:", "Done", "WARNING: Failed to find function", "Base64:",
          "artifact_prefix", "Test unit written", "SUMMARY:", "==", "0x")
_OWN = "mmfuzz-guest-worker: "  # how a guest's worker starts the one line saying why it failed


@dataclass
class Slot:
    index: int
    log_path: Path
    argv: list[str] = field(default_factory=list)  # set by start()
    proc: subprocess.Popen[bytes] | None = None
    fd: int | None = None  # the read end of its channel
    buf: bytes = b""
    deaths: list[float] = field(default_factory=list)  # monotonic times, in the window
    restart_at: float | None = None  # a restart is due then
    starts: int = 0
    programs: int = 0  # counted from its messages, over all its processes
    steps: int = 0  # likewise
    progressed: bool = False  # its current process has reported progress
    recycle: int = 0  # its process said it ends for its size (RSS in MiB): --worker-rss
    recycling: bool = False  # its next start follows such an end, not a death

    @property
    def running(self) -> bool:
        return self.proc is not None


def start(slot: Slot, argv: list[str], env: dict[str, str], keep_fds: list[int]) -> None:
    """Start the slot's process: `argv` plus the channel's write end as its last argument."""
    read, write = os.pipe()
    os.set_inheritable(write, True)
    with open(slot.log_path, "ab") as log:
        log.write(f"--- start {slot.starts + 1} at {time.strftime('%H:%M:%S')}\n".encode())
        log.flush()
        slot.proc = subprocess.Popen([*argv, str(write)], stdin=subprocess.DEVNULL,
                                     stdout=log, stderr=subprocess.STDOUT, env=env,
                                     pass_fds=[write, *keep_fds])
    os.close(write)
    slot.fd, slot.buf, slot.restart_at, slot.progressed = read, b"", None, False
    slot.starts += 1


def messages(slot: Slot, chunk: bytes) -> list[dict[str, object]]:
    """The whole messages in what was read (a line that is not one is skipped)."""
    slot.buf += chunk
    *lines, slot.buf = slot.buf.split(b"\n")
    found = [m for m in (parse_line(line) for line in lines if line.strip()) if m is not None]
    slot.progressed = slot.progressed or any("programs" in m for m in found)
    return found


def reap(slot: Slot) -> int:
    """Close the slot's channel and wait for its process (its channel is closed: it has
    ended or is ending); its exit status, -N for signal N."""
    assert slot.proc is not None and slot.fd is not None
    os.close(slot.fd)
    slot.fd = None
    try:
        status = slot.proc.wait(timeout=STOP_GRACE)
    except subprocess.TimeoutExpired:
        slot.proc.kill()
        status = slot.proc.wait()
    slot.proc = None
    return status


def died(slot: Slot, now: float) -> float | None:
    """Count a death; the back-off before its restart, or None to give the worker up.
    Deaths older than RESTART_WINDOW are forgotten, unless the process that died had
    reported nothing: a worker that never gets going is given up however slowly it
    starts (a loaded machine)."""
    if slot.progressed:
        slot.deaths = [t for t in slot.deaths if now - t < RESTART_WINDOW]
    slot.deaths.append(now)
    n = len(slot.deaths)
    return RESTART_DELAYS[n - 1] if n <= len(RESTART_DELAYS) else None


def how(status: int) -> str:
    """An exit status as people say it: SIGKILL, status 1."""
    if status < 0:
        try:
            return signal.Signals(-status).name
        except ValueError:
            return f"signal {-status}"
    return f"status {status}"


def last_error(log_path: Path, lines: int = 2) -> str:
    """The last lines of the worker's log that say something, joined: its error."""
    try:
        with open(log_path, "rb") as f:
            f.seek(max(0, os.fstat(f.fileno()).st_size - 65536))
            text = f.read().decode(errors="replace")
    except OSError:
        return "no log"
    run = text.rsplit("\n--- start ", 1)[-1].splitlines()[1:]  # its last process's
    useful = [ln.strip() for ln in run if ln.strip() and not ln.lstrip().startswith(_NOISE)
              and ln.strip(" ~^")]  # Python's carets under a traceback's line say nothing
    if useful and useful[-1].startswith(_OWN):  # a worker's own error line, printed last
        return useful[-1].removeprefix(_OWN)
    return " | ".join(useful[-lines:]) or "no output"


def stop(slots: list[Slot]) -> None:
    """End every running worker: SIGINT, then SIGKILL after STOP_GRACE; each by its pid."""
    for slot in slots:
        if slot.proc is not None and slot.proc.poll() is None:
            slot.proc.send_signal(signal.SIGINT)
    for slot in slots:
        if slot.proc is not None:
            try:
                slot.proc.wait(timeout=STOP_GRACE)
            except subprocess.TimeoutExpired:
                slot.proc.kill()
                slot.proc.wait()
            slot.proc = None
        if slot.fd is not None:
            os.close(slot.fd)
            slot.fd = None


def python_module(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


__all__ = ["Slot", "died", "how", "last_error", "messages", "reap", "start", "stop"]
