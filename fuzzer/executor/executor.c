/*
 * mmfuzz executor: the child that runs one wire-encoded program and nothing else.
 *
 * It reads the program from stdin, closes every descriptor, disables THP for
 * itself, asks to be traced and stops. From then on the only syscalls it makes
 * are the program's own calls, one getppid() checkpoint after every page touch,
 * the prlimit64() or capget()+capset() of a privilege pseudo-call, the
 * memfd_create() of that pseudo-call (the executor supplies the name), and
 * exit_group(): the supervisor can tell each stop apart by number alone.
 * A SIGSEGV or SIGBUS raised by a touch is an outcome, not a crash: the handler
 * jumps back to the loop without a syscall (sigsetjmp without a saved mask,
 * SA_NODEFER so the signal stays unblocked).
 *
 * Wire format (see fuzzer/prog/wire.py): u64 MAGIC, u64 ncalls, then 7 u64 a
 * call: op (syscall number, or a pseudo-call's op) in the low 32 bits, the
 * number of the process that makes the call above them, and six arguments.
 *
 * Processes: every process walks the whole program and makes only its own
 * calls. The n-th fork call of the program creates process n, so every
 * process can number the children without being told. Between two of its
 * calls a process makes no syscall and touches nothing, so the supervisor,
 * which keeps every other process stopped, decides the order exactly.
 *
 * Usage: mmfuzz-executor [--no-trace]   (program on stdin)
 *        mmfuzz-executor --exec COMMAND [ARGS...]
 *            asks to be traced, stops, then execs COMMAND: how `mmfuzz inject`
 *            starts an arbitrary program under its injections.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <stdio.h>
#include <unistd.h>

#define MAGIC 0x6d6d66757a7a0002ULL
#define MAX_CALLS 128
#include "wire.h"

enum { EXIT_BAD_INPUT = 90, EXIT_SETUP = 91 };

static uint64_t prog[2 + MAX_CALLS * WORDS];
static sigjmp_buf touch_env;
static volatile sig_atomic_t touching;

static void on_fault(int sig, siginfo_t *info, void *ctx)
{
	(void)info;
	(void)ctx;
	if (touching)
		siglongjmp(touch_env, sig);
	/* Not a touch: die of the signal so the supervisor sees a crash. */
	signal(sig, SIG_DFL);
	raise(sig);
}

static int read_program(void)
{
	size_t got = 0, want = sizeof(prog);
	char *buf = (char *)prog;

	while (got < want) {
		ssize_t n = read(0, buf + got, want - got);
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	if (got < 16 || prog[0] != MAGIC || prog[1] > MAX_CALLS)
		return -1;
	if (got < (2 + prog[1] * WORDS) * sizeof(uint64_t))
		return -1;
	return 0;
}

static void touch(uint64_t op, uint64_t addr)
{
	volatile char *p = (volatile char *)addr;

	touching = 1;
	if (sigsetjmp(touch_env, 0) == 0) {
		if (op == TOUCH_WRITE)
			*p = 1;
		else
			(void)*p;
	}
	touching = 0;
	syscall(SYS_getppid); /* checkpoint: the supervisor observes here */
}

/* RLIMIT_MEMLOCK, soft and hard: the supervisor sees the prlimit64 call. */
static void prlimit_memlock(uint64_t bytes)
{
	struct rlimit lim = { .rlim_cur = bytes, .rlim_max = bytes };

	syscall(SYS_prlimit64, 0, RLIMIT_MEMLOCK, &lim, NULL);
}

/* Drop CAP_IPC_LOCK from the effective and permitted sets: the supervisor sees capset. */
static void drop_cap_ipc_lock(void)
{
	struct __user_cap_header_struct head = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[2];

	syscall(SYS_capget, &head, data);
	data[CAP_IPC_LOCK / 32].effective &= ~(1u << (CAP_IPC_LOCK % 32));
	data[CAP_IPC_LOCK / 32].permitted &= ~(1u << (CAP_IPC_LOCK % 32));
	data[CAP_IPC_LOCK / 32].inheritable &= ~(1u << (CAP_IPC_LOCK % 32));
	syscall(SYS_capset, &head, data);
}

static int exec_traced(char **argv)
{
	if (ptrace(PTRACE_TRACEME, 0, 0, 0) != 0)
		return EXIT_SETUP;
	raise(SIGSTOP);
	execvp(argv[0], argv);
	perror(argv[0]);
	return 127;
}

int main(int argc, char **argv)
{
	int traced = !(argc > 1 && strcmp(argv[1], "--no-trace") == 0);
	struct sigaction sa;

	if (argc > 2 && strcmp(argv[1], "--exec") == 0)
		return exec_traced(argv + 2);

	if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() == 1)
		return EXIT_SETUP;
	if (prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0) != 0)
		return EXIT_SETUP;
	if (read_program() != 0)
		return EXIT_BAD_INPUT;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_fault;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	if (sigaction(SIGSEGV, &sa, NULL) != 0 || sigaction(SIGBUS, &sa, NULL) != 0)
		return EXIT_SETUP;

	if (traced) {
		if (ptrace(PTRACE_TRACEME, 0, 0, 0) != 0)
			return EXIT_SETUP;
		syscall(SYS_close_range, 0, ~0U, 0);
		raise(SIGSTOP);
	} else {
		syscall(SYS_close_range, 0, ~0U, 0);
	}

	uint64_t me = 0, forks = 0;

	for (uint64_t i = 0; i < prog[1]; i++) {
		uint64_t *c = &prog[2 + i * WORDS];
		uint64_t op = c[0] & 0xffffffffu, proc = c[0] >> 32;

		if (op == SYS_fork)
			forks++;
		if (proc != me)
			continue;
		switch (op) {
		case TOUCH_READ:
		case TOUCH_WRITE:
			touch(op, c[1]);
			break;
		case OP_PRLIMIT_MEMLOCK:
			prlimit_memlock(c[1]);
			break;
		case OP_DROP_CAP_IPC_LOCK:
			drop_cap_ipc_lock();
			break;
		case OP_MEMFD_CREATE:
			/* no flags; smaps names its mappings /memfd:mmfuzz (deleted) */
			syscall(SYS_memfd_create, "mmfuzz", 0);
			break;
		case OP_EXIT:
			syscall(SYS_exit_group, 0);
			break;
		case SYS_fork:
			if (syscall(SYS_fork) == 0)
				me = forks;
			break;
		default:
			syscall((long)op, c[1], c[2], c[3], c[4], c[5], c[6]);
		}
	}
	syscall(SYS_exit_group, 0);
	return 0;
}
