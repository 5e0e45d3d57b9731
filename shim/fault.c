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
 * What the kernel would do for the program's handler, it still does: the
 * handler runs under the mask it asked for (set with one rt_sigprocmask
 * just before the call), on the stack it asked for (the trampoline is
 * installed with the program's SA_ONSTACK choice), reached by a tail call
 * with the library's frames already gone (a tight sigaltstack that fits
 * the program's handler fits it under the library too). Only
 * SA_RESETHAND is emulated: the stored action becomes SIG_DFL before the
 * call. SIG_DFL and SIG_IGN on a real
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
#include <ucontext.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

struct store {
	atomic_uint seq;
	atomic_flag busy;
	struct sigaction slot[2];
};

static struct store stores[3]; /* [0] SIGSEGV, [1] SIGBUS, [2] the lease signal */
static atomic_int installed;
static int lease_sig; /* 0: not held (NOBOUNCE_EXACT=off, lease.c) */

static struct store *store_of(int sig)
{
	if (sig == SIGSEGV)
		return &stores[0];
	if (sig == SIGBUS)
		return &stores[1];
	if (sig == lease_sig && sig != 0)
		return &stores[2];
	return NULL;
}

bool nb_fault_owns(int sig)
{
	return (sig == SIGSEGV || sig == SIGBUS || (sig == lease_sig && sig != 0)) &&
	       atomic_load(&installed);
}

/* The signals whose kernel slots are ours, in sigs[]; how many. */
static int owned_sigs(int sigs[3])
{
	sigs[0] = SIGSEGV;
	sigs[1] = SIGBUS;
	if (lease_sig == 0)
		return 2;
	sigs[2] = lease_sig;
	return 3;
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
	/* Asynchronous signals blocked: a handler can never spin against its
	 * own thread here (sigguard.c). */
	nb_crit_enter();
	while (atomic_flag_test_and_set_explicit(&s->busy, memory_order_acquire))
		;
	unsigned q = atomic_load_explicit(&s->seq, memory_order_relaxed);
	memcpy(&s->slot[(q + 1) & 1], in, sizeof *in);
	atomic_store_explicit(&s->seq, q + 1, memory_order_release);
	atomic_flag_clear_explicit(&s->busy, memory_order_release);
	nb_crit_leave();
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

typedef void (*nb_sa_fn)(int, siginfo_t *, void *);
static void kernel_mirror(int sig, const struct sigaction *a);

/* What the program's action says to do with a signal that is not a
 * phantom's: the handler to call, or NULL when the signal has been dealt
 * with (ignored, or the default restored for a re-fault or re-raise).
 * Reads two words of the store, not the whole action: this runs on the
 * program's alternate signal stack, which may be barely larger than the
 * kernel's signal frame. */
static __attribute__((noinline)) nb_sa_fn chain_target(int sig, const siginfo_t *info,
							  const ucontext_t *uc)
{
	struct store *s = store_of(sig);
	nb_sa_fn fn;
	int flags;
	uint64_t mask;
	for (;;) {
		unsigned q = atomic_load_explicit(&s->seq, memory_order_acquire);
		fn = s->slot[q & 1].sa_sigaction;
		flags = s->slot[q & 1].sa_flags;
		memcpy(&mask, &s->slot[q & 1].sa_mask, sizeof mask);
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(&s->seq, memory_order_relaxed) == q)
			break;
	}
	bool sent = info == NULL || info->si_code <= 0; /* kill, raise, sigqueue */
	bool async = sig != SIGSEGV && sig != SIGBUS;  /* the lease signal */
	__sighandler_t h = (__sighandler_t)(void (*)(void))fn;
	if (!(flags & SA_SIGINFO) && (h == SIG_DFL || h == SIG_IGN)) {
		if ((sent || async) && h == SIG_IGN)
			return NULL;
		kernel_default(sig);
		if (async && info != NULL) {
			/* The same signal again, with its own siginfo, now to
			 * the default action (a real-time signal: the end of
			 * the process, as without us). Blocked until this
			 * handler returns. To itself, any si_code may be sent
			 * (rt_tgsigqueueinfo(2)). */
			syscall(SYS_rt_tgsigqueueinfo, getpid(), syscall(SYS_gettid), sig, info);
		} else if (sent) { /* nothing re-faults: deliver it again, now fatal */
			syscall(SYS_tgkill, getpid(), syscall(SYS_gettid), sig);
		}
		return NULL;
	}
	if (flags & SA_RESETHAND) {
		struct sigaction dfl;
		memset(&dfl, 0, sizeof dfl);
		dfl.sa_handler = SIG_DFL;
		store_write(s, &dfl);
		kernel_mirror(sig, &dfl);
	}
	/* The mask the kernel would have set for the handler: the one at
	 * the fault, plus its sa_mask, plus the signal unless SA_NODEFER. */
	uint64_t at_fault;
	memcpy(&at_fault, &uc->uc_sigmask, sizeof at_fault);
	mask |= at_fault;
	if (!(flags & SA_NODEFER))
		mask |= 1ull << (sig - 1);
	/* The handler will run with SIGSEGV blocked: no phantom may be
	 * there for it to touch, now or later (sigguard.c). */
	if (mask & (1ull << (SIGSEGV - 1)))
		nb_sigguard_handler_masks_segv();
	syscall(SYS_rt_sigprocmask, SIG_SETMASK, &mask, NULL, sizeof mask);
	return fn;
}

/* The kernel calls this on SIGSEGV and SIGBUS, with every asynchronous
 * signal blocked and SIGSEGV itself open (kernel_mirror): no handler of
 * the program's can run on this thread while a phantom is being filled,
 * and none can ever run with SIGSEGV blocked because of us. For a fault
 * that is the program's, chain_target sets the mask its handler expects,
 * and the handler is reached by a tail call, from the very stack position
 * the kernel would have called it at: the library's frames are gone by
 * then, so a handler that fits its alternate stack plainly fits here. */
static void trampoline(int sig, siginfo_t *info, void *uc)
{
	int saved = errno;
	/* A touch of a phantom: fill it and let the access run again. Only
	 * real faults (si_code > 0) qualify: a kill() carries no address.
	 * Asked whenever a phantom was ever made, not only while one lives:
	 * the fault may be older than the phantom's end (phantom.c). */
	if (sig == SIGSEGV && info != NULL && info->si_code > 0 && nb_phantom_ever() &&
	    nb_phantom_fault((uintptr_t)info->si_addr)) {
		errno = saved;
		return;
	}
	/* A lease of ours broken: another process wants to change a source
	 * file (lease.c). Its phantoms are filled before this returns. */
	if (sig == lease_sig && sig != 0 && info != NULL && info->si_code == POLL_MSG &&
	    nb_lease_break(info->si_fd)) {
		errno = saved;
		return;
	}
	/* Any other delivery of it to the lease thread is the program's
	 * (sent to the whole process while its threads block it): it must
	 * not be acted on here - the thread's descriptors are not the
	 * program's. lease.c sends it on and blocks it there for good. */
	if (sig == lease_sig && sig != 0 && nb_lease_on_thread()) {
		nb_lease_stray(info, uc);
		errno = saved;
		return;
	}
	nb_sa_fn fn = chain_target(sig, info, uc);
	errno = saved;
	if (fn != NULL)
		fn(sig, info, uc); /* a sibling call: compiled to a jump */
}

/* The trampoline's kernel action, given the program's action a: every
 * asynchronous signal blocked, SIGSEGV and the other synchronous ones
 * open (SA_NODEFER; a fault while one of them is blocked kills), and the
 * program's own SA_ONSTACK choice, so its handler runs on the stack it
 * asked for. SA_RESETHAND stays ours to emulate (the kernel would drop
 * the trampoline). With no handler of the program's, SA_ONSTACK: a
 * phantom touched near a full stack can still be filled on the
 * alternate stack, if there is one. */
static void kernel_mirror(int sig, const struct sigaction *a)
{
	struct sigaction mine;
	memset(&mine, 0, sizeof mine);
	mine.sa_sigaction = trampoline;
	mine.sa_flags = SA_SIGINFO | SA_RESTART | SA_NODEFER;
	sigfillset(&mine.sa_mask);
	static const int sync_sigs[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP, SIGSYS };
	for (unsigned i = 0; i < sizeof sync_sigs / sizeof sync_sigs[0]; i++)
		sigdelset(&mine.sa_mask, sync_sigs[i]);
	bool handler = (a->sa_flags & SA_SIGINFO) ||
		       (a->sa_handler != SIG_DFL && a->sa_handler != SIG_IGN);
	mine.sa_flags |= handler ? (a->sa_flags & SA_ONSTACK) : SA_ONSTACK;
	/* The lease signal is asynchronous: whether a call it interrupts is
	 * restarted is the program's SA_RESTART choice when it has a handler
	 * (a handler without it interrupts a blocked read, signal(7)). */
	if (sig == lease_sig && sig != 0 && handler && !(a->sa_flags & SA_RESTART))
		mine.sa_flags &= ~SA_RESTART;
	NB_REAL(sigaction)(sig, &mine, NULL);
}

/* Does the kernel's slot for sig still hold the trampoline? Asked with
 * the system call itself: the program's record is what libc would say. */
static bool slot_is_ours(int sig)
{
	struct {
		void *handler;
		unsigned long flags;
		void *restorer;
		uint64_t mask;
	} k;
	if (syscall(SYS_rt_sigaction, sig, NULL, &k, sizeof k.mask) != 0)
		return false;
	return k.handler == (void *)trampoline;
}

bool nb_fault_still_ours(void)
{
	return slot_is_ours(SIGSEGV);
}

/* Is the kernel's slot for the lease signal still the trampoline? */
bool nb_fault_lease_slot_ours(void)
{
	int sig = lease_sig;
	return sig == 0 || slot_is_ours(sig);
}

/* That slot was taken behind the library: it is the program's from now
 * on (lease.c has let go of every lease). */
void nb_fault_lease_give_up(void)
{
	lease_sig = 0;
}

/* The slots were taken behind the library (sigguard.c noticed): what the
 * kernel holds now is the program's, and its later calls go straight
 * there. No phantom exists any more (sigguard.c filled them). */
void nb_fault_give_up(void)
{
	atomic_store(&installed, 0);
}

/* The program's own actions back into the kernel, for good (a seccomp
 * filter is coming: sandbox.c). No phantom exists any more. */
void nb_fault_uninstall(void)
{
	if (!atomic_exchange(&installed, 0))
		return;
	int sigs[3];
	for (int i = 0, n = owned_sigs(sigs); i < n; i++) {
		struct sigaction a;
		store_read(store_of(sigs[i]), &a);
		NB_REAL(sigaction)(sigs[i], &a, NULL);
	}
}

/* Takes (or takes back) the kernel slots. Whatever is there and is not
 * our trampoline - the state at start-up, or a handler set behind the
 * hooks (a raw rt_sigaction, glibc-internal __sigaction) - becomes the
 * program's action. */
int nb_fault_install(void)
{
	lease_sig = nb_lease_signal();
	atomic_store(&installed, 1);
	int sigs[3];
	for (int i = 0, n = owned_sigs(sigs); i < n; i++) {
		struct sigaction prev;
		if (NB_REAL(sigaction)(sigs[i], NULL, &prev) != 0)
			return -1;
		if ((prev.sa_flags & SA_SIGINFO) && prev.sa_sigaction == trampoline)
			continue;
		store_write(store_of(sigs[i]), &prev);
		kernel_mirror(sigs[i], &prev);
	}
	return 0;
}

/* sigaction() on SIGSEGV/SIGBUS once we own them: the program's view. */
int nb_fault_sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
	struct store *s = store_of(sig);
	struct sigaction cur;
	store_read(s, &cur);
	/* A handler of the program's for the lease signal must run on the
	 * program's threads, never on the lease thread (its descriptor table
	 * is not the program's): leases stop first (lease.c). */
	if (act != NULL && sig == lease_sig && sig != 0 &&
	    ((act->sa_flags & SA_SIGINFO) || (act->sa_handler != SIG_DFL && act->sa_handler != SIG_IGN)))
		nb_lease_program_takes_signal();
	if (act != NULL) {
		struct sigaction copy = *act;
		/* The kernel ignores these for the stored action too. */
		sigdelset(&copy.sa_mask, SIGKILL);
		sigdelset(&copy.sa_mask, SIGSTOP);
		store_write(s, &copy);
		kernel_mirror(sig, &copy);
	}
	if (old != NULL)
		*old = cur;
	return 0;
}

/* Has the program a handler of its own for sig (one of ours)? */
bool nb_fault_program_handles(int sig)
{
	struct store *s = store_of(sig);
	if (s == NULL || !atomic_load(&installed))
		return false;
	struct sigaction a;
	store_read(s, &a);
	return (a.sa_flags & SA_SIGINFO) || (a.sa_handler != SIG_DFL && a.sa_handler != SIG_IGN);
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
