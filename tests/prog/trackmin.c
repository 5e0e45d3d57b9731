/*
 * trackmin.c - reads below NOBOUNCE_MIN_CHUNK (the library's default
 * minimum, 16 KiB) next to loops that arm.
 *
 *   trackmin SRC DST SCENARIO
 *
 * Every scenario may start with a warm-up ("small" in its name): SRC is
 * copied to DST.small in 4 KiB read()/write() calls through a buffer of
 * its own - a loop below the minimum, which the library does not look at
 * while nothing was recorded.
 *
 *   write, small-write: a write() of 4096 bytes of a 64 KiB buffer into a
 *       full pipe blocks; a SIGALRM handler (SA_RESTART, alarm after 1 s)
 *       copies SRC to DST in 64 KiB read()/write() calls through that same
 *       buffer (a loop the library arms; it stops before the end of SRC,
 *       so its last read is left deferred), then empties the pipe. The
 *       kernel restarts the write after the handler: plainly it sends the
 *       4096 bytes the buffer holds then.
 *       Prints "write R errno=E sum=S" (S: the bytes that came out of the
 *       pipe after the handler, hashed).
 *   fwrite, small-fwrite: the same with fwrite() of an unbuffered stream
 *       (glibc writes the caller's memory itself). Prints "write R
 *       errno=E sum=S" (R: what fwrite returned, -1 for 0).
 *   read, small-read: the same with a read() of 8192 bytes of an empty
 *       pipe into the buffer; the handler then writes 8192 'M' bytes into
 *       the pipe. Prints "read R errno=E first=C last=C".
 *   mixed, small-mixed: an armed 64 KiB loop SRC -> DST, whose every
 *       fourth turn reads 4 KiB, 8 KiB or 12 KiB pieces of SRC into the
 *       buffer (at offset 0, 100 and 4096) and writes them, with an lseek
 *       back and forth between; then pread of 8 KiB at offset 12345, and
 *       the source's position at the end. Prints the position and a hash
 *       of every piece it wrote.
 *
 * Exit 0; setup failures exit 1.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static int hf, hg, p[2];
static char *buf;
static char msg[8192];
static int mode; /* 0 read, 1 write, 2 fwrite */
static char sink[1 << 20];

static unsigned long hash(unsigned long h, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		h = h * 31 + (unsigned char)b[i];
	return h;
}

/* A copy loop below the minimum, through a buffer of its own. */
static void small_loop(const char *src, const char *dst)
{
	char name[4096];
	snprintf(name, sizeof name, "%s.small", dst);
	int f = open(src, O_RDONLY);
	int g = open(name, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	static char sb[4096];
	if (f < 0 || g < 0) {
		perror("small");
		exit(1);
	}
	ssize_t r;
	while ((r = read(f, sb, sizeof sb)) > 0)
		if (write(g, sb, (size_t)r) != r) {
			perror("small write");
			exit(1);
		}
	close(f);
	close(g);
}

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
	if (mode >= 1) {
		/* Room for the interrupted write: the pipe emptied. */
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

static int restarted(void)
{
	struct sigaction sa = { .sa_handler = on_alrm, .sa_flags = SA_RESTART };
	sigaction(SIGALRM, &sa, NULL);
	if (pipe(p) != 0) {
		perror("pipe");
		return 1;
	}
	if (mode >= 1) {
		/* Full: the write below waits for room. */
		int fl = fcntl(p[1], F_GETFL);
		fcntl(p[1], F_SETFL, fl | O_NONBLOCK);
		memset(sink, 'f', sizeof sink);
		while (write(p[1], sink, sizeof sink) > 0)
			;
		fcntl(p[1], F_SETFL, fl);
		memset(buf, 'w', 4096);
		alarm(1);
		ssize_t w;
		int e;
		if (mode == 2) {
			/* Unbuffered: glibc's own write(2) of the caller's
			 * memory, no hook on the way. */
			FILE *fp = fdopen(p[1], "w");
			setvbuf(fp, NULL, _IONBF, 0);
			w = (ssize_t)fwrite(buf, 1, 4096, fp);
			e = ferror(fp) ? errno : 0;
			if (w == 0)
				w = -1;
			fclose(fp);
		} else {
			w = write(p[1], buf, 4096);
			e = errno;
			close(p[1]);
		}
		unsigned long sum = 0;
		ssize_t k;
		while ((k = read(p[0], sink, sizeof sink)) > 0)
			sum = hash(sum, sink, (size_t)k);
		printf("write %zd errno=%s sum=%lu\n", w, w < 0 ? strerror(e) : "-", sum);
		return 0;
	}
	alarm(1);
	ssize_t r = read(p[0], buf, 8192);
	int e = errno;
	printf("read %zd errno=%s first=%c last=%c\n", r, r < 0 ? strerror(e) : "-",
	       r > 0 ? buf[0] : '?', r > 0 ? buf[r - 1] : '?');
	return 0;
}

static int mixed(void)
{
	static const size_t piece[] = { 4096, 8192, 12288 };
	static const size_t at[] = { 0, 100, 4096 };
	unsigned long h = 0;
	for (int k = 0;; k++) {
		size_t n = 65536, o = 0;
		if (k % 4 == 3) {
			n = piece[(k / 4) % 3];
			o = at[(k / 4 / 3) % 3];
			/* Back and forth: the position is the program's. */
			off_t here = lseek(hf, 0, SEEK_CUR);
			lseek(hf, 1, SEEK_CUR);
			lseek(hf, here, SEEK_SET);
		}
		ssize_t r = read(hf, buf + o, n);
		if (r < 0) {
			printf("turn %d read errno=%s\n", k, strerror(errno));
			return 0;
		}
		if (r == 0)
			break;
		h = hash(h, buf + o, (size_t)r);
		ssize_t w = write(hg, buf + o, (size_t)r);
		if (w != r) {
			printf("turn %d write %zd errno=%s\n", k, w, strerror(errno));
			return 0;
		}
		if (k % 4 == 3)
			printf("turn %d piece %zu at %zu read %zd pos %lld hash %lu\n", k, n, o, r,
			       (long long)lseek(hf, 0, SEEK_CUR), hash(0, buf + o, (size_t)r));
	}
	ssize_t r = pread(hf, buf + 100, 8192, 12345);
	printf("pread %zd hash %lu\n", r, r > 0 ? hash(0, buf + 100, (size_t)r) : 0);
	printf("end pos %lld all %lu\n", (long long)lseek(hf, 0, SEEK_CUR), h);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: trackmin SRC DST SCENARIO\n");
		return 2;
	}
	const char *s = argv[3];
	if (strncmp(s, "small-", 6) == 0) {
		small_loop(argv[1], argv[2]);
		s += 6;
	}
	hf = open(argv[1], O_RDONLY);
	hg = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
	buf = mmap(NULL, 65536 + 16384, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (hf < 0 || hg < 0 || buf == MAP_FAILED) {
		perror("setup");
		return 1;
	}
	if (strcmp(s, "write") == 0) {
		mode = 1;
		return restarted();
	}
	if (strcmp(s, "fwrite") == 0) {
		mode = 2;
		return restarted();
	}
	if (strcmp(s, "read") == 0)
		return restarted();
	if (strcmp(s, "mixed") == 0)
		return mixed();
	fprintf(stderr, "unknown scenario %s\n", s);
	return 2;
}
