"""Exports of a finding: program text, syzkaller text, a C reproducer, a crashes/ folder.

`export_bucket` adds the mailing-list report (mail.py), which needs the
stored bucket's kernels. A `Finding` (finding.py) is a program with its diverging step, title, kind,
expected and observed. `finding_of(bucket)` is the one place a stored bucket
becomes one: the store keeps program text and knows no program grammar, and
every caller that needs the program (the CLI's minimize, repro and export,
the crashes/ folder) goes through here, which parses it and names the bucket
in a parse error. `write_bucket_folder` lays one bucket out as
`crashes/<slug>-<id>/` with original.prog, minimized.prog, repro.c, report.txt.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from fuzzer.model import Unsupported
from fuzzer.prog import format_call, parse
from fuzzer.reduce.csource import c_source
from fuzzer.reduce.finding import ExportError, Finding
from fuzzer.reduce.mail import mail_report
from fuzzer.reduce.syz import syz_program
from fuzzer.store import BucketDetail

FORMATS = ("c", "prog", "syz", "report")
_HEAD_TITLE = re.compile(r"(?:bucket #(\d+): )?(.+)")
_HEAD_STEP = re.compile(r"kind (\S+), diverging at step (\d+): ")
SLUG_MAX = 80


def finding_of(bucket: BucketDetail, *, minimized: bool = True) -> Finding:
    """The bucket's minimized program (if any and wanted), else its first sample's, parsed."""
    if not bucket.samples:
        raise ExportError(f"bucket {bucket.id} has no stored program")
    sample = bucket.samples[0]
    text, step = sample.program_text, sample.step
    if minimized and bucket.minimized_program_text and bucket.minimized_step is not None:
        # The sample's expected/observed describe the original program, not this one.
        program = parse(bucket.minimized_program_text, f"bucket {bucket.id} (minimized)")
        return Finding(program, bucket.minimized_step, bucket.title, bucket.kind,
                       bucket.minimized_expected or "", bucket.minimized_observed or "")
    program = parse(text, f"bucket {bucket.id}")
    return Finding(program, step, bucket.title, bucket.kind, sample.expected, sample.observed)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def header_lines(finding: Finding, bucket_id: int | None = None) -> list[str]:
    which = f"bucket #{bucket_id}: " if bucket_id is not None else ""
    call = format_call(finding.program.calls[finding.step])
    lines = [f"{which}{finding.title}", f"kind {finding.kind}, diverging at step "
             f"{finding.step}: {call}"]
    if finding.expected:
        lines.append(f"expected: {_one_line(finding.expected)}")
    if finding.observed:
        lines.append(f"observed: {_one_line(finding.observed)}")
    return lines


def read_prog(text: str, name: str) -> tuple[Finding, int | None]:
    """What prog_text wrote, read back: the finding and the bucket id (None if not named).
    A header that is not prog_text's is an ExportError naming `name`."""
    head = [line[2:] for line in text.splitlines() if line.startswith("# ")]
    title_line = _HEAD_TITLE.fullmatch(head[0]) if head else None
    where = _HEAD_STEP.match(head[1]) if len(head) > 1 else None
    if title_line is None or where is None:
        raise ExportError(f"{name}: no `# TITLE` and `# kind K, diverging at step N` header")
    extra = dict(line.split(": ", 1) for line in head[2:] if ": " in line)
    finding = Finding(parse(text, name), int(where.group(2)), title_line.group(2),
                      where.group(1), extra.get("expected", ""), extra.get("observed", ""))
    return finding, int(title_line.group(1)) if title_line.group(1) else None


def prog_text(finding: Finding, bucket_id: int | None = None) -> str:
    """The program text with a comment header: `mmfuzz exec` runs it as it is."""
    head = "".join(f"# {line}\n" for line in header_lines(finding, bucket_id))
    return head + finding.program.text()


def export_bucket(bucket: BucketDetail, fmt: str, fuzzed: Iterable[str] = (),
                  variants: Sequence[str] = ()) -> str:
    """A stored bucket (its minimized program if any) in one of FORMATS; `fuzzed`, the
    kernels the database ran campaigns on, dates the mailing-list report, and `variants`
    (the summary of its variants) go in it."""
    finding = finding_of(bucket)
    if fmt == "report":
        _check_step(finding)
        return mail_report(bucket, finding, fuzzed, variants)
    return export(finding, fmt, bucket.id)


def _check_step(finding: Finding) -> None:
    if not 0 <= finding.step < len(finding.program.calls):
        raise ExportError(f"step {finding.step} is not in a program of "
                          f"{len(finding.program.calls)} calls")


def export(finding: Finding, fmt: str, bucket_id: int | None = None) -> str:
    """The finding in one of FORMATS but report, which needs the stored bucket."""
    _check_step(finding)
    match fmt:
        case "c":
            return c_source(finding, bucket_id)
        case "prog":
            return prog_text(finding, bucket_id)
        case "syz":
            if any(c.proc or c.name == "fork" for c in finding.program.calls):
                raise ExportError("syzkaller programs have one process: "
                                  "a program that forks exports as --format c or --format prog")
            return syz_program(finding.program, header_lines(finding, bucket_id))
        case "report":
            raise ExportError("a report is made from a stored bucket: mmfuzz export ID "
                              "--format report")
    raise ExportError(f"unknown format {fmt!r} (one of: {', '.join(FORMATS)})")


# ---------------------------------------------------------------- crashes/


def slug(title: str) -> str:
    """A file-name-safe, readable form of a title: `presence-mmap-private-anonymous-...`."""
    text = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
    if len(text) > SLUG_MAX:
        cut = text[: SLUG_MAX + 1]
        text = cut[: cut.rfind("-")] if "-" in cut else cut[:SLUG_MAX]
    return text.strip("-") or "bucket"


def folder_name(bucket: BucketDetail) -> str:
    return f"{slug(bucket.title)}-{bucket.id}"


def write_bucket_folder(root: Path, bucket: BucketDetail) -> Path:
    """Write one bucket's folder under root; returns it. OSError if root is unwritable."""
    original = finding_of(bucket, minimized=False)
    best = finding_of(bucket)
    folder = root / folder_name(bucket)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "original.prog").write_text(prog_text(original, bucket.id))
    files = ["original.prog"]
    if bucket.minimized_program_text:
        (folder / "minimized.prog").write_text(prog_text(best, bucket.id))
        files.append("minimized.prog")
    repro_note = ""
    try:
        (folder / "repro.c").write_text(c_source(best, bucket.id))
        files.append("repro.c")
    except (ExportError, Unsupported) as e:
        repro_note = f"no C reproducer: {e}"
        (folder / "repro.c").unlink(missing_ok=True)
    (folder / "report.txt").write_text(report_text(bucket, best, files, repro_note))
    return folder


def _sample_lines(bucket: BucketDetail) -> list[str]:
    if not bucket.samples:
        return []
    first = bucket.samples[0]
    return [f"first sample, step {first.step} of the original program:",
            f"  expected:   {_one_line(first.expected)}",
            f"  observed:   {_one_line(first.observed)}"]


def report_text(bucket: BucketDetail, finding: Finding, files: list[str], note: str = "") -> str:
    kernels = sorted({s.kernel for s in bucket.samples})
    injected = sorted({",".join(s.injections) for s in bucket.samples if s.injections})
    if bucket.reliability_runs:
        reliability = f"{bucket.reliability_hits}/{bucket.reliability_runs} runs reproduce it"
    else:
        reliability = "not measured (mmfuzz repro ID)"
    if bucket.minimized_program_text and bucket.original_calls and bucket.minimized_calls:
        minimized = f"{bucket.original_calls} calls -> {bucket.minimized_calls}"
    else:
        minimized = "not minimized (mmfuzz minimize ID)"
    lines = [
        bucket.title,
        "",
        f"bucket:       #{bucket.id}, kind {bucket.kind}, status {bucket.status}",
        f"kernel:       {', '.join(kernels) or 'unknown'}",
        *([f"injections:   {'; '.join(injected)} (an emulated bug, not this kernel's)"]
          if injected else []),
        f"first seen:   {bucket.first_seen:%Y-%m-%d %H:%M:%S}",
        f"last seen:    {bucket.last_seen:%Y-%m-%d %H:%M:%S}",
        f"count:        {bucket.count}",
        f"reliability:  {reliability}",
        f"minimized:    {minimized}",
        "",
        f"diverging step {finding.step}: {format_call(finding.program.calls[finding.step])}",
        *_sample_lines(bucket),
        "",
        f"files:        {', '.join(files)}",
    ]
    if note:
        lines.append(note)
    if "repro.c" in files:
        lines.append("repro.c:      cc -Wall -static -o repro repro.c && ./repro "
                     "(exit 1: reproduces)")
    return "\n".join(lines) + "\n"


__all__ = ["FORMATS", "ExportError", "Finding", "export", "export_bucket", "finding_of",
           "folder_name", "prog_text", "read_prog", "slug", "write_bucket_folder"]
