/*
 * haz_same2.c - more ways the program itself changes a source file while
 * a chunk read from it is deferred, and ways a wait for bytes in flight
 * could stall a program (hazard class 6).
 *
 *   haz_same2 SCENARIO
 *
 * Copy scenarios (src.bin 4 MiB -> dst.bin in 256K reads into a heap
 * buffer; the change comes after read 3, before its write): pkey
 * (pkey_mprotect makes a read-only shared mapping of the source writable,
 * then stores through it), pkeybuf (pkey_mprotect on the copy buffer
 * itself, then the buffer is read), dprintf (dprintf into the source),
 * appendflip (an O_APPEND stdio stream on the source loses O_APPEND, then
 * writes in place), dupfl (O_APPEND cleared through a dup, then pwrite),
 * dontunmap / partremap (a writable shared mapping moved with mremap,
 * then stores through the part still mapped), openat-dirfd, opath-procfd,
 * hardlink, rename-creat, collapse/insert/zero (fallocate), spawn-trunc,
 * system-trunc, ftrunc-append. Printed: the hash of dst.bin.
 * Timing scenarios print "fast" or "SLOW" (over 1 s): selfpipe (file
 * pages into our own pipe, close, read back), epipe / epipe-trunc (the
 * reader is gone), filter (a file into a cat child's stdin, close, read
 * its output), multi (one file into 3 pipes whose readers sleep, then a
 * truncating open: bounded once, not per reader).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <linux/falloc.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>
#include <spawn.h>
extern char **environ;

#define CHUNK (256 * 1024)
#define ACT 3
static const char *scen;
static const char *srcpath = "src.bin";

static void die(const char *w) { perror(w); exit(2); }
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }

static void make_file(const char *path, unsigned seed, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0) die("create");
	char *b = malloc(len);
	uint32_t x = seed * 2654435761u + 1;
	for (size_t i = 0; i < len; i++) { x = x * 1103515245u + 12345u; b[i] = (char)(x >> 16); }
	if (write(fd, b, len) != (ssize_t)len) die("write");
	free(b);
	close(fd);
}

static uint64_t sum_file(const char *p, size_t *len)
{
	int fd = open(p, O_RDONLY);
	uint64_t h = 1469598103934665603ull; size_t n = 0; unsigned char b[65536]; ssize_t r;
	while ((r = read(fd, b, sizeof b)) > 0) { for (ssize_t i = 0; i < r; i++) h = (h ^ b[i]) * 1099511628211ull; n += r; }
	close(fd); *len = n; return h;
}

char *g_buf;
static char *mapping; static size_t maplen; static FILE *stream;

static void change(off_t pos, ssize_t n)
{
	if (!strcmp(scen, "pkey")) {
		int r = pkey_mprotect(mapping, maplen, PROT_READ | PROT_WRITE, -1);
		printf("pkey_mprotect: %d\n", r);
		memset(mapping + pos, 'N', (size_t)n);
	} else if (!strcmp(scen, "pkeybuf")) {
		/* the program changes its own buffer's protection through pkey_mprotect */
		extern char *g_buf;
		uintptr_t a = ((uintptr_t)g_buf + 4095) & ~4095UL;
		printf("pkey_mprotect(buf): %d\n", pkey_mprotect((void *)a, 16 * 4096, PROT_READ | PROT_WRITE, -1));
		unsigned long h = 0;
		for (int i = 0; i < n; i++) h = h * 31 + (unsigned char)g_buf[i];
		printf("buffer hash %lx\n", h);
	} else if (!strcmp(scen, "openat-dirfd")) {
		int d = open(".", O_RDONLY | O_DIRECTORY);
		int fd = openat(d, "src.bin", O_WRONLY | O_TRUNC);
		printf("openat: %s\n", fd >= 0 ? "ok" : strerror(errno));
		close(fd); close(d);
	} else if (!strcmp(scen, "opath-procfd")) {
		int p = open("src.bin", O_PATH);
		char path[64]; snprintf(path, sizeof path, "/proc/self/fd/%d", p);
		int fd = open(path, O_WRONLY | O_TRUNC);
		printf("open via O_PATH fd: %s\n", fd >= 0 ? "ok" : strerror(errno));
		close(fd); close(p);
	} else if (!strcmp(scen, "hardlink")) {
		link("src.bin", "alias.bin");
		int fd = open("alias.bin", O_RDWR);
		static char news[CHUNK]; memset(news, 'N', sizeof news);
		printf("pwrite via link: %zd\n", pwrite(fd, news, (size_t)n, pos));
		printf("trunc via link: %d\n", truncate("alias.bin", pos + 100));
		close(fd); unlink("alias.bin");
	} else if (!strcmp(scen, "rename-creat")) {
		rename("src.bin", "moved.bin");
		int fd = creat("moved.bin", 0644);
		printf("creat of the renamed source: %s\n", fd >= 0 ? "ok" : strerror(errno));
		close(fd);
	} else if (!strcmp(scen, "collapse") || !strcmp(scen, "insert") || !strcmp(scen, "zero")) {
		int fd = open(srcpath, O_RDWR);
		int mode = scen[0] == 'c' ? FALLOC_FL_COLLAPSE_RANGE : scen[0] == 'i' ? FALLOC_FL_INSERT_RANGE : FALLOC_FL_ZERO_RANGE;
		printf("fallocate %s: %d\n", scen, fallocate(fd, mode, pos - CHUNK, CHUNK));
		close(fd);
	} else if (!strcmp(scen, "appendflip")) {
		fseek(stream, pos, SEEK_SET);
		static char news[CHUNK]; memset(news, 'N', sizeof news);
		printf("fwrite %zu\n", fwrite(news, 1, (size_t)n, stream));
		fflush(stream);
	} else if (!strcmp(scen, "blockdev")) {
		int fd = open(srcpath, O_WRONLY);
		static char news[CHUNK]; memset(news, 'N', sizeof news);
		printf("pwrite block: %zd\n", pwrite(fd, news, (size_t)n, pos));
		fsync(fd);
		close(fd);
	} else if (!strcmp(scen, "dontunmap") || !strcmp(scen, "partremap")) {
		memset(mapping + pos, 'N', (size_t)n);
		printf("stored through the mapping kept by MREMAP_DONTUNMAP\n");
	} else if (!strcmp(scen, "dprintf")) {
		int fd = open(srcpath, O_WRONLY);
		lseek(fd, pos, SEEK_SET);
		int k = 0;
		for (int i = 0; i < n / 64; i++)
			k += dprintf(fd, "%063d\n", i);
		printf("dprintf: %d\n", k);
		close(fd);
	} else if (!strcmp(scen, "spawn-trunc") || !strcmp(scen, "system-trunc")) {
		if (scen[0] == 's' && scen[1] == 'y') {
			printf("system: %d\n", system(": > src.bin"));
		} else {
			posix_spawn_file_actions_t fa;
			posix_spawn_file_actions_init(&fa);
			posix_spawn_file_actions_addopen(&fa, 1, "src.bin", O_WRONLY | O_TRUNC, 0);
			pid_t c;
			char *av[] = { "true", NULL };
			int r = posix_spawnp(&c, "true", &fa, NULL, av, environ);
			waitpid(c, NULL, 0);
			printf("spawn: %d\n", r);
		}
	} else if (!strcmp(scen, "ftrunc-append")) {
		/* an O_APPEND descriptor whose flag was cleared by fcntl, then pwrite */
		int fd = open(srcpath, O_WRONLY | O_APPEND);
		static char news[CHUNK]; memset(news, 'N', sizeof news);
		printf("pwrite(append fd): %zd\n", pwrite(fd, news, 16, pos + 8192));
		fcntl(fd, F_SETFL, 0);
		printf("pwrite(flag cleared): %zd\n", pwrite(fd, news, (size_t)n, pos));
		close(fd);
	} else if (!strcmp(scen, "dupfl")) {
		/* fd classified with O_APPEND, then the same description's flag cleared through a dup */
		static char news[CHUNK]; memset(news, 'N', sizeof news);
		int fd = open(srcpath, O_WRONLY | O_APPEND);
		printf("append 1: %zd\n", write(fd, "x", 1)); /* classified now, phantoms live */
		int d = dup(fd);
		fcntl(d, F_SETFL, 0); /* the description's flag: fd's too */
		close(d);
		printf("pwrite(after dup's F_SETFL): %zd\n", pwrite(fd, news, (size_t)n, pos));
		close(fd);
	}
}

static int copy(int dst)
{
	if (!strcmp(scen, "blockdev")) {
		srcpath = getenv("BLK");
	} else {
		make_file("src.bin", 7, 8 * CHUNK + 12345);
	}
	struct stat st; stat(srcpath, &st);
	maplen = 8 * CHUNK + 12345;
	if (!strcmp(scen, "pkey")) {
		int fd = open("src.bin", O_RDWR);
		mapping = mmap(NULL, maplen, PROT_READ, MAP_SHARED, fd, 0);
		if (mapping == MAP_FAILED) die("mmap");
		close(fd);
	}
	if (!strcmp(scen, "dontunmap")) {
		int fd = open("src.bin", O_RDWR);
		char *a = mmap(NULL, maplen, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (a == MAP_FAILED) die("mmap");
		close(fd);
		char *b = mremap(a, maplen, maplen, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, NULL);
		printf("mremap DONTUNMAP: %s\n", b == MAP_FAILED ? strerror(errno) : "ok");
		if (b != MAP_FAILED)
			munmap(b, maplen);
		mapping = a; /* still mapped, still writable, still the file */
	}
	if (!strcmp(scen, "partremap")) {
		int fd = open("src.bin", O_RDWR);
		char *a = mmap(NULL, maplen, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		char *n = mmap(NULL, CHUNK, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (a == MAP_FAILED || n == MAP_FAILED) die("mmap");
		close(fd);
		/* the pages of chunk ACT moved out of the mapping, the rest unmapped */
		char *b = mremap(a + ACT * CHUNK, CHUNK, CHUNK, MREMAP_MAYMOVE | MREMAP_FIXED, n);
		printf("mremap part: %s\n", b == MAP_FAILED ? strerror(errno) : "ok");
		printf("munmap rest: %d\n", munmap(a, maplen));
		mapping = b - ACT * CHUNK;
	}
	if (!strcmp(scen, "appendflip")) {
		stream = fopen("src.bin", "a");
		fcntl(fileno(stream), F_SETFL, 0);
	}
	int src = open(srcpath, O_RDONLY);
	if (src < 0) die("open");
	char *mem = malloc(CHUNK + 8192);
	char *buf = mem + 100;
	g_buf = buf;
	off_t pos = 0;
	for (int it = 0;; it++) {
		ssize_t n = read(src, buf, CHUNK);
		if (n < 0) die("read");
		if (n == 0) break;
		if (it == ACT) change(pos, n);
		ssize_t w = write(dst, buf, (size_t)n);
		if (w != n) die("short write");
		pos += n;
		if (!strcmp(scen, "blockdev") && pos >= 8 * CHUNK) break;
	}
	close(src);
	free(mem);
	return 0;
}

/* ---- bytes in flight ---- */
static void copy_to(int dst, const char *path, int chunks)
{
	int src = open(path, O_RDONLY);
	char *mem = malloc(CHUNK + 8192);
	char *buf = mem + 100;
	for (int it = 0; it < chunks; it++) {
		ssize_t n = read(src, buf, 64 * 1024);
		if (n <= 0) break;
		ssize_t w = write(dst, buf, (size_t)n);
		if (w != n) { printf("write: %zd %s\n", w, w < 0 ? strerror(errno) : ""); break; }
	}
	close(src);
	free(mem);
}

/* A file into a filter child's stdin, its input closed, its output read:
 * the child cannot drain its stdin while its output is not read. */
static int sc_filter(void)
{
	make_file("src.bin", 5, 512 * 1024);
	int in[2], out[2];
	if (pipe(in) || pipe(out))
		die("pipe");
	fcntl(in[1], F_SETPIPE_SZ, 1 << 20);
	pid_t c = fork();
	if (c == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		close(in[0]); close(in[1]); close(out[0]); close(out[1]);
		execlp("cat", "cat", (char *)NULL);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	copy_to(in[1], "src.bin", 8);
	double t = now();
	close(in[1]);
	double d = now() - t;
	char b[65536];
	size_t tot = 0;
	ssize_t r;
	while ((r = read(out[0], b, sizeof b)) > 0)
		tot += (size_t)r;
	waitpid(c, NULL, 0);
	printf("filter: got %zu back; close of its input %s\n", tot, d > 1 ? "SLOW" : "fast");
	return 0;
}

/* One file sent to 3 pipes whose readers sleep, then a truncating open:
 * the wait is bounded once (5 s), not once per reader. */
static int sc_multi(void)
{
	make_file("src.bin", 6, 512 * 1024);
	pid_t kids[3];
	int w[3];
	for (int k = 0; k < 3; k++) {
		int p[2];
		if (pipe(p))
			die("pipe");
		fcntl(p[1], F_SETPIPE_SZ, 1 << 20);
		if ((kids[k] = fork()) == 0) {
			close(p[1]);
			sleep(30);
			_exit(0);
		}
		close(p[0]);
		copy_to(p[1], "src.bin", 8);
		w[k] = p[1];
	}
	double t = now();
	int fd = open("src.bin", O_WRONLY | O_TRUNC);
	close(fd);
	double d = now() - t;
	printf("multi: the truncating open %s\n", d < 7 ? "waited at most once" : "waited per reader");
	for (int k = 0; k < 3; k++) {
		kill(kids[k], SIGKILL);
		waitpid(kids[k], NULL, 0);
		close(w[k]);
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: haz_same2 SCENARIO\n");
		return 2;
	}
	scen = argv[1];
	if (!strcmp(scen, "filter"))
		return sc_filter();
	if (!strcmp(scen, "multi"))
		return sc_multi();
	setvbuf(stdout, NULL, _IONBF, 0);
	if (!strcmp(scen, "selfpipe")) {
		/* copy 512K of a file into a pipe of ours, close the write end, read it back */
		make_file("src.bin", 3, 512 * 1024);
		int p[2]; if (pipe(p)) die("pipe");
		fcntl(p[1], F_SETPIPE_SZ, 1 << 20);
		copy_to(p[1], "src.bin", 8);
		double t = now();
		close(p[1]);
		double d = now() - t;
		printf("close of the write end: %s\n", d > 1 ? "SLOW" : "fast");
		char b[65536]; size_t tot = 0; ssize_t r;
		while ((r = read(p[0], b, sizeof b)) > 0) tot += r;
		printf("read back %zu\n", tot);
		return 0;
	}
	if (!strcmp(scen, "epipe") || !strcmp(scen, "epipe-trunc")) {
		make_file("src.bin", 3, 8 << 20);
		signal(SIGPIPE, SIG_IGN);
		int p[2]; if (pipe(p)) die("pipe");
		pid_t c = fork();
		if (c == 0) { close(p[1]); char b[65536]; size_t t = 0; ssize_t r; while (t < (1 << 20) && (r = read(p[0], b, sizeof b)) > 0) t += r; _exit(0); }
		close(p[0]);
		copy_to(p[1], "src.bin", 128);
		waitpid(c, NULL, 0);
		double t = now();
		if (!strcmp(scen, "epipe-trunc")) {
			int fd = open("src.bin", O_WRONLY | O_TRUNC);
			close(fd);
		} else {
			close(p[1]);
		}
		double d = now() - t;
		printf("%s after EPIPE: %s\n", scen, d > 1 ? "SLOW" : "fast");
		return 0;
	}
	int dst = open("dst.bin", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	int rc = copy(dst);
	close(dst);
	size_t len; uint64_t h = sum_file("dst.bin", &len);
	printf("dst.bin: %zu bytes, hash %016llx\n", len, (unsigned long long)h);
	return rc;
}
