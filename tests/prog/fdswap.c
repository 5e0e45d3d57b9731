/*
 * fdswap.c - a copy loop whose source number is replaced by another
 * thread while it copies: closed and opened again on another file, or
 * another description dup2()ed onto it. A plain read(2) holds its file
 * from start to end, so the replacement lands before or after it: every
 * read returns bytes of ONE file, at that file's own position. A read the
 * library defers must not be cut in the middle either.
 *
 *   fdswap thread DST SWAP [READS]    in an empty scratch directory
 *   fdswap own-lseek                  one thread, deterministic
 *
 * Two files, a.bin and b.bin, 16 MiB each; every 8-byte word holds the
 * file's id (1 or 2) in its top byte and its own offset below. The main
 * thread copies the source number to DST (file: out.bin; pipe or unix: a
 * child that checks what it receives) in reads of 64-256 KiB into one
 * page-aligned buffer, starting over at end of file, READS times (400).
 *
 *   thread   a second thread replaces the number every 0.2-3 ms, by SWAP:
 *            dup2 | dup3 | reopen (close + open) | closerange
 *            (close_range(n, n, 0) + open)
 *   own-lseek
 *            the program exports its own lseek(), which replaces the number
 *            when it is called to move the position forward (as another
 *            thread would at that instant) - the library's own position
 *            moves must not go through it; plainly nothing calls it during
 *            a read, and the program replaces the number right after the
 *            read instead. Build with -rdynamic (Makefile).
 *
 * The check: in the stream, every word is of file 1 or 2 and continues
 * that file's offsets (a file may also start over at 0). stdout: "verify:
 * ok" or "verify: BAD (N words)", and for own-lseek each read's first and
 * last word; exit status 0 when the stream is right, 1 when not.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"

#define FSZ (16ul << 20)
#define CH (256u << 10)

static int fa, fb, src;
static const char *swap_how = "dup2";
static volatile int stop;

static void die(const char *what)
{
	perror(what);
	exit(2);
}

/* Puts the other file's description (or a fresh open of it) on src. */
static void swap_once(int which)
{
	int from = which ? fb : fa;
	const char *path = which ? "b.bin" : "a.bin";
	if (strcmp(swap_how, "dup2") == 0) {
		dup2(from, src);
	} else if (strcmp(swap_how, "dup3") == 0) {
		dup3(from, src, O_CLOEXEC);
	} else {
		if (strcmp(swap_how, "reopen") == 0)
			close(src);
		else
			close_range((unsigned)src, (unsigned)src, 0);
		int f = open(path, O_RDONLY);
		if (f != src) { /* the number went to another thread's open */
			dup2(f, src);
			close(f);
		}
	}
}

static void *swapper(void *arg)
{
	(void)arg;
	for (unsigned n = 1; !stop; n++) {
		swap_once(n & 1);
		usleep(200 + (n * 7919u) % 3000u);
	}
	return NULL;
}

static unsigned long check_fd(int in)
{
	struct id_check c = { { 0, 0, 0 }, 0 };
	uint64_t *w = malloc(CH);
	size_t have = 0;
	ssize_t r;
	if (w == NULL)
		die("malloc");
	while ((r = read(in, (char *)w + have, CH - have)) > 0) {
		have += (size_t)r;
		size_t nw = have / 8;
		id_check_words(&c, w, nw);
		memmove(w, (char *)w + nw * 8, have - nw * 8);
		have -= nw * 8;
	}
	free(w);
	return c.bad;
}

static void write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w <= 0)
			die("write dst");
		p += w;
		n -= (size_t)w;
	}
}

static int thread_case(const char *dst_kind, int reads)
{
	int dst;
	pid_t kid = -1;
	if (strcmp(dst_kind, "file") == 0) {
		dst = open("out.bin", O_RDWR | O_CREAT | O_TRUNC, 0644);
	} else {
		int p[2];
		if (strcmp(dst_kind, "pipe") == 0 ? pipe(p) : socketpair(AF_UNIX, SOCK_STREAM, 0, p))
			die("pipe");
		kid = fork();
		if (kid == 0) {
			close(p[1]);
			_exit(check_fd(p[0]) != 0);
		}
		close(p[0]);
		dst = p[1];
	}
	if (dst < 0)
		die("dst");
	pthread_t t;
	if (pthread_create(&t, NULL, swapper, NULL) != 0)
		die("pthread_create");
	char *buf = aligned_alloc(4096, CH);
	static const size_t sizes[] = { CH, 128u << 10, CH, 192u << 10, 64u << 10 };
	for (int i = 0; i < reads; i++) {
		ssize_t r = read(src, buf, sizes[i % 5]);
		if (r < 0 && errno == EBADF) { /* between a close and an open */
			i--;
			continue;
		}
		if (r <= 0) {
			lseek(fa, 0, SEEK_SET);
			lseek(fb, 0, SEEK_SET);
			continue;
		}
		write_all(dst, buf, (size_t)r);
	}
	stop = 1;
	pthread_join(t, NULL);
	unsigned long bad;
	if (kid > 0) {
		close(dst);
		int st;
		waitpid(kid, &st, 0);
		bad = !WIFEXITED(st) || WEXITSTATUS(st) != 0;
	} else {
		lseek(dst, 0, SEEK_SET);
		bad = check_fd(dst);
	}
	if (bad)
		printf("verify: BAD (%lu words)\n", bad);
	else
		printf("verify: ok\n");
	return bad != 0;
}

/* ---- own-lseek ---- */

static int trigger;

off_t lseek(int fd, off_t off, int whence)
{
	if (trigger && fd == src && whence == SEEK_CUR && off > 0) {
		trigger = 0;
		dup2(fb, src);
	}
	return (off_t)syscall(SYS_lseek, fd, off, whence);
}

static int own_lseek_case(void)
{
	src = dup(fa);
	uint64_t *buf = aligned_alloc(4096, CH);
	int out = open("out.bin", O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (buf == NULL || out < 0)
		die("own-lseek");
	struct id_check c = { { 0, 0, 0 }, 0 };
	for (int i = 0; i < 6; i++) {
		if (i == 3)
			trigger = 1;
		ssize_t r = read(src, buf, CH);
		if (trigger) { /* nothing called our lseek during the read */
			trigger = 0;
			dup2(fb, src);
		}
		if (r <= 0) {
			printf("read %d: %zd\n", i, r);
			continue;
		}
		size_t nw = (size_t)r / 8;
		printf("read %d: %zd bytes, first id %u offset %llu, last id %u offset %llu\n", i, r,
		       (unsigned)(buf[0] >> 56), (unsigned long long)(buf[0] & ID_OFF_MASK),
		       (unsigned)(buf[nw - 1] >> 56),
		       (unsigned long long)(buf[nw - 1] & ID_OFF_MASK));
		id_check_words(&c, buf, nw);
		write_all(out, (const char *)buf, (size_t)r);
	}
	printf("position of a.bin %lld, of b.bin %lld\n", (long long)syscall(SYS_lseek, fa, 0, SEEK_CUR),
	       (long long)syscall(SYS_lseek, fb, 0, SEEK_CUR));
	printf(c.bad ? "verify: BAD (%lu words)\n" : "verify: ok\n", c.bad);
	return c.bad != 0;
}

int main(int argc, char **argv)
{
	alarm(120);
	if (argc < 2)
		goto usage;
	fa = id_file("a.bin", 1, FSZ);
	fb = id_file("b.bin", 2, FSZ);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (strcmp(argv[1], "own-lseek") == 0)
		return own_lseek_case();
	if (strcmp(argv[1], "thread") == 0 && argc >= 4) {
		swap_how = argv[3];
		src = dup(fa);
		return thread_case(argv[2], argc > 4 ? atoi(argv[4]) : 400);
	}
usage:
	fprintf(stderr, "usage: fdswap thread file|pipe|unix dup2|dup3|reopen|closerange [READS]\n"
			"       fdswap own-lseek\n");
	return 2;
}
