/* smaps Locked of every arena VMA: its Pss when it is VM_LOCKED,
 * else 0. */
static int check(void)
{
	int differ = 0;

	if (read_smaps() != 0)
		return 2;
	for (int k = 0; k < nvmas; k++) {
		const struct vma *v = &vmas[k];
		long want = v->lo ? v->pss : 0;
		int first, last;

		if (!in_arena(v))
			continue;
		arena_span(v, &first, &last);
		printf("expected: @%d-%d Locked %ld kB\n", first, last,
		       want);
		printf("observed: @%d-%d Locked %ld kB%s\n", first,
		       last, v->locked,
		       v->locked != want ? "  <- differs" : "");
		differ |= v->locked != want;
	}
	return differ;
}
