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
#define PAGES TPL_PAGES

/* mmfuzz's arena, where its executor puts it on the kernel this runs
 * on (fuzzer/prog/arena.py): the first of these that fits below the
 * end of this process's address space (an x86-64 host's, then a
 * User-Mode Linux guest's), found by find_arena() before the first
 * call. */
static const unsigned long arenas[] = {
	TPL_ARENAS
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

static const char title[] = TPL_TITLE;
static sigjmp_buf touch_env;
static volatile sig_atomic_t touching, fault_sig, fault_code;
