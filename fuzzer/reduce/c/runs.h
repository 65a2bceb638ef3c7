#define NOTHING_MAPPED "nothing mapped"

/* Runs of equal pages, as mmfuzz prints them: "@0-3 X; @4 Y" (blank
 * cells left out; `none_text` when every cell is blank). */
static void print_runs(const char *label, const char *cells, int width,
		       const char *blank, const char *none_text)
{
	int none = 1;

	printf("%s", label);
	for (int i = 0; i < PAGES;) {
		int j = i;

		const char *run = cells + i * width;

		while (j + 1 < PAGES && memcmp(cells + (j + 1) * width,
					       run, (size_t)width) == 0)
			j++;
		if (memcmp(run, blank, (size_t)width) != 0) {
			printf("%s@%d", none ? "" : "; ", i);
			if (j > i)
				printf("-%d", j);
			printf(" %.*s", width, cells + i * width);
			none = 0;
		}
		i = j + 1;
	}
	printf("%s\n", none ? none_text : "");
}
