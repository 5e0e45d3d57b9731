/*
 * loops.c - what the detector found, kept for the exit report.
 *
 * Owns: the fixed table of retired pairs (a source closed, or it started
 * feeding another destination), merging them with live pairs into one view
 * per loop, the savings estimate, and the observe report in text and JSON.
 * Must not: allocate, lock or use stdio anywhere: retiring runs inside
 * close(), which must stay async-signal-safe, and the report itself may be
 * written from a termination signal's handler or from _exit (termsig.c,
 * init.c); its work space is an anonymous mapping and its text comes from
 * fmt.c.
 *
 * Retiring claims a slot with a CAS or adds to a slot with the same key, so
 * no lock is needed. When every slot is taken, later loops are only counted
 * (nb_loops_overflow) and the report says so.
 */
#include "internal.h"

#include <string.h>

static struct nb_loop table[NB_MAX_LOOPS];
static atomic_ullong overflow; /* iterations of loops that found no slot */

static bool same_key(const struct nb_loop *l, int src, const struct nb_pair *p)
{
	return l->src == src && l->dst == p->dst && l->src_kind == p->src_kind &&
	       l->dst_kind == p->dst_kind && !l->mapped;
}

static void add(struct nb_loop *l, const struct nb_pair *p)
{
	atomic_fetch_add(&l->iterations, p->iterations);
	atomic_fetch_add(&l->bytes, p->bytes);
	atomic_fetch_add(&l->arms, p->arms);
	for (int i = 0; i < NB_MISS_COUNT; i++)
		atomic_fetch_add(&l->misses[i], p->misses[i]);
	for (int i = 0; i < NB_HIST_BUCKETS; i++)
		atomic_fetch_add(&l->hist[i], p->hist[i]);
	atomic_fetch_add(&l->small_served, p->small_served);
	atomic_fetch_or(&l->buf_why, p->buf_why);
	atomic_fetch_add(&l->buf_refusals, p->buf_refusals);
	if (p->path == NB_PATH_NONE)
		atomic_fetch_or(&l->none_why, 1u << p->none_why);
}

void nb_loops_flush_live(struct nb_pair *p)
{
	NB_COUNT(bounces, p->iterations - p->live_iters);
	NB_COUNT(bounce_bytes, p->bytes - p->live_bytes);
	p->live_iters = p->iterations;
	p->live_bytes = p->bytes;
}

void nb_loops_retire(int src, const struct nb_pair *p)
{
	NB_COUNT(bounces, p->iterations - p->live_iters);
	NB_COUNT(bounce_bytes, p->bytes - p->live_bytes);
	if (p->iterations == 0)
		return;
	for (size_t i = 0; i < NB_MAX_LOOPS; i++) {
		struct nb_loop *l = &table[i];
		int u = atomic_load(&l->used);
		if (u == 2 && same_key(l, src, p)) {
			add(l, p);
			return;
		}
		int expect = 0;
		if (u == 0 && atomic_compare_exchange_strong(&l->used, &expect, 1)) {
			l->src = src;
			l->dst = p->dst;
			l->src_kind = p->src_kind;
			l->dst_kind = p->dst_kind;
			l->path = p->path;
			add(l, p);
			atomic_store(&l->used, 2);
			return;
		}
	}
	atomic_fetch_add(&overflow, p->iterations);
}

/* A write of a file mapping: a loop of its own, "fd 11 (file, mapped)
 * -> fd 9 (tcp)", one iteration per write. No pair learns it (nothing
 * to arm), so it counts into its slot directly; arms is 1 from the first
 * write: the kernel path serves it (or, observing, would). */
void nb_loops_mapped(int src, int dst, enum nb_kind dst_kind, enum nb_path path, size_t bytes)
{
	for (size_t i = 0; i < NB_MAX_LOOPS; i++) {
		struct nb_loop *l = &table[i];
		int u = atomic_load(&l->used);
		if (u == 2 && l->mapped && l->src == src && l->dst == dst &&
		    l->dst_kind == dst_kind) {
			atomic_fetch_add(&l->iterations, 1);
			atomic_fetch_add(&l->bytes, bytes);
			atomic_fetch_add(&l->hist[nb_hist_bucket(bytes)], 1);
			return;
		}
		int expect = 0;
		if (u == 0 && atomic_compare_exchange_strong(&l->used, &expect, 1)) {
			l->src = src;
			l->dst = dst;
			l->src_kind = NB_KIND_FILE;
			l->dst_kind = (uint8_t)dst_kind;
			l->path = (uint8_t)path;
			l->mapped = 1;
			atomic_store(&l->iterations, 1);
			atomic_store(&l->bytes, bytes);
			atomic_store(&l->arms, 1);
			atomic_fetch_add(&l->hist[nb_hist_bucket(bytes)], 1);
			atomic_store(&l->used, 2);
			return;
		}
	}
	atomic_fetch_add(&overflow, 1);
}

void nb_loops_reset(void)
{
	memset(table, 0, sizeof table);
	atomic_store(&overflow, 0);
}

uint64_t nb_loops_overflow(void)
{
	return atomic_load(&overflow);
}

struct sums {
	uint64_t iterations, bytes;
};

static void sum_live(int fd, struct nb_fd *e, void *ctx)
{
	(void)fd;
	struct sums *t = ctx;
	uint64_t k = nb_settled_count(e); /* settle.c: part of the pair's */
	t->iterations += e->pair.iterations + k;
	t->bytes += e->pair.bytes + k * e->settled_n;
}

void nb_loops_totals(uint64_t *iterations, uint64_t *bytes)
{
	struct sums t = { atomic_load(&overflow), 0 };
	for (size_t i = 0; i < NB_MAX_LOOPS; i++)
		if (atomic_load(&table[i].used) == 2) {
			t.iterations += atomic_load(&table[i].iterations);
			t.bytes += atomic_load(&table[i].bytes);
		}
	nb_fd_each_pair(sum_live, &t);
	*iterations = t.iterations;
	*bytes = t.bytes;
}

/* ---- collecting a view (no allocation: an anonymous mapping) ---- */

/* Distinct loops merged at most; beyond, they are left out of the table
 * (the totals stay exact: nb_loops_totals). */
#define NB_COLLECT_MAX 8192u
#define NB_COLLECT_HASH (2 * NB_COLLECT_MAX) /* open addressing, power of two */

struct collect {
	struct nb_loop_view *v; /* NB_COLLECT_MAX entries */
	uint32_t *slot;         /* NB_COLLECT_HASH: index + 1, 0 empty */
	size_t n;
};

static struct nb_loop_view *slot_for(struct collect *c, int src, int dst, uint8_t sk, uint8_t dk,
				     uint8_t path, uint8_t mapped)
{
	uint32_t h = (uint32_t)src * 2654435761u ^ (uint32_t)dst * 40503u ^
		     ((uint32_t)sk << 8 | (uint32_t)dk << 16 | (uint32_t)mapped << 24);
	for (uint32_t i = 0; i < NB_COLLECT_HASH; i++) {
		uint32_t *s = &c->slot[(h + i) & (NB_COLLECT_HASH - 1)];
		if (*s != 0) {
			struct nb_loop_view *v = &c->v[*s - 1];
			if (v->src == src && v->dst == dst && v->src_kind == (enum nb_kind)sk &&
			    v->dst_kind == (enum nb_kind)dk && v->mapped == (mapped != 0))
				return v;
			continue;
		}
		if (c->n >= NB_COLLECT_MAX)
			return NULL;
		struct nb_loop_view *v = &c->v[c->n++];
		memset(v, 0, sizeof *v);
		v->src = src;
		v->dst = dst;
		v->src_kind = (enum nb_kind)sk;
		v->dst_kind = (enum nb_kind)dk;
		v->path = (enum nb_path)path;
		v->mapped = mapped != 0;
		*s = (uint32_t)c->n;
		return v;
	}
	return NULL;
}

static void add_live(int fd, struct nb_fd *e, void *ctx)
{
	const struct nb_pair *p = &e->pair;
	struct nb_loop_view *v = slot_for(ctx, fd, p->dst, p->src_kind, p->dst_kind, p->path, 0);
	if (v == NULL)
		return;
	uint64_t k = nb_settled_count(e); /* settle.c: part of the pair's */
	v->iterations += p->iterations + k;
	v->bytes += p->bytes + k * e->settled_n;
	v->arms += p->arms;
	for (int i = 0; i < NB_MISS_COUNT; i++)
		v->misses[i] += p->misses[i];
	for (int i = 0; i < NB_HIST_BUCKETS; i++)
		v->hist[i] += p->hist[i];
	if (k != 0)
		v->hist[nb_hist_bucket(e->settled_n)] += k;
	v->small_served += p->small_served;
	v->buf_why |= p->buf_why;
	v->buf_refusals += p->buf_refusals;
	if (p->path == NB_PATH_NONE)
		v->none_why |= 1u << p->none_why;
}

size_t nb_loops_collect(struct nb_loop_view *out, size_t max)
{
	size_t vsz = NB_COLLECT_MAX * sizeof(struct nb_loop_view);
	size_t size = vsz + NB_COLLECT_HASH * sizeof(uint32_t);
	void *m = nb_sys_mmap_anon(size);
	if (m == MAP_FAILED)
		return 0;
	struct collect c = { m, (uint32_t *)(void *)((char *)m + vsz), 0 };
	for (size_t i = 0; i < NB_MAX_LOOPS; i++) {
		struct nb_loop *l = &table[i];
		if (atomic_load(&l->used) != 2)
			continue;
		struct nb_loop_view *v = slot_for(&c, l->src, l->dst, l->src_kind, l->dst_kind,
						  l->path, l->mapped);
		if (v == NULL)
			break;
		v->iterations += atomic_load(&l->iterations);
		v->bytes += atomic_load(&l->bytes);
		v->arms += atomic_load(&l->arms);
		for (int j = 0; j < NB_MISS_COUNT; j++)
			v->misses[j] += atomic_load(&l->misses[j]);
		for (int j = 0; j < NB_HIST_BUCKETS; j++)
			v->hist[j] += atomic_load(&l->hist[j]);
		v->small_served += atomic_load(&l->small_served);
		v->buf_why |= atomic_load(&l->buf_why);
		v->buf_refusals += atomic_load(&l->buf_refusals);
		v->none_why |= atomic_load(&l->none_why);
	}
	nb_fd_each_pair(add_live, &c);
	/* The largest first: pick the biggest left, max times. */
	size_t n = 0;
	for (; n < max && n < c.n; n++) {
		size_t best = n;
		for (size_t j = n + 1; j < c.n; j++)
			if (c.v[j].bytes > c.v[best].bytes)
				best = j;
		struct nb_loop_view t = c.v[best];
		c.v[best] = c.v[n];
		c.v[n] = t;
		out[n] = t;
	}
	nb_sys_munmap(m, size);
	return n;
}

/* ---- savings and rendering ---- */

void nb_loop_savings(const struct nb_loop_view *l, uint64_t *copied_bytes,
		     uint64_t *syscalls_plain, uint64_t *syscalls_kernel)
{
	/* Plain: every byte is copied into user space and out again, and
	 * every iteration is at least one read and one write. Kernel path:
	 * no copy through user space; sendfile and copy_file_range take one
	 * call per iteration, and so does splice when one end is a pipe;
	 * between two non-pipes splice goes through a pipe: two calls. */
	if (l->mapped) {
		/* A write of a mapping copies once (page cache -> destination),
		 * one call either way. */
		*copied_bytes = l->path == NB_PATH_NONE ? 0 : l->bytes;
		*syscalls_plain = *syscalls_kernel = l->iterations;
		return;
	}
	*copied_bytes = l->path == NB_PATH_NONE ? 0 : 2 * l->bytes;
	*syscalls_plain = 2 * l->iterations;
	bool via_pipe = l->src_kind != NB_KIND_PIPE && l->dst_kind != NB_KIND_PIPE;
	if (l->path == NB_PATH_NONE)
		*syscalls_kernel = *syscalls_plain;
	else if (l->path == NB_PATH_SPLICE && via_pipe)
		*syscalls_kernel = 2 * l->iterations;
	else
		*syscalls_kernel = l->iterations;
}

static const char *const bucket_names[NB_HIST_BUCKETS] = {
	"<4K", "4K", "8K", "16K", "32K", "64K", "128K", "256K", ">=512K",
};

/* "1.5 MiB": one decimal, rounded, in integers (no floating point in
 * a signal handler's formatter). */
static void human(char *b, size_t cap, uint64_t v)
{
	static const char *const u[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	int i = 0;
	uint64_t unit = 1;
	while (v / unit >= 1024 && i < 4) {
		unit *= 1024;
		i++;
	}
	if (i == 0) {
		nb_fmt(b, cap, "%llu %s", (unsigned long long)v, u[0]);
		return;
	}
	/* tenths, rounded half up */
	unsigned __int128 t = ((unsigned __int128)v * 10 + unit / 2) / unit;
	nb_fmt(b, cap, "%llu.%llu %s", (unsigned long long)(t / 10), (unsigned long long)(t % 10),
	       u[i]);
}

const char *nb_buf_refusal_text(int why)
{
	switch (why) {
	case NB_BUF_STACK: return "the buffer is on the stack";
	case NB_BUF_ALTSTACK: return "the buffer is on the alternate signal stack";
	case NB_BUF_SHARED: return "the buffer is in a shared or file mapping, not private anonymous memory";
	case NB_BUF_FORK: return "the buffer is MADV_WIPEONFORK or MADV_DONTFORK memory";
	default: return "?";
	}
}

const char *nb_buf_refusal_name(int why)
{
	static const char *const n[NB_BUF_COUNT] = { "none", "stack", "altstack", "shared",
						     "fork_special" };
	return why >= 0 && why < NB_BUF_COUNT ? n[why] : "?";
}

/* The first flag or setting that ruled the kernel path out; a loop
 * with none of them has no kernel path between its kinds. */
static enum nb_none first_none(unsigned set)
{
	for (int w = 1; w < NB_NONE_COUNT; w++)
		if (set & (1u << w))
			return (enum nb_none)w;
	return NB_NONE_KINDS;
}

/* The first reason in a set of them, for the one-line verdict. */
static int first_why(unsigned set)
{
	for (int w = 1; w < NB_BUF_COUNT; w++)
		if (set & (1u << w))
			return w;
	return NB_BUF_OK;
}

/* Why a loop a kernel path could serve was never armed, into buf. The
 * minimum is the one for the loop's direction (a socket source has its
 * own, 128K by default): naming the general one would send the operator
 * to the wrong knob. */
static const char *unarmed_reason(const struct nb_loop_view *l, char *buf, size_t cap)
{
	const char *var;
	size_t min = nb_min_chunk_for(l->src_kind, l->dst_kind, &nb_g.cfg, &var);
	uint64_t big = 0;
	for (unsigned j = nb_hist_bucket(min) + 1; j < NB_HIST_BUCKETS; j++)
		big += l->hist[j];
	/* The bucket holding the minimum mixes sizes on both sides of it. */
	if (big == 0 && nb_hist_bucket(min) > 0 && min == (size_t)2048 << nb_hist_bucket(min))
		big = l->hist[nb_hist_bucket(min)];
	if (big == 0) {
		char h[32];
		human(h, sizeof h, min);
		nb_fmt(buf, cap, "its chunks are below %s (%s)", var, h);
		return buf;
	}
	/* Large enough as asked for, but a deferred read serves only the
	 * whole pages of the buffer (pair.c nb_served_bytes): the minimum
	 * is judged on those. */
	if (l->small_served > 0 && l->small_served * 2 >= big) {
		char h[32];
		human(h, sizeof h, min);
		nb_fmt(buf, cap, "the whole pages of its buffer (what would be served) are below "
			 "%s (%s): the buffer is not page-aligned", var, h);
		return buf;
	}
	if (l->misses[0] + l->misses[1] + l->misses[2] > 0)
		return "the program touches or re-sends the bytes (misses)";
	return "too few iterations (NOBOUNCE_ARM_AFTER)";
}

#define NB_REPORT_LOOPS 64

/* The report's copy of the loops: an anonymous mapping, not malloc. */
static struct nb_loop_view *views(size_t *n)
{
	void *m = nb_sys_mmap_anon(NB_REPORT_LOOPS * sizeof(struct nb_loop_view));
	if (m == MAP_FAILED) {
		*n = 0;
		return NULL;
	}
	*n = nb_loops_collect(m, NB_REPORT_LOOPS);
	return m;
}

static void views_done(struct nb_loop_view *v)
{
	if (v != NULL)
		nb_sys_munmap(v, NB_REPORT_LOOPS * sizeof *v);
}

void nb_loops_report_text(int fd, const char *prog, pid_t pid)
{
	size_t n;
	struct nb_loop_view *v = views(&n);
	char line[1024];
	size_t k = nb_fmt(line, sizeof line, "nobounce: %s[%d] %s report: %zu copy loop%s found\n",
			  prog, (int)pid, nb_mode_name(nb_g.cfg.mode), n, n == 1 ? "" : "s");
	nb_write_all(fd, line, k < sizeof line ? k : sizeof line - 1);
#define EMIT(...)                                                         \
	do {                                                              \
		k = nb_fmt(line, sizeof line, __VA_ARGS__);               \
		nb_write_all(fd, line, k < sizeof line ? k : sizeof line - 1); \
	} while (0)
	for (size_t i = 0; i < n; i++) {
		const struct nb_loop_view *l = &v[i];
		char bytes[32], copied[32], hist[256] = "";
		uint64_t cb, sp, sk;
		nb_loop_savings(l, &cb, &sp, &sk);
		human(bytes, sizeof bytes, l->bytes);
		human(copied, sizeof copied, cb);
		size_t h = 0;
		for (int j = 0; j < NB_HIST_BUCKETS; j++)
			if (l->hist[j] && h < sizeof hist)
				h += nb_fmt(hist + h, sizeof hist - h, "%s%s:%llu", h ? " " : "",
					    bucket_names[j], (unsigned long long)l->hist[j]);
		EMIT("nobounce:   fd %d (%s%s) -> fd %d (%s): %llu %s, %s, chunks [%s]\n", l->src,
		     nb_kind_name(l->src_kind), l->mapped ? ", mapped" : "", l->dst,
		     nb_kind_name(l->dst_kind), (unsigned long long)l->iterations,
		     l->mapped ? "writes" : "iterations", bytes, hist);
		int why = first_why(l->buf_why);
		if (l->path == NB_PATH_NONE && first_none(l->none_why) == NB_NONE_KINDS)
			EMIT("nobounce:     no kernel path serves %s -> %s here; stays plain\n",
			     nb_kind_name(l->src_kind), nb_kind_name(l->dst_kind));
		else if (l->path == NB_PATH_NONE)
			EMIT("nobounce:     not served: %s; stays plain\n",
			     nb_none_text(first_none(l->none_why)));
		else if (l->arms == 0 && why != NB_BUF_OK)
			/* A promise would be false: no read of this buffer can
			 * be deferred (defer.c), so the kernel path never runs. */
			EMIT("nobounce:     not served: %s (%s needs a buffer the library can "
			     "guard); stays plain\n",
			     nb_buf_refusal_text(why), nb_path_name(l->path));
		else
			EMIT("nobounce:     %s would serve it: %s fewer bytes copied through "
			     "user space, %llu -> %llu system calls\n",
			     nb_path_name(l->path), copied, (unsigned long long)sp,
			     (unsigned long long)sk);
		if (l->path != NB_PATH_NONE && l->arms > 0 && why != NB_BUF_OK)
			EMIT("nobounce:     partly not served: %s\n", nb_buf_refusal_text(why));
		if (l->path != NB_PATH_NONE && l->arms == 0 && why == NB_BUF_OK) {
			char r[128];
			EMIT("nobounce:     but it never armed: %s\n", unarmed_reason(l, r, sizeof r));
		}
		uint64_t m = l->misses[0] + l->misses[1] + l->misses[2];
		if (m > 0)
			EMIT("nobounce:     misses: %llu unforwarded, %llu two destinations, "
			     "%llu modified\n",
			     (unsigned long long)l->misses[NB_MISS_UNFORWARDED],
			     (unsigned long long)l->misses[NB_MISS_TWO_DESTS],
			     (unsigned long long)l->misses[NB_MISS_MODIFIED]);
	}
#undef EMIT
	views_done(v);
}

size_t nb_loops_json(char *buf, size_t len, size_t cap)
{
	size_t n;
	struct nb_loop_view *v = views(&n);
#define PUT(...)                                                              \
	do {                                                                  \
		if (len < cap)                                                \
			len += nb_fmt(buf + len, cap - len, __VA_ARGS__);     \
	} while (0)
	PUT("[");
	for (size_t i = 0; i < n; i++) {
		const struct nb_loop_view *l = &v[i];
		uint64_t cb, sp, sk;
		nb_loop_savings(l, &cb, &sp, &sk);
		int why = first_why(l->buf_why);
		/* Nothing the kernel path would save when no read is served. */
		if (l->arms == 0 && why != NB_BUF_OK)
			cb = 0, sk = sp;
		PUT("%s\n    {\"src_fd\": %d, \"src_kind\": \"%s\", \"dst_fd\": %d, "
		    "\"dst_kind\": \"%s\", \"mapped\": %s, \"iterations\": %llu, \"bytes\": %llu, "
		    "\"kernel_path\": \"%s\", \"arms\": %llu, \"bytes_not_copied\": %llu, "
		    "\"syscalls_plain\": %llu, \"syscalls_kernel\": %llu, ",
		    i ? "," : "", l->src, nb_kind_name(l->src_kind), l->dst,
		    nb_kind_name(l->dst_kind), l->mapped ? "true" : "false",
		    (unsigned long long)l->iterations,
		    (unsigned long long)l->bytes, nb_path_name(l->path),
		    (unsigned long long)l->arms, (unsigned long long)cb, (unsigned long long)sp,
		    (unsigned long long)sk);
		if (why != NB_BUF_OK)
			PUT("\"not_served\": \"%s\", \"buffer_refusals\": %llu, ",
			    nb_buf_refusal_name(why), (unsigned long long)l->buf_refusals);
		/* Why it stayed plain, in the observe report's words: in mode
		 * on too, where no text report is written. */
		if (l->arms == 0 && !l->mapped) {
			char r[128];
			PUT("\"why_not\": \"%s\", ",
			    l->path == NB_PATH_NONE ? nb_none_text(first_none(l->none_why))
			    : why != NB_BUF_OK      ? nb_buf_refusal_text(why)
						    : unarmed_reason(l, r, sizeof r));
		}
		PUT("\"misses\": {");
		for (int j = 0; j < NB_MISS_COUNT; j++)
			PUT("%s\"%s\": %llu", j ? ", " : "", nb_miss_name((enum nb_miss)j),
			    (unsigned long long)l->misses[j]);
		PUT("}, \"chunks\": {");
		bool first = true;
		for (int j = 0; j < NB_HIST_BUCKETS; j++)
			if (l->hist[j]) {
				PUT("%s\"%s\": %llu", first ? "" : ", ", bucket_names[j],
				    (unsigned long long)l->hist[j]);
				first = false;
			}
		PUT("}}");
	}
	PUT("%s]", n ? "\n  " : "");
#undef PUT
	views_done(v);
	return len < cap ? len : cap - 1;
}
