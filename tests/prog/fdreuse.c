/*
 * fdreuse.c - a copy loop whose source descriptor number is closed and
 * handed out again for another file. The library's per-number state (the
 * armed pair, the file's identity) belongs to the old file; the first
 * read of the new one must give the new file's bytes, in memory and in
 * what the write sends.
 *
 *   fdreuse SCENARIO        (in an empty scratch directory)
 *
 * Two files, a.bin and b.bin, 512 KiB each, with different byte patterns
 * (each byte depends on the file and its offset). Part of a.bin is
 * copied first - read 64 KiB into one malloc'd buffer, write it to a
 * file - and the copy stops before the end of a.bin (as a server
 * answering a range request does), so that a buffer read from a.bin is
 * still in place when its descriptor is closed. Then b.bin is opened and
 * gets the same number, and copied whole.
 *
 * Scenarios:
 *   next-file       one thread; b.bin copied with the same buffer
 *   next-file-look  the same, and the program looks at the buffer after
 *                   the first read of b.bin, before writing it
 *   dup2-over       b.bin is put on the number with dup2 instead
 *   pread           the same as next-file with pread(2) at offsets
 *   threads         two threads: the first copies part of a.bin and
 *                   closes its descriptor (its buffer still holding what
 *                   it read), the second then opens b.bin, gets the same
 *                   number, and copies it with a buffer of its own; the
 *                   order is fixed by a barrier, not by timing
 *
 * stdout: what the program can observe (descriptor numbers, whether each
 * output file holds what it should, the first differing byte); the same
 * with and without the library. stderr: "probe" lines saying whether the
 * buffer read from a.bin was guarded (PROT_NONE) when the number was
 * closed - 1 only under the library. Exit status 0, or 1 if a byte is
 * wrong.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"

#define SIZE (512u << 10)
#define CH (64u << 10)
#define A_CHUNKS 6 /* of a.bin's 8: the copy stops before its end */

static unsigned char pattern(int file, size_t i)
{
	/* Different in every byte position for the two files, and not
	 * constant within a page: a page of one file never passes for a
	 * page of the other. */
	return file == 0 ? (unsigned char)(i * 7u + i / 4096u + 1u)
			 : (unsigned char)(i * 13u + i / 4096u * 3u + 5u);
}

static void die(const char *what)
{
	fprintf(stderr, "fdreuse: %s: %s\n", what, strerror(errno));
	exit(2);
}

static void make(const char *path, int file)
{
	unsigned char *b = malloc(SIZE);
	if (b == NULL)
		die("malloc");
	for (size_t i = 0; i < SIZE; i++)
		b[i] = pattern(file, i);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write(fd, b, SIZE) != (ssize_t)SIZE || close(fd) != 0)
		die(path);
	free(b);
}

static void write_all(int fd, const char *p, size_t n)
{
	if (write_fully(fd, p, n) != 0)
		die("write");
}

/* Copies chunks of src into a new file dst with buf: `chunks` of them,
 * or up to end of file (chunks < 0). Positional reads with pos. After
 * the first read, look (if asked) at the buffer: does it hold the
 * file's bytes? */
static size_t copy(int src, const char *dst, char *buf, int chunks, bool pos, int file, bool look)
{
	int out = open(dst, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (out < 0)
		die(dst);
	size_t total = 0;
	for (int i = 0; chunks < 0 || i < chunks; i++) {
		ssize_t r = pos ? pread(src, buf, CH, (off_t)total) : read(src, buf, CH);
		if (r < 0)
			die("read");
		if (r == 0)
			break;
		if (look && i == 0) {
			size_t bad = SIZE;
			for (size_t j = 0; j < (size_t)r && bad == SIZE; j++)
				if ((unsigned char)buf[j] != pattern(file, total + j))
					bad = j;
			if (bad == SIZE)
				printf("first read: buffer holds the file's bytes\n");
			else
				printf("first read: buffer differs at %zu (0x%02x, want 0x%02x)\n", bad,
				       (unsigned char)buf[bad], pattern(file, total + bad));
		}
		write_all(out, buf, (size_t)r);
		total += (size_t)r;
	}
	if (close(out) != 0)
		die("close");
	return total;
}

/* Does dst hold the first n bytes of the file's pattern? Prints the
 * verdict; false if not. */
static bool check(const char *dst, int file, size_t n)
{
	int fd = open(dst, O_RDONLY);
	unsigned char *b = malloc(SIZE + 1);
	if (fd < 0 || b == NULL)
		die(dst);
	size_t have = 0;
	ssize_t r;
	while ((r = read(fd, b + have, SIZE + 1 - have)) > 0)
		have += (size_t)r;
	close(fd);
	bool ok = have == n;
	size_t bad = n;
	for (size_t i = 0; i < have && i < n && bad == n; i++)
		if (b[i] != pattern(file, i))
			bad = i;
	ok = ok && bad == n;
	if (ok)
		printf("%s: %zu bytes of %s, all right\n", dst, n, file == 0 ? "a.bin" : "b.bin");
	else if (bad < n && bad < have)
		printf("%s: byte %zu is 0x%02x, want 0x%02x (%s; a.bin has 0x%02x there)\n", dst,
		       bad, b[bad], pattern(file, bad), file == 0 ? "a.bin" : "b.bin",
		       pattern(0, bad));
	else
		printf("%s: %zu bytes, want %zu\n", dst, have, n);
	free(b);
	return ok;
}

static void probe(const char *what, const char *buf)
{
	fprintf(stderr, "probe %s guarded=%d\n", what, guarded(buf, CH));
}

/* ---- one thread ---- */

static int one_thread(const char *sc)
{
	bool look = strcmp(sc, "next-file-look") == 0;
	bool over = strcmp(sc, "dup2-over") == 0;
	bool pos = strcmp(sc, "pread") == 0;
	char *buf = malloc(CH);
	if (buf == NULL)
		die("malloc");
	int a = open("a.bin", O_RDONLY);
	if (a < 0)
		die("a.bin");
	size_t na = copy(a, "dst-a.bin", buf, A_CHUNKS, pos, 0, false);
	probe("a-buffer-at-close", buf);
	int b;
	if (over) {
		int m = open("b.bin", O_RDONLY);
		if (m < 0)
			die("b.bin");
		b = dup2(m, a);
		close(m);
	} else {
		close(a);
		b = open("b.bin", O_RDONLY);
	}
	if (b < 0)
		die("b.bin");
	printf("b.bin has a.bin's number: %s\n", b == a ? "yes" : "no");
	size_t nb = copy(b, "dst.bin", buf, -1, pos, 1, look);
	close(b);
	bool ok = check("dst-a.bin", 0, na);
	ok = check("dst.bin", 1, nb) && ok;
	ok = nb == SIZE && ok;
	free(buf);
	return ok ? 0 : 1;
}

/* ---- two threads ---- */

static pthread_barrier_t bar;
static int a_fd = -1;
static size_t a_copied;

static void *first(void *arg)
{
	(void)arg;
	char *buf = malloc(CH);
	if (buf == NULL)
		die("malloc");
	a_fd = open("a.bin", O_RDONLY);
	if (a_fd < 0)
		die("a.bin");
	a_copied = copy(a_fd, "dst-a.bin", buf, A_CHUNKS, false, 0, false);
	probe("a-buffer-at-close", buf);
	close(a_fd);
	pthread_barrier_wait(&bar); /* the number is free: the second thread opens */
	pthread_barrier_wait(&bar); /* the second thread is done */
	/* The buffer is still the first thread's, holding a.bin's bytes. */
	size_t bad = CH;
	for (size_t j = 0; j < CH && bad == CH; j++)
		if ((unsigned char)buf[j] != pattern(0, (A_CHUNKS - 1) * CH + j))
			bad = j;
	printf("first thread's buffer: %s\n", bad == CH ? "a.bin's last chunk read" : "differs");
	free(buf);
	return NULL;
}

static int threads(void)
{
	pthread_t t;
	pthread_barrier_init(&bar, NULL, 2);
	if (pthread_create(&t, NULL, first, NULL) != 0)
		die("pthread_create");
	pthread_barrier_wait(&bar);
	char *buf = malloc(CH);
	if (buf == NULL)
		die("malloc");
	int b = open("b.bin", O_RDONLY);
	if (b < 0)
		die("b.bin");
	printf("b.bin has a.bin's number: %s\n", b == a_fd ? "yes" : "no");
	size_t nb = copy(b, "dst.bin", buf, -1, false, 1, false);
	close(b);
	pthread_barrier_wait(&bar);
	pthread_join(t, NULL);
	bool ok = check("dst-a.bin", 0, a_copied);
	ok = check("dst.bin", 1, nb) && ok;
	ok = nb == SIZE && ok;
	free(buf);
	return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: fdreuse next-file|next-file-look|dup2-over|pread|threads\n");
		return 2;
	}
	const char *sc = argv[1];
	make("a.bin", 0);
	make("b.bin", 1);
	int rc;
	if (strcmp(sc, "threads") == 0)
		rc = threads();
	else if (strcmp(sc, "next-file") == 0 || strcmp(sc, "next-file-look") == 0 ||
		 strcmp(sc, "dup2-over") == 0 || strcmp(sc, "pread") == 0)
		rc = one_thread(sc);
	else {
		fprintf(stderr, "fdreuse: unknown scenario '%s'\n", sc);
		return 2;
	}
	fflush(stdout);
	return rc;
}
