"""A worker's feedback and shared corpus (fuzzer/campaign/feedback.py), on a SQLite file:
which features are new, their counters, planting, and pulling other workers' entries."""

from __future__ import annotations

import hashlib
import os
import subprocess
import zlib
from pathlib import Path

import pytest

from fuzzer.campaign import feedback
from fuzzer.campaign.feedback import Feedback, SharedCorpus, counter
from fuzzer.campaign.packed import pack
from fuzzer.oracle import Divergence
from fuzzer.prog import parse
from fuzzer.store import SampleContext, Store, open_store
from tests.inbox import drained

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


def test_plant_and_pull(store: Store, tmp_path: Path) -> None:
    cid = store.start_campaign(kernel="k", host="h", options={})
    p_a = parse(A)
    store.add_corpus(cid, A, p_a.hash, ["munlockall ok on absent"])
    store.add_corpus(cid, "no such call()", "00000000000000ee", ["x"])  # an older grammar's
    mine = SharedCorpus(store, cid, None)
    seed = parse("mlock(@0, 1p)")
    # The seed and the stored entry (once, although both the campaign's and everyone's
    # newest hold it); not the unparsable one.
    assert mine.plant([seed]) == 2
    assert drained(mine) == [seed.text(), p_a.text()]
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
    assert drained(mine) == [p_b.text()]
    assert mine.pull(start + feedback.PULL_EVERY) == 0  # nothing new since
    # A fresh program (not libFuzzer's input) is queued for libFuzzer as it is stored.
    fresh = parse("mlock(@2, 1p)")
    mine.add(fresh, ["mlock ENOMEM on absent"], deliver=True)
    mine.add(parse("mlock(@3, 1p)"), ["mlock ENOMEM on locked"])  # libFuzzer's own input
    assert drained(mine) == [fresh.text()]
    mine.store_pending()
    # A byte search's inputs are not program text: nothing is queued, entries are stored.
    bytes_search = SharedCorpus(store, cid, None, inputs=False)
    assert bytes_search.plant([seed]) == 0 and drained(bytes_search) == []
    bytes_search.add(parse("mlock(@1, 1p)"), ["mlock ok on absent"], deliver=True)
    assert drained(bytes_search) == []
    bytes_search.add(parse("mlock(@2, 1p)"), ["x"])  # the campaign has it: not again
    bytes_search.store_pending()
    assert len(store.corpus_after(0)) == 7


def test_a_fresh_campaign_plants_nothing_other_campaigns_stored(store: Store) -> None:
    """`bench detect` runs its campaigns one after the other on one database: planted
    the corpus and the minimized bucket of the run before, a run replayed the program
    that run found (four runs of five "found" one injection in 17-19 s, the time to
    run the planted corpus). A fresh campaign plants its own entries alone, and its
    pulls start after what was stored before it."""
    earlier = store.start_campaign(kernel="k", host="h", options={})
    store.add_corpus(earlier, A, parse(A).hash, ["munlockall ok on absent"])
    found = parse("mlock(@0, 1p)")
    bucket, _ = store.record(Divergence("lock", "lock: mlock left pages unlocked", 0, "lo", ".."),
                             SampleContext(None, found.text(), found.hash, "k"))
    store.set_minimized(bucket, program_text=found.text(), program_hash=found.hash, step=0,
                        original_calls=1, minimized_calls=1)
    cid = store.start_campaign(kernel="k", host="h", options={})
    own = parse(B)
    store.add_corpus(cid, own.text(), own.hash, ["mlockall(CURRENT) ok on absent"])
    seed = parse("munlock(@0, 1p)")
    fresh = SharedCorpus(store, cid, None, others=False)
    assert fresh.plant([seed]) == 2
    assert drained(fresh) == [seed.text(), own.text()]
    assert fresh.pull(fresh.next_pull) == 0  # the earlier campaign's entries are not pulled
    later = parse("mlock(@1, 1p)")
    store.add_corpus(earlier, later.text(), later.hash, ["mlock ok on present"])
    assert fresh.pull(fresh.next_pull) == 1 and drained(fresh) == [later.text()]
    # Not fresh, a campaign plants the earlier campaign's entry and the bucket's program.
    shared = SharedCorpus(store, cid, None)
    assert shared.plant([]) == 4
    assert {parse(A).text(), found.text()} <= set(drained(shared))


def test_a_corpus_folder_keeps_every_entry_and_plants_its_newest(store: Store,
                                                                   tmp_path: Path) -> None:
    """--corpus DIR: every program stored is written there, named as libFuzzer names
    files; a later worker plants the folder's newest files (and no file twice)."""
    cid = store.start_campaign(kernel="k", host="h", options={})
    folder = tmp_path / "corpus"
    first = SharedCorpus(store, cid, folder, shared=False)
    programs = [parse(f"mlock(@{i}, 1p)") for i in range(3)]
    for age, program in enumerate(programs):
        first.add(program, [f"f{program.hash}"])
        path = folder / _name(program.text())
        assert path.read_text() == program.text()
        os.utime(path, (1000 + age, 1000 + age))  # the later, the newer
    (folder / "junk").write_bytes(b"\xff\xfe not a program")
    later = SharedCorpus(store, cid, folder, shared=False)
    assert later.plant([programs[0]]) == 3
    # the seed first, then the files newest first; the unparsable one left out
    assert drained(later) == [programs[0].text(), programs[2].text(), programs[1].text()]


def test_the_inbox_is_bounded_and_passes_over_what_does_not_fit(store: Store,
                                                                  monkeypatch: pytest.MonkeyPatch
                                                                  ) -> None:
    cid = store.start_campaign(kernel="k", host="h", options={})
    monkeypatch.setattr(feedback, "INBOX", 2)
    corpus = SharedCorpus(store, cid, None)
    long_one, short = parse("mlock(@0, 1p)\nmunlock(@0, 1p)"), parse("munlockall()")
    # the third: no room; the long one: passed over
    assert corpus.plant([long_one, short, parse("mlockall(MCL_CURRENT)")]) == 2
    packed = pack(short.text().encode())
    assert corpus.next_input(len(packed)) == packed
    assert corpus.next_input(1 << 16) is None


def test_a_guest_worker_keeps_its_corpus_off_the_serial_line(store: Store,
                                                             tmp_path: Path) -> None:
    """In a guest kernel the store is a proxy over a serial line: a batch of corpus
    entries and a pull of every entry since the last were enough text to stall it (the
    host saw a silent guest and filed a false hang). Not shared, the corpus stays in
    libFuzzer's memory; the buckets' minimized programs are still planted."""
    cid = store.start_campaign(kernel="k", host="h", options={})
    store.add_corpus(cid, A, parse(A).hash, ["munlockall ok on absent"])
    guest = SharedCorpus(store, cid, None, shared=False)
    seed = parse("mlock(@0, 1p)")
    assert guest.plant([seed]) == 1  # the seed only: no stored entry crosses
    fresh = parse("mlock(@2, 1p)")
    guest.add(fresh, ["mlock ENOMEM on absent"], deliver=True)
    guest.store_pending()
    assert guest.pending == [] and len(store.corpus_after(0)) == 1  # nothing stored
    assert drained(guest) == [seed.text(), fresh.text()]
    assert guest.pull(guest.next_pull + feedback.PULL_EVERY) == 0


def test_a_full_corpus_folder_is_a_warning_not_the_workers_end(store: Store,
                                                                tmp_path: Path) -> None:
    """A corpus folder on a small file system (a tmpfs, a page an entry) fills up
    (ENOSPC), and the worker went down with it. Now writing stops, said once."""
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
            corpus.add(program, [f"f{program.hash}"])
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
