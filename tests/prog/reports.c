/*
 * reports.c - copy loops that end in every way a process can end, for the
 * library's final report. One scenario per run; prints everything the
 * program can observe (what it copied, the signal dispositions it reads
 * back); the integration test (38-reports.sh) runs it plain and preloaded
 * and requires the same output, exit status or signal, and output file.
 *
 *   reports SCENARIO IN OUT
 *
 *   exit        the loop, then exit(0)                       (control)
 *   _exit       the loop, then _exit(7)
 *   _Exit       the loop, then _Exit(9)
 *   exit_group  the loop, then syscall(SYS_exit_group, 5)
 *   term        prints the termination signals' dispositions as sigaction,
 *               signal, sigset and a raw rt_sigaction read them; installs
 *               and restores handlers; the loop; then kill(getpid(), SIGTERM)
 *   quit        the loop, then raise(SIGQUIT) (default action: core)
 *   fork        the loop in the parent; a child that copies IN again into
 *               OUT.child and _exits(0); a second child that _exits(3) at
 *               once (an exec that failed); the parent exits(0)
 *   stack       the loop with its buffer on the stack (128 KiB), exit(0)
 *   shared      the loop with its buffer in a MAP_SHARED anonymous mapping
 */
#pragma GCC diagnostic ignored "-Wdeprecated-declarations" /* sigset, siginterrupt */
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define CHUNK (128 * 1024)

static void die(const char *what)
{
	perror(what);
	exit(100);
}

/* read()/write() of the whole file through buf; returns the iterations. */
static unsigned copy(const char *in, const char *out, char *buf)
{
	int i = open(in, O_RDONLY), o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (i < 0 || o < 0)
		die("open");
	unsigned n = 0;
	ssize_t r;
	while ((r = read(i, buf, CHUNK)) > 0) {
		for (ssize_t w = 0; w < r;) {
			ssize_t k = write(o, buf + w, (size_t)(r - w));
			if (k <= 0)
				die("write");
			w += k;
		}
		n++;
	}
	if (r < 0)
		die("read");
	close(i);
	close(o);
	return n;
}

static unsigned copy_heap(const char *in, const char *out)
{
	char *buf = malloc(CHUNK);
	if (buf == NULL)
		die("malloc");
	unsigned n = copy(in, out, buf);
	free(buf);
	return n;
}

/* The kernel's struct sigaction for rt_sigaction(2) (x86_64). */
struct k_sigaction {
	void *handler;
	unsigned long flags;
	void *restorer;
	uint64_t mask;
};

static void show(int sig)
{
	struct sigaction a;
	struct k_sigaction k;
	sigaction(sig, NULL, &a);
	uint64_t m;
	memcpy(&m, &a.sa_mask, sizeof m);
	long r = syscall(SYS_rt_sigaction, sig, NULL, &k, 8);
	printf("sig %d: handler %s flags %#x restorer %s mask %#llx; raw %ld handler %s flags %#lx "
	       "restorer %s mask %#llx\n",
	       sig, a.sa_handler == SIG_DFL ? "DFL" : a.sa_handler == SIG_IGN ? "IGN" : "fn",
	       (unsigned)a.sa_flags, a.sa_restorer ? "set" : "null", (unsigned long long)m, r,
	       k.handler == SIG_DFL ? "DFL" : k.handler == SIG_IGN ? "IGN" : "fn", k.flags,
	       k.restorer ? "set" : "null", (unsigned long long)k.mask);
}

static volatile sig_atomic_t got;
static void on_sig(int sig)
{
	got = sig;
}

static void dispositions(void)
{
	static const int sigs[] = { SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGALRM };
	for (unsigned i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
		show(sigs[i]);
	/* A handler of the program's runs as its own. */
	signal(SIGUSR1, on_sig);
	raise(SIGUSR1);
	printf("handler got %d\n", (int)got);
	/* signal() answers with the previous handler; SIG_DFL back. */
	__sighandler_t prev = signal(SIGUSR1, SIG_DFL);
	printf("signal(SIGUSR1, SIG_DFL) returned %s\n", prev == on_sig ? "on_sig" : "other");
	prev = signal(SIGHUP, SIG_IGN);
	printf("signal(SIGHUP, SIG_IGN) returned %s\n", prev == SIG_DFL ? "DFL" : "other");
	prev = signal(SIGHUP, SIG_DFL);
	printf("signal(SIGHUP, SIG_DFL) returned %s\n", prev == SIG_IGN ? "IGN" : "other");
	prev = sigset(SIGINT, SIG_DFL);
	printf("sigset(SIGINT, SIG_DFL) returned %s\n", prev == SIG_DFL ? "DFL" : "other");
	/* SIG_DFL with flags and a mask of the program's: read back as set. */
	struct sigaction a;
	memset(&a, 0, sizeof a);
	a.sa_handler = SIG_DFL;
	a.sa_flags = SA_RESTART;
	sigemptyset(&a.sa_mask);
	sigaddset(&a.sa_mask, SIGCHLD);
	struct sigaction old;
	sigaction(SIGALRM, &a, &old);
	printf("old SIGALRM: %s\n", old.sa_handler == SIG_DFL ? "DFL" : "other");
	siginterrupt(SIGQUIT, 1);
	for (unsigned i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
		show(sigs[i]);
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: reports SCENARIO IN OUT\n");
		return 2;
	}
	const char *s = argv[1], *in = argv[2], *out = argv[3];
	setvbuf(stdout, NULL, _IONBF, 0);
	if (strcmp(s, "term") == 0)
		dispositions();
	if (strcmp(s, "stack") == 0) {
		char buf[CHUNK];
		printf("iterations %u\n", copy(in, out, buf));
		return 0;
	}
	if (strcmp(s, "shared") == 0) {
		char *buf = mmap(NULL, CHUNK, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		if (buf == MAP_FAILED)
			die("mmap");
		printf("iterations %u\n", copy(in, out, buf));
		return 0;
	}
	printf("iterations %u\n", copy_heap(in, out));
	if (strcmp(s, "exit") == 0)
		exit(0);
	if (strcmp(s, "_exit") == 0)
		_exit(7);
	if (strcmp(s, "_Exit") == 0)
		_Exit(9);
	if (strcmp(s, "exit_group") == 0)
		syscall(SYS_exit_group, 5);
	if (strcmp(s, "term") == 0) {
		kill(getpid(), SIGTERM);
		pause();
	}
	if (strcmp(s, "quit") == 0)
		raise(SIGQUIT);
	if (strcmp(s, "fork") == 0) {
		char path[4096];
		snprintf(path, sizeof path, "%s.child", out);
		pid_t c = fork();
		if (c == 0) {
			unsigned n = copy_heap(in, path);
			printf("child iterations %u\n", n);
			_exit(0);
		}
		int st;
		waitpid(c, &st, 0);
		printf("child status %d\n", WEXITSTATUS(st));
		c = fork();
		if (c == 0)
			_exit(3); /* as after a failed exec */
		waitpid(c, &st, 0);
		printf("second child status %d\n", WEXITSTATUS(st));
		exit(0);
	}
	fprintf(stderr, "unknown scenario %s\n", s);
	return 2;
}
