"""The container image (docker/): built from the project, it runs a real campaign.

Slow (minutes: a base image from debootstrap the first time, then the image
build), so marked `slow` and `container`; skipped only where no container
runtime can be installed, with the reason.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fuzzer.store import open_store
from tests import container

pytestmark = [pytest.mark.slow, pytest.mark.container]

why_not = container.missing()


@pytest.mark.skipif(why_not is not None, reason=why_not or "")
def test_image_runs_a_campaign_into_the_database(tmp_path: Path) -> None:
    container.build(container.base_image())
    data = tmp_path / "data"
    data.mkdir()
    done = container.run(["run", "--time", "10", "--workers", "1",
                          "--db", "sqlite:////data/fleet.sqlite",
                          "--seeds", "/opt/mmfuzz/corpus/seeds"],
                         volumes={data: "/data"}, budget=180)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "campaign 1 done" in done.stdout
    store = open_store(f"sqlite:///{data / 'fleet.sqlite'}", create=False)
    (campaign,) = store.campaigns()
    assert campaign.status == "done"
    assert campaign.programs > 0 and campaign.steps > campaign.programs
