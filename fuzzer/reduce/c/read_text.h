static char text[1 << 20];

/* A whole /proc file into text[], without allocating (malloc could map
 * memory). */
static int read_text(const char *path)
{
	int fd = open(path, O_RDONLY);
	size_t got = 0;
	ssize_t n = 0;

	if (fd < 0)
		return -1;
	while (got < sizeof(text) - 1 &&
	       (n = read(fd, text + got, sizeof(text) - 1 - got)) > 0)
		got += (size_t)n;
	close(fd);
	text[got] = '\0';
	return n < 0 ? -1 : 0;
}
