/* The diverging call's return value. */
static int check(long ret)
{
	print_value("expected: ", TPL_WANT, TPL_ADDRESS);
	print_value("observed: ", ret, TPL_ADDRESS);
	return ret != TPL_WANT;
}
