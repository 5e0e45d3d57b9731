/*
 * pipepool.c - the library's own pipes, for bytes that come from sockets
 * and pipes.
 *
 * Owns: a bounded set of internal pipes (NOBOUNCE_MAX_PIPES), created on
 * demand with pipe2(O_CLOEXEC), the read end non-blocking, sized with F_SETPIPE_SZ to
 * NOBOUNCE_PIPE_SIZE (keeping the kernel's size when the per-user pipe
 * limits refuse), their two ends moved to hidden high numbers (ownfd.c);
 * and /dev/null, where a pipe's unwanted bytes are spliced away.
 * A pipe is handed out empty and comes back empty: nb_pipe_put drains it,
 * and one that cannot be drained is closed rather than reused, so no byte
 * of one transfer ever reaches another.
 * Must not: block, allocate, or lock - nb_pipe_put runs in the fault
 * trampoline when a phantom is materialised. Exhaustion (the bound, the
 * descriptor limit) is not an error: the caller takes the plain path.
 *
 * fork: the child shares the parent's pipes (the same kernel objects), so
 * it forgets the pool without touching the pipes' contents and starts its
 * own (nb_pipe_atfork_child); the parent fills its pipe-backed phantoms
 * before the fork (init.c), so none is shared.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

#define NB_POOL_SLOTS 4096 /* NOBOUNCE_MAX_PIPES is at most this */

enum { SLOT_EMPTY = 0, SLOT_FREE, SLOT_BUSY };

struct slot {
	atomic_int state;
	int r, w;
	size_t cap;
};

static struct slot slots[NB_POOL_SLOTS];
static atomic_uint made;      /* pipes that exist (free or in use) */
static atomic_uint in_use;
static atomic_int devnull = -1;

static int null_fd(void)
{
	int fd = atomic_load(&devnull);
	if (fd >= 0)
		return fd;
	int raw = (int)syscall(SYS_openat, AT_FDCWD, "/dev/null", O_WRONLY | O_CLOEXEC);
	if (raw < 0)
		return -1;
	int hidden = nb_hide_fd(raw);
	nb_sys_close(raw);
	if (hidden < 0)
		return -1;
	int expect = -1;
	if (!atomic_compare_exchange_strong(&devnull, &expect, hidden)) {
		nb_own_release(hidden); /* another thread was first */
		return expect;
	}
	return hidden;
}

/* Moves a new pipe's ends out of the program's way; false (and nothing
 * left open) when the numbers are not available. */
static bool make_pipe(struct slot *s, size_t want)
{
	int p[2];
	if (syscall(SYS_pipe2, p, O_CLOEXEC | O_NONBLOCK) != 0)
		return false;
	int r = nb_hide_fd(p[0]);
	int w = r >= 0 ? nb_hide_fd(p[1]) : -1;
	nb_sys_close(p[0]);
	nb_sys_close(p[1]);
	if (r < 0 || w < 0) {
		if (r >= 0)
			nb_own_release(r);
		return false;
	}
	/* The per-user limits (/proc/sys/fs/pipe-user-pages-*) may refuse a
	 * larger pipe: the kernel's default then stays, which only means
	 * shorter reads. */
	if (want > (size_t)INT_MAX)
		want = INT_MAX;
	(void)nb_sys_fcntl(w, F_SETPIPE_SZ, (long)want);
	long cap = nb_sys_fcntl(w, F_GETPIPE_SZ, 0);
	/* The write end blocks: a splice from a UNIX socket or a pipe into
	 * it takes the pipe's O_NONBLOCK for its source too (do_splice), and
	 * a read of a blocking source must wait for its first byte. The pool
	 * pipe is empty then, so only the source can make it wait; every
	 * other writer into a pool pipe (tee) passes SPLICE_F_NONBLOCK. */
	(void)nb_sys_fcntl(w, F_SETFL, 0);
	s->r = r;
	s->w = w;
	s->cap = cap > 0 ? (size_t)cap : 65536;
	return true;
}

int nb_pipe_get(struct nb_pipe *out)
{
	unsigned bound = nb_g.cfg.max_pipes < NB_POOL_SLOTS ? nb_g.cfg.max_pipes : NB_POOL_SLOTS;
	for (unsigned i = 0; i < bound; i++) {
		struct slot *s = &slots[i];
		int expect = SLOT_FREE;
		if (atomic_compare_exchange_strong(&s->state, &expect, SLOT_BUSY)) {
			*out = (struct nb_pipe){ s->r, s->w, s->cap, (int)i };
			atomic_fetch_add(&in_use, 1);
			NB_COUNT(pipes_in_use, 1);
			return 0;
		}
	}
	for (unsigned i = 0; i < bound; i++) {
		struct slot *s = &slots[i];
		int expect = SLOT_EMPTY;
		if (!atomic_compare_exchange_strong(&s->state, &expect, SLOT_BUSY))
			continue;
		if (!make_pipe(s, nb_g.cfg.pipe_size)) {
			atomic_store(&s->state, SLOT_EMPTY);
			return -1; /* descriptors or pipe memory exhausted: plain */
		}
		atomic_fetch_add(&made, 1);
		atomic_fetch_add(&in_use, 1);
			NB_COUNT(pipes_in_use, 1);
		/* The drain target opens with the pool, not at the first drain
		 * (which may come much later): the library's own descriptors
		 * appear together, when the pool does. */
		(void)null_fd();
		*out = (struct nb_pipe){ s->r, s->w, s->cap, (int)i };
		return 0;
	}
	return -1;
}

bool nb_pipe_drain(const struct nb_pipe *p)
{
	int nul = null_fd();
	if (nul < 0)
		return false;
	for (;;) {
		long r = syscall(SYS_splice, p->r, NULL, nul, NULL, (size_t)1 << 30,
				 SPLICE_F_NONBLOCK);
		if (r > 0)
			continue;
		if (r < 0 && errno == EINTR)
			continue;
		return r < 0 && errno == EAGAIN; /* empty (write end is ours: never EOF) */
	}
}

bool nb_pipe_skip(const struct nb_pipe *p, size_t n)
{
	int nul = null_fd();
	while (n > 0 && nul >= 0) {
		long r = syscall(SYS_splice, p->r, NULL, nul, NULL, n, SPLICE_F_NONBLOCK);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return false;
		n -= (size_t)r;
	}
	return n == 0;
}

void nb_pipe_put(struct nb_pipe *p)
{
	nb_pipe_put_holding(p, SIZE_MAX);
}

void nb_pipe_put_holding(struct nb_pipe *p, size_t holds)
{
	if (p->slot < 0 || p->slot >= NB_POOL_SLOTS)
		return;
	struct slot *s = &slots[p->slot];
	int saved = errno;
	/* A pipe known to hold `holds` bytes is emptied with one call (none
	 * when it is known empty); unknown contents are drained to EAGAIN. */
	bool empty = holds == 0 || (holds != SIZE_MAX && nb_pipe_skip(p, holds));
	if (empty || nb_pipe_drain(p)) {
		atomic_store(&s->state, SLOT_FREE);
	} else {
		/* Bytes that cannot be thrown away never meet another
		 * transfer: the pipe goes, the slot is made again later. */
		nb_own_release(s->r);
		nb_own_release(s->w);
		atomic_fetch_sub(&made, 1);
		atomic_store(&s->state, SLOT_EMPTY);
	}
	atomic_fetch_sub(&in_use, 1);
	NB_COUNT(pipes_in_use, (unsigned long long)-1); /* a gauge */
	p->slot = -1;
	errno = saved;
}

void nb_pipe_forget_free(void)
{
	for (unsigned i = 0; i < NB_POOL_SLOTS; i++) {
		struct slot *s = &slots[i];
		int expect = SLOT_FREE;
		if (!atomic_compare_exchange_strong(&s->state, &expect, SLOT_BUSY))
			continue;
		nb_own_release(s->r);
		nb_own_release(s->w);
		atomic_fetch_sub(&made, 1);
		atomic_store(&s->state, SLOT_EMPTY);
	}
}

unsigned nb_pipe_in_use(void)
{
	return atomic_load(&in_use);
}

void nb_pipe_atfork_child(void)
{
	/* The parent's pipes: close our references, never read from them. */
	for (unsigned i = 0; i < NB_POOL_SLOTS; i++) {
		struct slot *s = &slots[i];
		if (atomic_load(&s->state) == SLOT_EMPTY)
			continue;
		nb_own_release(s->r);
		nb_own_release(s->w);
		atomic_store(&s->state, SLOT_EMPTY);
	}
	atomic_store(&made, 0);
	atomic_store(&in_use, 0);
	int nul = atomic_exchange(&devnull, -1);
	if (nul >= 0)
		nb_own_release(nul);
}
