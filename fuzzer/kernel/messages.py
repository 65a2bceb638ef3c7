"""The requests the host sends a guest, and the results the guest answers, as typed values.

One dataclass per request kind (its MODE is the wire's "mode") and one per result.
Each has `to_json()`, the JSON object sent on the channel (channel.py), and
`from_json(obj)`, which checks every field's type and raises MessageError (one
line) for a malformed one, so neither side reads an untyped dict. The wire is
unchanged: a request is {"mode": MODE, field: value...}; a result is the object
under {"result": ...}. Pure: no I/O.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import ClassVar, Self


class MessageError(ValueError):
    """A message that is not what its kind says it is; one line."""


def _get(obj: dict[str, object], key: str, default: object = ...) -> object:
    if key in obj:
        return obj[key]
    if default is ...:
        raise MessageError(f"a message without {key!r}")
    return default


def _str(obj: dict[str, object], key: str, default: object = ...) -> str:
    value = _get(obj, key, default)
    if not isinstance(value, str):
        raise MessageError(f"{key!r}: a string, not {value!r}")
    return value


def _int(obj: dict[str, object], key: str, default: object = ...) -> int:
    value = _get(obj, key, default)
    if not isinstance(value, int) or isinstance(value, bool):
        raise MessageError(f"{key!r}: an integer, not {value!r}")
    return value


def _opt_int(obj: dict[str, object], key: str) -> int | None:
    return None if obj.get(key) is None else _int(obj, key)


def _float(obj: dict[str, object], key: str, default: object = ...) -> float:
    value = _get(obj, key, default)
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise MessageError(f"{key!r}: a number, not {value!r}")
    return float(value)


def _bool(obj: dict[str, object], key: str, default: object = ...) -> bool:
    value = _get(obj, key, default)
    if not isinstance(value, bool):
        raise MessageError(f"{key!r}: true or false, not {value!r}")
    return value


def _strs(obj: dict[str, object], key: str, default: object = ...) -> list[str]:
    value = _get(obj, key, default)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise MessageError(f"{key!r}: a list of strings, not {value!r}")
    return [str(v) for v in value]


def _dict(obj: dict[str, object], key: str) -> dict[str, object]:
    value = _get(obj, key, {})
    if not isinstance(value, dict):
        raise MessageError(f"{key!r}: an object, not {value!r}")
    return {str(k): v for k, v in value.items()}


def _fields(message: object) -> dict[str, object]:
    assert dataclasses.is_dataclass(message) and not isinstance(message, type)
    return {f.name: getattr(message, f.name) for f in dataclasses.fields(message)}


# --- requests (host -> guest) ---------------------------------------------------------


@dataclass(frozen=True)
class Halt:
    """Nothing to do: the guest halts (its time was used by its boot)."""

    MODE: ClassVar[str] = "halt"

    @classmethod
    def from_json(cls, obj: dict[str, object]) -> Self:
        return cls()


@dataclass(frozen=True)
class Probe:
    """The features of the guest's kernel, as the model will be told them."""

    MODE: ClassVar[str] = "probe"

    @classmethod
    def from_json(cls, obj: dict[str, object]) -> Self:
        return cls()


@dataclass(frozen=True)
class Exec:
    """Check one program, its printed report sent back as text (`mmfuzz exec`)."""

    MODE: ClassVar[str] = "exec"
    text: str
    name: str
    verbose: bool
    budget: float
    inject: list[str] = field(default_factory=list)

    @classmethod
    def from_json(cls, obj: dict[str, object]) -> Self:
        return cls(_str(obj, "text"), _str(obj, "name", "<program>"),
                   _bool(obj, "verbose", False), _float(obj, "budget"),
                   _strs(obj, "inject", []))


@dataclass(frozen=True)
class Check:
    """Check programs; the titles of each one's divergences."""

    MODE: ClassVar[str] = "check"
    texts: list[str]
    inject: list[str] = field(default_factory=list)

    @classmethod
    def from_json(cls, obj: dict[str, object]) -> Self:
        return cls(_strs(obj, "texts"), _strs(obj, "inject", []))


@dataclass(frozen=True)
class Repro:
    """How many of `runs` runs of a program show `title` (`mmfuzz repro`)."""

    MODE: ClassVar[str] = "repro"
    text: str
    title: str
    runs: int
    inject: list[str] = field(default_factory=list)

    @classmethod
    def from_json(cls, obj: dict[str, object]) -> Self:
        return cls(_str(obj, "text"), _str(obj, "title"), _int(obj, "runs"),
                   _strs(obj, "inject", []))


@dataclass(frozen=True)
class Throughput:
    """The throughput benchmark on the guest's kernel (`mmfuzz bench throughput`)."""

    MODE: ClassVar[str] = "throughput"
    programs: int
    seed: int
    texts: list[str] = field(default_factory=list)  # a folder's programs; none: generated

    @classmethod
    def from_json(cls, obj: dict[str, object]) -> Self:
        return cls(_int(obj, "programs"), _int(obj, "seed"), _strs(obj, "texts", []))


@dataclass(frozen=True)
class Minimize:
    """Minimize bucket `bucket`'s program, storing the result through the host's store."""

    MODE: ClassVar[str] = "minimize"
    text: str
    title: str
    bucket: int
    step: int
    runs: int
    inject: list[str] = field(default_factory=list)

    @classmethod
    def from_json(cls, obj: dict[str, object]) -> Self:
        return cls(_str(obj, "text"), _str(obj, "title"), _int(obj, "bucket"),
                   _int(obj, "step"), _int(obj, "runs"), _strs(obj, "inject", []))


@dataclass(frozen=True)
class Variants:
    """Run the variants of bucket `bucket`'s program, storing them through the host's store."""

    MODE: ClassVar[str] = "variants"
    text: str
    title: str
    bucket: int
    step: int
    kind: str
    inject: list[str] = field(default_factory=list)

    @classmethod
    def from_json(cls, obj: dict[str, object]) -> Self:
        return cls(_str(obj, "text"), _str(obj, "title"), _int(obj, "bucket"),
                   _int(obj, "step"), _str(obj, "kind"), _strs(obj, "inject", []))


@dataclass(frozen=True)
class Run:
    """Run a host file (a C reproducer built on the host) for at most `timeout` seconds."""

    MODE: ClassVar[str] = "run"
    argv: list[str]
    timeout: float = 60.0

    @classmethod
    def from_json(cls, obj: dict[str, object]) -> Self:
        return cls(_strs(obj, "argv"), _float(obj, "timeout", 60.0))


@dataclass(frozen=True)
class Worker:
    """A campaign worker whose store is the host's; `job` is its Job as JSON."""

    MODE: ClassVar[str] = "worker"
    job: str

    @classmethod
    def from_json(cls, obj: dict[str, object]) -> Self:
        return cls(_str(obj, "job"))


Request = Halt | Probe | Exec | Check | Repro | Throughput | Minimize | Variants | Run | Worker
REQUESTS: dict[str, type[Request]] = {r.MODE: r for r in (
    Halt, Probe, Exec, Check, Repro, Throughput, Minimize, Variants, Run, Worker)}


def request_to_json(request: Request) -> dict[str, object]:
    return {"mode": request.MODE, **_fields(request)}


def request_from_json(obj: dict[str, object]) -> Request:
    """The request `obj` is; MessageError for an unknown or malformed one."""
    mode = obj.get("mode")
    kind = REQUESTS.get(mode) if isinstance(mode, str) else None
    if kind is None:
        raise MessageError(f"unknown request {mode!r}")
    return kind.from_json(obj)


# --- results (guest -> host, under "result") ------------------------------------------


@dataclass(frozen=True)
class Probed:
    features: dict[str, object]

    def to_json(self) -> dict[str, object]:
        return _fields(self)

    @classmethod
    def from_json(cls, obj: dict[str, object]) -> Self:
        return cls(_dict(obj, "features"))


@dataclass(frozen=True)
class Executed:
    diverged: bool

    def to_json(self) -> dict[str, object]:
        return _fields(self)

    @classmethod
    def from_json(cls, obj: dict[str, object]) -> Self:
        return cls(_bool(obj, "diverged", False))


@dataclass(frozen=True)
class Checked:
    titles: list[list[str]]  # each program's divergence titles

    def to_json(self) -> dict[str, object]:
        return _fields(self)

    @classmethod
    def from_json(cls, obj: dict[str, object]) -> Self:
        titles = _get(obj, "titles")
        if not isinstance(titles, list):
            raise MessageError(f"'titles': a list, not {titles!r}")
        return cls([_strs({"t": t}, "t") for t in titles])


@dataclass(frozen=True)
class Reproduced:
    hits: int
    runs: int

    def to_json(self) -> dict[str, object]:
        return _fields(self)

    @classmethod
    def from_json(cls, obj: dict[str, object]) -> Self:
        return cls(_int(obj, "hits"), _int(obj, "runs"))


@dataclass(frozen=True)
class Measured:
    """The throughput figures (campaign/bench.py's Throughput, field by field)."""

    programs: int
    steps: int
    seconds: float
    divergent_programs: int
    model_seconds: float

    def to_json(self) -> dict[str, object]:
        return _fields(self)

    @classmethod
    def from_json(cls, obj: dict[str, object]) -> Self:
        return cls(_int(obj, "programs"), _int(obj, "steps"), _float(obj, "seconds"),
                   _int(obj, "divergent_programs"), _float(obj, "model_seconds"))


@dataclass(frozen=True)
class Minimized:
    """A minimization's outcome; `shows` False (and nothing else) when the program does
    not show the bucket's title in the guest."""

    shows: bool
    program: str = ""
    step: int = 0
    predicate_calls: int = 0
    original_calls: int = 0
    minimized_calls: int = 0
    original_weight: int = 0
    minimized_weight: int = 0
    exhausted: bool = False

    def to_json(self) -> dict[str, object]:
        return _fields(self) if self.shows else {"shows": False}

    @classmethod
    def from_json(cls, obj: dict[str, object]) -> Self:
        if not _bool(obj, "shows", False):
            return cls(False)
        return cls(True, _str(obj, "program"), _int(obj, "step"), _int(obj, "predicate_calls"),
                   _int(obj, "original_calls"), _int(obj, "minimized_calls"),
                   _int(obj, "original_weight"), _int(obj, "minimized_weight"),
                   _bool(obj, "exhausted"))


@dataclass(frozen=True)
class Varied:
    shows: bool  # False: the program does not show the bucket's title, nothing was run

    def to_json(self) -> dict[str, object]:
        return _fields(self)

    @classmethod
    def from_json(cls, obj: dict[str, object]) -> Self:
        return cls(_bool(obj, "shows", False))


@dataclass(frozen=True)
class Ran:
    status: int | None  # None: it ran out of its time
    output: str

    def to_json(self) -> dict[str, object]:
        return _fields(self)

    @classmethod
    def from_json(cls, obj: dict[str, object]) -> Self:
        return cls(_opt_int(obj, "status"), _str(obj, "output", ""))


Result = Probed | Executed | Checked | Reproduced | Measured | Minimized | Varied | Ran

__all__ = [
    "REQUESTS",
    "Check",
    "Checked",
    "Exec",
    "Executed",
    "Halt",
    "Measured",
    "MessageError",
    "Minimize",
    "Minimized",
    "Probe",
    "Probed",
    "Ran",
    "Repro",
    "Reproduced",
    "Request",
    "Result",
    "Run",
    "Throughput",
    "Variants",
    "Varied",
    "Worker",
    "request_from_json",
    "request_to_json",
]
