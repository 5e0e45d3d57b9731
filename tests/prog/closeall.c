/*
 * closeall.c - the old daemon idiom: close(i) for every possible number
 * from 3 up to the descriptor limit (raised to 2^20 first). Prints the
 * peak resident size in MiB (getrusage), so a test can see that a
 * preloaded library keeps no state for numbers it never met.
 */
#include <stdio.h>
#include <sys/resource.h>
#include <unistd.h>

int main(void)
{
	struct rlimit r = { 1 << 20, 1 << 20 };
	(void)setrlimit(RLIMIT_NOFILE, &r);
	for (int i = 3; i < (1 << 20); i++)
		close(i);
	struct rusage u;
	getrusage(RUSAGE_SELF, &u);
	printf("maxrss_mib %ld\n", u.ru_maxrss / 1024);
	return 0;
}
