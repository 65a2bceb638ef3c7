/* 1: the divergence reproduces; 0: it does not; 2: /proc could not be
 * read (main returns 2 too when it cannot pin itself to one CPU). */
static int report(int status)
{
	int e = errno;

	if (status == 2)
		printf("cannot read /proc/self: %s\n", strerror(e));
	else if (status)
		printf("reproduced: %s\n", title);
	else
		printf("not reproduced: the kernel agrees with the "
		       "model here\n");
	return status;
}
