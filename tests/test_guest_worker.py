"""A campaign's time is wall-clock, and a guest worker's own error reaches the user.

The campaign process owns the deadline (campaign/run.py): host workers get it in
their Job, a guest worker (campaign/guest_worker.py) sends its guest the seconds
left once the guest is up. A guest's worker that fails for a reason of its own
sends its error line from the guest (campaign/guest.py, campaign/failure.py),
which becomes the last line of the guest worker's log and the line the campaign
shows. Also: `mmfuzz bench detect --no-inject`, the runs without injection alone.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fuzzer.campaign import guest
from fuzzer.campaign.failure import described, error_line, tail
from fuzzer.campaign.fleet import last_error
from fuzzer.campaign.options import DEFAULTS, Job
from fuzzer.cli.app import app
from fuzzer.kernel.channel import Channel
from fuzzer.kernel.messages import Worker
from fuzzer.store import open_store

ROOT = Path(__file__).resolve().parent.parent
MMFUZZ = ROOT / ".venv" / "bin" / "mmfuzz"
UML = Path("/usr/bin/linux")
BROKEN = ROOT / "tests" / "fixtures" / "uml" / "broken.py"
runner = CliRunner()

# What a worker prints when a Python exception leaves libFuzzer's callback (Atheris's
# own words, then libFuzzer's), as a worker printed it.
ATHERIS = """\
INFO: Using built-in libfuzzer
#2\tINITED exec/s: 0 rss: 40Mb

 === Uncaught Python exception: ===
OSError: [Errno 28] No space left on device: '/run/corpus/0b1c'
Traceback (most recent call last):
  File "/work/fuzzer/campaign/harness.py", line 108, in one_input
    self.corpus.add(program, new, plant=fresh)
OSError: [Errno 28] No space left on device: '/run/corpus/0b1c'

==1740== ERROR: libFuzzer: fuzz target exited
SUMMARY: libFuzzer: fuzz target exited
MS: 0 ; base unit: 0000000000000000000000000000000000000000
artifact_prefix='/tmp/'; Test unit written to /tmp/crash-da39a3ee
Base64:
"""


def test_the_error_line_is_the_exception_that_ended_the_worker() -> None:
    assert error_line(ATHERIS, 77) == \
        "OSError: [Errno 28] No space left on device: '/run/corpus/0b1c'"


def test_an_exception_without_a_message_says_where_it_was_raised() -> None:
    # A bare assert in the model, in a guest worker, showed only
    # "AssertionError: <EMPTY MESSAGE>" (Atheris's words).
    text = ATHERIS.replace("OSError: [Errno 28] No space left on device: '/run/corpus/0b1c'",
                           "AssertionError: <EMPTY MESSAGE>", 1).replace(
        "OSError: [Errno 28] No space left on device: '/run/corpus/0b1c'", "AssertionError")
    text = text.replace('    self.corpus.add(program, new, plant=fresh)\n',
                        '    self.corpus.add(program, new, plant=fresh)\n'
                        '  File "/work/fuzzer/model/pages.py", line 88, in count_mappings\n'
                        '    assert page is not None\n')
    assert error_line(text, 77) == \
        "AssertionError at fuzzer/model/pages.py:88 in count_mappings"
    assert error_line("Traceback (most recent call last):\n  File \"x.py\", line 3, in f\n"
                      "    assert y\nAssertionError\n") == "AssertionError at x.py:3 in f"


def test_an_exception_caught_in_the_guest_in_one_line() -> None:
    def bare() -> None:
        raise AssertionError  # as a bare assert is (pytest would give it a message)

    try:
        bare()
    except AssertionError as e:
        line = described(e)
    assert line.startswith("AssertionError at ") and line.endswith(" in bare"), line
    assert described(ValueError("bad\nsecond line")) == "ValueError: bad"
    assert described(KeyError()) == "KeyError"  # never raised: no frame to name


def test_a_chained_traceback_gives_its_last_exception() -> None:
    text = ("Traceback (most recent call last):\n  File \"a.py\", line 1\nKeyError: 'x'\n\n"
            "During handling of the above exception, another exception occurred:\n\n"
            "Traceback (most recent call last):\n  File \"b.py\", line 2\n"
            "fuzzer.store.errors.StoreUnreachable: the database server is away\n")
    assert error_line(text) == "fuzzer.store.errors.StoreUnreachable: the database server is away"


def test_without_a_traceback_libfuzzer_or_the_last_line_says_why() -> None:
    oom = "INFO: Seed: 1\n#1 pulse\n==77== ERROR: libFuzzer: out-of-memory (malloc(2147483648))\n"
    assert error_line(oom) == "libFuzzer: out-of-memory (malloc(2147483648))"
    assert error_line("INFO: Seed: 1\ncannot open /dev/ttyS0\n#4 pulse\n") == \
        "cannot open /dev/ttyS0"
    assert error_line("INFO: Seed: 1\n#4 pulse\n") == ""  # nothing says: the caller says so


def test_a_signal_is_said_first() -> None:
    assert error_line("", -9) == "killed by SIGKILL"
    assert error_line("INFO: x\nallocating\n", -6) == "killed by SIGABRT (last output: allocating)"


def test_tail_keeps_the_last_lines_that_say_something() -> None:
    assert tail("a\n\nb\nc\n\n", lines=2) == "b\nc"


def test_a_guest_workers_own_line_is_what_the_campaign_shows(tmp_path: Path) -> None:
    log = tmp_path / "worker-0.log"
    log.write_text("--- start 1 at 10:00:00\n"
                   "the guest's console, its last lines:\n"
                   "[  576.820000] reboot: Power down\n[  576.830000] reboot: System halted\n"
                   "mmfuzz-guest-worker: worker 0 in uml:/usr/bin/linux failed: "
                   "RuntimeError: boom\n")
    assert last_error(log) == "worker 0 in uml:/usr/bin/linux failed: RuntimeError: boom"
    # A host worker's log: its last two lines that say something, as before.
    log.write_text("--- start 1 at 10:00:00\nINFO: Seed: 3\nTraceback (most recent call "
                   "last):\n  File \"x.py\", line 1\nValueError: bad\n")
    assert last_error(log) == 'File "x.py", line 1 | ValueError: bad'
    # Python 3.11 marks the failing expression with carets: not a line that says why.
    log.write_text("--- start 1 at 10:00:00\nTraceback (most recent call last):\n  File \"x.py\", "
                   "line 1\n    a[i]\n    ~^^^\nIndexError: tuple index out of range\n")
    assert last_error(log) == "a[i] | IndexError: tuple index out of range"


def test_a_job_carries_its_deadline() -> None:
    job = Job(DEFAULTS, 3, deadline=1234.5)
    assert Job.from_json(job.to_json()) == job
    assert Job.from_json(Job(DEFAULTS, 3).to_json()).deadline is None


@pytest.mark.slow
def test_a_failing_worker_in_a_guest_sends_its_own_error(
        capfd: pytest.CaptureFixture[str]) -> None:
    """The guest's side, run here: the worker is a child process, and when it fails
    the guest's process sends the host its error line and the tail of its output."""
    to_guest_r, to_guest_w = os.pipe()
    from_guest_r, from_guest_w = os.pipe()
    job = Job(replace(DEFAULTS, time=30, injections=("no-such-injection",), db="guest:"), 1)
    try:
        channel = Channel(to_guest_r, from_guest_w)
        code = guest._worker_process(channel, Worker(job.to_json()), time.monotonic())
        os.close(from_guest_w)
        with os.fdopen(from_guest_r, "rb") as f:
            messages = [json.loads(line) for line in f.read().splitlines()]
    finally:
        for fd in (to_guest_r, to_guest_w):
            os.close(fd)
    assert code == 1
    (message,) = messages
    assert message["error"].startswith("fuzzer.inject.api.InjectionError: unknown injection "
                                       "'no-such-injection'")
    assert "Traceback (most recent call last):" in message["output"]
    # What it printed went on to the console (this process's stderr) as it came.
    assert "unknown injection 'no-such-injection'" in capfd.readouterr().err


def test_detect_no_inject_runs_only_the_baseline_and_refuses_what_it_excludes() -> None:
    for extra, other in ((["--inject", "munlock-skipped"], "--inject"), (["--deep"], "--deep"),
                         (["--no-baseline"], "--no-baseline")):
        result = runner.invoke(app, ["bench", "detect", "--no-inject", *extra])
        assert result.exit_code == 2, result.output
        assert f"--no-inject and {other} do not go together" in result.output
        assert "Traceback" not in result.output


@pytest.mark.slow
@pytest.mark.kernel
def test_detect_no_inject_measures_the_kernel_alone(tmp_path: Path) -> None:
    result = runner.invoke(app, ["bench", "detect", "--no-inject", "--runs", "1", "--time", "2",
                                 "--json", "--db", f"sqlite:///{tmp_path}/d.sqlite"])
    assert result.exit_code == 0, result.output
    (rows,) = json.loads(result.output).values()
    assert [r["injection"] for r in rows] == ["(none)"] and rows[0]["runs"] == 1


@pytest.mark.uml
@pytest.mark.slow
def test_a_uml_campaigns_time_is_wall_clock(tmp_path: Path) -> None:
    """`run --time 20`: 20 s from the command's start to its end, the guests' boots
    included (not 20 s of fuzzing after them), ended as a campaign that ran its time.
    (Timed in this process: starting Python is not the campaign's.)"""
    db = f"sqlite:///{tmp_path}/x.sqlite"
    start = time.monotonic()
    result = runner.invoke(app, ["run", "--time", "20", "--kernel", f"uml:{UML}", "--db", db,
                                 "--corpus", str(tmp_path / "corpus"),
                                 "--seeds", str(tmp_path / "none"),
                                 "--crashes", str(tmp_path / "crashes")])
    seconds = time.monotonic() - start
    assert result.exit_code == 0, result.output
    (campaign,) = open_store(db, create=False).campaigns()
    assert campaign.status == "done"
    assert 20 <= seconds < 20 + 15, seconds
    assert _no_guest_left()


@pytest.mark.uml
def test_a_guest_workers_own_error_is_its_last_line(tmp_path: Path) -> None:
    """A worker that fails in the guest (an exception, no kernel fault): the guest worker
    fails with the guest's own error line last, the guest's console before it."""
    store = open_store(f"sqlite:///{tmp_path}/x.sqlite")
    opts = replace(DEFAULTS, db=f"sqlite:///{tmp_path}/x.sqlite", time=120,
                   kernel=f"uml:{UML}", injections=(f"{BROKEN}:refuses_guests",),
                   seeds=None, corpus=None)
    cid = store.start_campaign(kernel="uml", host="test", options=opts.as_json())
    read, write = os.pipe()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "fuzzer.campaign.guest_worker", Job(opts, cid).to_json(),
             str(write)], pass_fds=[write], capture_output=True, text=True, timeout=240,
            cwd=ROOT)
    finally:
        os.close(read)
        os.close(write)
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines[-1] == (f"mmfuzz-guest-worker: worker 0 in uml:{UML} failed: "
                         "RuntimeError: refuses_guests will not run in a guest")
    assert "the guest's console, its last lines:" in done.stderr
    assert "Traceback (most recent call last):" in done.stderr  # the worker's own output
    assert _no_guest_left()


def _no_guest_left() -> bool:
    """No guest of this checkout's is running (its init is this checkout's init.sh)."""
    out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    return f"init={ROOT / 'fuzzer' / 'kernel' / 'init.sh'}" not in out
