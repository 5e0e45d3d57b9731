/*
 * sameproc.c - the program itself changing a file that phantoms stand for,
 * or whose pages are still on their way to a reader.
 *
 * Owns two tables:
 *
 * Unseen writers. Some ways of changing a file's bytes reach the kernel
 * through nothing a hook sees: a stdio stream flushes with glibc's
 * internal write, and a writable MAP_SHARED mapping is changed by plain
 * stores. While the program holds such a way into a file (a stream opened
 * for writing without O_APPEND, a shared mapping with PROT_WRITE or one
 * mprotect may make writable), reads of that file are not deferred (plain
 * is exact), and the phantoms it already backs are filled when the way is
 * made. Entries are keyed by the FILE or the mapping's start address and
 * go when the stream is closed or the whole mapping unmapped; a mapping
 * unmapped in part keeps its entry (plain a little longer is only speed).
 * stdout and stderr count once they have printed something (a stream
 * that first prints after the copy started is not seen: README).
 * A full table stops deferral of every file for good: a writer that was
 * not recorded could be anywhere, and nothing says when it is gone.
 *
 * Bytes in flight. sendfile and splice from a file into a pipe or socket
 * give the destination references to page-cache pages, not copies: until
 * the reader has consumed them, a change of the file changes what the
 * reader gets, where the plain write had copied the bytes. Each kernel
 * piece of a file into a pipe or stream socket is recorded as (file range,
 * destination); before a hooked change of a file range that a record
 * overlaps, the change waits until the destination no longer holds the
 * bytes:
 *  - a pipe: FIONREAD on it is 0 (pipe(7): the bytes not yet read);
 *  - a UNIX stream socket: SIOCOUTQ is 0 (unix(7): for stream sockets the
 *    memory of the sent data stays charged to the sender until the peer
 *    reads it);
 *  - TCP: the sender's unacknowledged bytes are 0 and, when the peer is a
 *    socket of this host (loopback: the same buffers travel to its receive
 *    queue), its unread bytes are 0 too - both asked of the kernel by the
 *    connection's addresses (NETLINK_SOCK_DIAG, sock_diag(7)), which also
 *    works after the program closed its socket.
 * The wait ends early only when the destination makes no progress for
 * NB_DRAIN_STALL_MS; then the record is given up with a warning (a reader
 * that does not read while the program rewrites what it sent: the one case
 * left, README Known limits). A file changed while a record of it was
 * waited on is not deferred any more (sources the program keeps
 * rewriting go the plain path). A pipe or UNIX socket the program closes
 * can no longer be asked: its close waits the same way first.
 * Must not: allocate or lock (close runs it; slots are claimed with
 * atomics), wait anywhere but before a change or a close.
 */
#include "internal.h"

#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef SOCK_DIAG_BY_FAMILY
#define SOCK_DIAG_BY_FAMILY 20
#endif

/* ------------------------------------------------------------------ */
/* Unseen writers                                                      */

#define NB_WRITERS 128
enum { W_FREE = 0, W_FILLING, W_VALID };

struct writer {
	atomic_int state;
	uintptr_t key;  /* FILE *, or the mapping's start */
	size_t len;     /* mapping length; 0 for a stream */
	dev_t dev;
	ino_t ino;
	atomic_int writable;
	bool map;
};

static struct writer writers[NB_WRITERS];
static atomic_int writers_live;
static atomic_int writers_overflow;

static void fill_file(dev_t dev, ino_t ino)
{
	/* A new way for the program to change the file unseen (a writable
	 * shared mapping, a stream): what earlier writes handed a pipe or
	 * socket by reference must reach its reader first. */
	nb_same_before_change(dev, ino, 0, INT64_MAX);
	int saved = errno;
	if (nb_phantom_any() && nb_backing_is_source(dev, ino))
		nb_phantom_materialize_file_range(dev, ino, 0, INT64_MAX);
	errno = saved;
}

static void add_writer(uintptr_t key, size_t len, dev_t dev, ino_t ino, bool map, bool writable)
{
	for (int i = 0; i < NB_WRITERS; i++) {
		struct writer *w = &writers[i];
		int expect = W_FREE;
		if (!atomic_compare_exchange_strong(&w->state, &expect, W_FILLING))
			continue;
		w->key = key;
		w->len = len;
		w->dev = dev;
		w->ino = ino;
		w->map = map;
		atomic_store(&w->writable, writable);
		atomic_fetch_add(&writers_live, 1);
		atomic_store(&w->state, W_VALID);
		if (writable)
			fill_file(dev, ino);
		return;
	}
	if (writable || map) {
		/* Untracked: nothing may be deferred while it lasts. Never
		 * cleared - a rare table overflow costs speed only. */
		atomic_store(&writers_overflow, 1);
		nb_phantom_any() ? nb_defer_expose_all() : (void)0;
	}
}

static void del_writer(struct writer *w)
{
	int expect = W_VALID;
	if (atomic_compare_exchange_strong(&w->state, &expect, W_FILLING)) {
		atomic_fetch_sub(&writers_live, 1);
		atomic_store(&w->state, W_FREE);
	}
}

/* Only regular files back phantoms. */
static bool regular(int fd, struct stat *st)
{
	return fd >= 0 && nb_sys_fstat(fd, st) == 0 && S_ISREG(st->st_mode);
}

void nb_same_stream_opened(FILE *f, int fd, bool writes)
{
	struct stat st;
	int fl;
	/* An O_APPEND stream only adds bytes after the end: none a phantom
	 * stands for (truncation goes through the hooks). */
	if (!writes || f == NULL || !regular(fd, &st) ||
	    ((fl = nb_sys_fcntl(fd, F_GETFL, 0)) >= 0 && (fl & O_APPEND)))
		return;
	int saved = errno;
	add_writer((uintptr_t)f, 0, st.st_dev, st.st_ino, false, true);
	errno = saved;
}

void nb_same_stream_closed(FILE *f)
{
	if (NB_LIKELY(atomic_load_explicit(&writers_live, memory_order_relaxed) == 0))
		return;
	for (int i = 0; i < NB_WRITERS; i++)
		if (atomic_load(&writers[i].state) == W_VALID && !writers[i].map &&
		    writers[i].key == (uintptr_t)f)
			del_writer(&writers[i]);
}

/* Descriptor 1 or 2 has just come to name a regular file (open, dup,
 * dup2, dup3, F_DUPFD after a close of 1 or 2): glibc's stdout and
 * stderr then write it with internal calls no hook sees. Its phantoms
 * are filled and what earlier writes handed a pipe or socket by
 * reference reaches its reader first, as for a stream opened on it.
 * (An O_APPEND description only adds bytes after the end.) */
void nb_same_stdio_target(int fd)
{
	struct stat st;
	int fl;
	if ((fd != 1 && fd != 2) || !regular(fd, &st) ||
	    (fl = nb_sys_fcntl(fd, F_GETFL, 0)) < 0 || (fl & O_ACCMODE) == O_RDONLY ||
	    (fl & O_APPEND))
		return;
	int saved = errno;
	fill_file(st.st_dev, st.st_ino);
	errno = saved;
}

void nb_same_mapped(void *addr, size_t len, int prot, int flags, int fd)
{
	struct stat st;
	if (addr == MAP_FAILED || (flags & MAP_TYPE) == MAP_PRIVATE || (flags & MAP_ANONYMOUS) ||
	    !regular(fd, &st))
		return;
	int saved = errno;
	/* A read-only descriptor's shared mapping can never be made
	 * writable (mprotect(2): EACCES): nothing to keep. */
	int fl = nb_sys_fcntl(fd, F_GETFL, 0);
	if (!(prot & PROT_WRITE) && fl >= 0 && (fl & O_ACCMODE) == O_RDONLY) {
		errno = saved;
		return;
	}
	add_writer((uintptr_t)addr, len, st.st_dev, st.st_ino, true, (prot & PROT_WRITE) != 0);
	errno = saved;
}

static bool overlaps(const struct writer *w, uintptr_t a, uintptr_t b)
{
	return w->map && w->key < b && w->key + w->len > a;
}

void nb_same_unmapped(uintptr_t a, uintptr_t b)
{
	if (NB_LIKELY(atomic_load_explicit(&writers_live, memory_order_relaxed) == 0))
		return;
	for (int i = 0; i < NB_WRITERS; i++) {
		struct writer *w = &writers[i];
		if (atomic_load(&w->state) == W_VALID && w->map && w->key >= a &&
		    w->key + w->len <= b)
			del_writer(w);
	}
}

void nb_same_protect(uintptr_t a, uintptr_t b, int prot)
{
	if (NB_LIKELY(atomic_load_explicit(&writers_live, memory_order_relaxed) == 0) ||
	    !(prot & PROT_WRITE))
		return;
	int saved = errno;
	for (int i = 0; i < NB_WRITERS; i++) {
		struct writer *w = &writers[i];
		if (atomic_load(&w->state) == W_VALID && overlaps(w, a, b) &&
		    !atomic_exchange(&w->writable, 1))
			fill_file(w->dev, w->ino);
	}
	errno = saved;
}

/* A shared mapping moved: it keeps its entry under the new address when
 * all of it moved. A part moved out of it (the rest stays, and may be
 * unmapped later), or a move that leaves the old range mapped
 * (MREMAP_DONTUNMAP), is a second way into the file: an entry of its own. */
void nb_same_remapped(uintptr_t old, size_t oldlen, void *naddr, size_t newlen, int flags)
{
	if (NB_LIKELY(atomic_load_explicit(&writers_live, memory_order_relaxed) == 0) ||
	    naddr == MAP_FAILED)
		return;
	uintptr_t b = old + (oldlen ? oldlen : 1);
	for (int i = 0; i < NB_WRITERS; i++) {
		struct writer *w = &writers[i];
		/* (An entry added below for naddr is not looked at again.) */
		if (atomic_load(&w->state) != W_VALID || !overlaps(w, old, b) ||
		    ((uintptr_t)naddr == w->key && w->key != old))
			continue;
		if (w->key == old && oldlen >= w->len && !(flags & MREMAP_DONTUNMAP)) {
			w->key = (uintptr_t)naddr;
			w->len = newlen;
		} else {
			int saved = errno;
			add_writer((uintptr_t)naddr, newlen, w->dev, w->ino, true,
				   atomic_load(&w->writable));
			errno = saved;
		}
	}
}

/* Rewritten sources: changed by the program while bytes of them were in
 * flight. Never deferred again. */
#define NB_REWRITTEN 64
static struct {
	atomic_int used;
	dev_t dev;
	ino_t ino;
} rewritten[NB_REWRITTEN];

static void mark_rewritten(dev_t dev, ino_t ino)
{
	for (int i = 0; i < NB_REWRITTEN; i++)
		if (atomic_load(&rewritten[i].used) == 2 && rewritten[i].dev == dev &&
		    rewritten[i].ino == ino)
			return;
	for (int i = 0; i < NB_REWRITTEN; i++) {
		int expect = 0;
		if (atomic_compare_exchange_strong(&rewritten[i].used, &expect, 1)) {
			rewritten[i].dev = dev;
			rewritten[i].ino = ino;
			atomic_store(&rewritten[i].used, 2);
			return;
		}
	}
	/* Full: it stays a waiting source; each change waits (bounded). */
}

/* fcntl(F_SETFL) took O_APPEND off a description of a regular file: its
 * descriptors (dups the descriptor table knows as appending) and any
 * stdio stream on it (never recorded: sameproc.c) now write at their
 * position, unseen. Its phantoms are filled and it is not deferred again. */
void nb_same_append_cleared(int fd)
{
	struct stat st;
	if (!regular(fd, &st))
		return;
	mark_rewritten(st.st_dev, st.st_ino);
	fill_file(st.st_dev, st.st_ino);
}

/* Does fd name the file (dev, ino), open for writing at its position
 * (not O_APPEND)? What a classification of its slot would answer, asked
 * of the kernel without the slot. */
static bool stream_names(int fd, dev_t dev, ino_t ino)
{
	struct stat st;
	int fl;
	return regular(fd, &st) && st.st_dev == dev && st.st_ino == ino &&
	       ((fl = nb_sys_fcntl(fd, F_GETFL, 0)) < 0 || !(fl & O_APPEND));
}

bool nb_same_unseen(dev_t dev, ino_t ino)
{
	if (atomic_load(&writers_overflow))
		return true;
	if (atomic_load_explicit(&writers_live, memory_order_acquire) != 0)
		for (int i = 0; i < NB_WRITERS; i++) {
			struct writer *w = &writers[i];
			if (atomic_load(&w->state) == W_VALID && atomic_load(&w->writable) &&
			    w->dev == dev && w->ino == ino)
				return true;
		}
	for (int i = 0; i < NB_REWRITTEN; i++)
		if (atomic_load(&rewritten[i].used) == 2 && rewritten[i].dev == dev &&
		    rewritten[i].ino == ino)
			return true;
	/* stdout and stderr are streams too, whatever they name, once they
	 * have been written to (glibc gives a stream its buffer on its first
	 * output: _IO_buf_base, public in struct_FILE.h). A program that
	 * writes its data to fd 1 itself (dd of=) and never prints stays
	 * deferred. Their classification is cached by the descriptor table. */
	for (int fd = 1; fd <= 2; fd++) {
		FILE *sf = fd == 1 ? stdout : stderr;
		if (sf == NULL || sf->_IO_buf_base == NULL)
			continue;
		struct nb_fd *e = nb_fd_get(fd);
		if (e == NULL)
			return true;
		if (e->kind == NB_KIND_UNKNOWN) {
			/* Its slot busy (another thread classifying it the
			 * same moment - every copying thread asks this at
			 * every read once the stream has printed): the
			 * number is asked directly. "Busy, so unseen" made
			 * such a thread's read plain, its phantom filled. */
			if (!nb_fd_trylock(e)) {
				if (stream_names(fd, dev, ino))
					return true;
				continue;
			}
			nb_fd_classify(fd, e);
			nb_fd_unlock(e);
		}
		if (nb_fd_kind(e) == NB_KIND_FILE && e->dev == dev && e->ino == ino &&
		    !(e->flags & NB_FL_APPEND))
			return true;
	}
	return false;
}

/* ------------------------------------------------------------------ */
/* Bytes in flight                                                     */

#define NB_FLIGHTS 128
#define NB_DRAIN_STALL_MS 5000
enum { F_FREE = 0, F_BUSY, F_VALID };

struct flight {
	atomic_int state;
	dev_t dev;      /* the file */
	ino_t ino;
	off_t lo, hi;   /* its bytes handed over, as one span */
	int dst;        /* the destination, while gen says it is still it */
	unsigned gen;
	long long mark; /* a pipe: its `piped` count at the end of the bytes,
			   -1 not known (nb_same_flight_commit) */
	int kind;       /* NB_KIND_PIPE, NB_KIND_UNIX, NB_KIND_TCP */
	int family;     /* TCP: the connection, both ends */
	unsigned char local[16], peer[16];
	uint16_t lport, pport; /* network order */
};

static struct flight flights[NB_FLIGHTS];
/* Records in flight; the write hooks' first look (internal.h), hence not
 * static. */
atomic_int nb_flights_live;

/* Under a seccomp filter the library makes no system call: nothing can
 * be asked or waited for any more (README Known limits). */
bool nb_same_inflight_any(void)
{
	return atomic_load_explicit(&nb_flights_live, memory_order_relaxed) != 0 && !nb_sandboxed();
}

static void sleep_ms(long ms)
{
	struct timespec t = { ms / 1000, (ms % 1000) * 1000000L };
	syscall(SYS_nanosleep, &t, NULL);
}

static long now_ms(void)
{
	struct timespec t;
	syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &t);
	return (long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* One socket's queues by its addresses (sock_diag(7), an exact lookup);
 * 1 found, 0 no such socket on this host, -1 cannot ask. */
static int diag_queues(int family, const unsigned char *src, uint16_t sport,
		       const unsigned char *dst, uint16_t dport, uint32_t *rq, uint32_t *wq)
{
	int s = (int)syscall(SYS_socket, AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (s < 0)
		return -1;
	struct {
		struct nlmsghdr nh;
		struct inet_diag_req_v2 r;
	} req;
	memset(&req, 0, sizeof req);
	req.nh.nlmsg_len = sizeof req;
	req.nh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	req.nh.nlmsg_flags = NLM_F_REQUEST;
	req.r.sdiag_family = (uint8_t)family;
	req.r.sdiag_protocol = IPPROTO_TCP;
	req.r.idiag_states = ~0u;
	req.r.id.idiag_sport = sport;
	req.r.id.idiag_dport = dport;
	memcpy(req.r.id.idiag_src, src, 16);
	memcpy(req.r.id.idiag_dst, dst, 16);
	req.r.id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
	req.r.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
	struct sockaddr_nl k = { .nl_family = AF_NETLINK };
	int ret = -1;
	if (syscall(SYS_sendto, s, &req, sizeof req, 0, &k, sizeof k) == (long)sizeof req) {
		long buf[512];
		long n = syscall(SYS_recvfrom, s, buf, sizeof buf, 0, NULL, NULL);
		struct nlmsghdr *h = (struct nlmsghdr *)buf;
		if (n >= (long)sizeof *h && NLMSG_OK(h, (unsigned long)n)) {
			if (h->nlmsg_type == NLMSG_ERROR) {
				struct nlmsgerr *e = NLMSG_DATA(h);
				ret = e->error == -ENOENT ? 0 : -1;
			} else if (h->nlmsg_type == SOCK_DIAG_BY_FAMILY &&
				   h->nlmsg_len >= NLMSG_LENGTH(sizeof(struct inet_diag_msg))) {
				struct inet_diag_msg *m = NLMSG_DATA(h);
				*rq = m->idiag_rqueue;
				*wq = m->idiag_wqueue;
				ret = 1;
			}
		}
	}
	nb_sys_close(s);
	return ret;
}

/* What of the record's bytes the destination may still hold: 0 when none
 * (drained), a count that should fall while the reader reads, or -1 when
 * the destination cannot be asked. */
static long held(struct flight *f)
{
	if (f->kind == NB_KIND_TCP) {
		uint32_t rq = 0, wq = 0, prq = 0, pwq = 0;
		int mine = diag_queues(f->family, f->local, f->lport, f->peer, f->pport, &rq, &wq);
		int peer = diag_queues(f->family, f->peer, f->pport, f->local, f->lport, &prq, &pwq);
		if (mine < 0 || peer < 0)
			return -1;
		return (long)(mine ? wq : 0) + (long)(peer ? prq : 0);
	}
	struct nb_fd *e = nb_fd_peek(f->dst);
	if (e == NULL || atomic_load(&e->gen) != f->gen)
		return -1;
	int q = 0;
	if (syscall(SYS_ioctl, f->dst, f->kind == NB_KIND_PIPE ? FIONREAD : SIOCOUTQ, &q) != 0)
		return -1;
	/* A pipe holds the last q bytes put into it (first in, first out).
	 * When at least q bytes were forwarded into it after the record's,
	 * none of the record's is among them: the reader has taken them,
	 * though a stream that never pauses leaves the pipe never empty.
	 * Bytes put there another way (a plain write, another process) are
	 * not counted: they can only make this wait longer, never shorter. */
	if (q > 0 && f->kind == NB_KIND_PIPE && f->mark >= 0 &&
	    (long long)(atomic_load(&e->piped) - (unsigned long long)f->mark) >= (long long)q)
		return 0;
	if (q > 0 && f->kind == NB_KIND_PIPE) {
		/* No reader left (pipe(7): POLLERR on the write end): the
		 * pages will never be read. */
		struct pollfd pf = { .fd = f->dst, .events = POLLOUT };
		if (syscall(SYS_poll, &pf, 1UL, 0) == 1 && (pf.revents & POLLERR))
			return 0;
	}
	return q;
}

static void release_flight(struct flight *f)
{
	atomic_fetch_sub(&nb_flights_live, 1);
	atomic_store(&f->state, F_FREE);
}

/* Claims a record for draining; false if another thread has it. */
static bool claim(struct flight *f)
{
	int expect = F_VALID;
	return atomic_compare_exchange_strong(&f->state, &expect, F_BUSY);
}

/* Waits until the claimed records' destinations hold none of them, or
 * none of them made progress for the stall limit - one limit for all of
 * them, not one each (a file sent to many stalled readers would wait
 * that many times); then frees the records. */
static void drain_set(int *set, int n)
{
	long last[NB_FLIGHTS];
	int left = n;
	for (int i = 0; i < n; i++)
		last[i] = -2;
	long since = now_ms(), ms = 1;
	for (;;) {
		bool progress = false;
		long kept = 0;
		for (int i = 0; i < n; i++) {
			if (set[i] < 0)
				continue;
			long q = held(&flights[set[i]]);
			if (q == 0) {
				release_flight(&flights[set[i]]);
				set[i] = -1;
				left--;
				progress = true;
			} else {
				if (q != last[i])
					progress = true;
				last[i] = q;
				kept += q > 0 ? q : 0;
			}
		}
		if (left == 0)
			return;
		if (progress) {
			since = now_ms();
		} else if (now_ms() - since > NB_DRAIN_STALL_MS) {
			nb_log(NB_LOG_WARN, "%d reader(s) kept %ld bytes of a file the program is "
			       "changing or a destination it is closing for %d ms: going on",
			       left, kept, NB_DRAIN_STALL_MS);
			for (int i = 0; i < n; i++)
				if (set[i] >= 0)
					release_flight(&flights[set[i]]);
			return;
		}
		sleep_ms(ms);
		if (ms < 16)
			ms *= 2;
	}
}

/* A full table is looked over again at most this often: each look asks
 * every record's destination (two netlink round trips for TCP). */
#define NB_FULL_RESCAN_MS 100
static atomic_long full_until;
/* Pipe records cost one ioctl each to look at: looked over on every full
 * table, unless the last look freed none of them (then as rarely as the
 * rest). A loop of many files into one pipe fills the table every 128
 * files; waiting for the rescan then sent their pages from memory. */
static atomic_long pipes_until;

int nb_same_flight_reserve(void)
{
	for (int pass = 0; pass < 2; pass++) {
		for (int i = 0; i < NB_FLIGHTS; i++) {
			int expect = F_FREE;
			if (atomic_compare_exchange_strong(&flights[i].state, &expect, F_BUSY))
				return i;
		}
		if (pass == 1)
			break;
		long t = now_ms();
		bool all = t >= atomic_load_explicit(&full_until, memory_order_relaxed);
		if (!all && t < atomic_load_explicit(&pipes_until, memory_order_relaxed))
			return -1;
		if (all)
			atomic_store_explicit(&full_until, t + NB_FULL_RESCAN_MS, memory_order_relaxed);
		/* Full: free the records whose destinations are drained. */
		int freed = 0;
		for (int i = 0; i < NB_FLIGHTS; i++) {
			struct flight *f = &flights[i];
			int expect = F_VALID;
			if ((!all && f->kind != NB_KIND_PIPE) ||
			    !atomic_compare_exchange_strong(&f->state, &expect, F_BUSY))
				continue;
			if (held(f) == 0) {
				atomic_fetch_sub(&nb_flights_live, 1);
				atomic_store(&f->state, F_FREE);
				freed++;
			} else {
				atomic_store(&f->state, F_VALID);
			}
		}
		if (freed == 0)
			atomic_store_explicit(&pipes_until, t + NB_FULL_RESCAN_MS,
					      memory_order_relaxed);
	}
	return -1; /* the caller does not use the kernel path */
}

/* An existing record of the same file and destination takes the span. */
static bool merge(const struct flight *n)
{
	for (int i = 0; i < NB_FLIGHTS; i++) {
		struct flight *f = &flights[i];
		int expect = F_VALID;
		if (atomic_load(&f->state) != F_VALID ||
		    !atomic_compare_exchange_strong(&f->state, &expect, F_BUSY))
			continue;
		bool same = f->dev == n->dev && f->ino == n->ino && f->dst == n->dst &&
			    f->gen == n->gen && f->kind == n->kind;
		if (same) {
			if (n->lo < f->lo)
				f->lo = n->lo;
			if (n->hi > f->hi)
				f->hi = n->hi;
			/* The new bytes came last: the span is out when they
			 * are (unknown: unknown). */
			f->mark = n->mark;
		}
		atomic_store(&f->state, F_VALID);
		if (same)
			return true;
	}
	return false;
}

void nb_same_flight_commit(int slot, int src, off_t off, size_t n, int dst, int kind,
			   long long mark)
{
	if (slot < 0)
		return;
	struct flight *f = &flights[slot];
	struct nb_fd *e = nb_fd_peek(dst);
	int saved = errno;
	if (n == 0 || !nb_backing_identity(src, &f->dev, &f->ino) || e == NULL) {
		atomic_store(&f->state, F_FREE);
		errno = saved;
		return;
	}
	f->lo = off;
	f->hi = off + (off_t)n;
	f->dst = dst;
	f->gen = atomic_load(&e->gen);
	f->kind = kind;
	f->mark = kind == NB_KIND_PIPE ? mark : -1;
	if (merge(f)) {
		atomic_store(&f->state, F_FREE);
		errno = saved;
		return;
	}
	if (kind == NB_KIND_TCP) {
		struct sockaddr_storage l, p;
		socklen_t ll = sizeof l, pl = sizeof p;
		memset(f->local, 0, 16);
		memset(f->peer, 0, 16);
		if (syscall(SYS_getsockname, dst, &l, &ll) == 0 &&
		    syscall(SYS_getpeername, dst, &p, &pl) == 0 && l.ss_family == p.ss_family) {
			f->family = l.ss_family;
			if (l.ss_family == AF_INET) {
				struct sockaddr_in *a = (void *)&l, *b = (void *)&p;
				memcpy(f->local, &a->sin_addr, 4);
				memcpy(f->peer, &b->sin_addr, 4);
				f->lport = a->sin_port;
				f->pport = b->sin_port;
			} else {
				struct sockaddr_in6 *a = (void *)&l, *b = (void *)&p;
				memcpy(f->local, &a->sin6_addr, 16);
				memcpy(f->peer, &b->sin6_addr, 16);
				f->lport = a->sin6_port;
				f->pport = b->sin6_port;
			}
		} else {
			f->family = AF_UNSPEC; /* cannot be asked: waits its bound */
		}
	}
	NB_SETTLE_RAISE(nb_flights_live);
	atomic_store(&f->state, F_VALID);
	errno = saved;
}

void nb_same_flight_cancel(int slot)
{
	if (slot >= 0)
		atomic_store(&flights[slot].state, F_FREE);
}

void nb_same_before_change(dev_t dev, ino_t ino, off_t lo, off_t hi)
{
	/* Under a seccomp filter the library makes no system call. */
	if (NB_LIKELY(!nb_same_inflight_any()) || nb_sandboxed())
		return;
	int saved = errno;
	int set[NB_FLIGHTS], n = 0;
	for (int i = 0; i < NB_FLIGHTS; i++) {
		struct flight *f = &flights[i];
		if (atomic_load(&f->state) == F_VALID && f->dev == dev && f->ino == ino &&
		    f->lo < hi && f->hi > lo && claim(f))
			set[n++] = i;
	}
	if (n > 0) {
		drain_set(set, n);
		mark_rewritten(dev, ino);
		/* "Drained" says the pipe or socket no longer holds the pages,
		 * not that they were copied: a deferred read of this process
		 * from a pipe or socket source splices the queued buffers -
		 * references to this file's pages, when our own forwarded
		 * write put them there - into a pool pipe (defer.c). Such a
		 * phantom would then send the changed bytes where the plain
		 * read had copied the old ones: pipe-backed phantoms are
		 * filled first (which of them hold this file's pages cannot
		 * be told). A reader in another process is out of reach
		 * (README Known limits). */
		if (nb_phantom_any())
			nb_phantom_materialize_pipes();
	}
	errno = saved;
}

void nb_same_before_close(int fd)
{
	if (NB_LIKELY(!nb_same_inflight_any()) || nb_sandboxed())
		return;
	struct nb_fd *e = nb_fd_peek(fd);
	if (e == NULL)
		return;
	int saved = errno;
	unsigned gen = atomic_load(&e->gen);
	for (int i = 0; i < NB_FLIGHTS; i++) {
		struct flight *f = &flights[i];
		if (atomic_load(&f->state) != F_VALID || f->dst != fd || f->gen != gen ||
		    !claim(f))
			continue;
		if (f->kind != NB_KIND_TCP) {
			/* A pipe or UNIX socket cannot be asked once closed, and
			 * waiting here for its reader stalls the commonest
			 * pipeline of all: write a child's stdin, close it,
			 * then read the child's output (the child cannot drain
			 * its stdin while its own output is not read). So the
			 * record goes: a later change of the file by the
			 * program no longer waits for that reader (README
			 * Known limits). */
			release_flight(f);
		} else if (held(f) == 0) {
			/* Still askable by its addresses after the close: kept
			 * only while the connection holds some of it. */
			release_flight(f);
		} else {
			atomic_store(&f->state, F_VALID);
		}
	}
	errno = saved;
}
