/* Protection and sharing (smaps perms) of every arena page. */
static const char expected_cells[PAGES * 4 + 1] = TPL_CELLS;

static int check(void)
{
	char observed[PAGES * 4 + 1];

	if (read_smaps() != 0)
		return 2;
	for (int i = 0; i < PAGES; i++) {
		const struct vma *v = vma_of(i);

		memcpy(observed + i * 4, v ? v->perms : "    ", 4);
	}
	observed[PAGES * 4] = '\0';
	print_runs("expected: ", expected_cells, 4, "    ",
		   NOTHING_MAPPED);
	print_runs("observed: ", observed, 4, "    ",
		   NOTHING_MAPPED);
	return memcmp(expected_cells, observed, PAGES * 4) != 0;
}
