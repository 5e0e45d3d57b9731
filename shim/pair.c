/*
 * pair.c - the state machine of one (source, destination) pair.
 *
 * Owns: when a pair arms, how misses disarm it, how long it cools down,
 * and which kernel path could serve a direction at all.
 * Must not: do I/O, read the clock, or know about descriptors beyond the
 * kinds and flags it is given. Every transition is a unit test.
 *
 *   LEARNING --arm_after clean bounces >= min_chunk--> ARMED
 *   ARMED    --NB_MISS_LIMIT misses (decaying)------> BACKOFF
 *   BACKOFF  --cooldown bounces----------------------> LEARNING
 *   REFUSED: no kernel path exists for these kinds; it only counts.
 *
 * The cool-down doubles on every disarm (up to NB_COOLDOWN_MAX) so a
 * program that keeps touching its buffer settles into the plain path and
 * pays for at most a few failed attempts, while a program whose behaviour
 * changed (headers first, then a long body) gets another chance.
 */
#include "internal.h"

#include <string.h>

/* Armed pairs forgive one miss per this many clean bounces. */
#define NB_MISS_DECAY 16u

static bool is_stream(enum nb_kind k)
{
	return k == NB_KIND_TCP || k == NB_KIND_UNIX;
}

enum nb_path nb_path_for(enum nb_kind src, enum nb_kind dst, unsigned dst_flags,
			 unsigned src_flags, unsigned allowed)
{
	enum nb_none why;
	return nb_path_for_why(src, dst, dst_flags, src_flags, allowed, &why);
}

enum nb_path nb_path_for_why(enum nb_kind src, enum nb_kind dst, unsigned dst_flags,
			     unsigned src_flags, unsigned allowed, enum nb_none *why)
{
	enum nb_path p = NB_PATH_NONE;
	/* O_DIRECT needs aligned user buffers on both sides; O_APPEND
	 * targets make sendfile/splice/copy_file_range fail with EINVAL
	 * (splice(2), copy_file_range(2)); both stay on the plain path. */
	*why = (src_flags & NB_FL_DIRECT)      ? NB_NONE_SRC_DIRECT
	       : (dst_flags & NB_FL_DIRECT)    ? NB_NONE_DST_DIRECT
	       : (dst_flags & NB_FL_APPEND)    ? NB_NONE_DST_APPEND
	       : (dst_flags & NB_FL_SNDTIMEO)  ? NB_NONE_DST_SNDTIMEO
					       : NB_NONE_KINDS;
	if (*why != NB_NONE_KINDS)
		return NB_PATH_NONE;
	bool dst_file = dst == NB_KIND_FILE || dst == NB_KIND_BLOCK;

	if (src == NB_KIND_FILE || src == NB_KIND_BLOCK) {
		if (src_flags & NB_FL_PSEUDO) {
			*why = NB_NONE_SRC_PSEUDO;
			return NB_PATH_NONE;
		}
		if (is_stream(dst))
			p = NB_PATH_SENDFILE;
		else if (dst == NB_KIND_PIPE)
			p = NB_PATH_SPLICE;
		else if (dst == NB_KIND_FILE)
			p = (allowed & NB_PATH_COPY_FILE_RANGE) ? NB_PATH_COPY_FILE_RANGE
								: NB_PATH_SENDFILE;
		else if (dst == NB_KIND_BLOCK)
			p = NB_PATH_SENDFILE;
	} else if (is_stream(src) || src == NB_KIND_PIPE) {
		if (dst_file || is_stream(dst) || dst == NB_KIND_PIPE)
			p = NB_PATH_SPLICE;
	}
	if (p != NB_PATH_NONE && !(allowed & p))
		*why = NB_NONE_PATHS;
	return (allowed & p) ? p : NB_PATH_NONE;
}

const char *nb_none_text(enum nb_none why)
{
	switch (why) {
	case NB_NONE_SRC_DIRECT: return "the source is opened with O_DIRECT";
	case NB_NONE_SRC_PSEUDO: return "the source is a pseudo file (size 0: /proc, /sys)";
	case NB_NONE_DST_DIRECT: return "the destination is opened with O_DIRECT";
	case NB_NONE_DST_APPEND: return "the destination is opened with O_APPEND";
	case NB_NONE_DST_SNDTIMEO: return "the destination socket has a send timeout (SO_SNDTIMEO)";
	case NB_NONE_PATHS: return "NOBOUNCE_PATHS leaves out the kernel path for it";
	default: return "no kernel path serves this direction";
	}
}

const char *nb_path_name(enum nb_path p)
{
	switch (p) {
	case NB_PATH_SENDFILE: return "sendfile";
	case NB_PATH_COPY_FILE_RANGE: return "copy_file_range";
	case NB_PATH_SPLICE: return "splice";
	default: return "none";
	}
}

unsigned nb_hist_bucket(size_t chunk)
{
	if (chunk < 4096)
		return 0;
	/* 4K -> 1, 8K -> 2, ...: the bucket is log2(chunk) - 11, capped. */
	unsigned b = (unsigned)(63 - __builtin_clzll((unsigned long long)chunk)) - 11;
	return b < NB_HIST_BUCKETS - 1 ? b : NB_HIST_BUCKETS - 1;
}

void nb_pair_start(struct nb_pair *p, int dst, uint32_t dst_gen, enum nb_kind src_kind,
		   enum nb_kind dst_kind, enum nb_path path)
{
	memset(p, 0, sizeof *p);
	p->dst = dst;
	p->dst_gen = dst_gen;
	p->src_kind = (uint8_t)src_kind;
	p->dst_kind = (uint8_t)dst_kind;
	p->path = (uint8_t)path;
	p->state = path == NB_PATH_NONE ? NB_PAIR_REFUSED : NB_PAIR_LEARNING;
}

/* The smallest chunk that wins, per direction (make bench, README):
 * file -> socket and file -> pipe gain from 16 KiB calls on; a copy
 * between two files is a copy inside the kernel too (copy_file_range
 * shares no pages on tmpfs or ext4), so it gains only a little, from
 * 64 KiB calls on, and loses below. Socket sources: NOBOUNCE_MIN_CHUNK_STREAM. */
size_t nb_min_chunk_for(enum nb_kind src, enum nb_kind dst, const struct nb_config *c,
			 const char **var)
{
	bool file_src = src == NB_KIND_FILE || src == NB_KIND_BLOCK;
	bool file_dst = dst == NB_KIND_FILE || dst == NB_KIND_BLOCK;
	size_t floor = c->min_chunk;
	const char *name = "NOBOUNCE_MIN_CHUNK";
	if (file_src && file_dst && c->min_chunk_file > floor) {
		floor = c->min_chunk_file;
		name = "NOBOUNCE_MIN_CHUNK_FILE";
	}
	/* Socket sources go through a pool pipe and a tee per write: below
	 * 128 KiB that costs more than the copy it saves (make bench). */
	if (!file_src && c->min_chunk_stream > floor) {
		floor = c->min_chunk_stream;
		name = "NOBOUNCE_MIN_CHUNK_STREAM";
	}
	/* Into a pipe read on another CPU, splices of 16-32 KiB lose to
	 * plain copies (every pipe-full is a cross-CPU wake-up); where the
	 * reader runs cannot be seen from here. */
	if (dst == NB_KIND_PIPE && c->min_chunk_pipe > floor) {
		floor = c->min_chunk_pipe;
		name = "NOBOUNCE_MIN_CHUNK_PIPE";
	}
	if (var != NULL)
		*var = name;
	return floor;
}

size_t nb_pair_min_chunk(const struct nb_pair *p, const struct nb_config *c)
{
	return nb_min_chunk_for((enum nb_kind)p->src_kind, (enum nb_kind)p->dst_kind, c, NULL);
}

/* Whole pages a deferred read needs at least (defer.c NB_MIN_PAGES). */
#define NB_SERVED_MIN_PAGES 2u
#define NB_SERVED_PAGE 4096u

/* What a deferred read of [addr, addr+len) would save: the bytes that are
 * never copied through memory. A read is deferred only over the whole
 * pages of the buffer; the partial pages at either end are filled for
 * real (defer.c), a copy like the plain read's. A file source's write
 * then widens the kernel piece over those edges (forward.c: one sendfile
 * for the whole buffer), but their copy was already paid; a socket or
 * pipe source's edges go out with the plain call. Either way only the
 * whole pages are saved, and the minimum is judged on them: a 16 KiB
 * read into a malloc'd buffer (12K of whole pages) from a file into TCP
 * ran at 0.82-0.92x plain when it armed (README "Zero-copy, measured",
 * both placements), a page-aligned one at 0.94-1.20x. Fewer than
 * NB_SERVED_MIN_PAGES whole pages: never deferred at all. Measured with
 * rinetd (16K reads into an unaligned
 * buffer, socket -> socket): 3 whole pages, 12K of 16K by splice; each
 * such read and write costs about 16 system calls where the plain loop
 * makes 2 (splice into the pool pipe, the head out of it, SIOCATMARK and
 * a non-blocking read for the tail, the old pipe drained; send of the
 * head, tee, splice, send of the tail, mask changes). */
size_t nb_served_bytes(uintptr_t addr, size_t len)
{
	uintptr_t lo = (addr + NB_SERVED_PAGE - 1) & ~(uintptr_t)(NB_SERVED_PAGE - 1);
	uintptr_t hi = (addr + len) & ~(uintptr_t)(NB_SERVED_PAGE - 1);
	if (hi <= lo || (hi - lo) / NB_SERVED_PAGE < NB_SERVED_MIN_PAGES)
		return 0;
	return (size_t)(hi - lo);
}

enum nb_event nb_pair_bounce(struct nb_pair *p, size_t chunk, const struct nb_config *c)
{
	return nb_pair_bounce_served(p, chunk, chunk, c);
}

/* The minimum is judged on what would be served (to within 1/16), not
 * on the count asked for: a socket relay reading 16K into an unaligned buffer with the
 * minimum at 16K would otherwise arm and pay the per-read costs above for
 * 12K moved by the kernel. Such bounces are counted (small_served) so the
 * reports can say why the pair never armed. */
enum nb_event nb_pair_bounce_served(struct nb_pair *p, size_t chunk, size_t served,
				    const struct nb_config *c)
{
	p->iterations++;
	p->bytes += chunk;
	p->hist[nb_hist_bucket(chunk)]++;
	size_t min = nb_pair_min_chunk(p, c);
	if (chunk < min)
		return NB_EV_NONE; /* too small to win: neither counts nor hurts */
	/* Within 1/16: a 128K malloc'd buffer (mmap'd, 16 bytes past a page
	 * boundary) serves 124K and still wins; a 16K one serves 12K. */
	if (served < min - min / 16) {
		/* As small, once cut to what would be served. Also while
		 * armed: the buffer moved to a worse alignment, so no streak
		 * and no forgiveness; defer.c still serves what it can. */
		p->small_served++;
		NB_COUNT(small_served, 1);
		if (p->state == NB_PAIR_LEARNING)
			p->streak = 0;
		return NB_EV_NONE;
	}

	switch ((enum nb_pair_state)p->state) {
	case NB_PAIR_LEARNING:
		if (++p->streak >= c->arm_after) {
			p->state = NB_PAIR_ARMED;
			p->streak = 0;
			p->arms++;
			return NB_EV_ARMED;
		}
		break;
	case NB_PAIR_ARMED:
		if (++p->streak % NB_MISS_DECAY == 0 && p->recent_misses > 0)
			p->recent_misses--;
		break;
	case NB_PAIR_BACKOFF:
		if (p->cooldown > 0 && --p->cooldown == 0) {
			p->state = NB_PAIR_LEARNING;
			p->streak = 0;
			return NB_EV_REARMABLE;
		}
		break;
	case NB_PAIR_IDLE:
	case NB_PAIR_REFUSED:
		break;
	}
	return NB_EV_NONE;
}

enum nb_event nb_pair_miss(struct nb_pair *p, enum nb_miss why)
{
	p->misses[why]++;
	p->streak = 0;
	if (p->state != NB_PAIR_ARMED || ++p->recent_misses < NB_MISS_LIMIT)
		return NB_EV_NONE;
	unsigned shift = p->backoffs < 16 ? p->backoffs : 16;
	uint64_t cd = (uint64_t)NB_COOLDOWN_BASE << shift;
	p->cooldown = (uint32_t)(cd > NB_COOLDOWN_MAX ? NB_COOLDOWN_MAX : cd);
	p->backoffs++;
	p->recent_misses = 0;
	p->state = NB_PAIR_BACKOFF;
	return NB_EV_DISARMED;
}

const char *nb_miss_name(enum nb_miss m)
{
	switch (m) {
	case NB_MISS_UNFORWARDED: return "unforwarded";
	case NB_MISS_TWO_DESTS: return "two_destinations";
	case NB_MISS_MODIFIED: return "modified";
	default: return "?";
	}
}

const char *nb_pair_state_name(enum nb_pair_state s)
{
	static const char *const n[] = { "idle", "learning", "armed", "backoff", "refused" };
	return (unsigned)s < sizeof n / sizeof n[0] ? n[s] : "?";
}
