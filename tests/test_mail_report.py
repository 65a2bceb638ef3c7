"""`export --format report`: golden mails made from known programs, at most 72 columns.

After an intended change: `pytest tests/test_mail_report.py --regen-golden` and review
`git diff tests/golden/report-*.txt`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fuzzer.cli.app import app
from fuzzer.oracle import Divergence
from fuzzer.prog import parse
from fuzzer.reduce.export import export_bucket, finding_of
from fuzzer.reduce.finding import Finding
from fuzzer.reduce.mail import comparison, mail_report, subject, version_key
from fuzzer.store import BucketDetail, SampleContext, SampleRow, open_store

GOLDEN = Path(__file__).parent / "golden"
WHEN = datetime(2026, 11, 27, 13, 46, 39, tzinfo=UTC)
BUILD = "#1 SMP PREEMPT_DYNAMIC Thu Nov 27 09:12:44 UTC 2026"
LEAK = "vmlck: mremap(MAYMOVE|DONTUNMAP) made VmLck differ from the size of locked VMAs"
LEAK_PROGRAM = """\
mmap(@5, 2p, PROT_NONE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_LOCKED, -1, 0)
mremap(@5, 2p, 2p, MREMAP_MAYMOVE|MREMAP_DONTUNMAP, @0)
"""
ABSENT = "presence: mmap(PRIVATE|ANONYMOUS|POPULATE) left pages not anonymous"
ABSENT_PROGRAM = """\
mmap(@0, 4p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED|MAP_POPULATE, -1, 0)
"""


def _sample(kernel: str, text: str, build: str | None = BUILD,
            injections: tuple[str, ...] = ()) -> SampleRow:
    return SampleRow(program_text=text, program_hash="0123456789abcdef", step=0,
                     expected="", observed="", kernel=kernel, campaign_id=1, created=WHEN,
                     injections=injections, build=build)


def _bucket(title: str, kind: str, text: str, step: int, expected: str, observed: str,
            samples: list[SampleRow]) -> BucketDetail:
    return BucketDetail(
        id=1, title=title, kind=kind, first_seen=WHEN, last_seen=WHEN, count=4,
        status="kernel-bug", note=None, reliability_hits=10, reliability_runs=10,
        original_calls=21, minimized_calls=len(parse(text)), samples=samples,
        minimized_program_text=text, minimized_program_hash="fedcba9876543210",
        minimized_step=step, minimized_expected=expected, minimized_observed=observed)


# What `mmfuzz variants` showed for the leak on 6.18.44 (summary_lines).
LEAK_VARIANTS = (
    "needs: MAP_LOCKED on mmap, MREMAP_MAYMOVE on mremap, MREMAP_DONTUNMAP on mremap",
    "does not need: MREMAP_FIXED on mremap",
    "triggers with: +MAP_POPULATE on mmap, mapping kind anonymous private, protection "
    "PROT_NONE, R and X, locking MAP_LOCKED, mlock and mlock2 ONFAULT, every size, "
    "every process",
    "not with: unlocked",
)

REPORTS = {
    # the 6.18 MREMAP_DONTUNMAP locked_vm leak, as a campaign found it
    "report-mremap-leak.txt": (
        _bucket(LEAK, "vmlck", LEAK_PROGRAM, 1, "VmLck 8 kB", "VmLck 16 kB",
                [_sample("6.18.44-fc-v657", LEAK_PROGRAM),
                 _sample("6.18.44-fc-v657", LEAK_PROGRAM)]),
        {"6.17.9", "6.18.44-fc-v657", "6.12.1", "6.19.0"}, LEAK_VARIANTS),
    # an emulated bug (populate-needs-lock): presence compared page by page
    "report-populate.txt": (
        _bucket(ABSENT, "presence", ABSENT_PROGRAM, 0, "@0-3 rw-p AAAA", "@0 rw-p A; @1-3 rw-p ...",
                [_sample("6.18.0", ABSENT_PROGRAM, None, ("populate-needs-lock",))]),
        set(), ()),
}


@pytest.mark.parametrize("name", sorted(REPORTS))
def test_report_golden(name: str, golden: Callable[[Path, str], None]) -> None:
    bucket, fuzzed, variants = REPORTS[name]
    text = mail_report(bucket, finding_of(bucket), fuzzed, variants)
    assert all(len(line.expandtabs()) <= 72 for line in text.splitlines())
    assert "<" not in text.split("Reproducer")[0]  # no HTML before the C
    golden(GOLDEN / name, text)


@pytest.mark.parametrize(("call", "prefix"), [
    ("mlock(@0, 1p)", "mm/mlock"), ("mlockall(MCL_CURRENT)", "mm/mlock"),
    ("munmap(@0, 1p)", "mm/mmap"), ("mprotect(@0, 1p, PROT_READ)", "mm/mprotect"),
    ("madvise(@0, 1p, MADV_DONTNEED)", "mm/madvise"),
    ("mremap(@0, 1p, 2p, MREMAP_MAYMOVE, @0)", "mm/mremap"),
])
def test_subject_prefix(call: str, prefix: str) -> None:
    finding = Finding(parse(call + "\n"), 0, "result: x returned 0 instead of -EINVAL", "result")
    assert subject(finding) == f"Subject: [BUG] {prefix}: x returned 0 instead of -EINVAL"


def test_pages_and_versions() -> None:
    assert comparison("@0-1 rw-p lo AA", "@0 rw-p lo A; @1 rw-p A") == [
        "  page  expected   observed",
        "  @0    rw-p lo A  same",
        "  @1    rw-p lo A  rw-p A",
    ]
    assert comparison("(arena empty)", "@2 r--p .") == [
        "  page  expected  observed", "  @2    unmapped  r--p ."]
    assert comparison("VmLck 8 kB", "VmLck 16 kB") == [
        "  expected: VmLck 8 kB", "  observed: VmLck 16 kB"]
    assert version_key("6.18.44-fc-v657") == (6, 18, 44) < version_key("6.19")
    assert version_key("next-20260101") == ()


def test_export_report_from_the_store(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'r.sqlite'}"
    store = open_store(db)
    store.start_campaign(kernel="6.17.9", host="h", options={})
    bucket, _ = store.record(Divergence("vmlck", LEAK, 1, "VmLck 8 kB", "VmLck 40 kB"),
                             SampleContext(None, LEAK_PROGRAM, f"{1:016x}", "6.18.44",
                                           build=BUILD))
    store.set_minimized(bucket, program_text=LEAK_PROGRAM, program_hash=f"{2:016x}", step=1,
                        original_calls=2, minimized_calls=2, expected="VmLck 8 kB",
                        observed="VmLck 16 kB")
    result = CliRunner().invoke(app, ["export", str(bucket), "--format", "report", "--db", db])
    assert result.exit_code == 0, result.output
    assert result.output == export_bucket(store.bucket(bucket), "report", {"6.17.9"})
    assert "Last not seen on: 6.17.9" in result.output
    assert f"Build:            {BUILD}" in result.output
