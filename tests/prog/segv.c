/*
 * segv.c - the program's own SIGSEGV/SIGBUS handling, one scenario per
 * argument. Prints what it observes; the integration test runs it plain and
 * preloaded and requires the same output and the same exit status/signal.
 *
 *   segv SCENARIO
 */
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static char *page;
static long pagesz;
static volatile sig_atomic_t hits, last_code_user;
static sigjmp_buf jb;

static void fix(void)
{
	mprotect(page, (size_t)pagesz, PROT_READ | PROT_WRITE);
}

static void on_info(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	hits++;
	last_code_user = si->si_code <= 0;
	if (sig == SIGSEGV && si->si_addr == (void *)page)
		fix();
}

static void on_plain(int sig)
{
	(void)sig;
	hits++;
	fix();
}

static void on_jump(int sig)
{
	(void)sig;
	hits++;
	siglongjmp(jb, 1);
}

static void on_mask(int sig)
{
	(void)sig;
	sigset_t cur;
	sigprocmask(SIG_SETMASK, NULL, &cur);
	printf("in handler: SIGUSR1 %s, SIGSEGV %s\n",
	       sigismember(&cur, SIGUSR1) ? "blocked" : "open",
	       sigismember(&cur, SIGSEGV) ? "blocked" : "open");
	fix();
}

static void guard(void)
{
	mprotect(page, (size_t)pagesz, PROT_NONE);
}

static void touch(void)
{
	*(volatile char *)page = 1;
}

static const char *kind(void (*h)(int))
{
	return h == SIG_DFL ? "SIG_DFL" : h == SIG_IGN ? "SIG_IGN" : "handler";
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	pagesz = sysconf(_SC_PAGESIZE);
	page = mmap(NULL, (size_t)pagesz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	setvbuf(stdout, NULL, _IONBF, 0);
	const char *s = argv[1];
	struct sigaction sa, old;
	memset(&sa, 0, sizeof sa);

	if (strcmp(s, "null") == 0) {
		*(volatile int *)0 = 1; /* must die of SIGSEGV */
	} else if (strcmp(s, "query") == 0) {
		sigaction(SIGSEGV, NULL, &old);
		printf("SIGSEGV: %s flags %#x\n", kind(old.sa_handler), (unsigned)old.sa_flags & ~0x04000000u /* SA_RESTORER */);
		sigaction(SIGBUS, NULL, &old);
		printf("SIGBUS: %s\n", kind(old.sa_handler));
	} else if (strcmp(s, "sigaction") == 0) {
		sa.sa_sigaction = on_info;
		sa.sa_flags = SA_SIGINFO;
		sigaction(SIGSEGV, &sa, NULL);
		sigaction(SIGSEGV, NULL, &old);
		printf("installed: %s, same pointer %d\n", old.sa_flags & SA_SIGINFO ? "siginfo" : "plain",
		       old.sa_sigaction == on_info);
		for (int i = 0; i < 3; i++) {
			guard();
			touch();
		}
		printf("faults handled: %d, from the kernel: %d\n", (int)hits, !last_code_user);
	} else if (strcmp(s, "signal") == 0) {
		void (*prev)(int) = signal(SIGSEGV, on_plain);
		void (*back)(int) = signal(SIGSEGV, on_plain);
		printf("previous: %s, then ours back: %d\n", kind(prev), back == on_plain);
		guard();
		touch();
		printf("faults handled: %d\n", (int)hits);
	} else if (strcmp(s, "resethand") == 0) {
		sa.sa_handler = on_plain;
		sa.sa_flags = SA_RESETHAND;
		sigaction(SIGSEGV, &sa, NULL);
		guard();
		touch();
		sigaction(SIGSEGV, NULL, &old);
		printf("after one fault: %s, handled %d\n", kind(old.sa_handler), (int)hits);
		guard();
		touch(); /* must die of SIGSEGV now */
	} else if (strcmp(s, "mask") == 0) {
		sa.sa_handler = on_mask;
		sigemptyset(&sa.sa_mask);
		sigaddset(&sa.sa_mask, SIGUSR1);
		sigaction(SIGSEGV, &sa, NULL);
		guard();
		touch();
		sa.sa_flags = SA_NODEFER;
		sigaction(SIGSEGV, &sa, NULL);
		guard();
		touch();
	} else if (strcmp(s, "raise") == 0) {
		sa.sa_sigaction = on_info;
		sa.sa_flags = SA_SIGINFO;
		sigaction(SIGSEGV, &sa, NULL);
		raise(SIGSEGV);
		printf("raised: handled %d, sent by a process %d\n", (int)hits, (int)last_code_user);
		signal(SIGSEGV, SIG_IGN);
		raise(SIGSEGV);
		printf("raised while ignored: still running\n");
		signal(SIGSEGV, SIG_DFL);
		raise(SIGSEGV); /* must die of SIGSEGV */
	} else if (strcmp(s, "ignored-fault") == 0) {
		signal(SIGSEGV, SIG_IGN);
		guard();
		touch(); /* a real fault kills even when ignored */
	} else if (strcmp(s, "longjmp") == 0) {
		signal(SIGSEGV, on_jump);
		for (volatile int i = 0; i < 3; i++) {
			guard();
			if (sigsetjmp(jb, 1) == 0)
				touch();
		}
		printf("jumped out %d times\n", (int)hits);
	} else if (strcmp(s, "bus") == 0) {
		char path[] = "/tmp/nb-segv-XXXXXX";
		int fd = mkstemp(path);
		unlink(path);
		char *m = mmap(NULL, (size_t)pagesz, PROT_READ, MAP_SHARED, fd, 0); /* file is empty */
		sigsetjmp(jb, 1) == 0 ? (void)(signal(SIGBUS, on_jump), *(volatile char *)m) : (void)0;
		printf("SIGBUS handled %d\n", (int)hits);
		signal(SIGBUS, SIG_DFL);
		(void)*(volatile char *)m; /* must die of SIGBUS */
	} else {
		return 2;
	}
	return 0;
}
