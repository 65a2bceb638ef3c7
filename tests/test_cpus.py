"""Where campaign workers run: `--cpus`, and CPUs no other campaign holds by default."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from fuzzer.campaign.cpus import CpuError, allowed, parse_cpus, place
from fuzzer.store import open_store
from tests.procs import children

ROOT = Path(__file__).parents[1]
MMFUZZ = ROOT / ".venv" / "bin" / "mmfuzz"
TWO_CPUS = pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs")


@pytest.mark.parametrize(("text", "cpus"), [
    ("1", (1,)),
    ("0,1", (0, 1)),
    ("0-3,6", (0, 1, 2, 3, 6)),
    (" 2 , 1,2", (2, 1)),
])
def test_parse_cpus(text: str, cpus: tuple[int, ...]) -> None:
    assert parse_cpus(text) == cpus


@pytest.mark.parametrize("text", ["", "x", "1,,2", "-1", "3-x"])
def test_parse_cpus_rejects(text: str) -> None:
    with pytest.raises(CpuError, match="not a CPU list"):
        parse_cpus(text)


def test_place_refuses_a_cpu_outside_the_allowed_set() -> None:
    outside = max(allowed()) + 1
    with pytest.raises(CpuError, match=f"CPU {outside} is not one this process may run on"):
        place(1, (outside,))


@TWO_CPUS
def test_place_skips_a_cpu_another_campaign_holds() -> None:
    first = place(1)
    try:
        second = place(1)
        try:
            assert second.cpus != first.cpus
            shared = place(2, tuple(first.cpus))  # asked for, so shared: no other choice
            assert shared.cpus == first.cpus * 2 and shared.fds == []
        finally:
            second.close()
    finally:
        first.close()
    again = place(1)  # a lock is gone with its descriptor
    again.close()
    assert again.cpus == first.cpus


def _worker_cpus(parent: int) -> str | None:
    """The affinity of the campaign worker started by `parent`, once it has pinned itself."""
    for pid in children(parent, "fuzzer.campaign.worker"):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        line = next(ln for ln in status.splitlines() if ln.startswith("Cpus_allowed_list:"))
        cpus = line.split(":")[1].strip()
        return cpus if cpus.isdigit() else None  # still the parent's affinity
    return None


@pytest.mark.slow
@pytest.mark.kernel
@TWO_CPUS
def test_two_campaigns_started_together_get_different_cpus(tmp_path: Path) -> None:
    procs = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        procs.append(subprocess.Popen(
            [str(MMFUZZ), "run", "--time", "3", "--db", f"sqlite:///{tmp_path / name}/x.sqlite"],
            cwd=tmp_path / name, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
    try:
        seen: dict[int, str] = {}
        deadline = time.monotonic() + 30
        while len(seen) < 2 and time.monotonic() < deadline:
            for p in procs:
                cpus = _worker_cpus(p.pid)
                if cpus is not None:
                    seen.setdefault(p.pid, cpus)
            time.sleep(0.05)
        for p in procs:
            _, err = p.communicate(timeout=60)
            assert p.returncode == 0, err
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert len(seen) == 2 and len(set(seen.values())) == 2, seen
    recorded = [open_store(f"sqlite:///{tmp_path / n}/x.sqlite").campaigns()[0]
                .options["worker_cpus"] for n in ("a", "b")]
    assert sorted(recorded) == sorted([[int(c)] for c in seen.values()])
