/* PG_mlocked (/proc/kpageflags bit 33, at the PFN pagemap gives
 * root) of every arena page the model judges: M must be set, u must
 * not be, - not judged. The kernel clears the flag through a per-CPU
 * batch: a MADV_POPULATE_READ of a page of our own empties it
 * (lru_add_drain) before the flags are read, as mmfuzz's executor
 * does before every stop. */
static const char expected_cells[PAGES + 1] = TPL_CELLS;
#define KPF_MLOCKED (1ULL << 33)
#define NOTHING_JUDGED "no page judged"

static char drain_page[4096] __attribute__((aligned(4096)));

static int check(void)
{
	char observed[PAGES + 1];
	int fd;

	sys(SYS_madvise, (unsigned long)drain_page, sizeof(drain_page),
	    22 /* MADV_POPULATE_READ */, 0, 0, 0);
	if (read_pagemap() != 0)
		return 2;
	fd = open("/proc/kpageflags", O_RDONLY);
	if (fd < 0)
		return 2;
	for (int i = 0; i < PAGES; i++) {
		uint64_t flags = 0, pfn = pagemap[i] & PM_PFN;

		observed[i] = '-';
		if (expected_cells[i] == '-' || !pfn ||
		    !strchr("AaFf", presence(pagemap[i])))
			continue;
		if (pread(fd, &flags, 8, (off_t)(pfn * 8)) != 8) {
			close(fd);
			return 2;
		}
		observed[i] = flags & KPF_MLOCKED ? 'M' : 'u';
	}
	close(fd);
	observed[PAGES] = '\0';
	printf("pages: M PG_mlocked, u not, - not judged "
	       "(/proc/kpageflags)\n");
	print_runs("expected: ", expected_cells, 1, "-",
		   NOTHING_JUDGED);
	print_runs("observed: ", observed, 1, "-", NOTHING_JUDGED);
	return memcmp(expected_cells, observed, PAGES) != 0;
}
