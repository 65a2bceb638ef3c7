"""Observation: /proc/PID/{smaps,status,pagemap} read into a Snapshot."""

from fuzzer.observe.proc import ObserveError, Observer, zero_pfn
from fuzzer.snapshot import Snapshot, Vma

__all__ = ["ObserveError", "Observer", "Snapshot", "Vma", "zero_pfn"]
