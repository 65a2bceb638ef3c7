"""The C reproducer's check functions, one per divergence kind.

Each is a `static int check(...)` returning 1 when the kernel shows the
divergence, 0 when it agrees, 2 when /proc could not be read; `csource.py`
%-formats it with what the model predicts at the diverging step (so `%%` is a
literal percent sign for printf).
"""

from __future__ import annotations

PRESENCE = r"""
/* Presence: one pagemap letter per arena page, as the model predicts them. */
static const char expected_cells[PAGES + 1] = %(cells)s;

static int check(void)
{
	char observed[PAGES + 1];

	if (read_pagemap() != 0)
		return 2;
	for (int i = 0; i < PAGES; i++)
		observed[i] = presence(pagemap[i]);
	observed[PAGES] = '\0';
	printf("pages: . absent, Z zero page, A/a anonymous, F/f shmem (zero page by PFN: %%s)\n",
			zero_pfn ? "yes" : "no, not root");
	print_runs("expected: ", expected_cells, 1, ".", "no page present");
	print_runs("observed: ", observed, 1, ".", "no page present");
	return memcmp(expected_cells, observed, PAGES) != 0;
}
"""

LOCK = r"""
/* Lock flags (smaps VmFlags lo/lf) of every arena page, and of our own VMAs after mlockall. */
static const char expected_cells[PAGES + 1] = %(cells)s;
static const char expected_own = %(own)s;

static char lock_cell(const struct vma *v)
{
	if (!v)
		return '-';
	if (v->lo)
		return v->lf ? 'f' : 'l';
	return v->lf ? '?' : 'u';
}

static int check(void)
{
	char observed[PAGES + 1];
	int differ;

	if (read_smaps() != 0)
		return 2;
	for (int i = 0; i < PAGES; i++)
		observed[i] = lock_cell(vma_of(i));
	observed[PAGES] = '\0';
	printf("pages: l locked (lo), f lock-on-fault (lo lf), u unlocked, ? lf without lo\n");
	print_runs("expected: ", expected_cells, 1, "-", "nothing mapped");
	print_runs("observed: ", observed, 1, "-", "nothing mapped");
	differ = memcmp(expected_cells, observed, PAGES) != 0;
	for (int k = 0; expected_own && k < nvmas; k++) {
		const struct vma *v = &vmas[k];

		if (in_arena(v) || v->special || v->start >= TASK_SIZE || lock_cell(v) == expected_own)
			continue;
		printf("expected: our own VMAs %%c\nobserved: %%lx-%%lx %%s %%c\n", expected_own,
				v->start, v->end, v->name, lock_cell(v));
		differ = 1;
		break;
	}
	return differ;
}
"""

FORK = r"""
/* Fork flags (smaps VmFlags dc: MADV_DONTFORK, wf: MADV_WIPEONFORK) of every arena page. */
static const char expected_cells[PAGES + 1] = %(cells)s;

static int check(void)
{
	char observed[PAGES + 1];

	if (read_smaps() != 0)
		return 2;
	for (int i = 0; i < PAGES; i++) {
		const struct vma *v = vma_of(i);

		observed[i] = !v ? '-' : v->dc ? (v->wf ? 'b' : 'd') : (v->wf ? 'w' : 'n');
	}
	observed[PAGES] = '\0';
	printf("pages: d dc (don't copy), w wf (wipe on fork), b both, n neither\n");
	print_runs("expected: ", expected_cells, 1, "-", "nothing mapped");
	print_runs("observed: ", observed, 1, "-", "nothing mapped");
	return memcmp(expected_cells, observed, PAGES) != 0;
}
"""

VMLCK = r"""
/* VmLck (status) against the size of the locked VMAs, and the arena's share of it. */
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
	if (read_text("/proc/self/status") != 0 || !(line = strstr(text, "VmLck:")))
		return 2;
	vmlck = atol(line + 6);
	printf("expected: VmLck %%ld kB (the size of the locked VMAs), %(arena_kb)d kB of them in "
			"the arena\n", locked);
	printf("observed: VmLck %%ld kB, %%ld kB of locked VMAs in the arena\n", vmlck, arena);
	return vmlck != locked || arena != %(arena_kb)d;
}
"""

MAPPING = r"""
/* Which arena pages are mapped, and how much the calls mapped outside the arena. */
static const char expected_cells[PAGES + 1] = %(cells)s;
static long outside_before;

static long outside_kb(void)
{
	long kb = 0;

	for (int k = 0; k < nvmas; k++)
		if (!in_arena(&vmas[k]) && strcmp(vmas[k].name, "[stack]") != 0 &&
				strcmp(vmas[k].name, "[heap]") != 0)
			kb += (long)((vmas[k].end - vmas[k].start) / 1024);
	return kb;
}

static int check(void)
{
	char observed[PAGES + 1];
	long outside;

	if (read_smaps() != 0)
		return 2;
	for (int i = 0; i < PAGES; i++)
		observed[i] = vma_of(i) ? 'm' : '-';
	observed[PAGES] = '\0';
	outside = outside_kb() - outside_before;
	printf("pages: m mapped\n");
	print_runs("expected: ", expected_cells, 1, "-", "nothing mapped");
	printf("expected: %(outside_kb)d kB mapped outside the arena\n");
	print_runs("observed: ", observed, 1, "-", "nothing mapped");
	printf("observed: %%ld kB mapped outside the arena\n", outside);
	return memcmp(expected_cells, observed, PAGES) != 0 || outside != %(outside_kb)d;
}
"""

PROT = r"""
/* Protection and sharing (smaps perms) of every arena page. */
static const char expected_cells[PAGES * 4 + 1] = %(cells)s;

static int check(void)
{
	char observed[PAGES * 4 + 1];

	if (read_smaps() != 0)
		return 2;
	for (int i = 0; i < PAGES; i++) {
		const struct vma *v = vma_of(i);

		memcpy(observed + i * 4, v ? v->perms : "    ", 4);
	}
	observed[PAGES * 4] = '\0';
	print_runs("expected: ", expected_cells, 4, "    ", "nothing mapped");
	print_runs("observed: ", observed, 4, "    ", "nothing mapped");
	return memcmp(expected_cells, observed, PAGES * 4) != 0;
}
"""

RSS = r"""
/* smaps Rss of every arena VMA against its present pages; Locked <= Pss <= Rss <= Size. */
static int check(void)
{
	int differ = 0;

	if (read_smaps() != 0 || read_pagemap() != 0)
		return 2;
	for (int k = 0; k < nvmas; k++) {
		const struct vma *v = &vmas[k];
		long size = (long)((v->end - v->start) / 1024), resident = 0;
		int first, last, exclusive = 1, bad;

		if (!in_arena(v))
			continue;
		arena_span(v, &first, &last);
		for (int i = first; i <= last; i++) {
			char c = presence(pagemap[i]);

			resident += strchr("AaFf", c) ? 4 : 0;
			exclusive &= !(c == 'a' || c == 'f');
		}
		bad = v->rss != resident || !(v->locked <= v->pss && v->pss <= v->rss &&
							v->rss <= size) || (exclusive && v->pss != v->rss);
		printf("expected: @%%d-%%d Rss %%ld kB, Locked <= Pss <= Rss <= Size\n", first, last,
				resident);
		printf("observed: @%%d-%%d Size %%ld kB Rss %%ld kB Pss %%ld kB Locked %%ld kB%%s\n", first,
				last, size, v->rss, v->pss, v->locked, bad ? "  <- differs" : "");
		differ |= bad;
	}
	return differ;
}
"""

LOCKED = r"""
/* smaps Locked of every arena VMA: its Pss when it is VM_LOCKED, else 0. */
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
		printf("expected: @%%d-%%d Locked %%ld kB\n", first, last, want);
		printf("observed: @%%d-%%d Locked %%ld kB%%s\n", first, last, v->locked,
				v->locked != want ? "  <- differs" : "");
		differ |= v->locked != want;
	}
	return differ;
}
"""

VMA = r"""
/* VMA boundaries: no arena VMA may span pages the model keeps apart (one letter per
 * set of attributes: protection, sharing, lock flags, shmem object); and shared pages
 * are in the same shmem object (inode) exactly when the model says so (one letter
 * per object). */
static const char expected_cells[PAGES + 1] = %(cells)s;
static const char expected_objects[PAGES + 1] = %(objects)s;

static int objects_differ(void)
{
	for (int i = 0; i < PAGES; i++) {
		for (int j = i + 1; j < PAGES; j++) {
			const struct vma *a = vma_of(i), *b = vma_of(j);

			if (expected_objects[i] == ' ' || expected_objects[j] == ' ' || !a || !b)
				continue;
			if ((expected_objects[i] == expected_objects[j]) != (a->inode == b->inode)) {
				printf("observed: pages @%%d and @%%d are %%s shmem object, the model says "
						"%%s\n", i, j, a->inode == b->inode ? "in one" : "in different",
						expected_objects[i] == expected_objects[j] ? "one" : "two");
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
	print_runs("expected: ", expected_cells, 1, " ", "nothing mapped");
	for (int k = 0; k < nvmas; k++) {
		const struct vma *v = &vmas[k];
		int first, last;

		if (!in_arena(v))
			continue;
		arena_span(v, &first, &last);
		for (int i = first; i <= last; i++) {
			if (expected_cells[i] != expected_cells[first]) {
				printf("observed: one VMA @%%d-%%d %%s spans pages the model keeps apart\n",
						first, last, v->perms);
				differ = 1;
				break;
			}
		}
	}
	differ |= objects_differ();
	if (!differ)
		printf("observed: every arena VMA within one set of attributes, one shmem object "
				"per mmap\n");
	return differ;
}
"""

RESULT = r"""
/* The diverging call's return value. */
static int check(long ret)
{
	print_value("expected: ", %(want)s, %(address)d);
	print_value("observed: ", ret, %(address)d);
	return ret != %(want)s;
}
"""

RESULT_OUTSIDE = r"""
/* The diverging call's return value: an address the kernel chose, outside the arena. */
static int check(long ret)
{
	unsigned long u = (unsigned long)ret;
	int outside = !(ret < 0 && ret >= -4095) && (u < ARENA || u >= ARENA + PAGES * PAGE);

	printf("expected: an address outside the arena\n");
	print_value("observed: ", ret, %(address)d);
	return !outside;
}
"""

SIGNAL = r"""
/* The signal the diverging touch raised (signal and si_code). */
static int check(void)
{
	print_signal("expected: ", %(sig)d, %(code)d);
	print_signal("observed: ", fault_sig, fault_code);
	return fault_sig != %(sig)d || (fault_sig && fault_code != %(code)d);
}
"""

HANG = r"""
/* Reached only if every call returned within the budget. */
static int check(void)
{
	alarm(0);
	printf("expected: the call returns\nobserved: it returned\n");
	return 0;
}
"""

CRASH = r"""
/* Reached only if the process survived every call. */
static int check(void)
{
	printf("expected: the process survives\nobserved: it survived\n");
	return 0;
}
"""
