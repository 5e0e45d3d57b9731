/*
 * sigrestart.c - a signal handler's copy loop through the buffer its
 * interrupted thread is reading into.
 *
 *   sigrestart SRC DST
 *       blocks in read() of an empty pipe into a 64 KiB buffer, with a
 *       SIGALRM handler (SA_RESTART, alarm after 1 s) that copies SRC to
 *       DST in 64 KiB chunks through that same buffer (a loop the library
 *       arms and defers), then writes 4096 'M' bytes into the pipe. The
 *       kernel restarts the read after the handler: plainly it returns
 *       4096 and the buffer starts with 'M'.
 *       Prints "read R errno=E first=C". Exit 0.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static int hf, hg, p[2];
static char *buf;
static char msg[4096];

static void on_alrm(int sig)
{
	(void)sig;
	int e = errno;
	lseek(hf, 0, SEEK_SET);
	lseek(hg, 0, SEEK_SET);
	/* Stops before end of file: the last read is left deferred. */
	for (int k = 0; k < 8; k++) {
		ssize_t r = read(hf, buf, 65536);
		if (r <= 0 || write(hg, buf, (size_t)r) != r)
			break;
	}
	memset(msg, 'M', sizeof msg);
	if (write(p[1], msg, sizeof msg) != (ssize_t)sizeof msg)
		_exit(3);
	errno = e;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: sigrestart SRC DST\n");
		return 2;
	}
	hf = open(argv[1], O_RDONLY);
	hg = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
	buf = mmap(NULL, 65536, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (hf < 0 || hg < 0 || buf == MAP_FAILED || pipe(p) != 0) {
		perror("setup");
		return 1;
	}
	struct sigaction sa = { .sa_handler = on_alrm, .sa_flags = SA_RESTART };
	sigaction(SIGALRM, &sa, NULL);
	alarm(1);
	ssize_t r = read(p[0], buf, 4096);
	int e = errno;
	printf("read %zd errno=%s first=%c\n", r, r < 0 ? strerror(e) : "-", r > 0 ? buf[0] : '?');
	return 0;
}
