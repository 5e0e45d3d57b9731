/*
 * uffdatk.c - a program that starts serving its own page faults
 * (userfaultfd(2)) while its copy loop runs in another thread.
 *
 *   uffdatk inflight [TRIALS]   in an empty scratch directory (300)
 *   uffdatk inflight-drop|inflight-drop-reopen [TRIALS]          (8)
 *   uffdatk errno
 *   uffdatk wp
 *
 * inflight: TRIALS child processes, one after another. In each, the main
 * thread copies f.bin (4 MiB, read again from the start at its end) to
 * out.bin in reads of 256 KiB into one buffer that starts 512 bytes into
 * its first page, dropping that first page (MADV_DONTNEED) before every
 * read. After 8 reads a second thread waits a while (a different time in
 * each trial, a few to a few hundred microseconds), makes a userfaultfd,
 * sets it up and registers the buffer's pages for missing pages; its
 * fault thread, on the first fault, closes the source number and then
 * serves the page with zeros. Plainly the read that faults holds its
 * file: the close returns at once, the read returns, the next one fails
 * with EBADF. A child exits 9 if the close took more than 500 ms, 10 if
 * the read that met it returned bytes that are not the file's, 11 both. stdout: the number of
 * trials, of slow closes and of wrong reads (plainly 0 and 0).
 *
 * inflight-drop: before every read the whole buffer is dropped and the
 * file's cached pages too (POSIX_FADV_DONTNEED, as a streaming reader
 * that spares the cache does): the reads' own calls go to the disk.
 * inflight-drop-reopen: as inflight-drop, and the fault thread opens g.bin
 * (4 MiB of 0xee) right after its close - it gets the number; the read
 * that met the close must still return f.bin's bytes.
 *
 * errno: ioctl requests of userfaultfd's type (0xAA) that fail - on a
 * pipe, on a closed number, through syscall(SYS_ioctl) - after the loop
 * ran (its buffer guarded, when preloaded: stderr "guarded before=1"):
 * return values and errno, whether the buffer holds the file's bytes,
 * then the loop again (stderr "guarded after=N").
 *
 * wp: the loop runs (its buffer guarded, when preloaded), then a
 * userfaultfd registers the buffer for write protection
 * (UFFDIO_REGISTER_MODE_WP), write-protects it, and a fault thread
 * counts write faults and lifts the protection page by page; the main
 * thread writes one byte per page, and reads one more chunk into it.
 * stdout: the bytes seen and the fault counts (stderr: guarded before
 * and after).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

#define FSZ (4ul << 20)
#define CH (256u << 10)
#define PG 4096ul

static int uffd = -1, src = -1;
static char *region;
static size_t region_len;
static atomic_int go, stop, trap, faults_seen;
static atomic_long close_ms = -1;
static int reopen; /* the fault thread opens g.bin on the closed number */

static void die(const char *what)
{
	perror(what);
	exit(2);
}

static long us_now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000000L + t.tv_nsec / 1000L;
}

static void make_file(void)
{
	int f = open("f.bin", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	uint64_t *w = malloc(1u << 20);
	if (f < 0 || w == NULL)
		die("make");
	for (uint64_t o = 0; o < FSZ; o += 1u << 20) {
		for (size_t i = 0; i < (1u << 17); i++)
			w[i] = o + i * 8;
		if (write(f, w, 1u << 20) != 1 << 20)
			die("write");
	}
	close(f);
	memset(w, 0xee, 1u << 20);
	int g = open("g.bin", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	for (uint64_t o = 0; g >= 0 && o < FSZ; o += 1u << 20)
		if (write(g, w, 1u << 20) != 1 << 20)
			die("write g");
	if (g < 0)
		die("make g");
	close(g);
	free(w);
}

/* Are n bytes at p the file's bytes at off? (8-byte words = offsets) */
static int file_bytes(const char *p, size_t n, uint64_t off)
{
	for (size_t i = 0; i + 8 <= n; i += 8) {
		uint64_t v;
		memcpy(&v, p + i, 8);
		if (v != off + i)
			return 0;
	}
	return 1;
}

static void setup_uffd(int mode)
{
	uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (uffd < 0)
		die("userfaultfd");
	struct uffdio_api api = { .api = UFFD_API,
				  .features = mode == UFFDIO_REGISTER_MODE_WP ?
						      UFFD_FEATURE_PAGEFAULT_FLAG_WP : 0 };
	if (ioctl(uffd, UFFDIO_API, &api) != 0)
		die("UFFDIO_API");
	struct uffdio_register reg = {
		.range = { .start = (uintptr_t)region, .len = region_len },
		.mode = (uint64_t)mode,
	};
	if (ioctl(uffd, UFFDIO_REGISTER, &reg) != 0)
		die("UFFDIO_REGISTER");
}

/* Missing pages: zeros; the first fault after the trap is set closes the
 * source number before its page is served. */
static void *serve_missing(void *arg)
{
	(void)arg;
	while (!stop) {
		struct pollfd p = { .fd = uffd, .events = POLLIN };
		if (poll(&p, 1, 20) <= 0)
			continue;
		struct uffd_msg m;
		if (read(uffd, &m, sizeof m) != sizeof m || m.event != UFFD_EVENT_PAGEFAULT)
			continue;
		faults_seen++;
		if (atomic_exchange(&trap, 0)) {
			long t0 = us_now();
			close(src);
			close_ms = (us_now() - t0) / 1000;
			if (reopen && open("g.bin", O_RDONLY) != src)
				die("reopen");
		}
		struct uffdio_zeropage z = {
			.range = { .start = m.arg.pagefault.address & ~(PG - 1), .len = PG },
		};
		if (ioctl(uffd, UFFDIO_ZEROPAGE, &z) != 0 && errno != EEXIST)
			die("UFFDIO_ZEROPAGE");
	}
	return NULL;
}

static long trial_delay_us;
static int drop_all; /* the whole buffer dropped, the file's cache too */

/* The thread that starts serving the program's page faults. */
static void *starter(void *arg)
{
	(void)arg;
	while (!go)
		;
	long until = us_now() + trial_delay_us;
	while (us_now() < until)
		;
	setup_uffd(UFFDIO_REGISTER_MODE_MISSING);
	trap = 1;
	pthread_t f;
	pthread_create(&f, NULL, serve_missing, NULL);
	pthread_detach(f);
	return NULL;
}

static int one_trial(int t)
{
	trial_delay_us = (t * 37) % 400;
	src = open("f.bin", O_RDONLY);
	int out = open("out.bin", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	region_len = CH + 2 * PG;
	region = mmap(NULL, region_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (src < 0 || out < 0 || region == MAP_FAILED)
		die("trial setup");
	char *buf = region + 512;
	pthread_t s;
	pthread_create(&s, NULL, starter, NULL);
	uint64_t off = 0;
	int wrong = 0;
	long deadline = us_now() + 5000000L;
	for (int turn = 0; us_now() < deadline; turn++) {
		if (turn == 30)
			go = 1;
		if (madvise(region, drop_all ? region_len : PG, MADV_DONTNEED) != 0)
			die("madvise");
		if (drop_all)
			posix_fadvise(src, 0, 0, POSIX_FADV_DONTNEED);
		ssize_t r = read(src, buf, CH);
		if (r < 0 && errno == EBADF)
			break;
		if (r != CH)
			die("read");
		/* Looked at only once the trap went off (a look is a touch,
		 * which would make the loop plain): the read that met the
		 * trap returns after the close, and is the last one. */
		if (close_ms >= 0) {
			wrong = !file_bytes(buf, CH, off);
			break;
		}
		if (write(out, buf, CH) != CH)
			die("write out");
		off += CH;
		if (off == FSZ) {
			off = 0;
			if (lseek(src, 0, SEEK_SET) != 0) {
				if (errno == EBADF)
					break;
				die("lseek");
			}
			if (lseek(out, 0, SEEK_SET) != 0)
				die("lseek out");
		}
	}
	stop = 1;
	if (close_ms < 0)
		return 3; /* the trap never went off */
	if (close_ms > 500 || wrong)
		return 8 | (close_ms > 500) | wrong << 1;
	return 0;
}

static int inflight(int trials)
{
	make_file();
	int slow = 0, wrong = 0, other = 0;
	for (int t = 0; t < trials; t++) {
		fflush(NULL);
		pid_t c = fork();
		if (c < 0)
			die("fork");
		if (c == 0)
			_exit(one_trial(t));
		int st;
		if (waitpid(c, &st, 0) != c)
			die("waitpid");
		int rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		if (rc >= 9 && rc <= 11) {
			slow += rc & 1;
			wrong += rc >> 1 & 1;
			fprintf(stderr, "trial %d:%s%s\n", t, rc & 1 ? " slow close" : "",
				rc & 2 ? " wrong bytes" : "");
		} else if (rc != 0) {
			other++;
			fprintf(stderr, "trial %d: status %d\n", t, rc);
		}
	}
	printf("trials=%d slow closes=%d wrong reads=%d other=%d\n", trials, slow, wrong, other);
	return 0;
}

static void copy_some(int turns, char *buf, int out, uint64_t *off)
{
	for (int i = 0; i < turns; i++) {
		ssize_t r = read(src, buf, CH);
		if (r != CH)
			die("read");
		if (write(out, buf, CH) != CH)
			die("write");
		*off += CH;
	}
}

static void show(const char *what, long r)
{
	printf("%s: %ld errno=%s\n", what, r, r < 0 ? strerrorname_np(errno) : "-");
}

static int errnos(void)
{
	make_file();
	src = open("f.bin", O_RDONLY);
	int out = open("out.bin", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	region_len = CH + 2 * PG;
	region = mmap(NULL, region_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (src < 0 || out < 0 || region == MAP_FAILED)
		die("setup");
	uint64_t off = 0;
	copy_some(6, region + 512, out, &off);
	fprintf(stderr, "guarded before=%d\n", guarded(region + PG, CH - PG) == 1 ? 1 : 0);
	int p[2];
	if (pipe(p) != 0)
		die("pipe");
	struct uffdio_api api = { .api = UFFD_API };
	errno = 0;
	show("UFFDIO_API on a pipe", ioctl(p[0], UFFDIO_API, &api));
	errno = 0;
	show("UFFDIO_API on a closed number", ioctl(999, UFFDIO_API, &api));
	errno = 0;
	show("UFFDIO_API bad pointer", ioctl(p[0], UFFDIO_API, (void *)8));
	errno = 0;
	show("syscall ioctl UFFDIO_REGISTER on a pipe", syscall(SYS_ioctl, p[0], UFFDIO_REGISTER, &api));
	errno = 0;
	show("syscall userfaultfd bad flags", syscall(SYS_userfaultfd, 0x7fffffff));
	printf("buffer bytes are the file's: %d\n", file_bytes(region + 512, CH, off - CH));
	copy_some(6, region + 512, out, &off);
	fprintf(stderr, "guarded after=%d\n", guarded(region + PG, CH - PG) == 1 ? 1 : 0);
	return 0;
}

static void *serve_wp(void *arg)
{
	(void)arg;
	while (!stop) {
		struct pollfd p = { .fd = uffd, .events = POLLIN };
		if (poll(&p, 1, 20) <= 0)
			continue;
		struct uffd_msg m;
		if (read(uffd, &m, sizeof m) != sizeof m || m.event != UFFD_EVENT_PAGEFAULT)
			continue;
		faults_seen++;
		struct uffdio_writeprotect w = {
			.range = { .start = m.arg.pagefault.address & ~(PG - 1), .len = PG },
			.mode = 0,
		};
		if (ioctl(uffd, UFFDIO_WRITEPROTECT, &w) != 0)
			die("UFFDIO_WRITEPROTECT off");
	}
	return NULL;
}

static int wp(void)
{
	make_file();
	src = open("f.bin", O_RDONLY);
	int out = open("out.bin", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	region_len = CH + 2 * PG;
	region = mmap(NULL, region_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (src < 0 || out < 0 || region == MAP_FAILED)
		die("setup");
	char *buf = region + 512;
	uint64_t off = 0;
	copy_some(6, buf, out, &off);
	fprintf(stderr, "guarded before=%d\n", guarded(region + PG, CH - PG) == 1 ? 1 : 0);
	setup_uffd(UFFDIO_REGISTER_MODE_WP);
	struct uffdio_writeprotect w = {
		.range = { .start = (uintptr_t)region, .len = region_len },
		.mode = UFFDIO_WRITEPROTECT_MODE_WP,
	};
	if (ioctl(uffd, UFFDIO_WRITEPROTECT, &w) != 0)
		die("UFFDIO_WRITEPROTECT");
	pthread_t f;
	pthread_create(&f, NULL, serve_wp, NULL);
	printf("bytes after register: %d\n", file_bytes(buf, CH, off - CH));
	for (size_t i = 0; i < region_len; i += PG)
		region[i] ^= 1;
	for (size_t i = 0; i < region_len; i += PG)
		region[i] ^= 1;
	printf("write faults: %d\n", (int)faults_seen);
	printf("bytes after writes: %d\n", file_bytes(buf, CH, off - CH));
	/* Protected again; a read into it: the kernel's copy faults too. */
	if (ioctl(uffd, UFFDIO_WRITEPROTECT, &w) != 0)
		die("UFFDIO_WRITEPROTECT again");
	faults_seen = 0;
	ssize_t r = read(src, buf, CH);
	printf("read: %zd bytes=%d faults=%d\n", r, r == CH && file_bytes(buf, CH, off), (int)faults_seen);
	off += CH;
	if (write(out, buf, CH) != CH)
		die("write");
	copy_some(4, buf, out, &off);
	fprintf(stderr, "guarded after=%d\n", guarded(region + PG, CH - PG) == 1 ? 1 : 0);
	stop = 1;
	pthread_join(f, NULL);
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc >= 2 && strcmp(argv[1], "inflight") == 0)
		return inflight(argc > 2 ? atoi(argv[2]) : 300);
	if (argc >= 2 && (strcmp(argv[1], "inflight-drop") == 0 ||
			  strcmp(argv[1], "inflight-drop-reopen") == 0)) {
		drop_all = 1;
		reopen = strcmp(argv[1], "inflight-drop-reopen") == 0;
		return inflight(argc > 2 ? atoi(argv[2]) : 8);
	}
	if (argc == 2 && strcmp(argv[1], "errno") == 0)
		return errnos();
	if (argc == 2 && strcmp(argv[1], "wp") == 0)
		return wp();
	fprintf(stderr, "usage: uffdatk inflight|inflight-drop|inflight-drop-reopen [TRIALS] | errno | wp\n");
	return 2;
}
