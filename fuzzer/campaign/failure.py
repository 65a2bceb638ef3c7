"""Why a worker failed, in one line, found in what it printed.

A worker's output is mostly libFuzzer's chatter. When it fails, the line that
says why is, in order: the exception line ending the last Python traceback
(an exception in libFuzzer's callback: Atheris prints the traceback, then
libFuzzer exits with status 77), libFuzzer's own `ERROR: libFuzzer: ...`
(out of memory, say), or else its last line that is not chatter. A signal
that ended it is said first. Pure: text in, a line out.
"""

from __future__ import annotations

import re
import signal
import traceback

# libFuzzer's lines that say nothing about why a worker failed.
_CHATTER = ("INFO:", "#", "MS:", "Done", "WARNING: Failed to find function", "Base64:",
            "artifact_prefix", "Test unit written", "SUMMARY:", "0x", "=== Uncaught Python")
_TRACEBACK = "Traceback (most recent call last):"
_LIBFUZZER = re.compile(r"^==\d+==\s*ERROR: (libFuzzer: .*)")


def error_line(text: str, status: int = 1) -> str:
    """The line of `text` (a failed process's output) that says why it failed, "" if
    none does; with the signal that ended it (a negative `status`, -N for signal N)
    said first."""
    line = _exception(text) or _libfuzzer(text) or _last(text)
    if status >= 0:
        return line
    try:
        name = signal.Signals(-status).name
    except ValueError:
        name = f"signal {-status}"
    return f"killed by {name}" + (f" (last output: {line})" if line else "")


def described(e: BaseException) -> str:
    """An exception caught here, in one line: its message, or where it was raised when
    it has none (a bare assert)."""
    message = str(e).splitlines()[0] if str(e) else ""
    if message:
        return f"{type(e).__name__}: {message}"
    frames = traceback.extract_tb(e.__traceback__)
    if not frames:
        return type(e).__name__
    last = frames[-1]
    m = _FRAME.match(f'  File "{last.filename}", line {last.lineno}, in {last.name}')
    assert m is not None
    return f"{type(e).__name__} at {_where(m)}"


def tail(text: str, lines: int = 40) -> str:
    """The last `lines` lines of `text` that are not empty."""
    return "\n".join([ln for ln in text.splitlines() if ln.strip()][-lines:])


def _exception(text: str) -> str:
    _, found, after = text.rpartition(_TRACEBACK)
    if not found:
        return ""
    # The traceback's frames are indented; the exception's line is the first that is not.
    frame = ""
    for line in after.splitlines()[1:]:
        m = _FRAME.match(line)
        if m:
            frame = _where(m)
        elif line.strip() and not line[0].isspace():
            exception = line.strip()
            # One without a message (a bare assert) says nothing but where it was raised.
            if frame and (":" not in exception or exception.endswith(_EMPTY)):
                return f"{exception.split(':')[0]} at {frame}"
            return exception
    return ""


_FRAME = re.compile(r'^\s+File "([^"]+)", line (\d+), in (\S+)')
_EMPTY = "<EMPTY MESSAGE>"  # Atheris's words for an exception without one


def _where(m: re.Match[str]) -> str:
    path = m.group(1)
    package = path.rfind("/fuzzer/")
    return f"{path[package + 1:] if package >= 0 else path}:{m.group(2)} in {m.group(3)}"


def _libfuzzer(text: str) -> str:
    found = [m.group(1).strip() for m in map(_LIBFUZZER.match, text.splitlines()) if m]
    return found[-1] if found else ""


def _last(text: str) -> str:
    useful = [ln.strip() for ln in text.splitlines()
              if ln.strip() and not ln.lstrip().startswith(_CHATTER)
              and not _LIBFUZZER.match(ln.strip())]
    return useful[-1] if useful else ""
