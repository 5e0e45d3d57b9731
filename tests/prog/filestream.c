/*
 * filestream.c - the copy loop of a static file server that streams many
 * files, one after another, into one pipe whose reader never lets it run
 * empty: what that reader receives, and (preloaded) what the library's
 * report says it cost per file.
 *
 *   filestream SCENARIO      (in the current directory, which it fills)
 *
 * Scenarios:
 *   many-files   300 files of 512K, each read with read(fd, buf, 64K) into
 *                one malloc'd buffer and written whole into a 1 MiB pipe;
 *                a child reads the pipe in 64K reads and hashes what it
 *                gets. A pipe that never runs empty keeps every record of
 *                file pages in flight (shim/sameproc.c) alive unless the
 *                library can tell the reader has taken them.
 *
 * Output: the files and bytes sent, the bytes and FNV-1a hash the reader
 * got, and the hash of the files' bytes as read back at the end; then
 * "status ok".
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define NFILES 300
#define FSIZE (512 * 1024)
#define CHUNK (64 * 1024)

static void die(const char *what)
{
	fprintf(stderr, "filestream: %s: %s\n", what, strerror(errno));
	exit(1);
}

static uint64_t fnv(uint64_t h, const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 1099511628211ull;
	return h;
}

static void make_files(void)
{
	unsigned char *b = malloc(FSIZE);
	if (b == NULL)
		die("malloc");
	for (int f = 0; f < NFILES; f++) {
		for (size_t i = 0; i < FSIZE; i++)
			b[i] = (unsigned char)(i * 131u + i / 4099u + (unsigned)f * 7u);
		char p[32];
		snprintf(p, sizeof p, "f%d", f);
		int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd < 0 || write(fd, b, FSIZE) != FSIZE || close(fd) != 0)
			die(p);
	}
	free(b);
}

/* The reader: 64K reads, hashed, until end of stream. */
static void reader(int in, int out)
{
	unsigned char *b = malloc(CHUNK);
	uint64_t h = 1469598103934665603ull;
	unsigned long long got = 0;
	ssize_t r;
	while ((r = read(in, b, CHUNK)) > 0) {
		h = fnv(h, b, (size_t)r);
		got += (unsigned long long)r;
	}
	char line[128];
	int n = snprintf(line, sizeof line, "reader got %llu bytes, hash %016llx\n", got,
			 (unsigned long long)h);
	if (write(out, line, (size_t)n) != n)
		_exit(1);
	_exit(r < 0 ? 1 : 0);
}

static int many_files(void)
{
	make_files();
	int p[2], back[2];
	if (pipe(p) != 0 || pipe(back) != 0)
		die("pipe");
	fcntl(p[1], F_SETPIPE_SZ, 1 << 20);
	pid_t kid = fork();
	if (kid < 0)
		die("fork");
	if (kid == 0) {
		close(p[1]);
		close(back[0]);
		reader(p[0], back[1]);
	}
	close(p[0]);
	close(back[1]);
	char *buf = malloc(CHUNK);
	if (buf == NULL)
		die("malloc");
	unsigned long long sent = 0;
	for (int f = 0; f < NFILES; f++) {
		char path[32];
		snprintf(path, sizeof path, "f%d", f);
		int fd = open(path, O_RDONLY);
		if (fd < 0)
			die(path);
		ssize_t r;
		while ((r = read(fd, buf, CHUNK)) > 0) {
			for (ssize_t w = 0; w < r;) {
				ssize_t k = write(p[1], buf + w, (size_t)(r - w));
				if (k < 0)
					die("write");
				w += k;
			}
			sent += (unsigned long long)r;
		}
		if (r < 0)
			die("read");
		close(fd);
	}
	close(p[1]);
	char line[128];
	ssize_t n = read(back[0], line, sizeof line - 1);
	int st;
	if (waitpid(kid, &st, 0) != kid || !WIFEXITED(st) || WEXITSTATUS(st) != 0 || n <= 0)
		die("reader");
	line[n] = '\0';
	printf("sent %d files, %llu bytes\n%s", NFILES, sent, line);
	/* The files themselves, read back plainly at the end: unchanged. */
	uint64_t h = 1469598103934665603ull;
	for (int f = 0; f < NFILES; f++) {
		char path[32];
		snprintf(path, sizeof path, "f%d", f);
		int fd = open(path, O_RDONLY);
		ssize_t r;
		while (fd >= 0 && (r = read(fd, buf, CHUNK)) > 0)
			h = fnv(h, (unsigned char *)buf, (size_t)r);
		if (fd >= 0)
			close(fd);
	}
	printf("files hash %016llx\n", (unsigned long long)h);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "many-files") == 0) {
		int rc = many_files();
		printf("status ok\n");
		return rc;
	}
	fprintf(stderr, "usage: filestream many-files\n");
	return 2;
}
