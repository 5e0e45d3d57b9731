/*
 * mapw.c - writes of file mappings, one scenario per run.
 *
 * The program maps src.bin (made here, in the current directory), closes
 * its descriptor, and writes the mapping to a destination: a TCP socket
 * on 127.0.0.1 or a pipe (each drained by a thread into out.bin), or the
 * file out.bin itself. It prints every result it can observe - counts,
 * errno - and the destination's bytes end up in out.bin, which the
 * integration test (tests/integration/36-mapped-writes.sh) compares
 * between the plain and the preloaded run, and with src.bin.
 *
 *   mapw copy DST TYPE HOW     DST tcp|pipe|file, TYPE shared|private,
 *                              HOW write|writev|send|sendmsg|pwrite|pwritev|fwrite
 *                              (writev/sendmsg/pwritev: a 213-byte header
 *                              iovec from the heap, then the mapping)
 *   mapw eagain                non-blocking socket, nobody reading: a short
 *                              count, then EAGAIN; then drained, the rest
 *   mapw eintr                 blocking socket full: a signal without
 *                              SA_RESTART ends the write with EINTR; with
 *                              some bytes read, with a short count
 *   mapw writable TYPE         mapped PROT_READ, made writable, one byte
 *                              changed (private: the memory only), made
 *                              read-only again, written to a file
 *   mapw written-private       mapped private and writable from the start,
 *                              changed, written to a file
 *   mapw truncated DST SIZE    the file cut to SIZE bytes after mmap, then
 *                              the whole mapping written (short count, EFAULT)
 *   mapw remapped              munmap, then anonymous memory at the same
 *                              address (MAP_FIXED), written to a file
 *   mapw small DST             the mapping written in 4 KiB calls
 *
 * Exit status: 0, or 1 on a setup error (with a message on stderr).
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <unistd.h>

#define SRC_SIZE ((size_t)(8u << 20) + 5000u) /* not a whole number of pages */
#define HDR 213

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "mapw: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, ": %s\n", strerror(errno));
	va_end(ap);
	exit(1);
}

static const char *en(int e)
{
	switch (e) {
	case EAGAIN: return "EAGAIN";
	case EINTR: return "EINTR";
	case EFAULT: return "EFAULT";
	case EPIPE: return "EPIPE";
	default: return strerror(e);
	}
}

static void say(const char *what, ssize_t r, int e)
{
	if (r < 0)
		printf("%s: -1 %s\n", what, en(e));
	else
		printf("%s: %zd\n", what, r);
	fflush(stdout);
}

static void make_src(size_t size)
{
	int fd = open("src.bin", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		die("src.bin");
	unsigned char *b = malloc(size);
	uint64_t x = 0x9e3779b97f4a7c15ull;
	for (size_t i = 0; i < size; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		b[i] = (unsigned char)x;
	}
	for (size_t d = 0; d < size;) {
		ssize_t r = write(fd, b + d, size - d);
		if (r <= 0)
			die("write src.bin");
		d += (size_t)r;
	}
	free(b);
	close(fd);
}

/* src.bin mapped with prot and flags; its descriptor closed. */
static unsigned char *map_src(size_t size, int prot, int flags)
{
	int fd = open("src.bin", O_RDONLY);
	if (fd < 0)
		die("open src.bin");
	void *m = mmap(NULL, size, prot, flags, fd, 0);
	if (m == MAP_FAILED)
		die("mmap");
	close(fd);
	return m;
}

/* ---- destinations ---- */

struct drain {
	pthread_t t;
	int fd, out;
	volatile long long limit; /* stop reading after this many, -1 none */
	volatile long long got;
};

static void *drain_main(void *arg)
{
	struct drain *d = arg;
	static char buf[1 << 16];
	for (;;) {
		size_t want = sizeof buf;
		while (d->limit >= 0 && d->got >= d->limit)
			usleep(1000);
		if (d->limit >= 0 && (long long)want > d->limit - d->got)
			want = (size_t)(d->limit - d->got);
		ssize_t r = read(d->fd, buf, want);
		if (r <= 0)
			break;
		for (ssize_t o = 0; o < r;) {
			ssize_t w = write(d->out, buf + o, (size_t)(r - o));
			if (w <= 0)
				die("write out.bin");
			o += w;
		}
		d->got += r;
	}
	return NULL;
}

static void drain_start(struct drain *d, int fd, long long limit)
{
	d->fd = fd;
	d->limit = limit;
	d->got = 0;
	d->out = open("out.bin", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (d->out < 0)
		die("out.bin");
	if (pthread_create(&d->t, NULL, drain_main, d) != 0)
		die("pthread_create");
}

static void drain_join(struct drain *d)
{
	pthread_join(d->t, NULL);
	close(d->out);
	close(d->fd);
}

/* A connected TCP pair on 127.0.0.1: sv[0] the writer's end. */
static void tcp_pair(int sv[2], int bufsize)
{
	int l = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof a;
	if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) != 0 || listen(l, 1) != 0 ||
	    getsockname(l, (struct sockaddr *)&a, &al) != 0)
		die("listen");
	sv[0] = socket(AF_INET, SOCK_STREAM, 0);
	if (bufsize > 0) {
		setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &bufsize, sizeof bufsize);
	}
	if (connect(sv[0], (struct sockaddr *)&a, sizeof a) != 0)
		die("connect");
	sv[1] = accept(l, NULL, NULL);
	if (sv[1] < 0)
		die("accept");
	if (bufsize > 0)
		setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &bufsize, sizeof bufsize);
	close(l);
}

enum dst { D_TCP, D_PIPE, D_FILE };

struct out {
	enum dst k;
	int fd;
	struct drain d;
};

static void out_open(struct out *o, const char *name)
{
	int sv[2];
	if (strcmp(name, "tcp") == 0) {
		o->k = D_TCP;
		tcp_pair(sv, 0);
		o->fd = sv[0];
		drain_start(&o->d, sv[1], -1);
	} else if (strcmp(name, "pipe") == 0) {
		o->k = D_PIPE;
		if (pipe(sv) != 0)
			die("pipe");
		o->fd = sv[1];
		drain_start(&o->d, sv[0], -1);
	} else if (strcmp(name, "file") == 0) {
		o->k = D_FILE;
		o->fd = open("out.bin", O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (o->fd < 0)
			die("out.bin");
	} else {
		errno = EINVAL;
		die("destination %s", name);
	}
}

static void out_close(struct out *o)
{
	close(o->fd);
	if (o->k != D_FILE)
		drain_join(&o->d);
}

/* ---- scenarios ---- */

static char hdr[HDR];

static int sc_copy(const char *dst, const char *type, const char *how)
{
	make_src(SRC_SIZE);
	int flags = strcmp(type, "private") == 0 ? MAP_PRIVATE : MAP_SHARED;
	unsigned char *m = map_src(SRC_SIZE, PROT_READ, flags);
	struct out o;
	out_open(&o, dst);
	memset(hdr, 'H', sizeof hdr);
	char *h = malloc(HDR);
	memcpy(h, hdr, HDR);
	size_t done = 0, calls = 0;
	bool with_hdr = strcmp(how, "writev") == 0 || strcmp(how, "sendmsg") == 0 ||
			strcmp(how, "pwritev") == 0;
	size_t total = SRC_SIZE + (with_hdr ? HDR : 0);
	FILE *f = NULL;
	if (strcmp(how, "fwrite") == 0) {
		f = fdopen(o.fd, "w");
		if (f == NULL)
			die("fdopen");
	}
	/* One call at a time, as a server writes; each call's count is
	 * printed only when short (a blocking write is whole unless a
	 * signal or an error ends it). */
	while (done < total) {
		ssize_t r;
		const unsigned char *p = m + (done > (with_hdr ? HDR : 0) ? done - (with_hdr ? HDR : 0) : 0);
		size_t left = total - done;
		if (with_hdr) {
			struct iovec v[2];
			int cnt = 0;
			if (done < HDR) {
				v[cnt++] = (struct iovec){ h + done, HDR - done };
				v[cnt++] = (struct iovec){ m, SRC_SIZE };
			} else {
				v[cnt++] = (struct iovec){ (void *)p, left };
			}
			if (strcmp(how, "writev") == 0) {
				r = writev(o.fd, v, cnt);
			} else if (strcmp(how, "sendmsg") == 0) {
				struct msghdr mh = { .msg_iov = v, .msg_iovlen = (size_t)cnt };
				r = sendmsg(o.fd, &mh, 0);
			} else {
				r = pwritev(o.fd, v, cnt, (off_t)done);
			}
		} else if (strcmp(how, "write") == 0) {
			r = write(o.fd, p, left);
		} else if (strcmp(how, "send") == 0) {
			r = send(o.fd, p, left, 0);
		} else if (strcmp(how, "pwrite") == 0) {
			r = pwrite(o.fd, p, left, (off_t)done);
		} else if (f != NULL) {
			r = (ssize_t)fwrite(p, 1, left, f);
			if (r == 0)
				r = -1;
		} else {
			errno = EINVAL;
			die("how %s", how);
		}
		calls++;
		if (r <= 0) {
			say("write failed", r, errno);
			break;
		}
		if ((size_t)r < left)
			printf("short write at %zu: %zd of %zu\n", done, r, left);
		done += (size_t)r;
	}
	if (f != NULL) {
		if (fflush(f) != 0)
			die("fflush");
		o.fd = dup(fileno(f));
		fclose(f);
	}
	printf("wrote %zu bytes\n", done);
	if (o.k == D_FILE || strcmp(how, "pwrite") == 0) {
		off_t pos = lseek(o.fd, 0, SEEK_CUR);
		printf("destination position %lld\n", (long long)pos);
	}
	out_close(&o);
	return 0;
}

/* Write from m[*pos..size) until it all went, printing every result. */
static void write_rest(int fd, const unsigned char *m, size_t *pos, size_t size)
{
	while (*pos < size) {
		ssize_t r = write(fd, m + *pos, size - *pos);
		if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
			usleep(1000);
			continue;
		}
		if (r <= 0) {
			say("write", r, errno);
			return;
		}
		*pos += (size_t)r;
	}
}

static int sc_eagain(void)
{
	make_src(SRC_SIZE);
	unsigned char *m = map_src(SRC_SIZE, PROT_READ, MAP_SHARED);
	int sv[2];
	tcp_pair(sv, 256 * 1024);
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	size_t pos = 0;
	ssize_t r = write(sv[0], m, SRC_SIZE);
	printf("first write short: %s\n", r > 0 && (size_t)r < SRC_SIZE ? "yes" : "no");
	if (r > 0)
		pos += (size_t)r;
	/* Nobody reads: the next write has no room at all. */
	r = write(sv[0], m + pos, SRC_SIZE - pos);
	if (r > 0) { /* the buffer may grow once (TCP autotuning): once more */
		pos += (size_t)r;
		r = write(sv[0], m + pos, SRC_SIZE - pos);
	}
	say("write with the buffer full", r, errno);
	struct drain d;
	drain_start(&d, sv[1], -1);
	write_rest(sv[0], m, &pos, SRC_SIZE);
	printf("wrote %zu bytes\n", pos);
	close(sv[0]);
	drain_join(&d);
	return 0;
}

static volatile sig_atomic_t alarms;
static void on_alarm(int s)
{
	(void)s;
	alarms++;
}

static void alarm_in(int ms)
{
	struct itimerval it = { .it_value = { ms / 1000, (ms % 1000) * 1000 } };
	setitimer(ITIMER_REAL, &it, NULL);
}

static int sc_eintr(void)
{
	make_src(SRC_SIZE);
	unsigned char *m = map_src(SRC_SIZE, PROT_READ, MAP_SHARED);
	struct sigaction sa = { .sa_handler = on_alarm }; /* no SA_RESTART */
	sigaction(SIGALRM, &sa, NULL);
	int sv[2];
	tcp_pair(sv, 256 * 1024);
	/* Fill the socket without blocking. */
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	size_t pos = 0;
	for (int settled = 0; settled < 3;) {
		ssize_t r = write(sv[0], m + pos, SRC_SIZE - pos);
		if (r > 0) {
			pos += (size_t)r;
			settled = 0;
			continue;
		}
		/* Full: full still a while later (the window settles)? */
		usleep(50000);
		settled++;
	}
	fcntl(sv[0], F_SETFL, 0);
	/* Blocked with nothing moved: the signal ends it with EINTR. */
	alarm_in(300);
	ssize_t r = write(sv[0], m + pos, SRC_SIZE - pos);
	say("blocked write interrupted", r, errno);
	if (r > 0)
		pos += (size_t)r;
	printf("alarms: %d\n", (int)alarms);
	/* Someone reads 1 MiB and stops: the write moves some and blocks
	 * again; the signal ends it with a short count. */
	struct drain d;
	drain_start(&d, sv[1], (long long)pos + (1 << 20));
	alarm_in(500);
	r = write(sv[0], m + pos, SRC_SIZE - pos);
	printf("write after a partial read: %s\n",
	       r > 0 && (size_t)r < SRC_SIZE - pos ? "short count" : r < 0 ? en(errno) : "whole");
	if (r > 0)
		pos += (size_t)r;
	printf("alarms: %d\n", (int)alarms);
	d.limit = -1;
	write_rest(sv[0], m, &pos, SRC_SIZE);
	printf("wrote %zu bytes\n", pos);
	close(sv[0]);
	drain_join(&d);
	return 0;
}

static void write_file(const unsigned char *m, size_t n)
{
	int fd = open("out.bin", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		die("out.bin");
	size_t pos = 0;
	write_rest(fd, m, &pos, n);
	printf("wrote %zu bytes\n", pos);
	close(fd);
}

static int sc_writable(const char *type)
{
	make_src(SRC_SIZE);
	bool priv = strcmp(type, "private") == 0;
	/* Shared and writable needs a descriptor open for writing. */
	int fd = open("src.bin", priv ? O_RDONLY : O_RDWR);
	if (fd < 0)
		die("open src.bin");
	unsigned char *m = mmap(NULL, SRC_SIZE, PROT_READ, priv ? MAP_PRIVATE : MAP_SHARED, fd, 0);
	if (m == MAP_FAILED)
		die("mmap");
	close(fd);
	if (mprotect(m, SRC_SIZE, PROT_READ | PROT_WRITE) != 0)
		die("mprotect");
	m[100000] ^= 0xff;
	m[SRC_SIZE - 1] ^= 0xff;
	if (mprotect(m, SRC_SIZE, PROT_READ) != 0)
		die("mprotect back");
	write_file(m, SRC_SIZE);
	return 0;
}

static int sc_written_private(void)
{
	make_src(SRC_SIZE);
	unsigned char *m = map_src(SRC_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	m[4096 * 7 + 3] ^= 0x5a;
	write_file(m, SRC_SIZE);
	return 0;
}

static int sc_truncated(const char *dst, long long cut)
{
	make_src(SRC_SIZE);
	unsigned char *m = map_src(SRC_SIZE, PROT_READ, MAP_SHARED);
	if (truncate("src.bin", cut) != 0)
		die("truncate");
	struct out o;
	out_open(&o, dst);
	/* The whole mapping in one call: the file's bytes, the zeros of
	 * its last page, then the kernel meets a page past the end. */
	ssize_t r = write(o.fd, m, SRC_SIZE);
	say("write of the whole mapping", r, errno);
	/* Wholly past the end. */
	size_t past = ((size_t)cut + 4096 + 4095) & ~(size_t)4095;
	r = write(o.fd, m + past, SRC_SIZE - past);
	say("write past the end", r, errno);
	out_close(&o);
	return 0;
}

static int sc_remapped(void)
{
	make_src(SRC_SIZE);
	unsigned char *m = map_src(SRC_SIZE, PROT_READ, MAP_SHARED);
	if (munmap(m, SRC_SIZE) != 0)
		die("munmap");
	unsigned char *a = mmap(m, SRC_SIZE, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	if (a != m)
		die("mmap fixed");
	memset(a, 'A', SRC_SIZE);
	write_file(a, SRC_SIZE);
	return 0;
}

static int sc_small(const char *dst)
{
	make_src(SRC_SIZE);
	unsigned char *m = map_src(SRC_SIZE, PROT_READ, MAP_SHARED);
	struct out o;
	out_open(&o, dst);
	size_t pos = 0;
	while (pos < SRC_SIZE) {
		size_t n = SRC_SIZE - pos < 4096 ? SRC_SIZE - pos : 4096;
		ssize_t r = write(o.fd, m + pos, n);
		if (r <= 0) {
			say("write", r, errno);
			break;
		}
		pos += (size_t)r;
	}
	printf("wrote %zu bytes\n", pos);
	out_close(&o);
	return 0;
}

/* The reader of a pipe or socket starts reading only 300 ms from now. */
static void *resume_later(void *arg)
{
	struct drain *d = arg;
	usleep(300 * 1000);
	d->limit = -1;
	return NULL;
}

/* 512K of the mapping written into a pipe or TCP socket whose reader is
 * paused (the bytes sit in the pipe or the socket queues), then the
 * program overwrites that range of the file with pwrite: plain, the
 * reader gets the bytes as they were at the write. */
static int sc_changed_after(const char *dst, const char *how)
{
	const size_t n = 512 * 1024;
	make_src(SRC_SIZE);
	unsigned char *m = map_src(SRC_SIZE, PROT_READ, MAP_SHARED);
	struct out o;
	int sv[2];
	o.k = strcmp(dst, "tcp") == 0 ? D_TCP : D_PIPE;
	if (o.k == D_TCP) {
		tcp_pair(sv, 2 << 20);
		o.fd = sv[0];
	} else {
		if (pipe(sv) != 0 || fcntl(sv[1], F_SETPIPE_SZ, 1 << 20) < 0)
			die("pipe");
		o.fd = sv[1];
			}
	drain_start(&o.d, o.k == D_TCP ? sv[1] : sv[0], 0);
	ssize_t r = write(o.fd, m, n);
	printf("write %zd\n", r);
	pthread_t t;
	if (pthread_create(&t, NULL, resume_later, &o.d) != 0)
		die("pthread_create");
	if (strcmp(how, "map") == 0) {
		/* A new writable shared mapping of the file, then stores: no
		 * call the library could wait in - the mapping itself must. */
		int fd = open("src.bin", O_RDWR);
		unsigned char *w = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (fd < 0 || w == MAP_FAILED)
			die("writable map");
		memset(w, 'Z', n);
		munmap(w, n);
		close(fd);
		printf("stored through a new mapping\n");
	} else {
		int fd = open("src.bin", O_WRONLY);
		unsigned char *z = malloc(n);
		memset(z, 'Z', n);
		printf("pwrite %zd\n", fd < 0 ? -1 : pwrite(fd, z, n, 0));
		close(fd);
	}
	pthread_join(t, NULL);
	out_close(&o);
	return 0;
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	if (argc >= 5 && strcmp(argv[1], "copy") == 0)
		return sc_copy(argv[2], argv[3], argv[4]);
	if (argc >= 2 && strcmp(argv[1], "eagain") == 0)
		return sc_eagain();
	if (argc >= 2 && strcmp(argv[1], "eintr") == 0)
		return sc_eintr();
	if (argc >= 3 && strcmp(argv[1], "writable") == 0)
		return sc_writable(argv[2]);
	if (argc >= 2 && strcmp(argv[1], "written-private") == 0)
		return sc_written_private();
	if (argc >= 4 && strcmp(argv[1], "truncated") == 0)
		return sc_truncated(argv[2], atoll(argv[3]));
	if (argc >= 2 && strcmp(argv[1], "remapped") == 0)
		return sc_remapped();
	if (argc >= 3 && strcmp(argv[1], "small") == 0)
		return sc_small(argv[2]);
	if (argc >= 3 && strcmp(argv[1], "changed-after") == 0)
		return sc_changed_after(argv[2], argc >= 4 ? argv[3] : "pwrite");
	fprintf(stderr, "usage: mapw copy|eagain|eintr|writable|written-private|truncated|remapped|small ...\n");
	return 2;
}
