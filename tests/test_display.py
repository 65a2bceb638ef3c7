"""The live view's state (fuzzer/campaign/display.py), as tables of message sequences:
what `watch` and `say` are given over time -> the rates, states, buckets, features and
lines the view shows; and the plain output's glue (fuzzer/cli/live.py) on a console
that is not a terminal."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from fuzzer.campaign.display import History, LiveState, plain_line, render
from fuzzer.campaign.options import Options
from fuzzer.campaign.run import Progress
from fuzzer.cli.live import CampaignView

Msg = dict[str, object]


def steady(worker: int, start: float, end: float, per_s: float, steps_each: int = 5,
           every: float = 0.5) -> list[tuple[float, int, Msg]]:
    """A worker's progress messages every `every` seconds at `per_s` programs a second."""
    out: list[tuple[float, int, Msg]] = []
    n = round((end - start) / every)
    for i in range(1, n + 1):
        programs = round(per_s * every)
        out.append((start + i * every, worker,
                    {"programs": programs, "steps": programs * steps_each, "features": []}))
    return out


def state_after(seq: list[tuple[float, int, Msg]], now: float, workers: int = 1) -> LiveState:
    s = LiveState.new(workers, "6.18.44 (this host)", 600)
    for at, worker, msg in sorted(seq, key=lambda m: m[0]):  # as they come: in time
        s.message(at, worker, msg)
    s.tick(now)
    return s


STARTED: list[tuple[float, int, Msg]] = [(0.0, 0, {"started": 100}), (0.0, 1, {"started": 101})]

# (case, messages, now) -> (rate now, overall, slow, slow workers)
RATES = [
    ("steady", STARTED[:1] + steady(0, 0, 30, 20), 30.0, (20.0, 20.0, False, [])),
    # under WINDOW seconds in: the rate is over the time there is
    ("young", STARTED[:1] + steady(0, 0, 4, 10), 4.0, (10.0, 10.0, False, [])),
    # nothing for 10 s after a minute at 20/s: the rate now is 0, the overall still high
    ("stalled", STARTED[:1] + steady(0, 0, 60, 20), 70.0, (0.0, 1200 / 70, True, [0])),
    # half way into the stall: half the window's programs
    ("stalling", STARTED[:1] + steady(0, 0, 60, 20), 65.0, (10.0, 1200 / 65, False, [])),
    # a 50x slowdown after 100 s at 100/s
    ("slowed", STARTED[:1] + steady(0, 0, 100, 100) + steady(0, 100, 120, 2), 120.0,
     (2.0, 10040 / 120, True, [0])),
    # two workers, one of them stalled: the total halves, the stalled one is named
    ("one-of-two", STARTED + steady(0, 0, 60, 20) + steady(1, 0, 50, 20), 60.0,
     (20.0, 2200 / 60, False, [1])),
    # slowness is not judged in the first 2 windows (workers start at their own pace)
    ("early", STARTED[:1] + steady(0, 0, 10, 20), 15.0, (10.0, 200 / 15, False, [])),
]


@pytest.mark.parametrize(("messages", "now", "expected"), [c[1:] for c in RATES],
                         ids=[c[0] for c in RATES])
def test_rates(messages: list[tuple[float, int, Msg]], now: float,
               expected: tuple[float, float, bool, list[int]]) -> None:
    s = state_after(messages, now, workers=2 if any(w for _, w, _ in messages) else 1)
    rate, overall, slow, slow_workers = expected
    assert s.rate() == pytest.approx(rate)
    assert s.overall() == pytest.approx(overall)
    assert s.slow() is slow
    assert s.slow_workers() == slow_workers


def test_worker_rates_and_steps() -> None:
    s = state_after(STARTED + steady(0, 0, 30, 20, steps_each=3) + steady(1, 0, 30, 4), 30.0, 2)
    w0, w1 = s.workers[0], s.workers[1]
    assert (w0.programs.value, w0.steps, w1.programs.value, w1.steps) == (600, 1800, 120, 600)
    assert s.worker_rate(w0) == pytest.approx(20) and s.worker_rate(w1) == pytest.approx(4)
    assert s.worker_overall(w0) == pytest.approx(20)
    assert (s.programs.value, s.steps.value) == (720, 2400)
    assert s.steps_rate() == pytest.approx(80)


# (case, messages) -> each worker's (state, starts)
LIFE = [
    ("started", [(0.0, 0, {"started": 7})], ("starting", 1)),
    ("running", [(0.0, 0, {"started": 7}), (1.0, 0, {"programs": 1, "steps": 2})],
     ("running", 1)),
    ("died-restarting", [(0.0, 0, {"started": 7}), (1.0, 0, {"programs": 1, "steps": 2}),
                         (2.0, 0, {"ended": -9, "restarting": True})], ("restarting", 1)),
    ("restarted", [(0.0, 0, {"started": 7}), (2.0, 0, {"ended": -9, "restarting": True}),
                   (3.0, 0, {"started": 8})], ("starting", 2)),
    ("given-up", [(0.0, 0, {"started": 7}), (2.0, 0, {"ended": 1, "restarting": False})],
     ("dead", 1)),
    ("finished", [(0.0, 0, {"started": 7}), (9.0, 0, {"ended": 0, "restarting": False})],
     ("done", 1)),
    # past --worker-rss: it ended well, and starts again at once
    ("recycled", [(0.0, 0, {"started": 7}), (5.0, 0, {"recycle": 300}),
                  (5.1, 0, {"ended": 0, "restarting": True})], ("restarting", 1)),
]


@pytest.mark.parametrize(("messages", "expected"), [c[1:] for c in LIFE],
                         ids=[c[0] for c in LIFE])
def test_worker_states(messages: list[tuple[float, int, Msg]], expected: tuple[str, int]) -> None:
    w = state_after(messages, 10.0).workers[0]
    assert (w.state, w.starts) == expected


def test_a_restarted_worker_keeps_its_totals_and_pid() -> None:
    s = state_after([(0.0, 0, {"started": 7}), (1.0, 0, {"programs": 5, "steps": 9}),
                     (2.0, 0, {"ended": -9, "restarting": True}), (3.0, 0, {"started": 8}),
                     (4.0, 0, {"programs": 2, "steps": 1})], 4.0)
    w = s.workers[0]
    assert (w.state, w.pid, w.programs.value, w.steps, s.alive()) == ("running", 8, 7, 10, 1)


def test_finish_stops_the_running_workers_and_keeps_the_dead() -> None:
    s = state_after([*STARTED, (1.0, 0, {"programs": 1, "steps": 1}),
                     (2.0, 1, {"ended": 1, "restarting": False})], 3.0, 2)
    s.finish("interrupted", 4.0)
    assert [w.state for w in s.workers.values()] == ["stopped", "dead"]
    assert (s.status, s.now) == ("interrupted", 4.0)


BUCKET_SEQ: list[tuple[float, int, Msg]] = [
    (5.0, 0, {"bucket": 3, "title": "lock: munlock left pages locked", "new": True}),
    (6.0, 1, {"bucket": 3, "title": "lock: munlock left pages locked", "new": False}),
    (7.0, 0, {"bucket": 1, "title": "result: mmap returned 0", "new": False}),
    (9.0, 1, {"bucket": 4, "title": "rss: 3 pages instead of 4", "new": True}),
]


def test_buckets_and_their_events() -> None:
    s = state_after(BUCKET_SEQ, 10.0, 2)
    assert {b.id: (b.new, b.at, b.hits) for b in s.buckets.values()} == {
        3: (True, 5.0, 2), 1: (False, 7.0, 1), 4: (True, 9.0, 1)}
    assert s.new_buckets() == 2
    assert s.events == [(5.0, "new bucket #3 at 5 s: lock: munlock left pages locked"),
                        (7.0, "known bucket #1 at 7 s: result: mmap returned 0"),
                        (9.0, "new bucket #4 at 9 s: rss: 3 pages instead of 4")]


def test_notes_are_events_at_the_latest_time() -> None:
    s = state_after([(12.0, 0, {"ended": -9, "restarting": True})], 12.0)
    s.note("worker 0 died (SIGKILL) at 12 s, restarting in 1 s")
    s.note("worker 0 restarted (pid 9)", 13.2)  # at its own time, when it is known
    assert s.events == [(12.0, "worker 0 died (SIGKILL) at 12 s, restarting in 1 s"),
                        (13.2, "worker 0 restarted (pid 9)")]
    assert s.now == 13.2


def test_features_gained_over_the_last_minute() -> None:
    s = state_after([(10.0, 0, {"programs": 1, "steps": 1, "features": ["a", "b", "c"]}),
                     (50.0, 0, {"programs": 1, "steps": 1, "features": ["c", "d"]}),
                     (80.0, 1, {"programs": 1, "steps": 1, "features": ["a", "e", "f"]})],
                    85.0, 2)
    assert len(s.features) == 6
    assert s.gained() == 3  # d at 50 s and e, f at 80 s; a, b, c came 75 s ago
    s.tick(200.0)
    assert s.gained() == 0


def test_history_keeps_what_its_window_needs() -> None:
    h = History(keep=10)
    for t in range(0, 101):
        h.add(float(t), 2)
    assert h.value == 202
    assert h.before(90.0) == 182 and h.since(100.0, 10) == 20
    assert len(h.samples) <= 12  # not the whole campaign's


# (case, messages, now) -> the plain line
PLAIN = [
    ("empty", [], 2.0,
     "[     2s]        0 programs (0/s last 10 s, 0/s overall)          0 steps (0/s, 0/s)"
     "      0 features (+0 in 60 s)  0 buckets (0 new)  workers 1/1"),
    ("steady", STARTED[:1] + steady(0, 0, 30, 20) + BUCKET_SEQ[:1], 30.0,
     "[    30s]      600 programs (20/s last 10 s, 20/s overall)      3,000 steps (100/s, 100/s)"
     "      0 features (+0 in 60 s)  1 buckets (1 new)  workers 1/1"),
    ("stalled", STARTED + steady(0, 0, 60, 20) + steady(1, 0, 50, 20), 70.0,
     "[    70s]    2,200 programs (0/s last 10 s, 31/s overall)     11,000 steps (0/s, 157/s)"
     "      0 features (+0 in 60 s)  0 buckets (0 new)  workers 2/2  SLOW: workers 0, 1"),
    ("slow-one", STARTED + steady(0, 0, 60, 20) + steady(1, 0, 50, 20), 60.0,
     "[    60s]    2,200 programs (20/s last 10 s, 37/s overall)     11,000 steps (100/s, 183/s)"
     "      0 features (+0 in 60 s)  0 buckets (0 new)  workers 2/2  SLOW: worker 1"),
]


@pytest.mark.parametrize(("messages", "now", "line"), [c[1:] for c in PLAIN],
                         ids=[c[0] for c in PLAIN])
def test_plain_line(messages: list[tuple[float, int, Msg]], now: float, line: str) -> None:
    workers = 2 if any(w for _, w, _ in messages) else 1
    assert plain_line(state_after(messages, now, workers)) == line


def _text(s: LiveState, width: int = 160) -> str:
    console = Console(file=io.StringIO(), width=width, color_system=None)
    console.print(render(s))
    assert isinstance(console.file, io.StringIO)
    return console.file.getvalue()


def test_render_shows_workers_rates_buckets_and_events() -> None:
    s = state_after(STARTED + steady(0, 0, 60, 20) + steady(1, 0, 50, 20) + BUCKET_SEQ
                    + [(55.0, 1, {"ended": -9, "restarting": True})], 60.0, 2)
    s.campaign = 12
    s.note("worker 1 died (SIGKILL) at 55 s, restarting in 1 s")
    lines = _text(s).splitlines()
    assert lines[0].split() == ["campaign", "12", "kernel", "6.18.44", "(this", "host)", "60",
                                "s", "of", "600", "s", "running"]
    rows = {ln.split()[0]: ln.split() for ln in lines[2:6]}
    assert rows["0"][:6] == ["0", "running", "20/s", "20/s", "1,200", "6,000"]
    assert rows["1"][:6] == ["1", "restarting", "0/s", "17/s", "1,000", "5,000"]
    assert rows["total"][:5] == ["total", "1/2", "alive", "20/s", "37/s"]
    text = "\n".join(lines)
    assert "buckets: 3 (2 new)" in text
    assert lines.index(next(ln for ln in lines if "#4" in ln)) < lines.index(
        next(ln for ln in lines if "#3" in ln))  # the newest first
    assert any(ln.split()[:4] == ["#4", "new", "9", "s"] for ln in lines)
    assert "60 s worker 1 died (SIGKILL) at 55 s, restarting in 1 s" in text  # said at 60 s
    assert "SLOW" not in text  # the total is over half its overall rate


def test_render_says_slow_when_the_rate_drops() -> None:
    s = state_after(STARTED[:1] + steady(0, 0, 100, 100) + steady(0, 100, 120, 2), 120.0)
    assert "SLOW: 2.0/s over the last 10 s against 84/s overall" in _text(s)


def test_render_crops_long_titles_to_the_terminal() -> None:
    s = state_after([(1.0, 0, {"bucket": 1, "title": "x" * 300, "new": True})], 2.0)
    assert max(len(ln) for ln in _text(s, width=80).splitlines()) <= 80


def test_plain_view_prints_each_event_once_as_it_comes() -> None:
    console = Console(file=io.StringIO(), width=200, color_system=None)
    view = CampaignView(console, Options(workers=1, time=30), live=False)
    with view:
        view.say("note: campaign 1 on h (last heartbeat ...) stopped without finishing: lost")
        view.watch(0.0, 0, {"started": 5})
        view.watch(1.0, 0, {"programs": 3, "steps": 9, "features": ["a"]})
        view.watch(1.2, 0, {"bucket": 2, "title": "lock: x", "new": True})
        view.watch(1.4, 0, {"bucket": 2, "title": "lock: x", "new": True})
        view.show(Progress(7, elapsed=2.0))
    assert isinstance(console.file, io.StringIO)
    assert console.file.getvalue().splitlines() == [
        "note: campaign 1 on h (last heartbeat ...) stopped without finishing: lost",
        "new bucket #2 at 1 s: lock: x",
        "[     2s]        3 programs (1.5/s last 10 s, 1.5/s overall)          9 steps "
        "(4.5/s, 4.5/s)      1 features (+1 in 60 s)  1 buckets (1 new)  workers 1/1",
    ]


def test_no_slowness_is_judged_once_the_time_is_up_or_the_campaign_ended() -> None:
    seq = STARTED[:1] + steady(0, 0, 60, 20)
    s = state_after(seq, 70.0)
    assert s.slow() and s.slow_workers() == [0]
    s.budget = 65  # workers wind down after the campaign's time: not a stall
    assert not s.slow() and s.slow_workers() == []
    s = state_after(seq, 70.0)
    s.finish("interrupted", 70.0)
    assert not s.slow() and "SLOW" not in plain_line(s) and "SLOW" not in _text(s)
