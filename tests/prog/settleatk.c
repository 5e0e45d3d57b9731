/*
 * settleatk.c - a settled loop (shim/settle.c) whose descriptor changes
 * in ways the epoch does not see.
 *
 *   settleatk ownfd SRC MAPFILE
 *       dup2s SRC onto the highest number below RLIMIT_NOFILE (capped at
 *       65536, where the library keeps its own descriptors), copies 64
 *       4 KiB chunks of it to /dev/null through one buffer (a loop the
 *       library settles), closes that number with a raw
 *       syscall(SYS_close) (as fclose's internal close or a close loop
 *       through syscall() would), maps MAPFILE read-only and shared (the
 *       library takes a descriptor of its own for it), then reads the
 *       closed number once more into the same buffer, same size.
 *       Plainly that read fails with EBADF: nothing is open there.
 *
 *   settleatk reset SRC
 *       copies 64 4 KiB chunks of SRC into a TCP connection on 127.0.0.1
 *       (settled: below the arming minimum), whose peer (a thread) reads
 *       them all and then resets the connection (SO_LINGER 0); then
 *       three more read/write turns of the loop, SIGPIPE ignored.
 *       Plainly: ECONNRESET, then EPIPE, EPIPE.
 *
 *   settleatk threads N
 *       two threads copy N 4 KiB chunks each from one /dev/zero
 *       descriptor to one /dev/null descriptor, each through a buffer of
 *       its own (a refused loop: no kernel path char -> char; one of
 *       them may settle). Prints "copied C" (C = 2 N).
 *
 *   settleatk sig N
 *       copies N 4 KiB chunks from /dev/zero to /dev/null through one
 *       buffer while a 200 us interval timer's SIGALRM handler copies one
 *       4 KiB chunk between the same descriptors through a buffer of its
 *       own (same size: the handler's turn lands inside the settled
 *       loop). Prints "main N"; "total T" (main and handler turns) goes
 *       to stderr (timing).
 *
 *   settleatk fork N
 *       copies N 4 KiB chunks of /dev/zero to /dev/null (settled), forks
 *       between a read and its write, and both processes write that
 *       chunk and copy N more. Prints "child N+1", "parent N+1" (exit
 *       status of the child checked).
 *
 *   settleatk flight SRC WORK
 *       settles a 4 KiB loop SRC -> WORK (file -> file, below the arming
 *       minimum) on the main thread, and stops it between a read and its
 *       write; a second thread then copies all of WORK into a pipe
 *       (1 MiB, no reader yet) in 64 KiB chunks - a loop the library arms
 *       and serves with splice, leaving WORK's pages in the pipe; a third
 *       thread reads the pipe after 300 ms. The main thread meanwhile
 *       makes the loop's due write, at WORK's offset 960 KiB. Plainly the pipe
 *       held copies: the reader gets WORK as it was before that write.
 *       Prints "write W", "piped P hash H" (FNV-1a of what was read).
 *
 * Prints every result the program can observe: "loop N", the number the
 * file was put at relative to the top ("at top-1"), "read after close:
 * rc=R errno=E" and the first bytes read if any. Exit 0.
 */
#include <errno.h>
#include <stdint.h>
#include <time.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static void die(const char *what)
{
	printf("%s: %s\n", what, strerror(errno));
	exit(1);
}

static int ownfd(const char *src, const char *mapfile)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		die("getrlimit");
	int top = rl.rlim_cur < 65536 ? (int)rl.rlim_cur : 65536;
	int in = open(src, O_RDONLY);
	int out = open("/dev/null", O_WRONLY);
	if (in < 0 || out < 0)
		die("open");
	/* Opened before the loop: a descriptor made after it ends it. */
	int mf = open(mapfile, O_RDONLY);
	if (mf < 0)
		die("open mapfile");
	struct stat st;
	if (fstat(mf, &st) != 0)
		die("fstat");
	int hi = dup2(in, top - 1);
	if (hi < 0)
		die("dup2");
	close(in);
	printf("at top-%d\n", top - hi);
	char *buf = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED)
		die("mmap");
	int n = 0;
	for (int i = 0; i < 64; i++) {
		ssize_t r = read(hi, buf, 4096);
		if (r != 4096)
			die("read");
		if (write(out, buf, 4096) != 4096)
			die("write");
		n++;
	}
	printf("loop %d\n", n);
	if (syscall(SYS_close, hi) != 0)
		die("raw close");
	void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, mf, 0);
	if (m == MAP_FAILED)
		die("mmap file");
	if (getenv("SETTLEATK_DEBUG")) {
		char path[64], to[256];
		snprintf(path, sizeof path, "/proc/self/fd/%d", hi);
		ssize_t l = readlink(path, to, sizeof to - 1);
		to[l < 0 ? 0 : l] = 0;
		fprintf(stderr, "debug: %d -> %s\n", hi, to);
	}
	memset(buf, 0, 4096);
	errno = 0;
	ssize_t r = read(hi, buf, 4096);
	int e = errno;
	printf("read after close: rc=%zd errno=%s\n", r, r < 0 ? strerror(e) : "-");
	if (r > 0)
		printf("bytes: %.16s\n", buf);
	munmap(m, (size_t)st.st_size);
	close(mf);
	return 0;
}

static int peer_fd;

static void *peer(void *arg)
{
	(void)arg;
	static char b[65536];
	size_t got = 0;
	while (got < 64 * 4096) {
		ssize_t r = recv(peer_fd, b, sizeof b, 0);
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	printf("peer got %zu\n", got);
	struct linger l = { 1, 0 };
	setsockopt(peer_fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
	close(peer_fd);
	return NULL;
}

static int reset(const char *src)
{
	signal(SIGPIPE, SIG_IGN);
	int ls = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof a;
	if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof a) != 0 || listen(ls, 1) != 0 ||
	    getsockname(ls, (struct sockaddr *)&a, &al) != 0)
		die("listen");
	int c = socket(AF_INET, SOCK_STREAM, 0);
	if (c < 0 || connect(c, (struct sockaddr *)&a, sizeof a) != 0)
		die("connect");
	peer_fd = accept(ls, NULL, NULL);
	if (peer_fd < 0)
		die("accept");
	int in = open(src, O_RDONLY);
	if (in < 0)
		die("open");
	char *buf = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED)
		die("mmap");
	pthread_t t;
	pthread_create(&t, NULL, peer, NULL);
	for (int i = 0; i < 64; i++) {
		if (read(in, buf, 4096) != 4096)
			die("read");
		if (write(c, buf, 4096) != 4096)
			die("write");
	}
	pthread_join(t, NULL);
	/* The reset has arrived once the peer's close returned (loopback). */
	for (int i = 0; i < 3; i++) {
		ssize_t r = read(in, buf, 4096);
		errno = 0;
		ssize_t w = write(c, buf, 4096);
		int e = errno;
		printf("turn %d: read %zd write %zd errno=%s\n", i, r, w, w < 0 ? strerror(e) : "-");
	}
	return 0;
}

static int tz, tn;
static volatile long hturns;
static char *hbuf;

static void on_alrm(int sig)
{
	(void)sig;
	int e = errno;
	if (read(tz, hbuf, 4096) == 4096 && write(tn, hbuf, 4096) == 4096)
		hturns++;
	errno = e;
}

static int forked(long n)
{
	int z = open("/dev/zero", O_RDONLY), nul = open("/dev/null", O_WRONLY);
	char *b = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (z < 0 || nul < 0 || b == MAP_FAILED)
		die("open");
	for (long i = 0; i < n; i++)
		if (read(z, b, 4096) != 4096 || write(nul, b, 4096) != 4096)
			die("copy");
	if (read(z, b, 4096) != 4096)
		die("read");
	fflush(stdout);
	pid_t p = fork();
	if (p < 0)
		die("fork");
	long done = 0;
	if (write(nul, b, 4096) == 4096)
		done++;
	for (long i = 0; i < n; i++)
		if (read(z, b, 4096) == 4096 && write(nul, b, 4096) == 4096)
			done++;
	if (p == 0) {
		printf("child %ld\n", done);
		fflush(stdout);
		_exit(0);
	}
	int st;
	waitpid(p, &st, 0);
	printf("parent %ld status %d\n", done, st);
	return 0;
}

static int sig(long n)
{
	tz = open("/dev/zero", O_RDONLY);
	tn = open("/dev/null", O_WRONLY);
	char *b = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (tz < 0 || tn < 0 || b == MAP_FAILED)
		die("open");
	hbuf = b + 4096;
	struct sigaction sa = { .sa_handler = on_alrm, .sa_flags = SA_RESTART };
	sigaction(SIGALRM, &sa, NULL);
	struct itimerval it = { { 0, 200 }, { 0, 200 } };
	setitimer(ITIMER_REAL, &it, NULL);
	long done = 0;
	for (long i = 0; i < n; i++) {
		if (read(tz, b, 4096) != 4096 || write(tn, b, 4096) != 4096)
			die("copy");
		done++;
	}
	struct itimerval off = { { 0, 0 }, { 0, 0 } };
	setitimer(ITIMER_REAL, &off, NULL);
	printf("main %ld\n", done);
	fprintf(stderr, "total %ld\n", done + hturns);
	return 0;
}
static long tcount;

static void *copier(void *arg)
{
	long *done = arg;
	char *b = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (b == MAP_FAILED)
		return NULL;
	for (long i = 0; i < tcount; i++) {
		if (read(tz, b, 4096) != 4096 || write(tn, b, 4096) != 4096)
			break;
		(*done)++;
	}
	return NULL;
}

static int threads(long n)
{
	tz = open("/dev/zero", O_RDONLY);
	tn = open("/dev/null", O_WRONLY);
	if (tz < 0 || tn < 0)
		die("open");
	tcount = n;
	long d[2] = { 0, 0 };
	pthread_t t[2];
	for (int i = 0; i < 2; i++)
		pthread_create(&t[i], NULL, copier, &d[i]);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	printf("copied %ld\n", d[0] + d[1]);
	return 0;
}

/* ---- flight ---- */
static int fl_work, fl_in, fl_pipe[2];
static char *fl_big;
static pthread_barrier_t fl_go, fl_done;

static void *fl_armed(void *arg)
{
	(void)arg;
	pthread_barrier_wait(&fl_go);
	/* No close or open here: the flights alone must end the loop. */
	ssize_t r;
	for (int i = 0; i < 16; i++)
		if ((r = read(fl_in, fl_big, 65536)) != 65536 ||
		    write(fl_pipe[1], fl_big, 65536) != 65536)
			die("armed copy");
	pthread_barrier_wait(&fl_done);
	return NULL;
}

static void *fl_reader(void *arg)
{
	(void)arg;
	struct timespec ts = { 0, 300 * 1000 * 1000 };
	nanosleep(&ts, NULL);
	char *b = malloc(65536);
	uint64_t h = 1469598103934665603ull;
	long total = 0;
	ssize_t r;
	while (total < (1 << 20) && (r = read(fl_pipe[0], b, 65536)) > 0) {
		for (ssize_t i = 0; i < r; i++)
			h = (h ^ (unsigned char)b[i]) * 1099511628211ull;
		total += r;
	}
	printf("piped %ld hash %016llx\n", total, (unsigned long long)h);
	free(b);
	return NULL;
}

static int flight(const char *src, const char *work)
{
	int s = open(src, O_RDONLY);
	fl_work = open(work, O_WRONLY);
	fl_in = open(work, O_RDONLY);
	char *b = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	fl_big = mmap(NULL, 65536, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (s < 0 || fl_work < 0 || fl_in < 0 || b == MAP_FAILED || fl_big == MAP_FAILED ||
	    pipe(fl_pipe) != 0)
		die("open");
	if (fcntl(fl_pipe[1], F_SETPIPE_SZ, 1 << 20) < 0)
		die("F_SETPIPE_SZ");
	/* The settled loop: SRC's first 256 KiB over WORK's. */
	for (int i = 0; i < 64; i++)
		if (read(s, b, 4096) != 4096 || write(fl_work, b, 4096) != 4096)
			die("copy");
	/* The due write lands in WORK's last 64 KiB (the armed loop's
	 * first chunks are plain copies, its last ones spliced). */
	if (lseek(fl_work, 15 * 65536, SEEK_SET) != 15 * 65536)
		die("lseek");
	/* Its next read; the write waits until WORK is in the pipe. */
	if (read(s, b, 4096) != 4096)
		die("read");
	pthread_t a, rd;
	pthread_barrier_init(&fl_go, NULL, 2);
	pthread_barrier_init(&fl_done, NULL, 2);
	pthread_create(&a, NULL, fl_armed, NULL);
	pthread_barrier_wait(&fl_go);
	pthread_barrier_wait(&fl_done);
	pthread_join(a, NULL);
	pthread_create(&rd, NULL, fl_reader, NULL);
	ssize_t w = write(fl_work, b, 4096);
	pthread_join(rd, NULL);
	printf("write %zd\n", w);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "ownfd") == 0)
		return ownfd(argv[2], argv[3]);
	if (argc == 3 && strcmp(argv[1], "reset") == 0)
		return reset(argv[2]);
	if (argc == 3 && strcmp(argv[1], "threads") == 0)
		return threads(atol(argv[2]));
	if (argc == 3 && strcmp(argv[1], "fork") == 0)
		return forked(atol(argv[2]));
	if (argc == 3 && strcmp(argv[1], "sig") == 0)
		return sig(atol(argv[2]));
	if (argc == 4 && strcmp(argv[1], "flight") == 0)
		return flight(argv[2], argv[3]);
	fprintf(stderr, "usage: settleatk ownfd SRC MAPFILE | reset SRC | threads N | sig N | flight SRC WORK\n");
	return 2;
}
