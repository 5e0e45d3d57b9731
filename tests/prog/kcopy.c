/*
 * kcopy.c - copy SIZE bytes from a source to a destination with one
 * method and one call size, and report the wall time and the CPU time of
 * the copying process: where does a kernel path beat the plain loop?
 *
 *   kcopy [options] DIRECTION METHOD CHUNK
 *   kcopy -p [-s SIZE] [-f SRC]       create the source file and warm it
 *   kcopy -l                          list directions and their methods
 *   kcopy -S ADDR:PORT [-R MODE] [-T SEC]
 *                                     a receiving peer of its own (below)
 *
 * Methods (each call asks for at most CHUNK bytes, and never for more than
 * what is left of SIZE):
 *
 *   plain     read(src, buf, CHUNK) into a malloc'd buffer, then write the
 *             n bytes read with a write() loop (the classic copy loop)
 *   sendfile  sendfile(dst, src, NULL, CHUNK)
 *   splice    when either end is a pipe, splice(src, dst, CHUNK) directly;
 *             otherwise src -> an internal pipe -> dst, the pipe sized
 *             with F_SETPIPE_SZ to at least CHUNK (never below the
 *             kernel's default 64K; -I sets it)
 *   cfr       copy_file_range(src, NULL, dst, NULL, CHUNK, 0)
 *
 * Directions. The program builds both ends itself, on 127.0.0.1 and local
 * files, and runs each peer in a child process, so that RUSAGE_SELF is the
 * copying process alone (one thread):
 *
 *   file-pipe   file -> pipe; the peer splices the pipe to /dev/null
 *   file-tcp    file -> loopback TCP; the peer splices the socket to
 *               /dev/null through a pipe
 *   file-file   file -> tmpfs file (DST, truncated when opened)
 *   tcp-file    loopback TCP -> file; the peer sendfile()s SRC into the
 *               socket
 *   tcp-tcp     relay: a peer sendfile()s SRC into the first connection,
 *               this process copies it to a second one, whose peer splices
 *               it to /dev/null through a pipe
 *   pipe-file   pipe -> file; the peer splices SRC into the pipe
 *
 * Only the methods the kernel accepts for a direction are listed by -l:
 * copy_file_range needs two regular files, and sendfile needs a source it
 * can read at an offset (a regular file), so sockets and pipes as sources
 * are served by splice only. Asked anyway, the first refused call prints
 * status=unsupported and the exit status is 3.
 *
 * Timing starts after every endpoint is set up (peers forked, sockets
 * connected, buffer allocated and touched, internal pipe sized, DST
 * truncated), just before a sending peer is told to start; it stops when
 * the last byte is in DST for a file, and when the receiving peer has
 * reported every byte for a pipe or a socket (data still in flight counts).
 * The CPU time is getrusage(RUSAGE_SELF) user + system over the same span.
 * Note: on loopback TCP the receiving side's protocol work runs in softirq
 * context, usually charged to the sending process.
 *
 * Output, one line on stdout (key=value, MB = 10^6 bytes, GB = 10^9 bytes):
 *   kcopy dir=D method=M chunk=N bytes=N wall_s=S user_s=S sys_s=S cpu_s=S
 *         calls=N MBps=X cpu_s_per_GB=X pipe=N ipipe=N peer_chunk=N cpus=A,B
 *         status=ok
 * calls is the number of copy system calls (for plain, reads + writes);
 * pipe the capacity of the pipe to or from the peer, ipipe that of the
 * internal pipe of splice (0: none); cpus the CPU of this process and of
 * the peers (-1: not pinned).
 *
 * Options:
 *   -s SIZE   bytes to copy (K/M/G suffix; default 1G); the source file is
 *             created, or extended, to at least SIZE
 *   -f PATH   source file (default /dev/shm/nb-kcopy.src)
 *   -o PATH   destination file for *-file (default a file in /dev/shm,
 *             unlinked as soon as it is open)
 *   -P SIZE   F_SETPIPE_SZ of the pipe between this process and its peer
 *             (file-pipe, pipe-file; default: left at the kernel default)
 *   -I SIZE   size of the internal pipe of splice (default max(CHUNK, 64K))
 *   -C SIZE   call size of the sending peers (default 64K)
 *   -A MODE   CPU placement: none (default: the scheduler decides), split
 *             (this process on the first allowed CPU, the peers on the
 *             second) or same (all on the first allowed CPU)
 *   -R MODE   how a receiving peer discards: splice (default, to /dev/null,
 *             no copy) or read (into a 1M buffer: one copy, like a
 *             consumer that looks at the data)
 *   -N        set TCP_NODELAY on this process's sockets
 *   -a        page-aligned buffer for plain (as cat, dd and socat have;
 *             default: malloc's, 16 bytes into a page, as python's)
 *   -V        verify a file destination against the source afterwards
 *   -T SEC    give up after SEC seconds (default 120)
 *   -D ADDR:PORT
 *             file-tcp, tcp-tcp: connect the destination socket to a
 *             `kcopy -S` server at ADDR:PORT (IPv4, or [IPv6]:PORT)
 *             instead of a loopback pair with a forked receiving peer:
 *             the server may run in another network namespace, behind a
 *             veth pair, a qdisc, another machine. After the last byte
 *             this process shuts down its sending side and the clock
 *             stops when the server has answered with its byte count on
 *             the same connection (data still in flight counts, as
 *             above). The line gains peer_cpu_s (the server's user+sys
 *             CPU for this connection) and dest=ADDR:PORT. -A places
 *             this process (and a sending peer) only: the server is
 *             placed by whoever starts it (taskset).
 *
 * Server mode, -S ADDR:PORT: listen there (port 0: any; the line below
 * says which) and serve connections one at a time: receive until EOF as a
 * receiving peer does (-R), then write back the byte count and the CPU
 * time used, as two native-endian uint64 (bytes, microseconds), and close.
 * It prints "kcopy-server listen=ADDR:PORT status=listening" once, then one
 * "kcopy-server bytes=N cpu_s=X status=ok|error ..." line per connection
 * (flushed), and exits after -T seconds (default 120) or when killed. A
 * failed connection is reported and the next one served.
 *
 * Exit status: 0 on success, 1 on an error or short copy, 2 on bad usage,
 * 3 when the kernel refuses the method for this direction.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

#define DEFAULT_SRC "/dev/shm/nb-kcopy.src"
#define PEER_PIPE (1024 * 1024)   /* receiving peers' pipe and call size */
#define MIN_IPIPE (64 * 1024)     /* the kernel's default pipe capacity */

enum dir { D_FILE_PIPE, D_FILE_TCP, D_FILE_FILE, D_TCP_FILE, D_TCP_TCP, D_PIPE_FILE, ND };
enum method { M_PLAIN, M_SENDFILE, M_SPLICE, M_CFR, NM };
enum kind { K_FILE, K_TCP, K_PIPE };
enum affinity { AFF_NONE, AFF_SPLIT, AFF_SAME };
static const char *const aff_names[] = { "none", "split", "same" };

static const char *const dir_names[ND] = {
	"file-pipe", "file-tcp", "file-file", "tcp-file", "tcp-tcp", "pipe-file",
};
static const char *const method_names[NM] = { "plain", "sendfile", "splice", "cfr" };
static const enum kind src_kind[ND] = { K_FILE, K_FILE, K_FILE, K_TCP, K_TCP, K_PIPE };
static const enum kind dst_kind[ND] = { K_PIPE, K_TCP, K_FILE, K_FILE, K_TCP, K_FILE };

#define BIT(m) (1u << (m))
/* What the kernel accepts per direction (see the header comment). */
static const unsigned applicable[ND] = {
	[D_FILE_PIPE] = BIT(M_PLAIN) | BIT(M_SENDFILE) | BIT(M_SPLICE),
	[D_FILE_TCP] = BIT(M_PLAIN) | BIT(M_SENDFILE) | BIT(M_SPLICE),
	[D_FILE_FILE] = BIT(M_PLAIN) | BIT(M_SENDFILE) | BIT(M_SPLICE) | BIT(M_CFR),
	[D_TCP_FILE] = BIT(M_PLAIN) | BIT(M_SPLICE),
	[D_TCP_TCP] = BIT(M_PLAIN) | BIT(M_SPLICE),
	[D_PIPE_FILE] = BIT(M_PLAIN) | BIT(M_SPLICE),
};

static struct {
	unsigned long long size;
	const char *src, *dst;
	size_t pipe_size, ipipe, peer_chunk;
	bool verify;
	bool handler;   /* -H: a signal handler installed, as servers have */
	unsigned timeout;
	int affinity; /* AFF_* */
	bool peer_read; /* -R read: the receiving peer reads instead of splicing */
	bool nodelay;   /* -N: TCP_NODELAY on this process's sockets */
	bool aligned;   /* -a: page-aligned plain buffer (cat, dd, socat) */
	const char *dest;   /* -D ADDR:PORT: a kcopy -S server as the TCP receiver */
	const char *listen; /* -S ADDR:PORT: be that server */
} opt = { .size = 1ull << 30, .src = DEFAULT_SRC, .peer_chunk = 64 * 1024, .timeout = 120 };

static enum dir dir;
static enum method method;
static size_t chunk;

/* The peers, stopped when the copying process gives up. */
static pid_t main_pid, peers[2];
static int npeers;

static void stop_peers(void)
{
	if (getpid() != main_pid)
		return;
	for (int i = 0; i < npeers; i++)
		if (peers[i] > 0) {
			kill(peers[i], SIGKILL);
			waitpid(peers[i], NULL, 0);
			peers[i] = -1;
		}
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;
	int e = errno;
	fprintf(stderr, "kcopy[%d]: ", (int)getpid());
	va_start(ap, fmt);
	errno = e;
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	stop_peers();
	exit(1);
}

static void on_usr2(int sig)
{
	(void)sig;
}

static void usage(const char *why) __attribute__((noreturn));
static void usage(const char *why)
{
	fprintf(stderr,
		"kcopy: %s\n"
		"usage: kcopy [-s SIZE] [-f SRC] [-o DST] [-P SIZE] [-I SIZE] [-C SIZE]\n"
		"             [-A none|split|same] [-R splice|read] [-N] [-V] [-T SEC] [-H]\n"
		"             [-D ADDR:PORT] DIRECTION METHOD CHUNK\n"
		"       kcopy -S ADDR:PORT [-R splice|read] [-T SEC]   receiving server\n"
		"       kcopy -p [-s SIZE] [-f SRC]    create and warm the source file\n"
		"       kcopy -l                       list directions and methods\n",
		why);
	exit(2);
}

static unsigned long long parse_size(const char *s, const char *what)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || *s == '-')
		usage(what);
	switch (*end) {
	case 'k': case 'K': v <<= 10; end++; break;
	case 'm': case 'M': v <<= 20; end++; break;
	case 'g': case 'G': v <<= 30; end++; break;
	default: break;
	}
	if (*end != '\0')
		usage(what);
	return v;
}

static int pick(const char *v, const char *const *names, int n, const char *what)
{
	for (int i = 0; i < n; i++)
		if (strcmp(v, names[i]) == 0)
			return i;
	usage(what);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double tv_s(struct timeval tv)
{
	return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

/* ---- source file ---- */

/* The source: SIZE bytes of a xorshift pattern (no zero pages, nothing a
 * file system could compress or share), written once and reused while it
 * is large enough. Built under a temporary name, then renamed. */
static void prepare_source(bool warm)
{
	struct stat st;
	if (stat(opt.src, &st) == 0 && S_ISREG(st.st_mode) &&
	    (unsigned long long)st.st_size >= opt.size && !warm)
		return;
	if (stat(opt.src, &st) != 0 || (unsigned long long)st.st_size < opt.size) {
		char tmp[4096];
		snprintf(tmp, sizeof tmp, "%s.tmp.%d", opt.src, (int)getpid());
		int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd < 0)
			die("create %s: %s", tmp, strerror(errno));
		size_t blk = 1 << 20;
		uint64_t *buf = malloc(blk), x = 0x9e3779b97f4a7c15ull;
		if (buf == NULL)
			die("malloc");
		for (unsigned long long off = 0; off < opt.size; off += blk) {
			for (size_t i = 0; i < blk / 8; i++) {
				x ^= x << 13;
				x ^= x >> 7;
				x ^= x << 17;
				buf[i] = x;
			}
			size_t n = opt.size - off < blk ? (size_t)(opt.size - off) : blk;
			if (pwrite(fd, buf, n, (off_t)off) != (ssize_t)n)
				die("write %s: %s", tmp, strerror(errno));
		}
		free(buf);
		if (close(fd) != 0 || rename(tmp, opt.src) != 0)
			die("rename %s: %s", tmp, strerror(errno));
	}
	if (warm) {
		/* tmpfs is always resident; on another file system this reads
		 * the file once so that it is in the page cache. */
		int fd = open(opt.src, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			die("open %s: %s", opt.src, strerror(errno));
		char *buf = malloc(1 << 20);
		if (buf == NULL)
			die("malloc");
		unsigned long long got = 0;
		ssize_t r;
		while (got < opt.size && (r = read(fd, buf, 1 << 20)) > 0)
			got += (unsigned long long)r;
		free(buf);
		close(fd);
	}
}

/* ---- endpoints ---- */

/* Both ends of one loopback TCP connection, made here; fork hands one of
 * them to the peer. */
static void tcp_pair(int *a, int *b)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof sa;
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l < 0 || bind(l, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(l, 1) != 0 ||
	    getsockname(l, (struct sockaddr *)&sa, &len) != 0)
		die("listen on 127.0.0.1: %s", strerror(errno));
	*a = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (*a < 0 || connect(*a, (struct sockaddr *)&sa, sizeof sa) != 0)
		die("connect: %s", strerror(errno));
	do
		*b = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	while (*b < 0 && errno == EINTR);
	if (*b < 0)
		die("accept: %s", strerror(errno));
	close(l);
}

static void make_pipe(int p[2], size_t size)
{
	if (pipe2(p, O_CLOEXEC) != 0)
		die("pipe: %s", strerror(errno));
	if (size > 0 && fcntl(p[1], F_SETPIPE_SZ, (int)size) < 0)
		die("F_SETPIPE_SZ %zu: %s", size, strerror(errno));
}

/* ---- peers (child processes) ---- */

static void write_full(int fd, const void *p, size_t n, const char *what)
{
	if (write_fully(fd, p, n) != 0)
		die("%s: %s", what, errno ? strerror(errno) : "wrote 0");
}

/* Keep only the listed descriptors (and 0-2): the peer must not hold a
 * copy of an end whose EOF someone waits for. */
static void keep_only(const int *keep, int n)
{
	for (int fd = 3; fd < 1024; fd++) {
		bool k = false;
		for (int i = 0; i < n; i++)
			k |= keep[i] == fd;
		if (!k)
			close(fd);
	}
}

/* -A: which CPU a process may run on (the n-th allowed one). */
static int cpu_of[2] = { -1, -1 }; /* copying process, peers */

static void pick_cpus(void)
{
	cpu_set_t set;
	if (opt.affinity == AFF_NONE)
		return;
	if (sched_getaffinity(0, sizeof set, &set) != 0)
		die("sched_getaffinity: %s", strerror(errno));
	int n = 0;
	for (int c = 0; c < CPU_SETSIZE && n < 2; c++)
		if (CPU_ISSET(c, &set))
			cpu_of[n++] = c;
	if (n < 2 && opt.affinity == AFF_SPLIT)
		die("-A split needs two CPUs, this process may use %d", n);
	if (opt.affinity == AFF_SAME)
		cpu_of[1] = cpu_of[0];
}

static void pin(int who)
{
	cpu_set_t set;
	if (cpu_of[who] < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu_of[who], &set);
	if (sched_setaffinity(0, sizeof set, &set) != 0)
		die("sched_setaffinity %d: %s", cpu_of[who], strerror(errno));
}

static void peer_setup(void)
{
	pin(1);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	signal(SIGPIPE, SIG_IGN);
	alarm(opt.timeout);
}

/* What a receiving peer discards into: /dev/null, and a pipe of its own
 * when it splices from a socket, or a buffer for -R read. Set up once,
 * before the first byte (a server reuses it for every connection). */
struct sink {
	int null, p[2];
	char *buf;
};

static void sink_open(struct sink *k, bool is_pipe)
{
	k->null = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (k->null < 0)
		die("peer: /dev/null: %s", strerror(errno));
	k->p[0] = k->p[1] = -1;
	if (!is_pipe && !opt.peer_read)
		make_pipe(k->p, PEER_PIPE);
	k->buf = NULL;
	if (opt.peer_read) {
		k->buf = malloc(PEER_PIPE);
		if (k->buf == NULL)
			die("peer: malloc");
		memset(k->buf, 0, PEER_PIPE);
	}
}

/* Receive everything from fd until EOF: splice it to /dev/null (directly
 * from a pipe, through the sink's pipe from a socket), or with -R read
 * read it into a buffer. Returns 0, or -1 with *what naming the failed
 * step and errno set (0 for a short splice); *total is what was received
 * either way. */
static int discard(struct sink *k, int fd, uint64_t *total, const char **what)
{
	bool via_pipe = k->p[0] >= 0;
	*total = 0;
	for (;;) {
		ssize_t r = opt.peer_read ? read(fd, k->buf, PEER_PIPE)
					  : splice(fd, NULL, via_pipe ? k->p[1] : k->null, NULL,
						   PEER_PIPE, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			*what = "receive";
			return -1;
		}
		if (r == 0)
			return 0;
		*total += (uint64_t)r;
		for (ssize_t left = via_pipe ? r : 0; left > 0;) {
			ssize_t w = splice(k->p[0], NULL, k->null, NULL, (size_t)left, 0);
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0) {
				if (w == 0)
					errno = 0;
				*what = "splice to /dev/null";
				return -1;
			}
			left -= w;
		}
	}
}

/* Receiving peer: discard everything from fd, then report the byte count
 * on status. */
static void peer_discard(int fd, bool is_pipe, int status) __attribute__((noreturn));
static void peer_discard(int fd, bool is_pipe, int status)
{
	struct sink k;
	sink_open(&k, is_pipe);
	uint64_t total;
	const char *what;
	if (discard(&k, fd, &total, &what) != 0)
		die("peer: %s: %s", what, errno ? strerror(errno) : "0");
	write_full(status, &total, sizeof total, "peer: status");
	_exit(0);
}

/* ---- -D / -S: a receiving peer at an address ---- */

/* "A.B.C.D:PORT" or "[V6]:PORT", numeric only (no name lookup). */
static void parse_addr(const char *spec, struct sockaddr_storage *ss, socklen_t *len,
		       const char *what)
{
	char host[256];
	const char *colon = strrchr(spec, ':');
	if (colon == NULL || colon == spec || colon[1] == '\0' ||
	    (size_t)(colon - spec) >= sizeof host)
		usage(what);
	size_t n = (size_t)(colon - spec);
	const char *h = spec;
	if (spec[0] == '[') {
		if (n < 3 || spec[n - 1] != ']')
			usage(what);
		h++;
		n -= 2;
	}
	memcpy(host, h, n);
	host[n] = '\0';
	struct addrinfo hints, *ai;
	memset(&hints, 0, sizeof hints);
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo(host, colon + 1, &hints, &ai) != 0)
		usage(what);
	memcpy(ss, ai->ai_addr, ai->ai_addrlen);
	*len = ai->ai_addrlen;
	freeaddrinfo(ai);
}

static void fmt_addr(const struct sockaddr_storage *ss, char *out, size_t size)
{
	char h[INET6_ADDRSTRLEN];
	const void *a = ss->ss_family == AF_INET6
				? (const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr
				: (const void *)&((const struct sockaddr_in *)ss)->sin_addr;
	unsigned port = ntohs(ss->ss_family == AF_INET6
				      ? ((const struct sockaddr_in6 *)ss)->sin6_port
				      : ((const struct sockaddr_in *)ss)->sin_port);
	if (inet_ntop(ss->ss_family, a, h, sizeof h) == NULL)
		snprintf(h, sizeof h, "?");
	snprintf(out, size, ss->ss_family == AF_INET6 ? "[%s]:%u" : "%s:%u", h, port);
}

static int dial(const char *spec)
{
	struct sockaddr_storage ss;
	socklen_t len;
	parse_addr(spec, &ss, &len, "bad -D (want ADDR:PORT or [ADDR]:PORT)");
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die("socket: %s", strerror(errno));
	int r;
	do
		r = connect(fd, (struct sockaddr *)&ss, len);
	while (r != 0 && errno == EINTR);
	if (r != 0)
		die("connect %s: %s", spec, strerror(errno));
	return fd;
}

/* What a server answers per connection. */
struct answer {
	uint64_t bytes, cpu_us;
};

static uint64_t cpu_us_now(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (uint64_t)ru.ru_utime.tv_sec * 1000000u + (uint64_t)ru.ru_utime.tv_usec +
	       (uint64_t)ru.ru_stime.tv_sec * 1000000u + (uint64_t)ru.ru_stime.tv_usec;
}

/* -S: serve connections one at a time until the alarm (-T) or a signal. */
static void serve(void) __attribute__((noreturn));
static void serve(void)
{
	struct sockaddr_storage ss;
	socklen_t len;
	char where[INET6_ADDRSTRLEN + 16];
	parse_addr(opt.listen, &ss, &len, "bad -S (want ADDR:PORT or [ADDR]:PORT)");
	int one = 1;
	int l = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l < 0 || setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
	    bind(l, (struct sockaddr *)&ss, len) != 0 || listen(l, 4) != 0 ||
	    getsockname(l, (struct sockaddr *)&ss, &len) != 0)
		die("listen on %s: %s", opt.listen, strerror(errno));
	fmt_addr(&ss, where, sizeof where);
	printf("kcopy-server listen=%s status=listening\n", where);
	fflush(stdout);
	struct sink k;
	sink_open(&k, false);
	for (;;) {
		int c = accept4(l, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0 && errno == EINTR)
			continue;
		if (c < 0)
			die("accept: %s", strerror(errno));
		uint64_t t0 = cpu_us_now();
		struct answer a;
		const char *what;
		int r = discard(&k, c, &a.bytes, &what);
		a.cpu_us = cpu_us_now() - t0;
		if (r == 0) {
			/* The client waits for this answer: it stops its clock. */
			const char *p = (const char *)&a;
			size_t left = sizeof a;
			while (left > 0) {
				ssize_t w = write(c, p, left);
				if (w < 0 && errno == EINTR)
					continue;
				if (w <= 0) {
					what = "answer";
					r = -1;
					break;
				}
				p += w;
				left -= (size_t)w;
			}
		}
		if (r == 0)
			printf("kcopy-server bytes=%llu cpu_s=%.6f status=ok\n",
			       (unsigned long long)a.bytes, (double)a.cpu_us / 1e6);
		else
			printf("kcopy-server bytes=%llu cpu_s=%.6f status=error step=\"%s\" error=\"%s\"\n",
			       (unsigned long long)a.bytes, (double)a.cpu_us / 1e6, what,
			       errno ? strerror(errno) : "short");
		fflush(stdout);
		close(c);
		/* A pipe left holding part of a failed connection's bytes
		 * would be counted for the next one: start it afresh. */
		if (r != 0 && k.p[0] >= 0) {
			close(k.p[0]);
			close(k.p[1]);
			make_pipe(k.p, PEER_PIPE);
		}
	}
}

/* Sending peer: wait for the go byte, then send SIZE bytes of the source
 * with sendfile (to a socket) or splice (to a pipe), and close. */
static void peer_send(int fd, bool is_pipe, int go) __attribute__((noreturn));
static void peer_send(int fd, bool is_pipe, int go)
{
	int src = open(opt.src, O_RDONLY | O_CLOEXEC);
	if (src < 0)
		die("peer: open %s: %s", opt.src, strerror(errno));
	char c;
	ssize_t g;
	do
		g = read(go, &c, 1);
	while (g < 0 && errno == EINTR);
	if (g != 1)
		_exit(0); /* the copying process gave up before starting */
	loff_t off = 0;
	while ((unsigned long long)off < opt.size) {
		unsigned long long left = opt.size - (unsigned long long)off;
		size_t n = left < opt.peer_chunk ? (size_t)left : opt.peer_chunk;
		ssize_t r = is_pipe ? splice(src, &off, fd, NULL, n, 0) : sendfile(fd, src, &off, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EPIPE)
			_exit(1);
		if (r <= 0)
			die("peer: %s: %s", is_pipe ? "splice" : "sendfile",
			    r < 0 ? strerror(errno) : "0 bytes");
	}
	close(fd);
	_exit(0);
}

static pid_t fork_peer(void)
{
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (pid == 0)
		peer_setup();
	return pid;
}

/* ---- the copy ---- */

static unsigned long long calls;

static bool refused(int e)
{
	return e == EINVAL || e == ESPIPE || e == EXDEV || e == EOPNOTSUPP || e == ENOSYS ||
	       e == EBADF;
}

static void unsupported(const char *call) __attribute__((noreturn));
static void unsupported(const char *call)
{
	int e = errno;
	stop_peers();
	printf("kcopy dir=%s method=%s chunk=%zu status=unsupported call=%s errno=%s\n",
	       dir_names[dir], method_names[method], chunk, call, strerrorname_np(e));
	fflush(stdout);
	exit(3);
}

/* One failed call: the first one may be the kernel refusing the method. */
static void call_failed(const char *call) __attribute__((noreturn));
static void call_failed(const char *call)
{
	if (calls <= 1 && refused(errno))
		unsupported(call);
	die("%s: %s (after %llu calls)", call, strerror(errno), calls);
}

static void copy(int src, int dst, int ip[2], char *buf)
{
	unsigned long long left = opt.size;
	bool direct = src_kind[dir] == K_PIPE || dst_kind[dir] == K_PIPE;
	while (left > 0) {
		size_t n = left < chunk ? (size_t)left : chunk;
		ssize_t r;
		calls++;
		switch (method) {
		case M_PLAIN:
			r = read(src, buf, n);
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0)
				die("read: %s", strerror(errno));
			for (ssize_t done = 0; done < r;) {
				calls++;
				ssize_t w = write(dst, buf + done, (size_t)(r - done));
				if (w < 0 && errno == EINTR)
					continue;
				if (w <= 0)
					die("write: %s", w < 0 ? strerror(errno) : "wrote 0");
				done += w;
			}
			break;
		case M_SENDFILE:
			r = sendfile(dst, src, NULL, n);
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0)
				call_failed("sendfile");
			break;
		case M_CFR:
			r = copy_file_range(src, NULL, dst, NULL, n, 0);
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0)
				call_failed("copy_file_range");
			break;
		case M_SPLICE:
			r = splice(src, NULL, direct ? dst : ip[1], NULL, n, 0);
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0)
				call_failed("splice");
			for (ssize_t pend = direct ? 0 : r; pend > 0;) {
				calls++;
				ssize_t w = splice(ip[0], NULL, dst, NULL, (size_t)pend, 0);
				if (w < 0 && errno == EINTR)
					continue;
				if (w <= 0)
					die("splice from pipe: %s", w < 0 ? strerror(errno) : "0");
				pend -= w;
			}
			break;
		default:
			abort();
		}
		if (r == 0)
			die("%s: early end of source, %llu bytes short", method_names[method], left);
		left -= (unsigned long long)r;
	}
}

static void verify(int dst)
{
	int src = open(opt.src, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (src < 0 || fstat(dst, &st) != 0)
		die("verify: %s", strerror(errno));
	if ((unsigned long long)st.st_size != opt.size)
		die("verify: destination has %lld bytes, want %llu", (long long)st.st_size, opt.size);
	if (opt.size == 0)
		return;
	void *a = mmap(NULL, opt.size, PROT_READ, MAP_SHARED, src, 0);
	void *b = mmap(NULL, opt.size, PROT_READ, MAP_SHARED, dst, 0);
	if (a == MAP_FAILED || b == MAP_FAILED)
		die("verify: mmap: %s", strerror(errno));
	if (memcmp(a, b, opt.size) != 0)
		die("verify: destination differs from the source");
	munmap(a, opt.size);
	munmap(b, opt.size);
	close(src);
}

int main(int argc, char **argv)
{
	bool prep = false;
	int o;
	while ((o = getopt(argc, argv, "s:f:o:P:I:C:A:R:NaVT:HplhD:S:")) != -1) {
		switch (o) {
		case 's': opt.size = parse_size(optarg, "bad -s"); break;
		case 'f': opt.src = optarg; break;
		case 'o': opt.dst = optarg; break;
		case 'P': opt.pipe_size = parse_size(optarg, "bad -P"); break;
		case 'I': opt.ipipe = parse_size(optarg, "bad -I"); break;
		case 'C': opt.peer_chunk = parse_size(optarg, "bad -C"); break;
		case 'A': opt.affinity = pick(optarg, aff_names, 3, "bad -A"); break;
		case 'R': {
			static const char *const rn[] = { "splice", "read" };
			opt.peer_read = pick(optarg, rn, 2, "bad -R") == 1;
			break;
		}
		case 'N': opt.nodelay = true; break;
		case 'a': opt.aligned = true; break;
		case 'V': opt.verify = true; break;
		case 'T': opt.timeout = (unsigned)parse_size(optarg, "bad -T"); break;
		case 'H': opt.handler = true; break;
		case 'p': prep = true; break;
		case 'D': opt.dest = optarg; break;
		case 'S': opt.listen = optarg; break;
		case 'l':
			for (int d = 0; d < ND; d++) {
				printf("%s", dir_names[d]);
				for (int m = 0; m < NM; m++)
					if (applicable[d] & BIT(m))
						printf(" %s", method_names[m]);
				putchar('\n');
			}
			return 0;
		default: usage("bad option");
		}
	}
	if (prep) {
		if (optind != argc)
			usage("-p takes no operands");
		prepare_source(true);
		return 0;
	}
	if (opt.listen) {
		if (optind != argc || opt.dest)
			usage("-S takes no operands and no -D");
		main_pid = getpid();
		signal(SIGPIPE, SIG_IGN);
		alarm(opt.timeout);
		serve();
	}
	if (argc - optind != 3)
		usage("need DIRECTION METHOD CHUNK");
	dir = (enum dir)pick(argv[optind], dir_names, ND, "unknown direction (try -l)");
	method = (enum method)pick(argv[optind + 1], method_names, NM, "unknown method");
	chunk = parse_size(argv[optind + 2], "bad CHUNK");
	if (chunk == 0 || chunk > (1u << 30) || opt.peer_chunk == 0 || opt.size == 0 ||
	    opt.pipe_size > (1u << 30) || opt.ipipe > (1u << 30))
		usage("sizes out of range");
	if (opt.dest && dst_kind[dir] != K_TCP)
		usage("-D needs a direction to TCP (file-tcp, tcp-tcp)");
	signal(SIGPIPE, SIG_IGN);
	if (opt.handler) /* as servers have (SIGHUP, SIGUSR1, ...): never raised */
		signal(SIGUSR2, on_usr2);
	alarm(opt.timeout);
	prepare_source(false);
	pick_cpus();
	pin(0);

	/* Endpoints: src/dst are this process's; the peers get the others. */
	int src = -1, dst = -1, go = -1, status = -1;
	int ctl[2];
	main_pid = getpid();

	if (src_kind[dir] == K_FILE) {
		src = open(opt.src, O_RDONLY | O_CLOEXEC);
		if (src < 0)
			die("open %s: %s", opt.src, strerror(errno));
	} else {
		int end, gp[2], p[2];
		if (pipe2(gp, O_CLOEXEC) != 0)
			die("pipe: %s", strerror(errno));
		if (src_kind[dir] == K_TCP)
			tcp_pair(&src, &end);
		else {
			make_pipe(p, opt.pipe_size);
			src = p[0];
			end = p[1];
		}
		if ((peers[npeers++] = fork_peer()) == 0) {
			int keep[] = { end, gp[0] };
			keep_only(keep, 2);
			peer_send(end, src_kind[dir] == K_PIPE, gp[0]);
		}
		close(end);
		close(gp[0]);
		go = gp[1];
	}

	char dstpath[4096];
	if (dst_kind[dir] == K_FILE) {
		if (opt.dst)
			snprintf(dstpath, sizeof dstpath, "%s", opt.dst);
		else
			snprintf(dstpath, sizeof dstpath, "/dev/shm/nb-kcopy.dst.%d", (int)getpid());
		/* O_RDWR: -V maps it afterwards. */
		dst = open(dstpath, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (dst < 0)
			die("open %s: %s", dstpath, strerror(errno));
		if (!opt.dst)
			unlink(dstpath);
	} else if (opt.dest) {
		dst = dial(opt.dest); /* the server's answer comes back on it */
	} else {
		int end, p[2];
		if (pipe2(ctl, O_CLOEXEC) != 0)
			die("pipe: %s", strerror(errno));
		if (dst_kind[dir] == K_TCP)
			tcp_pair(&dst, &end);
		else {
			make_pipe(p, opt.pipe_size);
			dst = p[1];
			end = p[0];
		}
		if ((peers[npeers++] = fork_peer()) == 0) {
			int keep[] = { end, ctl[1] };
			keep_only(keep, 2);
			peer_discard(end, dst_kind[dir] == K_PIPE, ctl[1]);
		}
		close(end);
		close(ctl[1]);
		status = ctl[0];
	}

	if (opt.nodelay) {
		int one = 1;
		if ((src_kind[dir] == K_TCP &&
		     setsockopt(src, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0) ||
		    (dst_kind[dir] == K_TCP &&
		     setsockopt(dst, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0))
			die("TCP_NODELAY: %s", strerror(errno));
	}

	/* The copy's own state, ready before the clock starts. */
	char *buf = NULL;
	int ip[2] = { -1, -1 };
	size_t ipipe = 0, pipe_now = 0;
	if (method == M_PLAIN) {
		if (opt.aligned) {
			void *p = NULL;
			if (posix_memalign(&p, (size_t)sysconf(_SC_PAGESIZE), chunk) != 0)
				p = NULL;
			buf = p;
		} else {
			buf = malloc(chunk);
		}
		if (buf == NULL)
			die("malloc %zu", chunk);
		memset(buf, 0, chunk);
	}
	if (method == M_SPLICE && src_kind[dir] != K_PIPE && dst_kind[dir] != K_PIPE) {
		size_t want = opt.ipipe ? opt.ipipe : chunk < MIN_IPIPE ? MIN_IPIPE : chunk;
		make_pipe(ip, want);
		ipipe = (size_t)fcntl(ip[1], F_GETPIPE_SZ);
	}
	if (src_kind[dir] == K_PIPE)
		pipe_now = (size_t)fcntl(src, F_GETPIPE_SZ);
	if (dst_kind[dir] == K_PIPE)
		pipe_now = (size_t)fcntl(dst, F_GETPIPE_SZ);

	struct rusage ru0, ru1;
	getrusage(RUSAGE_SELF, &ru0);
	double t0 = now_s();
	if (go >= 0)
		write_full(go, "g", 1, "go");
	copy(src, dst, ip, buf);
	if (status >= 0) {
		/* EOF for the receiver, then wait for its count. */
		close(dst);
		uint64_t got = 0;
		ssize_t r;
		do
			r = read(status, &got, sizeof got);
		while (r < 0 && errno == EINTR);
		if (r != (ssize_t)sizeof got)
			die("receiving peer failed");
		if (got != opt.size)
			die("receiving peer got %llu bytes, want %llu", (unsigned long long)got,
			    opt.size);
	}
	struct answer ans = { 0, 0 };
	if (opt.dest) {
		/* EOF for the server, then its answer on the same socket. */
		if (shutdown(dst, SHUT_WR) != 0)
			die("shutdown: %s", strerror(errno));
		size_t have = 0;
		while (have < sizeof ans) {
			ssize_t r = read(dst, (char *)&ans + have, sizeof ans - have);
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				die("server at %s did not answer: %s", opt.dest,
				    r < 0 ? strerror(errno) : "EOF");
			have += (size_t)r;
		}
		if (ans.bytes != opt.size)
			die("server at %s got %llu bytes, want %llu", opt.dest,
			    (unsigned long long)ans.bytes, opt.size);
	}
	double t1 = now_s();
	getrusage(RUSAGE_SELF, &ru1);

	if (go >= 0) {
		/* The source must be exhausted: exactly SIZE bytes were sent. */
		char extra;
		ssize_t r = read(src, &extra, 1);
		if (r != 0)
			die("source not at its end after %llu bytes", opt.size);
	}
	for (int i = 0; i < npeers; i++) {
		int st;
		pid_t pid = peers[i];
		peers[i] = -1;
		if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
			die("peer %d failed", (int)pid);
	}
	if (dst_kind[dir] == K_FILE && opt.verify)
		verify(dst);
	free(buf);

	double wall = t1 - t0;
	double user = tv_s(ru1.ru_utime) - tv_s(ru0.ru_utime);
	double sys = tv_s(ru1.ru_stime) - tv_s(ru0.ru_stime);
	double gb = (double)opt.size / 1e9;
	printf("kcopy dir=%s method=%s chunk=%zu bytes=%llu wall_s=%.6f user_s=%.6f sys_s=%.6f "
	       "cpu_s=%.6f calls=%llu MBps=%.1f cpu_s_per_GB=%.4f pipe=%zu ipipe=%zu "
	       "peer_chunk=%zu cpus=%d,%d",
	       dir_names[dir], method_names[method], chunk, opt.size, wall, user, sys, user + sys,
	       calls, (double)opt.size / 1e6 / wall, (user + sys) / gb, pipe_now, ipipe,
	       src_kind[dir] == K_FILE ? (size_t)0 : opt.peer_chunk, cpu_of[0], cpu_of[1]);
	if (opt.dest)
		printf(" peer_cpu_s=%.6f dest=%s", (double)ans.cpu_us / 1e6, opt.dest);
	printf(" status=ok\n");
	return 0;
}
