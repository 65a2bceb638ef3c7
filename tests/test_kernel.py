"""Kernels under test (fuzzer/kernel): --kernel parsing, the channel and store proxy,
crash titles, and end to end in Debian's User-Mode Linux kernel (/usr/bin/linux,
package user-mode-linux, which .ci/run installs)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fuzzer.cli.app import app
from fuzzer.kernel import HOST, KernelError, parse_kernel
from fuzzer.kernel.channel import Channel, ChannelClosed, ChannelTimeout
from fuzzer.kernel.console import find_crash, normalize
from fuzzer.kernel.proxy import StoreProxy, serve
from fuzzer.kernel.uml import GUEST_FILES_ENV, files_disk
from fuzzer.oracle import Divergence
from fuzzer.reduce.export import folder_name
from fuzzer.store import OpCount, SampleContext, open_store
from tests.uml import UML

FIXTURES = Path(__file__).parent / "fixtures" / "uml"
ROOT = Path(__file__).parent.parent
SEEDS = ROOT / "corpus" / "seeds"
runner = CliRunner()
# Boots a guest: conftest marks it kernel too, and skips it (saying why) without UML.
needs_uml = pytest.mark.uml


# -- --kernel ---------------------------------------------------------------


def test_host_is_the_default_kernel() -> None:
    assert parse_kernel("host") is HOST and HOST.is_host and str(HOST) == "host"


@pytest.mark.parametrize(("spec", "message"), [
    ("qemu:/boot/vmlinuz", "expected 'host' or 'uml:PATH'"),
    ("uml:", "expected 'host' or 'uml:PATH'"),
    ("uml:/nonexistent/linux", "/nonexistent/linux: no such file"),
    ("uml:/usr", "/usr: not an executable file"),
])
def test_bad_kernel_specs(spec: str, message: str) -> None:
    with pytest.raises(KernelError, match=message):
        parse_kernel(spec)


def test_uml_spec_needs_an_executable(tmp_path: Path) -> None:
    (tmp_path / "linux").write_text("not a kernel")
    with pytest.raises(KernelError, match="linux: not an executable file"):
        parse_kernel(f"uml:{tmp_path}/linux")


def test_uml_spec_keeps_the_path_given(tmp_path: Path) -> None:
    linux = tmp_path / "linux"
    linux.write_text("#!/bin/sh\n")
    linux.chmod(0o755)
    kernel = parse_kernel(f"uml:{linux}", mem_mb=256)
    assert kernel.uml == linux and kernel.mem_mb == 256 and str(kernel) == f"uml:{linux}"


@pytest.mark.parametrize("command", [
    ["exec", str(SEEDS / "05-map-locked.prog")],
    ["run", "--time", "5"],
    ["bench", "throughput"],
    ["repro", "1"],
    ["minimize", "1"],
    ["variants", "1"],
    ["export", "1", "--check"],
])
def test_cli_rejects_a_missing_kernel_in_one_line(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--kernel", "uml:/nonexistent/linux"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "/nonexistent/linux: no such file" in lines[0]


# -- channel, proxy, console ------------------------------------------------


def _pair() -> tuple[Channel, Channel]:
    a_r, b_w = os.pipe()
    b_r, a_w = os.pipe()
    return Channel(a_r, a_w), Channel(b_r, b_w)


def test_channel_skips_noise_and_reports_timeout_and_close() -> None:
    a, b = _pair()
    os.write(b.wfd, b"\r\nnot json\n[1, 2]\n")
    b.send({"x": (1, 2), "s": {"b", "a"}})
    assert a.recv(1) == {"x": [1, 2], "s": ["a", "b"]}
    with pytest.raises(ChannelTimeout):
        a.recv(0.05)
    os.close(b.wfd)
    with pytest.raises(ChannelClosed):
        a.recv(1)


def test_store_proxy_replays_calls_on_the_hosts_store(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/db.sqlite")
    cid = store.start_campaign(kernel="6.1.176", host="h", options={})
    guest_end, host_end = _pair()

    def host() -> None:
        while True:
            try:
                msg = host_end.recv(5)
            except ChannelClosed:
                return
            host_end.send(serve(store, msg))

    thread = threading.Thread(target=host)
    thread.start()
    proxy = StoreProxy(guest_end)
    text = "mlock(@0, 1p)\n"
    from fuzzer.prog import parse

    digest = parse(text).hash
    d = Divergence("result", "result: t", 0, "0", "-ENOMEM")
    seen = SampleContext(cid, text, digest, "6.1.176", ("a", "b"), {"release": "6.1.176"})
    bucket, new = proxy.record(d, seen)
    again = proxy.record(d, seen)
    assert new is True and again == (bucket, False)
    (sample, _) = store.bucket(bucket).samples
    assert (sample.injections, sample.features, sample.expected) == (
        ("a", "b"), {"release": "6.1.176"}, "0")
    proxy.add_progress(cid, programs=3, steps=7,
                       ops=[OpCount("mlock", "steps", "", 7), OpCount("mlock", "outcome", "ok", 7)])
    assert store.op_counts(cid) == [OpCount("mlock", "outcome", "ok", 7),
                                    OpCount("mlock", "steps", "", 7)]
    with pytest.raises(Exception, match="call, what, value, count"):
        proxy.add_progress(cid, programs=1, steps=1, ops=[
            {"__store_value__": "OpCount", "value": ["mlock", "steps", "", -1]}])
    with pytest.raises(Exception, match="no such store value: 'Bogus'"):
        proxy.add_progress(cid, programs=1, steps=1, ops=[{"__store_value__": "Bogus"}])
    assert store.campaign(cid).steps == 7
    with pytest.raises(Exception, match="no campaign with id 999"):
        proxy.add_progress(999, programs=1, steps=1)
    assert not hasattr(proxy, "start_campaign")  # only the WorkerStore's methods
    os.close(guest_end.wfd)
    thread.join(5)
    row = store.campaign(cid)
    assert (row.programs, row.steps, row.divergences) == (3, 7, 2)
    assert store.bucket(bucket).count == 2


@pytest.mark.parametrize(("line", "title"), [
    ("[   12.345678] Kernel panic - not syncing: sysrq triggered crash",
     "kernel-crash: Kernel panic - not syncing: sysrq triggered crash"),
    ("BUG: unable to handle page fault for address: ffff88810a2b3c40",
     "kernel-crash: BUG: unable to handle page fault for address: ADDR"),
    ("kernel BUG at mm/mlock.c:247!", "kernel-crash: kernel BUG at mm/mlock.c:247!"),
    ("WARNING: CPU: 0 PID: 731 at mm/mremap.c:610 move_vma+0x3c1/0x4d0",
     "kernel-crash: WARNING: CPU: 0 PID: N at mm/mremap.c:610 move_vma+ADDR/ADDR"),
    ("Kernel mode fault at addr 0x10, ip 0x6002f5a6",
     "kernel-crash: Kernel mode fault at addr ADDR, ip ADDR"),
])
def test_crash_titles(line: str, title: str) -> None:
    stamped = line if line.startswith("[") else f"[    3.141592] {line}"
    crash = find_crash(f"[    0.000000] Booting\n[    1.000000] Run /init as init process\n"
                       f"{stamped}\nmore\n")
    assert crash is not None and crash.title == title
    assert stamped in crash.log and "Run /init" in crash.log


def test_console_without_a_crash() -> None:
    assert find_crash("[    0.000000] Linux version 6.1.176\n[    9.000000] reboot: System halted\n"
                      ) is None
    # Userspace writes to the console too (libFuzzer at start-up): not the kernel's.
    assert find_crash('WARNING: Failed to find function "__sanitizer_acquire_crash_state".\n'
                      "BUG: in a program\n") is None
    assert normalize("pid 1234 exitcode=0x0000000b") == "pid N exitcode=ADDR"


# -- end to end in Debian's UML kernel --------------------------------------


def _no_guest_left() -> bool:
    out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    return "init=" + str(Path("fuzzer/kernel/init.sh").resolve()) not in out


@needs_uml
@pytest.mark.kernel
def test_exec_in_uml() -> None:
    result = runner.invoke(app, ["exec", "--kernel", f"uml:{UML}",
                                 str(SEEDS / "16-mprotect-locked-readonly-to-rw.prog")])
    assert result.exit_code == 0, result.output
    assert "no divergence in 7 steps" in result.output
    assert "kernel: 6.1." in result.output and f"(uml:{UML})" in result.output
    assert _no_guest_left()


@needs_uml
@pytest.mark.kernel
def test_kernel_crash_in_exec_is_a_finding() -> None:
    result = runner.invoke(app, ["exec", "--kernel", f"uml:{UML}", "--inject",
                                 f"{FIXTURES}/panic.py:sysrq_crash",
                                 str(SEEDS / "19-mlock-basic.prog")])
    assert result.exit_code == 1, result.output
    assert "kernel-crash: Kernel panic - not syncing: sysrq triggered crash" in result.output
    assert "write_sysrq_trigger" in result.output  # the console log, with the stack
    assert _no_guest_left()


def test_guest_disk_unless_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A guest gets an ext4 disk (ubd0) for tmpfile's files: a sparse image mkfs.ext4 made
    with 4 KiB blocks; MMFUZZ_GUEST_FILES=0, no disk. Without mkfs.ext4 on the PATH (and
    in /usr/sbin, /sbin), no disk either, but MMFUZZ_GUEST_FILES=1 makes it an error."""
    monkeypatch.setenv(GUEST_FILES_ENV, "0")
    assert files_disk(str(tmp_path)) == [] and not list(tmp_path.iterdir())
    monkeypatch.setattr(shutil, "which", lambda *_, **__: None)
    monkeypatch.delenv(GUEST_FILES_ENV)
    assert files_disk(str(tmp_path)) == [] and not list(tmp_path.iterdir())
    monkeypatch.setenv(GUEST_FILES_ENV, "1")
    with pytest.raises(KernelError, match=r"MMFUZZ_GUEST_FILES=1 needs mkfs\.ext4"):
        files_disk(str(tmp_path))
    monkeypatch.undo()
    monkeypatch.delenv(GUEST_FILES_ENV, raising=False)
    image = tmp_path / "files.ext4"
    assert files_disk(str(tmp_path)) == [f"ubd0={image}"]
    with open(image, "rb") as f:
        f.seek(1024)
        superblock = f.read(1024)
    assert int.from_bytes(superblock[56:58], "little") == 0xEF53  # s_magic
    assert 1024 << int.from_bytes(superblock[24:28], "little") == 4096  # s_log_block_size


# A 6.1 guest (Debian's or its rebuild: before 6.18's exec readahead and before
# 74207de2ba10) on a disk of its own: each agrees with the model.
GUEST_FILE_PROGRAMS = [
    SEEDS / "96-tmpfile-readahead.prog",
    # the exec cases probed as Features.exec_readahead (test_model_tmpfile.py's rows
    # exec-reads-around-before-6.18 and exec-random-reads-the-page-before-6.18)
    "tmpfile()\nftruncate(0, 8p)\nmmap(@0, 8p, PROT_READ|PROT_EXEC, MAP_SHARED, 0, 0)\n"
    "touch(@3, read)\nmmap(@8, 8p, PROT_READ|PROT_EXEC, MAP_SHARED, 0, 0)\n"
    "madvise(@8, 8p, MADV_RANDOM)\ntouch(@11, read)\n",
    # fault-around maps a file's last page alone in a region without a page table (the
    # README finding of 6.18.44 and 6.12.118, which carry 74207de2ba10; 6.1 does not)
    ROOT / "crashes" / "presence-touch-read-left-pages-not-shmem" / "minimized.prog",
    # growing a file from an unaligned size makes no folio at the old end before 6.13
    # (Features.ext4_zeroes_old_eof; test_model_tmpfile.py's grow-mapped-tail-before-6.13,
    # a UML 6.1.176 campaign's bucket, 14 calls minimized to these 5)
    "tmpfile()\nftruncate(0, 4p+2679)\nmmap(@0, 2p, PROT_READ, MAP_SHARED, 0, 12288)\n"
    "ftruncate(0, 5p)\ntouch(@0, read)\n",
]


@needs_uml
@pytest.mark.kernel
@pytest.mark.parametrize("program", GUEST_FILE_PROGRAMS,
                         ids=["seed-96", "exec", "fault-around", "grow"])
def test_tmpfile_in_a_guest_with_a_disk(program: Path | str, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(GUEST_FILES_ENV, "1")
    if isinstance(program, str):
        (tmp_path / "p.prog").write_text(program)
        program = tmp_path / "p.prog"
    result = runner.invoke(app, ["exec", "--kernel", f"uml:{UML}", str(program)])
    assert result.exit_code == 0, result.output
    assert "no divergence" in result.output and "kernel: 6.1." in result.output
    assert "tmpfile()" in result.output and "-ENOENT" not in result.output  # it ran on disk
    assert _no_guest_left()


@needs_uml
@pytest.mark.kernel
def test_campaign_in_uml_stores_guest_release_and_features(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/db.sqlite"
    # Its own guests' folders must go; another run's (on a shared /tmp) are not its business.
    before = set(Path(tempfile.gettempdir()).glob("mmfuzz-uml-*"))
    # Ended by its runs; --time (wall-clock, the boots included) only bounds it.
    result = runner.invoke(app, ["run", "--kernel", f"uml:{UML}", "--guest-mem", "256",
                                 "--time", "300", "--runs", "40", "--db", db,
                                 "--corpus", str(tmp_path / "corpus"), "--seeds",
                                 str(tmp_path / "none"), "--crashes", str(tmp_path / "crashes"),
                                 "--minimize-budget", "0"])
    assert result.exit_code == 0, result.output
    assert f"in uml:{UML}" in result.output
    store = open_store(db, create=False)
    (campaign,) = store.campaigns()
    assert campaign.kernel.startswith("6.1.") and campaign.status == "done"
    assert campaign.programs >= 40
    features = campaign.options["features"]
    assert isinstance(features, dict) and features["release"] == campaign.kernel
    assert features["lf_mnemonic"] is False  # "lf" in smaps came with 6.2
    for name in ("write_implies_read", "thp", "map_stack_nohugepage", "mremap_checks_first",
                 "madv_populate_stops_at_hole", "merge_into_null_anon_vma",
                 "mprotect_uncharges", "mseal", "guard_regions", "shmem_guards",
                 "pmadv_self_any", "madv_collapse"):
        assert features[name] is False, name  # UML, and 6.1 (see UML_DIFFERENCES)
    assert campaign.options["kernel"] == f"uml:{UML}"
    for bucket in store.buckets(include_labelled=True):
        assert {s.kernel for s in store.bucket(bucket.id).samples} == {campaign.kernel}
    listing = runner.invoke(app, ["kernels", "--db", db])
    assert listing.exit_code == 0 and campaign.kernel in listing.output
    assert not set(Path(tempfile.gettempdir()).glob("mmfuzz-uml-*")) - before
    assert _no_guest_left()


@needs_uml
@pytest.mark.kernel
def test_campaign_in_uml_reduces_its_buckets_through_the_store_proxy(tmp_path: Path) -> None:
    """The guest's worker minimizes the buckets it opens and runs their variants, storing
    both through its StoreProxy (a WorkerStore); the host writes their crashes/ folders."""
    db = f"sqlite:///{tmp_path}/db.sqlite"
    result = runner.invoke(app, ["run", "--kernel", f"uml:{UML}", "--guest-mem", "256",
                                 "--inject", "munlock-skipped", "--time", "300", "--runs", "300",
                                 "--db", db, "--corpus", str(tmp_path / "corpus"),
                                 "--crashes", str(tmp_path / "crashes"),
                                 "--minimize-budget", "40"])
    assert result.exit_code == 0, result.output
    store = open_store(db, create=False)
    (campaign,) = store.campaigns()
    assert campaign.status == "done" and store.points(campaign.id)
    buckets = store.buckets(include_labelled=True)
    assert buckets
    for bucket in buckets:
        detail = store.bucket(bucket.id)
        assert detail.minimized_program_text is not None, bucket.title
        assert (tmp_path / "crashes" / folder_name(detail) / "minimized.prog").exists()
    assert any(store.variants(b.id) for b in buckets)
    assert _no_guest_left()


@needs_uml
@pytest.mark.kernel
def test_campaign_goes_on_after_a_kernel_crash(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/db.sqlite"
    # --time counts the guests' boots: time for a few of them on a loaded machine.
    result = runner.invoke(app, ["run", "--kernel", f"uml:{UML}", "--time", "60", "--db", db,
                                 "--inject", f"{FIXTURES}/panic.py:sysrq_crash",
                                 "--calls", "mmap,mlock,touch", "--seeds", str(SEEDS),
                                 "--corpus", str(tmp_path / "corpus"), "--minimize-budget", "0",
                                 "--crashes", str(tmp_path / "crashes")])
    assert result.exit_code == 0, result.output
    store = open_store(db, create=False)
    (campaign,) = store.campaigns()
    assert campaign.status == "done"
    (bucket,) = [b for b in store.buckets(include_labelled=True) if b.kind == "kernel-crash"]
    assert bucket.title == "kernel-crash: Kernel panic - not syncing: sysrq triggered crash"
    detail = store.bucket(bucket.id)
    assert bucket.count >= 2  # the campaign went on in a new guest, which crashed again
    sample = detail.samples[0]
    assert "mlock(" in sample.program_text  # the program the guest was running
    assert "write_sysrq_trigger" in sample.observed  # the console log, kept with the sample
    assert sample.kernel.startswith("6.1.")
    assert sample.injections == (f"{FIXTURES}/panic.py:sysrq_crash",)  # as --inject named it
    assert _no_guest_left()



# Each minimized from a bucket of a campaign in Debian's UML 6.1 kernel, where the
# model had assumed x86 and the newest kernel; the probed feature that now explains it.
UML_DIFFERENCES = {
    # UML's fault handler wants VM_READ or VM_EXEC for a read; x86 takes VM_WRITE too.
    "write_implies_read": """
        mmap(@0, 1p, PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
        touch(@0, read)
    """,
    # Without CONFIG_TRANSPARENT_HUGEPAGE (UML) MADV_NOHUGEPAGE is not valid advice.
    "thp": "madvise(@0, 1p, MADV_NOHUGEPAGE)",
    # ... nor MADV_COLLAPSE: EINVAL before the walk, where the host's is ENOMEM for a
    # range with no VMA (and EINVAL at a VMA of the arena, too small for a huge page).
    "madv_collapse": """
        mmap(@0, 2p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
        madvise(@4, 2p, MADV_COLLAPSE)
        madvise(@0, 2p, MADV_COLLAPSE)
    """,
    # MAP_STACK gives VM_NOHUGEPAGE from 6.7: on 6.1 the two mappings merge into one
    # VMA, so a 4-page mremap over both succeeds.
    "map_stack_nohugepage": """
        mmap(@10, 2p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
        mmap(@12, 2p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_STACK, -1, 0)
        mremap(@10, 4p, 5p, 0, @0)
    """,
    # 6.1's mremap looks the VMA up (EFAULT) before mremap_to() checks the new range.
    # mremap_to() unmaps the target before it checks the source (after a shrunk tail's
    # unmap: EINVAL for a huge old_len), DONTUNMAP's lengths are compared as given, and a
    # huge new_len fails in may_expand_vm() (ENOMEM).
    "mremap_checks_first": """
        mremap(@0, 1p, 1p, MREMAP_MAYMOVE|MREMAP_FIXED, @0)
        mremap(@0, 1p, 0xfffffffffffff000, MREMAP_MAYMOVE, @0)
        mmap(@19, 3p, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED, -1, 0)
        mlock2(@20, 1p, 0)
        mmap(@22, 2p, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED, -1, 0)
        mremap(@19, 3p, 7p, MREMAP_MAYMOVE|MREMAP_FIXED, @22)
        mremap(@20, 1p, 0xfffffffffffff000, 0, @44)
        mremap(@57, 2p+2166, 3p, MREMAP_MAYMOVE|MREMAP_FIXED|MREMAP_DONTUNMAP, @20)
        mmap(@30, 1p, PROT_NONE, MAP_SHARED|MAP_ANONYMOUS|MAP_FIXED, -1, 0)
        mremap(@30, 0xfffffffffffff000, 1p, MREMAP_MAYMOVE|MREMAP_FIXED, @30)
    """,
    # Before 6.9 MADV_POPULATE_* ran in madvise_walk_vmas: a hole is ENOMEM only at
    # the end, after a later PROT_NONE VMA's EINVAL.
    "madv_populate_stops_at_hole": """
        mmap(@0, 9p, PROT_NONE, MAP_SHARED|MAP_ANONYMOUS, -1, 0)
        mremap(@1, 7p, 1p, 0, @0)
        madvise(@7, 2p, MADV_POPULATE_WRITE)
    """,
    # 6.1's is_mergeable_anon_vma() kept a VMA with an anon_vma (the page mlock
    # faulted in) from merging back into neighbours without one: three VMAs remain,
    # and the mremap crosses from one into the next (EFAULT, not 6.18's ENOMEM).
    "merge_into_null_anon_vma": """
        mmap(@0, 45p, PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
        mlock2(@31, 1p, 0)
        munlockall()
        mremap(@25, 7p, 8p, 0, @0)
    """,
    # 6.1's mprotect_fixup kept VM_ACCOUNT on an unfaulted VMA made read-only, so the
    # populated VMA's split-off tail (which keeps it) merges with its neighbour: the
    # mremap grows in place (6.18 uncharges the neighbour alone: two VMAs, EFAULT).
    "mprotect_uncharges": """
        mmap(@0, 6p, PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED, -1, 0)
        mprotect(@5, 1p, PROT_READ|PROT_WRITE)
        madvise(@0, 1p, MADV_POPULATE_WRITE)
        mprotect(@4, 2p, PROT_NONE)
        mremap(@4, 2p, 3p, MREMAP_MAYMOVE, @0)
    """,
    # Guard regions came with 6.13: on 6.1 the advice is unknown (EINVAL), and the
    # page the install would have guarded is touched as usual.
    "guard_regions": """
        mmap(@0, 2p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED, -1, 0)
        madvise(@0, 1p, MADV_GUARD_INSTALL)
        touch(@0, write)
        madvise(@0, 1p, MADV_GUARD_REMOVE)
    """,
    # process_madvise (5.10) took only MADV_COLD, MADV_PAGEOUT, MADV_WILLNEED and
    # MADV_COLLAPSE before 6.13, for the caller itself too: the MADV_DONTNEED is EINVAL
    # and the page stays (6.18: it goes).
    "pmadv_self_any": """
        mmap(@0, 2p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED, -1, 0)
        touch(@0, write)
        process_madvise(p0, @0, 1p, @1, 1p, 2, MADV_DONTNEED, 0)
        process_madvise(p0, @0, 1p, @1, 1p, 2, MADV_COLD, 0)
    """,
    # mseal came with 6.10: on 6.1 it is ENOSYS, nothing is sealed, and the munmap
    # a seal would refuse succeeds.
    "mseal": """
        mmap(@0, 2p, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED, -1, 0)
        mseal(@0, 2p, 0)
        munmap(@0, 1p)
    """,
}


@needs_uml
@pytest.mark.kernel
def test_uml_61_differences_are_modelled() -> None:
    from fuzzer.kernel.session import check_in_guest

    texts = [textwrap.dedent(t).strip() + "\n" for t in UML_DIFFERENCES.values()]
    titles = check_in_guest(parse_kernel(f"uml:{UML}"), texts)
    assert dict(zip(UML_DIFFERENCES, titles, strict=True)) == {k: [] for k in UML_DIFFERENCES}


@pytest.mark.kernel
@pytest.mark.parametrize("feature", sorted(UML_DIFFERENCES))
def test_uml_61_differences_agree_on_the_host_too(feature: str, run_text) -> None:  # type: ignore[no-untyped-def]
    # The host kernel has every feature: the same programs agree with the model here too.
    report = run_text(textwrap.dedent(UML_DIFFERENCES[feature]).strip() + "\n")
    assert report.divergences == [], report.divergences


@pytest.mark.slow
@pytest.mark.kernel
def test_mlockall_merging_the_executors_own_vmas_is_no_new_mapping() -> None:
    # Found in UML builds from defconfig (CONFIG_COMPAT_BRK=y): without brk
    # randomization the executor's heap starts right after its bss, and
    # mlockall(MCL_CURRENT) merges the two VMAs. The same on this kernel with the
    # personality that turns randomization off (setarch -R).
    prog = SEEDS.parent.parent / "tests" / "fixtures" / "uml" / "mlockall-merge.prog"
    mmfuzz = Path(sys.executable).with_name("mmfuzz")
    done = subprocess.run(["setarch", "-R", str(mmfuzz), "exec", str(prog)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no divergence in 2 steps" in done.stdout


@needs_uml
@pytest.mark.kernel
def test_a_guest_that_stops_answering_is_a_hang(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MMFUZZ_GUEST_SILENCE", "3")  # instead of a minute
    db = f"sqlite:///{tmp_path}/db.sqlite"
    start = time.monotonic()
    result = runner.invoke(app, ["run", "--kernel", f"uml:{UML}", "--time", "60", "--db", db,
                                 "--budget", "1", "--inject", f"{FIXTURES}/panic.py:stall",
                                 "--seeds", str(SEEDS), "--corpus", str(tmp_path / "corpus"),
                                 "--minimize-budget", "0", "--crashes", str(tmp_path / "crashes")])
    assert result.exit_code == 0, result.output
    store = open_store(db, create=False)
    (campaign,) = store.campaigns()
    assert campaign.status == "done"
    (bucket,) = [b for b in store.buckets(include_labelled=True) if b.kind == "hang"]
    assert bucket.title == "hang: the guest kernel stopped answering"
    sample = store.bucket(bucket.id).samples[0]
    assert "munmap(" in sample.program_text and "no message from the guest" in sample.observed
    assert campaign.ended is not None
    # It went on in a new guest after the hang, until its time (from the command's start,
    # the guests' boots included) was up, less the last second, which is not worth a boot
    # (guest_worker: a guest is booted only for a second or more of work).
    assert time.monotonic() - start >= 59 and _no_guest_left()
