static void print_signal(const char *label, int sig, int code)
{
	const char *name = sig == SIGSEGV ? "SIGSEGV"
			 : sig == SIGBUS ? "SIGBUS" : "SIG?";
	const char *why = NULL;

	if (sig == SIGSEGV)
		why = code == 1 ? "MAPERR"
		    : code == 2 ? "ACCERR" : NULL;
	else if (sig == SIGBUS)
		why = code == 1 ? "ADRALN" : code == 2 ? "ADRERR"
		    : code == 3 ? "OBJERR" : NULL;

	if (!sig)
		printf("%s" "no signal\n", label);
	else if (why)
		printf("%s%s/%s\n", label, name, why);
	else
		printf("%s%s/%d\n", label, name, code);
}
