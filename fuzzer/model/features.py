"""What varies between kernel versions, as parameters of the model (pure).

The model must not assume the newest kernel: each feature here is probed on
the kernel under test at start-up (`fuzzer/observe/probe.py`), recorded with
every campaign and sample, and consulted where the semantics differ.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True, slots=True)
class Features:
    release: str = "unknown"
    lf_mnemonic: bool = True  # smaps prints "lf" for VM_LOCKONFAULT (about 6.2+); else "??"
    pagemap_scan: bool = True  # PAGEMAP_SCAN ioctl (6.7+)
    madv_populate: bool = True  # MADV_POPULATE_READ/WRITE (5.14+)
    madv_dontneed_locked: bool = True  # MADV_DONTNEED_LOCKED (5.18+)
    mremap_multi_vma_move: bool = True  # MREMAP_FIXED move of a range over several VMAs (~6.17+)
    map_fixed_noreplace: bool = True  # MAP_FIXED_NOREPLACE (4.17+)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    def summary(self) -> str:
        """One line for people: the release and what it lacks."""
        missing = [k for k, v in self.as_dict().items() if v is False]
        return self.release + (f" (without {', '.join(missing)})" if missing else "")


NEWEST = Features()
