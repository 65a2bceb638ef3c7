"""What a worker's SharedCorpus hands libFuzzer, for the tests of planting and pulling."""

from __future__ import annotations

from fuzzer.campaign.feedback import SharedCorpus


def drained(corpus: SharedCorpus) -> list[str]:
    """The programs the corpus hands libFuzzer, oldest first, until nothing is queued."""
    texts = []
    while (data := corpus.next_input(1 << 16)) is not None:
        texts.append(data.decode())
    return texts
