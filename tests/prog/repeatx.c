/*
 * repeatx.c - one source descriptor read by two threads, each bouncing
 * to its own destination; then the first thread bounces to the second
 * thread's destination. The source's pair is shared by every thread that
 * reads it: the second thread's bounce restarts it on its destination,
 * and the first thread's next writes - of the same buffer, same size, to
 * that destination - must be counted for that destination, not for the
 * one the first thread's loop bounced to before (detect.c "Repeating
 * loops").
 *
 *   repeatx cross [TURNS]     in an empty scratch directory
 *
 * s.bin (64 MiB, every MiB one letter) is read in chunks of 256 KiB into
 * one page-aligned buffer. The main thread: one chunk to d.bin. A second
 * thread, started and joined: one chunk, its own buffer, to x.bin. The
 * main thread: TURNS (20) chunks to x.bin. Nothing in the program closes,
 * replaces or reopens a descriptor.
 *
 * stdout: the numbers, bytes written to each destination. The script
 * compares d.bin and x.bin with the plain run's, and asks the stats
 * report that no descriptor was found replaced ("stale": only a raw
 * close or dup2 can make one, and there is none).
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"

#define CH (256u << 10)

static int src, dst_d, dst_x;
static size_t to_x;

static void die(const char *what)
{
	perror(what);
	exit(2);
}

static void turn(char *buf, int dst)
{
	ssize_t r = read(src, buf, CH);
	if (r <= 0)
		die("read");
	if (write(dst, buf, (size_t)r) != r)
		die("write");
	if (dst == dst_x)
		to_x += (size_t)r;
}

static void *second(void *arg)
{
	(void)arg;
	char *buf = aligned_alloc(4096, CH);
	if (buf == NULL)
		die("aligned_alloc");
	turn(buf, dst_x);
	free(buf);
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "cross") != 0) {
		fprintf(stderr, "usage: repeatx cross [TURNS]\n");
		return 2;
	}
	int turns = argc > 2 ? atoi(argv[2]) : 20;
	int f = open("s.bin", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	char *w = malloc(1u << 20);
	if (f < 0 || w == NULL)
		die("make");
	for (int i = 0; i < 64; i++) {
		memset(w, 'a' + i % 26, 1u << 20);
		if (write(f, w, 1u << 20) != 1 << 20)
			die("write s.bin");
	}
	free(w);
	close(f);
	src = open("s.bin", O_RDONLY);
	dst_d = open("d.bin", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	dst_x = open("x.bin", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	char *buf = aligned_alloc(4096, CH);
	if (src < 0 || dst_d < 0 || dst_x < 0 || buf == NULL)
		die("open");
	turn(buf, dst_d);
	pthread_t t;
	if (pthread_create(&t, NULL, second, NULL) != 0 || pthread_join(t, NULL) != 0)
		die("thread");
	for (int i = 0; i < turns; i++)
		turn(buf, dst_x);
	printf("src=%d d=%d x=%d\n", src, dst_d, dst_x);
	printf("to d.bin: %u to x.bin: %zu\n", CH, to_x);
	return 0;
}
