"""The User-Mode Linux kernel the UML tests boot: $MMFUZZ_UML, else Debian's /usr/bin/linux.

Where Debian's cannot boot (hosts whose XSAVE area is larger than its build
assumes: `mmfuzz kernels boot` says so), .ci/run builds one with `mmfuzz
kernels build` and points MMFUZZ_UML at it.
"""

from __future__ import annotations

import os
from pathlib import Path

UML = Path(os.environ.get("MMFUZZ_UML") or "/usr/bin/linux")
