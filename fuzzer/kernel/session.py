"""One request to a fresh guest, from boot to halt: probe, exec, repro, minimize, run...

Each call boots the guest, sends one request, relays what it prints, answers
the store calls it makes (minimize and variants store their results through
the host's store, proxy.py), and halts it. Requests and results are the typed
messages of messages.py. `identity` says which build a
kernel is (store/identity.py): the host's uname, or what a guest reports with the
UML binary's hash. A guest that dies or stops answering meanwhile raises GuestFault (with the
kernel crash found on its console, if any): for `exec` that is the finding,
for the others an error with the crash's title.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from functools import cache
from typing import TYPE_CHECKING, TypeVar

from fuzzer.kernel.channel import ChannelClosed, ChannelTimeout
from fuzzer.kernel.console import Crash
from fuzzer.kernel.messages import (
    Check,
    Checked,
    Exec,
    Executed,
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
    request_to_json,
)
from fuzzer.kernel.proxy import serve
from fuzzer.kernel.spec import Kernel, KernelError
from fuzzer.kernel.uml import Guest, Ready
from fuzzer.store.identity import KernelId

if TYPE_CHECKING:
    from fuzzer.store import Store


class GuestFault(KernelError):
    """The guest crashed or stopped answering before it answered the request."""

    def __init__(self, message: str, crash: Crash | None, console: str) -> None:
        super().__init__(message)
        self.crash, self.console = crash, console


R = TypeVar("R", Probed, Executed, Checked, Reproduced, Measured, Minimized, Varied, Ran)


def request(
    kernel: Kernel,
    message: Request,
    answer: type[R],
    on_out: Callable[[str], object] = lambda text: None,
    timeout: float | None = None,
    store: Store | None = None,
) -> tuple[R, Ready]:
    """Boot, send `message`, relay {"out"} text to on_out and {"store"} calls to `store`;
    the {"result"}, read as an `answer`, and the guest's Ready."""
    with Guest(kernel) as guest:
        assert guest.ready is not None
        guest.send(request_to_json(message))
        while True:
            try:
                msg = guest.recv(timeout)
            except (ChannelClosed, ChannelTimeout) as e:
                crash = guest.crash()
                console = guest.console.text() if guest.console else ""
                what = crash.title if crash else f"{e}; last console line: "\
                    f"{guest.last_console_line()}"
                raise GuestFault(f"{kernel}: the guest failed: {what}", crash, console) from None
            if "out" in msg:
                on_out(str(msg["out"]))
            elif "store" in msg:
                if store is None:
                    guest.send({"error": "this request has no store"})
                else:
                    guest.send(serve(store, msg))
            elif "result" in msg and isinstance(msg["result"], dict):
                try:
                    return answer.from_json(msg["result"]), guest.ready
                except MessageError as e:
                    raise KernelError(f"{kernel} ({guest.ready.release}): a malformed "
                                      f"{message.MODE} result: {e}") from None
            elif "error" in msg:
                raise KernelError(f"{kernel} ({guest.ready.release}): {msg['error']}")
            elif "exit" in msg:
                raise KernelError(f"{kernel}: the guest exited with status {msg['exit']} "
                                  f"without answering: {guest.last_console_line()}")


@cache
def probe(kernel: Kernel) -> tuple[KernelId, dict[str, object]]:
    """The guest's build and probed features (one boot per kernel and process)."""
    result, ready = request(kernel, Probe(), Probed, timeout=120)
    return identity(kernel, ready), result.features


def identity(kernel: Kernel, ready: Ready | None = None) -> KernelId:
    """Which build `kernel` is: the host's uname; for UML what the guest reported at
    boot (`ready`; a guest boots for it when not given) and the binary's hash."""
    if kernel.uml is None:
        u = os.uname()
        return KernelId(u.release, u.version, None, kernel.name)
    if ready is None:
        return probe(kernel)[0]
    return KernelId(ready.release, ready.build, kernel.binary(), kernel.name)


def exec_in_guest(kernel: Kernel, text: str, name: str, verbose: bool, budget: float,
                  inject: list[str], write: Callable[[str], object]) -> int:
    """`mmfuzz exec` in a guest: its report relayed to write; 0 agreed, 1 diverged or crashed."""
    try:
        result, ready = request(kernel, Exec(text, name, verbose, budget, inject), Executed,
                                write, timeout=budget + 120)
    except GuestFault as e:
        if e.crash is None:
            raise
        write(f"\nkernel-crash: the guest kernel died running the program\n"
              f"{e.crash.title}\n{e.crash.log}\n")
        return 1
    write(f"kernel: {ready.release} ({kernel})\n")
    return 1 if result.diverged else 0


def repro_in_guest(kernel: Kernel, text: str, title: str, runs: int,
                   inject: list[str]) -> tuple[int, int, KernelId]:
    """`mmfuzz repro` in a guest: how many of `runs` runs show `title` (a crash shows it too)."""
    try:
        result, ready = request(kernel, Repro(text, title, runs, inject), Reproduced,
                                timeout=runs * 10 + 120)
    except GuestFault as e:
        if e.crash is not None and e.crash.title == title:
            # a kernel crash reproduces on the first run, and ends the guest
            return 1, 1, identity(kernel)
        raise
    return result.hits, result.runs, identity(kernel, ready)


def minimize_in_guest(kernel: Kernel, message: Minimize, store: Store,
                      timeout: float) -> tuple[Minimized, KernelId]:
    """`minimize` of a bucket in a guest, storing through `store`; the guest's result
    (shows False when the program does not show the title there)."""
    result, ready = request(kernel, message, Minimized, timeout=timeout, store=store)
    return result, identity(kernel, ready)


def variants_in_guest(kernel: Kernel, message: Variants, store: Store,
                      timeout: float) -> tuple[Varied, KernelId]:
    """`variants` of a bucket in a guest, storing them through `store`."""
    result, ready = request(kernel, message, Varied, timeout=timeout, store=store)
    return result, identity(kernel, ready)


def run_in_guest(kernel: Kernel, argv: list[str], timeout: float) -> tuple[int | None, str]:
    """Run a host file in a guest (the host's root is the guest's, read-only): its exit
    status (None: it ran out of `timeout` seconds) and its output."""
    result, _ = request(kernel, Run(argv, timeout), Ran, timeout=timeout + 120)
    return result.status, result.output


def check_in_guest(kernel: Kernel, texts: list[str]) -> list[list[str]]:
    """The divergence titles of each program, checked in one guest."""
    result, _ = request(kernel, Check(texts), Checked, timeout=len(texts) * 10 + 120)
    return result.titles


def throughput_in_guest(kernel: Kernel, programs: int, seed: int,
                        texts: Sequence[str] = ()) -> tuple[Measured, Ready]:
    """The throughput benchmark run in a guest (on `texts`' programs, if any, else on
    generated ones); its figures and the guest (release, boot time)."""
    return request(kernel, Throughput(programs, seed, list(texts)), Measured,
                   timeout=programs * 10 + 120)
