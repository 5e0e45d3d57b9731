/*
 * haz_sig.c - signal and fork hazards of guarded buffers, one scenario per
 * run. Each scenario is an ordinary copy loop (a file read in 256 KiB
 * chunks into a malloc'd buffer, written to dst.bin) plus the thing under
 * test: a signal mask that blocks SIGSEGV, a disposition changed behind
 * the library, a signal handler that touches the buffer while its thread
 * is inside a read or write, a tight alternate signal stack, a fork while
 * other threads copy, a fork that skips the atfork handlers.
 *
 *   haz_sig SCENARIO [ARG]
 *
 * It prints what the program can observe (checksums of what it looked at,
 * the destination's checksum, exit paths); the integration test
 * (26-signal-hazards.sh) runs it plain and preloaded and requires the same
 * output and exit status. stderr may carry "probe" lines (was the buffer
 * guarded when the scenario acted) that differ between the two runs.
 *
 * Exit status: 0, or the scenario's own (42 for altstack), 1 on a setup
 * error, 2 on bad usage.
 */
/* Legacy programs still call sighold, sigset, sigsetmask, siginterrupt:
 * that is the point of testing them. */
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <ucontext.h>
#include <unistd.h>

#include "common.h"

#define SRC_SIZE (8 * 1024 * 1024)
static size_t chunk = 256 * 1024; /* the loop's read size */


static void die(const char *what)
{
	fprintf(stderr, "haz_sig: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void make_src(const char *path, size_t size)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		die("create src");
	static uint64_t blk[8192];
	for (size_t at = 0; at < size; at += sizeof blk) {
		for (size_t i = 0; i < sizeof blk / 8; i++)
			blk[i] = splitmix64((at / 8) + i);
		if (write(fd, blk, sizeof blk) != (ssize_t)sizeof blk)
			die("write src");
	}
	close(fd);
}

/* FNV-1a over bytes, read with plain loads (a touch of a guarded page). */
static uint64_t sum(const volatile unsigned char *p, size_t n)
{
	uint64_t h = SUM_INIT;
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 1099511628211ull;
	return h;
}

static uint64_t file_sum(const char *path)
{
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		die("open for sum");
	static unsigned char b[65536];
	uint64_t h = SUM_INIT;
	ssize_t r;
	while ((r = (ssize_t)syscall(SYS_read, fd, b, sizeof b)) > 0)
		h = fnv1a(h, b, (size_t)r);
	close(fd);
	return h;
}

static void probe(const char *what, const void *p, size_t n)
{
	char line[96];
	int k = snprintf(line, sizeof line, "probe %s guarded=%d\n", what, guarded(p, n));
	syscall(SYS_write, 2, line, (size_t)k);
}

static void write_all(int fd, const unsigned char *p, size_t n)
{
	if (write_fully(fd, p, n) != 0)
		die("write dst");
}

/* ---- the copy loop ---- */

/* look(i, buf, n) is called between the read and the write of iteration
 * i; it may touch the buffer. */
typedef void (*look_fn)(int i, unsigned char *buf, size_t n);

static unsigned char *volatile shared_buf; /* for handlers and threads */
static volatile size_t shared_len;

static int copy_loop(const char *dst, look_fn look)
{
	int in = open("src.bin", O_RDONLY);
	int out = open(dst, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (in < 0 || out < 0)
		die("open loop files");
	unsigned char *buf = malloc(chunk);
	if (buf == NULL)
		die("malloc");
	shared_buf = buf;
	for (int i = 0;; i++) {
		ssize_t r;
		do
			r = read(in, buf, chunk);
		while (r < 0 && errno == EINTR);
		if (r < 0)
			die("read");
		if (r == 0)
			break;
		shared_len = (size_t)r;
		if (look != NULL)
			look(i, buf, (size_t)r);
		write_all(out, buf, (size_t)r);
	}
	shared_buf = NULL;
	close(in);
	close(out);
	free(buf);
	return 0;
}

static void report(void)
{
	printf("dst %016llx src %016llx\n", (unsigned long long)file_sum("dst.bin"),
	       (unsigned long long)file_sum("src.bin"));
}

/* Looks at the buffer on every fourth iteration past the tenth. */
static void look_some(int i, unsigned char *buf, size_t n)
{
	if (i >= 10 && i % 4 == 2) {
		probe("look", buf, n);
		printf("look %d %016llx\n", i, (unsigned long long)sum(buf, n));
	}
}

static volatile int looking; /* the handlers act only during a look */

static void look_every_fourth(int i, unsigned char *buf, size_t n)
{
	if (i % 4 != 3)
		return;
	looking = 1;
	uint64_t h = sum(buf, n);
	looking = 0;
	printf("look %d %016llx\n", i, (unsigned long long)h);
}

/* ---- 1. SIGSEGV blocked ---- */

static void block_segv_all(void)
{
	sigset_t all;
	sigfillset(&all);
	if (pthread_sigmask(SIG_BLOCK, &all, NULL) != 0)
		die("pthread_sigmask");
}

static void *blocked_worker(void *arg)
{
	(void)arg;
	block_segv_all();
	copy_loop("dst.bin", look_some);
	return NULL;
}

static void *plain_worker(void *arg)
{
	(void)arg;
	copy_loop("dst.bin", look_some);
	return NULL;
}

/* The usual server pattern: a worker thread blocks every signal (one
 * other thread handles them) and copies. */
static int sc_blocked_thread(void)
{
	pthread_t t;
	if (pthread_create(&t, NULL, blocked_worker, NULL) != 0)
		die("pthread_create");
	pthread_join(t, NULL);
	report();
	return 0;
}

/* The same worker, its mask set through the thread attribute (glibc
 * 2.32): the thread never calls a mask function itself. */
static int sc_blocked_attr(void)
{
	pthread_attr_t a;
	sigset_t all;
	sigfillset(&all);
	pthread_attr_init(&a);
	if (pthread_attr_setsigmask_np(&a, &all) != 0)
		die("pthread_attr_setsigmask_np");
	pthread_t t;
	if (pthread_create(&t, &a, plain_worker, NULL) != 0)
		die("pthread_create");
	pthread_join(t, NULL);
	report();
	return 0;
}

static int sc_blocked_sigprocmask(void)
{
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, SIGSEGV);
	if (sigprocmask(SIG_BLOCK, &s, NULL) != 0)
		die("sigprocmask");
	copy_loop("dst.bin", look_some);
	report();
	return 0;
}

static int sc_blocked_sighold(void)
{
	if (sighold(SIGSEGV) != 0)
		die("sighold");
	copy_loop("dst.bin", look_some);
	report();
	return 0;
}

static int sc_blocked_sigsetmask(void)
{
	sigsetmask(1 << (SIGSEGV - 1));
	copy_loop("dst.bin", look_some);
	report();
	return 0;
}

static int sc_blocked_raw(bool through_libc)
{
	uint64_t set = 1ull << (SIGSEGV - 1);
	if ((through_libc ? syscall(SYS_rt_sigprocmask, SIG_BLOCK, &set, NULL, 8)
			  : asm_syscall4(SYS_rt_sigprocmask, SIG_BLOCK, (long)&set, 0, 8)) != 0)
		die("rt_sigprocmask");
	copy_loop("dst.bin", look_some);
	report();
	return 0;
}

/* Phantoms exist (the loop runs with SIGSEGV open); then another thread
 * blocks everything and looks at the buffer between a read and its
 * write. */
static void *blocked_looker(void *arg)
{
	(void)arg;
	block_segv_all();
	unsigned char *b = shared_buf;
	printf("late look %016llx\n", (unsigned long long)sum(b, shared_len));
	return NULL;
}

static void look_from_blocked_thread(int i, unsigned char *buf, size_t n)
{
	if (i == 12) {
		probe("late-look", buf, n);
		pthread_t t;
		if (pthread_create(&t, NULL, blocked_looker, NULL) != 0)
			die("pthread_create");
		pthread_join(t, NULL);
	}
}

static int sc_blocked_midway(void)
{
	copy_loop("dst.bin", look_from_blocked_thread);
	report();
	return 0;
}

/* A process started with SIGSEGV blocked (the mask survives exec). */
static int sc_blocked_exec(const char *self)
{
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, SIGSEGV);
	/* Raw: the library in this image would see a hooked call. */
	syscall(SYS_rt_sigprocmask, SIG_BLOCK, &s, NULL, 8);
	execl(self, self, "plain-loop", (char *)NULL);
	die("exec");
	return 1;
}

static int sc_plain_loop(void)
{
	copy_loop("dst.bin", look_some);
	report();
	return 0;
}

/* A temporary mask: ppoll blocks SIGSEGV while it waits; the SIGALRM
 * handler that interrupts it runs under that mask and looks at the
 * buffer. */
static volatile uint64_t handler_sum;
static volatile int handler_runs;

static void on_alarm_look(int sig)
{
	(void)sig;
	unsigned char *b = shared_buf;
	if (b != NULL)
		handler_sum = sum(b, shared_len);
	handler_runs++;
}

static void look_in_ppoll(int i, unsigned char *buf, size_t n)
{
	if (i != 12)
		return;
	probe("ppoll", buf, n);
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_alarm_look;
	sigaction(SIGALRM, &sa, NULL);
	sigset_t tmp;
	sigfillset(&tmp);
	sigdelset(&tmp, SIGALRM);
	struct itimerval it = { { 0, 0 }, { 0, 20000 } };
	setitimer(ITIMER_REAL, &it, NULL);
	struct timespec ts = { 5, 0 };
	int r = ppoll(NULL, 0, &ts, &tmp);
	printf("ppoll %d %s, handler %016llx\n", r, r < 0 && errno == EINTR ? "EINTR" : "-",
	       (unsigned long long)handler_sum);
}

static int sc_blocked_ppoll(void)
{
	copy_loop("dst.bin", look_in_ppoll);
	report();
	return 0;
}

static void on_segv_ignore(int sig)
{
	(void)sig; /* never runs: the scenario makes no real fault */
}

/* A handler of another signal installed with every signal in its mask
 * (sigfillset: SIGSEGV blocked while it runs) reads the buffer. */
static void on_usr2_sum(int sig)
{
	(void)sig;
	unsigned char *b = shared_buf;
	if (b != NULL)
		handler_sum = sum(b + 8192, 4096);
}

static void look_from_full_mask_handler(int i, unsigned char *buf, size_t n)
{
	if (i != 12)
		return;
	probe("full-mask-handler", buf, n);
	raise(SIGUSR2);
	printf("handler with a full mask saw %016llx\n", (unsigned long long)handler_sum);
	struct sigaction q;
	sigaction(SIGUSR2, NULL, &q);
	printf("its mask as queried: SIGSEGV %s\n",
	       sigismember(&q.sa_mask, SIGSEGV) ? "in" : "out");
}

static int sc_full_mask_handler(bool own_segv_handler)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	if (own_segv_handler) {
		sa.sa_handler = on_segv_ignore;
		sa.sa_flags = SA_NODEFER;
		sigaction(SIGSEGV, &sa, NULL);
	}
	sa.sa_handler = on_usr2_sum;
	sa.sa_flags = SA_RESTART;
	sigfillset(&sa.sa_mask);
	sigaction(SIGUSR2, &sa, NULL);
	copy_loop("dst.bin", look_from_full_mask_handler);
	report();
	return 0;
}

/* The program's own SIGSEGV handler (no SA_NODEFER: SIGSEGV blocked
 * while it runs) looks at the buffer after a genuine fault, then jumps
 * out. */
static sigjmp_buf segv_jump;

static void on_segv_look(int sig)
{
	(void)sig;
	unsigned char *b = shared_buf;
	if (b != NULL)
		handler_sum = sum(b + 8192, 4096);
	siglongjmp(segv_jump, 1);
}

static void look_after_own_fault(int i, unsigned char *buf, size_t n)
{
	if (i != 12 && i != 20)
		return;
	probe("own-fault", buf, n);
	if (sigsetjmp(segv_jump, 1) == 0) {
		volatile int *volatile nowhere = NULL;
		*nowhere = 1;
	}
	printf("own SIGSEGV handler at %d saw %016llx\n", i, (unsigned long long)handler_sum);
}

static int sc_own_segv_handler_looks(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_segv_look;
	sigaction(SIGSEGV, &sa, NULL);
	copy_loop("dst.bin", look_after_own_fault);
	report();
	return 0;
}

/* ---- 2. the disposition changed behind the library ---- */

static int sc_sigset_default(void)
{
	sigset(SIGSEGV, SIG_DFL);
	copy_loop("dst.bin", look_some);
	report();
	return 0;
}

struct ksa {
	void (*h)(int);
	unsigned long flags;
	void (*restorer)(void);
	uint64_t mask;
};

static int sc_raw_sigaction_default(bool through_libc)
{
	struct ksa k;
	memset(&k, 0, sizeof k);
	k.h = SIG_DFL;
	if ((through_libc ? syscall(SYS_rt_sigaction, SIGSEGV, &k, NULL, 8)
			  : asm_syscall4(SYS_rt_sigaction, SIGSEGV, (long)&k, 0, 8)) != 0)
		die("rt_sigaction");
	/* What the kernel answers now, as the program sees it. */
	struct ksa now;
	if (syscall(SYS_rt_sigaction, SIGSEGV, NULL, &now, 8) == 0)
		printf("SIGSEGV: %s\n", now.h == SIG_DFL ? "SIG_DFL" : "a handler");
	copy_loop("dst.bin", look_some);
	report();
	return 0;
}

static void on_any(int sig)
{
	(void)sig;
}

static int sc_siginterrupt(void)
{
	/* siginterrupt re-installs the current action with another
	 * SA_RESTART through glibc's internal sigaction. */
	signal(SIGSEGV, on_any);
	signal(SIGSEGV, SIG_DFL);
	siginterrupt(SIGSEGV, 1);
	copy_loop("dst.bin", look_some);
	report();
	return 0;
}

/* ---- 3. a handler that touches the buffer ---- */

static void on_tick_read(int sig)
{
	(void)sig;
	unsigned char *b = shared_buf;
	if (b != NULL && looking)
		handler_sum ^= sum(b + shared_len - 8192, 64);
	handler_runs++;
}

static void on_tick_write(int sig)
{
	(void)sig;
	unsigned char *b = shared_buf;
	int saved = errno;
	if (b != NULL && looking) {
		int fd = open("/dev/null", O_WRONLY);
		if (fd >= 0) {
			ssize_t w = write(fd, b, shared_len);
			(void)w;
			close(fd);
		}
	}
	errno = saved;
	handler_runs++;
}

/* The loop reads 4 MiB at a time and looks at every fourth buffer, from
 * its start: preloaded, the look fills the whole 4 MiB phantom, which
 * takes a while. A timer fires every 50 us; while a look is in progress,
 * its handler touches the buffer (near its end) or write()s it: with the
 * library, from inside the library's fill on the same thread. */
static int sc_handler_touches(void (*h)(int), int rounds)
{
	chunk = 4 << 20;
	make_src("src.bin", 32 << 20);
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = h;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGALRM, &sa, NULL);
	struct itimerval it = { { 0, 50 }, { 0, 50 } };
	setitimer(ITIMER_REAL, &it, NULL);
	for (int r = 0; r < rounds; r++)
		copy_loop("dst.bin", look_every_fourth);
	struct itimerval off = { { 0, 0 }, { 0, 0 } };
	setitimer(ITIMER_REAL, &off, NULL);
	report();
	printf("handler ran: %s\n", handler_runs > 0 ? "yes" : "no");
	return 0;
}

/* ---- 4. a tight alternate signal stack ---- */

static void on_segv_exit(int sig)
{
	(void)sig;
	_exit(42);
}

static int sc_altstack(size_t size)
{
	/* The stack sits at the end of an allocation, below a PROT_NONE page:
	 * a handler path that needs more than `size` bytes faults on
	 * memory that is not its stack (and dies), as it would if the
	 * alternate stack were a bare malloc'd block. */
	long pg = sysconf(_SC_PAGESIZE);
	size_t span = (size + 2 * (size_t)pg) & ~((size_t)pg - 1);
	char *m = mmap(NULL, span + (size_t)pg, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		die("mmap");
	mprotect(m, (size_t)pg, PROT_NONE); /* below the stack: overflow faults */
	stack_t ss = { .ss_sp = m + (size_t)pg, .ss_size = size, .ss_flags = 0 };
	if (sigaltstack(&ss, NULL) != 0) {
		printf("sigaltstack %zu: %s\n", size, strerror(errno));
		return 3;
	}
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_segv_exit;
	sa.sa_flags = SA_ONSTACK;
	sigaction(SIGSEGV, &sa, NULL);
	copy_loop("dst.bin", NULL); /* library state as in a real program */
	report();
	fflush(stdout);
	volatile int *volatile nowhere = NULL;
	*nowhere = 1; /* the program's own fault */
	return 0;
}

/* A handler on the alternate stack touches the buffer (a phantom,
 * preloaded): the library's fill then runs on that stack too. */
static void on_usr1_look(int sig)
{
	(void)sig;
	unsigned char *b = shared_buf;
	if (b != NULL)
		handler_sum = sum(b + shared_len / 2, 64);
}

static void look_from_altstack(int i, unsigned char *buf, size_t n)
{
	if (i == 12) {
		probe("altstack-touch", buf, n);
		raise(SIGUSR1);
		printf("handler on the alternate stack saw %016llx\n",
		       (unsigned long long)handler_sum);
	}
}

static int sc_altstack_touch(size_t size)
{
	long pg = sysconf(_SC_PAGESIZE);
	size_t span = (size + 2 * (size_t)pg) & ~((size_t)pg - 1);
	char *m = mmap(NULL, span + (size_t)pg, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		die("mmap");
	mprotect(m, (size_t)pg, PROT_NONE);
	stack_t ss = { .ss_sp = m + (size_t)pg, .ss_size = size, .ss_flags = 0 };
	if (sigaltstack(&ss, NULL) != 0)
		die("sigaltstack");
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_usr1_look;
	sa.sa_flags = SA_ONSTACK;
	sigaction(SIGUSR1, &sa, NULL);
	copy_loop("dst.bin", look_from_altstack);
	report();
	return 42;
}

/* ---- 5. children ---- */

static volatile int stop_threads;
struct wk {
	int id;
	unsigned char *buf;
};

static void *fork_copier(void *arg)
{
	struct wk *w = arg;
	char dst[32];
	snprintf(dst, sizeof dst, "dst%d.bin", w->id);
	while (!stop_threads)
		copy_loop(dst, NULL);
	return NULL;
}

/* Two threads copy (in and out of the library all the time) while the
 * main thread forks; each child touches a live phantom - its own copy of a
 * buffer another thread was reading into - and exits. A child that finds
 * an entry busy forever hangs; the parent gives each child 10 s. */
static int sc_fork_mid_op(int forks)
{
	pthread_t t[2];
	struct wk w[2] = { { 0, NULL }, { 1, NULL } };
	for (int i = 0; i < 2; i++)
		pthread_create(&t[i], NULL, fork_copier, &w[i]);
	int hung = 0, bad = 0;
	for (int i = 0; i < forks; i++) {
		pid_t c = fork();
		if (c < 0)
			die("fork");
		if (c == 0) {
			unsigned char *b = shared_buf;
			if (b != NULL)
				(void)sum(b, 4096 * 3);
			_exit(0);
		}
		int st = 0;
		for (int ms = 0; ms < 10000; ms++) {
			if (waitpid(c, &st, WNOHANG) == c)
				break;
			if (ms == 9999) {
				kill(c, SIGKILL);
				waitpid(c, &st, 0);
				hung++;
			}
			usleep(1000);
		}
		if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0))
			bad++;
	}
	stop_threads = 1;
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	printf("forks %d, hung %d, failed %d\n", forks, hung, bad);
	return 0;
}

/* A child made without the atfork handlers looks at the buffer (a live
 * phantom) and reports what it saw; the parent then looks too. Each must
 * see the bytes of the read - the child must not write into the
 * parent's memory. */
static int raw_child_mode; /* 0 syscall(SYS_fork), 1 _Fork, 2 the instruction */
extern pid_t _Fork(void);

static void look_in_raw_child(int i, unsigned char *buf, size_t n)
{
	if (i != 12)
		return;
	probe("raw-fork", buf, n);
	fflush(stdout);
	pid_t c = raw_child_mode == 1 ? _Fork()
		  : raw_child_mode == 2 ? (pid_t)asm_syscall4(SYS_fork, 0, 0, 0, 0)
					: (pid_t)syscall(SYS_fork);
	if (c < 0)
		die("fork");
	if (c == 0) {
		char line[64];
		int k = snprintf(line, sizeof line, "child sees %016llx\n",
				 (unsigned long long)sum(buf, n));
		syscall(SYS_write, 1, line, (size_t)k);
		syscall(SYS_exit_group, 0);
	}
	int st;
	waitpid(c, &st, 0);
	printf("parent sees %016llx (child status %d)\n", (unsigned long long)sum(buf, n),
	       WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
}

static int sc_raw_fork(int mode)
{
	raw_child_mode = mode;
	copy_loop("dst.bin", look_in_raw_child);
	report();
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: haz_sig SCENARIO [ARG]\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	const char *s = argv[1];
	long arg = argc > 2 ? strtol(argv[2], NULL, 10) : 0;
	if (strcmp(s, "plain-loop") != 0)
		make_src("src.bin", SRC_SIZE);
	if (!strcmp(s, "blocked-thread"))
		return sc_blocked_thread();
	if (!strcmp(s, "blocked-attr"))
		return sc_blocked_attr();
	if (!strcmp(s, "blocked-sigprocmask"))
		return sc_blocked_sigprocmask();
	if (!strcmp(s, "blocked-sighold"))
		return sc_blocked_sighold();
	if (!strcmp(s, "blocked-sigsetmask"))
		return sc_blocked_sigsetmask();
	if (!strcmp(s, "blocked-raw"))
		return sc_blocked_raw(false);
	if (!strcmp(s, "blocked-syscall"))
		return sc_blocked_raw(true);
	if (!strcmp(s, "blocked-midway"))
		return sc_blocked_midway();
	if (!strcmp(s, "blocked-exec"))
		return sc_blocked_exec(argv[0]);
	if (!strcmp(s, "plain-loop"))
		return sc_plain_loop();
	if (!strcmp(s, "blocked-ppoll"))
		return sc_blocked_ppoll();
	if (!strcmp(s, "sigset-default"))
		return sc_sigset_default();
	if (!strcmp(s, "raw-sigaction-default"))
		return sc_raw_sigaction_default(false);
	if (!strcmp(s, "syscall-sigaction-default"))
		return sc_raw_sigaction_default(true);
	if (!strcmp(s, "full-mask-handler"))
		return sc_full_mask_handler(false);
	if (!strcmp(s, "full-mask-handler-own-segv"))
		return sc_full_mask_handler(true);
	if (!strcmp(s, "own-segv-handler-looks"))
		return sc_own_segv_handler_looks();
	if (!strcmp(s, "siginterrupt"))
		return sc_siginterrupt();
	if (!strcmp(s, "handler-reads"))
		return sc_handler_touches(on_tick_read, arg > 0 ? (int)arg : 8);
	if (!strcmp(s, "handler-writes"))
		return sc_handler_touches(on_tick_write, arg > 0 ? (int)arg : 8);
	if (!strcmp(s, "altstack"))
		return sc_altstack(arg > 0 ? (size_t)arg : 8192);
	if (!strcmp(s, "altstack-touch"))
		return sc_altstack_touch(arg > 0 ? (size_t)arg : 65536);
	if (!strcmp(s, "fork-mid-op"))
		return sc_fork_mid_op(arg > 0 ? (int)arg : 200);
	if (!strcmp(s, "raw-fork"))
		return sc_raw_fork(0);
	if (!strcmp(s, "raw-_Fork"))
		return sc_raw_fork(1);
	if (!strcmp(s, "raw-fork-asm"))
		return sc_raw_fork(2);
	fprintf(stderr, "haz_sig: unknown scenario %s\n", s);
	return 2;
}
