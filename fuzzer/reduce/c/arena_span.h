/* First and last arena page of an arena VMA. */
static void arena_span(const struct vma *v, int *first, int *last)
{
	*first = v->start < ARENA ? 0
		: (int)((v->start - ARENA) / PAGE);
	*last = v->end > ARENA + PAGES * PAGE ? PAGES - 1
		: (int)((v->end - ARENA) / PAGE) - 1;
}
