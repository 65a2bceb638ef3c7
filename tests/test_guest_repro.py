"""A bucket found in a guest is worked on in a guest of the same build: `export --check`
runs its C reproducer there (exit 1 on the patched build, 0 on the base), and `repro`
keeps each build's reliability apart."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from fuzzer.cli.app import app
from fuzzer.store import open_store
from tests.conftest import UML

runner = CliRunner()
# The regression the patch reintroduces: a locked private read-only page stays the zero
# page when mprotect makes it writable.
PROGRAM = ("mmap(@0, 1p, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS|MAP_LOCKED, -1, 0)\n"
           "mprotect(@0, 1p, PROT_READ|PROT_WRITE)\n")
TITLE = "presence: mprotect left pages not anonymous"


@pytest.mark.uml
@pytest.mark.slow
def test_c_reproducer_runs_in_the_guest_it_was_found_in(tmp_path: Path,
                                                        nocow_uml: Path) -> None:
    db = f"sqlite:///{tmp_path}/db.sqlite"
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "nocow.prog").write_text(PROGRAM)
    found = runner.invoke(app, [
        "run", "--kernel", f"uml:{nocow_uml}#patched", "--time", "60", "--runs", "2",
        "--workers", "1", "--seeds", str(seeds), "--corpus", str(tmp_path / "corpus"),
        "--minimize-budget", "0", "--calls", "mmap,mprotect", "--db", db])
    assert found.exit_code == 0, found.output
    store = open_store(db, create=False)
    (bucket,) = [b for b in store.buckets(include_labelled=True) if b.title == TITLE]
    (campaign,) = store.campaigns()
    assert campaign.kernel_id.name == "patched" and campaign.kernel_id.binary
    assert campaign.kernel_id.build and campaign.kernel.startswith("6.1.")
    assert store.bucket(bucket.id).samples[0].kernel_id == campaign.kernel_id

    # Without --kernel: the guest it was found in. The C source is the same for both.
    patched = runner.invoke(app, ["export", str(bucket.id), "--check", "--db", db])
    assert patched.exit_code == 1, patched.output
    assert f"reproduced: {TITLE}" in patched.output
    assert f"repro.c on uml:{nocow_uml}: exit 1 (reproduces)" in patched.output
    base = runner.invoke(app, ["export", str(bucket.id), "--check", "--kernel", f"uml:{UML}",
                               "--db", db])
    assert base.exit_code == 0, base.output
    assert "not reproduced" in base.output

    # Reliability per build: the base build's 0/2 leaves the patched build's 2/2.
    for extra in ([], ["--kernel", f"uml:{UML}#base"]):
        repro = runner.invoke(app, ["repro", str(bucket.id), "--runs", "2", "--db", db, *extra])
        assert repro.exit_code == 0, repro.output
    detail = open_store(db, create=False).bucket(bucket.id)
    assert (detail.reliability_hits, detail.reliability_runs) == (2, 2)
    assert [(r.kernel_id.name, r.hits) for r in detail.reliabilities] == [("patched", 2),
                                                                          ("base", 0)]
    shown = runner.invoke(app, ["triage", "show", str(bucket.id), "--db", db])
    assert shown.exit_code == 0 and "0/2  base, 6." in shown.output
