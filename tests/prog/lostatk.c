/*
 * lostatk.c - a file -> stream socket copy loop whose peer goes away in
 * the middle, one scenario per run; what the program sees of the error.
 *
 *   lostatk SCENARIO
 *
 * The program writes a 16 MiB file src.bin, forks a peer and copies the
 * file with read(256 KiB)/write into the socket until a write fails. The
 * peer reads 1 MiB and then goes away. It prints only what does not
 * depend on timing: the errno of the first failing write, what follows,
 * and how the process ended (a SIGPIPE at its default kills it: status
 * 141 in the shell).
 *
 * Scenarios:
 *   unix-dfl       AF_UNIX socketpair; the peer closes with unread data
 *                  (the writer's socket gets ECONNRESET pending, but a
 *                  send on it says EPIPE with SIGPIPE: unix_stream_sendmsg
 *                  looks at the shutdown, not at sk_err). SIGPIPE default.
 *   unix-ign       the same with SIGPIPE ignored; then a recv.
 *   finrst-dfl     TCP over 127.0.0.1; the peer shuts its side down first
 *                  (FIN: the writer is in CLOSE_WAIT), reads 1 MiB, then
 *                  resets (SO_LINGER 0): tcp_reset leaves EPIPE, and the
 *                  next send gets EPIPE and SIGPIPE. SIGPIPE default.
 *   finrst-ign     the same with SIGPIPE ignored (EPIPE).
 *   reset-recv     TCP, the peer resets after 1 MiB; SIGPIPE ignored; at
 *                  the first short write the program recv()s (MSG_DONTWAIT)
 *                  and then writes on.
 *   reset-dup      the same; at the first short write the next write goes
 *                  to a dup of the socket, then one to the socket itself.
 *   reset-poll     the same; at the first short write the program polls
 *                  (POLLOUT, 0 timeout) and reads SO_ERROR, then writes.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"

#define SRC_SIZE (16u << 20)
#define GONE_AT (1u << 20)
#define CHUNK (256u * 1024)

static const char *scen;
static bool is(const char *s) { return strcmp(scen, s) == 0; }
static bool starts(const char *s) { return strncmp(scen, s, strlen(s)) == 0; }

static void die(const char *what)
{
	printf("SETUP FAILED: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void make_src(void)
{
	if (block_pattern_file("src.bin", SRC_SIZE) != 0)
		die("src.bin");
}

/* The peer: (shuts its side down first,) reads GONE_AT bytes, goes away. */
static void peer(int c, bool tcp)
{
	alarm(60);
	static unsigned char b[1 << 16];
	if (starts("finrst"))
		shutdown(c, SHUT_WR);
	size_t got = 0;
	while (got < GONE_AT) {
		size_t want = GONE_AT - got < sizeof b ? GONE_AT - got : sizeof b;
		ssize_t r = read(c, b, want);
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	if (tcp) {
		struct linger lg = { 1, 0 };
		setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
	}
	close(c);
	_exit(0);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: lostatk SCENARIO\n");
		return 2;
	}
	scen = argv[1];
	setvbuf(stdout, NULL, _IOLBF, 0);
	make_src();
	int s;
	pid_t pp;
	if (starts("unix")) {
		int sv[2];
		if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
			die("socketpair");
		pp = fork();
		if (pp < 0)
			die("fork");
		if (pp == 0) {
			close(sv[0]);
			peer(sv[1], false);
		}
		close(sv[1]);
		s = sv[0];
	} else {
		int l = socket(AF_INET, SOCK_STREAM, 0);
		struct sockaddr_in a = { .sin_family = AF_INET };
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		socklen_t al = sizeof a;
		if (l < 0 || bind(l, (struct sockaddr *)&a, al) != 0 || listen(l, 1) != 0 ||
		    getsockname(l, (struct sockaddr *)&a, &al) != 0)
			die("listen");
		pp = fork();
		if (pp < 0)
			die("fork");
		if (pp == 0) {
			int c = accept(l, NULL, NULL);
			if (c < 0)
				_exit(1);
			peer(c, true);
		}
		close(l);
		s = socket(AF_INET, SOCK_STREAM, 0);
		if (s < 0 || connect(s, (struct sockaddr *)&a, al) != 0)
			die("connect");
	}
	if (!strstr(scen, "dfl"))
		signal(SIGPIPE, SIG_IGN);
	static char buf[CHUNK];
	int src = open("src.bin", O_RDONLY);
	if (src < 0)
		die("open src.bin");
	bool probed = false;
	int dfd = -1;
	for (;;) {
		ssize_t n = read(src, buf, sizeof buf);
		if (n <= 0) {
			printf("copied to the end\n");
			break;
		}
		int to = dfd >= 0 ? dfd : s;
		ssize_t w = write(to, buf, (size_t)n);
		if (dfd >= 0) {
			printf("write on the dup: %s\n", w < 0 ? ename(errno) : "a count");
			close(dfd);
			dfd = -1;
			if (w >= 0)
				continue;
			w = write(s, buf, (size_t)n);
			printf("then write on the socket: %s\n", w < 0 ? ename(errno) : "a count");
			break;
		}
		if (w < 0) {
			printf("write failed: %s\n", ename(errno));
			break;
		}
		if (w < n && !probed) {
			probed = true;
			if (is("reset-recv")) {
				char c;
				ssize_t r = recv(s, &c, 1, MSG_DONTWAIT);
				printf("recv after the short write: %zd %s\n", r, r < 0 ? ename(errno) : "");
			} else if (is("reset-poll")) {
				struct pollfd p = { s, POLLOUT, 0 };
				poll(&p, 1, 0);
				int e = 0;
				socklen_t el = sizeof e;
				getsockopt(s, SOL_SOCKET, SO_ERROR, &e, &el);
				printf("after the short write: POLLERR %d SO_ERROR %s\n",
				       !!(p.revents & POLLERR), ename(e));
			} else if (is("reset-dup")) {
				dfd = dup(s);
			}
		}
	}
	if (is("unix-ign")) {
		char c;
		ssize_t r = recv(s, &c, 1, MSG_DONTWAIT);
		printf("recv at the end: %zd %s\n", r, r < 0 ? ename(errno) : "");
	}
	close(s);
	waitpid(pp, NULL, 0);
	printf("exit 0\n");
	return 0;
}
