"""Campaigns that survive: a worker killed is restarted; a campaign killed is reported lost.

Real short campaigns on the kernel, driven as a user would (`mmfuzz run` as a
process); every process is found by its parent's pid and killed by its own.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from fuzzer.store import open_store
from tests.procs import children

ROOT = Path(__file__).parents[1]
MMFUZZ = ROOT / ".venv" / "bin" / "mmfuzz"
SEEDS = ROOT / "corpus" / "seeds"

pytestmark = [pytest.mark.kernel, pytest.mark.slow]


def _wait_for_worker(campaign: subprocess.Popen[str], seconds: float = 60) -> int:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        pids = children(campaign.pid, "fuzzer.campaign.worker")
        if pids:
            return pids[0]
        assert campaign.poll() is None, campaign.communicate()
        time.sleep(0.1)
    raise AssertionError("no worker started")


def _alive(pid: int) -> bool:
    try:
        return "\nState:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False


def _campaign(tmp_path: Path, seconds: int, env: dict[str, str] | None = None
              ) -> subprocess.Popen[str]:
    (tmp_path / "tmp").mkdir(exist_ok=True)
    return subprocess.Popen(
        [str(MMFUZZ), "run", "--time", str(seconds), "--db", f"sqlite:///{tmp_path}/x.sqlite",
         "--corpus", str(tmp_path / "corpus"), "--seeds", str(SEEDS),
         "--crashes", str(tmp_path / "crashes")],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "TMPDIR": str(tmp_path / "tmp"), **(env or {})},
        # SIGINT as a terminal gives it: a shell that runs the test suite in the
        # background (nohup, `&`) hands its children SIGINT ignored, and Python then
        # installs no KeyboardInterrupt handler.
        preexec_fn=_default_sigint)


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _end(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def test_a_killed_worker_is_restarted_and_the_campaign_runs_its_time(tmp_path: Path) -> None:
    campaign = _campaign(tmp_path, 12)
    try:
        worker = _wait_for_worker(campaign)
        time.sleep(2)  # fuzzing, with its progress counted
        os.kill(worker, signal.SIGKILL)
        out, err = campaign.communicate(timeout=120)
    finally:
        _end(campaign)
    assert campaign.returncode == 0, out + err
    assert "Traceback" not in err, err
    assert "worker 0 died (SIGKILL) at " in out and ", restarting in 1 s" in out, out
    assert "worker 0 restarted (pid " in out
    assert "workers restarted 1 times after dying" in out
    (row,) = open_store(f"sqlite:///{tmp_path}/x.sqlite", read_only=True).campaigns()
    assert row.status == "done" and row.programs > 0
    assert not list((tmp_path / "tmp").iterdir())  # the scratch folder is gone
    assert not list(tmp_path.glob("crash-*"))


def test_a_killed_campaign_is_reported_lost(tmp_path: Path) -> None:
    fast = {"MMFUZZ_LOST_AFTER": "1"}
    campaign = _campaign(tmp_path, 60)
    try:
        worker = _wait_for_worker(campaign)
        time.sleep(2)
        campaign.kill()  # SIGKILL: no chance to finish the row
        campaign.wait()
        deadline = time.monotonic() + 20
        while _alive(worker) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(worker), "the worker outlived its campaign"
    finally:
        _end(campaign)
        if _alive(worker):
            os.kill(worker, signal.SIGKILL)
    url = f"sqlite:///{tmp_path}/x.sqlite"
    (row,) = open_store(url, read_only=True).campaigns()
    assert row.status == "running" and row.heartbeat is not None
    time.sleep(1.5)
    status = subprocess.run([str(MMFUZZ), "status", "--db", url], capture_output=True,
                            text=True, timeout=60, env={**os.environ, **fast})
    assert status.returncode == 0, status.stderr
    (line,) = [ln for ln in status.stdout.splitlines() if ln.split()[0] == str(row.id)]
    assert line.split()[1] == "lost" and f"{row.heartbeat:%Y-%m-%d %H:%M:%S}" in line
    # No libFuzzer crash file anywhere: in the working directory, or loose in TMPDIR.
    assert not list(tmp_path.glob("crash-*")) and not list((tmp_path / "tmp").glob("crash-*"))
    again = subprocess.run(
        [str(MMFUZZ), "run", "--time", "2", "--runs", "3", "--db", url, "--corpus",
         str(tmp_path / "corpus"), "--crashes", str(tmp_path / "crashes")],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, env={**os.environ, **fast})
    assert again.returncode == 0, again.stderr
    notes = [ln for ln in again.stdout.splitlines() if "lost" in ln]
    assert notes == [f"note: campaign {row.id} on {row.host} (last heartbeat "
                     f"{row.heartbeat:%Y-%m-%d %H:%M:%S} UTC) stopped without finishing: lost "
                     "(`mmfuzz status` lists them)"], again.stdout


def test_a_worker_that_keeps_failing_is_given_up_with_its_error(tmp_path: Path) -> None:
    (tmp_path / "corpus").write_text("a file where the corpus folder should be\n")
    campaign = _campaign(tmp_path, 300)
    try:
        out, err = campaign.communicate(timeout=280)
    finally:
        _end(campaign)
    assert campaign.returncode == 1, out + err
    assert "Traceback" not in out + err
    assert out.count("worker 0 died (status 1) at ") == 3, out  # the 4th: on stderr
    assert [ln for ln in out.splitlines() if "restarting in" in ln][-1].endswith(
        f"{tmp_path / 'corpus'}'"), out  # each death quotes the worker's error
    (line,) = err.strip().splitlines()
    assert line.startswith("mmfuzz: error: campaign 1 failed: worker 0 died (status 1)")
    assert "4 times in 60 s: given up: " in line and "FileExistsError" in line, line
    kept = next(ln for ln in out.splitlines() if ln.startswith("worker logs kept in "))
    log = Path(kept.removeprefix("worker logs kept in ")) / "worker-0.log"
    assert log.read_text().count("FileExistsError") == 4
    (row,) = open_store(f"sqlite:///{tmp_path}/x.sqlite", read_only=True).campaigns()
    assert row.status == "failed"


def test_sigint_interrupts_the_campaign_with_status_130(tmp_path: Path) -> None:
    campaign = _campaign(tmp_path, 120)
    try:
        worker = _wait_for_worker(campaign)
        time.sleep(2)
        campaign.send_signal(signal.SIGINT)  # the campaign's pid only, as `kill -INT` would
        out, err = campaign.communicate(timeout=60)
    finally:
        _end(campaign)
    assert campaign.returncode == 130, out + err
    assert "Traceback" not in out + err and not _alive(worker)
    assert "campaign 1 interrupted" in out
    (row,) = open_store(f"sqlite:///{tmp_path}/x.sqlite", read_only=True).campaigns()
    assert row.status == "interrupted" and row.ended is not None


def test_a_worker_past_its_memory_bound_is_restarted_at_once(tmp_path: Path) -> None:
    """--worker-rss: libFuzzer's in-memory corpus grows with the search, so a worker whose
    RSS passes the bound ends and is started again at once, with the corpus from the
    database; not a death, and the campaign runs its time."""
    (tmp_path / "tmp").mkdir(exist_ok=True)
    url = f"sqlite:///{tmp_path}/x.sqlite"
    done = subprocess.run(
        [str(MMFUZZ), "run", "--time", "60", "--db", url, "--worker-rss", "1", "--plain",
         "--corpus", str(tmp_path / "corpus"), "--seeds", str(SEEDS),
         "--crashes", str(tmp_path / "crashes")],
        cwd=tmp_path, capture_output=True, text=True, timeout=180,
        env={**os.environ, "TMPDIR": str(tmp_path / "tmp")})
    assert done.returncode == 0, done.stdout + done.stderr
    recycled = [ln for ln in done.stdout.splitlines() if " recycled at " in ln]
    assert recycled, done.stdout
    assert all("RSS" in ln and "over --worker-rss 1, restarting" in ln for ln in recycled)
    assert "died" not in done.stdout and "workers restarted" not in done.stdout.replace(
        f"workers restarted {len(recycled)} times for their size", "")
    # each later start was planted with the corpus the earlier ones stored
    assert "programs planted at the workers' start" in done.stdout
    store = open_store(url, read_only=True)
    (row,) = store.campaigns()
    assert row.status == "done"
    # A restarted worker knows what the campaign covers: it stores only what is new to
    # it (one worker, so no two entries claim a feature first).
    firsts = [f for _, _, fs in store.corpus_features([row.id]) for f in fs]
    assert firsts and len(firsts) == len(set(firsts))
