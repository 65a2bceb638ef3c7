"""The guest's Store: every call is a line on the channel, replayed on the host's Store.

The worker and the Recorder in the guest call `record`, `add_progress`,
`set_minimized` (and whatever else they come to call) on a StoreProxy exactly
as on a Store; what reducing a bucket stores (store/ports.py, ReductionStore) is
typed, so minimize and variants in a guest take the proxy as it is. Each call
goes to the host as {"store": NAME, "args": [...], "kwargs": {...}} and waits
for {"ret": VALUE} or {"error": TEXT}, so the database only ever sees the
host's file system, and nothing the worker records needs a special case.
Values travel as JSON: the store's typed arguments (Divergence, SampleContext,
OpCount) as tagged objects (fuzzer/store/wire.py); a tuple comes back as a
list, which unpacks the same.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from fuzzer.kernel.channel import Channel
from fuzzer.store import Store, StoreError
from fuzzer.store.variants import VariantValue
from fuzzer.store.wire import call_from_wire, to_wire


class StoreProxy:
    """The host's Store, called over `channel`. The operations of ReductionStore
    (store/ports.py) are typed methods, their results read back as the Store gives
    them; any other public method of Store is called by name (a campaign worker's)."""

    def __init__(self, channel: Channel) -> None:
        self._channel = channel

    def _call(self, name: str, *args: object, **kwargs: object) -> object:
        self._channel.send({"store": name, "args": to_wire(args), "kwargs": to_wire(kwargs)})
        reply = self._channel.recv()
        if "error" in reply:
            raise StoreError(str(reply["error"]))
        return reply.get("ret")

    def set_minimized(
        self, bucket_id: int, *, program_text: str, program_hash: str, step: int,
        original_calls: int, minimized_calls: int, expected: str | None = None,
        observed: str | None = None,
    ) -> tuple[int, int] | None:
        ret = self._call("set_minimized", bucket_id, program_text=program_text,
                         program_hash=program_hash, step=step, original_calls=original_calls,
                         minimized_calls=minimized_calls, expected=expected, observed=observed)
        if isinstance(ret, list) and len(ret) == 2:
            return int(str(ret[0])), int(str(ret[1]))
        return None

    def set_variants(self, bucket_id: int, values: list[VariantValue]) -> None:
        self._call("set_variants", bucket_id, values)

    def __getattr__(self, name: str) -> Callable[..., object]:
        if name.startswith("_"):
            raise AttributeError(name)
        return lambda *args, **kwargs: self._call(name, *args, **kwargs)


def serve(store: Store, message: dict[str, object]) -> dict[str, object]:
    """Run one proxied call on the real store; the reply to send back.

    Only public methods of Store are callable; a failure is the reply's error,
    raised again in the guest where the call was made.
    """
    name = str(message.get("store"))
    method = getattr(Store, name, None) if not name.startswith("_") else None
    if not callable(method):
        return {"error": f"the store has no method {name!r}"}
    args = message.get("args") or []
    kwargs = message.get("kwargs") or {}
    if not isinstance(args, list) or not isinstance(kwargs, dict):
        return {"error": f"malformed call of {name}"}
    try:
        args, kwargs = call_from_wire(args, kwargs)
        ret = getattr(store, name)(*args, **kwargs)
    except (StoreError, ValueError, TypeError) as e:
        return {"error": f"{type(e).__name__}: {e}"}
    if dataclasses.is_dataclass(ret) and not isinstance(ret, type):
        ret = dataclasses.asdict(ret)
    return {"ret": ret}
