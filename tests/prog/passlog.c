/*
 * passlog.c - differential pass-through test.
 *
 * Runs a fixed, deterministic script of calls on regular files, pipes,
 * UNIX socketpairs and TCP sockets on 127.0.0.1, and prints one line per
 * call to stdout: the call, the arguments that matter (sizes, offsets,
 * flags - never addresses), the return value, the errno name when it
 * failed (or when a successful call changed errno), and for reads a
 * checksum of the bytes received. The log must be byte-identical with and
 * without libnobounce preloaded, in every mode: any difference is a call
 * whose result the library changed.
 *
 * Usage:
 *   passlog            the whole script (stdout is the log)
 *   passlog fds        the library's descriptors are invisible: scans of
 *                      0..1100 (fcntl F_GETFD, dup, write of 0 bytes), every
 *                      hooked call on the number the library hides its own
 *                      descriptor at, F_DUPFD/dup2/dup3 onto that number,
 *                      dup() up past it, the same with every higher number
 *                      taken, close_range(3, ~0U), and a copy loop
 *                      afterwards. Diagnostics that must differ (the
 *                      /proc/self/fd listing) go to stderr.
 *   passlog cat [N]    copies stdin to stdout in 64 KiB chunks, exits N
 *   passlog sleep      prints "ready", then sleeps up to 60 s
 *   passlog secure     prints AT_SECURE and whether libnobounce is mapped,
 *                      then runs a copy loop (memfd -> pipe) that an
 *                      active library would report
 *
 * Descriptor numbers are logged where a call creates one: the library
 * must not take any number the program would have got.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

/* The fortify entry points and the old signal names are declared by the
 * headers only under conditions this program does not meet; they are
 * hooked, so call them by name. */
ssize_t __read_chk(int fd, void *buf, size_t nbytes, size_t buflen);
ssize_t __pread_chk(int fd, void *buf, size_t nbytes, off_t off, size_t buflen);
ssize_t __pread64_chk(int fd, void *buf, size_t nbytes, off64_t off, size_t buflen);
ssize_t __recv_chk(int fd, void *buf, size_t len, size_t buflen, int flags);
ssize_t __recvfrom_chk(int fd, void *buf, size_t len, size_t buflen, int flags,
		       struct sockaddr *addr, socklen_t *alen);
int __open_2(const char *path, int flags);
int __openat_2(int dirfd, const char *path, int flags);
__sighandler_t bsd_signal(int sig, __sighandler_t h);
__sighandler_t __sysv_signal(int sig, __sighandler_t h);

/* A bad address and negative counts, hidden from the compiler (which
 * would otherwise refuse to build calls it can see are wrong). */
static void *volatile bad_ptr = (void *)1;
#define BAD ((void *)bad_ptr)
static int opaque(int v)
{
	volatile int x = v;
	return x;
}
#define K64 65536
#define M1 (1024 * 1024)
#define DATA_LEN (8 * M1)
#define RBUF_LEN (2 * M1)

static unsigned char *data;   /* DATA_LEN deterministic bytes */
static unsigned char *rbuf;   /* RBUF_LEN receive buffer */
static FILE *logf_;           /* where the log goes: stdout, a child's file */

/* ------------------------------------------------------------------ */
/* Logging                                                             */



static uint64_t sum_of(const void *p, size_t n)
{
	return fnv1a(FNV1A_INIT, p, n);
}

static uint64_t iov_sum(const struct iovec *iov, int cnt, size_t n)
{
	uint64_t h = FNV1A_INIT;
	for (int i = 0; i < cnt && n > 0; i++) {
		size_t take = iov[i].iov_len < n ? iov[i].iov_len : n;
		h = fnv1a(h, iov[i].iov_base, take);
		n -= take;
	}
	return h;
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfprintf(logf_, fmt, ap);
	va_end(ap);
	fputc('\n', logf_);
}

/* One line: "<what> = <r>[ ERRNO][ (errno set to E)][ sum=<checksum>]". */
static void result(long r, int e, int has_sum, uint64_t sum, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static void result(long r, int e, int has_sum, uint64_t sum, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfprintf(logf_, fmt, ap);
	va_end(ap);
	fprintf(logf_, " = %ld", r);
	if (r < 0)
		fprintf(logf_, " %s", errno_name(e));
	else if (e != 0)
		fprintf(logf_, " (errno set to %s)", errno_name(e));
	if (has_sum && r > 0)
		fprintf(logf_, " sum=%016llx", (unsigned long long)sum);
	fputc('\n', logf_);
}

/* A call whose result is an integer. errno is cleared first so that a
 * successful call that changes errno shows up too. */
#define CALL(expr, ...)                                                  \
	({                                                               \
		errno = 0;                                               \
		long r_ = (long)(expr);                                  \
		int e_ = errno;                                          \
		result(r_, e_, 0, 0, __VA_ARGS__);                       \
		r_;                                                      \
	})

/* A read into buf: also logs the checksum of the bytes it returned. */
#define CALLR(buf, expr, ...)                                                      \
	({                                                                         \
		errno = 0;                                                         \
		long r_ = (long)(expr);                                            \
		int e_ = errno;                                                    \
		result(r_, e_, 1, r_ > 0 ? sum_of((buf), (size_t)r_) : 0, __VA_ARGS__); \
		r_;                                                                \
	})

/* A vectored read: checksum over the iovecs up to the count returned. */
#define CALLV(iov, cnt, expr, ...)                                                    \
	({                                                                            \
		errno = 0;                                                            \
		long r_ = (long)(expr);                                               \
		int e_ = errno;                                                       \
		result(r_, e_, 1, r_ > 0 ? iov_sum((iov), (cnt), (size_t)r_) : 0,      \
		       __VA_ARGS__);                                                  \
		r_;                                                                   \
	})

static void die(const char *what)
{
	fprintf(stderr, "passlog: setup failed: %s: %s\n", what, strerror(errno));
	fflush(logf_);
	exit(99);
}

static void fill_data(void)
{
	data = malloc(DATA_LEN);
	rbuf = malloc(RBUF_LEN);
	if (data == NULL || rbuf == NULL)
		die("malloc");
	uint64_t x = 0x9e3779b97f4a7c15ULL;
	for (size_t i = 0; i < DATA_LEN; i += 8) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		memcpy(data + i, &x, 8);
	}
}

static void show_stat(int fd, const char *name)
{
	struct stat st;
	if (fstat(fd, &st) != 0) {
		say("fstat(%s) failed: %s", name, errno_name(errno));
		return;
	}
	say("fstat(%s): type=%s mode=%04o size=%lld", name,
	    S_ISREG(st.st_mode) ? "file" : S_ISFIFO(st.st_mode) ? "fifo"
					 : S_ISSOCK(st.st_mode) ? "socket" : "other",
	    (unsigned)(st.st_mode & 07777), (long long)st.st_size);
}

/* The file's whole content, for verifying what a loop wrote. */
static void show_file_sum(const char *name, uint64_t expect, size_t expect_len)
{
	int fd = open(name, O_RDONLY);
	if (fd < 0)
		die(name);
	uint64_t h = FNV1A_INIT;
	size_t total = 0;
	ssize_t r;
	while ((r = read(fd, rbuf, RBUF_LEN)) > 0) {
		h = fnv1a(h, rbuf, (size_t)r);
		total += (size_t)r;
	}
	close(fd);
	if (expect_len == 0)
		say("content of %s: %zu bytes sum=%016llx", name, total, (unsigned long long)h);
	else
		say("content of %s: %zu bytes sum=%016llx (%s)", name, total, (unsigned long long)h,
		    h == expect && total == expect_len ? "as expected" : "WRONG");
}

/* ------------------------------------------------------------------ */
/* Helper threads: drain a descriptor, or feed one                     */

struct drain {
	pthread_t t;
	int fd;
	int use_recv;
	unsigned long long total;
	uint64_t sum;
	int err;
};

static void *drain_main(void *arg)
{
	struct drain *d = arg;
	unsigned char *b = malloc(K64);
	d->sum = FNV1A_INIT;
	for (;;) {
		ssize_t r = d->use_recv ? recv(d->fd, b, K64, 0) : read(d->fd, b, K64);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			d->err = r < 0 ? errno : 0;
			break;
		}
		d->sum = fnv1a(d->sum, b, (size_t)r);
		d->total += (unsigned long long)r;
	}
	free(b);
	return NULL;
}

static void drain_start(struct drain *d, int fd, int use_recv)
{
	memset(d, 0, sizeof *d);
	d->fd = fd;
	d->use_recv = use_recv;
	if (pthread_create(&d->t, NULL, drain_main, d) != 0)
		die("pthread_create");
}

/* Joins and logs what the reader received against what was sent. */
static void drain_finish(struct drain *d, const char *what, uint64_t expect, size_t expect_len)
{
	pthread_join(d->t, NULL);
	say("%s: reader got %llu bytes sum=%016llx end=%s (%s)", what, d->total,
	    (unsigned long long)d->sum, d->err ? errno_name(d->err) : "EOF",
	    d->total == expect_len && d->sum == expect ? "as sent" : "WRONG");
}

struct feed {
	pthread_t t;
	int fd;
	int use_send;
	const unsigned char *p;
	size_t len, chunk;
	int close_after; /* 1 close, 2 shutdown(SHUT_WR) */
};

static void *feed_main(void *arg)
{
	struct feed *f = arg;
	size_t done = 0;
	while (done < f->len) {
		size_t n = f->len - done < f->chunk ? f->len - done : f->chunk;
		ssize_t w = f->use_send ? send(f->fd, f->p + done, n, MSG_NOSIGNAL)
					: write(f->fd, f->p + done, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		done += (size_t)w;
	}
	if (f->close_after == 1)
		close(f->fd);
	else if (f->close_after == 2)
		shutdown(f->fd, SHUT_WR);
	return NULL;
}

static void feed_start(struct feed *f, int fd, int use_send, const void *p, size_t len,
		       size_t chunk, int close_after)
{
	memset(f, 0, sizeof *f);
	f->fd = fd;
	f->use_send = use_send;
	f->p = p;
	f->len = len;
	f->chunk = chunk;
	f->close_after = close_after;
	if (pthread_create(&f->t, NULL, feed_main, f) != 0)
		die("pthread_create");
}

/* ------------------------------------------------------------------ */
/* Descriptor scans                                                    */

#define SCAN_MAX 1100

static void scan(const char *when)
{
	char line[8192];
	size_t n = 0;
	line[0] = '\0';
	for (int fd = 0; fd <= SCAN_MAX; fd++) {
		errno = 0;
		int r = fcntl(fd, F_GETFD);
		if (r >= 0)
			n += (size_t)snprintf(line + n, sizeof line - n, " %d%s", fd,
					      (r & FD_CLOEXEC) ? "(cloexec)" : "");
		else if (errno != EBADF)
			n += (size_t)snprintf(line + n, sizeof line - n, " %d:%s", fd, errno_name(errno));
		if (n >= sizeof line - 32)
			break;
	}
	say("scan %s: fcntl(F_GETFD) open in 0..%d:%s", when, SCAN_MAX, line);

	n = 0;
	line[0] = '\0';
	for (int fd = 0; fd <= SCAN_MAX; fd++) {
		errno = 0;
		int d = dup(fd);
		if (d >= 0) {
			n += (size_t)snprintf(line + n, sizeof line - n, " %d->%d", fd, d);
			close(d);
		} else if (errno != EBADF) {
			n += (size_t)snprintf(line + n, sizeof line - n, " %d:%s", fd, errno_name(errno));
		}
		if (n >= sizeof line - 32)
			break;
	}
	say("scan %s: dup() succeeds in 0..%d:%s", when, SCAN_MAX, line);

	n = 0;
	line[0] = '\0';
	for (int fd = 0; fd <= SCAN_MAX; fd++) {
		errno = 0;
		ssize_t r = write(fd, data, 0);
		if (r >= 0)
			n += (size_t)snprintf(line + n, sizeof line - n, " %d", fd);
		else if (errno != EBADF)
			n += (size_t)snprintf(line + n, sizeof line - n, " %d:%s", fd, errno_name(errno));
		if (n >= sizeof line - 32)
			break;
	}
	say("scan %s: write(fd, buf, 0) accepted in 0..%d:%s", when, SCAN_MAX, line);
}

/* /proc/self/fd: what is really open, library descriptors included.
 * Differs between runs by design; goes to stderr. */
static void procfd(const char *when)
{
	DIR *d = opendir("/proc/self/fd");
	if (d == NULL)
		return;
	int self = dirfd(d);
	char line[4096];
	size_t n = 0;
	line[0] = '\0';
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.' || atoi(e->d_name) == self)
			continue;
		if (n < sizeof line - 16)
			n += (size_t)snprintf(line + n, sizeof line - n, " %s", e->d_name);
	}
	closedir(d);
	fprintf(stderr, "passlog: procfd %s:%s\n", when, line);
}

/* The number libnobounce hides its private descriptor at (ownfd.c):
 * min(RLIMIT_NOFILE, 1024) - 24. Without the library it is just an
 * unopened number, and every call must treat it as one. */
static int hidden_number(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
		return 1000;
	rlim_t lim = rl.rlim_cur < 1024 ? rl.rlim_cur : 1024;
	return lim > 64 ? (int)(lim - 24) : 3;
}

/* ------------------------------------------------------------------ */
/* Every hooked call on a descriptor number that is not open           */

static void badfd_all(int fd, const char *label)
{
	say("# every hooked call on %s", label);
	char buf[64];
	struct iovec riov = { buf, 0 }, wiov = { data, 16 };
	struct msghdr rmsg = { .msg_iov = &riov, .msg_iovlen = 1 };
	struct msghdr wmsg = { .msg_iov = &wiov, .msg_iovlen = 1 };
	struct sockaddr_storage ss;
	socklen_t alen = sizeof ss;
	const char *msg = "passlog: this write must fail with EBADF\n";
	size_t mlen = strlen(msg);

	/* Reads ask for 0 bytes: a closed descriptor fails before the count
	 * matters, and nothing can block if the number names a terminal. */
	CALL(read(fd, buf, 0), "read(%s, 0)", label);
	CALL(write(fd, msg, mlen), "write(%s, %zu)", label, mlen);
	CALL(pread(fd, buf, 0, 0), "pread(%s, 0, 0)", label);
	CALL(pwrite(fd, msg, mlen, 0), "pwrite(%s, %zu, 0)", label, mlen);
	CALL(pread64(fd, buf, 0, 0), "pread64(%s, 0, 0)", label);
	CALL(pwrite64(fd, msg, mlen, 0), "pwrite64(%s, %zu, 0)", label, mlen);
	CALL(readv(fd, &riov, 1), "readv(%s, 1 iov of 0)", label);
	CALL(writev(fd, &wiov, 1), "writev(%s, 1 iov of 16)", label);
	CALL(preadv(fd, &riov, 1, 0), "preadv(%s, 1 iov of 0, 0)", label);
	CALL(pwritev(fd, &wiov, 1, 0), "pwritev(%s, 1 iov of 16, 0)", label);
	CALL(preadv2(fd, &riov, 1, -1, 0), "preadv2(%s, 1 iov of 0, -1, 0)", label);
	CALL(pwritev2(fd, &wiov, 1, -1, 0), "pwritev2(%s, 1 iov of 16, -1, 0)", label);
	CALL(preadv64(fd, &riov, 1, 0), "preadv64(%s, 1 iov of 0, 0)", label);
	CALL(pwritev64(fd, &wiov, 1, 0), "pwritev64(%s, 1 iov of 16, 0)", label);
	CALL(recv(fd, buf, 0, MSG_DONTWAIT), "recv(%s, 0, DONTWAIT)", label);
	CALL(recvfrom(fd, buf, 0, MSG_DONTWAIT, (struct sockaddr *)&ss, &alen),
	     "recvfrom(%s, 0, DONTWAIT, addr)", label);
	CALL(recvmsg(fd, &rmsg, MSG_DONTWAIT), "recvmsg(%s, 1 iov of 0, DONTWAIT)", label);
	CALL(send(fd, data, 16, MSG_DONTWAIT | MSG_NOSIGNAL), "send(%s, 16)", label);
	CALL(sendto(fd, data, 16, MSG_DONTWAIT | MSG_NOSIGNAL, NULL, 0), "sendto(%s, 16)", label);
	CALL(sendmsg(fd, &wmsg, MSG_DONTWAIT | MSG_NOSIGNAL), "sendmsg(%s, 1 iov of 16)", label);
	CALL(__read_chk(fd, buf, 0, sizeof buf), "__read_chk(%s, 0)", label);
	CALL(__pread_chk(fd, buf, 0, 0, sizeof buf), "__pread_chk(%s, 0, 0)", label);
	CALL(__pread64_chk(fd, buf, 0, 0, sizeof buf), "__pread64_chk(%s, 0, 0)", label);
	CALL(__recv_chk(fd, buf, 0, sizeof buf, MSG_DONTWAIT), "__recv_chk(%s, 0)", label);
	alen = sizeof ss;
	CALL(__recvfrom_chk(fd, buf, 0, sizeof buf, MSG_DONTWAIT, (struct sockaddr *)&ss, &alen),
	     "__recvfrom_chk(%s, 0)", label);
	CALL(fcntl(fd, F_GETFD), "fcntl(%s, F_GETFD)", label);
	CALL(fcntl(fd, F_GETFL), "fcntl(%s, F_GETFL)", label);
	CALL(fcntl(fd, F_SETFL, O_NONBLOCK), "fcntl(%s, F_SETFL, NONBLOCK)", label);
	CALL(fcntl(fd, F_SETFD, FD_CLOEXEC), "fcntl(%s, F_SETFD, CLOEXEC)", label);
	CALL(fcntl64(fd, F_GETFD), "fcntl64(%s, F_GETFD)", label);
	int d = CALL(fcntl(fd, F_DUPFD, 150), "fcntl(%s, F_DUPFD, 150)", label);
	if (d >= 0)
		CALL(close(d), "  cleanup close(%d)", d);
	d = CALL(fcntl(fd, F_DUPFD_CLOEXEC, 150), "fcntl(%s, F_DUPFD_CLOEXEC, 150)", label);
	if (d >= 0)
		CALL(close(d), "  cleanup close(%d)", d);
	d = CALL(dup(fd), "dup(%s)", label);
	if (d >= 0)
		CALL(close(d), "  cleanup close(%d)", d);
	d = CALL(dup2(fd, 150), "dup2(%s, 150)", label);
	if (d >= 0)
		CALL(close(d), "  cleanup close(%d)", d);
	d = CALL(dup3(fd, 151, 0), "dup3(%s, 151, 0)", label);
	if (d >= 0)
		CALL(close(d), "  cleanup close(%d)", d);
	d = CALL(dup3(fd, 151, O_CLOEXEC), "dup3(%s, 151, CLOEXEC)", label);
	if (d >= 0)
		CALL(close(d), "  cleanup close(%d)", d);
	CALL(dup3(fd, fd, 0), "dup3(%s, same, 0)", label);
	CALL(dup2(fd, fd), "dup2(%s, same)", label);
	alen = sizeof ss;
	d = CALL(accept(fd, (struct sockaddr *)&ss, &alen), "accept(%s)", label);
	if (d >= 0)
		CALL(close(d), "  cleanup close(%d)", d);
	d = CALL(accept4(fd, NULL, NULL, SOCK_CLOEXEC), "accept4(%s, CLOEXEC)", label);
	if (d >= 0)
		CALL(close(d), "  cleanup close(%d)", d);
	d = CALL(openat(fd, "passlog-no-such-file", O_RDONLY), "openat(%s, relative, RDONLY)",
		 label);
	if (d >= 0)
		CALL(close(d), "  cleanup close(%d)", d);
	d = CALL(__openat_2(fd, "passlog-no-such-file", O_RDONLY),
		 "__openat_2(%s, relative, RDONLY)", label);
	if (d >= 0)
		CALL(close(d), "  cleanup close(%d)", d);
	CALL(close(fd), "close(%s)", label);
	CALL(close(fd), "close(%s) again", label);
}

/* ------------------------------------------------------------------ */
/* Sections of the script                                              */

static volatile sig_atomic_t usr_hits, alarm_hits;

static void on_usr(int sig)
{
	(void)sig;
	usr_hits++;
}

static void on_alarm(int sig)
{
	(void)sig;
	alarm_hits++;
}

static const char *hname(__sighandler_t h)
{
	if (h == SIG_DFL)
		return "SIG_DFL";
	if (h == SIG_IGN)
		return "SIG_IGN";
	if (h == SIG_ERR)
		return "SIG_ERR";
	if (h == on_usr)
		return "on_usr";
	if (h == on_alarm)
		return "on_alarm";
	return "other";
}

#define SIGCALL(expr, ...)                                                     \
	do {                                                                   \
		errno = 0;                                                     \
		__sighandler_t h_ = (expr);                                    \
		int e_ = errno;                                                \
		fprintf(logf_, __VA_ARGS__);                                   \
		fprintf(logf_, " = %s%s%s\n", hname(h_), h_ == SIG_ERR ? " " : "", \
			h_ == SIG_ERR ? errno_name(e_) : "");                          \
	} while (0)

static void sec_signals(void)
{
	say("# signal dispositions");
	struct sigaction sa, old;
	memset(&old, 0, sizeof old);
	CALL(sigaction(SIGPIPE, NULL, &old), "sigaction(SIGPIPE, NULL, &old)");
	say("  old SIGPIPE handler %s", hname(old.sa_handler));
	SIGCALL(signal(SIGUSR1, on_usr), "signal(SIGUSR1, on_usr)");
	SIGCALL(signal(SIGUSR1, SIG_IGN), "signal(SIGUSR1, SIG_IGN)");
	SIGCALL(signal(SIGKILL, SIG_IGN), "signal(SIGKILL, SIG_IGN)");
	SIGCALL(signal(0, SIG_IGN), "signal(0, SIG_IGN)");
	SIGCALL(bsd_signal(SIGUSR2, on_usr), "bsd_signal(SIGUSR2, on_usr)");
	SIGCALL(sysv_signal(SIGUSR1, SIG_DFL), "sysv_signal(SIGUSR1, SIG_DFL)");
	SIGCALL(__sysv_signal(SIGUSR1, on_usr), "__sysv_signal(SIGUSR1, on_usr)");
	SIGCALL(__sysv_signal(SIGSTOP, on_usr), "__sysv_signal(SIGSTOP, on_usr)");
	CALL(raise(SIGUSR2), "raise(SIGUSR2)");
	say("  SIGUSR2 handler ran %d time(s)", (int)usr_hits);
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_usr;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	CALL(sigaction(SIGUSR1, &sa, &old), "sigaction(SIGUSR1, on_usr|RESTART, &old)");
	say("  old SIGUSR1 handler %s", hname(old.sa_handler));
	CALL(sigaction(SIGUSR1, NULL, &old), "sigaction(SIGUSR1, NULL, &old)");
	say("  SIGUSR1 handler %s flags RESTART=%d", hname(old.sa_handler),
	    (old.sa_flags & SA_RESTART) != 0);
	CALL(sigaction(SIGKILL, &sa, NULL), "sigaction(SIGKILL, handler)");
	CALL(sigaction(0, &sa, NULL), "sigaction(0, handler)");
	CALL(sigaction(_NSIG + 1, NULL, &old), "sigaction(_NSIG+1, NULL, &old)");
	CALL(raise(SIGUSR1), "raise(SIGUSR1)");
	say("  handler ran %d time(s) in total", (int)usr_hits);
	SIGCALL(signal(SIGUSR1, SIG_DFL), "signal(SIGUSR1, SIG_DFL)");
	SIGCALL(signal(SIGUSR2, SIG_DFL), "signal(SIGUSR2, SIG_DFL)");
}

static const size_t sizes[] = { 0, 1, 511, 512, 4096, 65536, 1048576 };
#define NSIZES (sizeof sizes / sizeof sizes[0])

static void sec_files(void)
{
	say("# regular files: sizes, EOF, offsets");
	int fd = CALL(open("f.dat", O_RDWR | O_CREAT | O_TRUNC, 0640),
		      "open(f.dat, RDWR|CREAT|TRUNC, 0640)");
	if (fd < 0)
		die("open f.dat");
	show_stat(fd, "f.dat");
	size_t total = 0;
	for (size_t i = 0; i < NSIZES; i++) {
		CALL(write(fd, data + total, sizes[i]), "write(file, %zu)", sizes[i]);
		total += sizes[i];
	}
	CALL(lseek(fd, 0, SEEK_CUR), "lseek(file, 0, CUR)");
	show_stat(fd, "f.dat");
	CALL(lseek(fd, 0, SEEK_SET), "lseek(file, 0, SET)");
	size_t pos = 0;
	for (size_t i = 0; i < NSIZES; i++) {
		long r = CALLR(rbuf, read(fd, rbuf, sizes[i]), "read(file, %zu)", sizes[i]);
		if (r > 0 && memcmp(rbuf, data + pos, (size_t)r) != 0)
			say("  read back differs from what was written");
		pos += r > 0 ? (size_t)r : 0;
	}
	CALLR(rbuf, read(fd, rbuf, 4096), "read(file, 4096) at EOF");
	CALLR(rbuf, read(fd, rbuf, 0), "read(file, 0) at EOF");
	CALL(lseek(fd, -100, SEEK_END), "lseek(file, -100, END)");
	CALLR(rbuf, read(fd, rbuf, 4096), "read(file, 4096) 100 bytes before EOF");
	CALLR(rbuf, read(fd, rbuf, 4096), "read(file, 4096) at EOF");

	say("# pread / pwrite leave the offset alone");
	CALL(lseek(fd, 1000, SEEK_SET), "lseek(file, 1000, SET)");
	CALLR(rbuf, pread(fd, rbuf, 4096, 0), "pread(file, 4096, 0)");
	CALLR(rbuf, pread(fd, rbuf, 65536, 12345), "pread(file, 65536, 12345)");
	CALLR(rbuf, pread(fd, rbuf, M1, 3), "pread(file, 1M, 3)");
	CALLR(rbuf, pread(fd, rbuf, 100, (off_t)total - 10), "pread(file, 100, size-10)");
	CALLR(rbuf, pread(fd, rbuf, 100, (off_t)total + 100), "pread(file, 100, size+100)");
	CALLR(rbuf, pread(fd, rbuf, 100, -1), "pread(file, 100, -1)");
	CALLR(rbuf, pread64(fd, rbuf, 777, 7), "pread64(file, 777, 7)");
	CALL(pwrite(fd, data + 777, 4096, 8192), "pwrite(file, 4096, 8192)");
	CALL(pwrite(fd, data, 10, -5), "pwrite(file, 10, -5)");
	CALL(pwrite64(fd, data + 99, 600, 20000), "pwrite64(file, 600, 20000)");
	CALLR(rbuf, pread(fd, rbuf, 4096, 8192), "pread(file, 4096, 8192) after pwrite");
	say("  pwritten bytes read back: %s",
	    memcmp(rbuf, data + 777, 4096) == 0 ? "same" : "DIFFERENT");
	CALL(lseek(fd, 0, SEEK_CUR), "lseek(file, 0, CUR) after pread/pwrite");
	CALLR(rbuf, __read_chk(fd, rbuf, 512, RBUF_LEN), "__read_chk(file, 512, buflen)");
	CALLR(rbuf, __pread_chk(fd, rbuf, 4096, 100, RBUF_LEN), "__pread_chk(file, 4096, 100)");
	CALLR(rbuf, __pread64_chk(fd, rbuf, 65536, 200, RBUF_LEN),
	      "__pread64_chk(file, 65536, 200)");
	CALL(lseek(fd, 0, SEEK_CUR), "lseek(file, 0, CUR)");

	say("# readv / writev / preadv / pwritev");
	struct iovec iv[4] = {
		{ rbuf, 100 }, { rbuf + 1000, 0 }, { rbuf + 2000, 4000 }, { rbuf + 10000, 65536 },
	};
	CALL(lseek(fd, 0, SEEK_SET), "lseek(file, 0, SET)");
	CALLV(iv, 4, readv(fd, iv, 4), "readv(file, 100+0+4000+65536)");
	CALLV(iv, 4, readv(fd, iv, 0), "readv(file, iovcnt 0)");
	CALL(lseek(fd, 0, SEEK_CUR), "lseek(file, 0, CUR)");
	CALLV(iv, 4, readv(fd, iv, opaque(-1)), "readv(file, iovcnt -1)");
	static struct iovec many[IOV_MAX + 1];
	for (int i = 0; i <= IOV_MAX; i++)
		many[i] = (struct iovec){ rbuf + i, 1 };
	CALLV(many, IOV_MAX, readv(fd, many, IOV_MAX), "readv(file, IOV_MAX iovecs of 1)");
	CALLV(many, IOV_MAX + 1, readv(fd, many, IOV_MAX + 1), "readv(file, IOV_MAX+1)");
	CALL(writev(fd, many, IOV_MAX + 1), "writev(file, IOV_MAX+1)");
	CALL(writev(fd, many, opaque(-1)), "writev(file, iovcnt -1)");
	CALL(writev(fd, many, 0), "writev(file, iovcnt 0)");
	CALLV(many, IOV_MAX + 1, preadv(fd, many, IOV_MAX + 1, 0), "preadv(file, IOV_MAX+1, 0)");
	CALL(pwritev(fd, many, opaque(-3), 0), "pwritev(file, iovcnt -3, 0)");
	struct iovec wv[3] = { { data + 5, 300 }, { data + 50000, 0 }, { data + 70000, 9000 } };
	CALL(lseek(fd, 50000, SEEK_SET), "lseek(file, 50000, SET)");
	CALL(writev(fd, wv, 3), "writev(file, 300+0+9000)");
	CALL(lseek(fd, 0, SEEK_CUR), "lseek(file, 0, CUR)");
	CALLR(rbuf, pread(fd, rbuf, 9300, 50000), "pread(file, 9300, 50000) after writev");
	say("  writev'd bytes: %s", iov_sum(wv, 3, 9300) == sum_of(rbuf, 9300) ? "same"
										 : "DIFFERENT");
	CALLV(iv, 4, preadv(fd, iv, 4, 5000), "preadv(file, 100+0+4000+65536, 5000)");
	CALLV(iv, 3, preadv64(fd, iv, 3, 1119000), "preadv64(file, 100+0+4000, 1119000)");
	CALL(pwritev(fd, wv, 3, 200000), "pwritev(file, 300+0+9000, 200000)");
	CALL(pwritev64(fd, wv, 1, 300000), "pwritev64(file, 300, 300000)");
	CALL(lseek(fd, 0, SEEK_CUR), "lseek(file, 0, CUR) after preadv/pwritev");
	CALLV(iv, 4, preadv2(fd, iv, 4, -1, 0), "preadv2(file, 4 iovs, -1, 0)");
	CALL(lseek(fd, 0, SEEK_CUR), "lseek(file, 0, CUR) after preadv2 at -1");
	CALLV(iv, 4, preadv2(fd, iv, 4, 10, 0), "preadv2(file, 4 iovs, 10, 0)");
	CALLV(iv, 4, preadv2(fd, iv, 4, 10, 0x40000000), "preadv2(file, 4 iovs, 10, bad flags)");
	CALLV(iv, 4, preadv2(fd, iv, 4, 10, RWF_HIPRI), "preadv2(file, 4 iovs, 10, HIPRI)");
	CALL(pwritev2(fd, wv, 3, -1, 0), "pwritev2(file, 300+0+9000, -1, 0)");
	CALL(pwritev2(fd, wv, 3, 400000, RWF_DSYNC), "pwritev2(file, 300+0+9000, 400000, DSYNC)");
	CALL(pwritev2(fd, wv, 3, 10, 0x40000000), "pwritev2(file, 3 iovs, 10, bad flags)");
	CALL(lseek(fd, 0, SEEK_CUR), "lseek(file, 0, CUR)");
	show_stat(fd, "f.dat");

	say("# EFAULT and partial transfers at unmapped memory");
	CALL(lseek(fd, 0, SEEK_SET), "lseek(file, 0, SET)");
	CALL(read(fd, BAD, 10), "read(file, (void*)1, 10)");
	CALL(read(fd, BAD, 0), "read(file, (void*)1, 0)");
	CALL(read(fd, BAD, 4096), "read(file, (void*)1, 4096)");
	CALL(write(fd, BAD, 10), "write(file, (void*)1, 10)");
	CALL(write(fd, BAD, 0), "write(file, (void*)1, 0)");
	CALL(pread(fd, BAD, 600, 0), "pread(file, (void*)1, 600, 0)");
	CALL(pwrite(fd, BAD, 600, 0), "pwrite(file, (void*)1, 600, 0)");
	CALL(readv(fd, BAD, 2), "readv(file, iov=(void*)1, 2)");
	CALL(writev(fd, BAD, 2), "writev(file, iov=(void*)1, 2)");
	CALL(preadv(fd, BAD, 2, 0), "preadv(file, iov=(void*)1, 2, 0)");
	CALL(pwritev(fd, BAD, 2, 0), "pwritev(file, iov=(void*)1, 2, 0)");
	struct iovec badv[2] = { { BAD, 700 }, { rbuf, 700 } };
	CALL(readv(fd, badv, 2), "readv(file, [(void*)1 x700, buf x700])");
	CALL(writev(fd, badv, 2), "writev(file, [(void*)1 x700, buf x700])");
	CALL(lseek(fd, 0, SEEK_CUR), "lseek(file, 0, CUR)");
	struct iovec halfbad[2] = { { rbuf, 4096 }, { BAD, 4096 } };
	CALLV(halfbad, 1, readv(fd, halfbad, 2), "readv(file, [buf x4096, (void*)1 x4096])");
	CALL(lseek(fd, 8192, SEEK_SET), "lseek(file, 8192, SET)");
	struct iovec halfbadw[2] = { { data + 4096, 4096 }, { BAD, 4096 } };
	CALL(writev(fd, halfbadw, 2), "writev(file, [buf x4096, (void*)1 x4096])");
	CALLR(rbuf, pread(fd, rbuf, 4096, 8192), "pread(file, 4096, 8192)");
	/* A buffer whose second page is inaccessible: the kernel transfers
	 * the first page and stops there. */
	unsigned char *g = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
				-1, 0);
	if (g == MAP_FAILED || mprotect(g + 4096, 4096, PROT_NONE) != 0)
		die("mmap guard");
	CALLR(g, pread(fd, g, 8192, 0), "pread(file, guard-page buffer, 8192, 0)");
	CALL(lseek(fd, 0, SEEK_SET), "lseek(file, 0, SET)");
	CALLR(g, read(fd, g, 8192), "read(file, guard-page buffer, 8192)");
	CALL(lseek(fd, 0, SEEK_CUR), "lseek(file, 0, CUR)");
	memcpy(g, data + 12345, 4096);
	CALL(pwrite(fd, g, 8192, 600000), "pwrite(file, guard-page buffer, 8192, 600000)");
	CALLR(rbuf, pread(fd, rbuf, 8192, 600000), "pread(file, 8192, 600000)");
	munmap(g, 8192);
	CALL(close(fd), "close(file)");
	CALL(close(fd), "close(file) again");
	show_file_sum("f.dat", 0, 0);
}

static void sec_open(void)
{
	say("# open variants and modes");
	int fd = CALL(open("m1.dat", O_WRONLY | O_CREAT | O_EXCL, 0604),
		      "open(m1.dat, WRONLY|CREAT|EXCL, 0604)");
	show_stat(fd, "m1.dat");
	CALL(open("m1.dat", O_WRONLY | O_CREAT | O_EXCL, 0604),
	     "open(m1.dat, WRONLY|CREAT|EXCL, 0604) again");
	CALL(close(fd), "close(m1.dat)");
	CALL(open("missing.dat", O_RDONLY), "open(missing.dat, RDONLY)");
	CALL(open("f.dat", O_RDONLY | O_DIRECTORY), "open(f.dat, RDONLY|DIRECTORY)");
	CALL(open(BAD, O_RDONLY), "open((void*)1, RDONLY)");
	fd = CALL(open64("m2.dat", O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0751),
		  "open64(m2.dat, RDWR|CREAT|TRUNC|CLOEXEC, 0751)");
	show_stat(fd, "m2.dat");
	CALL(fcntl(fd, F_GETFD), "fcntl(m2.dat, F_GETFD)");
	CALL(close(fd), "close(m2.dat)");
	fd = CALL(creat("m3.dat", 0755), "creat(m3.dat, 0755)");
	show_stat(fd, "m3.dat");
	CALL(fcntl(fd, F_GETFL) & O_ACCMODE, "fcntl(m3.dat, F_GETFL) & O_ACCMODE");
	CALL(close(fd), "close(m3.dat)");
	fd = CALL(creat64("m4.dat", 0600), "creat64(m4.dat, 0600)");
	show_stat(fd, "m4.dat");
	CALL(close(fd), "close(m4.dat)");
	CALL(creat("nodir/m5.dat", 0600), "creat(nodir/m5.dat, 0600)");
	CALL(mkdir("sub", 0755), "mkdir(sub, 0755)");
	int dfd = CALL(open("sub", O_RDONLY | O_DIRECTORY), "open(sub, RDONLY|DIRECTORY)");
	fd = CALL(openat(dfd, "x.dat", O_WRONLY | O_CREAT | O_TRUNC, 0640),
		  "openat(sub, x.dat, WRONLY|CREAT|TRUNC, 0640)");
	show_stat(fd, "sub/x.dat");
	CALL(write(fd, data, 3000), "write(sub/x.dat, 3000)");
	CALL(close(fd), "close(sub/x.dat)");
	fd = CALL(openat64(dfd, "x.dat", O_RDONLY), "openat64(sub, x.dat, RDONLY)");
	CALLR(rbuf, read(fd, rbuf, 4096), "read(sub/x.dat, 4096)");
	CALL(close(fd), "close(sub/x.dat)");
	fd = CALL(__openat_2(dfd, "x.dat", O_RDONLY), "__openat_2(sub, x.dat, RDONLY)");
	CALL(close(fd), "close(sub/x.dat)");
	fd = CALL(openat(AT_FDCWD, "sub/x.dat", O_RDONLY), "openat(AT_FDCWD, sub/x.dat, RDONLY)");
	CALL(close(fd), "close(sub/x.dat)");
	CALL(openat(dfd, "missing", O_RDONLY), "openat(sub, missing, RDONLY)");
	fd = CALL(__open_2("f.dat", O_RDONLY), "__open_2(f.dat, RDONLY)");
	CALL(close(fd), "close(f.dat)");
	CALL(__open_2("missing.dat", O_RDONLY), "__open_2(missing.dat, RDONLY)");
	fd = CALL(open("sub", O_TMPFILE | O_RDWR, 0600), "open(sub, TMPFILE|RDWR, 0600)");
	if (fd >= 0) {
		show_stat(fd, "tmpfile");
		CALL(close(fd), "close(tmpfile)");
	}
	CALL(close(dfd), "close(sub)");
	unlink("sub/x.dat");
	rmdir("sub");
}

/* "FILE fd=N" or "NULL ERRNO" for a call that returns a FILE *. */
static void file_result(FILE *f, int e, const char *what)
{
	if (f)
		say("%s = FILE fd=%d", what, fileno(f));
	else
		say("%s = NULL %s", what, errno_name(e));
}

#define FCALL(var, expr, what)            \
	do {                              \
		errno = 0;                \
		var = (expr);             \
		file_result(var, errno, what); \
	} while (0)

static void sec_stdio(void)
{
	say("# stdio: fopen / freopen / fclose");
	FILE *f, *g;
	FCALL(f, fopen("f.dat", "r"), "fopen(f.dat, r)");
	if (f == NULL)
		die("fopen");
	size_t n = fread(rbuf, 1, 5000, f);
	say("  fread(5000) = %zu sum=%016llx", n, (unsigned long long)sum_of(rbuf, n));
	FCALL(g, freopen("m4.dat", "w", f), "freopen(m4.dat, w, f)");
	if (g == NULL)
		die("freopen");
	say("  same FILE: %s", g == f ? "yes" : "no");
	n = fwrite(data, 1, 70000, g);
	say("  fwrite(70000) = %zu", n);
	FCALL(g, freopen(NULL, "r", g), "freopen(NULL, r, f)");
	if (g == NULL)
		die("freopen NULL");
	n = fread(rbuf, 1, 80000, g);
	say("  fread(80000) = %zu sum=%016llx", n, (unsigned long long)sum_of(rbuf, n));
	CALL(fclose(g), "fclose(f)");
	FCALL(f, fopen("missing.dat", "r"), "fopen(missing.dat, r)");
	if (f)
		fclose(f);
	FCALL(f, fopen("f.dat", "q"), "fopen(f.dat, q)");
	if (f)
		CALL(fclose(f), "fclose(f)");
	FCALL(f, freopen("missing.dat", "r", fopen("f.dat", "r")), "freopen(missing.dat, r, f)");
	if (f)
		CALL(fclose(f), "fclose(f)");
	FCALL(f, fopen64("m4.dat", "a+e"), "fopen64(m4.dat, a+e)");
	if (f) {
		CALL(fcntl(fileno(f), F_GETFD), "fcntl(fopen'd, F_GETFD)");
		CALL(fcntl(fileno(f), F_GETFL) & O_APPEND, "fcntl(fopen'd, F_GETFL) & O_APPEND");
		fputs("tail\n", f);
		CALL(fclose(f), "fclose(f)");
	}
	/* The number fclose freed is reused by the next open. */
	int fd = CALL(open("m4.dat", O_RDONLY), "open(m4.dat, RDONLY)");
	CALLR(rbuf, read(fd, rbuf, 100000), "read(m4.dat, 100000)");
	CALL(close(fd), "close(m4.dat)");
	fd = CALL(open("f.dat", O_RDONLY), "open(f.dat, RDONLY)");
	FCALL(f, fdopen(fd, "r"), "fdopen(fd, r)");
	if (f) {
		n = fread(rbuf, 1, 600, f);
		say("  fread(600) = %zu sum=%016llx", n, (unsigned long long)sum_of(rbuf, n));
		CALL(fclose(f), "fclose(f)");
	}
	CALL(close(fd), "close(fd) after fclose");
}

/* Writes each size to wfd and reads it back from rfd. Sizes that fit in
 * the buffer go one at a time, the read asking for exactly what was
 * written (MSG_WAITALL on sockets), so every line is deterministic; 64 KiB
 * and 1 MiB go while a thread drains rfd. Ends the stream: the write end
 * is closed (pipe) or shut down (socket). */
static void pair_sizes(int wfd, int rfd, const char *what, int sock)
{
	size_t off = 0;
	for (size_t i = 0; i < NSIZES && sizes[i] <= 4096; i++) {
		size_t n = sizes[i];
		if (sock)
			CALL(send(wfd, data + off, n, 0), "send(%s, %zu)", what, n);
		else
			CALL(write(wfd, data + off, n), "write(%s, %zu)", what, n);
		if (n == 0 && sock)
			CALLR(rbuf, recv(rfd, rbuf, 0, MSG_DONTWAIT), "recv(%s, 0, DONTWAIT)", what);
		else if (n == 0)
			CALLR(rbuf, read(rfd, rbuf, 0), "read(%s, 0)", what);
		else if (sock)
			CALLR(rbuf, recv(rfd, rbuf, n, MSG_WAITALL), "recv(%s, %zu, WAITALL)", what, n);
		else
			CALLR(rbuf, read(rfd, rbuf, n), "read(%s, %zu)", what, n);
		off += n;
	}
	struct drain d;
	int rd = dup(rfd); /* the thread's own number: the caller may close rfd */
	drain_start(&d, rd, sock);
	size_t start = off;
	for (size_t i = 0; i < NSIZES; i++) {
		size_t n = sizes[i];
		if (n <= 4096)
			continue;
		if (sock)
			CALL(send(wfd, data + off, n, 0), "send(%s, %zu)", what, n);
		else
			CALL(write(wfd, data + off, n), "write(%s, %zu)", what, n);
		off += n;
	}
	if (sock)
		CALL(shutdown(wfd, SHUT_WR), "shutdown(%s, WR)", what);
	else
		CALL(close(wfd), "close(%s write end)", what);
	drain_finish(&d, what, sum_of(data + start, off - start), off - start);
	close(rd);
}

static void sec_pipes(void)
{
	say("# pipes");
	int p[2];
	CALL(pipe(p), "pipe(p)");
	say("  pipe fds %d %d", p[0], p[1]);
	CALL(fcntl(p[0], F_GETFL) & (O_ACCMODE | O_NONBLOCK), "fcntl(pipe.r, F_GETFL)");
	CALL(fcntl(p[1], F_GETFL) & (O_ACCMODE | O_NONBLOCK), "fcntl(pipe.w, F_GETFL)");
	CALL(write(p[1], data, 65536), "write(pipe, 65536) fits the pipe");
	CALLR(rbuf, read(p[0], rbuf, 65536), "read(pipe, 65536)");
	pair_sizes(p[1], p[0], "pipe", 0);
	/* pair_sizes closed the write end for its large transfer. */
	CALLR(rbuf, read(p[0], rbuf, 100), "read(pipe, 100) with no writer left");
	CALL(close(p[0]), "close(pipe.r)");

	say("# short read at EOF of a pipe");
	CALL(pipe(p), "pipe(p)");
	CALL(write(p[1], data + 3, 100), "write(pipe, 100)");
	CALL(close(p[1]), "close(pipe.w)");
	CALLR(rbuf, read(p[0], rbuf, 4096), "read(pipe, 4096)");
	CALLR(rbuf, read(p[0], rbuf, 4096), "read(pipe, 4096) at EOF");
	CALL(close(p[0]), "close(pipe.r)");

	say("# pipe2 flags, non-blocking EAGAIN, partial write");
	CALL(pipe2(p, O_NONBLOCK | O_CLOEXEC), "pipe2(p, NONBLOCK|CLOEXEC)");
	say("  pipe fds %d %d", p[0], p[1]);
	CALL(fcntl(p[0], F_GETFD), "fcntl(pipe.r, F_GETFD)");
	CALL(fcntl(p[1], F_GETFL) & O_NONBLOCK, "fcntl(pipe.w, F_GETFL) & O_NONBLOCK");
	CALL(fcntl(p[1], F_SETPIPE_SZ, 65536), "fcntl(pipe.w, F_SETPIPE_SZ, 65536)");
	CALL(fcntl(p[1], F_GETPIPE_SZ), "fcntl(pipe.w, F_GETPIPE_SZ)");
	CALLR(rbuf, read(p[0], rbuf, 100), "read(empty non-blocking pipe, 100)");
	CALLR(rbuf, read(p[0], rbuf, 65536), "read(empty non-blocking pipe, 65536)");
	struct iovec one = { rbuf, 4096 };
	CALLV(&one, 1, readv(p[0], &one, 1), "readv(empty non-blocking pipe, 4096)");
	CALL(write(p[1], data, 15 * 4096), "write(pipe, 61440) leaves one page free");
	CALL(write(p[1], data + 61440, 10000), "write(pipe, 10000) into one free page");
	CALL(write(p[1], data, 1), "write(full pipe, 1)");
	CALL(write(p[1], data, 65536), "write(full pipe, 65536)");
	struct iovec two[2] = { { data, 10 }, { data + 10, 600 } };
	CALL(writev(p[1], two, 2), "writev(full pipe, 10+600)");
	CALLR(rbuf, read(p[0], rbuf, M1), "read(pipe, 1M) drains it");
	say("  drained bytes are what was written: %s",
	    memcmp(rbuf, data, 65536) == 0 ? "yes" : "NO");
	CALLR(rbuf, read(p[0], rbuf, M1), "read(empty non-blocking pipe, 1M)");
	CALL(fcntl(p[0], F_SETFL, 0), "fcntl(pipe.r, F_SETFL, 0)");
	CALL(fcntl(p[0], F_GETFL) & O_NONBLOCK, "fcntl(pipe.r, F_GETFL) & O_NONBLOCK");
	CALL(pipe2(p, 0x12345678), "pipe2(p, bad flags)");
	CALL(pipe(BAD), "pipe((void*)1)");
	CALL(pipe2(BAD, O_CLOEXEC), "pipe2((void*)1, CLOEXEC)");

	say("# EFAULT on a pipe");
	CALL(write(p[1], data, 64), "write(pipe, 64)");
	CALL(read(p[0], BAD, 64), "read(pipe, (void*)1, 64)");
	CALLR(rbuf, read(p[0], rbuf, 64), "read(pipe, 64)");
	CALL(write(p[1], BAD, 64), "write(pipe, (void*)1, 64)");
	CALL(readv(p[0], BAD, 1), "readv(pipe, iov=(void*)1, 1)");
	CALL(close(p[0]), "close(pipe.r)");

	say("# EPIPE with SIGPIPE ignored");
	SIGCALL(signal(SIGPIPE, SIG_IGN), "signal(SIGPIPE, SIG_IGN)");
	CALL(write(p[1], data, 10), "write(pipe without reader, 10)");
	CALL(write(p[1], data, 0), "write(pipe without reader, 0)");
	CALL(writev(p[1], two, 2), "writev(pipe without reader, 10+600)");
	CALL(close(p[1]), "close(pipe.w)");
}

static void sec_unix(void)
{
	say("# UNIX socketpair");
	int sv[2];
	CALL(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), "socketpair(UNIX, STREAM)");
	say("  socketpair fds %d %d", sv[0], sv[1]);
	pair_sizes(sv[0], sv[1], "unix", 1);
	CALLR(rbuf, recv(sv[1], rbuf, 100, 0), "recv(unix, 100) after peer shutdown");
	CALL(close(sv[0]), "close(unix.0)");
	CALL(close(sv[1]), "close(unix.1)");

	CALL(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv),
	     "socketpair(UNIX, STREAM|CLOEXEC|NONBLOCK)");
	CALL(fcntl(sv[0], F_GETFD), "fcntl(unix.0, F_GETFD)");
	CALL(fcntl(sv[1], F_GETFL) & O_NONBLOCK, "fcntl(unix.1, F_GETFL) & O_NONBLOCK");
	CALLR(rbuf, recv(sv[1], rbuf, 100, 0), "recv(empty non-blocking unix, 100)");
	CALLR(rbuf, read(sv[1], rbuf, 100), "read(empty non-blocking unix, 100)");
	CALL(fcntl(sv[0], F_SETFL, 0), "fcntl(unix.0, F_SETFL, 0)");
	CALL(fcntl(sv[1], F_SETFL, 0), "fcntl(unix.1, F_SETFL, 0)");
	CALLR(rbuf, recv(sv[1], rbuf, 100, MSG_DONTWAIT), "recv(empty unix, 100, DONTWAIT)");

	say("# MSG_PEEK then read the same bytes");
	CALL(send(sv[0], data + 5, 1000, 0), "send(unix, 1000)");
	CALLR(rbuf, recv(sv[1], rbuf, 1000, MSG_PEEK), "recv(unix, 1000, PEEK)");
	CALLR(rbuf, recv(sv[1], rbuf, 2000, MSG_PEEK), "recv(unix, 2000, PEEK)");
	CALLR(rbuf, read(sv[1], rbuf, 1000), "read(unix, 1000)");
	CALLR(rbuf, recv(sv[1], rbuf, 1000, MSG_PEEK | MSG_DONTWAIT),
	      "recv(empty unix, 1000, PEEK|DONTWAIT)");

	say("# recvmsg / sendmsg with two iovecs");
	char hdr[16];
	memcpy(hdr, "HDR:0123456789ab", 16);
	struct iovec siv[2] = { { hdr, 16 }, { data + 100, 3000 } };
	struct msghdr sm = { .msg_iov = siv, .msg_iovlen = 2 };
	CALL(sendmsg(sv[0], &sm, 0), "sendmsg(unix, 16+3000)");
	struct iovec riv[2] = { { rbuf, 1000 }, { rbuf + 5000, 4000 } };
	struct msghdr rm = { .msg_iov = riv, .msg_iovlen = 2 };
	CALLV(riv, 2, recvmsg(sv[1], &rm, 0), "recvmsg(unix, 1000+4000)");
	say("  msg_flags=%#x msg_namelen=%u msg_controllen=%zu", (unsigned)rm.msg_flags,
	    (unsigned)rm.msg_namelen, (size_t)rm.msg_controllen);
	struct iovec big[2] = { { data + 7, 40000 }, { data + 100000, 25000 } };
	struct msghdr bm = { .msg_iov = big, .msg_iovlen = 2 };
	CALL(sendmsg(sv[0], &bm, 0), "sendmsg(unix, 40000+25000)");
	struct iovec briv[2] = { { rbuf, 30000 }, { rbuf + 100000, 35000 } };
	struct msghdr brm = { .msg_iov = briv, .msg_iovlen = 2 };
	CALLV(briv, 2, recvmsg(sv[1], &brm, MSG_WAITALL), "recvmsg(unix, 30000+35000, WAITALL)");
	say("  same bytes as sent: %s",
	    iov_sum(briv, 2, 65000) == iov_sum(big, 2, 65000) ? "yes" : "NO");
	struct msghdr zm = { .msg_iov = NULL, .msg_iovlen = 0 };
	CALL(sendmsg(sv[0], &zm, 0), "sendmsg(unix, no iovecs)");
	CALL(recvmsg(sv[1], &zm, MSG_DONTWAIT), "recvmsg(unix, no iovecs, DONTWAIT)");

	say("# recvfrom / sendto / fortify variants");
	CALL(sendto(sv[0], data + 9, 600, 0, NULL, 0), "sendto(unix, 600, no address)");
	struct sockaddr_storage ss;
	socklen_t alen = sizeof ss;
	CALLR(rbuf, recvfrom(sv[1], rbuf, 600, MSG_WAITALL, (struct sockaddr *)&ss, &alen),
	      "recvfrom(unix, 600, WAITALL, &addr)");
	say("  address length %u", (unsigned)alen);
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	strcpy(un.sun_path, "nowhere");
	CALL(sendto(sv[0], data, 600, 0, (struct sockaddr *)&un, sizeof un),
	     "sendto(unix, 600, with address)");
	CALL(send(sv[0], data + 11, 700, 0), "send(unix, 700)");
	CALLR(rbuf, __recv_chk(sv[1], rbuf, 700, RBUF_LEN, MSG_WAITALL),
	      "__recv_chk(unix, 700, WAITALL)");
	CALL(send(sv[0], data + 13, 800, 0), "send(unix, 800)");
	alen = sizeof ss;
	CALLR(rbuf,
	      __recvfrom_chk(sv[1], rbuf, 800, RBUF_LEN, MSG_WAITALL, (struct sockaddr *)&ss, &alen),
	      "__recvfrom_chk(unix, 800, WAITALL)");
	CALL(send(sv[0], data + 15, 900, 0), "send(unix, 900)");
	CALLR(rbuf, recvfrom(sv[1], rbuf, 900, MSG_WAITALL, NULL, NULL),
	      "recvfrom(unix, 900, WAITALL, NULL)");

	say("# EFAULT on a socket");
	CALL(send(sv[0], data, 10, 0), "send(unix, 10)");
	CALL(recv(sv[1], BAD, 10, 0), "recv(unix, (void*)1, 10)");
	CALLR(rbuf, recv(sv[1], rbuf, 10, MSG_WAITALL), "recv(unix, 10, WAITALL)");
	CALL(send(sv[0], BAD, 10, 0), "send(unix, (void*)1, 10)");
	CALL(sendto(sv[0], BAD, 10, 0, NULL, 0), "sendto(unix, (void*)1, 10)");
	CALL(recvmsg(sv[1], BAD, MSG_DONTWAIT), "recvmsg(unix, msg=(void*)1)");
	CALL(sendmsg(sv[0], BAD, 0), "sendmsg(unix, msg=(void*)1)");
	struct msghdr badiov = { .msg_iov = BAD, .msg_iovlen = 2 };
	CALL(sendmsg(sv[0], &badiov, 0), "sendmsg(unix, msg_iov=(void*)1)");
	CALL(send(sv[0], data, 10, 0), "send(unix, 10)");
	CALL(recvmsg(sv[1], &badiov, 0), "recvmsg(unix, msg_iov=(void*)1)");
	CALLR(rbuf, recv(sv[1], rbuf, 10, MSG_WAITALL), "recv(unix, 10, WAITALL)");
	CALL(recv(sv[1], rbuf, 10, MSG_DONTWAIT), "recv(empty unix, 10, DONTWAIT)");

	say("# EPIPE with MSG_NOSIGNAL, SIGPIPE at its default");
	CALL(close(sv[1]), "close(unix.1)");
	CALL(send(sv[0], data, 10, MSG_NOSIGNAL), "send(unix without peer, 10, NOSIGNAL)");
	CALL(sendto(sv[0], data, 10, MSG_NOSIGNAL, NULL, 0),
	     "sendto(unix without peer, 10, NOSIGNAL)");
	CALL(sendmsg(sv[0], &sm, MSG_NOSIGNAL), "sendmsg(unix without peer, 16+3000, NOSIGNAL)");
	CALLR(rbuf, recv(sv[0], rbuf, 10, 0), "recv(unix without peer, 10)");
	CALL(close(sv[0]), "close(unix.0)");

	say("# unconnected and wrong-type sockets");
	int s = CALL(socket(AF_UNIX, SOCK_STREAM, 0), "socket(UNIX, STREAM)");
	CALL(send(s, data, 10, MSG_NOSIGNAL), "send(unconnected unix, 10)");
	CALL(recv(s, rbuf, 10, MSG_DONTWAIT), "recv(unconnected unix, 10)");
	CALL(write(s, data, 10), "write(unconnected unix, 10)");
	CALL(accept(s, NULL, NULL), "accept(unix, not listening)");
	CALL(close(s), "close(unix)");
	int fd = CALL(open("f.dat", O_RDONLY), "open(f.dat, RDONLY)");
	CALL(send(fd, data, 10, 0), "send(file, 10)");
	CALL(recv(fd, rbuf, 10, 0), "recv(file, 10)");
	CALL(recvmsg(fd, &rm, 0), "recvmsg(file)");
	CALL(sendmsg(fd, &sm, 0), "sendmsg(file)");
	CALL(accept(fd, NULL, NULL), "accept(file)");
	CALL(accept4(fd, NULL, NULL, 0), "accept4(file)");
	CALL(close(fd), "close(file)");
	CALL(socket(12345, SOCK_STREAM, 0), "socket(12345, STREAM)");
	CALL(socket(AF_INET, 12345, 0), "socket(INET, 12345)");
	CALL(socketpair(AF_INET, SOCK_STREAM, 0, sv), "socketpair(INET, STREAM)");
	CALL(socketpair(AF_UNIX, SOCK_STREAM, 0, BAD), "socketpair(UNIX, STREAM, (void*)1)");
	int dg[2];
	CALL(socketpair(AF_UNIX, SOCK_DGRAM, 0, dg), "socketpair(UNIX, DGRAM)");
	CALL(send(dg[0], data, 5000, 0), "send(unix dgram, 5000)");
	CALLR(rbuf, recv(dg[1], rbuf, 100, MSG_TRUNC), "recv(unix dgram, 100, TRUNC)");
	CALL(send(dg[0], data + 1, 3000, 0), "send(unix dgram, 3000)");
	CALLR(rbuf, recv(dg[1], rbuf, 1000, 0), "recv(unix dgram, 1000)");
	/* MSG_TRUNC returns the datagram's full length although only the
	 * buffer's worth was stored: the buffer ends at an inaccessible page,
	 * so anything that trusts the count and looks at the bytes faults. */
	unsigned char *g = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
				-1, 0);
	if (g == MAP_FAILED || mprotect(g + 4096, 4096, PROT_NONE) != 0)
		die("mmap guard");
	unsigned char *tail = g + 4096 - 100;
	CALL(send(dg[0], data + 3, 6000, 0), "send(unix dgram, 6000)");
	CALL(recv(dg[1], tail, 100, MSG_TRUNC), "recv(unix dgram, 100 before a guard page, TRUNC)");
	CALL(send(dg[0], data + 4, 6000, 0), "send(unix dgram, 6000)");
	CALL(recvfrom(dg[1], tail, 100, MSG_TRUNC, NULL, NULL),
	     "recvfrom(unix dgram, 100 before a guard page, TRUNC)");
	CALL(send(dg[0], data + 5, 6000, 0), "send(unix dgram, 6000)");
	CALL(__recv_chk(dg[1], tail, 100, 100, MSG_TRUNC),
	     "__recv_chk(unix dgram, 100 before a guard page, TRUNC)");
	CALL(send(dg[0], data + 6, 6000, 0), "send(unix dgram, 6000)");
	struct iovec tv = { tail, 100 };
	struct msghdr tm = { .msg_iov = &tv, .msg_iovlen = 1 };
	CALL(recvmsg(dg[1], &tm, MSG_TRUNC), "recvmsg(unix dgram, 100 before a guard page, TRUNC)");
	say("  msg_flags & MSG_TRUNC = %d", (tm.msg_flags & MSG_TRUNC) != 0);
	CALL(send(dg[0], data + 7, 6000, 0), "send(unix dgram, 6000)");
	CALL(recv(dg[1], tail, 100, MSG_PEEK | MSG_TRUNC),
	     "recv(unix dgram, 100 before a guard page, PEEK|TRUNC)");
	CALLR(tail, recv(dg[1], tail, 100, 0), "recv(unix dgram, 100 before a guard page)");
	munmap(g, 8192);
	CALL(close(dg[0]), "close(dgram.0)");
	CALL(close(dg[1]), "close(dgram.1)");
}

struct tcp {
	int l, c, a;
};

static int tcp_listen(void)
{
	int l = CALL(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0),
		     "socket(INET, STREAM|CLOEXEC)");
	struct sockaddr_in sin = { .sin_family = AF_INET };
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CALL(bind(l, (struct sockaddr *)&sin, sizeof sin), "bind(127.0.0.1:0)");
	CALL(listen(l, 8), "listen(8)");
	return l;
}

static void tcp_connect(int l, int *c, int *a, int flags)
{
	struct sockaddr_in sin;
	socklen_t alen = sizeof sin;
	if (getsockname(l, (struct sockaddr *)&sin, &alen) != 0)
		die("getsockname");
	*c = CALL(socket(AF_INET, SOCK_STREAM, 0), "socket(INET, STREAM)");
	CALL(connect(*c, (struct sockaddr *)&sin, sizeof sin), "connect(127.0.0.1)");
	*a = CALL(accept4(l, NULL, NULL, flags), "accept4(listener, NULL, NULL, %#x)", flags);
}

static void sec_tcp(void)
{
	say("# TCP on 127.0.0.1");
	int l = tcp_listen();
	int c, a;
	tcp_connect(l, &c, &a, SOCK_CLOEXEC | SOCK_NONBLOCK);
	CALL(fcntl(a, F_GETFD), "fcntl(accepted, F_GETFD)");
	CALL(fcntl(a, F_GETFL) & O_NONBLOCK, "fcntl(accepted, F_GETFL) & O_NONBLOCK");
	CALLR(rbuf, recv(a, rbuf, 100, 0), "recv(empty non-blocking tcp, 100)");
	CALLR(rbuf, read(a, rbuf, 100), "read(empty non-blocking tcp, 100)");
	CALL(fcntl(a, F_SETFL, 0), "fcntl(accepted, F_SETFL, 0)");

	/* A second connection, accepted with accept() and an address. */
	struct sockaddr_in sin;
	socklen_t alen = sizeof sin;
	if (getsockname(l, (struct sockaddr *)&sin, &alen) != 0)
		die("getsockname");
	int c2 = CALL(socket(AF_INET, SOCK_STREAM, 0), "socket(INET, STREAM)");
	CALL(connect(c2, (struct sockaddr *)&sin, sizeof sin), "connect(127.0.0.1)");
	struct sockaddr_in peer;
	alen = sizeof peer;
	int a2 = CALL(accept(l, (struct sockaddr *)&peer, &alen), "accept(listener, &addr)");
	char ip[32];
	inet_ntop(AF_INET, &peer.sin_addr, ip, sizeof ip);
	say("  peer family=%d addr=%s addrlen=%u", peer.sin_family, ip, (unsigned)alen);
	CALL(accept4(l, NULL, NULL, 0x12345), "accept4(listener, bad flags)");
	CALL(fcntl(l, F_SETFL, O_NONBLOCK), "fcntl(listener, F_SETFL, NONBLOCK)");
	CALL(accept(l, NULL, NULL), "accept(listener, nothing pending)");
	CALL(accept4(l, NULL, NULL, SOCK_CLOEXEC), "accept4(listener, nothing pending)");
	CALL(accept(l, BAD, BAD), "accept(listener, (void*)1, (void*)1)");
	CALL(fcntl(l, F_SETFL, 0), "fcntl(listener, F_SETFL, 0)");

	pair_sizes(c, a, "tcp", 1);
	CALLR(rbuf, recv(a, rbuf, 100, 0), "recv(tcp, 100) after peer shutdown");
	CALL(send(c, data, 10, MSG_NOSIGNAL), "send(tcp after SHUT_WR, 10, NOSIGNAL)");

	say("# MSG_PEEK on TCP");
	CALL(send(a2, data + 50, 1000, 0), "send(tcp, 1000)");
	CALLR(rbuf, recv(c2, rbuf, 1000, MSG_PEEK | MSG_WAITALL), "recv(tcp, 1000, PEEK|WAITALL)");
	CALLR(rbuf, read(c2, rbuf, 1000), "read(tcp, 1000)");
	CALLR(rbuf, recv(c2, rbuf, 1000, MSG_DONTWAIT), "recv(empty tcp, 1000, DONTWAIT)");
	struct iovec siv[2] = { { data, 16 }, { data + 1000, 20000 } };
	struct msghdr sm = { .msg_iov = siv, .msg_iovlen = 2 };
	CALL(sendmsg(a2, &sm, 0), "sendmsg(tcp, 16+20000)");
	struct iovec riv[2] = { { rbuf, 10000 }, { rbuf + 50000, 10016 } };
	struct msghdr rm = { .msg_iov = riv, .msg_iovlen = 2 };
	CALLV(riv, 2, recvmsg(c2, &rm, MSG_WAITALL), "recvmsg(tcp, 10000+10016, WAITALL)");
	/* On TCP, MSG_TRUNC discards the bytes without storing them. */
	CALL(send(a2, data + 60, 3000, 0), "send(tcp, 3000)");
	CALL(recv(c2, NULL, 3000, MSG_TRUNC | MSG_WAITALL), "recv(tcp, NULL, 3000, TRUNC|WAITALL)");
	CALL(send(a2, data + 70, 700, 0), "send(tcp, 700)");
	CALLR(rbuf, recv(c2, rbuf, 700, MSG_WAITALL), "recv(tcp, 700, WAITALL) after the discard");

	say("# unconnected TCP socket");
	int s = CALL(socket(AF_INET, SOCK_STREAM, 0), "socket(INET, STREAM)");
	CALL(send(s, data, 10, MSG_NOSIGNAL), "send(unconnected tcp, 10, NOSIGNAL)");
	CALL(send(s, data, 10, 0), "send(unconnected tcp, 10) SIGPIPE ignored");
	CALL(write(s, data, 10), "write(unconnected tcp, 10)");
	CALL(recv(s, rbuf, 10, 0), "recv(unconnected tcp, 10)");
	CALL(read(s, rbuf, 10), "read(unconnected tcp, 10)");
	CALL(close(s), "close(tcp)");

	say("# UDP sendto / recvfrom with addresses");
	int u = CALL(socket(AF_INET, SOCK_DGRAM, 0), "socket(INET, DGRAM)");
	struct sockaddr_in us = { .sin_family = AF_INET };
	us.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CALL(bind(u, (struct sockaddr *)&us, sizeof us), "bind(127.0.0.1:0)");
	alen = sizeof us;
	getsockname(u, (struct sockaddr *)&us, &alen);
	CALL(sendto(u, data, 1200, 0, (struct sockaddr *)&us, sizeof us), "sendto(udp self, 1200)");
	alen = sizeof peer;
	CALLR(rbuf, recvfrom(u, rbuf, 4000, 0, (struct sockaddr *)&peer, &alen),
	      "recvfrom(udp, 4000, &addr)");
	inet_ntop(AF_INET, &peer.sin_addr, ip, sizeof ip);
	say("  from family=%d addr=%s addrlen=%u", peer.sin_family, ip, (unsigned)alen);
	CALL(sendto(u, data, 10, 0, (struct sockaddr *)&us, 3), "sendto(udp, short addrlen)");
	CALL(send(u, data, 10, 0), "send(unconnected udp, 10)");
	CALL(close(u), "close(udp)");

	CALL(close(c), "close(tcp.c)");
	CALL(close(a), "close(tcp.a)");
	CALL(close(c2), "close(tcp.c2)");
	CALL(close(a2), "close(tcp.a2)");
	CALL(close(l), "close(listener)");
}

static void sec_fdops(void)
{
	say("# fcntl / dup / dup2 / dup3 / close / close_range");
	int fd = CALL(open("f.dat", O_RDONLY), "open(f.dat, RDONLY)");
	CALL(fcntl(fd, F_GETFL) & (O_ACCMODE | O_APPEND | O_NONBLOCK), "fcntl(file, F_GETFL)");
	CALL(fcntl(fd, F_SETFL, O_NONBLOCK | O_APPEND), "fcntl(file, F_SETFL, NONBLOCK|APPEND)");
	CALL(fcntl(fd, F_GETFL) & (O_ACCMODE | O_APPEND | O_NONBLOCK), "fcntl(file, F_GETFL)");
	CALLR(rbuf, read(fd, rbuf, 70000), "read(file, 70000)");
	CALL(fcntl(fd, F_SETFL, 0), "fcntl(file, F_SETFL, 0)");
	CALL(fcntl(fd, F_GETFL) & (O_ACCMODE | O_APPEND | O_NONBLOCK), "fcntl(file, F_GETFL)");
	CALL(fcntl(fd, F_GETFD), "fcntl(file, F_GETFD)");
	CALL(fcntl(fd, F_SETFD, FD_CLOEXEC), "fcntl(file, F_SETFD, CLOEXEC)");
	CALL(fcntl(fd, F_GETFD), "fcntl(file, F_GETFD)");
	CALL(fcntl(fd, F_SETFD, 0), "fcntl(file, F_SETFD, 0)");
	int d1 = CALL(fcntl(fd, F_DUPFD, 100), "fcntl(file, F_DUPFD, 100)");
	int d2 = CALL(fcntl(fd, F_DUPFD_CLOEXEC, 100), "fcntl(file, F_DUPFD_CLOEXEC, 100)");
	CALL(fcntl(d1, F_GETFD), "fcntl(dup, F_GETFD)");
	CALL(fcntl(d2, F_GETFD), "fcntl(dup cloexec, F_GETFD)");
	CALLR(rbuf, read(d1, rbuf, 1000), "read(dup, 1000) shares the offset");
	CALL(lseek(fd, 0, SEEK_CUR), "lseek(file, 0, CUR)");
	int d0 = CALL(fcntl(fd, F_DUPFD, 0), "fcntl(file, F_DUPFD, 0)");
	CALL(close(d0), "close(F_DUPFD 0)");
	CALL(fcntl(fd, F_DUPFD, -1), "fcntl(file, F_DUPFD, -1)");
	struct rlimit rl;
	getrlimit(RLIMIT_NOFILE, &rl);
	CALL(fcntl(fd, F_DUPFD, (int)(rl.rlim_cur > INT_MAX ? INT_MAX : rl.rlim_cur)),
	     "fcntl(file, F_DUPFD, RLIMIT_NOFILE)");
	CALL(fcntl(fd, 9999), "fcntl(file, 9999)");
	CALL(fcntl(fd, F_GETOWN), "fcntl(file, F_GETOWN)");
	int lk = CALL(open("m4.dat", O_RDWR), "open(m4.dat, RDWR)");
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10 };
	CALL(fcntl(lk, F_SETLK, &fl), "fcntl(m4.dat, F_SETLK, write lock)");
	fl.l_type = F_WRLCK;
	CALL(fcntl(lk, F_GETLK, &fl), "fcntl(m4.dat, F_GETLK)");
	say("  l_type=%s", fl.l_type == F_UNLCK ? "F_UNLCK" : "locked");
	CALL(fcntl(lk, F_GETLK, BAD), "fcntl(m4.dat, F_GETLK, (void*)1)");
	CALL(fcntl(lk, F_OFD_GETLK, &fl), "fcntl(m4.dat, F_OFD_GETLK)");
	CALL(close(lk), "close(m4.dat)");

	int d3 = CALL(dup(fd), "dup(file)");
	CALL(dup2(fd, 110), "dup2(file, 110)");
	CALL(dup2(fd, fd), "dup2(file, file)");
	CALL(dup2(fd, 110), "dup2(file, 110) again");
	CALL(dup2(fd, -1), "dup2(file, -1)");
	CALL(dup2(fd, (int)(rl.rlim_cur > INT_MAX ? INT_MAX : rl.rlim_cur)),
	     "dup2(file, RLIMIT_NOFILE)");
	CALL(dup3(fd, 112, O_CLOEXEC), "dup3(file, 112, CLOEXEC)");
	CALL(fcntl(112, F_GETFD), "fcntl(112, F_GETFD)");
	CALL(dup3(fd, 112, 0), "dup3(file, 112, 0) over an open one");
	CALL(fcntl(112, F_GETFD), "fcntl(112, F_GETFD)");
	CALL(dup3(fd, fd, 0), "dup3(file, file, 0)");
	CALL(dup3(fd, fd, O_CLOEXEC), "dup3(file, file, CLOEXEC)");
	CALL(dup3(fd, 113, 0x1234), "dup3(file, 113, bad flags)");
	CALL(close(110), "close(110)");
	CALL(close(110), "close(110) twice");
	CALL(close(-1), "close(-1)");
	CALL(close(112), "close(112)");
	CALL(close(d3), "close(dup)");

	for (int i = 120; i <= 124; i++)
		CALL(dup2(fd, i), "dup2(file, %d)", i);
	CALL(close_range(120, 124, 0), "close_range(120, 124, 0)");
	for (int i = 119; i <= 125; i++)
		CALL(fcntl(i, F_GETFD), "fcntl(%d, F_GETFD)", i);
	for (int i = 130; i <= 132; i++)
		CALL(dup2(fd, i), "dup2(file, %d)", i);
	CALL(close_range(130, 132, CLOSE_RANGE_CLOEXEC), "close_range(130, 132, CLOEXEC)");
	for (int i = 130; i <= 132; i++)
		CALL(fcntl(i, F_GETFD), "fcntl(%d, F_GETFD)", i);
	CALL(close_range(131, 130, 0), "close_range(131, 130, 0)");
	CALL(close_range(130, 140, 0x8000), "close_range(130, 140, bad flags)");
	CALL(close_range(130, 132, 0), "close_range(130, 132, 0)");
	CALL(close_range(130, 132, 0), "close_range(130, 132, 0) again");
	CALL(close_range(500, 600, 0), "close_range(500, 600, 0) nothing open");
	CALL(close_range(131, 131, CLOSE_RANGE_UNSHARE), "close_range(131, 131, UNSHARE)");
	CALL(close(d1), "close(F_DUPFD)");
	CALL(close(d2), "close(F_DUPFD_CLOEXEC)");
	CALL(close(fd), "close(file)");
	CALL(close(fd), "close(file) again");
	scan("after fd operations");
}

static void sec_badfd(void)
{
	int fd = open("f.dat", O_RDONLY);
	if (fd < 0)
		die("open");
	close(fd);
	char label[32];
	snprintf(label, sizeof label, "closed fd %d", fd);
	badfd_all(fd, label);
	badfd_all(-1, "fd -1");
	badfd_all(777, "never opened fd 777");
}

/* The interval timer runs only around the blocking call, so no signal
 * can land in the middle of writing the log. It repeats, so a slow start
 * (valgrind) cannot miss it. errno is kept across disarming. */
static void alarm_arm(void)
{
	struct itimerval it = { { 0, 50000 }, { 0, 50000 } };
	setitimer(ITIMER_REAL, &it, NULL);
}

static void alarm_disarm(void)
{
	int saved = errno;
	struct itimerval off = { { 0, 0 }, { 0, 0 } };
	setitimer(ITIMER_REAL, &off, NULL);
	errno = saved;
}

#define INTERRUPTED(expr) ({ alarm_arm(); long v_ = (long)(expr); alarm_disarm(); v_; })

static void sec_eintr(void)
{
	say("# EINTR from a signal without SA_RESTART");
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_alarm;
	sigemptyset(&sa.sa_mask);
	CALL(sigaction(SIGALRM, &sa, NULL), "sigaction(SIGALRM, on_alarm, no RESTART)");
	int p[2], sv[2];
	CALL(pipe(p), "pipe(p)");
	CALL(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), "socketpair(UNIX, STREAM)");
	CALLR(rbuf, INTERRUPTED(read(p[0], rbuf, 100)), "read(empty pipe, 100) interrupted");
	struct iovec v = { rbuf, 100 };
	CALLV(&v, 1, INTERRUPTED(readv(p[0], &v, 1)), "readv(empty pipe, 100) interrupted");
	CALLR(rbuf, INTERRUPTED(recv(sv[0], rbuf, 100, 0)), "recv(empty unix, 100) interrupted");
	struct msghdr m = { .msg_iov = &v, .msg_iovlen = 1 };
	CALLV(&v, 1, INTERRUPTED(recvmsg(sv[0], &m, 0)), "recvmsg(empty unix, 100) interrupted");
	say("  SIGALRM handler ran: %s", alarm_hits > 0 ? "yes" : "no");
	SIGCALL(signal(SIGALRM, SIG_DFL), "signal(SIGALRM, SIG_DFL)");
	CALL(close(sv[0]), "close(unix.0)");
	CALL(close(sv[1]), "close(unix.1)");
	CALL(close(p[0]), "close(pipe.r)");
	CALL(close(p[1]), "close(pipe.w)");
}

/* ------------------------------------------------------------------ */
/* Copy loops: the patterns the detector learns and arms on            */

#define SRC_LEN (4 * M1)

static void make_src(void)
{
	int fd = open("src.dat", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write(fd, data, SRC_LEN) != SRC_LEN)
		die("src.dat");
	close(fd);
}

/* read(file) -> write/send(dst) until EOF, one line per call. */
static void loop_read_write(int src, int dst, const char *dname, int use_send, size_t chunk)
{
	for (int i = 0;; i++) {
		long r = CALLR(rbuf, read(src, rbuf, chunk), "loop %d read(file, %zu)", i, chunk);
		if (r <= 0)
			break;
		if (use_send)
			CALL(send(dst, rbuf, (size_t)r, 0), "loop %d send(%s, %ld)", i, dname, r);
		else
			CALL(write(dst, rbuf, (size_t)r), "loop %d write(%s, %ld)", i, dname, r);
	}
}

static void sec_loops(void)
{
	make_src();
	uint64_t want = sum_of(data, SRC_LEN);
	struct drain d;
	int p[2], src;

	say("# copy loop: file -> pipe, 64 KiB chunks");
	CALL(pipe(p), "pipe(p)");
	drain_start(&d, p[0], 0);
	src = CALL(open("src.dat", O_RDONLY), "open(src.dat, RDONLY)");
	loop_read_write(src, p[1], "pipe", 0, K64);
	CALL(close(p[1]), "close(pipe.w)");
	drain_finish(&d, "file -> pipe", want, SRC_LEN);
	CALL(close(p[0]), "close(pipe.r)");

	say("# copy loop: file -> tcp");
	int l = tcp_listen(), c, a;
	tcp_connect(l, &c, &a, 0);
	drain_start(&d, a, 1);
	CALL(lseek(src, 0, SEEK_SET), "lseek(file, 0, SET)");
	loop_read_write(src, c, "tcp", 1, K64);
	CALL(shutdown(c, SHUT_WR), "shutdown(tcp, WR)");
	drain_finish(&d, "file -> tcp", want, SRC_LEN);
	CALL(close(a), "close(tcp.a)");

	say("# copy loop: file -> unix socket, 128 KiB chunks with write()");
	int sv[2];
	CALL(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), "socketpair(UNIX, STREAM)");
	drain_start(&d, sv[1], 1);
	CALL(lseek(src, 0, SEEK_SET), "lseek(file, 0, SET)");
	loop_read_write(src, sv[0], "unix", 0, 2 * K64);
	CALL(shutdown(sv[0], SHUT_WR), "shutdown(unix, WR)");
	drain_finish(&d, "file -> unix", want, SRC_LEN);
	CALL(close(sv[1]), "close(unix.1)");

	say("# copy loop: pread + writev with a header iovec -> pipe");
	CALL(pipe(p), "pipe(p)");
	drain_start(&d, p[0], 0);
	uint64_t hsum = FNV1A_INIT;
	char hdr[16];
	for (int i = 0; i < 32; i++) {
		snprintf(hdr, sizeof hdr, "chunk %08d\n", i);
		long r = CALLR(rbuf, pread(src, rbuf, K64, (off_t)i * K64), "loop %d pread(file, %d, %ld)",
			       i, K64, (long)i * K64);
		if (r <= 0)
			break;
		struct iovec v[2] = { { hdr, 15 }, { rbuf, (size_t)r } };
		CALL(writev(p[1], v, 2), "loop %d writev(pipe, 15+%ld)", i, r);
		hsum = fnv1a(hsum, hdr, 15);
		hsum = fnv1a(hsum, data + (size_t)i * K64, (size_t)r);
	}
	CALL(close(p[1]), "close(pipe.w)");
	drain_finish(&d, "pread+writev -> pipe", hsum, 32 * (15 + K64));
	CALL(close(p[0]), "close(pipe.r)");

	say("# copy loop: readv into two halves -> writev, and alternating buffers -> pipe");
	CALL(pipe(p), "pipe(p)");
	drain_start(&d, p[0], 0);
	CALL(lseek(src, 0, SEEK_SET), "lseek(file, 0, SET)");
	for (int i = 0; i < 16; i++) {
		struct iovec v[2] = { { rbuf, K64 / 2 }, { rbuf + M1, K64 / 2 } };
		long r = CALLV(v, 2, readv(src, v, 2), "loop %d readv(file, 32768+32768)", i);
		if (r <= 0)
			break;
		CALL(writev(p[1], v, 2), "loop %d writev(pipe, 32768+32768)", i);
	}
	for (int i = 0; i < 16; i++) {
		unsigned char *b = (i & 1) ? rbuf + M1 : rbuf;
		long r = CALLR(b, read(src, b, K64), "loop %d read(file, 65536) buffer %d", i, i & 1);
		if (r <= 0)
			break;
		CALL(write(p[1], b, (size_t)r), "loop %d write(pipe, %ld) buffer %d", i, r, i & 1);
	}
	CALL(close(p[1]), "close(pipe.w)");
	drain_finish(&d, "readv/alternating -> pipe", sum_of(data, 2 * M1), 2 * M1);
	CALL(close(p[0]), "close(pipe.r)");

	say("# not a plain copy: modified bytes, two destinations, header stripped");
	int p2[2];
	struct drain d2;
	CALL(pipe(p), "pipe(p)");
	CALL(pipe(p2), "pipe(p2)");
	drain_start(&d, p[0], 0);
	drain_start(&d2, p2[0], 0);
	CALL(lseek(src, 0, SEEK_SET), "lseek(file, 0, SET)");
	uint64_t s1 = FNV1A_INIT, s2 = FNV1A_INIT;
	size_t n1 = 0, n2 = 0;
	for (int i = 0; i < 24; i++) {
		long r = CALLR(rbuf, read(src, rbuf, K64), "loop %d read(file, 65536)", i);
		if (r <= 0)
			break;
		if (i < 8) {
			/* modified: first and last bytes changed (after a
			 * few clean bounces so that the pair is armed) */
			if (i >= 4) {
				rbuf[0] ^= 0xff;
				rbuf[r - 1] ^= 0xff;
			}
			CALL(write(p[1], rbuf, (size_t)r), "loop %d write(pipe, %ld)%s", i, r,
			     i >= 4 ? " modified" : "");
			s1 = fnv1a(s1, rbuf, (size_t)r);
			n1 += (size_t)r;
		} else if (i < 16) {
			/* tee: the same bytes to two destinations */
			CALL(write(p[1], rbuf, (size_t)r), "loop %d write(pipe, %ld)", i, r);
			CALL(write(p2[1], rbuf, (size_t)r), "loop %d write(pipe2, %ld)", i, r);
			s1 = fnv1a(s1, rbuf, (size_t)r);
			s2 = fnv1a(s2, rbuf, (size_t)r);
			n1 += (size_t)r;
			n2 += (size_t)r;
		} else {
			/* header stripped: only the tail is forwarded */
			CALL(write(p[1], rbuf + 100, (size_t)r - 100), "loop %d write(pipe, %ld)", i,
			     r - 100);
			s1 = fnv1a(s1, rbuf + 100, (size_t)r - 100);
			n1 += (size_t)r - 100;
		}
	}
	CALL(close(p[1]), "close(pipe.w)");
	CALL(close(p2[1]), "close(pipe2.w)");
	drain_finish(&d, "modified/tee/stripped -> pipe", s1, n1);
	drain_finish(&d2, "tee -> pipe2", s2, n2);
	CALL(close(p[0]), "close(pipe.r)");
	CALL(close(p2[0]), "close(pipe2.r)");

	say("# copy loop: tcp -> file with recv(WAITALL)");
	struct feed f;
	int c2, a2;
	tcp_connect(l, &c2, &a2, 0);
	feed_start(&f, c2, 1, data + 3, 2 * M1, 100000, 2);
	int out = CALL(open("tcp.out", O_WRONLY | O_CREAT | O_TRUNC, 0600),
		       "open(tcp.out, WRONLY|CREAT|TRUNC, 0600)");
	for (int i = 0;; i++) {
		long r = CALLR(rbuf, recv(a2, rbuf, K64, MSG_WAITALL), "loop %d recv(tcp, 65536, WAITALL)",
			       i);
		if (r <= 0)
			break;
		CALL(write(out, rbuf, (size_t)r), "loop %d write(file, %ld)", i, r);
	}
	pthread_join(f.t, NULL);
	CALL(close(out), "close(tcp.out)");
	show_file_sum("tcp.out", sum_of(data + 3, 2 * M1), 2 * M1);
	CALL(close(a2), "close(tcp.a2)");
	CALL(close(c2), "close(tcp.c2)");

	say("# copy loop: pipe -> tcp (chunk sizes vary; totals only)");
	int c3, a3;
	tcp_connect(l, &c3, &a3, 0);
	CALL(pipe(p), "pipe(p)");
	feed_start(&f, p[1], 0, data + 5, 2 * M1, K64, 1);
	drain_start(&d, a3, 1);
	size_t moved = 0;
	int bad = 0;
	for (;;) {
		ssize_t r = read(p[0], rbuf, K64);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			if (r < 0)
				bad = errno;
			break;
		}
		ssize_t w = send(c3, rbuf, (size_t)r, 0);
		if (w != r) {
			bad = w < 0 ? errno : -1;
			break;
		}
		moved += (size_t)r;
	}
	say("  moved %zu bytes pipe -> tcp, error %s", moved, bad ? errno_name(bad) : "none");
	pthread_join(f.t, NULL);
	CALL(shutdown(c3, SHUT_WR), "shutdown(tcp, WR)");
	drain_finish(&d, "pipe -> tcp", sum_of(data + 5, 2 * M1), 2 * M1);
	CALL(close(p[0]), "close(pipe.r)");
	CALL(close(c3), "close(tcp.c3)");
	CALL(close(a3), "close(tcp.a3)");

	say("# copy loop: file -> file, O_APPEND destination");
	out = CALL(open("app.out", O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0600),
		   "open(app.out, WRONLY|CREAT|TRUNC|APPEND, 0600)");
	CALL(lseek(src, 0, SEEK_SET), "lseek(file, 0, SET)");
	loop_read_write(src, out, "file", 0, K64);
	CALL(lseek(out, 0, SEEK_CUR), "lseek(app.out, 0, CUR)");
	CALL(close(out), "close(app.out)");
	show_file_sum("app.out", want, SRC_LEN);

	CALL(close(c), "close(tcp.c)");
	CALL(close(l), "close(listener)");
	CALL(close(sv[0]), "close(unix.0)");
	CALL(close(src), "close(src.dat)");
}

static void sec_fork(void)
{
	say("# fork in the middle of a copy loop (pread -> write)");
	int src = CALL(open("src.dat", O_RDONLY), "open(src.dat, RDONLY)");
	int outp = CALL(open("fork.parent", O_WRONLY | O_CREAT | O_TRUNC, 0600),
			"open(fork.parent, WRONLY|CREAT|TRUNC, 0600)");
	int outc = CALL(open("fork.child", O_WRONLY | O_CREAT | O_TRUNC, 0600),
			"open(fork.child, WRONLY|CREAT|TRUNC, 0600)");
	for (int i = 0; i < 8; i++) {
		long r = CALLR(rbuf, pread(src, rbuf, K64, (off_t)i * K64), "loop %d pread(file, 65536)",
			       i);
		CALL(write(outp, rbuf, (size_t)r), "loop %d write(file, %ld)", i, r);
	}
	fflush(logf_);
	pid_t pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		/* The child logs to its own file; the parent prints it after
		 * waitpid, so the merged log does not depend on scheduling. */
		FILE *lf = fopen("child.log", "w");
		if (lf == NULL)
			_exit(98);
		logf_ = lf;
		say("child starts");
		for (int i = 8; i < 16; i++) {
			long r = CALLR(rbuf, pread(src, rbuf, K64, (off_t)i * K64),
				       "loop %d pread(file, 65536)", i);
			CALL(write(outc, rbuf, (size_t)r), "loop %d write(child file, %ld)", i, r);
		}
		CALL(close(outp), "close(fork.parent)");
		CALL(close(outp), "close(fork.parent) again");
		CALL(close(outc), "close(fork.child)");
		int p[2];
		CALL(pipe(p), "pipe(p)");
		CALL(write(p[1], data, 4096), "write(pipe, 4096)");
		CALLR(rbuf, read(p[0], rbuf, 4096), "read(pipe, 4096)");
		int lfd = fileno(lf);
		say("child log fd %d", lfd);
		if (lfd > 3)
			CALL(close_range(3, (unsigned)lfd - 1, 0), "close_range(3, %d, 0)", lfd - 1);
		CALL(close_range((unsigned)lfd + 1, ~0U, 0), "close_range(%d, ~0U, 0)", lfd + 1);
		scan("in the child");
		say("child ends");
		fclose(lf);
		exit(3);
	}
	for (int i = 8; i < 16; i++) {
		long r = CALLR(rbuf, pread(src, rbuf, K64, (off_t)i * K64), "loop %d pread(file, 65536)",
			       i);
		CALL(write(outp, rbuf, (size_t)r), "loop %d write(file, %ld)", i, r);
	}
	int st = 0;
	pid_t w = waitpid(pid, &st, 0);
	say("waitpid = %s, exited=%d status=%d", w == pid ? "child" : "error", WIFEXITED(st),
	    WEXITSTATUS(st));
	FILE *lf = fopen("child.log", "r");
	if (lf != NULL) {
		char line[1024];
		while (fgets(line, sizeof line, lf) != NULL)
			fprintf(logf_, "child| %s", line);
		fclose(lf);
	} else {
		say("child.log missing");
	}
	CALL(close(src), "close(src.dat)");
	CALL(close(outp), "close(fork.parent)");
	CALL(close(outc), "close(fork.child)");
	show_file_sum("fork.parent", sum_of(data, M1), M1);
	show_file_sum("fork.child", sum_of(data + M1 / 2, M1 / 2), M1 / 2);
}

/* A loop after close_range(3, ~0U): the library must still be working
 * (the observe report, written at exit, shows this loop). */
static void loop_after_close_range(void)
{
	say("# copy loop after close_range: file -> unix socket");
	int src = CALL(open("src.dat", O_RDONLY), "open(src.dat, RDONLY)");
	int sv[2];
	CALL(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), "socketpair(UNIX, STREAM)");
	struct drain d;
	drain_start(&d, sv[1], 1);
	for (int i = 0; i < 16; i++) {
		long r = CALLR(rbuf, read(src, rbuf, K64), "loop %d read(file, 65536)", i);
		if (r <= 0)
			break;
		CALL(send(sv[0], rbuf, (size_t)r, 0), "loop %d send(unix, %ld)", i, r);
	}
	CALL(shutdown(sv[0], SHUT_WR), "shutdown(unix, WR)");
	drain_finish(&d, "file -> unix after close_range", sum_of(data, M1), M1);
	CALL(close(sv[0]), "close(unix.0)");
	CALL(close(sv[1]), "close(unix.1)");
	CALL(close(src), "close(src.dat)");
}

static char tmpdir[256];

static void enter_tmpdir(void)
{
	const char *base = getenv("TMPDIR");
	snprintf(tmpdir, sizeof tmpdir, "%s/passlog.XXXXXX", base && *base ? base : "/tmp");
	if (mkdtemp(tmpdir) == NULL || chdir(tmpdir) != 0)
		die("mkdtemp");
}

static void leave_tmpdir(void)
{
	static const char *const files[] = {
		"f.dat", "m1.dat", "m2.dat", "m3.dat", "m4.dat", "src.dat", "tcp.out",
		"app.out", "fork.parent", "fork.child", "child.log",
	};
	for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
		unlink(files[i]);
	if (chdir("/") != 0 || rmdir(tmpdir) != 0)
		fprintf(stderr, "passlog: could not remove %s\n", tmpdir);
}

static int run_script(void)
{
	say("passlog: pass-through script");
	umask(022);
	enter_tmpdir();
	scan("at start");
	sec_signals();
	sec_files();
	sec_open();
	sec_stdio();
	sec_unix(); /* before SIGPIPE is ignored: MSG_NOSIGNAL must suffice */
	sec_pipes();
	sec_tcp();
	sec_fdops();
	sec_badfd();
	sec_eintr();
	sec_loops();
	sec_fork();
	scan("before close_range");
	CALL(close_range(3, ~0U, 0), "close_range(3, ~0U, 0)");
	scan("after close_range");
	loop_after_close_range();
	scan("at end");
	leave_tmpdir();
	say("passlog: done");
	return 0;
}

/* ------------------------------------------------------------------ */
/* passlog fds: the library's own descriptors are invisible            */

static int run_fds(void)
{
	say("passlog: descriptor invisibility");
	umask(022);
	enter_tmpdir();
	procfd("at start");
	scan("at start");
	int h = hidden_number();
	say("probe number %d (min(RLIMIT_NOFILE, 1024) - 24)", h);
	char label[48];
	snprintf(label, sizeof label, "unopened fd %d", h);
	badfd_all(h, label);
	CALL(close_range((unsigned)h, (unsigned)h, 0), "close_range(%d, %d, 0)", h, h);
	CALL(close_range((unsigned)h, (unsigned)h, 0x8000), "close_range(%d, %d, bad flags)", h, h);
	CALL(close_range((unsigned)h - 1, (unsigned)h + 1, 0x8000),
	     "close_range(%d, %d, bad flags)", h - 1, h + 1);
	CALL(close_range((unsigned)h, (unsigned)h + 10, 0x8000), "close_range(%d, %d, bad flags)", h,
	     h + 10);

	int nul = CALL(open("/dev/null", O_RDWR), "open(/dev/null, RDWR)");
	int d = CALL(fcntl(nul, F_DUPFD, h), "fcntl(null, F_DUPFD, %d)", h);
	if (d >= 0)
		CALL(close(d), "close(%d)", d);
	d = CALL(fcntl(nul, F_DUPFD_CLOEXEC, h - 5), "fcntl(null, F_DUPFD_CLOEXEC, %d)", h - 5);
	if (d >= 0)
		CALL(close(d), "close(%d)", d);
	CALL(dup2(nul, h), "dup2(null, %d)", h);
	CALL(fcntl(h, F_GETFD), "fcntl(%d, F_GETFD)", h);
	CALL(write(h, data, 10), "write(%d, 10) now /dev/null", h);
	CALL(close(h), "close(%d)", h);
	CALL(close(h), "close(%d) again", h);
	CALL(dup3(nul, h, O_CLOEXEC), "dup3(null, %d, CLOEXEC)", h);
	CALL(fcntl(h, F_GETFD), "fcntl(%d, F_GETFD)", h);
	CALL(close(h), "close(%d)", h);
	scan("after dup2 onto the probe number");

	/* Take every number from the lowest free one up to past the probe,
	 * as a program with many connections would: the numbers must come
	 * out contiguous. */
	int first = -1, last = -1, gaps = 0, prev = -1;
	char gl[256] = "";
	size_t gn = 0;
	for (;;) {
		int x = dup(nul);
		if (x < 0) {
			say("dup failed at %d: %s", prev, errno_name(errno));
			break;
		}
		if (first < 0)
			first = x;
		if (prev >= 0 && x != prev + 1) {
			gaps++;
			if (gn < sizeof gl - 32)
				gn += (size_t)snprintf(gl + gn, sizeof gl - gn, " %d..%d", prev + 1,
						       x - 1);
		}
		prev = last = x;
		if (x > h + 3)
			break;
	}
	say("dup() in a loop: first=%d last=%d gaps=%d%s", first, last, gaps, gl);
	if (first >= 0)
		CALL(close_range((unsigned)first, (unsigned)last, 0), "close_range(%d, %d, 0)", first,
		     last);
	scan("after the dup loop");

	/* dup2 onto the probe number while every number above it, up to the
	 * descriptor limit, is taken: whatever the library does with its own
	 * descriptor then, the program must not see it. */
	say("# dup2 onto the probe number with every higher number taken");
	struct rlimit rl, low;
	getrlimit(RLIMIT_NOFILE, &rl);
	low = rl;
	low.rlim_cur = (rlim_t)h + 24;
	CALL(setrlimit(RLIMIT_NOFILE, &low), "setrlimit(NOFILE, soft %d)", h + 24);
	int taken = 0;
	for (int i = h + 1; i < h + 24; i++)
		taken += dup2(nul, i) == i;
	say("dup2(null, %d..%d): %d taken", h + 1, h + 23, taken);
	CALL(fcntl(nul, F_DUPFD, h), "fcntl(null, F_DUPFD, %d)", h);
	CALL(dup2(nul, h), "dup2(null, %d)", h);
	scan("with every number from the probe up taken");
	CALL(close_range((unsigned)h, (unsigned)h + 23, 0), "close_range(%d, %d, 0)", h, h + 23);
	CALL(setrlimit(RLIMIT_NOFILE, &rl), "setrlimit(NOFILE, as before)");
	scan("after closing them");
	d = CALL(dup(nul), "dup(null)");
	if (d >= 0)
		CALL(close(d), "close(%d)", d);
	procfd("before close_range");
	CALL(close_range(3, ~0U, 0), "close_range(3, ~0U, 0)");
	scan("after close_range");
	procfd("after close_range");

	say("# the library still works: copy loop file -> pipe");
	int fd = CALL(open("src.dat", O_RDWR | O_CREAT | O_TRUNC, 0600), "open(src.dat)");
	CALL(write(fd, data, M1), "write(file, 1M)");
	CALL(lseek(fd, 0, SEEK_SET), "lseek(file, 0, SET)");
	int p[2];
	CALL(pipe(p), "pipe(p)");
	struct drain dr;
	drain_start(&dr, p[0], 0);
	loop_read_write(fd, p[1], "pipe", 0, K64);
	CALL(close(p[1]), "close(pipe.w)");
	drain_finish(&dr, "file -> pipe", sum_of(data, M1), M1);
	CALL(close(p[0]), "close(pipe.r)");
	CALL(close(fd), "close(file)");
	unlink("src.dat");
	scan("at end");
	procfd("at end");
	if (chdir("/") != 0 || rmdir(tmpdir) != 0)
		fprintf(stderr, "passlog: could not remove %s\n", tmpdir);
	say("passlog: done");
	return 0;
}

/* ------------------------------------------------------------------ */
/* Small helpers for the shell tests                                   */

static int run_cat(int code)
{
	for (;;) {
		ssize_t r = read(0, rbuf, K64);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		for (ssize_t done = 0; done < r;) {
			ssize_t w = write(1, rbuf + done, (size_t)(r - done));
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				return 97;
			done += w;
		}
	}
	return code;
}

static int find_lib(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)size;
	const char *n = info->dlpi_name;
	if (n != NULL && strstr(n, "libnobounce") != NULL) {
		const char *b = strrchr(n, '/');
		snprintf(arg, 256, "%s", b ? b + 1 : n);
		return 1;
	}
	return 0;
}

static int run_secure(void)
{
	char name[256] = "";
	dl_iterate_phdr(find_lib, name);
	printf("AT_SECURE=%lu\n", getauxval(AT_SECURE));
	printf("libnobounce mapped: %s\n", name[0] ? name : "no");
	/* The settings are there to read; a secure library must not. */
	const char *mode = getenv("NOBOUNCE_MODE");
	printf("NOBOUNCE_MODE in environment: %s\n", mode ? mode : "(unset)");
	/* A loop an active library would learn and report. */
	int m = memfd_create("passlog", 0);
	if (m < 0 || write(m, data, 4 * M1) != 4 * M1 || lseek(m, 0, SEEK_SET) != 0)
		die("memfd");
	int p[2];
	if (pipe(p) != 0)
		die("pipe");
	struct drain d;
	drain_start(&d, p[0], 0);
	ssize_t r;
	int n = 0;
	while ((r = read(m, rbuf, K64)) > 0) {
		if (write(p[1], rbuf, (size_t)r) != r)
			die("write");
		n++;
	}
	close(p[1]);
	pthread_join(d.t, NULL);
	printf("copy loop: %d iterations, %llu bytes, %s\n", n, d.total,
	       d.sum == sum_of(data, 4 * M1) ? "intact" : "WRONG");
	return 0;
}

int main(int argc, char **argv)
{
	logf_ = stdout;
	fill_data();
	if (argc < 2)
		return run_script();
	if (strcmp(argv[1], "fds") == 0)
		return run_fds();
	if (strcmp(argv[1], "cat") == 0)
		return run_cat(argc > 2 ? atoi(argv[2]) : 0);
	if (strcmp(argv[1], "secure") == 0)
		return run_secure();
	if (strcmp(argv[1], "sleep") == 0) {
		printf("ready\n");
		fflush(stdout);
		struct timespec ts = { 60, 0 };
		while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
			;
		return 0;
	}
	fprintf(stderr, "usage: passlog [fds | cat [N] | sleep | secure]\n");
	return 2;
}
