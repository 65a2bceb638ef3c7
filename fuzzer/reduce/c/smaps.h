struct vma {
	unsigned long start, end;
	char perms[5], name[32];
	/* the shmem object of a shared anonymous mapping */
	unsigned long inode;
	long rss, pss, locked; /* kB */
	/* kB mapped by PMDs: AnonHugePages, Shmem+FilePmdMapped */
	long anon_huge, file_pmd;
	int lo, lf, dc, wf, sl, special;
};
#define MAX_VMAS 1024
static struct vma vmas[MAX_VMAS];
static int nvmas;

/* Whether the VmFlags line at p has the two-letter flag. */
static int has_flag(const char *p, const char *flag)
{
	while (*p && *p != '\n') {
		while (*p == ' ')
			p++;
		if (strncmp(p, flag, 2) == 0 &&
		    (p[2] == ' ' || p[2] == '\n' || p[2] == '\0'))
			return 1;
		while (*p && *p != ' ' && *p != '\n')
			p++;
	}
	return 0;
}

/* /proc/self/smaps: range, perms, name, Rss, Pss, Locked, the sizes
 * PMDs map and lock flags of every VMA. */
static int read_smaps(void)
{
	char *line, *next;

	if (read_text("/proc/self/smaps") != 0)
		return -1;
	nvmas = 0;
	for (line = text; *line; line = next) {
		struct vma *v = &vmas[nvmas ? nvmas - 1 : 0];
		unsigned long start, end, inode;
		char perms[5];
		int name = 0;

		next = strchr(line, '\n');
		next = next ? next + 1 : line + strlen(line);
		if (sscanf(line, "%lx-%lx %4s %*s %*s %lu %n", &start,
			   &end, perms, &inode, &name) == 4) {
			if (nvmas == MAX_VMAS)
				return -1;
			v = &vmas[nvmas++];
			memset(v, 0, sizeof(*v));
			v->start = start;
			v->end = end;
			v->inode = inode;
			memcpy(v->perms, perms, sizeof(v->perms));
			if (name > 0)
				sscanf(line + name, "%31s", v->name);
		} else if (!nvmas) {
			continue;
		} else if (strncmp(line, "Rss:", 4) == 0) {
			v->rss = atol(line + 4);
		} else if (strncmp(line, "Pss:", 4) == 0) {
			v->pss = atol(line + 4);
		} else if (strncmp(line, "AnonHugePages:", 14) == 0) {
			v->anon_huge = atol(line + 14);
		} else if (strncmp(line, "ShmemPmdMapped:", 15) == 0) {
			v->file_pmd += atol(line + 15);
		} else if (strncmp(line, "FilePmdMapped:", 14) == 0) {
			v->file_pmd += atol(line + 14);
		} else if (strncmp(line, "Locked:", 7) == 0) {
			v->locked = atol(line + 7);
		} else if (strncmp(line, "VmFlags:", 8) == 0) {
			const char *f = line + 8;

			v->lo = has_flag(f, "lo");
			v->lf = has_flag(f, "lf") || has_flag(f, "??");
			v->dc = has_flag(f, "dc");
			v->wf = has_flag(f, "wf");
			v->sl = has_flag(f, "sl");
			v->special = has_flag(f, "io") ||
				     has_flag(f, "pf") ||
				     has_flag(f, "mm") ||
				     has_flag(f, "de");
		}
	}
	return 0;
}
