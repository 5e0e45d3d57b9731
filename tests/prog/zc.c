/*
 * zc.c - the zero-copy path's observable contract, one scenario per run.
 *
 *   zc [--dst-dir DIR] SCENARIO
 *
 * Every scenario creates its source file (src.bin in the current directory,
 * several MiB of a position-dependent pattern: a misplaced or stale block
 * shows), runs a read/write copy loop from it, and on some iterations does
 * the thing under test between the read and the write (or after the
 * write). It prints on stdout everything the program can observe: return
 * values, errno names, file offsets after each iteration, checksums of
 * what it looked at. The destination's bytes land in DIR/dst.bin (DIR
 * defaults to "."; pipe and socket destinations are drained into it by a
 * thread that uses raw system calls, invisible to a preloaded library).
 * tests/integration/45-zerocopy.sh runs each scenario plain and preloaded
 * and requires the same stdout, exit status and files.
 *
 * stderr carries what may differ between the two runs: "probe" lines that
 * say whether the buffer was guarded (a PROT_NONE mapping inside it, read
 * from /proc/self/maps with raw system calls) at the moment the scenario
 * acted on it. Preloaded, "guarded=1" proves the action met a phantom.
 *
 * Scenarios (SCENARIO names):
 *   copy-DST-HOW   DST: pipe unix tcp file xfs (file in --dst-dir)
 *                  HOW: read-write pread-write read-send read-sendto
 *                       pread-pwrite readv-writev preadv-sendmsg
 *                       preadv-pwritev (one iovec read; three written)
 *   two-buffers-alternating two-buffers-and-mmap-calls
 *   one-buffer-and-mmap-calls
 *   eof-short-tail eof-read-past eof-one-chunk-file
 *   inspect-checksum modify-head modify-middle modify-tail
 *   modify-head-aligned modify-tail-aligned two-destinations
 *   thread-reads-buffer fork-child-reads-buffer fork-child-writes-buffer
 *   realloc-keeps-bytes realloc-mapped-buffer free-then-fresh-buffer
 *   memcpy-out madvise-dontneed munmap-mmap-fixed munmap-mmap-anywhere
 *   mmap-fixed-over close-and-dup2-source pwrite-source
 *   pwrite-source-other-fd pwrite-source-edge ftruncate-source fwrite-phantom
 *   fread-into-phantom writev-header recv-into-phantom readv-into-phantom
 *   own-segv-handler null-deref epipe-ignored epipe-default
 *   alarm-stall-restart alarm-stall-norestart nginx-writev-nonblocking
 *   spawn-args-from-buffer buffer-shared-anon buffer-shared-file
 *   buffer-private-file source-o-direct source-grows source-shrinks
 *   touch-then-stop tcp-src-file tcp-src-file-aligned tcp-src-tcp
 *   tcp-src-unix tcp-src-pipe tcp-src-file-inspect fsize-lowered-midway
 *   tcp-src-fork tcp-src-claim tcp-src-emfile tcp-many-connections unix-src-file unix-src-tcp
 *   pipe-src-file pipe-src-tcp pipe-src-file-inspect tcp-epoll-relay
 *   stdio-fwrite random-SEED tcp-src-threads
 *   nonblock-full-pipe threads8 threads8-own-arenas stack-buffer
 *   thread-stack-buffer
 *
 * Exit status: 0 (or the death the scenario provokes), 1 on a setup error,
 * 2 on bad usage.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common.h" /* guarded(): the PROT_NONE probe the test programs share; nonzero() */

#define KiB 1024
#define MiB (1024 * 1024)
#define CHUNK (64 * KiB)
#define PG 4096

static const char *dst_dir = ".";

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;
	fflush(stdout);
	fprintf(stderr, "zc: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (errno %s)\n", strerrorname_np(errno) ? strerrorname_np(errno) : "0");
	exit(1);
}

/* ---- raw I/O: never seen by a preloaded library ---- */

static ssize_t raw_read(int fd, void *p, size_t n)
{
	return (ssize_t)syscall(SYS_read, fd, p, n);
}

static ssize_t raw_write(int fd, const void *p, size_t n)
{
	return (ssize_t)syscall(SYS_write, fd, p, n);
}

static void raw_write_all(int fd, const void *p, size_t n)
{
	const char *c = p;
	while (n > 0) {
		ssize_t w = raw_write(fd, c, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			die("raw write");
		c += w;
		n -= (size_t)w;
	}
}

/* ---- pattern and checksum ---- */

static uint64_t splitmix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* Byte i of the pattern with this seed: every 8-byte word depends on its
 * position, so a block sent from the wrong offset never matches. */
static void pattern(unsigned char *p, off_t at, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++) {
		uint64_t pos = (uint64_t)at + i;
		uint64_t w = splitmix((pos >> 3) ^ ((uint64_t)seed << 48));
		p[i] = (unsigned char)(w >> (8 * (pos & 7)));
	}
}

static void make_file(const char *path, off_t size, unsigned seed)
{
	int fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
			      0644);
	if (fd < 0)
		die("create %s", path);
	static unsigned char blk[MiB];
	for (off_t at = 0; at < size;) {
		size_t n = size - at < (off_t)sizeof blk ? (size_t)(size - at) : sizeof blk;
		pattern(blk, at, n, seed);
		raw_write_all(fd, blk, n);
		at += (off_t)n;
	}
	syscall(SYS_close, fd);
}

static uint64_t sum(const void *p, size_t n)
{
	const unsigned char *c = p;
	uint64_t h = 0xcbf29ce484222325ull ^ n;
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		uint64_t w;
		memcpy(&w, c + i, 8);
		h = (h ^ w) * 0x100000001b3ull;
		h ^= h >> 29;
	}
	for (; i < n; i++)
		h = (h ^ c[i]) * 0x100000001b3ull;
	return h;
}

/* Checksum and size of a file, read with raw calls. */
static void file_sum(const char *path, long long *bytes, uint64_t *h)
{
	int fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
	*bytes = -1;
	*h = 0;
	if (fd < 0)
		return;
	struct stat st;
	if (fstat(fd, &st) != 0)
		die("fstat %s", path);
	unsigned char *m = malloc((size_t)st.st_size + 1);
	size_t have = 0;
	for (;;) {
		ssize_t r = raw_read(fd, m + have, (size_t)st.st_size + 1 - have);
		if (r <= 0)
			break;
		have += (size_t)r;
	}
	syscall(SYS_close, fd);
	*bytes = (long long)have;
	*h = sum(m, have);
	free(m);
}

static void print_file(const char *label, const char *path)
{
	long long b;
	uint64_t h;
	file_sum(path, &b, &h);
	printf("%s: %lld bytes, sum %016llx\n", label, b, (unsigned long long)h);
}

/* ---- what the program observes ---- */

/* "123" or "-1 EPIPE" */
static const char *ret(ssize_t r, int e, char *out, size_t cap)
{
	if (r < 0)
		snprintf(out, cap, "-1 %s", errno_name(e));
	else
		snprintf(out, cap, "%zd", r);
	return out;
}

static const char *offs(int fd, char *out, size_t cap)
{
	errno = 0;
	off_t o = lseek(fd, 0, SEEK_CUR);
	return ret((ssize_t)o, errno, out, cap);
}

static pthread_mutex_t probe_lock = PTHREAD_MUTEX_INITIALIZER;

static void probe(const char *what, int i, const void *p, size_t n)
{
	pthread_mutex_lock(&probe_lock); /* guarded() reads into a static buffer */
	fprintf(stderr, "probe %s it %d guarded=%d\n", what, i, guarded(p, n));
	pthread_mutex_unlock(&probe_lock);
}

/* ---- destinations ---- */

enum dstk { D_PIPE, D_UNIX, D_TCP, D_FILE, D_XFS };
enum rdm { R_READ, R_PREAD, R_READV, R_PREADV };
enum wrm { W_WRITE, W_SEND, W_SENDTO, W_PWRITE, W_WRITEV, W_SENDMSG, W_PWRITEV };

struct drain {
	int fd, out;
	long long limit; /* close fd after this many bytes, -1: read to EOF */
	sem_t *closed;   /* posted once fd is closed at the limit */
	pthread_t th;
	bool on;
	unsigned delay_us; /* start reading this late (drain_delay_us) */
};

/* A reader that starts late (a scenario that needs the socket full at
 * least once, whatever the sender's speed). */
static unsigned drain_delay_us;

/* Reads fd to EOF (or to its limit) with raw calls and appends to out. */
static void *drain_main(void *arg)
{
	struct drain *d = arg;
	if (d->delay_us)
		usleep(d->delay_us);
	char *b = malloc(256 * KiB);
	long long got = 0;
	for (;;) {
		size_t want = 256 * KiB;
		if (d->limit >= 0 && (long long)want > d->limit - got)
			want = (size_t)(d->limit - got);
		if (want == 0)
			break;
		ssize_t r = raw_read(d->fd, b, want);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		raw_write_all(d->out, b, (size_t)r);
		got += r;
	}
	if (d->limit >= 0) {
		close(d->fd);
		sem_post(d->closed);
	}
	free(b);
	return NULL;
}

static void drain_start(struct drain *d, int fd, const char *outpath, long long limit,
			sem_t *closed)
{
	d->fd = fd;
	d->limit = limit;
	d->closed = closed;
	d->delay_us = drain_delay_us;
	d->out = (int)syscall(SYS_openat, AT_FDCWD, outpath,
			      O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (d->out < 0)
		die("create %s", outpath);
	if (pthread_create(&d->th, NULL, drain_main, d) != 0)
		die("pthread_create");
	d->on = true;
}

static void drain_join(struct drain *d)
{
	if (!d->on)
		return;
	pthread_join(d->th, NULL);
	if (d->limit < 0)
		close(d->fd);
	syscall(SYS_close, d->out);
	d->on = false;
}

struct ctx {
	int src, dst;
	enum dstk dk;
	enum rdm rd;
	enum wrm wr;
	size_t chunk;
	char *buf;
	off_t rpos, wpos; /* pread / pwrite positions */
	struct drain dr;
	char dstpath[512];
};

static void dst_path(struct ctx *c, const char *name)
{
	snprintf(c->dstpath, sizeof c->dstpath, "%s/%s",
		 c->dk == D_XFS ? dst_dir : ".", name);
}

static void tcp_pair(int sv[2])
{
	int l = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa;
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t sl = sizeof sa;
	if (l < 0 || bind(l, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(l, 1) != 0 ||
	    getsockname(l, (struct sockaddr *)&sa, &sl) != 0)
		die("tcp listen");
	sv[0] = socket(AF_INET, SOCK_STREAM, 0);
	if (sv[0] < 0 || connect(sv[0], (struct sockaddr *)&sa, sizeof sa) != 0)
		die("tcp connect");
	sv[1] = accept(l, NULL, NULL);
	if (sv[1] < 0)
		die("accept");
	close(l);
}

/* Opens the destination; pipes and sockets get a drain into the file
 * name. */
static void open_dst_named(struct ctx *c, enum dstk k, const char *name)
{
	c->dk = k;
	dst_path(c, name);
	int sv[2];
	switch (k) {
	case D_PIPE:
		if (pipe(sv) != 0)
			die("pipe");
		c->dst = sv[1];
		drain_start(&c->dr, sv[0], c->dstpath, -1, NULL);
		break;
	case D_UNIX:
		if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
			die("socketpair");
		c->dst = sv[0];
		drain_start(&c->dr, sv[1], c->dstpath, -1, NULL);
		break;
	case D_TCP:
		tcp_pair(sv);
		c->dst = sv[0];
		drain_start(&c->dr, sv[1], c->dstpath, -1, NULL);
		break;
	case D_FILE:
	case D_XFS:
		c->dst = open(c->dstpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (c->dst < 0)
			die("open %s", c->dstpath);
		break;
	}
}

static void open_dst(struct ctx *c, enum dstk k)
{
	open_dst_named(c, k, "dst.bin");
}

static void close_dst(struct ctx *c)
{
	close(c->dst);
	drain_join(&c->dr);
	print_file("destination", c->dstpath);
}

static void open_src(struct ctx *c, off_t size, int flags)
{
	make_file("src.bin", size, 1);
	c->src = open("src.bin", flags);
	if (c->src < 0)
		die("open src.bin");
	c->rpos = 0;
	c->wpos = 0;
}

static void init(struct ctx *c, enum rdm rd, enum wrm wr, size_t chunk)
{
	memset(c, 0, sizeof *c);
	c->rd = rd;
	c->wr = wr;
	c->chunk = chunk;
	c->src = c->dst = -1;
}

/* ---- one read, one write ---- */

static ssize_t rd_once(struct ctx *c, void *buf, size_t n)
{
	struct iovec one = { buf, n };
	ssize_t r;
	switch (c->rd) {
	case R_PREAD:
	case R_PREADV:
		r = c->rd == R_PREAD ? pread(c->src, buf, n, c->rpos)
				     : preadv(c->src, &one, 1, c->rpos);
		if (r > 0)
			c->rpos += r;
		return r;
	case R_READV: return readv(c->src, &one, 1);
	default: return read(c->src, buf, n);
	}
}

/* The buffer as three iovecs: a small one inside its first partial page,
 * then two that meet in the middle of its guarded pages (a writev of
 * several phantom iovecs at once). */
static int three_iovecs(struct iovec v[3], const void *buf, size_t n)
{
	const char *b = buf;
	size_t a = n < 100 ? n : 100, m = n / 2 > a ? n / 2 : a;
	v[0] = (struct iovec){ (void *)b, a };
	v[1] = (struct iovec){ (void *)(b + a), m - a };
	v[2] = (struct iovec){ (void *)(b + m), n - m };
	return 3;
}

static ssize_t wr_once(struct ctx *c, int fd, const void *buf, size_t n)
{
	switch (c->wr) {
	case W_SEND: return send(fd, buf, n, 0);
	case W_SENDTO: return sendto(fd, buf, n, 0, NULL, 0);
	case W_PWRITE: {
		ssize_t w = pwrite(fd, buf, n, c->wpos);
		if (w > 0)
			c->wpos += w;
		return w;
	}
	case W_WRITEV:
	case W_SENDMSG:
	case W_PWRITEV: {
		struct iovec v[3];
		int k = three_iovecs(v, buf, n);
		if (c->wr == W_WRITEV)
			return writev(fd, v, k);
		if (c->wr == W_SENDMSG) {
			struct msghdr m;
			memset(&m, 0, sizeof m);
			m.msg_iov = v;
			m.msg_iovlen = (size_t)k;
			return sendmsg(fd, &m, 0);
		}
		ssize_t w = pwritev(fd, v, k, c->wpos);
		if (w > 0)
			c->wpos += w;
		return w;
	}
	default: return write(fd, buf, n);
	}
}

/* Writes all n bytes (a blocking destination), printing every return;
 * stops at the first error. Returns bytes written or -1. */
static ssize_t wr_all_to(struct ctx *c, int fd, const void *buf, size_t n)
{
	size_t done = 0;
	char s[64];
	printf("  w");
	while (done < n) {
		ssize_t w = wr_once(c, fd, (const char *)buf + done, n - done);
		int e = errno;
		printf(" %s", ret(w, e, s, sizeof s));
		if (w <= 0) {
			printf("\n");
			errno = e;
			return -1;
		}
		done += (size_t)w;
	}
	printf("\n");
	return (ssize_t)done;
}

static ssize_t wr_all(struct ctx *c, const void *buf, size_t n)
{
	return wr_all_to(c, c->dst, buf, n);
}

static void log_offsets(struct ctx *c)
{
	char a[64], b[64];
	printf("  soff %s doff %s\n", offs(c->src, a, sizeof a), offs(c->dst, b, sizeof b));
}

/* ---- the loop ---- */

/* Called between the read and the write of iterations with
 * i % every == phase; returns true if it wrote the buffer itself. */
typedef bool (*before_fn)(struct ctx *c, int i, ssize_t *r);
/* Called after the write of those iterations. */
typedef void (*after_fn)(struct ctx *c, int i, ssize_t r);

struct plan {
	int every, phase;
	before_fn before;
	after_fn after;
	int max_iter; /* 0: to EOF */
};

/* Returns the number of iterations that read something. */
static int run_loop(struct ctx *c, const struct plan *pl)
{
	char s[64];
	int i;
	for (i = 0; pl->max_iter == 0 || i < pl->max_iter; i++) {
		ssize_t r = rd_once(c, c->buf, c->chunk);
		int e = errno;
		printf("it %d r %s\n", i, ret(r, e, s, sizeof s));
		if (r <= 0)
			break;
		bool sp = pl->every > 0 && i % pl->every == pl->phase;
		bool wrote = false;
		if (sp && pl->before) {
			probe("before-write", i, c->buf, (size_t)r);
			wrote = pl->before(c, i, &r);
		}
		if (!wrote && wr_all(c, c->buf, (size_t)r) < 0)
			break;
		if (sp && pl->after) {
			probe("after-write", i, c->buf, (size_t)r);
			pl->after(c, i, r);
		}
		log_offsets(c);
	}
	return i;
}

static const struct plan plain_plan = { 0, 0, NULL, NULL, 0 };

/* ---- copy matrix ---- */

static int sc_copy(const char *dst, const char *how)
{
	static const char *const dn[] = { "pipe", "unix", "tcp", "file", "xfs" };
	struct ctx c;
	enum rdm rd;
	enum wrm wr;
	if (strcmp(how, "read-write") == 0)
		rd = R_READ, wr = W_WRITE;
	else if (strcmp(how, "pread-write") == 0)
		rd = R_PREAD, wr = W_WRITE;
	else if (strcmp(how, "read-send") == 0)
		rd = R_READ, wr = W_SEND;
	else if (strcmp(how, "read-sendto") == 0)
		rd = R_READ, wr = W_SENDTO;
	else if (strcmp(how, "pread-pwrite") == 0)
		rd = R_PREAD, wr = W_PWRITE;
	else if (strcmp(how, "readv-writev") == 0)
		rd = R_READV, wr = W_WRITEV;
	else if (strcmp(how, "preadv-sendmsg") == 0)
		rd = R_PREADV, wr = W_SENDMSG;
	else if (strcmp(how, "preadv-pwritev") == 0)
		rd = R_PREADV, wr = W_PWRITEV;
	else
		return 2;
	int k = -1;
	for (int j = 0; j < 5; j++)
		if (strcmp(dst, dn[j]) == 0)
			k = j;
	if (k < 0)
		return 2;
	init(&c, rd, wr, CHUNK);
	open_src(&c, 4 * MiB, O_RDONLY);
	open_dst(&c, (enum dstk)k);
	c.buf = malloc(c.chunk);
	int n = run_loop(&c, &plain_plan);
	printf("iterations %d\n", n);
	close_dst(&c);
	return 0;
}

/* Two heap buffers, one right after the other, used alternately (as
 * python and nginx do): each one's phantom borders the other's memory.
 * With churn, every iteration also maps and unmaps a page, as a program
 * doing other work does. nbuf 1: one buffer. */
static int sc_buffers(int nbuf, bool churn)
{
	struct ctx c;
	char s[64];
	init(&c, R_READ, W_WRITE, CHUNK);
	open_src(&c, 4 * MiB, O_RDONLY);
	open_dst(&c, D_UNIX);
	char *b[2] = { malloc(CHUNK), NULL };
	b[1] = nbuf == 2 ? malloc(CHUNK) : b[0];
	for (int i = 0;; i++) {
		char *buf = b[i & 1];
		ssize_t r = read(c.src, buf, CHUNK);
		printf("it %d r %s\n", i, ret(r, errno, s, sizeof s));
		if (r <= 0)
			break;
		if (wr_all(&c, buf, (size_t)r) < 0)
			break;
		if (i % 8 == 3 || i % 8 == 4)
			probe(i & 1 && nbuf == 2 ? "buffer B" : "buffer A", i, buf, (size_t)r);
		if (churn) {
			/* Some other work that maps and unmaps memory. */
			void *m = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
				       -1, 0);
			if (m != MAP_FAILED)
				munmap(m, PG);
		}
		log_offsets(&c);
	}
	close_dst(&c);
	return 0;
}

/* ---- end of file ---- */

static int sc_eof_short_tail(void)
{
	struct ctx c;
	init(&c, R_READ, W_WRITE, CHUNK);
	open_src(&c, 4 * MiB + 3 * PG + 1234, O_RDONLY);
	open_dst(&c, D_UNIX);
	c.buf = malloc(c.chunk);
	int n = run_loop(&c, &plain_plan);
	char s[64];
	ssize_t r = read(c.src, c.buf, c.chunk);
	printf("read at EOF again: %s\n", ret(r, errno, s, sizeof s));
	printf("iterations %d\n", n);
	close_dst(&c);
	return 0;
}

static int sc_eof_read_past(void)
{
	struct ctx c;
	char s[64], t[64];
	off_t size = 4 * MiB;
	init(&c, R_READ, W_WRITE, CHUNK);
	open_src(&c, size, O_RDONLY);
	open_dst(&c, D_UNIX);
	c.buf = malloc(c.chunk);
	run_loop(&c, &plain_plan);
	ssize_t r = read(c.src, c.buf, c.chunk);
	printf("read at EOF: %s, offset %s\n", ret(r, errno, s, sizeof s), offs(c.src, t, sizeof t));
	off_t o = lseek(c.src, size + MiB, SEEK_SET);
	printf("lseek past EOF: %lld\n", (long long)o);
	r = read(c.src, c.buf, c.chunk);
	printf("read past EOF: %s, offset %s\n", ret(r, errno, s, sizeof s), offs(c.src, t, sizeof t));
	r = pread(c.src, c.buf, c.chunk, size);
	printf("pread at EOF: %s\n", ret(r, errno, s, sizeof s));
	r = pread(c.src, c.buf, c.chunk, size + PG);
	printf("pread past EOF: %s\n", ret(r, errno, s, sizeof s));
	/* A read that straddles EOF: short, and what it returns is sent. */
	lseek(c.src, size - 3 * PG - 5, SEEK_SET);
	r = read(c.src, c.buf, c.chunk);
	printf("read across EOF: %s, offset %s\n", ret(r, errno, s, sizeof s),
	       offs(c.src, t, sizeof t));
	if (r > 0)
		wr_all(&c, c.buf, (size_t)r);
	r = read(c.src, c.buf, c.chunk);
	printf("read after that: %s\n", ret(r, errno, s, sizeof s));
	close_dst(&c);
	return 0;
}

/* The file is exactly one chunk; served eight times over (a server
 * sending the same small file per request). */
static int sc_eof_one_chunk_file(void)
{
	struct ctx c;
	init(&c, R_READ, W_WRITE, CHUNK);
	open_src(&c, CHUNK, O_RDONLY);
	open_dst(&c, D_UNIX);
	c.buf = malloc(c.chunk);
	for (int pass = 0; pass < 8; pass++) {
		printf("pass %d: lseek %lld\n", pass, (long long)lseek(c.src, 0, SEEK_SET));
		run_loop(&c, &plain_plan);
	}
	close_dst(&c);
	return 0;
}

/* ---- the program looks at or changes the buffer ---- */

static bool do_inspect(struct ctx *c, int i, ssize_t *r)
{
	printf("  inspect it %d sum %016llx\n", i, (unsigned long long)sum(c->buf, (size_t)*r));
	return false;
}

static size_t modify_at; /* 0 head, 1 middle, 2 tail */

static bool do_modify(struct ctx *c, int i, ssize_t *r)
{
	size_t at = modify_at == 0 ? 0 : modify_at == 1 ? (size_t)*r / 2 : (size_t)*r - 1;
	c->buf[at] ^= 0x5a;
	printf("  modified it %d byte %zu\n", i, at);
	return false;
}

static int loop_with(enum dstk k, off_t size, size_t chunk, char *buf, const struct plan *pl)
{
	struct ctx c;
	init(&c, R_READ, W_WRITE, chunk);
	open_src(&c, size, O_RDONLY);
	open_dst(&c, k);
	c.buf = buf ? buf : malloc(chunk);
	int n = run_loop(&c, pl);
	printf("iterations %d\n", n);
	close_dst(&c);
	return 0;
}

static char *aligned_buf(size_t n)
{
	void *p;
	if (posix_memalign(&p, PG, n) != 0)
		die("posix_memalign");
	return p;
}

static int sc_inspect(void)
{
	struct plan pl = { 8, 3, do_inspect, NULL, 0 };
	return loop_with(D_UNIX, 4 * MiB, CHUNK, NULL, &pl);
}

static int sc_modify(size_t where, bool aligned)
{
	struct plan pl = { 8, 3, do_modify, NULL, 0 };
	modify_at = where;
	return loop_with(D_UNIX, 4 * MiB, CHUNK, aligned ? aligned_buf(CHUNK) : NULL, &pl);
}

static int second_fd = -1;

static bool do_two_dests(struct ctx *c, int i, ssize_t *r)
{
	(void)i;
	if (wr_all(c, c->buf, (size_t)*r) < 0)
		return true;
	printf("  second");
	wr_all_to(c, second_fd, c->buf, (size_t)*r);
	return true;
}

static int sc_two_destinations(void)
{
	second_fd = open("second.bin", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	struct plan pl = { 8, 3, do_two_dests, NULL, 0 };
	loop_with(D_UNIX, 4 * MiB, CHUNK, NULL, &pl);
	close(second_fd);
	print_file("second destination", "second.bin");
	return 0;
}

struct look {
	const char *p;
	size_t n;
	uint64_t h;
};

static void *look_main(void *arg)
{
	struct look *l = arg;
	l->h = sum(l->p, l->n);
	return NULL;
}

static bool do_thread_reads(struct ctx *c, int i, ssize_t *r)
{
	struct look l = { c->buf, (size_t)*r, 0 };
	pthread_t t;
	if (pthread_create(&t, NULL, look_main, &l) != 0)
		die("pthread_create");
	pthread_join(t, NULL);
	printf("  thread it %d sum %016llx\n", i, (unsigned long long)l.h);
	return false;
}

static int sc_thread_reads(void)
{
	struct plan pl = { 8, 3, do_thread_reads, NULL, 0 };
	return loop_with(D_UNIX, 4 * MiB, CHUNK, NULL, &pl);
}

static bool fork_touch; /* the child checksums the buffer before writing it */

static bool do_fork(struct ctx *c, int i, ssize_t *r)
{
	int p[2];
	if (pipe(p) != 0)
		die("pipe");
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		close(p[0]);
		if (fork_touch)
			printf("  child it %d sum %016llx\n", i,
			       (unsigned long long)sum(c->buf, (size_t)*r));
		ssize_t done = 0;
		while (done < *r) {
			ssize_t w = write(p[1], c->buf + done, (size_t)(*r - done));
			if (w <= 0)
				break;
			done += w;
		}
		printf("  child wrote %zd\n", done);
		fflush(stdout);
		_exit(0);
	}
	close(p[1]);
	char *got = malloc((size_t)*r + 1);
	size_t have = 0;
	for (;;) {
		ssize_t k = raw_read(p[0], got + have, (size_t)*r + 1 - have);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		have += (size_t)k;
	}
	close(p[0]);
	int st;
	waitpid(pid, &st, 0);
	printf("  parent got %zu bytes from the child, sum %016llx, status %d\n", have,
	       (unsigned long long)sum(got, have), st);
	free(got);
	return false;
}

static int sc_fork_child(bool touch)
{
	fork_touch = touch;
	struct plan pl = { 8, 3, do_fork, NULL, 0 };
	return loop_with(D_UNIX, 4 * MiB, CHUNK, NULL, &pl);
}

static int realloc_grow;

static bool do_realloc(struct ctx *c, int i, ssize_t *r)
{
	size_t to = realloc_grow ? c->chunk : 4 * c->chunk;
	realloc_grow = !realloc_grow;
	char *n = realloc(c->buf, to);
	if (n == NULL)
		die("realloc");
	fprintf(stderr, "probe realloc it %d moved=%d\n", i, n != c->buf);
	c->buf = n;
	printf("  realloc it %d to %zu\n", i, to);
	(void)r;
	return false;
}

static int sc_realloc(void)
{
	struct plan pl = { 8, 3, do_realloc, NULL, 0 };
	return loop_with(D_UNIX, 4 * MiB, CHUNK, NULL, &pl);
}

/* 256K buffers that glibc maps: growing one to 4 MiB and back moves its
 * pages with an mremap inside glibc, which no hook sees. */
static bool do_realloc_mapped(struct ctx *c, int i, ssize_t *r)
{
	size_t to = realloc_grow ? c->chunk : 16 * c->chunk;
	realloc_grow = !realloc_grow;
	char *n = realloc(c->buf, to);
	if (n == NULL)
		die("realloc");
	fprintf(stderr, "probe realloc it %d moved=%d\n", i, n != c->buf);
	c->buf = n;
	printf("  realloc it %d to %zu\n", i, to);
	(void)r;
	return false;
}

static int sc_realloc_mapped(void)
{
	mallopt(M_MMAP_THRESHOLD, 128 * KiB); /* fixed: no dynamic threshold */
	struct plan pl = { 4, 2, do_realloc_mapped, NULL, 0 };
	return loop_with(D_UNIX, 8 * MiB, 256 * KiB, NULL, &pl);
}

/* The buffer is freed after the read and a fresh zeroed one takes its
 * place (1 MiB: glibc maps it, so the new one is untouched fresh memory,
 * often at the same address); writing it must send zeros. */
static bool do_free_fresh(struct ctx *c, int i, ssize_t *r)
{
	char *old = c->buf;
	free(c->buf);
	c->buf = calloc(1, c->chunk);
	if (c->buf == NULL)
		die("calloc");
	fprintf(stderr, "probe free it %d same_address=%d\n", i, c->buf == old);
	probe("fresh-buffer", i, c->buf, (size_t)*r);
	printf("  freed it %d, fresh zeroed buffer\n", i);
	return false;
}

static int sc_free_fresh(void)
{
	mallopt(M_MMAP_THRESHOLD, 128 * KiB); /* fixed: no dynamic threshold */
	struct plan pl = { 4, 2, do_free_fresh, NULL, 0 };
	return loop_with(D_UNIX, 8 * MiB, MiB, NULL, &pl);
}

static char copybuf[CHUNK];

static bool do_memcpy(struct ctx *c, int i, ssize_t *r)
{
	memcpy(copybuf, c->buf, (size_t)*r);
	printf("  memcpy it %d sum %016llx\n", i, (unsigned long long)sum(copybuf, (size_t)*r));
	return false;
}

static int sc_memcpy(void)
{
	struct plan pl = { 8, 3, do_memcpy, NULL, 0 };
	return loop_with(D_UNIX, 4 * MiB, CHUNK, NULL, &pl);
}

static char *map_buf(size_t n)
{
	void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		die("mmap");
	return p;
}

static void after_madvise(struct ctx *c, int i, ssize_t r)
{
	(void)r;
	int m = madvise(c->buf, c->chunk, MADV_DONTNEED);
	printf("  madvise it %d: %d, nonzero bytes %zu\n", i, m, nonzero(c->buf, c->chunk));
}

static int sc_madvise(void)
{
	struct plan pl = { 8, 3, NULL, after_madvise, 0 };
	return loop_with(D_UNIX, 4 * MiB, CHUNK, map_buf(CHUNK), &pl);
}

static bool unmap_first, map_anywhere;

static void after_remap(struct ctx *c, int i, ssize_t r)
{
	(void)r;
	char *old = c->buf;
	if (unmap_first)
		printf("  munmap it %d: %d\n", i, munmap(old, c->chunk));
	char *p;
	if (map_anywhere) {
		/* No address asked: the kernel usually hands back the hole
		 * just unmapped. Whether it did may differ under the library
		 * (it maps memory of its own): stderr, not stdout. */
		p = mmap(NULL, c->chunk, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		fprintf(stderr, "probe mmap it %d same_address=%d\n", i, p == old);
		printf("  mmap it %d: %s\n", i, p == MAP_FAILED ? "failed" : "ok");
	} else {
		p = mmap(old, c->chunk, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
		printf("  mmap fixed it %d: same address %d\n", i, p == old);
	}
	if (p == MAP_FAILED)
		die("mmap");
	c->buf = p;
	/* Written before anything looks at it: a stale phantom would be
	 * forwarded from the file here. */
	printf("  fresh");
	wr_all(c, p, c->chunk);
	printf("  fresh nonzero bytes %zu\n", nonzero(p, c->chunk));
}

static int sc_remap(bool unmap, bool anywhere)
{
	unmap_first = unmap;
	map_anywhere = anywhere;
	struct plan pl = { 8, 3, NULL, after_remap, 0 };
	return loop_with(D_UNIX, 4 * MiB, CHUNK, map_buf(CHUNK), &pl);
}

/* ---- the source changes meaning or content ---- */

static int sc_close_dup2(void)
{
	struct ctx c;
	char s[64];
	off_t size = 4 * MiB;
	init(&c, R_READ, W_WRITE, CHUNK);
	open_src(&c, size, O_RDONLY);
	make_file("other.bin", size, 7);
	open_dst(&c, D_UNIX);
	c.buf = malloc(c.chunk);
	struct plan pl = { 0, 0, NULL, NULL, 2 };
	run_loop(&c, &pl); /* arms */
	size_t rest = (size_t)size - 2 * CHUNK;
	char *all = malloc(rest);
	size_t have = 0;
	while (have < rest) {
		ssize_t r = read(c.src, all + have, rest - have);
		printf("read all: %s\n", ret(r, errno, s, sizeof s));
		if (r <= 0)
			break;
		have += (size_t)r;
	}
	probe("read-all", 0, all, have);
	int num = c.src;
	printf("close source: %d\n", close(c.src));
	int o = open("other.bin", O_RDONLY);
	printf("other file opened on the same number: %d\n", o == num);
	if (o != num) {
		printf("dup2: %d\n", dup2(o, num) == num);
		close(o);
	}
	char peek[16];
	ssize_t pk = read(num, peek, sizeof peek);
	printf("the number now reads %zd bytes, sum %016llx\n", pk,
	       (unsigned long long)sum(peek, pk > 0 ? (size_t)pk : 0));
	c.src = num;
	wr_all(&c, all, have);
	close_dst(&c);
	return 0;
}

static int other_fd = -1;
static bool edge_only; /* change only 100 bytes inside the first page */

static bool do_pwrite_source(struct ctx *c, int i, ssize_t *r)
{
	char s[64];
	off_t at = lseek(c->src, 0, SEEK_CUR) - *r;
	size_t len = (size_t)*r;
	if (edge_only) {
		/* Bytes of the buffer's partial first page: the read filled them
		 * for real, and a write may send them from the file while they
		 * still hold what the read put there. */
		at += 10;
		len = 100;
	}
	char *junk = malloc(len);
	memset(junk, 0xee, len);
	int fd = other_fd >= 0 ? other_fd : c->src;
	ssize_t w = pwrite(fd, junk, len, at);
	printf("  pwrite source it %d at %lld: %s\n", i, (long long)at, ret(w, errno, s, sizeof s));
	free(junk);
	return false;
}

static int sc_pwrite_source(bool other, bool edge)
{
	edge_only = edge;
	struct ctx c;
	init(&c, R_READ, W_WRITE, CHUNK);
	open_src(&c, 4 * MiB, other ? O_RDONLY : O_RDWR);
	if (other) {
		other_fd = open("src.bin", O_WRONLY);
		if (other_fd < 0)
			die("open src.bin for writing");
	}
	open_dst(&c, D_UNIX);
	c.buf = malloc(c.chunk);
	struct plan pl = { 8, 3, do_pwrite_source, NULL, 0 };
	int n = run_loop(&c, &pl);
	printf("iterations %d\n", n);
	close_dst(&c);
	print_file("source now", "src.bin");
	return 0;
}

static bool do_ftruncate(struct ctx *c, int i, ssize_t *r)
{
	off_t at = lseek(c->src, 0, SEEK_CUR) - *r;
	int t = ftruncate(c->src, at + *r / 2);
	printf("  ftruncate source it %d to %lld: %d\n", i, (long long)(at + *r / 2), t);
	return false;
}

static int sc_ftruncate(void)
{
	struct ctx c;
	init(&c, R_READ, W_WRITE, CHUNK);
	open_src(&c, 4 * MiB, O_RDWR);
	open_dst(&c, D_UNIX);
	c.buf = malloc(c.chunk);
	struct plan pl = { 0, 0, NULL, NULL, 5 };
	run_loop(&c, &pl);
	/* The sixth read, then the truncation cuts the region just read in
	 * half, then the write; then the loop finds EOF. */
	struct plan pl2 = { 1, 0, do_ftruncate, NULL, 0 };
	int n = run_loop(&c, &pl2);
	printf("iterations after the truncation %d\n", n);
	close_dst(&c);
	print_file("source now", "src.bin");
	return 0;
}

/* ---- stdio ---- */

static FILE *out_fp, *in_fp;

static bool do_fwrite(struct ctx *c, int i, ssize_t *r)
{
	size_t w = fwrite(c->buf, 1, (size_t)*r, out_fp);
	int f = fflush(out_fp);
	printf("  fwrite it %d: %zu, fflush %d, error %d\n", i, w, f, ferror(out_fp));
	return true;
}

static bool do_fread(struct ctx *c, int i, ssize_t *r)
{
	/* The loop's read already moved the offset; read the same bytes
	 * again through stdio into the (guarded) buffer. */
	off_t at = lseek(c->src, 0, SEEK_CUR) - *r;
	fseeko(in_fp, at, SEEK_SET);
	probe("before-fread", i, c->buf, (size_t)*r);
	size_t n = fread(c->buf, 1, (size_t)*r, in_fp);
	printf("  fread it %d: %zu, error %d\n", i, n, ferror(in_fp));
	*r = (ssize_t)n;
	return do_fwrite(c, i, r);
}

static int sc_stdio(bool with_fread)
{
	struct ctx c;
	init(&c, R_READ, W_WRITE, CHUNK);
	open_src(&c, 4 * MiB, O_RDONLY);
	open_dst(&c, D_FILE);
	c.buf = malloc(c.chunk);
	out_fp = fdopen(dup(c.dst), "w");
	if (with_fread)
		in_fp = fopen("src.bin", "r");
	if (out_fp == NULL || (with_fread && in_fp == NULL))
		die("stdio");
	/* Iteration 3's buffer was guarded by iteration 2 (a phantom kept
	 * across iterations); with fread it is the target of the read. */
	struct plan pl = { 8, 3, with_fread ? do_fread : do_fwrite, NULL, 0 };
	int n = run_loop(&c, &pl);
	printf("iterations %d\n", n);
	fclose(out_fp);
	if (in_fp)
		fclose(in_fp);
	close_dst(&c);
	return 0;
}

/* ---- vectors and socket reads ---- */

static bool do_writev_hdr(struct ctx *c, int i, ssize_t *r)
{
	static char hdr[] = "ZC-HEADER-0123\n";
	char s[64];
	struct iovec v[2] = { { hdr, 15 }, { c->buf, (size_t)*r } };
	ssize_t w = writev(c->dst, v, 2);
	printf("  writev it %d: %s\n", i, ret(w, errno, s, sizeof s));
	return true;
}

static int sc_writev(void)
{
	struct plan pl = { 8, 3, do_writev_hdr, NULL, 0 };
	return loop_with(D_UNIX, 4 * MiB, CHUNK, NULL, &pl);
}

static int side[2] = { -1, -1 };

static void after_recv(struct ctx *c, int i, ssize_t r)
{
	char s[64];
	(void)r;
	static unsigned char data[32 * KiB];
	pattern(data, (off_t)i * 1000, sizeof data, 99);
	ssize_t w = send(side[1], data, sizeof data, 0);
	printf("  side send it %d: %s\n", i, ret(w, errno, s, sizeof s));
	ssize_t k = recv(side[0], c->buf, c->chunk, 0);
	int e = errno;
	printf("  recv it %d: %s, sum %016llx\n", i, ret(k, e, s, sizeof s),
	       (unsigned long long)sum(c->buf, k > 0 ? (size_t)k : 0));
}

static int sc_recv(void)
{
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, side) != 0)
		die("socketpair");
	struct plan pl = { 8, 3, NULL, after_recv, 0 };
	return loop_with(D_UNIX, 4 * MiB, CHUNK, NULL, &pl);
}

static int readv_fd = -1;

static void after_readv(struct ctx *c, int i, ssize_t r)
{
	char s[64];
	(void)r;
	struct iovec v[2] = { { c->buf, c->chunk / 2 }, { c->buf + c->chunk / 2, c->chunk / 2 } };
	ssize_t k = readv(readv_fd, v, 2);
	int e = errno;
	printf("  readv it %d: %s, sum %016llx\n", i, ret(k, e, s, sizeof s),
	       (unsigned long long)sum(c->buf, k > 0 ? (size_t)k : 0));
}

static int sc_readv(void)
{
	make_file("other.bin", 2 * MiB, 5);
	readv_fd = open("other.bin", O_RDONLY);
	struct plan pl = { 8, 3, NULL, after_readv, 0 };
	return loop_with(D_UNIX, 4 * MiB, CHUNK, NULL, &pl);
}

/* ---- signals ---- */

static char *own_page;
static volatile sig_atomic_t own_hits, own_right_addr;

static void own_handler(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	own_hits++;
	if (si->si_addr == (void *)own_page)
		own_right_addr++;
	mprotect(own_page, PG, PROT_READ | PROT_WRITE);
}

static void after_own_fault(struct ctx *c, int i, ssize_t r)
{
	mprotect(own_page, PG, PROT_NONE);
	int before = own_hits;
	own_page[100] = (char)i; /* faults: the program's handler opens it */
	printf("  own fault it %d: handler ran %d time(s), address right %d\n", i, own_hits - before,
	       (int)own_right_addr);
	/* The phantom (if any) is not the program's business. */
	before = own_hits;
	printf("  buffer sum %016llx, handler ran %d time(s)\n",
	       (unsigned long long)sum(c->buf, (size_t)r), own_hits - before);
}

static int sc_own_segv(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = own_handler;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSEGV, &sa, NULL) != 0)
		die("sigaction");
	own_page = map_buf(PG);
	struct plan pl = { 8, 3, NULL, after_own_fault, 0 };
	loop_with(D_UNIX, 4 * MiB, CHUNK, NULL, &pl);
	printf("handler total %d\n", (int)own_hits);
	return 0;
}

static int *volatile null_ptr;

/* A real fault is the point: in sanitizer builds, UBSan must not turn the
 * store into its own report. */
__attribute__((no_sanitize("undefined"))) static void after_null(struct ctx *c, int i,
								  ssize_t r)
{
	(void)r;
	/* Everything written so far is delivered first: what a killed
	 * process leaves in a socket is not the point here. The buffer
	 * stays a phantom. */
	close_dst(c);
	printf("  dereferencing NULL at it %d\n", i);
	fflush(stdout);
	*null_ptr = 1;
	printf("  still alive\n");
}

static int sc_null(void)
{
	struct plan pl = { 100, 5, NULL, after_null, 0 };
	return loop_with(D_UNIX, 4 * MiB, CHUNK, NULL, &pl);
}

/* The reader takes exactly three chunks, then closes its end; the fourth
 * write meets a pipe without readers. Page-aligned buffer: the whole
 * write is a phantom, so the kernel path is the one that meets EPIPE. */
static int sc_epipe(bool ignore)
{
	struct ctx c;
	sem_t closed;
	int p[2];
	if (ignore)
		signal(SIGPIPE, SIG_IGN);
	sem_init(&closed, 0, 0);
	init(&c, R_READ, W_WRITE, CHUNK);
	open_src(&c, 4 * MiB, O_RDONLY);
	c.dk = D_PIPE;
	dst_path(&c, "dst.bin");
	if (pipe(p) != 0)
		die("pipe");
	c.dst = p[1];
	drain_start(&c.dr, p[0], c.dstpath, 3 * CHUNK, &closed);
	c.buf = aligned_buf(CHUNK);
	struct plan pl = { 0, 0, NULL, NULL, 3 };
	run_loop(&c, &pl);
	sem_wait(&closed);
	printf("reader closed\n");
	char s[64];
	ssize_t r = read(c.src, c.buf, c.chunk);
	printf("it 3 r %s\n", ret(r, errno, s, sizeof s));
	probe("before-epipe-write", 3, c.buf, (size_t)r);
	ssize_t w = write(c.dst, c.buf, (size_t)r);
	printf("write to a pipe without readers: %s\n", ret(w, errno, s, sizeof s));
	w = write(c.dst, c.buf, (size_t)r);
	printf("again: %s\n", ret(w, errno, s, sizeof s));
	close(c.dst);
	drain_join(&c.dr);
	print_file("destination", c.dstpath);
	return 0;
}

/* ---- RLIMIT_FSIZE lowered while the loop runs ---- */

/* After the fourth chunk the program lowers RLIMIT_FSIZE (SIGXFSZ
 * ignored): the write that reaches the limit is cut short, the next one
 * fails with EFBIG - the library must see the new limit at once. */
static void after_limit(struct ctx *c, int i, ssize_t r)
{
	(void)c, (void)r;
	signal(SIGXFSZ, SIG_IGN);
	struct rlimit rl = { 6 * CHUNK + 1000, RLIM_INFINITY };
	printf("  it %d: RLIMIT_FSIZE %s\n", i, setrlimit(RLIMIT_FSIZE, &rl) == 0 ? "lowered" : "?");
}

static int sc_fsize_midway(void)
{
	struct plan pl = { 100, 3, NULL, after_limit, 10 };
	return loop_with(D_FILE, 4 * MiB, CHUNK, NULL, &pl);
}

/* ---- stdio output ---- */

/* The copy loop writing with stdio, as curl -o and wget -O do: a small
 * buffered header before each chunk (fprintf), the chunk with fwrite
 * (the buffer a phantom once armed), ftell checked along the way. */
static int sc_stdio_loop(void)
{
	struct ctx c;
	char s[64];
	init(&c, R_READ, W_WRITE, CHUNK);
	open_src(&c, 4 * MiB + 999, O_RDONLY);
	dst_path(&c, "dst.bin");
	FILE *out = fopen(c.dstpath, "w");
	if (out == NULL)
		die("fopen");
	c.buf = malloc(CHUNK);
	long long put = 0;
	int bad_tell = 0;
	for (int i = 0;; i++) {
		ssize_t r = read(c.src, c.buf, CHUNK);
		printf("it %d r %s\n", i, ret(r, errno, s, sizeof s));
		if (r <= 0)
			break;
		put += fprintf(out, "chunk %d\n", i);
		size_t w = fwrite(c.buf, 1, (size_t)r, out);
		put += (long long)w;
		if (ftell(out) != put)
			bad_tell++;
		printf("  fwrite %zu\n", w);
	}
	printf("ftell %ld, wrong along the way %d, ferror %d\n", ftell(out), bad_tell, ferror(out));
	if (fclose(out) != 0)
		die("fclose");
	print_file("destination", c.dstpath);
	return 0;
}

/* ---- a TCP socket as the source ---- */

struct feeder {
	int fd;
	off_t size;
	bool may_end; /* the reader may go away: stop quietly on a write error */
};

/* Sends src.bin into the socket with write(2) in uneven pieces (never
 * preloaded work: raw system calls), then closes its end. */
static void *feeder_main(void *arg)
{
	struct feeder *f = arg;
	int src = (int)syscall(SYS_openat, AT_FDCWD, "src.bin", O_RDONLY | O_CLOEXEC);
	static unsigned char b[200 * KiB];
	size_t piece = 7 * KiB;
	for (off_t at = 0; src >= 0 && at < f->size;) {
		ssize_t r = raw_read(src, b, piece);
		if (r <= 0)
			break;
		if (f->may_end) {
			ssize_t w = 0;
			for (ssize_t k = 0; k < r; k += w)
				if ((w = raw_write(f->fd, b + k, (size_t)(r - k))) <= 0)
					break;
			if (w <= 0)
				break;
		} else {
			raw_write_all(f->fd, b, (size_t)r);
		}
		at += r;
		piece = piece * 3 % (190 * KiB) + 1000; /* 1 KB to 190 KB */
	}
	syscall(SYS_close, src);
	syscall(SYS_close, f->fd);
	return NULL;
}

static size_t quiet_write_all(int fd, const char *p, size_t n)
{
	size_t done = 0;
	while (done < n) {
		ssize_t w = write(fd, p + done, n - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		done += (size_t)w;
	}
	return done;
}

/* The copy loop reading from a TCP socket (a peer thread sends src.bin in
 * uneven pieces). Socket reads return what is there, so per-call counts
 * are timing, not semantics: printed are the totals, the destination, and
 * - with touch - whether every buffer the program inspected held the
 * right bytes of the stream at its offset. */
static int fork_at = -1; /* fork after this many reads (tcp-src-fork) */
static int claim_at = -1; /* dup2 onto the highest open number (tcp-src-claim) */
static int exhaust_at = -1; /* open until EMFILE, then close them (tcp-src-emfile) */

/* The program runs out of descriptor numbers right after a read: it must
 * get exactly as many as without the library (which gives its own up). */
static void exhaust_descriptors(void)
{
	static int fds[4096];
	int n = 0;
	while (n < 4096) {
		int fd = open("/dev/null", O_RDONLY);
		if (fd < 0)
			break;
		fds[n++] = fd;
	}
	printf("descriptors opened until %s: %d\n", errno == EMFILE ? "EMFILE" : "?", n);
	while (n > 0)
		close(fds[--n]);
}

/* The program claims the highest descriptor number in use - where the
 * library keeps its own (pool pipes) - with dup2, right after a read. */
static void claim_highest(void)
{
	int hi = -1;
	DIR *d = opendir("/proc/self/fd");
	for (struct dirent *e; d && (e = readdir(d)) != NULL;)
		if (e->d_name[0] != '.' && atoi(e->d_name) > hi)
			hi = atoi(e->d_name);
	if (d)
		closedir(d);
	int z = open("/dev/zero", O_RDONLY);
	printf("claimed the highest number: %s\n", hi > 2 && z >= 0 && dup2(z, hi) == hi ? "yes" : "no");
	close(z);
}

/* The child of a fork right after a read: the buffer must hold the
 * stream's bytes at that offset (its own copy, not a shared pipe's). */
static void forked_child_checks(const char *buf, size_t n, long long at)
{
	static unsigned char want[CHUNK];
	pattern(want, at, n, 1);
	printf("child after fork: buffer %s\n", memcmp(want, buf, n) == 0 ? "right" : "WRONG");
	fflush(stdout);
	_exit(0);
}

enum srck { SRC_TCP, SRC_UNIX, SRC_PIPE };
static enum srck stream_src = SRC_TCP;

/* src.bin of size bytes, sent by a feeder thread (joined by the caller)
 * over a fresh loopback TCP connection, UNIX stream socketpair or pipe:
 * returns the reading end. */
static int stream_fed(enum srck kind, off_t size, struct feeder *f, pthread_t *th)
{
	make_file("src.bin", size, 1);
	int sv[2];
	if (kind == SRC_UNIX) {
		if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
			die("socketpair");
	} else if (kind == SRC_PIPE) {
		int pp[2];
		if (pipe(pp) != 0)
			die("pipe");
		sv[0] = pp[1]; /* the feeder writes, the loop reads */
		sv[1] = pp[0];
	} else {
		tcp_pair(sv);
	}
	*f = (struct feeder){ sv[0], size, f->may_end };
	if (pthread_create(th, NULL, feeder_main, f) != 0)
		die("pthread_create");
	return sv[1];
}

static int tcp_fed(off_t size, struct feeder *f, pthread_t *th)
{
	return stream_fed(SRC_TCP, size, f, th);
}


static int sc_sock_src(enum dstk k, bool touch, bool aligned)
{
	struct ctx c;
	init(&c, R_READ, W_WRITE, CHUNK);
	off_t size = 8 * MiB + 4321;
	struct feeder f = { .fd = -1 };
	pthread_t th;
	c.src = stream_fed(stream_src, size, &f, &th);
	open_dst(&c, k);
	c.buf = aligned ? aligned_buf(CHUNK) : malloc(CHUNK);
	static unsigned char want[CHUNK];
	long long total = 0, bad = 0, inspected = 0;
	int reads = 0;
	for (;;) {
		ssize_t r = read(c.src, c.buf, CHUNK);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			printf("end: %s\n", r == 0 ? "0" : strerror(errno));
			break;
		}
		reads++;
		if (reads == claim_at)
			claim_highest();
		if (reads == exhaust_at)
			exhaust_descriptors();
		if (reads == fork_at) {
			fflush(stdout);
			pid_t pid = fork();
			if (pid == 0)
				forked_child_checks(c.buf, (size_t)r, total);
			int st;
			waitpid(pid, &st, 0);
		}
		if (touch && reads % 5 == 3) {
			pattern(want, total, (size_t)r, 1);
			if (memcmp(want, c.buf, (size_t)r) != 0)
				bad++;
			inspected++;
		}
		if (quiet_write_all(c.dst, c.buf, (size_t)r) != (size_t)r)
			die("write");
		total += r;
	}
	pthread_join(th, NULL);
	printf("read %lld bytes%s\n", total, touch ? "" : "");
	if (touch)
		printf("inspected buffers: %s, wrong: %lld\n", inspected > 0 ? "some" : "none", bad);
	close(c.src);
	close_dst(&c);
	return 0;
}

/* ---- what a socket-read buffer holds after it was written to a file ----
 *
 * A buffer read from a socket and written whole to a regular file has its
 * bytes in that file afterwards. Each turn writes the buffer (two of them,
 * used in turn) to dst.bin and then, by turn: looks at it; overwrites
 * that range of dst.bin with other bytes, looks, and puts the range back;
 * truncates dst.bin before the range, looks, and writes it again with
 * pwrite; or writes it to a second file as well. The program must see the
 * stream's bytes every time, and dst.bin must end equal to the stream.
 * With fsize, RLIMIT_FSIZE is lowered inside a buffer after a few turns:
 * the write is cut short there, and the buffer still holds the stream. At
 * the end dst.bin is closed: no descriptor of the process may still name
 * it (the library keeps none once the program let go). */
static char fds_want[PATH_MAX];

static int names_want(const char *target)
{
	return strcmp(target, fds_want) == 0;
}

static int fds_naming(const char *path)
{
	if (realpath(path, fds_want) == NULL)
		return -1;
	return count_fds_naming(names_want);
}

static int sc_after_write(bool fsize)
{
	size_t last_n = 0;
	off_t size = 8 * MiB + 4321;
	struct feeder f = { .fd = -1 };
	pthread_t th;
	int in_fd = tcp_fed(size, &f, &th);
	int out = open("dst.bin", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	int out2 = open("dst2.bin", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	int dst2_in = open("dst2.bin", O_RDONLY);
	if (out < 0 || out2 < 0 || dst2_in < 0)
		die("open dst");
	static unsigned char got2[CHUNK];
	off_t total2 = 0;
	char *bufs[2] = { malloc(CHUNK), malloc(CHUNK) };
	static unsigned char want[CHUNK], junk[CHUNK];
	memset(junk, 0x5a, sizeof junk);
	long long total = 0, wrong = 0, looked = 0;
	char *last = NULL;
	for (int i = 0;; i++) {
		char *buf = bufs[i % 2];
		ssize_t r = read(in_fd, buf, CHUNK);
		if (r < 0 && errno == EINTR) {
			i--;
			continue;
		}
		if (r <= 0)
			break;
		pattern(want, total, (size_t)r, 1);
		last = buf;
		last_n = (size_t)r;
		if (fsize && i == 6) {
			signal(SIGXFSZ, SIG_IGN);
			struct rlimit rl = { (rlim_t)total + (rlim_t)r / 2 + 100, RLIM_INFINITY };
			if (setrlimit(RLIMIT_FSIZE, &rl) != 0)
				die("setrlimit");
			ssize_t w = write(out, buf, (size_t)r);
			printf("write at the limit: %s\n", w == r / 2 + 100 ? "cut at the limit" : "?");
			printf("buffer after the short write: %s\n",
			       memcmp(want, buf, (size_t)r) == 0 ? "right" : "WRONG");
			w = write(out, buf + r / 2 + 100, (size_t)r - (size_t)(r / 2 + 100));
			printf("next write: %s\n", w < 0 && errno == EFBIG ? "EFBIG" : "?");
			while (read(in_fd, junk, sizeof junk) > 0) /* the rest of the stream */
				;
			break;
		}
		if (write(out, buf, (size_t)r) != r)
			die("write");
		/* Rarely enough that the pair stays armed: every look costs a
		 * fill, and frequent ones back the library off (pair.c). */
		switch (i % 20 == 10 ? (i / 20) % 4 + 1 : 0) {
		case 1:
			break;
		case 2:
			if (pwrite(out, junk, (size_t)r, (off_t)total) != r)
				die("pwrite junk");
			break;
		case 3:
			if (ftruncate(out, (off_t)total) != 0)
				die("ftruncate");
			break;
		case 4:
			if (write(out2, buf, (size_t)r) != r)
				die("write dst2");
			if (pread(out2 == out ? -1 : dst2_in, got2, (size_t)r, total2) != r ||
			    memcmp(want, got2, (size_t)r) != 0)
				wrong++;
			total2 += r;
			break;
		default:
			total += r;
			continue;
		}
		looked++;
		if (memcmp(want, buf, (size_t)r) != 0)
			wrong++;
		if (i % 20 == 10 && ((i / 20) % 4 == 1 || (i / 20) % 4 == 2))
			if (pwrite(out, buf, (size_t)r, (off_t)total) != r)
				die("pwrite back");
		total += r;
	}
	close(in_fd);
	pthread_join(th, NULL);
	if (!fsize)
		printf("read %lld bytes, looked %s, wrong %lld\n", total,
		       looked > 3 ? "several times" : "hardly", wrong);
	close(out);
	close(out2);
	close(dst2_in);
	unlink("dst2.bin"); /* which buffers went there is timing; checked above */
	printf("descriptors naming dst.bin after close: %d\n", fds_naming("dst.bin"));
	printf("last buffer after close: %s\n",
	       last != NULL && memcmp(want, last, last_n) == 0 ? "right" : "WRONG");
	/* dst.bin holds a prefix of the stream (all of it without fsize) */
	int in = open("dst.bin", O_RDONLY);
	static unsigned char got[CHUNK];
	long long at = 0, bad = 0;
	for (ssize_t k; in >= 0 && (k = raw_read(in, got, sizeof got)) > 0; at += k) {
		pattern(want, at, (size_t)k, 1);
		bad += memcmp(want, got, (size_t)k) != 0;
	}
	close(in);
	printf("dst.bin: %s, wrong chunks %lld\n", fsize ? (at > 0 ? "a prefix" : "empty") :
	       at == size ? "the whole stream" : "SHORT", bad);
	if (fsize)
		unlink("dst.bin"); /* where the limit fell is timing */
	return 0;
}

/* ---- seeded random operation sequences ---- */

static uint64_t rng_state;

static uint64_t rnd(uint64_t n)
{
	rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
	return n ? (rng_state >> 33) % n : 0;
}

/* SEED: a TCP (or, for odd seeds, a pipe) stream of a known pattern read
 * into one of two buffers (one malloc'd, one page-aligned) with read,
 * recv or readv of random sizes, sometimes inspected (checked against the
 * stream's bytes at that offset), sometimes re-read before the write
 * (the buffer overwritten), written to a file in random pieces with
 * write, writev (two iovecs) or send-free pwrite at the running offset,
 * now and then in a forked child's view first. The file must equal the
 * stream; every inspection must see the stream's bytes. */
static int sc_random(unsigned seed)
{
	rng_state = seed * 0x9e3779b97f4a7c15ull + 1;
	off_t size = 6 * MiB + (off_t)rnd(100000);
	bool use_pipe = seed & 1;
	struct feeder f = { .fd = -1 };
	pthread_t th;
	int sv[2] = { -1, stream_fed(use_pipe ? SRC_PIPE : SRC_TCP, size, &f, &th) };
	char dst[600];
	snprintf(dst, sizeof dst, "dst.bin");
	int out = open(dst, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (out < 0)
		die("open dst");
	char *bufs[2] = { malloc(CHUNK + 3000), aligned_buf(CHUNK) };
	size_t caps[2] = { CHUNK + 3000, CHUNK };
	static unsigned char want[CHUNK + 3000];
	long long total = 0, wrong = 0, inspected = 0, forks = 0;
	for (;;) {
		int b = (int)rnd(2);
		char *buf = bufs[b];
		size_t ask = 4096 + (size_t)rnd(caps[b] - 4096 + 1);
		ssize_t r;
		int how = (int)rnd(3);
		if (how == 0) {
			r = read(sv[1], buf, ask);
		} else if (how == 1 && !use_pipe) {
			r = recv(sv[1], buf, ask, 0);
		} else {
			struct iovec one = { buf, ask };
			r = readv(sv[1], &one, 1);
		}
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		bool looks = seed < 100; /* seeds from 100: a program that never looks */
		if (looks && rnd(6) == 0) { /* inspect */
			pattern(want, total, (size_t)r, 1);
			inspected++;
			if (memcmp(want, buf, (size_t)r) != 0)
				wrong++;
		}
		if (looks && rnd(25) == 0) { /* a child looks at the buffer */
			fflush(stdout);
			pid_t pid = fork();
			if (pid == 0) {
				pattern(want, total, (size_t)r, 1);
				_exit(memcmp(want, buf, (size_t)r) == 0 ? 0 : 1);
			}
			int st;
			waitpid(pid, &st, 0);
			forks++;
			if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
				wrong++;
		}
		/* out in random pieces */
		for (ssize_t done = 0; done < r;) {
			size_t piece = (size_t)(r - done);
			if (rnd(3) == 0)
				piece = 1 + (size_t)rnd(piece);
			ssize_t w;
			int wh = (int)rnd(3);
			if (wh == 0) {
				w = write(out, buf + done, piece);
			} else if (wh == 1 && piece > 1) {
				size_t cut = 1 + (size_t)rnd(piece - 1);
				struct iovec v[2] = { { buf + done, cut }, { buf + done + cut, piece - cut } };
				w = writev(out, v, 2);
			} else {
				w = pwrite(out, buf + done, piece, (off_t)(total + done));
				if (w > 0 && lseek(out, (off_t)(total + done + w), SEEK_SET) < 0)
					die("lseek");
			}
			if (w <= 0)
				die("write");
			done += w;
		}
		total += r;
	}
	pthread_join(th, NULL);
	close(sv[1]);
	close(out);
	printf("seed %u: %s, %lld bytes, %s, wrong %lld\n", seed, use_pipe ? "pipe" : "tcp", total,
	       total == size ? "all" : "SHORT", wrong);
	fprintf(stderr, "seed %u: inspected %lld, forks %lld\n", seed, inspected, forks);
	return 0;
}

/* ---- the gauntlet: seeded sequences over every source and destination ----
 *
 * SEED picks the source (file, TCP, UNIX stream socket, pipe), the
 * destination (file, TCP, UNIX, pipe; sockets and pipes drained by a
 * thread into dst.out), blocking or non-blocking descriptors (EAGAIN
 * waited out in poll), and whether a timer without SA_RESTART interrupts
 * the main thread's calls every 300 us (EINTR storms). Each turn reads a
 * random amount with read, recv, readv (one or two iovecs) or, from a
 * file, pread; then at random it looks at the buffer, changes a byte of
 * it, has a forked child look, skips ahead in a file source with lseek,
 * or moves the destination to a dup'd number; and it writes the buffer
 * in random pieces with write, writev, send or, into a file, pwrite,
 * resuming after partial writes. What the program believes it wrote is
 * kept: dst.out must be exactly that, and every look must see the
 * source's bytes at that offset with the program's own changes. The
 * output names the combination and the verdict only (the read sizes of
 * a stream, and so the turns, are timing). */
static volatile sig_atomic_t ticks;
static void on_tick(int sig)
{
	(void)sig;
	ticks++;
}

static bool is_sock(enum dstk k)
{
	return k == D_TCP || k == D_UNIX;
}

/* Waits until fd is ready for ev (after EAGAIN). */
static void wait_ready(int fd, short ev)
{
	struct pollfd p = { fd, ev, 0 };
	while (poll(&p, 1, 5000) < 0 && errno == EINTR)
		;
}

static int sc_gauntlet(unsigned seed)
{
	rng_state = seed * 0x2545f4914f6cdd1dull + 7;
	static const char *names[] = { "file", "tcp", "unix", "pipe" };
	static const enum dstk dkinds[] = { D_FILE, D_TCP, D_UNIX, D_PIPE };
	int sk = (int)(seed % 4), dki = (int)(seed / 4 % 4);
	bool nonblock = seed / 16 % 2, storms = seed / 32 % 2, looks = seed / 64 % 2 == 0;
	off_t size = 4 * MiB + (off_t)rnd(100000);
	struct feeder f = { .fd = -1 };
	pthread_t th;
	bool fed = sk != 0;
	static const enum srck skinds[] = { SRC_TCP, SRC_TCP, SRC_UNIX, SRC_PIPE };
	int src;
	if (sk == 0) {
		make_file("src.bin", size, 1);
		src = open("src.bin", O_RDONLY);
	} else {
		src = stream_fed(skinds[sk], size, &f, &th);
	}
	struct ctx c;
	memset(&c, 0, sizeof c);
	open_dst_named(&c, dkinds[dki], "dst.out");
	enum dstk dk = dkinds[dki];
	if (nonblock && ((sk != 0 && fcntl(src, F_SETFL, O_NONBLOCK) != 0) ||
			 (dk != D_FILE && fcntl(c.dst, F_SETFL, O_NONBLOCK) != 0)))
		die("O_NONBLOCK");
	timer_t tm;
	if (storms) {
		struct sigaction sa;
		memset(&sa, 0, sizeof sa);
		sa.sa_handler = on_tick; /* no SA_RESTART: calls fail with EINTR */
		sigaction(SIGALRM, &sa, NULL);
		struct sigevent ev;
		memset(&ev, 0, sizeof ev);
		ev.sigev_notify = SIGEV_THREAD_ID;
		ev.sigev_signo = SIGALRM;
		ev._sigev_un._tid = (pid_t)syscall(SYS_gettid); /* sigev_notify_thread_id */
		struct itimerspec it = { { 0, 300000 }, { 0, 300000 } };
		if (timer_create(CLOCK_MONOTONIC, &ev, &tm) != 0 || timer_settime(tm, 0, &it, NULL) != 0)
			die("timer");
	}
	char *bufs[2] = { malloc(CHUNK + 3000), aligned_buf(CHUNK) };
	size_t caps[2] = { CHUNK + 3000, CHUNK };
	static unsigned char want[CHUNK + 3000];
	unsigned char *expect = malloc((size_t)size + 1);
	size_t elen = 0;
	off_t spos = 0, wpos = 0;
	long long wrong = 0, eintr = 0, eagain = 0, forks = 0, changes = 0, turns = 0;
	for (;;) {
		int b = (int)rnd(2);
		char *buf = bufs[b];
		size_t ask = 1 + (size_t)rnd(caps[b]);
		int how = (int)rnd(4);
		ssize_t r;
		if (how == 1 && (sk == 1 || sk == 2)) {
			r = recv(src, buf, ask, 0);
		} else if (how == 2) {
			size_t cut = ask > 1 ? 1 + (size_t)rnd(ask - 1) : ask;
			struct iovec v[2] = { { buf, cut }, { buf + cut, ask - cut } };
			r = readv(src, v, ask > cut && rnd(2) ? 2 : 1);
		} else if (how == 3 && sk == 0) {
			r = pread(src, buf, ask, spos);
			if (r > 0 && lseek(src, spos + r, SEEK_SET) < 0)
				die("lseek");
		} else {
			r = read(src, buf, ask);
		}
		if (r < 0 && errno == EINTR) {
			eintr++;
			continue;
		}
		if (r < 0 && errno == EAGAIN) {
			eagain++;
			wait_ready(src, POLLIN);
			continue;
		}
		if (r < 0)
			die("read: %s", strerror(errno));
		if (r == 0)
			break;
		turns++;
		pattern(want, spos, (size_t)r, 1);
		spos += r;
		if (looks && rnd(6) == 0 && memcmp(want, buf, (size_t)r) != 0)
			wrong++;
		if (rnd(10) == 0) { /* the program changes a byte */
			size_t k = (size_t)rnd((uint64_t)r);
			buf[k] ^= 0x5a;
			want[k] ^= 0x5a;
			changes++;
		}
		if (looks && rnd(40) == 0) {
			fflush(stdout);
			pid_t pid = fork();
			if (pid == 0)
				_exit(memcmp(want, buf, (size_t)r) == 0 ? 0 : 1);
			int st;
			while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
				;
			forks++;
			if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
				wrong++;
		}
		if (sk == 0 && rnd(20) == 0) { /* skip ahead in the file */
			off_t skip = (off_t)rnd(100000);
			if (lseek(src, skip, SEEK_CUR) < 0)
				die("lseek");
			spos += skip;
		}
		if (rnd(30) == 0) { /* the destination moves to another number */
			int nd = dup(c.dst);
			if (nd < 0)
				die("dup");
			close(c.dst);
			c.dst = nd;
		}
		for (ssize_t done = 0; done < r;) {
			size_t piece = (size_t)(r - done);
			if (rnd(3) == 0)
				piece = 1 + (size_t)rnd(piece);
			int wh = (int)rnd(4);
			ssize_t w;
			if (wh == 1 && piece > 1) {
				size_t cut = 1 + (size_t)rnd(piece - 1);
				struct iovec v[2] = { { buf + done, cut }, { buf + done + cut, piece - cut } };
				w = writev(c.dst, v, 2);
			} else if (wh == 2 && is_sock(dk)) {
				w = send(c.dst, buf + done, piece, 0);
			} else if (wh == 3 && dk == D_FILE) {
				w = pwrite(c.dst, buf + done, piece, wpos);
				if (w > 0 && lseek(c.dst, wpos + w, SEEK_SET) < 0)
					die("lseek");
			} else {
				w = write(c.dst, buf + done, piece);
			}
			if (w < 0 && errno == EINTR) {
				eintr++;
				continue;
			}
			if (w < 0 && errno == EAGAIN) {
				eagain++;
				wait_ready(c.dst, POLLOUT);
				continue;
			}
			if (w <= 0)
				die("write: %s", strerror(errno));
			memcpy(expect + elen, want + done, (size_t)w);
			elen += (size_t)w;
			done += w;
			wpos += w;
		}
	}
	if (storms) {
		timer_delete(tm);
		signal(SIGALRM, SIG_IGN);
	}
	if (fed) {
		pthread_join(th, NULL);
	}
	close(src);
	close(c.dst);
	drain_join(&c.dr);
	/* dst.out against what the program wrote */
	int in = (int)syscall(SYS_openat, AT_FDCWD, c.dstpath, O_RDONLY | O_CLOEXEC);
	unsigned char *got = malloc(elen + 1);
	size_t glen = 0;
	for (ssize_t k; in >= 0 && glen <= elen && (k = raw_read(in, got + glen, elen + 1 - glen)) > 0;)
		glen += (size_t)k;
	syscall(SYS_close, in);
	bool same = glen == elen && memcmp(got, expect, elen) == 0;
	printf("gauntlet %u: %s -> %s, %s%s%s: %s, wrong %lld\n", seed, names[sk], names[dki],
	       nonblock ? "non-blocking" : "blocking", storms ? ", EINTR storms" : "",
	       looks ? ", looking" : "", same ? "dst.out is what the program wrote" : "dst.out DIFFERS",
	       wrong);
	fprintf(stderr, "gauntlet %u: turns %lld, changes %lld, forks %lld, EINTR %lld, EAGAIN %lld, "
		"ticks %d, bytes %zu\n", seed, turns, changes, forks, eintr, eagain, (int)ticks, elen);
	unlink(c.dstpath);
	free(got);
	free(expect);
	return 0;
}

/* ---- several threads, each its own stream ---- */

struct stream_job {
	int id;
	int wrong;
};

/* One thread: its own TCP connection (its own seed) into its own file. */
static int job_mib = 3;   /* each stream's size */
static int job_conns = 1; /* connections each thread copies, one after another */

/* Connection k of thread j: its own seed and file; true if right. */
static bool stream_one(const struct stream_job *j, int k)
{
	char dst[48];
	snprintf(dst, sizeof dst, "dst%d_%d.bin", j->id, k);
	off_t size = job_mib * MiB + j->id * 777 + k * 4099;
	unsigned seed = 50 + (unsigned)j->id + 100 * (unsigned)k;
	int sv[2];
	/* The signal storm (tcp-src-threads-signals) is for the copy loop:
	 * setting up the connection is not retried on EINTR. */
	sigset_t usr1, old;
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &usr1, &old);
	tcp_pair(sv);
	/* the feeder sends this thread's pattern directly */
	pid_t pid = fork();
	if (pid == 0) {
		static unsigned char b[100 * KiB];
		for (off_t at = 0; at < size;) {
			size_t n = size - at < (off_t)sizeof b ? (size_t)(size - at) : sizeof b;
			pattern(b, at, n, seed);
			raw_write_all(sv[0], b, n);
			at += (off_t)n;
		}
		_exit(0);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	close(sv[0]);
	int out = open(dst, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	char *buf = malloc(CHUNK);
	size_t total = 0;
	int end_err = 0;
	for (;;) {
		ssize_t r = read(sv[1], buf, CHUNK);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			end_err = r < 0 ? errno : 0;
			break;
		}
		if (quiet_write_all(out, buf, (size_t)r) != (size_t)r) {
			end_err = -errno;
			break;
		}
		total += (size_t)r;
	}
	close(out);
	close(sv[1]);
	waitpid(pid, NULL, 0);
	unsigned char *want = malloc((size_t)size), *got = malloc((size_t)size);
	pattern(want, 0, (size_t)size, seed);
	int in = (int)syscall(SYS_openat, AT_FDCWD, dst, O_RDONLY | O_CLOEXEC);
	ssize_t g = 0;
	for (ssize_t m; in >= 0 && (m = raw_read(in, got + g, (size_t)size - (size_t)g)) > 0;)
		g += m;
	syscall(SYS_close, in);
	bool wrong = total != (size_t)size || g != size || memcmp(want, got, (size_t)size) != 0;
	if (wrong) {
		off_t at = 0;
		while (at < g && at < size && want[at] == got[at])
			at++;
		fprintf(stderr, "stream %d.%d: read %zu of %lld, file %zd, first difference at %lld, "
			"ended with %d\n", j->id, k, total, (long long)size, g, (long long)at, end_err);
	}
	free(want);
	free(got);
	free(buf);
	if (job_conns > 1)
		unlink(dst); /* checked; 6 x 8 files would be a lot to compare */
	return !wrong;
}

static void *stream_job_main(void *arg)
{
	struct stream_job *j = arg;
	j->wrong = 0;
	for (int k = 0; k < job_conns; k++)
		j->wrong += !stream_one(j, k);
	return NULL;
}

/* With signals: a thread sends SIGUSR1 (a handler without SA_RESTART)
 * to a random job thread every 20 us or so, with 24 MiB streams, until all are done, so reads and
 * writes keep failing with EINTR or coming back short. */
static atomic_int jobs_done;
static volatile sig_atomic_t usr1_hits;
static void on_usr1(int sig)
{
	(void)sig;
	usr1_hits++;
}

struct signaller {
	pthread_t *targets;
	int n;
	atomic_bool stop;
};

static void *signaller_main(void *arg)
{
	struct signaller *g = arg;
	struct timespec ts = { 0, 20000 };
	unsigned x = 1;
	while (!atomic_load(&g->stop)) {
		x = x * 1103515245u + 12345u;
		pthread_kill(g->targets[(x >> 16) % (unsigned)g->n], SIGUSR1);
		nanosleep(&ts, NULL); /* at least 20 us; the timer slack adds more */
	}
	return NULL;
}

static void *stream_job_counted(void *arg)
{
	stream_job_main(arg);
	atomic_fetch_add(&jobs_done, 1);
	return NULL;
}

static int sc_stream_threads(int n, bool signals)
{
	pthread_t th[8];
	struct stream_job jobs[8];
	if (signals) {
		struct sigaction sa;
		memset(&sa, 0, sizeof sa);
		sa.sa_handler = on_usr1; /* no SA_RESTART */
		sigaction(SIGUSR1, &sa, NULL);
		job_mib = 24;
	}
	for (int i = 0; i < n; i++) {
		jobs[i] = (struct stream_job){ i, 1 };
		if (pthread_create(&th[i], NULL, stream_job_counted, &jobs[i]) != 0)
			die("pthread_create");
	}
	struct signaller g = { th, n, false };
	pthread_t sig_th;
	if (signals && pthread_create(&sig_th, NULL, signaller_main, &g) != 0)
		die("pthread_create");
	if (signals) {
		/* targets stay valid until joined: stop the signals first */
		struct timespec ts = { 0, 1000000 };
		while (atomic_load(&jobs_done) < n)
			nanosleep(&ts, NULL);
		atomic_store(&g.stop, true);
		pthread_join(sig_th, NULL);
	}
	int wrong = 0;
	for (int i = 0; i < n; i++) {
		pthread_join(th[i], NULL);
		wrong += jobs[i].wrong;
	}
	printf("threads %d, %d connections each, streams wrong %d%s\n", n, job_conns, wrong,
	       signals ? (usr1_hits > 100 ? ", under a storm of signals" : ", too few signals") : "");
	fprintf(stderr, "signals delivered: %d\n", (int)usr1_hits);
	return 0;
}

/* ---- a descriptor taken over by another thread mid-stream ----
 *
 * The loop copies a TCP stream into dst.out; after 20 reads another
 * thread dup2()s something else onto one of its descriptors, as a
 * program's other thread may. dst: /dev/null replaces the destination,
 * so dst.out must be a prefix of the stream and every write still
 * succeed. src: other.bin (its own bytes) replaces the source, so dst.out
 * must be a prefix of the stream followed by all of other.bin. */
struct stealer {
	int fd, with;
	atomic_int *reads;
};

static void *stealer_main(void *arg)
{
	struct stealer *st = arg;
	struct timespec ts = { 0, 100000 };
	while (atomic_load(st->reads) < 20)
		nanosleep(&ts, NULL);
	if (dup2(st->with, st->fd) < 0)
		die("dup2");
	return NULL;
}

static int sc_stolen(bool steal_src)
{
	off_t size = 8 * MiB + 4321, osize = 3 * MiB + 99;
	struct feeder f = { .fd = -1 };
	pthread_t th, sth;
	signal(SIGPIPE, SIG_IGN); /* the feeder's reader may be replaced */
	f.may_end = true;
	int src = tcp_fed(size, &f, &th);
	int out = open("dst.out", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	unsigned char *other = malloc((size_t)osize);
	pattern(other, 0, (size_t)osize, 7);
	int ofd = open("other.bin", O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (out < 0 || ofd < 0 || write(ofd, other, (size_t)osize) != osize || lseek(ofd, 0, SEEK_SET) != 0)
		die("setup");
	int with = steal_src ? ofd : open("/dev/null", O_WRONLY);
	atomic_int reads = 0;
	struct stealer st = { steal_src ? src : out, with, &reads };
	if (pthread_create(&sth, NULL, stealer_main, &st) != 0)
		die("pthread_create");
	char *buf = malloc(CHUNK);
	long long failed = 0;
	for (;;) {
		ssize_t r = read(src, buf, CHUNK);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		atomic_fetch_add(&reads, 1);
		if (quiet_write_all(out, buf, (size_t)r) != (size_t)r)
			failed++;
	}
	pthread_join(sth, NULL);
	/* the feeder may still be sending into the socket nobody reads now */
	shutdown(f.fd, SHUT_RDWR);
	pthread_join(th, NULL);
	close(src);
	close(out);
	close(with);
	/* dst.out: a prefix of the stream, then (src stolen) all of other.bin */
	int in = open("dst.out", O_RDONLY);
	struct stat sb;
	if (in < 0 || fstat(in, &sb) != 0)
		die("dst.out");
	unsigned char *got = malloc((size_t)sb.st_size + 1), *want = malloc((size_t)size);
	ssize_t g = 0;
	for (ssize_t k; (k = raw_read(in, got + g, (size_t)sb.st_size - (size_t)g)) > 0;)
		g += k;
	close(in);
	pattern(want, 0, (size_t)size, 1);
	off_t cut = steal_src ? g - osize : g;
	bool ok = cut >= 0 && cut <= size && memcmp(got, want, (size_t)cut) == 0 &&
		  (!steal_src || memcmp(got + cut, other, (size_t)osize) == 0);
	/* The loop can reach the end of the stream before the stealer wakes
	 * (it polls every 100 us): then dst.out is the whole stream, and the
	 * dup2 came after - right too. */
	if (!ok && steal_src && g == size && memcmp(got, want, (size_t)size) == 0) {
		ok = true;
		cut = size;
	}
	printf("%s taken over by another thread: dst.out %s, failed writes %lld\n",
	       steal_src ? "source" : "destination",
	       ok ? (steal_src ? "is a prefix of the stream, then all of the new source"
			       : "is a prefix of the stream")
		  : "is WRONG",
	       failed);
	fprintf(stderr, "cut at %lld of %lld\n", (long long)cut, (long long)size);
	unlink("other.bin");
	unlink("dst.out"); /* where the cut fell is timing; checked above */
	return 0;
}

/* ---- many short connections ---- */

/* n connections in turn, each a TCP stream of its own bytes (its own
 * seed), each copied to a file of its own with the read/write loop.
 * Every file must hold exactly its connection's bytes, and the process
 * must end with as many descriptors as after the first connection (the
 * pool keeps its pipes, nothing else stays). */
static int sc_many(int n)
{
	static unsigned char want[256 * KiB + 777];
	char *buf = malloc(CHUNK);
	int wrong = 0, fds_first = -1, fds_last = -1;
	for (int i = 0; i < n; i++) {
		size_t size = sizeof want - (size_t)(i % 7) * 1111;
		char name[64];
		snprintf(name, sizeof name, "conn.bin");
		make_file("src.bin", (off_t)size, (unsigned)i + 10);
		int sv[2];
		tcp_pair(sv);
		struct feeder f = { .fd = sv[0], .size = (off_t)size };
		pthread_t th;
		if (pthread_create(&th, NULL, feeder_main, &f) != 0)
			die("pthread_create");
		int out = open(name, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (out < 0)
			die("open %s", name);
		size_t total = 0;
		for (;;) {
			ssize_t r = read(sv[1], buf, CHUNK);
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				break;
			if (quiet_write_all(out, buf, (size_t)r) != (size_t)r)
				die("write");
			total += (size_t)r;
		}
		pthread_join(th, NULL);
		close(sv[1]);
		close(out);
		pattern(want, 0, size, (unsigned)i + 10);
		int in = (int)syscall(SYS_openat, AT_FDCWD, name, O_RDONLY | O_CLOEXEC);
		static unsigned char got[sizeof want];
		ssize_t g = raw_read(in, got, sizeof got);
		syscall(SYS_close, in);
		if (total != size || g != (ssize_t)size || memcmp(want, got, size) != 0)
			wrong++;
		int fds = 0;
		DIR *d = opendir("/proc/self/fd");
		for (struct dirent *e; d && (e = readdir(d)) != NULL;)
			fds += e->d_name[0] != '.';
		if (d)
			closedir(d);
		if (i == 0)
			fds_first = fds;
		fds_last = fds;
	}
	printf("connections %d, wrong %d, descriptors after the first %s the last\n", n, wrong,
	       fds_first == fds_last ? "==" : "!=");
	fprintf(stderr, "descriptors: after the first %d, after the last %d\n", fds_first, fds_last);
	return 0;
}

/* ---- a non-blocking relay with epoll ---- */

/* tcp -> tcp, both ends non-blocking, the destination with a 16K send
 * buffer: every read waits in epoll for EPOLLIN, every write of the
 * buffer goes out in pieces, EAGAIN waiting in epoll for EPOLLOUT, each
 * retry starting where the last partial write stopped. */
static int sc_epoll_relay(void)
{
	struct ctx c;
	init(&c, R_READ, W_WRITE, CHUNK);
	off_t size = 8 * MiB + 4321;
	struct feeder f = { .fd = -1 };
	pthread_t th;
	c.src = tcp_fed(size, &f, &th);
	open_dst(&c, D_TCP);
	int sb = 16 * KiB;
	if (setsockopt(c.dst, SOL_SOCKET, SO_SNDBUF, &sb, sizeof sb) != 0 ||
	    fcntl(c.src, F_SETFL, O_NONBLOCK) != 0 || fcntl(c.dst, F_SETFL, O_NONBLOCK) != 0)
		die("setup");
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = c.src };
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, c.src, &ev) != 0)
		die("epoll");
	ev = (struct epoll_event){ .events = EPOLLOUT, .data.fd = c.dst };
	if (epoll_ctl(ep, EPOLL_CTL_ADD, c.dst, &ev) != 0)
		die("epoll");
	c.buf = malloc(CHUNK);
	long long total = 0, partial = 0, again_in = 0, again_out = 0;
	for (;;) {
		ssize_t r = read(c.src, c.buf, CHUNK);
		if (r < 0 && errno == EAGAIN) {
			again_in++;
			struct epoll_event got;
			epoll_wait(ep, &got, 1, 10000);
			continue;
		}
		if (r <= 0)
			break;
		for (ssize_t done = 0; done < r;) {
			ssize_t w = write(c.dst, c.buf + done, (size_t)(r - done));
			if (w < 0 && errno == EAGAIN) {
				again_out++;
				struct epoll_event got;
				epoll_wait(ep, &got, 1, 10000);
				continue;
			}
			if (w <= 0)
				die("write");
			if (w < r - done)
				partial++;
			done += w;
		}
		total += r;
	}
	pthread_join(th, NULL);
	printf("relayed %lld bytes\n", total);
	fprintf(stderr, "partial writes %lld, EAGAIN reading %lld, writing %lld\n", partial,
		again_in, again_out);
	close(c.src);
	close_dst(&c);
	return 0;
}

/* ---- a write interrupted by a signal handler after bytes moved ---- */

/* Reads exactly `want` bytes, then stops reading but keeps its end open
 * until released: the writer's next large write fills the socket and
 * blocks. SIGALRM is blocked here so the alarm interrupts the writer. */
struct stall {
	int fd;
	size_t want;
	sem_t done, release;
};

static void *stall_main(void *arg)
{
	struct stall *st = arg;
	sigset_t m;
	sigemptyset(&m);
	sigaddset(&m, SIGALRM);
	pthread_sigmask(SIG_BLOCK, &m, NULL);
	char *b = malloc(64 * KiB);
	size_t got = 0;
	while (b != NULL && got < st->want) {
		size_t n = st->want - got < 64 * KiB ? st->want - got : 64 * KiB;
		ssize_t r = read(st->fd, b, n);
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	free(b);
	sem_post(&st->done);
	sem_wait(&st->release);
	return NULL;
}

static volatile sig_atomic_t alarms;

static void on_alarm(int sig)
{
	(void)sig;
	alarms++;
}

/* Two 1 MiB chunks go through (the loop arms), the third write meets a
 * peer that stopped reading: write(2) blocks after moving what fits and
 * returns that count when SIGALRM's handler runs - with SA_RESTART too,
 * because bytes moved (signal(7)). signal() installs with SA_RESTART. */
static int sc_alarm_stall(bool restart)
{
	struct ctx c;
	size_t chunk = MiB;
	init(&c, R_READ, W_WRITE, chunk);
	open_src(&c, 8 * MiB, O_RDONLY);
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
		die("socketpair");
	c.dst = sv[0];
	if (restart) {
		if (signal(SIGALRM, on_alarm) == SIG_ERR)
			die("signal");
	} else {
		struct sigaction sa;
		memset(&sa, 0, sizeof sa);
		sa.sa_handler = on_alarm;
		sigemptyset(&sa.sa_mask);
		if (sigaction(SIGALRM, &sa, NULL) != 0)
			die("sigaction");
	}
	struct stall st = { .fd = sv[1], .want = 2 * chunk };
	sem_init(&st.done, 0, 0);
	sem_init(&st.release, 0, 0);
	pthread_t th;
	if (pthread_create(&th, NULL, stall_main, &st) != 0)
		die("pthread_create");
	c.buf = malloc(chunk);
	char s[64];
	for (int i = 0; i < 3; i++) {
		ssize_t r = read(c.src, c.buf, chunk);
		printf("it %d read %s\n", i, ret(r, errno, s, sizeof s));
		if (r <= 0)
			die("short source");
		if (i < 2) {
			printf("it %d write %s\n", i, ret(wr_all(&c, c.buf, (size_t)r), errno, s,
							   sizeof s));
			continue;
		}
		sem_wait(&st.done); /* the peer has read all it will */
		probe("before-stalled-write", i, c.buf, (size_t)r);
		alarm(1);
		ssize_t w = write(c.dst, c.buf, (size_t)r);
		int e = errno;
		alarm(0);
		printf("it %d write: %s, alarms %d\n", i,
		       w > 0 && w < r ? "partial" : ret(w, e, s, sizeof s), (int)alarms);
	}
	close(c.dst);
	sem_post(&st.release);
	pthread_join(th, NULL);
	close(sv[1]);
	return 0;
}

/* ---- starting programs with arguments that sit in a phantom ---- */

/* The source is text: "echo spawned-ok" and a NUL, every 16 bytes. After
 * the loop armed, the third read leaves the buffer guarded, and a string
 * inside its guarded pages becomes a shell command for fork + execl,
 * posix_spawn, system and popen: the kernel reads it from memory while
 * starting the program (execve copies argv), so the library must have
 * filled the pages first - EFAULT otherwise. */
static int sc_spawn(void)
{
	struct ctx c;
	char s[64];
	init(&c, R_READ, W_WRITE, CHUNK);
	int fd = (int)syscall(SYS_openat, AT_FDCWD, "src.bin", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
			      0644);
	if (fd < 0)
		die("create src.bin");
	static char text[MiB];
	for (size_t i = 0; i < sizeof text; i += 16)
		memcpy(text + i, "echo spawned-ok", 16); /* 15 characters and the NUL */
	raw_write_all(fd, text, sizeof text);
	syscall(SYS_close, fd);
	c.src = open("src.bin", O_RDONLY);
	if (c.src < 0)
		die("open src.bin");
	open_dst(&c, D_UNIX);
	c.buf = malloc(CHUNK);
	for (int i = 0; i < 2; i++) {
		ssize_t r = read(c.src, c.buf, CHUNK);
		printf("it %d r %s\n", i, ret(r, errno, s, sizeof s));
		if (r <= 0 || wr_all(&c, c.buf, (size_t)r) < 0)
			die("copy");
	}
	ssize_t r = read(c.src, c.buf, CHUNK);
	printf("it 2 r %s\n", ret(r, errno, s, sizeof s));
	char *cmd = c.buf + 8192; /* in a whole page, at the start of a string */
	probe("before-spawn", 2, c.buf, (size_t)r);
	fflush(stdout);

	pid_t pid = fork();
	if (pid == 0) {
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		printf("execl: %s\n", strerror(errno));
		fflush(stdout);
		_exit(127);
	}
	int st;
	waitpid(pid, &st, 0);
	printf("fork+execl: status %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	for (int how = 0; how < 2; how++) {
		fflush(stdout);
		pid = fork();
		if (pid == 0) {
			extern char **environ;
			if (how == 0)
				execlp("sh", "sh", "-c", cmd, (char *)NULL);
			else
				execle("/bin/sh", "sh", "-c", cmd, (char *)NULL, environ);
			printf("%s: %s\n", how ? "execle" : "execlp", strerror(errno));
			fflush(stdout);
			_exit(127);
		}
		waitpid(pid, &st, 0);
		printf("fork+%s: status %d\n", how ? "execle" : "execlp",
		       WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	}

	extern char **environ;
	char *argv[] = { "sh", "-c", cmd, NULL };
	fflush(stdout);
	int e = posix_spawn(&pid, "/bin/sh", NULL, NULL, argv, environ);
	if (e == 0)
		waitpid(pid, &st, 0);
	printf("posix_spawn: %s, status %d\n", e ? strerror(e) : "ok",
	       e == 0 && WIFEXITED(st) ? WEXITSTATUS(st) : -1);

	fflush(stdout);
	int rc = system(cmd);
	printf("system: %d\n", rc);

	FILE *p = popen(cmd, "r");
	char line[64] = "";
	if (p != NULL && fgets(line, sizeof line, p) == NULL)
		line[0] = '\0';
	printf("popen: %s, read '%.*s'\n", p ? "ok" : strerror(errno), (int)strcspn(line, "\n"),
	       line);
	if (p != NULL)
		pclose(p);
	/* the buffer still holds the file's bytes and goes out as they are */
	if (wr_all(&c, c.buf, (size_t)r) < 0)
		die("write");
	close_dst(&c);
	return 0;
}

/* ---- nginx with sendfile off ---- */

/* ngx_http_copy_filter / ngx_output_chain with `sendfile off`: pread 32K
 * into two alternating buffers, then one writev of whatever of the older
 * buffer the socket has not taken yet plus all of the newer one, on a
 * non-blocking socket with a small send buffer: EAGAIN, then poll. Only
 * what reaches the peer is compared (single call counts on non-blocking
 * sockets are the kernel's accounting, see shim/xfer.c). */
static int sc_nginx(void)
{
	struct ctx c;
	init(&c, R_PREAD, W_WRITE, 32 * KiB);
	open_src(&c, 6 * MiB + 12345, O_RDONLY);
	/* The receiver starts 200 ms late: the socket fills and writev
	 * meets EAGAIN in both runs, however fast the sender is. */
	drain_delay_us = 200 * 1000;
	open_dst(&c, D_TCP);
	drain_delay_us = 0;
	int sb = 16 * KiB;
	if (setsockopt(c.dst, SOL_SOCKET, SO_SNDBUF, &sb, sizeof sb) != 0)
		die("SO_SNDBUF");
	if (fcntl(c.dst, F_SETFL, O_NONBLOCK) != 0)
		die("O_NONBLOCK");
	char *b[2] = { malloc(32 * KiB), malloc(32 * KiB) };
	size_t have[2] = { 0, 0 }, sent[2] = { 0, 0 };
	unsigned long long eagain = 0, calls = 0, total = 0;
	int cur = 0;
	bool eof = false;
	for (;;) {
		/* Refill the buffer that is empty. */
		int fill = sent[cur] == have[cur] ? cur : sent[cur ^ 1] == have[cur ^ 1] ? cur ^ 1 : -1;
		if (!eof && fill >= 0) {
			ssize_t r = pread(c.src, b[fill], 32 * KiB, c.rpos);
			if (r < 0)
				die("pread");
			if (r == 0) {
				eof = true;
			} else {
				c.rpos += r;
				have[fill] = (size_t)r;
				sent[fill] = 0;
			}
		}
		struct iovec v[2];
		int k = 0;
		for (int j = 0; j < 2; j++) {
			int i = cur ^ j;
			if (sent[i] < have[i])
				v[k++] = (struct iovec){ b[i] + sent[i], have[i] - sent[i] };
		}
		if (k == 0)
			break;
		ssize_t w = writev(c.dst, v, k);
		calls++;
		if (w < 0 && errno == EAGAIN) {
			eagain++;
			struct pollfd p = { .fd = c.dst, .events = POLLOUT };
			poll(&p, 1, 10000);
			continue;
		}
		if (w < 0)
			die("writev");
		total += (unsigned long long)w;
		for (int j = 0; j < 2 && w > 0; j++) {
			int i = cur ^ j;
			size_t take = have[i] - sent[i] < (size_t)w ? have[i] - sent[i] : (size_t)w;
			sent[i] += take;
			w -= (ssize_t)take;
		}
		if (sent[cur] == have[cur])
			cur ^= 1; /* the older buffer is done: the other is older now */
	}
	printf("nginx-like loop: %llu bytes sent\n", total);
	fprintf(stderr, "nginx-like loop: %llu writev calls, %llu EAGAIN\n", calls, eagain);
	close_dst(&c);
	return 0;
}

/* ---- non-blocking destination ---- */

static int sc_nonblock(void)
{
	struct ctx c;
	int p[2];
	init(&c, R_READ, W_WRITE, 96 * KiB);
	open_src(&c, 4 * MiB, O_RDONLY);
	dst_path(&c, "dst.bin");
	if (pipe2(p, O_NONBLOCK) != 0)
		die("pipe2");
	c.dst = p[1];
	int out = (int)syscall(SYS_openat, AT_FDCWD, c.dstpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	FILE *calls = fopen("calls.log", "w");
	if (out < 0 || calls == NULL)
		die("create");
	c.buf = malloc(c.chunk);
	static char dbuf[256 * KiB];
	long long written = 0, drained = 0;
	int eagain = 0, bad = 0, partial = 0, probed = 0;
	for (int i = 0;; i++) {
		ssize_t r = read(c.src, c.buf, c.chunk);
		fprintf(calls, "it %d read %zd\n", i, r);
		if (r <= 0)
			break;
		ssize_t off = 0;
		while (off < r) {
			if (i == 3 && !probed++)
				probe("before-nonblocking-write", i, c.buf + off, (size_t)(r - off));
			ssize_t w = write(c.dst, c.buf + off, (size_t)(r - off));
			int e = errno;
			if (w > 0) {
				fprintf(calls, "  write %zd -> %zd\n", r - off, w);
				if (w < r - off)
					partial++;
				off += w;
				written += w;
			} else {
				fprintf(calls, "  write %zd -> %zd %s\n", r - off, w, w < 0 ? errno_name(e) : "");
				if (w < 0 && e == EAGAIN)
					eagain++;
				else {
					bad++;
					break;
				}
				/* The reader catches up: empty the pipe. */
				for (;;) {
					ssize_t k = raw_read(p[0], dbuf, sizeof dbuf);
					if (k <= 0)
						break;
					raw_write_all(out, dbuf, (size_t)k);
					drained += k;
				}
			}
		}
		if (bad)
			break;
	}
	for (;;) {
		ssize_t k = raw_read(p[0], dbuf, sizeof dbuf);
		if (k <= 0)
			break;
		raw_write_all(out, dbuf, (size_t)k);
		drained += k;
	}
	fprintf(calls, "partial writes %d, EAGAIN %d\n", partial, eagain);
	fclose(calls);
	syscall(SYS_close, out);
	printf("written %lld, drained %lld\n", written, drained);
	printf("every write returned a positive count or -1 EAGAIN: %s\n", bad ? "no" : "yes");
	printf("EAGAIN seen: %s\n", eagain ? "yes" : "no");
	close(p[0]);
	close(p[1]);
	print_file("destination", c.dstpath);
	return 0;
}

/* ---- threads ---- */

#define NWORKERS 8

struct worker {
	int idx;
	pthread_barrier_t *bar;
	long long read_total, written;
	char *buf; /* NULL: the worker mallocs its own (its thread's arena) */
	char srcname[32], dstname[32];
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	int src = open(w->srcname, O_RDONLY), sv[2];
	if (src < 0 || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
		die("worker setup");
	struct drain d;
	memset(&d, 0, sizeof d);
	drain_start(&d, sv[1], w->dstname, -1, NULL);
	char *buf = w->buf ? w->buf : malloc(CHUNK);
	char what[32];
	snprintf(what, sizeof what, "worker %d", w->idx);
	pthread_barrier_wait(w->bar);
	for (int i = 0;; i++) {
		ssize_t r = read(src, buf, CHUNK);
		if (r <= 0)
			break;
		w->read_total += r;
		for (ssize_t off = 0; off < r;) {
			ssize_t k = write(sv[0], buf + off, (size_t)(r - off));
			if (k <= 0)
				die("worker write");
			off += k;
			w->written += k;
		}
		if (i % 4 == 3)
			probe(what, i, buf, (size_t)r);
	}
	close(src);
	close(sv[0]);
	drain_join(&d);
	if (w->buf == NULL)
		free(buf);
	return NULL;
}

/* own_arena: each worker mallocs its buffer (glibc gives each thread an
 * arena of its own); else the main thread mallocs all eight. */
static int sc_threads(bool own_arena)
{
	struct worker w[NWORKERS];
	pthread_t th[NWORKERS];
	pthread_barrier_t bar;
	pthread_barrier_init(&bar, NULL, NWORKERS);
	for (int i = 0; i < NWORKERS; i++) {
		memset(&w[i], 0, sizeof w[i]);
		w[i].idx = i;
		w[i].bar = &bar;
		w[i].buf = own_arena ? NULL : malloc(CHUNK);
		snprintf(w[i].srcname, sizeof w[i].srcname, "src-%d.bin", i);
		snprintf(w[i].dstname, sizeof w[i].dstname, "dst-%d.bin", i);
		make_file(w[i].srcname, 2 * MiB + i * 3 * PG + i * 7, 10 + (unsigned)i);
	}
	for (int i = 0; i < NWORKERS; i++)
		if (pthread_create(&th[i], NULL, worker_main, &w[i]) != 0)
			die("pthread_create");
	for (int i = 0; i < NWORKERS; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < NWORKERS; i++) {
		long long b1, b2;
		uint64_t h1, h2;
		file_sum(w[i].srcname, &b1, &h1);
		file_sum(w[i].dstname, &b2, &h2);
		printf("thread %d: read %lld written %lld, source %016llx destination %016llx %s\n", i,
		       w[i].read_total, w[i].written, (unsigned long long)h1, (unsigned long long)h2,
		       b1 == b2 && h1 == h2 ? "match" : "DIFFER");
	}
	return 0;
}

/* ---- stack buffers ---- */

static __attribute__((noinline)) long long stack_loop(struct ctx *c)
{
	char buf[CHUNK];
	long long total = 0;
	int probed = 0;
	for (int i = 0;; i++) {
		ssize_t r = read(c->src, buf, sizeof buf);
		if (r <= 0)
			break;
		if (i == 3 && !probed++)
			probe("stack-buffer", i, buf, (size_t)r);
		for (ssize_t off = 0; off < r;) {
			ssize_t k = write(c->dst, buf + off, (size_t)(r - off));
			if (k <= 0)
				return -1;
			off += k;
		}
		total += r;
	}
	return total;
}

/* Runs over the stack the loop's frame used. */
static __attribute__((noinline)) unsigned deep(int n)
{
	volatile char pad[8192];
	memset((char *)pad, n, sizeof pad);
	return n > 0 ? deep(n - 1) + (unsigned char)pad[100] : (unsigned char)pad[5];
}

static void *stack_main(void *arg)
{
	struct ctx *c = arg;
	long long t = stack_loop(c);
	unsigned d = deep(32);
	printf("copied %lld, deep %u\n", t, d);
	return NULL;
}

static int sc_stack(bool in_thread)
{
	struct ctx c;
	init(&c, R_READ, W_WRITE, CHUNK);
	open_src(&c, 4 * MiB, O_RDONLY);
	open_dst(&c, D_PIPE);
	if (in_thread) {
		pthread_attr_t a;
		pthread_t t;
		pthread_attr_init(&a);
		pthread_attr_setstacksize(&a, 2 * MiB);
		if (pthread_create(&t, &a, stack_main, &c) != 0)
			die("pthread_create");
		pthread_join(t, NULL);
	} else {
		stack_main(&c);
	}
	close_dst(&c);
	return 0;
}

/* ---- a program that looks at every buffer for a while ---- */

/* Checksums the buffer before each of the first 128 writes (every one a
 * touch of a phantom: a fault and a fill), then stops looking. */
static bool inspect_first_half(struct ctx *c, int i, ssize_t *r)
{
	if (i < 128)
		printf("  inspect it %d sum %016llx\n", i, (unsigned long long)sum(c->buf, (size_t)*r));
	return false;
}

static int sc_touch_then_stop(void)
{
	struct plan pl = { 1, 0, inspect_first_half, NULL, 0 };
	return loop_with(D_UNIX, 16 * MiB, CHUNK, NULL, &pl);
}

/* ---- another process changes the source between iterations ---- */

static bool grow_not_shrink;

/* Another process (a forked child: its own memory, its own phantoms)
 * appends 1 MiB to the source, or cuts it to 300000 bytes - below what
 * the loop has read (4 x 64K) plus one more chunk. */
static void after_change(struct ctx *c, int i, ssize_t r)
{
	(void)c, (void)r;
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		int rc = 0;
		if (grow_not_shrink) {
			int fd = open("src.bin", O_WRONLY | O_APPEND);
			static unsigned char more[MiB];
			pattern(more, 4 * MiB, sizeof more, 1);
			rc = fd < 0 || write(fd, more, sizeof more) != (ssize_t)sizeof more;
		} else {
			rc = truncate("src.bin", 300000) != 0;
		}
		_exit(rc);
	}
	int st;
	waitpid(pid, &st, 0);
	printf("  it %d: another process %s the source: status %d\n", i,
	       grow_not_shrink ? "appended 1 MiB to" : "cut to 300000 bytes",
	       WIFEXITED(st) ? WEXITSTATUS(st) : -1);
}

static int sc_source_changes(bool grow)
{
	struct plan pl = { 100, 3, NULL, after_change, 0 };
	grow_not_shrink = grow;
	return loop_with(D_UNIX, 4 * MiB, CHUNK, NULL, &pl);
}

/* ---- memory and sources that are never guarded ---- */

static bool just_look(struct ctx *c, int i, ssize_t *r)
{
	(void)c, (void)i, (void)r;
	return false; /* the probe before it is the point */
}

/* The copy loop with its buffer in a mapping the library must not guard:
 * shared (another process, or the file, sees those pages) or file-backed
 * (the pages are the file's). Every write is probed. */
static int sc_mapped(const char *kind)
{
	struct plan pl = { 1, 0, just_look, NULL, 0 };
	char *buf;
	if (strcmp(kind, "shared-anon") == 0) {
		buf = mmap(NULL, CHUNK, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	} else {
		make_file("map.bin", CHUNK, 7);
		int fd = open("map.bin", O_RDWR);
		if (fd < 0)
			die("open map.bin");
		int flags = strcmp(kind, "shared-file") == 0 ? MAP_SHARED : MAP_PRIVATE;
		buf = mmap(NULL, CHUNK, PROT_READ | PROT_WRITE, flags, fd, 0);
		close(fd);
	}
	if (buf == MAP_FAILED)
		die("mmap %s", kind);
	return loop_with(D_PIPE, 4 * MiB, CHUNK, buf, &pl);
}

/* O_DIRECT source (page-aligned buffer, as O_DIRECT wants): the page
 * cache is bypassed, so there is nothing for a kernel path to share. */
static int sc_direct(void)
{
	struct plan pl = { 1, 0, just_look, NULL, 0 };
	struct ctx c;
	init(&c, R_READ, W_WRITE, CHUNK);
	open_src(&c, 4 * MiB, O_RDONLY | O_DIRECT);
	open_dst(&c, D_PIPE);
	c.buf = aligned_buf(CHUNK);
	int n = run_loop(&c, &pl);
	printf("iterations %d\n", n);
	close_dst(&c);
	return 0;
}

/* ---- main ---- */

static int dispatch(const char *s)
{
	if (strncmp(s, "copy-", 5) == 0) {
		char d[16];
		const char *h = strchr(s + 5, '-');
		if (h == NULL || (size_t)(h - (s + 5)) >= sizeof d)
			return 2;
		memcpy(d, s + 5, (size_t)(h - (s + 5)));
		d[h - (s + 5)] = '\0';
		return sc_copy(d, h + 1);
	}
	if (!strcmp(s, "two-buffers-alternating")) return sc_buffers(2, false);
	if (!strcmp(s, "two-buffers-and-mmap-calls")) return sc_buffers(2, true);
	if (!strcmp(s, "one-buffer-and-mmap-calls")) return sc_buffers(1, true);
	if (!strcmp(s, "eof-short-tail")) return sc_eof_short_tail();
	if (!strcmp(s, "eof-read-past")) return sc_eof_read_past();
	if (!strcmp(s, "eof-one-chunk-file")) return sc_eof_one_chunk_file();
	if (!strcmp(s, "inspect-checksum")) return sc_inspect();
	if (!strcmp(s, "modify-head")) return sc_modify(0, false);
	if (!strcmp(s, "modify-middle")) return sc_modify(1, false);
	if (!strcmp(s, "modify-tail")) return sc_modify(2, false);
	if (!strcmp(s, "modify-head-aligned")) return sc_modify(0, true);
	if (!strcmp(s, "modify-tail-aligned")) return sc_modify(2, true);
	if (!strcmp(s, "two-destinations")) return sc_two_destinations();
	if (!strcmp(s, "thread-reads-buffer")) return sc_thread_reads();
	if (!strcmp(s, "fork-child-reads-buffer")) return sc_fork_child(true);
	if (!strcmp(s, "fork-child-writes-buffer")) return sc_fork_child(false);
	if (!strcmp(s, "realloc-keeps-bytes")) return sc_realloc();
	if (!strcmp(s, "free-then-fresh-buffer")) return sc_free_fresh();
	if (!strcmp(s, "memcpy-out")) return sc_memcpy();
	if (!strcmp(s, "madvise-dontneed")) return sc_madvise();
	if (!strcmp(s, "munmap-mmap-fixed")) return sc_remap(true, false);
	if (!strcmp(s, "munmap-mmap-anywhere")) return sc_remap(true, true);
	if (!strcmp(s, "mmap-fixed-over")) return sc_remap(false, false);
	if (!strcmp(s, "realloc-mapped-buffer")) return sc_realloc_mapped();
	if (!strcmp(s, "close-and-dup2-source")) return sc_close_dup2();
	if (!strcmp(s, "pwrite-source")) return sc_pwrite_source(false, false);
	if (!strcmp(s, "pwrite-source-other-fd")) return sc_pwrite_source(true, false);
	if (!strcmp(s, "pwrite-source-edge")) return sc_pwrite_source(true, true);
	if (!strcmp(s, "ftruncate-source")) return sc_ftruncate();
	if (!strcmp(s, "fwrite-phantom")) return sc_stdio(false);
	if (!strcmp(s, "fread-into-phantom")) return sc_stdio(true);
	if (!strcmp(s, "writev-header")) return sc_writev();
	if (!strcmp(s, "recv-into-phantom")) return sc_recv();
	if (!strcmp(s, "readv-into-phantom")) return sc_readv();
	if (!strcmp(s, "own-segv-handler")) return sc_own_segv();
	if (!strcmp(s, "null-deref")) return sc_null();
	if (!strcmp(s, "epipe-ignored")) return sc_epipe(true);
	if (!strcmp(s, "epipe-default")) return sc_epipe(false);
	if (!strcmp(s, "alarm-stall-restart")) return sc_alarm_stall(true);
	if (!strcmp(s, "nginx-writev-nonblocking")) return sc_nginx();
	if (!strcmp(s, "spawn-args-from-buffer")) return sc_spawn();
	if (!strcmp(s, "buffer-shared-anon")) return sc_mapped("shared-anon");
	if (!strcmp(s, "buffer-shared-file")) return sc_mapped("shared-file");
	if (!strcmp(s, "buffer-private-file")) return sc_mapped("private-file");
	if (!strcmp(s, "source-o-direct")) return sc_direct();
	if (!strcmp(s, "source-grows")) return sc_source_changes(true);
	if (!strcmp(s, "touch-then-stop")) return sc_touch_then_stop();
	if (!strcmp(s, "tcp-src-file")) return sc_sock_src(D_FILE, false, false);
	if (!strcmp(s, "fsize-lowered-midway")) return sc_fsize_midway();
	if (!strcmp(s, "tcp-src-file-aligned")) return sc_sock_src(D_FILE, false, true);
	if (!strcmp(s, "tcp-src-tcp")) return sc_sock_src(D_TCP, false, false);
	if (!strcmp(s, "tcp-src-unix")) return sc_sock_src(D_UNIX, false, false);
	if (!strcmp(s, "tcp-src-pipe")) return sc_sock_src(D_PIPE, false, false);
	if (!strcmp(s, "tcp-src-file-inspect")) return sc_sock_src(D_FILE, true, false);
	if (!strcmp(s, "tcp-src-fork")) return fork_at = 4, sc_sock_src(D_FILE, false, false);
	if (!strcmp(s, "tcp-src-claim")) return claim_at = 4, sc_sock_src(D_FILE, false, false);
	if (!strcmp(s, "tcp-src-emfile")) {
		struct rlimit rl = { 256, 256 };
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
			die("RLIMIT_NOFILE");
		return exhaust_at = 4, sc_sock_src(D_FILE, false, false);
	}
	if (!strcmp(s, "unix-src-file")) return stream_src = SRC_UNIX, sc_sock_src(D_FILE, false, false);
	if (!strcmp(s, "unix-src-tcp")) return stream_src = SRC_UNIX, sc_sock_src(D_TCP, false, false);
	if (!strcmp(s, "pipe-src-file")) return stream_src = SRC_PIPE, sc_sock_src(D_FILE, false, false);
	if (!strcmp(s, "pipe-src-tcp")) return stream_src = SRC_PIPE, sc_sock_src(D_TCP, false, false);
	if (!strcmp(s, "pipe-src-file-inspect"))
		return stream_src = SRC_PIPE, sc_sock_src(D_FILE, true, false);
	if (!strcmp(s, "tcp-many-connections")) return sc_many(1000);
	if (!strcmp(s, "tcp-epoll-relay")) return sc_epoll_relay();
	if (!strcmp(s, "stdio-fwrite")) return sc_stdio_loop();
	if (!strcmp(s, "tcp-src-threads")) return sc_stream_threads(6, false);
	if (!strcmp(s, "tcp-src-threads-signals")) return sc_stream_threads(6, true);
	if (!strcmp(s, "tcp-src-threads-connections")) return job_conns = 8, sc_stream_threads(6, false);
	if (!strcmp(s, "tcp-src-dst-taken-over")) return sc_stolen(false);
	if (!strcmp(s, "tcp-src-src-taken-over")) return sc_stolen(true);
	if (!strcmp(s, "tcp-src-file-after-write")) return sc_after_write(false);
	if (!strcmp(s, "tcp-src-file-fsize")) return sc_after_write(true);
	if (!strncmp(s, "random-", 7)) return sc_random((unsigned)strtoul(s + 7, NULL, 10));
	if (!strncmp(s, "gauntlet-", 9)) return sc_gauntlet((unsigned)strtoul(s + 9, NULL, 10));
	if (!strcmp(s, "source-shrinks")) return sc_source_changes(false);
	if (!strcmp(s, "alarm-stall-norestart")) return sc_alarm_stall(false);
	if (!strcmp(s, "nonblock-full-pipe")) return sc_nonblock();
	if (!strcmp(s, "threads8")) return sc_threads(false);
	if (!strcmp(s, "threads8-own-arenas")) return sc_threads(true);
	if (!strcmp(s, "stack-buffer")) return sc_stack(false);
	if (!strcmp(s, "thread-stack-buffer")) return sc_stack(true);
	return 2;
}

int main(int argc, char **argv)
{
	int a = 1;
	if (a + 1 < argc && strcmp(argv[a], "--dst-dir") == 0) {
		dst_dir = argv[a + 1];
		a += 2;
	}
	if (a + 1 != argc) {
		fprintf(stderr, "usage: zc [--dst-dir DIR] SCENARIO\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	int rc = dispatch(argv[a]);
	if (rc == 2)
		fprintf(stderr, "zc: unknown scenario '%s'\n", argv[a]);
	fflush(stdout);
	return rc;
}
