/*
 * mmfuzz executor: the child that runs one wire-encoded program and nothing else.
 *
 * It reads the program from stdin, closes every descriptor, disables THP for
 * itself (with --thp-advised, except in MADV_HUGEPAGE VMAs), asks to
 * be traced and stops. From then on the only syscalls it makes
 * are the program's own calls, one getppid() checkpoint after every page touch,
 * the prlimit64() or capget()+capset() of a privilege pseudo-call, the
 * memfd_create() of that pseudo-call (the executor supplies the name), the
 * openat() of the tmpfile pseudo-call (an O_TMPFILE file in the --files directory),
 * the
 * getpid(), pidfd_open() and close() around a process_madvise() (it names a
 * process of the program by number; the executor opens that process's pidfd),
 * which ends at a getppid() checkpoint carrying its result whatever the mode,
 * and exit_group(): the supervisor can tell each stop apart by number alone.
 * In marker mode a madvise(MADV_POPULATE_READ) of the executor's own page precedes
 * every stop (drain(): it settles PG_mlocked before the supervisor reads it).
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
 * Fork server (--server): how the supervisor runs programs. The server sets up
 * once (the handlers, THP off, SIGCHLD blocked, a seccomp filter that makes
 * every getppid() a PTRACE_EVENT_SECCOMP stop, child subreaper), asks to be
 * traced and stops; the supervisor traces it with PTRACE_O_TRACEFORK, so each
 * child it forks is traced from birth. Then, per frame on stdin (u64 flags,
 * then a wire program), it forks one child that runs the program, reaps every
 * process of that child's tree and writes one byte to stdout. EOF ends it.
 * With FLAG_MARKERS the child follows each of its calls with a getppid() whose
 * first argument is the call's raw result (a marker): one stop a call under
 * PTRACE_CONT. Without it, the calls are as above (PTRACE_SYSCALL stepping).
 *
 * Usage: mmfuzz-executor [--no-trace] [--thp-advised] [--files DIR]   (program on stdin)
 *        mmfuzz-executor --server [--thp-advised] [--files DIR]
 *            (frames on stdin, a byte a frame out)
 *        --files DIR: the directory, on a disk file system, in which tmpfile makes its
 *            files (without it tmpfile fails with ENOENT, as the model then predicts)
 *        mmfuzz-executor --exec COMMAND [ARGS...]
 *            asks to be traced, stops, then execs COMMAND: how `mmfuzz inject`
 *            starts an arbitrary program under its injections.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <setjmp.h>
#include <stddef.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <stdio.h>
#include <unistd.h>

#define MAGIC 0x6d6d66757a7a0002ULL
#define MAX_CALLS 128
#define MAX_PROCS 4
#ifndef SYS_process_madvise
#define SYS_process_madvise 440
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#include "wire.h"

enum { EXIT_BAD_INPUT = 90, EXIT_SETUP = 91 };

static uint64_t prog[2 + MAX_CALLS * WORDS];
static int markers; /* FLAG_MARKERS: a getppid() marker after every call */
static const char *files_dir = ""; /* --files: where tmpfile makes its files */

/* A syscall as the kernel returns it (-errno on failure), not libc's -1. */
static long raw(long nr, long a, long b, long c, long d, long e, long f)
{
	register long r10 __asm__("r10") = d;
	register long r8 __asm__("r8") = e;
	register long r9 __asm__("r9") = f;
	long ret;

	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
	return ret;
}

/*
 * Marker mode: before each stop, empty this CPU's LRU and mlock batches (lru_add_drain(),
 * which MADV_POPULATE_READ's faultin_page_range() ends with), so that the PG_mlocked
 * the supervisor reads from /proc/kpageflags is settled: munlock_folio() only queues
 * the page (fuzzer/observe/pageflags.py). Our own page, present after the first time.
 */
#define MADV_POPULATE_READ 22
static char drain_page[4096] __attribute__((aligned(4096)));

static void drain(void)
{
	if (markers)
		raw(SYS_madvise, (long)drain_page, sizeof(drain_page), MADV_POPULATE_READ, 0, 0, 0);
}

/* Stop here for the supervisor to observe: a getppid() carrying `ret`. */
static void stop(long ret)
{
	drain();
	raw(SYS_getppid, ret, 0, 0, 0, 0, 0);
}

/* The call is made: stop here with its result (marker mode only). */
static void mark(long ret)
{
	if (markers)
		stop(ret);
}
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

/*
 * process_madvise: the pids a process knows, by process number (its own, learnt with
 * getpid() when first needed, those of the children it forked, and what its parent
 * knew when it forked it: fuzzer/prog/program.py Processes), and the iovecs. The
 * kernel reads vlen of them (up to UIO_MAXIOV; more is EINVAL before any is read):
 * past the program's two they are zero-length, which the kernel skips.
 */
static long pid_of[MAX_PROCS];
static struct iovec pm_iov[1024];

static long own_pid(uint64_t me)
{
	if (!pid_of[me])
		pid_of[me] = raw(SYS_getpid, 0, 0, 0, 0, 0, 0);
	return pid_of[me];
}

/* Words: target | vlen << 32, base0, len0, base1, len1, advice | flags << 32. */
static long process_madvise(uint64_t me, const uint64_t *c)
{
	uint64_t target = c[1] & 0xffffffffu;
	long pid = target == me ? own_pid(me) : pid_of[target % MAX_PROCS];
	long fd, ret;

	pm_iov[0].iov_base = (void *)c[2];
	pm_iov[0].iov_len = c[3];
	pm_iov[1].iov_base = (void *)c[4];
	pm_iov[1].iov_len = c[5];
	fd = pid > 0 ? raw(SYS_pidfd_open, pid, 0, 0, 0, 0, 0) : -ESRCH;
	if (fd < 0)
		return fd;
	ret = raw(SYS_process_madvise, fd, (long)pm_iov, (long)(c[1] >> 32),
		  (long)(int)(c[6] & 0xffffffffu), (long)(c[6] >> 32), 0);
	raw(SYS_close, fd, 0, 0, 0, 0, 0);
	return ret;
}

/* Read up to want bytes; how many came (fewer only at EOF), or -1. */
static ssize_t read_full(void *to, size_t want)
{
	size_t got = 0;

	while (got < want) {
		ssize_t n = read(0, (char *)to + got, want - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

static int read_program(void)
{
	ssize_t got = read_full(prog, sizeof(prog));

	if (got < 16 || prog[0] != MAGIC || prog[1] > MAX_CALLS)
		return -1;
	if ((size_t)got < (2 + prog[1] * WORDS) * sizeof(uint64_t))
		return -1;
	return 0;
}

/* One server frame: u64 flags, then a wire program of exactly its own length.
 * 1 read, 0 at EOF before a frame, -1 for a malformed frame. */
static int read_frame(uint64_t *flags)
{
	uint64_t head[3];
	ssize_t got = read_full(head, sizeof(head));
	size_t body;

	if (got == 0)
		return 0;
	if (got != sizeof(head) || head[1] != MAGIC || head[2] > MAX_CALLS)
		return -1;
	*flags = head[0];
	prog[0] = head[1];
	prog[1] = head[2];
	body = head[2] * WORDS * sizeof(uint64_t);
	return read_full(&prog[2], body) == (ssize_t)body ? 1 : -1;
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
	stop(0); /* a checkpoint in both modes */
}

/* RLIMIT_MEMLOCK, soft and hard: the supervisor sees the prlimit64 call. */
static long prlimit_memlock(uint64_t bytes)
{
	struct rlimit lim = { .rlim_cur = bytes, .rlim_max = bytes };

	return raw(SYS_prlimit64, 0, RLIMIT_MEMLOCK, (long)&lim, 0, 0, 0);
}

/* Drop CAP_IPC_LOCK from the effective and permitted sets: the supervisor sees capset. */
static long drop_cap_ipc_lock(void)
{
	struct __user_cap_header_struct head = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[2];

	raw(SYS_capget, (long)&head, (long)data, 0, 0, 0, 0);
	data[CAP_IPC_LOCK / 32].effective &= ~(1u << (CAP_IPC_LOCK % 32));
	data[CAP_IPC_LOCK / 32].permitted &= ~(1u << (CAP_IPC_LOCK % 32));
	data[CAP_IPC_LOCK / 32].inheritable &= ~(1u << (CAP_IPC_LOCK % 32));
	return raw(SYS_capset, (long)&head, (long)data, 0, 0, 0, 0);
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

static int handle_faults(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_fault;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	if (sigaction(SIGSEGV, &sa, NULL) != 0 || sigaction(SIGBUS, &sa, NULL) != 0)
		return -1;
	return 0;
}

/* Every process walks the whole program and makes only its own calls. */
static void run_program(void)
{
	uint64_t me = 0, forks = 0, pidfds = 0;

	for (uint64_t i = 0; i < prog[1]; i++)
		pidfds |= (prog[2 + i * WORDS] & 0xffffffffu) == SYS_process_madvise;

	for (uint64_t i = 0; i < prog[1]; i++) {
		uint64_t *c = &prog[2 + i * WORDS];
		uint64_t op = c[0] & 0xffffffffu, proc = c[0] >> 32;
		long ret;

		if (op == SYS_fork)
			forks++;
		if (proc != me)
			continue;
		switch (op) {
		case TOUCH_READ:
		case TOUCH_WRITE:
			touch(op, c[1]); /* its checkpoint is the marker */
			break;
		case OP_PRLIMIT_MEMLOCK:
			mark(prlimit_memlock(c[1]));
			break;
		case OP_DROP_CAP_IPC_LOCK:
			mark(drop_cap_ipc_lock());
			break;
		case OP_MEMFD_CREATE:
			/* no flags; smaps names its mappings /memfd:mmfuzz (deleted) */
			mark(raw(SYS_memfd_create, (long)"mmfuzz", 0, 0, 0, 0, 0));
			break;
		case OP_TMPFILE:
			/* an unnamed file: smaps names it DIR/#INODE (deleted) */
			mark(raw(SYS_openat, AT_FDCWD, (long)files_dir, O_TMPFILE | O_RDWR, 0600, 0,
				 0));
			break;
		case OP_EXIT:
			raw(SYS_exit_group, 0, 0, 0, 0, 0, 0);
			break;
		case SYS_process_madvise:
			/* A checkpoint in both modes: stepping by PTRACE_SYSCALL, the call's
			 * exit is not the step's end, as the pidfd's close() follows it. */
			stop(process_madvise(me, c));
			break;
		case SYS_fork:
			if (pidfds)
				own_pid(me); /* before the fork: the child knows its parent */
			ret = raw(SYS_fork, 0, 0, 0, 0, 0, 0);
			if (ret == 0) {
				me = forks; /* the child: its first call is its next stop */
			} else {
				if (ret > 0 && forks < MAX_PROCS)
					pid_of[forks] = ret;
				mark(ret);
			}
			break;
		default:
			mark(raw((long)op, (long)c[1], (long)c[2], (long)c[3], (long)c[4], (long)c[5],
				 (long)c[6]));
		}
	}
	raw(SYS_exit_group, 0, 0, 0, 0, 0, 0);
}

/* getppid() stops the caller (PTRACE_EVENT_SECCOMP); every other call just runs. */
static int filter_getppid(void)
{
	struct sock_filter code[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getppid, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRACE),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog fprog = { .len = sizeof(code) / sizeof(code[0]), .filter = code };

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		return -1;
	return (int)raw(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, (long)&fprog, 0, 0, 0);
}

/*
 * Stay on the CPU we start on, with every program and its children: MADV_FREE and the
 * page faults hand pages to per-CPU LRU batches that MADV_PAGEOUT drains on its own CPU
 * only, so what it reclaims would depend on where the scheduler ran each call
 * (docs/SEMANTICS.md section 16). A no-op where the supervisor pinned us already.
 */
static int pin_to_one_cpu(void)
{
	cpu_set_t set;
	int cpu = sched_getcpu();

	if (cpu < 0)
		return -1;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof(set), &set);
}

/* The fork server: one traced child a frame, its whole tree reaped, one byte back. */
static int serve(void)
{
	sigset_t chld;
	uint64_t flags;
	int st, r;

	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	/* Blocked, so the end of a run makes no signal stop in the traced server. */
	if (sigprocmask(SIG_BLOCK, &chld, NULL) != 0 || filter_getppid() != 0 ||
	    prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0 ||
	    prctl(PR_SET_NAME, "mmfuzz-server", 0, 0, 0) != 0 ||
	    ptrace(PTRACE_TRACEME, 0, 0, 0) != 0)
		return EXIT_SETUP;
	raise(SIGSTOP);
	while ((r = read_frame(&flags)) == 1) {
		pid_t pid = fork(); /* the supervisor sees it as PTRACE_EVENT_FORK */

		if (pid == 0) {
			markers = (flags & FLAG_MARKERS) != 0;
			sigprocmask(SIG_UNBLOCK, &chld, NULL);
			prctl(PR_SET_NAME, "mmfuzz-executor", 0, 0, 0);
			raw(SYS_close_range, 0, ~0U, 0, 0, 0, 0);
			run_program();
		}
		/* The child and every process of its tree (orphans come to us). */
		while (waitpid(-1, &st, __WALL) >= 0 || errno == EINTR)
			;
		if (write(1, "", 1) != 1)
			return EXIT_SETUP;
	}
	return r == 0 ? 0 : EXIT_BAD_INPUT;
}

#ifndef PR_THP_DISABLE_EXCEPT_ADVISED
#define PR_THP_DISABLE_EXCEPT_ADVISED (1 << 1) /* uapi/linux/prctl.h, 6.18 */
#endif

/*
 * THP off; with `advised` (--thp-advised, given by the supervisor when the
 * probe says the model can follow it: fuzzer/observe/probe.py), off except in
 * VM_HUGEPAGE VMAs (6.18+): there a write fault may map a large anonymous
 * folio, which the model predicts from the host's mTHP sizes
 * (docs/SEMANTICS.md §19). Older kernels refuse the flag (EINVAL): THP off
 * completely. Inherited by every fork (MMF_INIT_MASK).
 */
static int thp_off(int advised)
{
	if (advised &&
	    prctl(PR_SET_THP_DISABLE, 1, PR_THP_DISABLE_EXCEPT_ADVISED, 0, 0) == 0)
		return 0;
	return prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0);
}

int main(int argc, char **argv)
{
	int traced = !(argc > 1 && strcmp(argv[1], "--no-trace") == 0);
	int server = argc > 1 && strcmp(argv[1], "--server") == 0;
	int advised = 0;

	if (argc > 2 && strcmp(argv[1], "--exec") == 0)
		return exec_traced(argv + 2);
	for (int i = 1; i < argc; i++) {
		advised |= strcmp(argv[i], "--thp-advised") == 0;
		if (strcmp(argv[i], "--files") == 0 && i + 1 < argc)
			files_dir = argv[++i];
	}

	if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() == 1)
		return EXIT_SETUP;
	if (thp_off(advised) != 0)
		return EXIT_SETUP;
	if (handle_faults() != 0 || pin_to_one_cpu() != 0)
		return EXIT_SETUP;
	if (server)
		return serve();
	if (read_program() != 0)
		return EXIT_BAD_INPUT;

	if (traced) {
		if (ptrace(PTRACE_TRACEME, 0, 0, 0) != 0)
			return EXIT_SETUP;
		raw(SYS_close_range, 0, ~0U, 0, 0, 0, 0);
		raise(SIGSTOP);
	} else {
		raw(SYS_close_range, 0, ~0U, 0, 0, 0, 0);
	}
	run_program();
	return 0;
}
