/*
 * streamatk.c - pipe reads whose tail is taken after the pool pipe's
 * pages (defer.c stream_read, read_more, pipe_more): how many bytes each
 * read(2) of a pipe source returns when the pipe holds less than the
 * buffer, or a packet (pipe(7) O_DIRECT) behind ordinary bytes.
 *
 *   streamatk SCENARIO [OFFSET]
 *
 * One process, one pipe of 1 MiB capacity (F_SETPIPE_SZ). Each round the
 * program writes the round's bytes into the pipe, then makes one read of
 * 64 KiB into a buffer that starts OFFSET bytes (default 512) into an
 * anonymous mapping of 18 pages, and writes what it got to out.bin (a
 * pipe -> file copy loop: armed with NOBOUNCE_MIN_CHUNK_STREAM=16K
 * NOBOUNCE_MIN_CHUNK=16K after the first rounds). The first 8 rounds
 * write 64 KiB (the loop settles and arms); then the scenario's rounds.
 * Byte i of the stream is (i * 7 + i / 4096) & 0xff.
 *
 *   tail1      4 rounds of 32 KiB + 1 byte (ordinary writes)
 *   tail2      4 rounds of 32 KiB + 2 bytes (guard: more than 1 byte)
 *   tailpage1  4 rounds of 64 KiB - OFFSET + 1 byte: the pool pipe takes
 *              the buffer's whole pages and one byte is left for the rest
 *   packet     4 rounds of 64 KiB - OFFSET + 100 ordinary bytes, then a
 *              500-byte packet (O_DIRECT set on the write end for it;
 *              too long to merge into the last ordinary page)
 *   packet-more  as packet, and 100 ordinary bytes after the packet
 *
 *   unix-tail1, unix-tailpage1: tail1, tailpage1 over an AF_UNIX stream
 *              socket pair instead of the pipe
 *
 * stdout: every read's count after the warm-up rounds ("read R: N"),
 * the bytes still in the pipe, out.bin's size and how many of its bytes
 * are not the stream's. stderr: whether the buffer was guarded once.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common.h"

#define PG 4096ul
#define CH (64u << 10)
#define NPG 18

static int p[2], out;
static uint64_t wpos, rpos;

static void die(const char *what)
{
	perror(what);
	_exit(2);
}

static unsigned char sb(uint64_t i)
{
	return (unsigned char)(i * 7 + i / 4096);
}

static void put(size_t n, int packet)
{
	static unsigned char tmp[CH + PG];
	for (size_t i = 0; i < n; i++)
		tmp[i] = sb(wpos + i);
	int fl = fcntl(p[1], F_GETFL);
	if (packet && fcntl(p[1], F_SETFL, fl | O_DIRECT) != 0)
		die("O_DIRECT");
	if (write(p[1], tmp, n) != (ssize_t)n)
		die("write pipe");
	if (packet && fcntl(p[1], F_SETFL, fl) != 0)
		die("F_SETFL");
	wpos += n;
}

static int ever_guarded;

static ssize_t take(char *buf, int show, int r)
{
	ssize_t got = read(p[0], buf, CH);
	if (got < 0)
		die("read");
	if (show)
		printf("read %d: %zd\n", r, got);
	if (write(out, buf, (size_t)got) != got)
		die("write out");
	rpos += (uint64_t)got;
	ever_guarded |= guarded(buf, CH) == 1;
	return got;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	const char *sc = argv[1];
	size_t off = argc > 2 ? strtoul(argv[2], NULL, 0) : 512;
	if (strncmp(sc, "unix-", 5) == 0) {
		/* The same rounds over an AF_UNIX stream socket pair (no
		 * packets: O_DIRECT is a pipe's). */
		sc += 5;
		if (socketpair(AF_UNIX, SOCK_STREAM, 0, p) != 0)
			die("socketpair");
		int sz = 1 << 20;
		setsockopt(p[1], SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
		setsockopt(p[0], SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
	} else if (pipe(p) != 0 || fcntl(p[0], F_SETPIPE_SZ, 1 << 20) < 0)
		die("pipe");
	out = open("out.bin", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (out < 0)
		die("out.bin");
	char *region = mmap(NULL, NPG * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (region == MAP_FAILED)
		die("mmap");
	char *buf = region + off;
	for (int r = 0; r < 8; r++) {
		put(CH, 0);
		take(buf, 0, r);
	}
	for (int r = 0; r < 4; r++) {
		if (strcmp(sc, "tail1") == 0)
			put(32768 + 1, 0);
		else if (strcmp(sc, "tail2") == 0)
			put(32768 + 2, 0);
		else if (strcmp(sc, "tailpage1") == 0)
			put(CH - off + 1, 0);
		else if (strcmp(sc, "packet") == 0) {
			put(CH - off + 100, 0);
			put(500, 1);
		} else if (strcmp(sc, "packet-more") == 0) {
			put(CH - off + 100, 0);
			put(500, 1);
			put(100, 0);
		} else
			return 2;
		take(buf, 1, r);
		/* Whatever a read left behind is read before the next round. */
		int q = 0;
		while (ioctl(p[0], FIONREAD, &q) == 0 && q > 0)
			take(buf, 1, r);
	}
	int q = -1;
	ioctl(p[0], FIONREAD, &q);
	printf("left in pipe: %d\n", q);
	close(out);
	int in = open("out.bin", O_RDONLY);
	static unsigned char cmpbuf[CH];
	uint64_t at = 0, bad = 0;
	ssize_t k;
	while ((k = read(in, cmpbuf, sizeof cmpbuf)) > 0)
		for (ssize_t i = 0; i < k; i++, at++)
			bad += cmpbuf[i] != sb(at);
	printf("out.bin: %llu bytes, %llu not the stream's (written %llu)\n", (unsigned long long)at,
	       (unsigned long long)bad, (unsigned long long)wpos);
	fprintf(stderr, "guarded once=%d\n", ever_guarded);
	return 0;
}
