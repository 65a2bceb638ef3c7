"""A bucket as a plain-text bug report for a kernel mailing list (`export --format report`).

A subject with the subsystem prefix of the diverging call (`mm/mremap:`),
the kernel release and build the bucket was seen on (uname -r and -v, as
stored with the samples), the first kernel it was seen on and the last
kernel the database fuzzed without seeing it, the diverging step, expected
against observed page by page, and the minimized reproducer as C (the C
export). No line is wider than WIDTH columns (tabs at 8): mail clients and
archives wrap longer ones and break the code.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterable, Sequence

from fuzzer.prog import format_call
from fuzzer.reduce.csource import c_source
from fuzzer.reduce.finding import ExportError, Finding
from fuzzer.store import BucketDetail

WIDTH = 72
# The kernel source a call's bug would be in, as mm patches prefix their subjects.
SUBSYSTEM = {
    "mmap": "mm/mmap", "munmap": "mm/mmap", "mprotect": "mm/mprotect", "mremap": "mm/mremap",
    "madvise": "mm/madvise", "mlock": "mm/mlock", "mlock2": "mm/mlock", "munlock": "mm/mlock",
    "mlockall": "mm/mlock", "munlockall": "mm/mlock", "prlimit_memlock": "mm/mlock",
    "drop_cap_ipc_lock": "mm/mlock", "mseal": "mm/mseal", "memfd_create": "mm/memfd",
    "tmpfile": "mm/filemap",
    "fork": "fork", "touch": "mm/memory", "process_madvise": "mm/madvise",
}
_RUN = re.compile(r"@(\d+)(?:-(\d+))? (\S+)(.*)")


def subject(finding: Finding) -> str:
    """`[BUG] mm/mremap: <the title without its kind>`, folded as RFC 5322 allows."""
    call = finding.program.calls[finding.step]
    prefix = SUBSYSTEM.get(call.name, "mm")
    what = finding.title.split(": ", 1)[-1]
    line = f"Subject: [BUG] {prefix}: {what}"
    return "\n".join(textwrap.wrap(line, WIDTH, subsequent_indent=" ", break_long_words=False,
                                   break_on_hyphens=False))


def version_key(release: str) -> tuple[int, ...]:
    """6.18.44-fc-v657 -> (6, 18, 44): the numeric part of a release, for ordering."""
    head = re.match(r"[\d.]+", release)
    return tuple(int(x) for x in head.group(0).split(".") if x) if head else ()


def kernel_lines(bucket: BucketDetail, fuzzed: Iterable[str]) -> list[str]:
    """The kernel the first sample was seen on, the first kernel seen and the last
    kernel fuzzed without a sample (older than the first seen), where known."""
    real = [s for s in bucket.samples if not s.injections] or bucket.samples
    first = real[0]
    seen = {s.kernel for s in real}
    oldest = min(seen, key=version_key)
    clean = [k for k in set(fuzzed) - seen if version_key(k) < version_key(oldest)]
    lines = [f"Kernel:           {first.kernel}",
             f"Build:            {first.build or 'not recorded'}",
             f"First seen on:    {oldest}",
             f"Last not seen on: {max(clean, key=version_key) if clean else 'not known'}"]
    if any(s.injections for s in bucket.samples):
        names = sorted({n for s in bucket.samples for n in s.injections})
        lines.append(f"Injections:       {', '.join(names)} (an emulated bug)")
    return lines


def _pages(text: str) -> dict[int, str] | None:
    """A rendered arena (`@0 rw-p .; @1-3 rw-p lo AAA`) as one text per page;
    None when the text is not one (VmLck, a result, a signal)."""
    if text == "(arena empty)":
        return {}
    pages: dict[int, str] = {}
    for run in text.split("; "):
        m = _RUN.fullmatch(run)
        if m is None:
            return None
        first = int(m.group(1))
        last = int(m.group(2) or first)
        words = m.group(4).split()
        letters = words.pop() if words and len(words[-1]) == last - first + 1 else ""
        for i in range(first, last + 1):
            letter = letters[i - first] if letters else ""
            pages[i] = " ".join([m.group(3), *words, letter]).strip()
    return pages


def _paged(finding: Finding) -> bool:
    return _pages(finding.expected) is not None and _pages(finding.observed) is not None


def comparison(expected: str, observed: str) -> list[str]:
    """Expected against observed: one line per arena page when both are arenas."""
    exp, obs = _pages(expected), _pages(observed)
    if exp is None or obs is None:
        out = []
        for name, text in (("expected", expected), ("observed", observed)):
            out += textwrap.wrap(f"{name}: {text}", WIDTH, initial_indent="  ",
                                 subsequent_indent="            ")
        return out
    rows = [("page", "expected", "observed")]
    for page in sorted(set(exp) | set(obs)):
        e, o = exp.get(page, "unmapped"), obs.get(page, "unmapped")
        rows.append((f"@{page}", e, o if o != e else "same"))
    w0, w1 = (max(len(r[i]) for r in rows) for i in (0, 1))
    return [f"  {a:<{w0}}  {b:<{w1}}  {c}".rstrip() for a, b, c in rows]


def _calls(n: int) -> str:
    return "1 call" if n == 1 else f"{n} calls"


def mail_report(bucket: BucketDetail, finding: Finding, fuzzed: Iterable[str] = (),
                variants: Sequence[str] = ()) -> str:
    """The report; `fuzzed` are the kernels the database ran campaigns on, `variants` the
    summary of the bucket's variants (variants_summary.py; empty when none were run)."""
    if not bucket.samples:
        raise ExportError(f"bucket {bucket.id} has no stored sample")
    call = finding.program.calls[finding.step]
    which = "minimized " if bucket.minimized_program_text else ""
    lines = [
        subject(finding), "",
        *textwrap.wrap(
            "mmfuzz, which runs mm system calls and compares the address space "
            "/proc shows after each one with a model of their documented "
            "semantics, found this divergence:", WIDTH), "",
        *textwrap.wrap(finding.title, WIDTH, initial_indent="  ", subsequent_indent="    "),
        "",
        *kernel_lines(bucket, fuzzed), "",
        *textwrap.wrap(f"It shows at step {finding.step} of the {which}program "
                       f"({_calls(len(finding.program))}), after", WIDTH),
        *textwrap.wrap(format_call(call), WIDTH, initial_indent="  ",
                       subsequent_indent="      ", break_on_hyphens=False),
        "",
        "Expected (the model) against observed (/proc)"
        + (", page by page:" if _paged(finding) else ":"), "",
    ]
    if finding.expected or finding.observed:
        lines += comparison(finding.expected, finding.observed)
    else:
        lines.append(f"  not recorded for this program (mmfuzz minimize {bucket.id} records it)")
    if variants:
        lines += ["", "Variants of the program (a flag dropped or added, another mapping",
                  "kind, protection, lock, size, or the same calls in a child):", ""]
        for line in variants:
            lines += textwrap.wrap(line, WIDTH, initial_indent="  ", subsequent_indent="    ",
                                   break_on_hyphens=False)
    lines += ["", "Reproducer (cc -static -o repro repro.c && ./repro as root; exit",
              "status 1: the divergence reproduces, 0: it does not):", "",
              c_source(finding, bucket.id).rstrip("\n")]
    text = "\n".join(lines) + "\n"
    wide = [n for n, line in enumerate(text.splitlines(), 1) if len(line.expandtabs()) > WIDTH]
    if wide:
        raise ExportError(f"report line {wide[0]} is wider than {WIDTH} columns")
    return text


__all__ = ["SUBSYSTEM", "WIDTH", "comparison", "mail_report", "subject", "version_key"]
