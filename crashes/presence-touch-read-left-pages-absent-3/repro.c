/*
 * mmfuzz reproducer for bucket #3:
 *
 *   presence: touch(read) left pages absent
 *
 * kind presence, diverging at step 1: touch(@0, read)
 * the model after that step: no signal; @0 --xp Z
 *
 * Replays the program's calls with raw syscall(2) at mmfuzz's addresses (the arena
 * at 0x200000000000), then checks the diverging property in /proc against the
 * model's prediction for that step.
 *
 * Build: cc -Wall -static -o repro repro.c
 * Run:   ./repro   (as root: pagemap shows PFNs, which tell the zero page apart)
 * Exit:  1 the divergence reproduces, 0 it does not, 2 /proc could not be read
 */
#define _GNU_SOURCE
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

#define ARENA 0x200000000000UL /* mmfuzz's arena: ARENA_BASE in fuzzer/prog/program.py */
#define PAGE 4096UL
#define PAGES 64
#define TASK_SIZE 0x7ffffffff000UL

static const char title[] = "presence: touch(read) left pages absent";
static sigjmp_buf touch_env;
static volatile sig_atomic_t touching, fault_sig, fault_code;

#ifndef SYS_mmap
#define SYS_mmap 9
#endif

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

/* A raw system call; the result as the kernel returns it (-errno on failure). */
static long sys(long nr, unsigned long a1, unsigned long a2, unsigned long a3,
		unsigned long a4, unsigned long a5, unsigned long a6)
{
	long ret = syscall(nr, a1, a2, a3, a4, a5, a6);

	return ret == -1 ? -errno : ret;
}

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

/* Presence: one pagemap letter per arena page, as the model predicts them. */
static const char expected_cells[PAGES + 1] = "Z...............................................................";

static int check(void)
{
	char observed[PAGES + 1];

	if (read_pagemap() != 0)
		return 2;
	for (int i = 0; i < PAGES; i++)
		observed[i] = presence(pagemap[i]);
	observed[PAGES] = '\0';
	printf("pages: . absent, Z zero page, A/a anonymous, F/f shmem (zero page by PFN: %s)\n",
			zero_pfn ? "yes" : "no, not root");
	print_runs("expected: ", expected_cells, 1, ".", "no page present");
	print_runs("observed: ", observed, 1, ".", "no page present");
	return memcmp(expected_cells, observed, PAGES) != 0;
}

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

int main(void)
{
	struct sigaction sa;

	/* as the executor does: no THP, so presence is exact to the page */
	prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_fault;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
	find_zero_pfn();

	/* 0: mmap(@0, 1p, PROT_EXEC, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) */
	sys(SYS_mmap, ARENA, 0x1000UL, 0x4UL, 0x22UL, (unsigned long)-1, 0x0UL);

	/* 1: touch(@0, read) -- the diverging step */
	touch(ARENA, 0);

	return report(check());
}
