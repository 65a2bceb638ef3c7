"""`mmfuzz status`: a running campaign's rate over the last minute, from its workers'
progress points (tables of points -> the rate), and the column that shows it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fuzzer.cli.app import app
from fuzzer.cli.status import recent_rate
from fuzzer.store import PointRow, open_store

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def pts(*rows: tuple[int, float, int]) -> list[PointRow]:
    """Points as (worker, seconds after T0, programs)."""
    return [PointRow(1, worker, T0 + timedelta(seconds=at), programs, programs * 5)
            for worker, at, programs in rows]


def every_10s(worker: int, until: float, per_s: float) -> list[tuple[int, float, int]]:
    return [(worker, t, round(t * per_s)) for t in range(10, int(until) + 1, 10)]


# (case, points, seconds after T0 now, started seconds after T0) -> programs/s, last minute
RECENT = [
    ("steady", pts(*every_10s(0, 300, 20)), 300, 0, 20.0),
    # the points stopped 2 minutes ago: a stalled worker writes none
    ("stalled", pts(*every_10s(0, 180, 20)), 300, 0, 0.0),
    # two workers at 20/s and 5/s
    ("two", pts(*every_10s(0, 300, 20), *every_10s(1, 300, 5)), 300, 0, 25.0),
    # started 30 s ago: over those 30 s
    ("young", pts(*every_10s(0, 30, 10)), 30, 0, 10.0),
    # worker 0 restarted at 255 s: its totals start again from 0 and still count
    ("restarted", pts(*every_10s(0, 250, 20), (0, 260, 100), (0, 270, 300), (0, 280, 500),
                      (0, 290, 700), (0, 300, 900)), 300, 0, (200 + 100 + 4 * 200) / 60),
    ("none", [], 300, 0, 0.0),
]


@pytest.mark.parametrize(("points", "now", "started", "rate"), [c[1:] for c in RECENT],
                         ids=[c[0] for c in RECENT])
def test_recent_rate(points: list[PointRow], now: float, started: float, rate: float) -> None:
    got = recent_rate(points, T0 + timedelta(seconds=now), T0 + timedelta(seconds=started))
    assert got == pytest.approx(rate)


def test_status_shows_the_last_minute_of_a_running_campaign_only(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.sqlite'}"
    store = open_store(url)
    done = store.start_campaign(kernel="k", host="h", options={})
    store.add_point(done, worker=0, programs=50, steps=100)
    store.finish_campaign(done, "done")
    running = store.start_campaign(kernel="k", host="h", options={})
    store.heartbeat(running, 1)
    store.add_point(running, worker=0, programs=120, steps=600)
    result = CliRunner().invoke(app, ["status", "--db", url], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    head, *lines = result.stdout.splitlines()
    assert head.split()[:7] == ["id", "status", "host", "alive", "programs/s", "last", "min"]
    rows = {ln.split()[0]: ln.split() for ln in lines}
    assert rows[str(done)][1] == "done" and rows[str(done)][5] == "-"
    # A few milliseconds since it started: 120 programs in them, a large rate.
    assert rows[str(running)][1] == "running" and int(rows[str(running)][5].replace(",", "")) > 0
