/*
 * manyfiles.c - the classic copy loop over many files, one after another:
 * what a per-file cost of the library (a read lease taken and let go of
 * for every file) comes to, next to the per-read cost.
 *
 *   manyfiles -p DIR N SIZE        create DIR/f0 .. f(N-1), SIZE bytes each,
 *                                  and warm them
 *   manyfiles [-A same|split] DIR N CHUNK
 *                                  copy every file with read(fd, buf, CHUNK)
 *                                  into one malloc'd buffer and a write()
 *                                  loop into a pipe, whose peer (a child)
 *                                  splices it to /dev/null
 *
 * Output, one line (MB = 10^6 bytes):
 *   manyfiles files=N bytes=N wall_s=S cpu_s=S us_per_file=X MBps=X status=ok
 * cpu_s is this process's user + system time (the peer is not counted);
 * us_per_file the wall time divided by the files.
 */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void die(const char *what)
{
	fprintf(stderr, "manyfiles: %s: %s\n", what, strerror(errno));
	exit(1);
}

static size_t size_arg(const char *s)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (*end == 'K' || *end == 'k')
		v <<= 10, end++;
	else if (*end == 'M' || *end == 'm')
		v <<= 20, end++;
	if (*end != '\0' || v == 0) {
		fprintf(stderr, "manyfiles: bad size '%s'\n", s);
		exit(2);
	}
	return (size_t)v;
}

static void path_of(char *out, size_t cap, const char *dir, int i)
{
	snprintf(out, cap, "%s/f%d", dir, i);
}

static void pin(int cpu)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	sched_setaffinity(0, sizeof set, &set);
}

static int prepare(const char *dir, int n, size_t size)
{
	char *buf = malloc(size);
	if (buf == NULL)
		die("malloc");
	for (size_t i = 0; i < size; i++)
		buf[i] = (char)(i * 131u + i / 4099u);
	for (int f = 0; f < n; f++) {
		char p[4096];
		path_of(p, sizeof p, dir, f);
		int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd < 0 || write(fd, buf, size) != (ssize_t)size || close(fd) != 0)
			die(p);
	}
	free(buf);
	return 0;
}

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	int aff = 0; /* 0 none, 1 split, 2 same */
	int o;
	bool make = false;
	while ((o = getopt(argc, argv, "pA:")) != -1) {
		if (o == 'p')
			make = true;
		else if (o == 'A' && strcmp(optarg, "split") == 0)
			aff = 1;
		else if (o == 'A' && strcmp(optarg, "same") == 0)
			aff = 2;
		else {
			fprintf(stderr, "usage: manyfiles -p DIR N SIZE | manyfiles [-A same|split] DIR N CHUNK\n");
			return 2;
		}
	}
	if (argc - optind != 3) {
		fprintf(stderr, "usage: manyfiles -p DIR N SIZE | manyfiles [-A same|split] DIR N CHUNK\n");
		return 2;
	}
	const char *dir = argv[optind];
	int n = atoi(argv[optind + 1]);
	size_t arg = size_arg(argv[optind + 2]);
	if (n <= 0) {
		fprintf(stderr, "manyfiles: bad N '%s'\n", argv[optind + 1]);
		return 2;
	}
	if (make)
		return prepare(dir, n, arg);

	int p[2];
	if (pipe(p) != 0)
		die("pipe");
	fcntl(p[1], F_SETPIPE_SZ, 1 << 20);
	pid_t peer = fork();
	if (peer < 0)
		die("fork");
	if (peer == 0) {
		close(p[1]);
		if (aff != 0)
			pin(aff == 1 ? 1 : 0);
		int null = open("/dev/null", O_WRONLY);
		while (splice(p[0], NULL, null, NULL, 1 << 20, SPLICE_F_MOVE) > 0)
			;
		_exit(0);
	}
	close(p[0]);
	if (aff != 0)
		pin(0);
	char *buf = malloc(arg);
	if (buf == NULL)
		die("malloc");
	memset(buf, 0, arg);
	unsigned long long bytes = 0;
	double t0 = now();
	for (int f = 0; f < n; f++) {
		char path[4096];
		path_of(path, sizeof path, dir, f);
		int fd = open(path, O_RDONLY);
		if (fd < 0)
			die(path);
		ssize_t r;
		while ((r = read(fd, buf, arg)) > 0) {
			for (ssize_t w = 0; w < r;) {
				ssize_t k = write(p[1], buf + w, (size_t)(r - w));
				if (k < 0)
					die("write");
				w += k;
			}
			bytes += (unsigned long long)r;
		}
		if (r < 0)
			die("read");
		close(fd);
	}
	close(p[1]);
	int st;
	waitpid(peer, &st, 0);
	double wall = now() - t0;
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
		     (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
	printf("manyfiles files=%d bytes=%llu wall_s=%.4f cpu_s=%.4f us_per_file=%.1f MBps=%.0f "
	       "status=ok\n",
	       n, bytes, wall, cpu, wall * 1e6 / n, (double)bytes / 1e6 / wall);
	return 0;
}
