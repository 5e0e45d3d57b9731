/*
 * hook_signal.c - the program's signal dispositions.
 *
 * Owns: sigaction, signal, bsd_signal, sysv_signal and __sysv_signal.
 * Today they pass straight through; they exist so that the fault handler
 * of the phantom-buffer work can own the kernel's SIGSEGV/SIGBUS slot and
 * keep the program's own handlers in a store it chains to. glibc
 * implements signal() and friends on its internal __sigaction, which no
 * sigaction hook sees, so each of them has to be interposed by name.
 * Must not: change any disposition or result while it only passes through.
 */
#include "hook.h"

#include <signal.h>

NB_EXPORT int sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
	return NB_CALL(sigaction, NB_NOSYS, sig, act, old);
}

NB_EXPORT __sighandler_t signal(int sig, __sighandler_t h)
{
	return NB_CALL(signal, (errno = ENOSYS, SIG_ERR), sig, h);
}

NB_EXPORT __sighandler_t bsd_signal(int sig, __sighandler_t h)
{
	return NB_CALL(bsd_signal, (errno = ENOSYS, SIG_ERR), sig, h);
}

NB_EXPORT __sighandler_t sysv_signal(int sig, __sighandler_t h)
{
	return NB_CALL(sysv_signal, (errno = ENOSYS, SIG_ERR), sig, h);
}

NB_EXPORT __sighandler_t __sysv_signal(int sig, __sighandler_t h)
{
	return NB_CALL(__sysv_signal, (errno = ENOSYS, SIG_ERR), sig, h);
}
