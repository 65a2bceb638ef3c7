/* Reached only if the process survived every call. */
static int check(void)
{
	printf("expected: the process survives\nobserved: it survived\n");
	return 0;
}
