/* SIGSEGV/SIGBUS: an outcome of a touch; outside a touch, the crash
 * this reproduces. */
static void on_fault(int sig, siginfo_t *info, void *ctx)
{
	static const char msg[] = "expected: the process survives\n"
		"observed: killed by SIGSEGV or SIGBUS outside a "
		"touch\n"
		"reproduced\n";
	ssize_t n;

	(void)ctx;
	if (touching) {
		fault_sig = sig;
		fault_code = info->si_code;
		siglongjmp(touch_env, 1);
	}
	n = write(1, msg, sizeof(msg) - 1);
	(void)n;
	_exit(1);
}
