"""`python -m fuzzer.executor`: build the executor, the ceiling and the C module of the step's
system calls (fuzzer/stepcalls.c); print their paths."""

from fuzzer import stepcalls
from fuzzer.executor import CEILING_NAME, CEILING_SOURCE, build

print(build())
print(build(CEILING_SOURCE, CEILING_NAME))
print(stepcalls.build())
