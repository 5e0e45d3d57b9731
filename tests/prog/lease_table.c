/*
 * lease_table.c - what the program can observe of the lease thread's
 * private descriptor table (shim/lease.c) and of leases around fork and
 * the program's own use of the lease signal.
 *
 *   lease_table SCENARIO
 *
 * Each scenario copies src.bin (1 MiB, a pattern, made here) into dst.bin
 * with read(256K) into a malloc'd buffer and write(); another process (a
 * forked child) overwrites the source with 'X' after a read and before its
 * write. Plain, the chunk already read keeps the bytes it had when read()
 * returned. Printed: what the program sees (descriptor counts, call
 * results) and a checksum of dst.bin; the caller compares plain and
 * preloaded.
 *
 * Scenarios:
 *   last-chunk-break  the change comes after the last read: after the
 *                     program closed both files no descriptor names the
 *                     source any more, and - its only opener again - the
 *                     program gets a write lease on it (F_SETLEASE F_WRLCK)
 *   last-chunk-break-idle  the same, and before the change every other
 *                     thread of the process is put to SCHED_IDLE (the
 *                     caller keeps the CPU busy): a thread that lets go
 *                     of the source late, after the writer went on, still
 *                     holds it when the write lease is asked for
 *   closed-break-idle  three of the four chunks copied, the source closed
 *                     (not read to its end), the other threads put to
 *                     SCHED_IDLE, then the change, then the write lease
 *   many-breaks       300 sources, each with its last chunk read and not
 *                     yet written when another process overwrites them all;
 *                     then every chunk is written and every source closed:
 *                     no descriptor names a source any more
 *   fork-child        the last chunk is read, the program forks, the
 *                     parent lets another process overwrite the source,
 *                     then the child writes the chunk: the bytes as read
 *   sigwait           the program blocks signal 62 (the default lease
 *                     signal) in every thread and takes it with
 *                     sigwaitinfo after kill(getpid(), 62) and a 100 ms
 *                     sleep, after a copy loop that took a lease
 *   signalfd          the same, read through a signalfd
 */
#include "common.h"

#include <dirent.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define FILE_SIZE (1u << 20)
#define CHUNK (256u << 10)
#define LEASE_SIG 62

static void die(const char *what)
{
	printf("FAIL %s: %s\n", what, strerror(errno));
	exit(2);
}

static void make_file(const char *path, size_t size)
{
	if (slow_pattern_file(path, size) != 0)
		die("make");
}

/* Descriptors of this process (any thread's table that /proc/self/fd
 * shows: the main thread's) naming a regular file whose name starts with
 * "src" or "m" - the sources. The library's own others (its log,
 * /proc/self/mem) are listed there too and are not counted. */
static int is_source(const char *target)
{
	const char *base = strrchr(target, '/');
	base = base ? base + 1 : target;
	return strncmp(base, "src", 3) == 0 || (base[0] == 'm' && base[1] >= '0' && base[1] <= '9');
}

static int count_fds(void)
{
	int n = count_fds_naming(is_source);
	if (n < 0)
		die("opendir");
	return n;
}

/* The other process (common.h), started before anything is read. */
static struct other oth;

/* In the other process: "overwrite PATH OFF LEN" or "many N". */
static void other_serve(const char *cmd)
{
	char path[400];
	long long off;
	size_t len;
	int n;
	if (sscanf(cmd, "overwrite %399s %lld %zu", path, &off, &len) == 3) {
		char *x = malloc(len);
		int fd = open(path, O_WRONLY);
		if (x == NULL || fd < 0)
			_exit(3);
		memset(x, 'X', len);
		if (pwrite(fd, x, len, (off_t)off) != (ssize_t)len)
			_exit(3);
		close(fd);
		free(x);
	} else if (sscanf(cmd, "many %d", &n) == 1) {
		static char x[CHUNK];
		memset(x, 'X', sizeof x);
		for (int i = 0; i < n; i++) {
			snprintf(path, sizeof path, "m%d.bin", i);
			int fd = open(path, O_WRONLY);
			if (fd < 0 || pwrite(fd, x, CHUNK, 3 * CHUNK) != CHUNK)
				_exit(3);
			close(fd);
		}
		printf("other process: status 0\n");
	} else {
		_exit(3);
	}
}

/* Another process overwrites [off, off + len) of path with 'X'. */
static void other_overwrite(const char *path, off_t off, size_t len)
{
	char cmd[512];
	snprintf(cmd, sizeof cmd, "overwrite %s %lld %zu", path, (long long)off, len);
	other_run(&oth, cmd);
}

static bool idle_others; /* last-chunk-break-idle */

/* Every thread of this process but the caller to SCHED_IDLE. */
static void make_others_idle(void)
{
	if (others_idle() != 0)
		die("sched_setscheduler");
}

static void copy(const char *src, const char *dst, int change_at)
{
	int in = open(src, O_RDONLY), out = open(dst, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	char *buf = malloc(CHUNK);
	if (in < 0 || out < 0 || buf == NULL)
		die("open");
	int n = 0;
	ssize_t r;
	while ((r = read(in, buf, CHUNK)) > 0) {
		if (++n == change_at) {
			if (idle_others)
				make_others_idle();
			other_overwrite(src, 0, FILE_SIZE);
		}
		if (write(out, buf, (size_t)r) != r)
			die("write");
	}
	free(buf);
	close(in);
	close(out);
}

static void print_file(const char *path)
{
	if (print_file_sum(path) != 0)
		die("open result");
}

static void last_chunk_break(void)
{
	make_file("src.bin", FILE_SIZE);
	int before = count_fds();
	copy("src.bin", "dst.bin", FILE_SIZE / CHUNK);
	printf("descriptors of the sources before %d, after %d\n", before, count_fds());
	print_file("dst.bin");
	int fd = open("src.bin", O_RDONLY);
	int r = fcntl(fd, F_SETLEASE, F_WRLCK);
	printf("write lease on the source: %d %s\n", r, r ? strerror(errno) : "");
	if (r == 0)
		fcntl(fd, F_SETLEASE, F_UNLCK);
	close(fd);
}

static void closed_break_idle(void)
{
	make_file("src.bin", FILE_SIZE);
	int in = open("src.bin", O_RDONLY), out = open("dst.bin", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	char *buf = malloc(CHUNK);
	if (in < 0 || out < 0 || buf == NULL)
		die("open");
	for (int n = 0; n < 3; n++)
		if (read(in, buf, CHUNK) != CHUNK || write(out, buf, CHUNK) != CHUNK)
			die("copy");
	free(buf);
	close(in);
	close(out);
	make_others_idle();
	other_overwrite("src.bin", 0, FILE_SIZE);
	print_file("dst.bin");
	int fd = open("src.bin", O_RDONLY);
	int r = fcntl(fd, F_SETLEASE, F_WRLCK);
	printf("write lease on the source: %d %s\n", r, r ? strerror(errno) : "");
	if (r == 0)
		fcntl(fd, F_SETLEASE, F_UNLCK);
	close(fd);
}

static void many_breaks(void)
{
	enum { N = 300 };
	static int fds[N];
	static char *bufs[N];
	char p[64];
	int before = count_fds();
	int out = open("dst.bin", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (out < 0)
		die("open dst");
	for (int i = 0; i < N; i++) {
		snprintf(p, sizeof p, "m%d.bin", i);
		make_file(p, 4 * CHUNK);
		fds[i] = open(p, O_RDONLY);
		bufs[i] = malloc(CHUNK);
		if (fds[i] < 0 || bufs[i] == NULL)
			die("open source");
		for (int k = 0; k < 3; k++)
			if (read(fds[i], bufs[i], CHUNK) != CHUNK ||
			    write(out, bufs[i], CHUNK) != CHUNK)
				die("copy");
		if (read(fds[i], bufs[i], CHUNK) != CHUNK)
			die("read last");
	}
	char cmd[32];
	snprintf(cmd, sizeof cmd, "many %d", N);
	other_run(&oth, cmd);
	for (int i = 0; i < N; i++) {
		if (write(out, bufs[i], CHUNK) != CHUNK)
			die("write last");
		close(fds[i]);
		free(bufs[i]);
	}
	close(out);
	printf("descriptors of the sources before %d, after %d\n", before, count_fds());
	print_file("dst.bin");
}

static void fork_child(void)
{
	make_file("src.bin", FILE_SIZE);
	int in = open("src.bin", O_RDONLY), out = open("dst.bin", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	char *buf = malloc(CHUNK);
	if (in < 0 || out < 0 || buf == NULL)
		die("open");
	for (int i = 0; i < 3; i++)
		if (read(in, buf, CHUNK) != CHUNK || write(out, buf, CHUNK) != CHUNK)
			die("copy");
	if (read(in, buf, CHUNK) != CHUNK)
		die("read last");
	int go[2];
	if (pipe(go) != 0)
		die("pipe");
	pid_t c = fork();
	if (c < 0)
		die("fork");
	if (c == 0) {
		char b;
		close(go[1]);
		if (read(go[0], &b, 1) != 1) /* the change is done */
			_exit(4);
		_exit(write(out, buf, CHUNK) == CHUNK ? 0 : 3);
	}
	close(go[0]);
	other_overwrite("src.bin", 0, FILE_SIZE);
	if (write(go[1], "g", 1) != 1)
		die("go");
	int st;
	while (waitpid(c, &st, 0) < 0)
		if (errno != EINTR)
			die("waitpid");
	printf("child: status %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
	close(out);
	print_file("dst.bin");
}

static void waits_for_signal(bool through_signalfd)
{
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, LEASE_SIG);
	pthread_sigmask(SIG_BLOCK, &s, NULL);
	make_file("src.bin", FILE_SIZE);
	copy("src.bin", "dst.bin", 2);
	int sfd = through_signalfd ? signalfd(-1, &s, 0) : -1;
	if (through_signalfd && sfd < 0)
		die("signalfd");
	if (kill(getpid(), LEASE_SIG) != 0)
		die("kill");
	/* Busy elsewhere for a moment: the signal stays pending for the
	 * thread that waits for it (every thread of the program blocks it). */
	struct timespec ts = { 0, 100 * 1000 * 1000 };
	nanosleep(&ts, NULL);
	if (through_signalfd) {
		struct signalfd_siginfo si;
		ssize_t r = read(sfd, &si, sizeof si);
		printf("signalfd: read %zd, signal %u, code %d\n", r, si.ssi_signo, si.ssi_code);
	} else {
		siginfo_t si;
		int sig = sigwaitinfo(&s, &si);
		printf("sigwaitinfo: signal %d, code %d\n", sig, si.si_code);
	}
	print_file("dst.bin");
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	other_start(&oth, other_serve);
	const char *sc = argc > 1 ? argv[1] : "";
	if (strcmp(sc, "last-chunk-break") == 0)
		last_chunk_break();
	else if (strcmp(sc, "last-chunk-break-idle") == 0) {
		idle_others = true;
		last_chunk_break();
	}
	else if (strcmp(sc, "closed-break-idle") == 0)
		closed_break_idle();
	else if (strcmp(sc, "many-breaks") == 0)
		many_breaks();
	else if (strcmp(sc, "fork-child") == 0)
		fork_child();
	else if (strcmp(sc, "sigwait") == 0)
		waits_for_signal(false);
	else if (strcmp(sc, "signalfd") == 0)
		waits_for_signal(true);
	else {
		printf("unknown scenario '%s'\n", sc);
		return 1;
	}
	return 0;
}
