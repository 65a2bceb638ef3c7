"""The result channel between a guest and the host: one JSON object a line.

In the guest it is the UML serial line /dev/ttyS0 in raw mode (no echo, no
line editing, bytes as written); on the host it is a pair of pipes UML maps
that line to (`ssl0=fd:IN,fd:OUT`). The kernel's own console goes elsewhere
(console.py), so kernel messages never mix with results. Lines that are not
JSON objects (a stray carriage return, noise at boot) are skipped.
"""

from __future__ import annotations

import json
import os
import select
import termios
import time
import tty


class ChannelClosed(EOFError):
    """The other side went away (the guest halted or died)."""


class ChannelTimeout(TimeoutError):
    """Nothing arrived in time: the other side stopped answering."""


class Channel:
    def __init__(self, rfd: int, wfd: int) -> None:
        self.rfd, self.wfd = rfd, wfd
        self._buf = b""
        self._lines: list[bytes] = []

    def send(self, message: dict[str, object]) -> None:
        data = (json.dumps(message, separators=(",", ":"), default=_plain) + "\n").encode()
        with memoryview(data) as view:
            sent = 0
            while sent < len(data):
                sent += os.write(self.wfd, view[sent:])

    def recv(self, timeout: float | None = None) -> dict[str, object]:
        """The next message; ChannelTimeout after `timeout` seconds, ChannelClosed at EOF."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            while self._lines:
                msg = _decode(self._lines.pop(0))
                if msg is not None:
                    return msg
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select([self.rfd], [], [], left)
            if not ready:
                raise ChannelTimeout(f"nothing on the channel for {timeout:g} s")
            chunk = os.read(self.rfd, 1 << 16)
            if not chunk:
                raise ChannelClosed("the channel was closed")
            self._buf += chunk
            *lines, self._buf = self._buf.split(b"\n")
            self._lines += lines


def _decode(line: bytes) -> dict[str, object] | None:
    line = line.strip(b"\r\0 ")
    if not line.startswith(b"{"):
        return None
    try:
        msg = json.loads(line)
    except ValueError:
        return None
    return msg if isinstance(msg, dict) else None


def _plain(value: object) -> object:
    """What json cannot encode by itself: tuples come as lists already; sets, paths."""
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    return str(value)


def guest_channel(device: str = "/dev/ttyS0") -> Channel:
    """The guest's end: the serial line, made raw before anything is written to it."""
    fd = os.open(device, os.O_RDWR | os.O_NOCTTY)
    tty.setraw(fd, termios.TCSANOW)
    return Channel(fd, fd)
