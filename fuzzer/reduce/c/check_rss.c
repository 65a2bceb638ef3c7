/* smaps Rss of every arena VMA against its present pages;
 * Locked <= Pss <= Rss <= Size. */
static int check(void)
{
	int differ = 0;

	if (read_smaps() != 0 || read_pagemap() != 0)
		return 2;
	for (int k = 0; k < nvmas; k++) {
		const struct vma *v = &vmas[k];
		long size = (long)((v->end - v->start) / 1024);
		long resident = 0;
		int first, last, exclusive = 1, bad;

		if (!in_arena(v))
			continue;
		arena_span(v, &first, &last);
		for (int i = first; i <= last; i++) {
			char c = presence(pagemap[i]);

			resident += strchr("AaFf", c) ? 4 : 0;
			exclusive &= !(c == 'a' || c == 'f');
		}
		bad = v->rss != resident ||
		      !(v->locked <= v->pss && v->pss <= v->rss &&
			v->rss <= size) ||
		      (exclusive && v->pss != v->rss);
		printf("expected: @%d-%d Rss %ld kB, "
		       "Locked <= Pss <= Rss <= Size\n", first, last,
		       resident);
		printf("observed: @%d-%d Size %ld kB Rss %ld kB "
		       "Pss %ld kB Locked %ld kB%s\n", first, last,
		       size, v->rss, v->pss, v->locked,
		       bad ? "  <- differs" : "");
		differ |= bad;
	}
	return differ;
}
