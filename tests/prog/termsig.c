/*
 * termsig.c - what a program can observe of the termination signals it
 * leaves at their default action, one scenario per argument. Prints what
 * it sees; the integration test (39-termsig-plain.sh) runs it plain and
 * preloaded and requires the same output and the same exit status or
 * signal of death.
 *
 *   termsig SCENARIO
 *
 * Every scenario here ends differently when a handler sits in the
 * kernel's slot of a signal the program left at SIG_DFL:
 *   sigwait-unblocked    sigwait(3) on SIGUSR1 that is not blocked: the
 *                        default action ends the process before the wait
 *                        can take it (the kernel treats a SIG_DFL fatal
 *                        signal as a group kill at generation time).
 *   sigtimedwait-alarm   the same with alarm(2) and sigtimedwait(2).
 *   vfork-other-thread   a thread sends SIGTERM while the main thread waits
 *                        in vfork() (a killable wait): plain, no thread
 *                        runs another instruction; it prints nothing.
 *   pidns-init           the forked init of a new PID namespace (no exec)
 *                        gets SIGTERM: plain, the kernel drops it (init
 *                        has no handler); the read it waits in goes on.
 *   vfork-child-resets   a vfork child sets SIGINT to SIG_DFL before exec;
 *                        the parent then reads SIGINT's action.
 *   after-system         SIGINT/SIGQUIT's actions as read after system().
 *   seccomp-strict       a child in seccomp strict mode (read, write, _exit,
 *                        sigreturn) blocked in read() gets SIGTERM.
 *   stack-headroom       the thread that takes SIGTERM has used its stack
 *                        down to its last 2 KiB (the others block it):
 *                        plain needs no stack to die of it.
 *   seccomp-errno        the same under a filter that allows read, write,
 *                        exit_group and rt_sigreturn and fails the rest
 *                        with EPERM.
 */
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void say(const char *s)
{
	(void)!write(1, s, strlen(s));
}

/* A child that sends sig to pid after delay_ms. */
static void send_later(pid_t pid, int sig, int delay_ms)
{
	if (fork() == 0) {
		usleep((useconds_t)delay_ms * 1000);
		kill(pid, sig);
		_exit(0);
	}
}

static void show_action(const char *tag, int sig)
{
	struct sigaction a;
	sigaction(sig, NULL, &a);
	printf("%s: signal %d %s flags %#x restorer %s\n", tag, sig,
	       a.sa_handler == SIG_DFL ? "SIG_DFL" : a.sa_handler == SIG_IGN ? "SIG_IGN" : "handler",
	       (unsigned)a.sa_flags, a.sa_restorer ? "set" : "null");
}

static void *vfork_killer(void *arg)
{
	(void)arg;
	usleep(200000); /* the main thread is in vfork() by now */
	kill(getpid(), SIGTERM);
	say("worker: still running after kill\n");
	return NULL;
}

/* Forks a child that enters a seccomp sandbox (strict, or a filter
 * failing all but read, write, exit_group and rt_sigreturn with EPERM)
 * and waits in read(); sends it SIGTERM, then a byte; prints its end. */
static void sandboxed_child(bool strict)
{
	int p[2];
	if (pipe(p) != 0)
		return;
	pid_t c = fork();
	if (c == 0) {
		close(p[1]);
		if (strict) {
			if (syscall(SYS_seccomp, SECCOMP_SET_MODE_STRICT, 0, NULL) != 0)
				_exit(90);
		} else {
			struct sock_filter f[] = {
				BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
				BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_read, 4, 0),
				BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_write, 3, 0),
				BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_exit_group, 2, 0),
				BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_rt_sigreturn, 1, 0),
				BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
				BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
			};
			struct sock_fprog prog = { sizeof f / sizeof f[0], f };
			if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
			    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0)
				_exit(91);
		}
		char b[1];
		for (;;) {
			ssize_t n = read(p[0], b, 1);
			if (n >= 0) {
				say(n ? "child: read a byte\n" : "child: end of pipe\n");
				syscall(SYS_exit_group, 3);
			}
			say("child: read interrupted\n");
		}
	}
	close(p[0]);
	signal(SIGPIPE, SIG_IGN);
	usleep(300000);
	kill(c, SIGTERM);
	usleep(300000);
	(void)!write(p[1], "x", 1);
	int st;
	waitpid(c, &st, 0);
	printf("sandboxed child ended: %s %d\n", WIFSIGNALED(st) ? "signal" : "exit",
	       WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
}

/* A thread on a stack of its own (a guard page below), recursing until
 * only HEADROOM bytes are left, then waiting there for signals. */
#define STACK_SIZE (256 * 1024)
#define HEADROOM 2048
static char *stack_lo;

static void descend(void);
static void (*volatile again)(void) = descend; /* a call gcc cannot see through */

static void __attribute__((noinline)) descend(void)
{
	volatile char frame[256];
	frame[0] = 1;
	if ((uintptr_t)&frame[0] - (uintptr_t)stack_lo > HEADROOM + 512)
		again();
	else
		for (;;)
			syscall(SYS_pause);
	frame[1] = frame[0];
}

static void *deep_waiter(void *arg)
{
	(void)arg;
	syscall(SYS_getpid); /* bound now: lazy binding needs kilobytes of stack */
	descend();
	return NULL;
}

static void stack_headroom(void)
{
	long pg = sysconf(_SC_PAGESIZE);
	char *m = mmap(NULL, STACK_SIZE + (size_t)pg, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	if (m == MAP_FAILED)
		return;
	mprotect(m, (size_t)pg, PROT_NONE); /* the guard page */
	stack_lo = m + pg;
	pthread_attr_t at;
	pthread_attr_init(&at);
	pthread_attr_setstack(&at, stack_lo, STACK_SIZE);
	sigset_t term;
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	pthread_t t;
	pthread_create(&t, &at, deep_waiter, NULL);
	pthread_sigmask(SIG_BLOCK, &term, NULL); /* only the deep thread takes it */
	usleep(300000);
	say("sending SIGTERM\n");
	kill(getpid(), SIGTERM);
	for (;;)
		pause();
}

int main(int argc, char **argv)
{
	const char *sc = argc > 1 ? argv[1] : "";
	setvbuf(stdout, NULL, _IONBF, 0);
	if (strcmp(sc, "sigwait-unblocked") == 0) {
		sigset_t set;
		int sig = 0;
		sigemptyset(&set);
		sigaddset(&set, SIGUSR1);
		send_later(getpid(), SIGUSR1, 200);
		int r = sigwait(&set, &sig);
		printf("sigwait returned %d, signal %d\n", r, sig);
	} else if (strcmp(sc, "sigtimedwait-alarm") == 0) {
		sigset_t set;
		struct timespec ts = { 5, 0 };
		sigemptyset(&set);
		sigaddset(&set, SIGALRM);
		alarm(1);
		int r = sigtimedwait(&set, NULL, &ts);
		printf("sigtimedwait returned %d\n", r);
	} else if (strcmp(sc, "vfork-other-thread") == 0) {
		pthread_t t;
		pthread_create(&t, NULL, vfork_killer, NULL);
		pid_t c = vfork();
		if (c == 0) {
			struct timespec ts = { 1, 0 };
			nanosleep(&ts, NULL);
			_exit(0);
		}
		waitpid(c, NULL, 0);
		pthread_join(t, NULL);
		say("main: after vfork\n");
	} else if (strcmp(sc, "pidns-init") == 0) {
		int p[2];
		if (pipe(p) != 0 || unshare(CLONE_NEWPID) != 0) {
			printf("no new PID namespace: %s\n", strerror(errno));
			return 0;
		}
		pid_t c = fork();
		if (c == 0) {
			char b[4];
			close(p[1]);
			ssize_t n = read(p[0], b, sizeof b);
			printf("init (pid %d): read returned %zd%s%s\n", (int)getpid(), n,
			       n < 0 ? ", " : "", n < 0 ? strerror(errno) : "");
			_exit(0);
		}
		close(p[0]);
		usleep(300000);
		kill(c, SIGTERM);
		usleep(300000);
		signal(SIGPIPE, SIG_IGN);
		(void)!write(p[1], "x", 1);
		int st;
		waitpid(c, &st, 0);
		printf("init ended: %s %d\n", WIFSIGNALED(st) ? "signal" : "exit",
		       WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
	} else if (strcmp(sc, "vfork-child-resets") == 0) {
		show_action("parent before", SIGINT);
		pid_t c = vfork();
		if (c == 0) {
			signal(SIGINT, SIG_DFL);
			execl("/bin/true", "true", (char *)NULL);
			_exit(127);
		}
		waitpid(c, NULL, 0);
		show_action("parent after", SIGINT);
	} else if (strcmp(sc, "after-system") == 0) {
		show_action("before", SIGINT);
		show_action("before", SIGQUIT);
		printf("system returned %d\n", system("true"));
		show_action("after", SIGINT);
		show_action("after", SIGQUIT);
	} else if (strcmp(sc, "stack-headroom") == 0) {
		stack_headroom();
	} else if (strcmp(sc, "seccomp-strict") == 0) {
		sandboxed_child(true);
	} else if (strcmp(sc, "seccomp-errno") == 0) {
		sandboxed_child(false);
	} else {
		fprintf(stderr, "termsig: unknown scenario '%s'\n", sc);
		return 2;
	}
	return 0;
}
