static int in_arena(const struct vma *v)
{
	return v->end > ARENA && v->start < ARENA + PAGES * PAGE;
}
