"""`mmfuzz status`: the campaigns in a database, running, finished and lost.

A campaign still marked running whose heartbeat (stamped every few seconds by
its campaign process) is older than LOST_AFTER is shown as lost: its process
was killed, or its machine went down, before it could finish the row. A running
campaign's rate over the last minute (from its workers' progress points) stands
next to its overall one: a stall shows there.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer

from fuzzer.cli.common import DEFAULT_DB, DbOption, out, user_errors
from fuzzer.store import CampaignRow, PointRow, open_store
from fuzzer.store.campaigns import LOST_AFTER

RECENT = 60.0  # seconds: a running campaign's recent rate is over this many

LimitOpt = Annotated[int, typer.Option("--limit", help="Show the N newest campaigns.", min=1)]


def state(c: CampaignRow, now: datetime) -> str:
    """The campaign's status, or "lost" for a running one whose heartbeat is too old."""
    if c.status != "running":
        return c.status
    seen = c.heartbeat or c.started
    return "lost" if (now - seen).total_seconds() > LOST_AFTER else "running"


def recent_rate(points: list[PointRow], now: datetime, started: datetime,
                window: float = RECENT) -> float:
    """Programs per second over the last `window` seconds (fewer if the campaign started
    less long ago), from its workers' progress points (each a worker's running totals,
    every 10 s; a restarted worker's count again from 0)."""
    start = max(started, now - timedelta(seconds=window))
    span = (now - start).total_seconds()
    if span <= 0:
        return 0.0
    gained = 0
    last: dict[int, int] = {}
    for p in sorted(points, key=lambda p: (p.worker, p.at)):
        before = last.get(p.worker, 0)
        last[p.worker] = p.programs
        if start < p.at <= now:
            gained += p.programs - before if p.programs >= before else p.programs
    return gained / span


def status_cmd(db: DbOption = DEFAULT_DB, limit: LimitOpt = 20) -> None:
    """List campaigns: status (running, done, interrupted, failed, or lost when a running
    campaign's heartbeat stopped), host, workers alive, programs per second (overall, and
    over the last minute while it runs), last heartbeat.

    Example: mmfuzz status --db sqlite:///db/mmfuzz.sqlite
    """
    with user_errors():
        store = open_store(db, read_only=True)
        rows = store.campaigns()[:limit]
        now = datetime.now(UTC)
        points = {c.id: store.points(c.id) for c in rows if state(c, now) == "running"}
    if not rows:
        out.print("no campaigns yet", markup=False)
        return
    out.print(f"{'id':>5} {'status':<12} {'host':<20} {'alive':>5} {'programs/s':>10} "
              f"{'last min':>8} {'started (UTC)':<19}  last heartbeat", markup=False)
    for c in rows:
        st = state(c, now)
        recent = (f"{recent_rate(points[c.id], now, c.started):>8,.0f}" if c.id in points
                  else f"{'-':>8}")
        end = c.ended or c.heartbeat or now
        secs = max(c.ran(end), 1e-9)  # over its runs, without the pauses of a resumed one
        alive = str(c.alive) if st == "running" and c.alive is not None else "-"
        beat = "-" if c.heartbeat is None else (
            f"{c.heartbeat:%Y-%m-%d %H:%M:%S} ({(now - c.heartbeat).total_seconds():.0f} s ago)")
        out.print(f"{c.id:>5} {st:<12} {c.host[:20]:<20} {alive:>5} {c.programs / secs:>10,.0f} "
                  f"{recent} {c.started:%Y-%m-%d %H:%M:%S}  {beat}", markup=False)
