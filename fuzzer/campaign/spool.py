"""Store writes kept aside in a local file while the database server is away.

A worker writes its findings and progress through a Spool. While the store
answers, a call goes straight to it (the Store itself retries a lost
connection for its `patience`, store/retry.py). When the store is still
unreachable after that, the call is appended to the spool file, one JSON line
in the store's wire format (store/wire.py), flushed to disk, and fuzzing goes
on; later calls go to the file too, behind it, so the order is kept. Every
RETRY_EVERY seconds the spool tries the store once (no patience) and writes
what it holds, oldest first, dropping each line once written. A worker that
ends with lines still spooled leaves the file in the campaign's scratch folder,
where the campaign's parent writes it (drain_folder) before it finishes the
campaign, or says where it is kept.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from fuzzer.store import OpCount, SampleContext, Store, StoreError, StoreUnreachable
from fuzzer.store.wire import call_from_wire, to_wire

if TYPE_CHECKING:  # the oracle imports the model: a worker imports it instrumented
    from fuzzer.oracle import Divergence

T = TypeVar("T")

RETRY_EVERY = 2.0  # seconds between tries of the store while lines are spooled
SUFFIX = ".spool"
# Told of each spooled call once written: (method name, its arguments, what it returned).
Replayed = Callable[[str, list[object], object], None]


class Spool:
    def __init__(self, store: Store, path: Path, on_replay: Replayed | None = None) -> None:
        self.store, self.path, self.on_replay = store, path, on_replay
        self.failed: list[str] = []  # spooled calls the store refused when written
        self._lines = _read_lines(path)
        self._tried = time.monotonic()

    @property
    def pending(self) -> int:
        """Calls waiting in the file."""
        return len(self._lines)

    def record(self, divergence: Divergence, seen: SampleContext) -> tuple[int, bool] | None:
        """store.record(...); None when the call was spooled instead."""
        return self._call(lambda: self.store.record(divergence, seen), "record",
                          divergence, seen)

    def add_progress(self, campaign_id: int, *, programs: int, steps: int,
                     ops: Iterable[OpCount] = ()) -> None:
        """store.add_progress(...), or spooled."""
        ops = list(ops)
        self._call(lambda: self.store.add_progress(campaign_id, programs=programs,
                                                   steps=steps, ops=ops),
                   "add_progress", campaign_id, programs=programs, steps=steps, ops=ops)

    def call(self, name: str, *args: object, **kwargs: object) -> object | None:
        """store.NAME(*args, **kwargs); None when the call was spooled instead."""
        def make() -> object:
            result: object = getattr(self.store, name)(*args, **kwargs)
            return result
        return self._call(make, name, *args, **kwargs)

    def _call(self, make: Callable[[], T], name: str, *args: object,
              **kwargs: object) -> T | None:
        """make() (the call NAME(*args, **kwargs) on the store), or the call spooled."""
        if self._lines:
            self.drain()
        if not self._lines:
            try:
                return make()
            except StoreUnreachable:
                pass
        line = json.dumps({"store": name, "args": to_wire(list(args)), "kwargs": to_wire(kwargs)})
        self._lines.append(line)
        with self.path.open("a") as f:
            f.write(line + "\n")
            f.flush()
            os.fsync(f.fileno())
        self._tried = time.monotonic()
        return None

    def drain(self, *, now: bool = False, patience: float = 0.0) -> int:
        """Write the spooled calls the store takes (at most every RETRY_EVERY seconds,
        unless now); the number still spooled."""
        if not self._lines or (not now and time.monotonic() - self._tried < RETRY_EVERY):
            return len(self._lines)
        self._tried = time.monotonic()
        saved, self.store.patience = self.store.patience, patience
        try:
            while self._lines:
                if not self._replay(self._lines[0]):
                    break
                self._lines.pop(0)
        finally:
            self.store.patience = saved
            self._rewrite()
        return len(self._lines)

    def _replay(self, line: str) -> bool:
        """Make one spooled call; False if the store is still unreachable."""
        message = json.loads(line)
        name = str(message["store"])
        args, kwargs = call_from_wire(message["args"], message["kwargs"])
        try:
            ret = getattr(self.store, name)(*args, **kwargs)
        except StoreUnreachable:
            return False
        except (StoreError, ValueError) as e:
            self.failed.append(f"a spooled {name} was refused: {e}")
            return True
        if self.on_replay is not None:
            self.on_replay(name, args, ret)
        return True

    def _rewrite(self) -> None:
        if not self._lines:
            self.path.unlink(missing_ok=True)
            return
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text("".join(line + "\n" for line in self._lines))
        tmp.replace(self.path)


def _read_lines(path: Path) -> list[str]:
    try:
        return [ln for ln in path.read_text().splitlines() if ln.strip()]
    except FileNotFoundError:
        return []


def spool_path(scratch: str | None) -> Path | None:
    """This process's spool file in a campaign's scratch folder (None: no spooling)."""
    return None if not scratch else Path(scratch) / f"worker-{os.getpid()}{SUFFIX}"


def drain_folder(store: Store, folder: Path, patience: float) -> list[str]:
    """Write every spool file a campaign's workers left in folder, then remove the
    folder if nothing is left in it; warnings for people (what was refused or kept)."""
    warnings: list[str] = []
    for path in sorted(folder.glob(f"*{SUFFIX}")):
        spool = Spool(store, path)
        left = spool.drain(now=True, patience=patience)
        warnings += spool.failed
        if left:
            warnings.append(f"{left} store writes the database did not take are kept in {path}")
    if not any(folder.iterdir()):
        folder.rmdir()
    return warnings
