/*
 * pipewait.c - what a pipe read that waits for its source may change
 * while it waits (defer.c pipe_wait held a hidden duplicate of the
 * pipe's read end for the length of the wait; a served read that finds
 * its pipe empty is the plain read now).
 *
 *   pipewait fork-epipe | emfile-swap | sig-norestart | close-wait |
 *            writer-eof | open-wait
 *
 * Every scenario first runs a copy loop: 20 reads of 65024 bytes from a
 * pipe (1 MiB of capacity) into a buffer 512 bytes into an anonymous
 * mapping, each written to out.bin (byte i of the stream is
 * (i * 7 + i / 4096) & 0xff). Then the trap read: the pipe is empty, so
 * it waits; another thread acts 100 ms later (below). stdout: what the
 * trap read returned and what the program sees after; stderr: whether
 * the buffer was guarded before the trap (a phantom, when preloaded).
 *
 * fork-epipe: the other thread forks; the child closes every descriptor
 * from 3 up (close_range) and sleeps 1.5 s. The other thread writes the
 * stream's next bytes; the trap read returns; the main thread closes the
 * read end and writes 1 byte to the write end: plainly no process holds
 * the read end, so EPIPE.
 * emfile-swap: RLIMIT_NOFILE 256. The other thread opens claim.bin
 * (65024 bytes of 0xcc) until EMFILE, puts a second (empty) pipe on the
 * source number with dup2 and writes the stream's bytes into the first.
 * Plainly the waiting read holds the first pipe and returns its bytes.
 * sig-norestart: the other thread installs a SIGUSR1 handler without
 * SA_RESTART and sends SIGUSR1 to the reading thread; 300 ms later it
 * writes the stream. Plainly the read returns EINTR (signal(7)).
 * close-wait: the other thread closes the source number, then writes.
 * Plainly the read holds its file and returns the bytes.
 * writer-eof: the other thread closes the write end: the read returns 0.
 * open-wait: the other thread opens 3 files (their numbers printed),
 * then writes.
 *
 * Every run ends within 6 s (alarm: status 124 "hang").
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

#define PG 4096ul
#define CH (64u << 10)
#define NPG 18

static int srcp[2], otherp[2], out;
static char *region;
static atomic_int go;
static uint64_t pos;
static size_t chunk = CH - 512;
static char *mode;
static pthread_t reader;
static pid_t child = -1;
static int claims[1024], nclaims, claim_errno;
static int opened[3];

static void die(const char *what)
{
	perror(what);
	_exit(2);
}

static void on_alarm_hang(int s)
{
	(void)s;
	static const char m[] = "hang\n";
	(void)!write(1, m, sizeof m - 1);
	_exit(124);
}

static void on_usr1(int s)
{
	(void)s;
}

static unsigned char sb(uint64_t i)
{
	return (unsigned char)(i * 7 + i / 4096);
}

static size_t not_stream(const unsigned char *p, size_t n, uint64_t off)
{
	size_t bad = 0;
	for (size_t i = 0; i < n; i++)
		bad += p[i] != sb(off + i);
	return bad;
}

static void put_stream(int w, size_t n)
{
	static unsigned char tmp[CH];
	for (size_t i = 0; i < n; i++)
		tmp[i] = sb(pos + i);
	if (write(w, tmp, n) != (ssize_t)n)
		die("write pipe");
	pos += n;
}

static void nap_ms(long ms)
{
	struct timespec t = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&t, &t) != 0 && errno == EINTR)
		;
}

static void *actor(void *arg)
{
	(void)arg;
	while (!go)
		;
	nap_ms(100); /* the trap read waits in the source by now */
	if (strcmp(mode, "fork-epipe") == 0) {
		child = fork();
		if (child < 0)
			die("fork");
		if (child == 0) {
			/* A worker that keeps none of the parent's descriptors. */
			close_range(3, ~0u, 0);
			nap_ms(1500);
			_exit(0);
		}
		put_stream(srcp[1], chunk);
	} else if (strcmp(mode, "emfile-swap") == 0) {
		int f;
		while ((f = open("claim.bin", O_RDONLY)) >= 0 && nclaims < 1024)
			claims[nclaims++] = f;
		claim_errno = errno;
		if (dup2(otherp[0], srcp[0]) != srcp[0])
			die("dup2");
		put_stream(srcp[1], chunk);
	} else if (strcmp(mode, "sig-norestart") == 0) {
		struct sigaction sa = { .sa_handler = on_usr1 };
		sigemptyset(&sa.sa_mask);
		sigaction(SIGUSR1, &sa, NULL);
		pthread_kill(reader, SIGUSR1);
		nap_ms(300);
		put_stream(srcp[1], chunk);
	} else if (strcmp(mode, "close-wait") == 0) {
		close(srcp[0]);
		put_stream(srcp[1], chunk);
	} else if (strcmp(mode, "writer-eof") == 0) {
		close(srcp[1]);
	} else if (strcmp(mode, "open-wait") == 0) {
		for (int i = 0; i < 3; i++)
			opened[i] = open("out.bin", O_RDONLY);
		put_stream(srcp[1], chunk);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	if (argc < 2)
		return 2;
	mode = argv[1];
	signal(SIGALRM, on_alarm_hang);
	alarm(6);
	if (strcmp(mode, "emfile-swap") == 0) {
		struct rlimit rl = { 256, 256 };
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
			die("setrlimit");
		int c = open("claim.bin", O_WRONLY | O_CREAT | O_TRUNC, 0644);
		static unsigned char cc[CH];
		memset(cc, 0xcc, sizeof cc);
		if (c < 0 || write(c, cc, chunk) != (ssize_t)chunk)
			die("claim.bin");
		close(c);
	}
	if (pipe(srcp) != 0 || pipe(otherp) != 0)
		die("pipe");
	if (fcntl(srcp[0], F_SETPIPE_SZ, 1 << 20) < 0)
		die("F_SETPIPE_SZ");
	out = open("out.bin", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	region = mmap(NULL, NPG * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (out < 0 || region == MAP_FAILED)
		die("setup");
	char *buf = region + 512;
	for (int i = 0; i < 20; i++) {
		put_stream(srcp[1], chunk);
		ssize_t r = read(srcp[0], buf, chunk);
		if (r != (ssize_t)chunk) {
			printf("read: %zd\n", r);
			return 3;
		}
		if (write(out, buf, chunk) != (ssize_t)chunk)
			die("write out");
	}
	uint64_t off = pos;
	fprintf(stderr, "guarded before=%d\n", guarded(region + PG, 8 * PG) == 1 ? 1 : 0);
	reader = pthread_self();
	pthread_t a;
	pthread_create(&a, NULL, actor, NULL);
	go = 1;
	ssize_t r = read(srcp[0], buf, chunk);
	int e = errno;
	printf("trap read: %zd errno=%s\n", r, r < 0 ? strerrorname_np(e) : "-");
	if (r > 0) {
		size_t cc = 0;
		for (ssize_t i = 0; i < r; i++)
			cc += (unsigned char)buf[i] == 0xcc;
		printf("trap read: bytes not the stream's=%zu of them 0xcc=%zu\n",
		       not_stream((unsigned char *)buf, (size_t)r, off), cc);
	}
	pthread_join(a, NULL);
	if (strcmp(mode, "fork-epipe") == 0) {
		/* The child's close_range is not synchronised with this; give
		 * it time (it sleeps 1.5 s after), so that only a descriptor
		 * it could not close can keep a reader. */
		nap_ms(300);
		close(srcp[0]);
		ssize_t w = write(srcp[1], "x", 1);
		printf("write after the last reader closed: %zd errno=%s\n", w,
		       w < 0 ? strerrorname_np(errno) : "-");
		int st = -1;
		waitpid(child, &st, 0);
		printf("child status=%d\n", st);
	} else if (strcmp(mode, "emfile-swap") == 0) {
		printf("claims=%d then %s\n", nclaims, strerrorname_np(claim_errno));
		long moved = 0;
		for (int i = 0; i < nclaims; i++)
			moved += lseek(claims[i], 0, SEEK_CUR);
		printf("claim offsets moved=%ld\n", moved);
		int q = -1;
		(void)!ioctl(srcp[1], FIONREAD, &q);
		printf("first pipe holds=%d\n", q);
	} else if (strcmp(mode, "open-wait") == 0) {
		printf("opened %d %d %d\n", opened[0], opened[1], opened[2]);
	} else if (strcmp(mode, "sig-norestart") == 0 && r < 0) {
		r = read(srcp[0], buf, chunk);
		printf("read after: %zd\n", r);
	}
	return 0;
}
