/* Which arena pages are mapped, and how much the calls mapped outside
 * the arena. */
static const char expected_cells[PAGES + 1] = TPL_CELLS;
static long outside_before;

static long outside_kb(void)
{
	long kb = 0;

	for (int k = 0; k < nvmas; k++) {
		const struct vma *v = &vmas[k];

		if (!in_arena(v) && strcmp(v->name, "[stack]") != 0 &&
		    strcmp(v->name, "[heap]") != 0)
			kb += (long)((v->end - v->start) / 1024);
	}
	return kb;
}

static int check(void)
{
	char observed[PAGES + 1];
	long outside;

	if (read_smaps() != 0)
		return 2;
	for (int i = 0; i < PAGES; i++)
		observed[i] = vma_of(i) ? 'm' : '-';
	observed[PAGES] = '\0';
	outside = outside_kb() - outside_before;
	printf("pages: m mapped\n");
	print_runs("expected: ", expected_cells, 1, "-",
		   NOTHING_MAPPED);
	printf("expected: TPL_OUTSIDE_KB kB mapped outside the "
	       "arena\n");
	print_runs("observed: ", observed, 1, "-",
		   NOTHING_MAPPED);
	printf("observed: %ld kB mapped outside the arena\n", outside);
	return memcmp(expected_cells, observed, PAGES) != 0 ||
	       outside != TPL_OUTSIDE_KB;
}
