"""The Store's typed arguments as JSON, for calls replayed from elsewhere (a guest kernel).

to_wire turns a call's arguments into JSON-able values, each typed value
(values.py, and the oracle's Divergence) tagged with its type's name;
from_wire makes the typed values again, checking what arrives, and
call_from_wire does so for a call's positional and keyword arguments.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING

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


_DECODE: dict[str, Callable[[object], object]] = {
    "OpCount": OpCount.from_json,
    "SampleContext": SampleContext.from_json,
    "Divergence": _divergence,
    "VariantValue": _variant,
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
