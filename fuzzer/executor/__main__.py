"""`python -m fuzzer.executor`: build the executor and print its path."""

from fuzzer.executor import build

print(build())
