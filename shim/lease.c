/*
 * lease.c - read leases on source files: another process's change of a
 * file is seen before it happens.
 *
 * Owns: the choice of the lease signal, taking a read lease for a source
 * file when backing.c makes its reference, what happens when the kernel
 * breaks one (nb_lease_break, called from the trampoline), and ending
 * leases for good when their breaks could no longer be answered.
 * Must not: allocate, lock or log in nb_lease_break and what it calls - it
 * runs in a signal handler, on any thread, at any time.
 *
 * Why. A phantom stands for bytes of a file as they were at read time.
 * The process's own changes of the file are hooked (defer.c), another
 * process's are not. A read lease (fcntl(2) F_SETLEASE, F_RDLCK) makes the
 * kernel tell us first: another process that opens the file for writing
 * or truncates it waits in open(2)/truncate(2) until the holder lets go
 * (or /proc/sys/fs/lease-break-time passes, 45 s by default), and the
 * holder gets a signal (the F_SETSIG one; si_code POLL_MSG, si_fd the
 * descriptor the lease was taken through). On that signal every phantom
 * of the file is filled with the bytes as read, then the lease is
 * released and the writer goes on. A writer that already has the file
 * open when the lease is asked for makes F_SETLEASE fail (EAGAIN), as does
 * a file the process neither owns nor may lease (EACCES, no CAP_LEASE):
 * NOBOUNCE_EXACT decides what then (auto: defer anyway, the bytes as they
 * are when the write goes out, as sendfile(2) gives them; strict: no
 * phantom of that file).
 *
 * The lease is taken through a descriptor of our own, a read-only reopen
 * through /proc/self/fd: a lease belongs to an open file description, and
 * the program's own F_GETLEASE/F_SETLEASE on its descriptor must not see
 * or remove ours. O_NONBLOCK on the reopen: an open that would break
 * someone else's write lease fails instead of waiting.
 *
 * The signal. A real-time signal (NOBOUNCE_LEASE_SIGNAL, 62 by default)
 * whose kernel slot fault.c holds like SIGSEGV's: the program's own
 * sigaction calls on it read and write a store, and a delivery that is not
 * a lease break of ours goes to the program's action. Breaks go to a
 * thread of the library's, never to the program's threads (below), so
 * the program's masks do not matter to them and its calls never see one.
 * What a lease cannot do: answer while the whole process is stopped
 * (SIGSTOP, a debugger) - the writer then waits for the lease-break time,
 * after which the kernel revokes the lease and the file may change under
 * a phantom, in strict mode too (README Known limits).
 *
 * State of one lease (the descriptor in backing.c's slot, an atomic):
 *
 *   none --take (reader, in a critical section)--> held
 *   held --break (signal handler: exchange to -1, fill, F_UNLCK, close)--> none
 *   held --slot closes (last phantom gone: exchange to -1, close)--> none
 *   held --stop for good (exchange to -1, close)--> none
 *
 * Whoever exchanges the descriptor out of the slot closes it: never two.
 * A reader that made a phantom of the file publishes it, then looks at
 * the lease again (nb_backing_leased); the breaker takes the lease out,
 * then fills the file's phantoms: one of the two sees the other.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef F_SETSIG
#define F_SETSIG 10
#endif

static int lease_sig;           /* 0: no leases in this process */
static atomic_int held;         /* leases held now */
static atomic_int stopped;      /* enum nb_lease_stop; 0 = leases allowed */

/* A break the kernel queued just before we let go of that lease (the
 * last phantom went, say) arrives after: its si_fd names no lease of
 * ours any more, yet the signal is ours - handed to the program's action
 * (SIG_DFL: terminate) it would end the process. The numbers of the last
 * leases dropped are kept to recognise it. */
#define RECENT 64
static atomic_int recent[RECENT];
static atomic_uint recent_next;

static void remember(int fd)
{
	unsigned i = atomic_fetch_add(&recent_next, 1) % RECENT;
	atomic_store(&recent[i], fd + 1); /* 0 = empty */
}

static bool dropped_lately(int fd)
{
	for (int i = 0; i < RECENT; i++)
		if (atomic_load(&recent[i]) == fd + 1)
			return true;
	return false;
}

void nb_lease_init(void)
{
	const struct nb_config *c = &nb_g.cfg;
	if (c->exact == NB_EXACT_OFF || c->mode != NB_MODE_ON)
		return;
	lease_sig = c->lease_signal;
}

int nb_lease_signal(void)
{
	return lease_sig;
}

/* ---- the lease thread ----
 *
 * Where the break lands. A lease's owner is set to the whole process when
 * it is taken (fs/locks.c lease_setup: PIDTYPE_TGID), so the kernel would
 * hand the signal to any thread of the program that does not block it -
 * and a handler running on a program's thread makes its nanosleep, poll,
 * epoll_wait, select or pause fail with EINTR whatever SA_RESTART says
 * (signal(7)): another process opening a file would change what this
 * program's calls return. So the owner is moved to a thread of the
 * library's (F_SETOWN_EX, F_OWNER_TID, after F_SETLEASE, which resets
 * it): the break is delivered there and nowhere else, and the program's
 * threads never see it. The thread does nothing but wait in pause(2)
 * with every asynchronous signal blocked except the lease signal - and
 * glibc's own two (SIGCANCEL, SIGSETXID, which setuid(2) in a threaded
 * program needs every thread to answer). It also answers while the thread
 * that reads is held in vfork(2), and a break that cannot be queued (the
 * real-time queue full) turns into a SIGIO for this thread, which it
 * blocks: the writer then waits for the lease-break time, and the
 * process goes on (README Known limits).
 *
 * It is started on the first read that could take a lease (never in a
 * process that defers nothing), outside every critical section: thread
 * creation maps memory, which the hooks see. A child made by fork starts
 * its own when it needs one. */
static atomic_int thread_tid;     /* 0: none yet; -1: could not be started */
static atomic_int thread_starting;
static atomic_int thread_quit;    /* futex word: 1 = leave (a seccomp filter comes) */
static atomic_int thread_gone;

static void *lease_thread(void *arg)
{
	(void)arg;
	uint64_t keep_open = (1ull << (lease_sig - 1)) | (1ull << (SIGSEGV - 1)) |
			     (1ull << (SIGBUS - 1)) | (1ull << (SIGILL - 1)) | (1ull << (SIGFPE - 1)) |
			     (1ull << (SIGTRAP - 1)) | (1ull << (SIGSYS - 1)) |
			     (1ull << (32 - 1)) | (1ull << (33 - 1)); /* glibc's SIGCANCEL, SIGSETXID */
	uint64_t block = ~keep_open;
	syscall(SYS_rt_sigprocmask, SIG_SETMASK, &block, NULL, 8UL);
	atomic_store(&thread_tid, (int)syscall(SYS_gettid));
	/* A break's handler runs while this waits (the wait then ends with
	 * EINTR and starts again). */
	while (!atomic_load(&thread_quit))
		syscall(SYS_futex, &thread_quit, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
	atomic_store(&thread_gone, 1);
	syscall(SYS_exit, 0); /* the thread only: no unwinding, no TLS destructors */
	return NULL;
}

void nb_lease_thread_stop(void)
{
	if (atomic_load(&thread_tid) <= 0)
		return;
	atomic_store(&thread_quit, 1);
	syscall(SYS_futex, &thread_quit, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
	/* Gone, or about to make its last call (exit, which every filter
	 * allows), before the caller's filter is installed. */
	while (!atomic_load(&thread_gone))
		sched_yield();
}

void nb_lease_prepare(void)
{
	if (NB_LIKELY(atomic_load_explicit(&thread_tid, memory_order_relaxed) != 0) ||
	    !nb_lease_on())
		return;
	if (atomic_exchange(&thread_starting, 1)) {
		/* Another thread is starting it: its file's lease must not be
		 * skipped for want of a thread that is microseconds away. */
		while (atomic_load(&thread_tid) == 0)
			sched_yield();
		return;
	}
	int saved = errno;
	/* A break that cannot be queued comes as SIGIO instead, which the
	 * thread keeps blocked: the writer would wait for the lease-break
	 * time. Where the queue is rationed that tightly, no leases. */
	struct rlimit rl;
	if (nb_sys_getrlimit(RLIMIT_SIGPENDING, &rl) == 0 && rl.rlim_cur < 64) {
		atomic_store(&thread_tid, -1);
		nb_lease_stop(NB_LEASE_STOP_SIGPENDING);
		errno = saved;
		return;
	}
	pthread_attr_t at;
	pthread_t t;
	bool ok = pthread_attr_init(&at) == 0;
	if (ok) {
		pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
		pthread_attr_setstacksize(&at, 64 * 1024);
		ok = pthread_create(&t, &at, lease_thread, NULL) == 0;
		pthread_attr_destroy(&at);
	}
	if (ok) {
		pthread_setname_np(t, "nobounce-lease");
		/* Its tid, before any lease is taken for it to answer. */
		while (atomic_load(&thread_tid) == 0)
			sched_yield();
	} else {
		atomic_store(&thread_tid, -1);
		nb_lease_stop(NB_LEASE_STOP_NO_THREAD);
	}
	errno = saved;
}

void nb_lease_atfork_child(void)
{
	/* The thread stayed in the parent; leases here are the parent's
	 * (backing.c closed our numbers of them). */
	atomic_store(&thread_tid, 0);
	atomic_store(&thread_starting, 0);
	atomic_store(&thread_quit, 0);
	atomic_store(&thread_gone, 0);
	atomic_store(&held, 0);
}

bool nb_lease_any(void)
{
	return atomic_load_explicit(&held, memory_order_relaxed) > 0;
}

bool nb_lease_on(void)
{
	return lease_sig != 0 && atomic_load_explicit(&stopped, memory_order_relaxed) == 0;
}

bool nb_lease_strict(void)
{
	return nb_g.cfg.exact == NB_EXACT_STRICT;
}

const char *nb_lease_state(void)
{
	if (nb_g.cfg.exact == NB_EXACT_OFF)
		return "off";
	switch (atomic_load(&stopped)) {
	case NB_LEASE_STOP_NO_THREAD:
		return "given up: the lease thread could not be started";
	case NB_LEASE_STOP_SIGPENDING:
		return "given up: RLIMIT_SIGPENDING is below 64";
	case NB_LEASE_STOP_DISPOSITION:
		return "given up: the lease signal's disposition was changed behind the library";
	default:
		return lease_sig != 0 ? "on" : "off";
	}
}

int nb_lease_take(int src, dev_t dev, ino_t ino)
{
	int tid = atomic_load(&thread_tid);
	if (!nb_lease_on() || tid <= 0)
		return -1;
	int saved = errno;
	/* The program's own write lease on the file (only possible through
	 * the description src shares with it): our open would break it -
	 * the break is sent even to a non-blocking open. */
	if (nb_sys_fcntl(src, F_GETLEASE, 0) == F_WRLCK) {
		errno = saved;
		return -1;
	}
	/* O_NONBLOCK: an open that would break someone's write lease fails
	 * instead of waiting. */
	int hidden = nb_reopen_hidden(src, dev, ino, O_RDONLY | O_NONBLOCK);
	if (hidden < 0) {
		errno = saved;
		return -1;
	}
	/* The signal first: a break that came with the default (SIGIO)
	 * would end the process. The lease is taken through the number the
	 * descriptor keeps, which the break names in si_fd. */
	if (nb_sys_fcntl(hidden, F_SETSIG, (long)lease_sig) != 0 ||
	    nb_sys_fcntl(hidden, F_SETLEASE, F_RDLCK) != 0) {
		NB_COUNT(leases_refused, 1);
		nb_own_release(hidden);
		errno = saved;
		return -1;
	}
	atomic_fetch_add(&held, 1);
	/* Breaks to the lease thread only (see above). */
	struct f_owner_ex own = { F_OWNER_TID, tid };
	if (nb_sys_fcntl(hidden, F_SETOWN_EX, (long)&own) != 0) {
		nb_lease_drop(hidden);
		errno = saved;
		return -1;
	}
	NB_COUNT(leases_taken, 1);
	errno = saved;
	return hidden;
}

void nb_lease_drop(int fd)
{
	if (fd < 0)
		return;
	int saved = errno;
	/* Closing our only reference to the description removes the lease;
	 * F_UNLCK first all the same: a child forked meanwhile shares it. */
	nb_sys_fcntl(fd, F_SETLEASE, F_UNLCK);
	atomic_fetch_sub(&held, 1);
	remember(fd);
	nb_own_release(fd);
	errno = saved;
}

bool nb_lease_break(int fd)
{
	dev_t dev;
	ino_t ino;
	/* Out of the slot first (from here on the file reads as unleased to
	 * a reader about to make a phantom of it), then every phantom of
	 * the file gets the bytes as read, then the writer may go on. */
	if (!nb_backing_lease_taken_out(fd, &dev, &ino))
		return dropped_lately(fd); /* late: already let go of */
	int saved = errno;
	NB_COUNT(leases_broken, 1);
	nb_phantom_materialize_file_range(dev, ino, 0, INT64_MAX);
	nb_lease_drop(fd);
	errno = saved;
	return true;
}

void nb_lease_stop(int why)
{
	int none = 0;
	if (!atomic_compare_exchange_strong(&stopped, &none, why))
		return;
	int saved = errno;
	/* strict promised that every phantom of a file is leased: those of
	 * leased files are filled before their leases go. auto keeps them,
	 * with the bytes as they are when the write goes out. */
	nb_backing_drop_leases(nb_lease_strict());
	errno = saved;
}

void nb_lease_yield(int fd)
{
	struct stat st;
	if (lease_sig == 0 || nb_sys_fstat(fd, &st) != 0)
		return;
	nb_backing_drop_lease_of(st.st_dev, st.st_ino, nb_lease_strict());
}
