"""`mmfuzz run` on a real terminal: a short campaign in a tmux pane of a private tmux
server (its own socket: no other tmux is touched), whose screen shows the live view
while it runs and the summary when it ends."""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.procs import children

ROOT = Path(__file__).parents[1]
MMFUZZ = ROOT / ".venv" / "bin" / "mmfuzz"
SEEDS = ROOT / "corpus" / "seeds"

pytestmark = [pytest.mark.kernel, pytest.mark.slow,
              pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")]

ROW = re.compile(r"^\s*(\d+)\s+(starting|running|restarting|dead|done|stopped)\s+"
                 r"([\d.,]+/s)\s+([\d.,]+/s)\s+([\d,]+)\s+([\d,]+)\s+(\d+)\s*$")


class Tmux:
    """A tmux server of our own, on a socket named for this test process."""

    def __init__(self) -> None:
        self.socket = f"mmfuzz-test-{os.getpid()}"

    def __call__(self, *args: str) -> str:
        # os.environ, not this process's C environment: readline (imported by the test
        # runner) exports COLUMNS=80 and LINES=24 there, which would size the pane's view.
        return subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True,
                              text=True, timeout=30, check=True, env=dict(os.environ)).stdout

    def screen(self) -> str:
        return self("capture-pane", "-p", "-t", "live")

    def all(self) -> str:
        return self("capture-pane", "-p", "-S", "-", "-t", "live")  # with what scrolled off

    def kill(self) -> None:
        """End the server, and so the pane's processes, and remove its socket."""
        try:
            path = self("display-message", "-p", "#{socket_path}").strip()
        except subprocess.CalledProcessError:  # no server: nothing was started
            return
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True,
                       timeout=30)
        Path(path).unlink(missing_ok=True)


def _wait(what: str, until: float, check: object) -> None:
    assert callable(check)
    while time.monotonic() < until:
        if check():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def test_live_view_in_a_terminal(tmp_path: Path) -> None:
    (tmp_path / "tmp").mkdir()
    rc = tmp_path / "rc"
    run = [str(MMFUZZ), "run", "--time", "8", "--workers", "2",
           "--db", f"sqlite:///{tmp_path}/x.sqlite", "--corpus", str(tmp_path / "corpus"),
           "--seeds", str(SEEDS), "--crashes", str(tmp_path / "crashes")]
    # The campaign has a time budget of its own; the pane stays to be read until killed.
    script = (f"cd {shlex.quote(str(tmp_path))} && TMPDIR={shlex.quote(str(tmp_path / 'tmp'))} "
              f"timeout 300 {shlex.join(run)}; echo $? > {shlex.quote(str(rc))}; sleep 600")
    tmux = Tmux()
    try:
        tmux("new-session", "-d", "-x", "160", "-y", "50", "-s", "live", script)
        deadline = time.monotonic() + 240
        seen: list[str] = []

        def running() -> bool:
            screen = tmux.screen()
            rows = [m for m in map(ROW.match, screen.splitlines()) if m]
            if len(rows) == 2 and any(m[2] == "running" and m[5] != "0" for m in rows):
                seen.append(screen)
                return True
            return rc.exists()

        _wait("the live view of running workers", deadline, running)
        assert seen, tmux.all()
        live = seen[0].splitlines()
        assert re.match(r"campaign \d+  kernel .+ \(this host\)  [\d,]+ s of 8 s  running",
                        live[0]), seen[0]
        assert "programs/s (last 10 s)" in seen[0] and "programs/s (overall)" in seen[0]
        total = next(ln for ln in live if ln.lstrip().startswith("total"))
        assert re.search(r"\d/2 alive\s+[\d.,]+/s\s+[\d.,]+/s", total), seen[0]
        assert "semantic features: " in seen[0] and "buckets: " in seen[0]

        _wait("the campaign's end", deadline, rc.exists)
        text = tmux.all()
    finally:
        tmux.kill()
    assert rc.read_text().strip() == "0", text
    assert "Traceback" not in text, text
    # The last frame stays on the screen, then the summary as without a terminal.
    lines = text.splitlines()
    rows = [m for m in map(ROW.match, lines) if m]
    assert [m[1] for m in rows[-2:]] == ["0", "1"], text
    assert all(m[2] in ("done", "stopped") for m in rows[-2:]), text
    assert any(re.match(r"campaign \d+  kernel .+  done$", ln.rstrip()) for ln in lines), text
    assert any(re.match(r"campaign \d+ done: [\d,]+ s, [\d,]+ programs", ln) for ln in lines), text
    # No plain progress line: on a terminal the view is the progress.
    assert not any(ln.startswith("[") and "programs (" in ln for ln in lines), text


def test_a_stalled_worker_shows_at_once_in_the_plain_lines(tmp_path: Path) -> None:
    """A worker stopped (SIGSTOP) for 12 s: the lines' last-10-s rate falls to 0 while the
    overall one stays, and the slow worker is named; piped, so plain lines."""
    (tmp_path / "tmp").mkdir()
    campaign = subprocess.Popen(
        [str(MMFUZZ), "run", "--time", "34", "--db", f"sqlite:///{tmp_path}/x.sqlite",
         "--corpus", str(tmp_path / "corpus"), "--seeds", str(SEEDS),
         "--crashes", str(tmp_path / "crashes")],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "TMPDIR": str(tmp_path / "tmp")})
    worker = 0
    try:
        deadline = time.monotonic() + 120
        while not (pids := children(campaign.pid, "fuzzer.campaign.worker")):
            assert campaign.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        worker = pids[0]
        time.sleep(14)  # fuzzing, at whatever rate this machine allows
        _stop_between_writes(worker, tmp_path / "x.sqlite")
        time.sleep(12)
        os.kill(worker, signal.SIGCONT)
        out, err = campaign.communicate(timeout=180)
    finally:
        if worker:
            with contextlib.suppress(ProcessLookupError):  # never left stopped
                os.kill(worker, signal.SIGCONT)
        if campaign.poll() is None:
            campaign.kill()
            campaign.wait()
    assert campaign.returncode == 0, out + err
    rates = [(float(m[1].replace(",", "")), float(m[2].replace(",", "")), line)
             for line in out.splitlines()
             if (m := re.search(r"\(([\d.,]+)/s last 10 s, ([\d.,]+)/s overall\)", line))]
    stalled = [line for now, overall, line in rates if now == 0 and overall > 0]
    assert stalled, out
    assert any("SLOW: worker 0" in line for line in stalled), out


def _stop_between_writes(pid: int, db: Path) -> None:
    """SIGSTOP `pid` at a moment it holds no write lock on the database's files
    (/proc/locks; in WAL mode every connection keeps read locks): a worker stopped
    inside an SQLite write keeps the database locked, and the campaign's own heartbeat
    then waits for it, lines and all, which is not what this test is about."""
    for _ in range(100):
        os.kill(pid, signal.SIGSTOP)
        time.sleep(0.05)  # the stop takes effect
        inodes = {os.stat(f).st_ino for f in (db, *db.parent.glob(db.name + "-*"))
                  if f.exists()}
        held = [line.split() for line in Path("/proc/locks").read_text().splitlines()]
        if not any(f[3] == "WRITE" and int(f[5].rsplit(":", 1)[1]) in inodes
                   for f in held if len(f) > 5 and f[4] == str(pid)):
            return
        os.kill(pid, signal.SIGCONT)
        time.sleep(0.1)
    raise AssertionError(f"worker {pid} held a write lock on {db} at each of 100 tries")


def test_plain_forces_lines_on_a_terminal(tmp_path: Path) -> None:
    (tmp_path / "tmp").mkdir()
    rc = tmp_path / "rc"
    run = [str(MMFUZZ), "run", "--plain", "--time", "4", "--db", f"sqlite:///{tmp_path}/x.sqlite",
           "--corpus", str(tmp_path / "corpus"), "--seeds", str(SEEDS),
           "--crashes", str(tmp_path / "crashes")]
    script = (f"cd {shlex.quote(str(tmp_path))} && TMPDIR={shlex.quote(str(tmp_path / 'tmp'))} "
              f"timeout 300 {shlex.join(run)}; echo $? > {shlex.quote(str(rc))}; sleep 600")
    tmux = Tmux()
    try:
        tmux("new-session", "-d", "-x", "160", "-y", "50", "-s", "live", script)
        _wait("the campaign's end", time.monotonic() + 240, rc.exists)
        text = tmux.all()
    finally:
        tmux.kill()
    assert rc.read_text().strip() == "0", text
    assert re.search(r"^\[\s+\d+s\]\s+[\d,]+ programs \([\d.,]+/s last 10 s, [\d.,]+/s overall\)",
                     text, re.MULTILINE), text
    assert "programs/s (last 10 s)" not in text and "Traceback" not in text, text
    assert re.search(r"^campaign \d+ done: ", text, re.MULTILINE), text
