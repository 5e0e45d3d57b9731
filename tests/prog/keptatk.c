/*
 * keptatk.c - a file -> TCP copy loop whose peer resets the connection in
 * the middle of a write; at the first short write the program hands the
 * socket to another process (fork, vfork, exec) and both go on sending.
 * One scenario per run; what each process sees of the socket's error.
 *
 *   keptatk SCENARIO
 *   keptatk send FD     (used by the exec scenarios: one write on FD)
 *
 * The program writes a 16 MiB file src.bin, forks a peer on 127.0.0.1
 * that reads 1 MiB, waits 0.3 s and then resets (SO_LINGER 0), and copies the file with
 * read(256 KiB)/write into the socket. A write that returns a short count
 * left the reset's error pending on the socket (tcp_sendmsg returns what
 * it copied and leaves sk_err for the next send): exactly one later send
 * on that socket - from whichever process and descriptor - reports
 * ECONNRESET (sock_error clears it); every send after it gets EPIPE (and
 * SIGPIPE unless ignored). The program prints "short write" and then, per
 * scenario:
 *
 *   fork-child-first    fork; the child writes once, prints, exits; then
 *                       the parent writes once. SIGPIPE ignored.
 *   fork-parent-first   fork; the parent writes once, then the child.
 *   fork-dfl            as fork-child-first with SIGPIPE at its default:
 *                       plainly the parent's write kills it (status 141).
 *   vfork-close         vfork; the child closes the socket and _exits;
 *                       the parent writes once. SIGPIPE ignored.
 *   vfork-closefrom     vfork; the child calls closefrom(3) and _exits.
 *   exec                fork; the child execs "keptatk send FD", which
 *                       writes once; then the parent writes once.
 *
 * A run whose first failing write failed outright (the reset came between
 * two writes: nothing short) prints "write failed: ..." instead; the
 * integration test runs such a pair again.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
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

/* The peer: reads GONE_AT bytes, then resets. */
static void peer(int c)
{
	alarm(60);
	static unsigned char b[1 << 16];
	size_t got = 0;
	while (got < GONE_AT) {
		size_t want = GONE_AT - got < sizeof b ? GONE_AT - got : sizeof b;
		ssize_t r = read(c, b, want);
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	/* The writer fills both buffers and blocks inside a write that has
	 * copied part of its bytes: the reset then cuts that write. */
	usleep(300 * 1000);
	struct linger lg = { 1, 0 };
	setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
	close(c);
	_exit(0);
}

/* One write of a few bytes on fd: what it says. */
static const char *one_write(int fd)
{
	static const char msg[] = "bye\n";
	ssize_t w = write(fd, msg, sizeof msg - 1);
	return w < 0 ? ename(errno) : "a count";
}

static char self[4096];

static void after_short(int s)
{
	if (starts("fork")) {
		int go[2];
		if (pipe(go) != 0)
			die("pipe");
		pid_t c = fork();
		if (c < 0)
			die("fork");
		if (c == 0) {
			if (is("fork-parent-first")) {
				char x;
				if (read(go[0], &x, 1) != 1)
					_exit(3);
			}
			printf("child's write: %s\n", one_write(s));
			_exit(0);
		}
		if (is("fork-parent-first")) {
			printf("parent's write: %s\n", one_write(s));
			if (write(go[1], "g", 1) != 1)
				die("go");
			waitpid(c, NULL, 0);
		} else {
			waitpid(c, NULL, 0);
			printf("parent's write: %s\n", one_write(s));
		}
	} else if (starts("vfork")) {
		pid_t c = vfork();
		if (c < 0)
			die("vfork");
		if (c == 0) {
			if (is("vfork-closefrom"))
				closefrom(3);
			else
				close(s);
			_exit(0);
		}
		waitpid(c, NULL, 0);
		printf("parent's write after the child closed: %s\n", one_write(s));
	} else if (is("exec")) {
		pid_t c = fork();
		if (c < 0)
			die("fork");
		if (c == 0) {
			char fdname[16];
			snprintf(fdname, sizeof fdname, "%d", s);
			execl(self, self, "send", fdname, (char *)NULL);
			_exit(127);
		}
		waitpid(c, NULL, 0);
		printf("parent's write: %s\n", one_write(s));
	}
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: keptatk SCENARIO\n");
		return 2;
	}
	scen = argv[1];
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (is("send") && argc == 3) {
		signal(SIGPIPE, SIG_IGN);
		printf("exec'd program's write: %s\n", one_write(atoi(argv[2])));
		return 0;
	}
	ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
	if (sl <= 0)
		die("readlink");
	self[sl] = '\0';
	make_src();
	int l = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t al = sizeof a;
	if (l < 0 || bind(l, (struct sockaddr *)&a, al) != 0 || listen(l, 1) != 0 ||
	    getsockname(l, (struct sockaddr *)&a, &al) != 0)
		die("listen");
	pid_t pp = fork();
	if (pp < 0)
		die("fork");
	if (pp == 0) {
		int c = accept(l, NULL, NULL);
		if (c < 0)
			_exit(1);
		peer(c);
	}
	close(l);
	int s = socket(AF_INET, SOCK_STREAM, 0);
	if (s < 0 || connect(s, (struct sockaddr *)&a, al) != 0)
		die("connect");
	if (!strstr(scen, "dfl"))
		signal(SIGPIPE, SIG_IGN);
	static char buf[CHUNK];
	int src = open("src.bin", O_RDONLY);
	if (src < 0)
		die("open src.bin");
	for (;;) {
		ssize_t n = read(src, buf, sizeof buf);
		if (n <= 0) {
			printf("copied to the end\n");
			break;
		}
		ssize_t w = write(s, buf, (size_t)n);
		if (w < 0) {
			printf("write failed: %s\n", ename(errno));
			break;
		}
		if (w < n) {
			printf("short write\n");
			after_short(s);
			break;
		}
	}
	close(s);
	waitpid(pp, NULL, 0);
	printf("exit 0\n");
	return 0;
}
