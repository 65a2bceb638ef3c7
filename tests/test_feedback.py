"""A worker's feedback and shared corpus (fuzzer/campaign/feedback.py), on a SQLite file:
which features are new, their counters, planting, and pulling other workers' entries."""

from __future__ import annotations

import hashlib
import subprocess
import zlib
from pathlib import Path

import pytest

from fuzzer.campaign import feedback
from fuzzer.campaign.feedback import Feedback, SharedCorpus, counter
from fuzzer.prog import parse
from fuzzer.store import Store, open_store

A, B = "munlockall()", "mlockall(MCL_CURRENT)"


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return open_store(f"sqlite:///{tmp_path / 'f.sqlite'}")


def _name(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


def test_new_features_are_reported_once() -> None:
    fb = Feedback(counters=False)
    assert fb.hit(frozenset({"b", "a"})) == ["a", "b"]
    assert fb.hit(frozenset({"a", "c"})) == ["c"]
    assert fb.hit(frozenset()) == [] and len(fb.seen) == 3
    assert all(f in fb.seen for f in "abc") and "d" not in fb.seen
    assert fb.hit(frozenset({"d"}), counters=False) == ["d"]  # seen, credited to no input


def test_counters_are_stable_and_in_the_block() -> None:
    f = "mlock2(ONFAULT) ok on present"
    assert counter(f, 1 << 14) == zlib.crc32(f.encode()) % (1 << 14)  # not hash(): per process
    spread = {counter(f"mmap ok on absent {i}", 1 << 14) for i in range(1000)}
    assert len(spread) > 950  # a few thousand features: few collisions


def test_plant_and_pull(store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cid = store.start_campaign(kernel="k", host="h", options={})
    p_a = parse(A)
    store.add_corpus(cid, A, p_a.hash, ["munlockall ok on absent"])
    store.add_corpus(cid, "no such call()", "00000000000000ee", ["x"])  # an older grammar's
    folder = tmp_path / "corpus"
    mine = SharedCorpus(store, cid, folder)
    seed = parse("mlock(@0, 1p)")
    assert mine.plant([seed]) == 2  # the seed and the stored entry; not the unparsable one
    assert {p.name for p in folder.iterdir()} == {_name(p_a.text()), _name(seed.text())}
    # An entry of its own is not pulled; another worker's is, once PULL_EVERY has passed.
    mine.add(parse("munlock(@0, 1p)"), ["munlock ok on absent"])
    assert len(store.corpus_after(0)) == 2  # stored at the next store_pending()
    mine.store_pending()
    assert len(store.corpus_after(0)) == 3 and mine.pending == []
    p_b = parse(B)
    store.add_corpus(cid, p_b.text(), p_b.hash, ["mlockall(CURRENT) ok on absent"])
    start = mine.next_pull
    assert mine.pull(start - 0.1) == 0
    assert mine.pull(start) == 1
    assert (folder / _name(p_b.text())).read_text() == p_b.text()
    assert not (folder / _name(parse("munlock(@0, 1p)").text())).exists()
    assert mine.pull(start + feedback.PULL_EVERY) == 0  # nothing new since
    # A fresh program (not libFuzzer's input) goes into the folder when it is stored.
    fresh = parse("mlock(@2, 1p)")
    mine.add(fresh, ["mlock ENOMEM on absent"], plant=True)
    assert (folder / _name(fresh.text())).read_text() == fresh.text()
    mine.store_pending()
    # Without a folder (a byte search) nothing is written, but entries are still stored.
    bytes_search = SharedCorpus(store, cid, None)
    assert bytes_search.plant([seed]) == 0
    bytes_search.add(parse("mlock(@1, 1p)"), ["mlock ok on absent"])
    bytes_search.add(parse("mlock(@2, 1p)"), ["x"])  # the campaign has it: not again
    bytes_search.store_pending()
    assert len(store.corpus_after(0)) == 6


def test_a_guest_worker_keeps_its_corpus_off_the_serial_line(store: Store,
                                                             tmp_path: Path) -> None:
    """In a guest kernel the store is a proxy over a serial line: a batch of corpus
    entries and a pull of every entry since the last were enough text to stall it (the
    host saw a silent guest and filed a false hang). Not shared, the corpus stays in
    the folder; the buckets' minimized programs are still planted."""
    cid = store.start_campaign(kernel="k", host="h", options={})
    store.add_corpus(cid, A, parse(A).hash, ["munlockall ok on absent"])
    folder = tmp_path / "corpus"
    guest = SharedCorpus(store, cid, folder, shared=False)
    seed = parse("mlock(@0, 1p)")
    assert guest.plant([seed]) == 1  # the seed only: no stored entry crosses
    fresh = parse("mlock(@2, 1p)")
    guest.add(fresh, ["mlock ENOMEM on absent"], plant=True)
    guest.store_pending()
    assert guest.pending == [] and len(store.corpus_after(0)) == 1  # nothing stored
    assert (folder / _name(fresh.text())).exists()
    assert guest.pull(guest.next_pull + feedback.PULL_EVERY) == 0


def test_a_full_corpus_folder_is_a_warning_not_the_workers_end(store: Store,
                                                                tmp_path: Path) -> None:
    """A guest's corpus lives in a small tmpfs, a page an entry: a long campaign fills it
    (ENOSPC), and the worker went down with it. Now planting stops, said once."""
    folder = tmp_path / "small"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8k", "tmpfs", str(folder)],
                             capture_output=True, timeout=30)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        cid = store.start_campaign(kernel="k", host="h", options={})
        corpus = SharedCorpus(store, cid, folder, shared=False)
        programs = [parse(f"mlock(@{i}, 1p)") for i in range(6)]  # 8 KiB: two pages
        for program in programs:
            corpus.add(program, [f"f{program.hash}"], plant=True)
        names = {p.name for p in folder.iterdir()}
        assert 1 <= len(names) < len(programs) and corpus.full
        for name in names:  # whole programs only: the one that did not fit is not there
            assert (folder / name).read_text().startswith("mlock(@")
        (warning,) = corpus.take_warnings()
        assert f"the corpus folder {folder} is full" in warning
        assert corpus.take_warnings() == []  # said once
        assert len(corpus.pending) == len(programs)  # still stored with their features
    finally:
        subprocess.run(["umount", str(folder)], timeout=30, check=True)
