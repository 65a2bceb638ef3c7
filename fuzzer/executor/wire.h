/* The executor's wire format (fuzzer/prog/wire.py): words per call and the operation
 * codes of the pseudo-calls, shared by the executor and the C ceiling that drives it. */
#ifndef MMFUZZ_WIRE_H
#define MMFUZZ_WIRE_H

#define WORDS 7
#define TOUCH_READ 1000
#define TOUCH_WRITE 1001
#define OP_PRLIMIT_MEMLOCK 1002
#define OP_DROP_CAP_IPC_LOCK 1003
#define OP_EXIT 1004
#define OP_MEMFD_CREATE 1010
#define OP_TMPFILE 1011

/* The fork server's frame: u64 flags, then the wire program. */
#define FLAG_MARKERS 1 /* a getppid(result) marker after every call: one stop a call */

#endif
