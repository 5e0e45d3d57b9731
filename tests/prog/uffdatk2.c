/*
 * uffdatk2.c - more ways a program can start serving its own page faults
 * (userfaultfd(2)) while a copy loop of its is running, and a stream
 * source's number replaced while a read of it waits.
 *
 *   uffdatk2 stream-swap-uffd
 *   uffdatk2 stream-swap-wait
 *   uffdatk2 ctor
 *   uffdatk2 handler
 *
 * The loops copy a pipe (1 MiB of capacity) to out.bin in reads of 64 KiB
 * into a buffer that starts 512 bytes into an anonymous mapping of 18
 * pages: 20 reads, each of 64 KiB the main thread wrote into the pipe
 * just before (byte i of the stream is (i * 7 + i / 4096) & 0xff). Then
 * the trap read: the pipe is empty, so the read waits; another thread
 * acts (below), and a last 64 KiB of the stream goes into the pipe.
 * stdout: what the trap read returned, how many of its bytes are not the
 * stream's, how many bytes each pipe still holds, and a checksum of
 * out.bin (the trap read's bytes are written there too). stderr: whether
 * the buffer was guarded before the trap (a phantom, when preloaded).
 *
 * stream-swap-uffd: the other thread makes a userfaultfd, registers the
 * whole mapping for missing pages and drops it (MADV_DONTNEED): the trap
 * read's first copy into the buffer faults. Its fault thread, at the
 * first fault, puts a second pipe (holding 64 KiB of 0xee) on the source
 * number with dup2, then serves the page (zeros). Plainly the read holds
 * the first pipe's file: all 64 KiB come from it, dup2 or not.
 *
 * stream-swap-wait: no userfaultfd. The other thread puts the second
 * pipe (empty) on the source number with dup2 while the read waits,
 * then writes the stream's last 64 KiB into the first pipe, and 200 ms
 * later 64 KiB of 0xee into the second. Plainly the waiting read holds
 * the first pipe and returns its bytes.
 *
 * ctor: a constructor of this program makes a userfaultfd and sets it up
 * (no registration) before main; then the same loop, 40 reads, no trap.
 * stdout as above; stderr: whether the buffer was ever guarded.
 *
 * handler: a SIGALRM timer (every 1 ms) whose handler, on its 20th run,
 * makes a userfaultfd, sets it up and registers the mapping for missing
 * pages (a fault thread serves zeros and counts); the loop runs at
 * least 200 reads meanwhile, until 40 ticks (dropping the mapping every
 * 10 reads: the reads after the handler fault). stdout: out.bin's bytes
 * that are not the stream's (the number of reads depends on timing).
 *
 * Every run ends within 6 s (alarm at 6 s: status 124 "hang").
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

#define PG 4096ul
#define CH (64u << 10) /* the largest read */
#define NPG 18

static int srcp[2], otherp[2];
static int uffd = -1;
static char *region;
static atomic_int go, stop, dup_done, faults_seen;
static uint64_t pos; /* stream offset of the next byte the main thread writes */
static size_t chunk = CH; /* bytes per read and per write into the source */
static int use_sock;  /* AF_UNIX stream socket pairs instead of pipes */

static void die(const char *what)
{
	perror(what);
	_exit(2);
}

static void on_alarm_hang(int s)
{
	(void)s;
	static const char m[] = "hang\n";
	(void)!write(1, m, sizeof m - 1);
	_exit(124);
}

static unsigned char sb(uint64_t i)
{
	return (unsigned char)(i * 7 + i / 4096);
}

static void fill_stream(unsigned char *p, size_t n, uint64_t off)
{
	for (size_t i = 0; i < n; i++)
		p[i] = sb(off + i);
}

static size_t not_stream(const unsigned char *p, size_t n, uint64_t off)
{
	size_t bad = 0;
	for (size_t i = 0; i < n; i++)
		bad += p[i] != sb(off + i);
	return bad;
}

static void put_stream(int w, size_t n)
{
	static unsigned char tmp[CH];
	fill_stream(tmp, n, pos);
	if (write(w, tmp, n) != (ssize_t)n)
		die("write pipe");
	pos += n;
}

static void setup_uffd(int do_register)
{
	uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (uffd < 0)
		die("userfaultfd");
	struct uffdio_api api = { .api = UFFD_API };
	if (ioctl(uffd, UFFDIO_API, &api) != 0)
		die("UFFDIO_API");
	if (!do_register)
		return;
	struct uffdio_register reg = {
		.range = { .start = (uintptr_t)region, .len = NPG * PG },
		.mode = UFFDIO_REGISTER_MODE_MISSING,
	};
	if (ioctl(uffd, UFFDIO_REGISTER, &reg) != 0)
		die("UFFDIO_REGISTER");
}

static int swap_on_fault;

static void *serve(void *arg)
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
		if (swap_on_fault && !dup_done) {
			if (dup2(otherp[0], srcp[0]) != srcp[0])
				die("dup2");
			dup_done = 1;
		}
		struct uffdio_zeropage z = {
			.range = { .start = m.arg.pagefault.address & ~(PG - 1), .len = PG },
		};
		if (ioctl(uffd, UFFDIO_ZEROPAGE, &z) != 0 && errno != EEXIST)
			die("UFFDIO_ZEROPAGE");
	}
	return NULL;
}

static void nap_ms(long ms)
{
	struct timespec t = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&t, &t) != 0 && errno == EINTR)
		;
}

static char *mode;

static void *actor(void *arg)
{
	(void)arg;
	while (!go)
		;
	nap_ms(100); /* the trap read waits in the source by now */
	static unsigned char ee[CH];
	memset(ee, 0xee, sizeof ee);
	if (strncmp(mode, "stream-swap-uffd", 16) == 0) {
		swap_on_fault = 1;
		setup_uffd(1);
		if (madvise(region, NPG * PG, MADV_DONTNEED) != 0)
			die("madvise");
		pthread_t f;
		pthread_create(&f, NULL, serve, NULL);
		pthread_detach(f);
		put_stream(srcp[1], chunk);
	} else {
		if (dup2(otherp[0], srcp[0]) != srcp[0])
			die("dup2");
		dup_done = 1;
		if (use_sock && write(otherp[1], ee, chunk) != (ssize_t)chunk)
			die("write other");
		put_stream(srcp[1], chunk);
		nap_ms(200);
		if (!use_sock && write(otherp[1], ee, chunk) != (ssize_t)chunk)
			die("write other");
	}
	return NULL;
}

static int out;
static uint64_t sum;

static void copy_one(char *buf, uint64_t *off, size_t *bad)
{
	ssize_t r = read(srcp[0], buf, chunk);
	if (r != (ssize_t)chunk) {
		printf("read: %zd errno=%s\n", r, r < 0 ? strerrorname_np(errno) : "-");
		exit(3);
	}
	/* Not looked at here: a look is a touch, which disarms the loop.
	 * out.bin is checked at the end (file_bad). */
	(void)bad;
	if (write(out, buf, chunk) != (ssize_t)chunk)
		die("write out");
	*off += chunk;
}

/* Bytes of out.bin's first n that are not the stream's; its checksum. */
static size_t file_bad(uint64_t n)
{
	int f = open("out.bin", O_RDONLY);
	static unsigned char b[CH];
	size_t bad = 0;
	uint64_t o = 0;
	ssize_t r;
	while (f >= 0 && o < n && (r = read(f, b, n - o < CH ? n - o : CH)) > 0) {
		bad += not_stream(b, (size_t)r, o);
		for (ssize_t i = 0; i < r; i += 64)
			sum = sum * 31 + b[i];
		o += (uint64_t)r;
	}
	if (f >= 0)
		close(f);
	return bad + (size_t)(n - o);
}

static int pipe_left(int r)
{
	int q = -1;
	if (ioctl(r, FIONREAD, &q) != 0)
		return -1;
	return q;
}

static void setup_loop(void)
{
	if (use_sock) {
		if (socketpair(AF_UNIX, SOCK_STREAM, 0, srcp) != 0 ||
		    socketpair(AF_UNIX, SOCK_STREAM, 0, otherp) != 0)
			die("socketpair");
		int sz = 1 << 20;
		for (int i = 0; i < 2; i++) {
			setsockopt(srcp[i], SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
			setsockopt(otherp[i], SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
		}
	} else {
		if (pipe(srcp) != 0 || pipe(otherp) != 0)
			die("pipe");
		if (fcntl(srcp[0], F_SETPIPE_SZ, 1 << 20) < 0 ||
		    fcntl(otherp[0], F_SETPIPE_SZ, 1 << 20) < 0)
			die("F_SETPIPE_SZ");
	}
	out = open("out.bin", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (region == NULL)
		region = mmap(NULL, NPG * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (out < 0 || region == MAP_FAILED)
		die("setup");
}

static int warm_only;

static int swap(void)
{
	setup_loop();
	char *buf = region + 512;
	uint64_t off = 0;
	size_t bad = 0;
	if (strncmp(mode, "stream-swap-uffd", 16) == 0) {
		static unsigned char ee[CH];
		memset(ee, 0xee, sizeof ee);
		if (write(otherp[1], ee, chunk) != (ssize_t)chunk)
			die("write other");
	}
	for (int i = 0; i < 20; i++) {
		put_stream(srcp[1], chunk);
		copy_one(buf, &off, &bad);
	}
	fprintf(stderr, "guarded before=%d\n", guarded(region + PG, 8 * PG) == 1 ? 1 : 0);
	if (warm_only) {
		printf("reads of %zu bytes, all full; out.bin bytes not the stream's: %zu\n", chunk,
		       file_bad(off));
		return 0;
	}
	pthread_t a;
	pthread_create(&a, NULL, actor, NULL);
	go = 1;
	ssize_t r = read(srcp[0], buf, chunk);
	stop = 1;
	int e = errno;
	printf("warm-up: out.bin bytes not the stream's: %zu\n", file_bad(off));
	printf("trap read: %zd errno=%s\n", r, r < 0 ? strerrorname_np(e) : "-");
	if (r > 0) {
		size_t ne = 0;
		for (ssize_t i = 0; i < r; i++)
			ne += (unsigned char)buf[i] == 0xee;
		printf("trap read: bytes not the stream's=%zu of them 0xee=%zu\n",
		       not_stream((unsigned char *)buf, (size_t)r, off), ne);
		if (write(out, buf, (size_t)r) != r)
			die("write out");
	}
	pthread_join(a, NULL);
	printf("dup2 done=%d\n", (int)dup_done);
	/* The source number names the second pipe now (after the dup2);
	 * the first pipe's unread bytes are counted through its write end
	 * (FIONREAD works on either end of a pipe; a socket pair
	 * end counts what it can read: the stream side, 0 here). */
	printf("second source holds=%d\n", pipe_left(srcp[0]));
	int q = -1;
	(void)!ioctl(srcp[1], FIONREAD, &q);
	printf("first source holds=%d\n", q);
	return 0;
}

static void ctor_uffd(void) __attribute__((constructor));
static int ctor_made;

static void ctor_uffd(void)
{
	/* Only in the ctor scenario: argv[1] from /proc/self/cmdline. */
	static char cmd[256];
	int f = open("/proc/self/cmdline", O_RDONLY);
	ssize_t n = f >= 0 ? read(f, cmd, sizeof cmd - 1) : -1;
	if (f >= 0)
		close(f);
	size_t l0 = n > 0 ? strlen(cmd) : 0;
	if (n <= 0 || (ssize_t)l0 + 1 >= n || strcmp(cmd + l0 + 1, "ctor") != 0)
		return;
	setup_uffd(0);
	ctor_made = 1;
}

static int ctor(void)
{
	if (!ctor_made) {
		printf("the constructor made no userfaultfd\n");
		return 2;
	}
	setup_loop();
	char *buf = region + 512;
	uint64_t off = 0;
	size_t bad = 0;
	int ever = 0;
	for (int i = 0; i < 40; i++) {
		put_stream(srcp[1], chunk);
		copy_one(buf, &off, &bad);
		ever |= guarded(region + PG, 8 * PG) == 1;
	}
	size_t fb = file_bad(off);
	printf("out.bin bytes not the stream's: %zu checksum=%016llx\n", fb, (unsigned long long)sum);
	fprintf(stderr, "ever guarded=%d\n", ever);
	return 0;
}

static atomic_int ticks;

static void on_tick(int s)
{
	(void)s;
	int saved = errno;
	if (++ticks == 20) {
		setup_uffd(1);
		pthread_t f;
		pthread_create(&f, NULL, serve, NULL);
		pthread_detach(f);
	}
	errno = saved;
}

static int handler(void)
{
	setup_loop();
	struct sigaction sa = { .sa_handler = on_tick, .sa_flags = SA_RESTART };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, NULL);
	struct itimerval it = { { 0, 1000 }, { 0, 1000 } };
	setitimer(ITIMER_REAL, &it, NULL);
	char *buf = region + 512;
	uint64_t off = 0;
	size_t bad = 0;
	for (int i = 0; i < 3000 && (ticks < 40 || i < 200); i++) {
		put_stream(srcp[1], chunk);
		copy_one(buf, &off, &bad);
		if (i % 10 == 9)
			madvise(region, NPG * PG, MADV_DONTNEED);
	}
	struct itimerval no = { { 0, 0 }, { 0, 0 } };
	setitimer(ITIMER_REAL, &no, NULL);
	stop = 1;
	printf("ticks>=20: %d\n", ticks >= 20);
	size_t fb = file_bad(off);
	printf("out.bin bytes not the stream's: %zu\n", fb); /* its length varies */
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	if (argc < 2)
		return 2;
	mode = argv[1];
	if (strcmp(mode, "handler") != 0) {
		signal(SIGALRM, on_alarm_hang);
		alarm(6);
	}
	/* Transport and read size from the name: -unix sockets or pipes;
	 * a pipe read ends on a page boundary (65024 bytes from 512 in)
	 * except in pipe-short, whose 64 KiB reads end 512 bytes into a
	 * page as the socket ones do. */
	use_sock = strstr(mode, "-unix") != NULL;
	if (strcmp(mode, "pipe-short") == 0) {
		warm_only = 1;
		return swap();
	}
	if (!use_sock)
		chunk = CH - 512;
	if (strncmp(mode, "stream-swap-", 12) == 0)
		return swap();
	if (strcmp(mode, "ctor") == 0)
		return ctor();
	if (strcmp(mode, "handler") == 0)
		return handler();
	return 2;
}
