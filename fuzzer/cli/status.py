"""`mmfuzz status`: the campaigns in a database, running, finished and lost.

A campaign still marked running whose heartbeat (stamped every few seconds by
its campaign process) is older than LOST_AFTER is shown as lost: its process
was killed, or its machine went down, before it could finish the row.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from fuzzer.cli.common import DEFAULT_DB, DbOption, out, user_errors
from fuzzer.store import CampaignRow, open_store
from fuzzer.store.campaigns import LOST_AFTER

LimitOpt = Annotated[int, typer.Option("--limit", help="Show the N newest campaigns.", min=1)]


def state(c: CampaignRow, now: datetime) -> str:
    """The campaign's status, or "lost" for a running one whose heartbeat is too old."""
    if c.status != "running":
        return c.status
    seen = c.heartbeat or c.started
    return "lost" if (now - seen).total_seconds() > LOST_AFTER else "running"


def status_cmd(db: DbOption = DEFAULT_DB, limit: LimitOpt = 20) -> None:
    """List campaigns: status (running, done, interrupted, failed, or lost when a running
    campaign's heartbeat stopped), host, workers alive, programs per second, last heartbeat.

    Example: mmfuzz status --db sqlite:///db/mmfuzz.sqlite
    """
    with user_errors():
        rows = open_store(db, read_only=True).campaigns()[:limit]
    if not rows:
        out.print("no campaigns yet", markup=False)
        return
    now = datetime.now(UTC)
    out.print(f"{'id':>5} {'status':<12} {'host':<20} {'alive':>5} {'programs/s':>10} "
              f"{'started (UTC)':<19}  last heartbeat", markup=False)
    for c in rows:
        st = state(c, now)
        end = c.ended or c.heartbeat or now
        secs = max(c.ran(end), 1e-9)  # over its runs, without the pauses of a resumed one
        alive = str(c.alive) if st == "running" and c.alive is not None else "-"
        beat = "-" if c.heartbeat is None else (
            f"{c.heartbeat:%Y-%m-%d %H:%M:%S} ({(now - c.heartbeat).total_seconds():.0f} s ago)")
        out.print(f"{c.id:>5} {st:<12} {c.host[:20]:<20} {alive:>5} {c.programs / secs:>10,.0f} "
                  f"{c.started:%Y-%m-%d %H:%M:%S}  {beat}", markup=False)
