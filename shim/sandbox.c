/*
 * sandbox.c - seccomp: the library never makes a system call a filter
 * has not seen the program make (hazard class 7).
 *
 * Owns: the sandbox state (is a seccomp filter, or strict mode, in force
 * or about to be), its detection at start, the switch to a pure
 * pass-through before a filter the program installs takes effect, and
 * the raw system-call entry the library uses for its own calls.
 * Must not: make a system call once the state is set, on any path; wait
 * on anything but another thread finishing the same switch.
 *
 * A filter can refuse any call by number or arguments and kill the
 * thread or process for it; strict mode (seccomp(2)) allows read, write,
 * _exit and sigreturn only. The library's own calls (fstat to classify,
 * lseek, sendfile, mprotect, the live stats file, the exit report, the
 * SIGSEGV trampoline's chaining) are calls the program never made, so
 * under a filter nothing the library does is known to be allowed. It
 * therefore stops doing anything at all:
 *
 *  - at start (nb_sandbox_detect): a filter inherited across execve shows
 *    in /proc/self/status, "Seccomp: 2" (proc(5)). That file is read with
 *    openat, read and close - calls the dynamic loader has just made with
 *    the same flags to load this very library, so a filter that let the
 *    program start allows them. prctl(PR_GET_SECCOMP) is not used: it is
 *    a call the loader never makes, a filter may kill it (and in strict
 *    mode it is fatal - strict mode itself cannot be inherited, as execve
 *    is not among its four calls). No /proc: the state cannot be told,
 *    so the library stays off (plain is always correct).
 *  - when the program installs one (hook_sandbox.c: prctl(PR_SET_SECCOMP)
 *    and seccomp(2) through syscall()): nb_sandbox_enter() runs first,
 *    while every call is still allowed, and leaves nothing that would
 *    need a call later: every phantom is filled, the pool pipes, file
 *    duplicates, /proc/self/mem and the private log descriptor are
 *    closed, the live stats file is removed, the exit report is written
 *    now (the destructor then does nothing), and the kernel's SIGSEGV and
 *    SIGBUS slots get the program's own actions back, so a real fault
 *    later reaches the program's handler without the trampoline's
 *    sigprocmask/sigaction calls. From then on `active` is 0 and every
 *    hook calls the real function and nothing else.
 *
 * The switch is one way: a filter cannot be removed, and an attempt that
 * fails (EINVAL, EACCES without no_new_privs) still leaves the library
 * off - speed lost, never a byte.
 *
 * nb_raw_syscall is the library's own syscall(): the exported syscall()
 * is a hook (hook_sandbox.c), and internal.h renames the library's calls
 * to this entry so they never pass through it. It is glibc's x86_64
 * syscall.S, frameless like it (a raw vfork or clone through the hook
 * returns exactly as through glibc's).
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/syscall.h>

#if defined(NB_SHARED) && defined(__x86_64__)
__attribute__((visibility("hidden"), used)) long nb_raw_syscall_errno(long e);
__attribute__((visibility("hidden"), used)) long nb_raw_syscall_errno(long e)
{
	errno = (int)e;
	return -1;
}

/* rdi = number, rsi..r9 and 8(%rsp) = arguments 1-6 (the C calling
 * convention of syscall(long, ...)); the kernel wants rax, rdi, rsi, rdx,
 * r10, r8, r9. */
__asm__(".text\n"
	".globl nb_raw_syscall\n"
	".hidden nb_raw_syscall\n"
	".type nb_raw_syscall, @function\n"
	"nb_raw_syscall:\n"
	"	movq %rdi, %rax\n"
	"	movq %rsi, %rdi\n"
	"	movq %rdx, %rsi\n"
	"	movq %rcx, %rdx\n"
	"	movq %r8, %r10\n"
	"	movq %r9, %r8\n"
	"	movq 8(%rsp), %r9\n"
	"	syscall\n"
	"	cmpq $-4095, %rax\n"
	"	jae 1f\n"
	"	ret\n"
	"1:	negq %rax\n"
	"	movq %rax, %rdi\n"
	"	jmp nb_raw_syscall_errno\n"
	".size nb_raw_syscall, .-nb_raw_syscall\n");
#endif

/* 0: no filter known; 1: switching (one thread); 2: pass-through. */
static atomic_int state;

bool nb_sandboxed(void)
{
	return atomic_load_explicit(&state, memory_order_acquire) != 0;
}

/* "Seccomp:\t<mode>" of /proc/self/status: 0 none, 1 strict, 2 filter.
 * Returns the mode, or -1 when the file cannot be read. */
static int status_mode(void)
{
	int fd = (int)syscall(SYS_openat, AT_FDCWD, "/proc/self/status", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	/* The file is about 1.5 KiB; Seccomp: is in its second half. */
	char b[8192];
	size_t have = 0;
	for (;;) {
		ssize_t r = (ssize_t)syscall(SYS_read, fd, b + have, sizeof b - 1 - have);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		have += (size_t)r;
		if (have == sizeof b - 1)
			break;
	}
	syscall(SYS_close, fd);
	if (have == 0)
		return -1;
	b[have] = '\0';
	for (char *p = b; p != NULL && *p != '\0';) {
		if (strncmp(p, "Seccomp:", 8) == 0) {
			p += 8;
			while (*p == ' ' || *p == '\t')
				p++;
			return *p >= '0' && *p <= '9' ? *p - '0' : -1;
		}
		p = strchr(p, '\n');
		if (p != NULL)
			p++;
	}
	return 0; /* a kernel without seccomp has no such line */
}

bool nb_sandbox_detect(void)
{
	if (status_mode() != 0)
		atomic_store(&state, 2);
	return nb_sandboxed();
}

/* The program's action for sig back in the kernel's slot. */
void nb_sandbox_enter(void)
{
	int expect = 0;
	if (!atomic_compare_exchange_strong(&state, &expect, 1)) {
		/* Another thread is switching (its filter is not in force
		 * yet) or has switched: the caller's filter must come after
		 * the last of the switch's calls. Spin: waiting would be a
		 * system call. */
		while (atomic_load(&state) != 2)
			__asm__ __volatile__("" ::: "memory");
		return;
	}
	int saved = errno;
	if (atomic_exchange(&nb_g.active, 0)) {
		nb_settle_break(); /* pass-through: no settled loop counts on */
		nb_log(NB_LOG_INFO, "a seccomp filter is being installed: pass-through from here");
		/* No new phantom from here (hooks test active); the ones
		 * there are go into memory, their backings are let go. */
		nb_defer_expose_all();
		/* No lease left to break, and no thread of ours left to make a
		 * call the filter may forbid. */
		nb_backing_drop_leases(false);
		nb_lease_thread_stop();
		nb_final_report();
		nb_g.cfg.live = false; /* a failed exec must not make it again */
		nb_own_prepare_surrender();
		nb_phantom_atfork_child(); /* forgets /proc/self/mem */
		nb_own_release_all();
		nb_g.log_fd = -1;
		nb_g.cfg.log = NB_LOG_OFF;
		nb_fault_uninstall();
		nb_term_give_back();
	}
	atomic_store(&state, 2);
	errno = saved;
}
