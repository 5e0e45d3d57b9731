/*
 * sigrestart.c - a signal handler's copy loop through the buffer its
 * interrupted thread is reading into.
 *
 *   sigrestart SRC DST [read|recv|writev]
 *       read (default): blocks in read() of an empty pipe into a 64 KiB buffer, with a
 *       SIGALRM handler (SA_RESTART, alarm after 1 s) that copies SRC to
 *       DST in 64 KiB chunks through that same buffer (a loop the library
 *       arms and defers), then writes 4096 'M' bytes into the pipe. The
 *       kernel restarts the read after the handler: plainly it returns
 *       4096 and the buffer starts with 'M'.
 *       Prints "read R errno=E first=C". Exit 0.
 *       recv: the same with recv() of a socketpair.
 *       writev: blocks in writev() of the buffer's first 4096 bytes into
 *       a full pipe; the handler's copy loop changes them, then it empties
 *       the pipe. The restarted writev sends what the buffer holds then.
 *       Prints "writev R errno=E sum=S" (S: the bytes that came out of
 *       the pipe after the handler, summed). Exit 0.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common.h"

static int hf, hg, p[2];
static char *buf;
static char msg[4096];
static int mode; /* 0 read, 1 recv, 2 writev */
static char sink[1 << 20];

static void on_alrm(int sig)
{
	(void)sig;
	int e = errno;
	handler_copy_loop(hf, hg, buf);
	if (mode == 2) {
		/* Room for the interrupted writev: the pipe emptied. */
		int fl = fcntl(p[0], F_GETFL);
		fcntl(p[0], F_SETFL, fl | O_NONBLOCK);
		while (read(p[0], sink, sizeof sink) > 0)
			;
		fcntl(p[0], F_SETFL, fl);
		errno = e;
		return;
	}
	memset(msg, 'M', sizeof msg);
	if (write(p[1], msg, sizeof msg) != (ssize_t)sizeof msg)
		_exit(3);
	errno = e;
}

int main(int argc, char **argv)
{
	if (argc != 3 && argc != 4) {
		fprintf(stderr, "usage: sigrestart SRC DST [read|recv|writev]\n");
		return 2;
	}
	if (argc == 4)
		mode = strcmp(argv[3], "recv") == 0 ? 1 : strcmp(argv[3], "writev") == 0 ? 2 : 0;
	hf = open(argv[1], O_RDONLY);
	hg = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
	buf = mmap(NULL, 65536, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int made = mode == 1 ? socketpair(AF_UNIX, SOCK_STREAM, 0, p) : pipe(p);
	if (hf < 0 || hg < 0 || buf == MAP_FAILED || made != 0) {
		perror("setup");
		return 1;
	}
	struct sigaction sa = { .sa_handler = on_alrm, .sa_flags = SA_RESTART };
	sigaction(SIGALRM, &sa, NULL);
	if (mode == 2) {
		/* Full: the writev below waits for room. */
		int fl = fcntl(p[1], F_GETFL);
		fcntl(p[1], F_SETFL, fl | O_NONBLOCK);
		memset(sink, 'f', sizeof sink);
		while (write(p[1], sink, sizeof sink) > 0)
			;
		fcntl(p[1], F_SETFL, fl);
		memset(buf, 'w', 4096);
		alarm(1);
		struct iovec v = { buf, 4096 };
		ssize_t w = writev(p[1], &v, 1);
		int e = errno;
		close(p[1]);
		unsigned long sum = 0;
		ssize_t k;
		while ((k = read(p[0], sink, sizeof sink)) > 0)
			for (ssize_t i = 0; i < k; i++)
				sum = sum * 31 + (unsigned char)sink[i];
		printf("writev %zd errno=%s sum=%lu\n", w, w < 0 ? strerror(e) : "-", sum);
		return 0;
	}
	alarm(1);
	ssize_t r = mode == 1 ? recv(p[0], buf, 4096, 0) : read(p[0], buf, 4096);
	int e = errno;
	printf("read %zd errno=%s first=%c\n", r, r < 0 ? strerror(e) : "-", r > 0 ? buf[0] : '?');
	return 0;
}
