#include <dirent.h>

#ifndef PR_THP_DISABLE_EXCEPT_ADVISED
#define PR_THP_DISABLE_EXCEPT_ADVISED (1 << 1) /* 6.18 */
#endif
#define THP_DIR "/sys/kernel/mm/transparent_hugepage"

/* The bracketed word of a THP setting file ("madvise" of "always
 * [madvise] never") into word[16]: 0, or -1. */
static int thp_setting(const char *path, char *word)
{
	const char *open_at, *close_at;

	if (read_text(path) != 0 || !(open_at = strchr(text, '[')))
		return -1;
	close_at = strchr(open_at, ']');
	if (!close_at || close_at - open_at - 1 >= 16)
		return -1;
	memcpy(word, open_at + 1, (size_t)(close_at - open_at - 1));
	word[close_at - open_at - 1] = '\0';
	return 0;
}

/* As the executor does in the huge arena: THP off but in MADV_HUGEPAGE
 * VMAs (6.18+), whose faults the model predicts with 2 MiB huge pages
 * alone: hugepages-2048kB enabled for them, every other size never,
 * and use_zero_page 1 (docs/SEMANTICS.md section 22). 0, or -1 with
 * what is missing printed. */
static int thp_pmd_only(void)
{
	char top[16], word[16], path[300];
	struct dirent *d;
	DIR *dir;
	int bad = 0;

	if (prctl(PR_SET_THP_DISABLE, 1, PR_THP_DISABLE_EXCEPT_ADVISED,
		  0, 0) != 0) {
		printf("needs PR_THP_DISABLE_EXCEPT_ADVISED: 6.18+\n");
		return -1;
	}
	if (thp_setting(THP_DIR "/enabled", top) != 0 ||
	    read_text(THP_DIR "/use_zero_page") != 0 ||
	    text[0] != '1' || !(dir = opendir(THP_DIR))) {
		printf("needs THP, with use_zero_page 1\n");
		return -1;
	}
	while ((d = readdir(dir))) {
		int pmd = !strcmp(d->d_name, "hugepages-2048kB"), on;

		if (strncmp(d->d_name, "hugepages-", 10) != 0)
			continue;
		snprintf(path, sizeof(path), THP_DIR "/%s/enabled",
			 d->d_name);
		if (thp_setting(path, word) != 0)
			continue;
		if (strcmp(word, "inherit") == 0)
			strcpy(word, top);
		on = strcmp(word, "never") != 0;
		if (on != pmd) {
			printf("needs %s %s\n", d->d_name,
			       pmd ? "madvise" : "never");
			bad = 1;
		}
	}
	closedir(dir);
	return bad ? -1 : 0;
}
