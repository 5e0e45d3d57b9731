/*
 * detect.c - recognises buffer-bounce loops.
 *
 * Owns: the per-thread ring of recent reads, matching writes to them by
 * address range, and turning matches into bounces and misses of the
 * source's pair (pair.c).
 * Must not: change what any call returns, allocate, or block: it runs
 * after the real call inside hooks that must stay async-signal-safe.
 *
 * A read of k >= nb_track_min() bytes into [p, p+k) becomes a record. A write
 * of [q, q+m) is walked piece by piece: a piece that continues a record
 * exactly where its forwarded prefix ends advances it, and a record whose
 * every byte went to one destination is one bounce. This recognises the
 * patterns real programs use (as strace shows them): one buffer
 * reused (cat, dd, socat), two alternating buffers (python, nginx), partial
 * writes resumed at the unsent tail, one writev that carries the tail of
 * one read and all of the next, and a buffer filled by several short reads
 * then written at once (nc).
 *
 * Misses - evidence that the program does not just forward the bytes:
 *  - a new read lands on a record that was not (fully) written: UNFORWARDED;
 *  - a record's bytes are written to a second destination: TWO_DESTS;
 *  - the first or last 8 bytes changed between the read and the write that
 *    covers them: MODIFIED. A change in the middle is not detectable
 *    without copying, which is what we exist to avoid.
 *
 * Repeating loops. A loop that reads into one buffer and writes all of it
 * to one destination makes the same record on every turn, and bounce()
 * looks up both descriptors and rescans the ring for it every time - most
 * of the detector's cost, paid also by the many loops that never arm (no
 * kernel path between their kinds, or chunks below the minimum: a 4 KiB
 * cat of a pipe). So the thread remembers the last record that bounced,
 * with its slots, when it is alone in the ring: the next read of the same
 * descriptor into the same buffer, of the same size, only re-samples the
 * record in place (what record() would do: drop it - all of it went out,
 * no miss - and make the same one again), and the write of all of it to
 * the same destination counts the bounce through the remembered slots,
 * once the generations show that neither descriptor was closed since and
 * the pair is still the one it counted on. Anything else - another size,
 * buffer or descriptor, a partial write, a second record, a deferred read,
 * writev - forgets the shortcut and takes the general path, which finds
 * the record where the shortcut left it: both paths reach the same
 * verdicts and counts.
 *
 * The ring is per thread because a bounce loop is a sequence in one thread;
 * a program that reads in one thread and writes in another is simply not
 * recognised. Completed records stay in the ring (fwd == len) until a read
 * reuses their memory, so a second destination is still noticed.
 */
#include "internal.h"

#include <string.h>

static __thread struct nb_ring ring __attribute__((tls_model("initial-exec")));

/* This thread's repeating loop (see the top of the file). */
struct repeat {
	struct nb_rec *rec; /* the ring record it follows; NULL: none */
	struct nb_fd *src, *dst;
	int dst_fd;         /* the number dst is the slot of */
	uint32_t dst_gen;
	size_t served;
};
static __thread struct repeat repeat __attribute__((tls_model("initial-exec")));

/* The buffer's ends, sampled the way the settled loop samples them
 * (internal.h), so that both judge "changed" alike. */
static inline uint64_t load8(uintptr_t a)
{
	return nb_settle_load8((const void *)a);
}

static void drop(struct nb_rec *r)
{
	r->len = 0;
	ring.live--;
}

static uint32_t gen_of(struct nb_fd *e)
{
	return atomic_load_explicit(&e->gen, memory_order_acquire);
}

/* Counts a miss against the source's pair, when the source is still the
 * descriptor the bytes were read from and its slot is free. */
static void miss(const struct nb_rec *r, enum nb_miss why)
{
	struct nb_fd *s = nb_fd_peek(r->src);
	if (s == NULL || gen_of(s) != r->src_gen || !nb_fd_trylock(s))
		return;
	if (s->pair.state != NB_PAIR_IDLE) {
		NB_COUNT(misses[why], 1);
		if (nb_pair_miss(&s->pair, why) == NB_EV_DISARMED) {
			NB_COUNT(disarms, 1);
			nb_log(NB_LOG_DEBUG, "pair %d->%d disarmed (%s)", r->src, s->pair.dst,
			       nb_miss_name(why));
		}
	}
	nb_fd_unlock(s);
}

static enum nb_kind kind_locked(int fd, struct nb_fd *e)
{
	/* A slot left from before the number was reused starts over. */
	(void)nb_fd_current(fd, e);
	return e->kind != NB_KIND_UNKNOWN ? (enum nb_kind)e->kind : nb_fd_classify(fd, e);
}

/* The destination's kind, flags and file system, classifying it if needed. */
static void dst_info(int dst, struct nb_fd *d, enum nb_kind *kind, unsigned *flags, dev_t *dev)
{
	*kind = NB_KIND_OTHER;
	*flags = 0;
	*dev = 0;
	if (d == NULL || !nb_fd_trylock(d))
		return;
	*kind = kind_locked(dst, d);
	*flags = d->flags;
	*dev = d->dev;
	nb_fd_unlock(d);
}

static void on_armed(int src, struct nb_fd *s, int dst, struct nb_fd *d)
{
	/* Arming is when a later change of behaviour would start relying on
	 * the cached kinds: make sure the numbers still name those files. */
	if (!nb_fd_revalidate(src, s))
		return; /* the revalidation reset the source's slot, pair and all */
	if (d != NULL && d != s && nb_fd_trylock(d)) {
		bool same = nb_fd_revalidate(dst, d);
		nb_fd_unlock(d);
		if (!same) {
			/* Not armed after all; the destination's new generation
			 * starts a new pair at the next bounce. */
			s->pair.state = NB_PAIR_LEARNING;
			s->pair.arms--;
			return;
		}
	}
	NB_COUNT(arms, 1);
	/* A settled loop on this source (another thread's) must now see
	 * the armed pair: its reads may be deferred. */
	nb_settle_break();
	nb_log(NB_LOG_INFO, "pair %d->%d armed: %s -> %s via %s", src, dst,
	       nb_kind_name((enum nb_kind)s->pair.src_kind),
	       nb_kind_name((enum nb_kind)s->pair.dst_kind),
	       nb_path_name((enum nb_path)s->pair.path));
}

/* A pair about to arm on a buffer that can never be guarded (a stack
 * frame, a shared mapping, ...: defer.c) would be counted armed, and
 * promised to the kernel path in the observe report, while every read
 * stays plain. It cools down instead, and the report names the reason;
 * after the cool-down the buffer is looked at again. */
#define NB_BUF_COOLDOWN 1024u

static bool buffer_refused(struct nb_pair *p, const struct nb_rec *r)
{
	int why = nb_defer_refusal(r->addr, r->len);
	if (why == NB_BUF_OK)
		return false;
	p->state = NB_PAIR_BACKOFF;
	p->cooldown = NB_BUF_COOLDOWN;
	p->streak = 0;
	p->arms--;
	p->buf_why |= 1u << why;
	p->buf_refusals++;
	nb_log(NB_LOG_DEBUG, "pair %d->%d not armed: %s", r->src, p->dst, nb_buf_refusal_text(why));
	return true;
}

/* A pair whose reads are too small once cut to their whole pages never
 * reaches the arming check of its buffer; the reports must still name the
 * deeper reason where there is one (a stack buffer is never served, at
 * any size or alignment). Looked at once per pair, at its first such
 * bounce. */
static void small_served_buffer(struct nb_pair *p, uint64_t small_before, const struct nb_rec *r)
{
	if (small_before != 0 || p->small_served == 0)
		return;
	int why = nb_defer_refusal(r->addr, r->len);
	if (why != NB_BUF_OK) {
		p->buf_why |= 1u << why;
		p->buf_refusals++;
	}
}

/* One bounce of r to dst counted on the source's pair, whose lock the
 * caller holds: arming and its checks, the reports' counters. Returns
 * whether the pair armed on it. Inlined: a call of its own costs the
 * repeating loop (detector's hot path) 12 instructions per turn. */
static inline __attribute__((always_inline)) bool
count_bounce(const struct nb_rec *r, struct nb_fd *s, int dst, struct nb_fd *d, size_t served)
{
	struct nb_pair *p = &s->pair;
	uint64_t small = p->small_served;
	bool armed = nb_pair_bounce_served(p, r->len, served, &nb_g.cfg) == NB_EV_ARMED &&
		     !buffer_refused(p, r);
	if (armed)
		on_armed(r->src, s, dst, d);
	small_served_buffer(p, small, r);
	if ((p->iterations & 15) == 0)
		nb_loops_flush_live(p);
	return armed;
}

static void bounce(const struct nb_rec *r, int dst)
{
	struct nb_fd *s = nb_fd_get(r->src);
	if (s == NULL || gen_of(s) != r->src_gen)
		return; /* source closed or reused since the read */
	struct nb_fd *d = nb_fd_get(dst);
	if (!nb_fd_trylock(s))
		return;
	enum nb_kind sk = kind_locked(r->src, s);
	uint32_t dgen = d ? gen_of(d) : 0;
	struct nb_pair *p = &s->pair;
	if (p->state == NB_PAIR_IDLE || p->dst != dst || p->dst_gen != dgen) {
		if (p->state != NB_PAIR_IDLE) {
			/* A loop settled on the old pair counts no more. */
			nb_settle_fold_locked(s);
			nb_settle_break();
			nb_loops_retire(r->src, p);
		}
		enum nb_kind dk = sk;
		unsigned dflags = s->flags;
		dev_t ddev = s->dev;
		if (dst != r->src) /* an echo writes back into its source */
			dst_info(dst, d, &dk, &dflags, &ddev);
		/* copy_file_range(2) fails with EXDEV across file systems
		 * (Linux >= 5.19 allows only same-type ones that implement it);
		 * sendfile works file -> file anywhere. */
		unsigned allowed = nb_g.cfg.paths;
		if (ddev != s->dev)
			allowed &= ~(unsigned)NB_PATH_COPY_FILE_RANGE;
		enum nb_none none;
		nb_pair_start(p, dst, dgen, sk, dk,
			      nb_path_for_why(sk, dk, dflags, s->flags, allowed, &none));
		p->none_why = (uint8_t)none;
	}
	size_t served = nb_served_bytes(r->addr, r->len);
	if (!count_bounce(r, s, dst, d, served) && r->sampled && d != NULL && ring.live == 1 &&
	    p->state != NB_PAIR_ARMED)
		repeat = (struct repeat){ (struct nb_rec *)r, s, d, dst, dgen, served };
	nb_fd_unlock(s);
}

/* The repeating loop's read: the same descriptor into the same buffer,
 * the same size, the record fully written and alone in the ring. */
static bool repeat_read(int fd, uintptr_t a, size_t n)
{
	struct nb_rec *r = repeat.rec;
	if (r->addr != a || r->len != n || r->src != fd || r->fwd != n || ring.live != 1 ||
	    gen_of(repeat.src) != r->src_gen)
		return false;
	r->fwd = 0;
	r->dst = -1;
	r->head = load8(a);
	r->tail = load8(a + n - 8);
	return true;
}

/* The repeating loop's write: all of the record, unchanged at its ends,
 * to the destination the pair counts for: bounce() without the lookups. */
static bool repeat_write(int fd, uintptr_t a, size_t n)
{
	struct nb_rec *r = repeat.rec;
	/* Before the generations are looked at: an event after this load
	 * ends the settled loop this write may start (settle.c). */
	unsigned epoch = atomic_load_explicit(&nb_settle_epoch, memory_order_acquire);
	/* Only to the number the loop bounced to: the pair (shared by every
	 * thread reading the source) may name another destination by now -
	 * another thread's loop restarted it there - and the remembered slot
	 * is not that number's (its generation says nothing about it; arming
	 * would revalidate the number against the wrong slot). */
	if (fd != repeat.dst_fd || r->addr != a || r->len != n || r->fwd != 0 || r->dst != -1 ||
	    ring.live != 1 || load8(a) != r->head || load8(a + n - 8) != r->tail)
		return false;
	struct nb_fd *s = repeat.src, *d = repeat.dst;
	if (gen_of(s) != r->src_gen || gen_of(d) != repeat.dst_gen || !nb_fd_trylock(s))
		return false;
	struct nb_pair *p = &s->pair;
	bool same = p->state != NB_PAIR_IDLE && p->dst == fd && p->dst_gen == repeat.dst_gen;
	if (same) {
		r->dst = fd;
		r->fwd = n;
		if (!count_bounce(r, s, fd, d, repeat.served))
			nb_settle_consider(s, r, fd, epoch);
	}
	nb_fd_unlock(s);
	return same;
}

static void record(int fd, const void *buf, size_t n, bool sample);

void nb_detect_read(int fd, const void *buf, size_t n)
{
	record(fd, buf, n, true);
}

void nb_detect_read_deferred(int fd, const void *buf, size_t n)
{
	record(fd, buf, n, false);
}

/* Every way into the detector leaves this thread's settled loop first:
 * the call is not the loop's next one (or broke it). */
#define UNSETTLE()                                            \
	do {                                                  \
		if (NB_UNLIKELY(nb_settle_tls.epoch != 0))    \
			nb_detect_unsettle();                 \
	} while (0)

void nb_detect_unsettle(void)
{
	bool want_write;
	uint64_t head, tail;
	if (!nb_settle_leave(&want_write, &head, &tail))
		return;
	/* The loop settled with its record alone in the ring, written out;
	 * a settled read since made it what repeat_read makes it. */
	struct nb_rec *r = repeat.rec;
	if (want_write && r != NULL) {
		r->fwd = 0;
		r->dst = -1;
		r->head = head;
		r->tail = tail;
	}
}

static void record(int fd, const void *buf, size_t n, bool sample)
{
	UNSETTLE();
	if (n < nb_track_min())
		return;
	uintptr_t a = (uintptr_t)buf;
	if (repeat.rec != NULL) {
		if (sample && repeat_read(fd, a, n))
			return;
		repeat.rec = NULL;
	}
	/* Written once: readers of the flag never fight over the line.
	 * From the first record on, every read from NB_TRACK_MIN is looked
	 * at (init.c track_min): a loop's shorter reads - what a socket had
	 * queued, the end of a file - must replace its record of the buffer,
	 * or the write after them is judged against bytes the buffer no
	 * longer holds (a "modified" miss, and a loop that never arms). */
	if (NB_UNLIKELY(!atomic_load_explicit(&nb_g.tracked, memory_order_relaxed))) {
		atomic_store_explicit(&nb_g.track_min, NB_TRACK_MIN, memory_order_relaxed);
		atomic_store_explicit(&nb_g.tracked, 1, memory_order_relaxed);
	}
	if (ring.live > 0) {
		unsigned left = ring.live;
		for (unsigned i = 0; i < NB_RING && left > 0; i++) {
			struct nb_rec *r = &ring.rec[i];
			if (r->len == 0)
				continue;
			left--;
			if (r->addr >= a + n || a >= r->addr + r->len)
				continue;
			/* The program reads over bytes it never sent. */
			if (r->fwd < r->len)
				miss(r, NB_MISS_UNFORWARDED);
			drop(r);
		}
	}
	struct nb_rec *r = &ring.rec[ring.next];
	ring.next = (ring.next + 1) % NB_RING;
	if (r->len != 0)
		drop(r); /* oldest: tracking lost, no verdict */
	struct nb_fd *s = nb_fd_get(fd);
	r->addr = a;
	r->len = n;
	r->fwd = 0;
	r->src = fd;
	r->src_gen = s ? gen_of(s) : 0;
	r->dst = -1;
	r->sampled = sample;
	if (sample) {
		r->head = load8(a);
		r->tail = load8(a + n - 8);
	}
	ring.live++;
}

/* The record holding byte a; failing that, the first record that starts
 * inside [a, end) - a write may begin with bytes the program made itself
 * (a header, a tail moved to the front) and continue with bytes it read. */
static struct nb_rec *find(uintptr_t a, uintptr_t end)
{
	struct nb_rec *next = NULL;
	for (unsigned i = 0; i < NB_RING; i++) {
		struct nb_rec *r = &ring.rec[i];
		if (r->len == 0)
			continue;
		if (a >= r->addr && a < r->addr + r->len)
			return r;
		if (r->addr > a && r->addr < end && (next == NULL || r->addr < next->addr))
			next = r;
	}
	return next;
}

/* One contiguous piece [a, a+n) of what fd accepted. */
static void write_piece(int fd, uintptr_t a, size_t n)
{
	while (n > 0) {
		struct nb_rec *r = find(a, a + n);
		if (r == NULL)
			return;
		if (r->addr > a) {
			n -= r->addr - a;
			a = r->addr;
		}
		size_t off = a - r->addr;
		size_t take = r->len - off < n ? r->len - off : n;
		if (r->dst != -1 && r->dst != fd) {
			/* A tee writes the buffer again from its start; other
			 * overlaps are memory reused for something else. */
			if (off == 0)
				miss(r, NB_MISS_TWO_DESTS);
			drop(r);
		} else if (off == r->fwd && r->fwd < r->len) {
			/* Records are >= NB_TRACK_MIN bytes, so both samples lie
			 * inside the buffer even when this piece is shorter. */
			bool changed = r->sampled &&
				       ((off == 0 && load8(r->addr) != r->head) ||
					(off + take == r->len &&
					 load8(r->addr + r->len - 8) != r->tail));
			if (changed) {
				miss(r, NB_MISS_MODIFIED);
				drop(r);
			} else {
				r->dst = fd;
				r->fwd += take;
				if (r->fwd == r->len)
					bounce(r, fd);
			}
		} else if (off > r->fwd) {
			/* Bytes skipped: the program forwards part of what it
			 * read (a header stripped, say). Not a bounce. */
			drop(r);
		}
		/* off < fwd, same destination: a resend; nothing to learn. */
		a += take;
		n -= take;
	}
}

void nb_detect_write(int fd, const void *buf, size_t n)
{
	UNSETTLE();
	if (ring.live == 0 || n == 0)
		return;
	if (repeat.rec != NULL) {
		if (repeat_write(fd, (uintptr_t)buf, n))
			return;
		repeat.rec = NULL;
	}
	write_piece(fd, (uintptr_t)buf, n);
}

void nb_detect_readv(int fd, const struct iovec *iov, int iovcnt, size_t n)
{
	for (int i = 0; i < iovcnt && n > 0; i++) {
		size_t take = iov[i].iov_len < n ? iov[i].iov_len : n;
		nb_detect_read(fd, iov[i].iov_base, take);
		n -= take;
	}
}

void nb_detect_writev(int fd, const struct iovec *iov, int iovcnt, size_t n)
{
	UNSETTLE();
	if (ring.live == 0)
		return;
	repeat.rec = NULL;
	for (int i = 0; i < iovcnt && n > 0; i++) {
		size_t take = iov[i].iov_len < n ? iov[i].iov_len : n;
		if (take > 0)
			write_piece(fd, (uintptr_t)iov[i].iov_base, take);
		n -= take;
	}
}

/* Unit tests: start from an empty ring. */
void nb_detect_reset_thread(void)
{
	memset(&ring, 0, sizeof ring);
	repeat.rec = NULL;
	/* The slots it counted on are not this thread's to fold (a forked
	 * child resets them; unit tests drop them). */
	nb_settle_tls.epoch = 0;
	nb_settle_tls.rfd = -1;
	nb_settle_tls.wfd = -1;
}
