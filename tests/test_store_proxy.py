"""A guest's store proxy against a real store: every WorkerStore method, a round trip.

The guest's StoreProxy sends each call over a Channel (here a pair of pipes) to
`serve` on a real SQLite Store in a thread, as the host does for a guest kernel.
Each write is made on a twin Store too, in the same order, and must give the same
result, of the same type; each read must give what the host's store gives itself.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from fuzzer.kernel.channel import Channel, ChannelClosed
from fuzzer.kernel.proxy import StoreProxy, serve
from fuzzer.oracle import Divergence, DivergenceKind
from fuzzer.prog import parse
from fuzzer.store import BucketDetail, OpCount, SampleContext, Store, StoreError, open_store
from fuzzer.store.ports import WORKER_CALLS, WorkerStore
from fuzzer.store.variants import VariantValue
from fuzzer.store.wire import to_wire

PROGRAM = parse("mlock(@0, 1p)\n")
SMALL = parse("munlock(@0, 1p)\n")
D = Divergence(DivergenceKind.RESULT, "result: mlock", 0, "0", "-ENOMEM")
OTHER = Divergence(DivergenceKind.RESULT, "result: munlock", 0, "0", "-EINVAL")
VALUE = VariantValue("flags", "MAP_LOCKED", "+MAP_LOCKED", False, SMALL.text(), SMALL.hash,
                     0, True, 0, "result", D.title)


def _seen(cid: int) -> SampleContext:
    return SampleContext(cid, PROGRAM.text(), PROGRAM.hash, "6.18.44", ("a",),
                         {"release": "6.18.44"}, "#1 SMP", symptoms=("result: other",))


# (method, positional arguments, keyword arguments, a read?) in the order made:
# bucket 1 and 2 are recorded first, the corpus written before it is read.
CALLS: list[tuple[str, tuple[object, ...], dict[str, object], bool]] = [
    ("record", (D, "SEEN"), {}, False),
    ("record", (D, "SEEN"), {}, False),
    ("record", (OTHER, "SEEN"), {}, False),
    ("add_progress", ("CID",), {"programs": 3, "steps": 7,
                                "ops": [OpCount("mlock", "steps", "", 7)]}, False),
    ("add_point", ("CID",), {"worker": 0, "programs": 3, "steps": 7}, False),
    ("add_corpus_many", ("CID", [(PROGRAM.text(), PROGRAM.hash, ["mlock"]),
                                 (SMALL.text(), SMALL.hash, ["munlock", "x"]),
                                 (PROGRAM.text(), PROGRAM.hash, ["mlock"])]), {}, False),
    ("set_minimized", (1,), {"program_text": SMALL.text(), "program_hash": SMALL.hash,
                             "step": 0, "original_calls": 1, "minimized_calls": 1,
                             "expected": "0", "observed": "-EINVAL"}, False),
    ("set_minimized", (2,), {"program_text": SMALL.text(), "program_hash": SMALL.hash,
                             "step": 0, "original_calls": 1, "minimized_calls": 1}, False),
    ("set_variants", (1, [VALUE]), {}, False),
    ("corpus_newest", (10,), {"campaign": "CID"}, True),
    ("corpus_newest", (10,), {}, True),
    ("corpus_after", (0,), {}, True),
    ("corpus_after", (1, 1), {}, True),
    ("minimized_programs", (5,), {}, True),
    ("bucket", (1,), {}, True),
    ("bucket", (2,), {}, True),
]


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[tuple[Store, Store, StoreProxy, int]]:
    """(the host's store, its twin, the guest's proxy to the host's store, campaign id)."""
    host, twin = (open_store(f"sqlite:///{tmp_path}/{n}.sqlite") for n in ("host", "twin"))
    cids = [s.start_campaign(kernel="6.18.44", host="h", options={}) for s in (host, twin)]
    assert cids[0] == cids[1]
    a_r, b_w = os.pipe()
    b_r, a_w = os.pipe()
    guest_end, host_end = Channel(a_r, a_w), Channel(b_r, b_w)

    def serving() -> None:
        while True:
            try:
                msg = host_end.recv(10)
            except ChannelClosed:
                return
            host_end.send(serve(host, msg))

    thread = threading.Thread(target=serving)
    thread.start()
    try:
        yield host, twin, StoreProxy(guest_end), cids[0]
    finally:
        os.close(guest_end.wfd)
        thread.join(10)
        for fd in (a_r, b_r, b_w):
            os.close(fd)


def _bind(values: object, cid: int) -> object:
    if values == "CID":
        return cid
    if values == "SEEN":
        return _seen(cid)
    if isinstance(values, tuple):
        return tuple(_bind(v, cid) for v in values)
    if isinstance(values, dict):
        return {k: _bind(v, cid) for k, v in values.items()}
    return values


def test_every_worker_call_round_trips_typed(
        stores: tuple[Store, Store, StoreProxy, int]) -> None:
    host, twin, proxy, cid = stores
    store: WorkerStore = proxy  # a WorkerStore (mypy proves it where guest.py passes one)
    assert {name for name, *_ in CALLS} == WORKER_CALLS
    results = []
    for name, args, kwargs, read in CALLS:
        if name == "add_progress":  # the buckets are there: one measured (not a worker call)
            for s in (host, twin):
                s.set_reliability(1, hits=2, runs=3, kernel="6.18.44", build="#1 SMP")
        a, kw = _bind(args, cid), _bind(kwargs, cid)
        assert isinstance(a, tuple) and isinstance(kw, dict)
        got = getattr(store, name)(*a, **kw)
        want = getattr(host if read else twin, name)(*a, **kw)
        assert got == want, name
        results.append(got)
        assert type(got) is type(want), name
        if isinstance(want, (list, tuple)):
            assert [type(v) for v in got] == [type(v) for v in want], name
    assert results[:3] == [(1, True), (1, False), (2, True)]
    assert results[5] == [1, 2, None] and results[6:8] == [None, (2, 1)]
    detail = store.bucket(1)
    assert isinstance(detail, BucketDetail) and detail.samples[0].injections == ("a",)
    assert detail.reliabilities[0].hits == 2 and detail.minimized_program_text == SMALL.text()
    assert store.bucket(2).duplicate_of == 1  # set_minimized(2, ...) gave (2, 1), as the twin
    assert host.variants(1) == [VALUE]
    assert host.campaign(cid).steps == 7 and [p.programs for p in host.points(cid)] == [3]


def test_the_proxy_has_only_the_worker_calls(
        stores: tuple[Store, Store, StoreProxy, int]) -> None:
    proxy = stores[2]
    for name in WORKER_CALLS:
        assert callable(vars(StoreProxy).get(name)), name
    assert not hasattr(proxy, "start_campaign") and not hasattr(proxy, "__getattr__")
    with pytest.raises(StoreError, match="no campaign with id 999"):
        proxy.add_point(999, worker=0, programs=1, steps=1)
    with pytest.raises(StoreError, match="no bucket with id 7"):
        proxy.bucket(7)


@pytest.mark.parametrize(("name", "args"), [
    ("start_campaign", []),  # a Store method no worker calls
    ("close", []),
    ("variants", [1]),  # reading variants is the host's (campaign/target.py)
    ("_write", []),
    ("engine", []),
    ("nothing", []),
])
def test_serve_refuses_what_a_worker_does_not_call(tmp_path: Path, name: str,
                                                   args: list[object]) -> None:
    store = open_store(f"sqlite:///{tmp_path}/db.sqlite")
    reply = serve(store, {"store": name, "args": args, "kwargs": {}})
    assert reply == {"error": f"the store has no method {name!r} a guest may call"}
    store.start_campaign(kernel="6.18.44", host="h", options={})  # still open


def test_serve_replies_in_the_wire_form(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/db.sqlite")
    cid = store.start_campaign(kernel="6.18.44", host="h", options={})
    message = {"store": "record", "args": to_wire([D, _seen(cid)]), "kwargs": {}}
    assert serve(store, message) == {"ret": [1, True]}
    reply = serve(store, {"store": "bucket", "args": [1], "kwargs": {}})
    ret = reply["ret"]
    assert isinstance(ret, dict) and ret["__store_value__"] == "BucketDetail"
    assert serve(store, {"store": "bucket", "args": ["x"], "kwargs": {}})["error"]
