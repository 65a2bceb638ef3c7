/* The budget of a hang: if the calls have not finished by then, the
 * hang reproduces. */
static void on_alarm(int sig)
{
	static const char msg[] = "expected: the call returns\n"
		"observed: no progress within TPL_BUDGET s\n"
		"reproduced\n";
	ssize_t n = write(1, msg, sizeof(msg) - 1);

	(void)sig;
	(void)n;
	_exit(1);
}
