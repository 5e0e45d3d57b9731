/*
 * lease_release.c - when the library lets go of its read lease on a
 * source file (shim/lease.c: the lease thread closes its reopen of the
 * file), as a program and other processes can observe it.
 *
 *   lease_release SCENARIO [ROUNDS]
 *
 * Sources are made here (a pattern); copies go with read() into a
 * malloc'd buffer and write(). "The other process" is a child forked
 * before anything is read (common.h other_start); it does what the
 * scenario says when asked and answers. Printed: what the program sees
 * (call results, errno) and checksums of the files written; the caller
 * compares plain and preloaded.
 *
 * Scenarios:
 *   closed-wrlease-idle    a file copied whole (no change by anyone),
 *                          the source closed, every other thread of the
 *                          process put to SCHED_IDLE (the caller keeps
 *                          the one CPU busy); then the program - the
 *                          file's only opener - asks for a write lease
 *                          on it (F_SETLEASE F_WRLCK)
 *   closed-other-wrlease-idle  the same, but the other process asks
 *                          for the write lease
 *   closed-wrlease, closed-other-wrlease  the same without SCHED_IDLE
 *   storm-MODE             ROUNDS rounds of: read a 64 KiB chunk, the
 *                          other process changes the whole source (MODE:
 *                          wronly - open O_WRONLY and pwrite; trunc -
 *                          open O_TRUNC and write; truncate - truncate(2)
 *                          to 0 and rewrite; rdwr - open O_RDWR and
 *                          pwrite), the chunk written; each change fills
 *                          the file with the round's own byte. A chunk
 *                          holds the bytes of the round it was read in.
 *                          The other process says whether any change
 *                          waited more than 3 s (a lease-break wait).
 *                          Other threads SCHED_IDLE (busy CPU).
 *   close-while-opened N CPU  N sources (64 KiB chunks), each with its
 *                          last chunk read and not yet written; the other
 *                          threads SCHED_IDLE; the other process (moved
 *                          to CPU CPU when >= 0) opens every source for
 *                          writing, in order, and overwrites its last
 *                          chunk, while the program writes the last
 *                          chunks and closes the sources in the same
 *                          order: breaks of leases still held and of
 *                          leases already queued to be let go of
 *   own-lease ROUNDS       the program's own read lease on its source
 *                          descriptor (F_SETSIG SIGUSR1, the handler lets
 *                          it go), taken before each read; F_GETLEASE
 *                          before and after each change by the other
 *                          process, which comes between a read and its
 *                          write: the chunks as read, every break seen
 */
#include "common.h"

#include <dirent.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#define FILE_SIZE (1u << 20)
#define CHUNK (256u << 10)
#define SCHUNK (64u << 10)
#define SFILE (16 * SCHUNK)

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

static void print_file(const char *path)
{
	if (print_file_sum(path) != 0)
		die("open result");
}

/* Every thread of this process but the caller to SCHED_IDLE. */
static void make_others_idle(void)
{
	if (others_idle() != 0)
		die("sched_setscheduler");
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static struct other oth;
static int slow_changes;

/* In the other process. */
static void other_serve(const char *cmd)
{
	char path[400], mode[32];
	int round, cpu;
	if (sscanf(cmd, "wrlease %399s", path) == 1) {
		int fd = open(path, O_RDONLY);
		int r = fd < 0 ? -1 : fcntl(fd, F_SETLEASE, F_WRLCK);
		printf("other process: write lease %d %s\n", r, r ? strerror(errno) : "");
		if (r == 0)
			fcntl(fd, F_SETLEASE, F_UNLCK);
		if (fd >= 0)
			close(fd);
	} else if (sscanf(cmd, "change %399s %31s %d", path, mode, &round) == 3) {
		static unsigned char x[SFILE];
		memset(x, 'A' + round % 26, sizeof x);
		double t0 = now();
		int fd = -1;
		bool ok;
		if (strcmp(mode, "wronly") == 0) {
			fd = open(path, O_WRONLY);
			ok = fd >= 0 && pwrite(fd, x, SFILE, 0) == SFILE;
		} else if (strcmp(mode, "trunc") == 0) {
			fd = open(path, O_WRONLY | O_TRUNC);
			ok = fd >= 0 && write(fd, x, SFILE) == SFILE;
		} else if (strcmp(mode, "truncate") == 0) {
			ok = truncate(path, 0) == 0;
			fd = open(path, O_WRONLY);
			ok = ok && fd >= 0 && pwrite(fd, x, SFILE, 0) == SFILE;
		} else {
			fd = open(path, O_RDWR);
			ok = fd >= 0 && pwrite(fd, x, SFILE, 0) == SFILE;
		}
		if (fd >= 0)
			close(fd);
		if (!ok)
			_exit(3);
		if (now() - t0 > 3.0)
			slow_changes++;
	} else if (sscanf(cmd, "open-all %d %d", &round, &cpu) == 2) {
		/* On the other CPU when asked: the opens come while the
		 * program's library thread is awake, not only in its sleep. */
		if (cpu >= 0) {
			cpu_set_t set;
			CPU_ZERO(&set);
			CPU_SET(cpu, &set);
			sched_setaffinity(0, sizeof set, &set);
		}
		static unsigned char x[SCHUNK];
		memset(x, 'Y', sizeof x);
		double t0 = now();
		for (int i = 0; i < round; i++) {
			snprintf(path, sizeof path, "m%d.bin", i);
			int fd = open(path, O_WRONLY);
			if (fd < 0 || pwrite(fd, x, SCHUNK, 3 * SCHUNK) != SCHUNK)
				_exit(3);
			close(fd);
		}
		printf("other process: %d files changed, waited over 3 s: %s\n", round,
		       now() - t0 > 3.0 ? "yes" : "no");
	} else if (strcmp(cmd, "report") == 0) {
		printf("other process: changes that waited over 3 s: %d\n", slow_changes);
	} else {
		_exit(3);
	}
}

static void copy_all(const char *src, const char *dst)
{
	int in = open(src, O_RDONLY), out = open(dst, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	char *buf = malloc(CHUNK);
	if (in < 0 || out < 0 || buf == NULL)
		die("open");
	ssize_t r;
	while ((r = read(in, buf, CHUNK)) > 0)
		if (write(out, buf, (size_t)r) != r)
			die("write");
	free(buf);
	printf("close source: %d\n", close(in));
	close(out);
}

static void closed_wrlease(bool other, bool idle)
{
	make_file("src.bin", FILE_SIZE);
	copy_all("src.bin", "dst.bin");
	if (idle)
		make_others_idle();
	print_file("dst.bin");
	if (other) {
		other_run(&oth, "wrlease src.bin");
		return;
	}
	int fd = open("src.bin", O_RDONLY);
	int r = fcntl(fd, F_SETLEASE, F_WRLCK);
	printf("write lease on the source: %d %s\n", r, r ? strerror(errno) : "");
	if (r == 0)
		fcntl(fd, F_SETLEASE, F_UNLCK);
	close(fd);
}

static void storm(const char *mode, int rounds)
{
	make_file("src.bin", SFILE);
	int in = open("src.bin", O_RDONLY), out = open("dst.bin", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	char *buf = malloc(SCHUNK);
	if (in < 0 || out < 0 || buf == NULL)
		die("open");
	bool idle = false;
	char cmd[512];
	for (int i = 0; i < rounds; i++) {
		/* Round i reads chunk i % 16 of the file as round i - 1 left it. */
		if (lseek(in, (off_t)(i % 16) * SCHUNK, SEEK_SET) < 0)
			die("lseek");
		ssize_t r = read(in, buf, SCHUNK);
		if (r != SCHUNK)
			die("read");
		if (!idle) {
			make_others_idle();
			idle = true;
		}
		snprintf(cmd, sizeof cmd, "change src.bin %s %d", mode, i);
		other_run(&oth, cmd);
		if (write(out, buf, SCHUNK) != SCHUNK)
			die("write");
	}
	free(buf);
	close(in);
	close(out);
	other_run(&oth, "report");
	print_file("dst.bin");
}

/* nsrc sources, each with its last chunk read (deferred, leased) and not
 * yet written; the other threads idle; the other process told to open
 * every source for writing, in order, while the program writes the last
 * chunks and closes the sources in the same order. */
static void close_while_opened(int nsrc, int cpu)
{
	static int fds[1024];
	static char *bufs[1024];
	char p[64], cmd[64];
	int out = open("dst.bin", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (out < 0 || nsrc > 1024)
		die("open dst");
	for (int i = 0; i < nsrc; i++) {
		snprintf(p, sizeof p, "m%d.bin", i);
		make_file(p, 4 * SCHUNK);
		fds[i] = open(p, O_RDONLY);
		bufs[i] = malloc(SCHUNK);
		if (fds[i] < 0 || bufs[i] == NULL)
			die("open source");
		for (int k = 0; k < 3; k++)
			if (read(fds[i], bufs[i], SCHUNK) != SCHUNK ||
			    write(out, bufs[i], SCHUNK) != SCHUNK)
				die("copy");
		if (read(fds[i], bufs[i], SCHUNK) != SCHUNK)
			die("read last");
	}
	make_others_idle();
	snprintf(cmd, sizeof cmd, "open-all %d %d", nsrc, cpu);
	other_post(&oth, cmd);
	for (int i = 0; i < nsrc; i++) {
		if (write(out, bufs[i], SCHUNK) != SCHUNK)
			die("write last");
		close(fds[i]);
		free(bufs[i]);
	}
	other_wait(&oth);
	close(out);
	print_file("dst.bin");
}

/* The program's own read lease on its source descriptor (F_SETSIG to
 * SIGUSR1, whose handler lets it go): taken before the copy, asked about
 * (F_GETLEASE) before and after each change by the other process, which
 * comes between a read and its write; taken again after each break. */
static volatile sig_atomic_t own_breaks;
static int own_fd = -1;

static void own_break(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	if (si->si_fd == own_fd) {
		own_breaks++;
		fcntl(own_fd, F_SETLEASE, F_UNLCK);
	}
}

static void own_lease(int rounds)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = own_break;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sigaction(SIGUSR1, &sa, NULL);
	make_file("src.bin", SFILE);
	int in = open("src.bin", O_RDONLY), out = open("dst.bin", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	char *buf = malloc(SCHUNK);
	if (in < 0 || out < 0 || buf == NULL)
		die("open");
	own_fd = in;
	char cmd[512];
	for (int i = 0; i < rounds; i++) {
		/* Again each time: F_UNLCK sets the signal back to SIGIO. */
		if (fcntl(in, F_SETSIG, SIGUSR1) != 0)
			die("F_SETSIG");
		int t = fcntl(in, F_SETLEASE, F_RDLCK);
		int e = t ? errno : 0;
		if (lseek(in, (off_t)(i % 16) * SCHUNK, SEEK_SET) < 0 || read(in, buf, SCHUNK) != SCHUNK)
			die("read");
		int before = fcntl(in, F_GETLEASE);
		snprintf(cmd, sizeof cmd, "change src.bin wronly %d", i);
		other_run(&oth, cmd);
		int after = fcntl(in, F_GETLEASE);
		if (i < 3 || t != 0 || before != F_RDLCK || after != F_UNLCK)
			printf("round %d: take %d %s, lease before %d, after %d\n", i, t,
			       t ? strerror(e) : "", before, after);
		if (write(out, buf, SCHUNK) != SCHUNK)
			die("write");
	}
	printf("breaks seen by the program: %d\n", (int)own_breaks);
	free(buf);
	close(in);
	close(out);
	other_run(&oth, "report");
	print_file("dst.bin");
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	other_start(&oth, other_serve);
	const char *sc = argc > 1 ? argv[1] : "";
	int rounds = argc > 2 ? atoi(argv[2]) : 200;
	if (strcmp(sc, "closed-wrlease-idle") == 0)
		closed_wrlease(false, true);
	else if (strcmp(sc, "closed-other-wrlease-idle") == 0)
		closed_wrlease(true, true);
	else if (strcmp(sc, "closed-wrlease") == 0)
		closed_wrlease(false, false);
	else if (strcmp(sc, "closed-other-wrlease") == 0)
		closed_wrlease(true, false);
	else if (strcmp(sc, "own-lease") == 0)
		own_lease(rounds);
	else if (strcmp(sc, "close-while-opened") == 0)
		close_while_opened(rounds, argc > 3 ? atoi(argv[3]) : -1);
	else if (strncmp(sc, "storm-", 6) == 0)
		storm(sc + 6, rounds);
	else {
		printf("unknown scenario '%s'\n", sc);
		return 1;
	}
	return 0;
}
