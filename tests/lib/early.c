/*
 * early.c - a library whose constructor does I/O, preloaded in front of
 * libnobounce: its calls may reach the hooks before (or while) the shim's
 * own constructor runs. They must behave exactly like the plain calls.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

__attribute__((constructor)) static void early_io(void)
{
	char buf[65536];
	int p[2];
	if (pipe(p) != 0)
		abort();
	int fd = open("/proc/self/exe", O_RDONLY);
	if (fd < 0)
		abort();
	ssize_t total = 0;
	/* A small bounce loop: read from a file, write to a pipe, drain. */
	for (int i = 0; i < 4; i++) {
		ssize_t n = read(fd, buf, 16384);
		if (n <= 0)
			break;
		if (write(p[1], buf, (size_t)n) != n)
			abort();
		if (read(p[0], buf, (size_t)n) != n)
			abort();
		total += n;
	}
	close(fd);
	close(p[0]);
	close(p[1]);
	const char *out = getenv("EARLY_OUT");
	if (out) {
		FILE *f = fopen(out, "w");
		if (f == NULL)
			abort();
		fprintf(f, "early %zd\n", total);
		fclose(f);
	}
}
