"""libFuzzer's inputs in a program search are packed program texts (campaign/packed.py):
each text packs and unpacks to itself, typical programs shrink to a fraction of their
text, and what is not a packed program unpacks to None."""

from __future__ import annotations

import random
import zlib

import pytest

from fuzzer.campaign import harness
from fuzzer.campaign.packed import UNPACKED_MAX, pack, unpack
from fuzzer.model import SUPPORTED, covers
from fuzzer.prog import parse
from fuzzer.prog.generate import ByteSource, generate

TEXTS = [
    "munlockall()",
    "mlock(@0, 1p)\nmunlock(@0, 1p)",
    "mmap(@0, 8p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED, -1, 0)\n"
    "mlock2(@2, 4p, MLOCK_ONFAULT)\ntouch(@3, write)\nfork()\np1: munlock(@2, 1p)\n"
    "p1: exit()\nmremap(@2, 4p, 4p, MREMAP_MAYMOVE|MREMAP_DONTUNMAP, @8)",
    "madvise(@0, 4p, MADV_COLLAPSE)\nmseal(@0, 2p, 0)\nmprotect(@0, 2p, PROT_NONE)",
]


@pytest.mark.parametrize("text", TEXTS)
def test_a_program_text_unpacks_to_itself(text: str) -> None:
    program = parse(text)
    data = pack(program.text().encode())
    assert unpack(data) == program.text().encode()
    assert harness._text_program.__wrapped__(data) == program


def test_generated_programs_pack_to_a_fraction_of_their_text() -> None:
    rng = random.Random(7)  # not the dictionary's seed: programs it has not seen
    texts = [generate(ByteSource(rng.randbytes(512)), SUPPORTED, covers).text().encode()
             for _ in range(200)]
    packed = [pack(t) for t in texts]
    assert all(unpack(p) == t for p, t in zip(packed, texts, strict=True))
    assert sum(map(len, packed)) * 3 < sum(map(len, texts))


def test_what_is_not_a_packed_program_unpacks_to_none() -> None:
    whole = pack(TEXTS[2].encode())
    deflated = zlib.compress(TEXTS[2].encode())  # a zlib stream, not raw deflate
    bomb = pack(b"munlockall()\n" * (UNPACKED_MAX // 13 + 1))
    for data in [b"", b"\xff\xfe\x00 not deflate", whole[:-3], whole + b"more",
                 deflated, bomb]:
        assert unpack(data) is None, data
        assert harness._text_program.__wrapped__(data) is None


def test_an_input_holds_a_program_of_at_most_max_text_bytes() -> None:
    long = parse("\n".join(f"mmap(@{i % 64}, 1p, PROT_READ|PROT_WRITE|PROT_EXEC, "
                           "MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED|MAP_POPULATE, -1, 0)"
                           for i in range(120)))
    assert len(long.text()) > harness.MAX_TEXT
    data, fitted = harness._fit(long, 1 << 16)
    assert fitted is not None and len(fitted.text()) <= harness.MAX_TEXT
    assert fitted.calls == long.calls[:len(fitted.calls)]
    assert unpack(data) == fitted.text().encode()
    # libFuzzer's bound on the input cuts the program further
    small, cut = harness._fit(long, 64)
    assert cut is not None and len(small) <= 64 and len(cut.calls) < len(fitted.calls)
    assert unpack(small) == cut.text().encode()


def test_a_fresh_program_has_as_many_random_bytes_as_the_input_has_text() -> None:
    text = TEXTS[2].encode()
    assert harness.fresh_size(pack(text), programs=True) == len(text)
    assert harness.fresh_size(text, programs=True) == len(text)  # not packed: its bytes
    assert harness.fresh_size(pack(text), programs=False) == len(pack(text))
    assert harness.fresh_size(b"", programs=True) == 0
