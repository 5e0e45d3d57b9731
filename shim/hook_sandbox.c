/*
 * hook_sandbox.c - the calls that install a seccomp filter.
 *
 * Owns: prctl and syscall. prctl(PR_SET_SECCOMP, ...) and
 * syscall(SYS_seccomp, ...) / syscall(SYS_prctl, PR_SET_SECCOMP, ...)
 * that would install strict mode or a filter first switch the library to
 * its pass-through (sandbox.c) - while every call is still allowed - and
 * then make the real call. Everything else passes straight through.
 * Must not: make any other system call, or change an argument, result or
 * errno.
 *
 * syscall() is exported by glibc and is how libseccomp's seccomp_load()
 * installs its filters, so it is hooked, in assembly: a C wrapper would
 * add a stack frame, and syscall(SYS_vfork) or syscall(SYS_clone, ...)
 * returning twice through it would break where glibc's frameless version
 * works. The hook compares the number and otherwise jumps into the same
 * code glibc runs (sandbox.c's nb_raw_syscall); the library's own raw
 * calls go to nb_raw_syscall directly (internal.h), never through here.
 * Other architectures keep glibc's syscall(): a filter installed by raw
 * syscall there is a documented limit.
 * Not seen at all: a filter installed with an inline `syscall`
 * instruction (no libc call) - the library then makes calls the filter
 * may refuse.
 */
#include "hook.h"

#include <linux/seccomp.h>
#include <stdarg.h>
#include <sys/prctl.h>

/* Does this call install strict mode or a filter (if it succeeds)? A
 * NULL program is EFAULT with nothing installed: libseccomp probes for
 * seccomp(2) that way, and the probe must not turn the library off. */
static bool installs_prctl(unsigned long mode, unsigned long prog)
{
	return mode == SECCOMP_MODE_STRICT || (mode == SECCOMP_MODE_FILTER && prog != 0);
}

static bool installs_seccomp(unsigned long op, unsigned long args)
{
	return op == SECCOMP_SET_MODE_STRICT || (op == SECCOMP_SET_MODE_FILTER && args != 0);
}

NB_EXPORT int prctl(int option, ...)
{
	/* glibc's prctl reads four further arguments, whatever the option. */
	va_list ap;
	va_start(ap, option);
	unsigned long a2 = va_arg(ap, unsigned long);
	unsigned long a3 = va_arg(ap, unsigned long);
	unsigned long a4 = va_arg(ap, unsigned long);
	unsigned long a5 = va_arg(ap, unsigned long);
	va_end(ap);
	if (NB_UNLIKELY(option == PR_SET_SECCOMP) && installs_prctl(a2, a3))
		nb_sandbox_enter();
	return NB_CALL(prctl, (int)syscall(SYS_prctl, option, a2, a3, a4, a5), option, a2, a3,
		       a4, a5);
}

#ifdef NB_HOOK_SYSCALL
__attribute__((used)) long nb_syscall_sandbox(long nr, long a1, long a2, long a3, long a4,
					      long a5);

/* syscall(SYS_seccomp or SYS_prctl, ...): at most five arguments. */
__attribute__((used)) long nb_syscall_sandbox(long nr, long a1, long a2, long a3, long a4,
					      long a5)
{
	if ((nr == SYS_seccomp && installs_seccomp((unsigned long)a1, (unsigned long)a3)) ||
	    (nr == SYS_prctl && a1 == PR_SET_SECCOMP &&
	     installs_prctl((unsigned long)a2, (unsigned long)a3)))
		nb_sandbox_enter();
	return nb_raw_syscall(nr, a1, a2, a3, a4, a5, 0L);
}

#define NB_STR_(x) #x
#define NB_STR(x) NB_STR_(x)
__asm__(".text\n"
	".globl syscall\n"
	".type syscall, @function\n"
	"syscall:\n"
	"	cmpq $" NB_STR(SYS_seccomp) ", %rdi\n"
	"	je nb_syscall_sandbox\n"
	"	cmpq $" NB_STR(SYS_prctl) ", %rdi\n"
	"	je nb_syscall_sandbox\n"
	"	jmp nb_raw_syscall\n"
	".size syscall, .-syscall\n");
#endif
