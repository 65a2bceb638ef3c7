"""Capture real /proc files for tests/test_proc_golden.py (a developer's tool, not a test).

Each program below runs in the project's own executor under the project's own
supervisor; once its last call has returned, while every process of the run is
still stopped, the raw /proc/PID/smaps and /proc/PID/status of the process
named, and the arena's 64 pagemap words, are written to

    tests/fixtures/proc/<kernel>/<name>/
        program.prog   the program
        meta           release, arena base, zero-page PFN, process captured
        smaps, status  as the kernel printed them
        pagemap        one 64-bit word per arena page, as hex, one a line

Then `pytest tests/test_proc_golden.py --regen-golden` writes expected.txt.

    .venv/bin/python tests/golden/capture_proc.py host            # -> proc/6.18
    .venv/bin/python tests/golden/capture_proc.py uml /usr/bin/linux   # -> proc/6.1-uml

The UML guest boots with fuzzer/kernel/init.sh as its init, told to run this
script (`guest`) instead of the guest's server (uml.Guest's `script`); it
sends the captures back over the guest's result channel (its root is the
host's file system read-only, so it cannot write them itself).
"""

from __future__ import annotations

import argparse
import os
import struct
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "proc"
RW = "PROT_READ|PROT_WRITE"
PA = "MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED"

# name -> (process to capture, program). Small and diverse: locked, lock-on-fault,
# shared anonymous, memfd, PROT_NONE, exec-only, a forked child's shared pages.
PROGRAMS: dict[str, tuple[int, str]] = {
    "locked": (0, f"""
        mmap(@0, 4p, {RW}, {PA}|MAP_LOCKED, -1, 0)
        munlock(@3, 1p)
        mmap(@8, 2p, PROT_READ, {PA}|MAP_LOCKED, -1, 0)
        """),
    "lock-on-fault": (0, f"""
        mmap(@0, 4p, {RW}, {PA}, -1, 0)
        mlock2(@0, 4p, MLOCK_ONFAULT)
        touch(@1, write)
        touch(@2, read)
        mmap(@6, 2p, {RW}, {PA}, -1, 0)
        mlockall(MCL_CURRENT|MCL_ONFAULT)
        touch(@7, write)
        """),
    "shared-anon": (0, f"""
        mmap(@0, 3p, {RW}, MAP_SHARED|MAP_ANONYMOUS|MAP_FIXED, -1, 0)
        touch(@0, write)
        touch(@1, read)
        mremap(@0, 0, 3p, MREMAP_MAYMOVE|MREMAP_FIXED, @10)
        touch(@10, read)
        """),
    "memfd": (0, f"""
        memfd_create()
        ftruncate(0, 4p)
        mmap(@0, 4p, {RW}, MAP_SHARED|MAP_FIXED, 0, 0)
        touch(@0, write)
        mmap(@6, 2p, {RW}, MAP_PRIVATE|MAP_FIXED, 0, 0)
        touch(@6, read)
        touch(@7, write)
        mlock(@0, 2p)
        """),
    "prot-none": (0, f"""
        mmap(@0, 2p, PROT_NONE, {PA}, -1, 0)
        mmap(@4, 2p, PROT_READ, {PA}|MAP_POPULATE, -1, 0)
        mmap(@8, 4p, {RW}, {PA}|MAP_POPULATE, -1, 0)
        mprotect(@9, 2p, PROT_NONE)
        """),
    "exec-only": (0, f"""
        mmap(@0, 2p, PROT_EXEC, {PA}|MAP_POPULATE, -1, 0)
        mmap(@4, 2p, PROT_READ|PROT_EXEC, {PA}|MAP_LOCKED, -1, 0)
        """),
    "fork-child": (1, f"""
        mmap(@0, 3p, {RW}, {PA}|MAP_LOCKED, -1, 0)
        mmap(@4, 1p, {RW}, MAP_SHARED|MAP_ANONYMOUS|MAP_FIXED, -1, 0)
        touch(@4, write)
        fork()
        p1: touch(@1, write)
        """),
}


def capture(name: str) -> dict[str, str]:
    """Run program `name` and read its process's /proc files after the last call."""
    from fuzzer.executor import executor_path
    from fuzzer.observe import zero_pfn
    from fuzzer.prog import ARENA_BASE, ARENA_PAGES, parse
    from fuzzer.prog.syscalls import PAGE
    from fuzzer.trace import Supervisor

    proc, text = PROGRAMS[name]
    text = textwrap.dedent(text).lstrip()
    program = parse(text, name)
    out: dict[str, str] = {}
    with Supervisor(executor_path(), budget=10.0).run(program) as run:
        for st in run.steps():
            if st.index != len(program) - 1:
                continue
            pid = run.pids[proc]
            with open(f"/proc/{pid}/smaps") as f:
                out["smaps"] = f.read()
            with open(f"/proc/{pid}/status") as f:
                out["status"] = f.read()
            with open(f"/proc/{pid}/pagemap", "rb") as f:
                f.seek(ARENA_BASE // PAGE * 8)
                words = struct.unpack(f"<{ARENA_PAGES}Q", f.read(ARENA_PAGES * 8))
            out["pagemap"] = "".join(f"{w:016x}\n" for w in words)
    if len(out) != 3:
        raise RuntimeError(f"{name}: the program ended before its last call was seen")
    out["program.prog"] = text
    out["meta"] = (f"release {os.uname().release}\narena {ARENA_BASE:#x}\n"
                   f"zero_pfn {zero_pfn():#x}\nprocess p{proc}\n")
    return out


def write(kernel_dir: Path, captures: dict[str, dict[str, str]]) -> None:
    for name, files in captures.items():
        folder = kernel_dir / name
        folder.mkdir(parents=True, exist_ok=True)
        for fname, content in files.items():
            (folder / fname).write_text(content)
        print(f"wrote {folder}")


def guest_main() -> int:
    from fuzzer.kernel.channel import guest_channel

    channel = guest_channel()
    channel.send({"ready": {"release": os.uname().release}})
    try:
        result: dict[str, object] = {"result": {n: capture(n) for n in PROGRAMS}}
    except Exception as e:
        result = {"error": f"{type(e).__name__}: {e}"}
    channel.send(result)
    return 0


def uml_main(linux: Path, out: Path) -> int:
    from fuzzer.kernel import parse_kernel, uml

    script = str(Path(__file__).resolve().relative_to(uml.ROOT))  # instead of the server
    with uml.Guest(parse_kernel(f"uml:{linux}"), script=script) as guest:
        msg = guest.recv(300.0)
    if "error" in msg:
        print(f"guest: {msg['error']}", file=sys.stderr)
        return 1
    result = msg["result"]
    assert isinstance(result, dict)
    write(out, result)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("kernel", choices=["host", "uml", "guest"])
    ap.add_argument("linux", nargs="?", default="/usr/bin/linux", help="the UML binary")
    ap.add_argument("--out", type=Path, help="default: proc/6.18 (host), proc/6.1-uml (uml)")
    args = ap.parse_args()
    if args.kernel == "guest":
        return guest_main()
    if args.kernel == "uml":
        return uml_main(Path(args.linux), args.out or FIXTURES / "6.1-uml")
    write(args.out or FIXTURES / "6.18", {n: capture(n) for n in PROGRAMS})
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
