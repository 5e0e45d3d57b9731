/*
 * overhead.c - per-call cost of small I/O calls, for comparing a run
 * without the library, with it preloaded, and with NOBOUNCE_MODE=off.
 *
 * Every case is a tight loop of real system calls whose result nothing can
 * shortcut (the kernel must be entered each time), so the difference
 * between two runs is what the interposed entry points add:
 *
 *   read1_zero         read(/dev/zero, 1 byte)             below NB_TRACK_MIN
 *   write1_null        write(/dev/null, 1 byte)            nothing to match
 *   read4k_zero        read(/dev/zero, 4 KiB)              tracked, never written
 *   pread64_tmpfs      pread(small tmpfs file, 64 B, 0)    below NB_TRACK_MIN
 *   bounce64k_zero_null_rw   read(/dev/zero, 64K) + write(/dev/null, 64K):
 *                      a bounce loop, detected; char -> char has no kernel
 *                      path, so the pair is "refused" (counted, never armed)
 *   bounce64k_file_file_rw   pread(tmpfs file, 64K, 0) + pwrite(tmpfs file,
 *                      64K, 0): a bounce loop that arms (copy_file_range
 *                      would serve it) but is still served plainly today
 *   bounce4k_zero_null_rw    read(/dev/zero, 4K) + write(/dev/null, 4K): the
 *                      detector's per-iteration cost, less diluted by the
 *                      kernel's work than at 64K
 *   bounce4k_zero_null_2thr_rw   the same loop in two threads at once, each
 *                      with its own descriptors and buffer: what the
 *                      library's shared state costs when cores contend for
 *                      it (ns per iteration of one thread)
 *
 * Cases ending in _rw report ns per loop iteration (one read + one write,
 * two calls); the others report ns per call.
 *
 * Output, one line per case (lines starting with '#' are comments):
 *   case ns_min ns_median
 * min and median are over the repetitions of the case; repetitions of
 * different cases are interleaved so that slow drifts of a noisy machine
 * hit every case alike.
 *
 * Usage: overhead [-t seconds_per_case] [-r reps] [-n iterations] [-c case]...
 *   -t  total time budget of each case over all repetitions (default 0.3);
 *       the iteration count is calibrated from it
 *   -r  repetitions per case (default 7)
 *   -n  fixed iterations per repetition (overrides -t)
 *   -c  run only the named case (repeatable)
 *   -l  list the cases
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BIG (64 * 1024)

/* Each case has descriptors of its own, so that what the library learns
 * about one case (a pair on a source, say) cannot change the path another
 * case takes through it. */
static int fd_zero1 = -1, fd_zero4k = -1, fd_zero64k = -1;
static int fd_null1 = -1, fd_null64k = -1;
static int fd_small = -1, fd_src = -1, fd_dst = -1;
static int fd_zero4k_a = -1, fd_null4k_a = -1, fd_zero4k_b = -1, fd_null4k_b = -1;

static void die(const char *what)
{
	fprintf(stderr, "overhead: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void short_io(const char *c, ssize_t got, size_t want)
{
	fprintf(stderr, "overhead: %s: got %zd, want %zu (%s)\n", c, got, want,
		got < 0 ? strerror(errno) : "short");
	exit(1);
}

/* Each case runs n iterations; the expected result is checked so the loop
 * cannot silently measure errors. */
static void c_read1_zero(uint64_t n, char *buf)
{
	for (uint64_t i = 0; i < n; i++) {
		ssize_t r = read(fd_zero1, buf, 1);
		if (r != 1)
			short_io("read1_zero", r, 1);
	}
}

static void c_write1_null(uint64_t n, char *buf)
{
	for (uint64_t i = 0; i < n; i++) {
		ssize_t r = write(fd_null1, buf, 1);
		if (r != 1)
			short_io("write1_null", r, 1);
	}
}

static void c_read4k_zero(uint64_t n, char *buf)
{
	for (uint64_t i = 0; i < n; i++) {
		ssize_t r = read(fd_zero4k, buf, 4096);
		if (r != 4096)
			short_io("read4k_zero", r, 4096);
	}
}

static void c_pread64_tmpfs(uint64_t n, char *buf)
{
	for (uint64_t i = 0; i < n; i++) {
		ssize_t r = pread(fd_small, buf, 64, 0);
		if (r != 64)
			short_io("pread64_tmpfs", r, 64);
	}
}

static void c_bounce64k_zero_null(uint64_t n, char *buf)
{
	for (uint64_t i = 0; i < n; i++) {
		ssize_t r = read(fd_zero64k, buf, BIG);
		if (r != BIG)
			short_io("bounce64k_zero_null read", r, BIG);
		ssize_t w = write(fd_null64k, buf, (size_t)r);
		if (w != r)
			short_io("bounce64k_zero_null write", w, (size_t)r);
	}
}

static void c_bounce64k_file_file(uint64_t n, char *buf)
{
	for (uint64_t i = 0; i < n; i++) {
		ssize_t r = pread(fd_src, buf, BIG, 0);
		if (r != BIG)
			short_io("bounce64k_file_file pread", r, BIG);
		ssize_t w = pwrite(fd_dst, buf, (size_t)r, 0);
		if (w != r)
			short_io("bounce64k_file_file pwrite", w, (size_t)r);
	}
}

static void bounce4k(int in, int out, uint64_t n, char *buf)
{
	for (uint64_t i = 0; i < n; i++) {
		ssize_t r = read(in, buf, 4096);
		if (r != 4096)
			short_io("bounce4k read", r, 4096);
		ssize_t w = write(out, buf, (size_t)r);
		if (w != r)
			short_io("bounce4k write", w, (size_t)r);
	}
}

static void c_bounce4k_zero_null(uint64_t n, char *buf)
{
	bounce4k(fd_zero4k_a, fd_null4k_a, n, buf);
}

struct twin {
	uint64_t n;
	char *buf;
	pthread_barrier_t *go;
};

static void *twin_main(void *arg)
{
	struct twin *t = arg;
	pthread_barrier_wait(t->go);
	bounce4k(fd_zero4k_b, fd_null4k_b, t->n, t->buf);
	return NULL;
}

/* Both threads start together; the time is until both are done. */
static void c_bounce4k_zero_null_2thr(uint64_t n, char *buf)
{
	pthread_barrier_t go;
	pthread_barrier_init(&go, NULL, 2);
	struct twin t = { n, buf + BIG / 2, &go };
	pthread_t th;
	if (pthread_create(&th, NULL, twin_main, &t) != 0)
		die("pthread_create");
	pthread_barrier_wait(&go);
	bounce4k(fd_zero4k_a, fd_null4k_a, n, buf);
	pthread_join(th, NULL);
	pthread_barrier_destroy(&go);
}

struct bcase {
	const char *name;
	void (*run)(uint64_t n, char *buf);
	char *buf;       /* its own buffer: no case sees another's records */
	uint64_t iters;  /* per repetition, after calibration */
	double *ns;      /* one result per repetition */
	int selected;
};

static struct bcase cases[] = {
	{ "read1_zero", c_read1_zero, NULL, 0, NULL, 0 },
	{ "write1_null", c_write1_null, NULL, 0, NULL, 0 },
	{ "read4k_zero", c_read4k_zero, NULL, 0, NULL, 0 },
	{ "pread64_tmpfs", c_pread64_tmpfs, NULL, 0, NULL, 0 },
	{ "bounce64k_zero_null_rw", c_bounce64k_zero_null, NULL, 0, NULL, 0 },
	{ "bounce64k_file_file_rw", c_bounce64k_file_file, NULL, 0, NULL, 0 },
	{ "bounce4k_zero_null_rw", c_bounce4k_zero_null, NULL, 0, NULL, 0 },
	{ "bounce4k_zero_null_2thr_rw", c_bounce4k_zero_null_2thr, NULL, 0, NULL, 0 },
};
#define NCASES (sizeof cases / sizeof cases[0])

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static double time_run(struct bcase *c, uint64_t n)
{
	double t0 = now_ns();
	c->run(n, c->buf);
	return now_ns() - t0;
}

/* Iterations per repetition so that reps repetitions take about budget_s.
 * Doubles a probe until it lasts 20 ms, which also warms the case up. */
static uint64_t calibrate(struct bcase *c, double budget_s, int reps)
{
	uint64_t n = 64;
	double t;
	for (;;) {
		t = time_run(c, n);
		if (t >= 20e6 || n >= (1ull << 40))
			break;
		n *= 2;
	}
	double per = t / (double)n;
	double want = budget_s * 1e9 / reps / per;
	return want < 16 ? 16 : (uint64_t)want;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* A small file in tmpfs (or $TMPDIR), unlinked at once: the descriptor
 * is all the benchmark needs. */
static int tmpfile_fd(char *buf, size_t size)
{
	char path[256];
	const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");
	snprintf(path, sizeof path, "%s/nb-overhead.XXXXXX", dir ? dir : "/tmp");
	int fd = mkstemp(path);
	if (fd < 0)
		die(path);
	unlink(path);
	memset(buf, 'x', size);
	if (size > 0 && pwrite(fd, buf, size, 0) != (ssize_t)size)
		die("fill temp file");
	return fd;
}

static int open_or_die(const char *path, int flags)
{
	int fd = open(path, flags);
	if (fd < 0)
		die(path);
	return fd;
}

static void usage(void)
{
	fprintf(stderr, "usage: overhead [-t seconds_per_case] [-r reps] [-n iterations] "
			"[-c case]... [-l]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	double budget = 0.3;
	int reps = 7;
	uint64_t fixed = 0;
	int any_selected = 0, opt;

	while ((opt = getopt(argc, argv, "t:r:n:c:lh")) != -1) {
		switch (opt) {
		case 't': budget = strtod(optarg, NULL); break;
		case 'r': reps = atoi(optarg); break;
		case 'n': fixed = strtoull(optarg, NULL, 10); break;
		case 'c': {
			size_t i;
			for (i = 0; i < NCASES; i++)
				if (strcmp(cases[i].name, optarg) == 0)
					break;
			if (i == NCASES) {
				fprintf(stderr, "overhead: no case '%s' (try -l)\n", optarg);
				return 2;
			}
			cases[i].selected = 1;
			any_selected = 1;
			break;
		}
		case 'l':
			for (size_t i = 0; i < NCASES; i++)
				puts(cases[i].name);
			return 0;
		default: usage();
		}
	}
	if (budget <= 0 || reps < 1 || reps > 1000)
		usage();
	for (size_t i = 0; i < NCASES; i++)
		if (!any_selected)
			cases[i].selected = 1;

	/* Page-aligned, like most real copy buffers; touched once up front
	 * so no case pays the first-touch faults. */
	for (size_t i = 0; i < NCASES; i++) {
		if (posix_memalign((void **)&cases[i].buf, 4096, BIG) != 0)
			die("posix_memalign");
		memset(cases[i].buf, 0, BIG);
	}
	fd_zero1 = open_or_die("/dev/zero", O_RDONLY);
	fd_zero4k = open_or_die("/dev/zero", O_RDONLY);
	fd_zero64k = open_or_die("/dev/zero", O_RDONLY);
	fd_null1 = open_or_die("/dev/null", O_WRONLY);
	fd_null64k = open_or_die("/dev/null", O_WRONLY);
	fd_zero4k_a = open_or_die("/dev/zero", O_RDONLY);
	fd_null4k_a = open_or_die("/dev/null", O_WRONLY);
	fd_zero4k_b = open_or_die("/dev/zero", O_RDONLY);
	fd_null4k_b = open_or_die("/dev/null", O_WRONLY);
	char *fill = malloc(BIG);
	if (fill == NULL)
		die("malloc");
	fd_small = tmpfile_fd(fill, 4096);
	fd_src = tmpfile_fd(fill, BIG);
	fd_dst = tmpfile_fd(fill, BIG);
	free(fill);

	for (size_t i = 0; i < NCASES; i++) {
		struct bcase *c = &cases[i];
		if (!c->selected)
			continue;
		c->ns = calloc((size_t)reps, sizeof *c->ns);
		if (c->ns == NULL)
			die("calloc");
		c->iters = fixed ? fixed : calibrate(c, budget, reps);
	}

	for (int r = 0; r < reps; r++)
		for (size_t i = 0; i < NCASES; i++) {
			struct bcase *c = &cases[i];
			if (c->selected)
				c->ns[r] = time_run(c, c->iters) / (double)c->iters;
		}

	printf("# overhead: reps=%d budget=%.2fs/case; _rw cases are ns per read+write "
	       "iteration, others ns per call\n",
	       reps, budget);
	printf("# iterations per repetition:");
	for (size_t i = 0; i < NCASES; i++)
		if (cases[i].selected)
			printf(" %s=%llu", cases[i].name, (unsigned long long)cases[i].iters);
	printf("\n# case ns_min ns_median\n");
	for (size_t i = 0; i < NCASES; i++) {
		struct bcase *c = &cases[i];
		if (!c->selected)
			continue;
		qsort(c->ns, (size_t)reps, sizeof *c->ns, cmp_double);
		double med = reps % 2 ? c->ns[reps / 2]
				      : (c->ns[reps / 2 - 1] + c->ns[reps / 2]) / 2;
		printf("%s %.1f %.1f\n", c->name, c->ns[0], med);
	}
	return 0;
}
