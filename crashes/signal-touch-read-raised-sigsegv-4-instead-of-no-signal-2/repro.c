/*
 * mmfuzz reproducer for bucket #2:
 *
 *   signal: touch(read) raised SIGSEGV/4 instead of no signal
 *
 * kind signal, diverging at step 1: touch(@0, read)
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

static const char title[] = "signal: touch(read) raised SIGSEGV/4 instead of no signal";
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

/* The signal the diverging touch raised (signal and si_code). */
static int check(void)
{
	print_signal("expected: ", 0, 0);
	print_signal("observed: ", fault_sig, fault_code);
	return fault_sig != 0 || (fault_sig && fault_code != 0);
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

	/* 0: mmap(@0, 1p, PROT_EXEC, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) */
	sys(SYS_mmap, ARENA, 0x1000UL, 0x4UL, 0x22UL, (unsigned long)-1, 0x0UL);

	/* 1: touch(@0, read) -- the diverging step */
	touch(ARENA, 0);

	return report(check());
}
