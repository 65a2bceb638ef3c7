"""The channel from a campaign worker to its campaign process: a pipe of its own.

The campaign process (run.py) makes one pipe per worker and passes its write
end's number as the worker's last argument; the worker sends its progress on
it as JSON lines, one message a line. Whatever else the worker or libFuzzer
prints goes to stdout and stderr, which the campaign sends to the worker's log
file: a message is never mixed with a traceback.

When the campaign process is gone (killed), a write finds the pipe closed and
the worker ends at once: nobody is left to count what it finds.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable

Emit = Callable[[dict[str, object]], None]
PARENT_GONE = 3  # a worker's exit status when its campaign process has gone


class ParentGone(SystemExit):
    """The campaign process closed the channel: the worker has no one to report to."""

    def __init__(self) -> None:
        super().__init__(PARENT_GONE)


def emitter(fd: int, *, hard: bool = False) -> Emit:
    """A worker's emit: each message as one JSON line on the pipe `fd`.

    With the campaign process gone, `hard` ends the process on the spot (an
    Atheris worker: an exception out of libFuzzer's callback would be a crash to
    it); otherwise ParentGone is raised, so `with` blocks clean up (a guest)."""

    def emit(message: dict[str, object]) -> None:
        data = (json.dumps(message) + "\n").encode()
        try:
            while data:
                data = data[os.write(fd, data):]
        except BrokenPipeError:
            if hard:
                os._exit(PARENT_GONE)
            raise ParentGone from None

    return emit


def parse_line(line: bytes) -> dict[str, object] | None:
    """A message read from a channel; None for a line that is not one."""
    try:
        message = json.loads(line)
    except ValueError:
        return None
    return message if isinstance(message, dict) else None
