/*
 * fdtab.c - the flat per-descriptor table.
 *
 * Owns: one slot per descriptor number (kind, flags, identity, the pair it
 * feeds as a source) and the rules that keep a slot honest: a generation
 * number bumped on every close or reuse the hooks see, and an identity
 * check (st_dev/st_ino) for the closes they do not see.
 * Must not: call malloc or take blocking locks - close() and dup2() are
 * async-signal-safe and so must be everything they reach here.
 *
 * Layout: a two-level table. The top level is a static array of chunk
 * pointers (zero pages until touched, so its size costs nothing); chunks of
 * NB_CHUNK slots are mmap'ed on first use and published with a CAS, the
 * loser of a race unmapping its copy. Descriptor numbers up to 2^30 (the
 * kernel's hard ceiling for fs.nr_open) are covered, so RLIMIT_NOFILE can
 * grow at any time without the table noticing.
 *
 * Invalidation is lazy: the hooks only bump `gen` (one atomic increment,
 * safe anywhere), and whoever next takes the slot's try-lock sees that
 * `state_gen` lags, retires the old pair into loops.c and starts over.
 * Descriptors can also be closed and reused behind our back (fclose goes
 * through glibc's internal __close_nocancel, raw syscall(SYS_close),
 * io_uring), which no generation catches; nb_fd_revalidate() compares the
 * cached st_dev/st_ino with a fresh fstat before anything relies on them.
 */
#include "internal.h"

#include <sys/time.h>

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <limits.h>
#include <linux/futex.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define NB_CHUNK_SHIFT 10
#define NB_CHUNK (1u << NB_CHUNK_SHIFT)
#define NB_TOP (1u << 20) /* NB_TOP * NB_CHUNK = 2^30 descriptors */

struct slot {
	struct nb_fd fd;
	unsigned state_gen; /* the gen that kind, flags and pair belong to */
};

static struct slot *_Atomic top[NB_TOP];
static atomic_uint top_used; /* highest allocated chunk index + 1 */

static struct slot *chunk_alloc(unsigned hi) __attribute__((noinline));

/* Every hook that tracks a descriptor comes through here: keep it inline
 * and the rare allocation out of line. */
static inline __attribute__((always_inline)) struct slot *chunk_for(int fd, bool alloc)
{
	if (NB_UNLIKELY(fd < 0 || (unsigned)fd >= NB_TOP * NB_CHUNK))
		return NULL;
	unsigned hi = (unsigned)fd >> NB_CHUNK_SHIFT;
	struct slot *c = atomic_load_explicit(&top[hi], memory_order_acquire);
	if (NB_LIKELY(c != NULL) || !alloc)
		return c;
	return chunk_alloc(hi);
}

static struct slot *chunk_alloc(unsigned hi)
{
	size_t bytes = sizeof(struct slot) * NB_CHUNK;
	void *m = nb_sys_mmap_anon(bytes);
	if (m == MAP_FAILED)
		return NULL;
	struct slot *expect = NULL;
	if (!atomic_compare_exchange_strong_explicit(&top[hi], &expect, (struct slot *)m,
						     memory_order_acq_rel, memory_order_acquire)) {
		nb_sys_munmap(m, bytes);
		return expect;
	}
	NB_COUNT(fd_slots, 1);
	unsigned used = atomic_load(&top_used);
	while (used < hi + 1 && !atomic_compare_exchange_weak(&top_used, &used, hi + 1))
		;
	return (struct slot *)m;
}

static inline struct slot *slot_of(int fd, bool alloc)
{
	struct slot *c = chunk_for(fd, alloc);
	return c ? &c[(unsigned)fd & (NB_CHUNK - 1)] : NULL;
}

struct nb_fd *nb_fd_peek(int fd)
{
	struct slot *s = slot_of(fd, false);
	return s ? &s->fd : NULL;
}

bool nb_fd_trylock(struct nb_fd *e)
{
	unsigned char expect = 0;
	if (atomic_compare_exchange_strong_explicit(&e->busy, &expect, 1, memory_order_acquire,
						    memory_order_relaxed))
		return true;
	NB_COUNT(lock_skips, 1);
	return false;
}

void nb_fd_unlock(struct nb_fd *e)
{
	atomic_store_explicit(&e->busy, 0, memory_order_release);
}

/* Called with the slot locked: bring kind/pair up to the current gen. */
static void catch_up(int fd, struct slot *s)
{
	unsigned g = atomic_load_explicit(&s->fd.gen, memory_order_acquire);
	if (s->state_gen == g)
		return;
	/* A settled loop's count belongs to the pair retired here; its
	 * thread left it at the generation bump (settle.c). */
	nb_settle_fold_locked(&s->fd);
	atomic_store(&s->fd.settle_owner, 0);
	if (s->fd.pair.state != NB_PAIR_IDLE)
		nb_loops_retire(fd, &s->fd.pair);
	s->fd.kind = NB_KIND_UNKNOWN;
	s->fd.flags = 0;
	s->fd.dev = 0;
	s->fd.ino = 0;
	s->fd.size = 0;
	memset(&s->fd.pair, 0, sizeof s->fd.pair);
	s->fd.pair.dst = -1;
	s->fd.touches_seen = atomic_load(&s->fd.touches);
	atomic_store(&s->fd.no_zc, 0);
	s->state_gen = g;
}

struct nb_fd *nb_fd_get(int fd)
{
	struct slot *s = slot_of(fd, true);
	if (s == NULL)
		return NULL;
	if (s->state_gen != atomic_load_explicit(&s->fd.gen, memory_order_acquire) &&
	    nb_fd_trylock(&s->fd)) {
		catch_up(fd, s);
		nb_fd_unlock(&s->fd);
	}
	return &s->fd;
}

/* A socket error kept for the number's next send ("Socket errors a
 * served write took away", below) belongs to the socket it was taken
 * from: gone with it. Left behind, it would also keep every write of the
 * process off write()'s short path. */
static void drop_lost_err(struct nb_fd *e)
{
	if (atomic_exchange(&e->lost_err, 0) != 0)
		atomic_fetch_sub(&nb_lost_errs, 1);
}

/* Does fd still name the socket its kept error was taken from? */
static bool lost_err_socket(int fd, const struct nb_fd *e)
{
	int saved = errno;
	struct stat st;
	bool same = nb_sys_fstat(fd, &st) == 0 && st.st_dev == e->lost_dev &&
		    st.st_ino == e->lost_ino;
	errno = saved;
	return same;
}

/* Is this the process whose table the slots describe? A vfork child
 * (posix_spawn-like code calling close or closefrom before exec) runs the
 * hooks on its parent's memory while closing numbers in its own copy of
 * the table: its closes say nothing about the parent's sockets, and
 * dropping a kept error there took it from the parent, whose next send
 * then got EPIPE and SIGPIPE where plainly ECONNRESET
 * (tests/integration/63-kept-error-and-other-processes.sh). backing.c asks
 * the same before it lets go of a kept source. */
bool nb_own_table(void)
{
	return nb_g.pid == 0 || (pid_t)syscall(SYS_getpid) == nb_g.pid;
}

static void bump(struct nb_fd *e)
{
	atomic_fetch_add_explicit(&e->gen, 1, memory_order_acq_rel);
}

/* The ranges are closed: their kept errors go with them. */
static void bump_closed(struct nb_fd *e)
{
	bump(e);
	if (NB_UNLIKELY(atomic_load_explicit(&e->lost_err, memory_order_relaxed) != 0) &&
	    nb_own_table())
		drop_lost_err(e);
}

void nb_fd_forget(int fd)
{
	struct slot *s = slot_of(fd, false);
	if (s != NULL) {
		bump(&s->fd);
		nb_settle_break(); /* after the bump: settled loops look again */
		/* Forgotten also while it stays open (a send timeout set, flags
		 * not updated): the error is kept as long as the socket is. */
		if (NB_UNLIKELY(atomic_load_explicit(&s->fd.lost_err, memory_order_relaxed) != 0) &&
		    nb_own_table() && !lost_err_socket(fd, &s->fd))
			drop_lost_err(&s->fd);
	}
	if (fd >= 0)
		nb_backing_fds_closed((unsigned)fd, (unsigned)fd);
}

/* Calls fn on every slot that exists for a number in [lo, hi]. No chunk
 * lies past top_used: closefrom() and close_range(lo, ~0U) - a daemon's
 * every fork - would otherwise walk all NB_TOP entries of the top table
 * (about 0.6 ms), and a close now walks twice (before and after). A chunk
 * allocated while the walk runs is one whose numbers were first seen by a
 * hook racing with the close: as when the walk passes it just before. */
static void each_slot(unsigned lo, unsigned hi, void (*fn)(struct nb_fd *))
{
	unsigned used = atomic_load(&top_used);
	if (used == 0)
		return;
	if (hi >= used * NB_CHUNK - 1)
		hi = used * NB_CHUNK - 1;
	for (unsigned fd = lo; fd <= hi;) {
		struct slot *c = chunk_for((int)fd, false);
		unsigned chunk_end = (fd | (NB_CHUNK - 1));
		if (c == NULL) {
			if (chunk_end >= hi)
				break;
			fd = chunk_end + 1;
			continue;
		}
		unsigned end = chunk_end < hi ? chunk_end : hi;
		for (; fd <= end; fd++)
			fn(&c[fd & (NB_CHUNK - 1)].fd);
		if (end == hi)
			break;
	}
}

void nb_fd_forget_range(unsigned lo, unsigned hi)
{
	nb_backing_fds_closed(lo, hi);
	each_slot(lo, hi, bump_closed);
	nb_settle_break();
}

/*
 * A deferred read holds its number.
 *
 * A deferred read of a file works through the program's descriptor number
 * for a while: it moves the position, reads the partial head and tail
 * pages, and reopens the file through /proc/self/fd. If another thread
 * closes the number and opens another file on it, or dup2()s another
 * description onto it, in the middle of that, the read would return the
 * new file's bytes at the old file's offsets, or move the wrong file's
 * position. A plain read(2) cannot be cut like that: the kernel holds the
 * file from the start of the call to its end, and a close or dup2 lands
 * before or after it. So the deferred read announces itself on the slot
 * (`reader` = its pid), and the hooked close, dup2, dup3, close_range and
 * closefrom announce a replacement (`replacing`, or `ranging` for a
 * range, counted up; gen bumped) before their real call, then wait while a
 * reader is inside:
 *
 *   reader                             replacer
 *   store reader = pid  (seq_cst)      replacing += 1, gen += 1 (seq_cst)
 *   gen still as looked at, nothing    reader == our pid? sleep until 0
 *     replacing? else release, plain     (futex, hold_waiters counted;
 *   ... lseek, preads, backing ...        at most NB_HOLD_WAIT_NS)
 *   store reader = 0, wake sleepers    real close / dup2 / ...
 *                                      gen += 1 (nb_fd_forget)
 *                                      replacing -= 1
 *
 * With both sides sequentially consistent, at least one sees the other:
 * the read goes plain, or the replacement waits for it. The count, not
 * the first gen bump alone, is what the reader must see: between the bump
 * and the real call the replacer may be preempted for milliseconds, and
 * in them the reading thread catches the slot up to the bumped gen, looks
 * at the file (still the old one), arms the pair again and begins a
 * deferred read that the gen check lets through - the dup2 then landed in
 * its middle, and the old file's position and backing were mixed with the
 * new file's bytes (tests/integration/67-replace-between-announce-and-call.sh).
 * A state looked at after the real call has a gen the forget bumps past
 * before the count goes down. The reader holds
 * the number only inside its critical section (asynchronous signals
 * blocked, sigguard.c), so no handler on the reading thread can be the
 * one that waits for it; a reader of this file does not wait for anything
 * but the kernel on regular files (and, once per file, the lease thread's
 * answer). The edges are read into the program's buffer inside the hold,
 * and a copy into memory the program serves itself (userfaultfd) would
 * wait for the program's fault thread - which may be the thread replacing
 * the number, waiting here: so a process that makes or sets up a
 * userfaultfd defers no read from then on (sigguard.c "uffd",
 * tests/integration/76-userfaultfd-defers-nothing.sh). The wait is
 * bounded for a reader stopped by a debugger, and for what no hook sees
 * (a userfaultfd made with the syscall instruction itself); after it the
 * replacement goes ahead, as it would without the library. A pid that is not ours is a mark a forked child inherited
 * from a thread that does not exist there: never waited for. What no hook
 * sees (a raw close or dup2) is not covered: README Known limits.
 */
#define NB_HOLD_WAIT_NS (2ull * 1000 * 1000 * 1000)

/* close_range and closefrom going on: rare, so one count for all numbers
 * rather than one per slot (a slot may appear between the walks). */
static atomic_int ranging;

bool nb_fd_read_hold(struct nb_fd *e)
{
	struct slot *s = (struct slot *)e;
	atomic_store(&e->reader, nb_g.pid != 0 ? nb_g.pid : (int)syscall(SYS_getpid));
	if (NB_LIKELY(s->state_gen == atomic_load(&e->gen) && atomic_load(&e->replacing) == 0 &&
		      atomic_load(&ranging) == 0))
		return true;
	atomic_store_explicit(&e->reader, 0, memory_order_release);
	return false;
}

void nb_fd_read_release(struct nb_fd *e)
{
	atomic_store(&e->reader, 0);
	/* Paired with the waiter's count-then-look (seq_cst both): a waiter
	 * this load misses has not looked at `reader` yet, and sees 0. */
	if (NB_UNLIKELY(atomic_load(&e->hold_waiters) != 0))
		syscall(SYS_futex, &e->reader, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

static uint64_t mono_ns(void)
{
	struct timespec t;
	syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static void wait_reader(struct nb_fd *e)
{
	atomic_fetch_add(&e->gen, 1);
	nb_settle_break();
	int r = atomic_load(&e->reader);
	if (NB_LIKELY(r == 0))
		return;
	int saved = errno;
	if (r == (int)syscall(SYS_getpid)) {
		/* Asleep, not spinning: on a machine with few CPUs the reader
		 * may be the one waiting for this CPU. Woken by its release;
		 * 1 ms slices keep the bound without counting on that. */
		uint64_t until = mono_ns() + NB_HOLD_WAIT_NS;
		atomic_fetch_add(&e->hold_waiters, 1);
		while (atomic_load(&e->reader) == r && mono_ns() < until) {
			struct timespec slice = { 0, 1000 * 1000 };
			syscall(SYS_futex, &e->reader, FUTEX_WAIT_PRIVATE, r, &slice, NULL, 0);
		}
		atomic_fetch_sub(&e->hold_waiters, 1);
	}
	errno = saved;
}

/*
 * Socket errors a served write took away. A write served in several
 * sendfile calls into a TCP socket can meet a peer's reset in the middle:
 * the call that meets it with nothing sent yet fails, and in failing the
 * kernel hands over and clears the socket's pending error
 * (sk_stream_error -> sock_error). The same happens inside one sendfile
 * call: splice_to_socket sends its buffers batch by batch, and a later
 * batch that meets the reset takes the error while the call returns the
 * short count of the batches before. The write returns the bytes sent so
 * far, as write(2) does - but write(2) returned that count without
 * touching the error, so the program's next send got it (ECONNRESET, no
 * SIGPIPE); with it gone, the next send gets EPIPE and SIGPIPE, which
 * kills a program that keeps SIGPIPE at its default. So the error is kept
 * here, with the identity of the socket, and the next send on the number
 * reports it without a system call, as the kernel would have: -1 and that
 * errno, nothing sent. A read, poll or getsockopt(SO_ERROR) in between
 * does not see it (README Known limits).
 */
atomic_int nb_lost_errs;

void nb_fd_note_lost_err(int fd, int err)
{
	struct slot *s = slot_of(fd, true);
	struct stat st;
	if (s == NULL || nb_sys_fstat(fd, &st) != 0)
		return;
	s->fd.lost_dev = st.st_dev;
	s->fd.lost_ino = st.st_ino;
	if (atomic_exchange(&s->fd.lost_err, err) == 0)
		NB_SETTLE_RAISE(nb_lost_errs);
}

int nb_fd_take_lost_err(int fd)
{
	struct slot *s = slot_of(fd, false);
	if (s == NULL || atomic_load(&s->fd.lost_err) == 0)
		return 0;
	int err = atomic_exchange(&s->fd.lost_err, 0);
	if (err == 0)
		return 0;
	atomic_fetch_sub(&nb_lost_errs, 1);
	/* Closed and opened again since - also behind the hooks (a FILE's
	 * fclose): the error was another socket's. */
	return lost_err_socket(fd, &s->fd) ? err : 0;
}

/* A number with no slot yet. A reader may make its slot, and arm a pair
 * on it, while the real call is still to come; but making a slot for
 * every number closed maps the table for a daemon's close-everything loop
 * (2^20 closes: 320 MB resident). So such a replacement counts as a range
 * does, and every hold refuses while it lasts (rare, and only slower). */
static struct nb_fd unslotted;

struct nb_fd *nb_fd_before_replace(int fd)
{
	struct slot *s = slot_of(fd, false);
	if (s == NULL) {
		atomic_fetch_add(&ranging, 1);
		return &unslotted;
	}
	atomic_fetch_add(&s->fd.replacing, 1);
	wait_reader(&s->fd);
	return &s->fd;
}

void nb_fd_after_replace(struct nb_fd *e)
{
	if (e == &unslotted)
		atomic_fetch_sub(&ranging, 1);
	else if (e != NULL)
		atomic_fetch_sub(&e->replacing, 1);
}

void nb_fd_before_replace_range(unsigned lo, unsigned hi)
{
	atomic_fetch_add(&ranging, 1);
	each_slot(lo, hi, wait_reader);
}

void nb_fd_after_replace_range(void)
{
	atomic_fetch_sub(&ranging, 1);
}

void nb_fd_set_flags(struct nb_fd *e, int oflags)
{
	unsigned f = e->flags & (NB_FL_PSEUDO | NB_FL_SNDTIMEO | NB_FL_WIDE);
	if (oflags & O_APPEND)
		f |= NB_FL_APPEND;
	if (oflags & O_NONBLOCK)
		f |= NB_FL_NONBLOCK;
	if (oflags & O_DIRECT)
		f |= NB_FL_DIRECT;
	e->flags = (uint8_t)f;
}

static enum nb_kind kind_of_socket(int fd)
{
	int type = 0, domain = 0;
	socklen_t l = sizeof type;
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &l) != 0 || type != SOCK_STREAM)
		return NB_KIND_OTHER;
	l = sizeof domain;
	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &l) != 0)
		return NB_KIND_OTHER;
	if (domain == AF_UNIX)
		return NB_KIND_UNIX;
	if (domain == AF_INET || domain == AF_INET6)
		return NB_KIND_TCP;
	return NB_KIND_OTHER;
}

/* The caller holds the slot's lock. */
enum nb_kind nb_fd_classify(int fd, struct nb_fd *e)
{
	int saved = errno;
	struct slot *s = (struct slot *)e;
	catch_up(fd, s);
	struct stat st;
	enum nb_kind k = NB_KIND_OTHER;
	if (nb_sys_fstat(fd, &st) != 0) {
		errno = saved;
		return NB_KIND_UNKNOWN; /* not open: nothing to cache */
	}
	switch (st.st_mode & S_IFMT) {
	case S_IFREG: k = NB_KIND_FILE; break;
	case S_IFBLK: k = NB_KIND_BLOCK; break;
	case S_IFIFO: k = NB_KIND_PIPE; break;
	case S_IFCHR: k = NB_KIND_CHAR; break;
	case S_IFSOCK: k = kind_of_socket(fd); break;
	default: k = NB_KIND_OTHER; break;
	}
	e->flags = 0;
	int fl = nb_sys_fcntl(fd, F_GETFL, 0);
	nb_fd_set_flags(e, fl < 0 ? 0 : fl);
	/* A send timeout is one budget for a whole write(2) (tcp_sendmsg and
	 * unix_stream_sendmsg count it down across their waits); every
	 * sendfile/splice call - and every 64 KiB inside one - starts it
	 * afresh, so a slow reader could hold a cut write far longer than
	 * the timeout. Such sockets stay plain (setsockopt forgets the slot:
	 * read again at the next classification). */
	if (k == NB_KIND_TCP || k == NB_KIND_UNIX) {
		struct timeval tv = { 0, 0 };
		socklen_t l = sizeof tv;
		if (getsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, &l) != 0 || tv.tv_sec || tv.tv_usec)
			e->flags |= NB_FL_SNDTIMEO;
	}
	/* Loopback or a real link? Loopback TCP moves 16-48 KiB sendfile
	 * calls fastest, since the receiver's protocol work runs on the
	 * sender's CPU; across a link, calls of 64 KiB and more win
	 * (scripts/bench-netns.sh, README "Socket call size beyond
	 * loopback"). The sender's segment size tells them apart without a
	 * routing lookup: lo's 64 KiB MTU gives an MSS near 64K, an Ethernet
	 * or veth path (jumbo frames included) one of 9K or less. Only an
	 * established connection has its own: one not connected yet reports
	 * a default and stays with the loopback size. */
	if (k == NB_KIND_TCP) {
		struct tcp_info ti;
		socklen_t l = sizeof ti;
		memset(&ti, 0, sizeof ti);
		if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &l) == 0 &&
		    ti.tcpi_state == TCP_ESTABLISHED && ti.tcpi_snd_mss > 0 &&
		    ti.tcpi_snd_mss <= 16384)
			e->flags |= NB_FL_WIDE;
	}
	/* /proc and /sys files claim size 0 yet return data: no kernel path
	 * may treat them as ordinary files. */
	if (k == NB_KIND_FILE && st.st_size == 0)
		e->flags |= NB_FL_PSEUDO;
	e->dev = st.st_dev;
	e->ino = st.st_ino;
	e->size = st.st_size;
	__atomic_store_n(&e->kind, (uint8_t)k, __ATOMIC_RELEASE); /* last: nb_fd_kind */
	NB_COUNT(classified, 1);
	errno = saved;
	return k;
}

/* The caller holds the slot's lock. nb_fd_get catches a slot up only
 * when its try-lock succeeds, and nb_fd_peek never does: a holder that
 * acts on kind, identity or pair asks here first. The number may have
 * been closed and handed out again since they were set - by another
 * thread too, whose open(2) bumped gen before returning - and the old
 * file's identity would then be taken for the new one's. */
bool nb_fd_current(int fd, struct nb_fd *e)
{
	struct slot *s = (struct slot *)e;
	if (NB_LIKELY(s->state_gen == atomic_load_explicit(&e->gen, memory_order_acquire)))
		return true;
	catch_up(fd, s);
	return false;
}

/* The caller holds the slot's lock. */
bool nb_fd_revalidate(int fd, struct nb_fd *e)
{
	int saved = errno;
	struct slot *s = (struct slot *)e;
	NB_COUNT(revalidations, 1);
	if (s->state_gen != atomic_load_explicit(&e->gen, memory_order_acquire) ||
	    e->kind == NB_KIND_UNKNOWN) {
		errno = saved;
		return false;
	}
	struct stat st;
	bool same = nb_sys_fstat(fd, &st) == 0 && st.st_dev == e->dev && st.st_ino == e->ino;
	if (same) {
		int fl = nb_sys_fcntl(fd, F_GETFL, 0);
		nb_fd_set_flags(e, fl < 0 ? 0 : fl);
		if (e->kind == NB_KIND_FILE) {
			e->size = st.st_size;
			if (st.st_size > 0)
				e->flags &= (uint8_t)~NB_FL_PSEUDO;
		}
	} else {
		NB_COUNT(stale, 1);
		atomic_fetch_add_explicit(&e->gen, 1, memory_order_acq_rel);
		nb_settle_break();
		catch_up(fd, s);
	}
	errno = saved;
	return same;
}

void nb_fd_each_pair(void (*fn)(int fd, struct nb_fd *e, void *ctx), void *ctx)
{
	unsigned used = atomic_load(&top_used);
	for (unsigned hi = 0; hi < used; hi++) {
		struct slot *c = atomic_load_explicit(&top[hi], memory_order_acquire);
		if (c == NULL)
			continue;
		for (unsigned i = 0; i < NB_CHUNK; i++)
			if (c[i].fd.pair.state != NB_PAIR_IDLE && c[i].fd.pair.iterations > 0)
				fn((int)((hi << NB_CHUNK_SHIFT) | i), &c[i].fd, ctx);
	}
}

/* In a forked child: the descriptors (and what we know of them) are
 * inherited, but the loops so far were the parent's to report. */
void nb_fdtab_forget_pairs(void)
{
	unsigned used = atomic_load(&top_used);
	for (unsigned hi = 0; hi < used; hi++) {
		struct slot *c = atomic_load(&top[hi]);
		if (c == NULL)
			continue;
		for (unsigned i = 0; i < NB_CHUNK; i++) {
			/* Reading first keeps untouched pages unallocated. */
			if (c[i].fd.pair.state != NB_PAIR_IDLE) {
				memset(&c[i].fd.pair, 0, sizeof c[i].fd.pair);
				c[i].fd.pair.dst = -1;
			}
			if (atomic_load(&c[i].fd.settled) != 0)
				atomic_store(&c[i].fd.settled, 0);
			if (atomic_load(&c[i].fd.settled_flushed) != 0)
				atomic_store(&c[i].fd.settled_flushed, 0);
			if (atomic_load(&c[i].fd.settle_owner) != 0)
				atomic_store(&c[i].fd.settle_owner, 0);
			if (atomic_load(&c[i].fd.busy))
				atomic_store(&c[i].fd.busy, 0);
			/* A kept socket error is reported once, by the process
			 * that kept it: the socket's pending error was one, and
			 * a child reporting it too made two (the parent's next
			 * send failing with ECONNRESET where plainly the child
			 * had taken it and the parent got EPIPE and SIGPIPE).
			 * The child's sends find the connection closed (README
			 * Known limits). */
			if (atomic_load(&c[i].fd.lost_err) != 0)
				atomic_store(&c[i].fd.lost_err, 0);
		}
	}
	atomic_store(&nb_lost_errs, 0);
}

void nb_fdtab_reset(void)
{
	unsigned used = atomic_exchange(&top_used, 0);
	for (unsigned hi = 0; hi < used; hi++) {
		struct slot *c = atomic_exchange(&top[hi], NULL);
		if (c != NULL)
			nb_sys_munmap(c, sizeof(struct slot) * NB_CHUNK);
	}
}

const char *nb_kind_name(enum nb_kind k)
{
	static const char *const names[NB_KIND_COUNT] = {
		"unknown", "file", "block", "tcp", "unix", "pipe", "char", "other",
	};
	return (unsigned)k < NB_KIND_COUNT ? names[k] : "?";
}
