"""What campaigns exercised and found: operation counts and the database's totals.

Operation counts (how often each call, flag and outcome was exercised) arrive
as OpCount rows with a campaign's progress (campaigns.py), summed into one
op_count row per key; op_counts() reads them back per campaign or summed
over all. stats() counts buckets by status, kind and kernel release, samples
and the campaigns' work.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from typing import cast

from sqlalchemy import Table, distinct, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from fuzzer.store.base import StoreBase, require_campaign
from fuzzer.store.models import STATUSES, Bucket, Campaign, Sample
from fuzzer.store.models import OpCount as OpCountTable
from fuzzer.store.values import OpCount

# INSERT ... ON CONFLICT DO UPDATE, where the database has it (operation counts).
UPSERTS: dict[str, Callable[[Table], sqlite.Insert | postgresql.Insert]] = {
    "sqlite": sqlite.insert, "postgresql": postgresql.insert}


class Stats(StoreBase):
    def op_counts(self, campaign_id: int | None = None) -> list[OpCount]:
        """One campaign's operation counts (None: summed over every campaign).

        Sorted by call, what and value; a campaign that ran before mmfuzz counted
        operations has none.
        """
        t = OpCountTable
        query = (
            select(t.call, t.what, t.value, func.sum(t.count))
            .group_by(t.call, t.what, t.value)
            .order_by(t.call, t.what, t.value)
        )
        with self._read() as s:
            if campaign_id is not None:
                require_campaign(s, campaign_id)
                query = query.where(t.campaign_id == campaign_id)
            return [OpCount(c, w, v, int(n)) for c, w, v, n in s.execute(query)]

    def stats(self) -> dict[str, object]:
        """Totals: buckets by status (every status), kind and kernel; samples; campaigns' work.

        Keys: buckets, by_status, by_kind, by_kernel (buckets with a sample from
        that release), samples, injected_samples, campaigns, programs, steps.
        """
        count = func.count()
        with self._read() as s:
            by_status: dict[str, int] = dict.fromkeys(STATUSES, 0)
            for status, n in s.execute(select(Bucket.status, count).group_by(Bucket.status)):
                by_status[status] = n
            kinds = s.execute(
                select(Bucket.kind, count).group_by(Bucket.kind).order_by(Bucket.kind)
            )
            kernels = s.execute(
                select(Sample.kernel, func.count(distinct(Sample.bucket_id)))
                .group_by(Sample.kernel)
                .order_by(Sample.kernel)
            )
            work = s.execute(
                select(
                    count, func.coalesce(func.sum(Campaign.programs), 0),
                    func.coalesce(func.sum(Campaign.steps), 0),
                )
            ).one()
            return {
                "buckets": sum(by_status.values()),
                "by_status": by_status,
                "by_kind": {k: n for k, n in kinds},
                "by_kernel": {k: n for k, n in kernels},
                "samples": s.scalar(select(count).select_from(Sample)),
                "injected_samples": s.scalar(
                    select(count).select_from(Sample).where(Sample.injections != "")
                ),
                "campaigns": work[0],
                "programs": int(work[1]),
                "steps": int(work[2]),
            }


def add_op_counts(s: Session, campaign_id: int, ops: Iterable[OpCount]) -> None:
    """Add the counts to the op_count rows, creating the missing ones: one statement where
    the database has an upsert (SQLite, PostgreSQL), row by row elsewhere."""
    counts: Counter[tuple[str, str, str]] = Counter()
    for op in ops:
        counts[op.call, op.what, op.value] += op.count
    rows = [{"campaign_id": campaign_id, "call": c, "what": w, "value": v, "count": n}
            for (c, w, v), n in sorted((+counts).items())]  # +: without the zeros
    if not rows:
        return
    table = cast(Table, OpCountTable.__table__)
    conn = s.connection()
    upsert = UPSERTS.get(conn.dialect.name)
    if upsert is not None:
        ins = upsert(table)
        conn.execute(ins.on_conflict_do_update(
            index_elements=list(table.primary_key),
            set_={"count": table.c.count + ins.excluded.count},
        ), rows)
        return
    for row in rows:
        key = {k: row[k] for k in ("campaign_id", "call", "what", "value")}
        done = conn.execute(
            update(table).filter_by(**key).values(count=table.c.count + row["count"])
        )
        if not done.rowcount:
            conn.execute(insert(table), [row])
