/* send_notsock.c: send()/sendto()/sendmsg() with flags 0 on a pipe or regular file whose
 * buffer is a phantom (armed by read/write first) or a file mapping.
 * Plain: -1 ENOTSOCK every time.
 * usage: send_notsock pipe|file  phantom|map  send|sendto|sendmsg */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#define N (256 * 1024)
static unsigned long sum(const unsigned char *p, size_t n) { unsigned long s = 0; for (size_t i = 0; i < n; i++) s = s * 31 + p[i]; return s; }
int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: send_notsock pipe|file phantom|map send|sendto|sendmsg\n");
		return 2;
	}
	const char *dk = argv[1], *bk = argv[2], *how = argv[3];
	char src[] = "/tmp/m1src.XXXXXX";
	int sf = mkstemp(src);
	unsigned char *pat = malloc(8 * N);
	for (size_t i = 0; i < 8 * N; i++) pat[i] = (unsigned char)(i * 7 + i / 4096);
	write(sf, pat, 8 * N);
	lseek(sf, 0, SEEK_SET);
	int dst, rd = -1;
	char dpath[] = "/tmp/m1dst.XXXXXX";
	pid_t kid = -1;
	if (!strcmp(dk, "pipe")) {
		int p[2]; pipe(p); dst = p[1]; rd = p[0];
		kid = fork();
		if (kid == 0) { close(p[1]); unsigned char b[65536]; unsigned long tot = 0, s = 0; ssize_t r;
			while ((r = read(p[0], b, sizeof b)) > 0) { for (ssize_t i = 0; i < r; i++) s = s * 31 + b[i]; tot += r; }
			printf("reader got %lu bytes sum %lx\n", tot, s); fflush(stdout); _exit(0); }
		close(rd);
	} else {
		dst = mkstemp(dpath);
	}
	unsigned char *buf;
	if (!strcmp(bk, "map")) {
		buf = mmap(NULL, 8 * N, PROT_READ, MAP_PRIVATE, sf, 0);
		lseek(sf, 0, SEEK_SET);
	} else {
		buf = aligned_alloc(4096, N);
		/* arm with read/write pairs */
		for (int i = 0; i < 4; i++) {
			ssize_t r = read(sf, buf, N);
			ssize_t w = write(dst, buf, r);
			printf("warm %d read %zd write %zd\n", i, r, w);
		}
	}
	for (int i = 0; i < 3; i++) {
		unsigned char *p = buf;
		if (!strcmp(bk, "map")) p = buf + (size_t)(4 + i) * N;
		else { ssize_t r = read(sf, buf, N); printf("read %zd\n", r); }
		ssize_t s;
		errno = 0;
		if (!strcmp(how, "send")) s = send(dst, p, N, getenv("FLAGS") ? atoi(getenv("FLAGS")) : 0);
		else if (!strcmp(how, "sendto")) s = sendto(dst, p, N, 0, NULL, 0);
		else { struct iovec v = { p, N }; struct msghdr m = { .msg_iov = &v, .msg_iovlen = 1 }; s = sendmsg(dst, &m, 0); }
		printf("%s %d -> %zd errno %s\n", how, i, s, s < 0 ? strerrorname_np(errno) : "-");
		if (s < 0 && !getenv("NOFALLBACK")) { ssize_t w = write(dst, p, N); printf("fallback write -> %zd\n", w); }
	}
	fflush(stdout);
	if (kid > 0) { close(dst); waitpid(kid, NULL, 0); }
	else { off_t e = lseek(dst, 0, SEEK_END); unsigned char *d = malloc(e); pread(dst, d, e, 0); printf("file size %ld sum %lx\n", (long)e, sum(d, e)); unlink(dpath); }
	unlink(src);
	return 0;
}
