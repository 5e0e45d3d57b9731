/*
 * xferlog.c - differential test of xfer.c against the plain calls.
 *
 *   xferlog MODE CASE [DIR]     MODE: plain | xfer
 *   xferlog list                the case names, one a line
 *
 * Each case builds fresh destinations (a TCP connection on 127.0.0.1, a
 * UNIX socketpair, a pipe, a regular file), then makes a fixed sequence
 * of writes of bytes that sit in a source file: in mode plain with
 * write/send/pwrite from memory (the bytes are pread first), in mode xfer
 * with nb_xfer() - and, where nb_xfer declines (NB_XFER_FALLBACK), with
 * the plain call, as the library's caller will. It logs, one line per
 * call, the return value, errno and the signals handled during the call;
 * then what the destination received (count and FNV-1a checksum), the
 * destination's and the source descriptor's file positions, and how the
 * case's process ended. The logs of the two modes must be identical
 * (tests/integration/60-xfer.sh). Lines starting with '#' are notes that
 * differ on purpose (which kernel path served, why one declined) and are
 * not compared.
 *
 * Every case runs in its own child; every peer (reader) is a child that
 * limits itself with alarm() and is killed by PID when the case ends.
 * DIR: where ENOSPC cases put their files (a small tmpfs); other cases
 * use /dev/shm (tmpfs) and /tmp (ext4 here) for "another file system".
 */
#include "xfer.c" /* the mechanism under test, from shim/ (-Ishim) */
#include "sigview.c" /* the dispositions it consults */

/* A socket error a served write took away is kept by the hooks for the
 * program's next send (fdtab.c), which this harness does not run through:
 * its later calls see what the kernel left, as before. */
void nb_fd_note_lost_err(int fd, int err)
{
	(void)fd;
	(void)err;
}

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>

#include "common.h"

#define K 1024
#define M (1024 * 1024)
#define SRC_LEN (8 * M)
#define SRC_POS 777 /* the source descriptor's own position: never moves */

static bool xfer_mode;
static const char *smalldir = "/nonexistent";
static unsigned char *mem; /* bytes for the plain calls */
static int pidpipe = -1;   /* reader PIDs, to the top process */
static bool notes = true;  /* '#' lines for every call */

/* ------------------------------------------------------------------ */
/* Output: unbuffered lines, so a case killed by a signal loses none.   */

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof line - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (n > (int)sizeof line - 2)
		n = (int)sizeof line - 2;
	line[n++] = '\n';
	for (int off = 0; off < n;) {
		ssize_t w = write(1, line + off, (size_t)(n - off));
		if (w <= 0)
			return;
		off += (int)w;
	}
}

static void die(const char *what)
{
	say("SETUP FAILED: %s: %s", what, strerror(errno));
	_exit(99);
}


/* ------------------------------------------------------------------ */
/* Signals                                                             */

static volatile sig_atomic_t nsig[65];
static volatile sig_atomic_t release_at; /* SIGALRM count that frees the reader */
static int go_fd = -1;                    /* write end the reader waits on */

static void on_sig(int s)
{
	int saved = errno;
	nsig[s]++;
	if (s == SIGALRM && release_at && nsig[SIGALRM] == release_at) {
		struct itimerval z = { { 0, 0 }, { 0, 0 } };
		setitimer(ITIMER_REAL, &z, NULL);
		if (go_fd >= 0 && write(go_fd, "g", 1) != 1)
			nsig[0]++;
	}
	errno = saved;
}

static void handle(int sig, bool restart)
{
	struct sigaction sa = { .sa_handler = on_sig };
	sa.sa_flags = restart ? SA_RESTART : 0;
	sigemptyset(&sa.sa_mask);
	if (sigaction(sig, &sa, NULL) != 0)
		die("sigaction");
}

static void dispose(int sig, void (*h)(int))
{
	struct sigaction sa = { .sa_handler = h };
	sigemptyset(&sa.sa_mask);
	if (sigaction(sig, &sa, NULL) != 0)
		die("sigaction");
}

struct snap {
	sig_atomic_t n[65];
};

static void snap(struct snap *s)
{
	for (int i = 0; i < 65; i++)
		s->n[i] = nsig[i];
}

/* "PIPE1,ALRM3" for the signals handled since s, or "-". */
static const char *sigs_since(const struct snap *s, char *out, size_t cap)
{
	size_t len = 0;
	out[0] = 0;
	for (int i = 1; i < 65; i++) {
		int d = nsig[i] - s->n[i];
		if (d > 0 && len + 16 < cap)
			len += (size_t)snprintf(out + len, cap - len, "%s%s%d", len ? "," : "",
						sigabbrev_np(i) ? sigabbrev_np(i) : "?", d);
	}
	return len ? out : "-";
}

static void arm_timer(long first_us, long every_us)
{
	struct itimerval it = { { every_us / 1000000, every_us % 1000000 },
				{ first_us / 1000000, first_us % 1000000 } };
	if (setitimer(ITIMER_REAL, &it, NULL) != 0)
		die("setitimer");
}

static void disarm_timer(void)
{
	arm_timer(0, 0);
}

/* ------------------------------------------------------------------ */
/* The call under test                                                 */

static const char *nb_path_name_local(unsigned p)
{
	switch (p) {
	case NB_PATH_SENDFILE: return "sendfile";
	case NB_PATH_COPY_FILE_RANGE: return "copy_file_range";
	case NB_PATH_SPLICE: return "splice";
	default: return "none";
	}
}

enum wkind { W_WRITE, W_SEND, W_PWRITE };

struct dest {
	int fd;
	enum nb_kind kind;
	unsigned flags; /* NB_FL_* as the library would have cached them */
	enum nb_path path;
};

static ssize_t plain_call(const struct dest *d, enum wkind w, const void *p, size_t n, int msgf,
			  off_t poff)
{
	switch (w) {
	case W_SEND: return send(d->fd, p, n, msgf);
	case W_PWRITE: return pwrite(d->fd, p, n, poff);
	default: return write(d->fd, p, n);
	}
}

/* One program-level write of the n bytes at soff. Sets *err. */
static bool from_pipe; /* XFERLOG_FROM_PIPE */

static ssize_t one_write(const struct dest *d, int src, off_t soff, size_t n, enum wkind w,
			 int msgf, off_t poff, int *err)
{
	if (pread(src, mem, n, soff) != (ssize_t)n)
		die("pread source");
	errno = 0;
	if (!xfer_mode) {
		ssize_t r = plain_call(d, w, mem, n, msgf, poff);
		*err = errno;
		return r;
	}
	struct nb_xfer_res res;
	/* The library keeps this summary current through its signal hooks;
	 * here the case's sigaction calls are direct, so read it again. */
	nb_sigview_init();
	ssize_t r;
	long maxp = 1 << 20;
	FILE *mp = fopen("/proc/sys/fs/pipe-max-size", "r");
	if (mp != NULL) {
		if (fscanf(mp, "%ld", &maxp) != 1)
			maxp = 1 << 20;
		fclose(mp);
	}
	if (from_pipe && n > (size_t)maxp) {
		/* More than one pipe can hold: the library never has that
		 * (its pipes hold at most NOBOUNCE_PIPE_SIZE). */
		say("# from a pipe: %zu bytes do not fit, plain", n);
		r = plain_call(d, w, mem, n, msgf, poff);
		*err = errno;
		return r;
	}
	if (from_pipe) {
		/* XFERLOG_FROM_PIPE: the bytes come from a pipe holding them,
		 * as they do for a socket or pipe source (nb_xfer_from_pipe). */
		static int pp[2] = { -1, -1 };
		if (pp[0] < 0 && pipe2(pp, O_CLOEXEC) != 0)
			die("pipe2");
		int cap = (int)(n < 65536 ? 65536 : n);
		if (fcntl(pp[1], F_SETPIPE_SZ, cap) < 0)
			die("F_SETPIPE_SZ");
		if (write(pp[1], mem, n) != (ssize_t)n)
			die("fill the source pipe");
		fcntl(pp[0], F_SETFL, O_NONBLOCK);
		r = nb_xfer_from_pipe(d->fd, d->kind, d->flags, pp[0], n, msgf,
				      w == W_PWRITE ? &poff : NULL, &res);
		*err = errno;
		static char sink[65536];
		while (read(pp[0], sink, sizeof sink) > 0) /* what the call left */
			;
	} else {
		r = nb_xfer(d->fd, d->kind, d->flags, src, soff, n, d->path, msgf,
			    w == W_PWRITE ? &poff : NULL, &res);
		*err = errno;
	}
	if (r == NB_XFER_FALLBACK) {
		say("# fallback %s err=%s calls=%u", nb_xfer_why_name(res.why),
		    res.err ? errno_name(res.err) : "-", res.calls);
		errno = 0;
		r = plain_call(d, w, mem, n, msgf, poff);
		*err = errno;
	} else if (notes) {
		say("# via %s (%s) calls=%u", nb_path_name_local(res.path),
		    nb_xfer_how_name(res.how), res.calls);
	}
	return r;
}

/* A logged call: "label n=N -> r=R [ERRNO] sigs=S". Returns r. */
static ssize_t wcall(const char *label, const struct dest *d, int src, off_t soff, size_t n,
		     enum wkind w, int msgf, off_t poff)
{
	struct snap s;
	char sg[96];
	int err = 0;
	snap(&s);
	ssize_t r = one_write(d, src, soff, n, w, msgf, poff, &err);
	if (r < 0)
		say("%s n=%zu -> r=%zd %s sigs=%s", label, n, r, errno_name(err), sigs_since(&s, sg, sizeof sg));
	else
		say("%s n=%zu -> r=%zd sigs=%s", label, n, r, sigs_since(&s, sg, sizeof sg));
	return r;
}

/* ------------------------------------------------------------------ */
/* Sources, destinations, peers                                        */

static int make_source(const char *dir, const char *name, size_t len)
{
	char p[256];
	snprintf(p, sizeof p, "%s/%s.%d", dir, name, (int)getpid());
	int fd = open(p, O_RDWR | O_CREAT | O_EXCL, 0600);
	if (fd < 0)
		die(p);
	unlink(p); /* lives while open; nothing left behind */
	unsigned char *b = malloc(len);
	if (!b)
		die("malloc");
	for (size_t i = 0; i < len; i++)
		b[i] = (unsigned char)((i * 2654435761u) >> 13);
	if (write(fd, b, len) != (ssize_t)len)
		die("write source");
	free(b);
	if (lseek(fd, SRC_POS, SEEK_SET) != SRC_POS)
		die("lseek source");
	return fd;
}

static int make_file(const char *dir, const char *name, int extra_flags)
{
	char p[256];
	snprintf(p, sizeof p, "%s/%s.%d", dir, name, (int)getpid());
	int fd = open(p, O_RDWR | O_CREAT | O_EXCL | extra_flags, 0600);
	if (fd < 0)
		die(p);
	unlink(p);
	return fd;
}

static void tcp_pair(int *cli, int *srv, int sndbuf, int rcvbuf)
{
	int l = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof a;
	if (l < 0)
		die("socket");
	if (rcvbuf && setsockopt(l, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf) != 0)
		die("SO_RCVBUF");
	if (bind(l, (struct sockaddr *)&a, sizeof a) != 0 || listen(l, 1) != 0 ||
	    getsockname(l, (struct sockaddr *)&a, &al) != 0)
		die("listen 127.0.0.1");
	*cli = socket(AF_INET, SOCK_STREAM, 0);
	if (*cli < 0)
		die("socket");
	if (sndbuf && setsockopt(*cli, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf) != 0)
		die("SO_SNDBUF");
	if (connect(*cli, (struct sockaddr *)&a, sizeof a) != 0)
		die("connect");
	*srv = accept(l, NULL, NULL);
	if (*srv < 0)
		die("accept");
	close(l);
}

static void unix_pair(int *a, int *b, int sndbuf)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
		die("socketpair");
	if (sndbuf && setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf) != 0)
		die("SO_SNDBUF");
	*a = sv[0];
	*b = sv[1];
}

static void set_nonblock(int fd, bool on)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK) != 0)
		die("F_SETFL");
}

/* Fills a socket's or pipe's buffers until write fails with EAGAIN,
 * twice with a pause, so that late window updates are absorbed too. */
static void fill(int fd)
{
	static unsigned char z[64 * K];
	set_nonblock(fd, true);
	for (int round = 0; round < 2; round++) {
		while (write(fd, z, sizeof z) > 0)
			;
		if (errno != EAGAIN)
			die("fill");
		usleep(50000);
	}
	while (write(fd, z, 1) > 0)
		;
	set_nonblock(fd, false);
}

struct peer {
	pid_t pid;
	int res; /* reads "total sum" when the peer ends */
};

/* A reader child: waits for a byte on `go` (if >= 0) or for delay_ms,
 * then reads fd in `chunk`-byte reads with pause_us between them until
 * EOF, and reports count and checksum of everything it got. skip: bytes
 * of filler to read first without counting them. */
static struct peer reader(int fd, int others_to_close[], int nclose, int go, int delay_ms,
			  size_t chunk, int pause_us, size_t skip)
{
	int rp[2];
	if (pipe(rp) != 0)
		die("pipe");
	pid_t pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		alarm(60);
		close(rp[0]);
		for (int i = 0; i < nclose; i++)
			close(others_to_close[i]);
		signal(SIGPIPE, SIG_DFL);
		if (go >= 0) {
			char c;
			if (read(go, &c, 1) != 1)
				_exit(3);
		}
		if (delay_ms)
			usleep((useconds_t)delay_ms * 1000);
		static unsigned char b[1 << 20];
		uint64_t h = FNV1A_INIT, total = 0;
		ssize_t r;
		if (chunk > sizeof b)
			chunk = sizeof b;
		while (skip > 0 && (r = read(fd, b, skip < chunk ? skip : chunk)) > 0)
			skip -= (size_t)r;
		while ((r = read(fd, b, chunk)) > 0) {
			h = fnv1a(h, b, (size_t)r);
			total += (uint64_t)r;
			if (pause_us)
				usleep((useconds_t)pause_us);
		}
		char line[64];
		int n = snprintf(line, sizeof line, "%llu %016llx\n", (unsigned long long)total,
				 (unsigned long long)h);
		if (write(rp[1], line, (size_t)n) != n)
			_exit(2);
		_exit(0);
	}
	close(rp[1]);
	if (pidpipe >= 0 && write(pidpipe, &pid, sizeof pid) != sizeof pid)
		die("pidpipe");
	return (struct peer){ pid, rp[0] };
}

/* Logs what the peer received (after the writer closed its end). */
static void peer_done(struct peer p, const char *what)
{
	char line[64] = "";
	ssize_t n = read(p.res, line, sizeof line - 1);
	int st = 0;
	waitpid(p.pid, &st, 0);
	close(p.res);
	if (n > 0) {
		line[n] = 0;
		line[strcspn(line, "\n")] = 0;
	}
	unsigned long long total = 0, sum = 0;
	if (n <= 0 || sscanf(line, "%llu %llx", &total, &sum) != 2)
		say("%s: peer reported nothing (status %d)", what, st);
	else
		say("%s received=%llu sum=%016llx", what, total, sum);
}

static void file_report(int fd, const char *what)
{
	struct stat st;
	if (fstat(fd, &st) != 0)
		die("fstat");
	uint64_t h = FNV1A_INIT;
	static unsigned char b[1 << 20];
	for (off_t o = 0; o < st.st_size;) {
		ssize_t r = pread(fd, b, sizeof b, o);
		if (r <= 0)
			die("pread dst");
		h = fnv1a(h, b, (size_t)r);
		o += r;
	}
	say("%s size=%lld sum=%016llx pos=%lld", what, (long long)st.st_size,
	    (unsigned long long)h, (long long)lseek(fd, 0, SEEK_CUR));
}

static void src_report(int src)
{
	say("source position=%lld", (long long)lseek(src, 0, SEEK_CUR));
}

/* ------------------------------------------------------------------ */
/* Cases                                                               */

#define SOCK(fd_, k_, fl_) ((struct dest){ (fd_), (k_), (fl_), NB_PATH_SENDFILE })
#define PIPE(fd_, fl_) ((struct dest){ (fd_), NB_KIND_PIPE, (fl_), NB_PATH_SPLICE })
#define FILED(fd_, fl_) ((struct dest){ (fd_), NB_KIND_FILE, (fl_), NB_PATH_COPY_FILE_RANGE })

/* Blocking stream destinations with a slow reader: every write is whole. */
static void stream_block(bool unix_)
{
	int src = make_source("/dev/shm", "nb-xl-src", SRC_LEN);
	int a, b;
	if (unix_)
		unix_pair(&a, &b, 0);
	else
		tcp_pair(&a, &b, 0, 0);
	int cl[] = { a, src };
	struct peer p = reader(b, cl, 2, -1, 0, 7000, 50, 0);
	close(b);
	struct dest d = SOCK(a, unix_ ? NB_KIND_UNIX : NB_KIND_TCP, 0);
	wcall("write 1M@0", &d, src, 0, M, W_WRITE, 0, 0);
	wcall("write 100000@12345", &d, src, 12345, 100000, W_WRITE, 0, 0);
	wcall("send 3M@4096 NOSIGNAL", &d, src, 4096, 3 * M, W_SEND, MSG_NOSIGNAL, 0);
	wcall("write 65536@70000", &d, src, 70000, 65536, W_WRITE, 0, 0);
	close(a);
	peer_done(p, "peer");
	src_report(src);
}

static void case_tcp_block(void) { stream_block(false); }
static void case_unix_block(void) { stream_block(true); }

static const char *klass(ssize_t r, int err, size_t n)
{
	if (r < 0)
		return errno_name(err);
	return (size_t)r == n ? "full" : "partial";
}

/* Non-blocking stream with tiny buffers and a reader that starts late
 * and reads slowly: partial counts and EAGAIN, a count never above what
 * was asked, EAGAIN never once bytes moved within one call (the call
 * returns the count). How many bytes one call takes is the kernel's
 * socket-buffer accounting, which differs between copied (write) and
 * spliced (sendfile) pages - measured 32741 against 65482 (TCP) and
 * 8064 against 65536 (UNIX): the exact counts are notes, the log keeps
 * the first call's class, the totals and what the peer received. */
static void stream_nonblock(bool unix_)
{
	int src = make_source("/dev/shm", "nb-xl-src", SRC_LEN);
	int a, b;
	if (unix_)
		unix_pair(&a, &b, 4096);
	else
		tcp_pair(&a, &b, 4096, 4096);
	int cl[] = { a, src };
	struct peer p = reader(b, cl, 2, -1, 200, 1000, 100, 0);
	close(b);
	set_nonblock(a, true);
	struct dest d = SOCK(a, unix_ ? NB_KIND_UNIX : NB_KIND_TCP, NB_FL_NONBLOCK);
	static const struct {
		off_t off;
		size_t n;
	} chunks[] = { { 0, 256 * K }, { 777, 100000 }, { 5000, 300000 } };
	size_t partial = 0, eagain = 0, over = 0, calls = 0;
	char first[16] = "";
	notes = false;
	for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
		size_t done = 0;
		while (done < chunks[c].n) {
			int err = 0;
			size_t want = chunks[c].n - done;
			ssize_t r = one_write(&d, src, chunks[c].off + (off_t)done, want, W_WRITE, 0, 0,
					      &err);
			say("# chunk %zu call: %zd", c, r);
			if (calls++ == 0)
				snprintf(first, sizeof first, "%s", klass(r, err, want));
			if (r > 0) {
				over += (size_t)r > want;
				partial += (size_t)r < want;
				done += (size_t)r;
			} else if (r < 0 && err == EAGAIN) {
				eagain++;
				struct pollfd pf = { .fd = a, .events = POLLOUT };
				if (poll(&pf, 1, 20000) != 1)
					die("poll");
			} else {
				say("chunk %zu: r=%zd %s", c, r, errno_name(err));
				break;
			}
		}
		say("chunk %zu n=%zu: done=%zu", c, chunks[c].n, done);
	}
	say("first call: %s; partial counts: %s; EAGAIN: %s; counts above the ask: %zu", first,
	    partial ? "seen" : "none", eagain ? "seen" : "none", over);
	close(a);
	peer_done(p, "peer");
	src_report(src);
}

static void case_tcp_nonblock(void) { stream_nonblock(false); }
static void case_unix_nonblock(void) { stream_nonblock(true); }

static void case_pipe_block(void)
{
	int src = make_source("/dev/shm", "nb-xl-src", SRC_LEN);
	int p[2];
	if (pipe(p) != 0)
		die("pipe");
	int cl[] = { p[1], src };
	struct peer r = reader(p[0], cl, 2, -1, 0, 5000, 30, 0);
	close(p[0]);
	struct dest d = PIPE(p[1], 0);
	wcall("write 1M@100", &d, src, 100, M, W_WRITE, 0, 0);
	wcall("write 200000@0", &d, src, 0, 200000, W_WRITE, 0, 0);
	wcall("write 70000@4095", &d, src, 4095, 70000, W_WRITE, 0, 0);
	wcall("write 4096@0 (PIPE_BUF)", &d, src, 0, 4096, W_WRITE, 0, 0);
	close(p[1]);
	peer_done(r, "peer");
	src_report(src);
}

static void pipe_fill_report(int rd, const char *what)
{
	int q = -1;
	if (ioctl(rd, FIONREAD, &q) != 0)
		die("FIONREAD");
	say("%s queued=%d", what, q);
}

static void case_pipe_nonblock(void)
{
	int src = make_source("/dev/shm", "nb-xl-src", SRC_LEN);
	int p[2];
	struct dest d;
	/* full pipe: EAGAIN */
	if (pipe2(p, O_NONBLOCK) != 0)
		die("pipe2");
	d = PIPE(p[1], NB_FL_NONBLOCK);
	fill(p[1]);
	set_nonblock(p[1], true);
	wcall("full: write 100000@0", &d, src, 0, 100000, W_WRITE, 0, 0);
	pipe_fill_report(p[0], "full");
	close(p[0]);
	close(p[1]);
	/* empty pipe, aligned, more than it holds */
	if (pipe2(p, O_NONBLOCK) != 0)
		die("pipe2");
	d = PIPE(p[1], NB_FL_NONBLOCK);
	wcall("empty: write 100000@4096", &d, src, 4096, 100000, W_WRITE, 0, 0);
	wcall("then: write 100000@4096", &d, src, 4096, 100000, W_WRITE, 0, 0);
	pipe_fill_report(p[0], "aligned");
	close(p[0]);
	close(p[1]);
	/* empty pipe, misaligned: splice would fit 100 bytes less */
	if (pipe2(p, O_NONBLOCK) != 0)
		die("pipe2");
	d = PIPE(p[1], NB_FL_NONBLOCK);
	wcall("empty: write 100000@100", &d, src, 100, 100000, W_WRITE, 0, 0);
	pipe_fill_report(p[0], "misaligned");
	close(p[0]);
	close(p[1]);
	/* small writes filling up: write merges, splice cannot */
	if (pipe2(p, O_NONBLOCK) != 0)
		die("pipe2");
	d = PIPE(p[1], NB_FL_NONBLOCK);
	for (int i = 0; i < 3; i++)
		wcall("write 30000@0", &d, src, 0, 30000, W_WRITE, 0, 0);
	wcall("write 3000@4000", &d, src, 4000, 3000, W_WRITE, 0, 0);
	pipe_fill_report(p[0], "merged");
	close(p[0]);
	close(p[1]);
	/* whole pages from page boundaries, then small writes that could
	 * merge into a partial last page (there is none) */
	if (pipe2(p, O_NONBLOCK) != 0)
		die("pipe2");
	d = PIPE(p[1], NB_FL_NONBLOCK);
	wcall("write 32768@8192", &d, src, 8192, 32768, W_WRITE, 0, 0);
	wcall("write 16384@0", &d, src, 0, 16384, W_WRITE, 0, 0);
	for (int i = 0; i < 3; i++)
		wcall("write 3000@0", &d, src, 0, 3000, W_WRITE, 0, 0);
	wcall("write 100@0", &d, src, 0, 100, W_WRITE, 0, 0);
	pipe_fill_report(p[0], "pages");
	static unsigned char drain[64 * K];
	if (read(p[0], drain, 40960) != 40960)
		die("drain");
	wcall("after a read of 40960: write 8192@0", &d, src, 0, 8192, W_WRITE, 0, 0);
	pipe_fill_report(p[0], "pages");
	close(p[0]);
	close(p[1]);
	src_report(src);
}

static void files(const char *srcdir, const char *dstdir, bool positional)
{
	int src = make_source(srcdir, "nb-xl-src", SRC_LEN);
	int dst = make_file(dstdir, "nb-xl-dst", 0);
	struct dest d = FILED(dst, 0);
	if (positional) {
		if (lseek(dst, 5, SEEK_SET) != 5)
			die("lseek");
		wcall("pwrite 1M@0 at 4096", &d, src, 0, M, W_PWRITE, 0, 4096);
		say("dst position=%lld", (long long)lseek(dst, 0, SEEK_CUR));
		wcall("pwrite 300000@5000 at 3000000", &d, src, 5000, 300000, W_PWRITE, 0, 3000000);
		say("dst position=%lld", (long long)lseek(dst, 0, SEEK_CUR));
		wcall("pwrite 1000@0 at -1", &d, src, 0, 1000, W_PWRITE, 0, -1);
	} else {
		wcall("write 1M@0", &d, src, 0, M, W_WRITE, 0, 0);
		say("dst position=%lld", (long long)lseek(dst, 0, SEEK_CUR));
		wcall("write 300000@5000", &d, src, 5000, 300000, W_WRITE, 0, 0);
		say("dst position=%lld", (long long)lseek(dst, 0, SEEK_CUR));
		if (lseek(dst, 2 * M, SEEK_SET) != 2 * M)
			die("lseek");
		wcall("write 4097@4095 past a hole", &d, src, 4095, 4097, W_WRITE, 0, 0);
	}
	file_report(dst, "dst");
	src_report(src);
}

static void case_file_same_fs(void) { files("/dev/shm", "/dev/shm", false); }
static void case_file_cross_fs(void) { files("/tmp", "/dev/shm", false); }
static void case_file_pwrite(void) { files("/dev/shm", "/dev/shm", true); }
static void case_file_pwrite_cross_fs(void) { files("/tmp", "/dev/shm", true); }

static void case_file_append(void)
{
	int src = make_source("/dev/shm", "nb-xl-src", SRC_LEN);
	int dst = make_file("/dev/shm", "nb-xl-dst", O_APPEND);
	if (write(dst, "header\n", 7) != 7)
		die("write");
	if (lseek(dst, 0, SEEK_SET) != 0)
		die("lseek");
	struct dest d = FILED(dst, NB_FL_APPEND);
	wcall("write 100000@0 O_APPEND", &d, src, 0, 100000, W_WRITE, 0, 0);
	file_report(dst, "dst");
	/* the flag was set behind the cache's back: copy_file_range says
	 * EBADF, the plain write appends */
	int dst2 = make_file("/dev/shm", "nb-xl-dst2", 0);
	if (write(dst2, "header\n", 7) != 7 || fcntl(dst2, F_SETFL, O_APPEND) != 0)
		die("O_APPEND");
	struct dest d2 = FILED(dst2, 0);
	wcall("write 100000@0 O_APPEND uncached", &d2, src, 0, 100000, W_WRITE, 0, 0);
	file_report(dst2, "dst2");
	src_report(src);
}

/* ---- peer gone: EPIPE, SIGPIPE, MSG_NOSIGNAL ---- */

enum disp { D_DFL, D_IGN, D_HANDLER };

static void set_sigpipe(enum disp how)
{
	if (how == D_HANDLER)
		handle(SIGPIPE, true);
	else
		dispose(SIGPIPE, how == D_IGN ? SIG_IGN : SIG_DFL);
}

static void gone_calls(const struct dest *d, int src, enum wkind w, int msgf, size_t n)
{
	wcall("1st", d, src, 0, n, w, msgf, 0);
	wcall("2nd", d, src, 4096, n, w, msgf, 0);
	wcall("3rd", d, src, 100, n, w, msgf, 0);
}

/* The peer resets the connection (SO_LINGER 0): ECONNRESET, then EPIPE. */
static void tcp_reset(enum disp how, int msgf)
{
	int src = make_source("/dev/shm", "nb-xl-src", SRC_LEN);
	int a, b;
	tcp_pair(&a, &b, 0, 0);
	struct linger lg = { 1, 0 };
	if (setsockopt(b, SOL_SOCKET, SO_LINGER, &lg, sizeof lg) != 0)
		die("SO_LINGER");
	close(b);
	usleep(50000);
	set_sigpipe(how);
	struct dest d = SOCK(a, NB_KIND_TCP, 0);
	gone_calls(&d, src, msgf ? W_SEND : W_WRITE, msgf, 100000);
	src_report(src);
}

static void case_tcp_reset_dfl(void) { tcp_reset(D_DFL, 0); }
static void case_tcp_reset_ign(void) { tcp_reset(D_IGN, 0); }
static void case_tcp_reset_handler(void) { tcp_reset(D_HANDLER, 0); }
static void case_tcp_reset_nosignal(void) { tcp_reset(D_DFL, MSG_NOSIGNAL); }

/* The peer closes normally (FIN): the first write still goes out (the
 * peer answers it with a reset), then EPIPE. 32 KiB: one sock_sendmsg,
 * as in the plain write (see 60-xfer.sh for larger ones). */
static void tcp_fin(enum disp how, int msgf)
{
	int src = make_source("/dev/shm", "nb-xl-src", SRC_LEN);
	int a, b;
	tcp_pair(&a, &b, 0, 0);
	close(b);
	usleep(50000);
	set_sigpipe(how);
	struct dest d = SOCK(a, NB_KIND_TCP, 0);
	gone_calls(&d, src, msgf ? W_SEND : W_WRITE, msgf, 32 * K);
	src_report(src);
}

static void case_tcp_fin_dfl(void) { tcp_fin(D_DFL, 0); }
static void case_tcp_fin_handler(void) { tcp_fin(D_HANDLER, 0); }
static void case_tcp_fin_nosignal(void) { tcp_fin(D_HANDLER, MSG_NOSIGNAL); }

/* More than one internal 64 KiB chunk after a FIN: the reset arrives
 * between sendfile's chunks. The count may be shorter than write's
 * (logged as a class); no SIGPIPE may come with a count. */
static void case_tcp_fin_big_handler(void)
{
	int src = make_source("/dev/shm", "nb-xl-src", SRC_LEN);
	int a, b;
	tcp_pair(&a, &b, 0, 0);
	close(b);
	usleep(50000);
	set_sigpipe(D_HANDLER);
	struct dest d = SOCK(a, NB_KIND_TCP, 0);
	struct snap s;
	char sg[96];
	int err = 0;
	snap(&s);
	ssize_t r = one_write(&d, src, 0, 100000, W_WRITE, 0, 0, &err);
	if (xfer_mode)
		say("# 1st r=%zd", r);
	say("1st n=100000 -> %s sigs=%s", r > 0 ? "count" : errno_name(err), sigs_since(&s, sg, sizeof sg));
	wcall("2nd", &d, src, 4096, 100000, W_WRITE, 0, 0);
	src_report(src);
}

/* The program blocks SIGPIPE itself: MSG_NOSIGNAL leaves nothing
 * pending; a plain EPIPE leaves it pending; one already pending stays. */
static void case_tcp_reset_blocked(void)
{
	int src = make_source("/dev/shm", "nb-xl-src", SRC_LEN);
	int a, b;
	tcp_pair(&a, &b, 0, 0);
	struct linger lg = { 1, 0 };
	setsockopt(b, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
	close(b);
	usleep(50000);
	handle(SIGPIPE, true);
	sigset_t blk;
	sigemptyset(&blk);
	sigaddset(&blk, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &blk, NULL);
	struct dest d = SOCK(a, NB_KIND_TCP, 0);
	sigset_t pend;
	for (int i = 0; i < 2; i++) {
		wcall("send NOSIGNAL", &d, src, 0, 100000, W_SEND, MSG_NOSIGNAL, 0);
		sigpending(&pend);
		say("pending SIGPIPE: %s", sigismember(&pend, SIGPIPE) ? "yes" : "no");
	}
	wcall("write", &d, src, 0, 100000, W_WRITE, 0, 0);
	sigpending(&pend);
	say("pending SIGPIPE: %s", sigismember(&pend, SIGPIPE) ? "yes" : "no");
	wcall("send NOSIGNAL", &d, src, 0, 100000, W_SEND, MSG_NOSIGNAL, 0);
	sigpending(&pend);
	say("pending SIGPIPE: %s", sigismember(&pend, SIGPIPE) ? "yes" : "no");
	pthread_sigmask(SIG_UNBLOCK, &blk, NULL);
	say("after unblocking: handled %d", (int)nsig[SIGPIPE]);
	src_report(src);
}

static void unix_gone(enum disp how, int msgf)
{
	int src = make_source("/dev/shm", "nb-xl-src", SRC_LEN);
	int a, b;
	unix_pair(&a, &b, 0);
	close(b);
	set_sigpipe(how);
	struct dest d = SOCK(a, NB_KIND_UNIX, 0);
	gone_calls(&d, src, msgf ? W_SEND : W_WRITE, msgf, 100000);
	src_report(src);
}

static void case_unix_gone_dfl(void) { unix_gone(D_DFL, 0); }
static void case_unix_gone_ign(void) { unix_gone(D_IGN, 0); }
static void case_unix_gone_nosignal(void) { unix_gone(D_HANDLER, MSG_NOSIGNAL); }

static void pipe_gone(enum disp how)
{
	int src = make_source("/dev/shm", "nb-xl-src", SRC_LEN);
	int p[2];
	if (pipe(p) != 0)
		die("pipe");
	close(p[0]);
	set_sigpipe(how);
	struct dest d = PIPE(p[1], 0);
	gone_calls(&d, src, W_WRITE, 0, 100000);
	src_report(src);
}

static void case_pipe_gone_dfl(void) { pipe_gone(D_DFL); }
static void case_pipe_gone_ign(void) { pipe_gone(D_IGN); }
static void case_pipe_gone_handler(void) { pipe_gone(D_HANDLER); }

/* The reader goes away while a blocking pipe write waits: the count so
 * far, and SIGPIPE (pipe_write raises it even after a count). */
static void case_pipe_gone_midway(void)
{
	int src = make_source("/dev/shm", "nb-xl-src", SRC_LEN);
	int p[2];
	if (pipe(p) != 0)
		die("pipe");
	handle(SIGPIPE, true);
	int cl[] = { p[1], src };
	/* reads 64 KiB + 4 KiB, then exits: the pipe loses its reader */
	pid_t pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		alarm(60);
		for (int i = 0; i < 2; i++)
			close(cl[i]);
		usleep(200000);
		static unsigned char b[68 * K];
		size_t got = 0;
		while (got < sizeof b) {
			ssize_t r = read(p[0], b + got, sizeof b - got);
			if (r <= 0)
				break;
			got += (size_t)r;
		}
		usleep(100000);
		_exit(0);
	}
	if (pidpipe >= 0 && write(pidpipe, &pid, sizeof pid) != sizeof pid)
		die("pidpipe");
	close(p[0]);
	struct dest d = PIPE(p[1], 0);
	wcall("write 1M@4096", &d, src, 4096, M, W_WRITE, 0, 0);
	waitpid(pid, NULL, 0);
	src_report(src);
}

/* ---- EINTR, SA_RESTART ---- */

enum dkind { K_TCP, K_UNIX, K_PIPE };

/* Destination whose buffers are full, with a reader that drains it all
 * once released through `go`. Returns the writer's dest. */
static struct dest full_dest(enum dkind k, int src, struct peer *p, int *gow)
{
	int a, b, g[2];
	if (pipe(g) != 0)
		die("pipe");
	if (k == K_TCP) {
		tcp_pair(&a, &b, 16 * K, 16 * K);
	} else if (k == K_UNIX) {
		unix_pair(&a, &b, 16 * K);
	} else {
		int pp[2];
		if (pipe(pp) != 0)
			die("pipe");
		b = pp[0];
		a = pp[1];
	}
	fill(a);
	int cl[] = { a, src, g[1] };
	*p = reader(b, cl, 3, g[0], 0, 64 * K, 0, 0);
	close(b);
	close(g[0]);
	*gow = g[1];
	struct dest d = { a, k == K_TCP ? NB_KIND_TCP : k == K_UNIX ? NB_KIND_UNIX : NB_KIND_PIPE,
			  0, k == K_PIPE ? NB_PATH_SPLICE : NB_PATH_SENDFILE };
	return d;
}

/* A blocking write into a full destination, interrupted by SIGALRM.
 * Without SA_RESTART: -1 EINTR at the first tick. With SA_RESTART: the
 * write restarts at each tick; the third stops the timer and releases
 * the reader; the write then completes. */
static void eintr_full(enum dkind k, bool restart)
{
	int src = make_source("/dev/shm", "nb-xl-src", SRC_LEN);
	struct peer p;
	int gow;
	struct dest d = full_dest(k, src, &p, &gow);
	handle(SIGALRM, restart);
	if (restart) {
		go_fd = gow;
		release_at = 3;
		arm_timer(100000, 60000);
	} else {
		arm_timer(100000, 0);
	}
	wcall("write 1M@4096", &d, src, 4096, M, W_WRITE, 0, 0);
	disarm_timer();
	release_at = 0;
	if (!restart && write(gow, "g", 1) != 1)
		die("go");
	close(d.fd);
	close(gow);
	peer_done(p, "peer (with filler)");
	src_report(src);
}

static void case_eintr_tcp(void) { eintr_full(K_TCP, false); }
static void case_eintr_tcp_restart(void) { eintr_full(K_TCP, true); }
static void case_eintr_unix(void) { eintr_full(K_UNIX, false); }
static void case_eintr_unix_restart(void) { eintr_full(K_UNIX, true); }
static void case_eintr_pipe(void) { eintr_full(K_PIPE, false); }
static void case_eintr_pipe_restart(void) { eintr_full(K_PIPE, true); }

/* A blocking pipe write that moved bytes, then waits: the signal ends it
 * with the count, with or without SA_RESTART (pipe_write). */
static void eintr_pipe_partial(bool restart, off_t soff)
{
	int src = make_source("/dev/shm", "nb-xl-src", SRC_LEN);
	int p[2];
	if (pipe(p) != 0)
		die("pipe");
	handle(SIGALRM, restart);
	arm_timer(150000, 0);
	struct dest d = PIPE(p[1], 0);
	struct snap s;
	char sg[96];
	int err = 0;
	snap(&s);
	ssize_t r = one_write(&d, src, soff, M, W_WRITE, 0, 0, &err);
	if (soff % 4096 == 0) {
		say("write 1M@%lld -> r=%zd %s sigs=%s", (long long)soff, r, r < 0 ? errno_name(err) : "",
		    sigs_since(&s, sg, sizeof sg));
	} else {
		/* one slot holds a partial page: up to soff % 4096 bytes
		 * fewer than write(2) (documented in xfer.c) */
		if (xfer_mode)
			say("# r=%zd", r);
		say("write 1M@%lld -> %s sigs=%s", (long long)soff,
		    r > 0 && r <= 65536 && r >= 65536 - soff % 4096 ? "partial" : "UNEXPECTED",
		    sigs_since(&s, sg, sizeof sg));
	}
	disarm_timer();
	close(p[1]);
	static unsigned char b[1 << 20];
	uint64_t h = FNV1A_INIT, total = 0;
	ssize_t n;
	while ((n = read(p[0], b, sizeof b)) > 0) {
		h = fnv1a(h, b, (size_t)n);
		total += (uint64_t)n;
	}
	if (soff % 4096 == 0)
		say("pipe held %llu sum=%016llx", (unsigned long long)total, (unsigned long long)h);
	else
		say("pipe held the count: %s", (ssize_t)total == r ? "yes" : "NO");
	src_report(src);
}

static void case_eintr_pipe_partial(void) { eintr_pipe_partial(false, 4096); }
static void case_eintr_pipe_partial_restart(void) { eintr_pipe_partial(true, 4096); }
static void case_eintr_pipe_partial_misaligned(void) { eintr_pipe_partial(true, 100); }

/* A blocking socket write that moved bytes, then waits: the count. */
static void eintr_stream_partial(bool unix_, bool restart)
{
	int src = make_source("/dev/shm", "nb-xl-src", SRC_LEN);
	int a, b, g[2];
	if (pipe(g) != 0)
		die("pipe");
	if (unix_)
		unix_pair(&a, &b, 16 * K);
	else
		tcp_pair(&a, &b, 16 * K, 16 * K);
	int cl[] = { a, src, g[1] };
	struct peer p = reader(b, cl, 3, g[0], 0, 64 * K, 0, 0);
	close(b);
	close(g[0]);
	handle(SIGALRM, restart);
	arm_timer(150000, 0);
	struct dest d = SOCK(a, unix_ ? NB_KIND_UNIX : NB_KIND_TCP, 0);
	struct snap s;
	char sg[96];
	int err = 0;
	snap(&s);
	ssize_t r = one_write(&d, src, 0, 4 * M, W_WRITE, 0, 0, &err);
	if (xfer_mode)
		say("# r=%zd", r);
	/* how much a socket buffers is the kernel's accounting, which
	 * differs between copied and spliced pages: the class is compared */
	say("write 4M@0 -> %s sigs=%s", klass(r, err, 4 * M), sigs_since(&s, sg, sizeof sg));
	disarm_timer();
	if (write(g[1], "g", 1) != 1)
		die("go");
	close(a);
	close(g[1]);
	char line[64] = "";
	ssize_t n = read(p.res, line, sizeof line - 1);
	waitpid(p.pid, NULL, 0);
	unsigned long long total = 0;
	if (n > 0)
		line[n] = 0;
	sscanf(line, "%llu", &total);
	say("peer received the count: %s", r > 0 && total == (unsigned long long)r ? "yes" : "NO");
	src_report(src);
}

static void case_eintr_tcp_partial(void) { eintr_stream_partial(false, false); }
static void case_eintr_tcp_partial_restart(void) { eintr_stream_partial(false, true); }
static void case_eintr_unix_partial_restart(void) { eintr_stream_partial(true, true); }

/* ---- ENOSPC on a 1 MiB tmpfs; EFBIG and SIGXFSZ under RLIMIT_FSIZE ---- */

static void enospc(bool same)
{
	int src = same ? make_source(smalldir, "nb-xl-src", 300000)
		       : make_source("/dev/shm", "nb-xl-src", SRC_LEN);
	int dst = make_file(smalldir, "nb-xl-dst", 0);
	struct dest d = FILED(dst, 0);
	size_t n = same ? 300000 : 400000;
	for (int i = 0; i < 4; i++) {
		wcall("write", &d, src, 0, n, W_WRITE, 0, 0);
		say("dst position=%lld", (long long)lseek(dst, 0, SEEK_CUR));
	}
	off_t at = 100;
	wcall("pwrite at 100", &d, src, 0, 5000, W_PWRITE, 0, at);
	file_report(dst, "dst");
	src_report(src);
}

static void case_enospc_same_fs(void) { enospc(true); }
static void case_enospc_cross_fs(void) { enospc(false); }

static void fsize(const char *srcdir, enum disp how, rlim_t limit, bool positional, size_t n)
{
	int src = make_source(srcdir, "nb-xl-src", SRC_LEN);
	int dst = make_file("/dev/shm", "nb-xl-dst", 0);
	struct rlimit rl = { limit, limit }, core = { 0, 0 };
	if (setrlimit(RLIMIT_FSIZE, &rl) != 0 || setrlimit(RLIMIT_CORE, &core) != 0)
		die("setrlimit");
	if (how == D_HANDLER)
		handle(SIGXFSZ, true);
	else
		dispose(SIGXFSZ, how == D_IGN ? SIG_IGN : SIG_DFL);
	struct dest d = FILED(dst, 0);
	if (positional) {
		wcall("pwrite 5000 at limit-1000", &d, src, 0, 5000, W_PWRITE, 0,
		      (off_t)limit - 1000);
		wcall("pwrite 5000 at limit", &d, src, 0, 5000, W_PWRITE, 0, (off_t)limit);
	} else {
		for (int i = 0; i < 3; i++) {
			wcall("write", &d, src, 100 * i, n, W_WRITE, 0, 0);
			say("dst position=%lld", (long long)lseek(dst, 0, SEEK_CUR));
		}
	}
	file_report(dst, "dst");
	src_report(src);
}

static void case_efbig_same_fs(void) { fsize("/dev/shm", D_HANDLER, 100000, false, 65536); }
static void case_efbig_cross_fs(void) { fsize("/tmp", D_HANDLER, 100000, false, 65536); }
static void case_efbig_same_fs_dfl(void) { fsize("/dev/shm", D_DFL, 100000, false, 65536); }
static void case_efbig_cross_fs_dfl(void) { fsize("/tmp", D_DFL, 100000, false, 65536); }
static void case_efbig_cross_fs_ign(void) { fsize("/tmp", D_IGN, 100000, false, 65536); }
/* the limit on sendfile's internal 64 KiB chunk boundary */
static void case_efbig_cross_fs_boundary(void) { fsize("/tmp", D_HANDLER, 131072, false, 200000); }
static void case_efbig_pwrite(void) { fsize("/dev/shm", D_HANDLER, 100000, true, 5000); }

/* ---- a documented difference: zero copy ---- */

/* sendfile and splice put references to the source's page-cache pages
 * into the pipe or socket (sendfile(2), NOTES); write(2) copies. If the
 * file is rewritten or truncated after the write but before the reader
 * reads, the reader gets the file's bytes as of its read. Not
 * compared: 60-xfer.sh pins both outcomes. */
static void rewritten(enum dkind k, bool truncate_)
{
	int src = make_source("/dev/shm", "nb-xl-src", 16384);
	static unsigned char before[8192];
	if (pread(src, before, sizeof before, 0) != (ssize_t)sizeof before)
		die("pread");
	int a, b;
	if (k == K_TCP) {
		tcp_pair(&a, &b, 0, 0);
	} else if (k == K_UNIX) {
		unix_pair(&a, &b, 0);
	} else {
		int pp[2];
		if (pipe(pp) != 0)
			die("pipe");
		b = pp[0];
		a = pp[1];
	}
	struct dest d = { a, k == K_TCP ? NB_KIND_TCP : k == K_UNIX ? NB_KIND_UNIX : NB_KIND_PIPE,
			  0, k == K_PIPE ? NB_PATH_SPLICE : NB_PATH_SENDFILE };
	wcall("write 8192@0", &d, src, 0, 8192, W_WRITE, 0, 0);
	if (truncate_) {
		if (ftruncate(src, 100) != 0)
			die("ftruncate");
	} else {
		static unsigned char other[8192];
		memset(other, 0x5a, sizeof other);
		if (pwrite(src, other, sizeof other, 0) != (ssize_t)sizeof other)
			die("pwrite");
	}
	usleep(20000);
	static unsigned char got[8192];
	size_t n = 0;
	while (n < sizeof got) {
		ssize_t r = read(b, got + n, sizeof got - n);
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	say("%s: the reader got %s", truncate_ ? "source truncated" : "source rewritten",
	    n != sizeof got ? "a short read" :
	    memcmp(got, before, sizeof got) == 0 ? "the bytes as of the write" :
						   "the bytes as of its read");
}

static void case_rewritten_pipe(void) { rewritten(K_PIPE, false); }
static void case_rewritten_unix(void) { rewritten(K_UNIX, false); }
static void case_rewritten_tcp(void) { rewritten(K_TCP, false); }
static void case_truncated_pipe(void) { rewritten(K_PIPE, true); }

/* ---- what only the xfer side can show: never more than moved ---- */

static void check(bool ok, const char *what)
{
	say("%s %s", ok ? "ok" : "FAIL", what);
}

static void case_short_source(void)
{
	int src = make_source("/dev/shm", "nb-xl-src", 50000);
	struct nb_xfer_res res;
	int dst = make_file("/dev/shm", "nb-xl-dst", 0);
	ssize_t r = nb_xfer(dst, NB_KIND_FILE, 0, src, 60000, 10000, NB_PATH_COPY_FILE_RANGE, 0,
			    NULL, &res);
	check(r == NB_XFER_FALLBACK && res.why == NB_XFER_NO_BYTES &&
		      lseek(dst, 0, SEEK_CUR) == 0,
	      "file: no bytes at the offset -> fallback, nothing written");
	r = nb_xfer(dst, NB_KIND_FILE, 0, src, 40000, 20000, NB_PATH_COPY_FILE_RANGE, 0, NULL, &res);
	check(r == 10000 && lseek(dst, 0, SEEK_CUR) == 10000, "file: 10000 of 20000 there -> 10000");
	int a, b;
	unix_pair(&a, &b, 0);
	r = nb_xfer(a, NB_KIND_UNIX, 0, src, 45000, 20000, NB_PATH_SENDFILE, 0, NULL, &res);
	int q = -1;
	ioctl(b, FIONREAD, &q);
	check(r == 5000 && q == 5000, "socket: 5000 of 20000 there -> 5000 sent");
	r = nb_xfer(a, NB_KIND_UNIX, 0, src, 50000, 20000, NB_PATH_SENDFILE, 0, NULL, &res);
	check(r == NB_XFER_FALLBACK && res.why == NB_XFER_NO_BYTES, "socket: none there -> fallback");
	int p[2];
	if (pipe(p) != 0)
		die("pipe");
	r = nb_xfer(p[1], NB_KIND_PIPE, 0, src, 30000, 40000, NB_PATH_SPLICE, 0, NULL, &res);
	ioctl(p[0], FIONREAD, &q);
	check(r == 20000 && q == 20000, "blocking pipe: 20000 of 40000 there -> 20000");
	r = nb_xfer(p[1], NB_KIND_PIPE, 0, src, 50000, 40000, NB_PATH_SPLICE, 0, NULL, &res);
	check(r == NB_XFER_FALLBACK && res.why == NB_XFER_NO_BYTES, "blocking pipe: none -> fallback");
	check(lseek(src, 0, SEEK_CUR) == SRC_POS, "source position untouched");
}

/* Refusals that must happen before any system call. */
static void case_refusals(void)
{
	struct nb_xfer_res res;
	int src = make_source("/dev/shm", "nb-xl-src", 100000);
	int a, b;
	unix_pair(&a, &b, 0);
	off_t off = 0;
	errno = 77;
	ssize_t r = nb_xfer(a, NB_KIND_UNIX, 0, src, 0, 1000, NB_PATH_SENDFILE, 0, &off, &res);
	check(r == NB_XFER_FALLBACK && res.why == NB_XFER_REFUSED && res.calls == 0 && errno == 77,
	      "pwrite on a socket: refused, errno kept");
	/* MSG_MORE only decides when TCP pushes: served, all of it. */
	r = nb_xfer(a, NB_KIND_UNIX, 0, src, 0, 1000, NB_PATH_SENDFILE, MSG_MORE, NULL, &res);
	check(r == 1000, "MSG_MORE: served");
	char sink[1000];
	for (ssize_t got = 0, k; got < 1000 && (k = read(b, sink, sizeof sink - (size_t)got)) > 0;)
		got += k;
	r = nb_xfer(a, NB_KIND_UNIX, 0, src, 0, 1000, NB_PATH_SENDFILE, MSG_DONTWAIT, NULL, &res);
	check(r == NB_XFER_FALLBACK && res.why == NB_XFER_REFUSED,
	      "MSG_DONTWAIT on a blocking socket: refused");
	int p[2];
	if (pipe(p) != 0)
		die("pipe");
	r = nb_xfer(p[1], NB_KIND_PIPE, 0, src, 0, 4096, NB_PATH_SPLICE, 0, NULL, &res);
	check(r == NB_XFER_FALLBACK && res.why == NB_XFER_REFUSED,
	      "PIPE_BUF bytes into a blocking pipe: refused (atomic for write)");
	int q = -1;
	ioctl(p[0], FIONREAD, &q);
	int qa = -1;
	ioctl(b, FIONREAD, &qa);
	check(q == 0 && qa == 0, "nothing moved");
}

/* ------------------------------------------------------------------ */

struct tcase {
	const char *name;
	void (*fn)(void);
};

#define C(n) { #n, case_##n }
static const struct tcase cases[] = {
	C(tcp_block), C(unix_block), C(tcp_nonblock), C(unix_nonblock), C(pipe_block),
	C(pipe_nonblock), C(file_same_fs), C(file_cross_fs), C(file_pwrite),
	C(file_pwrite_cross_fs), C(file_append), C(tcp_reset_dfl), C(tcp_reset_ign),
	C(tcp_reset_handler), C(tcp_reset_nosignal), C(tcp_reset_blocked), C(tcp_fin_dfl),
	C(tcp_fin_handler), C(tcp_fin_nosignal), C(tcp_fin_big_handler), C(unix_gone_dfl),
	C(unix_gone_ign), C(unix_gone_nosignal), C(pipe_gone_dfl), C(pipe_gone_ign),
	C(pipe_gone_handler), C(pipe_gone_midway), C(eintr_tcp), C(eintr_tcp_restart),
	C(eintr_unix), C(eintr_unix_restart), C(eintr_pipe), C(eintr_pipe_restart),
	C(eintr_pipe_partial), C(eintr_pipe_partial_restart),
	C(eintr_pipe_partial_misaligned), C(eintr_tcp_partial), C(eintr_tcp_partial_restart),
	C(eintr_unix_partial_restart), C(enospc_same_fs), C(enospc_cross_fs), C(efbig_same_fs),
	C(efbig_cross_fs), C(efbig_same_fs_dfl), C(efbig_cross_fs_dfl), C(efbig_cross_fs_ign),
	C(efbig_cross_fs_boundary), C(efbig_pwrite), C(short_source), C(refusals),
	C(rewritten_pipe), C(rewritten_unix), C(rewritten_tcp), C(truncated_pipe),
};

int main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "list") == 0) {
		for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
			printf("%s\n", cases[i].name);
		return 0;
	}
	if (argc < 3 || (strcmp(argv[1], "plain") && strcmp(argv[1], "xfer"))) {
		fprintf(stderr, "usage: xferlog plain|xfer CASE [DIR] | xferlog list\n");
		return 2;
	}
	xfer_mode = strcmp(argv[1], "xfer") == 0;
	from_pipe = getenv("XFERLOG_FROM_PIPE") != NULL;
	/* XFERLOG_SEND_CHUNK: the library's NOBOUNCE_SEND_CHUNK (0: one call). */
	const char *sc = getenv("XFERLOG_SEND_CHUNK");
	if (sc != NULL)
		nb_xfer_set_send_chunk(strtoul(sc, NULL, 0), true);
	if (argc > 3)
		smalldir = argv[3];
	const struct tcase *tc = NULL;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		if (strcmp(cases[i].name, argv[2]) == 0)
			tc = &cases[i];
	if (!tc) {
		fprintf(stderr, "xferlog: no case %s\n", argv[2]);
		return 2;
	}
	mem = malloc(8 * M);
	int pp[2];
	if (!mem || pipe(pp) != 0)
		die("setup");
	say("case %s", tc->name);
	/* Peers orphaned by a case that died become our children. */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0)
		die("PR_SET_CHILD_SUBREAPER");
	pid_t pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		close(pp[0]);
		pidpipe = pp[1];
		alarm(100);
		tc->fn();
		_exit(0);
	}
	close(pp[1]);
	int st;
	if (waitpid(pid, &st, 0) != pid)
		die("waitpid");
	/* Stop every peer the case started, by PID. */
	pid_t peer;
	while (read(pp[0], &peer, sizeof peer) == sizeof peer) {
		/* ours only if orphaned (subreaper) and not yet reaped */
		if (waitpid(peer, NULL, WNOHANG) == 0) {
			kill(peer, SIGKILL);
			waitpid(peer, NULL, 0);
		}
	}
	if (WIFEXITED(st))
		say("exit %d", WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		say("killed by SIG%s", sigabbrev_np(WTERMSIG(st)) ? sigabbrev_np(WTERMSIG(st)) : "?");
	return 0;
}
