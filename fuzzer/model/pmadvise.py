"""process_madvise: docs/SEMANTICS.md §18, following mm/madvise.c (6.18).

`process_madvise(pidfd, iovec, vlen, advice, flags)` is madvise applied, iovec by
iovec, to the address space of the process the pidfd names (`target`; the caller
itself when `same`). The checks come in the syscall's order (SYSCALL_DEFINE5
process_madvise): flags other than 0; the iovec import (lib/iov_iter.c
iovec_from_user: more than UIO_MAXIOV is EINVAL, and so is a length negative as
ssize_t, before any access_ok); the pidfd (always a live process of the program
here: the program checker sees to that); then the advice: another process's
address space takes only MADV_COLD, MADV_PAGEOUT, MADV_WILLNEED and MADV_COLLAPSE
(process_madvise_remote_valid), and before 6.13 so did the caller's own (the probed
feature `pmadv_self_any`). The caller is root: CAP_SYS_NICE and PTRACE_MODE_READ hold.

vector_madvise then walks the segments: the first one always, the later ones only
when not empty (iov_iter_advance steps over empty segments), each exactly as
madvise() would do it (madvise_should_skip, then madvise_do_behavior). The first
error ends the walk; the result is the bytes of the segments done before it, or
that error when none was (`ret = (total_len - iov_iter_count(iter)) ? : ret`).
"""

from __future__ import annotations

from fuzzer.model import madvise as madvise_mod
from fuzzer.model.pages import Prediction, err, ok
from fuzzer.model.state import State
from fuzzer.prog.program import WRAP_MIN
from fuzzer.prog.syscalls import (
    EFAULT,
    EINVAL,
    ENOSYS,
    MADV_COLD,
    MADV_COLLAPSE,
    MADV_PAGEOUT,
    MADV_WILLNEED,
    PMADV_IOVECS,
    UIO_MAXIOV,
)

SSIZE_MIN = 1 << 63  # as size_t: lengths from here on are negative as ssize_t

# process_madvise_remote_valid: the advice another process's address space takes.
REMOTE_ADVICE = frozenset({MADV_COLD, MADV_PAGEOUT, MADV_WILLNEED, MADV_COLLAPSE})


def process_madvise(target: State, same: bool, iovecs: list[tuple[int, int]], vlen: int,
                    advice: int, flags: int) -> Prediction:
    """The call's result; `target`'s state changes in place. `iovecs` are the program's
    (arena offset, length) pairs; past them the executor's iovecs are empty."""
    if not target.features.process_madvise:
        return err(ENOSYS)  # before 5.10
    advice &= 0xFFFF_FFFF  # int behavior, unsigned int flags
    if flags & 0xFFFF_FFFF:
        return err(EINVAL)
    if vlen > UIO_MAXIOV:
        return err(EINVAL)  # __import_iovec, before any segment is read
    segments = iovecs[:min(vlen, PMADV_IOVECS)]
    if any(length >= SSIZE_MIN for _, length in segments):
        return err(EINVAL)  # copy_iovec_from_user: a length that is negative as ssize_t
    if any(length >= WRAP_MIN for _, length in segments):
        # access_ok (base + len wraps). Programs cannot reach it: a length that wraps
        # is at least 2**64 - the arena's base, negative as ssize_t. Nor can they reach
        # the MAX_RW_COUNT cap a single iovec gets before access_ok (import_ubuf).
        return err(EFAULT)
    if (not same or not target.features.pmadv_self_any) and advice not in REMOTE_ADVICE:
        return err(EINVAL)
    if not any(length for _, length in segments):
        return ok(0)  # iov_iter_count is 0: no segment is looked at, not even the advice
    done = 0
    for n, (addr, length) in enumerate(segments):
        if n and not length:
            continue  # iov_iter_advance steps over an empty segment
        ret = madvise_mod.madvise(target, addr, length, advice).ret
        assert ret is not None
        if ret < 0:
            return ok(done) if done else err(-ret)
        done += length
    return ok(done)
