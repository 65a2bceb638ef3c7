"""Campaigns: starting one, adding its progress (with its operation counts), ending it.

A campaign's counters and its operation counts (stats.py) are added in the
same transaction, so the two always agree.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from datetime import timedelta

from sqlalchemy import select, update

from fuzzer.store.base import StoreBase, require_campaign
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
        UML binary hash and name when known: fuzzer/kernel/identity.py); returns its id."""
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
