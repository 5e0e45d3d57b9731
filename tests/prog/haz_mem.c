/*
 * haz_mem.c - memory that changes under a phantom, one scenario per run.
 *
 *   haz_mem SCENARIO
 *
 * Each scenario copies src.bin (created here, 2 MiB of a position-
 * dependent pattern) to a UNIX stream socket in 64 KiB reads and writes
 * (a thread drains it into dst.bin with raw system calls), and at
 * iteration ACT_AT - after the write, while a preloaded library holds the
 * buffer as a phantom - does the thing under test. stdout carries all the
 * program can observe (return values, errno names, checksums of what it
 * looks at, what a forked child sees); stderr "probe" lines say whether
 * the buffer was PROT_NONE at that moment (preloaded: the action met a
 * phantom). tests/integration/29-memory-calls.sh compares plain and
 * preloaded runs.
 *
 * Scenarios:
 *   dontneed-fails-half-way  madvise(DONTNEED) over [mlock'ed page, buffer)
 *                            (EINVAL before the buffer: bytes kept) and over
 *                            [buffer, mlock'ed page) (EINVAL after it: zeros)
 *   madv-free                MADV_FREE: the pages keep their bytes
 *   madv-wipeonfork          the parent keeps its bytes, a child sees zeros
 *                            (also after later reads into the buffer)
 *   madv-dontfork            a child has no such pages: its write of the
 *                            buffer fails with EFAULT
 *   madv-populate            COLD, PAGEOUT, HUGEPAGE, MERGEABLE, DONTDUMP
 *                            leave the bytes; POPULATE_READ/WRITE succeed
 *   munmap-fails             munmap of an unaligned address (EINVAL) and
 *                            mmap(MAP_FIXED) with a bad descriptor (EBADF)
 *                            change nothing: the buffer is read afterwards
 *   raw-remap                raw syscall munmap + mmap at the same address
 *                            (a custom allocator), then the next read
 *   raw-remap-then-write     the same, then the program's own bytes in the
 *                            new memory written out
 *   ucontext-stack           the loop runs on a makecontext coroutine whose
 *                            stack came from malloc, the buffer in its frame;
 *                            deeper calls follow on that stack
 *   altstack-buffer          the buffer lies in this thread's sigaltstack
 *                            memory; a signal handled on it follows
 *   dontneed-race            a thread reads the buffer while another
 *                            madvises it away, many times
 *   late-handler-dontneed    a reader thread's touch of the buffer is held
 *                            between its fault and its handler (a tracer
 *                            child stops it at the SIGSEGV); meanwhile the
 *                            main thread madvises the buffer away and reads
 *                            into it from another descriptor; then the
 *                            reader goes on. Two iterations later the main
 *                            thread looks at the buffer.
 *   late-handler-free        the same, the buffer from malloc and freed
 *                            meanwhile (the loop goes on in a new one)
 *   late-handler-grace       the same, the main thread looks at the buffer
 *                            meanwhile and waits 120 ms before the reader
 *                            goes on
 *   late-handler-many        as late-handler-dontneed, and meanwhile 1500
 *                            more turns of the loop in a second buffer,
 *                            each madvised away after its write; the
 *                            program has a SIGSEGV handler of its own
 *                            (it prints the address and exits with 3)
 *   late-handler-own         two late faults, the program counting its
 *                            handler's calls: first as late-handler-dontneed
 *                            (the library's guard: no call), then on a page
 *                            of the buffer (opened by the library lately)
 *                            that the program guarded itself and the main
 *                            thread opens again meanwhile (one call, as
 *                            plain)
 * The late-handler scenarios print the same lines whether or not the
 * reader met a fault (plain: it does not); stderr says whether the tracer
 * saw the reader stop at a SIGSEGV in the buffer ("probe late-fault").
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "common.h"

#define KiB 1024
#define MiB (1024 * 1024)
#define CHUNK (64 * KiB)
#define PG 4096
#define SRC_SIZE (2 * MiB)
#define ACT_AT 5

static void die(const char *what)
{
	fflush(stdout);
	fprintf(stderr, "haz_mem: %s (errno %s)\n", what,
		strerrorname_np(errno) ? strerrorname_np(errno) : "0");
	exit(1);
}

static const char *en(int e)
{
	const char *s = strerrorname_np(e);
	return e == 0 ? "0" : s ? s : "E?";
}

static uint64_t sum(const void *p, size_t n)
{
	const unsigned char *c = p;
	uint64_t h = 0xcbf29ce484222325ull ^ n;
	for (size_t i = 0; i < n; i++)
		h = (h ^ c[i]) * 0x100000001b3ull;
	return h;
}

static void make_src(void)
{
	int fd = (int)syscall(SYS_openat, AT_FDCWD, "src.bin", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		die("create src.bin");
	static unsigned char blk[SRC_SIZE];
	uint64_t x = 0x1234567;
	for (size_t i = 0; i < sizeof blk; i++) {
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		blk[i] = (unsigned char)(x >> 56);
	}
	for (size_t at = 0; at < sizeof blk;) {
		ssize_t w = syscall(SYS_write, fd, blk + at, sizeof blk - at);
		if (w <= 0)
			die("write src.bin");
		at += (size_t)w;
	}
	syscall(SYS_close, fd);
}

static void probe(const char *what, const void *p, size_t n)
{
	fprintf(stderr, "probe %s guarded=%d\n", what, guarded(p, n));
}

/* ---- the copy loop: src.bin -> UNIX socket, drained into dst.bin ---- */

static int src_fd, dst_fd, drain_fd;
static pthread_t drain_th;

static void *drain_main(void *arg)
{
	(void)arg;
	int out = (int)syscall(SYS_openat, AT_FDCWD, "dst.bin", O_WRONLY | O_CREAT | O_TRUNC,
			       0644);
	static char b[256 * KiB];
	for (;;) {
		ssize_t r = syscall(SYS_read, drain_fd, b, sizeof b);
		if (r <= 0)
			break;
		for (ssize_t at = 0; at < r;) {
			ssize_t w = syscall(SYS_write, out, b + at, (size_t)(r - at));
			if (w <= 0)
				return NULL;
			at += w;
		}
	}
	syscall(SYS_close, out);
	return NULL;
}

static void open_all(void)
{
	make_src();
	src_fd = open("src.bin", O_RDONLY);
	int sv[2];
	if (src_fd < 0 || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
		die("open");
	dst_fd = sv[0];
	drain_fd = sv[1];
	pthread_create(&drain_th, NULL, drain_main, NULL);
}

static void close_all(void)
{
	close(dst_fd);
	pthread_join(drain_th, NULL);
	syscall(SYS_close, drain_fd);
	close(src_fd);
	int fd = (int)syscall(SYS_openat, AT_FDCWD, "dst.bin", O_RDONLY);
	static char b[SRC_SIZE + 4 * CHUNK];
	size_t have = 0;
	for (ssize_t r; (r = syscall(SYS_read, fd, b + have, sizeof b - have)) > 0;)
		have += (size_t)r;
	syscall(SYS_close, fd);
	printf("destination: %zu bytes, sum %016llx\n", have, (unsigned long long)sum(b, have));
}

static bool write_all(const char *b, size_t n)
{
	while (n > 0) {
		ssize_t w = write(dst_fd, b, n);
		if (w <= 0) {
			printf("  write: -1 %s\n", en(errno));
			return false;
		}
		b += w;
		n -= (size_t)w;
	}
	return true;
}

typedef void (*act_fn)(char *buf, size_t n, int it);

/* One iteration: read, write, then (at ACT_AT or every iteration past it
 * with `again`) act. Returns the count read. */
static ssize_t step(char *buf, int it, act_fn act, bool again)
{
	ssize_t r = read(src_fd, buf, CHUNK);
	printf("it %d r %zd%s%s\n", it, r, r < 0 ? " " : "", r < 0 ? en(errno) : "");
	if (r <= 0)
		return r;
	if (!write_all(buf, (size_t)r))
		return -1;
	if (act && (it == ACT_AT || (again && it > ACT_AT))) {
		probe("act", buf, (size_t)r);
		act(buf, (size_t)r, it);
	}
	return r;
}

static int loop(char *buf, act_fn act, bool again)
{
	open_all();
	for (int it = 0; step(buf, it, act, again) > 0; it++)
		;
	close_all();
	return 0;
}

static char *map(size_t n)
{
	char *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		die("mmap");
	return p;
}

/* ---- madvise ---- */

static char *region; /* [locked page][buffer: 16 pages][locked page] */

static void act_dontneed_half(char *buf, size_t n, int it)
{
	(void)it;
	errno = 0;
	int r = madvise(region, (size_t)(buf - region) + CHUNK, MADV_DONTNEED);
	printf("  madvise [locked, buffer) DONTNEED: %d %s; buffer sum %016llx nonzero %zu\n", r,
	       en(errno), (unsigned long long)sum(buf, n), nonzero(buf, n));
	/* The locked page stays what it is, both times. */
	errno = 0;
	r = madvise(buf, CHUNK + PG, MADV_DONTNEED);
	printf("  madvise [buffer, locked] DONTNEED: %d %s; buffer nonzero %zu, locked page sum "
	       "%016llx\n", r, en(errno), nonzero(buf, n), (unsigned long long)sum(buf + CHUNK, PG));
}

static int sc_dontneed_half(void)
{
	region = map(CHUNK + 2 * PG);
	memset(region, 0x5a, CHUNK + 2 * PG);
	if (mlock(region, PG) != 0 || mlock(region + PG + CHUNK, PG) != 0)
		die("mlock");
	return loop(region + PG, act_dontneed_half, false);
}

static void act_free(char *buf, size_t n, int it)
{
	errno = 0;
	int r = madvise(buf, CHUNK, MADV_FREE);
	/* Reclaim could zero them under memory pressure; none here. */
	printf("  it %d madvise FREE: %d %s; sum %016llx\n", it, r, en(errno),
	       (unsigned long long)sum(buf, n));
}

static void child_looks(char *buf, size_t n, const char *why)
{
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		unsigned char v[1];
		errno = 0;
		int m = mincore(buf, PG, v);
		printf("  child (%s): mincore %d %s", why, m, en(errno));
		if (m == 0)
			printf(", nonzero %zu", nonzero(buf, n));
		/* Write the buffer out: the kernel reads the child's pages. */
		int p[2];
		if (pipe(p) != 0)
			die("pipe");
		errno = 0;
		ssize_t w = write(p[1], buf, PG * 2);
		printf(", write %zd %s\n", w, w < 0 ? en(errno) : "");
		fflush(stdout);
		_exit(0);
	}
	int st;
	waitpid(pid, &st, 0);
	printf("  child status %d\n", st);
}

static void act_wipeonfork(char *buf, size_t n, int it)
{
	if (it == ACT_AT) {
		errno = 0;
		int r = madvise(buf, CHUNK, MADV_WIPEONFORK);
		printf("  madvise WIPEONFORK: %d %s; parent sum %016llx\n", r, en(errno),
		       (unsigned long long)sum(buf, n));
	}
	if (it == ACT_AT || it == ACT_AT + 3)
		child_looks(buf, n, "wipeonfork");
}

static void act_dontfork(char *buf, size_t n, int it)
{
	if (it == ACT_AT) {
		errno = 0;
		int r = madvise(buf, CHUNK, MADV_DONTFORK);
		printf("  madvise DONTFORK: %d %s; parent sum %016llx\n", r, en(errno),
		       (unsigned long long)sum(buf, n));
	}
	if (it == ACT_AT + 3) {
		/* The mincore call in the child fails with ENOMEM: skip the
		 * touch, which would kill it in plain too. */
		fflush(stdout);
		pid_t pid = fork();
		if (pid == 0) {
			unsigned char v[1];
			errno = 0;
			int m = mincore(buf, PG, v);
			int p[2];
			if (pipe(p) != 0)
				die("pipe");
			int e1 = errno;
			errno = 0;
			ssize_t w = write(p[1], buf, PG * 2);
			printf("  child (dontfork): mincore %d %s, write %zd %s\n", m, en(e1), w,
			       w < 0 ? en(errno) : "");
			fflush(stdout);
			_exit(0);
		}
		int st;
		waitpid(pid, &st, 0);
		printf("  child status %d\n", st);
	}
}

static void act_populate(char *buf, size_t n, int it)
{
	(void)it;
	static const struct {
		int adv;
		const char *name;
	} a[] = { { MADV_COLD, "COLD" },         { MADV_PAGEOUT, "PAGEOUT" },
		  { MADV_HUGEPAGE, "HUGEPAGE" }, { MADV_MERGEABLE, "MERGEABLE" },
		  { MADV_DONTDUMP, "DONTDUMP" }, { MADV_WILLNEED, "WILLNEED" },
		  { MADV_POPULATE_READ, "POPULATE_READ" },
		  { MADV_POPULATE_WRITE, "POPULATE_WRITE" } };
	for (unsigned i = 0; i < sizeof a / sizeof a[0]; i++) {
		errno = 0;
		int r = madvise(buf, CHUNK, a[i].adv);
		printf("  madvise %s: %d %s\n", a[i].name, r, en(errno));
		if (i == 5)
			probe("before-populate", buf, n);
	}
	printf("  sum %016llx\n", (unsigned long long)sum(buf, n));
}

/* ---- failing munmap / mmap(MAP_FIXED) ---- */

static void act_munmap_fails(char *buf, size_t n, int it)
{
	if (it == ACT_AT) {
		errno = 0;
		int r = munmap(buf + 1, PG);
		printf("  munmap unaligned: %d %s\n", r, en(errno));
	} else {
		errno = 0;
		void *p = mmap(buf, CHUNK, PROT_READ, MAP_PRIVATE | MAP_FIXED, -1, 0);
		printf("  mmap fixed bad fd: %s %s\n", p == MAP_FAILED ? "failed" : "ok", en(errno));
	}
	printf("  sum %016llx\n", (unsigned long long)sum(buf, n));
}

static bool every_other(int it)
{
	return it == ACT_AT || it == ACT_AT + 2;
}

static void act_munmap_fails_twice(char *buf, size_t n, int it)
{
	if (every_other(it))
		act_munmap_fails(buf, n, it);
}

/* ---- a custom allocator's raw system calls ---- */


static void act_raw_remap(char *buf, size_t n, int it)
{
	(void)n;
	if (it != ACT_AT)
		return;
	long u = asm_syscall6(SYS_munmap, (long)buf, CHUNK, 0, 0, 0, 0);
	long m = asm_syscall6(SYS_mmap, (long)buf, CHUNK, PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	printf("  raw munmap %ld, raw mmap same address %d\n", u, (char *)m == buf);
}

static int sc_raw_remap(void)
{
	char *buf = map(CHUNK);
	open_all();
	for (int it = 0;; it++) {
		ssize_t r = step(buf, it, act_raw_remap, false);
		if (r <= 0)
			break;
		if (it > ACT_AT && it <= ACT_AT + 2)
			printf("  looked at: sum %016llx\n", (unsigned long long)sum(buf, (size_t)r));
	}
	close_all();
	return 0;
}

/* The same, then the program's own bytes written from the new memory
 * without a read first. */
static void act_raw_remap_write(char *buf, size_t n, int it)
{
	act_raw_remap(buf, n, it);
	if (it != ACT_AT)
		return;
	memset(buf, 'x', CHUNK);
	printf("  own bytes written:");
	printf(" %d\n", write_all(buf, CHUNK));
}

/* ---- stacks the library cannot name ---- */

/* A deep chain of calls, each with a frame of 8 KiB it writes to. */
static __attribute__((noinline)) unsigned deep(int d)
{
	volatile char f[8 * KiB];
	for (size_t i = 0; i < sizeof f; i += 512)
		f[i] = (char)(d + (int)i);
	unsigned s = d > 0 ? deep(d - 1) : 0;
	return s + (unsigned char)f[100];
}

static ucontext_t main_uc, co_uc;
static int co_iters;
static bool co_done;

/* The coroutine's read loop, the buffer in this frame. */
static __attribute__((noinline)) int co_copy_some(int first, int count)
{
	char buf[CHUNK + 512];
	int it;
	for (it = first; it < first + count; it++)
		if (step(buf, it, NULL, false) <= 0)
			return -1;
	return it;
}

static void co_main(void)
{
	int it = 0;
	while (it >= 0) {
		it = co_copy_some(it, 4);
		/* The frame with the buffer has returned: these calls use its
		 * pages. */
		printf("  deep calls: %u\n", deep(12) & 0xff);
		co_iters++;
		if (it >= 0)
			swapcontext(&co_uc, &main_uc);
	}
	co_done = true;
}

static int sc_ucontext(void)
{
	size_t sz = 512 * KiB;
	char *stack = malloc(sz);
	if (stack == NULL || getcontext(&co_uc) != 0)
		die("coroutine");
	co_uc.uc_stack.ss_sp = stack;
	co_uc.uc_stack.ss_size = sz;
	co_uc.uc_link = &main_uc;
	makecontext(&co_uc, co_main, 0);
	open_all();
	while (!co_done) {
		swapcontext(&main_uc, &co_uc);
		printf("back in main %d\n", co_iters);
	}
	close_all();
	return 0;
}

static volatile sig_atomic_t handled;

static void on_usr1(int sig)
{
	(void)sig;
	volatile char f[2 * KiB]; /* a frame of some size on the alternate stack */
	f[0] = 1;
	f[sizeof f - 1] = f[0];
	handled++;
}

static void act_raise(char *buf, size_t n, int it)
{
	(void)buf;
	(void)n;
	raise(SIGUSR1);
	printf("  it %d handled %d\n", it, (int)handled);
}

static int sc_altstack(void)
{
	size_t sz = 256 * KiB;
	char *mem = malloc(sz);
	stack_t ss = { .ss_sp = mem, .ss_size = sz, .ss_flags = 0 };
	if (mem == NULL || sigaltstack(&ss, NULL) != 0)
		die("sigaltstack");
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_usr1;
	sa.sa_flags = SA_ONSTACK;
	sigaction(SIGUSR1, &sa, NULL);
	/* The top of the alternate stack, where signal frames go. */
	return loop(mem + sz - CHUNK - 100, act_raise, true);
}

/* ---- a reader racing madvise(DONTNEED) ---- */

static char *race_buf;
static atomic_int race_phase; /* 1: look now, 2: done */
static atomic_int race_go;

static void *race_reader(void *arg)
{
	(void)arg;
	while (atomic_load(&race_phase) != 2) {
		if (atomic_exchange(&race_go, 0)) {
			volatile char c = race_buf[CHUNK / 2]; /* the read's byte or zero */
			(void)c;
		}
	}
	return NULL;
}

static void act_race(char *buf, size_t n, int it)
{
	atomic_store(&race_go, 1);
	int r = madvise(buf, CHUNK, MADV_DONTNEED);
	/* Once madvise returned, zeros: whatever the reader did meanwhile. */
	size_t nz = nonzero(buf, n);
	if (it % 8 == 0 || nz != 0)
		printf("  it %d madvise %d nonzero %zu\n", it, r, nz);
}

static int sc_race(void)
{
	race_buf = map(CHUNK);
	pthread_t th;
	pthread_create(&th, NULL, race_reader, NULL);
	/* The file 128 times over, through one pair. */
	open_all();
	for (int pass = 0, it = 0; pass < 128; pass++) {
		while (step(race_buf, it, act_race, true) > 0)
			it++;
		lseek(src_fd, 0, SEEK_SET);
	}
	close_all();
	int rc = 0;
	atomic_store(&race_phase, 2);
	pthread_join(th, NULL);
	return rc;
}

/* ---- a fault whose handler runs late ----
 *
 * The window between a fault and its handler is made certain, not lucky:
 * a tracer (a child process, PTRACE_SEIZE on the reader thread of its
 * parent) sees the reader stop at the SIGSEGV (signal-delivery-stop,
 * ptrace(2)), before any handler of the process has run. The main thread
 * then does what ends the phantom; only then does the tracer detach,
 * delivering the signal. Without a fault (plain) the reader's access
 * just completes, and the tracer sees that instead. Shared, anonymous
 * memory carries the little protocol between the three.
 */
struct late {
	atomic_int tid;     /* the reader thread's */
	atomic_int go;      /* main: reader, touch the buffer now */
	atomic_int touched; /* reader: the access completed */
	atomic_int seen;    /* tracer: LATE_* */
	atomic_int release; /* main: tracer, let the reader go on */
	atomic_ulong addr;  /* tracer: the fault's address */
};
enum { LATE_STARTING, LATE_READY, LATE_STOPPED, LATE_NO_FAULT, LATE_TIMEOUT, LATE_NO_TRACE };

static struct late *late;
static char *volatile late_buf;
static pthread_t late_th;
static pid_t tracer;

static void nap(void)
{
	struct timespec ts = { 0, 200 * 1000 };
	nanosleep(&ts, NULL);
}

static void *late_reader(void *arg)
{
	(void)arg;
	atomic_store(&late->tid, (int)syscall(SYS_gettid));
	while (!atomic_load(&late->go))
		nap();
	volatile char c = late_buf[CHUNK / 2]; /* its value is timing's: not printed */
	(void)c;
	atomic_store(&late->touched, 1);
	return NULL;
}

/* The tracer: at most 30 s, then it lets go whatever happened. */
static void late_tracer(void)
{
	pid_t tid;
	while ((tid = atomic_load(&late->tid)) == 0)
		nap();
	if (ptrace(PTRACE_SEIZE, tid, NULL, NULL) != 0) {
		atomic_store(&late->seen, LATE_NO_TRACE);
		_exit(0);
	}
	atomic_store(&late->seen, LATE_READY);
	for (long spins = 0; spins < 30L * 5000; spins++) {
		int st;
		pid_t w = waitpid(tid, &st, __WALL | WNOHANG);
		if (w == tid && WIFSTOPPED(st)) {
			siginfo_t si;
			if (WSTOPSIG(st) == SIGSEGV && (st >> 16) == 0 &&
			    ptrace(PTRACE_GETSIGINFO, tid, NULL, &si) == 0) {
				atomic_store(&late->addr, (unsigned long)si.si_addr);
				atomic_store(&late->seen, LATE_STOPPED);
				for (long k = 0; !atomic_load(&late->release) && k < 30L * 5000; k++)
					nap();
				/* Detached, the signal delivered: its handler runs now. */
				ptrace(PTRACE_DETACH, tid, NULL, (void *)(long)SIGSEGV);
				_exit(0);
			}
			/* Anything else goes on as it would have. */
			int sig = (st >> 16) == 0 ? WSTOPSIG(st) : 0;
			ptrace(PTRACE_CONT, tid, NULL, (void *)(long)sig);
			continue;
		}
		if (w == tid || atomic_load(&late->touched)) {
			atomic_store(&late->seen, LATE_NO_FAULT);
			_exit(0); /* exiting detaches */
		}
		nap();
	}
	atomic_store(&late->seen, LATE_TIMEOUT);
	_exit(0);
}

/* Before the loop: the reader thread, and the tracer watching it. */
static void late_start(void)
{
	/* Yama (ptrace_scope 1) lets only ancestors trace: allow the child.
	 * Without Yama the call fails with EINVAL, which changes nothing. */
	prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY, 0, 0, 0);
	late = mmap(NULL, sizeof *late, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (late == MAP_FAILED)
		die("mmap shared");
	pthread_create(&late_th, NULL, late_reader, NULL);
	fflush(stdout);
	tracer = fork();
	if (tracer < 0)
		die("fork");
	if (tracer == 0)
		late_tracer();
}

/* The reader touches the buffer; whatever stopped it waits until the
 * caller has done its part (`meanwhile`), and then it goes on. */
static void late_touch(char *buf, void (*meanwhile)(char *buf))
{
	late_buf = buf;
	while (atomic_load(&late->seen) == LATE_STARTING)
		nap();
	atomic_store(&late->go, 1);
	int seen;
	while ((seen = atomic_load(&late->seen)) == LATE_READY)
		nap();
	uintptr_t a = atomic_load(&late->addr);
	fprintf(stderr, "probe late-fault stopped=%d in-buffer=%d\n", seen == LATE_STOPPED,
		seen == LATE_STOPPED && a >= (uintptr_t)buf && a < (uintptr_t)buf + CHUNK);
	if (seen == LATE_NO_TRACE || seen == LATE_TIMEOUT)
		fprintf(stderr, "haz_mem: tracer %s\n", seen == LATE_NO_TRACE ? "could not attach" : "timed out");
	meanwhile(buf);
	atomic_store(&late->release, 1);
	int st;
	waitpid(tracer, &st, 0);
	for (int k = 0; !atomic_load(&late->touched) && k < 30 * 5000; k++)
		nap();
	pthread_join(late_th, NULL);
	printf("  reader: access done %d, tracer status %d\n", atomic_load(&late->touched), st);
}

static int aux_fd;

/* madvise(DONTNEED), then a read into the buffer from another descriptor
 * (not the pair's: nothing is deferred, the buffer is only overwritten). */
static void late_dontneed(char *buf)
{
	int r = madvise(buf, CHUNK, MADV_DONTNEED);
	ssize_t k = read(aux_fd, buf, 16);
	printf("  madvise DONTNEED %d, read %zd, buffer sum %016llx\n", r, k,
	       (unsigned long long)sum(buf, CHUNK));
}

static void late_look(char *buf)
{
	printf("  looked at: sum %016llx\n", (unsigned long long)sum(buf, CHUNK));
	usleep(120 * 1000); /* past the library's 50 ms of grace */
}

/* madvise(DONTNEED) and a read, as above; then many more turns of the
 * loop in a second buffer, each one madvised away after its write (each
 * opens a phantom's pages: more than the library remembers). */
static void late_many(char *buf)
{
	late_dontneed(buf);
	char *b2 = map(CHUNK);
	int n = 0, g = 0;
	for (int k = 0; k < 1500; k++) {
		ssize_t r = read(src_fd, b2, CHUNK);
		if (r == 0) {
			lseek(src_fd, 0, SEEK_SET);
			continue;
		}
		if (r < 0 || !write_all(b2, (size_t)r))
			break;
		g += guarded(b2, (size_t)r) == 1;
		n += madvise(b2, CHUNK, MADV_DONTNEED) == 0;
	}
	fprintf(stderr, "probe many guarded=%d\n", g);
	lseek(src_fd, (ACT_AT + 1) * CHUNK, SEEK_SET);
	printf("  %d more turns, each madvised away\n", n);
}

static void late_free(char *buf)
{
	free(buf);
	printf("  freed\n");
}

/* The program's own SIGSEGV handler (late-handler-many): plain never
 * calls it; a fault the library hands on would end the run at once. */
static void late_on_segv(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	char m[80];
	int k = snprintf(m, sizeof m, "haz_mem: SIGSEGV at %p\n", si->si_addr);
	syscall(SYS_write, 2, m, (size_t)k);
	_exit(3);
}

/* late-handler-own: the program's handler counts every fault and opens
 * the page it guarded itself. */
static volatile sig_atomic_t late_hits;
static char *late_own_page;

static void late_count(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	late_hits++;
	char *a = si->si_addr;
	if (late_own_page != NULL && a >= late_own_page && a < late_own_page + PG)
		mprotect(late_own_page, PG, PROT_READ | PROT_WRITE);
}

static void late_unguard(char *buf)
{
	(void)buf;
	int r = mprotect(late_own_page, PG, PROT_READ | PROT_WRITE);
	printf("  own page opened again by the main thread: %d\n", r);
}

/* Two late faults, told apart by who guarded the page: the library (the
 * reader's access must just run again: its handler is not called), and
 * the program itself, on pages the library had opened (its handler is
 * called, even though another thread opened the page meanwhile). */
static int sc_late_own(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = late_count;
	sa.sa_flags = SA_SIGINFO;
	sigaction(SIGSEGV, &sa, NULL);
	char *buf = map(CHUNK);
	late_start();
	open_all();
	aux_fd = open("src.bin", O_RDONLY);
	for (int it = 0;; it++) {
		ssize_t r = step(buf, it, NULL, false);
		if (r <= 0)
			break;
		if (it == ACT_AT) {
			probe("act", buf, (size_t)r);
			late_touch(buf, late_dontneed);
			printf("  handler calls %d\n", (int)late_hits);
		}
		if (it == ACT_AT + 3) {
			/* Filled and opened by the library, past its grace;
			 * then the program guards the reader's page itself. */
			probe("own", buf, (size_t)r);
			printf("  looked at: sum %016llx\n", (unsigned long long)sum(buf, (size_t)r));
			usleep(80 * 1000);
			late_own_page = buf + CHUNK / 2;
			printf("  own page guarded: %d\n", mprotect(late_own_page, PG, PROT_NONE));
			late_start();
			late_touch(buf, late_unguard);
			printf("  handler calls %d\n", (int)late_hits);
		}
	}
	close_all();
	close(aux_fd);
	return 0;
}

static int sc_late(const char *how)
{
	void (*meanwhile)(char *) = strcmp(how, "free") == 0	? late_free
				    : strcmp(how, "grace") == 0 ? late_look
				    : strcmp(how, "many") == 0	? late_many
								: late_dontneed;
	bool heap = meanwhile == late_free;
	if (meanwhile == late_many) {
		struct sigaction sa;
		memset(&sa, 0, sizeof sa);
		sa.sa_sigaction = late_on_segv;
		sa.sa_flags = SA_SIGINFO;
		sigaction(SIGSEGV, &sa, NULL);
	}
	/* The heap buffer has a neighbour, so that freeing it never trims
	 * the heap: the reader's late access finds memory there, as plain. */
	char *buf = heap ? malloc(CHUNK) : map(CHUNK);
	void *fence = heap ? malloc(64) : NULL;
	if (buf == NULL || (heap && fence == NULL))
		die("malloc");
	late_start();
	open_all();
	aux_fd = open("src.bin", O_RDONLY);
	for (int it = 0;; it++) {
		ssize_t r = step(buf, it, NULL, false);
		if (r <= 0)
			break;
		if (it == ACT_AT) {
			probe("act", buf, (size_t)r);
			late_touch(buf, meanwhile);
			if (heap && (buf = malloc(CHUNK)) == NULL)
				die("malloc");
		}
		if (it == ACT_AT + 2) {
			/* A phantom again, if the library goes on: a touch. */
			probe("later", buf, (size_t)r);
			printf("  later look: sum %016llx\n", (unsigned long long)sum(buf, (size_t)r));
		}
	}
	close_all();
	close(aux_fd);
	if (heap) {
		free(buf);
		free(fence);
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: haz_mem SCENARIO\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	const char *s = argv[1];
	if (strcmp(s, "dontneed-fails-half-way") == 0)
		return sc_dontneed_half();
	if (strcmp(s, "madv-free") == 0)
		return loop(map(CHUNK), act_free, false);
	if (strcmp(s, "madv-wipeonfork") == 0)
		return loop(map(CHUNK), act_wipeonfork, true);
	if (strcmp(s, "madv-dontfork") == 0)
		return loop(map(CHUNK), act_dontfork, true);
	if (strcmp(s, "madv-populate") == 0)
		return loop(map(CHUNK), act_populate, false);
	if (strcmp(s, "munmap-fails") == 0)
		return loop(map(CHUNK), act_munmap_fails_twice, true);
	if (strcmp(s, "raw-remap") == 0)
		return sc_raw_remap();
	if (strcmp(s, "raw-remap-then-write") == 0)
		return loop(map(CHUNK), act_raw_remap_write, false);
	if (strcmp(s, "ucontext-stack") == 0)
		return sc_ucontext();
	if (strcmp(s, "altstack-buffer") == 0)
		return sc_altstack();
	if (strcmp(s, "dontneed-race") == 0)
		return sc_race();
	if (strncmp(s, "late-handler-", 13) == 0 &&
	    (strcmp(s + 13, "dontneed") == 0 || strcmp(s + 13, "free") == 0 ||
	     strcmp(s + 13, "grace") == 0 || strcmp(s + 13, "many") == 0))
		return sc_late(s + 13);
	if (strcmp(s, "late-handler-own") == 0)
		return sc_late_own();
	fprintf(stderr, "haz_mem: unknown scenario %s\n", s);
	return 2;
}
