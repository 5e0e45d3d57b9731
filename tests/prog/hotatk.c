/*
 * hotatk.c - the hooks' hot path under attack: small and large calls
 * beside live phantoms, file mappings and other threads, where the hot
 * path's "nothing is live" looks must still send the hooks down their
 * full path. One scenario per run (argv[1], argv[2]); run in an empty
 * directory; prints every result and a hash of every file written, so
 * that a plain and a preloaded run can be compared line for line.
 * Probes of buffer protection go to stderr ("probe ... guarded=N").
 *
 *   srcwrite HOW   an armed file -> file loop; with the last read a
 *                  phantom, the program changes those source bytes through
 *                  another descriptor (HOW: write pwrite writev pwritev
 *                  pwritev2 pwritev2-pos pwritev2-dsync ftruncate fwrite
 *                  write-self), then writes the buffer
 *   mt HOW         thread A copies; after every read, thread B (which
 *                  never reads) changes the bytes just read with a small
 *                  write/pwrite/writev, or reads 1 byte into A's buffer
 *                  (smallread); then A writes the buffer
 *   mapw HOW       a MAP_SHARED read-only file mapping written through
 *                  HOW (write pwrite writev pwritev pwritev2), then the
 *                  file changed, then a 20-byte write of the mapping
 *   detect HOW     reads first small then 64 KiB (small grow readv preadv)
 *   ownfd          every descriptor number the program does not hold is
 *                  read and written (EBADF, the library's own included)
 *   errno          errno around calls of every size, and failing calls
 *   signal         a handler that copies its own pair, raised between
 *                  1-byte copies
 *   sigfirst       a timer's handler reading its armed pair while the
 *                  main loop makes its first deferred read
 *   itimer         the same from an interval timer (lands anywhere)
 *   mtmix N        N threads with their own files: loops, 1-byte copies,
 *                  mapping writers, loops that rewrite their source
 *   fork HOW       a phantom live across fork/vfork; the child changes the
 *                  source (fork: through the parent's descriptor;
 *                  fork-open-norw: through one it opens; vfork)
 *   interleave     small reads and preads of the source between 64 KiB
 *                  reads
 */
#include <stdbool.h>
#include "common.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <sys/time.h>

#define CHUNK (64 * 1024)
#define MARK 4242

static void die(const char *what)
{
	fprintf(stderr, "hotatk: %s: %s\n", what, strerror(errno));
	exit(3);
}

static void print_file(const char *label, const char *path)
{
	long long n;
	uint64_t h;
	if (raw_file_hash(path, &n, &h) != 0) {
		printf("%s: cannot open\n", label);
		return;
	}
	printf("%s bytes %lld hash %016llx\n", label, n, (unsigned long long)h);
}

static void make_file(const char *path, size_t size, unsigned seed)
{
	if (lcg_file(path, size, seed) != 0)
		die(path);
}

static void result(const char *what, ssize_t r, int err)
{
	printf("%s -> %zd%s%s\n", what, r, r < 0 ? " errno " : "", r < 0 ? strerror(err) : "");
}

/* Arms a src -> out loop: 8 reads+writes of CHUNK. Returns the buffer
 * holding the 9th read (a phantom when preloaded). */
static unsigned char *arm(int in, int out, unsigned char *buf, ssize_t *last)
{
	for (int i = 0; i < 8; i++) {
		ssize_t r = read(in, buf, CHUNK);
		if (r != CHUNK || write(out, buf, (size_t)r) != r)
			die("loop");
	}
	*last = read(in, buf, CHUNK);
	fprintf(stderr, "probe guarded=%d\n", guarded(buf + 4096, 4096));
	return buf;
}

/* ---- 1. the program changes the source while a phantom of it is live,
 * through each write variant, on a descriptor other than the source. */
static int sc_srcwrite(const char *how)
{
	make_file("src.bin", 16 * CHUNK, 1);
	int in = open("src.bin", O_RDONLY);
	int rw = open("src.bin", O_RDWR);
	int out = open("out.bin", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	unsigned char *buf = aligned_alloc(4096, CHUNK);
	if (in < 0 || rw < 0 || out < 0 || !buf)
		die("setup");
	ssize_t last;
	arm(in, out, buf, &last);
	printf("last %zd\n", last);
	/* The phantom stands for bytes [8*CHUNK, 9*CHUNK) of src. */
	off_t at = 8 * CHUNK + 5000;
	char patch[16];
	memset(patch, 'Z', sizeof patch);
	struct iovec v[2] = { { patch, 8 }, { patch + 8, 8 } };
	ssize_t k = -2;
	errno = MARK;
	if (strcmp(how, "write") == 0) {
		lseek(rw, at, SEEK_SET);
		k = write(rw, patch, sizeof patch);
	} else if (strcmp(how, "pwrite") == 0) {
		k = pwrite(rw, patch, sizeof patch, at);
	} else if (strcmp(how, "writev") == 0) {
		lseek(rw, at, SEEK_SET);
		k = writev(rw, v, 2);
	} else if (strcmp(how, "pwritev") == 0) {
		k = pwritev(rw, v, 2, at);
	} else if (strcmp(how, "pwritev2") == 0) {
		k = pwritev2(rw, v, 2, at, 0);
	} else if (strcmp(how, "pwritev2-pos") == 0) {
		lseek(rw, at, SEEK_SET);
		k = pwritev2(rw, v, 2, -1, 0);
	} else if (strcmp(how, "pwritev2-dsync") == 0) {
		k = pwritev2(rw, v, 2, at, RWF_DSYNC);
	} else if (strcmp(how, "ftruncate") == 0) {
		k = ftruncate(rw, at);
	} else if (strcmp(how, "fwrite") == 0) {
		FILE *f = fdopen(rw, "r+");
		fseek(f, at, SEEK_SET);
		k = (ssize_t)fwrite(patch, 1, sizeof patch, f);
		fflush(f);
	} else if (strcmp(how, "write-self") == 0) {
		/* the source descriptor itself is O_RDONLY: EBADF both ways */
		k = write(in, patch, sizeof patch);
	} else {
		die("how");
	}
	result(how, k, errno);
	printf("errno after %d\n", errno == MARK ? -1 : errno);
	k = write(out, buf, (size_t)last);
	result("write the buffer", k, errno);
	printf("buf hash %016llx\n", (unsigned long long)sum_bytes(buf, CHUNK));
	print_file("out.bin", "out.bin");
	print_file("src.bin", "src.bin");
	return 0;
}

/* ---- 2. threads: A copies; after each read B changes the bytes it read
 * in the source, with a small write of its own (a thread that never read
 * anything), before A writes the buffer. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int turn; /* 0: A's, 1: B's, 2: done */
static off_t b_at;
static int b_fd;
static const char *b_how;
static unsigned char *shared_buf;

static void *b_thread(void *arg)
{
	(void)arg;
	for (;;) {
		pthread_mutex_lock(&mu);
		while (turn == 0)
			pthread_cond_wait(&cv, &mu);
		if (turn == 2) {
			pthread_mutex_unlock(&mu);
			return NULL;
		}
		off_t at = b_at;
		pthread_mutex_unlock(&mu);
		char patch[8];
		memset(patch, 'Q', sizeof patch);
		ssize_t k;
		if (strcmp(b_how, "write") == 0) {
			lseek(b_fd, at + 100, SEEK_SET);
			k = write(b_fd, patch, sizeof patch);
		} else if (strcmp(b_how, "pwrite") == 0) {
			k = pwrite(b_fd, patch, sizeof patch, at + 100);
		} else if (strcmp(b_how, "writev") == 0) {
			struct iovec v = { patch, sizeof patch };
			lseek(b_fd, at + 100, SEEK_SET);
			k = writev(b_fd, &v, 1);
		} else if (strcmp(b_how, "smallread") == 0) {
			/* B reads 1 byte into A's buffer (a phantom) */
			int z = b_fd;
			k = pread(z, shared_buf + 7000, 1, 3);
			k += read(z, shared_buf + 20000, 1);
		} else {
			k = -1;
		}
		if (k < 0)
			die("b write");
		pthread_mutex_lock(&mu);
		turn = 0;
		pthread_cond_broadcast(&cv);
		pthread_mutex_unlock(&mu);
	}
}

static int sc_mt(const char *how)
{
	make_file("src.bin", 40 * CHUNK, 2);
	int in = open("src.bin", O_RDONLY);
	int out = open("out.bin", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	b_fd = strcmp(how, "smallread") == 0 ? open("src.bin", O_RDONLY) : open("src.bin", O_RDWR);
	b_how = how;
	unsigned char *buf = malloc(CHUNK);
	shared_buf = buf;
	if (in < 0 || out < 0 || b_fd < 0 || !buf)
		die("setup");
	pthread_t t;
	pthread_create(&t, NULL, b_thread, NULL);
	off_t pos = 0;
	int guarded_seen = 0;
	for (;;) {
		ssize_t r = read(in, buf, CHUNK);
		if (r < 0)
			die("read");
		if (r == 0)
			break;
		if (r >= 8192 && guarded(buf + 4096, 4096) == 1)
			guarded_seen++;
		pthread_mutex_lock(&mu);
		b_at = pos;
		turn = 1;
		pthread_cond_broadcast(&cv);
		while (turn == 1)
			pthread_cond_wait(&cv, &mu);
		pthread_mutex_unlock(&mu);
		if (write(out, buf, (size_t)r) != r)
			die("write");
		pos += r;
	}
	pthread_mutex_lock(&mu);
	turn = 2;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
	pthread_join(t, NULL);
	fprintf(stderr, "probe guarded-reads=%d\n", guarded_seen);
	print_file("out.bin", "out.bin");
	print_file("src.bin", "src.bin");
	return 0;
}

/* ---- 3. mapped writes: a MAP_SHARED PROT_READ mapping of a file is
 * written through each variant; then the file is changed and written
 * again. */
static int sc_mapw(const char *how)
{
	size_t len = 4 * CHUNK;
	make_file("map.bin", len, 3);
	int fd = open("map.bin", O_RDWR);
	int out = -1, peer = -1;
	int sv[2];
	bool sock = strncmp(how, "send", 4) == 0;
	if (sock) {
		if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
			die("socketpair");
		out = sv[0];
		peer = sv[1];
		int sz = 4 << 20;
		setsockopt(out, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
		setsockopt(peer, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
	} else {
		out = open("out.bin", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	}
	unsigned char *m = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED || fd < 0 || out < 0)
		die("setup");
	size_t piece = CHUNK;
	for (int round = 0; round < 3; round++) {
		unsigned char *p = m + (size_t)round * piece;
		struct iovec v[2] = { { p, piece / 2 }, { p + piece / 2, piece / 2 } };
		struct msghdr mh = { 0 };
		mh.msg_iov = v;
		mh.msg_iovlen = 2;
		ssize_t k;
		errno = MARK;
		if (strcmp(how, "write") == 0)
			k = write(out, p, piece);
		else if (strcmp(how, "pwrite") == 0)
			k = pwrite(out, p, piece, (off_t)round * (off_t)piece);
		else if (strcmp(how, "writev") == 0)
			k = writev(out, v, 2);
		else if (strcmp(how, "pwritev") == 0)
			k = pwritev(out, v, 2, (off_t)round * (off_t)piece);
		else if (strcmp(how, "pwritev2") == 0)
			k = pwritev2(out, v, 2, (off_t)round * (off_t)piece, 0);
		else if (strcmp(how, "send") == 0)
			k = send(out, p, piece, 0);
		else if (strcmp(how, "sendto") == 0)
			k = sendto(out, p, piece, 0, NULL, 0);
		else if (strcmp(how, "sendmsg") == 0)
			k = sendmsg(out, &mh, 0);
		else
			die("how");
		printf("round %d %s -> %zd errno %d\n", round, how, k, errno == MARK ? -1 : errno);
		/* the program changes the file through its descriptor: the bytes
		 * already written must be the old ones */
		char patch[32];
		memset(patch, 'M', sizeof patch);
		ssize_t w = pwrite(fd, patch, sizeof patch, (off_t)round * (off_t)piece + 100);
		printf("patch -> %zd\n", w);
		/* a small write while the mapping is live, of the mapping itself */
		errno = MARK;
		if (!sock)
			k = write(out, p + 90, 20);
		else
			k = send(out, p + 90, 20, 0);
		printf("small -> %zd errno %d\n", k, errno == MARK ? -1 : errno);
	}
	if (sock) {
		shutdown(out, SHUT_WR);
		static unsigned char rb[1 << 20];
		size_t have = 0;
		ssize_t r;
		while ((r = read(peer, rb + have, sizeof rb - have)) > 0)
			have += (size_t)r;
		int o = open("out.bin", O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (write(o, rb, have) != (ssize_t)have)
			die("save");
		close(o);
	} else {
		close(out);
	}
	munmap(m, len);
	print_file("out.bin", "out.bin");
	print_file("map.bin", "map.bin");
	return 0;
}

/* ---- 4. the detector: first reads small, then large; readv of one
 * iovec; the loop must stay exact. */
static int sc_detect(const char *how)
{
	make_file("src.bin", 30 * CHUNK + 777, 4);
	int in = open("src.bin", O_RDONLY);
	int out = open("out.bin", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	unsigned char *buf = malloc(CHUNK);
	if (in < 0 || out < 0 || !buf)
		die("setup");
	long n = 0, guards = 0;
	for (;;) {
		size_t want = n < 20 ? 100 : CHUNK;
		if (strcmp(how, "grow") == 0)
			want = n < 20 ? (size_t)(100 + n * 20) : CHUNK;
		ssize_t r;
		if (strcmp(how, "readv") == 0 || strcmp(how, "preadv") == 0) {
			struct iovec v = { buf, want };
			if (how[0] == 'p') {
				off_t pos = lseek(in, 0, SEEK_CUR);
				r = preadv(in, &v, 1, pos);
				if (r > 0)
					lseek(in, r, SEEK_CUR);
			} else {
				r = readv(in, &v, 1);
			}
		} else {
			r = read(in, buf, want);
		}
		if (r < 0)
			die("read");
		if (r == 0)
			break;
		if (guarded(buf + 4096, 4096) == 1)
			guards++;
		/* a small write of the head, then the rest */
		ssize_t w1 = write(out, buf, r > 10 ? 10 : (size_t)r);
		ssize_t w2 = r > 10 ? write(out, buf + 10, (size_t)r - 10) : 0;
		if (w1 < 0 || w2 < 0)
			die("write");
		n++;
	}
	printf("iterations %ld\n", n);
	fprintf(stderr, "probe guarded-reads=%ld\n", guards);
	print_file("out.bin", "out.bin");
	return 0;
}

/* ---- 5. descriptors the program does not have: after arming (the
 * library has its own descriptors then), every number 3..255 the
 * program did not open is read and written. */
static int sc_ownfd(void)
{
	static char pre_open[20480];
	for (int fd = 0; fd < 20480; fd++)
		pre_open[fd] = syscall(SYS_fcntl, fd, F_GETFD) >= 0;
	make_file("src.bin", 16 * CHUNK, 5);
	int in = open("src.bin", O_RDONLY);
	int out = open("out.bin", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	unsigned char *buf = aligned_alloc(4096, CHUNK);
	ssize_t last;
	arm(in, out, buf, &last);
	if (write(out, buf, (size_t)last) != last)
		die("w");
	/* a pipe source too (pool pipes) */
	int p[2];
	if (pipe(p) != 0)
		die("pipe");
	pid_t feeder = fork();
	if (feeder == 0) {
		close(p[0]);
		static unsigned char fb[CHUNK];
		for (int i = 0; i < 32; i++) {
			memset(fb, i, sizeof fb);
			if (write(p[1], fb, sizeof fb) != (ssize_t)sizeof fb)
				_exit(4);
		}
		_exit(0);
	}
	close(p[1]);
	int pout = open("pout.bin", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	unsigned char *pb = aligned_alloc(4096, CHUNK);
	for (int i = 0; i < 24; i++) {
		ssize_t r = read(p[0], pb, CHUNK);
		if (r <= 0)
			break;
		if (write(pout, pb, (size_t)r) != r)
			die("pw");
	}
	fprintf(stderr, "probe pipe guarded=%d\n", guarded(pb + 4096, 4096));
	int mine[4] = { in, out, p[0], pout };
	int odd = 0;
	static char small[8];
	for (int fd = 3; fd < 20480; fd++) {
		bool is_mine = pre_open[fd];
		for (int i = 0; i < 4; i++)
			is_mine |= mine[i] == fd;
		if (is_mine)
			continue;
		errno = 0;
		ssize_t a = read(fd, small, 1);
		int ea = errno;
		errno = 0;
		ssize_t b = write(fd, small, 0);
		int eb = errno;
		errno = 0;
		ssize_t c = pread(fd, small, 1, 0);
		int ec = errno;
		struct iovec v = { small, 1 };
		errno = 0;
		ssize_t d = readv(fd, &v, 1);
		int ed = errno;
		errno = 0;
		ssize_t e = writev(fd, &v, 0);
		int ee = errno;
		if (a != -1 || ea != EBADF || b != -1 || eb != EBADF || c != -1 || ec != EBADF ||
		    d != -1 || ed != EBADF || e != -1 || ee != EBADF) {
			printf("fd %d: read %zd/%d write %zd/%d pread %zd/%d readv %zd/%d writev %zd/%d\n",
			       fd, a, ea, b, eb, c, ec, d, ed, e, ee);
			odd++;
		}
	}
	printf("odd descriptors %d\n", odd);
	for (;;) {
		ssize_t r = read(p[0], pb, CHUNK);
		if (r <= 0)
			break;
		if (write(pout, pb, (size_t)r) != r)
			die("pw");
	}
	int st;
	waitpid(feeder, &st, 0);
	print_file("pout.bin", "pout.bin");
	print_file("out.bin", "out.bin");
	return 0;
}

/* ---- 6. errno: set to a marker before every call, printed after every
 * call, small and large, hot and full path. */
static int sc_errno(void)
{
	make_file("src.bin", 16 * CHUNK, 6);
	int in = open("src.bin", O_RDONLY);
	int out = open("out.bin", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	unsigned char *buf = aligned_alloc(4096, CHUNK);
	long changed = 0, calls = 0;
	size_t sizes[] = { 1, 100, 511, 512, 513, 4096, 8191, 8192, CHUNK };
	for (int round = 0; round < 3; round++) {
		for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
			errno = MARK;
			ssize_t r = read(in, buf, sizes[i]);
			changed += errno != MARK;
			calls++;
			if (r <= 0)
				break;
			errno = MARK;
			ssize_t w = write(out, buf, (size_t)r);
			changed += errno != MARK;
			calls++;
			if (w != r)
				die("w");
			errno = MARK;
			r = pread(in, buf, sizes[i], 0);
			changed += errno != MARK;
			calls++;
			errno = MARK;
			w = pwrite(out, buf, (size_t)r, 0);
			changed += errno != MARK;
			calls++;
		}
		lseek(in, 0, SEEK_SET);
	}
	/* failing calls: errno as plain (volatile: the compiler would see
	 * through the bad pointer and size) */
	void *volatile bad = (void *)16;
	volatile size_t huge = (size_t)-1;
	errno = MARK;
	ssize_t r = read(-1, buf, 1);
	printf("read(-1,1) %zd %d\n", r, errno);
	errno = MARK;
	r = read(in, bad, 1);
	printf("read(bad ptr,1) %zd %d\n", r, errno);
	errno = MARK;
	r = write(in, buf, 1);
	printf("write(ro,1) %zd %d\n", r, errno);
	errno = MARK;
	r = write(out, bad, 1);
	printf("write(bad ptr,1) %zd %d\n", r, errno);
	errno = MARK;
	r = read(in, buf, huge);
	printf("read(huge) %zd %d\n", r, errno);
	errno = MARK;
	r = write(99999, buf, 1);
	printf("write(99999) %zd %d\n", r, errno);
	errno = MARK;
	r = read(99999, buf, 1);
	printf("read(99999) %zd %d\n", r, errno);
	printf("calls %ld errno-changed %ld\n", calls, changed);
	print_file("out.bin", "out.bin");
	return 0;
}

/* ---- 7. a signal handler that copies inside every hooked call: an
 * interval timer interrupts a 1-byte copy loop; the handler runs a
 * 64 KiB read+write of its own pair (arms), then a small write of its
 * buffer. */
static int h_in, h_out, h_small;
static unsigned char *h_buf;
static volatile sig_atomic_t h_runs;
static volatile sig_atomic_t h_hold; /* sigfirst: not yet */

static void handler(int sig)
{
	(void)sig;
	if (h_hold)
		return;
	int e = errno;
	ssize_t r = read(h_in, h_buf, CHUNK);
	if (r > 0) {
		if (write(h_out, h_buf, (size_t)r) != r)
			_exit(8);
		/* after the loop's write: still a bounce, then a small write
		 * of the (phantom) buffer */
		if (write(h_small, h_buf + 1000, 3) != 3)
			_exit(7);
	}
	h_runs++;
	errno = e;
}

static int sc_signal(void)
{
	make_file("src.bin", 200 * CHUNK, 7);
	make_file("a.bin", 20000, 8);
	h_in = open("src.bin", O_RDONLY);
	h_out = open("out.bin", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	h_small = open("small.bin", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	h_buf = aligned_alloc(4096, CHUNK);
	int a = open("a.bin", O_RDONLY);
	int b = open("b.bin", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	struct sigaction sa = { 0 };
	sa.sa_handler = handler;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGALRM, &sa, NULL);
	/* deterministic: the handler runs at chosen points, by raise() */
	char c;
	long n = 0;
	for (;;) {
		ssize_t r = read(a, &c, 1);
		if (r <= 0)
			break;
		if (n % 97 == 0 && h_runs < 200)
			raise(SIGALRM);
		if (write(b, &c, 1) != 1)
			die("w");
		n++;
	}
	/* drain the rest of src in the handler */
	while (h_runs < 200)
		raise(SIGALRM);
	printf("bytes %ld handler runs %d\n", n, (int)h_runs);
	print_file("b.bin", "b.bin");
	print_file("out.bin", "out.bin");
	print_file("small.bin", "small.bin");
	return 0;
}

/* ---- 7a. a signal handler's deferred read landing inside the thread's
 * first deferred read. The handler's pair is armed first (two bounces,
 * raised by hand, its reads not deferred yet), then an interval timer
 * runs while the main loop arms its own pair: its first deferred read
 * looks up the thread's stack once (defer.c thread_stack,
 * pthread_getattr_np: a lock, and for the main thread a walk of
 * /proc/self/maps, made long here by many mappings). A handler read
 * that lands there must not wait for that lock. */
static int sc_sigfirst(void)
{
	make_file("src.bin", 64 * CHUNK, 11);
	make_file("a.bin", 64 * CHUNK, 12);
	h_in = open("src.bin", O_RDONLY);
	h_out = open("out.bin", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	h_small = open("small.bin", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	h_buf = aligned_alloc(4096, CHUNK);
	int a = open("a.bin", O_RDONLY);
	int b = open("b.bin", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	unsigned char *mb = aligned_alloc(4096, CHUNK);
	if (h_in < 0 || h_out < 0 || h_small < 0 || a < 0 || b < 0 || !h_buf || !mb)
		die("setup");
	/* Many mappings: alternate protections keep them apart. */
	for (int i = 0; i < 4000; i++) {
		void *m = mmap(NULL, 4096, i % 2 ? PROT_READ : PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (m == MAP_FAILED)
			die("mmap");
	}
	struct sigaction sa = { 0 };
	sa.sa_handler = handler;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGALRM, &sa, NULL);
	raise(SIGALRM);
	raise(SIGALRM);
	h_hold = 1;
	struct itimerval it = { { 0, 50 }, { 0, 50 } };
	setitimer(ITIMER_REAL, &it, NULL);
	for (int n = 0;; n++) {
		/* The third read is the first deferred one (NOBOUNCE_ARM_AFTER
		 * 2, the default): the handler reads from then on. */
		if (n == 2)
			h_hold = 0;
		ssize_t r = read(a, mb, CHUNK);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			die("read");
		if (r == 0)
			break;
		ssize_t done = 0;
		while (done < r) {
			ssize_t w = write(b, mb + done, (size_t)(r - done));
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				die("w");
			done += w;
		}
	}
	struct itimerval off = { { 0, 0 }, { 0, 0 } };
	setitimer(ITIMER_REAL, &off, NULL);
	h_hold = 0;
	while (h_runs < 64)
		raise(SIGALRM);
	print_file("b.bin", "b.bin");
	print_file("out.bin", "out.bin");
	print_file("small.bin", "small.bin");
	return 0;
}

/* ---- 7b. the same with an interval timer: the handler lands anywhere,
 * inside the hot path too; the main loop alternates 1-byte and 64 KiB
 * copies of its own pair (which arms too). */
static int sc_itimer(void)
{
	make_file("src.bin", 400 * CHUNK, 7);
	make_file("a.bin", 200 * CHUNK + 5, 8);
	h_in = open("src.bin", O_RDONLY);
	h_out = open("out.bin", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	h_small = open("small.bin", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	h_buf = aligned_alloc(4096, CHUNK);
	int a = open("a.bin", O_RDONLY);
	int b = open("b.bin", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	unsigned char *mb = aligned_alloc(4096, CHUNK);
	struct sigaction sa = { 0 };
	sa.sa_handler = handler;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGALRM, &sa, NULL);
	/* The handler's pair armed and its first deferred read made before
	 * the timer starts: a handler landing inside the thread's first
	 * deferred read is sigfirst's case (a known hang), not this one. */
	for (int i = 0; i < 3; i++)
		raise(SIGALRM);
	struct itimerval it = { { 0, 300 }, { 0, 300 } };
	setitimer(ITIMER_REAL, &it, NULL);
	long n = 0;
	for (;;) {
		size_t want = (n / 64) % 2 ? CHUNK : 1;
		ssize_t r = read(a, mb, want);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			die("read");
		if (r == 0)
			break;
		ssize_t done = 0;
		while (done < r) {
			ssize_t w = write(b, mb + done, (size_t)(r - done));
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				die("w");
			done += w;
		}
		n++;
	}
	struct itimerval off = { { 0, 0 }, { 0, 0 } };
	setitimer(ITIMER_REAL, &off, NULL);
	/* Runs past the end of src read nothing: how many the timer made
	 * is not printed (it differs from run to run). */
	while (h_runs < 400)
		raise(SIGALRM);
	print_file("b.bin", "b.bin");
	print_file("out.bin", "out.bin");
	print_file("small.bin", "small.bin");
	return 0;
}

/* ---- 7c. threads, each with its own files: copy loops with a small
 * write from inside the buffer, 1-byte copies, a mapping writer, a
 * thread that rewrites its own source behind its loop. */
static void *mix_thread(void *arg)
{
	long id = (long)arg;
	char sp[64], op[64], sd[64];
	snprintf(sp, sizeof sp, "s%ld.bin", id);
	snprintf(op, sizeof op, "o%ld.bin", id);
	snprintf(sd, sizeof sd, "d%ld.bin", id);
	int in = open(sp, O_RDONLY);
	int rw = open(sp, O_RDWR);
	int out = open(op, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	int side = open(sd, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	unsigned char *buf = malloc(CHUNK);
	int kind = (int)(id % 4);
	if (kind == 2) {
		/* mapping writer */
		for (int round = 0; round < 40; round++) {
			unsigned char *m = mmap(NULL, 4 * CHUNK, PROT_READ, MAP_SHARED, in, 0);
			if (m == MAP_FAILED)
				die("mmap");
			if (write(out, m + (round % 4) * CHUNK, CHUNK) != CHUNK)
				die("mw");
			if (write(side, m + 17, 5) != 5)
				die("mw2");
			char patch[4] = { (char)round, 1, 2, 3 };
			if (pwrite(rw, patch, 4, (off_t)(round % 4) * CHUNK + 9) != 4)
				die("mp");
			munmap(m, 4 * CHUNK);
		}
		return NULL;
	}
	long it = 0;
	for (;;) {
		size_t want = kind == 1 ? (it % 2 ? 1 : 300) : CHUNK;
		ssize_t r = read(in, buf, want);
		if (r < 0)
			die("read");
		if (r == 0)
			break;
		if (kind == 0 && r > 200 && write(side, buf + 100, 50) != 50)
			die("side");
		if (kind == 3 && r > 200) {
			/* rewrite the bytes just read, in the source, before the write */
			char patch[8];
			memset(patch, (int)it, sizeof patch);
			off_t pos = lseek(in, 0, SEEK_CUR);
			if (pwrite(rw, patch, 8, pos - r + 64) != 8)
				die("p3");
		}
		if (write(out, buf, (size_t)r) != r)
			die("w");
		it++;
	}
	return NULL;
}

static int sc_mtmix(int nthreads)
{
	pthread_t t[16];
	for (long i = 0; i < nthreads; i++) {
		char sp[64];
		snprintf(sp, sizeof sp, "s%ld.bin", i);
		make_file(sp, 64 * CHUNK + (size_t)i * 333, 100 + (unsigned)i);
	}
	for (long i = 0; i < nthreads; i++)
		pthread_create(&t[i], NULL, mix_thread, (void *)i);
	for (long i = 0; i < nthreads; i++)
		pthread_join(t[i], NULL);
	for (long i = 0; i < nthreads; i++) {
		char n[64];
		snprintf(n, sizeof n, "o%ld.bin", i);
		print_file(n, n);
		snprintf(n, sizeof n, "d%ld.bin", i);
		print_file(n, n);
		snprintf(n, sizeof n, "s%ld.bin", i);
		print_file(n, n);
	}
	return 0;
}

/* ---- 8. fork / vfork with a phantom live: the child writes the buffer
 * and changes the source; the parent writes the buffer after. */
static int sc_fork(const char *how)
{
	make_file("src.bin", 16 * CHUNK, 9);
	int in = open("src.bin", O_RDONLY);
	int rw = strstr(how, "norw") ? -1 : open("src.bin", O_RDWR);
	int out = open("out.bin", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	int cout = open("child.bin", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	unsigned char *buf = aligned_alloc(4096, CHUNK);
	ssize_t last;
	arm(in, out, buf, &last);
	pid_t pid;
	char patch[8];
	memset(patch, 'F', sizeof patch);
	if (strcmp(how, "vfork") == 0) {
		pid = vfork();
		if (pid == 0) {
			/* only write and _exit are allowed-ish after vfork */
			pwrite(rw, patch, sizeof patch, 8 * CHUNK + 300);
			_exit(0);
		}
	} else if (strcmp(how, "fork-open") == 0 || strcmp(how, "fork-open-only") == 0) {
		/* the parent holds no writable descriptor: the child opens one */
		if (strcmp(how, "fork-open-only") == 0 || strcmp(how, "fork-open-norw") == 0)
			close(rw);
		pid = fork();
		if (pid == 0) {
			int w = open("src.bin", O_WRONLY);
			ssize_t k2 = pwrite(w, patch, sizeof patch, 8 * CHUNK + 300);
			_exit(k2 == 8 ? 0 : 5);
		}
	} else if (strncmp(how, "exec", 4) == 0) {
		close(rw);
		pid = fork();
		if (pid == 0) {
			execlp("sh", "sh", "-c", "printf FFFFFFFF | dd of=src.bin bs=1 seek=524588 conv=notrunc status=none", (char *)NULL);
			_exit(9);
		}
	} else {
		pid = fork();
		if (pid == 0) {
			ssize_t k = write(cout, buf, (size_t)last);
			ssize_t k2 = pwrite(rw, patch, sizeof patch, 8 * CHUNK + 300);
			char c;
			ssize_t k3 = read(in, &c, 1); /* small read, after the source */
			_exit(k == last && k2 == 8 && k3 == 1 ? 0 : 5);
		}
	}
	int st;
	waitpid(pid, &st, 0);
	printf("child status %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st));
	ssize_t k = write(out, buf, (size_t)last);
	result("parent writes the buffer", k, errno);
	print_file("out.bin", "out.bin");
	print_file("child.bin", "child.bin");
	print_file("src.bin", "src.bin");
	return 0;
}

/* ---- 9. small calls with file position: 1-byte reads of the source
 * between deferred reads (the position must move as plain). */
static int sc_interleave(void)
{
	make_file("src.bin", 40 * CHUNK + 123, 10);
	int in = open("src.bin", O_RDONLY);
	int out = open("out.bin", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	unsigned char *buf = aligned_alloc(4096, CHUNK);
	char small[600];
	long it = 0, guards = 0;
	for (;;) {
		ssize_t r = read(in, buf, CHUNK);
		if (r <= 0)
			break;
		guards += guarded(buf + 4096, 4096) == 1;
		if (it % 3 == 1) {
			ssize_t s = read(in, small, it % 2 ? 1 : 511);
			if (s > 0 && write(out, small, (size_t)s) != s)
				die("ws");
			/* a small pread of what the buffer stands for */
			ssize_t q = pread(in, small, 10, lseek(in, 0, SEEK_CUR) - r - s + 5);
			printf("it %ld small %zd pread %zd %02x%02x\n", it, s, q, (unsigned char)small[0],
			       (unsigned char)small[9]);
		}
		if (write(out, buf, (size_t)r) != r)
			die("w");
		it++;
	}
	fprintf(stderr, "probe guarded-reads=%ld\n", guards);
	print_file("out.bin", "out.bin");
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 2)
		return 2;
	const char *s = argv[1];
	const char *a = argc > 2 ? argv[2] : "";
	if (!strcmp(s, "srcwrite"))
		return sc_srcwrite(a);
	if (!strcmp(s, "mt"))
		return sc_mt(a);
	if (!strcmp(s, "mapw"))
		return sc_mapw(a);
	if (!strcmp(s, "detect"))
		return sc_detect(a);
	if (!strcmp(s, "ownfd"))
		return sc_ownfd();
	if (!strcmp(s, "errno"))
		return sc_errno();
	if (!strcmp(s, "signal"))
		return sc_signal();
	if (!strcmp(s, "sigfirst"))
		return sc_sigfirst();
	if (!strcmp(s, "itimer"))
		return sc_itimer();
	if (!strcmp(s, "mtmix"))
		return sc_mtmix(atoi(a));
	if (!strcmp(s, "fork"))
		return sc_fork(a);
	if (!strcmp(s, "interleave"))
		return sc_interleave();
	fprintf(stderr, "unknown scenario\n");
	return 2;
}
