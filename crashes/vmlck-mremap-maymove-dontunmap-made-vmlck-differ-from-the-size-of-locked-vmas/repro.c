/*
 * mmfuzz reproducer:
 *
 *   vmlck: mremap(MAYMOVE|DONTUNMAP) made VmLck differ from the size of
 *   locked VMAs
 *
 * kind vmlck, diverging at step 1: mremap(@5, 2p, 2p,
 *   MREMAP_MAYMOVE|MREMAP_DONTUNMAP, @0)
 * the model after that step: returns @0; @0-1 ---p lo ..; @5-6 ---p ..
 * expected (when found): VmLck 8 kB
 * observed (when found): VmLck 16 kB
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

static const char title[] = "vmlck: mremap(MAYMOVE|DONTUNMAP) made "
	"VmLck differ from the size of locked VMAs";
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

/* First and last arena page of an arena VMA. */
static void arena_span(const struct vma *v, int *first, int *last)
{
	*first = v->start < ARENA ? 0
		: (int)((v->start - ARENA) / PAGE);
	*last = v->end > ARENA + PAGES * PAGE ? PAGES - 1
		: (int)((v->end - ARENA) / PAGE) - 1;
}

/* VmLck (status) against the size of the locked VMAs, and the arena's
 * share of it. */
static int check(void)
{
	long vmlck = -1, locked = 0, arena = 0;
	char *line;

	if (read_smaps() != 0)
		return 2;
	for (int k = 0; k < nvmas; k++) {
		const struct vma *v = &vmas[k];

		if (!v->lo)
			continue;
		locked += (long)((v->end - v->start) / 1024);
		if (in_arena(v)) {
			int first, last;

			arena_span(v, &first, &last);
			arena += (last - first + 1) * 4;
		}
	}
	if (read_text("/proc/self/status") != 0 ||
	    !(line = strstr(text, "VmLck:")))
		return 2;
	vmlck = atol(line + 6);
	printf("expected: VmLck %ld kB (the size of the locked VMAs), "
	       "8 kB of them in the arena\n", locked);
	printf("observed: VmLck %ld kB, %ld kB of locked VMAs in the "
	       "arena\n", vmlck, arena);
	return vmlck != locked || arena != 8;
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

	/* 0: mmap(@5, 2p, PROT_NONE,
	 * MAP_PRIVATE|MAP_ANONYMOUS|MAP_LOCKED, -1, 0)
	 */
	sys(SYS_mmap, ARENA + 0x5000, 0x2000UL, 0x0UL, 0x2022UL,
			(unsigned long)-1, 0x0UL);

	/* 1: mremap(@5, 2p, 2p, MREMAP_MAYMOVE|MREMAP_DONTUNMAP, @0) --
	 * the diverging step
	 */
	sys(SYS_mremap, ARENA + 0x5000, 0x2000UL, 0x2000UL, 0x5UL,
			ARENA, 0);

	return report(check());
}
