/*
 * mmfuzz ceiling: the kernel work of checking programs, in C and nothing else.
 *
 * `mmfuzz bench throughput` runs it on the very programs the product checked,
 * so the product's rate can be read against the rate the kernel allows. For
 * each program it does what the supervisor and the observer make the kernel
 * do (fuzzer/trace/supervisor.py, fuzzer/observe/proc.py), with no model, no
 * parsing and no comparison:
 *
 *   - the real executor's fork server (fuzzer/trace/server.py), posix_spawned
 *     once, traced (its first SIGSTOP, PTRACE_SETOPTIONS with TRACESYSGOOD,
 *     EXITKILL, TRACEFORK, TRACESECCOMP, PTRACE_CONT); per program the frame
 *     (marker flag, wire program) down its pipe, its fork event (GETEVENTMSG,
 *     PTRACE_CONT), the wait for the child's first stop;
 *   - /proc/PID/{smaps,status,pagemap} opened once per process, and one snapshot
 *     (smaps and status read whole from offset 0, the arena's pagemap words in
 *     one pread, the present pages' flags from /proc/kpageflags where root can
 *     read them) of process 0 before its first call;
 *   - per call, the calling process resumed with PTRACE_CONT until its marker
 *     (the seccomp stop of the getppid() the executor makes after each call),
 *     with PEEKUSER of the result (rdi) unless it is a touch, the fork event
 *     followed to the child's first stop, GETSIGINFO for a touch's SIGSEGV/SIGBUS;
 *     then a snapshot of *every* live process (the product reads the caller
 *     whole, and another process whole only when it may have changed: so the
 *     ceiling reads at least as much as the product);
 *   - after the last call each process run to its exit; kill, reap, and the
 *     server's one byte saying it reaped the run's tree.
 *
 * Input file: records of u64 steps (how many calls the product ran: a program
 * that diverged stopped there), u64 size, then the wire program (size bytes).
 * Usage: mmfuzz-ceiling EXECUTOR PROGRAMS-FILE ARENA-BASE ARENA-PAGES
 * Prints: programs steps nanoseconds failures
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_PROCS 130
#include "wire.h"
#define SYSCALL_TRAP (SIGTRAP | 0x80)
#define OFF_RDI (14 * 8)
#define EVENT_SECCOMP 7

struct proc {
	pid_t pid;
	long entered; /* -1: not inside a syscall */
	int resume_sig;
	int fds[3]; /* smaps, status, pagemap */
};

static struct proc *procs[MAX_PROCS];
static struct proc slots[MAX_PROCS];
static pid_t seen[MAX_PROCS];
static int nseen;
static char buf[1 << 20];
#define MAX_ARENA_PAGES 1024 /* the huge arena (fuzzer/prog/arena.py) */
static uint64_t pagemap[MAX_ARENA_PAGES];
static uint64_t arena_base, arena_pages;
static const char *executor;
static pid_t server;
static int frames = -1, acks = -1;

static void open_proc(int n, pid_t pid)
{
	static const char *names[3] = { "smaps", "status", "pagemap" };
	char path[64];
	struct proc *p = &slots[n];

	p->pid = pid;
	p->entered = -1;
	p->resume_sig = 0;
	for (int i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "/proc/%d/%s", pid, names[i]);
		p->fds[i] = open(path, O_RDONLY);
	}
	procs[n] = p;
}

static void close_proc(int n)
{
	for (int i = 0; i < 3; i++)
		if (procs[n]->fds[i] >= 0)
			close(procs[n]->fds[i]);
	procs[n] = NULL;
}

/* From offset 0 with pread at explicit offsets, as fuzzer/observe/proc.py reads. */
static void read_whole(int fd)
{
	ssize_t n;

	for (off_t at = 0; (n = pread(fd, buf, sizeof(buf), at)) > 0; at += n)
		;
}

#define PM_PRESENT (1ULL << 63)
#define PM_PFN ((1ULL << 55) - 1)
#define FLAG_RUN 64
static int kpageflags = -1; /* opened once, as fuzzer/observe/pageflags.py does */
static uint64_t zero_pfn;

static int by_value(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* The present pages' flags as fuzzer/observe/pageflags.py reads them: the zero page
 * left out, frames sorted, one pread per run of frames less than FLAG_RUN apart. */
static void read_flags(void)
{
	static uint64_t pfns[MAX_ARENA_PAGES], flags[FLAG_RUN];
	int n = 0, k;

	for (uint64_t i = 0; i < arena_pages; i++) {
		uint64_t pfn = pagemap[i] & PM_PFN;

		if (pagemap[i] & PM_PRESENT && pfn && pfn != zero_pfn)
			pfns[n++] = pfn;
	}
	qsort(pfns, (size_t)n, sizeof(pfns[0]), by_value);
	for (int j = 0; j < n; j = k) {
		for (k = j + 1; k < n && pfns[k] - pfns[j] < FLAG_RUN; k++)
			;
		if (pread(kpageflags, flags, (pfns[k - 1] - pfns[j] + 1) * 8,
			  (off_t)(pfns[j] * 8)) < 0)
			perror("kpageflags");
	}
}

static void snapshot(struct proc *p)
{
	read_whole(p->fds[0]);
	read_whole(p->fds[1]);
	if (pread(p->fds[2], pagemap, arena_pages * 8, (off_t)(arena_base / 4096 * 8)) < 0)
		perror("pagemap");
	if (kpageflags >= 0)
		read_flags();
}

/* PG_mlocked is read where the product reads it (/proc/kpageflags opens, pagemap shows
 * PFNs): the zero page's PFN from a read fault on a page of our own. */
static void open_flags(void)
{
	volatile char *page = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint64_t word = 0;
	int fd = open("/proc/self/pagemap", O_RDONLY);

	if (page == MAP_FAILED || fd < 0)
		return;
	(void)*page;
	if (pread(fd, &word, 8, (off_t)((uintptr_t)page / 4096 * 8)) == 8 && word & PM_PRESENT)
		zero_pfn = word & PM_PFN;
	close(fd);
	munmap((void *)page, 4096);
	if (zero_pfn)
		kpageflags = open("/proc/kpageflags", O_RDONLY | O_CLOEXEC);
}

static int adopt(int n, pid_t pid)
{
	int st;

	seen[nseen++] = pid;
	if (waitpid(pid, &st, __WALL) < 0 || !WIFSTOPPED(st) || WSTOPSIG(st) != SIGSTOP)
		return -1;
	open_proc(n, pid);
	return 0;
}

/* Resume process n until it has made the call (its marker); 0, or -1 if the run went wrong. */
static int advance(int n, uint64_t op, int forks)
{
	struct proc *p = procs[n];
	int touch = op == TOUCH_READ || op == TOUCH_WRITE, st;

	for (;;) {
		ptrace(PTRACE_CONT, p->pid, 0, p->resume_sig);
		p->resume_sig = 0;
		if (waitpid(p->pid, &st, __WALL) < 0)
			return -1;
		if (WIFEXITED(st) && op == OP_EXIT && WEXITSTATUS(st) == 0) {
			close_proc(n);
			return 0;
		}
		if (!WIFSTOPPED(st))
			return -1;
		int sig = WSTOPSIG(st);
		if (sig == SIGTRAP && (st >> 16) == EVENT_SECCOMP) {
			if (!touch)
				(void)ptrace(PTRACE_PEEKUSER, p->pid, OFF_RDI, 0);
			return 0;
		} else if (sig == SIGTRAP && (st >> 16) == PTRACE_EVENT_FORK) {
			unsigned long child;

			ptrace(PTRACE_GETEVENTMSG, p->pid, 0, &child);
			if (forks >= MAX_PROCS || adopt(forks, (pid_t)child) != 0)
				return -1;
		} else if (sig == SIGTRAP && (st >> 16)) {
			continue;
		} else if (sig == SIGSEGV || sig == SIGBUS) {
			siginfo_t info;

			ptrace(PTRACE_GETSIGINFO, p->pid, 0, &info);
			p->resume_sig = sig;
		} else {
			p->resume_sig = sig;
		}
	}
}

static int finish(int n)
{
	struct proc *p = procs[n];
	int st;

	for (;;) {
		ptrace(PTRACE_CONT, p->pid, 0, p->resume_sig);
		p->resume_sig = 0;
		if (waitpid(p->pid, &st, __WALL) < 0)
			return -1;
		if (WIFEXITED(st)) {
			close_proc(n);
			return WEXITSTATUS(st) == 0 ? 0 : -1;
		}
		if (WIFSIGNALED(st))
			return -1;
		if (WSTOPSIG(st) != SIGSTOP && WSTOPSIG(st) != SYSCALL_TRAP && WSTOPSIG(st) != SIGTRAP)
			p->resume_sig = WSTOPSIG(st);
	}
}

/* The executor's fork server, spawned and traced once. */
static int start_server(void)
{
	posix_spawn_file_actions_t fa;
	char *argv[] = { (char *)executor, "--server", NULL }, *envp[] = { NULL };
	int in[2], out[2], st, ok;

	if (pipe(in) != 0 || pipe(out) != 0)
		return -1;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in[0], 0);
	posix_spawn_file_actions_adddup2(&fa, out[1], 1);
	posix_spawn_file_actions_addclose(&fa, in[1]);
	posix_spawn_file_actions_addclose(&fa, out[0]);
	ok = posix_spawn(&server, executor, &fa, NULL, argv, envp) == 0;
	posix_spawn_file_actions_destroy(&fa);
	close(in[0]);
	close(out[1]);
	frames = in[1];
	acks = out[0];
	if (!ok || waitpid(server, &st, __WALL) < 0 || !WIFSTOPPED(st) || WSTOPSIG(st) != SIGSTOP)
		return -1;
	ptrace(PTRACE_SETOPTIONS, server, 0, PTRACE_O_TRACESYSGOOD | PTRACE_O_EXITKILL |
	       PTRACE_O_TRACEFORK | PTRACE_O_TRACESECCOMP);
	ptrace(PTRACE_CONT, server, 0, 0);
	return 0;
}

/* One frame to the server: the child it forks, stopped at birth, or -1. */
static pid_t spawn(const uint64_t *prog, size_t size)
{
	static uint64_t frame[1 + 2 + 128 * WORDS];
	unsigned long child;
	int st;

	if (size > sizeof(frame) - 8)
		return -1;
	frame[0] = FLAG_MARKERS;
	memcpy(&frame[1], prog, size);
	if (write(frames, frame, size + 8) != (ssize_t)(size + 8))
		return -1;
	if (waitpid(server, &st, __WALL) < 0 || !WIFSTOPPED(st) || (st >> 16) != PTRACE_EVENT_FORK)
		return -1;
	ptrace(PTRACE_GETEVENTMSG, server, 0, &child);
	ptrace(PTRACE_CONT, server, 0, 0);
	seen[nseen++] = (pid_t)child;
	if (waitpid((pid_t)child, &st, __WALL) < 0 || !WIFSTOPPED(st) || WSTOPSIG(st) != SIGSTOP)
		return -1;
	return (pid_t)child;
}

static void reap(void)
{
	struct pollfd ack = { .fd = acks, .events = POLLIN };
	char byte;
	int st;

	for (int n = 0; n < MAX_PROCS; n++)
		if (procs[n]) {
			kill(procs[n]->pid, SIGKILL);
			close_proc(n);
		}
	for (int i = 0; i < nseen; i++)
		while (waitpid(seen[i], &st, __WALL) >= 0)
			;
	if (nseen && (poll(&ack, 1, 2000) != 1 || read(acks, &byte, 1) != 1))
		fprintf(stderr, "the fork server did not answer\n");
	nseen = 0;
}

/* One program, its first `steps` calls; returns the steps made, or -1. */
static long run(const uint64_t *prog, size_t size, uint64_t steps)
{
	pid_t pid = spawn(prog, size);
	uint64_t ncalls = prog[1], forks = 0, i;

	if (pid <= 0) {
		reap();
		return -1;
	}
	open_proc(0, pid);
	snapshot(procs[0]);
	for (i = 0; i < steps && i < ncalls; i++) {
		const uint64_t *c = &prog[2 + i * WORDS];
		uint64_t op = c[0] & 0xffffffffu, n = c[0] >> 32;

		if (op == 57)
			forks++;
		if (n >= MAX_PROCS || !procs[n] || advance((int)n, op, (int)forks) != 0)
			break;
		for (int k = 0; k < MAX_PROCS; k++)
			if (procs[k])
				snapshot(procs[k]);
	}
	if (i == ncalls)
		for (int k = 0; k < MAX_PROCS; k++)
			if (procs[k] && finish(k) != 0)
				break;
	reap();
	return i == steps || i == ncalls ? (long)i : -1;
}

int main(int argc, char **argv)
{
	struct timespec t0, t1;
	uint64_t head[2], *progs = NULL;
	size_t used = 0, cap = 0;
	long programs = 0, steps = 0, failures = 0;
	FILE *f;

	if (argc != 5) {
		fprintf(stderr, "usage: mmfuzz-ceiling EXECUTOR PROGRAMS ARENA-BASE ARENA-PAGES\n");
		return 2;
	}
	executor = argv[1];
	arena_base = strtoull(argv[3], NULL, 0);
	arena_pages = strtoull(argv[4], NULL, 0);
	if (arena_pages > MAX_ARENA_PAGES) {
		fprintf(stderr, "mmfuzz-ceiling: an arena of %llu pages (at most %d)\n",
			(unsigned long long)arena_pages, MAX_ARENA_PAGES);
		return 2;
	}
	if (!(f = fopen(argv[2], "rb"))) {
		perror(argv[2]);
		return 2;
	}
	/* Read everything first: the timed loop does no file I/O of its own. */
	while (fread(head, sizeof(head), 1, f) == 1) {
		size_t words = 2 + head[1] / 8;

		if (used + words > cap) {
			cap = (used + words) * 2;
			progs = realloc(progs, cap * 8);
		}
		memcpy(progs + used, head, sizeof(head));
		if (head[1] % 8 || fread(progs + used + 2, 1, head[1], f) != head[1]) {
			fprintf(stderr, "%s: truncated record\n", argv[2]);
			return 2;
		}
		used += words;
	}
	fclose(f);
	open_flags();
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (start_server() != 0) {
		fprintf(stderr, "the executor's fork server did not start\n");
		return 2;
	}
	for (size_t at = 0; at < used; at += 2 + progs[at + 1] / 8) {
		long made = run(progs + at + 2, progs[at + 1], progs[at]);

		if (made < 0) {
			failures++;
			continue;
		}
		programs++;
		steps += made;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	close(frames); /* EOF: the server exits */
	while (waitpid(server, NULL, __WALL) >= 0)
		;
	printf("%ld %ld %lld %ld\n", programs, steps,
	       (long long)(t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec),
	       failures);
	return 0;
}
