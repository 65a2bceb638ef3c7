/* As the executor does (pin_to_one_cpu): stay on the CPU this process
 * started on. A fresh page, and MADV_FREE's move to the lazy-free
 * list, wait in a per-CPU batch, and MADV_PAGEOUT drains only its own
 * CPU's: what it reclaims would depend on where each call ran
 * (docs/SEMANTICS.md section 16). */
static int pin_to_one_cpu(void)
{
	cpu_set_t set;
	int cpu = sched_getcpu();

	if (cpu < 0)
		return -1;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof(set), &set);
}
