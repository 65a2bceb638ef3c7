/* The seal (smaps VmFlags sl: mseal) of every arena page. */
static const char expected_cells[PAGES + 1] = TPL_CELLS;

static int check(void)
{
	char observed[PAGES + 1];

	if (read_smaps() != 0)
		return 2;
	for (int i = 0; i < PAGES; i++) {
		const struct vma *v = vma_of(i);

		observed[i] = !v ? '-' : v->sl ? 's' : 'n';
	}
	observed[PAGES] = '\0';
	printf("pages: s sealed, n not sealed\n");
	print_runs("expected: ", expected_cells, 1, "-",
		   NOTHING_MAPPED);
	print_runs("observed: ", observed, 1, "-",
		   NOTHING_MAPPED);
	return memcmp(expected_cells, observed, PAGES) != 0;
}
