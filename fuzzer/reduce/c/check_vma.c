/* VMA boundaries: no arena VMA may span pages the model keeps apart
 * (one letter per set of attributes: protection, sharing, lock flags,
 * shmem object); and shared pages are in the same shmem object (inode)
 * exactly when the model says so (one letter per object). */
static const char expected_cells[PAGES + 1] = TPL_CELLS;
static const char expected_objects[PAGES + 1] = TPL_OBJECTS;

static int objects_differ(void)
{
	for (int i = 0; i < PAGES; i++) {
		for (int j = i + 1; j < PAGES; j++) {
			const struct vma *a = vma_of(i), *b = vma_of(j);
			char x = expected_objects[i];
			char y = expected_objects[j];
			int one = a && b && a->inode == b->inode;

			if (x == ' ' || y == ' ' || !a || !b)
				continue;
			if ((x == y) != one) {
				printf("observed: pages @%d and @%d "
				       "are %s shmem object, the model "
				       "says %s\n", i, j,
				       one ? "in one" : "in different",
				       x == y ? "one" : "two");
				return 1;
			}
		}
	}
	return 0;
}

static int check(void)
{
	int differ = 0;

	if (read_smaps() != 0)
		return 2;
	print_runs("expected: ", expected_cells, 1, " ",
		   NOTHING_MAPPED);
	for (int k = 0; k < nvmas; k++) {
		const struct vma *v = &vmas[k];
		int first, last;

		if (!in_arena(v))
			continue;
		arena_span(v, &first, &last);
		for (int i = first; i <= last; i++) {
			if (expected_cells[i] == expected_cells[first])
				continue;
			printf("observed: one VMA @%d-%d %s spans "
			       "pages the model keeps apart\n", first,
			       last, v->perms);
			differ = 1;
			break;
		}
	}
	differ |= objects_differ();
	if (!differ)
		printf("observed: every arena VMA within one set of "
		       "attributes, one shmem object per mmap\n");
	return differ;
}
