/*
 * altnear.c - a copy loop whose buffer lies next to this thread's
 * alternate signal stack.
 *
 *   altnear above|below SRC DST
 *       One private anonymous mapping holds a 64 KiB alternate signal
 *       stack (sigaltstack) and a 64 KiB copy buffer. above: the buffer
 *       starts one page over the stack's top (frames grow down from the
 *       top). below: the buffer ends one page under the stack's bottom
 *       (the kernel never pushes a frame past it). SRC is copied to DST through the buffer
 *       in 64 KiB reads. Prints "copied N". Exit 0.
 *
 *   altnear reuse SRC DST
 *       Copies the first MiB of SRC (larger than that) to DST through a
 *       64 KiB buffer of its own mapping, without reading to the end,
 *       then makes that buffer the alternate signal stack and raises a
 *       SA_ONSTACK SIGUSR1 whose handler counts. Prints "copied N" and
 *       "handled 1". Exit 0.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define K64 (64 * 1024)

static volatile sig_atomic_t handled;

static void on_usr1(int sig)
{
	(void)sig;
	handled++;
}

/* Copies up to limit bytes (all, with limit < 0) of in to out through buf. */
static long long copy(int in, int out, char *buf, long long limit)
{
	long long total = 0;
	while (limit < 0 || total < limit) {
		ssize_t r = read(in, buf, K64);
		if (r < 0) {
			perror("read");
			exit(2);
		}
		if (r == 0)
			break;
		for (ssize_t done = 0; done < r;) {
			ssize_t w = write(out, buf + done, (size_t)(r - done));
			if (w < 0) {
				perror("write");
				exit(2);
			}
			done += w;
		}
		total += r;
	}
	return total;
}

static int reuse(const char *src, const char *dst)
{
	char *buf = mmap(NULL, K64, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int in = open(src, O_RDONLY), out = open(dst, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (buf == MAP_FAILED || in < 0 || out < 0) {
		perror("setup");
		return 2;
	}
	/* The last read's buffer stays a phantom: no read reaches the end. */
	printf("copied %lld\n", copy(in, out, buf, 1024 * 1024));
	fflush(stdout);
	stack_t ss = { .ss_sp = buf, .ss_size = K64, .ss_flags = 0 };
	if (sigaltstack(&ss, NULL) != 0) {
		perror("sigaltstack");
		return 2;
	}
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_usr1;
	sa.sa_flags = SA_ONSTACK;
	sigaction(SIGUSR1, &sa, NULL);
	raise(SIGUSR1);
	printf("handled %d\n", (int)handled);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "reuse") == 0)
		return reuse(argv[2], argv[3]);
	if (argc != 4 || (strcmp(argv[1], "above") != 0 && strcmp(argv[1], "below") != 0)) {
		fprintf(stderr, "usage: altnear above|below|reuse SRC DST\n");
		return 2;
	}
	long pg = sysconf(_SC_PAGESIZE);
	size_t size = 2 * K64 + 2 * (size_t)pg;
	char *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED) {
		perror("mmap");
		return 2;
	}
	char *stack, *buf;
	if (strcmp(argv[1], "above") == 0) {
		stack = m;
		buf = m + K64 + pg;
	} else {
		buf = m;
		stack = m + K64 + pg;
	}
	stack_t ss = { .ss_sp = stack, .ss_size = K64, .ss_flags = 0 };
	if (sigaltstack(&ss, NULL) != 0) {
		perror("sigaltstack");
		return 2;
	}
	int in = open(argv[2], O_RDONLY), out = open(argv[3], O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (in < 0 || out < 0) {
		perror("open");
		return 2;
	}
	long long total = copy(in, out, buf, -1);
	printf("copied %lld\n", total);
	return 0;
}
