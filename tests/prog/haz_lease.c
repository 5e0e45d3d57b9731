/*
 * haz_lease.c - another process changes the source file while the copy
 * loop holds chunks it has read but not yet written (hazard class 6).
 *
 *   haz_lease SCENARIO
 *
 * Every scenario copies src.bin (4 MiB made here, a pattern) into dst.bin
 * with read(256K) into a malloc'd buffer and write(); after read number
 * CHANGE_AT and before its write, another process changes src.bin, and
 * the loop goes on. Plain, the chunk already read keeps the bytes it had
 * when read() returned; dst.bin is what the reads returned, nothing else.
 * The buffer is never looked at (a copy loop's phantoms stay alive).
 * Printed: what the other process did (its calls' results) and a checksum
 * of every chunk of dst.bin; the caller compares plain and preloaded.
 *
 * Scenarios (the "other process" is a forked child that runs the change
 * and exits; the parent waits for it before its write):
 *   overwrite        open(O_WRONLY) + pwrite 'X' over the whole file
 *   truncate         truncate(path, 0) - the reads after it get 0: the
 *                    loop ends there
 *   open-trunc       open(O_WRONLY | O_TRUNC), then write 1 MiB of 'Y'
 *   threads          overwrite, while a second thread runs the same loop
 *                    on a second copy of the file (its own phantoms)
 *   own-signal       overwrite; the program has its own SA_SIGINFO handler
 *                    for the lease signal (NOBOUNCE_LEASE_SIGNAL, 62 by
 *                    default) and sends it to itself with sigqueue before
 *                    every write: each one must reach it, with its value
 *   writer-open      a child holds src.bin open for writing (idle) for the
 *                    whole copy, and overwrites it through that descriptor
 *                    at CHANGE_AT - no lease can be had
 *   mask-blocks      overwrite; the program blocked the lease signal first
 *                    (sigprocmask) - leases cannot be answered any more
 *   own-lease-break  overwrite; the program holds a read lease of its own
 *                    on its descriptor, with F_SETSIG = the lease signal
 *                    and a handler that lets go of it: the break must
 *                    reach that handler, with its si_fd
 *   cut-inside       truncate(path, 800K): inside the chunk just read.
 *                    Plain, that chunk goes out whole. Without a lease
 *                    (NOBOUNCE_EXACT=off, or a file that cannot be leased)
 *                    the bytes past the cut are gone: the library's write
 *                    returns what moved, then fails with EIO - it never
 *                    sends bytes the file did not hold (zeros)
 *   sleep-through    overwrite, by a child that waits 200 ms first, while
 *                    the program sleeps 1 s in nanosleep and then polls
 *                    for 300 ms: neither may end early (the lease break is
 *                    not the program's signal)
 *   vfork-writer     after read CHANGE_AT the program vforks a child that
 *                    opens the source for writing and overwrites it: the
 *                    parent is held in vfork meanwhile, and the child must
 *                    not wait for it
 *   own-handler-eintr  the program's handler for the lease signal has no
 *                    SA_RESTART; a thread blocked in read() on an empty
 *                    pipe gets the signal from pthread_kill: read must
 *                    fail with EINTR, as plain
 *   self-open-nonblock  after read CHANGE_AT the program itself opens the
 *                    source O_WRONLY | O_NONBLOCK and overwrites it: the
 *                    open must succeed (our lease would make it fail)
 *   own-signal-late  a plain copy (a lease is taken), then the program sets
 *                    its own handler for the lease signal and queues it to
 *                    itself 16 times while its thread blocks it: they must
 *                    wait for that thread (no thread of the library's may
 *                    run the program's handler)
 *   thread-table     a plain copy (a lease is taken); prints whether the
 *                    library's lease thread shares the program's
 *                    descriptor table (kcmp)
 *   own-write-lease  no other process; after read CHANGE_AT the program
 *                    takes a write lease on its source descriptor (it is
 *                    the file's only opener), then lets go of it
 */
#include "common.h"

#include <dirent.h>
#include <linux/kcmp.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#define FILE_SIZE (4u << 20)
#define CHUNK (256u << 10)
#define CHANGE_AT 3
#define LEASE_SIG 62

static void die(const char *what)
{
	printf("FAIL %s: %s\n", what, strerror(errno));
	exit(2);
}

static void make_file(const char *path)
{
	if (slow_pattern_file(path, FILE_SIZE) != 0)
		die("make src");
}

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* The other process (common.h), started before anything is read. */
static struct other oth;
static pthread_mutex_t other_lock = PTHREAD_MUTEX_INITIALIZER;

/* In the other process: "KIND PATH". */
static void other_change(const char *cmd)
{
	char kind[64], path[400];
	if (sscanf(cmd, "%63s %399s", kind, path) != 2)
		_exit(3);
	char *x = malloc(FILE_SIZE);
	if (x == NULL)
		_exit(3);
	if (strcmp(kind, "sleep-through") == 0)
		usleep(200 * 1000);
	if (strcmp(kind, "truncate") == 0) {
		int r = truncate(path, 0);
		printf("other: truncate %d\n", r);
	} else if (strcmp(kind, "cut-inside") == 0) {
		int r = truncate(path, 800 << 10);
		printf("other: truncate to 800K %d\n", r);
	} else if (strcmp(kind, "open-trunc") == 0) {
		int fd = open(path, O_WRONLY | O_TRUNC);
		memset(x, 'Y', 1u << 20);
		ssize_t w = fd < 0 ? -1 : write(fd, x, 1u << 20);
		printf("other: open-trunc %s, write %zd\n", fd < 0 ? "failed" : "ok", w);
		if (fd >= 0)
			close(fd);
	} else {
		int fd = open(path, O_WRONLY);
		memset(x, 'X', FILE_SIZE);
		ssize_t w = fd < 0 ? -1 : pwrite(fd, x, FILE_SIZE, 0);
		printf("other: overwrite %s, pwrite %zd\n", fd < 0 ? "failed" : "ok", w);
		if (fd >= 0)
			close(fd);
	}
	free(x);
}

/* The other process's change, by kind. */
static void change(const char *path, const char *kind)
{
	if (strcmp(kind, "self-open-nonblock") == 0) {
		int fd = open(path, O_WRONLY | O_NONBLOCK);
		char x[4096];
		memset(x, 'N', sizeof x);
		ssize_t w = fd < 0 ? -1 : pwrite(fd, x, sizeof x, 0);
		printf("self open nonblock: %s, pwrite %zd\n", fd < 0 ? strerror(errno) : "ok", w);
		if (fd >= 0)
			close(fd);
		return;
	}
	if (strcmp(kind, "vfork-writer") == 0) {
		double t0 = now();
		pid_t v = vfork();
		if (v == 0) {
			/* No stdio, no allocation: a vfork child shares the
			 * parent's memory. The whole file is overwritten. */
			int fd = open(path, O_WRONLY);
			static char x[64 * 1024];
			memset(x, 'V', sizeof x);
			for (off_t o = 0; fd >= 0 && o < (off_t)FILE_SIZE; o += (off_t)sizeof x)
				if (pwrite(fd, x, sizeof x, o) != (ssize_t)sizeof x)
					_exit(3);
			_exit(fd >= 0 ? 0 : 3);
		}
		int st;
		while (waitpid(v, &st, 0) < 0)
			if (errno != EINTR)
				die("waitpid");
		printf("vfork writer: status %d, waited %s\n", WEXITSTATUS(st),
		       now() - t0 < 1.0 ? "under 1 s" : "1 s or more");
		return;
	}
	bool sleep_through = strcmp(kind, "sleep-through") == 0;
	char cmd[512];
	snprintf(cmd, sizeof cmd, "%s %s", kind, path);
	pthread_mutex_lock(&other_lock);
	other_post(&oth, cmd);
	if (sleep_through) {
		struct timespec ts = { 1, 0 }, rem = { 0, 0 };
		int r = nanosleep(&ts, &rem);
		printf("nanosleep %d %s\n", r, r ? strerror(errno) : "");
		int p = poll(NULL, 0, 300);
		printf("poll %d\n", p);
	}
	other_wait(&oth);
	pthread_mutex_unlock(&other_lock);
}

static void on_sig(int sig)
{
	(void)sig;
}

static void *blocked_reader(void *arg)
{
	int fd = *(int *)arg;
	char c;
	ssize_t r = read(fd, &c, 1);
	printf("blocked read: %zd %s\n", r, r < 0 ? strerror(errno) : "");
	return NULL;
}

/* A thread blocked in read() on an empty pipe, woken by the lease signal
 * through the program's handler without SA_RESTART. */
static void own_handler_eintr(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_sig;
	if (sigaction(LEASE_SIG, &sa, NULL) != 0)
		die("sigaction");
	int p[2];
	if (pipe(p) != 0)
		die("pipe");
	pthread_t t;
	if (pthread_create(&t, NULL, blocked_reader, &p[0]) != 0)
		die("pthread_create");
	usleep(100 * 1000);
	pthread_kill(t, LEASE_SIG);
	pthread_join(t, NULL);
}

static volatile sig_atomic_t own_got, own_bad, own_breaks, own_break_fd = -1;

static void own_handler(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	/* It must run on a thread of the program's, never on one the
	 * library started (whose descriptors may not be the program's). */
	char name[17] = "";
	prctl(PR_GET_NAME, name);
	if (strcmp(name, "nobounce-lease") == 0) {
		own_bad++;
		return;
	}
	if (sig == LEASE_SIG && si->si_code == SI_QUEUE && si->si_value.sival_int == 4242) {
		own_got++;
	} else if (sig == LEASE_SIG && si->si_code == POLL_MSG) {
		own_breaks++;
		own_break_fd = si->si_fd;
		fcntl(si->si_fd, F_SETLEASE, F_UNLCK);
	} else {
		own_bad++;
	}
}

/* Is there a thread named nobounce-lease, and does it share this
 * thread's descriptor table (kcmp KCMP_FILES)? */
static const char *thread_table(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	const char *what = "no such thread";
	while (d != NULL && (e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		char path[300], name[32] = "";
		snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
		FILE *f = fopen(path, "r");
		if (f == NULL)
			continue;
		if (fgets(name, sizeof name, f) == NULL)
			name[0] = 0;
		fclose(f);
		if (strncmp(name, "nobounce-lease", 14) != 0)
			continue;
		long r = syscall(SYS_kcmp, (pid_t)syscall(SYS_gettid), (pid_t)atoi(e->d_name), KCMP_FILES,
				 0L, 0L);
		what = r == 0 ? "shared with the program" : r > 0 ? "its own" : "unknown";
	}
	if (d != NULL)
		closedir(d);
	return what;
}

static void own_handler_install(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = own_handler;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	if (sigaction(LEASE_SIG, &sa, NULL) != 0)
		die("sigaction");
}

struct job {
	const char *src, *dst, *kind;
	bool changes;     /* this loop makes the change */
	bool own_signal;
	bool own_lease, own_write_lease;
	int writer_fd;    /* writer-open: the other process's descriptor */
	pid_t writer;
	uint64_t sums[FILE_SIZE / CHUNK + 1];
	int chunks;
};

static void *copy(void *arg)
{
	struct job *j = arg;
	int in = open(j->src, O_RDONLY), out = open(j->dst, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	char *buf = malloc(CHUNK);
	if (in < 0 || out < 0 || buf == NULL)
		die("open");
	if (j->own_lease) {
		if (fcntl(in, F_SETSIG, LEASE_SIG) != 0 || fcntl(in, F_SETLEASE, F_RDLCK) != 0)
			die("own read lease");
		printf("own read lease on fd %d\n", in);
	}
	for (int it = 0;; it++) {
		ssize_t n = read(in, buf, CHUNK);
		if (n < 0)
			die("read");
		if (n == 0)
			break;
		if (j->own_write_lease && it == CHANGE_AT) {
			int r = fcntl(in, F_SETLEASE, F_WRLCK);
			printf("own write lease: %d %s, F_GETLEASE %d\n", r, r ? strerror(errno) : "",
			       fcntl(in, F_GETLEASE));
			r = fcntl(in, F_SETLEASE, F_UNLCK);
			printf("own write lease let go: %d\n", r);
		}
		if (j->changes && it == CHANGE_AT) {
			if (j->writer > 0) {
				/* The idle writer acts now, through its open descriptor. */
				char go = 'g';
				if (write(j->writer_fd, &go, 1) != 1)
					die("signal the writer");
				int st;
				while (waitpid(j->writer, &st, 0) < 0)
					if (errno != EINTR)
						die("waitpid writer");
			} else {
				change(j->src, j->kind);
			}
		}
		if (j->own_signal) {
			union sigval v = { .sival_int = 4242 };
			if (sigqueue(getpid(), LEASE_SIG, v) != 0)
				die("sigqueue");
		}
		bool failed = false;
		for (ssize_t w = 0; w < n;) {
			ssize_t k = write(out, buf + w, (size_t)(n - w));
			if (k < 0) {
				printf("write -1 %s at %zd of chunk %d\n", strerror(errno), w, it);
				failed = true;
				break;
			}
			if (k == 0)
				die("write returned 0");
			if (k < n - w)
				printf("short write %zd of %zd at chunk %d\n", k, n - w, it);
			w += k;
		}
		j->chunks++;
		if (failed)
			break;
	}
	free(buf);
	close(in);
	close(out);
	/* The chunks as written, read back from the file: the buffer itself
	 * is not looked at, so its phantoms live on as a copy loop's do. */
	int back = open(j->dst, O_RDONLY);
	unsigned char *c = malloc(CHUNK);
	if (back < 0 || c == NULL)
		die("read back");
	for (int i = 0; i < j->chunks; i++) {
		ssize_t n = pread(back, c, CHUNK, (off_t)i * CHUNK);
		j->sums[i] = sum_bytes(c, n > 0 ? (size_t)n : 0);
	}
	free(c);
	close(back);
	return NULL;
}

/* A child that opens path for writing now and waits (on a pipe) for the
 * word to overwrite the file through that same descriptor. */
static pid_t idle_writer(const char *path, int *go_fd)
{
	int p[2];
	if (pipe(p) != 0)
		die("pipe");
	int ready[2];
	if (pipe(ready) != 0)
		die("pipe");
	pid_t c = fork();
	if (c < 0)
		die("fork");
	if (c == 0) {
		close(p[1]);
		close(ready[0]);
		int fd = open(path, O_WRONLY);
		if (write(ready[1], "r", 1) != 1)
			_exit(3);
		char go;
		if (fd < 0 || read(p[0], &go, 1) != 1)
			_exit(3);
		char *x = malloc(FILE_SIZE);
		memset(x, 'W', FILE_SIZE);
		ssize_t w = pwrite(fd, x, FILE_SIZE, 0);
		printf("other: idle writer pwrite %zd\n", w);
		fflush(stdout);
		_exit(0);
	}
	close(p[0]);
	close(ready[1]);
	char r;
	if (read(ready[0], &r, 1) != 1)
		die("writer ready");
	close(ready[0]);
	*go_fd = p[1];
	return c;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: haz_lease SCENARIO\n");
		return 2;
	}
	const char *sc = argv[1];
	setvbuf(stdout, NULL, _IOLBF, 0);
	other_start(&oth, other_change);
	make_file("src.bin");
	static struct job a, b;
	a = (struct job){ .src = "src.bin", .dst = "dst.bin", .kind = "overwrite", .changes = true };
	if (strcmp(sc, "truncate") == 0 || strcmp(sc, "open-trunc") == 0 ||
	    strcmp(sc, "cut-inside") == 0 || strcmp(sc, "sleep-through") == 0 ||
	    strcmp(sc, "vfork-writer") == 0 || strcmp(sc, "self-open-nonblock") == 0) {
		a.kind = sc;
	} else if (strcmp(sc, "own-signal") == 0) {
		own_handler_install();
		a.own_signal = true;
	} else if (strcmp(sc, "own-lease-break") == 0) {
		own_handler_install();
		a.own_lease = true;
	} else if (strcmp(sc, "own-signal-late") == 0 || strcmp(sc, "thread-table") == 0) {
		a.changes = false;
	} else if (strcmp(sc, "own-write-lease") == 0) {
		a.own_write_lease = true;
		a.changes = false;
	} else if (strcmp(sc, "writer-open") == 0) {
		a.writer = idle_writer("src.bin", &a.writer_fd);
	} else if (strcmp(sc, "mask-blocks") == 0) {
		sigset_t s;
		sigemptyset(&s);
		sigaddset(&s, LEASE_SIG);
		if (sigprocmask(SIG_BLOCK, &s, NULL) != 0)
			die("sigprocmask");
	} else if (strcmp(sc, "own-handler-eintr") == 0) {
		a.changes = false;
	} else if (strcmp(sc, "threads") != 0 && strcmp(sc, "overwrite") != 0) {
		fprintf(stderr, "haz_lease: unknown scenario '%s'\n", sc);
		return 2;
	}
	if (strcmp(sc, "own-handler-eintr") == 0) {
		copy(&a); /* a lease is held: the library's slot is in use */
		own_handler_eintr();
	} else if (strcmp(sc, "thread-table") == 0) {
		copy(&a); /* a lease was taken: the library's thread runs */
		printf("library thread's descriptor table: %s\n", thread_table());
	} else if (strcmp(sc, "own-signal-late") == 0) {
		copy(&a); /* a lease was taken: the library's thread runs */
		own_handler_install();
		/* Sent while this thread blocks it: plain, they wait for it;
		 * no other thread may take them. */
		sigset_t s, old;
		sigemptyset(&s);
		sigaddset(&s, LEASE_SIG);
		pthread_sigmask(SIG_BLOCK, &s, &old);
		for (int i = 0; i < 16; i++)
			if (sigqueue(getpid(), LEASE_SIG, (union sigval){ .sival_int = 4242 }) != 0)
				die("sigqueue");
		struct timespec ts = { 0, 50 * 1000 * 1000 };
		nanosleep(&ts, NULL);
		printf("before unblocking: %d deliveries, %d unexpected\n", (int)own_got, (int)own_bad);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		a.own_signal = true; /* the summary line below */
	} else if (strcmp(sc, "threads") == 0) {
		make_file("src2.bin");
		b = (struct job){ .src = "src2.bin", .dst = "dst2.bin", .kind = "overwrite", .changes = true };
		pthread_t t;
		if (pthread_create(&t, NULL, copy, &b) != 0)
			die("pthread_create");
		copy(&a);
		pthread_join(t, NULL);
	} else {
		copy(&a);
	}
	for (int i = 0; i < a.chunks; i++)
		printf("chunk %d sum %016llx\n", i, (unsigned long long)a.sums[i]);
	for (int i = 0; i < b.chunks; i++)
		printf("second chunk %d sum %016llx\n", i, (unsigned long long)b.sums[i]);
	if (strcmp(sc, "cut-inside") == 0) {
		/* Every byte written is the original's at its offset. */
		int d = open("dst.bin", O_RDONLY);
		unsigned char c[4096];
		size_t at = 0, differ = 0;
		ssize_t k;
		while (d >= 0 && (k = read(d, c, sizeof c)) > 0)
			for (ssize_t i = 0; i < k; i++, at++)
				if (c[i] != (unsigned char)((at * 131u + at / 4099u) & 0xff))
					differ++;
		printf("dst bytes %zu, differing from the original %zu\n", at, differ);
	}
	if (a.own_signal || a.own_lease)
		printf("own handler: %d deliveries, %d breaks (last si_fd %d), %d unexpected\n",
		       (int)own_got, (int)own_breaks, (int)own_break_fd, (int)own_bad);
	return 0;
}
