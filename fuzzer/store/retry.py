"""Riding out a database server that goes away for a while (PostgreSQL restarts).

Every public method of the Store is one or more short transactions (base.py).
When one fails because the server is unreachable (StoreUnreachable: the
connection was cut, or refused), the whole call is made again, after a pause
that doubles from RETRY_FIRST up to RETRY_MOST, until the store's `patience`
(seconds) is spent; then the StoreUnreachable goes to the caller, which may
keep what it was writing aside (campaign/spool.py). The failed transaction was
rolled back by the server, so making it again writes it once; only a connection
cut during the COMMIT itself leaves it unknown whether the first one landed.
A call made from inside another is not retried on its own: the outer one is.
SQLite never raises StoreUnreachable (its writers wait on the file's lock).
"""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Callable
from typing import Any, TypeVar

from fuzzer.store.db import StoreUnreachable

PATIENCE = 30.0  # seconds a call keeps trying while the server is away
RETRY_FIRST = 0.1
RETRY_MOST = 2.0

C = TypeVar("C", bound=type)


def retrying(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        if self._retrying:
            return method(self, *args, **kwargs)
        deadline = time.monotonic() + self.patience
        pause = RETRY_FIRST
        self._retrying = True
        try:
            while True:
                try:
                    return method(self, *args, **kwargs)
                except StoreUnreachable:
                    if time.monotonic() + pause > deadline:
                        raise
                time.sleep(pause)
                pause = min(pause * 2, RETRY_MOST)
        finally:
            self._retrying = False

    return call


def retry_when_unreachable(cls: C) -> C:
    """Wrap every public method of cls (but close) in `retrying`."""
    for name, method in inspect.getmembers(cls, inspect.isfunction):
        if not name.startswith("_") and name != "close":
            setattr(cls, name, retrying(method))
    return cls
