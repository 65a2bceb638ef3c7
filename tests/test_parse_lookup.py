"""parse_smaps, which looks each VMA's text up before it parses it, SmapsParser,
which also reuses the VMAs whose text did not change since the last text, and its
parse_bytes, which does the same in C (fuzzer/stepcalls.c), give the very Vmas of one
regular-expression pass over the whole text (parse_smaps_whole), on every smaps text
the checks of many generated programs read, forks included.
"""

from __future__ import annotations

import pytest

from fuzzer import stepcalls
from fuzzer.campaign.throughput import workload
from fuzzer.check import check
from fuzzer.model import Unsupported
from fuzzer.observe import proc
from fuzzer.snapshot import parse
from fuzzer.trace import Supervisor

PROGRAMS = 1000


@pytest.mark.kernel
@pytest.mark.slow
def test_lookup_parse_equals_whole_parse(supervisor: Supervisor,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    texts = 0
    calls = stepcalls.load()
    assert calls is not None, stepcalls.why_not()
    c_vmas = calls.smaps_vmas

    def both(self: proc.Observer, smaps: bytes) -> tuple[parse.Vma, ...]:
        nonlocal texts
        texts += 1
        text = str(smaps, "utf-8")
        reused = self._parser.parse(text)
        assert reused == parse.parse_smaps(text) == parse.parse_smaps_whole(text), text
        # stepcalls.c's parse, reusing the unchanged records of this parser's last text
        assert self._parser.parse_bytes(smaps, c_vmas) == reused, text
        return reused

    monkeypatch.setattr(proc.Observer, "_parse", both)
    for program in workload(PROGRAMS, 7):
        try:
            check(supervisor, program)
        except Unsupported:
            continue
    assert texts > 5 * PROGRAMS


def _c_vmas() -> parse.VmasOf:
    calls = stepcalls.load()
    if calls is None:
        pytest.skip(f"fuzzer/stepcalls.c: {stepcalls.why_not()}")
    return calls.smaps_vmas


HEADER = "00400000-00401000 r-xp 00000000 08:01 42 /bin/x\nSize: 4 kB\n"


@pytest.mark.parametrize("text", [
    HEADER + "VmFlags: rd ex mr mw me\n",
    HEADER + "Rss: 4 kB\nPss: 4 kB\nVmFlags: rd ex mr mw me\n",
    HEADER + "Rss: 4 kB\nLocked: 0 kB\nVmFlags: rd ex mr mw me\n",
    HEADER + "Rss: x kB\nPss: 4 kB\nLocked: 0 kB\nVmFlags: rd ex mr mw me\n",
    "0040000-zz r-xp 00000000 08:01 42 /bin/x\nRss: 4 kB\nPss: 4 kB\nLocked: 0 kB\n"
    "VmFlags: rd\n",
], ids=["no-rss-pss-locked", "no-locked", "no-pss", "rss-not-a-number", "bad-header"])
def test_a_vma_without_its_fields_is_an_error(text: str) -> None:
    with pytest.raises(ValueError, match="lacks"):
        parse.parse_smaps(text)
    with pytest.raises(ValueError, match="lacks"):
        parse.parse_smaps_whole(text)
    with pytest.raises(ValueError, match="lacks"):
        parse.SmapsParser().parse_bytes(text.encode(), _c_vmas())


def test_the_same_text_twice_gives_equal_vmas() -> None:
    text = ("00400000-00401000 r-xp 00000000 08:01 42 /bin/x\nSize: 4 kB\nRss: 4 kB\n"
            "Pss: 4 kB\nLocked: 0 kB\nVmFlags: rd ex mr mw me\n"
            "7f0000000000-7f0000002000 rw-p 00000000 00:00 0 \nSize: 8 kB\nRss: 8 kB\n"
            "Pss: 4 kB\nLocked: 8 kB\nVmFlags: rd wr mr mw me lo ac\n")
    first, second = parse.parse_smaps(text), parse.parse_smaps(text)
    assert first == second == parse.parse_smaps_whole(text)
    assert [v.lo for v in first] == [False, True]
    parser = parse.SmapsParser()
    in_c = parser.parse_bytes(text.encode(), _c_vmas())
    again = parser.parse_bytes(text.encode(), _c_vmas())
    assert in_c == again == first
    assert all(a is b for a, b in zip(in_c, again, strict=True))  # reused, not parsed again
    assert first[1].pss == 4096 and first[1].name == ""


@pytest.mark.parametrize(("fields", "anon_huge", "file_pmd"), [
    ("AnonHugePages:      2048 kB\nShmemPmdMapped:        0 kB\nFilePmdMapped:         0 kB\n",
     2048, 0),
    ("AnonHugePages:         0 kB\nShmemPmdMapped:     2048 kB\nFilePmdMapped:      4096 kB\n",
     0, 6144),
    ("", 0, 0),  # a kernel that prints none of them
], ids=["anon", "shmem-and-file", "absent"])
def test_the_sizes_pmds_map_are_read(fields: str, anon_huge: int, file_pmd: int) -> None:
    """AnonHugePages, and ShmemPmdMapped + FilePmdMapped, between Pss and Locked as smaps
    prints them; both parsers read them alike."""
    text = ("7f0000000000-7f0000400000 rw-p 00000000 00:00 0 \nSize: 4096 kB\nRss: 2048 kB\n"
            f"Pss: 2048 kB\nAnonymous: 2048 kB\n{fields}Swap: 0 kB\nLocked: 0 kB\n"
            "VmFlags: rd wr mr mw me ac hg\n")
    (vma,) = parse.parse_smaps(text)
    assert (vma.anon_huge, vma.file_pmd) == (anon_huge * 1024, file_pmd * 1024)
    assert parse.parse_smaps_whole(text) == (vma,)
    assert parse.SmapsParser().parse_bytes(text.encode(), _c_vmas()) == (vma,)


def _vma_text(start: int, rss: int, flags: str) -> str:
    return (f"{start:x}-{start + 0x4000:x} rw-p 00000000 00:00 0 \nSize: 16 kB\n"
            f"Rss: {rss} kB\nPss: {rss} kB\nLocked: 0 kB\nVmFlags: {flags}\n")


# Texts one parser reads in turn: a VMA's Rss changes, its flags change, a VMA comes
# and goes, the same text again.
SEQUENCE = [
    [(0x1000000, 0, "rd wr"), (0x2000000, 4, "rd wr"), (0x3000000, 0, "rd")],
    [(0x1000000, 0, "rd wr"), (0x2000000, 8, "rd wr"), (0x3000000, 0, "rd")],
    [(0x1000000, 0, "rd wr"), (0x2000000, 8, "rd wr lo"), (0x3000000, 0, "rd")],
    [(0x1000000, 0, "rd wr"), (0x2000000, 8, "rd wr lo"), (0x2800000, 0, "rd"),
     (0x3000000, 0, "rd")],
    [(0x1000000, 0, "rd wr"), (0x3000000, 0, "rd")],
    [(0x1000000, 0, "rd wr"), (0x3000000, 0, "rd")],
    [(0x1000000, 16, "rd wr"), (0x3000000, 0, "rd ex")],
]


def test_a_parser_reading_text_after_text_equals_the_whole_parse() -> None:
    parser = parse.SmapsParser()
    for vmas in SEQUENCE:
        text = "".join(_vma_text(*v) for v in vmas)
        got = parser.parse(text)
        assert got == parse.parse_smaps_whole(text)
        assert [(v.start, v.rss // 1024, " ".join(sorted(v.flags))) for v in got] == \
            [(start, rss, " ".join(sorted(flags.split()))) for start, rss, flags in vmas]
