/*
 * hook_signal.c - the program's signal dispositions.
 *
 * Owns: sigaction, signal, bsd_signal, sysv_signal, __sysv_signal, sigset,
 * sigignore, siginterrupt; the calls that change a signal mask (below);
 * and _Fork.
 * Once fault.c owns the kernel's SIGSEGV/SIGBUS slots, calls on those two
 * signals read and write the program's store there; everything else passes
 * straight through. glibc implements signal() and friends on its internal
 * __sigaction, which no sigaction hook sees, so each of them has to be
 * interposed by name, with the flags glibc would use.
 * Every disposition that takes effect is also told to sigview.c. Under a
 * seccomp filter (sandbox.c) every call goes straight to the kernel.
 * The termination signals the program leaves at SIG_DFL hold the final
 * report's handler in the kernel (termsig.c): calls on them answer with
 * SIG_DFL where the kernel has that handler, and take the slot again
 * after a wrapper installed SIG_DFL through glibc's internal __sigaction.
 * Must not: change any disposition or result of any other signal.
 */
#pragma GCC diagnostic ignored "-Wdeprecated-declarations" /* sighold, sigset, ... */
#include "hook.h"

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <ucontext.h>

/* fault.c holds the kernel's slot for these - unless it gave it back (a
 * seccomp filter came, sandbox.c; or the slot was taken behind it,
 * sigguard.c): then calls go straight to the kernel. */
static inline bool owned(int sig)
{
	return NB_UNLIKELY(nb_fault_owns(sig));
}

/*
 * A handler of another signal installed with SIGSEGV in its sa_mask (the
 * sigfillset idiom) runs with SIGSEGV blocked: a phantom it touched would
 * kill the process. Leaving SIGSEGV out of the kernel's copy would show
 * (a handler that longjmps out keeps the mask, exec and fork children
 * inherit it, sigpending sees it), so such a handler ends deferral for
 * the process instead, every phantom filled first (sigguard.c).
 */
static bool masks_segv(int sig, const struct sigaction *act)
{
	return sig != SIGSEGV && act != NULL &&
	       ((act->sa_flags & SA_SIGINFO) ||
		(act->sa_handler != SIG_DFL && act->sa_handler != SIG_IGN)) &&
	       sigismember(&act->sa_mask, SIGSEGV) == 1;
}

NB_EXPORT int sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
	int r;
	struct sigaction peek;
	if (act != NULL && nb_copy_in(&peek, act, sizeof peek)) {
		if (masks_segv(sig, &peek))
			NB_KEEP_ERRNO(nb_sigguard_mask_bits(1ull << (SIGSEGV - 1)));
	}
	if (owned(sig))
		r = nb_fault_sigaction(sig, act, old);
	else if (NB_UNLIKELY(nb_term_held(sig)))
		r = nb_term_sigaction(sig, act, old);
	else
		r = NB_CALL(sigaction, NB_NOSYS, sig, act, old);
	if (r == 0)
		nb_sigview_installed(sig, act);
	return r;
}
/* glibc exports its internal name too (GLIBC_2.2.5), and programs that
 * want the "real" sigaction call it: the same hook. */
int __sigaction(int sig, const struct sigaction *act, struct sigaction *old);
NB_EXPORT int __sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
	return sigaction(sig, act, old);
}

/* The glibc wrappers below all install with these flags; sigview.c keeps
 * its summary from what they were asked for once the call succeeded. */
static __sighandler_t noted(int sig, __sighandler_t h, int flags, __sighandler_t r)
{
	if (r != SIG_ERR)
		r = nb_term_after(sig, r);
	if (r != SIG_ERR)
		nb_sigview_installed_handler(sig, h, flags);
	return r;
}

/* glibc: signal() and bsd_signal() are BSD semantics (SA_RESTART);
 * sysv_signal() is one-shot, unmasked (SA_RESETHAND | SA_NODEFER). */
#define NB_BSD_FLAGS SA_RESTART
#define NB_SYSV_FLAGS (SA_RESETHAND | SA_NODEFER)

NB_EXPORT __sighandler_t signal(int sig, __sighandler_t h)
{
	if (owned(sig))
		return noted(sig, h, NB_BSD_FLAGS, nb_fault_signal(sig, h, NB_BSD_FLAGS));
	return noted(sig, h, NB_BSD_FLAGS, NB_CALL(signal, (errno = ENOSYS, SIG_ERR), sig, h));
}
/* ssignal(3) is glibc's signal() under another name (BSD semantics). */
__sighandler_t ssignal(int sig, __sighandler_t h);
NB_EXPORT __sighandler_t ssignal(int sig, __sighandler_t h)
{
	return signal(sig, h);
}

NB_EXPORT __sighandler_t bsd_signal(int sig, __sighandler_t h)
{
	if (owned(sig))
		return noted(sig, h, NB_BSD_FLAGS, nb_fault_signal(sig, h, NB_BSD_FLAGS));
	return noted(sig, h, NB_BSD_FLAGS, NB_CALL(bsd_signal, (errno = ENOSYS, SIG_ERR), sig, h));
}

NB_EXPORT __sighandler_t sysv_signal(int sig, __sighandler_t h)
{
	if (owned(sig))
		return noted(sig, h, NB_SYSV_FLAGS, nb_fault_signal(sig, h, NB_SYSV_FLAGS));
	return noted(sig, h, NB_SYSV_FLAGS, NB_CALL(sysv_signal, (errno = ENOSYS, SIG_ERR), sig, h));
}

NB_EXPORT __sighandler_t __sysv_signal(int sig, __sighandler_t h)
{
	if (owned(sig))
		return noted(sig, h, NB_SYSV_FLAGS, nb_fault_signal(sig, h, NB_SYSV_FLAGS));
	return noted(sig, h, NB_SYSV_FLAGS, NB_CALL(__sysv_signal, (errno = ENOSYS, SIG_ERR), sig, h));
}

/* ---- masks: a mask that blocks SIGSEGV must never meet a phantom ----
 *
 * Every libc call that can leave SIGSEGV blocked tells sigguard.c before
 * it takes effect, which then fills every phantom and makes no new one
 * (a synchronous fault on a blocked signal kills the process). glibc's
 * sighold, sigset(SIG_HOLD), sigblock and sigsetmask use its internal
 * __sigprocmask, which a sigprocmask hook never sees: each is interposed
 * by name. Calls that wait under a temporary mask count while they wait
 * (a handler run during the call runs under that mask). */

NB_EXPORT int sigsetmask(int mask)
{
	nb_sigguard_mask_bits((uint64_t)(unsigned)mask);
	return NB_CALL(sigsetmask, NB_NOSYS, mask);
}

NB_EXPORT int sigblock(int mask)
{
	nb_sigguard_mask_bits((uint64_t)(unsigned)mask);
	return NB_CALL(sigblock, NB_NOSYS, mask);
}

NB_EXPORT int sighold(int sig)
{
	if (sig == SIGSEGV)
		nb_sigguard_mask_bits(1ull << (SIGSEGV - 1));
	return NB_CALL(sighold, NB_NOSYS, sig);
}

/* One mask bit of sig, for the *_set helpers below. */
static sigset_t only(int sig)
{
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, sig);
	return s;
}

/* sigset(3) as glibc does it, on the program's stored action for the
 * signals fault.c owns: SIG_HOLD blocks, anything else installs (no
 * flags, empty mask) and unblocks; SIG_HOLD is returned if the signal
 * was blocked before. */
static __sighandler_t owned_sigset(int sig, __sighandler_t disp)
{
	sigset_t one = only(sig), before;
	struct sigaction act, old;
	if (disp == SIG_HOLD) {
		if (NB_REAL(sigprocmask)(SIG_BLOCK, &one, &before) != 0)
			return SIG_ERR;
		if (sigismember(&before, sig))
			return SIG_HOLD;
		nb_fault_sigaction(sig, NULL, &old);
		return old.sa_handler;
	}
	memset(&act, 0, sizeof act);
	act.sa_handler = disp;
	sigemptyset(&act.sa_mask);
	nb_fault_sigaction(sig, &act, &old);
	nb_sigview_installed(sig, &act);
	if (NB_REAL(sigprocmask)(SIG_UNBLOCK, &one, &before) != 0)
		return SIG_ERR;
	return sigismember(&before, sig) ? SIG_HOLD : old.sa_handler;
}

NB_EXPORT __sighandler_t sigset(int sig, __sighandler_t disp)
{
	if (disp == SIG_HOLD && sig == SIGSEGV)
		nb_sigguard_mask_bits(1ull << (SIGSEGV - 1));
	if (owned(sig) && disp != SIG_ERR)
		return owned_sigset(sig, disp);
	__sighandler_t r = NB_CALL(sigset, (errno = ENOSYS, SIG_ERR), sig, disp);
	if (r != SIG_ERR && disp != SIG_HOLD) /* SIG_HOLD installs nothing */
		r = nb_term_after(sig, r);
	else if (nb_term_is_ours((const void *)r))
		r = SIG_DFL;
	if (r != SIG_ERR && disp != SIG_HOLD)
		nb_sigview_installed_handler(sig, disp, 0);
	return r;
}

NB_EXPORT int sigignore(int sig)
{
	if (owned(sig)) {
		nb_fault_signal(sig, SIG_IGN, 0);
		return 0;
	}
	int r = NB_CALL(sigignore, NB_NOSYS, sig);
	if (r == 0)
		nb_sigview_installed_handler(sig, SIG_IGN, 0);
	return r;
}

/* siginterrupt(3): the current action again, with SA_RESTART cleared
 * (interrupt) or set. */
NB_EXPORT int siginterrupt(int sig, int interrupt)
{
	if (owned(sig)) {
		struct sigaction a;
		nb_fault_sigaction(sig, NULL, &a);
		if (interrupt)
			a.sa_flags &= ~SA_RESTART;
		else
			a.sa_flags |= SA_RESTART;
		nb_fault_sigaction(sig, &a, NULL);
		return 0;
	}
	int r = NB_CALL(siginterrupt, NB_NOSYS, sig, interrupt);
	if (r == 0)
		nb_term_after(sig, SIG_DFL); /* it wrote the action back through glibc */
	if (r == 0) {
		struct sigaction a;
		if (NB_REAL(sigaction)(sig, NULL, &a) == 0) {
			if (nb_term_is_ours((const void *)a.sa_handler))
				a.sa_handler = SIG_DFL; /* termsig.c's, not the program's */
			nb_sigview_installed(sig, &a);
		}
	}
	return r;
}

/* setcontext and swapcontext install the mask saved in the context. The
 * hook only looks at it: swapcontext saves a context that resumes in
 * this frame, which returns to the caller as an ordinary call would. */
static void context_mask(const ucontext_t *uc)
{
	sigset_t m;
	if (uc != NULL && nb_copy_in(&m, &uc->uc_sigmask, sizeof m))
		nb_sigguard_mask(SIG_SETMASK, &m);
}

NB_EXPORT int setcontext(const ucontext_t *uc)
{
	context_mask(uc);
	return NB_CALL(setcontext, NB_NOSYS, uc);
}

NB_EXPORT int swapcontext(ucontext_t *oucp, const ucontext_t *uc)
{
	context_mask(uc);
	return NB_CALL(swapcontext, NB_NOSYS, oucp, uc);
}

/* A thread created with this attribute starts with this mask (glibc
 * 2.32): as good as the thread setting it itself, and seen only here. */
NB_EXPORT int pthread_attr_setsigmask_np(pthread_attr_t *attr, const sigset_t *mask)
{
	nb_sigguard_mask(SIG_SETMASK, mask);
	return NB_CALL(pthread_attr_setsigmask_np, ENOSYS, attr, mask);
}

/* ---- _Fork: a fork without the atfork handlers ----
 * glibc 2.34's _Fork() runs no pthread_atfork handler, so the library's
 * own run here, around it: the child must not inherit an entry held by a
 * thread it does not have, nor the parent's memory descriptor. */
static long real_Fork(void)
{
	return NB_CALL(_Fork, (pid_t)syscall(SYS_fork));
}

NB_EXPORT pid_t _Fork(void)
{
	return (pid_t)nb_fork_around(real_Fork);
}
