/* VmLck (status) against the size of the locked VMAs, and the arena's
 * share of it. */
static int check(void)
{
	long vmlck = -1, locked = 0, arena = 0;
	char *line;

	if (read_smaps() != 0)
		return 2;
	for (int k = 0; k < nvmas; k++) {
		const struct vma *v = &vmas[k];

		if (!v->lo)
			continue;
		locked += (long)((v->end - v->start) / 1024);
		if (in_arena(v)) {
			int first, last;

			arena_span(v, &first, &last);
			arena += (last - first + 1) * 4;
		}
	}
	if (read_text("/proc/self/status") != 0 ||
	    !(line = strstr(text, "VmLck:")))
		return 2;
	vmlck = atol(line + 6);
	printf("expected: VmLck %ld kB (the size of the locked VMAs), "
	       "TPL_ARENA_KB kB of them in the arena\n", locked);
	printf("observed: VmLck %ld kB, %ld kB of locked VMAs in the "
	       "arena\n", vmlck, arena);
	return vmlck != locked || arena != TPL_ARENA_KB;
}
