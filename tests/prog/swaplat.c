/*
 * swaplat.c - how long does dup2() onto a copy loop's source number take
 * while another thread keeps reading it? (A deferred read holds its
 * number, shim/fdtab.c: a replacement waits until the read is over.)
 *
 *   swaplat FILE [SECONDS]
 *
 * A reader thread copies FILE to a pipe in 256 KiB reads (into a
 * page-aligned buffer; a child drains the pipe), starting over at end of
 * file; the main thread dup2()s one of two descriptions of FILE onto the
 * reader's source number every 0.5 ms for SECONDS (default 3) and times
 * each call. Prints one line:
 *   swaplat calls=N avg_us=X max_ms=X over_1ms=N
 * Run it plain and preloaded and compare.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define CH (256u << 10)

static int src, fa, fb, out;
static volatile int stop;

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void *reader(void *arg)
{
	(void)arg;
	char *b = aligned_alloc(4096, CH);
	if (b == NULL)
		return NULL;
	while (!stop) {
		ssize_t r = read(src, b, CH);
		if (r <= 0) {
			lseek(fa, 0, SEEK_SET);
			lseek(fb, 0, SEEK_SET);
			continue;
		}
		for (ssize_t w = 0; w < r;) {
			ssize_t k = write(out, b + w, (size_t)(r - w));
			if (k <= 0)
				return NULL;
			w += k;
		}
	}
	free(b);
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: swaplat FILE [SECONDS]\n");
		return 2;
	}
	double secs = argc > 2 ? atof(argv[2]) : 3.0;
	fa = open(argv[1], O_RDONLY);
	fb = open(argv[1], O_RDONLY);
	int p[2];
	if (fa < 0 || fb < 0 || pipe(p) != 0) {
		perror("swaplat");
		return 2;
	}
	src = dup(fa);
	pid_t kid = fork();
	if (kid == 0) {
		close(p[1]);
		char *b = malloc(1u << 20);
		while (b != NULL && read(p[0], b, 1u << 20) > 0)
			;
		_exit(0);
	}
	close(p[0]);
	out = p[1];
	pthread_t t;
	if (pthread_create(&t, NULL, reader, NULL) != 0)
		return 2;
	double sum = 0, max = 0, end = now() + secs;
	unsigned n = 0, over = 0;
	while (now() < end) {
		double a = now();
		dup2((n & 1) ? fb : fa, src);
		double d = now() - a;
		sum += d;
		if (d > max)
			max = d;
		if (d > 1e-3)
			over++;
		n++;
		usleep(500);
	}
	stop = 1;
	pthread_join(t, NULL);
	close(out);
	printf("swaplat calls=%u avg_us=%.1f max_ms=%.2f over_1ms=%u\n", n, sum / n * 1e6, max * 1e3,
	       over);
	return 0;
}
