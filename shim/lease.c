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
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#ifndef CLOSE_RANGE_UNSHARE
#define CLOSE_RANGE_UNSHARE (1U << 1)
#endif

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
 * threads never see it. It also answers while the thread that reads is
 * held in vfork(2), and a break that cannot be queued (the real-time
 * queue full) turns into a SIGIO for this thread, which it blocks: the
 * writer then waits for the lease-break time, and the process goes on
 * (README Known limits).
 *
 * Its own descriptor table. A thread that shares the program's table
 * makes every system call of the program's dearer: with the table shared,
 * fdget() can no longer borrow a file without counting it (fs/file.c
 * __fget_light takes a reference when files->count > 1) and a regular
 * file's position then needs its mutex (fdget_pos) - measured here, a
 * file -> pipe loop on one CPU runs 20-30% slower for a thread that does
 * nothing but sleep. So the thread leaves the table at once
 * (close_range(2) with CLOSE_RANGE_UNSHARE over every number: a table of
 * its own that holds nothing, Linux 5.9) and keeps there what only it
 * uses: the lease descriptors and a /proc/self/mem of its own. That has
 * consequences, which the rest of this file is about:
 *  - a lease is taken by the thread: a reader posts a request (the file's
 *    number in its table, its thread id) and waits; the thread reopens the
 *    file through /proc/self/task/TID/fd/N, takes the lease, and answers
 *    with its own number, which backing.c files with the source's slot;
 *  - a lease is let go of by the thread: a slot that closes queues the
 *    number (drops[]), the thread closes it when it wakes;
 *  - the thread fills a broken file's phantoms without the program's
 *    descriptors: the bytes come through its lease descriptor (the same
 *    file), the memory is written through its own /proc/self/mem, and a
 *    backing whose last reference goes on this thread is closed by the
 *    next program thread that enters backing.c (nb_backing_put);
 *  - no handler of the program's may ever run here (it would find other
 *    descriptors behind its numbers): the lease signal is open only while
 *    the thread sleeps, and once the program sets a handler of its own for
 *    that signal, leases stop (fault.c) and the thread leaves.
 * A kernel without CLOSE_RANGE_UNSHARE gets no leases (auto then behaves
 * as where no lease can be had).
 *
 * Requests, one at a time (req_owner). The requester is inside a critical
 * section with every signal blocked and holds no buffer entry; the thread
 * never waits for a program thread except for the requester's "settled"
 * (below), so neither can wait for the other in a circle:
 *
 *   IDLE --reader posts (owner taken)--> POSTED
 *   POSTED --thread: reopen, F_SETSIG, F_SETLEASE, F_SETOWN_EX--> ANSWERED
 *   ANSWERED --reader files the number with its slot--> SETTLED
 *   SETTLED --thread: a break that came meanwhile? answered now--> IDLE
 *                                                    (owner released)
 *
 * The thread keeps the lease signal blocked from POSTED to IDLE, so a
 * break's handler never finds a lease that is not filed yet. A break that
 * the kernel sent before F_SETOWN_EX went to the whole process: the
 * program's thread that gets it lets it pass as ours (taking), and the
 * thread, after SETTLED, asks the kernel whether that lease is being
 * broken (F_GETLEASE) and answers it then.
 *
 * It is started on the first read that could take a lease (never in a
 * process that defers nothing), outside every critical section: thread
 * creation maps memory, which the hooks see. A child made by fork starts
 * its own when it needs one. */
static atomic_int thread_tid;     /* 0: none yet; -1: could not be started */
static atomic_int thread_starting;
static atomic_int thread_quit;    /* 1 = leave (a seccomp filter comes, leases stopped) */
static atomic_int thread_gone;
static atomic_uint wake;          /* the thread's futex word: bumped by every request */
static int thread_memfd = -1;     /* its /proc/self/mem, in its own table */
static __thread bool on_thread __attribute__((tls_model("initial-exec")));

/* Leases the thread holds, by its own numbers. Written by the thread only
 * (with the lease signal blocked); read by any thread's handler. */
#define NB_LEASE_MAX 256
struct lease_rec {
	atomic_int fd; /* -1: free */
	dev_t dev;
	ino_t ino;
};
static struct lease_rec mine[NB_LEASE_MAX];
static atomic_int mine_ready;
/* Numbers of leases whose slot let go of them, for the thread to close
 * (fd + 1; 0 = empty). Never more than the leases held. */
static atomic_int drops[NB_LEASE_MAX];
/* Entries of drops[] in use: the program's close looks at it (below). */
static atomic_int queued;

enum { REQ_IDLE, REQ_POSTED, REQ_ANSWERED, REQ_SETTLED };
static atomic_int req_owner;
static atomic_int req_state; /* futex word of the requester and of the thread */
static struct {
	int tid, src;
	dev_t dev;
	ino_t ino;
	int fd; /* the answer: the thread's number, or -1 */
} req;
static __thread bool posted_here __attribute__((tls_model("initial-exec")));
static atomic_int taking; /* fd + 1 between F_SETLEASE and the check after SETTLED */
static atomic_int sig_closed; /* the thread keeps the lease signal blocked for good */

static long futex(atomic_int *w, int op, int val)
{
	return syscall(SYS_futex, w, op, val, NULL, NULL, 0);
}

static void kick(void)
{
	atomic_fetch_add(&wake, 1);
	futex((atomic_int *)&wake, FUTEX_WAKE_PRIVATE, 1);
}

bool nb_lease_on_thread(void)
{
	return on_thread;
}

int nb_lease_thread_memfd(void)
{
	return thread_memfd;
}

static int rec_of_fd(int fd)
{
	if (fd < 0)
		return -1;
	for (int i = 0; i < NB_LEASE_MAX; i++)
		if (atomic_load(&mine[i].fd) == fd)
			return i;
	return -1;
}

int nb_lease_thread_fd_of(dev_t dev, ino_t ino)
{
	if (!on_thread)
		return -1;
	for (int i = 0; i < NB_LEASE_MAX; i++) {
		int fd = atomic_load(&mine[i].fd);
		if (fd >= 0 && mine[i].dev == dev && mine[i].ino == ino)
			return fd;
	}
	return -1;
}

static void mine_reset(void)
{
	for (int i = 0; i < NB_LEASE_MAX; i++) {
		atomic_store(&mine[i].fd, -1);
		atomic_store(&drops[i], 0);
	}
	atomic_store(&queued, 0);
	atomic_store(&mine_ready, 1);
}

/* The thread's own: the number goes, and the lease with it. The close
 * itself lets go of the lease (the last reference to the open file
 * description goes: __fput -> locks_remove_file), so the writer the
 * break held goes on only once no descriptor of ours names the file. An
 * F_UNLCK before the close let it go on first: if this thread was then
 * kept off the CPU, the program could close the file, find itself its
 * only opener, and still have F_SETLEASE F_WRLCK fail with EAGAIN on our
 * reopen (tests/integration/34-lease-table.sh, last-chunk-break-idle). */
static void release_here(int fd)
{
	int i = rec_of_fd(fd);
	if (i >= 0)
		atomic_store(&mine[i].fd, -1);
	atomic_fetch_sub(&held, 1);
	remember(fd);
	nb_sys_close(fd);
}

static atomic_int dropping; /* the thread is in run_drops */

/* Lets go of queued entry i (the thread's number fd): closed first, then
 * the entry freed - a nb_lease_drop_wait on it ends only after the close. */
static void release_queued(int i, int fd)
{
	release_here(fd);
	atomic_store(&drops[i], 0);
	atomic_fetch_sub(&queued, 1);
}

static void run_drops(void)
{
	atomic_store(&dropping, 1);
	for (int i = 0; i < NB_LEASE_MAX; i++) {
		int v = atomic_load(&drops[i]);
		if (v > 0)
			release_queued(i, v - 1);
	}
	atomic_store(&dropping, 0);
}

static int take_here(int tid, int src, dev_t dev, ino_t ino)
{
	if (!nb_lease_on())
		return -1;
	int slot = -1;
	for (int i = 0; i < NB_LEASE_MAX && slot < 0; i++)
		if (atomic_load(&mine[i].fd) < 0)
			slot = i;
	if (slot < 0)
		return -1;
	/* The requester's table, whichever thread leads the process (a
	 * leader that exited has none). */
	char path[64];
	nb_fmt(path, sizeof path, "/proc/self/task/%d/fd/%d", tid, src);
	/* O_NONBLOCK: an open that would break someone's write lease fails
	 * instead of waiting. */
	int fd = (int)syscall(SYS_openat, AT_FDCWD, path,
			      O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -1;
	struct stat st;
	/* The number may name another file by now (another thread). */
	if (nb_sys_fstat(fd, &st) != 0 || st.st_dev != dev || st.st_ino != ino) {
		nb_sys_close(fd);
		return -1;
	}
	mine[slot].dev = dev;
	mine[slot].ino = ino;
	atomic_store(&mine[slot].fd, fd);
	atomic_store(&taking, fd + 1);
	/* The signal first: a break that came with the default (SIGIO)
	 * would end the process. The break names this number in si_fd. */
	if (nb_sys_fcntl(fd, F_SETSIG, (long)lease_sig) != 0 ||
	    nb_sys_fcntl(fd, F_SETLEASE, F_RDLCK) != 0) {
		NB_COUNT(leases_refused, 1);
		atomic_store(&mine[slot].fd, -1);
		atomic_store(&taking, 0);
		nb_sys_close(fd);
		return -1;
	}
	atomic_fetch_add(&held, 1);
	/* Breaks to this thread only (see above). */
	struct f_owner_ex own = { F_OWNER_TID, (int)syscall(SYS_gettid) };
	if (nb_sys_fcntl(fd, F_SETOWN_EX, (long)&own) != 0) {
		atomic_store(&taking, 0);
		release_here(fd);
		return -1;
	}
	NB_COUNT(leases_taken, 1);
	return fd;
}

static bool break_here(int fd);

static void serve_take(void)
{
	req.fd = take_here(req.tid, req.src, req.dev, req.ino);
	atomic_store(&req_state, REQ_ANSWERED);
	futex(&req_state, FUTEX_WAKE_PRIVATE, 1);
	/* Until the reader has filed it (or let it go: then it is queued in
	 * drops[]). The reader is in a critical section doing two stores. */
	int s;
	while ((s = atomic_load(&req_state)) == REQ_ANSWERED)
		futex(&req_state, FUTEX_WAIT_PRIVATE, REQ_ANSWERED);
	int fd = req.fd;
	atomic_store(&req_state, REQ_IDLE);
	atomic_store(&req_owner, 0);
	run_drops();
	/* A break sent before the owner was ours went to the whole process
	 * (a program thread let it pass): the kernel says whether this lease
	 * is being broken. */
	if (fd >= 0 && rec_of_fd(fd) >= 0 && nb_sys_fcntl(fd, F_GETLEASE, 0) != F_RDLCK)
		break_here(fd);
	atomic_store(&taking, 0);
}

static void *lease_thread(void *arg)
{
	(void)arg;
	uint64_t keep_open = (1ull << (SIGSEGV - 1)) | (1ull << (SIGBUS - 1)) |
			     (1ull << (SIGILL - 1)) | (1ull << (SIGFPE - 1)) |
			     (1ull << (SIGTRAP - 1)) | (1ull << (SIGSYS - 1)) |
			     (1ull << (32 - 1)) | (1ull << (33 - 1)); /* glibc's SIGCANCEL, SIGSETXID */
	uint64_t closed = ~keep_open;
	uint64_t sleeping = closed & ~(1ull << (lease_sig - 1));
	syscall(SYS_rt_sigprocmask, SIG_SETMASK, &closed, NULL, 8UL);
	/* A table of its own, empty (see above). */
	if (syscall(SYS_close_range, 0U, ~0U, CLOSE_RANGE_UNSHARE) != 0 ||
	    (thread_memfd = (int)syscall(SYS_openat, AT_FDCWD, "/proc/self/mem",
					 O_RDWR | O_CLOEXEC)) < 0) {
		atomic_store(&thread_gone, 1);
		atomic_store(&thread_tid, -1);
		syscall(SYS_exit, 0);
	}
	on_thread = true;
	atomic_store(&thread_tid, (int)syscall(SYS_gettid));
	for (;;) {
		unsigned seen = atomic_load(&wake);
		if (atomic_load(&thread_quit))
			break;
		run_drops();
		if (atomic_load(&req_state) == REQ_POSTED) {
			serve_take();
			continue;
		}
		/* The only place a break's handler runs: while asleep. Once
		 * leases have stopped, never again (the signal may be the
		 * program's now); the thread stays, to close what is queued. */
		bool open = nb_lease_on();
		if (!open)
			atomic_store(&sig_closed, 1);
		if (open)
			syscall(SYS_rt_sigprocmask, SIG_SETMASK, &sleeping, NULL, 8UL);
		futex((atomic_int *)&wake, FUTEX_WAIT_PRIVATE, (int)seen);
		if (open)
			syscall(SYS_rt_sigprocmask, SIG_SETMASK, &closed, NULL, 8UL);
	}
	/* Leaving: a request waiting is answered "none"; the table goes with
	 * the thread, and every lease in it. */
	if (atomic_load(&req_state) == REQ_POSTED) {
		req.fd = -1;
		atomic_store(&req_state, REQ_ANSWERED);
		futex(&req_state, FUTEX_WAKE_PRIVATE, 1);
	}
	atomic_store(&held, 0);
	atomic_store(&thread_gone, 1);
	syscall(SYS_exit, 0); /* the thread only: no unwinding, no TLS destructors */
	return NULL;
}

void nb_lease_thread_stop(void)
{
	if (atomic_load(&thread_tid) <= 0)
		return;
	atomic_store(&thread_quit, 1);
	kick();
	/* Gone, or about to make its last call (exit, which every filter
	 * allows), before the caller's filter is installed. */
	while (!atomic_load(&thread_gone))
		sched_yield();
}

static __thread bool starting_here __attribute__((tls_model("initial-exec")));

/* Starts the lease thread (once per process), or says why not. */
static void start_thread(void)
{
	/* A break that cannot be queued comes as SIGIO instead, which the
	 * thread keeps blocked: the writer would wait for the lease-break
	 * time. Where the queue is rationed that tightly, no leases. */
	struct rlimit rl;
	if (nb_sys_getrlimit(RLIMIT_SIGPENDING, &rl) == 0 && rl.rlim_cur < 64) {
		atomic_store(&thread_tid, -1);
		nb_lease_stop(NB_LEASE_STOP_SIGPENDING);
		return;
	}
	/* A handler of the program's on the signal: it must run where the
	 * program expects, never on the thread (fault.c). */
	if (nb_fault_program_handles(lease_sig)) {
		atomic_store(&thread_tid, -1);
		nb_lease_stop(NB_LEASE_STOP_PROGRAM_SIGNAL);
		return;
	}
	if (!atomic_load(&mine_ready))
		mine_reset();
	/* pthread_create takes glibc's locks: no handler of this thread may
	 * run inside it (one that creates a thread too would wait for them
	 * forever). */
	nb_crit_enter();
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
		/* Its tid, before any lease is taken for it to answer; -1 if
		 * it could not have a table of its own. */
		while (atomic_load(&thread_tid) == 0)
			sched_yield();
		if (atomic_load(&thread_tid) < 0)
			nb_lease_stop(NB_LEASE_STOP_NO_TABLE);
	} else {
		atomic_store(&thread_tid, -1);
		nb_lease_stop(NB_LEASE_STOP_NO_THREAD);
	}
	nb_crit_leave();
}

void nb_lease_prepare(void)
{
	if (NB_LIKELY(atomic_load_explicit(&thread_tid, memory_order_relaxed) != 0) ||
	    !nb_lease_on())
		return;
	/* A signal handler whose read came while its own thread is starting
	 * the lease thread: waiting would be waiting for itself. That read
	 * goes without a lease. */
	if (starting_here)
		return;
	starting_here = true;
	if (atomic_exchange(&thread_starting, 1)) {
		/* Another thread is starting it: its file's lease must not be
		 * skipped for want of a thread that is microseconds away. */
		while (atomic_load(&thread_tid) == 0)
			sched_yield();
		starting_here = false;
		return;
	}
	int saved = errno;
	start_thread();
	starting_here = false;
	errno = saved;
}

void nb_lease_atfork_child(void)
{
	/* The thread stayed in the parent, and its table with it: nothing of
	 * the parent's leases is in this process (backing.c forgot their
	 * numbers). */
	atomic_store(&thread_tid, 0);
	atomic_store(&thread_starting, 0);
	atomic_store(&thread_quit, 0);
	atomic_store(&thread_gone, 0);
	atomic_store(&held, 0);
	atomic_store(&req_owner, 0);
	atomic_store(&req_state, REQ_IDLE);
	atomic_store(&taking, 0);
	atomic_store(&sig_closed, 0);
	posted_here = false;
	thread_memfd = -1;
	mine_reset();
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
	case NB_LEASE_STOP_NO_TABLE:
		return "given up: the kernel cannot give the lease thread a descriptor table of its own (close_range CLOSE_RANGE_UNSHARE, Linux 5.9)";
	case NB_LEASE_STOP_PROGRAM_SIGNAL:
		return "given up: the program uses the lease signal (choose another NOBOUNCE_LEASE_SIGNAL)";
	case NB_LEASE_STOP_DISPOSITION:
		return "given up: the lease signal's disposition was changed behind the library";
	default:
		return lease_sig != 0 ? "on" : "off";
	}
}

int nb_lease_take(int src, dev_t dev, ino_t ino)
{
	int tid = atomic_load(&thread_tid);
	if (!nb_lease_on() || tid <= 0 || on_thread || !nb_same_process())
		return -1;
	int saved = errno;
	/* The program's own write lease on the file (only possible through
	 * the description src shares with it): our open would break it -
	 * the break is sent even to a non-blocking open. */
	if (nb_sys_fcntl(src, F_GETLEASE, 0) == F_WRLCK) {
		errno = saved;
		return -1;
	}
	while (atomic_exchange(&req_owner, 1))
		sched_yield();
	if (atomic_load(&thread_gone) || !nb_lease_on()) {
		atomic_store(&req_owner, 0);
		errno = saved;
		return -1;
	}
	req.tid = (int)syscall(SYS_gettid);
	req.src = src;
	req.dev = dev;
	req.ino = ino;
	req.fd = -1;
	atomic_store(&req_state, REQ_POSTED);
	kick();
	while (atomic_load(&req_state) == REQ_POSTED)
		futex(&req_state, FUTEX_WAIT_PRIVATE, REQ_POSTED);
	posted_here = true;
	errno = saved;
	return req.fd;
}

void nb_lease_settled(void)
{
	if (!posted_here)
		return;
	posted_here = false;
	if (atomic_load(&thread_gone)) {
		/* It left without waiting (stopped): nobody else will. */
		atomic_store(&req_state, REQ_IDLE);
		atomic_store(&req_owner, 0);
		return;
	}
	atomic_store(&req_state, REQ_SETTLED);
	futex(&req_state, FUTEX_WAKE_PRIVATE, 1);
}

/* Queues the thread's number fd for it to let go of; the entry used. */
static int queue_drop(int fd)
{
	atomic_fetch_add(&queued, 1); /* never below the entries in use */
	for (int i = 0;; i = (i + 1) % NB_LEASE_MAX) {
		int none = 0;
		if (atomic_compare_exchange_strong(&drops[i], &none, fd + 1)) {
			kick();
			return i;
		}
		if (i == NB_LEASE_MAX - 1)
			sched_yield(); /* cannot stay full: no more than are held */
	}
}

void nb_lease_drop(int fd)
{
	if (fd < 0)
		return;
	int saved = errno;
	if (on_thread)
		release_here(fd);
	else
		queue_drop(fd); /* the number is the thread's: it closes it */
	errno = saved;
}

void nb_lease_drop_wait(int fd)
{
	if (fd < 0)
		return;
	if (on_thread || atomic_load(&thread_tid) <= 0 || atomic_load(&thread_gone)) {
		nb_lease_drop(fd);
		return;
	}
	int saved = errno;
	/* Taken from the queue, and that pass over: released. The thread
	 * waits for nothing the caller holds (a hook, outside every buffer
	 * entry), so this ends; a thread that left released all. */
	int i = queue_drop(fd);
	while ((atomic_load(&drops[i]) == fd + 1 || atomic_load(&dropping)) &&
	       !atomic_load(&thread_gone))
		sched_yield();
	errno = saved;
}

/* On the thread: the lease on fd is being broken. */
static bool break_here(int fd)
{
	dev_t dev;
	ino_t ino;
	/* Out of the slot first (from here on the file reads as unleased to
	 * a reader about to make a phantom of it), then every phantom of
	 * the file gets the bytes as read, then the writer may go on. */
	if (!nb_backing_lease_taken_out(fd, &dev, &ino)) {
		/* Its slot let go of it already (queued in drops[], closed
		 * when the thread wakes): closed now, so that the writer goes
		 * on with no descriptor of ours left (release_here). The
		 * handler runs only while the thread sleeps, never inside
		 * run_drops, so the entry is still there - unless the slot is
		 * about to queue it: then it is only unlocked here, and closed
		 * when the thread wakes. */
		for (int i = 0; i < NB_LEASE_MAX; i++) {
			if (atomic_load(&drops[i]) == fd + 1) {
				release_queued(i, fd);
				return true;
			}
		}
		nb_sys_fcntl(fd, F_SETLEASE, F_UNLCK);
		return true;
	}
	NB_COUNT(leases_broken, 1);
	nb_backing_break_begin(dev, ino); /* kernel calls reading it: done */
	nb_phantom_materialize_file_range(dev, ino, 0, INT64_MAX);
	release_here(fd);
	nb_backing_break_end(dev, ino);
	return true;
}

bool nb_lease_break(int fd)
{
	int saved = errno;
	bool ours;
	if (!on_thread) {
		/* A program thread: only a break sent in the moment before the
		 * owner was moved to the thread lands here; the thread answers
		 * it itself (serve_take), this delivery is only let pass. */
		ours = fd >= 0 && (atomic_load(&taking) == fd + 1 || rec_of_fd(fd) >= 0 ||
				   dropped_lately(fd));
	} else if (rec_of_fd(fd) < 0 || nb_sys_fcntl(fd, F_GETLEASE, 0) == F_RDLCK) {
		ours = dropped_lately(fd); /* late: already let go of */
	} else {
		ours = break_here(fd);
	}
	errno = saved;
	return ours;
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
	kick(); /* the thread closes the signal and what was queued */
	errno = saved;
}

void nb_lease_stray(siginfo_t *info, void *uc)
{
	int sig = lease_sig;
	/* Blocked here when the handler returns (sigreturn restores this
	 * mask), and never opened again (nb_lease_on is false from now). */
	if (uc != NULL)
		sigaddset(&((ucontext_t *)uc)->uc_sigmask, sig);
	atomic_store(&sig_closed, 1);
	nb_lease_stop(NB_LEASE_STOP_PROGRAM_SIGNAL);
	/* To the whole process again: a thread of the program's that does
	 * not block it gets it, or it waits for the program's sigwait or
	 * signalfd. A sigqueue's (si_code < 0) goes as it came; the kernel
	 * lets no thread but the leader forge the others (kill's SI_USER,
	 * the kernel's own codes: rt_sigqueueinfo(2)), which go as kill's. */
	if (info != NULL && info->si_code < 0 && info->si_code != SI_TKILL)
		syscall(SYS_rt_sigqueueinfo, getpid(), sig, info);
	else
		syscall(SYS_kill, getpid(), sig);
}

void nb_lease_program_takes_signal(void)
{
	if (lease_sig == 0)
		return;
	nb_lease_stop(NB_LEASE_STOP_PROGRAM_SIGNAL);
	/* Before the program's handler is in place: from then on no
	 * delivery of the signal may reach the thread. */
	if (!on_thread && atomic_load(&thread_tid) > 0)
		while (!atomic_load(&sig_closed) && !atomic_load(&thread_gone))
			sched_yield();
}

/*
 * Leases queued for the thread to let go of (a slot closed in a critical
 * section, a fault or the thread itself) are still leases, on a
 * descriptor of ours that keeps the file open. The program's close of a
 * descriptor - when, plainly, a file it was done with has no opener left
 * - and its own F_SETLEASE wait until the thread has let go of them all:
 * another process's or the program's write lease on such a file is then
 * granted as plainly (tests/integration/79-lease-release-attack.sh). One
 * load when nothing is queued. Not on the thread, nor once it is gone;
 * the thread waits for nothing the caller holds (a hook, outside every
 * buffer entry).
 */
void nb_lease_drops_wait(void)
{
	if (NB_LIKELY(atomic_load_explicit(&queued, memory_order_relaxed) == 0) || on_thread)
		return;
	int saved = errno;
	kick();
	while (atomic_load(&queued) != 0 && atomic_load(&thread_tid) > 0 &&
	       !atomic_load(&thread_gone))
		sched_yield();
	errno = saved;
}

void nb_lease_yield(int fd)
{
	nb_lease_drops_wait();
	/* A slot a break left open would hold the file open too. */
	nb_backing_sweep();
	struct stat st;
	if (lease_sig == 0 || nb_sys_fstat(fd, &st) != 0)
		return;
	nb_backing_drop_lease_of(st.st_dev, st.st_ino, nb_lease_strict());
}
