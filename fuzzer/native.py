"""The hot pure layers compiled with mypyc: which modules, their build, and the switch back.

The modules below (the smaps parser, the model, the oracle's comparison, the
semantic coverage a campaign computes for every step, and a campaign's programs:
their calls, their text, the generator and the mutator) are
compiled to C extensions by `native.main()` (`make setup` runs it)
and placed beside their sources, where the import system prefers them. The
Python sources stay the specification; the interpreted modules are used
instead of the compiled ones when

- `MMFUZZ_PURE=1` is set (a campaign sets it for workers whose feedback is the
  model's lines: Atheris instruments Python code only),
- or the sources changed since the build (a stamp of their hashes says so),
- or nothing was built.

It is one group: compiled modules call each other's classes natively, so either
all of them load compiled or none does. The switch must act before any of them
is imported; `fuzzer/__init__.py` calls `select()` first thing.
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
PURE_ENV = "MMFUZZ_PURE"
GROUP = "fuzzer.compiled"  # the shared library: fuzzer/compiled__mypyc.*.so
STAMP = ROOT / "compiled.stamp"  # the sources' digest at the last build
MODULES = (
    "fuzzer.snapshot.parse",
    "fuzzer.model.features",
    "fuzzer.model.state",
    "fuzzer.model.pages",
    "fuzzer.model.vmas",
    "fuzzer.model.calls",
    "fuzzer.model.madvise",
    "fuzzer.model.memfd",
    "fuzzer.model.mlockall",
    "fuzzer.model.mlocked",
    "fuzzer.model.mremap",
    "fuzzer.model.mseal",
    "fuzzer.model.pmadvise",
    "fuzzer.model.pmd",
    "fuzzer.model.world",
    "fuzzer.oracle.kind",
    "fuzzer.oracle.title",
    "fuzzer.oracle.views",
    "fuzzer.oracle.compare",
    "fuzzer.check.coverage",
    "fuzzer.prog.program",
    "fuzzer.prog.text",
    "fuzzer.prog.choices",
    "fuzzer.prog.generate",
    "fuzzer.prog.mutate",
)

_why_pure = ""  # set by select(): why the interpreted modules are used, if they are


def sources() -> list[Path]:
    return [ROOT.parent / (name.replace(".", "/") + ".py") for name in MODULES]


def digest() -> str:
    """One hash of every compiled module's source (what the stamp records)."""
    h = hashlib.sha256()
    for path in sources():
        h.update(path.read_bytes())
    return h.hexdigest()


def built() -> bool:
    return any(ROOT.glob("compiled__mypyc.*"))


def select() -> None:
    """Keep the compiled modules out of the import system when they must not be used."""
    global _why_pure
    if os.environ.get(PURE_ENV, "") not in ("", "0"):
        _why_pure = f"{PURE_ENV} is set"
    elif not built():
        _why_pure = "not built (make setup)"
    elif not up_to_date():
        _why_pure = "the sources changed since the build (make setup)"
    else:
        return
    _prefer_source()


def require_pure() -> None:
    """From now on, import the interpreted modules (Atheris instruments Python code only);
    an error if a compiled one is loaded already."""
    global _why_pure
    if compiled():
        raise RuntimeError(f"compiled modules already loaded: {', '.join(compiled())}")
    if not _why_pure:
        _why_pure = "instrumented"
        _prefer_source()


def _prefer_source() -> None:
    """Directories under fuzzer/ are searched for source and bytecode only (no extensions)."""
    loaders = [(importlib.machinery.SourceFileLoader, importlib.machinery.SOURCE_SUFFIXES),
               (importlib.machinery.SourcelessFileLoader, importlib.machinery.BYTECODE_SUFFIXES)]
    hook = importlib.machinery.FileFinder.path_hook(*loaders)

    def finder(path: str) -> importlib.abc.PathEntryFinder:
        if Path(path).resolve().is_relative_to(ROOT):
            return hook(path)
        raise ImportError("not a directory of fuzzer")  # the next hook takes it

    sys.path_hooks.insert(0, finder)
    for path in list(sys.path_importer_cache):
        if Path(path).resolve().is_relative_to(ROOT):
            del sys.path_importer_cache[path]


def compiled() -> list[str]:
    """The modules of MODULES that are loaded from a compiled extension now."""
    out = []
    for name in MODULES:
        module = sys.modules.get(name)
        origin = getattr(getattr(module, "__spec__", None), "origin", None) or ""
        if origin.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES)):
            out.append(name)
    return out


def describe() -> str:
    """Which hot modules this process runs, for the benchmarks' output."""
    for name in MODULES:  # import them all, so that the answer is not a guess
        __import__(name)
    done = compiled()
    if len(done) == len(MODULES):
        return f"compiled (mypyc, {len(done)} modules)"
    if not done:
        return f"interpreted ({_why_pure or 'not compiled'})"
    return f"partly compiled ({len(done)} of {len(MODULES)} modules)"


def up_to_date() -> bool:
    return built() and STAMP.exists() and STAMP.read_text().strip() == digest()


def build() -> None:
    """Compile MODULES beside their sources (mypyc's C and objects go to build/); write the
    stamp."""
    from mypyc.build import mypycify  # the dev dependencies' mypy ships mypyc
    from setuptools import setup  # type: ignore[import-untyped]

    os.chdir(ROOT.parent)
    STAMP.unlink(missing_ok=True)
    paths = [str(p.relative_to(ROOT.parent)) for p in sources()]
    out = Path("build/native")
    setup(name="mmfuzz-compiled", script_args=["--quiet", "build_ext", "--build-lib", str(out)],
          ext_modules=mypycify(paths, group_name=GROUP, opt_level="3"))
    # Renamed into place, never rewritten: a running process keeps the files it mapped.
    for lib in out.rglob("*.so"):
        os.replace(lib, lib.relative_to(out))
    STAMP.write_text(digest() + "\n")


def stale(root: Path = ROOT, modules: tuple[str, ...] = MODULES) -> list[Path]:
    """Compiled modules under `root` that are not in `modules` (a build before one was
    taken off the list): the import system would still prefer them to their source, and
    their group library no longer defines them."""
    package = root.name
    wanted = set(modules)
    found = []
    for lib in root.rglob("*.so"):
        if lib.name.startswith(("compiled__mypyc", "_stepcalls")):
            continue
        parts = lib.relative_to(root).with_name(lib.name.split(".")[0]).parts
        if ".".join((package, *parts)) not in wanted:
            found.append(lib)
    return sorted(found)


def main(force: bool = False) -> None:
    """`make setup`: remove stale compiled modules, and build unless the compiled modules
    are up to date."""
    for lib in stale():
        lib.unlink()
        print(f"{GROUP}: removed {lib.relative_to(ROOT.parent)}, no longer compiled")
    if force or not up_to_date():
        build()
    print(f"{GROUP}: {len(MODULES)} modules compiled, up to date")
