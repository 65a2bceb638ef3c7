"""parse_smaps, which looks each VMA's text up before it parses it, gives the very
Vmas of one regular-expression pass over the whole text (parse_smaps_whole), on
every smaps text the checks of many generated programs read, forks included.
"""

from __future__ import annotations

import pytest

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

    def both(text: str) -> tuple[parse.Vma, ...]:
        nonlocal texts
        texts += 1
        looked_up = parse.parse_smaps(text)
        assert looked_up == parse.parse_smaps_whole(text), text
        return looked_up

    monkeypatch.setattr(proc, "parse_smaps", both)
    for program in workload(PROGRAMS, 7):
        try:
            check(supervisor, program)
        except Unsupported:
            continue
    assert texts > 5 * PROGRAMS


def test_a_vma_without_its_fields_is_an_error() -> None:
    text = ("00400000-00401000 r-xp 00000000 08:01 42 /bin/x\nSize: 4 kB\n"
            "VmFlags: rd ex mr mw me\n")
    with pytest.raises(ValueError, match="lacks"):
        parse.parse_smaps(text)
    with pytest.raises(ValueError, match="lacks"):
        parse.parse_smaps_whole(text)


def test_the_same_text_twice_gives_equal_vmas() -> None:
    text = ("00400000-00401000 r-xp 00000000 08:01 42 /bin/x\nSize: 4 kB\nRss: 4 kB\n"
            "Pss: 4 kB\nLocked: 0 kB\nVmFlags: rd ex mr mw me\n"
            "7f0000000000-7f0000002000 rw-p 00000000 00:00 0 \nSize: 8 kB\nRss: 8 kB\n"
            "Pss: 4 kB\nLocked: 8 kB\nVmFlags: rd wr mr mw me lo ac\n")
    first, second = parse.parse_smaps(text), parse.parse_smaps(text)
    assert first == second == parse.parse_smaps_whole(text)
    assert [v.lo for v in first] == [False, True]
    assert first[1].pss == 4096 and first[1].name == ""
