"""mmfuzz: a fuzzer for semantic bugs in the Linux kernel's memory-locking and mapping code."""

from fuzzer import native

native.select()  # before any compiled module is imported (native.py)
