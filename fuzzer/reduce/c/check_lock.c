/* Lock flags (smaps VmFlags lo/lf) of every arena page, and of our own
 * VMAs after mlockall. */
static const char expected_cells[PAGES + 1] = TPL_CELLS;
static const char expected_own = TPL_OWN;

static char lock_cell(const struct vma *v)
{
	if (!v)
		return '-';
	if (v->lo)
		return v->lf ? 'f' : 'l';
	return v->lf ? '?' : 'u';
}

static int check(void)
{
	char observed[PAGES + 1];
	int differ;

	if (read_smaps() != 0)
		return 2;
	for (int i = 0; i < PAGES; i++)
		observed[i] = lock_cell(vma_of(i));
	observed[PAGES] = '\0';
	printf("pages: l locked (lo), f lock-on-fault (lo lf), "
	       "u unlocked, ? lf without lo\n");
	print_runs("expected: ", expected_cells, 1, "-",
		   NOTHING_MAPPED);
	print_runs("observed: ", observed, 1, "-",
		   NOTHING_MAPPED);
	differ = memcmp(expected_cells, observed, PAGES) != 0;
	for (int k = 0; expected_own && k < nvmas; k++) {
		const struct vma *v = &vmas[k];

		if (in_arena(v) || v->special ||
		    v->start >= TASK_SIZE ||
		    lock_cell(v) == expected_own)
			continue;
		printf("expected: our own VMAs %c\n"
		       "observed: %lx-%lx %s %c\n", expected_own,
		       v->start, v->end, v->name, lock_cell(v));
		differ = 1;
		break;
	}
	return differ;
}
