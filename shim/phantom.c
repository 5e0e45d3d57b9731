/*
 * phantom.c - guarded memory whose bytes still live in a file.
 *
 * Owns: the table of phantoms (page-aligned ranges of the program's memory,
 * made PROT_NONE, that stand for bytes [off, off+len) of a source file),
 * their lookup from the fault trampoline, and materialisation: putting the
 * file's bytes into the memory and giving the program its access back.
 * Must not: allocate, lock, or use stdio - lookups and materialisation run
 * inside the SIGSEGV trampoline, on any thread, at any time.
 *
 * Filling without a window. The obvious order (mprotect read-write, then
 * pread into the memory) lets another thread read the pages in between
 * and see stale bytes. Instead the bytes are written while the pages are
 * still PROT_NONE, through /proc/self/mem, which writes with FOLL_FORCE
 * and so ignores the protection (proc(5), /proc/pid/mem; sendfile and
 * splice into it fail with EINVAL, so it is pread into a scratch buffer,
 * then pwrite). Only then does mprotect open the pages: any thread that
 * can touch them sees the final bytes. Two threads faulting on one
 * phantom race on a CAS of its state; the loser waits for the winner and
 * returns to re-execute its access.
 *
 * The table is a fixed array, claimed and released with CAS. The backing
 * of a live phantom (source descriptor and offset) can be replaced in
 * place - the steady state of an armed loop keeps its buffer guarded and
 * only swaps the record - under the entry's own state word.
 *
 * One entry's states and who may move it between them:
 *
 *   FREE --add_entry--> BUSY --(pages guarded)--> LIVE
 *   LIVE --claim--> BUSY --unclaim--> LIVE        (get, rebind, tee, edges)
 *   LIVE --claim--> BUSY --fill, open--> DONE     (materialise: a touch,
 *                                                  a fork, a change of the
 *                                                  source, exec)
 *   LIVE --claim--> BUSY --> FREE                 (memory freed/unmapped)
 *   DONE --(grace over, or range dropped)--> FREE
 *
 * BUSY belongs to one thread, for microseconds, and nothing inside it
 * blocks. The rules that keep that true:
 *  - Same thread, signal handler: every BUSY period is a critical section
 *    (sigguard.c nb_crit_enter) with the asynchronous signals blocked, and
 *    the trampoline itself runs with them blocked (fault.c): no handler
 *    of the program's can interrupt a holder and then wait for its entry.
 *    SIGSEGV stays open - a holder that touches another phantom's pages
 *    (edges next to a guard) fills that one, a different entry.
 *  - Other threads: they wait (yield) for BUSY to end; a fault on pages of
 *    a DONE entry within NB_GRACE_NS just re-runs the access.
 *  - fork(): the gate below. The forking thread (one at a time: forks
 *    from several threads queue) closes it, waits until no entry is BUSY,
 *    and forks; nobody else takes an entry meanwhile. The child therefore
 *    sees FREE, LIVE and DONE only (pipe phantoms are filled before,
 *    their pipes being shared).
 *  - A child the library was not told of (_Fork without the hook, a raw
 *    fork or clone, vfork): no entry is added there, fills write through
 *    a /proc/self/mem of its own, and a pipe phantom is read through a
 *    tee, never from the parent's pipe (nb_same_process).
 */
#include "internal.h"
#include "xfer.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void)
{
	struct timespec t;
	/* The vDSO, not the hook (hook_kread.c): async-signal-safe. */
	NB_REAL(clock_gettime)(CLOCK_MONOTONIC_COARSE, &t);
	return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}


/* DONE: materialised a moment ago. Another thread may have faulted on the
 * same pages before they opened and be on its way into the trampoline; it
 * must find the entry and simply retry its access, not be handed to the
 * program's handler as a stray fault. The range is kept for NB_GRACE_NS,
 * then the slot is free for reuse (and no longer absorbs faults). */
enum { PH_FREE = 0, PH_BUSY, PH_LIVE, PH_DONE };
#define NB_GRACE_NS 50000000ull /* 50 ms: a fault takes microseconds */

struct phantom {
	atomic_int state;
	atomic_uint ver;      /* bumped whenever BUSY ends: readers' check */
	uintptr_t start, end; /* page aligned */
	uint8_t kind;         /* NB_PH_FILE or NB_PH_PIPE */
	size_t len;           /* bytes from start the backing holds (pipe:
				 may end inside the last page, whose rest
				 keeps what the memory held) */
	int src;              /* file: the library's own duplicate of the source */
	off_t off;            /* file: offset of start */
	struct nb_pipe pipe;  /* pipe: the pool pipe holding the bytes */
	uint64_t done_ns;     /* when it became DONE */
	int owner;            /* source descriptor it was read from, -1 */
	unsigned owner_gen;
	/* The read around the pages: [xstart, start) and [end, xend) are
	 * ordinary memory that the read filled for real; their bytes as read
	 * are kept in this entry's edge slot (edges[]), so that a write that
	 * finds them unchanged can send them from the file with the pages. */
	uintptr_t xstart, xend;
};

static struct phantom table[NB_MAX_PHANTOMS];

/* Entries that stopped standing for guarded pages (FREE, DONE): bumped
 * before the state says so, after the pages were opened (or are going
 * away). nb_phantom_left() */
static atomic_uint left_seq;

unsigned nb_phantom_left(void)
{
	return atomic_load(&left_seq);
}

/* The end of a BUSY period: the record may have changed, so readers
 * that looked meanwhile (read_begin/read_end) look again. */
static void publish(struct phantom *p, int st)
{
	if (st == PH_FREE || st == PH_DONE)
		atomic_fetch_add(&left_seq, 1);
	atomic_fetch_add_explicit(&p->ver, 1, memory_order_release);
	atomic_store_explicit(&p->state, st, memory_order_release);
}
static atomic_uint high;  /* slots ever used: scans stop here */
/* LIVE, BUSY or DONE entries in the table: the hot path's first look
 * (nb_phantom_any, internal.h), hence not static. */
atomic_uint nb_phantom_live;
struct phantom;
static int open_pages(const struct phantom *p);
static atomic_int memfd = -1;

/* ---- fork: no entry may be caught half changed ---- */

/* While a fork is being prepared, no thread but the forking one takes an
 * entry (claim, add_entry), and the forking thread waits until none is
 * held: the child then finds every entry FREE, LIVE or DONE - never BUSY
 * for a thread it does not have. A thread that already holds an entry
 * and takes a second goes on: waiting there would wait for the fork that
 * waits for it. */
static atomic_int fork_gate;
static __thread bool forking __attribute__((tls_model("initial-exec")));
static __thread unsigned held_here __attribute__((tls_model("initial-exec"))); /* entries this thread holds */

static bool gate_closed_to_me(void)
{
	return NB_UNLIKELY(atomic_load(&fork_gate) != 0) && !forking && held_here == 0;
}

static void gate_wait(void)
{
	while (gate_closed_to_me())
		sched_yield();
}

static bool any_busy(void)
{
	unsigned n = atomic_load(&high);
	for (unsigned i = 0; i < n; i++)
		if (atomic_load(&table[i].state) == PH_BUSY)
			return true;
	return false;
}

/* Forks are prepared one at a time: two threads forking at once would
 * otherwise open the gate for each other's children. */
static atomic_int fork_lock;

void nb_phantom_fork_prepare(void)
{
	while (atomic_exchange(&fork_lock, 1))
		sched_yield();
	forking = true;
	atomic_store(&fork_gate, 1);
	/* Holders finish in microseconds (nothing blocks inside an entry);
	 * a thread stopped in one (a debugger) is not waited for forever. */
	for (unsigned spins = 0; any_busy() && spins < 200000; spins++)
		sched_yield();
	if (any_busy())
		nb_log(NB_LOG_WARN, "fork: a buffer entry is still held by another thread");
}

void nb_phantom_fork_parent(void)
{
	atomic_store(&fork_gate, 0);
	forking = false;
	atomic_store(&fork_lock, 0);
}

/* The child: one thread, no fork in progress. An entry still BUSY (the
 * wait above gave up) belongs to a thread that does not exist here; it
 * is made LIVE again, so a touch fills it from its record instead of
 * waiting forever - and that is logged. */
static void fork_child_entries(void)
{
	atomic_store(&fork_gate, 0);
	atomic_store(&fork_lock, 0);
	forking = false;
	held_here = 0;
	nb_crit_reset_thread();
	unsigned n = atomic_load(&high);
	for (unsigned i = 0; i < n; i++) {
		struct phantom *p = &table[i];
		if (atomic_load(&p->state) != PH_BUSY)
			continue;
		nb_log(NB_LOG_WARN, "fork: buffer entry %u was held by another thread", i);
		publish(p, PH_LIVE);
	}
}

/* Edge slots, NB_EDGE_MAX bytes for each side of each entry, in one
 * mapping made on first use and reserved lazily by the kernel: only the
 * slots of entries that are used ever cost memory. */
#define NB_EDGE_MAX 4096u
static char *_Atomic edges;

static char *edge_slot(int idx)
{
	char *m = atomic_load_explicit(&edges, memory_order_acquire);
	if (m == NULL) {
		size_t len = (size_t)NB_MAX_PHANTOMS * 2 * NB_EDGE_MAX;
		void *p = (void *)syscall(SYS_mmap, NULL, len, PROT_READ | PROT_WRITE,
					  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (p == MAP_FAILED)
			return NULL;
		char *expect = NULL;
		if (atomic_compare_exchange_strong(&edges, &expect, (char *)p)) {
			m = p;
		} else {
			nb_sys_munmap(p, len); /* another thread was first */
			m = expect;
		}
	}
	return m + (size_t)idx * 2 * NB_EDGE_MAX;
}
/* Keeps the bytes read around a held entry's pages, [xstart, start) and
 * [end, xend), in its edge slot. */
static int keep_edges(struct phantom *p, char *slot, uintptr_t xstart, uintptr_t xend)
{
	if (xstart > p->start || xend < p->end || p->start - xstart > NB_EDGE_MAX ||
	    xend - p->end > NB_EDGE_MAX)
		return -1;
	/* The edges are the caller's freshly read, accessible memory
	 * (defer.c checked the whole buffer is private anonymous). */
	memcpy(slot + NB_EDGE_MAX - (p->start - xstart), (const void *)xstart, p->start - xstart);
	memcpy(slot + NB_EDGE_MAX, (const void *)p->end, xend - p->end);
	p->xstart = xstart;
	p->xend = xend;
	return 0;
}

static __thread bool quiet_fill __attribute__((tls_model("initial-exec")));

static bool in_grace(const struct phantom *p, uint64_t now)
{
	return now - p->done_ns < NB_GRACE_NS;
}

/* Scratch buffers for filling: a small pool shared by all threads, mapped
 * on first use and kept (a per-thread buffer would leak with every thread
 * a server starts). A filler that finds them all taken copies through a
 * small stack buffer instead: slower, never blocked. */
#define NB_SCRATCH (128 * 1024)
#define NB_SCRATCH_SLOTS 4
#define NB_STACK_SCRATCH 512

static char *_Atomic scratch_mem[NB_SCRATCH_SLOTS];
static atomic_flag scratch_busy[NB_SCRATCH_SLOTS];

static int scratch_take(char **buf, size_t *cap)
{
	for (int i = 0; i < NB_SCRATCH_SLOTS; i++) {
		if (atomic_flag_test_and_set(&scratch_busy[i]))
			continue;
		char *m = atomic_load(&scratch_mem[i]);
		if (m == NULL) {
			void *p = nb_sys_mmap_anon(NB_SCRATCH);
			if (p == MAP_FAILED) {
				atomic_flag_clear(&scratch_busy[i]);
				return -1;
			}
			m = p;
			atomic_store(&scratch_mem[i], m);
		}
		*buf = m;
		*cap = NB_SCRATCH;
		return i;
	}
	return -1;
}

/* Is this the process the library knows? A child made by the fork or
 * clone instruction itself runs no handler of ours, and getpid(2) on
 * every read and write costs what a copy loop cannot spare. So one page
 * of ours is marked MADV_WIPEONFORK (madvise(2), Linux 4.14): every child
 * finds it zeroed, while the process itself and a vfork child (which
 * shares its memory, and whose descriptors name the same files) find
 * the mark. The fork handlers set the mark again in a child they know.
 * Without the page (the advice refused): getpid. */
#define NB_PROCESS_MARK 0x6e6f626f756e6365ull /* "nobounce" */
static volatile uint64_t *process_mark;

void nb_process_mark(void)
{
	if (process_mark == NULL) {
		void *m = nb_sys_mmap_anon(4096);
		if (m == MAP_FAILED)
			return;
		if (syscall(SYS_madvise, m, 4096, MADV_WIPEONFORK) != 0) {
			nb_sys_munmap(m, 4096);
			return;
		}
		process_mark = m;
	}
	*process_mark = NB_PROCESS_MARK;
}

bool nb_same_process(void)
{
	if (nb_g.pid == 0)
		return true; /* unit tests: no start-up */
	if (NB_LIKELY(process_mark != NULL))
		return *process_mark == NB_PROCESS_MARK;
	return (pid_t)syscall(SYS_getpid) == nb_g.pid;
}

/* What the descriptor was opened as: a raw close_range(2) can close it
 * behind our back and the number can come back naming a file of the
 * program's, which a fill would then write into. */
static dev_t mem_dev;
static ino_t mem_ino;

/* The descriptor to write this process's memory through. A child the
 * library was not told about (_Fork without the hook, a raw fork or
 * clone, a vfork child) inherited the parent's, which still names the
 * parent's memory (and passes the identity check): it would write into
 * the PARENT. There a private one is opened for the one fill (temp set:
 * the caller closes it) and nothing is cached - a vfork child shares the
 * cache with its parent. */
static int mem_fd(bool *temp)
{
	*temp = false;
	/* The lease thread fills with its own (its table is not ours). */
	if (nb_lease_on_thread())
		return nb_lease_thread_memfd();
	if (!nb_same_process()) {
		*temp = true;
		return (int)syscall(SYS_openat, AT_FDCWD, "/proc/self/mem", O_RDWR | O_CLOEXEC);
	}
	int fd = atomic_load(&memfd);
	struct stat st;
	if (fd >= 0) {
		if (nb_sys_fstat(fd, &st) == 0 && st.st_dev == mem_dev && st.st_ino == mem_ino)
			return fd;
		/* Lost: the number is not ours to use or close any more. */
		if (atomic_compare_exchange_strong(&memfd, &fd, -1)) {
			nb_own_lost(fd);
			nb_own_release(fd);
		}
	}
	fd = (int)syscall(SYS_openat, AT_FDCWD, "/proc/self/mem", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (nb_sys_fstat(fd, &st) != 0) {
		nb_sys_close(fd);
		return -1;
	}
	mem_dev = st.st_dev;
	mem_ino = st.st_ino;
	int hidden = nb_hide_fd(fd);
	nb_sys_close(fd);
	if (hidden < 0)
		return -1;
	int expect = -1;
	if (!atomic_compare_exchange_strong(&memfd, &expect, hidden)) {
		nb_own_release(hidden);
		return expect;
	}
	return hidden;
}

/* A forked child has its own memory: the inherited descriptor still
 * writes into the parent's. */
void nb_phantom_atfork_child(void)
{
	int fd = atomic_exchange(&memfd, -1);
	if (fd >= 0)
		nb_own_release(fd);
	fork_child_entries();
}

/* Claims a slot and publishes it LIVE with this backing. With guard, the
 * pages are made PROT_NONE while the entry is still BUSY: a thread that
 * materialises it meanwhile (a fault, a fork, a write to the source)
 * waits for the entry and finds the pages guarded, so it can never open
 * them before they are closed - which would leave guarded pages that no
 * phantom stands for. */
static int add_entry(uintptr_t start, uintptr_t end, int src, off_t off, const struct nb_pipe *pp,
		     size_t len, bool guard)
{
	bool temp;
	if (!nb_same_process() || mem_fd(&temp) < 0)
		return -1; /* never in a child the library was not told of */
	unsigned n = atomic_load(&high);
	uint64_t now = now_ns();
	nb_crit_enter();
	gate_wait();
	for (unsigned i = 0; i < NB_MAX_PHANTOMS; i++) {
		struct phantom *p = &table[i];
		int expect = PH_FREE;
		if (!atomic_compare_exchange_strong(&p->state, &expect, PH_BUSY)) {
			/* A DONE slot past its grace is as good as free. */
			if (expect != PH_DONE || in_grace(p, now) ||
			    !atomic_compare_exchange_strong(&p->state, &expect, PH_BUSY))
				continue;
		} else {
			NB_SETTLE_RAISE(nb_phantom_live);
		}
		if (gate_closed_to_me()) {
			/* A fork began: this entry must not be caught half made. */
			if (expect == PH_FREE)
				atomic_fetch_sub(&nb_phantom_live, 1);
			publish(p, expect);
			gate_wait();
			i--;
			continue;
		}
		p->start = start;
		p->end = end;
		p->kind = pp ? NB_PH_PIPE : NB_PH_FILE;
		p->len = pp ? len : end - start;
		p->src = src;
		p->off = off;
		if (pp)
			p->pipe = *pp;
		p->owner = -1;
		p->xstart = start;
		p->xend = end;
		while (n < i + 1 && !atomic_compare_exchange_weak(&high, &n, i + 1))
			;
		if (guard && nb_sys_mprotect((void *)start, end - start, PROT_NONE) != 0) {
			int err = errno;
			atomic_fetch_sub(&nb_phantom_live, 1);
			publish(p, PH_FREE);
			nb_crit_leave();
			errno = err;
			return -1; /* the caller keeps its backing */
		}
		publish(p, PH_LIVE);
		nb_crit_leave();
		return (int)i;
	}
	nb_crit_leave();
	errno = ENOSPC;
	return -1;
}

int nb_phantom_add(uintptr_t start, uintptr_t end, int src, off_t off)
{
	return add_entry(start, end, src, off, NULL, 0, false);
}

int nb_phantom_add_guarded(uintptr_t start, uintptr_t end, int src, off_t off)
{
	return add_entry(start, end, src, off, NULL, 0, true);
}

int nb_phantom_add_pipe(uintptr_t start, uintptr_t end, const struct nb_pipe *pp, size_t len)
{
	return add_entry(start, end, -1, 0, pp, len, true);
}

/* The live (or being filled) phantom holding a; NB_PHANTOM_RESOLVED if a
 * lies in one that was materialised within the grace period; -1. */
int nb_phantom_find(uintptr_t a)
{
	unsigned n = atomic_load_explicit(&high, memory_order_acquire);
	int recent = -1;
	for (unsigned i = 0; i < n; i++) {
		struct phantom *p = &table[i];
		int st = atomic_load_explicit(&p->state, memory_order_acquire);
		if (st == PH_FREE || a < p->start || a >= p->end)
			continue;
		if (st != PH_DONE)
			return (int)i;
		if (in_grace(p, now_ns()))
			recent = NB_PHANTOM_RESOLVED;
	}
	return recent;
}

/* Takes a live entry for exclusive use; waits while another thread holds
 * it. Returns false if it stopped being live (materialised, dropped). */
static bool claim(struct phantom *p)
{
	unsigned spins = 0;
	nb_crit_enter();
	for (;;) {
		gate_wait();
		int expect = PH_LIVE;
		if (atomic_compare_exchange_strong(&p->state, &expect, PH_BUSY)) {
			if (!gate_closed_to_me()) {
				held_here++;
				return true;
			}
			publish(p, PH_LIVE); /* a fork began: after it */
			continue;
		}
		if (expect == PH_FREE || expect == PH_DONE) {
			nb_crit_leave();
			return false;
		}
		/* A child made by the fork instruction itself inherits an entry
		 * another thread of the parent held: no one here will ever let
		 * it go. After a while (a vfork child's parent threads are
		 * real and finish in microseconds) it is taken over as is. */
		if (++spins > 4096 && !nb_same_process()) {
			held_here++;
			return true;
		}
		sched_yield(); /* another thread is filling or updating it */
	}
}

/* Looking at a live entry's record without taking it (a seqlock on the
 * state word and ver): no BUSY period, so no critical section and no
 * signal-mask calls for the write path's looks. A BUSY entry is waited
 * for; its holder is another thread (a holder on this thread has the
 * asynchronous signals blocked, or the program has no handler at all -
 * sigguard.c), or, in a child of the fork instruction, nobody. */
static bool read_begin(struct phantom *p, unsigned *ver)
{
	for (unsigned spins = 0;; spins++) {
		unsigned v = atomic_load_explicit(&p->ver, memory_order_acquire);
		int st = atomic_load_explicit(&p->state, memory_order_acquire);
		if (st == PH_LIVE || (st == PH_BUSY && spins > 4096 && !nb_same_process())) {
			*ver = v;
			return true;
		}
		if (st == PH_FREE || st == PH_DONE)
			return false;
		sched_yield();
	}
}

static bool read_end(struct phantom *p, unsigned ver)
{
	atomic_thread_fence(memory_order_acquire);
	int st = atomic_load_explicit(&p->state, memory_order_relaxed);
	return (st == PH_LIVE || !nb_same_process()) &&
	       atomic_load_explicit(&p->ver, memory_order_relaxed) == ver;
}

/* A claimed entry goes back to LIVE, and the section ends. */
static void unclaim(struct phantom *p)
{
	publish(p, PH_LIVE);
	held_here--;
	nb_crit_leave();
}

/* A live entry leaves: its reference to the backing goes with it. */
/* The backing goes with the entry: a file reference, or a pool pipe,
 * drained (its bytes are no one's any more). */
static void put_backing(struct phantom *p)
{
	if (p->kind == NB_PH_PIPE && !nb_same_process())
		return; /* the pool pipe is the parent's too: leave it be */
	if (p->kind == NB_PH_PIPE)
		nb_pipe_put_holding(&p->pipe, p->len); /* tee never consumes */
	else
		nb_backing_put(p->src);
}

static void release_free(struct phantom *p)
{
	put_backing(p);
	atomic_fetch_sub(&nb_phantom_live, 1);
	publish(p, PH_FREE);
	held_here--;
	nb_crit_leave();
}

static void release_done(struct phantom *p)
{
	put_backing(p);
	p->done_ns = now_ns();
	publish(p, PH_DONE);
	held_here--;
	nb_crit_leave();
}

/* Copies the backing bytes into the still-guarded pages. */
/* Reads the next bytes of the backing: a file at its offset, or the
 * phantom's pipe, which is consumed (the phantom ends with this fill). */
static ssize_t backing_read(const struct phantom *p, void *dst, size_t n, size_t done)
{
	if (p->kind == NB_PH_PIPE)
		return (ssize_t)syscall(SYS_read, p->pipe.r, dst, n);
	/* Checks that the descriptor still names the file (backing.c). */
	return nb_backing_pread(p->src, dst, n, p->off + (off_t)done);
}

/* The backing cannot give the bytes (its descriptors closed behind our
 * back, nothing else reaches them): opening the pages would show the
 * program stale bytes and let it send them on. Nothing can make that
 * right, so the process stops here, loudly. */
static void __attribute__((noreturn)) bytes_lost(void)
{
	nb_die("a guarded buffer's bytes are out of reach (the library's descriptors "
	       "were closed behind its back); stopping rather than show stale bytes");
}

/* Bytes [from, to) of the phantom into its still-guarded memory. */
static int fill_with(const struct phantom *p, size_t from, size_t to, int mfd, char *scratch,
		     size_t cap)
{
	for (size_t done = from; done < to;) {
		size_t want = to - done < cap ? to - done : cap;
		ssize_t r = backing_read(p, scratch, want, done);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			bytes_lost();
		/* The file shrank since the read: what the program would
		 * have in memory is what the read returned, which the file
		 * no longer has; zeros are the bytes a short file reads as
		 * nowhere - callers check the size before relying on this. */
		if ((size_t)r < want)
			memset(scratch + r, 0, want - (size_t)r);
		for (size_t w = 0; w < want;) {
			ssize_t k = (ssize_t)syscall(SYS_pwrite64, mfd, scratch + w, want - w,
						     (off_t)(p->start + done + w));
			if (k < 0 && errno == EINTR)
				continue;
			if (k <= 0)
				return -1;
			w += (size_t)k;
		}
		done += want;
	}
	return 0;
}

/* In a child the library was not told about, a pipe phantom's pool pipe
 * is shared with the parent, whose bytes they still are: the fill reads
 * a duplicate of them (tee into a private pipe) and leaves the pool pipe
 * as it was. The phantom reads from that pipe instead (tmp->r). */
static int foreign_pipe_copy(const struct phantom *p, struct phantom *tmp)
{
	int fds[2];
	if (syscall(SYS_pipe2, fds, O_CLOEXEC | O_NONBLOCK) != 0)
		return -1;
	if (p->len > 65536)
		syscall(SYS_fcntl, fds[1], F_SETPIPE_SZ, (long)p->len);
	long k;
	do
		k = syscall(SYS_tee, p->pipe.r, fds[1], p->len, SPLICE_F_NONBLOCK);
	while (k < 0 && errno == EINTR);
	nb_sys_close(fds[1]);
	if (k != (long)p->len) {
		nb_sys_close(fds[0]);
		return -1;
	}
	*tmp = *p;
	tmp->pipe.r = fds[0];
	return 0;
}

/* Every shared scratch buffer is taken: through a small one on the stack.
 * Kept out of fill_through's own frame, which the fault path needs small
 * (it may run on a tight alternate signal stack). */
static __attribute__((noinline)) int fill_on_stack(const struct phantom *p, size_t from, size_t to,
						   int mfd)
{
	char small[NB_STACK_SCRATCH];
	return fill_with(p, from, to, mfd, small, sizeof small);
}

static int fill_through(const struct phantom *p, size_t from, size_t to, int mfd)
{
	char *buf;
	size_t cap;
	int slot = scratch_take(&buf, &cap);
	if (slot < 0)
		return fill_on_stack(p, from, to, mfd);
	int rc = fill_with(p, from, to, mfd, buf, cap);
	atomic_flag_clear(&scratch_busy[slot]);
	return rc;
}

static __attribute__((noinline)) int fill_foreign_pipe(const struct phantom *p, size_t from,
						       size_t to, int mfd)
{
	struct phantom copy;
	int rc = foreign_pipe_copy(p, &copy);
	if (rc == 0) {
		rc = fill_through(&copy, from, to, mfd);
		nb_sys_close(copy.pipe.r);
	}
	return rc;
}

static int fill(const struct phantom *p, size_t from, size_t to)
{
	/* Opened lazily: a forked child must use its own /proc/self/mem. */
	bool temp;
	int mfd = mem_fd(&temp);
	if (mfd < 0)
		return -1;
	int rc = temp && p->kind == NB_PH_PIPE ? fill_foreign_pipe(p, from, to, mfd)
					       : fill_through(p, from, to, mfd);
	if (temp)
		nb_sys_close(mfd);
	return rc;
}

/* Opens the pages once bytes [from, to) are in: through /proc/self/mem
 * while still guarded (filled is the result of that), or, failing that
 * (no /proc/self/mem: descriptors exhausted, a hardened kernel), by
 * opening them and reading the backing directly. Another thread could
 * glimpse them half filled then; wrong bytes for good would be worse. */
static int open_filled(const struct phantom *p, int filled, size_t from, size_t to)
{
	if (filled != 0 && p->kind == NB_PH_PIPE && !nb_same_process()) {
		/* The bytes are in a pipe this process shares with its parent
		 * and could not be duplicated: reading them would take them
		 * from the parent, opening the pages would show stale bytes. */
		nb_die("a guarded buffer's bytes are in a pipe shared with the parent process "
		       "and cannot be copied; stopping this child rather than show stale bytes");
	}
	int rc = open_pages(p);
	if (filled == 0)
		return rc;
	for (size_t done = from; rc == 0 && done < to;) {
		ssize_t r = backing_read(p, (void *)(p->start + done), to - done, done);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 || (r == 0 && p->kind == NB_PH_PIPE))
			bytes_lost();
		if (r == 0) {
			/* The file shrank: as fill_with does. */
			memset((void *)(p->start + done), 0, to - done);
			break;
		}
		done += (size_t)r;
	}
	return rc;
}

int nb_phantom_materialize(int idx)
{
	struct phantom *p = &table[idx];
	int saved = errno;
	if (!claim(p)) {
		errno = saved;
		return 0; /* someone else finished it */
	}
	NB_COUNT(materialized, 1);
	/* A touch costs a copy and a protection change: the pair that made
	 * this phantom hears of it at its next read (and backs off). A read
	 * over the buffer (the one that hits end of file, say) is no touch:
	 * the program is not looking at the bytes, only replacing them. */
	if (p->owner >= 0 && !quiet_fill) {
		struct nb_fd *e = nb_fd_peek(p->owner);
		if (e != NULL && atomic_load(&e->gen) == p->owner_gen)
			atomic_fetch_add(&e->touches, 1);
	}
	int rc = open_filled(p, fill(p, 0, p->len), 0, p->len);
	/* A pipe's bytes were read out: it is empty, or (failure) unknown. */
	if (p->kind == NB_PH_PIPE)
		p->len = rc == 0 ? 0 : SIZE_MAX;
	release_done(p);
	errno = saved;
	return rc;
}

/*
 * A fault whose phantom is gone by the time its handler looks. The
 * kernel takes the fault on a guarded page; the handler runs when the
 * thread next gets the CPU - on a loaded machine tens of milliseconds
 * later, and a thread stopped in between (SIGSTOP, a debugger) much
 * later. Meanwhile another thread may have filled and opened the pages,
 * and the entry may be reused or freed: the table no longer knows them,
 * and a handler that trusted only the table would hand the program a
 * SIGSEGV that plain never gets (haz_mem dontneed-race: a reader thread
 * and madvise(MADV_DONTNEED) on the buffer).
 *
 * So the ranges the library opened are remembered (opened[], a ring,
 * one word per range: page number and page count), and a fault in one
 * of them that no live entry explains runs the access again - at most
 * NB_STALE_RETRIES times at the same page in a row, after which the
 * fault is the program's own (its protection says no now: a raw mprotect
 * behind the hooks). Only faults on such pages are retried: the
 * program's own guard pages elsewhere reach its handler at once.
 *
 * The ring forgets a range only when NB_OPENED_RING other, distinct
 * ranges were opened after it: a range opened again while it is still
 * there is not added twice. A loop that keeps opening the same buffer
 * (each turn madvised away, freed, or looked at) must not push out the
 * range a stalled thread faulted on (haz_mem late-handler-many: 1500
 * turns while the reader is held). The scan costs a few hundred loads,
 * next to the mprotect that follows it, and only when pages are opened,
 * never in the steady state of a loop. A thread held off the CPU while
 * more distinct buffers than that were opened is a documented limit.
 *
 * The word: page number in the high 45 bits (user addresses below 2^56,
 * five-level page tables included), page count in the low 19 (a read
 * returns at most 0x7ffff000 bytes, 2^19 - 1 pages; a longer range is
 * remembered by its first 2^19 - 1 pages).
 */
#define NB_OPENED_RING 1024
#define NB_OPENED_COUNT_BITS 19
#define NB_STALE_RETRIES 64
static atomic_ullong opened[NB_OPENED_RING];
static atomic_uint opened_next;
static __thread uintptr_t stale_page __attribute__((tls_model("initial-exec")));
static __thread unsigned stale_tries __attribute__((tls_model("initial-exec")));

static void remember_opened(uint64_t first, uint64_t pages, bool dedup)
{
	const uint64_t most = (1ull << NB_OPENED_COUNT_BITS) - 1;
	uint64_t word = first << NB_OPENED_COUNT_BITS | (pages < most ? pages : most);
	if (pages == 0)
		return;
	for (unsigned i = 0; dedup && i < NB_OPENED_RING; i++)
		if (atomic_load_explicit(&opened[i], memory_order_relaxed) == word)
			return;
	unsigned i = atomic_fetch_add(&opened_next, 1) % NB_OPENED_RING;
	atomic_store(&opened[i], word);
}

static int open_pages(const struct phantom *p)
{
	remember_opened((uint64_t)p->start >> 12, (uint64_t)(p->end - p->start) >> 12, true);
	return nb_sys_mprotect((void *)p->start, p->end - p->start, PROT_READ | PROT_WRITE);
}

/* The program guarded [start, end) itself (mprotect through the hooks,
 * after the call): a fault there is its own from now on, for its handler
 * at once - also one whose thread finds the pages opened again by another
 * thread by the time the handler runs, which without the library reaches
 * the handler too (haz_mem late-handler-own). The rest of a remembered
 * range stays remembered (the pieces are added before the whole goes). */
void nb_phantom_forget_opened(uintptr_t start, uintptr_t end)
{
	const uint64_t mask = (1ull << NB_OPENED_COUNT_BITS) - 1;
	uint64_t fs = (uint64_t)start >> 12, fe = ((uint64_t)end + 4095) >> 12;
	for (unsigned i = 0; i < NB_OPENED_RING; i++) {
		uint64_t v = atomic_load_explicit(&opened[i], memory_order_relaxed);
		uint64_t lo = v >> NB_OPENED_COUNT_BITS, hi = lo + (v & mask);
		if ((v & mask) == 0 || hi <= fs || lo >= fe)
			continue;
		if (lo < fs)
			remember_opened(lo, fs - lo, false);
		if (hi > fe)
			remember_opened(fe, hi - fe, false);
		atomic_compare_exchange_strong(&opened[i], &v, 0);
	}
}

static bool opened_lately(uintptr_t a)
{
	const uint64_t mask = (1ull << NB_OPENED_COUNT_BITS) - 1;
	uint64_t page = (uint64_t)a >> 12;
	for (unsigned i = 0; i < NB_OPENED_RING; i++) {
		uint64_t v = atomic_load_explicit(&opened[i], memory_order_relaxed);
		uint64_t lo = v >> NB_OPENED_COUNT_BITS, n = v & mask;
		if (n != 0 && page >= lo && page < lo + n)
			return true;
	}
	return false;
}

bool nb_phantom_fault(uintptr_t a)
{
	int i = nb_phantom_find(a);
	/* Just opened by another thread (in its grace), or opened lately:
	 * run the access again - a bounded number of times in a row at one
	 * page, then it is the program's own fault (its protection, set
	 * behind the hooks, forbids it now). */
	if (i == NB_PHANTOM_RESOLVED || i < 0) {
		uintptr_t page = a & ~(uintptr_t)4095;
		if (i < 0 && !opened_lately(a))
			return false;
		if (page != stale_page) {
			stale_page = page;
			stale_tries = 0;
		}
		return ++stale_tries <= NB_STALE_RETRIES;
	}
	stale_page = 0;
	nb_phantom_materialize(i);
	return true;
}

bool nb_phantom_ever(void)
{
	return atomic_load_explicit(&high, memory_order_relaxed) != 0;
}

void nb_phantom_drop_range(uintptr_t start, uintptr_t end, bool unprotect)
{
	unsigned n = atomic_load_explicit(&high, memory_order_acquire);
	for (unsigned i = 0; i < n; i++) {
		struct phantom *p = &table[i];
		if (atomic_load(&p->state) == PH_FREE || p->xend <= start || p->xstart >= end)
			continue;
		int done = PH_DONE;
		if (atomic_compare_exchange_strong(&p->state, &done, PH_FREE)) {
			atomic_fetch_sub(&nb_phantom_live, 1); /* already open: just forget it */
			continue;
		}
		if (p->start < start || p->end > end) {
			/* Only part of it goes (a page at one end, an edge): the
			 * pages that stay must hold the bytes the read gave. */
			nb_phantom_materialize((int)i);
			continue;
		}
		if (!claim(p))
			continue;
		/* Opened as a fill opens (remembered): a thread that faulted
		 * on the pages meanwhile retries its access (nb_phantom_fault). */
		if (unprotect)
			open_pages(p);
		release_free(p);
	}
}

int nb_phantom_next(uintptr_t start, uintptr_t end)
{
	unsigned n = atomic_load_explicit(&high, memory_order_acquire);
	int best = -1;
	uintptr_t best_start = UINTPTR_MAX;
	for (unsigned i = 0; i < n; i++) {
		struct phantom *p = &table[i];
		int st = atomic_load_explicit(&p->state, memory_order_acquire);
		if ((st != PH_LIVE && st != PH_BUSY) || p->end <= start || p->start >= end)
			continue;
		if (p->start < best_start) {
			best = (int)i;
			best_start = p->start;
		}
	}
	return best;
}

void nb_phantom_materialize_pipes(void)
{
	unsigned n = atomic_load_explicit(&high, memory_order_acquire);
	for (unsigned i = 0; i < n; i++) {
		struct phantom *p = &table[i];
		int st = atomic_load(&p->state);
		if ((st == PH_LIVE || st == PH_BUSY) && p->kind == NB_PH_PIPE) {
			quiet_fill = true;
			nb_phantom_materialize((int)i);
			quiet_fill = false;
		}
	}
}

/* Before fork: a file phantom that a lease protects. The child gets a
 * copy of it but no part of the lease (the parent's lease thread fills
 * the parent's memory only): filled now, the child holds the bytes as
 * read. Unleased ones keep what they promise in both (the bytes at the
 * time of the write). */
void nb_phantom_materialize_leased_files(void)
{
	unsigned n = atomic_load_explicit(&high, memory_order_acquire);
	for (unsigned i = 0; i < n; i++) {
		struct phantom *p = &table[i];
		int st = atomic_load(&p->state);
		if ((st == PH_LIVE || st == PH_BUSY) && p->kind == NB_PH_FILE &&
		    nb_backing_leased(p->src)) {
			quiet_fill = true;
			nb_phantom_materialize((int)i);
			quiet_fill = false;
		}
	}
}

void nb_phantom_overwrite_range(uintptr_t start, uintptr_t end)
{
	quiet_fill = true;
	nb_phantom_materialize_range(start, end);
	quiet_fill = false;
}

void nb_phantom_materialize_range(uintptr_t start, uintptr_t end)
{
	unsigned n = atomic_load_explicit(&high, memory_order_acquire);
	for (unsigned i = 0; i < n; i++) {
		struct phantom *p = &table[i];
		int st = atomic_load(&p->state);
		if (st == PH_FREE || p->end <= start || p->start >= end)
			continue;
		if (st == PH_DONE) {
			int done = PH_DONE;
			if (atomic_compare_exchange_strong(&p->state, &done, PH_FREE))
				atomic_fetch_sub(&nb_phantom_live, 1);
			continue;
		}
		nb_phantom_materialize((int)i);
	}
}

int nb_phantom_rebind(int idx, uintptr_t start, uintptr_t end, int src, off_t off, int owner,
		      unsigned gen, uintptr_t xstart, uintptr_t xend)
{
	struct phantom *p = &table[idx];
	char *slot = xstart < start || xend > end ? edge_slot(idx) : NULL;
	if (!claim(p))
		return -1;
	if (p->start != start || p->end != end) {
		/* Filled (a touch, a lease break on another thread) and its
		 * slot taken by another buffer since the caller looked: that
		 * phantom is not the caller's to rebind (as rebind_pipe). */
		unclaim(p);
		return -1;
	}
	/* The caller took a reference to src for this read; the one the
	 * entry held goes, also when it is the same backing (else every
	 * turn of the loop would keep one more, and the file stays open
	 * after the program closed and deleted it). */
	put_backing(p);
	p->kind = NB_PH_FILE;
	p->len = p->end - p->start;
	p->src = src;
	p->off = off;
	p->owner = owner;
	p->owner_gen = gen;
	p->xstart = p->start;
	p->xend = p->end;
	/* One hold for the whole record, edges included: the steady state
	 * of an armed loop pays for one, not three. */
	if (slot != NULL)
		(void)keep_edges(p, slot, xstart, xend);
	unclaim(p);
	return 0;
}

int nb_phantom_rebind_pipe(int idx, uintptr_t start, uintptr_t end, const struct nb_pipe *pp,
			   size_t len)
{
	struct phantom *p = &table[idx];
	if (!claim(p))
		return -1;
	if (p->start != start || p->end != end) {
		/* Materialised and its slot taken by another buffer since the
		 * caller looked: not the caller's phantom any more. */
		unclaim(p);
		return -1;
	}
	put_backing(p);
	p->kind = NB_PH_PIPE;
	p->pipe = *pp;
	p->len = len;
	p->src = -1;
	p->xstart = p->start;
	p->xend = p->end;
	unclaim(p);
	return 0;
}

ssize_t nb_phantom_tee(int idx, uintptr_t start, size_t skip, size_t n, const struct nb_pipe *t)
{
	struct phantom *p = &table[idx];
	if (!claim(p))
		return -1;
	ssize_t r = -1;
	if (p->start == start && p->kind == NB_PH_PIPE && skip + n <= p->len &&
	    skip + n <= t->cap) {
		/* tee(2) duplicates buffers from the start of the pipe, never
		 * from the middle: the caller throws the first `skip` away. t
		 * is empty and large enough, so one call takes them all. */
		long k;
		do
			k = syscall(SYS_tee, p->pipe.r, t->w, skip + n, SPLICE_F_NONBLOCK);
		while (k < 0 && errno == EINTR);
		r = k;
	}
	unclaim(p);
	return r;
}

ssize_t nb_phantom_move_out(int idx, uintptr_t start, int file, nb_move_fn move, void *ctx)
{
	struct phantom *p = &table[idx];
	if (!claim(p))
		return NB_XFER_FALLBACK;
	if (p->start != start || p->kind != NB_PH_PIPE || p->len == 0 || p->len == SIZE_MAX) {
		unclaim(p);
		return NB_XFER_FALLBACK;
	}
	/* The entry stays BUSY while the bytes move: a thread touching the
	 * pages meanwhile waits in claim() and then fills from the file. */
	off_t off = -1;
	ssize_t r = move(ctx, p->pipe.r, p->len, &off);
	if (r <= 0) {
		/* Nothing moved: the pipe still holds every byte. */
		unclaim(p);
		return r;
	}
	if ((size_t)r == p->len) {
		/* All of it is in the file now, at off: that is the backing. */
		nb_pipe_put_holding(&p->pipe, 0);
		p->kind = NB_PH_FILE;
		p->src = file;
		p->off = off;
		unclaim(p);
		return r;
	}
	/* A short write (no space, a file size limit): the first r bytes
	 * left the pipe for the file, the rest are still in it. The phantom
	 * ends here, filled from both - not a touch of the program's. */
	struct phantom head = *p;
	head.kind = NB_PH_FILE;
	head.src = file;
	head.off = off;
	size_t moved = (size_t)r;
	int filled = fill(&head, 0, moved);
	if (filled == 0)
		filled = fill(p, moved, p->len);
	if (filled == 0) {
		open_filled(p, 0, 0, 0);
	} else {
		open_filled(&head, -1, 0, moved);
		open_filled(p, -1, moved, p->len);
	}
	p->len = 0;
	nb_backing_put(file);
	release_done(p);
	return r;
}

void nb_phantom_materialize_file_range(dev_t dev, ino_t ino, off_t lo, off_t hi)
{
	unsigned n = atomic_load_explicit(&high, memory_order_acquire);
	for (unsigned i = 0; i < n; i++) {
		struct phantom *p = &table[i];
		dev_t d;
		ino_t ino2;
		int st = atomic_load(&p->state);
		if ((st != PH_LIVE && st != PH_BUSY) || p->kind != NB_PH_FILE)
			continue;
		/* The edges count too: a write may send them from the file
		 * while they still hold what the read put there (forward.c),
		 * so a change of their file bytes must end the phantom - the
		 * memory, which holds the bytes as read, is then the truth. */
		off_t flo = p->off - (off_t)(p->start - p->xstart);
		off_t fhi = p->off + (off_t)p->len + (off_t)(p->xend - p->end);
		if (flo >= hi || fhi <= lo || !nb_backing_identity(p->src, &d, &ino2) ||
		    d != dev || ino2 != ino)
			continue;
		quiet_fill = true;
		nb_phantom_materialize((int)i);
		quiet_fill = false;
	}
}

int nb_phantom_set_edges(int idx, uintptr_t xstart, uintptr_t xend)
{
	struct phantom *p = &table[idx];
	char *slot = edge_slot(idx);
	if (slot == NULL || !claim(p))
		return -1;
	int rc = keep_edges(p, slot, xstart, xend);
	unclaim(p);
	return rc;
}

/* The head slot holds the bytes right below start at its top end, the
 * tail slot those from end at its bottom: [from, to) maps to one span. */
bool nb_phantom_edges_intact(int idx, uintptr_t from, uintptr_t to)
{
	struct phantom *p = &table[idx];
	char *slot = atomic_load_explicit(&edges, memory_order_acquire);
	if (slot == NULL || from >= to)
		return false;
	slot += (size_t)idx * 2 * NB_EDGE_MAX;
	bool ok;
	unsigned ver;
	do {
		if (!read_begin(p, &ver))
			return false;
		ok = false;
		if (from >= p->xstart && to <= p->start)
			ok = memcmp(slot + NB_EDGE_MAX - (p->start - from), (const void *)from,
				    to - from) == 0;
		else if (from >= p->end && to <= p->xend)
			ok = memcmp(slot + NB_EDGE_MAX + (from - p->end), (const void *)from,
				    to - from) == 0;
	} while (!read_end(p, ver));
	return ok;
}

void nb_phantom_set_owner(int idx, int fd, unsigned gen)
{
	struct phantom *p = &table[idx];
	if (!claim(p))
		return;
	p->owner = fd;
	p->owner_gen = gen;
	unclaim(p);
}

bool nb_phantom_owner(int idx, int *fd, unsigned *gen)
{
	struct phantom *p = &table[idx];
	if (!claim(p))
		return false;
	*fd = p->owner;
	*gen = p->owner_gen;
	unclaim(p);
	return *fd >= 0;
}

bool nb_phantom_get(int idx, struct nb_phantom_view *v)
{
	struct phantom *p = &table[idx];
	unsigned ver;
	do {
		if (!read_begin(p, &ver))
			return false;
		v->start = p->start;
		v->end = p->end;
		v->xstart = p->xstart;
		v->xend = p->xend;
		v->src = p->src;
		v->off = p->off;
		v->kind = p->kind;
		v->len = p->len;
	} while (!read_end(p, ver));
	return true;
}

/* ---- memory calls that act on their real result (hook_mem.c) ----
 *
 * munmap, mmap(MAP_FIXED), mremap and madvise may fail, and some of them
 * fail half-way: madvise walks the mappings of its range in address order
 * and stops at the first one it cannot handle (an mlock'ed one for
 * MADV_DONTNEED), the earlier ones already done; a MAP_FIXED or
 * MREMAP_FIXED that fails may already have unmapped the old range. So the
 * phantoms wholly inside the range are held (BUSY) across the call - a
 * thread touching them meanwhile waits for the outcome in claim() - and
 * then released by what the call really did to their pages. One partly
 * inside is filled first: its pages outside the range keep their bytes,
 * whatever the call does to the rest. */

#define NB_ZAP_MARK 0xa5

int nb_phantom_hold(uintptr_t start, uintptr_t end, int *held, int cap, bool mark)
{
	int n = 0;
	unsigned hi = atomic_load_explicit(&high, memory_order_acquire);
	for (unsigned i = 0; i < hi; i++) {
		struct phantom *p = &table[i];
		int st = atomic_load(&p->state);
		if (st == PH_FREE || st == PH_DONE || p->end <= start || p->start >= end)
			continue;
		if (p->start >= start && p->end <= end && n < cap && claim(p)) {
			if (p->start >= start && p->end <= end) {
				/* A byte of the first page the call may zero: read
				 * back afterwards, it tells whether it did. Written
				 * through /proc/self/mem (the pages are PROT_NONE);
				 * the fill overwrites it. */
				unsigned char m = NB_ZAP_MARK;
				bool temp = false;
				int mfd = mark ? mem_fd(&temp) : -1;
				bool marked = mfd >= 0 && syscall(SYS_pwrite64, mfd, &m, 1,
								  (off_t)p->start) == 1;
				if (temp)
					nb_sys_close(mfd);
				if (!mark || marked) {
					held[n++] = (int)i;
					continue;
				}
			}
			unclaim(p);
		}
		/* Partly inside, no room, or no way to tell: its bytes go
		 * into memory now (not the program looking at them). */
		quiet_fill = true;
		nb_phantom_materialize((int)i);
		quiet_fill = false;
	}
	return n;
}

void nb_phantom_release_held(const int *held, int n, int how)
{
	for (int k = 0; k < n; k++) {
		struct phantom *p = &table[held[k]];
		int h = how;
		if (h == NB_HELD_BY_MARK) {
			/* Zeroed pages read back as zeros, kept ones with the
			 * mark; unreadable ones are gone. */
			unsigned char c = 0;
			bool temp;
			int mfd = mem_fd(&temp);
			ssize_t r = mfd < 0 ? -1 : (ssize_t)syscall(SYS_pread64, mfd, &c, 1,
								  (off_t)p->start);
			if (temp)
				nb_sys_close(mfd);
			h = r != 1 ? NB_HELD_BY_MAPPED : c == 0 ? NB_HELD_ZEROED : NB_HELD_KEEP;
		}
		if (h == NB_HELD_BY_MAPPED) {
			/* mincore(2): ENOMEM where nothing is mapped. */
			unsigned char vec[1];
			h = syscall(SYS_mincore, p->start, (size_t)4096, vec) != 0 && errno == ENOMEM
				    ? NB_HELD_GONE
				    : NB_HELD_KEEP;
		}
		switch (h) {
		case NB_HELD_GONE: /* no pages left: a touch is the program's fault */
			release_free(p);
			break;
		case NB_HELD_ZEROED:
			/* Fresh zero pages now, as the program expects; DONE, so a
			 * thread that faulted on them meanwhile retries its access. */
			open_pages(p);
			release_done(p); /* a pipe is drained of the bytes */
			break;
		default:
			unclaim(p);
			break;
		}
	}
}
