"""The Store's typed arguments as JSON, for calls replayed from elsewhere (a guest kernel).

to_wire turns a call's arguments into JSON-able values, each typed value
(values.py, and the oracle's Divergence) tagged with its type's name;
from_wire makes the typed values again, checking what arrives, and
call_from_wire does so for a call's positional and keyword arguments. What a
call returns travels the same way back: a bucket (BucketDetail, with its samples
and times) is tagged too, so a guest's store proxy reads it back typed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from fuzzer.store.rows import BucketDetail, ReliabilityRow, SampleRow
from fuzzer.store.values import OpCount, SampleContext
from fuzzer.store.variants import VariantValue

if TYPE_CHECKING:
    from fuzzer.oracle import Divergence

_TAG = "__store_value__"


def to_wire(value: object) -> object:
    """value with every typed value in it (also inside lists, tuples, dicts) tagged."""
    # The oracle imports the model, which the guest's worker may import only under
    # Atheris's instrumentation (campaign/worker.py): so not at this module's top.
    from fuzzer.oracle import Divergence

    if isinstance(value, (OpCount, SampleContext)):
        return {_TAG: type(value).__name__, "value": value.to_json()}
    if isinstance(value, (Divergence, VariantValue)):
        return {_TAG: type(value).__name__, "value": dataclasses.asdict(value)}
    if isinstance(value, BucketDetail):
        return {_TAG: "BucketDetail", "value": _times(dataclasses.asdict(value))}
    if isinstance(value, (list, tuple)):
        return [to_wire(v) for v in value]
    if isinstance(value, dict):
        return {k: to_wire(v) for k, v in value.items()}
    return value


def _divergence(data: object) -> Divergence:
    from fuzzer.oracle import Divergence, DivergenceKind  # (see to_wire)

    if not isinstance(data, dict):
        raise ValueError(f"a divergence is a JSON object, not {data!r}")
    return Divergence(**{**data, "kind": DivergenceKind(str(data.get("kind")))})


def _variant(data: object) -> VariantValue:
    if not isinstance(data, dict):
        raise ValueError(f"a variant is a JSON object, not {data!r}")
    return VariantValue(**data)


def _times(value: object) -> object:
    """value with its datetimes as ISO text (a row's times)."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [_times(v) for v in value]
    if isinstance(value, dict):
        return {k: _times(v) for k, v in value.items()}
    return value


def _fields(data: object, what: str) -> dict[str, object]:
    if not isinstance(data, dict):
        raise ValueError(f"{what} is a JSON object, not {data!r}")
    return data


def _time(text: object) -> datetime:
    return datetime.fromisoformat(str(text))


def _names(value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise ValueError(f"a list of names, not {value!r}")
    return tuple(str(v) for v in value)


def _list(value: object, what: str) -> list[object]:
    if not isinstance(value, list):
        raise ValueError(f"{what} are a JSON list, not {value!r}")
    return value


def _bucket(data: object) -> BucketDetail:
    fields = _fields(data, "a bucket")
    try:
        samples = []
        for item in _list(fields.get("samples"), "a bucket's samples"):
            s = _fields(item, "a sample")
            samples.append(SampleRow(**{**s, "created": _time(s.get("created")),  # type: ignore[arg-type]
                                        "injections": _names(s.get("injections", [])),
                                        "symptoms": _names(s.get("symptoms", []))}))
        reliabilities = tuple(
            ReliabilityRow(**{**r, "at": _time(r.get("at"))})  # type: ignore[arg-type]
            for r in (_fields(i, "a reliability")
                      for i in _list(fields.get("reliabilities", []), "a bucket's reliabilities")))
        return BucketDetail(**{  # type: ignore[arg-type]
            **fields, "first_seen": _time(fields.get("first_seen")),
            "last_seen": _time(fields.get("last_seen")), "samples": samples,
            "reliabilities": reliabilities})
    except TypeError as e:
        raise ValueError(f"a malformed bucket: {e}") from e


_DECODE: dict[str, Callable[[object], object]] = {
    "OpCount": OpCount.from_json,
    "SampleContext": SampleContext.from_json,
    "Divergence": _divergence,
    "VariantValue": _variant,
    "BucketDetail": _bucket,
}


def from_wire(value: object) -> object:
    """What to_wire made, typed again; a malformed typed value is a ValueError."""
    if isinstance(value, dict):
        if _TAG in value:
            decode = _DECODE.get(str(value[_TAG]))
            if decode is None:
                raise ValueError(f"no such store value: {value[_TAG]!r}")
            return decode(value.get("value"))
        return {k: from_wire(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_wire(v) for v in value]
    return value


def call_from_wire(
    args: list[object], kwargs: dict[str, object]
) -> tuple[list[object], dict[str, object]]:
    """A call's arguments as to_wire sent them, typed again."""
    return [from_wire(a) for a in args], {k: from_wire(v) for k, v in kwargs.items()}
