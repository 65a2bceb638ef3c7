/*
 * mmfuzz reproducer for bucket #5:
 *
 *   signal: touch(write) raised no signal instead of SIGBUS/ADRERR
 *
 * kind signal, diverging at step 5: touch(@0, write)
 * the model after that step: SIGBUS/ADRERR; @0 -w-s lo .
 * expected (when found): SIGBUS/ADRERR
 * observed (when found): no signal
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

static const char title[] = "signal: touch(write) raised no signal "
	"instead of SIGBUS/ADRERR";
static sigjmp_buf touch_env;
static volatile sig_atomic_t touching, fault_sig, fault_code;

#ifndef SYS_mlock
#define SYS_mlock 149
#endif
#ifndef SYS_mmap
#define SYS_mmap 9
#endif
#ifndef SYS_mprotect
#define SYS_mprotect 10
#endif
#ifndef SYS_memfd_create
#define SYS_memfd_create 319
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

static void print_signal(const char *label, int sig, int code)
{
	const char *name = sig == SIGSEGV ? "SIGSEGV"
			 : sig == SIGBUS ? "SIGBUS" : "SIG?";
	const char *why = NULL;

	if (sig == SIGSEGV)
		why = code == 1 ? "MAPERR"
		    : code == 2 ? "ACCERR" : NULL;
	else if (sig == SIGBUS)
		why = code == 1 ? "ADRALN" : code == 2 ? "ADRERR"
		    : code == 3 ? "OBJERR" : NULL;

	if (!sig)
		printf("%s" "no signal\n", label);
	else if (why)
		printf("%s%s/%s\n", label, name, why);
	else
		printf("%s%s/%d\n", label, name, code);
}

/* The signal the diverging touch raised (signal and si_code). */
static int check(void)
{
	print_signal("expected: ", 7, 2);
	print_signal("observed: ", fault_sig, fault_code);
	return fault_sig != 7 ||
	       (fault_sig && fault_code != 2);
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
	/* as the executor does: no descriptor open, so memfds are
	 * numbered from 0 (stdout waits at 1000 until the calls are
	 * done) */
	out = fcntl(1, F_DUPFD, 1000);
	sys(SYS_close_range, 0, 999, 0, 0, 0, 0);

	/* 0: mmap(@0, 1p, PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
	 */
	sys(SYS_mmap, ARENA, 0x1000UL, 0x2UL, 0x22UL, (unsigned long)-1,
			0x0UL);

	/* 1: memfd_create() */
	sys(SYS_memfd_create, (unsigned long)"mmfuzz", 0, 0, 0, 0, 0);

	/* 2: mlock(@0, 1p) */
	sys(SYS_mlock, ARENA, 0x1000UL, 0, 0, 0, 0);

	/* 3: mmap(@0, 1p, PROT_READ, MAP_SHARED|MAP_FIXED|MAP_LOCKED,
	 * 0, 0)
	 */
	sys(SYS_mmap, ARENA, 0x1000UL, 0x1UL, 0x2011UL, 0x0UL, 0x0UL);

	/* 4: mprotect(@0, 1p, PROT_WRITE) */
	sys(SYS_mprotect, ARENA, 0x1000UL, 0x2UL, 0, 0, 0);

	/* 5: touch(@0, write) -- the diverging step */
	touch(ARENA, 1);

	dup2(out, 1);

	return report(check());
}
