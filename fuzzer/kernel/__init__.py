"""Kernels under test: the host's, or a User-Mode Linux kernel a developer built.

`--kernel host` (the default) runs everything here. `--kernel uml:PATH` boots
the UML binary at PATH with the host's root file system over hostfs, read-only,
and runs the supervisor, the model and the executor inside it; this process
keeps the database and writes every result into it (docs/ARCHITECTURE.md, decision 10).

spec      parsing `host` | `uml:PATH` (each with an optional `#NAME`), a UML binary's hash
          (a build's identity, KernelId, is the store's: fuzzer/store/identity.py)
uml       booting, talking to and halting one guest
channel   the JSON-lines result channel (a UML serial line on a host pipe)
console   the guest's console log: kernel crashes and their titles
messages  the typed requests a guest is sent and the results it answers (pure)
proxy     the Store the guest sees: every call travels over the channel
session   one request to a fresh guest: probe, exec, check, repro, minimize, run, ...
releases  the builds a database has seen, and what tells two of them apart
build     building a UML kernel to test (`mmfuzz kernels build`), with the host fix
diagnose  why a guest did not boot, from its console (pure), and xstate the host's
          XSAVE area size it names

What runs inside a guest (init.sh starts `python -m fuzzer.campaign.guest`) is
above this package, with the checks and workers it runs, and so is the Target
interface that puts the host and a guest behind the same calls
(fuzzer/campaign/target.py): nothing here imports them.
"""

from fuzzer.kernel.spec import GUEST_MEM, HOST, Kernel, KernelError, parse_kernel

__all__ = ["GUEST_MEM", "HOST", "Kernel", "KernelError", "parse_kernel"]
