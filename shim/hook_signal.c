/*
 * hook_signal.c - the program's signal dispositions.
 *
 * Owns: sigaction, signal, bsd_signal, sysv_signal and __sysv_signal.
 * Once fault.c owns the kernel's SIGSEGV/SIGBUS slots, calls on those two
 * signals read and write the program's store there; everything else passes
 * straight through. glibc implements signal() and friends on its internal
 * __sigaction, which no sigaction hook sees, so each of them has to be
 * interposed by name, with the flags glibc would use.
 * Every disposition that takes effect is also told to sigview.c. Under a
 * seccomp filter (sandbox.c) every call goes straight to the kernel.
 * Must not: change any disposition or result of any other signal.
 */
#include "hook.h"

#include <signal.h>

/* fault.c holds the kernel's slot for these - unless a seccomp filter
 * came: then the program's actions are back in the kernel (sandbox.c)
 * and calls go straight there. */
static inline bool owned(int sig)
{
	return NB_UNLIKELY(nb_fault_owns(sig)) && !nb_sandboxed();
}

NB_EXPORT int sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
	int r;
	if (owned(sig))
		r = nb_fault_sigaction(sig, act, old);
	else
		r = NB_CALL(sigaction, NB_NOSYS, sig, act, old);
	if (r == 0)
		nb_sigview_installed(sig, act);
	return r;
}

/* The glibc wrappers below all install with these flags; sigview.c keeps
 * its summary from what they were asked for once the call succeeded. */
static __sighandler_t noted(int sig, __sighandler_t h, int flags, __sighandler_t r)
{
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
