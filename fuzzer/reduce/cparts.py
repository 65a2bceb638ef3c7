"""The C reproducer's building blocks: libc-only functions, emitted only when used.

`csource.py` picks the parts a reproducer needs (an unused static function
would be a `-Wall` warning) and fills in the program and the expected values.
Every part compiles with `cc -Wall -Wextra -static`; nothing allocates after
the first call of the program (stdio's buffer is taken only when printing,
after /proc was read), so the process the checks see is the one the calls made.
"""

from __future__ import annotations

HEAD = r"""#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#define ARENA 0x%(arena)xUL /* mmfuzz's arena: ARENA_BASE in fuzzer/prog/program.py */
#define PAGE 4096UL
#define PAGES %(pages)d
#define TASK_SIZE 0x7ffffffff000UL

static const char title[] = %(title)s;
static sigjmp_buf touch_env;
static volatile sig_atomic_t touching, fault_sig, fault_code;
"""

ON_FAULT = r"""
/* SIGSEGV/SIGBUS: an outcome of a touch (recorded, the program goes on), else fatal. */
static void on_fault(int sig, siginfo_t *info, void *ctx)
{
	(void)ctx;
	if (touching) {
		fault_sig = sig;
		fault_code = info->si_code;
		siglongjmp(touch_env, 1);
	}
	signal(sig, SIG_DFL);
	raise(sig);
}
"""

# For buckets of kind "crash": a fault outside a touch is the finding itself.
ON_FAULT_CRASH = r"""
/* SIGSEGV/SIGBUS: an outcome of a touch; outside a touch, the crash this reproduces. */
static void on_fault(int sig, siginfo_t *info, void *ctx)
{
	static const char msg[] = "expected: the process survives\n"
		"observed: killed by SIGSEGV or SIGBUS outside a touch\nreproduced\n";
	ssize_t n;

	(void)ctx;
	if (touching) {
		fault_sig = sig;
		fault_code = info->si_code;
		siglongjmp(touch_env, 1);
	}
	n = write(1, msg, sizeof(msg) - 1);
	(void)n;
	_exit(1);
}
"""

SYS = r"""
/* A raw system call; the result as the kernel returns it (-errno on failure). */
static long sys(long nr, unsigned long a1, unsigned long a2, unsigned long a3,
		unsigned long a4, unsigned long a5, unsigned long a6)
{
	long ret = syscall(nr, a1, a2, a3, a4, a5, a6);

	return ret == -1 ? -errno : ret;
}
"""

TOUCH = r"""
/* A page touch: one volatile access; a SIGSEGV/SIGBUS is recorded and the program goes on. */
static void touch(unsigned long addr, int write)
{
	volatile char *p = (volatile char *)addr;

	fault_sig = 0;
	fault_code = 0;
	touching = 1;
	if (sigsetjmp(touch_env, 0) == 0) {
		if (write)
			*p = 1;
		else
			(void)*p;
	}
	touching = 0;
}
"""

PRLIMIT = r"""
/* prlimit_memlock(N): RLIMIT_MEMLOCK (8), soft and hard, to N bytes. */
static long prlimit_memlock(unsigned long bytes)
{
	unsigned long lim[2] = { bytes, bytes };

	return sys(SYS_prlimit64, 0, 8, (unsigned long)lim, 0, 0, 0);
}
"""

DROP_CAP = r"""
/* drop_cap_ipc_lock(): CAP_IPC_LOCK (14) out of the effective, permitted, inheritable sets. */
static long drop_cap_ipc_lock(void)
{
	struct { uint32_t version; int pid; } head = { 0x20080522, 0 };
	struct { uint32_t effective, permitted, inheritable; } data[2];

	memset(data, 0, sizeof(data));
	sys(SYS_capget, (unsigned long)&head, (unsigned long)data, 0, 0, 0, 0);
	data[0].effective &= ~(1u << 14);
	data[0].permitted &= ~(1u << 14);
	data[0].inheritable &= ~(1u << 14);
	return sys(SYS_capset, (unsigned long)&head, (unsigned long)data, 0, 0, 0, 0);
}
"""

READ_TEXT = r"""
static char text[1 << 20];

/* A whole /proc file into text[], without allocating (malloc could map memory). */
static int read_text(const char *path)
{
	int fd = open(path, O_RDONLY);
	size_t got = 0;
	ssize_t n = 0;

	if (fd < 0)
		return -1;
	while (got < sizeof(text) - 1 && (n = read(fd, text + got, sizeof(text) - 1 - got)) > 0)
		got += (size_t)n;
	close(fd);
	text[got] = '\0';
	return n < 0 ? -1 : 0;
}
"""

SMAPS = r"""
struct vma {
	unsigned long start, end;
	char perms[5], name[32];
	unsigned long inode; /* the shmem object of a shared anonymous mapping */
	long rss, pss, locked; /* kB */
	int lo, lf, dc, wf, special;
};
static struct vma vmas[1024];
static int nvmas;

/* Whether the VmFlags line at p has the two-letter flag. */
static int has_flag(const char *p, const char *flag)
{
	while (*p && *p != '\n') {
		while (*p == ' ')
			p++;
		if (strncmp(p, flag, 2) == 0 && (p[2] == ' ' || p[2] == '\n' || p[2] == '\0'))
			return 1;
		while (*p && *p != ' ' && *p != '\n')
			p++;
	}
	return 0;
}

/* /proc/self/smaps: range, perms, name, Rss, Pss, Locked and lock flags of every VMA. */
static int read_smaps(void)
{
	char *line, *next;

	if (read_text("/proc/self/smaps") != 0)
		return -1;
	nvmas = 0;
	for (line = text; *line; line = next) {
		struct vma *v = &vmas[nvmas ? nvmas - 1 : 0];
		unsigned long start, end, inode;
		char perms[5];
		int name = 0;

		next = strchr(line, '\n');
		next = next ? next + 1 : line + strlen(line);
		if (sscanf(line, "%lx-%lx %4s %*s %*s %lu %n", &start, &end, perms, &inode,
					&name) == 4) {
			if (nvmas == (int)(sizeof(vmas) / sizeof(vmas[0])))
				return -1;
			v = &vmas[nvmas++];
			memset(v, 0, sizeof(*v));
			v->start = start;
			v->end = end;
			v->inode = inode;
			memcpy(v->perms, perms, sizeof(v->perms));
			if (name > 0)
				sscanf(line + name, "%31s", v->name);
		} else if (!nvmas) {
			continue;
		} else if (strncmp(line, "Rss:", 4) == 0) {
			v->rss = atol(line + 4);
		} else if (strncmp(line, "Pss:", 4) == 0) {
			v->pss = atol(line + 4);
		} else if (strncmp(line, "Locked:", 7) == 0) {
			v->locked = atol(line + 7);
		} else if (strncmp(line, "VmFlags:", 8) == 0) {
			v->lo = has_flag(line + 8, "lo");
			v->lf = has_flag(line + 8, "lf") || has_flag(line + 8, "??");
			v->dc = has_flag(line + 8, "dc");
			v->wf = has_flag(line + 8, "wf");
			v->special = has_flag(line + 8, "io") || has_flag(line + 8, "pf") ||
						has_flag(line + 8, "mm") || has_flag(line + 8, "de");
		}
	}
	return 0;
}
"""

IN_ARENA = r"""
static int in_arena(const struct vma *v)
{
	return v->end > ARENA && v->start < ARENA + PAGES * PAGE;
}
"""

VMA_OF = r"""
/* The VMA holding arena page i, or NULL. */
static const struct vma *vma_of(int i)
{
	unsigned long addr = ARENA + (unsigned long)i * PAGE;

	for (int k = 0; k < nvmas; k++)
		if (vmas[k].start <= addr && addr < vmas[k].end)
			return &vmas[k];
	return NULL;
}
"""

ARENA_SPAN = r"""
/* First and last arena page of an arena VMA. */
static void arena_span(const struct vma *v, int *first, int *last)
{
	*first = v->start < ARENA ? 0 : (int)((v->start - ARENA) / PAGE);
	*last = v->end > ARENA + PAGES * PAGE ? PAGES - 1 : (int)((v->end - ARENA) / PAGE) - 1;
}
"""

PAGEMAP = r"""
#define PM_PRESENT (1ULL << 63)
#define PM_FILE (1ULL << 61)
#define PM_EXCLUSIVE (1ULL << 56)
#define PM_PFN ((1ULL << 55) - 1)

static uint64_t pagemap[PAGES];
static uint64_t zero_pfn;

static int read_pagemap(void)
{
	int fd = open("/proc/self/pagemap", O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = pread(fd, pagemap, sizeof(pagemap), (off_t)(ARENA / PAGE * 8));
	close(fd);
	return n == (ssize_t)sizeof(pagemap) ? 0 : -1;
}

/* The shared zero page's PFN, from a read fault on a page of our own (0 unless root). */
static void find_zero_pfn(void)
{
	long addr = sys(SYS_mmap, 0, PAGE, 0x1, 0x22, (unsigned long)-1, 0);
	uint64_t word = 0;
	int fd;

	if (addr < 0)
		return;
	(void)*(volatile char *)addr;
	fd = open("/proc/self/pagemap", O_RDONLY);
	if (fd >= 0) {
		if (pread(fd, &word, 8, (off_t)((unsigned long)addr / PAGE * 8)) != 8)
			word = 0;
		close(fd);
	}
	sys(SYS_munmap, (unsigned long)addr, PAGE, 0, 0, 0, 0);
	zero_pfn = word & PM_PRESENT ? word & PM_PFN : 0;
}

/* One letter a page, as mmfuzz shows it: . absent, Z zero page, A/a anonymous, F/f shmem
 * (capital: mapped exclusively). */
static char presence(uint64_t word)
{
	if (!(word & PM_PRESENT))
		return '.';
	if (zero_pfn && (word & PM_PFN) == zero_pfn)
		return 'Z';
	if (word & PM_FILE)
		return word & PM_EXCLUSIVE ? 'F' : 'f';
	if (!(word & PM_EXCLUSIVE) && !zero_pfn)
		return 'Z'; /* no PFNs to go by: without fork, a shared anon page is the zero page */
	return word & PM_EXCLUSIVE ? 'A' : 'a';
}
"""

RUNS = r"""
/* Runs of equal pages, as mmfuzz prints them: "@0-3 X; @4 Y" (blank cells left out;
 * `none` when every cell is blank). */
static void print_runs(const char *label, const char *cells, int width, const char *blank,
		const char *none_text)
{
	int none = 1;

	printf("%s", label);
	for (int i = 0; i < PAGES;) {
		int j = i;

		while (j + 1 < PAGES && memcmp(cells + (j + 1) * width, cells + i * width,
							(size_t)width) == 0)
			j++;
		if (memcmp(cells + i * width, blank, (size_t)width) != 0) {
			printf("%s@%d", none ? "" : "; ", i);
			if (j > i)
				printf("-%d", j);
			printf(" %.*s", width, cells + i * width);
			none = 0;
		}
		i = j + 1;
	}
	printf("%s\n", none ? none_text : "");
}
"""

ERRNO = r"""
static const char *errno_name(long e)
{
	static char other[24];

	switch (e) {
%(cases)s	}
	snprintf(other, sizeof(other), "E%%ld", e);
	return other;
}

/* A result as mmfuzz shows it: -ERRNO, @PAGE for an arena address, else the value. */
static void print_value(const char *label, long ret, int address)
{
	unsigned long u = (unsigned long)ret;

	if (ret < 0 && ret >= -4095)
		printf("%%s-%%s\n", label, errno_name(-ret));
	else if (address && u >= ARENA && u < ARENA + PAGES * PAGE)
		printf("%%s@%%lu\n", label, (u - ARENA) / PAGE);
	else if (address)
		printf("%%s%%#lx\n", label, u);
	else
		printf("%%s%%ld\n", label, ret);
}
"""

SIGNAL_TEXT = r"""
static void print_signal(const char *label, int sig, int code)
{
	const char *name = sig == SIGSEGV ? "SIGSEGV" : sig == SIGBUS ? "SIGBUS" : "SIG?";
	const char *why = code == 1 ? "MAPERR" : code == 2 ? "ACCERR" : NULL;

	if (!sig)
		printf("%s" "no signal\n", label);
	else if (why)
		printf("%s%s/%s\n", label, name, why);
	else
		printf("%s%s/%d\n", label, name, code);
}
"""

ON_ALARM = r"""
/* The budget of a hang: if the calls have not finished by then, the hang reproduces. */
static void on_alarm(int sig)
{
	static const char msg[] = "expected: the call returns\n"
		"observed: no progress within %(budget)d s\nreproduced\n";
	ssize_t n = write(1, msg, sizeof(msg) - 1);

	(void)sig;
	(void)n;
	_exit(1);
}
"""

REPORT = r"""
/* 1: the divergence reproduces; 0: it does not; 2: /proc could not be read. */
static int report(int status)
{
	int e = errno;

	if (status == 2)
		printf("cannot read /proc/self: %s\n", strerror(e));
	else if (status)
		printf("reproduced: %s\n", title);
	else
		printf("not reproduced: the kernel agrees with the model here\n");
	return status;
}
"""
