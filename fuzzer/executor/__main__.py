"""`python -m fuzzer.executor`: build the executor, the ceiling and the C module of the step's
system calls (fuzzer/stepcalls.c); print their paths. The last is optional: without a
compiler for it (no Python headers), a warning says so and the Python twins are used."""

import sys

from fuzzer import stepcalls
from fuzzer.executor import CEILING_NAME, CEILING_SOURCE, ExecutorBuildError, build

try:
    print(build())
    print(build(CEILING_SOURCE, CEILING_NAME))
except ExecutorBuildError as e:
    sys.exit(f"error: {e}")
try:
    print(stepcalls.build())
except ExecutorBuildError as e:
    print(f"warning: {e}; checked steps make their system calls from Python", file=sys.stderr)
