/*
 * sigview.c - what the program's signal dispositions mean for a write
 * that the library serves with several kernel calls.
 *
 * Owns: a summary of the program's dispositions, kept current by the
 * signal hooks: which signals have a handler installed with SA_RESTART,
 * which have one without it, and whether SIGPIPE is ignored. xfer.c asks
 * it whether a multi-call transfer can behave like one write(2) without
 * paying for a signal-mask change on every call.
 * Must not: change any disposition, or be wrong in the unsafe direction.
 * Each question is answered "yes, needs care" when in doubt (before init,
 * after a failed read of a disposition).
 *
 * Why it matters (signal(7), "Interruption of system calls and library
 * functions by signal handlers"): a blocking write(2) to a socket that is
 * interrupted after it moved bytes returns the count, whatever SA_RESTART
 * says. A write cut into several sendfile calls is interrupted between
 * them: a handler without SA_RESTART makes the next call fail with EINTR
 * and the library returns the count - the same result. A handler with
 * SA_RESTART makes the kernel restart that call transparently, and the
 * write would go on waiting where write(2) returns: xfer.c then waits in
 * poll(2) first, which a handler always interrupts. Without any handler,
 * a signal either ends the process (the same) or is ignored (nothing to
 * see), so no waiting is needed at all.
 */
#include "internal.h"

#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* glibc reserves 32 and 33 (SIGCANCEL, SIGSETXID) for itself; the
 * program can neither install nor observe them. */
#define NB_FIRST_RESERVED 32
#define NB_LAST_RESERVED 33

static atomic_ullong with_restart = ~0ull; /* bit sig-1; "all" until init */
static atomic_ullong without_restart = ~0ull;
static atomic_int pipe_ignored;
static atomic_int segv_masked_at_init;

bool nb_sigview_segv_masked_at_init(void)
{
	return atomic_load(&segv_masked_at_init) != 0;
}

/* The kernel's view of one disposition (struct k_sigaction's user part). */
struct ksigaction {
	void (*handler)(int);
	unsigned long flags;
	void (*restorer)(void);
	unsigned long mask;
};

static void set_bit(atomic_ullong *w, int sig, bool on)
{
	unsigned long long b = 1ull << (sig - 1);
	if (on)
		atomic_fetch_or(w, b);
	else
		atomic_fetch_and(w, ~b);
}

static void note(int sig, void (*handler)(int), unsigned long flags)
{
	if (sig < 1 || sig > 64 || (sig >= NB_FIRST_RESERVED && sig <= NB_LAST_RESERVED))
		return;
	bool fn = handler != SIG_DFL && handler != SIG_IGN && handler != SIG_ERR;
	set_bit(&with_restart, sig, fn && (flags & SA_RESTART));
	set_bit(&without_restart, sig, fn && !(flags & SA_RESTART));
	if (sig == SIGPIPE)
		atomic_store(&pipe_ignored, handler == SIG_IGN);
}

void nb_sigview_init(void)
{
	atomic_store(&with_restart, 0);
	atomic_store(&without_restart, 0);
	for (int sig = 1; sig <= 64; sig++) {
		struct ksigaction k;
		if (sig >= NB_FIRST_RESERVED && sig <= NB_LAST_RESERVED)
			continue;
		if (syscall(SYS_rt_sigaction, sig, NULL, &k, sizeof k.mask) != 0) {
			if (sig < NB_FIRST_RESERVED)
				note(sig, (void (*)(int))1, 0); /* unknown: assume a handler */
			continue;
		}
		note(sig, k.handler, k.flags);
		/* Installed before the library, with SIGSEGV in its mask: the
		 * handler would run with it blocked (init.c asks). */
		bool fn = k.handler != SIG_DFL && k.handler != SIG_IGN;
		if (fn && sig != SIGSEGV && (k.mask & (1ul << (SIGSEGV - 1))))
			atomic_store(&segv_masked_at_init, 1);
	}
}

void nb_sigview_installed(int sig, const struct sigaction *act)
{
	if (act != NULL)
		note(sig, act->sa_handler, (unsigned long)act->sa_flags);
}

void nb_sigview_installed_handler(int sig, void (*handler)(int), int flags)
{
	note(sig, handler, (unsigned long)flags);
}

bool nb_sigview_restart_handlers(void)
{
	return atomic_load_explicit(&with_restart, memory_order_relaxed) != 0;
}

bool nb_sigview_plain_handlers(void)
{
	return atomic_load_explicit(&without_restart, memory_order_relaxed) != 0;
}

bool nb_sigview_pipe_ignored(void)
{
	return atomic_load_explicit(&pipe_ignored, memory_order_relaxed) != 0;
}
