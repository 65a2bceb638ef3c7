struct vma {
	unsigned long start, end;
	char perms[5], name[32];
	unsigned long inode; /* the shmem object of a shared anonymous mapping */
	long rss, pss, locked; /* kB */
	int lo, lf, dc, wf, sl, special;
};
static struct vma vmas[1024];
static int nvmas;

/* Whether the VmFlags line at p has the two-letter flag. */
static int has_flag(const char *p, const char *flag)
{
	while (*p && *p != '\n') {
		while (*p == ' ')
			p++;
		if (strncmp(p, flag, 2) == 0 && (p[2] == ' ' || p[2] == '\n' || p[2] == '\0'))
			return 1;
		while (*p && *p != ' ' && *p != '\n')
			p++;
	}
	return 0;
}

/* /proc/self/smaps: range, perms, name, Rss, Pss, Locked and lock flags of every VMA. */
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
		if (sscanf(line, "%lx-%lx %4s %*s %*s %lu %n", &start, &end, perms, &inode,
					&name) == 4) {
			if (nvmas == (int)(sizeof(vmas) / sizeof(vmas[0])))
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
		} else if (strncmp(line, "Locked:", 7) == 0) {
			v->locked = atol(line + 7);
		} else if (strncmp(line, "VmFlags:", 8) == 0) {
			v->lo = has_flag(line + 8, "lo");
			v->lf = has_flag(line + 8, "lf") || has_flag(line + 8, "??");
			v->dc = has_flag(line + 8, "dc");
			v->wf = has_flag(line + 8, "wf");
			v->sl = has_flag(line + 8, "sl");
			v->special = has_flag(line + 8, "io") || has_flag(line + 8, "pf") ||
						has_flag(line + 8, "mm") || has_flag(line + 8, "de");
		}
	}
	return 0;
}
