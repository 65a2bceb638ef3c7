"""`python -m fuzzer.executor`: build the executor and the ceiling, print their paths."""

from fuzzer.executor import CEILING_NAME, CEILING_SOURCE, build

print(build())
print(build(CEILING_SOURCE, CEILING_NAME))
