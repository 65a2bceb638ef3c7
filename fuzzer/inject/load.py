"""Loading an injection: by catalogue name, or `path/to/file.py:NAME` for a plug-in."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from fuzzer.inject.api import Injection, InjectionError
from fuzzer.inject.catalogue import CATALOGUE


def load(spec: str) -> Injection:
    """An injection by catalogue name, or `path/to/file.py:NAME` for a plug-in."""
    if spec.endswith(".py"):
        names = ", ".join(_injections_in(Path(spec))) or "none"
        raise InjectionError(f"{spec}: a plug-in is named as FILE.py:NAME (injections in it: "
                             f"{names})")
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
    if target is None or name.startswith("_"):
        known = ", ".join(_injections(module)) or "none"
        raise InjectionError(f"{path_text} defines no injection named {name!r} (injections in "
                             f"it: {known})")
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


def _injections(module: ModuleType) -> list[str]:
    """The injections a plug-in module offers: its Injection subclasses and instances,
    less private names (a leading `_`: helpers and bases, not injections)."""
    return sorted(name for name, value in vars(module).items()
                  if not name.startswith("_") and value is not Injection
                  and (isinstance(value, Injection)
                       or (isinstance(value, type) and issubclass(value, Injection))))


def _injections_in(path: Path) -> list[str]:
    return _injections(_load_module(path))
