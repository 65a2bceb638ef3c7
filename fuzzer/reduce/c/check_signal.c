/* The signal the diverging touch raised (signal and si_code). */
static int check(void)
{
	print_signal("expected: ", TPL_SIG, TPL_CODE);
	print_signal("observed: ", fault_sig, fault_code);
	return fault_sig != TPL_SIG ||
	       (fault_sig && fault_code != TPL_CODE);
}
