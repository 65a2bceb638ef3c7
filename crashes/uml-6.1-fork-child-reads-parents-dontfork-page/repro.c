/*
 * mmfuzz reproducer:
 *
 *   signal: touch(read) raised no signal instead of SIGSEGV/MAPERR
 *
 * kind signal, diverging at step 4: p1: touch(@0, read)
 * the model after that step: SIGSEGV/MAPERR; in p1: @1 rw-p .
 * expected (when found): SIGSEGV/MAPERR
 * observed (when found): no signal
 *
 * Replays the program's calls with raw syscall(2) at mmfuzz's
 * addresses (the arena where mmfuzz puts it on the kernel it runs
 * on: 0x200000000000 on an x86-64 host, 0x4000000000 in a UML
 * guest), then checks the diverging property in /proc against the
 * model's prediction for that step.
 *
 * The program's processes each make their own calls, in the
 * program's order: a turn passes between them through pipes.
 * The check runs in p1, where the divergence is, against the model's
 *   state of that process.
 *
 * Build: cc -Wall -static -o repro repro.c
 * Run:   ./repro   (as root: pagemap shows PFNs, which tell the zero
 *        page apart)
 * Exit:  1 the divergence reproduces, 0 it does not, 2 /proc could
 *        not be read or the processes did not finish
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

static const char title[] = "signal: touch(read) raised no signal "
	"instead of SIGSEGV/MAPERR";
static sigjmp_buf touch_env;
static volatile sig_atomic_t touching, fault_sig, fault_code;

#ifndef SYS_fork
#define SYS_fork 57
#endif
#ifndef SYS_madvise
#define SYS_madvise 28
#endif
#ifndef SYS_mmap
#define SYS_mmap 9
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
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

#include <poll.h>
#include <sys/wait.h>

/* The program's processes, as the executor runs them: p0 first, the
 * n-th fork() makes pn. Each runs only its own calls, in the
 * program's order: before each it waits for the turn (a pid_t on its
 * pipe: 0, or a process that exited, which it waits to be gone), and
 * after it hands the turn to the process of the next call (exit()
 * hands on its own pid, then exits). The pipes sit above descriptor
 * 1000, where memfds never come. The processes are a process group
 * of their own, which the first process (not one of the program's)
 * kills and reaps, as their subreaper, once the checks are in or the
 * budget of 20 s is spent. */
#define PROCS 2
#define BUDGET 20
static int me; /* this process's number in the program */
static int tok[PROCS][2], res[2]; /* the turns, the checks' statuses */

static int high_pipe(int fds[2])
{
	int p[2];

	if (pipe(p) != 0)
		return -1;
	fds[0] = fcntl(p[0], F_DUPFD, 1001);
	fds[1] = fcntl(p[1], F_DUPFD, 1001);
	close(p[0]);
	close(p[1]);
	return fds[0] < 0 || fds[1] < 0 ? -1 : 0;
}

static int make_pipes(void)
{
	for (int n = 0; n < PROCS; n++)
		if (high_pipe(tok[n]) != 0)
			return -1;
	return high_pipe(res);
}

/* Wait until process `pid` is gone (its address space too: exit_mm
 * comes before the exit state a pidfd polls). */
static void wait_gone(pid_t pid)
{
	struct pollfd p;
	long fd = syscall(SYS_pidfd_open, pid, 0);

	if (fd < 0)
		return; /* reaped already */
	p.fd = (int)fd;
	p.events = POLLIN;
	while (poll(&p, 1, -1) < 0 && errno == EINTR)
		;
	close((int)fd);
}

static void turn(void)
{
	pid_t gone;

	if (read(tok[me][0], &gone, sizeof(gone)) != sizeof(gone))
		_exit(2);
	if (gone)
		wait_gone(gone);
}

static void pass(int next, pid_t gone)
{
	if (write(tok[next][1], &gone, sizeof(gone)) != sizeof(gone))
		_exit(2);
}

/* fork(): the child is process n, with a budget of its own (alarms
 * are not inherited), in case the first process is gone. */
static void fork_as(int n)
{
	long pid = syscall(SYS_fork);

	if (pid == 0) {
		me = n;
		alarm(2 * BUDGET);
	}
}

/* A check's status, to the first process. */
static void done(int status)
{
	char c = (char)status;

	fflush(stdout);
	if (write(res[1], &c, 1) != 1)
		_exit(2);
}

/* A process whose calls and check are done stays as it is. */
static void hold(void)
{
	for (;;)
		pause();
}

static void on_budget(int sig)
{
	(void)sig;
}

/* The first process: wait for `checks` statuses (1 if any
 * reproduces, else 2 if any could not read /proc, else 0), then kill
 * and reap every process of the program. */
static int wait_all(pid_t group, int checks)
{
	struct sigaction sa;
	int status = 0, got = 0;
	char c;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_budget; /* no SA_RESTART: read gives EINTR */
	sigaction(SIGALRM, &sa, NULL);
	alarm(BUDGET);
	close(res[1]);
	while (got < checks && read(res[0], &c, 1) == 1) {
		got++;
		if (c == 1 || status == 1)
			status = 1;
		else if (c > status)
			status = c;
	}
	kill(-group, SIGKILL);
	while (waitpid(-1, NULL, 0) > 0 || errno == EINTR)
		;
	if (got < checks) {
		printf("the processes did not finish their calls and "
		       "checks within %d s\n", BUDGET);
		return 2;
	}
	return status;
}

/* The signal the diverging touch raised (signal and si_code). */
static int check(void)
{
	print_signal("expected: ", 11, 1);
	print_signal("observed: ", fault_sig, fault_code);
	return fault_sig != 11 ||
	       (fault_sig && fault_code != 1);
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
	pid_t pid;

	if (find_arena() != 0)
		return report(2);
	/* this process waits for the program's processes and their
	 * checks, then kills and reaps them (procs.h) */
	if (make_pipes() != 0 ||
	    prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0) {
		perror("pipes");
		return 2;
	}
	pid = fork();
	if (pid < 0) {
		perror("fork");
		return 2;
	}
	if (pid > 0) {
		setpgid(pid, pid);
		return wait_all(pid, 1);
	}
	/* p0 */
	setpgid(0, 0);
	alarm(2 * BUDGET);
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
	pass(0, 0); /* p0 has the first turn */

	/* 0: mmap(@0, 2p, PROT_READ|PROT_WRITE,
	 * MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED, -1, 0)
	 */
	if (me == 0) {
		turn();
		sys(SYS_mmap, ARENA, 0x2000UL, 0x3UL, 0x32UL,
				(unsigned long)-1, 0x0UL);
		pass(0, 0);
	}

	/* 1: touch(@0, write) */
	if (me == 0) {
		turn();
		touch(ARENA, 1);
		pass(0, 0);
	}

	/* 2: madvise(@0, 1p, MADV_DONTFORK) */
	if (me == 0) {
		turn();
		sys(SYS_madvise, ARENA, 0x1000UL, 0xaUL, 0, 0, 0);
		pass(0, 0);
	}

	/* 3: fork() */
	if (me == 0) {
		turn();
		fork_as(1);
		if (me == 0)
			pass(1, 0);
	}

	/* 4: p1: touch(@0, read) -- the diverging step */
	if (me == 1) {
		turn();
		touch(ARENA, 0);
		done(report(check()));
	}
	hold();
	return 0;
}
