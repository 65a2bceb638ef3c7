/* The VMA holding arena page i, or NULL. */
static const struct vma *vma_of(int i)
{
	unsigned long addr = ARENA + (unsigned long)i * PAGE;

	for (int k = 0; k < nvmas; k++)
		if (vmas[k].start <= addr && addr < vmas[k].end)
			return &vmas[k];
	return NULL;
}
