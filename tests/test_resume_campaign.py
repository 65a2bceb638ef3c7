"""`mmfuzz run --resume ID` on real short campaigns: one interrupted (SIGINT) and one
killed (SIGKILL, then lost) are continued in their own rows for the time they have
left; the refusals are one line and exit status 2.

Driven as a user would (`mmfuzz` as a process); every process is the test's own,
found by its parent's pid and ended by its own.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from fuzzer.campaign.options import Options
from fuzzer.store import CampaignRow, Store, StoreError, open_store
from tests.procs import children

ROOT = Path(__file__).parents[1]
MMFUZZ = ROOT / ".venv" / "bin" / "mmfuzz"
SEEDS = ROOT / "corpus" / "seeds"
BUDGET = 180  # seconds any one mmfuzz command may take here

pytestmark = [pytest.mark.kernel, pytest.mark.slow]


def _default_sigint() -> None:
    # SIGINT as a terminal gives it, even when the suite runs in the background.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    (tmp_path / "tmp").mkdir(exist_ok=True)
    return {**os.environ, "TMPDIR": str(tmp_path / "tmp"), **extra}


def _start(tmp_path: Path, url: str, seconds: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(MMFUZZ), "run", "--time", str(seconds), "--db", url, "--corpus",
         str(tmp_path / "corpus"), "--seeds", str(SEEDS), "--crashes", str(tmp_path / "crashes")],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=_env(tmp_path), preexec_fn=_default_sigint)


def _mmfuzz(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(MMFUZZ), *args], cwd=tmp_path, capture_output=True, text=True,
                          timeout=BUDGET, env=_env(tmp_path, **env))


def _end(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def _fuzzing(campaign: subprocess.Popen[str], url: str, seconds: float = 90) -> tuple[int, Store]:
    """The worker's pid once the campaign has stored programs and corpus entries."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.5)
        assert campaign.poll() is None, campaign.communicate()
        pids = children(campaign.pid, "fuzzer.campaign.worker")
        if pids:
            try:
                store = open_store(url, create=False, read_only=True)
            except StoreError:  # not made yet
                continue
            rows = store.campaigns()
            if rows and rows[0].programs > 0 and store.corpus_newest(1)[0]:
                return pids[0], store
    raise AssertionError("the campaign stored nothing in time")


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A new database: a SQLite file, or one on the throwaway PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/x.sqlite"
    return str(request.getfixturevalue("pg_url"))


def _one_line(result: subprocess.CompletedProcess[str], needle: str) -> None:
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
    assert needle in result.stderr, result.stderr


def _points_rise(store: Store, cid: int) -> None:
    by_worker: dict[int, list[tuple[int, int]]] = {}
    for p in store.points(cid):
        by_worker.setdefault(p.worker, []).append((p.programs, p.steps))
    assert by_worker
    for series in by_worker.values():
        assert series == sorted(series), series


def test_an_interrupted_campaign_is_resumed_for_the_time_it_has_left(tmp_path: Path,
                                                                      db_url: str) -> None:
    url, budget = db_url, 45  # its workers may take 15 s to start on a loaded machine
    campaign = _start(tmp_path, url, budget)
    try:
        _, store = _fuzzing(campaign, url)
        deadline = time.monotonic() + 60  # past the seed programs: libFuzzer's corpus
        while not (tmp_path / "corpus").is_dir() and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(2)
        campaign.send_signal(signal.SIGINT)
        out, err = campaign.communicate(timeout=60)
    finally:
        _end(campaign)
    assert campaign.returncode == 130, out + err
    (first,) = store.campaigns()
    assert first.status == "interrupted" and first.programs > 0
    ran = first.ran(first.ended or first.started)
    assert ran < budget - 1, out
    points = store.points(first.id)
    ops = sum(op.count for op in store.op_counts(first.id) if op.what == "steps")
    entries = store.corpus_newest(100_000, campaign=first.id)[0]
    # What the resumed workers are planted with comes from the store, not the folder.
    shutil.rmtree(tmp_path / "corpus", ignore_errors=True)

    resumed = _mmfuzz(tmp_path, "run", "--resume", str(first.id), "--db", url)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "Traceback" not in resumed.stderr
    assert f"campaign {first.id} done: " in resumed.stdout

    (row,) = store.campaigns()  # one campaign: the same row
    assert (row.id, row.status) == (first.id, "done")
    assert row.programs > first.programs and row.steps > first.steps
    assert sum(op.count for op in store.op_counts(row.id) if op.what == "steps") > ops
    (run,) = row.resumed
    assert run[1] == pytest.approx(ran, abs=0.01)
    # Its running time is its budget, give or take its workers' start (their time counts
    # from their own start) on a loaded machine; the pause between the runs is not in it.
    total = row.ran(row.ended or row.started)
    assert budget - 1 <= total <= budget + 45, (total, resumed.stdout)
    # The corpus the first run stored was planted again (each program once).
    planted = re.search(r"corpus: ([\d,]+) programs planted", resumed.stdout)
    assert planted is not None, resumed.stdout
    assert int(planted[1].replace(",", "")) >= len(entries) > 0
    # Progress points go on from the stored totals: each worker's keep rising.
    later = [p for p in store.points(row.id) if p not in points]
    assert later and min(p.programs for p in later if p.worker == 0) >= max(
        p.programs for p in points if p.worker == 0)
    _points_rise(store, row.id)
    # Its coverage grows on one axis: its running time.
    cov = _mmfuzz(tmp_path, "stats", "coverage", "--campaign", str(row.id), "--json", "--db", url)
    assert cov.returncode == 0, cov.stderr
    growth = json.loads(cov.stdout)["growth"]
    assert growth == sorted(growth) and growth[-1][0] <= total + 1, growth
    status = _mmfuzz(tmp_path, "status", "--db", url)
    assert [ln.split()[1] for ln in status.stdout.splitlines()[1:]] == ["done"], status.stdout

    # Done: nothing is left to resume.
    again = _mmfuzz(tmp_path, "run", "--resume", str(row.id), "--db", url)
    _one_line(again, f"campaign {row.id} is done: it ran its whole time")
    assert store.campaign(row.id).ended == row.ended


def _alive(pid: int) -> bool:
    try:
        return "\nState:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False


def test_a_lost_campaign_is_resumed_once_its_heartbeat_is_stale(tmp_path: Path) -> None:
    url, budget = f"sqlite:///{tmp_path}/x.sqlite", 20
    campaign = _start(tmp_path, url, budget)
    worker = 0
    try:
        worker, store = _fuzzing(campaign, url)
        time.sleep(1)
        campaign.kill()  # no chance to finish its row
        campaign.wait()
        deadline = time.monotonic() + 20
        while _alive(worker) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        _end(campaign)
        if worker and _alive(worker):
            os.kill(worker, signal.SIGKILL)
    (lost,) = store.campaigns()
    assert lost.status == "running" and lost.heartbeat is not None
    # Its heartbeat is fresh: it may still be running, somewhere.
    early = _mmfuzz(tmp_path, "run", "--resume", str(lost.id), "--db", url)
    _one_line(early, f"campaign {lost.id} is still running on {lost.host}")

    time.sleep(1.5)
    resumed = _mmfuzz(tmp_path, "run", "--resume", str(lost.id), "--db", url,
                      MMFUZZ_LOST_AFTER="1")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "stopped without finishing" not in resumed.stdout  # no "lost" note: it runs again
    (row,) = store.campaigns()
    assert (row.id, row.status) == (lost.id, "done")
    assert row.programs > lost.programs
    (run,) = row.resumed
    assert run[1] == pytest.approx(lost.ran(lost.heartbeat), abs=0.01)
    assert run[0] > lost.heartbeat
    _points_rise(store, row.id)


def _stored(tmp_path: Path, status: str = "interrupted", **options: object) -> tuple[str, int]:
    """A database holding one campaign of this kernel (no kernel run needed)."""
    url = f"sqlite:///{tmp_path}/s.sqlite"
    store = open_store(url)
    data = {**Options(time=60, **options).as_json(), "features": {}}  # type: ignore[arg-type]
    cid = store.start_campaign(kernel=os.uname().release, host="h", options=data)
    store.finish_campaign(cid, status)
    store.close()
    return url, cid


def test_refusals_are_one_line(tmp_path: Path) -> None:
    url, cid = _stored(tmp_path, injections=("populate-needs-lock",))
    _one_line(_mmfuzz(tmp_path, "run", "--resume", "99", "--db", url), "no campaign with id 99")
    _one_line(_mmfuzz(tmp_path, "run", "--resume", "1", "--db",
                      f"sqlite:///{tmp_path}/none.sqlite"), "no database at")
    assert not (tmp_path / "none.sqlite").exists()
    _one_line(_mmfuzz(tmp_path, "run", "--resume", str(cid), "--db", url, "--inject",
                      "munlock-skipped"),
              f"--inject munlock-skipped conflicts with campaign {cid}, which runs with "
              "populate-needs-lock")
    _one_line(_mmfuzz(tmp_path, "run", "--resume", str(cid), "--db", url, "--time", "5"),
              "--time 5.0 conflicts")
    # A database that cannot be written (root writes a 0444 file: a read-only URI).
    path = tmp_path / "s.sqlite"
    ro = f"sqlite:///file:{path}?mode=ro&uri=true"
    _one_line(_mmfuzz(tmp_path, "run", "--resume", str(cid), "--db", ro), "readonly database")
    row: CampaignRow = open_store(url, read_only=True).campaign(cid)
    assert (row.status, row.resumed) == ("interrupted", ())
