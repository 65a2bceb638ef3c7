"""One User-Mode Linux guest: boot it, talk to it over its channel, halt it.

The guest is the UML binary run as an ordinary process of ours, in a session
of its own (its helper and user processes are in its process group, and are
killed with it). Its root is the host's file system over hostfs, read-only;
its init is init.sh beside this file, which starts `python -m
fuzzer.campaign.guest` from this repository. UML's memory file and its
`uml_dir` live in a private temporary directory removed at halt.

The first message of every guest says it is ready, with the kernel release, its
build string (`uname -v`) and the features probed in it (what the model is told about that kernel).
"""

from __future__ import annotations

import contextlib
import glob
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from fuzzer.executor import executor_path
from fuzzer.kernel.channel import Channel, ChannelClosed, ChannelTimeout
from fuzzer.kernel.console import ConsoleLog, Crash, find_crash
from fuzzer.kernel.diagnose import Host, diagnose
from fuzzer.kernel.spec import Kernel, KernelError
from fuzzer.kernel.xstate import host_xstate_size

INIT = Path(__file__).with_name("init.sh")
ROOT = Path(__file__).resolve().parents[2]  # the repository, at the same path in the guest
BOOT_TIMEOUT = 120.0  # seconds from exec to the ready message (Python starts in ~1.5 s)
HALT_GRACE = 10.0  # seconds a guest that finished gets to power itself off
# Each guest gets an ext4 disk for tmpfile's files: where mkfs.ext4 is found, unless this is
# 0; with 1, a host without mkfs.ext4 is an error
GUEST_FILES_ENV = "MMFUZZ_GUEST_FILES"
FILES_IMAGE_MB = 64
DYING = 5.0  # seconds a guest that closed its channel at boot gets to print its last words


@dataclass(frozen=True)
class Ready:
    release: str
    features: dict[str, object]
    seconds: float  # from starting UML to the ready message
    build: str | None = None  # the guest's `uname -v`; None from a guest that did not say


class Guest:
    """A booted guest; use as a context manager (leaving it halts the guest, always)."""

    def __init__(self, kernel: Kernel, script: str = "") -> None:
        """`script`, a Python file relative to the project, runs in the guest instead of
        the guest's server (`python -m fuzzer.campaign.guest`), with the same set-up."""
        if kernel.uml is None:
            raise ValueError("the host kernel is not a guest")
        if any(c.isspace() for c in script):
            raise ValueError(f"a guest script path without spaces, not {script!r}")
        self.kernel = kernel
        self.script = script
        self.proc: subprocess.Popen[bytes] | None = None
        self.console: ConsoleLog | None = None
        self.channel: Channel | None = None
        self.ready: Ready | None = None
        self._tmp = ""
        self._fds: list[int] = []

    def __enter__(self) -> Guest:
        try:
            self.boot()
        except BaseException:
            self.halt(0)
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.halt(HALT_GRACE if exc is None else 0)

    def boot(self) -> Ready:
        executor_path()  # built here if needed: the guest cannot write its own root
        assert self.kernel.uml is not None
        self._tmp = tempfile.mkdtemp(prefix="mmfuzz-uml-")
        disk = files_disk(self._tmp)
        to_guest_r, to_guest_w = os.pipe()
        from_guest_r, from_guest_w = os.pipe()
        self._fds = [to_guest_w, from_guest_r]
        cmd = [
            str(self.kernel.uml), f"mem={self.kernel.mem_mb}M",
            "rootfstype=hostfs", "rootflags=/", "ro", f"init={INIT}",
            "con=null", "con0=null,fd:1", "ssl=null", f"ssl0=fd:{to_guest_r},fd:{from_guest_w}",
            f"uml_dir={self._tmp}", "oops=panic", "panic_on_warn=1", "printk.time=1",
            f"mmfuzz_root={ROOT}", f"mmfuzz_python={sys.executable}",
            *([f"mmfuzz_script={self.script}"] if self.script else []), *disk,
        ]
        env = {"TMPDIR": self._tmp, "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        start = time.monotonic()
        try:
            self.proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                pass_fds=(to_guest_r, from_guest_w), start_new_session=True, env=env,
                cwd=self._tmp, preexec_fn=_no_core_dumps)
        except OSError as e:
            raise KernelError(f"{self.kernel}: cannot run it: {e.strerror} (a User-Mode Linux "
                              "binary is built with `make ARCH=um linux`)") from None
        finally:
            os.close(to_guest_r)
            os.close(from_guest_w)
        assert self.proc.stdout is not None
        self.console = ConsoleLog(self.proc.stdout)
        self.channel = Channel(from_guest_r, to_guest_w)
        try:
            msg = self.channel.recv(BOOT_TIMEOUT)
        except (ChannelClosed, ChannelTimeout) as e:
            raise KernelError(self._boot_failure(e)) from None
        ready = msg.get("ready")
        if not isinstance(ready, dict):
            raise KernelError(f"{self.kernel}: the guest said {msg!r} instead of being ready")
        features = ready.get("features")
        self.ready = Ready(str(ready.get("release")),
                           features if isinstance(features, dict) else {},
                           time.monotonic() - start,
                           str(ready["build"]) if ready.get("build") else None)
        return self.ready

    def _boot_failure(self, why: Exception) -> str:
        """One line on a guest that did not boot: its cause and fix if the console shows a
        known one (diagnose.py), else the console's last line."""
        if isinstance(why, ChannelClosed) and self.proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(DYING)
            if self.console is not None:
                self.console.wait(1.0)
        text = self.console.text() if self.console else ""
        sources = sorted(glob.glob("/usr/src/linux-source-*.tar.xz"))
        host = Host(host_xstate_size(), sources[-1] if sources else Host.source)
        cause = diagnose(text, host)
        if cause is not None:
            return f"{self.kernel}: {cause}"
        return f"{self.kernel}: the guest did not boot ({why}): {self.last_console_line()}"

    def send(self, message: dict[str, object]) -> None:
        assert self.channel is not None
        try:
            self.channel.send(message)
        except BrokenPipeError:
            raise ChannelClosed("the guest is gone") from None

    def recv(self, timeout: float | None) -> dict[str, object]:
        assert self.channel is not None
        return self.channel.recv(timeout)

    def crash(self, wait: float = 5.0) -> Crash | None:
        """The kernel fault on the console, after up to `wait` s for a dying guest's last words."""
        assert self.console is not None
        if self.proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(wait)
        self.console.wait(0.5 if self.alive() else wait)
        return find_crash(self.console.text())

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def last_console_line(self) -> str:
        text = self.console.text() if self.console else ""
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        return lines[-1] if lines else "no console output"

    def halt(self, grace: float = HALT_GRACE) -> None:
        """Let a guest that finished power itself off; kill whatever is left of it, and clean up."""
        proc = self.proc
        if proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(grace)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)  # UML's own processes are in its group
            proc.wait()
            if self.console is not None:
                self.console.wait(2.0)
            if proc.stdout is not None:
                proc.stdout.close()
        while self._fds:
            with contextlib.suppress(OSError):
                os.close(self._fds.pop())
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = ""


def files_disk(tmp: str) -> list[str]:
    """The kernel arguments that give a guest an ext4 disk for tmpfile's files: a sparse
    image in `tmp`, made by mkfs.ext4 with 4 KiB blocks, as ubd0; init.sh mounts it and
    names it in MMFUZZ_FILES (docs/SEMANTICS.md §21). Made wherever the host has
    mkfs.ext4, unless MMFUZZ_GUEST_FILES=0; MMFUZZ_GUEST_FILES=1 makes a host without it
    an error. Without a disk a guest has no such directory and tmpfile is ENOENT there
    (the campaign's `kernel:` line says `without disk files`)."""
    asked = os.environ.get(GUEST_FILES_ENV, "")
    if asked == "0":
        return []
    mkfs = shutil.which("mkfs.ext4") or shutil.which("mkfs.ext4", path="/usr/sbin:/sbin")
    if mkfs is None:
        if not asked:
            return []
        raise KernelError(f"{GUEST_FILES_ENV}={asked} needs mkfs.ext4 on the host "
                          "(Debian: e2fsprogs)")
    image = os.path.join(tmp, "files.ext4")
    with open(image, "wb") as f:
        f.truncate(FILES_IMAGE_MB << 20)
    done = subprocess.run([mkfs, "-q", "-F", "-b", "4096", image], capture_output=True,
                          text=True, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise KernelError(f"mkfs.ext4 of the guest's disk failed: {last}")
    return [f"ubd0={image}"]


def _no_core_dumps() -> None:
    # A panicking UML aborts; its core would land in our temporary directory.
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
