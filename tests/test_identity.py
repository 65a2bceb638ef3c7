"""A kernel's identity is its build: parsing `--kernel ...#NAME`, telling builds of one
release apart, finding the build a user means, recording it with campaigns and
samples (an older database without the columns still opens), reliability per
build, and the CLI's one-line errors when a word means no build or several."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fuzzer.cli.app import app
from fuzzer.kernel import KernelError, parse_kernel
from fuzzer.kernel.releases import builds, only_on
from fuzzer.oracle import Divergence
from fuzzer.store import SampleContext, Store, open_store
from fuzzer.store.identity import AmbiguousKernel, KernelId, canonical, pick
from tests.test_store import OLD_SCHEMA

runner = CliRunner()

BASE = KernelId("6.1.192", "#1 Mon", "aaaa11112222", None)
PATCHED = KernelId("6.1.192", "#2 Tue", "bbbb33334444", "patched")
HOSTK = KernelId("6.18.44", "#1 SMP Debian", None, None)

# (rows, what each row stands for): partial rows join the one full build that agrees.
CANONICAL = [
    ([BASE, PATCHED], [BASE, PATCHED]),
    # a sample without binary hash or name, from the patched build's campaign
    ([KernelId("6.1.192", "#2 Tue"), PATCHED], [PATCHED, PATCHED]),
    # a release alone agrees with two builds: it stays on its own
    ([KernelId("6.1.192"), BASE, PATCHED], [KernelId("6.1.192"), BASE, PATCHED]),
    # ... and with one, it is that one
    ([KernelId("6.18.44"), HOSTK], [HOSTK, HOSTK]),
    # a name given once names the build everywhere
    ([KernelId("6.1.192", "#1 Mon", "aaaa11112222", "base"), BASE],
     [KernelId("6.1.192", "#1 Mon", "aaaa11112222", "base")] * 2),
]


@pytest.mark.parametrize(("rows", "want"), CANONICAL)
def test_canonical(rows: list[KernelId], want: list[KernelId]) -> None:
    got = canonical(rows)
    assert [got[r] for r in rows] == want


BUILDS = [BASE, PATCHED, HOSTK]
# (word, the build it means, or the start of the one-line error)
PICKS = [
    ("patched", PATCHED),
    ("bbbb", PATCHED),  # a hash prefix of at least 4 digits
    ("AAAA1111", BASE),
    ("6.18.44", HOSTK),  # a release only one build has
    ("#1 SMP Debian", HOSTK),  # a build string
    ("6.1.192", "'6.1.192' could be 2 builds: 6.1.192@aaaa11112222, '#1 Mon'; "
                "patched, 6.1.192, binary bbbb33334444, '#2 Tue'"),
    ("aaa", "no kernel build 'aaa'"),  # too short for a hash prefix
    ("6.2", "no kernel build '6.2'"),
]


@pytest.mark.parametrize(("word", "want"), PICKS)
def test_pick(word: str, want: KernelId | str) -> None:
    if isinstance(want, KernelId):
        assert pick(word, BUILDS) == want
    else:
        with pytest.raises(AmbiguousKernel) as e:
            pick(word, BUILDS)
        assert str(e.value).startswith(want) and "\n" not in str(e.value)


# (--kernel, its name, or the KernelError's start)
SPECS = [
    ("host", None),
    ("host#mine", "mine"),
    ("uml:/bin/true#patched", "patched"),
    ("uml:/bin/true", None),
    ("uml:/bin/true#", "--kernel uml:/bin/true#: a build's name is one word"),
    ("uml:/bin/true#two words", "--kernel uml:/bin/true#two words: a build's name is one"),
]


@pytest.mark.parametrize(("spec", "want"), SPECS)
def test_kernel_names(spec: str, want: str | None) -> None:
    if want is not None and want.startswith("--kernel"):
        with pytest.raises(KernelError) as e:
            parse_kernel(spec)
        assert str(e.value).startswith(want)
        return
    kernel = parse_kernel(spec)
    assert kernel.name == want
    assert str(kernel) == spec.split("#")[0]  # the name is not part of where it runs
    if kernel.uml is not None:
        assert kernel.binary() is not None and len(kernel.binary() or "") == 12


def _url(path: Path) -> str:
    return f"sqlite:///{path}"


def _record(store: Store, title: str, kernel: KernelId, cid: int | None) -> int:
    seen = SampleContext(cid, "mmap(@0, 1p, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)",
                         "00000000000000aa", kernel.release, build=kernel.build)
    return store.record(Divergence("presence", title, 0, "A", "Z"), seen)[0]


def _campaign(store: Store, kernel: KernelId, target: str) -> int:
    return store.start_campaign(kernel=kernel.release, host="h", options={"kernel": target},
                                build=kernel.build, binary=kernel.binary,
                                kernel_name=kernel.name)


@pytest.fixture
def two_builds(tmp_path: Path) -> tuple[str, Store]:
    """A database with a patched and a base build of one release: bucket 1 only on the
    patched one, bucket 2 on both."""
    url = _url(tmp_path / "db.sqlite")
    store = open_store(url)
    base = _campaign(store, BASE, "uml:/nonexistent/base")
    patched = _campaign(store, PATCHED, "uml:/nonexistent/patched")
    _record(store, "presence: only patched", PATCHED, patched)
    _record(store, "presence: both", PATCHED, patched)
    _record(store, "presence: both", BASE, base)
    return url, store


def test_samples_take_their_campaigns_build(two_builds: tuple[str, Store]) -> None:
    _, store = two_builds
    (sample,) = store.bucket(1).samples
    assert sample.kernel_id == PATCHED  # binary and name came from the campaign
    known, seen = builds(store)
    assert [(b.kernel, b.campaigns, b.buckets) for b in known] == [(BASE, 1, 1),
                                                                   (PATCHED, 1, 2)]
    assert [b.id for b in only_on(store, PATCHED, BASE, seen)] == [1]
    assert only_on(store, BASE, PATCHED, seen) == []


def test_reliability_per_build(two_builds: tuple[str, Store]) -> None:
    _, store = two_builds

    def on(k: KernelId, hits: int) -> None:
        store.set_reliability(1, hits=hits, runs=5, kernel=k.release, build=k.build,
                              binary=k.binary, kernel_name=k.name)

    on(PATCHED, 5)
    on(BASE, 0)  # the base build's figure never overwrites the bucket's own
    b = store.bucket(1)
    assert (b.reliability_hits, b.reliability_runs) == (5, 5)
    assert [(r.kernel_id, r.hits) for r in b.reliabilities] == [(PATCHED, 5), (BASE, 0)]
    on(PATCHED, 4)  # the same build again: its figure is replaced, the bucket's too
    b = store.bucket(1)
    assert b.reliability_hits == 4
    assert [(r.kernel_id, r.hits) for r in b.reliabilities] == [(BASE, 0), (PATCHED, 4)]


def test_kernels_cli(two_builds: tuple[str, Store]) -> None:
    url, _ = two_builds
    listing = runner.invoke(app, ["kernels", "--db", url])
    assert listing.exit_code == 0, listing.output
    assert "patched" in listing.output and "aaaa11112222" in listing.output
    compared = runner.invoke(app, ["kernels", "patched", "aaaa", "--db", url])
    assert compared.exit_code == 0, compared.output
    assert "on patched, never on 6.1.192@aaaa11112222: 1 bucket(s)" in compared.output
    assert "presence: only patched" in compared.output
    for word, said in (("6.1.192", "'6.1.192' could be 2 builds"),
                       ("6.3", "no kernel build '6.3'")):
        result = runner.invoke(app, ["kernels", word, "patched", "--db", url])
        assert result.exit_code == 2
        assert result.output.startswith(f"mmfuzz: error: {said}")
        assert result.output.count("\n") == 1 and "Traceback" not in result.output


def test_bucket_commands_name_the_build_they_need(two_builds: tuple[str, Store]) -> None:
    """Bucket 1 was found in a guest whose binary is gone: one line says which build
    and how to pass one, and nothing stored changes."""
    url, store = two_builds
    before = store.bucket(1)
    for args in (["minimize", "1"], ["repro", "1"], ["variants", "1"],
                 ["export", "1", "--check"]):
        result = runner.invoke(app, [*args, "--db", url])
        assert result.exit_code == 2, result.output
        assert result.output == (
            "mmfuzz: error: bucket 1 was found on patched, 6.1.192, binary bbbb33334444, "
            "'#2 Tue' (uml:/nonexistent/patched), which is not there any more: pass --kernel "
            "uml:PATH (that build) or --kernel host\n")
    assert store.bucket(1) == before
    wrong = runner.invoke(app, ["export", "1", "--kernel", "host", "--db", url])
    assert wrong.exit_code == 2 and wrong.output.startswith("mmfuzz: error: --kernel is for")


def test_an_old_database_without_builds_opens_and_reads(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as conn:
        conn.executescript(OLD_SCHEMA)
    conn.close()
    store = open_store(_url(path), create=False, read_only=True)
    (campaign,) = store.campaigns()
    assert campaign.kernel_id == KernelId("6.17.0") and campaign.target == "host"
    assert [s.kernel_id for s in store.bucket(1).samples] == [KernelId("6.17.0")] * 2
    assert store.bucket(1).reliabilities == ()
    known, _ = builds(store)
    assert [(b.kernel, b.campaigns, b.buckets) for b in known] == [(KernelId("6.17.0"), 1, 2)]
    listing = runner.invoke(app, ["kernels", "--db", _url(path)])
    assert listing.exit_code == 0 and "6.17.0" in listing.output
    # and the new rows go in beside the old ones
    writable = open_store(_url(path), create=False)
    writable.set_reliability(1, hits=1, runs=2, kernel="6.17.0")
    assert writable.bucket(1).reliability_hits == 1
