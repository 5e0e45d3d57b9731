/*
 * syscost.c - the unit cost, on this machine, of each system call the
 * library's served copy loop makes on top of the hand-written kernel loop
 * (scripts/bench-syscalls.sh puts these next to the per-iteration counts).
 *
 * Every case is a tight loop of the call with the arguments the library
 * uses (shim/defer.c, shim/sigguard.c, shim/backing.c), made with
 * syscall(2) so that libc adds nothing and no preloaded library could
 * interpose; run it without LD_PRELOAD:
 *
 *   get_mempolicy        get_mempolicy(&node, NULL, 0, page, MPOL_F_NODE |
 *                        MPOL_F_ADDR) on a PROT_NONE page: fails with EFAULT
 *                        (shim/defer.c page_unreadable: "are the pages still
 *                        guarded")
 *   sigprocmask_pair     rt_sigprocmask(SIG_BLOCK, all but the synchronous
 *                        signals, &old) + rt_sigprocmask(SIG_SETMASK, &old):
 *                        the critical section of shim/sigguard.c (ns per
 *                        pair, two calls)
 *   fstat                fstat of a descriptor of a tmpfs file
 *                        (shim/backing.c nb_backing_intact)
 *   lseek_cur            lseek(fd, +-CHUNK, SEEK_CUR) on a tmpfs file (the
 *                        served read moves the position without reading)
 *   pread4080_warm       pread 4080 bytes at page offset 16 of one page,
 *   pread16_warm         and 16 bytes at page offset 4080, again and again:
 *                        the page and the buffer stay in the CPU caches
 *   pread4080_cold       the same, each call from the next page of a
 *   pread16_cold         SRC_SIZE file (default 1 GiB, striding page by
 *                        page, wrapping at the end): a page not read
 *                        recently, as the partial head and tail pages of a
 *                        phantom buffer are when the loop streams through
 *                        a large file
 *   pread4080_1m         4080 bytes at page offset 16, one page per MiB
 *                        of the file: the head page of every chunk of a
 *                        1 MiB loop
 *
 * tmpfs keeps every page resident: "cold" is the CPU caches and the TLB,
 * never the disk.
 *
 * Output, one line per case (lines starting with '#' are comments):
 *   syscost case=NAME calls_per_op=N ns_per_op_median=X ns_per_op_min=X
 *           ns_per_call_median=X reps=R ops=N
 * Repetitions of the cases are interleaved (case order rotates per round)
 * so that drift of a noisy machine hits every case alike.
 *
 * Usage: syscost -f SRC [-r reps] [-n ops] [-c case]... [-l]
 *   -f  a regular file of at least 1 MiB (on tmpfs for the numbers to
 *       mean what they say); the cold cases stride through all of it
 *   -r  repetitions per case (default 7)
 *   -n  operations per repetition (default 100000; the cold walk goes on
 *       from repetition to repetition and wraps at the end of the file, so
 *       a page comes round again only after SRC_SIZE / 4096 calls)
 *   -c  run only the named case (repeatable)
 *   -A  CPU to pin to (default: not pinned)
 *   -l  list the cases
 * Exit status 0, 1 on a failed call, 2 on bad usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096
#define KSIGSET_SIZE 8 /* the kernel's sigset_t, as shim/sigguard.c passes */

static int fd = -1;
static off_t file_pages;
static char *guarded;            /* one PROT_NONE page */
static char *buf;                /* the "program's buffer" preads go into */
static uint64_t sigmask_all;     /* what sigguard.c blocks */
static off_t cold_page;          /* next page of the cold walk */

static void fail(const char *what)
{
	fprintf(stderr, "syscost: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void op_get_mempolicy(void)
{
	int node;
	if (syscall(SYS_get_mempolicy, &node, NULL, 0UL, guarded, 3UL) != -1 || errno != EFAULT)
		fail("get_mempolicy on a PROT_NONE page did not fail with EFAULT");
}

static void op_sigprocmask_pair(void)
{
	uint64_t old;
	if (syscall(SYS_rt_sigprocmask, SIG_BLOCK, &sigmask_all, &old, KSIGSET_SIZE) != 0 ||
	    syscall(SYS_rt_sigprocmask, SIG_SETMASK, &old, NULL, KSIGSET_SIZE) != 0)
		fail("rt_sigprocmask");
}

static void op_fstat(void)
{
	struct stat st;
	if (syscall(SYS_fstat, fd, &st) != 0)
		fail("fstat");
}

static void op_lseek_cur(void)
{
	static long dir = 65536;
	if (syscall(SYS_lseek, fd, dir, SEEK_CUR) < 0)
		fail("lseek");
	dir = -dir;
}

static void do_pread(size_t n, off_t off)
{
	if (syscall(SYS_pread64, fd, buf, n, off) != (long)n)
		fail("pread");
}

static void op_pread4080_warm(void) { do_pread(4080, 16); }
static void op_pread16_warm(void) { do_pread(16, 4080); }

static off_t next_cold(void)
{
	off_t p = cold_page;
	if (++cold_page >= file_pages)
		cold_page = 0;
	return p * PAGE;
}

static void op_pread4080_cold(void) { do_pread(4080, next_cold() + 16); }
static void op_pread16_cold(void) { do_pread(16, next_cold() + 4080); }

/* One page per MiB: the head page of each chunk of a loop reading 1 MiB
 * at a time, which neither the hardware prefetcher nor the TLB has seen
 * coming (the page walk above moves one page at a time). */
static off_t stride_page;
static off_t next_stride(void)
{
	off_t p = stride_page;
	stride_page += 256;
	if (stride_page >= file_pages)
		stride_page = (stride_page + 1) % 256;
	return p * PAGE;
}

static void op_pread4080_1m(void) { do_pread(4080, next_stride() + 16); }

static const struct {
	const char *name;
	void (*op)(void);
	int calls;
} cases[] = {
	{ "get_mempolicy", op_get_mempolicy, 1 },
	{ "sigprocmask_pair", op_sigprocmask_pair, 2 },
	{ "fstat", op_fstat, 1 },
	{ "lseek_cur", op_lseek_cur, 1 },
	{ "pread4080_warm", op_pread4080_warm, 1 },
	{ "pread16_warm", op_pread16_warm, 1 },
	{ "pread4080_cold", op_pread4080_cold, 1 },
	{ "pread16_cold", op_pread16_cold, 1 },
	{ "pread4080_1m", op_pread4080_1m, 1 },
};
#define NCASES (int)(sizeof cases / sizeof cases[0])

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void usage(const char *why)
{
	fprintf(stderr, "syscost: %s\nusage: syscost -f SRC [-r reps] [-n ops] [-c case]... [-A cpu] [-l]\n",
		why);
	exit(2);
}

int main(int argc, char **argv)
{
	const char *src = NULL;
	long reps = 7, ops = 100000, cpu = -1;
	bool want[NCASES], any = false;
	memset(want, 0, sizeof want);
	int o;
	while ((o = getopt(argc, argv, "f:r:n:c:A:l")) != -1) {
		char *end;
		switch (o) {
		case 'f': src = optarg; break;
		case 'r':
			reps = strtol(optarg, &end, 10);
			if (*end || reps < 1 || reps > 1000)
				usage("bad -r (1..1000)");
			break;
		case 'n':
			ops = strtol(optarg, &end, 10);
			if (*end || ops < 1 || ops > 100000000)
				usage("bad -n (1..100000000)");
			break;
		case 'A':
			cpu = strtol(optarg, &end, 10);
			if (*end || cpu < 0 || cpu >= CPU_SETSIZE)
				usage("bad -A");
			break;
		case 'c': {
			int i;
			for (i = 0; i < NCASES; i++)
				if (strcmp(optarg, cases[i].name) == 0)
					break;
			if (i == NCASES)
				usage("unknown case (try -l)");
			want[i] = any = true;
			break;
		}
		case 'l':
			for (int i = 0; i < NCASES; i++)
				puts(cases[i].name);
			return 0;
		default: usage("bad option");
		}
	}
	if (src == NULL || optind != argc)
		usage("need -f SRC and no operands");
	if (!any)
		for (int i = 0; i < NCASES; i++)
			want[i] = true;
	if (cpu >= 0) {
		cpu_set_t set;
		CPU_ZERO(&set);
		CPU_SET((int)cpu, &set);
		if (sched_setaffinity(0, sizeof set, &set) != 0)
			fail("sched_setaffinity");
	}

	struct stat st;
	fd = open(src, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) != 0)
		fail(src);
	if (!S_ISREG(st.st_mode) || st.st_size < (1 << 20))
		usage("-f needs a regular file of at least 1 MiB");
	file_pages = st.st_size / PAGE;
	guarded = mmap(NULL, PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (guarded == MAP_FAILED)
		fail("mmap");
	/* A malloc'd buffer of a copy loop, touched: its page stays warm, as
	 * the program's buffer does. */
	if (posix_memalign((void **)&buf, PAGE, 2 * PAGE) != 0)
		fail("posix_memalign");
	memset(buf, 1, 2 * PAGE);
	/* sigguard.c blocks every signal but the synchronous ones. */
	sigmask_all = ~0ull;
	for (int s = 0; s < 64; s++) {
		int sig = s + 1;
		if (sig == SIGILL || sig == SIGTRAP || sig == SIGBUS || sig == SIGFPE ||
		    sig == SIGSEGV || sig == SIGSYS)
			sigmask_all &= ~(1ull << s);
	}

	printf("# syscost: %ld reps x %ld ops per case, file %s (%lld pages)%s\n", reps, ops, src,
	       (long long)file_pages, cpu >= 0 ? ", pinned" : "");
	double *ns = calloc((size_t)(NCASES * reps), sizeof *ns);
	if (ns == NULL)
		fail("calloc");
	/* One untimed pass of every case first (page tables, caches). */
	for (int i = 0; i < NCASES; i++)
		if (want[i])
			for (long k = 0; k < 1000; k++)
				cases[i].op();
	for (long r = 0; r < reps; r++)
		for (int j = 0; j < NCASES; j++) {
			int i = (int)((j + r) % NCASES);
			if (!want[i])
				continue;
			double t0 = now_ns();
			for (long k = 0; k < ops; k++)
				cases[i].op();
			ns[i * reps + r] = (now_ns() - t0) / (double)ops;
		}
	for (int i = 0; i < NCASES; i++) {
		if (!want[i])
			continue;
		double *v = ns + i * reps;
		qsort(v, (size_t)reps, sizeof *v, cmp_double);
		double med = reps % 2 ? v[reps / 2] : (v[reps / 2 - 1] + v[reps / 2]) / 2;
		printf("syscost case=%s calls_per_op=%d ns_per_op_median=%.1f ns_per_op_min=%.1f "
		       "ns_per_call_median=%.1f reps=%ld ops=%ld\n",
		       cases[i].name, cases[i].calls, med, v[0], med / cases[i].calls, reps, ops);
	}
	return 0;
}
