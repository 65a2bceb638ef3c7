/*
 * mmfuzz reproducer:
 *
 *   presence: touch(read) left pages not shmem
 *
 * kind presence, diverging at step 4: touch(@6, read)
 * the model after that step: SIGBUS/ADRERR; @0-8 r--s .....F...
 * expected (when found): @0-8 r--s .....F...
 * observed (when found): @0-8 r--s .........
 *
 * Replays the program's calls with raw syscall(2) at mmfuzz's
 * addresses (the arena where mmfuzz puts it on the kernel it runs
 * on: 0x200000000000 on an x86-64 host, 0x4000000000 in a UML
 * guest), then checks the diverging property in /proc against the
 * model's prediction for that step.
 *
 * Build: cc -Wall -static -o repro repro.c
 * Run:   ./repro   (as root: pagemap shows PFNs, which tell the zero
 *        page apart)
 * Exit:  1 the divergence reproduces, 0 it does not, 2 /proc could
 *        not be read
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#define PAGE 4096UL
#define PAGES 64

/* mmfuzz's arena, where its executor puts it on the kernel this runs
 * on (fuzzer/prog/arena.py): the first of these that fits below the
 * end of this process's address space (an x86-64 host's, then a
 * User-Mode Linux guest's), found by find_arena() before the first
 * call. */
static const unsigned long arenas[] = {
	0x200000000000UL, 0x4000000000UL
};
static unsigned long arena;
#define ARENA arena

static int find_arena(void)
{
	static char maps[1 << 16];
	unsigned long top = 0, end;
	size_t n = 0, i;
	ssize_t got;
	char *p;
	int fd = open("/proc/self/maps", O_RDONLY);

	if (fd < 0)
		return -1;
	while (n < sizeof(maps) - 1 &&
	       (got = read(fd, maps + n, sizeof(maps) - 1 - n)) > 0)
		n += (size_t)got;
	close(fd);
	maps[n] = 0;
	for (p = strchr(maps, '-'); p; p = p ? strchr(p, '-') : NULL) {
		end = strtoul(p + 1, NULL, 16);
		p = strchr(p, '\n');
		if (end <= 1UL << 63 && end > top)
			top = end;
	}
	for (i = 0; i < sizeof(arenas) / sizeof(arenas[0]); i++) {
		if (arenas[i] + PAGES * PAGE <= top) {
			arena = arenas[i];
			return 0;
		}
	}
	errno = ENOMEM;
	return -1;
}
#define TASK_SIZE 0x7ffffffff000UL

static const char title[] = "presence: touch(read) left pages not "
	"shmem";
static sigjmp_buf touch_env;
static volatile sig_atomic_t touching, fault_sig, fault_code;

#ifndef SYS_ftruncate
#define SYS_ftruncate 77
#endif
#ifndef SYS_madvise
#define SYS_madvise 28
#endif
#ifndef SYS_mmap
#define SYS_mmap 9
#endif
#ifndef SYS_openat
#define SYS_openat 257
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif

/* SIGSEGV/SIGBUS: an outcome of a touch (recorded, the program goes
 * on), else fatal. */
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

/* As the executor does (pin_to_one_cpu): stay on the CPU this process
 * started on. A fresh page, and MADV_FREE's move to the lazy-free
 * list, wait in a per-CPU batch, and MADV_PAGEOUT drains only its own
 * CPU's: what it reclaims would depend on where each call ran
 * (docs/SEMANTICS.md section 16). */
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

/* A raw system call; the result as the kernel returns it (-errno on
 * failure). */
static long sys(long nr, unsigned long a1, unsigned long a2,
		unsigned long a3, unsigned long a4, unsigned long a5,
		unsigned long a6)
{
	long ret = syscall(nr, a1, a2, a3, a4, a5, a6);

	return ret == -1 ? -errno : ret;
}

/* A page touch: one volatile access; a SIGSEGV/SIGBUS is recorded and
 * the program goes on. */
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
#define PM_GUARD (1ULL << 58)
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
	n = pread(fd, pagemap, sizeof(pagemap),
		  (off_t)(ARENA / PAGE * 8));
	close(fd);
	return n == (ssize_t)sizeof(pagemap) ? 0 : -1;
}

/* The shared zero page's PFN, from a read fault on a page of our own
 * (0 unless root). */
static void find_zero_pfn(void)
{
	long addr = sys(SYS_mmap, 0, PAGE, 0x1, 0x22,
			(unsigned long)-1, 0);
	uint64_t word = 0;
	int fd;

	if (addr < 0)
		return;
	(void)*(volatile char *)addr;
	fd = open("/proc/self/pagemap", O_RDONLY);
	if (fd >= 0) {
		off_t at = (off_t)((unsigned long)addr / PAGE * 8);

		if (pread(fd, &word, 8, at) != 8)
			word = 0;
		close(fd);
	}
	sys(SYS_munmap, (unsigned long)addr, PAGE, 0, 0, 0, 0);
	zero_pfn = word & PM_PRESENT ? word & PM_PFN : 0;
}

/* One letter a page, as mmfuzz shows it: . absent, Z zero page,
 * A/a anonymous, F/f shmem (capital: mapped exclusively). */
static char presence(uint64_t word)
{
	if (!(word & PM_PRESENT))
		return word & PM_GUARD ? 'G' : '.';
	if (zero_pfn && (word & PM_PFN) == zero_pfn)
		return 'Z';
	if (word & PM_FILE)
		return word & PM_EXCLUSIVE ? 'F' : 'f';
	/* no PFNs to go by: without fork, a shared anon page is the
	 * zero page */
	if (!(word & PM_EXCLUSIVE) && !zero_pfn)
		return 'Z';
	return word & PM_EXCLUSIVE ? 'A' : 'a';
}

#define NOTHING_MAPPED "nothing mapped"

/* Runs of equal pages, as mmfuzz prints them: "@0-3 X; @4 Y" (blank
 * cells left out; `none_text` when every cell is blank). */
static void print_runs(const char *label, const char *cells, int width,
		       const char *blank, const char *none_text)
{
	int none = 1;

	printf("%s", label);
	for (int i = 0; i < PAGES;) {
		int j = i;

		const char *run = cells + i * width;

		while (j + 1 < PAGES && memcmp(cells + (j + 1) * width,
					       run, (size_t)width) == 0)
			j++;
		if (memcmp(run, blank, (size_t)width) != 0) {
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

/* Presence: one pagemap letter per arena page, as the model predicts
 * them. */
static const char expected_cells[PAGES + 1] = ".....F.................."
	"........................................";
#define NONE_PRESENT "no page present"

static int check(void)
{
	char observed[PAGES + 1];

	if (read_pagemap() != 0)
		return 2;
	for (int i = 0; i < PAGES; i++)
		observed[i] = presence(pagemap[i]);
	observed[PAGES] = '\0';
	printf("pages: . absent, Z zero page, A/a anonymous, F/f shmem "
	       "(zero page by PFN: %s)\n",
	       zero_pfn ? "yes" : "no, not root");
	print_runs("expected: ", expected_cells, 1, ".", NONE_PRESENT);
	print_runs("observed: ", observed, 1, ".", NONE_PRESENT);
	return memcmp(expected_cells, observed, PAGES) != 0;
}

/* 1: the divergence reproduces; 0: it does not; 2: /proc could not be
 * read (main returns 2 too when it cannot pin itself to one CPU). */
static int report(int status)
{
	int e = errno;

	if (status == 2)
		printf("cannot read /proc/self: %s\n", strerror(e));
	else if (status)
		printf("reproduced: %s\n", title);
	else
		printf("not reproduced: the kernel agrees with the "
		       "model here\n");
	return status;
}

int main(void)
{
	struct sigaction sa;
	int out;

	if (find_arena() != 0)
		return report(2);

	/* as the executor does without mTHP: no THP, so presence is
	 * exact to the page (the expected values below come from a
	 * model without large folios) */
	prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0);
	/* and on one CPU, which MADV_PAGEOUT's results depend on */
	if (pin_to_one_cpu() != 0) {
		perror("sched_setaffinity");
		return 2;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_fault;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
	find_zero_pfn();
	/* as the executor does: no descriptor open, so memfds are
	 * numbered from 0 (stdout waits at 1000 until the calls are
	 * done) */
	out = fcntl(1, F_DUPFD, 1000);
	sys(SYS_close_range, 0, 999, 0, 0, 0, 0);

	/* 0: tmpfile() */
	sys(SYS_openat, AT_FDCWD, (unsigned long)"/var/tmp",
			O_TMPFILE | O_RDWR, 0600, 0, 0);

	/* 1: ftruncate(0, 6p) */
	sys(SYS_ftruncate, 0x0UL, 0x6000UL, 0, 0, 0, 0);

	/* 2: mmap(@0, 9p, PROT_READ, MAP_SHARED, 0, 0) */
	sys(SYS_mmap, ARENA, 0x9000UL, 0x1UL, 0x1UL, 0x0UL, 0x0UL);

	/* 3: madvise(@5, 1p, MADV_WILLNEED) */
	sys(SYS_madvise, ARENA + 0x5000, 0x1000UL, 0x3UL, 0, 0, 0);

	/* 4: touch(@6, read) -- the diverging step */
	touch(ARENA + 0x6000, 0);

	dup2(out, 1);

	return report(check());
}
