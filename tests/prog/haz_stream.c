/*
 * haz_stream.c - read(2)'s contract on stream sources, one scenario per run.
 *
 *   haz_stream SCENARIO OUTFILE
 *
 * A forked sender feeds a TCP connection on 127.0.0.1 or a pipe; this
 * process copies what it reads into OUTFILE with a read/write loop (the
 * loop a preloaded library arms on) and prints on stdout everything it
 * can observe that does not depend on timing: the total, errors, and what
 * the scenario checks. tests/integration/33-stream-contract.sh runs each
 * scenario plain and preloaded and requires the same stdout, exit status
 * and OUTFILE.
 *
 * Scenarios:
 *   oob / oob-inline   4 MiB with one urgent byte (MSG_OOB) in the
 *                      middle, SO_OOBINLINE off / on; read until EOF.
 *   epollet            16 MiB, an EPOLLET reader of 256K chunks that
 *                      takes n < size as "wait for the next edge"; the
 *                      sender does not close, so a stall stays a stall
 *                      (epoll_wait times out after 5 s: "stalled").
 *   epollet-aligned    the same with a page-aligned 4 MiB buffer.
 *   rdhup              16 MiB then FIN; a level-triggered reader that
 *                      takes "short read and EPOLLRDHUP seen" as the end
 *                      (haproxy's raw_sock_to_buf).
 *   packet             a pipe: 12.5 MiB in 256K writes, then the writer
 *                      sets O_DIRECT on its end (packet mode) and writes
 *                      packets of 4000 bytes; read in 256K. Every read in
 *                      the packet part must return exactly one packet.
 *   ring               32 MiB over TCP read into one 2 MiB buffer at
 *                      overlapping places (base + 3 pages + 100, base,
 *                      base + 5 pages), each read written out.
 *
 * Exit status: 0, 1 on a setup error or a broken contract, 2 on usage.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"

#define MiB (1024L * 1024L)

static int out_fd = -1;
static long pg;

static void die(const char *what)
{
	printf("setup error: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* Position-dependent bytes: a lost, doubled or stale block shows. */
static void pattern(unsigned char *b, size_t n, uint64_t off)
{
	for (size_t i = 0; i < n; i++) {
		uint64_t x = (off + i) * 0x9E3779B97F4A7C15ull;
		b[i] = (unsigned char)(x >> 56);
	}
}

static void write_all(int fd, const void *buf, size_t n)
{
	if (write_fully(fd, buf, n) != 0) {
		printf("write error: %s\n", errno ? strerror(errno) : "0");
		exit(1);
	}
}

/* The sender's half: len bytes of the pattern in 256K writes. */
static void send_pattern(int fd, uint64_t from, size_t len)
{
	static unsigned char b[256 * 1024];
	while (len > 0) {
		size_t k = len < sizeof b ? len : sizeof b;
		pattern(b, k, from);
		write_all(fd, b, k);
		from += k;
		len -= k;
	}
}

/* A TCP connection on 127.0.0.1: the child gets one end (its function
 * runs, then it exits), this process the other. */
static int tcp_pair(void (*child)(int), pid_t *pid)
{
	int l = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET };
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t sl = sizeof sa;
	if (l < 0 || bind(l, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(l, 1) != 0 ||
	    getsockname(l, (struct sockaddr *)&sa, &sl) != 0)
		die("listen");
	*pid = fork();
	if (*pid < 0)
		die("fork");
	if (*pid == 0) {
		alarm(60);
		close(l);
		int c = socket(AF_INET, SOCK_STREAM, 0);
		if (c < 0 || connect(c, (struct sockaddr *)&sa, sizeof sa) != 0)
			_exit(3);
		child(c);
		_exit(0);
	}
	int s = accept(l, NULL, NULL);
	if (s < 0)
		die("accept");
	close(l);
	return s;
}

static int reap(pid_t pid)
{
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* ---- urgent data ---- */

static void oob_sender(int c)
{
	send_pattern(c, 0, 2 * MiB);
	if (send(c, "U", 1, MSG_OOB) != 1)
		_exit(4);
	send_pattern(c, 2 * MiB, 2 * MiB);
	close(c);
}

static int oob(bool inline_)
{
	pid_t pid;
	int s = tcp_pair(oob_sender, &pid);
	int on = inline_;
	if (setsockopt(s, SOL_SOCKET, SO_OOBINLINE, &on, sizeof on) != 0)
		die("SO_OOBINLINE");
	size_t sz = 256 * 1024;
	char *buf = malloc(sz);
	long total = 0;
	for (;;) {
		ssize_t n = read(s, buf, sz);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			printf("read: %s after %ld\n", strerror(errno), total);
			return 1;
		}
		if (n == 0)
			break;
		write_all(out_fd, buf, (size_t)n);
		total += n;
	}
	printf("received %ld bytes until end of stream\n", total);
	printf("sender exit %d\n", reap(pid));
	return 0;
}

/* ---- edge-triggered reader ---- */

static void hold_sender(int c)
{
	/* Everything, then wait for the reader to close: no FIN that could
	 * wake a stalled reader. */
	send_pattern(c, 0, 16 * MiB);
	char x;
	while (read(c, &x, 1) > 0)
		;
	close(c);
}

static int epollet(bool aligned)
{
	pid_t pid;
	int s = tcp_pair(hold_sender, &pid);
	fcntl(s, F_SETFL, fcntl(s, F_GETFL) | O_NONBLOCK);
	size_t sz = aligned ? 4 * MiB : 256 * 1024;
	char *buf = aligned ? mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
				   -1, 0)
			    : malloc(sz);
	if (buf == MAP_FAILED || buf == NULL)
		die("buffer");
	int ep = epoll_create1(0);
	struct epoll_event ev = { .events = EPOLLIN | EPOLLET, .data.fd = s };
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev) != 0)
		die("epoll");
	long total = 0, want = 16 * MiB;
	int rc = 0;
	while (total < want) {
		int k = epoll_wait(ep, &ev, 1, 5000);
		if (k < 0 && errno == EINTR)
			continue;
		if (k == 0) {
			printf("stalled: no edge for 5 s\n");
			fprintf(stderr, "stalled at %ld\n", total);
			rc = 1;
			break;
		}
		usleep(20000); /* a busy loop: bytes pile up meanwhile */
		/* nginx's ngx_unix_recv: n < size means "not ready". */
		for (;;) {
			ssize_t n = read(s, buf, sz);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && errno == EAGAIN)
				break;
			if (n < 0) {
				printf("read: %s\n", strerror(errno));
				return 1;
			}
			if (n == 0) {
				printf("unexpected end of stream\n");
				return 1;
			}
			write_all(out_fd, buf, (size_t)n);
			total += n;
			if ((size_t)n < sz)
				break;
		}
	}
	if (rc == 0)
		printf("received %ld bytes\n", total);
	close(s);
	printf("sender exit %d\n", reap(pid));
	return rc;
}

/* ---- "short read and RDHUP is the end" ---- */

static void fin_sender(int c)
{
	send_pattern(c, 0, 16 * MiB);
	close(c);
}

static int rdhup(void)
{
	pid_t pid;
	int s = tcp_pair(fin_sender, &pid);
	fcntl(s, F_SETFL, fcntl(s, F_GETFL) | O_NONBLOCK);
	size_t try = 256 * 1024;
	char *buf = malloc(try);
	int ep = epoll_create1(0);
	struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP, .data.fd = s };
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev) != 0)
		die("epoll");
	long total = 0;
	bool done = false;
	while (!done) {
		int k = epoll_wait(ep, &ev, 1, 10000);
		if (k < 0 && errno == EINTR)
			continue;
		if (k == 0) {
			printf("no event for 10 s\n");
			return 1;
		}
		usleep(20000);
		bool hup = ev.events & (EPOLLRDHUP | EPOLLHUP);
		for (;;) {
			ssize_t n = read(s, buf, try);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && errno == EAGAIN)
				break;
			if (n < 0) {
				printf("read: %s\n", strerror(errno));
				return 1;
			}
			if (n == 0) {
				done = true;
				break;
			}
			write_all(out_fd, buf, (size_t)n);
			total += n;
			if ((size_t)n < try) {
				done = hup; /* haproxy: short with HUP is read0 */
				break;
			}
		}
	}
	printf("received %ld bytes before taking the end\n", total);
	printf("sender exit %d\n", reap(pid));
	return 0;
}

/* ---- packet-mode pipe ---- */

#define PKT 4000
#define NORMAL (12 * MiB + 512 * 1024)
#define NPKT 3300

static int packet(void)
{
	int p[2];
	if (pipe(p) != 0)
		die("pipe");
	pid_t pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		alarm(60);
		close(p[0]);
		send_pattern(p[1], 0, NORMAL);
		if (fcntl(p[1], F_SETFL, O_DIRECT) != 0)
			_exit(5);
		unsigned char b[PKT];
		for (long i = 0; i < NPKT; i++) {
			pattern(b, PKT, (uint64_t)(NORMAL + i * PKT));
			write_all(p[1], b, PKT);
		}
		_exit(0);
	}
	close(p[1]);
	(void)fcntl(p[0], F_SETPIPE_SZ, (int)MiB);
	size_t sz = 256 * 1024;
	char *buf = malloc(sz);
	long total = 0, in_pkt = 0, not_one = 0, crossing_bad = 0;
	for (;;) {
		/* In the ordinary part, each read finds its 256K queued (at most
		 * 1 s of waiting): a served read that finds its pipe empty is
		 * the plain read, and a reader faster than the writer would
		 * then never meet the served path this scenario is about. */
		int q = 0;
		for (int w = 0; w < 2000 && total < NORMAL && ioctl(p[0], FIONREAD, &q) == 0 &&
				(size_t)q < sz && total + q < NORMAL;
		     w++)
			usleep(500);
		ssize_t n = read(p[0], buf, sz);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			printf("read: %s after %ld\n", strerror(errno), total);
			return 1;
		}
		if (n == 0)
			break;
		write_all(out_fd, buf, (size_t)n);
		if (total >= NORMAL) {
			in_pkt++;
			if (n != PKT)
				not_one++;
		} else if (total + n > NORMAL && (total + n - NORMAL) != PKT) {
			crossing_bad++;
		}
		total += n;
	}
	printf("received %ld bytes\n", total);
	/* How many reads the packet part took depends on timing (a read
	 * across the switch may end with the first packet, or before it). */
	fprintf(stderr, "reads in the packet part: %ld\n", in_pkt);
	printf("reads in the packet part that were not one whole packet: %ld\n", not_one);
	printf("reads across the switch not ending after one packet: %ld\n", crossing_bad);
	printf("writer exit %d\n", reap(pid));
	return not_one || crossing_bad ? 1 : 0;
}

/* ---- overlapping reads into one buffer ---- */

static void ring_sender(int c)
{
	send_pattern(c, 0, 32 * MiB);
	close(c);
}

static int ring(void)
{
	pid_t pid;
	int s = tcp_pair(ring_sender, &pid);
	char *base = mmap(NULL, 2 * MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (base == MAP_FAILED)
		die("mmap");
	/* Where each read goes and how much it asks for: a fixed schedule
	 * of overlapping places (a ring reader fills whatever is free). */
	size_t offs[] = { 3 * (size_t)pg + 100, 0, 3 * (size_t)pg + 100, 5 * (size_t)pg,
			  (size_t)pg + 7, 4 * (size_t)pg };
	size_t lens[] = { 256 * 1024, 192 * 1024, 4 * (size_t)pg + 100, 160 * 1024 };
	long total = 0;
	uint32_t r = getenv("HS_SEED") ? (uint32_t)atoi(getenv("HS_SEED")) : 1;
	for (unsigned i = 0;; i++) {
		r = r * 1103515245u + 12345u;
		char *at = base + offs[(r >> 8) % 6];
		size_t sz = i < 8 ? 256 * 1024 : lens[(r >> 16) % 4];
		ssize_t n = read(s, at, sz);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			printf("read: %s after %ld\n", strerror(errno), total);
			return 1;
		}
		if (n == 0)
			break;
		write_all(out_fd, at, (size_t)n);
		total += n;
	}
	printf("received %ld bytes\n", total);
	printf("sender exit %d\n", reap(pid));
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: haz_stream SCENARIO OUTFILE\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	pg = sysconf(_SC_PAGESIZE);
	out_fd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (out_fd < 0)
		die("open OUTFILE");
	const char *s = argv[1];
	if (!strcmp(s, "oob"))
		return oob(false);
	if (!strcmp(s, "oob-inline"))
		return oob(true);
	if (!strcmp(s, "epollet"))
		return epollet(false);
	if (!strcmp(s, "epollet-aligned"))
		return epollet(true);
	if (!strcmp(s, "rdhup"))
		return rdhup();
	if (!strcmp(s, "packet"))
		return packet();
	if (!strcmp(s, "ring"))
		return ring();
	fprintf(stderr, "haz_stream: unknown scenario %s\n", s);
	return 2;
}
