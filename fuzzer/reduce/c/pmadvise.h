/* process_madvise(p0, ...): the caller's own pidfd (pidfd_open), two
 * iovecs (zero-length past them: the kernel reads vlen of them), the
 * advice and the flags; the pidfd is closed after the call. */
static unsigned long pm_iov[2 * 1024];

static long process_madvise_self(unsigned long base0,
				 unsigned long len0,
				 unsigned long base1,
				 unsigned long len1, unsigned long vlen,
				 unsigned long advice,
				 unsigned long flags)
{
	unsigned long me = (unsigned long)getpid();
	long fd = sys(SYS_pidfd_open, me, 0, 0, 0, 0, 0);
	long ret;

	if (fd < 0)
		return fd;
	pm_iov[0] = base0;
	pm_iov[1] = len0;
	pm_iov[2] = base1;
	pm_iov[3] = len1;
	ret = sys(SYS_process_madvise, (unsigned long)fd,
		  (unsigned long)pm_iov, vlen, advice, flags, 0);
	sys(SYS_close, (unsigned long)fd, 0, 0, 0, 0, 0);
	return ret;
}
