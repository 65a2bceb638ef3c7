"""`mmfuzz run`'s progress on the screen: the live view on a terminal, plain lines otherwise.

The thin glue between run_campaign's hooks (show, say, watch) and the pure
LiveState of campaign/display.py. On a terminal (unless --plain) a Rich Live
view is redrawn about twice a second, in this process's own thread (no
refresh thread: the state is never read while it changes). Otherwise a plain
line every two seconds, and each event on a line of its own the moment it
comes.
"""

from __future__ import annotations

import os
import time
from types import TracebackType

from rich.console import Console
from rich.live import Live

from fuzzer.campaign.display import LiveState, plain_line, render
from fuzzer.campaign.options import Options
from fuzzer.campaign.run import Progress

LIVE_EVERY = 0.5  # seconds between redraws of the live view
PLAIN_EVERY = 2.0  # seconds between plain progress lines


class CampaignView:
    def __init__(self, console: Console, opts: Options, *, live: bool) -> None:
        kernel = (f"{os.uname().release} (this host)" if opts.kernel == "host"
                  else opts.kernel)
        self.console = console
        self.state = LiveState.new(opts.workers, kernel, opts.time)
        self.every = LIVE_EVERY if live else PLAIN_EVERY
        self.live = (Live(console=console, auto_refresh=False, transient=False,
                          redirect_stdout=False, redirect_stderr=False) if live else None)
        self.printed = 0  # events printed so far (plain)
        self.origin: float | None = None  # when the campaign started (time.monotonic)

    def __enter__(self) -> CampaignView:
        if self.live is not None:
            self.live.start()
            self._draw()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.live is not None:
            self._draw()
            self.live.stop()

    def show(self, progress: Progress) -> None:
        self.state.campaign = progress.campaign_id
        self.state.tick(progress.elapsed)
        if self.live is not None:
            self._draw()
        else:
            self.console.print(plain_line(self.state), markup=False)

    def say(self, line: str) -> None:
        at = None if self.origin is None else time.monotonic() - self.origin
        self.state.note(line, at)
        self._events()

    def watch(self, at: float, worker: int, message: dict[str, object]) -> None:
        self.origin = time.monotonic() - at  # the campaign's start, on this clock
        self.state.message(at, worker, message)
        self._events()

    def finish(self, progress: Progress) -> None:
        self.state.campaign = progress.campaign_id
        self.state.finish(progress.status, progress.elapsed)

    def _events(self) -> None:
        if self.live is None:
            for _, text in self.state.events[self.printed:]:
                self.console.print(text, markup=False)
            self.printed = len(self.state.events)

    def _draw(self) -> None:
        assert self.live is not None
        self.live.update(render(self.state), refresh=True)
