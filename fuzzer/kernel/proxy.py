"""The guest's Store: every call is a line on the channel, replayed on the host's Store.

A StoreProxy is a WorkerStore (store/ports.py): the worker, its Recorder and the
reduction of its buckets in the guest call `record`, `add_progress`,
`set_minimized`, ... on it exactly as on a Store, and minimize and variants in a
guest take it as the ReductionStore it is. Each call goes to the host as
{"store": NAME, "args": [...], "kwargs": {...}} and waits for {"ret": VALUE} or
{"error": TEXT}, so the database only ever sees the host's file system. Values
travel as JSON, both ways: the store's typed values (Divergence, SampleContext,
OpCount, VariantValue, BucketDetail) as tagged objects (fuzzer/store/wire.py);
each method reads its result back as the Store's type, and a reply of another
shape is a StoreError. The host (`serve`) answers only WORKER_CALLS.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, TypeGuard

from fuzzer.kernel.channel import Channel
from fuzzer.store import BucketDetail, OpCount, SampleContext, Store, StoreError
from fuzzer.store.ports import WORKER_CALLS
from fuzzer.store.variants import VariantValue
from fuzzer.store.wire import call_from_wire, from_wire, to_wire

if TYPE_CHECKING:  # the oracle imports the model: the guest's worker imports it instrumented
    from fuzzer.oracle import Divergence


class StoreProxy:
    """The host's Store, called over `channel`: the WorkerStore's methods, typed."""

    def __init__(self, channel: Channel) -> None:
        self._channel = channel

    def _call(self, name: str, *args: object, **kwargs: object) -> object:
        self._channel.send({"store": name, "args": to_wire(args), "kwargs": to_wire(kwargs)})
        reply = self._channel.recv()
        if "error" in reply:
            raise StoreError(str(reply["error"]))
        try:
            return from_wire(reply.get("ret"))
        except ValueError as e:
            raise StoreError(f"the host's {name} answered {e}") from e

    def record(self, divergence: Divergence, seen: SampleContext) -> tuple[int, bool]:
        ret = self._call("record", divergence, seen)
        if (isinstance(ret, list) and len(ret) == 2 and _is_int(ret[0])
                and isinstance(ret[1], bool)):
            return ret[0], ret[1]
        raise _malformed("record", ret)

    def add_progress(
        self, campaign_id: int, *, programs: int, steps: int, ops: Iterable[OpCount] = ()
    ) -> None:
        _none("add_progress", self._call("add_progress", campaign_id, programs=programs,
                                         steps=steps, ops=list(ops)))

    def add_point(self, campaign_id: int, *, worker: int, programs: int, steps: int) -> None:
        _none("add_point", self._call("add_point", campaign_id, worker=worker,
                                      programs=programs, steps=steps))

    def add_corpus_many(self, campaign_id: int,
                        entries: list[tuple[str, str, list[str]]]) -> list[int | None]:
        ret = self._call("add_corpus_many", campaign_id, entries)
        if isinstance(ret, list) and all(i is None or _is_int(i) for i in ret):
            return [i if _is_int(i) else None for i in ret]
        raise _malformed("add_corpus_many", ret)

    def corpus_newest(self, limit: int, campaign: int | None = None) -> tuple[list[str], int]:
        ret = self._call("corpus_newest", limit, campaign=campaign)
        if isinstance(ret, list) and len(ret) == 2 and _is_int(ret[1]):
            return _texts("corpus_newest", ret[0]), ret[1]
        raise _malformed("corpus_newest", ret)

    def corpus_after(self, after_id: int, limit: int = 1000) -> list[tuple[int, str]]:
        ret = self._call("corpus_after", after_id, limit)
        rows: list[tuple[int, str]] = []
        for row in ret if isinstance(ret, list) else [None]:
            if not (isinstance(row, list) and len(row) == 2 and _is_int(row[0])
                    and isinstance(row[1], str)):
                raise _malformed("corpus_after", ret)
            rows.append((row[0], row[1]))
        return rows

    def minimized_programs(self, limit: int) -> list[str]:
        return _texts("minimized_programs", self._call("minimized_programs", limit))

    def bucket(self, bucket_id: int) -> BucketDetail:
        ret = self._call("bucket", bucket_id)
        if isinstance(ret, BucketDetail):
            return ret
        raise _malformed("bucket", ret)

    def set_minimized(
        self, bucket_id: int, *, program_text: str, program_hash: str, step: int,
        original_calls: int, minimized_calls: int, expected: str | None = None,
        observed: str | None = None,
    ) -> tuple[int, int] | None:
        ret = self._call("set_minimized", bucket_id, program_text=program_text,
                         program_hash=program_hash, step=step, original_calls=original_calls,
                         minimized_calls=minimized_calls, expected=expected, observed=observed)
        if ret is None:
            return None
        if isinstance(ret, list) and len(ret) == 2 and _is_int(ret[0]) and _is_int(ret[1]):
            return ret[0], ret[1]
        raise _malformed("set_minimized", ret)

    def set_variants(self, bucket_id: int, values: list[VariantValue]) -> None:
        _none("set_variants", self._call("set_variants", bucket_id, values))


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _texts(name: str, value: object) -> list[str]:
    if isinstance(value, list) and all(isinstance(t, str) for t in value):
        return [str(t) for t in value]
    raise _malformed(name, value)


def _none(name: str, value: object) -> None:
    if value is not None:
        raise _malformed(name, value)


def _malformed(name: str, value: object) -> StoreError:
    return StoreError(f"the host's {name} answered {str(value)[:200]!r}, not what a Store "
                      f"gives")


def serve(store: Store, message: dict[str, object]) -> dict[str, object]:
    """Run one proxied call on the real store; the reply to send back.

    Only the WorkerStore's methods (WORKER_CALLS) are callable; a failure is the
    reply's error, raised again in the guest where the call was made. The result
    goes back in the wire's form (store/wire.py).
    """
    name = str(message.get("store"))
    if name not in WORKER_CALLS:
        return {"error": f"the store has no method {name!r} a guest may call"}
    args = message.get("args") or []
    kwargs = message.get("kwargs") or {}
    if not isinstance(args, list) or not isinstance(kwargs, dict):
        return {"error": f"malformed call of {name}"}
    try:
        args, kwargs = call_from_wire(args, kwargs)
        ret = getattr(store, name)(*args, **kwargs)
    except (StoreError, ValueError, TypeError) as e:
        return {"error": f"{type(e).__name__}: {e}"}
    return {"ret": to_wire(ret)}
