/*
 * haz_fd.c - the library's own descriptors under the program's feet
 * (hazard class 3), one scenario per argument. Prints what the program
 * can observe; the integration test runs it plain and preloaded and
 * requires the same output, exit status and output files.
 *
 *   haz_fd closefrom    copy src.bin to out.bin in 256K chunks; after the
 *                       fourth read, closefrom(highest own fd + 1), then
 *                       the buffer is summed before it is written
 *   haz_fd close-range  the same with a raw close_range (the instruction
 *                       itself: libc's syscall() would be seen)
 *   haz_fd reuse        raw close_range, then the freed top numbers are
 *                       filled (raw dup3) with a decoy file of other bytes
 *   haz_fd reuse-write  the same, and the buffer is written untouched
 *   haz_fd pipe-range   a pipe source (a child writes it) copied in 64K
 *                       chunks; raw close_range after the fourth read, then
 *                       the buffer is summed: the bytes of a pipe source
 *                       exist nowhere else (preloaded: a loud stop)
 *   haz_fd pipe-range-libc  the same through glibc's syscall(), which
 *                       the library sees: no loss, as plain
 *   haz_fd top-held     the program holds the top 64 numbers of its table
 *                       itself (dup2 of /dev/null) before an armed copy
 *   haz_fd many N       N files copied through one buffer, each opened,
 *                       copied to out.bin, closed and deleted; prints the
 *                       descriptors naming deleted files after each
 *
 * The soft RLIMIT_NOFILE is set to 256 first, so the top of the table
 * (where a preload keeps its descriptors) is the same in every run.
 * Each "probe" line on stderr says whether the buffer was guarded (a
 * PROT_NONE mapping inside it, from /proc/self/maps) when the scenario
 * acted on it: preloaded, guarded=1 proves it met a phantom.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <unistd.h>

#include "common.h"

#define CHUNK (256 * 1024)
#define NOFILE 256

static void die(const char *what)
{
	perror(what);
	exit(2);
}

/* Descriptors naming a file that was deleted (readlink " (deleted)"). */
static int is_deleted(const char *target)
{
	return strstr(target, " (deleted)") != NULL;
}

static int deleted_open(void)
{
	int n = count_fds_naming(is_deleted);
	if (n < 0)
		die("opendir");
	return n;
}

enum { CLOSEFROM, RAW_RANGE, REUSE, REUSE_WRITE, PLAIN };

/* The armed copy loop; after the fourth read, the library's descriptors
 * are taken away (how), then the buffer is summed and written. */
static int lost(int how)
{
	xs32_file("src.bin", 7, 16 * CHUNK + 12345, 0);
	xs32_file("decoy.bin", 99, 16 * CHUNK, 0);
	int src = open("src.bin", O_RDONLY);
	int dst = open("out.bin", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (src < 0 || dst < 0)
		die("open");
	char *buf = malloc(CHUNK);
	if (buf == NULL)
		die("malloc");
	int top = src > dst ? src : dst;
	for (int it = 0;; it++) {
		ssize_t n = read(src, buf, CHUNK);
		if (n < 0)
			die("read");
		if (n == 0)
			break;
		if (it == 4) {
			fprintf(stderr, "probe taken it %d guarded=%d\n", it, guarded(buf, CHUNK));
			if (how == PLAIN) {
				/* nothing taken away */
			} else if (how == CLOSEFROM) {
				closefrom(top + 1);
			} else {
				if (asm_syscall4(SYS_close_range, top + 1, ~0U, 0, 0) != 0)
					die("close_range");
			}
			if (how == REUSE || how == REUSE_WRITE) {
				/* The program fills the top of its table with a
				 * file of its own, by raw calls as well. */
				int decoy = open("decoy.bin", O_RDONLY);
				if (decoy < 0)
					die("open decoy");
				for (int fd = NOFILE - 64; fd < NOFILE; fd++)
					if (fd != decoy &&
					    asm_syscall4(SYS_dup3, decoy, fd, 0, 0) != fd)
						die("dup3");
			}
			if (how != REUSE_WRITE)
				printf("chunk %d: %zd bytes, sum %016llx\n", it, n,
			       (unsigned long long)sum_bytes(buf, (size_t)n));
		}
		write_all_or_die(dst, buf, (size_t)n);
	}
	/* The descriptors the program holds, as it sees them. */
	printf("src still reads: %s\n", fcntl(src, F_GETFD) >= 0 ? "yes" : "no");
	close(src);
	close(dst);
	free(buf);
	int out = open("out.bin", O_RDONLY);
	struct stat st;
	if (out < 0 || fstat(out, &st) != 0)
		die("out.bin");
	printf("out.bin: %lld bytes\n", (long long)st.st_size);
	return 0;
}

static int pipe_range(bool through_libc)
{
	int p[2];
	if (pipe(p) != 0)
		die("pipe");
	/* A pipe large enough to hold the first chunks whole, filled before
	 * the loop starts: every read up to the fourth then finds 64K queued
	 * (a short read would be too small to be served as a phantom). */
	fcntl(p[1], F_SETPIPE_SZ, 1 << 20);
	pid_t c = fork();
	if (c < 0)
		die("fork");
	if (c == 0) {
		close(p[0]);
		xs32_file("feed.bin", 3, 32 * 65536, 0);
		int f = open("feed.bin", O_RDONLY);
		static char b[65536];
		ssize_t n;
		while ((n = read(f, b, sizeof b)) > 0)
			write_all_or_die(p[1], b, (size_t)n);
		_exit(0);
	}
	close(p[1]);
	for (int waited = 0, q = 0; waited < 5000; waited++) {
		if (ioctl(p[0], FIONREAD, &q) == 0 && q >= 5 * 65536)
			break;
		usleep(1000);
	}
	int dst = open("out.bin", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	char *buf = malloc(65536);
	if (dst < 0 || buf == NULL)
		die("setup");
	int top = dst > p[0] ? dst : p[0];
	uint64_t total = 0;
	for (int it = 0;; it++) {
		ssize_t n = read(p[0], buf, 65536);
		if (n < 0)
			die("read");
		if (n == 0)
			break;
		if (it == 4) {
			fprintf(stderr, "probe taken it %d guarded=%d\n", it, guarded(buf, 65536));
			fflush(stdout);
			if ((through_libc ? syscall(SYS_close_range, top + 1, ~0U, 0)
					  : asm_syscall4(SYS_close_range, top + 1, ~0U, 0, 0)) != 0)
				die("close_range");
			printf("chunk %d: sum %016llx\n", it,
			       (unsigned long long)sum_bytes(buf, (size_t)n));
		}
		write_all_or_die(dst, buf, (size_t)n);
		total += (uint64_t)n;
	}
	waitpid(c, NULL, 0);
	printf("copied %llu bytes\n", (unsigned long long)total);
	return 0;
}

static int many(int files)
{
	char *buf = malloc(CHUNK);
	int dst = open("out.bin", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (buf == NULL || dst < 0)
		die("setup");
	int worst = 0;
	for (int i = 0; i < files; i++) {
		char name[64];
		snprintf(name, sizeof name, "src-%d.bin", i);
		/* Sizes differ: whole chunks and a short last one. */
		xs32_file(name, (unsigned)i, 3 * CHUNK + (size_t)(i % 7) * 4096 + (size_t)i, 0);
		int src = open(name, O_RDONLY);
		if (src < 0)
			die("open src");
		ssize_t n;
		uint64_t h = 0;
		while ((n = read(src, buf, CHUNK)) > 0) {
			write_all_or_die(dst, buf, (size_t)n);
			h += (uint64_t)n;
		}
		if (n < 0)
			die("read");
		if (close(src) != 0)
			die("close");
		if (unlink(name) != 0)
			die("unlink");
		int d = deleted_open();
		if (d > worst)
			worst = d;
		if (i < 3 || i == files - 1 || d != 0)
			printf("file %d: %llu bytes, deleted files still open: %d\n", i,
			       (unsigned long long)h, d);
	}
	free(buf);
	close(dst);
	printf("most deleted files open at once: %d\n", worst);
	printf("deleted files open at the end: %d\n", deleted_open());
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: haz_fd closefrom|close-range|reuse|many N\n");
		return 2;
	}
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_max < NOFILE)
		die("getrlimit");
	rl.rlim_cur = NOFILE;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
		die("setrlimit");
	if (strcmp(argv[1], "closefrom") == 0)
		return lost(CLOSEFROM);
	if (strcmp(argv[1], "close-range") == 0)
		return lost(RAW_RANGE);
	if (strcmp(argv[1], "reuse") == 0)
		return lost(REUSE);
	if (strcmp(argv[1], "pipe-range") == 0)
		return pipe_range(false);
	if (strcmp(argv[1], "pipe-range-libc") == 0)
		return pipe_range(true);
	if (strcmp(argv[1], "reuse-write") == 0)
		return lost(REUSE_WRITE);
	if (strcmp(argv[1], "top-held") == 0) {
		int nul = open("/dev/null", O_RDONLY);
		if (nul < 0)
			die("/dev/null");
		for (int fd = NOFILE - 64; fd < NOFILE; fd++)
			if (dup2(nul, fd) != fd)
				die("dup2");
		printf("holding %d..%d\n", NOFILE - 64, NOFILE - 1);
		return lost(PLAIN);
	}
	if (strcmp(argv[1], "many") == 0 && argc > 2)
		return many(atoi(argv[2]));
	fprintf(stderr, "unknown scenario %s\n", argv[1]);
	return 2;
}
