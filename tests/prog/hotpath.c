/*
 * hotpath.c - small reads and writes: with nothing armed (the hooks' hot
 * path, issue 15) and beside a live phantom (where the hooks must still
 * take their full path).
 *
 *   small SRC DST    copies SRC to DST one byte per read(2) and write(2),
 *                    as `dd bs=1` does; errno is set to a marker before
 *                    every call and looked at after every successful one.
 *   beside-phantom   a file -> file loop of 64 KiB reads into one heap
 *                    buffer (it arms when preloaded); with the last read
 *                    still unwritten (a phantom when preloaded), 1-byte
 *                    writes from inside the buffer, a 1-byte read and a
 *                    1-byte pread into it, then the buffer written out.
 *
 * Prints every result, errno and a hash of every file written; the probes
 * of the buffer's protection go to stderr ("probe WHAT guarded=N").
 */
#include "common.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <sys/uio.h>

#define MARK 4242
#define CHUNK (64 * 1024)

static void die(const char *what)
{
	fprintf(stderr, "hotpath: %s: %s\n", what, strerror(errno));
	exit(3);
}

/* Size and hash of a file, read with raw calls (nothing preloaded sees
 * them). */
static void print_file(const char *label, const char *path)
{
	long long n;
	uint64_t h;
	if (raw_file_hash(path, &n, &h) != 0)
		die(path);
	printf("%s bytes %lld hash %016llx\n", label, n, (unsigned long long)h);
}

static void make_file(const char *path, size_t size)
{
	if (lcg_file(path, size, 12345) != 0)
		die(path);
}

static int sc_small(const char *src, const char *dst)
{
	int in = open(src, O_RDONLY);
	int out = open(dst, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (in < 0 || out < 0)
		die("open");
	char c;
	long long reads = 0, writes = 0, changed = 0;
	for (;;) {
		errno = MARK;
		ssize_t r = read(in, &c, 1);
		if (r < 0)
			die("read");
		if (errno != MARK)
			changed++;
		reads++;
		if (r == 0)
			break;
		errno = MARK;
		ssize_t w = write(out, &c, 1);
		if (w != 1)
			die("write");
		if (errno != MARK)
			changed++;
		writes++;
	}
	close(in);
	close(out);
	printf("reads %lld writes %lld errno-changed %lld\n", reads, writes, changed);
	print_file("copy", dst);
	return 0;
}

static void result(const char *what, ssize_t r, int err)
{
	printf("%s -> %zd%s%s\n", what, r, r < 0 ? " errno " : "", r < 0 ? strerror(err) : "");
}

static int sc_beside_phantom(void)
{
	make_file("src.bin", 16 * CHUNK);
	int in = open("src.bin", O_RDONLY);
	int out = open("out.bin", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	int small = open("small.bin", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	int zero = open("/dev/zero", O_RDONLY);
	unsigned char *buf = malloc(CHUNK);
	if (in < 0 || out < 0 || small < 0 || zero < 0 || buf == NULL)
		die("setup");
	for (int i = 0; i < 8; i++) {
		ssize_t r = read(in, buf, CHUNK);
		if (r != CHUNK || write(out, buf, (size_t)r) != r)
			die("loop");
	}
	ssize_t r = read(in, buf, CHUNK);
	printf("last read %zd\n", r);
	fprintf(stderr, "probe last-read guarded=%d\n", guarded(buf + 4096, 4096));
	ssize_t k;
	errno = 0;
	k = write(small, buf + 4100, 1);
	result("write 1 byte from inside the buffer", k, errno);
	errno = 0;
	k = write(small, buf + CHUNK - 1, 1);
	result("write its last byte", k, errno);
	errno = 0;
	k = pwrite(small, buf + 9000, 1, 2);
	result("pwrite 1 byte from inside the buffer", k, errno);
	errno = 0;
	k = read(zero, buf + 20000, 1);
	result("read 1 byte into the buffer", k, errno);
	errno = 0;
	k = pread(in, buf + 30000, 1, 0);
	result("pread 1 byte into the buffer", k, errno);
	errno = 0;
	struct iovec v[2] = { { buf + 40000, 1 }, { buf + 50000, 1 } };
	k = writev(small, v, 2);
	result("writev 2 bytes from inside the buffer", k, errno);
	errno = 0;
	k = write(out, buf, (size_t)r);
	result("write the buffer", k, errno);
	close(in);
	close(out);
	close(small);
	close(zero);
	free(buf);
	print_file("out.bin", "out.bin");
	print_file("small.bin", "small.bin");
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 4 && strcmp(argv[1], "small") == 0)
		return sc_small(argv[2], argv[3]);
	if (argc == 2 && strcmp(argv[1], "beside-phantom") == 0)
		return sc_beside_phantom();
	fprintf(stderr, "usage: hotpath small SRC DST | beside-phantom\n");
	return 2;
}
