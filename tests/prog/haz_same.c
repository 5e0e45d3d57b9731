/*
 * haz_same.c - the program itself changes a file it is copying (hazard
 * class 6, same process), one scenario per argument. Prints what the
 * program can observe; the integration test runs it plain and preloaded
 * and requires the same output, exit status and output files.
 *
 * Between a read and the write of the same chunk (src.bin copied to
 * dst.bin in 256K chunks through a buffer that is not page aligned, so
 * the reads have partial first and last pages), at the fourth chunk:
 *   open-trunc      open(src.bin, O_WRONLY|O_TRUNC)
 *   creat           creat(src.bin)
 *   fopen-w         fopen(src.bin, "w")
 *   freopen-w       freopen(src.bin, "w", a stream on /dev/null)
 *   truncate-path   truncate(src.bin, 0)
 *   mmap-write      a PROT_WRITE MAP_SHARED mapping of src.bin, stored into
 *   mprotect-write  a read-only shared mapping made before the loop gets
 *                   PROT_WRITE by mprotect, and is stored into
 *   stdio-fwrite    fopen(src.bin, "r+"), fwrite over the chunk, fflush
 *   stdio-fprintf   a "r+" stream opened before the loop; fprintf, fflush
 *   punch-hole      fallocate(PUNCH_HOLE) over the chunk
 *   copy-into       copy_file_range from decoy.bin over the chunk
 *   sendfile-into   sendfile from decoy.bin over the chunk
 *   splice-into     splice from a pipe of decoy bytes over the chunk
 *   pwrite-edge     pwrite of 16 bytes inside the chunk's partial first page
 *   cut-last-page   ftruncate 8 bytes short of the chunk's end (inside its
 *                   partial last page); prints write's result
 *   cut-last-page-socket  the same with a UNIX socket as destination (a
 *                   child copies it to dst.bin)
 *   socket-moved-trunc  a socket source (a child writes 48K pieces) copied
 *                   to dst.bin in 64K reads; after the fourth write,
 *                   dst.bin is reopened with O_TRUNC and the buffer summed
 * After write() returned (bytes still in the reader's queue):
 *   inflight-pipe   768K to a pipe a child reads only after 1 s, then
 *                   pwrite of 'X' over all of src.bin
 *   inflight-tcp    the same to a loopback TCP reader
 *   inflight-moved  a socket source moved into mid.bin, the same buffer
 *                   then written to a slow pipe reader, then mid.bin
 *                   overwritten with 'X'
 *
 * Each "probe" line on stderr says whether the buffer was guarded (a
 * PROT_NONE mapping inside it) when the scenario acted on it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <signal.h>
#include <unistd.h>

#include "common.h"

#define CHUNK (256 * 1024)
#define ACT 3

static void die(const char *what)
{
	perror(what);
	exit(2);
}

/* Bytes [off, off+n) of what xs32_file(seed, 1) writes (never zero: a zero
 * shows a page that was never filled). */
static void stream_bytes(unsigned seed, size_t off, size_t n, unsigned char *out)
{
	uint32_t x = xs32_start(seed);
	for (size_t i = 0; i < off + n; i++) {
		uint32_t v = xs32_next(&x);
		if (i >= off)
			out[i - off] = (unsigned char)(v | 1);
	}
}

/* What a file holds: size, sum, zero bytes and 'X' bytes. */
static void report(const char *path)
{
	struct file_counts c;
	if (count_file(path, &c) != 0)
		die(path);
	printf("%s: %zu bytes, sum %016llx, zeros %zu, X %zu\n", path, c.bytes,
	       (unsigned long long)c.sum, c.zeros, c.xs);
}

/* A child that copies fd to path, after waiting ms; it closes its copy
 * of other (the parent's end), so that it sees the end of the stream. */
static pid_t reader(int fd, int other, const char *path, int ms)
{
	pid_t c = fork();
	if (c < 0)
		die("fork");
	if (c > 0)
		return c;
	(void)other;
	for (int i = 3; i < 64; i++) /* only its end: the others see EOF/EPIPE */
		if (i != fd)
			close(i);
	usleep((useconds_t)ms * 1000);
	int out = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	static char b[65536];
	ssize_t r;
	while ((r = read(fd, b, sizeof b)) > 0)
		if (write(out, b, (size_t)r) != r)
			_exit(3);
	_exit(r == 0 ? 0 : 4);
}

static void reap(pid_t c)
{
	int st;
	if (waitpid(c, &st, 0) != c || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		die("child");
}

/* A child that writes len bytes of seed to fd in pieces of 48K (its
 * copy of other, the parent's end, closed). */
static pid_t writer(int fd, int other, unsigned seed, size_t len)
{
	pid_t c = fork();
	if (c < 0)
		die("fork");
	if (c > 0)
		return c;
	(void)other;
	for (int i = 3; i < 64; i++)
		if (i != fd)
			close(i);
	signal(SIGPIPE, SIG_DFL);
	xs32_file("feed.bin", seed, len, 1);
	int in = open("feed.bin", O_RDONLY);
	static char b[48 * 1024];
	ssize_t r;
	while ((r = read(in, b, sizeof b)) > 0) {
		if (write(fd, b, (size_t)r) != r)
			_exit(3);
		usleep(2000);
	}
	_exit(0);
}

static const char *scen;
static char *mapping; /* mprotect-write: read-only shared map of src.bin */
static FILE *early;   /* stdio-fprintf: stream opened before the loop */

/* The change, at chunk `it` (read from pos, n bytes). */
static void change(int it, off_t pos, ssize_t n)
{
	const char *s = scen;
	static char news[CHUNK];
	memset(news, 'N', sizeof news);
	if (!strcmp(s, "open-trunc")) {
		int fd = open("src.bin", O_WRONLY | O_TRUNC);
		printf("open O_TRUNC: %s\n", fd >= 0 ? "ok" : strerror(errno));
		close(fd);
	} else if (!strcmp(s, "creat")) {
		int fd = creat("src.bin", 0644);
		printf("creat: %s\n", fd >= 0 ? "ok" : strerror(errno));
		close(fd);
	} else if (!strcmp(s, "fopen-w")) {
		FILE *f = fopen("src.bin", "w");
		printf("fopen w: %s\n", f ? "ok" : strerror(errno));
		fclose(f);
	} else if (!strcmp(s, "freopen-w")) {
		FILE *f = fopen("/dev/null", "r");
		f = freopen("src.bin", "w", f);
		printf("freopen w: %s\n", f ? "ok" : strerror(errno));
		fclose(f);
	} else if (!strcmp(s, "truncate-path")) {
		printf("truncate: %d\n", truncate("src.bin", 0));
	} else if (!strcmp(s, "mmap-write")) {
		int fd = open("src.bin", O_RDWR);
		char *m = mmap(NULL, (size_t)(pos + n), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (m == MAP_FAILED)
			die("mmap");
		close(fd);
		memset(m + pos, 'N', (size_t)n);
		munmap(m, (size_t)(pos + n));
		printf("stored through a shared mapping\n");
	} else if (!strcmp(s, "mprotect-write")) {
		struct stat st;
		stat("src.bin", &st);
		printf("mprotect: %d\n", mprotect(mapping, (size_t)st.st_size, PROT_READ | PROT_WRITE));
		memset(mapping + pos, 'N', (size_t)n);
	} else if (!strcmp(s, "stdio-fwrite")) {
		FILE *f = fopen("src.bin", "r+");
		fseek(f, pos, SEEK_SET);
		printf("fwrite: %zu\n", fwrite(news, 1, (size_t)n, f));
		fflush(f);
		fclose(f);
	} else if (!strcmp(s, "stdio-fprintf")) {
		fseek(early, pos, SEEK_SET);
		for (int i = 0; i < n / 64; i++)
			fprintf(early, "%063d\n", i);
		fflush(early);
		printf("fprintf done\n");
	} else if (!strcmp(s, "punch-hole")) {
		int fd = open("src.bin", O_WRONLY);
		printf("punch: %d\n", fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, pos,
						 n));
		close(fd);
	} else if (!strcmp(s, "copy-into") || !strcmp(s, "sendfile-into") ||
		   !strcmp(s, "splice-into")) {
		int fd = open("src.bin", O_WRONLY);
		int d = open("decoy.bin", O_RDONLY);
		loff_t o = pos;
		ssize_t r;
		if (!strcmp(s, "copy-into")) {
			r = copy_file_range(d, NULL, fd, &o, (size_t)n, 0);
		} else if (!strcmp(s, "sendfile-into")) {
			lseek(fd, pos, SEEK_SET);
			r = sendfile(fd, d, NULL, (size_t)n);
		} else {
			int p[2];
			if (pipe(p) != 0)
				die("pipe");
			fcntl(p[1], F_SETPIPE_SZ, 1 << 20);
			ssize_t k = splice(d, NULL, p[1], NULL, (size_t)n, 0);
			r = k > 0 ? splice(p[0], NULL, fd, &o, (size_t)k, 0) : k;
			close(p[0]);
			close(p[1]);
		}
		printf("%s: %zd\n", s, r);
		close(fd);
		close(d);
	} else if (!strcmp(s, "pwrite-edge")) {
		int fd = open("src.bin", O_WRONLY);
		printf("pwrite: %zd\n", pwrite(fd, news, 16, pos + 8));
		close(fd);
	} else if (!strcmp(s, "cut-last-page") || !strcmp(s, "cut-last-page-socket")) {
		int fd = open("src.bin", O_WRONLY);
		printf("ftruncate: %d\n", ftruncate(fd, pos + n - 8));
		close(fd);
	}
	(void)it;
}

/* src.bin to dst in chunks; the change at chunk ACT. */
static int copy(int dst)
{
	xs32_file("src.bin", 7, 8 * CHUNK + 12345, 1);
	xs32_file("decoy.bin", 99, 8 * CHUNK, 1);
	if (!strcmp(scen, "mprotect-write")) {
		int fd = open("src.bin", O_RDWR);
		mapping = mmap(NULL, 8 * CHUNK + 12345, PROT_READ, MAP_SHARED, fd, 0);
		if (mapping == MAP_FAILED)
			die("mmap");
		close(fd);
	}
	if (!strcmp(scen, "stdio-fprintf") && (early = fopen("src.bin", "r+")) == NULL)
		die("fopen");
	int src = open("src.bin", O_RDONLY);
	if (src < 0)
		die("open");
	char *mem = malloc(CHUNK + 8192);
	if (mem == NULL)
		die("malloc");
	char *buf = mem + 100; /* partial first and last pages */
	off_t pos = 0;
	for (int it = 0;; it++) {
		ssize_t n = read(src, buf, CHUNK);
		if (n < 0)
			die("read");
		if (n == 0)
			break;
		if (it == ACT) {
			fprintf(stderr, "probe act guarded=%d\n", guarded(buf, CHUNK));
			change(it, pos, n);
		}
		ssize_t w = write(dst, buf, (size_t)n);
		if (w != n)
			printf("chunk %d: write %zd of %zd\n", it, w, n);
		if (w > 0 && w < n)
			write_all_or_die(dst, buf + w, (size_t)(n - w));
		else if (w <= 0)
			die("write");
		pos += n;
	}
	close(src);
	free(mem);
	if (early)
		fclose(early);
	return 0;
}

/* A socket source into dst.bin, 64K reads; after ACT writes, dst.bin
 * reopened with O_TRUNC and the buffer (the last chunk read) summed. */
static int socket_moved_trunc(void)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
		die("socketpair");
	pid_t c = writer(sv[1], sv[0], 5, 40 * 48 * 1024);
	close(sv[1]);
	int dst = open("dst.bin", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	char *mem = malloc(65536 + 8192);
	char *buf = mem + 4096;
	size_t at = 0;
	for (int it = 0;; it++) {
		ssize_t n = read(sv[0], buf, 65536);
		if (n <= 0)
			break;
		write_all_or_die(dst, buf, (size_t)n);
		if (it == 6) {
			fprintf(stderr, "probe act guarded=%d\n", guarded(buf, 65536));
			int t = open("dst.bin", O_WRONLY | O_TRUNC);
			unsigned char *u = (unsigned char *)buf;
			static unsigned char want[65536];
			size_t zeros = 0;
			for (ssize_t i = 0; i < n; i++)
				zeros += u[i] == 0;
			/* How much a read returns depends on timing: what it
			 * holds is compared with the stream at its offset. */
			stream_bytes(5, at, (size_t)n, want);
			printf("after O_TRUNC: the chunk is %s, zeros %zu\n",
			       memcmp(want, u, (size_t)n) == 0 ? "the stream's bytes" : "WRONG",
			       zeros);
			close(t);
			break;
		}
		at += (size_t)n;
	}
	close(sv[0]);
	int st;
	waitpid(c, &st, 0); /* it dies of SIGPIPE or finishes: either */
	free(mem);
	close(dst);
	return 0;
}

/* 768K of src.bin to dst in 256K chunks, then 'X' over src.bin. */
static void send_then_overwrite(int dst, const char *path)
{
	xs32_file(path, 3, 3 * CHUNK, 1);
	int src = open(path, O_RDWR);
	char *mem = malloc(CHUNK + 8192);
	char *buf = mem + 100;
	for (int it = 0;; it++) {
		ssize_t n = read(src, buf, CHUNK);
		if (n <= 0)
			break;
		if (it == 2)
			fprintf(stderr, "probe act guarded=%d\n", guarded(buf, CHUNK));
		write_all_or_die(dst, buf, (size_t)n);
	}
	static char xs[3 * CHUNK];
	memset(xs, 'X', sizeof xs);
	printf("pwrite X: %zd\n", pwrite(src, xs, sizeof xs, 0));
	close(src);
	free(mem);
}

static int inflight_pipe(void)
{
	int p[2];
	if (pipe(p) != 0)
		die("pipe");
	fcntl(p[1], F_SETPIPE_SZ, 1 << 20);
	pid_t c = reader(p[0], p[1], "dst.bin", 1000);
	close(p[0]);
	send_then_overwrite(p[1], "src.bin");
	close(p[1]);
	reap(c);
	return 0;
}

static int inflight_tcp(void)
{
	int l = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof a;
	if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) != 0 || listen(l, 1) != 0 ||
	    getsockname(l, (struct sockaddr *)&a, &al) != 0)
		die("listen");
	pid_t c = fork();
	if (c < 0)
		die("fork");
	if (c == 0) {
		alarm(30);
		int s = accept(l, NULL, NULL);
		if (s < 0)
			_exit(5);
		close(l);
		reader(s, -1, "dst.bin", 1000);
		int st;
		wait(&st);
		_exit(WIFEXITED(st) ? WEXITSTATUS(st) : 6);
	}
	close(l);
	int s = socket(AF_INET, SOCK_STREAM, 0);
	if (connect(s, (struct sockaddr *)&a, sizeof a) != 0)
		die("connect");
	send_then_overwrite(s, "src.bin");
	close(s);
	reap(c);
	return 0;
}

/* A socket source moved into mid.bin (the whole buffer written there),
 * then the same buffer to a slow pipe reader, then mid.bin overwritten. */
static int inflight_moved(void)
{
	int sv[2], p[2];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0 || pipe(p) != 0)
		die("socketpair");
	fcntl(p[1], F_SETPIPE_SZ, 1 << 20);
	pid_t w = writer(sv[1], sv[0], 5, 24 * 48 * 1024);
	close(sv[1]);
	pid_t r = reader(p[0], p[1], "dst.bin", 1000);
	close(p[0]);
	int mid = open("mid.bin", O_RDWR | O_CREAT | O_TRUNC, 0644);
	char *mem = malloc(65536 + 8192);
	char *buf = mem + 4096;
	off_t at = 0;
	ssize_t sent = -1;
	static char xs[65536];
	memset(xs, 'X', sizeof xs);
	for (int it = 0;; it++) {
		ssize_t n = read(sv[0], buf, 65536);
		if (n <= 0)
			break;
		write_all_or_die(mid, buf, (size_t)n);
		if (it == 6) {
			fprintf(stderr, "probe act guarded=%d\n", guarded(buf, 65536));
			write_all_or_die(p[1], buf, (size_t)n);
			if (pwrite(mid, xs, (size_t)n, at) != n)
				die("pwrite");
			sent = n;
			break;
		}
		at += n;
	}
	close(p[1]);
	close(sv[0]);
	int st;
	waitpid(w, &st, 0); /* SIGPIPE or done: either */
	reap(r);
	/* What the reader got, against the chunk the program sent. */
	int d = open("dst.bin", O_RDONLY);
	static char got[65536];
	ssize_t g = read(d, got, sizeof got);
	close(d);
	size_t xcount = 0;
	for (ssize_t i = 0; i < g; i++)
		xcount += got[i] == 'X';
	printf("reader got %s, X %zu\n", g == sent && !memcmp(got, buf, (size_t)g) ? "the chunk" :
	       "other bytes", xcount);
	/* Its size depends on timing: the line above is the result. */
	unlink("dst.bin");
	close(mid);
	free(mem);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: haz_same SCENARIO\n");
		return 2;
	}
	scen = argv[1];
	if (!strcmp(scen, "socket-moved-trunc")) {
		socket_moved_trunc();
		return 0;
	}
	if (!strcmp(scen, "inflight-pipe") || !strcmp(scen, "inflight-tcp") ||
	    !strcmp(scen, "inflight-moved")) {
		if (!strcmp(scen, "inflight-pipe"))
			inflight_pipe();
		else if (!strcmp(scen, "inflight-tcp"))
			inflight_tcp();
		else
			return inflight_moved();
		report("dst.bin");
		return 0;
	}
	if (!strcmp(scen, "cut-last-page-socket")) {
		int sv[2];
		if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
			die("socketpair");
		pid_t c = reader(sv[1], sv[0], "dst.bin", 0);
		close(sv[1]);
		copy(sv[0]);
		close(sv[0]);
		reap(c);
	} else {
		int dst = open("dst.bin", O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (dst < 0)
			die("open dst");
		copy(dst);
		close(dst);
	}
	report("dst.bin");
	report("src.bin");
	return 0;
}
