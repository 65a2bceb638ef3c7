"""retry.py on its own: what is made again while the server is away, and for how long."""

from __future__ import annotations

import pytest

from fuzzer.store import StoreError, StoreUnreachable
from fuzzer.store import retry as store_retry
from fuzzer.store.retry import retry_when_unreachable


@retry_when_unreachable
class _Flaky:
    """Fails with `errors`, one per call, then answers."""

    def __init__(self, *errors: StoreError, patience: float = 10.0) -> None:
        self.errors, self.patience, self._retrying = list(errors), patience, False
        self.calls = 0

    def write(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "written"

    def outer(self) -> str:
        return self.write() + " inside"


@pytest.fixture(autouse=True)
def _no_pauses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_retry.time, "sleep", lambda seconds: None)


def test_an_unreachable_server_is_tried_again() -> None:
    flaky = _Flaky(StoreUnreachable("gone"), StoreUnreachable("still gone"))
    assert (flaky.write(), flaky.calls) == ("written", 3)


def test_any_other_store_error_is_not_tried_again() -> None:
    flaky = _Flaky(StoreError("read-only transaction"))
    with pytest.raises(StoreError, match="read-only"):
        flaky.write()
    assert flaky.calls == 1


def test_without_patience_the_first_failure_is_the_callers() -> None:
    flaky = _Flaky(StoreUnreachable("gone"), patience=0)
    with pytest.raises(StoreUnreachable):
        flaky.write()
    assert flaky.calls == 1


def test_a_call_inside_another_is_tried_again_as_part_of_the_outer_one() -> None:
    flaky = _Flaky(StoreUnreachable("gone"))
    assert flaky.outer() == "written inside"
    assert flaky.calls == 2 and not flaky._retrying
