/*
 * The page a process reads after this bucket's trigger: a freed page.
 *
 * Trigger (minimized.prog): a private anonymous page that holds data is
 * replaced by a memfd of size 0, mapped with
 * MAP_SHARED|MAP_FIXED|MAP_LOCKED. The new page lies past the end of
 * the file, so every access to it must raise SIGBUS (BUS_ADRERR); the
 * old page is unmapped and freed.
 *
 * On User-Mode Linux 6.12 the old page stays mapped in the host process
 * that runs the guest's process when the unmap freed the page-middle
 * table that covered it (nothing else mapped in its 1 GiB) and the
 * populate then allocated a new one before the host was told: this
 * program reads the old page there after the kernel freed it, then lets
 * a second process allocate pages and reads the address again: other
 * data, as the kernel has given the page out again. If it became the
 * second process's page (its marker), this one writes into it and that
 * process reports finding the text; other runs find it most likely
 * reused as a page table (one word 0x2, _PAGE_NEWPAGE, the value
 * pte_clear() and pmd_clear() write), which it only reads.
 *
 * Each case runs in a fresh process at a 1 GiB-aligned address with
 * nothing else in its 1 GiB:
 *   MAP_LOCKED                  the trigger
 *   MAP_POPULATE                the same populate, without the lock
 *   no populate                 control: nothing faults before the
 *                               return to user space
 *   a mapping 16 KiB away       control: the page table stays
 *   a mapping 4 MiB away        control: the page table is freed, the
 *                               page-middle table stays
 * Expected everywhere: SIGBUS for every access.
 *
 * Seen (mmfuzz's guests, the binary run by the guest's Run request as
 * `export --check` runs repro.c): on UML 6.12.118 MAP_LOCKED and
 * MAP_POPULATE read "MARKER: the old private page", the three controls
 * raise SIGBUS, and after the second process ran the same address shows
 * other data (the freed page given out again: in 1 run of 4 the second
 * process's page, which it then wrote through this address, in 3 most
 * likely a page table); UML 6.1.176, UML
 * 6.1.192 and the 6.18.44 host raise SIGBUS for every access.
 *
 * Build: cc -Wall -static -o stale stale.c
 * Run:   ./stale   (exit 1: a freed page was read or written; 0: every
 *        access raised SIGBUS; 2: a call failed)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAGE 4096UL
#define PMD (2UL << 20)
#define GIB (1UL << 30)
#define OTHER_PAGES 64

static const char mine[] = "MARKER: the old private page";
static const char written[] = "WRITTEN through the old address";
static sigjmp_buf env;
static volatile sig_atomic_t touching, got_sig, got_code;

static void on_fault(int sig, siginfo_t *info, void *ctx)
{
	(void)ctx;
	if (!touching) {
		signal(sig, SIG_DFL);
		raise(sig);
	}
	got_sig = sig;
	got_code = info->si_code;
	siglongjmp(env, 1);
}

/* Read n bytes at p into buf, or write s there: 0, or the signal. */
static int access_page(volatile char *p, char *buf, size_t n,
		       const char *s)
{
	size_t i;

	got_sig = 0;
	got_code = 0;
	touching = 1;
	if (sigsetjmp(env, 1) == 0) {
		if (s)
			for (i = 0; s[i]; i++)
				p[i] = s[i];
		else
			for (i = 0; i < n; i++)
				buf[i] = p[i];
	}
	touching = 0;
	return got_sig;
}

static void print_access(const char *what, const char *buf, size_t n)
{
	char text[64];
	size_t i;

	if (got_sig) {
		printf("  %s: %s (si_code %d)\n", what,
		       got_sig == SIGBUS ? "SIGBUS" : "SIGSEGV", (int)got_code);
		return;
	}
	if (!buf) {
		printf("  %s: no signal\n", what);
		return;
	}
	for (i = 0; i < n && i < sizeof(text) - 1; i++)
		text[i] = buf[i] >= 32 && buf[i] < 127 ? buf[i] : '.';
	text[i] = 0;
	printf("  %s: no signal, reads \"%s\"\n", what, text);
}

/* A 1 GiB-aligned address with nothing else mapped in its 1 GiB (the
 * span of one page-middle-directory table in a 64-bit UML guest). */
static char *lonely(void)
{
	char *r = mmap(NULL, 3 * GIB, PROT_NONE, MAP_PRIVATE |
		       MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	char *p;

	if (r == MAP_FAILED)
		return NULL;
	p = (char *)(((uintptr_t)r + GIB) & ~(GIB - 1));
	munmap(r, 3 * GIB);
	return p;
}

/* The trigger at a lonely address; flags: MAP_LOCKED, MAP_POPULATE or
 * 0. NULL if a call failed. */
static char *trigger(int flags, unsigned long neighbour)
{
	char *p = lonely(), tmp[sizeof(mine)];
	int fd;

	if (!p || mmap(p, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE |
		       MAP_ANONYMOUS | MAP_FIXED, -1, 0) != p)
		return NULL;
	if (neighbour && mmap(p + neighbour, PAGE, PROT_READ, MAP_PRIVATE |
			      MAP_ANONYMOUS | MAP_FIXED, -1, 0) != p + neighbour)
		return NULL;
	strcpy(p, mine);
	/* an access now, so that the read after the trigger allocates
	 * nothing (after a fork, its first write to the stack or to the
	 * signal state would copy a page, into the page just freed) */
	access_page(p, tmp, sizeof(tmp), NULL);
	fd = memfd_create("stale", 0); /* size 0: every page past EOF */
	if (fd < 0)
		return NULL;
	if (mmap(p, PAGE, PROT_READ, MAP_SHARED | MAP_FIXED | flags, fd, 0)
	    != p)
		return NULL;
	return p;
}

/* One case in a fresh process; its exit status as main's. */
static int one_case(const char *name, int flags, unsigned long neighbour)
{
	char buf[sizeof(mine)];
	int status;
	pid_t pid = fork();
	char *p;

	if (pid != 0) {
		if (pid < 0 || waitpid(pid, &status, 0) != pid ||
		    !WIFEXITED(status))
			return 2;
		return WEXITSTATUS(status);
	}
	p = trigger(flags, neighbour);
	if (!p) {
		printf("%s: a call failed: %s\n", name, strerror(errno));
		_exit(2);
	}
	access_page(p, buf, sizeof(buf) - 1, NULL);
	printf("%s:\n", name);
	print_access("read", buf, sizeof(buf) - 1);
	_exit(got_sig != SIGBUS);
}

/* The trigger, then a second process's pages read and written through
 * the old address. */
static int use_after_free(void)
{
	volatile int *flag = mmap(NULL, PAGE, PROT_READ | PROT_WRITE,
				  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	char buf[sizeof(mine)], other[48];
	int stale = 0, status, i, words = 0, first_sig, first_code, sig, code;
	pid_t pid;
	char *p, *q;

	if (flag == MAP_FAILED)
		return 2;
	pid = fork();
	if (pid == 0) {
		/* the second process: its pages, the first one touched
		 * now so that its page table exists; then, when told,
		 * one fresh page each, with its marker */
		q = mmap(NULL, OTHER_PAGES * PAGE, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (q == MAP_FAILED)
			_exit(2);
		/* and the stack and libc state it needs, written now: a
		 * forked process copies such pages on its first write */
		snprintf(q, 48, "OTHER: pid %d page %d", (int)getpid(), 0);
		for (i = 0; i < OTHER_PAGES; i++)
			if (!memcmp(q + i * PAGE, written, sizeof(written) - 1))
				printf("never\n");
		while (*flag != 1)
			sched_yield();
		for (i = 1; i < OTHER_PAGES; i++)
			snprintf(q + i * PAGE, 48, "OTHER: pid %d page %d",
				 (int)getpid(), i);
		*flag = 2;
		while (*flag != 3)
			sched_yield();
		for (i = 1; i < OTHER_PAGES; i++)
			if (!memcmp(q + i * PAGE, written,
				    sizeof(written) - 1))
				printf("  the second process (pid %d) finds "
				       "\"%s\" in its page %d\n",
				       (int)getpid(), written, i);
		_exit(0);
	}
	if (pid < 0)
		return 2;

	printf("MAP_LOCKED, then a second process allocates pages:\n");
	p = trigger(MAP_LOCKED, 0);
	if (!p) {
		printf("  a call failed: %s\n", strerror(errno));
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return 2;
	}
	/* no allocation between the trigger and this read, nor until
	 * the second process has run (printed after) */
	access_page(p, buf, sizeof(buf) - 1, NULL);
	first_sig = got_sig;
	first_code = got_code;
	stale |= got_sig != SIGBUS;

	*flag = 1;
	while (*flag != 2)
		sched_yield();
	access_page(p, other, sizeof(other) - 1, NULL);
	sig = got_sig;
	code = got_code;
	got_sig = first_sig;
	got_code = first_code;
	print_access("read", buf, sizeof(buf) - 1);
	got_sig = sig;
	got_code = code;
	stale |= got_sig != SIGBUS;
	if (got_sig || !strncmp(other, "OTHER: ", 7)) {
		print_access("read after the second process filled its "
			     "pages", other, strnlen(other, sizeof(other) - 1));
	} else {
		volatile unsigned long *w = (volatile unsigned long *)p;

		for (i = 0; i < (int)(PAGE / 8); i++)
			words += w[i] != 0;
		printf("  read after the second process filled its pages: "
		       "no signal, the marker is gone: %d of %lu words "
		       "non-zero (the page was given out again)", words,
		       PAGE / 8);
		for (i = 0, words = 0; i < (int)(PAGE / 8) && words < 3; i++)
			if (w[i])
				printf("%s word %d = %#lx", words++ ? "," : ":",
				       i, w[i]);
		printf("\n");
	}
	if (!got_sig && !strncmp(other, "OTHER: ", 7)) {
		/* the second process's page: write into it */
		access_page(p, NULL, 0, written);
		stale |= got_sig != SIGBUS;
		print_access("write", NULL, 0);
	}
	*flag = 3;
	waitpid(pid, &status, 0);
	return stale;
}

int main(void)
{
	struct sigaction sa;
	int r, stale = 0, failed = 0;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_fault;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
	setvbuf(stdout, NULL, _IONBF, 0);

	r = one_case("MAP_LOCKED", MAP_LOCKED, 0);
	stale |= r == 1;
	failed |= r == 2;
	r = one_case("MAP_POPULATE", MAP_POPULATE, 0);
	stale |= r == 1;
	failed |= r == 2;
	r = one_case("no populate (control)", 0, 0);
	stale |= r == 1;
	failed |= r == 2;
	r = one_case("MAP_LOCKED, a mapping 16 KiB away (control)",
		     MAP_LOCKED, 4 * PAGE);
	stale |= r == 1;
	failed |= r == 2;
	r = one_case("MAP_LOCKED, a mapping 4 MiB away (control)",
		     MAP_LOCKED, 2 * PMD);
	stale |= r == 1;
	failed |= r == 2;
	r = use_after_free();
	stale |= r == 1;
	failed |= r == 2;
	printf(failed ? "a call failed\n"
	       : stale ? "STALE: a page the kernel freed is still mapped\n"
	       : "ok: every access past EOF raised SIGBUS\n");
	return failed ? 2 : stale;
}
