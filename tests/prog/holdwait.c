/*
 * holdwait.c - a read whose copy into the buffer waits for another thread
 * of the program, and that thread closes the source number first.
 *
 *   holdwait uffd|uffd-reopen [TURN]     in an empty scratch directory
 *   holdwait late-syscall|late-dev|late-fork|late-exec
 *
 * The buffer lives in memory the program serves itself (userfaultfd(2),
 * missing-page mode): when the kernel copies into a page that is not
 * there, the copying thread sleeps until the program's fault thread
 * supplies the page (UFFDIO_ZEROPAGE). The main thread copies f.bin
 * (16 MiB) to out.bin in reads of 256 KiB into one buffer that starts 512
 * bytes into its first page. Once the reads run steadily (40 turns), the
 * program drops the buffer's first page (MADV_DONTNEED, as an allocator
 * returning memory does) and asks its fault thread to close the source
 * number when it next serves a fault, before it serves it. Plainly, the
 * read already holds its file: close(2) returns at once, the page is
 * served and the read returns its 256 KiB, the bytes of the file. The
 * library must not make the close wait for the read that waits for the
 * closer.
 *
 *   uffd-reopen  the fault thread also opens g.bin (16 MiB of 0xee) right
 *                after the close: it gets the number. Plainly the read
 *                still returns f.bin's bytes and the next read g.bin's.
 *   TURN         the first page is dropped before every read and the trap
 *                is the read numbered TURN (0: the first) instead of the
 *                one after 40 turns: with library defaults the first read
 *                the library defers is number 2.
 *
 * late-*: the program makes its userfaultfd only after LATE_TURNS reads
 * into the (then ordinary) buffer, registers it and goes on: 40 more
 * reads with the first page dropped before each, then the trap read with
 * the close and reopen (as uffd-reopen). After each read the buffer is
 * looked at for a guarded (PROT_NONE) part - plainly never; preloaded,
 * before the userfaultfd, the library's phantom - and the counts go to
 * stderr ("before: guarded reads=N", "after: guarded reads=N"):
 *   late-syscall  made with syscall(SYS_userfaultfd), then UFFDIO_API
 *   late-dev      made with open(/dev/userfaultfd) + USERFAULTFD_IOC_NEW
 *   late-fork     (as late-syscall) the 40 reads are made by a child
 *                 forked after the registration ("child: guarded
 *                 reads=N"), the trap read by the parent after it
 *   late-exec     (as late-syscall) and a child forked then, which execs
 *                 this program again ("loop": copies f.bin to loop.bin
 *                 and prints "exec: guarded reads=N" - a new process,
 *                 which no userfaultfd serves)
 * stderr also has "pid=N" (the process whose report counts).
 *
 * stdout: the trap read's return value and errno, whether its bytes are
 * the file's, whether the close took more than 500 ms, and the next
 * read's result (EBADF: the number is closed). Exit status 0.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
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

#define FSZ (16ul << 20)
#define CH (256u << 10)
#define PG 4096ul

static int uffd, src;
static int reopen; /* the fault thread opens g.bin on the number it closed */
static int trap_turn = 40; /* the read the fault thread closes the number in */
static int every;          /* the first page is dropped before every read */
static volatile int trap, stop;
static volatile long close_ms = -1;
static volatile int close_rc = 1;

#define LATE_TURNS 20

static void die(const char *what)
{
	perror(what);
	exit(2);
}

static long ms_now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000L + t.tv_nsec / 1000000L;
}

/* The program's fault thread: serves every missing page with zeros; on
 * the trap's fault it closes the source number first. */
static void *faults(void *arg)
{
	(void)arg;
	while (!stop) {
		struct pollfd p = { .fd = uffd, .events = POLLIN };
		if (poll(&p, 1, 100) <= 0)
			continue;
		struct uffd_msg m;
		if (read(uffd, &m, sizeof m) != sizeof m)
			continue;
		if (m.event != UFFD_EVENT_PAGEFAULT)
			continue;
		if (trap) {
			trap = 0;
			long t0 = ms_now();
			close_rc = close(src);
			close_ms = ms_now() - t0;
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

/* A userfaultfd for this process, set up (UFFDIO_API), the region
 * registered for missing pages. */
static void setup_uffd(char *region, size_t len, int dev)
{
	if (dev) {
		int d = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
		if (d < 0)
			die("/dev/userfaultfd");
		uffd = ioctl(d, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
		close(d);
	} else {
		uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	}
	if (uffd < 0)
		die("userfaultfd");
	struct uffdio_api api = { .api = UFFD_API };
	if (ioctl(uffd, UFFDIO_API, &api) != 0)
		die("UFFDIO_API");
	struct uffdio_register reg = {
		.range = { .start = (uintptr_t)region, .len = len },
		.mode = UFFDIO_REGISTER_MODE_MISSING,
	};
	if (ioctl(uffd, UFFDIO_REGISTER, &reg) != 0)
		die("UFFDIO_REGISTER");
}

/* turns reads of CH from src into buf, each written to out; the first
 * page of region dropped before each if drop. Returns how many of the
 * reads left a guarded part in the buffer's whole pages. */
static int copy_turns(int turns, int out, char *region, char *buf, int drop)
{
	int g = 0;
	for (int turn = 0; turn < turns; turn++) {
		if (drop && madvise(region, PG, MADV_DONTNEED) != 0)
			die("madvise");
		ssize_t r = read(src, buf, CH);
		if (r != CH) {
			fprintf(stderr, "turn %d: read %zd\n", turn, r);
			die("read");
		}
		if (guarded(region + PG, CH - PG) == 1)
			g++;
		if (write(out, buf, CH) != CH)
			die("write out");
	}
	return g;
}

/* late-exec's child: a fresh copy loop in a new process. */
static int loop(void)
{
	src = open("f.bin", O_RDONLY);
	int out = open("loop.bin", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	char *region = mmap(NULL, CH + 2 * PG, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (src < 0 || out < 0 || region == MAP_FAILED)
		die("loop");
	int seen = copy_turns((int)(FSZ / CH), out, region, region + 512, 0);
	fprintf(stderr, "exec: guarded reads=%d\n", seen);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "loop") == 0)
		return loop();
	const char *late = argc == 2 && strncmp(argv[1], "late-", 5) == 0 ? argv[1] + 5 : NULL;
	if (late != NULL) {
		if (strcmp(late, "syscall") != 0 && strcmp(late, "dev") != 0 &&
		    strcmp(late, "fork") != 0 && strcmp(late, "exec") != 0)
			late = NULL;
		else
			argv[1] = "uffd-reopen";
	}
	if (argc < 2 || (strcmp(argv[1], "uffd") != 0 && strcmp(argv[1], "uffd-reopen") != 0)) {
		fprintf(stderr, "usage: holdwait uffd|uffd-reopen [TURN]\n"
				"       holdwait late-syscall|late-dev|late-fork|late-exec\n");
		return 2;
	}
	reopen = strcmp(argv[1], "uffd-reopen") == 0;
	if (argc > 2) {
		trap_turn = atoi(argv[2]);
		every = 1;
	}
	int g = open("g.bin", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	char *gb = malloc(FSZ);
	if (g < 0 || gb == NULL)
		die("make g");
	memset(gb, 0xee, FSZ);
	if (write(g, gb, FSZ) != (ssize_t)FSZ)
		die("write g");
	close(g);
	free(gb);
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
	src = open("f.bin", O_RDONLY);
	int out = open("out.bin", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (src < 0 || out < 0)
		die("open");

	size_t len = CH + 2 * PG;
	char *region = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (region == MAP_FAILED)
		die("mmap");
	fprintf(stderr, "pid=%d\n", (int)getpid());
	char *buf = region + 512;
	uint64_t off = 0;
	if (late != NULL) {
		int seen = copy_turns(LATE_TURNS, out, region, buf, 0);
		fprintf(stderr, "before: guarded reads=%d\n", seen);
		off += (uint64_t)LATE_TURNS * CH;
		trap_turn = 40;
		every = 1;
	}
	setup_uffd(region, len, late != NULL && strcmp(late, "dev") == 0);
	pthread_t t;
	pthread_create(&t, NULL, faults, NULL);

	if (late != NULL && strcmp(late, "exec") == 0) {
		/* A child of a process with a userfaultfd, which execs. */
		pid_t c = fork();
		if (c < 0)
			die("fork");
		if (c == 0) {
			execl("/proc/self/exe", "holdwait", "loop", (char *)NULL);
			_exit(127);
		}
		int st;
		if (waitpid(c, &st, 0) != c || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
			die("loop child");
	}
	if (late != NULL && strcmp(late, "fork") == 0) {
		/* The reads in a child forked after the registration: its
		 * pages are not registered (no UFFD_FEATURE_EVENT_FORK), the
		 * program's memory is the parent's copy. */
		fflush(stderr);
		pid_t c = fork();
		if (c < 0)
			die("fork");
		if (c == 0) {
			int seen = copy_turns(trap_turn, out, region, buf, every);
			fprintf(stderr, "child: guarded reads=%d\n", seen);
			fflush(stderr);
			_exit(0);
		}
		int st;
		if (waitpid(c, &st, 0) != c || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
			die("fork child");
	} else {
		int seen = copy_turns(trap_turn, out, region, buf, every);
		if (late != NULL)
			fprintf(stderr, "after: guarded reads=%d\n", seen);
	}
	off += (uint64_t)trap_turn * CH;
	/* The first page goes back; the fault thread closes the number on
	 * the next fault: in the next read's copy. */
	if (madvise(region, PG, MADV_DONTNEED) != 0)
		die("madvise");
	trap = 1;
	errno = 0;
	ssize_t r = read(src, buf, CH);
	int e = errno;
	int same = 1;
	if (r == CH) {
		for (size_t i = 0; i + 8 <= CH; i += 8) {
			uint64_t v;
			memcpy(&v, buf + i, 8);
			if (v != off + i) {
				same = 0;
				break;
			}
		}
	}
	printf("trap read: %zd errno=%s bytes=%s\n", r, r < 0 ? strerrorname_np(e) : "-",
	       r == CH ? (same ? "file" : "WRONG") : "-");
	printf("close: rc=%d slow=%d\n", close_rc, close_ms > 500);
	errno = 0;
	r = read(src, buf, CH);
	uint64_t first = 0;
	if (r >= 8)
		memcpy(&first, buf, 8);
	printf("next read: %zd errno=%s first=%016llx\n", r, r < 0 ? strerrorname_np(errno) : "-",
	       (unsigned long long)first);
	stop = 1;
	pthread_join(t, NULL);
	fprintf(stderr, "close took %ld ms\n", close_ms);
	return 0;
}
