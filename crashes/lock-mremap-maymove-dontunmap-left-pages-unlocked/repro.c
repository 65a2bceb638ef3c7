/*
 * mmfuzz reproducer:
 *
 *   lock: mremap(MAYMOVE|DONTUNMAP) left pages unlocked
 *
 * kind lock, diverging at step 1: mremap(@0, 1p, 1p,
 *   MREMAP_MAYMOVE|MREMAP_FIXED|MREMAP_DONTUNMAP, @1)
 * the model after that step: returns @1; @0 ---p .; @1 ---p lo .
 * expected (when found): @0 ---p .; @1 ---p lo .
 * observed (when found): @0-1 ---p ..
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

static const char title[] = "lock: mremap(MAYMOVE|DONTUNMAP) left "
	"pages unlocked";
static sigjmp_buf touch_env;
static volatile sig_atomic_t touching, fault_sig, fault_code;

#ifndef SYS_mmap
#define SYS_mmap 9
#endif
#ifndef SYS_mremap
#define SYS_mremap 25
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

static char text[1 << 20];

/* A whole /proc file into text[], without allocating (malloc could map
 * memory). */
static int read_text(const char *path)
{
	int fd = open(path, O_RDONLY);
	size_t got = 0;
	ssize_t n = 0;

	if (fd < 0)
		return -1;
	while (got < sizeof(text) - 1 &&
	       (n = read(fd, text + got, sizeof(text) - 1 - got)) > 0)
		got += (size_t)n;
	close(fd);
	text[got] = '\0';
	return n < 0 ? -1 : 0;
}

struct vma {
	unsigned long start, end;
	char perms[5], name[32];
	/* the shmem object of a shared anonymous mapping */
	unsigned long inode;
	long rss, pss, locked; /* kB */
	/* kB mapped by PMDs: AnonHugePages, Shmem+FilePmdMapped */
	long anon_huge, file_pmd;
	int lo, lf, dc, wf, sl, special;
};
#define MAX_VMAS 1024
static struct vma vmas[MAX_VMAS];
static int nvmas;

/* Whether the VmFlags line at p has the two-letter flag. */
static int has_flag(const char *p, const char *flag)
{
	while (*p && *p != '\n') {
		while (*p == ' ')
			p++;
		if (strncmp(p, flag, 2) == 0 &&
		    (p[2] == ' ' || p[2] == '\n' || p[2] == '\0'))
			return 1;
		while (*p && *p != ' ' && *p != '\n')
			p++;
	}
	return 0;
}

/* /proc/self/smaps: range, perms, name, Rss, Pss, Locked, the sizes
 * PMDs map and lock flags of every VMA. */
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
		if (sscanf(line, "%lx-%lx %4s %*s %*s %lu %n", &start,
			   &end, perms, &inode, &name) == 4) {
			if (nvmas == MAX_VMAS)
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
		} else if (strncmp(line, "AnonHugePages:", 14) == 0) {
			v->anon_huge = atol(line + 14);
		} else if (strncmp(line, "ShmemPmdMapped:", 15) == 0) {
			v->file_pmd += atol(line + 15);
		} else if (strncmp(line, "FilePmdMapped:", 14) == 0) {
			v->file_pmd += atol(line + 14);
		} else if (strncmp(line, "Locked:", 7) == 0) {
			v->locked = atol(line + 7);
		} else if (strncmp(line, "VmFlags:", 8) == 0) {
			const char *f = line + 8;

			v->lo = has_flag(f, "lo");
			v->lf = has_flag(f, "lf") || has_flag(f, "??");
			v->dc = has_flag(f, "dc");
			v->wf = has_flag(f, "wf");
			v->sl = has_flag(f, "sl");
			v->special = has_flag(f, "io") ||
				     has_flag(f, "pf") ||
				     has_flag(f, "mm") ||
				     has_flag(f, "de");
		}
	}
	return 0;
}

static int in_arena(const struct vma *v)
{
	return v->end > ARENA && v->start < ARENA + PAGES * PAGE;
}

/* The VMA holding arena page i, or NULL. */
static const struct vma *vma_of(int i)
{
	unsigned long addr = ARENA + (unsigned long)i * PAGE;

	for (int k = 0; k < nvmas; k++)
		if (vmas[k].start <= addr && addr < vmas[k].end)
			return &vmas[k];
	return NULL;
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

/* Lock flags (smaps VmFlags lo/lf) of every arena page, and of our own
 * VMAs after mlockall. */
static const char expected_cells[PAGES + 1] = "ul----------------------"
	"----------------------------------------";
static const char expected_own = 0;

static char lock_cell(const struct vma *v)
{
	if (!v)
		return '-';
	if (v->lo)
		return v->lf ? 'f' : 'l';
	return v->lf ? '?' : 'u';
}

static int check(void)
{
	char observed[PAGES + 1];
	int differ;

	if (read_smaps() != 0)
		return 2;
	for (int i = 0; i < PAGES; i++)
		observed[i] = lock_cell(vma_of(i));
	observed[PAGES] = '\0';
	printf("pages: l locked (lo), f lock-on-fault (lo lf), "
	       "u unlocked, ? lf without lo\n");
	print_runs("expected: ", expected_cells, 1, "-",
		   NOTHING_MAPPED);
	print_runs("observed: ", observed, 1, "-",
		   NOTHING_MAPPED);
	differ = memcmp(expected_cells, observed, PAGES) != 0;
	for (int k = 0; expected_own && k < nvmas; k++) {
		const struct vma *v = &vmas[k];

		if (in_arena(v) || v->special ||
		    v->start >= TASK_SIZE ||
		    lock_cell(v) == expected_own)
			continue;
		printf("expected: our own VMAs %c\n"
		       "observed: %lx-%lx %s %c\n", expected_own,
		       v->start, v->end, v->name, lock_cell(v));
		differ = 1;
		break;
	}
	return differ;
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

	/* 0: mmap(@0, 1p, PROT_NONE,
	 * MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED|MAP_LOCKED, -1, 0)
	 */
	sys(SYS_mmap, ARENA, 0x1000UL, 0x0UL, 0x2032UL,
			(unsigned long)-1, 0x0UL);

	/* 1: mremap(@0, 1p, 1p,
	 * MREMAP_MAYMOVE|MREMAP_FIXED|MREMAP_DONTUNMAP, @1) -- the
	 * diverging step
	 */
	sys(SYS_mremap, ARENA, 0x1000UL, 0x1000UL, 0x7UL,
			ARENA + 0x1000, 0);

	return report(check());
}
