/*
 * settle.c - the settled loop: a loop that was judged and cannot be
 * served, counted by the read/write hooks alone.
 *
 * Owns: the per-thread settled state (nb_settle_tls), the epoch that
 * ends every settled loop at once (nb_settle_epoch), entering a settled
 * loop and leaving it, and the per-source count of settled iterations
 * (nb_fd.settled) with its fold into the pair.
 * Must not: allocate, lock (beyond the slot try-lock), block or make a
 * system call: it runs inside read/write hooks and signal handlers.
 *
 * Why. A loop the detector recognises but cannot serve - /dev/zero ->
 * /dev/null (no kernel path between character devices), 4 KiB reads of
 * a file into a pipe (below the arming minimum) - repeats forever, and
 * every turn the detector re-derives the same verdict: a record
 * re-sampled, the pair's lock taken, its counters and histogram bumped
 * (about 160 instructions per hooked call, 11% of a 4 KiB iteration).
 * Once the repeating loop's pair is refused for a reason the loop itself
 * cannot change, the hooks recognise the loop's next call inline - same
 * descriptor, buffer and size, and the call that is due (read, then
 * write) - make the real call, and count the iteration with one store.
 *
 * When a loop may settle (nb_settle_consider, from detect.c's repeating
 * loop, with the source's slot locked): the pair is not armed and
 *   - the chunk is below the pair's minimum (nb_pair_min_chunk): a
 *     bounce then counts its iteration, bytes and size bucket and
 *     nothing else, whatever the state (learning, backed off, refused);
 *   - or the pair is refused (no kernel path between the kinds) and the
 *     chunk's whole pages reach the minimum: the same, nothing else.
 * A bounce that would count towards arming, decrement a cool-down or
 * count a small-served bounce does not settle: its accounting is not a
 * plain count. So a settled loop's bounces are exactly iterations += 1,
 * bytes += n, hist[bucket(n)] += 1, and the live counters at every
 * multiple of 16 of the pair's count.
 *
 * What the full path checks and why the settled one may skip it:
 *  - the detector (record, samples, ring scan, pair lookup, generations,
 *    lock): the loop is the same record every turn - descriptor, buffer,
 *    size checked inline; the first and last 8 bytes sampled after the
 *    read and compared after the write, as write_piece does; a short
 *    read or write, another size, buffer or descriptor leaves and hands
 *    the call to the detector, which finds the ring as it would have
 *    (nb_detect_unsettle);
 *  - the generations of source and destination: every bump of any slot's
 *    generation (close, dup2, exec, revalidation) bumps the epoch;
 *  - the pair (restarted for another destination, armed by another
 *    thread's loop, reset in a forked child): each bumps the epoch;
 *  - nb_own_maybe: a number becomes one of the library's only after the
 *    program closed it - a generation bump, unless the close was behind
 *    the hooks' back (raw syscall(SYS_close)) - and the library made a
 *    descriptor of its own, which bumps the epoch (ownfd.c own_add);
 *  - nb_on: the library turns off (seccomp, exit) with an epoch bump;
 *  - TRY_DEFER: only armed pairs defer, and none is settled;
 *  - phantoms, file mappings, bytes in flight, kept socket errors: see
 *    "One epoch for four flags" below.
 *
 * Counts. nb_fd.settled is written by one thread only (settle_owner, a
 * token claimed under the slot's lock), with a plain load and store, and
 * is part of the pair's counts wherever they are read (loops.c adds it):
 * the exit report, the observe report and the live totals stay exact.
 * It is folded into the pair under the lock when the owner leaves, when
 * the pair is retired or restarted, and when a thread settles on the
 * slot. The live counters (`nobounce stat`) get what is not in them yet
 * whenever the pair's whole count reaches a multiple of 16, as the
 * detector flushes them (settled_flushed: how much of `settled` is in).
 *
 * One epoch for four flags. The full path must run while a phantom, a
 * recorded file mapping, bytes in flight or a kept socket error exist
 * anywhere in the process: a read may have to fill a phantom first, a
 * write may be served from a mapping, wait for a reader or report the
 * kept error. The settled path used to load the four counts on every
 * call (about 8 instructions of a write's 25). Now their owners raise
 * them with NB_SETTLE_RAISE, which bumps the epoch when a count leaves
 * 0, and a loop does not settle while any is up (nb_settle_consider).
 * So the one epoch compare stands for all four: a count that was up
 * when the loop settled kept it from settling; one that rose later
 * changed the epoch. Ordering: nb_settle_consider looks at the counts
 * after the epoch it stores was read (detect.c reads it before the
 * generations); a rise it missed happened after that read, and its bump
 * after the rise. Counts going back to 0 bump nothing: the loop settles
 * again through the detector. The window is the one the loads had: a
 * count rising between the hook's check and its real call.
 *
 * Races. A settled write re-checks the epoch after its real call, before
 * counting; an event landing between that check and the store (a few
 * instructions) may count that one iteration on the pair that replaced
 * it - the detector has the same window between its generation check
 * and its lock. Bytes are never at stake: nothing here changes a call.
 */
#include "internal.h"

__thread struct nb_settle nb_settle_tls __attribute__((tls_model("initial-exec"))) = {
	.rfd = -1,
	.wfd = -1,
};
atomic_uint nb_settle_epoch = 1;

/* This thread's owner token (never 0). */
static __thread unsigned token __attribute__((tls_model("initial-exec")));
static atomic_uint tokens;

void nb_settle_break(void)
{
	/* Never back to 0, the "not settled" mark of a thread. */
	unsigned e = atomic_fetch_add_explicit(&nb_settle_epoch, 1, memory_order_acq_rel) + 1;
	if (NB_UNLIKELY(e == 0))
		atomic_fetch_add_explicit(&nb_settle_epoch, 1, memory_order_acq_rel);
}

void nb_settle_flush_live(struct nb_fd *e, uint64_t k, size_t n)
{
	uint64_t d = k - atomic_load_explicit(&e->settled_flushed, memory_order_relaxed);
	atomic_store_explicit(&e->settled_flushed, k, memory_order_relaxed);
	NB_COUNT(bounces, d);
	NB_COUNT(bounce_bytes, d * (uint64_t)n);
}

void nb_settle_fold_locked(struct nb_fd *e)
{
	uint64_t k = atomic_exchange_explicit(&e->settled, 0, memory_order_relaxed);
	if (k == 0)
		return;
	struct nb_pair *p = &e->pair;
	size_t n = e->settled_n;
	p->iterations += k;
	p->bytes += k * n;
	p->hist[nb_hist_bucket(n)] += k;
	/* What the hooks put in the live counters already. */
	uint64_t flushed = atomic_exchange_explicit(&e->settled_flushed, 0, memory_order_relaxed);
	p->live_iters += flushed;
	p->live_bytes += flushed * n;
}

/* Would every further bounce of r's size be a plain count on p? */
static bool plain_count(const struct nb_pair *p, size_t n, size_t served)
{
	if (p->state == NB_PAIR_IDLE || p->state == NB_PAIR_ARMED)
		return false;
	size_t min = nb_pair_min_chunk(p, &nb_g.cfg);
	if (n < min)
		return true;
	return p->state == NB_PAIR_REFUSED && served >= min - min / 16;
}

void nb_settle_consider(struct nb_fd *s, const struct nb_rec *r, int dst, unsigned epoch)
{
	struct nb_settle *st = &nb_settle_tls;
	if (!plain_count(&s->pair, r->len, nb_served_bytes(r->addr, r->len)) ||
	    nb_settle_flags_up())
		return;
	if (token == 0)
		token = atomic_fetch_add_explicit(&tokens, 1, memory_order_relaxed) + 1;
	unsigned owner = atomic_load_explicit(&s->settle_owner, memory_order_relaxed);
	/* Another thread counts on this source: only one writer per slot. */
	if (owner != 0 && owner != token)
		return;
	/* A count left by an earlier loop (of another size, perhaps) goes
	 * into the pair before this loop's count starts. */
	nb_settle_fold_locked(s);
	s->settled_n = r->len;
	/* The live counters from here: flushed whenever the pair's whole
	 * count is a multiple of 16, with all that is not in them yet - as
	 * the detector does, so a loop that stops shows its exact count. */
	nb_loops_flush_live(&s->pair);
	atomic_store_explicit(&s->settle_owner, token, memory_order_relaxed);
	*st = (struct nb_settle){
		.buf = (const void *)r->addr,
		.n = r->len,
		.rfd = r->src,
		.wfd = -1,
		.epoch = epoch,
		.src = r->src,
		.dst = dst,
		.e = s,
		.phase = (unsigned)(s->pair.iterations & 15),
	};
}

bool nb_settle_leave(bool *want_write, uint64_t *head, uint64_t *tail)
{
	struct nb_settle *st = &nb_settle_tls;
	if (st->epoch == 0)
		return false;
	*want_write = st->wfd >= 0;
	*head = st->head;
	*tail = st->tail;
	struct nb_fd *e = st->e;
	st->epoch = 0;
	st->rfd = -1;
	st->wfd = -1;
	/* Reset in a forked child, or taken back by a retire: not ours. */
	if (token != 0 && atomic_load_explicit(&e->settle_owner, memory_order_relaxed) == token) {
		/* Busy (another thread's bounce): the count stays on the slot,
		 * counted by the readers, for the next fold. */
		if (nb_fd_trylock(e)) {
			nb_settle_fold_locked(e);
			nb_fd_unlock(e);
		}
		atomic_store_explicit(&e->settle_owner, 0, memory_order_relaxed);
	}
	return true;
}
