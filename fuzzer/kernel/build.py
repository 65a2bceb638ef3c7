"""Building a User-Mode Linux kernel to test: `mmfuzz kernels build SRC`.

SRC is a kernel source tree or a tarball of one (Debian's
/usr/src/linux-source-6.1.tar.xz, say). It is extracted (or copied) into a
build folder in the cache, once per source and patch series, so a second
build with the same inputs is an incremental `make`. There the patches are
applied in order, then the host-compatibility fix when the tree needs it:
UML trees that hard-code the size of the host's FP register block
(HOST_FP_SIZE in arch/x86/um/user-offsets.c) cannot boot on CPUs whose XSAVE
area is larger (AVX-512 with AMX: 11008 bytes), so patches/uml-host-xstate-
size.patch makes the size the host's, read at boot, as upstream does (its
6.12 form, uml-host-xstate-size-6.12.patch, where have_xstate_support became
static: xstate_patch picks the one for a tree). The
kernel is configured from `defconfig` plus what the guests and the model need
(CONFIGS), built with `make ARCH=um linux` and copied out under its release.

The pure parts (what a tree needs, which tools are missing, the cache's
location, a name's validity) are functions of their inputs; `build` does the
work, each child process with a time budget.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from fuzzer.kernel.spec import KernelError

PATCHES = Path(__file__).with_name("patches")
XSTATE_PATCH = PATCHES / "uml-host-xstate-size.patch"  # 6.1: have_xstate_support is global
XSTATE_PATCH_612 = PATCHES / "uml-host-xstate-size-6.12.patch"  # 6.12: it is static
XSTATE_PATCHES = (XSTATE_PATCH, XSTATE_PATCH_612)
STATIC_XSTATE = re.compile(r"^static\s+int\s+have_xstate_support\s*;", re.M)
USER_OFFSETS = "arch/x86/um/user-offsets.c"
REGISTERS = "arch/x86/um/os-Linux/registers.c"
# No DWARF: a faster build and a binary a third the size (crash titles come from kallsyms).
NO_DEBUG = ("DEBUG_INFO_DWARF_TOOLCHAIN_DEFAULT", "DEBUG_INFO_DWARF4", "DEBUG_INFO_DWARF5")
STACK_ORDER = 3  # with the XSTATE patch: its register arrays sit at the bottom of the stack

# Options the guests rely on, on top of defconfig (which has them all in 6.1): the
# host's root over hostfs, the console and the result channel (null and serial
# lines; fd channels are always there), /proc with smaps and pagemap, tmpfs
# scratch space and memfd, madvise, devtmpfs, sysrq to halt.
CONFIGS = ("HOSTFS", "PROC_FS", "PROC_PAGE_MONITOR", "SYSFS", "TMPFS", "SHMEM", "MEMFD_CREATE",
           "ADVISE_SYSCALLS", "DEVTMPFS", "MAGIC_SYSRQ", "NULL_CHAN", "SSL", "STDERR_CONSOLE")

# The tools a build runs, and the Debian package that has each.
TOOLS = {"make": "make", "gcc": "gcc", "ld": "binutils", "bc": "bc", "flex": "flex",
         "bison": "bison", "perl": "perl", "patch": "patch", "tar": "tar"}
DECOMPRESSORS = {".xz": ("xz", "xz-utils"), ".gz": ("gzip", "gzip"), ".bz2": ("bzip2", "bzip2"),
                 ".zst": ("zstd", "zstd")}
TARBALL = re.compile(r"\.(tar(\.(xz|gz|bz2|zst))?|tgz|txz)$")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,40}$")
HARD_CODED = re.compile(r"DEFINE_LONGS\(\s*HOST_FP_SIZE\s*,\s*\d+\s*\)")

CONFIG_BUDGET = 300.0  # seconds for extracting, patching or configuring
BUILD_BUDGET = 4 * 3600.0  # seconds for `make linux` (about 8 min on 2 cores)


class BuildError(KernelError):
    """A kernel build that could not start or did not finish; one line, naming what to do."""


@dataclass(frozen=True)
class Built:
    path: Path  # the UML binary
    release: str  # `uname -r` in its guests, e.g. 6.1.192-hostfp
    seconds: float  # wall-clock time of the whole build
    log: Path  # make's output
    fixed_xstate: bool  # the host-compatibility patch was applied


def needs_xstate_fix(user_offsets: str | None, registers: str | None) -> bool:
    """Whether a tree (the text of its two files, None where absent) still fixes the size of
    the host's FP register block at build time, and lacks a run-time host_fp_size."""
    if user_offsets is None or registers is None:
        return False  # not an x86 UML tree of the kind the patch is for
    return bool(HARD_CODED.search(user_offsets)) and "host_fp_size" not in registers


def xstate_patch(registers: str) -> Path:
    """The form of the XSTATE fix that applies to a tree needing it (the text of its
    registers.c): the 6.12 one where have_xstate_support is static, else the 6.1 one."""
    return XSTATE_PATCH_612 if STATIC_XSTATE.search(registers) else XSTATE_PATCH


def missing_tools(src: Path, which: Callable[[str], str | None] = shutil.which) -> list[str]:
    """The Debian packages to install before building from `src` (none: all there)."""
    tools = dict(TOOLS)
    if is_tarball(src):
        for suffix, (tool, package) in DECOMPRESSORS.items():
            if src.name.endswith(suffix) or (suffix == ".gz" and src.name.endswith(".tgz")) \
                    or (suffix == ".xz" and src.name.endswith(".txz")):
                tools[tool] = package
    return sorted({package for tool, package in tools.items() if which(tool) is None})


def is_tarball(src: Path) -> bool:
    return bool(TARBALL.search(src.name))


def cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """Where builds go: $MMFUZZ_CACHE/kernels, else $XDG_CACHE_HOME/mmfuzz/kernels,
    else ~/.cache/mmfuzz/kernels (never inside a clone)."""
    env = os.environ if env is None else env
    if env.get("MMFUZZ_CACHE"):
        return Path(env["MMFUZZ_CACHE"]).expanduser() / "kernels"
    base = env.get("XDG_CACHE_HOME") or str(Path(env.get("HOME") or "~") / ".cache")
    return Path(base).expanduser() / "mmfuzz" / "kernels"


def check_name(name: str) -> None:
    if not NAME.match(name):
        raise BuildError(f"--name {name!r}: letters, digits and . _ + - only "
                         "(it ends the kernel release, e.g. 6.1.192-NAME)")


def source_key(src: Path, patches: Sequence[Path]) -> str:
    """The build folder's name: the source's name and a digest of what goes into the tree."""
    digest = hashlib.sha256()
    st = src.stat()
    digest.update(f"{src.resolve()}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
    if src.is_dir():  # a tree changes inside: its newest file says when
        digest.update(f"{_newest(src)}\0".encode())
    digest.update(repr((CONFIGS, NO_DEBUG, STACK_ORDER)).encode())
    for p in (*patches, *XSTATE_PATCHES):
        digest.update(p.read_bytes() + b"\0")
    stem = TARBALL.sub("", src.name) or "linux"
    return f"{stem}-{digest.hexdigest()[:12]}"


def build(src: Path, patches: Sequence[Path] = (), name: str = "mmfuzz",
          out: Path | None = None, cache: Path | None = None, jobs: int | None = None,
          say: Callable[[str], object] = lambda line: None) -> Built:
    """Prepare the tree (once), build `linux`, copy it to `out`; BuildError, one line, if not."""
    start = time.monotonic()
    check_name(name)
    for p in patches:
        if not p.is_file():
            raise BuildError(f"--patch {p}: no such file")
    if not src.exists():
        raise BuildError(f"{src}: no such kernel source tree or tarball "
                         "(Debian: apt-get install linux-source-6.1 for "
                         "/usr/src/linux-source-6.1.tar.xz)")
    if not src.is_dir() and not is_tarball(src):
        raise BuildError(f"{src}: neither a kernel source tree nor a tarball (.tar.xz, ...)")
    if src.is_dir() and not (src / "Makefile").is_file():
        raise BuildError(f"{src}: not a kernel source tree (no Makefile)")
    need = missing_tools(src)
    if need:
        raise BuildError(f"missing build tools: apt-get install {' '.join(need)}")
    cache = cache or cache_dir()
    tree = cache / "build" / source_key(src, patches)
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise BuildError(f"cannot create the cache {cache}: {e.strerror} "
                         "(set MMFUZZ_CACHE or --cache)") from None
    ready = tree / ".mmfuzz-prepared"
    if not ready.exists():
        fixed = _prepare(src, patches, tree, say)
        origin = " ".join(str(p.resolve()) for p in (src, *patches))
        ready.write_text(("xstate-fix" if fixed else "as-is") + f"\n{origin}\n")
        _drop_older(tree, origin)
    else:
        say(f"reusing the prepared tree {tree}")
    fixed = ready.read_text().startswith("xstate-fix")
    log = tree / "build.log"
    say(f"building (log: {log})")
    jobs = jobs or os.cpu_count() or 1
    with log.open("w") as f:
        code = _run(["make", "ARCH=um", f"-j{jobs}", f"LOCALVERSION=-{name}", "linux"], tree,
                    BUILD_BUDGET, f)
    if code != 0:
        raise BuildError(f"the kernel build failed ({_last_error(log)}): see {log}")
    release = _capture(["make", "-s", "ARCH=um", f"LOCALVERSION=-{name}", "kernelrelease"], tree)
    out = out or cache / f"linux-{release}"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    shutil.copy2(tree / "linux", tmp)
    tmp.replace(out)
    return Built(out.absolute(), release, time.monotonic() - start, log, fixed)


def _prepare(src: Path, patches: Sequence[Path], tree: Path,
             say: Callable[[str], object]) -> bool:
    """Extract or copy, patch, configure; whether the XSTATE fix went in."""
    if tree.exists():
        shutil.rmtree(tree)  # a preparation that did not finish
    tree.parent.mkdir(parents=True, exist_ok=True)
    part = Path(tempfile.mkdtemp(prefix=f".{tree.name}.", dir=tree.parent))
    try:
        if src.is_dir():
            say(f"copying {src}")
            _step(["cp", "-a", f"{src}/.", str(part)], part, f"cannot copy {src}")
        else:
            say(f"extracting {src}")
            _step(["tar", "-xf", str(src.absolute()), "--strip-components=1"], part,
                  f"cannot extract {src}")
        if not (part / "Makefile").is_file() or not (part / "arch" / "um").is_dir():
            raise BuildError(f"{src}: not a Linux source tree with arch/um")
        for p in patches:
            apply_patch(part, p, f"--patch {p.name}")
        fixed = needs_xstate_fix(_read(part / USER_OFFSETS), _read(part / REGISTERS))
        if fixed:
            fix = xstate_patch(_read(part / REGISTERS) or "")
            say(f"applying {fix.name} (this tree fixes the host's XSTATE size "
                "at build time)")
            apply_patch(part, fix, fix.name)
        say("configuring (defconfig + " + ", ".join(CONFIGS) + ", no debug info)")
        _step(["make", "ARCH=um", "defconfig"], part, "make ARCH=um defconfig failed")
        flags = [a for c in CONFIGS for a in ("--enable", c)]
        flags += [a for c in NO_DEBUG for a in ("--disable", c)] + ["--enable", "DEBUG_INFO_NONE"]
        if fixed:
            flags += ["--set-val", "KERNEL_STACK_ORDER", str(STACK_ORDER)]
        _step(["scripts/config", "--file", ".config", *flags], part, "scripts/config failed")
        _step(["make", "ARCH=um", "olddefconfig"], part, "make ARCH=um olddefconfig failed")
        config = (part / ".config").read_text()
        lost = [c for c in CONFIGS if f"CONFIG_{c}=y" not in config]
        if lost:
            raise BuildError(f"{src}: this kernel cannot be configured with "
                             f"{', '.join('CONFIG_' + c for c in lost)}, which the guests need")
        part.rename(tree)
        return fixed
    finally:
        if part.exists():
            shutil.rmtree(part, ignore_errors=True)


def _newest(tree: Path) -> int:
    """The newest modification time (ns) of a file in a tree, .git aside."""
    newest = 0
    for folder, dirs, files in os.walk(tree):
        dirs[:] = [d for d in dirs if d != ".git"]
        for f in files:
            with contextlib.suppress(OSError):
                newest = max(newest, os.lstat(os.path.join(folder, f)).st_mtime_ns)
    return newest


def _drop_older(tree: Path, origin: str) -> None:
    """Remove the build folders of earlier states of the same source and patch files (each
    is gigabytes); other series from the same source stay."""
    for other in tree.parent.iterdir():
        marker = other / ".mmfuzz-prepared"
        if other != tree and marker.is_file() and \
                marker.read_text().splitlines()[1:2] == [origin]:
            shutil.rmtree(other, ignore_errors=True)


def apply_patch(tree: Path, patch: Path, label: str) -> None:
    """Apply `patch` (-p1) to `tree`, or raise BuildError naming it (`label`) and touch nothing."""
    with tempfile.TemporaryFile("w+") as f:
        for dry in (True, False):
            cmd = ["patch", "-p1", "--forward", "--batch", "-i", str(patch.absolute())]
            code = _run([*cmd, "--dry-run"] if dry else cmd, tree, CONFIG_BUDGET, f)
            if code != 0:
                f.seek(0)
                why = next((ln.strip() for ln in f if "FAILED" in ln or "can't find" in ln
                            or "Reversed" in ln or "malformed" in ln), "")
                raise BuildError(f"{label} does not apply to this tree"
                                 f"{': ' + why if why else ''}")


def _step(cmd: list[str], cwd: Path, what: str) -> None:
    with tempfile.TemporaryFile("w+") as f:
        if _run(cmd, cwd, CONFIG_BUDGET, f) != 0:
            f.seek(0)
            lines = [ln.strip() for ln in f if ln.strip()]
            raise BuildError(f"{what}{': ' + lines[-1] if lines else ''}")


def _run(cmd: list[str], cwd: Path, budget: float, log: IO[Any]) -> int:
    """Run cmd with its output into `log` (a file); a command over budget is killed."""
    try:
        proc = subprocess.Popen(cmd, cwd=cwd, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    except OSError as e:
        raise BuildError(f"cannot run {cmd[0]}: {e.strerror}") from None
    try:
        return int(proc.wait(budget))
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        proc.wait()
        raise BuildError(f"{' '.join(cmd[:2])} took more than {budget:.0f} s") from None
    except BaseException:
        os.killpg(proc.pid, 9)  # interrupted: make and its compilers go too
        proc.wait()
        raise


def _capture(cmd: list[str], cwd: Path) -> str:
    try:
        done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True,
                              timeout=CONFIG_BUDGET, check=True)
    except (subprocess.SubprocessError, OSError) as e:
        raise BuildError(f"{' '.join(cmd)} failed: {e}") from None
    return done.stdout.strip().splitlines()[-1]


def _read(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return None


def _last_error(log: Path) -> str:
    lines = (_read(log) or "").splitlines()
    errors = [ln.strip() for ln in lines if re.search(r"\berror\b", ln, re.I)]
    return (errors or [ln.strip() for ln in lines if ln.strip()] or ["no output"])[0][:200]
