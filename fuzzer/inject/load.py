"""Loading an injection: by catalogue name, or `path/to/file.py:NAME` for a plug-in."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from fuzzer.inject.api import Injection, InjectionError
from fuzzer.inject.catalogue import CATALOGUE


def load(spec: str) -> Injection:
    """An injection by catalogue name, or `path/to/file.py:NAME` for a plug-in."""
    if ":" not in spec or not spec.split(":", 1)[0].endswith(".py"):
        if spec not in CATALOGUE:
            known = ", ".join(sorted(CATALOGUE))
            raise InjectionError(f"unknown injection {spec!r} (catalogue: {known})")
        return CATALOGUE[spec]()
    path_text, name = spec.rsplit(":", 1)
    module = _load_module(Path(path_text))
    target = getattr(module, name, None)
    if target is None:
        table = getattr(module, "CATALOGUE", {})
        target = table.get(name) if isinstance(table, dict) else None
    if target is None:
        raise InjectionError(f"{path_text} defines no injection named {name!r}")
    injection = target() if isinstance(target, type) else target
    if not isinstance(injection, Injection):
        raise InjectionError(f"{path_text}:{name} is not an Injection (subclass "
                             "fuzzer.inject.Injection)")
    if not getattr(injection, "name", ""):
        type(injection).name = name
    return injection


def _load_module(path: Path) -> ModuleType:
    if not path.is_file():
        raise InjectionError(f"plug-in file {path} does not exist")
    module_spec = importlib.util.spec_from_file_location(f"mmfuzz_plugin_{path.stem}", path)
    if module_spec is None or module_spec.loader is None:
        raise InjectionError(f"cannot load plug-in {path}")
    module = importlib.util.module_from_spec(module_spec)
    try:
        module_spec.loader.exec_module(module)
    except Exception as e:  # a plug-in's own bug: report it in one line
        raise InjectionError(f"plug-in {path} failed to load: {type(e).__name__}: {e}") from None
    return module
