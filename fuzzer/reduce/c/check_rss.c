/* smaps Rss of every arena VMA against its present pages;
 * Locked <= Pss <= Rss <= Size; AnonHugePages against the 2 MiB regions
 * the model has a PMD map a huge page in (one letter a region: H or -),
 * and no shmem or file page mapped by a PMD. */
static const char expected_pmds[] = TPL_PMDS;
#define PMD_PAGES 512

/* kB of huge pages the model maps by PMDs in arena pages first..last */
static long expected_huge(int first, int last)
{
	long kb = 0;

	for (int r = 0; expected_pmds[r]; r++)
		if (expected_pmds[r] == 'H' && first <= r * PMD_PAGES &&
		    r * PMD_PAGES <= last)
			kb += 2048;
	return kb;
}

static int check(void)
{
	int differ = 0;

	if (read_smaps() != 0 || read_pagemap() != 0)
		return 2;
	for (int k = 0; k < nvmas; k++) {
		const struct vma *v = &vmas[k];
		long size = (long)((v->end - v->start) / 1024);
		long resident = 0, huge = 0;
		int first, last, exclusive = 1, bad;

		if (!in_arena(v))
			continue;
		arena_span(v, &first, &last);
		for (int i = first; i <= last; i++) {
			char c = presence(pagemap[i]);

			resident += strchr("AaFf", c) ? 4 : 0;
			exclusive &= !(c == 'a' || c == 'f');
		}
		huge = expected_huge(first, last);
		/* a PMD's pages show its first page's exclusive bit */
		exclusive &= !huge;
		bad = v->rss != resident ||
		      !(v->locked <= v->pss && v->pss <= v->rss &&
			v->rss <= size) ||
		      (exclusive && v->pss != v->rss) ||
		      v->anon_huge != huge || v->file_pmd != 0;
		printf("expected: @%d-%d Rss %ld kB, AnonHugePages %ld "
		       "kB, Locked <= Pss <= Rss <= Size\n", first,
		       last, resident, huge);
		printf("observed: @%d-%d Size %ld kB Rss %ld kB "
		       "Pss %ld kB Locked %ld kB AnonHugePages %ld kB "
		       "Shmem/FilePmdMapped %ld kB%s\n", first, last,
		       size, v->rss, v->pss, v->locked, v->anon_huge,
		       v->file_pmd, bad ? "  <- differs" : "");
		differ |= bad;
	}
	return differ;
}
