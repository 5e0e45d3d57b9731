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
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/uio.h>

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
	nb_kread_prctl(option, a2);
	return NB_CALL(prctl, (int)syscall(SYS_prctl, option, a2, a3, a4, a5), option, a2, a3,
		       a4, a5);
}

#ifdef NB_HOOK_SYSCALL
__thread long nb_syscall_sixth __attribute__((tls_model("initial-exec"), used,
					       visibility("hidden")));
#ifndef SA_RESTORER
#define SA_RESTORER 0x04000000 /* asm/signal.h: libc's sigreturn trampoline */
#endif
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

/* The kernel's struct sigaction for rt_sigaction(2) (x86_64 layout). */
struct k_sigaction {
	void (*handler)(int);
	unsigned long flags;
	void (*restorer)(void);
	uint64_t mask;
};

/* syscall(SYS_rt_sigaction) on a signal fault.c owns: the program's store,
 * as the sigaction hook does, in the kernel's layout. */
static long owned_rt_sigaction(int sig, const struct k_sigaction *kact, struct k_sigaction *kold,
			       long size)
{
	if (size != sizeof(uint64_t))
		return nb_raw_syscall(SYS_rt_sigaction, sig, kact, kold, size, 0L, 0L); /* EINVAL */
	struct sigaction act, old;
	struct k_sigaction k;
	if (kact != NULL) {
		if (!nb_copy_in(&k, kact, sizeof k)) {
			errno = EFAULT;
			return -1;
		}
		memset(&act, 0, sizeof act);
		act.sa_handler = k.handler;
		act.sa_flags = (int)(k.flags & ~(unsigned long)SA_RESTORER);
		memcpy(&act.sa_mask, &k.mask, sizeof k.mask);
	}
	nb_fault_sigaction(sig, kact ? &act : NULL, &old);
	if (kact != NULL)
		nb_sigview_installed(sig, &act);
	if (kold != NULL) {
		memset(&k, 0, sizeof k);
		k.handler = old.sa_handler;
		k.flags = (unsigned long)old.sa_flags;
		memcpy(&k.mask, &old.sa_mask, sizeof k.mask);
		/* The kernel's EFAULT for a bad pointer, never a crash. */
		struct iovec l = { &k, sizeof k }, r = { kold, sizeof k };
		if (nb_raw_syscall(SYS_process_vm_writev, (long)nb_g.pid, (long)&l, 1L, (long)&r, 1L,
				   0L) != (long)sizeof k) {
			errno = EFAULT;
			return -1;
		}
	}
	return 0;
}

/* syscall(SYS_fork): what _Fork does (hook_signal.c). A C frame is fine
 * for fork - the child runs on its own copy of the stack - unlike vfork
 * or clone with CLONE_VM, which are passed straight through. */
static long raw_fork(void)
{
	return nb_raw_syscall(SYS_fork, 0L, 0L, 0L, 0L, 0L, 0L);
}

/*
 * System calls made through glibc's syscall() that the library's libc
 * hooks would have seen under their libc names: the same hook runs, so a
 * program (or an allocator) that calls syscall(SYS_rt_sigprocmask, ...),
 * syscall(SYS_munmap, ...) or syscall(SYS_fork) gets the same care as
 * with the wrappers. The libc hooks return -1 with errno, as syscall()
 * does.
 */
__attribute__((used)) long nb_syscall_seen(long nr, long a1, long a2, long a3, long a4, long a5);
__attribute__((used)) long nb_syscall_seen(long nr, long a1, long a2, long a3, long a4, long a5)
{
	switch (nr) {
	case SYS_rt_sigprocmask:
		/* The kernel's sigset is 8 bytes; glibc's sigset_t starts
		 * with the same 64 bits, which is all sigguard.c reads. */
		if (a4 == (long)sizeof(uint64_t))
			nb_sigguard_mask((int)a1, (const sigset_t *)a2);
		break;
	case SYS_rt_sigaction: {
		struct k_sigaction k;
		/* Another signal's handler with SIGSEGV in its mask: as the
		 * sigaction hook does. */
		if (a1 != SIGSEGV && a2 != 0 && nb_copy_in(&k, (const void *)a2, sizeof k) &&
		    k.handler != SIG_DFL && k.handler != SIG_IGN && (k.mask & (1ull << (SIGSEGV - 1))))
			nb_sigguard_mask_bits(1ull << (SIGSEGV - 1));
		if (nb_fault_owns((int)a1)) /* SIGSEGV, SIGBUS, the lease signal */
			return owned_rt_sigaction((int)a1, (const struct k_sigaction *)a2,
						  (struct k_sigaction *)a3, a4);
		if (nb_term_held((int)a1)) /* a termination signal at SIG_DFL: termsig.c */
			return nb_term_rt_sigaction((int)a1, (const void *)a2, (void *)a3, a4);
		break;
	}
	case SYS_userfaultfd:
		/* No libc wrapper in glibc 2.36: this is how programs make one
		 * (sigguard.c "uffd"). */
		nb_sigguard_uffd();
		break;
	case SYS_ioctl:
		if (NB_UFFD_IOCTL(a2))
			nb_sigguard_uffd();
		break;
	case SYS_exit_group:
		/* The way out without exit(3) or _exit(2): the report first. */
		nb_exit_report();
		break;
	case SYS_fork:
		return nb_fork_around(raw_fork);
	case SYS_close_range:
		return close_range((unsigned)a1, (unsigned)a2, (int)a3);
	case SYS_munmap:
		return munmap((void *)a1, (size_t)a2);
	case SYS_mmap:
		return (long)mmap((void *)a1, (size_t)a2, (int)a3, (int)a4, (int)a5,
				  (off_t)nb_syscall_sixth);
	case SYS_mremap:
		return (long)mremap((void *)a1, (size_t)a2, (size_t)a3, (int)a4, (void *)a5);
	case SYS_madvise:
		return madvise((void *)a1, (size_t)a2, (int)a3);
	case SYS_mprotect:
		return mprotect((void *)a1, (size_t)a2, (int)a3);
	case SYS_pkey_mprotect:
		return pkey_mprotect((void *)a1, (size_t)a2, (int)a3, (int)a4);
	}
	return nb_raw_syscall(nr, a1, a2, a3, a4, a5, nb_syscall_sixth);
}

#define NB_STR_(x) #x
#define NB_STR(x) NB_STR_(x)
#define NB_SEEN(nr) "	cmpq $" NB_STR(nr) ", %rdi\n	je 1f\n"
/* syscall(nr, a1..a6): the sixth argument is on the stack at 8(%rsp);
 * the C function takes five, so it is parked in a thread-local slot
 * first (only mmap has six). */
__asm__(".text\n"
	".globl syscall\n"
	".type syscall, @function\n"
	"syscall:\n"
	"	cmpq $" NB_STR(SYS_seccomp) ", %rdi\n"
	"	je nb_syscall_sandbox\n"
	"	cmpq $" NB_STR(SYS_prctl) ", %rdi\n"
	"	je nb_syscall_sandbox\n"
	NB_SEEN(SYS_rt_sigprocmask) NB_SEEN(SYS_rt_sigaction) NB_SEEN(SYS_fork)
	NB_SEEN(SYS_close_range) NB_SEEN(SYS_munmap) NB_SEEN(SYS_mmap)
	NB_SEEN(SYS_mremap) NB_SEEN(SYS_madvise) NB_SEEN(SYS_mprotect) NB_SEEN(SYS_pkey_mprotect)
	NB_SEEN(SYS_exit_group) NB_SEEN(SYS_userfaultfd) NB_SEEN(SYS_ioctl)
	"	jmp nb_raw_syscall\n"
	"1:	movq nb_syscall_sixth@gottpoff(%rip), %r11\n"
	"	movq 8(%rsp), %rax\n"
	"	movq %rax, %fs:(%r11)\n"
	"	jmp nb_syscall_seen\n"
	".size syscall, .-syscall\n");
#endif
