"""What /proc shows of one process, as values, and the parsers that build them (pure, no I/O).

`fuzzer/observe` reads the files; this package only turns their text and
pagemap words into a `Snapshot`, so the oracle and the tests use it without /proc.
"""

from fuzzer.snapshot.parse import Snapshot, Vma

__all__ = ["Snapshot", "Vma"]
