"""Kernels built to test and guests that cannot boot: `mmfuzz kernels build`'s pure parts
(what a tree needs, the XSTATE patch on real 6.1 and 6.12 trees' files, tools, the cache,
names), the boot diagnosis as a table of consoles, and the CLI's one-line errors.

Building a kernel takes minutes and is not part of the suite; .ci/run builds one
where Debian's cannot boot, and the UML tests then run on it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fuzzer.cli.app import app
from fuzzer.kernel.build import (
    REGISTERS,
    USER_OFFSETS,
    XSTATE_PATCH,
    XSTATE_PATCH_612,
    XSTATE_PATCHES,
    BuildError,
    apply_patch,
    cache_dir,
    check_name,
    missing_tools,
    needs_xstate_fix,
    source_key,
    xstate_patch,
)
from fuzzer.kernel.diagnose import Host, diagnose
from fuzzer.kernel.spec import Kernel, KernelError
from fuzzer.kernel.uml import Guest
from tests.uml import UML

TREE = Path(__file__).parent / "fixtures" / "uml" / "xstate-6.1"  # the two files, from 6.1.192
TREE_612 = TREE.with_name("xstate-6.12")  # the same two, from 6.12.118
runner = CliRunner()


def _tree(tmp_path: Path, src: Path = TREE) -> Path:
    tree = tmp_path / "linux"
    shutil.copytree(src, tree)
    return tree


def _needs(tree: Path) -> bool:
    return needs_xstate_fix((tree / USER_OFFSETS).read_text(), (tree / REGISTERS).read_text())


# -- the XSTATE patch --------------------------------------------------------

UPSTREAM_OFFSETS = "void foo(void)\n{\n\tDEFINE_LONGS(HOST_BX, RBX);\n}\n"  # size gone


@pytest.mark.parametrize(("user_offsets", "registers", "needs"), [
    ("#ifdef FP_XSTATE_MAGIC1\n\tDEFINE_LONGS(HOST_FP_SIZE, 2696);\n", "int x;", True),
    ("\tDEFINE_LONGS( HOST_FP_SIZE , 2696 )", "", True),
    # patched: the array is larger, the size in use is read at boot
    ("\tDEFINE_LONGS(HOST_FP_SIZE, 12288);\n", "unsigned long host_fp_size = 0;", False),
    (UPSTREAM_OFFSETS, "unsigned long host_fp_size;", False),
    ("\tDEFINE(HOST_FP_SIZE, sizeof(struct _fpstate) / sizeof(unsigned long));", "", False),
    (None, "int x;", False),  # not an x86 UML tree
    ("\tDEFINE_LONGS(HOST_FP_SIZE, 2696);", None, False),
])
def test_which_trees_need_the_xstate_fix(user_offsets: str | None, registers: str | None,
                                         needs: bool) -> None:
    assert needs_xstate_fix(user_offsets, registers) is needs


def test_the_xstate_patch_fixes_a_61_tree_once(tmp_path: Path) -> None:
    tree = _tree(tmp_path)
    assert _needs(tree)
    apply_patch(tree, XSTATE_PATCH, XSTATE_PATCH.name)
    assert not _needs(tree)
    registers = (tree / REGISTERS).read_text()
    # the size every transfer uses is the host's, read by a GETREGSET at boot
    assert registers.count("iov.iov_len = host_fp_size;") == 2
    assert "host_fp_size = iov.iov_len;" in registers
    assert "DEFINE_LONGS(HOST_FP_SIZE, 12288);" in (tree / USER_OFFSETS).read_text()
    before = {p: p.read_text() for p in (tree / USER_OFFSETS, tree / REGISTERS)}
    with pytest.raises(BuildError, match=r"^uml-host-xstate-size.patch does not apply"):
        apply_patch(tree, XSTATE_PATCH, XSTATE_PATCH.name)
    assert {p: p.read_text() for p in before} == before  # a patch that fails touches nothing


@pytest.mark.parametrize(("src", "fix", "other"), [
    (TREE, XSTATE_PATCH, XSTATE_PATCH_612),
    (TREE_612, XSTATE_PATCH_612, XSTATE_PATCH),
])
def test_each_release_gets_the_form_of_the_fix_that_applies(tmp_path: Path, src: Path,
                                                             fix: Path, other: Path) -> None:
    tree = _tree(tmp_path, src)
    assert _needs(tree)
    assert xstate_patch((tree / REGISTERS).read_text()) == fix
    with pytest.raises(BuildError, match=rf"^{other.name} does not apply"):
        apply_patch(tree, other, other.name)  # 6.12 made have_xstate_support static
    apply_patch(tree, fix, fix.name)
    assert not _needs(tree)
    registers = (tree / REGISTERS).read_text()
    assert registers.count("iov.iov_len = host_fp_size;") == 2
    assert "host_fp_size = iov.iov_len;" in registers
    assert "DEFINE_LONGS(HOST_FP_SIZE, 12288);" in (tree / USER_OFFSETS).read_text()


def test_both_forms_of_the_fix_make_the_same_change() -> None:
    def added(p: Path) -> list[str]:
        return [ln for ln in p.read_text().splitlines() if ln.startswith("+") and
                not ln.startswith("+++")]
    assert added(XSTATE_PATCH) == added(XSTATE_PATCH_612)
    assert set(XSTATE_PATCHES) == {XSTATE_PATCH, XSTATE_PATCH_612}


def test_a_patch_that_does_not_apply_is_named(tmp_path: Path) -> None:
    tree = _tree(tmp_path)
    bad = tmp_path / "fix.patch"
    bad.write_text("--- a/mm/mprotect.c\n+++ b/mm/mprotect.c\n@@ -1,1 +1,1 @@\n-old\n+new\n")
    with pytest.raises(BuildError, match=r"^--patch fix.patch does not apply to this tree"):
        apply_patch(tree, bad, f"--patch {bad.name}")


def test_a_tree_edited_since_gets_a_new_build_folder(tmp_path: Path) -> None:
    tree = _tree(tmp_path)
    key = source_key(tree, [])
    assert key.startswith("linux-") and source_key(tree, []) == key
    assert source_key(tree, [XSTATE_PATCH]) != key  # another series, another folder
    registers = tree / REGISTERS
    registers.write_text(registers.read_text() + "/* edited */\n")
    os.utime(registers, ns=(registers.stat().st_atime_ns, registers.stat().st_mtime_ns + 10**9))
    assert source_key(tree, []) != key


# -- tools, cache, names ------------------------------------------------------

@pytest.mark.parametrize(("src", "absent", "packages"), [
    ("/usr/src/linux-source-6.1.tar.xz", set(), []),
    ("/usr/src/linux-source-6.1.tar.xz", {"bc", "flex", "bison"}, ["bc", "bison", "flex"]),
    ("/usr/src/linux-source-6.1.tar.xz", {"xz", "gcc"}, ["gcc", "xz-utils"]),
    ("/usr/src/linux", {"xz"}, []),  # a tree needs no decompressor
    ("linux-6.12.tar.gz", {"gzip", "ld"}, ["binutils", "gzip"]),
])
def test_missing_tools_name_their_debian_packages(src: str, absent: set[str],
                                                  packages: list[str]) -> None:
    assert missing_tools(Path(src), lambda tool: None if tool in absent else f"/usr/bin/{tool}") \
        == packages


@pytest.mark.parametrize(("env", "cache"), [
    ({"MMFUZZ_CACHE": "/var/cache/mmfuzz", "XDG_CACHE_HOME": "/x"}, "/var/cache/mmfuzz/kernels"),
    ({"XDG_CACHE_HOME": "/x", "HOME": "/home/u"}, "/x/mmfuzz/kernels"),
    ({"HOME": "/home/u"}, "/home/u/.cache/mmfuzz/kernels"),
    ({"MMFUZZ_CACHE": "", "HOME": "/root"}, "/root/.cache/mmfuzz/kernels"),
])
def test_the_cache_is_outside_the_clone(env: dict[str, str], cache: str) -> None:
    assert cache_dir(env) == Path(cache)


@pytest.mark.parametrize(("name", "ok"), [
    ("hostfp", True), ("fix-1.2", True), ("a_b+c", True),
    ("", False), ("a b", False), ("-x", False), ("a/b", False), ("x" * 42, False),
])
def test_names(name: str, ok: bool) -> None:
    if ok:
        check_name(name)
    else:
        with pytest.raises(BuildError, match=r"^--name"):
            check_name(name)


# -- a guest that cannot boot: the cause and the fix, from its console --------

AVX512 = Host(xstate=11008, source="/usr/src/linux-source-6.1.tar.xz")
XSAVE_CONSOLE = """\
Core dump limits :
	soft - 0
	hard - NONE
Checking that ptrace can change system call numbers...OK
Checking syscall emulation for ptrace...OK
Checking environment variables for a tempdir...none found
Checking if /dev/shm is on tmpfs...OK
Checking PROT_EXEC mmap in /dev/shm...OK
[    0.000000] Linux version 6.1.176 (Debian 6.1um4+b13)
[    1.750000] Run /work/main/fuzzer/kernel/init.sh as init process
[    1.750000] userspace - ptrace set fp regs failed, errno = 14
[    1.760000] Kernel panic - not syncing: Attempted to kill init! exitcode=0x0000000b
[    1.760000] CPU: 0 PID: 1 Comm: init.sh Not tainted 6.1.176 #1
[    1.760000] Stack:
[    1.760000]  [<6002c0dd>] new_thread_handler+0xae/0xb0
"""


@pytest.mark.parametrize(("console", "host", "expected"), [
    (XSAVE_CONSOLE, AVX512,
     "this UML build cannot save FP registers on this CPU (this CPU's XSAVE area is 11008 "
     "bytes, the build assumes 2696): build one with mmfuzz kernels build "
     "/usr/src/linux-source-6.1.tar.xz"),
    (XSAVE_CONSOLE, Host(None, "/usr/src/linux-source-6.12.tar.xz"),
     "this UML build cannot save FP registers on this CPU (the build assumes an XSAVE area of "
     "2696 bytes): build one with mmfuzz kernels build /usr/src/linux-source-6.12.tar.xz"),
    ("[ 0.9] copy_context_skas0 : put_fp_registers failed, pid = 12, err = -14\n", AVX512,
     "this UML build cannot save FP registers on this CPU (this CPU's XSAVE area is 11008 "
     "bytes, the build assumes 2696): build one with mmfuzz kernels build "
     "/usr/src/linux-source-6.1.tar.xz"),
    ("Kernel panic - not syncing: the host's XSTATE takes 16384 bytes, more than the 12288 "
     "this UML build holds\n", AVX512,
     "this CPU's XSAVE area (16384 bytes) is larger than the 12288 the UML build holds: raise "
     "HOST_FP_SIZE in arch/x86/um/user-offsets.c and rebuild"),
    ("Checking PROT_EXEC mmap in /tmp...Operation not permitted\n/tmp must be not mounted "
     "noexec\n", AVX512,
     "UML cannot map executable memory in its temporary directory (a noexec TMPDIR?): let it "
     "use one mounted exec"),
    ("Checking that ptrace can change system call numbers...check_ptrace : ptrace failed: "
     "Operation not permitted\n", AVX512,
     "the host does not let UML use ptrace here (a container or seccomp policy?): allow ptrace "
     "(e.g. podman/docker --cap-add SYS_PTRACE --security-opt seccomp=unconfined) or boot it "
     "outside"),
    ("[ 0.4] Kernel panic - not syncing: Out of memory and no killable processes...\n", AVX512,
     "the guest ran out of memory at boot: give it more with --guest-mem"),
    ("[ 0.0] Kernel panic - not syncing: Failed to allocate 12845056 bytes for node 0 memory "
     "map\n", AVX512, "the guest ran out of memory at boot: give it more with --guest-mem"),
    # mem=20M under load: a self-test thread that could not start warns before any
    # allocation fails, and panic_on_warn stops the boot; the memory map shows why.
    ("[ 0.0] Memory: 7604K/114824K available (6634K kernel code, ...)\n[ 1.5] WARNING: CPU: 0 "
     "PID: 1 at crypto/api.c:170 crypto_wait_for_test+0xa4/0xb7\n[ 1.5] Kernel panic - not "
     "syncing: kernel: panic_on_warn set ...\n", AVX512,
     "the guest ran out of memory at boot: give it more with --guest-mem"),
    ("[ 0.0] Memory: 52000K/114824K available\n[ 0.2] Kernel panic - not syncing: "
     "stack-protector: Kernel stack is corrupted in: x\n", AVX512,
     "the guest kernel panicked at boot: stack-protector: Kernel stack is corrupted in: x"),
    ("[ 0.5] VFS: Unable to mount root fs on unknown-block(0,0)\n[ 0.5] Kernel panic - not "
     "syncing: VFS: Unable to mount root fs on unknown-block(0,0)\n", AVX512,
     "the kernel cannot mount the host's root over hostfs: it needs CONFIG_HOSTFS=y "
     "(mmfuzz kernels build sets it)"),
    ("[ 0.6] Requested init /x/init.sh failed (error -13).\n[ 0.6] Kernel panic - not syncing: "
     "Requested init /x/init.sh failed (error -13).\n", AVX512,
     "the guest could not start its init (fuzzer/kernel/init.sh) over hostfs: the project must "
     "be readable at the same path by the guest (no noexec mount, no private /tmp)"),
    ("[ 2.0] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000100\n", AVX512,
     "the guest's init died at boot (see the lines before it on the console)"),
    ("[ 0.2] Kernel panic - not syncing: stack-protector: Kernel stack is corrupted in: x\n",
     AVX512, "the guest kernel panicked at boot: stack-protector: Kernel stack is corrupted in: "
     "x"),
    ("[ 1.0] Run /x/init.sh as init process\nmmfuzz-init: cannot mount /proc\n", AVX512, None),
    ("", AVX512, None),
])
def test_boot_diagnosis(console: str, host: Host, expected: str | None) -> None:
    assert diagnose(console, host) == expected


# -- the CLI: one line and exit status 2 for what a user can get wrong ---------

@pytest.mark.parametrize(("args", "message"), [
    (["kernels", "build", "/nonexistent/linux.tar.xz"],
     "mmfuzz: error: /nonexistent/linux.tar.xz: no such kernel source tree or tarball "
     "(Debian: apt-get install linux-source-6.1 for /usr/src/linux-source-6.1.tar.xz)"),
    (["kernels", "build", "/etc/hostname"],
     "mmfuzz: error: /etc/hostname: neither a kernel source tree nor a tarball (.tar.xz, ...)"),
    (["kernels", "build", "/etc"], "mmfuzz: error: /etc: not a kernel source tree (no Makefile)"),
    (["kernels", "build", "/etc", "--name", "my fix"],
     "mmfuzz: error: --name 'my fix': letters, digits and . _ + - only (it ends the kernel "
     "release, e.g. 6.1.192-NAME)"),
    (["kernels", "build", str(TREE), "--patch", "/nonexistent.patch"],
     "mmfuzz: error: --patch /nonexistent.patch: no such file"),
    (["kernels", "boot", "host"],
     "mmfuzz: error: kernels boot: give a User-Mode Linux kernel, uml:PATH"),
    (["kernels", "boot", "uml:/nonexistent/linux"],
     "mmfuzz: error: --kernel uml:/nonexistent/linux: /nonexistent/linux: no such file (build "
     "one with `make ARCH=um linux`, or install user-mode-linux for /usr/bin/linux)"),
    (["kernels", "6.1.176"], "mmfuzz: error: give two builds to compare, or none to list them"),
])
def test_cli_errors_are_one_line(args: list[str], message: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert result.output.strip() == message


def test_a_uml_path_that_is_no_program(tmp_path: Path) -> None:
    text = tmp_path / "linux"
    text.write_text("not a kernel\n")
    result = runner.invoke(app, ["kernels", "boot", f"uml:{text}"])
    assert result.exit_code == 2
    assert result.output.strip() == (f"mmfuzz: error: --kernel uml:{text}: {text}: not an "
                                     "executable file")
    text.chmod(0o755)
    result = runner.invoke(app, ["kernels", "boot", f"uml:{text}"])
    assert result.exit_code == 2
    assert result.output.strip() == (f"mmfuzz: error: uml:{text}: cannot run it: Exec format "
                                     "error (a User-Mode Linux binary is built with `make "
                                     "ARCH=um linux`)")


@pytest.mark.uml
def test_a_guest_that_cannot_boot_says_why() -> None:
    """A real guest with too little memory for its own memory map (--guest-mem stops at 64
    MiB; the library does not): the one line names the cause and the fix."""
    with pytest.raises(KernelError) as failed, Guest(Kernel(UML, mem_mb=20)):
        pass
    assert str(failed.value) == (f"uml:{UML}: the guest ran out of memory at boot: give it more "
                                 "with --guest-mem")


@pytest.mark.uml
def test_kernels_boot_says_the_release_and_boot_time() -> None:
    result = runner.invoke(app, ["kernels", "boot", f"uml:{UML}"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"uml:{UML}: booted 6.1.")
    assert result.output.rstrip().endswith(" s")
