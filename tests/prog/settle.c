/*
 * settle.c - a copy loop that settles, then changes (settle.c in shim/).
 *
 *   settle grow SRC DST SMALL
 *       copies SRC to DST (created) with read/write through one buffer:
 *       SMALL reads of 4 KiB first (a loop below the arming minimum,
 *       which the library settles), then 1 MiB reads to the end (a loop
 *       that arms and is served). The buffer is private anonymous memory,
 *       page aligned.
 *
 * Prints "iterations N bytes B" (N: reads that returned data) and exits 0;
 * on any error, the failing call and errno, exit 1.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define BIG (1024 * 1024)

static void die(const char *what)
{
	printf("%s: %s\n", what, strerror(errno));
	exit(1);
}

static void write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0)
			die("write");
		p += w;
		n -= (size_t)w;
	}
}

int main(int argc, char **argv)
{
	if (argc != 5 || strcmp(argv[1], "grow") != 0) {
		fprintf(stderr, "usage: settle grow SRC DST SMALL\n");
		return 2;
	}
	int in = open(argv[2], O_RDONLY);
	int out = open(argv[3], O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (in < 0 || out < 0)
		die("open");
	char *buf = mmap(NULL, BIG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED)
		die("mmap");
	long small = atol(argv[4]);
	unsigned long long iterations = 0, bytes = 0;
	for (;;) {
		size_t want = iterations < (unsigned long long)small ? 4096 : BIG;
		ssize_t r = read(in, buf, want);
		if (r < 0)
			die("read");
		if (r == 0)
			break;
		write_all(out, buf, (size_t)r);
		iterations++;
		bytes += (unsigned long long)r;
	}
	if (close(out) != 0)
		die("close");
	printf("iterations %llu bytes %llu\n", iterations, bytes);
	return 0;
}
