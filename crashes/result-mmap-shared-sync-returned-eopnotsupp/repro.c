/*
 * mmfuzz reproducer:
 *
 *   result: mmap(SHARED|?, R) returned -EOPNOTSUPP instead of an arena
 *   address
 *
 * kind result, diverging at step 1: mmap(@0, 1p, PROT_READ,
 *   MAP_SHARED|0x80000, 0, 0)
 * the model after that step: returns @0; @0 r--s .
 * expected (when found): @0
 * observed (when found): -EOPNOTSUPP
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

static const char title[] = "result: mmap(SHARED|?, R) returned "
	"-EOPNOTSUPP instead of an arena address";
static sigjmp_buf touch_env;
static volatile sig_atomic_t touching, fault_sig, fault_code;

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

static const char *errno_name(long e)
{
	static char other[24];

	switch (e) {
	case 1: return "EPERM";
	case 2: return "ENOENT";
	case 3: return "ESRCH";
	case 9: return "EBADF";
	case 11: return "EAGAIN";
	case 12: return "ENOMEM";
	case 13: return "EACCES";
	case 14: return "EFAULT";
	case 17: return "EEXIST";
	case 22: return "EINVAL";
	case 27: return "EFBIG";
	case 38: return "ENOSYS";
	case 75: return "EOVERFLOW";
	case 95: return "EOPNOTSUPP";
	}
	snprintf(other, sizeof(other), "E%ld", e);
	return other;
}

/* A result as mmfuzz shows it: -ERRNO, @PAGE for an arena address,
 * else the value. */
static void print_value(const char *label, long ret, int address)
{
	unsigned long u = (unsigned long)ret;

	if (ret < 0 && ret >= -4095)
		printf("%s-%s\n", label, errno_name(-ret));
	else if (address && u >= ARENA && u < ARENA + PAGES * PAGE)
		printf("%s@%lu\n", label, (u - ARENA) / PAGE);
	else if (address)
		printf("%s%#lx\n", label, u);
	else
		printf("%s%ld\n", label, ret);
}

/* The diverging call's return value. */
static int check(long ret)
{
	print_value("expected: ", (long)(ARENA + 0x0UL), 1);
	print_value("observed: ", ret, 1);
	return ret != (long)(ARENA + 0x0UL);
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
	long ret;
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
	/* as the executor does: no descriptor open, so memfds are
	 * numbered from 0 (stdout waits at 1000 until the calls are
	 * done) */
	out = fcntl(1, F_DUPFD, 1000);
	sys(SYS_close_range, 0, 999, 0, 0, 0, 0);

	/* 0: tmpfile() */
	sys(SYS_openat, AT_FDCWD, (unsigned long)"/var/tmp",
			O_TMPFILE | O_RDWR, 0600, 0, 0);

	/* 1: mmap(@0, 1p, PROT_READ, MAP_SHARED|0x80000, 0, 0) -- the
	 * diverging step
	 */
	ret = sys(SYS_mmap, ARENA, 0x1000UL, 0x1UL, 0x80001UL, 0x0UL,
			0x0UL);

	dup2(out, 1);

	return report(check(ret));
}
