"""One campaign worker: `python -m fuzzer.campaign.worker JOB FD` (a Job as JSON, options.py;
FD the write end of its channel to the campaign process, channel.py).

libFuzzer drives the bytes; each input decodes to a Program that is checked on
the kernel against the model. libFuzzer's coverage is semantic: the features
each checked program reaches (fuzzer/check/coverage.py: call, outcome, the
state of its range, pairs of calls on one range; campaign/feedback.py) and,
with `--feedback lines` or `both`, the branches of the instrumented model and
generator.

Divergences are written to the store the moment they are found, each in its
own transaction, so killing a worker loses at most half a second of counters.
Progress goes as JSON lines on the channel to the parent (`campaign/run.py`);
stdout and stderr are the worker's log. The harness itself (the Worker) is harness.py.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import atheris

from fuzzer import native
from fuzzer.campaign.channel import Emit, emitter
from fuzzer.campaign.options import Job
from fuzzer.prog import Program
from fuzzer.store import open_store
from fuzzer.store.ports import WorkerStore


def run(
    job: Job,
    *,
    emit: Emit,
    store: WorkerStore | None = None,
    on_run: Callable[[Program], None] | None = None,
) -> None:
    """The worker. In a guest kernel (campaign/guest.py) the store is a proxy to
    the host's, progress goes to the channel (emit), and every program is announced
    before it runs (on_run), so the host knows which one a crashed kernel was running."""
    # Atheris instruments a module as it is imported: the model and the generator
    # must be imported here first, inside this block. Nothing this module or its
    # callers import at their top imports them. With semantic feedback alone they
    # are not instrumented: libFuzzer counts the features the harness reports.
    if job.options.feedback != "semantic":
        native.require_pure()  # mypyc's modules are C: nothing to instrument
        with atheris.instrument_imports(include=["fuzzer.model", "fuzzer.prog.generate"]):
            import fuzzer.model
            import fuzzer.prog.generate  # noqa: F401
    from fuzzer.campaign.harness import Worker  # imports the model: after the block

    store = store if store is not None else open_store(job.options.db)
    Worker(job, store, emit, on_run).fuzz()


def main(argv: list[str]) -> None:
    job, fd = argv
    run(Job.from_json(job), emit=emitter(int(fd), hard=True))


if __name__ == "__main__":
    main(sys.argv[1:])
