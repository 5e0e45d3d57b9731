/*
 * vforkclose.c - a copy loop over many files whose program, after each
 * file, vforks a child that closes the source's number (or every number
 * from 3: closefrom) and _exits, then closes the source itself. Prints
 * how many descriptors the process has open after the 5th and after the
 * last file (/proc/self/fd, read with raw system calls), and a checksum
 * of everything copied.
 *
 *   vforkclose close|closefrom|pipe DIR
 *
 * close, closefrom: file -> file, the child closes the source (or all);
 * pipe: a pipe (fed by a forked writer) -> a new file per round, the
 * child closes the destination, whose reopen a library may keep.
 *
 * A vfork child runs on its parent's memory but closes numbers in its
 * own table: whatever a preloaded library does at such a close must not
 * leave the parent with descriptors it no longer knows of.
 */

#include "common.h"

#include <dirent.h>
#include <stdlib.h>
#include <sys/wait.h>

#define FILES 40
#define FSIZE (1 << 20)
#define CHUNK (256 * 1024)

static int open_fds(void)
{
	char buf[8192];
	int n = 0;
	int d = (int)syscall(SYS_openat, AT_FDCWD, "/proc/self/fd", O_RDONLY | O_DIRECTORY);
	if (d < 0)
		return -1;
	long r;
	while ((r = syscall(SYS_getdents64, d, buf, sizeof buf)) > 0)
		for (long o = 0; o < r;) {
			struct dirent64 *e = (struct dirent64 *)(buf + o);
			if (e->d_name[0] != '.')
				n++;
			o += e->d_reclen;
		}
	syscall(SYS_close, d);
	return n - 1; /* not the directory itself */
}

/* A vfork child closes fd (or every number from 3) and _exits. */
static __attribute__((noinline)) int vfork_close(int fd, int all)
{
	int st;
	pid_t c = vfork();
	if (c == 0) {
		if (all)
			closefrom(3);
		else
			close(fd);
		_exit(0);
	}
	return c > 0 && waitpid(c, &st, 0) == c ? 0 : -1;
}

int main(int argc, char **argv)
{
	if (argc != 3)
		return 2;
	int use_closefrom = strcmp(argv[1], "closefrom") == 0;
	int use_pipe = strcmp(argv[1], "pipe") == 0;
	static char src[FSIZE];
	char path[4096];
	for (int i = 0; i < FSIZE; i++)
		src[i] = (char)(i * 131 + (i >> 12));
	char *buf = aligned_alloc(4096, CHUNK);
	int dst = open("/dev/null", O_WRONLY);
	snprintf(path, sizeof path, "%s/out.bin", argv[2]);
	int out = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (buf == NULL || dst < 0 || out < 0)
		return 3;
	unsigned long sum = 0;
	for (int f = 0; f < FILES; f++) {
		snprintf(path, sizeof path, "%s/src%d.bin", argv[2], f);
		int w = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		src[0] = (char)f;
		if (w < 0 || write(w, src, FSIZE) != FSIZE)
			return 4;
		close(w);
		int in, to = out, p[2] = { -1, -1 };
		pid_t feeder = -1;
		if (use_pipe) {
			if (pipe(p) != 0)
				return 5;
			feeder = fork();
			if (feeder == 0) {
				close(p[0]);
				for (size_t o = 0; o < FSIZE;) {
					ssize_t k = write(p[1], src + o, FSIZE - o);
					if (k <= 0)
						_exit(1);
					o += (size_t)k;
				}
				_exit(0);
			}
			close(p[1]);
			in = p[0];
			snprintf(path, sizeof path, "%s/dst%d.bin", argv[2], f);
			to = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
			if (to < 0)
				return 5;
		} else {
			in = open(path, O_RDONLY);
		}
		if (in < 0)
			return 5;
		ssize_t n;
		while ((n = read(in, buf, CHUNK)) > 0) {
			if (write(to, buf, (size_t)n) != n)
				return 6;
			sum = sum * 31 + (unsigned char)buf[n - 1] + (unsigned char)buf[0];
		}
		if (vfork_close(use_pipe ? to : in, use_closefrom) != 0)
			return 7;
		close(in);
		if (use_pipe) {
			close(to);
			int st;
			if (waitpid(feeder, &st, 0) != feeder || st != 0)
				return 8;
		}
		if (f == 4)
			printf("open after 5 files: %d\n", open_fds());
	}
	printf("open after %d files: %d\n", FILES, open_fds());
	printf("sum %lx\n", sum);
	if (getenv("VFC_LIST") != NULL) /* debugging: what is open */
		for (int i = 0; i < 64; i++) {
			char l[64], t[4096];
			snprintf(l, sizeof l, "/proc/self/fd/%d", i);
			ssize_t k = readlink(l, t, sizeof t - 1);
			if (k > 0)
				fprintf(stderr, "%d -> %.*s\n", i, (int)k, t);
		}
	return 0;
}
