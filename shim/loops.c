/*
 * loops.c - what the detector found, kept for the exit report.
 *
 * Owns: the fixed table of retired pairs (a source closed, or it started
 * feeding another destination), merging them with live pairs into one view
 * per loop, the savings estimate, and the observe report in text and JSON.
 * Must not: allocate on the retire path (it runs inside close(), which must
 * stay async-signal-safe); allocation is for the report, at exit.
 *
 * Retiring claims a slot with a CAS or adds to a slot with the same key, so
 * no lock is needed. When every slot is taken, later loops are only counted
 * (nb_loops_overflow) and the report says so.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>
#include <uthash.h>

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
	t->iterations += e->pair.iterations;
	t->bytes += e->pair.bytes;
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

/* ---- collecting a view (exit time: malloc is fine) ---- */

struct key {
	int src, dst;
	uint8_t src_kind, dst_kind, mapped;
};

struct entry {
	struct key key;
	struct nb_loop_view v;
	UT_hash_handle hh;
};

struct collect {
	struct entry *map;
	bool oom;
};

static struct nb_loop_view *slot_for(struct collect *c, int src, int dst, uint8_t sk, uint8_t dk,
				     uint8_t path, uint8_t mapped)
{
	struct key k;
	memset(&k, 0, sizeof k); /* padding is part of the hashed key */
	k.src = src;
	k.dst = dst;
	k.src_kind = sk;
	k.dst_kind = dk;
	k.mapped = mapped;
	struct entry *e;
	HASH_FIND(hh, c->map, &k, sizeof k, e);
	if (e == NULL) {
		e = calloc(1, sizeof *e);
		if (e == NULL) {
			c->oom = true;
			return NULL;
		}
		e->key = k;
		e->v.src = src;
		e->v.dst = dst;
		e->v.src_kind = (enum nb_kind)sk;
		e->v.dst_kind = (enum nb_kind)dk;
		e->v.path = (enum nb_path)path;
		e->v.mapped = mapped != 0;
		HASH_ADD(hh, c->map, key, sizeof k, e);
	}
	return &e->v;
}

static void add_live(int fd, struct nb_fd *e, void *ctx)
{
	const struct nb_pair *p = &e->pair;
	struct nb_loop_view *v = slot_for(ctx, fd, p->dst, p->src_kind, p->dst_kind, p->path, 0);
	if (v == NULL)
		return;
	v->iterations += p->iterations;
	v->bytes += p->bytes;
	v->arms += p->arms;
	for (int i = 0; i < NB_MISS_COUNT; i++)
		v->misses[i] += p->misses[i];
	for (int i = 0; i < NB_HIST_BUCKETS; i++)
		v->hist[i] += p->hist[i];
	v->small_served += p->small_served;
}

static int by_bytes(struct entry *a, struct entry *b)
{
	return a->v.bytes < b->v.bytes ? 1 : a->v.bytes > b->v.bytes ? -1 : 0;
}

size_t nb_loops_collect(struct nb_loop_view *out, size_t max)
{
	struct collect c = { NULL, false };
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
	}
	nb_fd_each_pair(add_live, &c);
	HASH_SORT(c.map, by_bytes);
	size_t n = 0;
	struct entry *e, *tmp;
	HASH_ITER(hh, c.map, e, tmp) {
		if (n < max)
			out[n++] = e->v;
		HASH_DEL(c.map, e);
		free(e);
	}
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

static void human(char *b, size_t cap, uint64_t v)
{
	static const char *const u[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double d = (double)v;
	int i = 0;
	while (d >= 1024 && i < 4) {
		d /= 1024;
		i++;
	}
	snprintf(b, cap, i ? "%.1f %s" : "%.0f %s", d, u[i]);
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
		snprintf(buf, cap, "its chunks are below %s (%s)", var, h);
		return buf;
	}
	/* Large enough as asked for, but a deferred read serves only the
	 * whole pages of the buffer (pair.c nb_served_bytes): the minimum
	 * is judged on those. */
	if (l->small_served > 0 && l->small_served * 2 >= big) {
		char h[32];
		human(h, sizeof h, min);
		snprintf(buf, cap, "the whole pages of its buffer (what would be served) are below "
			 "%s (%s): the buffer is not page-aligned", var, h);
		return buf;
	}
	if (l->misses[0] + l->misses[1] + l->misses[2] > 0)
		return "the program touches or re-sends the bytes (misses)";
	return "too few iterations (NOBOUNCE_ARM_AFTER)";
}

#define NB_REPORT_LOOPS 64

void nb_loops_report_text(int fd, const char *prog, pid_t pid)
{
	struct nb_loop_view *v = calloc(NB_REPORT_LOOPS, sizeof *v);
	if (v == NULL)
		return;
	size_t n = nb_loops_collect(v, NB_REPORT_LOOPS);
	char line[1024];
	int k = snprintf(line, sizeof line, "nobounce: %s[%d] %s report: %zu copy loop%s found\n",
			 prog, (int)pid, nb_mode_name(nb_g.cfg.mode), n, n == 1 ? "" : "s");
	nb_write_all(fd, line, (size_t)k);
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
				h += (size_t)snprintf(hist + h, sizeof hist - h, "%s%s:%llu",
						      h ? " " : "", bucket_names[j],
						      (unsigned long long)l->hist[j]);
		k = snprintf(line, sizeof line,
			     "nobounce:   fd %d (%s%s) -> fd %d (%s): %llu %s, %s, chunks [%s]\n",
			     l->src, nb_kind_name(l->src_kind), l->mapped ? ", mapped" : "", l->dst,
			     nb_kind_name(l->dst_kind), (unsigned long long)l->iterations,
			     l->mapped ? "writes" : "iterations", bytes, hist);
		nb_write_all(fd, line, (size_t)k);
		if (l->path == NB_PATH_NONE)
			k = snprintf(line, sizeof line,
				     "nobounce:     no kernel path serves %s -> %s here; stays plain\n",
				     nb_kind_name(l->src_kind), nb_kind_name(l->dst_kind));
		else
			k = snprintf(line, sizeof line,
				     "nobounce:     %s would serve it: %s fewer bytes copied through "
				     "user space, %llu -> %llu system calls\n",
				     nb_path_name(l->path), copied, (unsigned long long)sp,
				     (unsigned long long)sk);
		nb_write_all(fd, line, (size_t)k);
		if (l->path != NB_PATH_NONE && l->arms == 0) {
			char why[160];
			k = snprintf(line, sizeof line, "nobounce:     but it never armed: %s\n",
				     unarmed_reason(l, why, sizeof why));
			nb_write_all(fd, line, (size_t)k);
		}
		uint64_t m = l->misses[0] + l->misses[1] + l->misses[2];
		if (m > 0) {
			k = snprintf(line, sizeof line,
				     "nobounce:     misses: %llu unforwarded, %llu two destinations, "
				     "%llu modified\n",
				     (unsigned long long)l->misses[NB_MISS_UNFORWARDED],
				     (unsigned long long)l->misses[NB_MISS_TWO_DESTS],
				     (unsigned long long)l->misses[NB_MISS_MODIFIED]);
			nb_write_all(fd, line, (size_t)k);
		}
	}
	free(v);
}

size_t nb_loops_json(char *buf, size_t len, size_t cap)
{
	struct nb_loop_view *v = calloc(NB_REPORT_LOOPS, sizeof *v);
	size_t n = v ? nb_loops_collect(v, NB_REPORT_LOOPS) : 0;
#define PUT(...)                                                              \
	do {                                                                  \
		if (len < cap)                                                \
			len += (size_t)snprintf(buf + len, cap - len, __VA_ARGS__); \
	} while (0)
	PUT("[");
	for (size_t i = 0; i < n; i++) {
		const struct nb_loop_view *l = &v[i];
		uint64_t cb, sp, sk;
		nb_loop_savings(l, &cb, &sp, &sk);
		PUT("%s\n    {\"src_fd\": %d, \"src_kind\": \"%s\", \"dst_fd\": %d, "
		    "\"dst_kind\": \"%s\", \"mapped\": %s, \"iterations\": %llu, \"bytes\": %llu, "
		    "\"kernel_path\": \"%s\", \"arms\": %llu, \"bytes_not_copied\": %llu, "
		    "\"syscalls_plain\": %llu, \"syscalls_kernel\": %llu, \"misses\": {",
		    i ? "," : "", l->src, nb_kind_name(l->src_kind), l->dst,
		    nb_kind_name(l->dst_kind), l->mapped ? "true" : "false",
		    (unsigned long long)l->iterations,
		    (unsigned long long)l->bytes, nb_path_name(l->path),
		    (unsigned long long)l->arms, (unsigned long long)cb, (unsigned long long)sp,
		    (unsigned long long)sk);
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
	free(v);
	return len < cap ? len : cap - 1;
}
