"""What every command shares: the --db option, one-line errors, the consoles."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.console import Console

from fuzzer.campaign.cpus import CpuError
from fuzzer.campaign.options import SEARCHES
from fuzzer.campaign.run import CampaignError
from fuzzer.executor import ExecutorBuildError
from fuzzer.inject import Injection, InjectionError, load
from fuzzer.kernel import GUEST_MEM, Kernel, KernelError, parse_kernel
from fuzzer.model import Unsupported
from fuzzer.observe import ObserveError
from fuzzer.prog import ProgramError
from fuzzer.store import DEFAULT_URL, StoreError
from fuzzer.trace import SupervisorError

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

DbOption = Annotated[
    str,
    typer.Option("--db", help="SQLAlchemy URL of the results database.", show_default=True),
]
DEFAULT_DB = DEFAULT_URL

# Errors a user can cause, each shown as one line (exit status 2).
USER_ERRORS: tuple[type[BaseException], ...] = (
    StoreError,
    ProgramError,
    SupervisorError,
    ExecutorBuildError,
    CampaignError,
    CpuError,
    ObserveError,
    Unsupported,
    InjectionError,
    KernelError,
    OSError,
)

InjectOption = Annotated[
    list[str] | None,
    typer.Option("--inject", help="Emulate a kernel bug: a catalogue name or FILE.py:NAME "
                 "(repeatable; see `mmfuzz inject --list`)."),
]


def injections(specs: list[str] | None) -> list[Injection]:
    return [load(spec) for spec in specs or []]


KernelOption = Annotated[str, typer.Option(
    "--kernel", help="Kernel to run programs on: host, or uml:PATH (a User-Mode Linux binary, "
    "e.g. uml:/usr/bin/linux or a patched tree's ./linux).")]
GuestMemOption = Annotated[int, typer.Option(
    "--guest-mem", help="MiB of memory for each User-Mode Linux guest.", min=64)]


def kernel_of(spec: str, mem_mb: int = GUEST_MEM) -> Kernel:
    """--kernel as a Kernel (KernelError, one line, for a bad spec or a missing binary)."""
    return parse_kernel(spec, mem_mb)



def check_search(search: str) -> None:
    """--search: one of the searches a campaign knows (one line, exit 2, otherwise)."""
    if search not in SEARCHES:
        raise fail(f"--search {search!r}: one of {', '.join(SEARCHES)}")


def fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"mmfuzz: error: {message}", markup=False)
    return typer.Exit(code)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn the errors a user can cause into one readable line and exit status 2."""
    try:
        yield
    except Unsupported as e:
        raise fail(f"the model does not cover {e} yet") from None
    except OSError as e:
        if e.filename is not None:
            raise fail(f"{e.filename}: {e.strerror}") from None
        raise fail(str(e)) from None
    except USER_ERRORS as e:
        raise fail(str(e)) from None
