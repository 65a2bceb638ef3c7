"""The program text format: one call a line, for people, round-tripping exactly.

    # comment
    mmap(@0, 4p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_POPULATE, -1, 0)
    mlock(@1+5, 2p)
    touch(@3, write)

Addresses are arena offsets: `@N` is page N, `@N+B` adds B bytes. Lengths are
`Np` (pages), `Np+B`, `B` (bytes) or `0x...` (a length that wraps). Flags are
symbolic, unknown bits as hex. `format_program(parse(t)) == t` for canonical
text; comments and blank lines are not part of a program.
"""

from __future__ import annotations

import functools
import re
from typing import TextIO

from fuzzer.prog.arena import bigger_hint
from fuzzer.prog.program import (
    ARENA_PAGES,
    MAX_CALLS,
    Call,
    Processes,
    Program,
    ProgramError,
    check_call,
)
from fuzzer.prog.syscalls import (
    MADV_ADVICE,
    MAP_FLAGS,
    MAP_TYPES,
    MCL_FLAGS,
    MLOCK_FLAGS,
    MREMAP_FLAGS,
    PAGE,
    PROT_FLAGS,
    SYSCALLS,
    TOUCH_MODES,
    U64,
    Kind,
)


class ParseError(ProgramError):
    """A bad line of program text, located as `file:line: message`."""

    def __init__(self, message: str, path: str = "<program>", line: int = 0) -> None:
        super().__init__(f"{path}:{line}: {message}")
        self.path, self.line, self.message = path, line, message


# ----------------------------------------------------------------- parsing

_CALL = re.compile(r"^(?:p(\d+):\s*)?([a-z_0-9]+)\((.*)\)$")
_NUM = r"(?:0x[0-9a-fA-F]+|\d+)"
_ADDR = re.compile(rf"^@(\d+)(?:\+({_NUM}))?$")
_LEN = re.compile(rf"^(?:(\d+)p(?:\+({_NUM}))?|({_NUM}))$")
_INT = re.compile(rf"^-?{_NUM}$")
_FLAG_TABLES = {
    Kind.PROT: {"PROT_NONE": 0, **PROT_FLAGS},
    Kind.MAP: {**MAP_TYPES, **MAP_FLAGS},
    Kind.MLOCK: dict(MLOCK_FLAGS),
    Kind.MCL: dict(MCL_FLAGS),
    Kind.MREMAP: dict(MREMAP_FLAGS),
}


def _parse_arg(kind: Kind, text: str) -> int:
    match kind:
        case Kind.ADDR:
            m = _ADDR.match(text)
            if not m:
                raise ValueError(f"bad address {text!r} (want @PAGE or @PAGE+BYTES)")
            page, off = int(m[1]), int(m[2], 0) if m[2] else 0
            if off >= PAGE:
                raise ValueError(f"address {text!r}: the byte offset must be below {PAGE}")
            if page > ARENA_PAGES:
                raise ValueError(f"address {text!r} is outside the {ARENA_PAGES}-page arena"
                                 + bigger_hint(ARENA_PAGES))
            return page * PAGE + off
        case Kind.LEN:
            m = _LEN.match(text)
            if not m:
                raise ValueError(f"bad length {text!r} (want Np, Np+BYTES, BYTES or 0x...)")
            if m[3] is not None:
                value = int(m[3], 0)
            else:
                value = int(m[1]) * PAGE + (int(m[2], 0) if m[2] else 0)
            if value > U64:
                raise ValueError(f"length {text!r} does not fit in 64 bits")
            return value
        case Kind.TOUCH:
            if text not in TOUCH_MODES:
                raise ValueError(f"bad touch mode {text!r} (want read or write)")
            return TOUCH_MODES[text]
        case Kind.PROC:
            if not re.fullmatch(r"p\d+", text):
                raise ValueError(f"bad process {text!r} (want pN)")
            return int(text[1:])
        case Kind.INT:
            if not _INT.match(text):
                raise ValueError(f"bad integer {text!r}")
            return int(text, 0)
        case Kind.MADV:
            if text in MADV_ADVICE:
                return MADV_ADVICE[text]
            if not re.fullmatch(_NUM, text):
                raise ValueError(f"unknown advice {text!r} (known: {', '.join(MADV_ADVICE)})")
            return int(text, 0)
        case _:
            return _parse_flags(kind, text)


def _parse_flags(kind: Kind, text: str) -> int:
    table = _FLAG_TABLES[kind]
    value = 0
    for part in text.split("|"):
        part = part.strip()
        if part in table:
            value |= table[part]
        elif re.fullmatch(_NUM, part):
            value |= int(part, 0)
        else:
            known = ", ".join(table)
            raise ValueError(f"unknown flag {part!r} for {kind.value} (known: {known})")
    if value > U64:
        raise ValueError(f"flags {text!r} do not fit in 64 bits")
    return value


LINES_CACHED = 8192  # about 200 bytes each


@functools.lru_cache(maxsize=LINES_CACHED)
def parse_call(line: str) -> Call:
    """One call's text (no comment, stripped) as a Call. A campaign parses corpus
    programs and their mutants again and again, and most of their lines were read
    before: a line's Call (immutable) is kept, up to LINES_CACHED lines (a line in
    error raises, and is not kept)."""
    m = _CALL.match(line)
    if not m:
        raise ValueError(f"cannot read {line!r} as a call (want name(arg, ...))")
    proc, name, argtext = int(m[1] or 0), m[2], m[3]
    spec = SYSCALLS.get(name)
    if spec is None:
        raise ValueError(f"unknown call {name!r} (known: {', '.join(SYSCALLS)})")
    texts = [a.strip() for a in argtext.split(",")] if argtext.strip() else []
    if len(texts) != len(spec.args):
        raise ValueError(f"{name} takes {len(spec.args)} arguments, got {len(texts)}")
    args = tuple(_parse_arg(kind, t) for (_, kind), t in zip(spec.args, texts, strict=True))
    call = Call(name, args, proc)
    check_call(call)
    return call


def parse(text: str, path: str = "<program>") -> Program:
    """Parse program text; every error names its file and line."""
    calls: list[Call] = []
    procs = Processes()
    for number, raw in enumerate(text.split("\n"), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if len(calls) == MAX_CALLS:  # at the first call too many: the rest is not read
            raise ParseError(f"program has more than {MAX_CALLS} calls, at most {MAX_CALLS}",
                             path, number)
        try:
            calls.append(parse_call(line))
            procs.check(calls[-1])
        except ValueError as err:  # ProgramError is a ValueError too
            raise ParseError(str(err), path, number) from None
    if not calls:
        raise ParseError("program has no calls", path, 0)
    return Program(tuple(calls))


MAX_LINE = 4096  # characters in a line of program text (a call is under 200)


def read_program(file: TextIO, path: str) -> str:
    """The text of a program file, read line by line: a file with more than
    MAX_CALLS calls, or a line longer than MAX_LINE, is refused as soon as that
    is read (a huge file costs no more than a program's worth of reading)."""
    lines: list[str] = []
    calls = 0
    while True:
        line = file.readline(MAX_LINE + 1)
        if not line:
            return "".join(lines)
        if len(line) > MAX_LINE and not line.endswith("\n"):
            raise ParseError(f"line longer than {MAX_LINE} characters", path, len(lines) + 1)
        lines.append(line)
        if line.split("#", 1)[0].strip():
            calls += 1
            if calls > MAX_CALLS:
                raise ParseError(f"program has more than {MAX_CALLS} calls, at most "
                                 f"{MAX_CALLS}", path, len(lines))
