/* Presence: one pagemap letter per arena page, as the model predicts
 * them. */
static const char expected_cells[PAGES + 1] = TPL_CELLS;
#define NONE_PRESENT "no page present"

static int check(void)
{
	char observed[PAGES + 1];

	if (read_pagemap() != 0)
		return 2;
	for (int i = 0; i < PAGES; i++)
		observed[i] = presence(pagemap[i]);
	observed[PAGES] = '\0';
	printf("pages: . absent, Z zero page, A/a anonymous, F/f shmem "
	       "(zero page by PFN: %s)\n",
	       zero_pfn ? "yes" : "no, not root");
	print_runs("expected: ", expected_cells, 1, ".", NONE_PRESENT);
	print_runs("observed: ", observed, 1, ".", NONE_PRESENT);
	return memcmp(expected_cells, observed, PAGES) != 0;
}
