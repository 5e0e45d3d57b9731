/*
 * sigguard.c - can a touch of a guarded page still reach the trampoline?
 *
 * Owns: the answer to "may a new phantom be made now", as far as signal
 * delivery (and a program serving its own page faults) is concerned, and
 * the critical sections in which the library
 * holds a phantom entry with the program's asynchronous signals blocked.
 * Must not: allocate, lock, or make a system call on the hooks' fast path
 * while nothing of this matters (no phantom, no armed read).
 *
 * A phantom is only safe while every thread that could touch it would
 * deliver the SIGSEGV to fault.c's trampoline. Two things break that:
 *
 *  - A thread whose signal mask blocks SIGSEGV. A synchronous fault on a
 *    blocked signal is not queued: the kernel unblocks it, resets it to
 *    SIG_DFL and kills the process (force_sig_info_to_task in
 *    kernel/signal.c). Servers often block "every signal" in worker
 *    threads (sigfillset + pthread_sigmask), and masks survive exec.
 *  - A disposition set behind the library: sigset(3) and friends use
 *    glibc's internal __sigaction, a raw rt_sigaction(2) bypasses libc.
 *
 * Which thread will touch a buffer cannot be known, and a new thread
 * inherits its creator's mask without telling anyone, so the rule is per
 * process and one-way: once any mask that blocks SIGSEGV is seen (at
 * start-up, or through a hooked mask call), every phantom is filled
 * before the call takes effect and no new one is ever made in this
 * process ("blocked" below). Masks that last only for one call (ppoll,
 * pselect, epoll_pwait, sigsuspend: a handler run during the call runs
 * under that mask) count while the call lasts. A disposition found
 * changed behind the library does the same as a blocking mask, for good.
 * What no hook sees (a raw rt_sigprocmask in another thread) is caught
 * only by the per-read check of the reading thread's own mask: a Known
 * limit.
 *
 * Ordering with a read that is making a phantom at the same moment: the
 * blocker raises the flag, then fills every phantom; the reader publishes
 * its phantom, then looks at the flag (nb_sigguard_recheck) and fills it
 * if the flag went up. With sequentially consistent operations on both
 * sides at least one of them sees the other.
 *
 * A program that serves its own page faults (userfaultfd(2)) stops
 * deferral the same way, for good ("uffd" below): a copy into its memory
 * - the edges a deferred read reads into the buffer while it holds the
 * source number (fdtab.c), the fill of a touched phantom - can wait for
 * the program's fault thread, and that thread may be waiting for the
 * library: in a close of the number the read holds (2 s, then the read
 * could return the bytes of the file opened on it next), or inside the
 * trampoline, touching a phantom whose fill waits for itself (forever).
 * Which memory is registered, when, and which thread serves it cannot be
 * known, so the rule is per process: once the process makes a
 * userfaultfd or sets one up, every phantom is filled and none is made
 * again. Every user must make UFFDIO_API on its descriptor before
 * UFFDIO_REGISTER, and before a registration no copy into its memory can
 * wait: filled before the first such call, no phantom meets a registered
 * page. The hooks that see it: ioctl (type 0xAA: USERFAULTFD_IOC_NEW on
 * /dev/userfaultfd, UFFDIO_API, UFFDIO_REGISTER), and syscall() for
 * SYS_userfaultfd and SYS_ioctl (glibc 2.36 has no userfaultfd wrapper).
 * A fork inherits the flag with the memory (a child may inherit
 * registrations, UFFD_FEATURE_EVENT_FORK); exec starts a new one, whose
 * memory no earlier userfaultfd serves. Not seen: a userfaultfd made and
 * set up with the syscall instruction itself (README Known limits).
 *
 * Critical sections (nb_crit_enter/leave): a phantom entry held by a
 * thread (phantom.c claim) must never be waited for by a signal handler
 * that interrupted that same thread - the handler would wait forever. So
 * every claim is made with the asynchronous signals blocked; the
 * synchronous ones (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP, SIGSYS) stay
 * open, since blocking them turns a fault into death. Sections nest; the
 * mask is changed only by the outermost one, and read back to the
 * thread's own mask when it ends.
 */
#include "internal.h"

#include <errno.h>
#include <sched.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define KSIGSET_SIZE 8
#define BIT(sig) (1ull << ((sig) - 1))
/* Signals the kernel raises for an instruction: never blocked by us. */
#define SYNC_SIGS (BIT(SIGSEGV) | BIT(SIGBUS) | BIT(SIGILL) | BIT(SIGFPE) | BIT(SIGTRAP) | BIT(SIGSYS))

static atomic_int blocked_for_good; /* enum nb_guard_reason, 0 = none */
static atomic_int blocked_calls;    /* threads inside a call with such a mask */

static __thread unsigned crit_depth __attribute__((tls_model("initial-exec")));
static __thread uint64_t crit_old __attribute__((tls_model("initial-exec")));

void nb_crit_enter(void)
{
	/* A handler that runs before the block below runs a whole section
	 * of its own and leaves the depth as it found it; once the mask is
	 * in, nothing asynchronous runs on this thread until the end. Done
	 * whether or not the program has a handler the hooks saw: one
	 * installed with the syscall instruction itself, or through a name
	 * not hooked, would otherwise interrupt a hold and wait for it. */
	if (crit_depth == 0) {
		uint64_t all = ~SYNC_SIGS;
		syscall(SYS_rt_sigprocmask, SIG_BLOCK, &all, &crit_old, KSIGSET_SIZE);
	}
	crit_depth++;
}

void nb_crit_leave(void)
{
	if (--crit_depth == 0)
		syscall(SYS_rt_sigprocmask, SIG_SETMASK, &crit_old, NULL, KSIGSET_SIZE);
}


void nb_crit_reset_thread(void)
{
	crit_depth = 0;
}

const char *nb_sigguard_reason(void)
{
	switch (atomic_load(&blocked_for_good)) {
	case NB_GUARD_MASK:
		return "a signal mask blocks SIGSEGV";
	case NB_GUARD_DISPOSITION:
		return "SIGSEGV's disposition was changed behind the library";
	case NB_GUARD_HANDLER:
		return "a signal handler runs with SIGSEGV blocked";
	case NB_GUARD_UFFD:
		return "the program serves its own page faults (userfaultfd)";
	default:
		return atomic_load(&blocked_calls) ? "a call waits with SIGSEGV blocked" : NULL;
	}
}

/* Every phantom gets its bytes; none is made from here on. */
static void stop_for_good(int why)
{
	int none = 0;
	if (atomic_compare_exchange_strong(&blocked_for_good, &none, why)) {
		nb_log(NB_LOG_INFO, "buffers are no longer deferred: %s", nb_sigguard_reason());
	}
	nb_defer_expose_all();
}

void nb_sigguard_init(bool handler_masks_segv)
{
	uint64_t cur = 0;
	if (handler_masks_segv ||
	    syscall(SYS_rt_sigprocmask, SIG_BLOCK, NULL, &cur, KSIGSET_SIZE) != 0 ||
	    (cur & BIT(SIGSEGV)))
		atomic_store(&blocked_for_good, NB_GUARD_MASK);
}

/* The mask `how`/`set` would leave, given the current one. */
static bool would_block(int how, uint64_t set)
{
	if (!(set & BIT(SIGSEGV)))
		return false;
	return how == SIG_BLOCK || how == SIG_SETMASK;
}

void nb_sigguard_mask(int how, const sigset_t *set)
{
	if (!atomic_load_explicit(&nb_g.active, memory_order_relaxed))
		return; /* off, or pass-through under seccomp: no call of ours */
	if (set == NULL)
		return;
	uint64_t m; /* the kernel's sigset: the first 64 bits */
	/* The caller's pointer may be bad: the real call reports that. */
	if (!nb_copy_in(&m, set, sizeof m))
		return;
	if (!would_block(how, m))
		return;
	int saved = errno;
	stop_for_good(NB_GUARD_MASK);
	errno = saved;
}

void nb_sigguard_mask_bits(uint64_t blocked_after)
{
	if (!atomic_load_explicit(&nb_g.active, memory_order_relaxed))
		return; /* off, or pass-through under seccomp: no call of ours */
	if (!(blocked_after & BIT(SIGSEGV)))
		return;
	int saved = errno;
	stop_for_good(NB_GUARD_MASK);
	errno = saved;
}

bool nb_sigguard_call_begin(const sigset_t *tmp)
{
	if (!atomic_load_explicit(&nb_g.active, memory_order_relaxed))
		return false;
	uint64_t m;
	if (tmp == NULL || !nb_copy_in(&m, tmp, sizeof m))
		return false;
	if (!(m & BIT(SIGSEGV)))
		return false;
	int saved = errno;
	atomic_fetch_add(&blocked_calls, 1);
	nb_defer_expose_all();
	errno = saved;
	return true;
}

void nb_sigguard_call_end(bool began)
{
	if (began)
		atomic_fetch_sub(&blocked_calls, 1);
}

/*
 * File reads in flight. A deferred file read copies its buffer's edges
 * (and, when it must, its pages) into the program's memory while it
 * holds the source number (defer.c). One that began before a userfaultfd
 * call raised the flag would go on doing so after it: with its buffer
 * registered, the copy waits for the fault thread - and that thread's
 * close of the number waits for the read (the 2 s bound, then the bytes
 * of the next file opened on the number: tests/integration/78-*). So
 * such a read is counted from inside its critical section, and looks at
 * the flag only after it counted itself; the userfaultfd call raises the
 * flag, then waits until no counted read is left, before the kernel sees
 * the call. With both sides sequentially consistent one sees the other:
 * the read gives up before touching memory, or the call waits for it.
 * Nothing such a read waits for is the program's before that call
 * returns (regular files, the lease thread; no handler runs in the
 * section), so the wait ends; it is bounded all the same (2 s, as
 * fdtab.c's hold). A stream source's read is counted from after its
 * splice (which may wait for the program) to its end; a handler of its
 * own thread may come in between, and a userfaultfd call there does not
 * wait for the read it interrupted (my_reads).
 *
 *   idle --read: count +1, flag down--> reading --read out: count -1--> idle
 *   idle --read: count +1, flag up: count -1--> idle (the read is plain)
 *   userfaultfd call: flag up; wait for count == 0; then the real call
 *
 * A fork child starts at 0: the forking thread is never inside a read's
 * section, and the other threads do not exist there.
 */
static atomic_int reads_in_flight;
/* This thread's share of it: a stream read's section is not a critical
 * one, so a handler of the same thread may make the userfaultfd call in
 * the middle of it; that call must not wait for the read it interrupted. */
static __thread int my_reads __attribute__((tls_model("initial-exec")));

bool nb_sigguard_read_begin(void)
{
	my_reads++;
	atomic_fetch_add(&reads_in_flight, 1);
	if (NB_LIKELY(atomic_load(&blocked_for_good) == 0))
		return true;
	atomic_fetch_sub(&reads_in_flight, 1);
	my_reads--;
	return false;
}

void nb_sigguard_read_end(void)
{
	atomic_fetch_sub(&reads_in_flight, 1);
	my_reads--;
}

void nb_sigguard_atfork_child(void)
{
	atomic_store(&reads_in_flight, my_reads); /* this thread's, if any */
}

static void wait_for_reads(void)
{
	struct timespec t0, t;
	bool timed = false;
	for (unsigned spins = 0; atomic_load(&reads_in_flight) - my_reads > 0; spins++) {
		if (spins < 64) {
			sched_yield();
			continue;
		}
		clock_gettime(CLOCK_MONOTONIC, &t);
		if (!timed) {
			t0 = t;
			timed = true;
		} else if ((t.tv_sec - t0.tv_sec) * 1000000000ll + (t.tv_nsec - t0.tv_nsec) >
			   2000000000ll) {
			nb_log(NB_LOG_WARN, "a deferred read did not end before a userfaultfd call");
			return;
		}
		struct timespec nap = { 0, 50000 };
		nanosleep(&nap, NULL);
	}
}

/* Before a call that makes or sets up a userfaultfd ("uffd" above): the
 * check that deferral may go on is the one every deferred read makes
 * already (nb_sigguard_allows, nb_sigguard_recheck, and
 * nb_sigguard_read_begin inside its section). Raised even while the
 * hooks do nothing yet (before init): the flag is one store, and a
 * deferral that begins later must not miss it. Once any reason has
 * stopped deferral, every phantom was filled and none is made; a read
 * counted before that may still be in flight, so every such call waits
 * for the count (one load when it is 0). */
void nb_sigguard_uffd(void)
{
	int saved = errno;
	if (atomic_load(&blocked_for_good) == 0) {
		if (atomic_load_explicit(&nb_g.active, memory_order_relaxed)) {
			stop_for_good(NB_GUARD_UFFD);
		} else {
			int none = 0;
			atomic_compare_exchange_strong(&blocked_for_good, &none, NB_GUARD_UFFD);
		}
	}
	wait_for_reads();
	errno = saved;
}

/* From the trampoline, about to run the program's own SIGSEGV handler
 * with SIGSEGV blocked (no SA_NODEFER): a phantom it touched would kill
 * the process, and when it ends (it may siglongjmp) cannot be known. So
 * every phantom is filled now, and none is made again. Async-signal-safe:
 * no log line here. */
void nb_sigguard_handler_masks_segv(void)
{
	if (!atomic_load_explicit(&nb_g.active, memory_order_relaxed))
		return;
	int none = 0;
	atomic_compare_exchange_strong(&blocked_for_good, &none, NB_GUARD_HANDLER);
	if (nb_phantom_any())
		nb_phantom_overwrite_range(0, UINTPTR_MAX);
}

static __thread unsigned reads_checked __attribute__((tls_model("initial-exec")));

bool nb_sigguard_allows(void)
{
	if (atomic_load(&blocked_for_good) != 0 || atomic_load(&blocked_calls) != 0)
		return false;
	/* What no hook saw: this thread's own mask (an rt_sigprocmask made
	 * with the syscall instruction), and whether the kernel's SIGSEGV
	 * slot is still the trampoline (such an rt_sigaction). Two system
	 * calls, on a thread's first deferred read and every 16th after:
	 * either change makes the phantoms that exist already a hazard, so
	 * checking every read would only spare up to 15 new ones, at the
	 * price of two calls per iteration in every copy loop. */
	if ((reads_checked++ & 15) != 0)
		return true;
	uint64_t cur = 0;
	if (syscall(SYS_rt_sigprocmask, SIG_BLOCK, NULL, &cur, KSIGSET_SIZE) != 0 ||
	    (cur & BIT(SIGSEGV))) {
		stop_for_good(NB_GUARD_MASK);
		return false;
	}
	if (nb_lease_on() && !nb_fault_lease_slot_ours()) {
		/* The lease signal's slot went the same way: breaks would
		 * reach the program's handler, or nothing. */
		nb_lease_stop(NB_LEASE_STOP_DISPOSITION);
		nb_fault_lease_give_up();
	}
	if (!nb_fault_still_ours()) {
		/* What the kernel holds now is the program's: its later
		 * sigaction calls go straight there. */
		nb_fault_give_up();
		stop_for_good(NB_GUARD_DISPOSITION);
		return false;
	}
	return true;
}

bool nb_sigguard_recheck(void)
{
	return atomic_load(&blocked_for_good) == 0 && atomic_load(&blocked_calls) == 0;
}
