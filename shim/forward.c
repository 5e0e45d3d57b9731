/*
 * forward.c - the write that does not copy.
 *
 * Owns: serving a write/send/sendto/pwrite whose buffer holds phantoms:
 * the buffer is cut into pieces in address order, memory pieces (the head
 * and tail bytes the read filled for real, or anything else the program
 * put there) go out with the plain call, phantom pieces are moved from
 * their file by the kernel, and the first short piece ends the call with
 * the count moved so far - exactly the partial-write contract of write(2).
 * Must not: forward what it cannot do exactly; then every phantom in the
 * buffer is materialised and the caller makes the plain call.
 *
 * Edges. A read into a buffer that is not page aligned fills its first
 * and last partial pages for real (defer.c); phantom.c keeps a copy of
 * those bytes. While the memory still equals the copy, the kernel piece
 * takes them too, from the file: one sendfile for the whole buffer
 * instead of write + sendfile + write, which on TCP also keeps the
 * stream in full-sized segments. Bytes the program changed go out from
 * memory, as before.
 *
 * Each phantom piece goes through nb_xfer (xfer.c), which serves it
 * exactly as the plain call would (counts, errno, SIGPIPE, EINTR and
 * SA_RESTART, non-blocking destinations) or refuses before moving a byte;
 * a refused piece is materialised and goes out from memory. Never into a
 * file that is itself a source (its phantoms were filled by the write hook
 * first).
 * File mappings. Memory of a read-only file mapping (mapping.c) is the
 * other kind of memory whose bytes live in a file: never guarded, its
 * bytes are the file's page cache whenever the kernel reads them. The
 * write path asks one question of every range - is it backed by a file,
 * by which (descriptor, offset) - and the phantom table or the mapping
 * table answers; a mapped piece goes by the same kernel_piece machinery
 * (mapped_piece). Where the mapping reaches past the file's end (the file
 * shrank after mmap) the kernel moves less: the rest of the piece goes
 * out by the plain call on those pages, which copies the zeros of the
 * last page and fails with EFAULT beyond it, and the counts combine as
 * one plain call would have returned them. A mapping is served only when
 * its bytes in the call reach the direction's minimum chunk.
 *
 * SIGPIPE: only the first piece may raise it, as the single plain call
 * would; once bytes moved, later pieces run with SIGPIPE blocked (one
 * mask change for the rest of the call) and a SIGPIPE they caused is
 * taken back, since the call returns a count.
 */
#include "internal.h"
#include "xfer.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <pthread.h>
#include <signal.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>

/* How the program wrote: which plain call a memory piece goes out with. */
struct how {
	int kind;      /* NB_FWD_WRITE, NB_FWD_SEND, NB_FWD_PWRITE */
	int flags;     /* send flags */
	off_t off;     /* pwrite offset of the first byte */
};

static ssize_t plain_piece(int dst, const struct how *h, const void *p, size_t n, size_t done)
{
	switch (h->kind) {
	case NB_FWD_SEND: return NB_REAL(send)(dst, p, n, h->flags);
	case NB_FWD_PWRITE: return NB_REAL(pwrite)(dst, p, n, h->off + (off_t)done);
	default: return NB_REAL(write)(dst, p, n);
	}
}

/* Bytes moved by each kernel path, for the live view. */
static void count_path(unsigned path, ssize_t moved)
{
	if (moved <= 0)
		return;
	int i = path == NB_PATH_SENDFILE ? 0 : path == NB_PATH_SPLICE ? 1 : 2;
	NB_COUNT(path_bytes[i], (unsigned long long)moved);
}

/* Where bytes the kernel just put into a pipe end, in the pipe's count of
 * forwarded bytes (sameproc.c "Bytes in flight"): this call adds all it
 * moved to `piped` when it ends, so the piece ends at the count now plus
 * upto (the call's bytes up to the piece's end). -1 when another
 * forwarded write into the pipe is under way: its bytes could be on
 * either side of these. Looked at in this order - no other write under
 * way, then the count: a write that ended before the look is in the
 * count, one that starts after it puts its bytes after these. */
static long long pipe_mark(struct nb_fd *d, size_t upto)
{
	if (d->kind != NB_KIND_PIPE || atomic_load(&d->piping) != 1)
		return -1;
	return (long long)atomic_load(&d->piped) + (long long)upto;
}

/* One phantom piece by the kernel, with exactly the result the plain call
 * would have had (xfer.c); *unusable when nothing moved and the piece
 * must go out from memory instead (*permanent: never again for this
 * source). */
/* Does the source now end at or before soff? */
static bool vanished(int src, off_t soff)
{
	struct stat st;
	int saved = errno;
	bool gone = nb_sys_fstat(src, &st) == 0 && st.st_size <= soff;
	errno = saved;
	return gone;
}

static ssize_t kernel_piece(int dst, struct nb_fd *d, enum nb_path path, int src, off_t soff,
			    size_t n, const struct how *h, size_t done, bool *unusable,
			    bool *permanent)
{
	struct nb_xfer_res res;
	off_t doff = h->off + (off_t)done;
	/* Into a pipe or socket the pages go by reference: what moved is
	 * recorded, so that a later change of the file by the program waits
	 * for the reader (sameproc.c). No room to record it: from memory. */
	int flight = -1;
	if (d->kind == NB_KIND_PIPE || d->kind == NB_KIND_TCP || d->kind == NB_KIND_UNIX) {
		flight = nb_same_flight_reserve();
		if (flight < 0) {
			*unusable = true;
			*permanent = false;
			return NB_XFER_FALLBACK;
		}
	}
	ssize_t r = nb_xfer(dst, (enum nb_kind)d->kind, d->flags, src, soff, n, path,
			    h->kind == NB_FWD_SEND ? h->flags : 0,
			    h->kind == NB_FWD_PWRITE ? &doff : NULL, &res);
	if (r > 0)
		nb_same_flight_commit(flight, src, soff, (size_t)r, dst, d->kind,
				      pipe_mark(d, done + (size_t)r));
	else
		nb_same_flight_cancel(flight);
	NB_COUNT(kernel_calls, res.calls);
	count_path(res.path, r);
	*unusable = r == NB_XFER_FALLBACK;
	*permanent = *unusable && res.why == NB_XFER_UNSUPPORTED;
	if (*unusable && res.why == NB_XFER_NO_BYTES && vanished(src, soff)) {
		/* Another process cut the file below the bytes this phantom
		 * stands for, and no lease told us first (NOBOUNCE_EXACT=auto
		 * on a file we may not lease; lease.c). The bytes are gone:
		 * filled, the memory would read as zeros, and sending those
		 * would be a byte stream no plain read could have produced.
		 * The write fails instead, as a sendfile(2) loop that meets
		 * the early end of its file stops: EIO, after whatever went
		 * out before (a short count). The phantom stays: a retry
		 * fails the same way, a new read over the buffer replaces it. */
		*unusable = false;
		errno = EIO;
		return -1;
	}
	return r;
}

/* A whole pipe phantom into a regular file: moved out of its pipe, no
 * tee; the file range it lands in becomes its backing (backing.c). */
struct move_ctx {
	int dst;
	struct nb_fd *d;
	const struct how *h;
	size_t done;
	struct nb_xfer_res res;
};

static ssize_t move_to_file(void *arg, int pipe_r, size_t len, off_t *off)
{
	struct move_ctx *c = arg;
	off_t doff = c->h->off + (off_t)c->done;
	bool at_pos = c->h->kind != NB_FWD_PWRITE;
	if (at_pos) {
		/* Where the bytes land. A concurrent writer on the same open
		 * file description could move the position in between; that
		 * program's writes interleave arbitrarily anyway. */
		doff = (off_t)syscall(SYS_lseek, c->dst, 0, SEEK_CUR);
		c->res.calls = 1;
		if (doff < 0)
			return NB_XFER_FALLBACK;
	}
	*off = doff;
	unsigned calls = c->res.calls;
	ssize_t r = nb_xfer_from_pipe(c->dst, NB_KIND_FILE, c->d->flags, pipe_r, len, 0,
				      at_pos ? NULL : &doff, &c->res);
	c->res.calls += calls;
	return r;
}

/* A piece of a pipe-backed phantom (socket or pipe source): its first
 * skip + n bytes are duplicated into a second pool pipe (tee, no copy),
 * the first skip thrown away, n moved from there - the phantom's own pipe
 * keeps every byte for a later touch or write. The whole phantom into a
 * regular file is moved instead (move_to_file). */
static ssize_t pipe_piece(int dst, struct nb_fd *d, int idx, const struct nb_phantom_view *v,
			  size_t skip, size_t n, const struct how *h, size_t done,
			  bool *unusable)
{
	if (d->kind == NB_KIND_FILE && skip == 0 && n == v->len && h->kind != NB_FWD_SEND &&
	    !(d->flags & (NB_FL_APPEND | NB_FL_NO_REOPEN))) {
		int b = nb_backing_get_reader(dst, d->dev, d->ino);
		if (b >= 0) {
			struct move_ctx c = { .dst = dst, .d = d, .h = h, .done = done };
			ssize_t r = nb_phantom_move_out(idx, v->start, b, move_to_file, &c);
			NB_COUNT(kernel_calls, c.res.calls);
			count_path(NB_PATH_SPLICE, r);
			if (r <= 0)
				nb_backing_put(b);
			if (r == (ssize_t)n)
				NB_COUNT(moved_to_file, 1);
			if (r != NB_XFER_FALLBACK) {
				*unusable = false;
				return r;
			}
		} else {
			d->flags |= NB_FL_NO_REOPEN; /* not readable by us: tee */
		}
	}
	struct nb_pipe t;
	*unusable = true;
	if (nb_pipe_get(&t) != 0)
		return NB_XFER_FALLBACK;
	ssize_t r = NB_XFER_FALLBACK;
	size_t holds = SIZE_MAX; /* what t still holds, when known */
	if (nb_phantom_tee(idx, v->start, skip, n, &t) == (ssize_t)(skip + n) &&
	    nb_pipe_skip(&t, skip)) {
		struct nb_xfer_res res;
		off_t doff = h->off + (off_t)done;
		r = nb_xfer_from_pipe(dst, (enum nb_kind)d->kind, d->flags, t.r, n,
				      h->kind == NB_FWD_SEND ? h->flags : 0,
				      h->kind == NB_FWD_PWRITE ? &doff : NULL, &res);
		NB_COUNT(kernel_calls, res.calls + 1);
		count_path(NB_PATH_SPLICE, r);
		*unusable = r == NB_XFER_FALLBACK;
		holds = r > 0 ? n - (size_t)r : n;
	}
	nb_pipe_put_holding(&t, holds);
	return r;
}

/* The kernel path for this destination, or NONE; xfer.c refuses what it
 * cannot serve exactly (O_APPEND, send flags, pwrite on a stream, ...). */
static enum nb_path path_to(int dst, struct nb_fd *d)
{
	enum nb_kind k = (enum nb_kind)d->kind;
	if (k == NB_KIND_FILE) {
		struct stat st;
		if (nb_sys_fstat(dst, &st) != 0 || st.st_dev != d->dev || st.st_ino != d->ino)
			return NB_PATH_NONE;
	}
	return nb_path_for(NB_KIND_FILE, k, d->flags, 0, nb_g.cfg.paths);
}

/* SIGPIPE discipline for pieces after the first. */
struct quiet {
	bool begun, on, was_pending;
	sigset_t old;
};

static void quiet_begin(struct quiet *q)
{
	if (q->begun)
		return;
	q->begun = true;
	/* Ignored, a SIGPIPE is discarded as it is raised: nothing to take
	 * back (sigview.c). */
	q->on = !nb_sigview_pipe_ignored();
	if (!q->on)
		return;
	sigset_t pipe, pend;
	sigemptyset(&pipe);
	sigaddset(&pipe, SIGPIPE);
	syscall(SYS_rt_sigprocmask, SIG_BLOCK, &pipe, &q->old, 8); /* not our hook */
	sigpending(&pend);
	q->was_pending = sigismember(&pend, SIGPIPE);
}

static void quiet_end(struct quiet *q)
{
	if (!q->on)
		return;
	int saved = errno;
	sigset_t pipe, pend;
	sigemptyset(&pipe);
	sigaddset(&pipe, SIGPIPE);
	sigpending(&pend);
	if (sigismember(&pend, SIGPIPE) && !q->was_pending) {
		struct timespec zero = { 0, 0 };
		sigtimedwait(&pipe, NULL, &zero);
	}
	syscall(SYS_rt_sigprocmask, SIG_SETMASK, &q->old, NULL, 8);
	errno = saved;
}

/* One program-level write in progress. */
struct fwd {
	int dst;
	struct nb_fd *d;
	enum nb_path path;
	struct how h;
	int saved;     /* errno at entry */
	size_t done;   /* bytes moved so far */
	ssize_t last;  /* result of the last piece */
	bool kernel;   /* some bytes went by a kernel path */
	bool maps;     /* file mappings are served in this call */
	int map_src;   /* the first served mapping's descriptor (report) */
	size_t map_moved; /* mapping bytes the kernel moved */
	struct quiet q;
};

/* The kernel path for this destination, or NONE (then the caller
 * materialises and makes the plain call). */
static enum nb_path prepare(struct fwd *f, int dst, int kind, int flags, off_t off)
{
	*f = (struct fwd){ .dst = dst, .h = { kind, flags, off }, .saved = errno };
	f->d = nb_fd_get(dst);
	f->path = NB_PATH_NONE;
	if (f->d != NULL && nb_fd_trylock(f->d)) {
		/* A number closed and opened again: not the old kind. */
		(void)nb_fd_current(dst, f->d);
		if (f->d->kind == NB_KIND_UNKNOWN)
			nb_fd_classify(dst, f->d);
		f->path = path_to(dst, f->d);
		nb_fd_unlock(f->d);
	}
	return f->path;
}

#define PAGE_SIZE_NB 4096

/* A piece [cur, cur+n) of a read-only file mapping, by the kernel from
 * its file (see the header); the plain call's result for the piece. */
static ssize_t mapped_piece(struct fwd *f, const struct nb_mapping_view *m, uintptr_t cur,
			    size_t n)
{
	off_t soff = m->off + (off_t)(cur - m->start);
	struct stat st;
	if (!nb_backing_intact(m->backing, &st)) {
		errno = f->saved;
		return plain_piece(f->dst, &f->h, (const void *)cur, n, f->done);
	}
	/* Past the file's end the pages are the last page's zeros, then
	 * nothing: the kernel takes the whole pages the file fills, and the
	 * plain call the rest from its page boundary on - as the plain call
	 * of the whole piece copies them (pipes and files page by page). */
	size_t k = n;
	if (soff + (off_t)n > st.st_size) {
		off_t whole = st.st_size & ~(off_t)(PAGE_SIZE_NB - 1);
		k = whole > soff ? (size_t)(whole - soff) : 0;
	}
	/* A writer of the file no hook sees (a writable shared mapping of it,
	 * a stdio stream on it: sameproc.c) could change pages the kernel
	 * hands on by reference after the call returned: plain. Into a pipe
	 * or socket what moves is recorded, as for phantoms (kernel_piece),
	 * so that the program's own later change of the file waits for the
	 * reader; no room to record it: plain. */
	int flight = -1;
	bool by_ref = f->d->kind == NB_KIND_PIPE || f->d->kind == NB_KIND_TCP ||
		      f->d->kind == NB_KIND_UNIX;
	if (k == 0 || nb_same_unseen(st.st_dev, st.st_ino) ||
	    (by_ref && (flight = nb_same_flight_reserve()) < 0)) {
		errno = f->saved;
		return plain_piece(f->dst, &f->h, (const void *)cur, n, f->done);
	}
	struct nb_xfer_res res;
	off_t doff = f->h.off + (off_t)f->done;
	ssize_t r = nb_xfer(f->dst, (enum nb_kind)f->d->kind, f->d->flags, m->backing, soff, k,
			    f->path, f->h.kind == NB_FWD_SEND ? f->h.flags : 0,
			    f->h.kind == NB_FWD_PWRITE ? &doff : NULL, &res);
	if (r > 0)
		nb_same_flight_commit(flight, m->backing, soff, (size_t)r, f->dst, f->d->kind,
				      pipe_mark(f->d, f->done + (size_t)r));
	else
		nb_same_flight_cancel(flight);
	NB_COUNT(kernel_calls, res.calls);
	count_path(res.path, r);
	if (r == NB_XFER_FALLBACK) {
		/* Refused, unsupported, or no byte of the file there any more:
		 * nothing moved, and the pages answer the plain call. */
		errno = f->saved;
		return plain_piece(f->dst, &f->h, (const void *)cur, n, f->done);
	}
	if (r <= 0)
		return r;
	f->kernel = true;
	f->map_moved += (size_t)r;
	if (f->map_src < 0)
		f->map_src = m->src;
	NB_COUNT(forwarded_bytes, (unsigned long long)r);
	NB_COUNT(mapped_bytes, (unsigned long long)r);
	if ((size_t)r < n && ((size_t)r == k || vanished(m->backing, soff + r))) {
		/* The file ends inside the mapping (known before, or it was cut
		 * meanwhile): the rest as the plain call meets it. Bytes moved
		 * already, so SIGPIPE is the count's. */
		quiet_begin(&f->q);
		ssize_t p = plain_piece(f->dst, &f->h, (const void *)(cur + (size_t)r),
					n - (size_t)r, f->done + (size_t)r);
		if (p > 0)
			r += p;
		errno = f->saved;
	}
	return r;
}

/* Moves [a, end) piece by piece; false once a piece came out short (the
 * call ends there, with f->done or the piece's error). */
static bool forward_region(struct fwd *f, uintptr_t a, uintptr_t end)
{
	size_t from = f->done; /* done counts the whole call; here, the region */
	while (a + (f->done - from) < end) {
		uintptr_t cur = a + (f->done - from);
		struct nb_phantom_view v = { .start = end, .end = end, .xstart = end, .xend = end };
		int idx = nb_phantom_next(cur, end);
		/* The looks at the entry (get, edges) take no hold of it
		 * (phantom.c read_begin): no critical section here. */
		if (idx >= 0 && !nb_phantom_get(idx, &v))
			continue; /* resolved meanwhile: look again */
		/* Pages replaced behind the hooks (a custom allocator's raw
		 * munmap + mmap) hold the program's bytes, not the backing's. */
		if (idx >= 0 && !nb_defer_phantom_still_ours(&v))
			continue;
		/* The kernel piece is the phantom's pages, widened over the
		 * edges around them while they still hold what the read put
		 * there (the file's bytes); a memory piece runs up to it.
		 * Either stops at the end of the region. */
		uintptr_t ks = v.start;
		if (idx >= 0 && cur < v.start && cur >= v.xstart &&
		    nb_phantom_edges_intact(idx, cur, v.start))
			ks = cur;
		bool phantom = idx >= 0 && ks <= cur;
		/* Not a phantom here: a file mapping, up to the next phantom?
		 * (Phantoms live in anonymous memory only: the two never
		 * overlap.) */
		struct nb_mapping_view m;
		if (!phantom && f->maps && nb_mapping_next(cur, ks < end ? ks : end, &m)) {
			if (m.start > cur) {
				ks = m.start; /* memory up to the mapping */
			} else {
				uintptr_t me = m.end < end ? m.end : end;
				if (me > ks)
					me = ks;
				size_t piece = me - cur;
				if (f->done > 0)
					quiet_begin(&f->q);
				f->last = mapped_piece(f, &m, cur, piece);
				nb_backing_put(m.backing);
				if (f->last > 0)
					f->done += (size_t)f->last;
				if (f->last <= 0 || (size_t)f->last < piece)
					return false;
				continue;
			}
			nb_backing_put(m.backing);
		}
		uintptr_t pe = v.end < end ? v.end : end;
		if (phantom && pe == v.end && v.xend > v.end) {
			uintptr_t te = v.xend < end ? v.xend : end;
			if (nb_phantom_edges_intact(idx, v.end, te))
				pe = te;
		}
		/* A pipe phantom's bytes may end inside its last page; the rest
		 * of that page is memory the read did not reach, guarded with
		 * it: the write of it goes out from memory, after a fill. */
		if (phantom && v.kind == NB_PH_PIPE) {
			uintptr_t vend = v.start + v.len;
			if (cur >= vend) {
				nb_phantom_materialize(idx);
				continue;
			}
			if (pe > vend)
				pe = vend;
		}
		size_t piece = (phantom ? pe : (ks < end ? ks : end)) - cur;
		if (f->done > 0)
			quiet_begin(&f->q); /* once, for every piece after the first */
		if (phantom) {
			bool unusable, permanent = false;
			if (v.kind == NB_PH_PIPE) {
				f->last = pipe_piece(f->dst, f->d, idx, &v, cur - v.start, piece,
						     &f->h, f->done, &unusable);
			} else if (!nb_backing_intact(v.src, NULL)) {
				/* Its descriptor was closed behind our back (and the
				 * number may name another file now): the kernel must
				 * not read it. Filled the other way, the piece goes
				 * out from memory on the next turn. */
				nb_phantom_materialize(idx);
				continue;
			} else {
				/* The backing stays referenced while the kernel reads
				 * it, even if another thread materialises the phantom.
				 * Into the file it came from too: the write hook has
				 * filled every phantom of the range it overwrites
				 * (nb_defer_before_write), so the two ranges are apart. */
				int slot = nb_backing_call_begin(v.src);
				if (slot < 0) {
					/* Its lease is being let go of: another
					 * process may change the file any moment.
					 * From memory, filled while it cannot. */
					nb_phantom_materialize(idx);
					continue;
				}
				/* The look at the entry was before the call was
				 * counted: a break may have filled it, let go of the
				 * lease and let the other process write in between
				 * (then the file is no longer the phantom's bytes,
				 * and v.src may even be another backing's number by
				 * now). Counted, a break that starts now waits for
				 * this call; one that ended already left the entry
				 * filled. So the entry must still stand for these
				 * bytes, else they go out from memory. */
				struct nb_phantom_view w;
				if (!nb_phantom_get(idx, &w) || w.start != v.start || w.end != v.end ||
				    w.kind != v.kind || w.src != v.src || w.off != v.off) {
					nb_backing_call_end(v.src, slot);
					continue;
				}
				f->last = kernel_piece(f->dst, f->d, f->path, v.src,
						       v.off + ((off_t)cur - (off_t)v.start), piece,
						       &f->h, f->done, &unusable, &permanent);
				nb_backing_call_end(v.src, slot);
			}
			if (unusable) {
				/* The kernel refused this piece before moving any of
				 * it: plain from now on for the source that made the
				 * phantom (a permanent refusal), and this piece goes
				 * out from memory - the next turn of the loop finds it
				 * materialised. */
				int ofd;
				unsigned ogen;
				if (permanent && nb_phantom_owner(idx, &ofd, &ogen)) {
					struct nb_fd *o = nb_fd_peek(ofd);
					if (o != NULL && atomic_load(&o->gen) == ogen)
						atomic_store(&o->no_zc, 1);
				}
				nb_phantom_materialize(idx);
				errno = f->saved;
				continue;
			}
			if (f->last > 0) {
				f->kernel = true;
				NB_COUNT(forwarded_bytes, (unsigned long long)f->last);
			}
			if (f->last == (ssize_t)piece) {
				size_t edge = (cur < v.start ? v.start - cur : 0) +
					      (pe > v.end ? pe - v.end : 0);
				if (edge > 0)
					NB_COUNT(edge_bytes, edge);
			}
		} else {
			f->last = plain_piece(f->dst, &f->h, (const void *)cur, piece, f->done);
		}
		if (f->last > 0)
			f->done += (size_t)f->last;
		if (f->last <= 0 || (size_t)f->last < piece)
			return false;
	}
	return true;
}

/* The call's result: the count once bytes moved, else the first piece's
 * -1 and errno (or 0). */
static ssize_t finish(struct fwd *f)
{
	quiet_end(&f->q);
	if (f->kernel)
		NB_COUNT(forwarded, 1);
	if (f->map_moved > 0) {
		NB_COUNT(mapped_writes, 1);
		nb_loops_mapped(f->map_src, f->dst, (enum nb_kind)f->d->kind, f->path,
				f->map_moved);
	}
	if (f->done > 0) {
		errno = f->saved;
		return (ssize_t)f->done;
	}
	return f->last;
}

/* Not forwarded after all: the kernel will read these ranges itself. */
static void expose_all(const struct iovec *v, int cnt)
{
	for (int i = 0; i < cnt; i++)
		nb_defer_expose(v[i].iov_base, v[i].iov_len);
}

/* One program-level write of the regions v[0..cnt), already copied in. */
static ssize_t forward_vec(int dst, const struct iovec *v, int cnt, int kind, int flags,
			   off_t off)
{
	/* writev(2): EINVAL when the lengths overflow ssize_t - plain. */
	size_t total = 0, mapped = 0;
	bool any = false;
	for (int i = 0; i < cnt; i++) {
		uintptr_t a = (uintptr_t)v[i].iov_base;
		if (v[i].iov_len > (size_t)SSIZE_MAX - total)
			return NB_NOT_FORWARDED;
		total += v[i].iov_len;
		if (v[i].iov_len > 0 && nb_phantom_any() && nb_phantom_next(a, a + v[i].iov_len) >= 0)
			any = true;
	}
	/* Mappings are looked up only for a call that could reach the
	 * smallest minimum (every direction's is at least min_chunk), in
	 * mode on or observe, never with NOBOUNCE_EXACT=strict (nothing
	 * holds a mapped file still against other processes). */
	if (nb_mapping_any() && total >= nb_g.cfg.min_chunk && nb_g.cfg.mode != NB_MODE_OFF &&
	    atomic_load_explicit(&nb_g.active, memory_order_relaxed) && !nb_lease_strict())
		for (int i = 0; i < cnt; i++) {
			uintptr_t a = (uintptr_t)v[i].iov_base;
			if (v[i].iov_len > 0)
				mapped += nb_mapping_bytes(a, a + v[i].iov_len);
		}
	if (!any && mapped == 0)
		return NB_NOT_FORWARDED;
	/* A child the library was not told of (the fork instruction itself)
	 * shares the pool and backings with its parent: from memory. */
	if (!nb_same_process()) {
		expose_all(v, cnt);
		return NB_NOT_FORWARDED;
	}
	struct fwd f;
	/* A pipe write of at most PIPE_BUF bytes is atomic (pipe(7)): one
	 * call, from memory. */
	/* send(2) and its kin work on sockets only: on a pipe or a file the
	 * plain call fails with ENOTSOCK (before it reads the buffer). */
	if (prepare(&f, dst, kind, flags, off) == NB_PATH_NONE ||
	    (f.d->kind == NB_KIND_PIPE && total <= PIPE_BUF) ||
	    (kind == NB_FWD_SEND && f.d->kind != NB_KIND_TCP && f.d->kind != NB_KIND_UNIX)) {
		if (any)
			expose_all(v, cnt);
		return NB_NOT_FORWARDED;
	}
	/* Mappings: served when their bytes reach the direction's minimum
	 * (a smaller kernel call loses to the copy), and only in mode on;
	 * observing, the loop is reported as one the kernel would serve. */
	f.map_src = -1;
	if (mapped > 0 &&
	    mapped >= nb_min_chunk_for(NB_KIND_FILE, (enum nb_kind)f.d->kind, &nb_g.cfg, NULL)) {
		if (nb_g.cfg.mode == NB_MODE_ON) {
			f.maps = true;
		} else if (!any) {
			struct nb_mapping_view m;
			for (int i = 0; i < cnt; i++) {
				uintptr_t a = (uintptr_t)v[i].iov_base;
				if (nb_mapping_next(a, a + v[i].iov_len, &m)) {
					nb_backing_put(m.backing);
					nb_loops_mapped(m.src, dst, (enum nb_kind)f.d->kind, f.path,
							mapped);
					break;
				}
			}
		}
	}
	if (!any && !f.maps)
		return NB_NOT_FORWARDED;
	/* Into a pipe, the bytes this call puts there are counted (pipe_mark
	 * above): a record of file pages in flight then knows when the
	 * reader has taken them, with the pipe not empty yet. */
	bool counted = f.d->kind == NB_KIND_PIPE;
	if (counted)
		atomic_fetch_add(&f.d->piping, 1);
	for (int i = 0; i < cnt; i++) {
		uintptr_t a = (uintptr_t)v[i].iov_base;
		if (v[i].iov_len > 0 && !forward_region(&f, a, a + v[i].iov_len))
			break;
	}
	ssize_t r = finish(&f);
	if (counted) {
		if (r > 0)
			atomic_fetch_add(&f.d->piped, (unsigned long long)r);
		atomic_fetch_sub(&f.d->piping, 1);
	}
	return r;
}

ssize_t nb_forward(int dst, const void *buf, size_t n, int kind, int flags, off_t off)
{
	if (NB_LIKELY(!nb_phantom_any()) && (NB_LIKELY(!nb_mapping_any()) || n < nb_g.cfg.min_chunk))
		return NB_NOT_FORWARDED;
	if (n == 0)
		return NB_NOT_FORWARDED;
	struct iovec one = { (void *)buf, n };
	return forward_vec(dst, &one, 1, kind, flags, off);
}

/* Up to this many iovecs are served (nginx gathers at most 64); more go
 * out from memory. */
#define NB_FWD_IOV_MAX 64

ssize_t nb_forward_iov(int dst, const struct iovec *iov, int cnt, int kind, int flags,
		       off_t off)
{
	if (NB_LIKELY(!nb_phantom_any()) && NB_LIKELY(!nb_mapping_any()))
		return NB_NOT_FORWARDED;
	struct iovec v[NB_FWD_IOV_MAX];
	if (cnt <= 0 || cnt > NB_FWD_IOV_MAX || !nb_copy_in(v, iov, sizeof v[0] * (size_t)cnt)) {
		if (nb_phantom_any())
			nb_defer_expose_iov(iov, cnt);
		return NB_NOT_FORWARDED; /* the plain call reports what is wrong */
	}
	return forward_vec(dst, v, cnt, kind, flags, off);
}
