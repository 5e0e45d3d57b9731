/*
 * neighbours.c - copy loops whose buffers lie next to other guarded
 * pages: the library must tell its own guards (another loop's phantom,
 * which comes and goes) from the guard page under a thread's stack.
 *
 *   neighbours churn-below      in an empty scratch directory
 *   neighbours other-stack
 *
 * churn-below: one private anonymous mapping holds two 64 KiB buffers
 * back to back, A at +64K+256 and B at +128K+256: A's whole pages end
 * right where the page holding B's first bytes begins, so the mapping
 * the kernel shows for B's first byte starts where A's guard ends. A
 * thread copies a.bin (1 MiB) to ad.bin again and again, in reads of 64
 * and 60 KiB by turns (each read of the other size replaces A's guard
 * with one of the other length), until B is done; each pass starts both
 * files over at 0, so ad.bin ends equal to a.bin. The main thread copies
 * b.bin (16 MiB) to bd.bin four times over in the same way, in reads of
 * 64 KiB (1024 iterations), and after each write maps and unmaps a page
 * (any program's other work: the library reads the memory layout again
 * at the next read), probes B ("probe B it N guarded=G" on stderr, from
 * /proc/self/maps) and waits for two more of A's reads. Preloaded and
 * armed, B stays guarded at every probe: A's guard below it is the
 * library's own, whether A's loop is replacing it at that moment or not.
 *
 * other-stack: a thread with a 1 MiB stack keeps a 64 KiB buffer in its
 * frame and lends it to the main thread, which copies b.bin to bd.bin
 * through it (probing it after each write), then gives it back; the
 * thread checks its frame canary and returns. The buffer lies in the
 * mapping right above the thread's stack guard: never guarded.
 *
 * stdout: what each copy moved and whether the destinations match their
 * sources - the same with and without the library.
 */
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common.h"

#define KiB 1024u
#define MiB (1024u * 1024u)
#define CH (64 * KiB)

static void die(const char *what)
{
	perror(what);
	exit(2);
}

/* Raw calls: what the program writes must not depend on the library. */
static void make_file(const char *name, size_t size, unsigned seed)
{
	int fd = (int)syscall(SYS_openat, AT_FDCWD, name, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	static char b[CH];
	uint32_t x = seed * 2654435761u + 1;
	if (fd < 0)
		die(name);
	for (size_t done = 0; done < size;) {
		size_t n = size - done < sizeof b ? size - done : sizeof b;
		for (size_t i = 0; i < n; i++) {
			x = x * 1103515245u + 12345u;
			b[i] = (char)(x >> 16);
		}
		if (syscall(SYS_write, fd, b, n) != (long)n)
			die("write source");
		done += n;
	}
	syscall(SYS_close, fd);
}

static bool same_files(const char *x, const char *y)
{
	int a = (int)syscall(SYS_openat, AT_FDCWD, x, O_RDONLY), b = (int)syscall(SYS_openat, AT_FDCWD, y, O_RDONLY);
	static char p[CH], q[CH];
	bool same = a >= 0 && b >= 0;
	while (same) {
		long m = syscall(SYS_read, a, p, sizeof p), n = syscall(SYS_read, b, q, sizeof q);
		if (m != n || m < 0)
			same = false;
		else if (m == 0)
			break;
		else
			same = memcmp(p, q, (size_t)m) == 0;
	}
	syscall(SYS_close, a);
	syscall(SYS_close, b);
	return same;
}

static void write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w <= 0)
			die("write");
		p += w;
		n -= (size_t)w;
	}
}

static atomic_long a_reads; /* churn-below: reads A's loop has made */
static bool pace;            /* B waits for two of A's reads per iteration */
static int b_passes = 1;     /* times B's loop copies its file */

/* The main thread's loop: b.bin to bd.bin through buf, probing it after
 * every write. Returns the bytes copied. */
static long long copy_b(char *buf)
{
	int src = open("b.bin", O_RDONLY), dst = open("bd.bin", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	long long total = 0;
	int pass = 1;
	if (src < 0 || dst < 0)
		die("open b");
	for (int i = 0;; i++) {
		ssize_t r = read(src, buf, CH);
		if (r < 0)
			die("read b");
		if (r == 0 && pass < b_passes) {
			/* Again from the start, over the same bytes. */
			if (lseek(src, 0, SEEK_SET) != 0 || lseek(dst, 0, SEEK_SET) != 0)
				die("lseek b");
			pass++;
			i--;
			continue;
		}
		if (r == 0)
			break;
		write_all(dst, buf, (size_t)r);
		total += r;
		void *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (m == MAP_FAILED || munmap(m, 4096) != 0)
			die("mmap");
		fprintf(stderr, "probe B it %d guarded=%d\n", i, guarded(buf, (size_t)r));
		/* A's guard is replaced while B's next read looks at the
		 * layout, all along B's loop however the threads are run. */
		for (long seen = atomic_load(&a_reads); pace && atomic_load(&a_reads) < seen + 2;)
			sched_yield();
	}
	close(src);
	close(dst);
	return total;
}

/* ---- churn-below ---- */

static atomic_int b_done;
static atomic_long a_passes;

static void *loop_a(void *arg)
{
	char *buf = arg;
	int src = open("a.bin", O_RDONLY), dst = open("ad.bin", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (src < 0 || dst < 0)
		die("open a");
	for (int i = 0;; i++) {
		ssize_t r = read(src, buf, i % 2 ? CH - 4 * KiB : CH);
		if (r < 0)
			die("read a");
		atomic_fetch_add(&a_reads, 1);
		if (r == 0) {
			atomic_fetch_add(&a_passes, 1);
			if (atomic_load(&b_done))
				break;
			/* The file sent again from its start, over the same bytes. */
			if (lseek(src, 0, SEEK_SET) != 0 || lseek(dst, 0, SEEK_SET) != 0)
				die("lseek a");
			continue;
		}
		write_all(dst, buf, (size_t)r);
	}
	close(src);
	close(dst);
	return NULL;
}

static int sc_churn_below(void)
{
	make_file("a.bin", 1 * MiB, 1);
	make_file("b.bin", 16 * MiB, 2);
	char *m = mmap(NULL, 256 * KiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		die("mmap");
	char *a = m + 64 * KiB + 256, *b = m + 128 * KiB + 256;
	pthread_t th;
	pace = true;
	b_passes = 4;
	if (pthread_create(&th, NULL, loop_a, a) != 0)
		die("pthread_create");
	long long t = copy_b(b);
	atomic_store(&b_done, 1);
	pthread_join(th, NULL);
	fprintf(stderr, "A: %ld passes\n", atomic_load(&a_passes));
	printf("B copied %lld bytes, destination %s\n", t, same_files("b.bin", "bd.bin") ? "matches" : "DIFFERS");
	printf("A's destination %s\n", same_files("a.bin", "ad.bin") ? "matches" : "DIFFERS");
	return 0;
}

/* ---- other-stack ---- */

struct lend {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	char *buf;
	bool back;
};

static void *lender(void *arg)
{
	struct lend *l = arg;
	char frame[CH + 8192];
	memset(frame, 0x5a, sizeof frame);
	pthread_mutex_lock(&l->mu);
	l->buf = frame + 4096;
	pthread_cond_broadcast(&l->cv);
	while (!l->back)
		pthread_cond_wait(&l->cv, &l->mu);
	pthread_mutex_unlock(&l->mu);
	/* The lender's own bytes around the lent buffer are its own still. */
	long kept = 0;
	for (size_t i = 0; i < 4096; i++)
		kept += frame[i] == 0x5a;
	return (void *)kept;
}

static int sc_other_stack(void)
{
	make_file("b.bin", 4 * MiB, 3);
	struct lend l = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, false };
	pthread_attr_t at;
	pthread_t th;
	pthread_attr_init(&at);
	pthread_attr_setstacksize(&at, 1 * MiB);
	if (pthread_create(&th, &at, lender, &l) != 0)
		die("pthread_create");
	pthread_mutex_lock(&l.mu);
	while (l.buf == NULL)
		pthread_cond_wait(&l.cv, &l.mu);
	pthread_mutex_unlock(&l.mu);
	long long t = copy_b(l.buf);
	pthread_mutex_lock(&l.mu);
	l.back = true;
	pthread_cond_broadcast(&l.cv);
	pthread_mutex_unlock(&l.mu);
	void *kept;
	pthread_join(th, &kept);
	printf("copied %lld bytes through another thread's stack, destination %s\n", t,
	       same_files("b.bin", "bd.bin") ? "matches" : "DIFFERS");
	printf("the lender's frame kept %ld of 4096 bytes\n", (long)kept);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: neighbours churn-below|other-stack\n");
		return 2;
	}
	if (!strcmp(argv[1], "churn-below"))
		return sc_churn_below();
	if (!strcmp(argv[1], "other-stack"))
		return sc_other_stack();
	fprintf(stderr, "neighbours: unknown scenario '%s'\n", argv[1]);
	return 2;
}
