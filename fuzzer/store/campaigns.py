"""Campaigns: starting one, adding its progress (with its operation counts), ending it,
continuing one that ended before its time (resume_campaign).

A campaign's counters and its operation counts (stats.py) are added in the
same transaction, so the two always agree. A resumed campaign keeps its row:
its counters go on adding up, and its `runs` column records when each later run
started and how long the campaign had run before it (rows.CampaignRow.seconds).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from sqlalchemy import func, select, update

from fuzzer.store.base import StoreBase, require_campaign
from fuzzer.store.db import StoreError
from fuzzer.store.models import CAMPAIGN_STATUSES, Campaign, ProgressPoint
from fuzzer.store.rows import CampaignRow, PointRow, campaign_row
from fuzzer.store.stats import add_op_counts
from fuzzer.store.values import OpCount

HEARTBEAT_EVERY = 5.0  # seconds between a running campaign's heartbeats
# Seconds without a heartbeat after which a running campaign is lost (the environment
# variable is for tests, which cannot wait that long).
LOST_AFTER = float(os.environ.get("MMFUZZ_LOST_AFTER", "30"))


class Campaigns(StoreBase):
    def start_campaign(self, *, kernel: str, host: str, options: dict[str, object],
                       build: str | None = None, binary: str | None = None,
                       kernel_name: str | None = None) -> int:
        """Record a campaign as running on kernel release `kernel` (its build string,
        UML binary hash and name when known: fuzzer/store/identity.py); returns its id."""
        row = Campaign(
            kernel=kernel,
            build=build,
            binary=binary,
            kernel_name=kernel_name,
            host=host,
            options=json.dumps(options, sort_keys=True, default=str),
            started=self._now(),
            programs=0,
            steps=0,
            divergences=0,
            status="running",
            heartbeat=self._now(),
        )
        with self._write() as s:
            s.add(row)
            s.flush()
            return row.id

    def add_progress(
        self, campaign_id: int, *, programs: int, steps: int, ops: Iterable[OpCount] = ()
    ) -> None:
        """Add to the campaign's program and step counters, and to its operation counts,
        all in one transaction (rows with the same key are summed)."""
        if programs < 0 or steps < 0:
            raise ValueError(f"negative progress: programs={programs} steps={steps}")
        with self._write() as s:
            require_campaign(s, campaign_id)
            s.execute(
                update(Campaign)
                .where(Campaign.id == campaign_id)
                .values(programs=Campaign.programs + programs, steps=Campaign.steps + steps)
            )
            add_op_counts(s, campaign_id, ops)

    def add_point(self, campaign_id: int, *, worker: int, programs: int, steps: int) -> None:
        """Record one worker's running totals now (the store's clock)."""
        if programs < 0 or steps < 0 or worker < 0:
            raise ValueError(f"bad progress point: worker={worker} programs={programs} "
                             f"steps={steps}")
        with self._write() as s:
            require_campaign(s, campaign_id)
            s.add(ProgressPoint(campaign_id=campaign_id, worker=worker, at=self._now(),
                                programs=programs, steps=steps))

    def points(self, campaign_id: int | None = None) -> list[PointRow]:
        """Progress points of one campaign (None: all), by campaign, worker and time."""
        t = ProgressPoint
        query = select(t).order_by(t.campaign_id, t.worker, t.at, t.id)
        if campaign_id is not None:
            query = query.where(t.campaign_id == campaign_id)
        with self._read() as s:
            return [PointRow(p.campaign_id, p.worker, p.at, p.programs, p.steps)
                    for p in s.scalars(query)]

    def worker_totals(self, campaign_id: int) -> dict[int, tuple[int, int]]:
        """Each worker's running totals (programs, steps) at its last progress point."""
        t = ProgressPoint
        last = (select(func.max(t.id)).where(t.campaign_id == campaign_id)
                .group_by(t.worker).scalar_subquery())
        with self._read() as s:
            rows = s.execute(select(t.worker, t.programs, t.steps).where(t.id.in_(last)))
            return {int(w): (int(p), int(n)) for w, p, n in rows}

    def resume_campaign(self, campaign_id: int, *, host: str,
                        check: Callable[[CampaignRow], None] = lambda row: None,
                        after: float = LOST_AFTER) -> CampaignRow:
        """Mark a campaign that ended before its time (interrupted, failed) or was lost
        running again, as a new run of it starting now, on `host`; the row as it was.

        One transaction: of two processes resuming the same campaign, the second finds
        it running. A StoreError (one line) for a campaign that is not resumable
        (why_not_resumable); `check` may refuse too, by raising, and nothing changes.
        """
        with self._write() as s:
            row = require_campaign(s, campaign_id)
            before = campaign_row(row)
            now = self._now()
            why = why_not_resumable(before, now, after)
            if why:
                raise StoreError(why)
            check(before)
            runs = [*before.resumed, (now, round(before.ran(last_seen(before)), 3))]
            row.runs = json.dumps([[when.isoformat(), ran] for when, ran in runs])
            row.status, row.ended, row.heartbeat, row.alive, row.host = (
                "running", None, now, 0, host)
        return before

    def heartbeat(self, campaign_id: int, alive: int) -> None:
        """Stamp the campaign as alive now, with this many workers running."""
        with self._write() as s:
            s.execute(update(Campaign).where(Campaign.id == campaign_id)
                      .values(heartbeat=self._now(), alive=alive))

    def lost_campaigns(self, after: float = LOST_AFTER) -> list[CampaignRow]:
        """Campaigns still marked running whose heartbeat is older than `after` seconds
        (or that never had one): their process is gone. Newest first."""
        limit = self._now() - timedelta(seconds=after)
        with self._read() as s:
            rows = s.scalars(select(Campaign).where(Campaign.status == "running")
                             .order_by(Campaign.id.desc()))
            return [campaign_row(c) for c in rows
                    if c.heartbeat is None or c.heartbeat < limit]

    def finish_campaign(self, campaign_id: int, status: str = "done") -> None:
        """Mark the campaign ended: 'done', 'interrupted' or 'failed'."""
        if status not in CAMPAIGN_STATUSES or status == "running":
            raise ValueError(f"a campaign cannot finish as {status!r}")
        with self._write() as s:
            row = require_campaign(s, campaign_id)
            row.ended = self._now()
            row.status = status

    def campaign(self, campaign_id: int) -> CampaignRow:
        with self._read() as s:
            return campaign_row(require_campaign(s, campaign_id))

    def campaigns(self) -> list[CampaignRow]:
        """All campaigns, newest first."""
        with self._read() as s:
            rows = s.scalars(select(Campaign).order_by(Campaign.id.desc()))
            return [campaign_row(c) for c in rows]


def last_seen(row: CampaignRow) -> datetime:
    """When the campaign's last run ended: its end, or (lost) its last heartbeat."""
    return row.ended or row.heartbeat or row.started


def why_not_resumable(row: CampaignRow, now: datetime, after: float = LOST_AFTER) -> str:
    """Why `mmfuzz run --resume` cannot continue the campaign now, or "" if it can: it is
    still running (a heartbeat fresher than `after` seconds), or it is done."""
    if row.status == "running":
        ago = (now - (row.heartbeat or row.started)).total_seconds()
        if ago <= after:
            return (f"campaign {row.id} is still running on {row.host} (its last heartbeat "
                    f"was {max(ago, 0):.0f} s ago; it counts as lost after {after:g} s)")
    elif row.status == "done":
        return f"campaign {row.id} is done: it ran its whole time (or its runs)"
    return ""
