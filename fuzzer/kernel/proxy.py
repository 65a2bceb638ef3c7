"""The guest's Store: every call is a line on the channel, replayed on the host's Store.

The worker and the Recorder in the guest call `record`, `add_progress`,
`set_minimized` (and whatever else they come to call) on a StoreProxy exactly
as on a Store. Each call goes to the host as {"store": NAME, "args": [...],
"kwargs": {...}} and waits for {"ret": VALUE} or {"error": TEXT}, so the
database only ever sees the host's file system, and nothing the worker records
needs a special case. Values travel as JSON: the store's typed arguments
(Divergence, SampleContext, OpCount) as tagged objects (fuzzer/store/wire.py);
a tuple comes back as a list, which unpacks the same.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from fuzzer.kernel.channel import Channel
from fuzzer.store import Store, StoreError
from fuzzer.store.wire import call_from_wire, to_wire


class StoreProxy:
    def __init__(self, channel: Channel) -> None:
        self._channel = channel

    def __getattr__(self, name: str) -> Callable[..., object]:
        if name.startswith("_"):
            raise AttributeError(name)

        def call(*args: object, **kwargs: object) -> object:
            self._channel.send({"store": name, "args": to_wire(args), "kwargs": to_wire(kwargs)})
            reply = self._channel.recv()
            if "error" in reply:
                raise StoreError(str(reply["error"]))
            return reply.get("ret")

        return call


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
