"""Variants of a minimized program: which flags, kinds and states a divergence needs (pure).

From a program and its diverging step, `make_variants` builds labelled programs
that each change one thing, along these axes:

- drop: one flag of the diverging call, or of an mmap that made its range, left out
  (the type bits, MAP_ANONYMOUS and MAP_FIXED stay: they decide what is mapped where);
- add: a flag that matters here added (MAP_LOCKED, MAP_POPULATE, MLOCK_ONFAULT,
  MCL_ONFAULT, MREMAP_MAYMOVE, MREMAP_FIXED and MREMAP_DONTUNMAP with a free target);
- kind: the range's mmaps made anonymous private/shared, memfd shared/private or tmpfile
  (a file on disk) shared/private;
- prot: their protection set to PROT_NONE, R, RW, X or RWX;
- lock: the range unlocked, or locked by MAP_LOCKED, mlock or mlock2(MLOCK_ONFAULT);
- pages: 1, 2 or 8 pages, every address and length of the program scaled alike;
- process: the whole program in a forked child.

Each of the set-axes (kind, prot, lock, pages, process) also has a `base`
variant: the program as it is, labelled with its own value on that axis, so a
summary can say "every protection" (variants_summary.py reads what the runner,
variants_run.py, found into the lines a developer reads first). The lock axis is
the range's state before the diverging call: every earlier lock is taken out,
then the value's own put in.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction

from fuzzer.prog.program import (
    MAX_PROCS,
    WRAP_MIN,
    Call,
    Program,
    ProgramError,
    check_program,
    format_flags,
    lowest_free_fd,
)
from fuzzer.prog.syscalls import (
    MAP_ANONYMOUS,
    MAP_FIXED,
    MAP_FLAGS,
    MAP_LOCKED,
    MAP_POPULATE,
    MAP_PRIVATE,
    MAP_SHARED,
    MAP_TYPE,
    MCL_ONFAULT,
    MLOCK_ONFAULT,
    MREMAP_DONTUNMAP,
    MREMAP_FIXED,
    MREMAP_MAYMOVE,
    PAGE,
    PROT_EXEC,
    PROT_READ,
    PROT_WRITE,
    Kind,
)

AXES = ("drop", "add", "kind", "prot", "lock", "pages", "process")
_KEEP_MAP = MAP_ANONYMOUS | MAP_FIXED  # never dropped: they decide what is mapped where
PROTS = {"PROT_NONE": 0, "R": PROT_READ, "RW": PROT_READ | PROT_WRITE, "X": PROT_EXEC,
         "RWX": PROT_READ | PROT_WRITE | PROT_EXEC}
KINDS = ("anonymous private", "anonymous shared", "memfd shared", "memfd private",
         "tmpfile shared", "tmpfile private")
FILE_CREATORS = ("memfd_create", "tmpfile")  # the calls that open a file, as `kind` names it
LOCKS = ("unlocked", "MAP_LOCKED", "mlock", "mlock2 ONFAULT")
SIZES = (1, 2, 8)
_LOCK_CALLS = ("mlock", "mlock2", "mlockall")


@dataclass(frozen=True, slots=True)
class Variant:
    axis: str  # one of AXES
    value: str  # its value on the axis, for the summary: "MAP_LOCKED on mmap", "RW"
    label: str  # one line for people
    program: Program
    step: int  # the diverging call's index in this program
    base: bool = False  # the program unchanged, labelled with its own value on the axis


# ------------------------------------------------------------ building blocks

Line = tuple[int | None, Call]  # (index in the original program, or None if inserted), call


def _with(call: Call, **changes: int) -> Call:
    names = [name for name, _ in call.syscall.args]
    args = list(call.args)
    for name, value in changes.items():
        args[names.index(name)] = value
    return Call(call.name, tuple(args), call.proc)


def _build(lines: Sequence[Line], step: int) -> tuple[Program, int] | None:
    """The program of `lines`, and where the original step went; None if it is invalid."""
    program = Program(tuple(call for _, call in lines))
    where = [i for i, (orig, _) in enumerate(lines) if orig == step]
    try:
        check_program(program)
    except ProgramError:
        return None
    return (program, where[0]) if where else None


def _ranges(call: Call) -> list[tuple[int, int]]:
    """The page ranges [first, end) a call acts on (a touch: its page)."""
    if call.name == "touch":
        return [(call.args[0] // PAGE, call.args[0] // PAGE + 1)]
    out = []
    for ai, li in call.syscall.ranges:
        addr, length = call.args[ai], call.args[li]
        if 0 < length < WRAP_MIN:
            out.append((addr // PAGE, (addr + length + PAGE - 1) // PAGE))
    return out


def range_mmaps(program: Program, step: int) -> list[int]:
    """The mmaps up to the step whose pages the diverging call acts on (all of them if the
    call names no range, or none overlaps)."""
    mmaps = [i for i in range(step + 1) if program.calls[i].name == "mmap"
             and program.calls[i].args[1] < WRAP_MIN]
    target = _ranges(program.calls[step])
    hit = [i for i in mmaps if any(a < e and s < b for s, e in target
                                   for a, b in _ranges(program.calls[i]))]
    return hit or mmaps


def _kind_of(program: Program, i: int) -> str:
    call = program.calls[i]
    flags = call.arg("flags")
    shared = flags & MAP_TYPE in (MAP_SHARED, MAP_SHARED | MAP_PRIVATE)
    if flags & MAP_ANONYMOUS:
        what = "anonymous"
    else:
        made = _creators(program, i).get(call.arg("fd") & 0xFFFF_FFFF)
        what = "memfd" if made is None else program.calls[made].name.replace("_create", "")
    return f"{what} {'shared' if shared else 'private'}"


def _creators(program: Program, upto: int) -> dict[int, int]:
    """Before call `upto`, in its process: each open descriptor's creating call (its
    index). Descriptors are the lowest free numbers (the executor starts with none), a
    fork child inherits its parent's, close frees one."""
    fds: dict[int, dict[int, int]] = {0: {}}
    forks = 0
    for j, call in enumerate(program.calls[:upto]):
        own = fds.setdefault(call.proc, {})
        if call.name in FILE_CREATORS:
            own[lowest_free_fd(own)] = j
        elif call.name == "close":
            own.pop(call.args[0] & 0xFFFF_FFFF, None)
        elif call.name == "fork":
            forks += 1
            fds[forks] = dict(own)
    return fds.get(program.calls[upto].proc, {})


def _prot_name(prot: int) -> str:
    return next((n for n, v in PROTS.items() if v == prot), format_flags(Kind.PROT, prot))


# ------------------------------------------------------------ flags dropped and added


def _flag_values(call: Call) -> list[tuple[str, Kind, int]]:
    return [(name, kind, value) for (name, kind), value in zip(call.syscall.args, call.args,
                                                                strict=True)
            if kind in (Kind.MAP, Kind.MLOCK, Kind.MCL, Kind.MREMAP)]


def _named_bits(kind: Kind, value: int) -> list[tuple[str, int]]:
    if kind == Kind.MAP:
        return [(n, b) for n, b in MAP_FLAGS.items() if value & b and not b & _KEEP_MAP]
    return [(format_flags(kind, 1 << i), 1 << i) for i in range(8) if value >> i & 1]


def _drops(program: Program, step: int) -> Iterable[Variant]:
    lines: list[Line] = list(enumerate(program.calls))
    for at in sorted({*range_mmaps(program, step), step}):
        call = program.calls[at]
        for name, kind, value in _flag_values(call):
            for flag, bit in _named_bits(kind, value):
                changed = lines.copy()
                changed[at] = (at, _with(call, **{name: value & ~bit}))
                built = _build(changed, step)
                if built:
                    yield Variant("drop", f"{flag} on {call.name}",
                                  f"without {flag} on call {at} ({call.name})", *built)


def _free_page(program: Program) -> int:
    """The first page after every range the program names."""
    return max((e for c in program.calls for _, e in _ranges(c)), default=0)


def _additions(program: Program, at: int) -> list[tuple[str, Call]]:
    call = program.calls[at]
    match call.name:
        case "mmap":
            flags = call.arg("flags")
            return [(n, _with(call, flags=flags | b)) for n, b in
                    (("MAP_LOCKED", MAP_LOCKED), ("MAP_POPULATE", MAP_POPULATE)) if not flags & b]
        case "mlock2":
            return [] if call.arg("flags") & MLOCK_ONFAULT else \
                [("MLOCK_ONFAULT", _with(call, flags=call.arg("flags") | MLOCK_ONFAULT))]
        case "mlockall":
            return [] if call.arg("flags") & MCL_ONFAULT else \
                [("MCL_ONFAULT", _with(call, flags=call.arg("flags") | MCL_ONFAULT))]
        case "mremap":
            return _mremap_additions(program, call)
    return []


def _mremap_additions(program: Program, call: Call) -> list[tuple[str, Call]]:
    flags, out = call.arg("flags"), []
    if not flags & MREMAP_MAYMOVE:
        out.append(("MREMAP_MAYMOVE", _with(call, flags=flags | MREMAP_MAYMOVE)))
    moved = flags & MREMAP_FIXED and flags & MREMAP_MAYMOVE
    new = call.arg("new") if moved else _free_page(program) * PAGE
    if not flags & MREMAP_FIXED:
        out.append(("MREMAP_FIXED", _with(call, flags=flags | MREMAP_MAYMOVE | MREMAP_FIXED,
                                          new=new)))
    if not flags & MREMAP_DONTUNMAP and call.arg("old_len") == call.arg("new_len"):
        every = MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP
        out.append(("MREMAP_DONTUNMAP", _with(call, flags=flags | every, new=new)))
    return out


def _adds(program: Program, step: int) -> Iterable[Variant]:
    lines: list[Line] = list(enumerate(program.calls))
    for at in sorted({*range_mmaps(program, step), step}):
        for flag, call in _additions(program, at):
            changed = lines.copy()
            changed[at] = (at, call)
            built = _build(changed, step)
            if built:
                yield Variant("add", f"{flag} on {call.name}",
                              f"with {flag} on call {at} ({call.name})", *built)


# ------------------------------------------------------------ the set-axes


def _set(axis: str, value: str, base: str, program: Program, step: int,
         lines: Sequence[Line] | None) -> Variant | None:
    """The variant of one value on a set-axis: the program itself when it is its value."""
    if value == base:
        return Variant(axis, value, f"{value} (as minimized)", program, step, base=True)
    built = _build(lines, step) if lines is not None else None
    return Variant(axis, value, value, *built) if built else None


def _kinds(program: Program, step: int) -> Iterable[Variant | None]:
    mmaps = range_mmaps(program, step)
    if not mmaps:
        return
    base = _kind_of(program, mmaps[0])
    has_files = any(c.name in (*FILE_CREATORS, "close") for c in program.calls)
    for kind in KINDS:
        # a program with descriptors of its own maps no new file into an anonymous
        # range: the file would renumber them
        refused = has_files and _is_file(kind) and not _is_file(base)
        lines = _to_kind(program, mmaps, kind) if not refused else None
        yield _set("kind", kind, base, program, step, lines)


def _is_file(kind: str) -> bool:
    return not kind.startswith("anonymous")


def _to_kind(program: Program, mmaps: list[int], kind: str) -> list[Line]:
    """The range's mmaps made `kind`; for a file, one memfd_create or tmpfile and an
    ftruncate first (fd 0, each mmap at the file offset equal to its arena offset), or,
    where they map files already, the calls that opened those files made the other
    kind of file."""
    mtype = MAP_SHARED if kind.endswith("shared") else MAP_PRIVATE
    creator = "tmpfile" if kind.startswith("tmpfile") else "memfd_create"
    lines: list[Line] = []
    already = any(program.calls[i].arg("fd") >= 0 for i in mmaps)
    reopened: set[int] = set()  # the creating calls of the files the range maps
    if _is_file(kind) and not already:
        end = max(e for i in mmaps for _, e in _ranges(program.calls[i]))
        lines += [(None, Call(creator, ())), (None, Call("ftruncate", (0, end * PAGE)))]
    elif _is_file(kind):
        for i in mmaps:
            made = _creators(program, i).get(program.calls[i].arg("fd") & 0xFFFF_FFFF)
            if made is not None:
                reopened.add(made)
    for i, call in enumerate(program.calls):
        if i in reopened:
            call = Call(creator, (), call.proc)
        elif i in mmaps:
            flags = call.arg("flags") & ~MAP_TYPE | mtype
            if kind.startswith("anonymous"):
                call = _with(call, flags=flags | MAP_ANONYMOUS, fd=-1, off=0)
            elif not already:
                call = _with(call, flags=flags & ~MAP_ANONYMOUS, fd=0,
                             off=call.arg("addr") // PAGE * PAGE)
            else:
                call = _with(call, flags=flags)
        lines.append((i, call))
    return lines


def _prots(program: Program, step: int) -> Iterable[Variant | None]:
    mmaps = range_mmaps(program, step)
    if not mmaps:
        return
    base = _prot_name(program.calls[mmaps[0]].arg("prot"))
    for name, prot in PROTS.items():
        lines = [(i, _with(c, prot=prot) if i in mmaps else c)
                 for i, c in enumerate(program.calls)]
        yield _set("prot", name, base, program, step, lines)


def _lock_of(program: Program, step: int, mmaps: list[int]) -> str:
    if any(program.calls[i].arg("flags") & MAP_LOCKED for i in mmaps):
        return "MAP_LOCKED"
    earlier = [c for c in program.calls[:step] if c.name in _LOCK_CALLS]
    if not earlier:
        return "unlocked"
    last = earlier[-1]
    if last.name == "mlock2":
        return "mlock2 ONFAULT" if last.arg("flags") & MLOCK_ONFAULT else "mlock"
    return last.name


def _locks(program: Program, step: int) -> Iterable[Variant | None]:
    mmaps = range_mmaps(program, step)
    if not mmaps:
        return
    base = _lock_of(program, step, mmaps)
    for lock in LOCKS:
        lines: list[Line] = []
        for i, call in enumerate(program.calls):
            if i < step and call.name in _LOCK_CALLS:
                continue  # every earlier lock goes; the value's own lock comes instead
            if i in mmaps:
                flags = call.arg("flags") & ~MAP_LOCKED
                call = _with(call, flags=flags | (MAP_LOCKED if lock == "MAP_LOCKED" else 0))
            lines.append((i, call))
            if i in mmaps and i != step and lock in ("mlock", "mlock2 ONFAULT"):
                addr, length = call.arg("addr"), call.arg("len")
                lines.append((None, Call("mlock", (addr, length), call.proc) if lock == "mlock"
                              else Call("mlock2", (addr, length, MLOCK_ONFAULT), call.proc)))
        yield _set("lock", lock, base, program, step, lines)


def _scaled(call: Call, factor: Fraction) -> Call | None:
    args = []
    for (name, kind), value in zip(call.syscall.args, call.args, strict=True):
        scalable = (kind in (Kind.ADDR, Kind.LEN) and value < WRAP_MIN) or \
            (name == "off" and value % PAGE == 0)
        if scalable:
            pages = value // PAGE * factor
            if pages.denominator != 1:
                return None
            value = int(pages) * PAGE + value % PAGE
        args.append(value)
    return Call(call.name, tuple(args), call.proc)


def _sizes(program: Program, step: int) -> Iterable[Variant | None]:
    mmaps = range_mmaps(program, step)
    sized = [program.calls[i] for i in mmaps] or [program.calls[step]]
    spans = [e - s for c in sized for s, e in _ranges(c)]
    if not spans:
        return
    pages = max(spans)
    for n in sorted({*SIZES, pages}):
        value = f"{n} page{'s' if n > 1 else ''}"
        calls = [_scaled(c, Fraction(n, pages)) for c in program.calls]
        lines = None if None in calls else \
            [(i, c) for i, c in enumerate(calls) if c is not None]
        yield _set("pages", value, f"{pages} page{'s' if pages > 1 else ''}", program, step, lines)


def _processes(program: Program, step: int) -> Iterable[Variant | None]:
    forks = sum(1 for c in program.calls if c.name == "fork")
    yield _set("process", "parent", "parent", program, step, None)
    if forks + 1 < MAX_PROCS:
        lines: list[Line] = [(None, Call("fork", ()))]
        lines += [(i, Call(c.name, c.args, c.proc + 1)) for i, c in enumerate(program.calls)]
        yield _set("process", "child", "parent", program, step, lines)


def make_variants(program: Program, step: int) -> list[Variant]:
    """Every variant along every axis, in AXES order; a variant that would be no change or
    an invalid program is left out, and within an axis no program comes twice."""
    if not 0 <= step < len(program):
        raise ValueError(f"step {step} is not in a program of {len(program)} calls")
    out: list[Variant] = []
    for make in (_drops, _adds, _kinds, _prots, _locks, _sizes, _processes):
        seen = {program.text()}
        for v in make(program, step):
            if v is not None and (v.base or v.program.text() not in seen):
                seen.add(v.program.text())
                out.append(v)
    return out


__all__ = ["AXES", "KINDS", "LOCKS", "PROTS", "SIZES", "Variant", "make_variants",
           "range_mmaps"]
