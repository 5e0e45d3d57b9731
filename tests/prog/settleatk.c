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
 * Prints every result the program can observe: "loop N", the number the
 * file was put at relative to the top ("at top-1"), "read after close:
 * rc=R errno=E" and the first bytes read if any. Exit 0.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
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

int main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "ownfd") == 0)
		return ownfd(argv[2], argv[3]);
	fprintf(stderr, "usage: settleatk ownfd SRC MAPFILE\n");
	return 2;
}
