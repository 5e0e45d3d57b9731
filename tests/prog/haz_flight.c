/*
 * haz_flight.c - file pages handed to a pipe by reference, read back by a
 * reader that is itself deferred (hazard class 6, bytes in flight).
 *
 *   haz_flight SCENARIO
 *
 * src.bin (1 MiB, no zero byte) is written into a pipe in 128K chunks
 * (a copy loop: read the file into a buffer, write the buffer); a reader
 * copies the pipe into dst.bin in 128K reads. Before the reader writes
 * its last chunk - after it read it, so the pipe is empty - the writer
 * overwrites all of src.bin with 'X' (pwrite). The writer's write(2) had
 * copied the bytes: dst.bin must hold the old bytes, no 'X'.
 *   readback   one process, one thread: all of src.bin into its own pipe,
 *              then read back into dst.bin
 *   relay      one process, one thread, chunk by chunk: read src, write
 *              the pipe, read the pipe, write dst
 *   thread     the reader is a second thread of the process
 *   child      the reader is a forked child; it tells the parent (over a
 *              second pipe) when it holds the last chunk and waits for
 *              the parent's overwrite before writing it
 *   trunc      as readback, the change is ftruncate(src, 0) + pwrite 'X'
 * Printed: what dst.bin holds (size, sum, 'X' bytes). A "probe" line on
 * stderr says whether the reader's buffer was guarded (PROT_NONE) when
 * the writer changed the file.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"

#define CHUNK (128 * 1024)
#define NCHUNK 8
#define SIZE ((size_t)CHUNK * NCHUNK)

static const char *scen;
static int p[2];
static char *rbuf; /* the reader's buffer */

static void die(const char *what)
{
	perror(what);
	exit(2);
}

static void report(const char *path)
{
	struct file_counts c;
	if (count_file(path, &c) != 0)
		die(path);
	printf("%s: %zu bytes, sum %016llx, X %zu\n", path, c.bytes, (unsigned long long)c.sum, c.xs);
}

/* Exactly n bytes from the pipe, in as many reads as it takes. */
static size_t read_chunk(int fd, char *b, size_t n)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = read(fd, b + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	return got;
}

/* The writer's change of the source: every byte becomes 'X'. */
static void overwrite(void)
{
	int fd = open("src.bin", O_RDWR);
	if (fd < 0)
		die("open src");
	static char xs[SIZE];
	memset(xs, 'X', sizeof xs);
	if (!strcmp(scen, "trunc"))
		printf("ftruncate: %d\n", ftruncate(fd, 0));
	printf("pwrite X: %zd\n", pwrite(fd, xs, sizeof xs, 0));
	close(fd);
}

/* The writer: src.bin into the pipe in CHUNK writes from one buffer. */
static void send_file(void)
{
	int src = open("src.bin", O_RDONLY);
	if (src < 0)
		die("open src");
	char *mem = malloc(CHUNK + 8192);
	char *b = mem + 4096;
	ssize_t n;
	while ((n = read(src, b, CHUNK)) > 0)
		write_all_or_die(p[1], b, (size_t)n);
	close(src);
	free(mem);
}

/* The reader: the pipe into dst.bin; before the last chunk's write,
 * before_last() (the change, or the handshake with the writer). */
static void copy_back(void (*before_last)(void))
{
	int dst = open("dst.bin", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (dst < 0)
		die("open dst");
	for (int i = 0; i < NCHUNK; i++) {
		size_t n = read_chunk(p[0], rbuf, CHUNK);
		if (n == 0)
			break;
		if (i == NCHUNK - 1) {
			fprintf(stderr, "probe act guarded=%d\n", guarded(rbuf, CHUNK));
			before_last();
		}
		write_all_or_die(dst, rbuf, n);
	}
	close(dst);
}

static void *reader_thread(void *arg)
{
	(void)arg;
	copy_back(overwrite);
	return NULL;
}

static int sync_up[2], sync_down[2];

static void child_handshake(void)
{
	char c = 'r';
	if (write(sync_up[1], &c, 1) != 1 || read(sync_down[0], &c, 1) != 1)
		die("handshake");
}

int main(int argc, char **argv)
{
	if (argc != 2)
		return 2;
	scen = argv[1];
	xs32_file("src.bin", 0, SIZE, 1);
	if (pipe(p) != 0)
		die("pipe");
	fcntl(p[1], F_SETPIPE_SZ, (int)SIZE);
	char *mem = malloc(CHUNK + 8192);
	rbuf = mem + 4096;
	if (!strcmp(scen, "readback") || !strcmp(scen, "trunc")) {
		send_file();
		copy_back(overwrite);
	} else if (!strcmp(scen, "relay")) {
		int src = open("src.bin", O_RDONLY);
		int dst = open("dst.bin", O_WRONLY | O_CREAT | O_TRUNC, 0644);
		char *wmem = malloc(CHUNK + 8192), *wb = wmem + 4096;
		for (int i = 0; i < NCHUNK; i++) {
			ssize_t n = read(src, wb, CHUNK);
			if (n <= 0)
				break;
			write_all_or_die(p[1], wb, (size_t)n);
			size_t k = read_chunk(p[0], rbuf, (size_t)n);
			if (i == NCHUNK - 1) {
				fprintf(stderr, "probe act guarded=%d\n", guarded(rbuf, CHUNK));
				overwrite();
			}
			write_all_or_die(dst, rbuf, k);
		}
		close(src);
		close(dst);
		free(wmem);
	} else if (!strcmp(scen, "thread")) {
		send_file();
		pthread_t t;
		if (pthread_create(&t, NULL, reader_thread, NULL) != 0)
			die("pthread_create");
		pthread_join(t, NULL);
	} else if (!strcmp(scen, "child")) {
		if (pipe(sync_up) != 0 || pipe(sync_down) != 0)
			die("pipe");
		pid_t c = fork();
		if (c < 0)
			die("fork");
		if (c == 0) {
			alarm(30);
			close(p[1]);
			copy_back(child_handshake);
			_exit(0);
		}
		close(p[0]);
		send_file();
		char ch;
		if (read(sync_up[0], &ch, 1) != 1)
			die("handshake");
		overwrite();
		if (write(sync_down[1], &ch, 1) != 1)
			die("handshake");
		int st;
		waitpid(c, &st, 0);
		printf("child: %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	} else {
		fprintf(stderr, "unknown scenario %s\n", scen);
		return 2;
	}
	free(mem);
	report("dst.bin");
	return 0;
}
