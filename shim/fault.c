/*
 * fault.c - owns the kernel's SIGSEGV and SIGBUS slots; the program keeps
 * its own view of them.
 *
 * Owns: the trampoline the kernel calls on SIGSEGV/SIGBUS, the store of the
 * program's own actions for those two signals, and chaining to them.
 * Phantom buffers (guarded pages filled on first touch, phantom.c) are
 * resolved here first; every other fault goes to the program exactly as
 * if the library were not there.
 * Must not: allocate, lock, or call anything that is not async-signal-safe
 * in the trampoline; lose a fault; leave the program's handler unable to
 * see its own sa_mask, SA_RESETHAND or SA_NODEFER semantics.
 *
 * The model (Onload's and HotSpot's libjsig's): once installed, the kernel
 * always holds our SA_SIGINFO trampoline; sigaction/signal/bsd_signal/
 * sysv_signal on these two signals read and write a store instead, and
 * answer with what the program set (never our trampoline). An action
 * installed before us (by another library's constructor, or SIG_IGN
 * inherited across exec) is adopted into the store at install time.
 *
 * The store is a seqlock of two slots so the trampoline can read it
 * without a lock: a writer (serialised by a spin flag, with all signals
 * blocked so a handler can never spin against its own thread) fills the
 * inactive slot and then bumps the sequence; a reader copies
 * slot[seq & 1] and retries if seq moved meanwhile.
 *
 * What the kernel no longer applies for the program, we emulate when
 * calling its handler (sigaction(2)): sa_mask plus the signal itself
 * unless SA_NODEFER is blocked for the call, SA_RESETHAND resets the
 * stored action to SIG_DFL before the call. SIG_DFL and SIG_IGN on a real
 * fault both end the process with that signal, as the kernel does (a
 * synchronous fault that is ignored or blocked is forced to the default
 * action, see force_sig_fault in kernel/signal.c): we restore the default
 * disposition and return, the instruction faults again and the kernel
 * kills the process with the genuine signal, core dump included. For a
 * signal sent with kill()/raise() (si_code <= 0) nothing would fault
 * again, so SIG_IGN ignores it and SIG_DFL re-raises it.
 */
#include "internal.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

struct store {
	atomic_uint seq;
	atomic_flag busy;
	struct sigaction slot[2];
};

static struct store stores[2]; /* [0] SIGSEGV, [1] SIGBUS */
static atomic_int installed;

static struct store *store_of(int sig)
{
	if (sig == SIGSEGV)
		return &stores[0];
	if (sig == SIGBUS)
		return &stores[1];
	return NULL;
}

bool nb_fault_owns(int sig)
{
	return (sig == SIGSEGV || sig == SIGBUS) && atomic_load(&installed);
}

static void store_read(struct store *s, struct sigaction *out)
{
	for (;;) {
		unsigned q = atomic_load_explicit(&s->seq, memory_order_acquire);
		memcpy(out, &s->slot[q & 1], sizeof *out);
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(&s->seq, memory_order_relaxed) == q)
			return;
	}
}

static void store_write(struct store *s, const struct sigaction *in)
{
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	while (atomic_flag_test_and_set_explicit(&s->busy, memory_order_acquire))
		;
	unsigned q = atomic_load_explicit(&s->seq, memory_order_relaxed);
	memcpy(&s->slot[(q + 1) & 1], in, sizeof *in);
	atomic_store_explicit(&s->seq, q + 1, memory_order_release);
	atomic_flag_clear_explicit(&s->busy, memory_order_release);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* The kernel's disposition back to SIG_DFL, so the next delivery of sig
 * is the genuine one. */
static void kernel_default(int sig)
{
	struct sigaction dfl;
	memset(&dfl, 0, sizeof dfl);
	dfl.sa_handler = SIG_DFL;
	NB_REAL(sigaction)(sig, &dfl, NULL);
}

static void chain(int sig, siginfo_t *info, void *uc)
{
	struct store *s = store_of(sig);
	struct sigaction a;
	store_read(s, &a);
	bool sent = info == NULL || info->si_code <= 0; /* kill, raise, sigqueue */

	if (!(a.sa_flags & SA_SIGINFO) && (a.sa_handler == SIG_DFL || a.sa_handler == SIG_IGN)) {
		if (sent && a.sa_handler == SIG_IGN)
			return;
		kernel_default(sig);
		if (sent) /* nothing re-faults: deliver it again, now fatal */
			syscall(SYS_tgkill, getpid(), syscall(SYS_gettid), sig);
		return;
	}

	if (a.sa_flags & SA_RESETHAND) {
		struct sigaction dfl;
		memset(&dfl, 0, sizeof dfl);
		dfl.sa_handler = SIG_DFL;
		store_write(s, &dfl);
	}
	sigset_t mask = a.sa_mask, old;
	if (!(a.sa_flags & SA_NODEFER))
		sigaddset(&mask, sig);
	pthread_sigmask(SIG_BLOCK, &mask, &old);
	if (a.sa_flags & SA_SIGINFO)
		a.sa_sigaction(sig, info, uc);
	else
		a.sa_handler(sig);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

static void trampoline(int sig, siginfo_t *info, void *uc)
{
	int saved = errno;
	/* A touch of a phantom: fill it and let the access run again. Only
	 * real faults (si_code > 0) qualify: a kill() carries no address. */
	if (sig == SIGSEGV && info != NULL && info->si_code > 0 && nb_phantom_any() &&
	    nb_phantom_fault((uintptr_t)info->si_addr)) {
		errno = saved;
		return;
	}
	chain(sig, info, uc);
	errno = saved;
}

/* Takes (or takes back) the kernel slots. Whatever is there and is not
 * our trampoline - the state at start-up, or a handler set behind the
 * hooks (a raw rt_sigaction, glibc-internal __sigaction) - becomes the
 * program's action. */
int nb_fault_install(void)
{
	atomic_store(&installed, 1);
	static const int sigs[] = { SIGSEGV, SIGBUS };
	for (unsigned i = 0; i < 2; i++) {
		struct sigaction mine, prev;
		memset(&mine, 0, sizeof mine);
		mine.sa_sigaction = trampoline;
		/* SA_NODEFER: the program's handler may fault again (and its
		 * own mask is applied by chain()); SA_ONSTACK: a fault on a
		 * stack overflow needs the alternate stack the program set. */
		mine.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER | SA_RESTART;
		sigemptyset(&mine.sa_mask);
		if (NB_REAL(sigaction)(sigs[i], NULL, &prev) != 0)
			return -1;
		if ((prev.sa_flags & SA_SIGINFO) && prev.sa_sigaction == trampoline)
			continue;
		store_write(store_of(sigs[i]), &prev);
		if (NB_REAL(sigaction)(sigs[i], &mine, NULL) != 0)
			return -1;
	}
	return 0;
}

/* sigaction() on SIGSEGV/SIGBUS once we own them: the program's view. */
int nb_fault_sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
	struct store *s = store_of(sig);
	struct sigaction cur;
	store_read(s, &cur);
	if (act != NULL) {
		struct sigaction copy = *act;
		/* The kernel ignores these for the stored action too. */
		sigdelset(&copy.sa_mask, SIGKILL);
		sigdelset(&copy.sa_mask, SIGSTOP);
		store_write(s, &copy);
	}
	if (old != NULL)
		*old = cur;
	return 0;
}

/* signal()-style calls: returns the previous handler. */
__sighandler_t nb_fault_signal(int sig, __sighandler_t h, int flags)
{
	struct sigaction a, old;
	memset(&a, 0, sizeof a);
	a.sa_handler = h;
	a.sa_flags = flags;
	sigemptyset(&a.sa_mask);
	if (!(flags & SA_NODEFER))
		sigaddset(&a.sa_mask, sig); /* as glibc's signal() does */
	nb_fault_sigaction(sig, &a, &old);
	return old.sa_handler; /* shares storage with sa_sigaction */
}
