/*
 * common.h - pieces the test programs share. One copy of each: a program
 * that needs one of these uses it rather than a copy of its own. Helpers
 * that can fail return -1 with errno and leave the reporting to the
 * program (its own die()), except the setup helpers that say so.
 */
#ifndef NB_TEST_COMMON_H
#define NB_TEST_COMMON_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* A system call made with the instruction itself, not through libc: no
 * preloaded library can see it (x86_64; the library is LP64). Returns
 * -1 with errno, as libc's syscall() does. */
static inline long asm_syscall6(long nr, long a1, long a2, long a3, long a4, long a5, long a6)
{
	long r;
	register long r10 __asm__("r10") = a4;
	register long r8 __asm__("r8") = a5;
	register long r9 __asm__("r9") = a6;
	__asm__ volatile("syscall"
			 : "=a"(r)
			 : "a"(nr), "D"(a1), "S"(a2), "d"(a3), "r"(r10), "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
	if (r < 0 && r > -4096) {
		errno = (int)-r;
		return -1;
	}
	return r;
}

static inline long asm_syscall4(long nr, long a1, long a2, long a3, long a4)
{
	return asm_syscall6(nr, a1, a2, a3, a4, 0, 0);
}

/* Is any part of [p, p+n) a PROT_NONE mapping (a guarded buffer, when
 * preloaded)? Read from /proc/self/maps with raw system calls, which no
 * preloaded library turns into anything else; -1 if it cannot be read.
 * The probes the tests print ("probe ... guarded=1") come from here. */
static inline int guarded(const void *p, size_t n)
{
	uintptr_t a = (uintptr_t)p, b = a + n;
	int fd = (int)syscall(SYS_openat, AT_FDCWD, "/proc/self/maps", O_RDONLY | O_CLOEXEC);
	static char m[1 << 20];
	size_t have = 0;
	ssize_t r;
	if (fd < 0)
		return -1;
	while ((r = syscall(SYS_read, fd, m + have, sizeof m - 1 - have)) > 0)
		have += (size_t)r;
	syscall(SYS_close, fd);
	m[have] = '\0';
	int g = 0;
	for (char *line = m; line && *line;) {
		char *nl = strchr(line, '\n');
		unsigned long lo, hi;
		char perms[8];
		if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) == 3 && lo < b && a < hi &&
		    strncmp(perms, "---", 3) == 0)
			g = 1;
		line = nl ? nl + 1 : NULL;
	}
	return g;
}

/*
 * "Another process": a child forked before anything is read, which runs
 * commands on the program's behalf. A fork made later would not do: the
 * library fills every buffer a read lease protects before a fork (the
 * child has no part in the lease), so no lease would ever be broken by
 * such a child. serve() gets each command (a NUL-terminated line) and
 * runs in the child; its stdout is flushed before the answer.
 */
struct other {
	int cmd, ack;
};

static inline void other_start(struct other *o, void (*serve)(const char *cmd))
{
	int c[2], a[2];
	if (pipe(c) != 0 || pipe(a) != 0) {
		perror("other: pipe");
		_exit(2);
	}
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0) {
		perror("other: fork");
		_exit(2);
	}
	if (pid == 0) {
		close(c[1]);
		close(a[0]);
		char line[512];
		for (;;) {
			size_t n = 0;
			char ch;
			ssize_t k;
			while ((k = read(c[0], &ch, 1)) == 1 && ch != '\n' && n < sizeof line - 1)
				line[n++] = ch;
			if (k != 1)
				_exit(0); /* the program is done */
			line[n] = '\0';
			serve(line);
			fflush(stdout);
			if (write(a[1], "k", 1) != 1)
				_exit(3);
		}
	}
	close(c[0]);
	close(a[1]);
	o->cmd = c[1];
	o->ack = a[0];
}

/* Sends a command; other_wait() waits until it has run. */
static inline void other_post(struct other *o, const char *cmd)
{
	size_t n = strlen(cmd);
	if (write(o->cmd, cmd, n) != (ssize_t)n || write(o->cmd, "\n", 1) != 1) {
		perror("other: post");
		_exit(2);
	}
}

static inline void other_wait(struct other *o)
{
	char k;
	ssize_t r;
	while ((r = read(o->ack, &k, 1)) < 0 && errno == EINTR)
		;
	if (r != 1) {
		fprintf(stderr, "other: the other process failed\n");
		_exit(2);
	}
}

static inline void other_run(struct other *o, const char *cmd)
{
	other_post(o, cmd);
	other_wait(o);
}

/* ---- what the programs print about bytes ---- */

/* FNV-1a (64 bit) over n bytes, continued from h: the "sum"/"hash" the
 * programs print. Start one with FNV1A_INIT (FNV's offset basis) or, for
 * the sums the hazard programs print, with SUM_INIT: those have always
 * started from this value (the basis short of its last digit), and a
 * printed sum must not change. */
#define FNV1A_INIT 0xcbf29ce484222325ull
#define SUM_INIT 1469598103934665603ull

static inline uint64_t fnv1a(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	return h;
}

static inline uint64_t sum_bytes(const void *p, size_t n)
{
	return fnv1a(SUM_INIT, p, n);
}

/* How many of n bytes are not zero. */
static inline size_t nonzero(const void *p, size_t n)
{
	const unsigned char *c = p;
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		k += c[i] != 0;
	return k;
}

/* Size and sum (SUM_INIT) of a file, read with raw system calls (nothing
 * preloaded sees them). -1 with errno if it cannot be opened. */
static inline int raw_file_hash(const char *path, long long *bytes, uint64_t *hash)
{
	int fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_RDONLY);
	if (fd < 0)
		return -1;
	static unsigned char b[1 << 16];
	uint64_t h = SUM_INIT;
	long long n = 0;
	long r;
	while ((r = syscall(SYS_read, fd, b, sizeof b)) > 0) {
		h = fnv1a(h, b, (size_t)r);
		n += r;
	}
	syscall(SYS_close, fd);
	*bytes = n;
	*hash = h;
	return 0;
}

/* The symbolic name of an errno value ("EPIPE"), "E?" if it has none. */
static inline const char *errno_name(int e)
{
	const char *s = strerrorname_np(e);
	return s ? s : "E?";
}

/* Short names of the errors a send on a lost connection reports; any
 * other is printed as strerror() says it. */
static inline const char *ename(int e)
{
	switch (e) {
	case 0: return "0";
	case EPIPE: return "EPIPE";
	case ECONNRESET: return "ECONNRESET";
	case EAGAIN: return "EAGAIN";
	default: return strerror(e);
	}
}

/* ---- calls the scenarios make ---- */

/* In a signal handler: copies `from` to `to`, both from their start, in
 * 8 read()/write() of 64 KiB through buf - the handler's own copy loop,
 * made while the interrupted one is inside a call. It stops before the
 * end of a longer file: its last read is left deferred when preloaded.
 * Only async-signal-safe calls. */
static inline void handler_copy_loop(int from, int to, char *buf)
{
	lseek(from, 0, SEEK_SET);
	lseek(to, 0, SEEK_SET);
	for (int k = 0; k < 8; k++) {
		ssize_t r = read(from, buf, 65536);
		if (r <= 0 || write(to, buf, (size_t)r) != r)
			break;
	}
}

/* How many of this process's descriptors (/proc/self/fd: the main
 * thread's table) name something `match` accepts, given what readlink
 * says of it; -1 if the directory cannot be read. */
static inline int count_fds_naming(int (*match)(const char *target))
{
	DIR *d = opendir("/proc/self/fd");
	if (d == NULL)
		return -1;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		char path[300], t[4096];
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
		ssize_t k = readlink(path, t, sizeof t - 1);
		if (k <= 0)
			continue;
		t[k] = '\0';
		n += match(t) != 0;
	}
	closedir(d);
	return n;
}

/* ---- files with known contents ---- */

/*
 * Setup helpers that cannot go on when a call fails say which (perror)
 * and exit with status 2, as the programs' own die() does.
 */
static inline void setup_died(const char *what)
{
	perror(what);
	exit(2);
}

/* All of p to fd; a write interrupted by a signal is made again. 0, or
 * -1 with errno (0 if a write wrote nothing). */
static inline int write_fully(int fd, const void *p, size_t n)
{
	const char *c = p;
	while (n > 0) {
		ssize_t w = write(fd, c, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			if (w == 0)
				errno = 0;
			return -1;
		}
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

static inline void write_all_or_die(int fd, const void *p, size_t n)
{
	if (write_fully(fd, p, n) != 0)
		setup_died("write");
}

/* splitmix64: the pattern word number x of a source (no two alike). */
static inline uint64_t splitmix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* xorshift32 from a seed: byte i of a seeded file is the low byte of the
 * (i+1)-th step, or-ed with `set` (1 keeps zero bytes out: a zero then
 * shows a page that was never filled). */
static inline uint32_t xs32_start(unsigned seed)
{
	return 2654435761u * (seed + 1);
}

static inline uint32_t xs32_next(uint32_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 17;
	*x ^= *x << 5;
	return *x;
}

static inline void xs32_file(const char *path, unsigned seed, size_t len, unsigned char set)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		setup_died("create");
	static char b[65536];
	uint32_t x = xs32_start(seed);
	for (size_t done = 0; done < len;) {
		size_t n = len - done < sizeof b ? len - done : sizeof b;
		for (size_t i = 0; i < n; i++)
			b[i] = (char)(xs32_next(&x) | set);
		if (write(fd, b, n) != (ssize_t)n)
			setup_died("write src");
		done += n;
	}
	close(fd);
}

/* A file of `size` bytes, byte i being (i * 131 + i / 4099) & 0xff: no
 * short period, so a byte from the wrong place shows. 0, or -1 with
 * errno. */
static inline int slow_pattern_file(const char *path, size_t size)
{
	unsigned char *b = malloc(size);
	if (b == NULL)
		return -1;
	for (size_t i = 0; i < size; i++)
		b[i] = (unsigned char)((i * 131u + i / 4099u) & 0xff);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	int ok = fd >= 0 && write(fd, b, size) == (ssize_t)size && close(fd) == 0;
	free(b);
	return ok ? 0 : -1;
}

/* A file of `size` bytes (a multiple of 64 KiB) in 64 KiB blocks, byte j
 * of block i being (i * 131 + j * 7) & 0xff. 0, or -1 with errno. */
static inline int block_pattern_file(const char *path, size_t size)
{
	static unsigned char b[1 << 16];
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return -1;
	for (unsigned i = 0; i < size / sizeof b; i++) {
		for (unsigned j = 0; j < sizeof b; j++)
			b[j] = (unsigned char)(i * 131 + j * 7);
		if (write(fd, b, sizeof b) != (ssize_t)sizeof b) {
			close(fd);
			return -1;
		}
	}
	close(fd);
	return 0;
}

/* A file of `size` bytes from the LCG x = x * 1103515245 + 12345 started
 * at seed (byte: bits 16-23), written with raw system calls (nothing
 * preloaded sees them). 0, or -1 with errno. */
static inline int lcg_file(const char *path, size_t size, unsigned seed)
{
	int fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return -1;
	static unsigned char b[1 << 16];
	unsigned x = seed;
	for (size_t done = 0; done < size;) {
		size_t k = size - done < sizeof b ? size - done : sizeof b;
		for (size_t i = 0; i < k; i++) {
			x = x * 1103515245u + 12345u;
			b[i] = (unsigned char)(x >> 16);
		}
		if (syscall(SYS_write, fd, b, k) != (long)k) {
			syscall(SYS_close, fd);
			return -1;
		}
		done += k;
	}
	syscall(SYS_close, fd);
	return 0;
}

/* What a whole file holds: its size, sum (sum_bytes), and how many of its
 * bytes are zero and 'X' (the byte the hazard programs overwrite with). */
struct file_counts {
	size_t bytes, zeros, xs;
	uint64_t sum;
};

static inline int count_file(const char *path, struct file_counts *c)
{
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return -1;
	struct stat st;
	unsigned char *m = NULL;
	if (fstat(fd, &st) != 0 || (m = malloc((size_t)st.st_size + 1)) == NULL) {
		close(fd);
		return -1;
	}
	size_t have = 0;
	ssize_t r;
	while ((r = read(fd, m + have, (size_t)st.st_size - have)) > 0)
		have += (size_t)r;
	close(fd);
	memset(c, 0, sizeof *c);
	for (size_t i = 0; i < have; i++) {
		c->zeros += m[i] == 0;
		c->xs += m[i] == 'X';
	}
	c->bytes = have;
	c->sum = sum_bytes(m, have);
	free(m);
	return 0;
}

/*
 * Files of words that name themselves: every 8-byte word of file `id`
 * (1 or 2) is id << 56 | its offset. A copy that took bytes from the
 * wrong file, the wrong place or twice shows in the words it holds.
 * id_file() writes one of `size` bytes and returns it opened to read.
 */
#define ID_OFF_MASK ((1ull << 56) - 1)

static inline int id_file(const char *path, uint64_t id, uint64_t size)
{
	int f = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	uint64_t *w = malloc(1u << 20);
	if (f < 0 || w == NULL)
		setup_died("make");
	for (uint64_t o = 0; o < size; o += 1u << 20) {
		for (size_t i = 0; i < (1u << 17); i++)
			w[i] = id << 56 | (o + i * 8);
		if (write(f, w, 1u << 20) != 1 << 20)
			setup_died("write");
	}
	free(w);
	close(f);
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		setup_died("open");
	return fd;
}

/* Checks a stream of such words: each file's words must come in order
 * (or start again at offset 0); counts the wrong ones and names the
 * first three on stderr. */
struct id_check {
	uint64_t next[3];
	unsigned long bad;
};

static inline void id_check_words(struct id_check *c, const uint64_t *w, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned id = (unsigned)(w[i] >> 56);
		uint64_t off = w[i] & ID_OFF_MASK;
		if (id < 1 || id > 2 || (off != c->next[id] && off != 0)) {
			if (c->bad++ < 3)
				fprintf(stderr, "bad word: id %u offset %llu\n", id,
					(unsigned long long)off);
			if (id < 1 || id > 2)
				continue;
		}
		c->next[id] = off + 8;
	}
}

/* Every thread of this process but the caller to SCHED_IDLE (a program
 * that lowers its helper threads, the library's among them): 0, or -1
 * with errno. */
static inline int others_idle(void)
{
	DIR *d = opendir("/proc/self/task");
	if (d == NULL)
		return -1;
	pid_t me = (pid_t)syscall(SYS_gettid);
	struct dirent *e;
	int rc = 0;
	while ((e = readdir(d)) != NULL) {
		pid_t t = (pid_t)atoi(e->d_name);
		struct sched_param sp = { 0 };
		if (t > 0 && t != me && sched_setscheduler(t, SCHED_IDLE, &sp) != 0)
			rc = -1;
	}
	closedir(d);
	return rc;
}

/* Prints "PATH: N bytes, sum S" (sum_bytes of the whole file): the
 * lease programs' account of what a copy wrote. 0, or -1 with errno. */
static inline int print_file_sum(const char *path)
{
	struct stat st;
	int fd = open(path, O_RDONLY);
	if (fd < 0 || fstat(fd, &st) != 0)
		return -1;
	unsigned char *b = malloc((size_t)st.st_size + 1);
	ssize_t n = b == NULL ? -1 : read(fd, b, (size_t)st.st_size);
	close(fd);
	printf("%s: %zd bytes, sum %016llx\n", path, n,
	       (unsigned long long)sum_bytes(b, n > 0 ? (size_t)n : 0));
	free(b);
	return 0;
}

#endif
