"""Emulated kernel bugs: the plug-in API (api.py), the built-in catalogue, and loading.

A plug-in is written against this package:
`from fuzzer.inject import Injection, Rewrite, Replace, Skip, Then, Extra, Syscall, Process`.
The ptrace side that applies an injection's decisions is `fuzzer/trace/apply.py`.
"""

from fuzzer.inject.api import (
    EntryAction,
    ExitAction,
    Extra,
    Injection,
    InjectionError,
    Replace,
    Rewrite,
    Skip,
    Syscall,
    Then,
)
from fuzzer.inject.catalogue import CATALOGUE
from fuzzer.inject.load import load
from fuzzer.inject.process import Lock, Process

__all__ = ["CATALOGUE", "EntryAction", "ExitAction", "Extra", "Injection", "InjectionError",
           "Lock", "Process", "Replace", "Rewrite", "Skip", "Syscall", "Then", "load"]
