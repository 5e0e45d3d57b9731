/*
 * hook_exit.c - _exit and _Exit.
 *
 * Owns: the final report of a process that leaves without exit(3) -
 * a daemon's forked worker, a server's master after its shutdown, a
 * child whose exec failed - which runs no destructor. The report is
 * written (once, async-signal-safely: init.c nb_exit_report), then the
 * real call ends the process with the caller's status.
 * Must not: change the status, or write in a vfork child (it shares the
 * parent's memory and descriptors; nb_exit_report tells by the pid).
 * glibc's own internal calls of _exit (posix_spawn's child, quick_exit)
 * do not come through here; exit_group through syscall() does
 * (hook_sandbox.c).
 */
#include "hook.h"

NB_EXPORT void _exit(int status)
{
	nb_exit_report();
	NB_CALL(_exit, (void)syscall(SYS_exit_group, status), status);
	syscall(SYS_exit_group, status);
	__builtin_unreachable();
}

NB_EXPORT void _Exit(int status)
{
	nb_exit_report();
	NB_CALL(_Exit, (void)syscall(SYS_exit_group, status), status);
	syscall(SYS_exit_group, status);
	__builtin_unreachable();
}
