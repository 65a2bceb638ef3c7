"""What a worker's SharedCorpus hands libFuzzer, for the tests of planting and pulling."""

from __future__ import annotations

from fuzzer.campaign.feedback import SharedCorpus
from fuzzer.campaign.packed import unpack


def drained(corpus: SharedCorpus) -> list[str]:
    """The programs the corpus hands libFuzzer, oldest first, until nothing is queued."""
    texts = []
    while (data := corpus.next_input(1 << 16)) is not None:
        text = unpack(data)
        assert text is not None, data
        texts.append(text.decode())
    return texts
