/*
 * termsig.c - the report of a process ended by a termination signal.
 *
 * Owns: the kernel's slots of the termination signals the program leaves
 * at SIG_DFL (SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGALRM),
 * and the handler that writes the final report there and then lets the
 * signal end the process exactly as the default action would have.
 * Must not: change what the program sees of these signals, or hold a slot
 * whose action the program set to anything but SIG_DFL; in the handler,
 * allocate, lock or use stdio (the report path is async-signal-safe:
 * fmt.c, init.c nb_exit_report).
 *
 * Unlike SIGSEGV (fault.c), the library needs these slots only while the
 * program's action is the default, so no store is kept: the kernel holds
 * the program's own action - its flags, its mask, its restorer - with
 * only the handler word changed from SIG_DFL to ours. A sigaction() that
 * reads the action back gets exactly the kernel's answer with that word
 * turned back into SIG_DFL; one that installs SIG_DFL gets ours in its
 * place, with everything else it asked for; any other action goes to the
 * kernel untouched and the slot is the program's. glibc's signal(),
 * bsd_signal(), sysv_signal() and sigset() call the kernel through glibc's
 * internal __sigaction, which no hook sees: their hooks (hook_signal.c)
 * translate the answer and take the slot again after them
 * (nb_term_after), and so does syscall(SYS_rt_sigaction) (hook_sandbox.c).
 *
 * The end stays the plain one: the handler writes the report, puts
 * SIG_DFL back, sends itself the same signal and unblocks it - the
 * process dies of that signal, with a core where the default action
 * dumps one, and its parent's wait status is the plain run's. A signal
 * the program blocks (sigwait, signalfd) never reaches the handler.
 * What still shows: /proc/PID/status lists these signals as caught, and
 * the handler runs for a few hundred microseconds before the end, while
 * the process's other threads go on.
 *
 * Not held at all: in the init process of a PID namespace (pid 1), where
 * the kernel drops SIG_DFL signals instead of acting on them (a handler
 * would make them interrupt system calls, and the re-raised one would be
 * dropped), and in a process the library does not work in (off, secure,
 * under a seccomp filter).
 */
#include "internal.h"

#include <errno.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define TERM_SIGS                                                                  \
	((1ull << (SIGHUP - 1)) | (1ull << (SIGINT - 1)) | (1ull << (SIGQUIT - 1)) | \
	 (1ull << (SIGTERM - 1)) | (1ull << (SIGUSR1 - 1)) | (1ull << (SIGUSR2 - 1)) | \
	 (1ull << (SIGALRM - 1)))

static atomic_int holding; /* the hooks translate these signals */

/* The kernel's struct sigaction for rt_sigaction(2) (x86_64 layout). */
struct k_sigaction {
	void *handler;
	unsigned long flags;
	void *restorer;
	uint64_t mask;
};

static void term_handler(int sig, siginfo_t *info, void *uc)
{
	(void)info;
	(void)uc;
	int saved = errno;
	/* No handler of the program's runs on this thread meanwhile; the
	 * synchronous signals stay open (one blocked when its fault comes
	 * kills, and SIGSEGV is how a phantom is filled). */
	uint64_t all = ~((1ull << (SIGSEGV - 1)) | (1ull << (SIGBUS - 1)) | (1ull << (SIGILL - 1)) |
			 (1ull << (SIGFPE - 1)) | (1ull << (SIGTRAP - 1)) | (1ull << (SIGSYS - 1))),
		 before;
	syscall(SYS_rt_sigprocmask, SIG_BLOCK, &all, &before, sizeof all);
	nb_exit_report();
	/* The default action, then the signal again: the end the program
	 * would have had. */
	struct k_sigaction dfl = { SIG_DFL, 0, NULL, 0 }, mine;
	syscall(SYS_rt_sigaction, sig, &dfl, &mine, sizeof dfl.mask);
	syscall(SYS_tgkill, syscall(SYS_getpid), syscall(SYS_gettid), sig);
	uint64_t one = 1ull << (sig - 1);
	syscall(SYS_rt_sigprocmask, SIG_UNBLOCK, &one, NULL, sizeof one);
	/* Still here (a tracer took the signal away): as we were. */
	syscall(SYS_rt_sigaction, sig, &mine, NULL, sizeof mine.mask);
	syscall(SYS_rt_sigprocmask, SIG_SETMASK, &before, NULL, sizeof before);
	errno = saved;
}

bool nb_term_held(int sig)
{
	return sig >= 1 && sig <= 64 && (TERM_SIGS & (1ull << (sig - 1))) &&
	       atomic_load_explicit(&holding, memory_order_relaxed);
}

bool nb_term_is_ours(const void *handler)
{
	return handler == (const void *)term_handler;
}

#ifndef SA_RESTORER
#define SA_RESTORER 0x04000000 /* asm/signal.h: libc's sigreturn trampoline */
#endif

/* Slots taken while they had no restorer (the state a process starts
 * in): the kernel needs one to return from our handler, so glibc's goes
 * in with it, and the program's reads of the slot are answered without. */
static atomic_uint_least64_t restorer_added;

static void set_added(int sig, bool on)
{
	uint64_t bit = 1ull << (sig - 1);
	if (on)
		atomic_fetch_or(&restorer_added, bit);
	else
		atomic_fetch_and(&restorer_added, ~bit);
}

static bool added(int sig)
{
	return (atomic_load(&restorer_added) >> (sig - 1)) & 1;
}

/* The slot's action, with the handler word ours if it is SIG_DFL. */
static void take_if_default(int sig)
{
	struct k_sigaction k;
	if (syscall(SYS_rt_sigaction, sig, NULL, &k, sizeof k.mask) != 0 || k.handler != SIG_DFL)
		return;
	if (k.flags & SA_RESTORER) {
		k.handler = (void *)term_handler;
		syscall(SYS_rt_sigaction, sig, &k, NULL, sizeof k.mask);
		return;
	}
	struct sigaction a;
	memset(&a, 0, sizeof a);
	a.sa_sigaction = term_handler;
	a.sa_flags = (int)k.flags;
	memcpy(&a.sa_mask, &k.mask, sizeof k.mask);
	set_added(sig, true);
	if (NB_REAL(sigaction)(sig, &a, NULL) != 0)
		set_added(sig, false);
}

void nb_term_init(void)
{
	/* pid 1 of a namespace: the kernel drops SIG_DFL signals. */
	if (syscall(SYS_getpid) == 1)
		return;
	/* Only where a report was asked for (observe mode, NOBOUNCE_STATS):
	 * a handler is not the kernel's instant kill (other threads run on
	 * while it writes; a sigwait on a signal the program never blocked
	 * takes it instead of dying; a thread needs stack room for it), so
	 * a process that wants no report keeps the plain slots. */
	if (nb_g.cfg.mode != NB_MODE_OBSERVE && nb_g.cfg.stats[0] == '\0')
		return;
	for (int sig = 1; sig <= 64; sig++)
		if (TERM_SIGS & (1ull << (sig - 1)))
			take_if_default(sig);
	atomic_store(&holding, 1);
}

/* The slots back to SIG_DFL, for good: a seccomp filter comes (the
 * handler's calls may be forbidden), or this process became the init of
 * a PID namespace. The program's flags, mask and restorer stay. */
void nb_term_give_back(void)
{
	if (!atomic_exchange(&holding, 0))
		return;
	for (int sig = 1; sig <= 64; sig++) {
		if (!(TERM_SIGS & (1ull << (sig - 1))))
			continue;
		struct k_sigaction k;
		if (syscall(SYS_rt_sigaction, sig, NULL, &k, sizeof k.mask) != 0 ||
		    k.handler != (void *)term_handler)
			continue;
		k.handler = SIG_DFL;
		if (added(sig)) {
			k.flags &= ~(unsigned long)SA_RESTORER;
			k.restorer = NULL;
			set_added(sig, false);
		}
		syscall(SYS_rt_sigaction, sig, &k, NULL, sizeof k.mask);
	}
}

int nb_term_sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
	struct sigaction k;
	const struct sigaction *use = act;
	/* A bad pointer goes to the kernel as it is: EFAULT, as plain. */
	if (act != NULL && nb_copy_in(&k, act, sizeof k) && k.sa_handler == SIG_DFL) {
		k.sa_sigaction = term_handler;
		use = &k;
	}
	bool was_added = added(sig);
	int r = NB_REAL(sigaction)(sig, use, old);
	if (r == 0 && old != NULL && nb_term_is_ours((const void *)old->sa_handler)) {
		old->sa_handler = SIG_DFL;
		if (was_added) {
			old->sa_flags &= ~SA_RESTORER;
			old->sa_restorer = NULL;
		}
	}
	if (r == 0 && act != NULL) /* glibc gave it a restorer of its own */
		set_added(sig, false);
	return r;
}

__sighandler_t nb_term_after(int sig, __sighandler_t r)
{
	if (!nb_term_held(sig))
		return r;
	int saved = errno;
	set_added(sig, false); /* glibc installed it: its restorer is there */
	take_if_default(sig);
	errno = saved;
	return nb_term_is_ours((const void *)r) ? SIG_DFL : r;
}

long nb_term_rt_sigaction(int sig, const void *kact, void *kold, long size)
{
	struct k_sigaction k;
	const void *use = kact;
	/* Without a restorer the kernel could not return from ours: such
	 * a SIG_DFL stays the kernel's, and this signal writes no report. */
	if (size == (long)sizeof k.mask && kact != NULL && nb_copy_in(&k, kact, sizeof k) &&
	    k.handler == SIG_DFL && (k.flags & SA_RESTORER)) {
		k.handler = (void *)term_handler;
		use = &k;
	}
	bool was_added = added(sig);
	long r = syscall(SYS_rt_sigaction, sig, use, kold, size);
	/* The kernel wrote the old action there: the words are writable. */
	if (r == 0 && kold != NULL) {
		struct k_sigaction *o = kold;
		if (nb_term_is_ours(o->handler)) {
			o->handler = SIG_DFL;
			if (was_added) {
				o->flags &= ~(unsigned long)SA_RESTORER;
				o->restorer = NULL;
			}
		}
	}
	if (r == 0 && kact != NULL)
		set_added(sig, false);
	return r;
}
