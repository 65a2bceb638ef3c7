"""Where programs run: the host kernel or a User-Mode Linux guest, behind one interface.

`target_of(kernel)` is a HostTarget for `--kernel host` and a UmlTarget for
`--kernel uml:PATH`. Both answer what the commands and the campaign ask of a
kernel: its build and probed features (probe), one program checked with its
report printed (exec), programs' divergence titles (check), a bucket's
program run N times (repro), minimized or varied with the results stored
(minimize, variants), a C reproducer run (run_c), the throughput benchmark
(throughput), and which module a campaign's worker process runs
(worker_module). The host runs them here, under a Supervisor; a guest is
booted for each (fuzzer/kernel/session.py, typed messages of
fuzzer/kernel/messages.py) and this process keeps the database.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from rich.console import Console

from fuzzer import native, stepcalls
from fuzzer.campaign.ceiling import Ceiling, run_ceiling
from fuzzer.campaign.phases import Breakdown, breakdown
from fuzzer.campaign.throughput import Throughput, throughput
from fuzzer.campaign.transcript import print_report, step_printer
from fuzzer.check import check
from fuzzer.executor import executor_path
from fuzzer.inject import load
from fuzzer.kernel import Kernel, KernelError, session
from fuzzer.kernel.messages import Minimize, Variants
from fuzzer.observe.probe import probe
from fuzzer.prog import ARENA, Program, parse
from fuzzer.prog.arena import HOST, SIZE_ENV
from fuzzer.reduce.bucket import minimize_bucket
from fuzzer.reduce.crun import run_c
from fuzzer.reduce.minimize import Result
from fuzzer.reduce.repro import reproduce, shows
from fuzzer.reduce.variants_run import vary_bucket
from fuzzer.store import Store
from fuzzer.store.identity import KernelId
from fuzzer.store.variants import VariantValue
from fuzzer.trace import Supervisor


@dataclass(frozen=True)
class Measured:
    """The throughput benchmark on a target: its figures, lines saying what ran them, and
    (on the host) the C-only ceiling and the phase breakdown of the same programs."""

    figures: Throughput
    about: list[str]
    ceiling: Ceiling | None = None
    breakdown: Breakdown | None = None
    # Every round (product, then ceiling, on the same programs) when there were several;
    # figures and ceiling are then the round of the median ratio.
    rounds: tuple[tuple[Throughput, Ceiling], ...] = ()


class Target(Protocol):
    """A kernel programs run on (HostTarget, UmlTarget)."""

    @property
    def kernel(self) -> Kernel:
        """The --kernel it is."""
        ...

    @property
    def worker_module(self) -> str:
        """The module a campaign's worker process runs (`python -m MODULE JOB FD`)."""
        ...

    @property
    def where(self) -> str:
        """" on this host" or " on uml:PATH": where a program did (not) show something."""
        ...

    @property
    def named(self) -> str:
        """"" on the host, " (uml:PATH)" for a guest: appended to a build's label."""
        ...

    def preflight(self) -> None:
        """Fail early, in one line: not root, no compiler, a missing executor."""
        ...

    def probe(self) -> tuple[KernelId, dict[str, object]]:
        """Its build and the features the model is told about it."""
        ...

    def identity(self) -> KernelId:
        """Its build."""
        ...

    def exec(self, text: str, name: str, verbose: bool, budget: float, inject: list[str],
             out: Console) -> bool:
        """Check the program `text` and print its report on `out`; whether it diverged."""
        ...

    def check(self, texts: list[str]) -> list[list[str]]:
        """The divergence titles of each program."""
        ...

    def repro(self, program: Program, title: str, runs: int,
              inject: list[str]) -> tuple[int, int, KernelId]:
        """How many of `runs` runs show `title`, of how many, and the build they ran on."""
        ...

    def minimize(self, store: Store, bucket: int, title: str, program: Program, step: int,
                 runs: int, inject: list[str]) -> tuple[Result, int] | None:
        """Minimize a bucket's program, storing it; None when it does not show `title`."""
        ...

    def variants(self, store: Store, bucket: int, title: str, program: Program, step: int,
                 kind: str, inject: list[str]) -> list[VariantValue] | None:
        """Run and store a bucket's program's variants; None when it does not show `title`."""
        ...

    def run_c(self, binary: Path, timeout: float) -> tuple[int | None, str]:
        """Run a built C reproducer: its exit status (None: out of time) and output."""
        ...

    def throughput(self, programs: int, seed: int, cpu: int, rounds: int = 1,
                   texts: Sequence[str] = ()) -> Measured:
        """The throughput benchmark over `programs` generated programs, or the first
        `programs` of `texts` (`rounds` times, each product run followed by its ceiling:
        on the host only)."""
        ...


def median_round(pairs: list[tuple[Throughput, Ceiling]]) -> tuple[Throughput, Ceiling]:
    """The round whose product/ceiling ratio is the median (the lower of the two middle
    ones for an even count)."""
    ranked = sorted(pairs, key=lambda pair: pair[0].steps_per_s / pair[1].steps_per_s)
    return ranked[(len(ranked) - 1) // 2]


def _supervisor(inject: list[str], budget: float | None = None) -> Supervisor:
    injections = [load(spec) for spec in inject]
    if budget is None:
        return Supervisor(executor_path(), injections=injections)
    return Supervisor(executor_path(), budget, injections=injections)


@dataclass(frozen=True)
class HostTarget:
    """The running kernel: everything runs in this process, under a Supervisor."""

    kernel: Kernel

    worker_module = "fuzzer.campaign.worker"
    where = " on this host"
    named = ""

    def preflight(self) -> None:
        Supervisor(executor_path()).close()

    def probe(self) -> tuple[KernelId, dict[str, object]]:
        return self.identity(), probe().as_dict()

    def identity(self) -> KernelId:
        return session.identity(self.kernel)

    def exec(self, text: str, name: str, verbose: bool, budget: float, inject: list[str],
             out: Console) -> bool:
        program = parse(text, name)
        with _supervisor(inject, budget) as supervisor:
            report = check(supervisor, program, step_printer(verbose, out))
        print_report(report, out)
        return bool(report.divergences)

    def check(self, texts: list[str]) -> list[list[str]]:
        with _supervisor([]) as supervisor:
            return [[d.title for d in check(supervisor, parse(t)).divergences] for t in texts]

    def repro(self, program: Program, title: str, runs: int,
              inject: list[str]) -> tuple[int, int, KernelId]:
        with _supervisor(inject) as supervisor:
            hits, total = reproduce(program, title, runs, supervisor)
        return hits, total, self.identity()

    def minimize(self, store: Store, bucket: int, title: str, program: Program, step: int,
                 runs: int, inject: list[str]) -> tuple[Result, int] | None:
        with _supervisor(inject) as supervisor:
            if not shows(supervisor, program, title):
                return None
            return minimize_bucket(store, supervisor, bucket, title, program, step, runs)

    def variants(self, store: Store, bucket: int, title: str, program: Program, step: int,
                 kind: str, inject: list[str]) -> list[VariantValue] | None:
        with _supervisor(inject) as supervisor:
            if not shows(supervisor, program, title):
                return None
            return vary_bucket(store, supervisor, bucket, program, step, kind)

    def run_c(self, binary: Path, timeout: float) -> tuple[int | None, str]:
        return run_c(binary, timeout)

    def throughput(self, programs: int, seed: int, cpu: int, rounds: int = 1,
                   texts: Sequence[str] = ()) -> Measured:
        pairs: list[tuple[Throughput, Ceiling]] = []
        with Supervisor(executor_path(), cpu=cpu) as supervisor:
            # Each product run is paired with a ceiling run right after it: on a host
            # whose speed drifts (a shared VM), a ratio of neighbours drifts least.
            for _ in range(rounds):
                ran: list[tuple[Program, int]] = []
                r = throughput(supervisor, programs, seed, ran, texts)
                pairs.append((r, run_ceiling(ran, budget=r.seconds * 2 + 60)))
            phases = breakdown(supervisor, ran)
        r, ceiling = median_round(pairs)
        return Measured(r, [f"kernel: host ({os.uname().release}), CPU {cpu}",
                            f"model, parser and oracle: {native.describe()}",
                            f"ptrace and /proc calls: {stepcalls.describe()}"], ceiling, phases,
                        tuple(pairs) if rounds > 1 else ())


@dataclass(frozen=True)
class UmlTarget:
    """A User-Mode Linux kernel: a guest boots for each request (kernel/session.py)."""

    kernel: Kernel

    worker_module = "fuzzer.campaign.guest_worker"

    @property
    def where(self) -> str:
        return f" on {self.kernel}"

    @property
    def named(self) -> str:
        return f" ({self.kernel})"

    def preflight(self) -> None:
        executor_path()  # built here: a guest's root file system is read-only

    def probe(self) -> tuple[KernelId, dict[str, object]]:
        return session.probe(self.kernel)

    def identity(self) -> KernelId:
        return session.identity(self.kernel)

    def exec(self, text: str, name: str, verbose: bool, budget: float, inject: list[str],
             out: Console) -> bool:
        parse(text, name)  # a program error is this side's, in one line
        _load(inject)
        return session.exec_in_guest(self.kernel, text, name, verbose, budget, inject,
                                   out.file.write) != 0

    def check(self, texts: list[str]) -> list[list[str]]:
        return session.check_in_guest(self.kernel, texts)

    def repro(self, program: Program, title: str, runs: int,
              inject: list[str]) -> tuple[int, int, KernelId]:
        _load(inject)
        return session.repro_in_guest(self.kernel, program.text(), title, runs, inject)

    def minimize(self, store: Store, bucket: int, title: str, program: Program, step: int,
                 runs: int, inject: list[str]) -> tuple[Result, int] | None:
        _load(inject)
        got, _ = session.minimize_in_guest(
            self.kernel, Minimize(program.text(), title, bucket, step, runs, inject), store,
            runs * 10 + 120)
        if not got.shows:
            return None
        result = Result(parse(got.program, f"bucket {bucket} (minimized)"),
                        predicate_calls=got.predicate_calls, original_calls=got.original_calls,
                        minimized_calls=got.minimized_calls,
                        original_weight=got.original_weight,
                        minimized_weight=got.minimized_weight, exhausted=got.exhausted)
        return result, got.step

    def variants(self, store: Store, bucket: int, title: str, program: Program, step: int,
                 kind: str, inject: list[str]) -> list[VariantValue] | None:
        _load(inject)
        got, _ = session.variants_in_guest(
            self.kernel, Variants(program.text(), title, bucket, step, kind, inject), store,
            3600)
        return store.variants(bucket) if got.shows else None

    def run_c(self, binary: Path, timeout: float) -> tuple[int | None, str]:
        return session.run_in_guest(self.kernel, [str(binary)], timeout)

    def throughput(self, programs: int, seed: int, cpu: int, rounds: int = 1,
                   texts: Sequence[str] = ()) -> Measured:
        m, ready = session.throughput_in_guest(self.kernel, programs, seed, texts)
        figures = Throughput(m.programs, m.steps, m.seconds, m.divergent_programs,
                             m.model_seconds)
        return Measured(figures, [f"kernel: {self.kernel} ({ready.release}; booted in "
                                  f"{ready.seconds:.1f} s, not counted)"])


def _load(inject: list[str]) -> None:
    """Fail early, here, on a bad injection (the guest would load it again)."""
    for spec in inject:
        load(spec)


def target_of(kernel: Kernel) -> Target:
    """The host's kernel or a User-Mode Linux guest's, as `kernel` says."""
    if kernel.uml is None:
        return HostTarget(kernel)
    if ARENA.pages != HOST.pages:
        raise KernelError(f"{SIZE_ENV}=huge: the {ARENA.pages}-page arena runs on the host "
                          f"only (a guest maps the {HOST.pages}-page arena)")
    return UmlTarget(kernel)
