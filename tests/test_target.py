"""One interface for the host and UML guests (campaign/target.py), and the typed guest
messages it sends (kernel/messages.py)."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fuzzer.campaign.target import HostTarget, UmlTarget, target_of
from fuzzer.cli.app import app
from fuzzer.kernel import HOST, parse_kernel
from fuzzer.kernel.channel import ChannelClosed
from fuzzer.kernel.messages import (
    REQUESTS,
    Check,
    Checked,
    Exec,
    Executed,
    Halt,
    Measured,
    MessageError,
    Minimize,
    Minimized,
    Probe,
    Probed,
    Ran,
    Repro,
    Reproduced,
    Request,
    Run,
    Throughput,
    Variants,
    Varied,
    Worker,
    request_from_json,
    request_to_json,
)
from fuzzer.kernel.proxy import StoreProxy, serve
from fuzzer.prog import parse
from fuzzer.store import StoreError, open_store
from fuzzer.store.ports import ReductionStore
from fuzzer.store.variants import VariantValue
from tests.test_kernel import _pair
from tests.test_reduce_cli import TITLE, _record
from tests.uml import UML

runner = CliRunner()

ONE_OF_EACH: list[Request] = [
    Halt(), Probe(), Exec("mlock(@0, 1p)\n", "a.prog", True, 2.5, ["x"]),
    Check(["a\n", "b\n"]), Repro("t\n", "title", 3, ["i"]), Throughput(10, 2, ["t\n"]),
    Minimize("t\n", "title", 4, 1, 300), Variants("t\n", "title", 4, 1, "vma"),
    Run(["/bin/true"], 5.0), Worker('{"job": 1}'),
]


def test_every_request_kind_has_one_message() -> None:
    assert sorted(REQUESTS) == sorted(type(r).MODE for r in ONE_OF_EACH)


@pytest.mark.parametrize("request_", ONE_OF_EACH, ids=lambda r: type(r).MODE)
def test_requests_survive_the_wire(request_: Request) -> None:
    wire = json.loads(json.dumps(request_to_json(request_)))
    assert wire["mode"] == type(request_).MODE
    assert request_from_json(wire) == request_


def test_the_wire_is_the_one_guests_already_read() -> None:
    assert request_to_json(Repro("t\n", "x", 3)) == {
        "mode": "repro", "text": "t\n", "title": "x", "runs": 3, "inject": []}
    # Optional fields may be left out by the sender.
    assert request_from_json({"mode": "throughput", "programs": 5, "seed": 1}) == \
        Throughput(5, 1, [])
    assert request_from_json({"mode": "exec", "text": "t", "budget": 1}) == Exec(
        "t", "<program>", False, 1.0, [])


@pytest.mark.parametrize(("wire", "message"), [
    ({"mode": "nope"}, "unknown request 'nope'"),
    ({}, "unknown request None"),
    ({"mode": "repro", "text": "t", "title": "x"}, "a message without 'runs'"),
    ({"mode": "repro", "text": "t", "title": "x", "runs": "3"}, "'runs': an integer"),
    ({"mode": "repro", "text": "t", "title": "x", "runs": True}, "'runs': an integer"),
    ({"mode": "check", "texts": ["a", 1]}, "'texts': a list of strings"),
    ({"mode": "run", "argv": ["x"], "timeout": "soon"}, "'timeout': a number"),
])
def test_malformed_requests_are_one_line(wire: dict[str, object], message: str) -> None:
    with pytest.raises(MessageError, match=message):
        request_from_json(wire)


RESULTS = [
    Probed({"release": "6.1.1", "mseal": False}), Executed(True), Checked([["a", "b"], []]),
    Reproduced(2, 3), Measured(10, 70, 1.5, 1, 0.25),
    Minimized(True, "mlock(@0, 1p)\n", 0, 12, 3, 1, 9, 2, False), Minimized(False),
    Varied(True), Ran(None, ""), Ran(1, "reproduces\n"),
]


@pytest.mark.parametrize("result", RESULTS, ids=lambda r: type(r).__name__)
def test_results_survive_the_wire(result: object) -> None:
    wire = json.loads(json.dumps(result.to_json()))  # type: ignore[attr-defined]
    assert type(result).from_json(wire) == result  # type: ignore[attr-defined]


def test_a_malformed_result_is_refused() -> None:
    with pytest.raises(MessageError, match="'titles': a list"):
        Checked.from_json({"titles": "a"})
    with pytest.raises(MessageError, match="a message without 'program'"):
        Minimized.from_json({"shows": True})


def test_target_of_picks_the_kernel(tmp_path: Path) -> None:
    host = target_of(HOST)
    assert isinstance(host, HostTarget)
    assert (host.where, host.named, host.worker_module) == (
        " on this host", "", "fuzzer.campaign.worker")
    binary = tmp_path / "linux"
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    guest = target_of(parse_kernel(f"uml:{binary}"))
    assert isinstance(guest, UmlTarget)
    assert (guest.where, guest.named, guest.worker_module) == (
        f" on uml:{binary}", f" (uml:{binary})", "fuzzer.campaign.guest_worker")


CHECKED = ["mmap(@0, 2p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)\n"
           "mlock(@0, 2p)\nmunlock(@0, 1p)\n"]


@pytest.mark.kernel
def test_the_host_target_checks_and_probes() -> None:
    target = target_of(HOST)
    assert target.check(CHECKED) == [[]]
    build, features = target.probe()
    assert build == target.identity() and features


@pytest.mark.uml
def test_a_guest_target_checks_and_probes() -> None:
    target = target_of(parse_kernel(f"uml:{UML}"))
    assert target.check(CHECKED) == [[]]
    build, features = target.probe()
    assert build.release and build.binary is not None and features


@pytest.mark.uml
def test_bench_throughput_on_a_folder_in_a_guest(tmp_path: Path) -> None:
    """--corpus sends the folder's programs to the guest, which runs them and no others."""
    for name, text in (("a", "mlock(@0, 1p)\n"), ("b", "munlock(@0, 1p)\nmlockall(1)\n")):
        (tmp_path / name).write_text(text)
    result = runner.invoke(app, ["bench", "throughput", "--kernel", f"uml:{UML}",
                                 "--corpus", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert f"workload: 2 programs of {tmp_path}, 3 steps, 1.5 steps/program" in result.output


@pytest.mark.uml
@pytest.mark.slow
def test_minimize_variants_and_repro_in_a_guest(tmp_path: Path) -> None:
    """The bucket commands' guest side: what the guest minimizes and varies is stored
    here, through the host's store, and printed as on the host."""
    db = f"sqlite:///{tmp_path / 'mmfuzz.sqlite'}"
    store = open_store(db)
    bucket = _record(store)
    kernel = ["--kernel", f"uml:{UML}", "--db", db]
    result = runner.invoke(app, ["minimize", str(bucket), "--budget", "200", *kernel])
    assert result.exit_code == 0, result.output
    assert f"#{bucket} {TITLE} under populate-needs-lock (on uml:{UML})" in result.output
    assert "5 calls -> 1" in result.output
    assert store.bucket(bucket).minimized_program_text == (
        "mmap(@0, 1p, PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_POPULATE, -1, 0)\n")

    result = runner.invoke(app, ["repro", str(bucket), "--runs", "2", *kernel])
    assert result.exit_code == 0, result.output
    assert f"2/2 runs show: {TITLE}" in result.output
    assert f"(uml:{UML}))" in result.output

    result = runner.invoke(app, ["variants", str(bucket), *kernel])
    assert result.exit_code == 0, result.output
    assert f"(on uml:{UML})" in result.output.splitlines()[0]
    assert store.variants(bucket)

    # Without the injection the guest's kernel agrees: one line, exit status 1.
    plain = _record(store, title="presence: nothing shows this", injections=())
    result = runner.invoke(app, ["minimize", str(plain), *kernel])
    assert result.exit_code == 1, result.output
    assert f"does not show its divergence on uml:{UML}" in result.output


def test_the_guests_store_proxy_types_what_reduction_stores(tmp_path: Path) -> None:
    """minimize and variants in a guest store through a StoreProxy, a ReductionStore
    as the Store is: the host's store keeps it, and the results come back typed."""
    store = open_store(f"sqlite:///{tmp_path}/db.sqlite")
    first, second = _record(store), _record(store, title="presence: another title")
    guest_end, host_end = _pair()

    def host() -> None:
        while True:
            try:
                msg = host_end.recv(5)
            except ChannelClosed:
                return
            host_end.send(serve(store, msg))

    thread = threading.Thread(target=host)
    thread.start()
    proxy: ReductionStore = StoreProxy(guest_end)
    small = parse("mlock(@0, 1p)\n")
    for bucket, duplicate in ((first, None), (second, (second, first))):
        assert proxy.set_minimized(bucket, program_text=small.text(), program_hash=small.hash,
                                   step=0, original_calls=5, minimized_calls=1) == duplicate
    value = VariantValue("flags", "MAP_LOCKED", "+MAP_LOCKED", False, small.text(), small.hash,
                         0, True, 0, "presence", TITLE)
    proxy.set_variants(first, [value])
    with pytest.raises(StoreError, match="999"):
        proxy.set_variants(999, [value])
    os.close(guest_end.wfd)
    thread.join(5)
    assert store.bucket(first).minimized_program_text == small.text()
    assert store.bucket(second).duplicate_of == first
    assert store.variants(first) == [value]
