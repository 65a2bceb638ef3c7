static const char *errno_name(long e)
{
	static char other[24];

	switch (e) {
TPL_ERRNO_CASES
	}
	snprintf(other, sizeof(other), "E%ld", e);
	return other;
}

/* A result as mmfuzz shows it: -ERRNO, @PAGE for an arena address,
 * else the value. */
static void print_value(const char *label, long ret, int address)
{
	unsigned long u = (unsigned long)ret;

	if (ret < 0 && ret >= -4095)
		printf("%s-%s\n", label, errno_name(-ret));
	else if (address && u >= ARENA && u < ARENA + PAGES * PAGE)
		printf("%s@%lu\n", label, (u - ARENA) / PAGE);
	else if (address)
		printf("%s%#lx\n", label, u);
	else
		printf("%s%ld\n", label, ret);
}
