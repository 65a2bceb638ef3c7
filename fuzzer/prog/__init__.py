"""Programs: the common language of generator, model, executor, store and CLI (pure, no I/O)."""

from fuzzer.prog.arena import Arena
from fuzzer.prog.program import (
    ARENA,
    ARENA_BASE,
    ARENA_PAGES,
    ARENA_SIZE,
    Call,
    Program,
    ProgramError,
    format_call,
    format_program,
)
from fuzzer.prog.text import ParseError, parse, read_program

__all__ = [
    "ARENA",
    "ARENA_BASE",
    "ARENA_PAGES",
    "ARENA_SIZE",
    "Arena",
    "Call",
    "ParseError",
    "Program",
    "ProgramError",
    "format_call",
    "format_program",
    "parse",
    "read_program",
]
