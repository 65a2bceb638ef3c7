"""What a divergence is about: the first word of its title and the bucket's kind."""

from __future__ import annotations

from enum import StrEnum


class DivergenceKind(StrEnum):
    """Every kind a finding can have; a StrEnum, so it compares, prints and is stored as
    its text ("fork-flags", not DivergenceKind.FORK_FLAGS)."""

    RESULT = "result"
    SIGNAL = "signal"
    MAPPING = "mapping"
    PROT = "prot"
    LOCK = "lock"
    FORK_FLAGS = "fork-flags"
    SEAL = "seal"  # VM_SEALED (mseal) on pages the model has otherwise
    PRESENCE = "presence"
    VMA = "vma"
    RSS = "rss"
    LOCKED = "locked"
    VMLCK = "vmlck"
    MLOCKED = "mlocked"  # PG_mlocked of a page against the locked VMAs mapping it (§20)
    HANG = "hang"  # the executor made no progress within its budget
    CRASH = "crash"  # the executor was killed outside a touch
    KERNEL_CRASH = "kernel-crash"  # a guest kernel's own fault (fuzzer/kernel): never exported


K = DivergenceKind
# Which divergence of a step is its primary one, the one its sample is filed under
# (fuzzer/oracle/primary.py says why this order).
PRECEDENCE = (K.KERNEL_CRASH, K.CRASH, K.HANG, K.RESULT, K.SIGNAL, K.MAPPING, K.PROT, K.SEAL,
              K.LOCK, K.FORK_FLAGS, K.PRESENCE, K.VMA, K.LOCKED, K.RSS, K.VMLCK, K.MLOCKED)

__all__ = ["PRECEDENCE", "DivergenceKind"]
