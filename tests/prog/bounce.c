/*
 * bounce.c - a configurable copy loop, to drive the detector end to end.
 *
 *   bounce [options] SRC DST
 *
 * SRC and DST are a file path, "-" (stdin / stdout), "tcp:ADDR:PORT"
 * (connect; retried for a few seconds while refused) or
 * "listen:ADDR:PORT" (bind a loopback address, accept one connection).
 *
 * Every iteration reads at most --chunk bytes from SRC into a buffer and
 * writes exactly those bytes to DST, in the way the options say:
 *
 *   --chunk N            bytes per read (K/M suffix allowed; default 64K)
 *   --read M             read | pread | recv | readv (two iovecs, the two
 *                        halves of the buffer)
 *   --write M            write | writev | send | sendto | pwrite |
 *                        writev-hdr (the first writev carries a header
 *                        iovec before the body: DST gets HEADER + data)
 *   --buffers 1|2        one buffer reused, or two used alternately
 *   --unaligned          buffers start at an odd address (page + 0x571)
 *   --touch head|tail|none
 *                        flip the first / last byte of the buffer between
 *                        the read and the write (DST differs from SRC in
 *                        exactly those bytes)
 *   --touch-every N      touch only iterations i with i % N == N-1
 *   --tee PATH           also write every buffer, after DST, to PATH
 *   --partial            write each buffer in two halves (two calls)
 *   --nonblock           DST is made O_NONBLOCK: EAGAIN is waited out with
 *                        poll() and partial writes are resumed at the tail
 *   --transform          write a different buffer: an XOR copy (key
 *                        --xor K, default 0, so DST still equals SRC)
 *   --append             open a DST file with O_APPEND (no truncation)
 *   --expect N           fail unless exactly N bytes were copied
 *   --timeout S          give up after S seconds (default 60)
 *   --verbose            print counts of reads, writes, partial writes and
 *                        EAGAINs to stderr at the end
 *
 * Exit status: 0 when every byte read was written to DST (and to the tee),
 * 1 on any error or short copy, 2 on bad usage.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define HEADER "BOUNCE/1 header\n" /* 16 bytes, see --write writev-hdr */

enum rd { RD_READ, RD_PREAD, RD_RECV, RD_READV };
enum wr { WR_WRITE, WR_WRITEV, WR_SEND, WR_SENDTO, WR_PWRITE, WR_WRITEV_HDR };
enum touch { TOUCH_NONE, TOUCH_HEAD, TOUCH_TAIL };

static struct {
	size_t chunk;
	enum rd rd;
	enum wr wr;
	int buffers;
	bool unaligned, partial, nonblock, transform, append, verbose;
	enum touch touch;
	unsigned long touch_every;
	unsigned char xor_key;
	const char *tee;
	long long expect;
	unsigned timeout;
} opt = { .chunk = 64 * 1024, .buffers = 1, .touch_every = 1, .expect = -1, .timeout = 60 };

static struct {
	unsigned long long in, out, tee, reads, writes, partial, eagain, touched;
} cnt;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "bounce: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static void usage(const char *why) __attribute__((noreturn));
static void usage(const char *why)
{
	fprintf(stderr,
		"bounce: %s\n"
		"usage: bounce [--chunk N] [--read read|pread|recv|readv]\n"
		"              [--write write|writev|send|sendto|pwrite|writev-hdr]\n"
		"              [--buffers 1|2] [--unaligned] [--touch head|tail|none]\n"
		"              [--touch-every N] [--tee PATH] [--partial] [--nonblock]\n"
		"              [--transform] [--xor K] [--append] [--expect N]\n"
		"              [--timeout S] [--verbose] SRC DST\n"
		"SRC/DST: PATH | - | tcp:ADDR:PORT | listen:ADDR:PORT\n",
		why);
	exit(2);
}

static unsigned long long parse_num(const char *s, const char *what)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s)
		usage(what);
	switch (*end) {
	case 'k': case 'K': v <<= 10; end++; break;
	case 'm': case 'M': v <<= 20; end++; break;
	default: break;
	}
	if (*end != '\0')
		usage(what);
	return v;
}

static int pick(const char *v, const char *const *names, size_t n, const char *what)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v, names[i]) == 0)
			return (int)i;
	usage(what);
}

/* ---- endpoints ---- */

static void parse_addr(const char *spec, struct sockaddr_in *sa)
{
	char host[64];
	const char *colon = strrchr(spec, ':');
	if (colon == NULL || (size_t)(colon - spec) >= sizeof host)
		usage("endpoint must be tcp:ADDR:PORT or listen:ADDR:PORT");
	memcpy(host, spec, (size_t)(colon - spec));
	host[colon - spec] = '\0';
	memset(sa, 0, sizeof *sa);
	sa->sin_family = AF_INET;
	unsigned long long port = parse_num(colon + 1, "bad port");
	if (port == 0 || port > 65535 || inet_pton(AF_INET, host, &sa->sin_addr) != 1)
		usage("bad address or port");
	sa->sin_port = htons((uint16_t)port);
}

static int tcp_connect(const char *spec)
{
	struct sockaddr_in sa;
	parse_addr(spec, &sa);
	for (int tries = 0;; tries++) {
		int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (s < 0)
			die("socket: %s", strerror(errno));
		if (connect(s, (struct sockaddr *)&sa, sizeof sa) == 0)
			return s;
		int e = errno;
		close(s);
		if (e != ECONNREFUSED || tries >= 100)
			die("connect %s: %s", spec, strerror(e));
		usleep(50 * 1000);
	}
}

static int tcp_accept_one(const char *spec)
{
	struct sockaddr_in sa;
	parse_addr(spec, &sa);
	/* Test servers are for this machine only. */
	if ((ntohl(sa.sin_addr.s_addr) >> 24) != 127)
		usage("listen: only loopback addresses (127.x.x.x)");
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	if (l < 0 || setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
	    bind(l, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(l, 1) != 0)
		die("listen %s: %s", spec, strerror(errno));
	int s;
	do
		s = accept(l, NULL, NULL);
	while (s < 0 && errno == EINTR);
	if (s < 0)
		die("accept %s: %s", spec, strerror(errno));
	close(l);
	return s;
}

static int open_end(const char *spec, bool dst)
{
	if (strcmp(spec, "-") == 0)
		return dst ? 1 : 0;
	if (strncmp(spec, "tcp:", 4) == 0)
		return tcp_connect(spec + 4);
	if (strncmp(spec, "listen:", 7) == 0)
		return tcp_accept_one(spec + 7);
	int flags = dst ? O_WRONLY | O_CREAT | (opt.append ? O_APPEND : O_TRUNC) : O_RDONLY;
	int fd = open(spec, flags | O_CLOEXEC, 0644);
	if (fd < 0)
		die("open %s: %s", spec, strerror(errno));
	return fd;
}

static bool is_socket(int fd)
{
	struct stat st;
	return fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
}

/* ---- moving bytes ---- */

static ssize_t get(int fd, char *buf, size_t n, off_t *off)
{
	ssize_t r;
	do {
		switch (opt.rd) {
		case RD_PREAD:
			r = pread(fd, buf, n, *off);
			break;
		case RD_RECV:
			r = recv(fd, buf, n, 0);
			break;
		case RD_READV: {
			struct iovec iov[2] = { { buf, n / 2 }, { buf + n / 2, n - n / 2 } };
			r = readv(fd, iov, 2);
			break;
		}
		default:
			r = read(fd, buf, n);
			break;
		}
	} while (r < 0 && errno == EINTR);
	if (r < 0)
		die("read: %s", strerror(errno));
	*off += r;
	cnt.reads++;
	return r;
}

static void wait_writable(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLOUT };
	while (poll(&p, 1, -1) < 0)
		if (errno != EINTR)
			die("poll: %s", strerror(errno));
}

static size_t iov_total(const struct iovec *iov, int n)
{
	size_t t = 0;
	for (int i = 0; i < n; i++)
		t += iov[i].iov_len;
	return t;
}

/* Writes every byte of iov[0..n) to fd with method m, resuming partial
 * writes at the first unsent byte and waiting out EAGAIN. */
static void put(int fd, enum wr m, struct iovec *iov, int n, off_t *off)
{
	while (n > 0 && iov[0].iov_len == 0) {
		iov++;
		n--;
	}
	while (n > 0) {
		size_t want = (m == WR_WRITEV || m == WR_WRITEV_HDR) ? iov_total(iov, n) : iov[0].iov_len;
		ssize_t r;
		switch (m) {
		case WR_WRITEV:
		case WR_WRITEV_HDR:
			r = writev(fd, iov, n);
			break;
		case WR_SEND:
			r = send(fd, iov[0].iov_base, iov[0].iov_len, MSG_NOSIGNAL);
			break;
		case WR_SENDTO:
			r = sendto(fd, iov[0].iov_base, iov[0].iov_len, 0, NULL, 0);
			break;
		case WR_PWRITE:
			r = pwrite(fd, iov[0].iov_base, iov[0].iov_len, *off);
			break;
		default:
			r = write(fd, iov[0].iov_base, iov[0].iov_len);
			break;
		}
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			cnt.eagain++;
			wait_writable(fd);
			continue;
		}
		if (r <= 0)
			die("write: %s", r < 0 ? strerror(errno) : "wrote nothing");
		cnt.writes++;
		if ((size_t)r < want)
			cnt.partial++;
		*off += r;
		size_t done = (size_t)r;
		while (n > 0 && done >= iov[0].iov_len) {
			done -= iov[0].iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov[0].iov_base = (char *)iov[0].iov_base + done;
			iov[0].iov_len -= done;
		}
	}
}

static char *alloc_buffer(void)
{
	void *p;
	size_t pad = 8192;
	if (posix_memalign(&p, 4096, opt.chunk + pad) != 0)
		die("out of memory");
	memset(p, 0, opt.chunk + pad);
	return (char *)p + (opt.unaligned ? 0x571 : 0);
}

static void on_alarm(int sig)
{
	(void)sig;
	static const char m[] = "bounce: timed out\n";
	ssize_t r = write(2, m, sizeof m - 1);
	(void)r;
	_exit(1);
}

int main(int argc, char **argv)
{
	static const char *const rd_names[] = { "read", "pread", "recv", "readv" };
	static const char *const wr_names[] = { "write", "writev", "send", "sendto", "pwrite",
						"writev-hdr" };
	static const char *const touch_names[] = { "none", "head", "tail" };
	int i = 1;
	for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
		const char *o = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		bool takes = true;
		if (strcmp(o, "--") == 0) {
			i++;
			break;
		}
		if (strcmp(o, "--unaligned") == 0)
			opt.unaligned = true, takes = false;
		else if (strcmp(o, "--partial") == 0)
			opt.partial = true, takes = false;
		else if (strcmp(o, "--nonblock") == 0)
			opt.nonblock = true, takes = false;
		else if (strcmp(o, "--transform") == 0)
			opt.transform = true, takes = false;
		else if (strcmp(o, "--append") == 0)
			opt.append = true, takes = false;
		else if (strcmp(o, "--verbose") == 0)
			opt.verbose = true, takes = false;
		else if (v == NULL)
			usage("option needs a value");
		else if (strcmp(o, "--chunk") == 0)
			opt.chunk = (size_t)parse_num(v, "bad --chunk");
		else if (strcmp(o, "--read") == 0)
			opt.rd = (enum rd)pick(v, rd_names, 4, "bad --read");
		else if (strcmp(o, "--write") == 0)
			opt.wr = (enum wr)pick(v, wr_names, 6, "bad --write");
		else if (strcmp(o, "--buffers") == 0)
			opt.buffers = (int)parse_num(v, "bad --buffers");
		else if (strcmp(o, "--touch") == 0)
			opt.touch = (enum touch)pick(v, touch_names, 3, "bad --touch");
		else if (strcmp(o, "--touch-every") == 0)
			opt.touch_every = (unsigned long)parse_num(v, "bad --touch-every");
		else if (strcmp(o, "--tee") == 0)
			opt.tee = v;
		else if (strcmp(o, "--xor") == 0)
			opt.xor_key = (unsigned char)parse_num(v, "bad --xor");
		else if (strcmp(o, "--expect") == 0)
			opt.expect = (long long)parse_num(v, "bad --expect");
		else if (strcmp(o, "--timeout") == 0)
			opt.timeout = (unsigned)parse_num(v, "bad --timeout");
		else
			usage("unknown option");
		if (takes)
			i++;
	}
	if (argc - i != 2)
		usage("need SRC and DST");
	if (opt.chunk < 2 || opt.chunk > (1u << 30) || (opt.buffers != 1 && opt.buffers != 2) ||
	    opt.touch_every == 0)
		usage("bad --chunk, --buffers or --touch-every");

	signal(SIGPIPE, SIG_IGN);
	signal(SIGALRM, on_alarm);
	alarm(opt.timeout);

	int src = open_end(argv[i], false);
	int dst = open_end(argv[i + 1], true);
	int tee = -1;
	if (opt.tee) {
		tee = open(opt.tee, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (tee < 0)
			die("open %s: %s", opt.tee, strerror(errno));
	}
	if (opt.nonblock) {
		int fl = fcntl(dst, F_GETFL);
		if (fl < 0 || fcntl(dst, F_SETFL, fl | O_NONBLOCK) < 0)
			die("fcntl O_NONBLOCK: %s", strerror(errno));
	}

	char *buf[2] = { alloc_buffer(), opt.buffers == 2 ? alloc_buffer() : NULL };
	char *xbuf = opt.transform ? alloc_buffer() : NULL;
	off_t src_off = 0, dst_off = 0, tee_off = 0;
	bool header_sent = false;

	for (unsigned long long it = 0;; it++) {
		char *b = buf[opt.buffers == 2 ? it % 2 : 0];
		ssize_t r = get(src, b, opt.chunk, &src_off);
		if (r == 0)
			break;
		size_t n = (size_t)r;
		cnt.in += n;
		if (opt.touch != TOUCH_NONE && it % opt.touch_every == opt.touch_every - 1) {
			b[opt.touch == TOUCH_HEAD ? 0 : n - 1] ^= 0xff;
			cnt.touched++;
		}
		char *w = b;
		if (xbuf) {
			for (size_t k = 0; k < n; k++)
				xbuf[k] = (char)(b[k] ^ opt.xor_key);
			w = xbuf;
		}
		/* One or two calls, each a list of iovecs. */
		size_t half = opt.partial ? n / 2 : n;
		struct iovec part[2][2];
		int parts = 0, np[2] = { 0, 0 };
		if (opt.wr == WR_WRITEV_HDR && !header_sent) {
			part[0][np[0]++] = (struct iovec){ (void *)HEADER, sizeof HEADER - 1 };
			header_sent = true;
		}
		part[0][np[0]++] = (struct iovec){ w, half };
		parts = 1;
		if (half < n) {
			part[1][np[1]++] = (struct iovec){ w + half, n - half };
			parts = 2;
		}
		for (int p = 0; p < parts; p++)
			put(dst, opt.wr, part[p], np[p], &dst_off);
		cnt.out += n;
		if (tee >= 0) {
			struct iovec t = { w, n };
			put(tee, WR_WRITE, &t, 1, &tee_off);
			cnt.tee += n;
		}
	}
	if (header_sent)
		dst_off -= (off_t)(sizeof HEADER - 1);

	if (is_socket(dst) && shutdown(dst, SHUT_WR) != 0 && errno != ENOTCONN)
		die("shutdown: %s", strerror(errno));
	if (dst > 2 && close(dst) != 0)
		die("close: %s", strerror(errno));
	if (tee >= 0 && close(tee) != 0)
		die("close tee: %s", strerror(errno));
	if (src > 2)
		close(src);

	if (opt.verbose)
		fprintf(stderr,
			"bounce: %llu bytes, %llu reads, %llu writes, %llu partial, %llu eagain, "
			"%llu touched\n",
			cnt.in, cnt.reads, cnt.writes, cnt.partial, cnt.eagain, cnt.touched);
	if (cnt.out != cnt.in || (unsigned long long)dst_off != cnt.in ||
	    (tee >= 0 && (cnt.tee != cnt.in || (unsigned long long)tee_off != cnt.in)))
		die("short copy: read %llu, wrote %llu (tee %llu)", cnt.in,
		    (unsigned long long)dst_off, cnt.tee);
	if (opt.expect >= 0 && cnt.in != (unsigned long long)opt.expect)
		die("copied %llu bytes, expected %lld", cnt.in, opt.expect);
	return 0;
}
