"""A campaign's memory stays flat: every cache a worker fills per program is bounded, the
features seen are held small, and `growth` reads a run's RSS samples
(fuzzer/campaign/memory.py, seen.py; `mmfuzz bench memory` is run by hand)."""

from __future__ import annotations

import gc
import tracemalloc
import weakref
from collections.abc import Callable
from pathlib import Path

import pytest

from fuzzer.campaign import harness, ops, seen
from fuzzer.campaign.feedback import Feedback, SharedCorpus
from fuzzer.campaign.memory import (
    GC_THRESHOLDS,
    Growth,
    Sample,
    growth,
    rss_kb,
    settled_heap,
    worker_pids,
)
from fuzzer.campaign.packed import pack
from fuzzer.campaign.seen import FeatureSet
from fuzzer.model.state import Attrs, Page
from fuzzer.oracle import views
from fuzzer.prog import Call, format_call, parse, program, text
from fuzzer.snapshot import parse as smaps
from fuzzer.store import open_store


def _smaps(i: int) -> str:
    start = 0x10000000 + i * 0x1000
    return (f"{start:x}-{start + 0x1000:x} rw-p 00000000 00:00 0 \n"
            "Size:                  4 kB\nRss:                   4 kB\n"
            "Pss:                   4 kB\nLocked:                0 kB\n"
            "VmFlags: rd wr mr mw me ac \n")


def _views(i: int) -> None:
    views._interned(f"p{i}", False, False, False, "A", False, False, False)


_PAGES: list[Page] = []  # kept alive, so that no id() is reused while the test fills the cache


def _model_views(i: int) -> None:
    page = Page(Attrs(False, 3), "A")
    _PAGES.append(page)
    views.model_view([page])


def _programs(i: int) -> None:
    harness._text_program(pack(f"mlock(@0, {i % 60 + 1}p)\nmunlock(@0, {i}p)".encode()))


# (cache, how to put the i-th distinct entry into it, its size now, its bound)
CACHES: list[tuple[str, Callable[[int], None], Callable[[], int], int]] = [
    ("views: interned PageViews", _views, lambda: len(views._VIEWS), views._CACHE_MAX),
    ("views: PageView by Page", _model_views, lambda: len(views._BY_PAGE), views._CACHE_MAX),
    ("smaps: Vma by its text", lambda i: smaps.parse_smaps(_smaps(i)),
     lambda: len(smaps._SEEN), smaps._SEEN_MAX),
    ("harness: parsed corpus programs", _programs,
     lambda: harness._text_program.cache_info().currsize, harness.PROGRAMS_CACHED),
    ("text: Call by its line", lambda i: text.parse_call(f"touch(@{i % 64}+{i // 64:#x}, read)"),
     lambda: text.parse_call.cache_info().currsize, text.LINES_CACHED),
    ("program: text by its Call", lambda i: format_call(Call("munlock", (0, i))),
     lambda: format_call.cache_info().currsize, program.TEXTS_CACHED),
    ("ops: counted keys by outcome", lambda i: ops._keys("munlockall", (), f"-{i}"),
     lambda: ops._keys.cache_info().currsize, 4096),
]


@pytest.mark.parametrize(("name", "put", "size", "bound"), CACHES, ids=[c[0] for c in CACHES])
def test_caches_stay_bounded(name: str, put: Callable[[int], None], size: Callable[[], int],
                             bound: int) -> None:
    for i in range(bound * 2 + 7):
        put(i)
        assert size() <= bound, name
    assert size() > 0
    _PAGES.clear()


@pytest.mark.parametrize(("merge_at"), [1, 2, seen.MERGE_AT])
@pytest.mark.parametrize(("batches", "new"), [
    ([["b", "a"]], [["a", "b"]]),
    ([["a"], ["a", "c"], []], [["a"], ["c"], []]),
    ([["x", "x"], ["y", "x"]], [["x"], ["y"]]),
    ([["c", "b"], ["a", "d", "b"], ["e", "a"], ["f", "g", "h", "c"]],
     [["b", "c"], ["a", "d"], ["e"], ["f", "g", "h"]]),
])
def test_feature_set_reports_each_feature_once(batches: list[list[str]], new: list[list[str]],
                                               merge_at: int,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(seen, "MERGE_AT", merge_at)  # in the array, the set, or both
    held = FeatureSet()
    assert [held.add_new(b) for b in batches] == new
    assert len(held) == len({f for b in batches for f in b})
    assert all(f in held for b in batches for f in b) and "never" not in held
    held |= ["z", "z", *(f for b in batches for f in b)]
    assert len(held) == len({f for b in batches for f in b}) + 1 and "z" in held


def test_feature_set_takes_about_8_bytes_a_feature() -> None:
    texts = [f"mremap(MAYMOVE,grow) ok on onfault+child > mlock2(ONFAULT) ok {i}"
             for i in range(20_000)]
    tracemalloc.start()
    try:
        held = FeatureSet(texts)
        held_bytes = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert len(held) == len(texts) and all(t in held for t in texts[::97])
    # 20,000 = 4 merges of 4096 (16,384 hashes of 8 bytes) and 3,616 in the set
    assert held_bytes < 16_384 * 8 + 3_616 * 140 + 20_000


def test_feedback_keeps_no_feature_text() -> None:
    fb = Feedback(counters=False)
    feature = "".join(["munlockall() ok ", "on absent"])  # a string of its own
    assert fb.hit(frozenset({feature})) == [feature]
    assert not any(r is fb.seen for r in gc.get_referrers(feature))
    assert feature in fb.seen and fb.hit(frozenset({"munlockall() ok on absent"})) == []


def test_own_corpus_ids_are_forgotten_once_pulled(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'm.sqlite'}")
    cid = store.start_campaign(kernel="k", host="h", options={})
    mine = SharedCorpus(store, cid, tmp_path / "corpus")
    other = SharedCorpus(store, cid, tmp_path / "other")
    for round_ in range(3):
        for i in range(5):
            mine.add(parse(f"mlock(@0, {round_ * 5 + i + 1}p)"), [f"f{round_} {i}"])
        mine.store_pending()
        assert len(mine.mine) == 5
        other.add(parse(f"munlock(@0, {round_ + 1}p)"), [f"g{round_}"])
        other.store_pending()
        mine.next_pull = 0.0
        assert mine.pull(1.0) == 1  # the other's entry, not its own five
        assert mine.mine == set()


@pytest.mark.parametrize(("samples", "warmup", "expected"), [
    ([], 0, []),
    ([Sample(60, {"campaign": 1024, "worker 7": 10240}),
      Sample(120, {"campaign": 2048, "worker 7": 10240}),
      Sample(180, {"campaign": 2048, "worker 7": 12288})], 100,
     [Growth("campaign", (120, 2048), (180, 2048)),
      Growth("worker 7", (120, 10240), (180, 12288))]),
    # a worker restarted under a new pid, sampled once after the warm-up: left out
    ([Sample(10, {"campaign": 1}), Sample(20, {"campaign": 2, "worker 9": 5})], 15, []),
])
def test_growth_after_the_warm_up(samples: list[Sample], warmup: float,
                                  expected: list[Growth]) -> None:
    assert growth(samples, warmup) == expected


def test_growth_figures() -> None:
    g = Growth("worker 7", (120, 10240), (240, 13312))
    assert (g.mb, g.mb_per_min) == (3.0, 1.5)
    assert Growth("x", (5, 1), (5, 1)).mb_per_min == 0.0


def test_rss_of_this_process_and_of_no_worker() -> None:
    assert rss_kb() > 1000 and rss_kb(2**22 + 1) == 0
    assert worker_pids(1) == [] or all(p > 1 for p in worker_pids(1))


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


def test_a_settled_heap_still_collects_cycles_and_is_undone_after() -> None:
    """settled_heap runs the collector less often, never not at all: a reference cycle
    made inside it is freed once enough objects were made after it, with no explicit
    collection; the thresholds and the frozen objects are given back at its end."""
    before = gc.get_threshold()
    with settled_heap():
        assert gc.get_threshold() == GC_THRESHOLDS
        assert gc.get_freeze_count() > 0  # what lived at the start, out of the passes
        a, b = _Node(), _Node()
        a.other, b.other = b, a
        gone = weakref.ref(a)
        del a, b
        assert gone() is not None  # a cycle: reference counts alone do not free it
        keep = [[] for _ in range(3 * GC_THRESHOLDS[0])]  # containers, tracked
        assert gone() is None
        del keep
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
