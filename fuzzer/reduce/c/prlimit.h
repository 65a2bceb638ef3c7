/* prlimit_memlock(N): RLIMIT_MEMLOCK (8), soft and hard, to N bytes. */
static long prlimit_memlock(unsigned long bytes)
{
	unsigned long lim[2] = { bytes, bytes };

	return sys(SYS_prlimit64, 0, 8, (unsigned long)lim, 0, 0, 0);
}
