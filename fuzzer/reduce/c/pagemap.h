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
