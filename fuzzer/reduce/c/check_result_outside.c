/* The diverging call's return value: an address the kernel chose,
 * outside the arena. */
static int check(long ret)
{
	unsigned long u = (unsigned long)ret;
	int outside = !(ret < 0 && ret >= -4095) &&
		      (u < ARENA || u >= ARENA + PAGES * PAGE);

	printf("expected: an address outside the arena\n");
	print_value("observed: ", ret, TPL_ADDRESS);
	return !outside;
}
