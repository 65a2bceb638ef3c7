#include <poll.h>
#include <sys/wait.h>

/* The program's processes, as the executor runs them: p0 first, the
 * n-th fork() makes pn. Each runs only its own calls, in the
 * program's order: before each it waits for the turn (a pid_t on its
 * pipe: 0, or a process that exited, which it waits to be gone), and
 * after it hands the turn to the process of the next call (exit()
 * hands on its own pid, then exits). The pipes sit above descriptor
 * 1000, where memfds never come. The processes are a process group
 * of their own, which the first process (not one of the program's)
 * kills and reaps, as their subreaper, once the checks are in or the
 * budget of TPL_FORK_BUDGET s is spent. */
#define PROCS TPL_PROCS
#define BUDGET TPL_FORK_BUDGET
static int me; /* this process's number in the program */
static int tok[PROCS][2], res[2]; /* the turns, the checks' statuses */

static int high_pipe(int fds[2])
{
	int p[2];

	if (pipe(p) != 0)
		return -1;
	fds[0] = fcntl(p[0], F_DUPFD, 1001);
	fds[1] = fcntl(p[1], F_DUPFD, 1001);
	close(p[0]);
	close(p[1]);
	return fds[0] < 0 || fds[1] < 0 ? -1 : 0;
}

static int make_pipes(void)
{
	for (int n = 0; n < PROCS; n++)
		if (high_pipe(tok[n]) != 0)
			return -1;
	return high_pipe(res);
}

/* Wait until process `pid` is gone (its address space too: exit_mm
 * comes before the exit state a pidfd polls). */
static void wait_gone(pid_t pid)
{
	struct pollfd p;
	long fd = syscall(SYS_pidfd_open, pid, 0);

	if (fd < 0)
		return; /* reaped already */
	p.fd = (int)fd;
	p.events = POLLIN;
	while (poll(&p, 1, -1) < 0 && errno == EINTR)
		;
	close((int)fd);
}

static void turn(void)
{
	pid_t gone;

	if (read(tok[me][0], &gone, sizeof(gone)) != sizeof(gone))
		_exit(2);
	if (gone)
		wait_gone(gone);
}

static void pass(int next, pid_t gone)
{
	if (write(tok[next][1], &gone, sizeof(gone)) != sizeof(gone))
		_exit(2);
}

/* fork(): the child is process n, with a budget of its own (alarms
 * are not inherited), in case the first process is gone. */
static void fork_as(int n)
{
	long pid = syscall(SYS_fork);

	if (pid == 0) {
		me = n;
		alarm(2 * BUDGET);
	}
}

/* A check's status, to the first process. */
static void done(int status)
{
	char c = (char)status;

	fflush(stdout);
	if (write(res[1], &c, 1) != 1)
		_exit(2);
}

/* A process whose calls and check are done stays as it is. */
static void hold(void)
{
	for (;;)
		pause();
}

static void on_budget(int sig)
{
	(void)sig;
}

/* The first process: wait for `checks` statuses (1 if any
 * reproduces, else 2 if any could not read /proc, else 0), then kill
 * and reap every process of the program. */
static int wait_all(pid_t group, int checks)
{
	struct sigaction sa;
	int status = 0, got = 0;
	char c;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_budget; /* no SA_RESTART: read gives EINTR */
	sigaction(SIGALRM, &sa, NULL);
	alarm(BUDGET);
	close(res[1]);
	while (got < checks && read(res[0], &c, 1) == 1) {
		got++;
		if (c == 1 || status == 1)
			status = 1;
		else if (c > status)
			status = c;
	}
	kill(-group, SIGKILL);
	while (waitpid(-1, NULL, 0) > 0 || errno == EINTR)
		;
	if (got < checks) {
		printf("the processes did not finish their calls and "
		       "checks within %d s\n", BUDGET);
		return 2;
	}
	return status;
}
