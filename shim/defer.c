/*
 * defer.c - the read of an armed pair that does not copy.
 *
 * Owns: deciding whether one read(2)/pread(2) from a regular file may be
 * deferred, and doing it: the byte count the real read would return, the
 * file position it would leave, the partial pages at the head and tail of
 * the buffer filled for real (they share pages with other data), and the
 * whole pages in between turned into a phantom (phantom.c) backed by the
 * file. Also the rule every other hook follows: memory the kernel is about
 * to read from or write into must not be a phantom (nb_defer_expose).
 * Must not: defer anything it does not fully understand - then the caller
 * makes the plain call, which is always correct.
 *
 * Refused: buffers on a thread's stack (a returning frame would leave
 * guarded pages under later calls, and a fault whose signal frame lands
 * there kills the process) - pthread's stack, and near the stack pointer
 * of a stack pthread does not know (coroutines), and the alternate
 * signal stack; MADV_WIPEONFORK/DONTFORK memory (a child lacks its
 * bytes); memory that is not private and anonymous
 * (shared or file-backed mappings: other processes or the file itself see
 * those pages), fewer than NB_MIN_PAGES whole pages, pseudo-files,
 * O_DIRECT, a source at EOF.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#define NB_MIN_PAGES 2
/* The read hooks skip nb_defer_read below NB_DEFER_MIN_BYTES (internal.h):
 * it must not exceed the smallest read deferred with 4 KiB pages. (read()'s
 * hot path skips more, up to NOBOUNCE_MIN_CHUNK: hook_io.c.) */
_Static_assert(NB_DEFER_MIN_BYTES <= NB_MIN_PAGES * 4096u, "hot-path read bound");
#define NB_GUARD_MAX (256u * 1024u) /* larger PROT_NONE: not a stack guard */

static long page_size;

/* ---- is this memory ours to guard? ---- */

struct range {
	uintptr_t lo, hi;
};

static __thread struct range stack_range __attribute__((tls_model("initial-exec")));
static __thread struct range ok_map __attribute__((tls_model("initial-exec")));
static __thread unsigned ok_map_gen __attribute__((tls_model("initial-exec")));
/* Bumped by every mmap/munmap/mremap the hooks see: a cached "this range
 * is private anonymous memory" is only good for the layout it was read in. */
static atomic_uint maps_gen;

NB_UNINSTRUMENTED void nb_defer_maps_changed(void)
{
	atomic_fetch_add_explicit(&maps_gen, 1, memory_order_relaxed);
}

static unsigned long hex_at(const char **p)
{
	unsigned long v = 0;
	for (;; (*p)++) {
		char c = **p;
		int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
		if (d < 0)
			return v;
		v = v * 16 + (unsigned long)d;
	}
}

/* The mapping of /proc/self/maps that holds a: raw calls, a stack
 * buffer, no libc state. */
static bool mapping_holding(uintptr_t a, struct range *out)
{
	int fd = (int)syscall(SYS_openat, AT_FDCWD, "/proc/self/maps", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	char buf[4096];
	size_t have = 0;
	bool found = false;
	for (;;) {
		ssize_t r = (ssize_t)syscall(SYS_read, fd, buf + have, sizeof buf - 1 - have);
		if (r <= 0)
			break;
		have += (size_t)r;
		buf[have] = '\0';
		char *line = buf, *nl;
		while (!found && (nl = strchr(line, '\n')) != NULL) {
			const char *p = line;
			unsigned long lo = hex_at(&p), hi = 0;
			if (*p == '-') {
				p++;
				hi = hex_at(&p);
			}
			if (a >= lo && a < hi) {
				out->lo = lo;
				out->hi = hi;
				found = true;
			}
			line = nl + 1;
		}
		if (found)
			break;
		size_t rest = have - (size_t)(line - buf);
		memmove(buf, line, rest);
		have = rest;
	}
	nb_sys_close(fd);
	return found;
}

/*
 * This thread's stack: the mapping that holds the stack pointer, read
 * once per thread from /proc/self/maps. Not pthread_getattr_np: it takes
 * the thread's lock (and, for the main thread, mallocs and fopens), and a
 * signal handler whose read is deferred while its thread is inside that
 * call would wait for its own thread - the process hangs. A thread on
 * its alternate signal stack right now (a handler) cannot see its stack
 * this way: for that call everything near the stack pointer is refused,
 * and nothing is cached.
 */
static struct range thread_stack(void)
{
	if (stack_range.hi != 0)
		return stack_range;
	uintptr_t sp = (uintptr_t)__builtin_frame_address(0);
	stack_t ss;
	bool on_alt = syscall(SYS_sigaltstack, NULL, &ss) == 0 && (ss.ss_flags & SS_ONSTACK);
	struct range r = { 0, 0 };
	if (!on_alt && mapping_holding(sp, &r)) {
		stack_range = r;
		return r;
	}
	r.lo = sp - (64u << 20); /* unknown: everything near the stack pointer */
	r.hi = sp + (64u << 20);
	return r;
}

/* Finds the mapping holding [a, b) in /proc/self/maps and tells whether
 * it is private, anonymous and writable. One read of the file into a
 * stack buffer per call; callers cache the answer per thread. */
/* A PROT_NONE mapping that is one of our phantoms (mprotect splits the
 * mapping, so our own guards show up as separate ---p lines). */
static bool ours(unsigned long lo)
{
	return nb_phantom_find(lo) >= 0;
}

static bool page_unreadable(uintptr_t page);

/*
 * Is the PROT_NONE mapping the scan saw at lo someone else's guard (a
 * thread stack's), not one of our phantoms? The scan is a moment old:
 * another thread's phantom there may have been opened since and left
 * the table (materialised; replaced by its loop's next read of another
 * size) - asked then, the table would not know the pages, and a buffer
 * right above another loop's buffer would be refused as if it sat on a
 * stack (a plain read, its own phantom filled) whenever the layout is
 * read again (any mmap, munmap or sigaltstack of any thread; ASan calls
 * sigaltstack at every thread's start and end). So the pages are asked
 * now (still unreadable?) and the table after them, and the look counts
 * only if no entry left the table meanwhile (nb_phantom_left): an entry
 * leaves only after its pages are open, so pages unreadable at the first
 * question and in no entry at the second, with nothing gone in between,
 * were never ours. Looks cut by a departure are made again; after
 * NB_GUARD_LOOKS of them the answer is the careful one (foreign).
 */
#define NB_GUARD_LOOKS 64

static bool foreign_guard(unsigned long lo)
{
	for (int i = 0; i < NB_GUARD_LOOKS; i++) {
		unsigned before = nb_phantom_left();
		if (!page_unreadable(lo))
			return false; /* open now: no guard of anyone's */
		if (ours(lo))
			return false;
		if (nb_phantom_left() == before)
			return true;
	}
	return true;
}

static bool is_anon_line(const char *line, unsigned long inode)
{
	return inode == 0 && strchr(line, '/') == NULL && strstr(line, "[stack") == NULL &&
	       strstr(line, "[vvar") == NULL && strstr(line, "[vdso") == NULL;
}

/* Does [a, b) lie in private anonymous memory? It may span several
 * mappings (our own guards split them): the one holding a must be
 * read-write, the ones after it contiguous, private and anonymous up to b.
 * One read of /proc/self/maps per call, with a stack buffer; callers cache
 * the answer per thread. */
static bool private_anon(uintptr_t a, uintptr_t b, struct range *out)
{
	int fd = (int)syscall(SYS_openat, AT_FDCWD, "/proc/self/maps", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	char buf[8192];
	size_t have = 0;
	bool ok = false, done = false, started = false;
	unsigned long prev_lo = 0, prev_hi = 0, reach = 0;
	bool prev_guard = false;
	while (!done) {
		ssize_t r = (ssize_t)syscall(SYS_read, fd, buf + have, sizeof buf - 1 - have);
		if (r <= 0)
			break;
		have += (size_t)r;
		buf[have] = '\0';
		char *line = buf, *nl;
		while (!done && (nl = strchr(line, '\n')) != NULL) {
			*nl = '\0';
			const char *cur = line;
			line = nl + 1;
			unsigned long lo, hi, off, inode;
			char perms[5], dev[16];
			if (sscanf(cur, "%lx-%lx %4s %lx %15s %lu", &lo, &hi, perms, &off, dev,
				   &inode) != 6)
				continue;
			bool anon = is_anon_line(cur, inode);
			if (!started && a >= lo && a < hi) {
				/* Thread stacks are anonymous too, but sit right
				 * above their PROT_NONE guard (glibc allocatestack;
				 * a page by default): a frame that returns over
				 * guarded pages would fault where no signal frame
				 * can be pushed. A large PROT_NONE region below, or
				 * one of our own guards, is something else. */
				bool thread_stack = prev_guard && prev_hi == lo &&
						    prev_hi - prev_lo <= NB_GUARD_MAX &&
						    foreign_guard(prev_lo);
				started = true;
				/* Its first pages may be one of our own guards
				 * already (a page-aligned buffer read into again
				 * after the layout changed). */
				ok = anon && !thread_stack &&
				     (strncmp(perms, "rw-p", 4) == 0 ||
				      (strncmp(perms, "---p", 4) == 0 && !foreign_guard(lo)));
				reach = hi;
				out->lo = lo;
				out->hi = hi;
				done = !ok || reach >= b;
			} else if (started) {
				bool part = lo == reach && anon && perms[3] == 'p' &&
					    (strncmp(perms, "rw-p", 4) == 0 ||
					     (strncmp(perms, "---p", 4) == 0 && !foreign_guard(lo)));
				if (!part) {
					ok = false;
					done = true;
				} else {
					reach = hi;
					out->hi = hi;
					done = reach >= b;
				}
			}
			prev_lo = lo;
			prev_hi = hi;
			prev_guard = strncmp(perms, "---p", 4) == 0;
		}
		size_t rest = have - (size_t)(line - buf);
		memmove(buf, line, rest);
		have = rest;
	}
	nb_sys_close(fd);
	if (!(ok && reach >= b))
		nb_log(NB_LOG_DEBUG, "not guardable: %#lx-%#lx", (unsigned long)a, (unsigned long)b);
	return ok && reach >= b;
}

/* MADV_WIPEONFORK / MADV_DONTFORK ranges (hook_mem.c): a child gets
 * zero pages there, or none, while a phantom would be inherited and
 * filled with the read's bytes. Never guarded. A small table; when it is
 * full, the last entry widens to cover the new range (more refused, never
 * less). */
#define NB_FORK_SPECIAL 32
static struct range fork_special[NB_FORK_SPECIAL];
static atomic_uint fork_special_n;
static atomic_flag fork_special_busy;

void nb_defer_fork_special(uintptr_t lo, uintptr_t hi, bool on)
{
	if (!on && atomic_load_explicit(&fork_special_n, memory_order_relaxed) == 0)
		return;
	while (atomic_flag_test_and_set_explicit(&fork_special_busy, memory_order_acquire))
		;
	unsigned n = atomic_load_explicit(&fork_special_n, memory_order_relaxed);
	if (on) {
		if (n < NB_FORK_SPECIAL) {
			fork_special[n] = (struct range){ lo, hi };
			atomic_store_explicit(&fork_special_n, n + 1, memory_order_release);
		} else {
			struct range *r = &fork_special[NB_FORK_SPECIAL - 1];
			r->lo = lo < r->lo ? lo : r->lo;
			r->hi = hi > r->hi ? hi : r->hi;
		}
	} else {
		/* Only ranges wholly inside are forgotten; a part stays. */
		unsigned k = 0;
		for (unsigned i = 0; i < n; i++)
			if (!(fork_special[i].lo >= lo && fork_special[i].hi <= hi))
				fork_special[k++] = fork_special[i];
		atomic_store_explicit(&fork_special_n, k, memory_order_release);
	}
	atomic_flag_clear_explicit(&fork_special_busy, memory_order_release);
	nb_defer_maps_changed();
}

static bool in_fork_special(uintptr_t a, uintptr_t b)
{
	if (NB_LIKELY(atomic_load_explicit(&fork_special_n, memory_order_acquire) == 0))
		return false;
	bool hit = false;
	while (atomic_flag_test_and_set_explicit(&fork_special_busy, memory_order_acquire))
		;
	unsigned n = atomic_load_explicit(&fork_special_n, memory_order_relaxed);
	for (unsigned i = 0; i < n && !hit; i++)
		hit = a < fork_special[i].hi && b > fork_special[i].lo;
	atomic_flag_clear_explicit(&fork_special_busy, memory_order_release);
	return hit;
}

/* Stacks pthread does not know: a ucontext coroutine or green thread on
 * a stack from malloc or mmap, a signal handler on its alternate stack.
 * A buffer in a frame lies above the stack pointer, anywhere up to the
 * top of that stack; memory just below it is where the next calls push.
 * Guarded pages there are where a later call, or the signal frame of the
 * very fault that would fill them, lands: the process dies. The stack's
 * bounds are unknown, so a span around the stack pointer is refused:
 * NB_SP_BELOW under it, NB_SP_ABOVE over it. */
#define NB_SP_BELOW (256u * 1024u)
#define NB_SP_ABOVE (8u * 1024u * 1024u)

static bool near_sp(uintptr_t a, uintptr_t b, uintptr_t sp)
{
	uintptr_t lo = sp > NB_SP_BELOW ? sp - NB_SP_BELOW : 0;
	uintptr_t hi = sp < UINTPTR_MAX - NB_SP_ABOVE ? sp + NB_SP_ABOVE : UINTPTR_MAX;
	return a < hi && b > lo;
}

/* This thread's alternate signal stack (sigaltstack(2)): the kernel
 * pushes signal frames there, whoever is running, from the top down, and
 * never past its bottom (a frame that does not fit is a SIGSEGV: x86
 * get_sigframe). So only the stack itself is refused: memory over its
 * top never holds a frame (a runtime's per-thread stack - ASan's, Rust's -
 * often lies right under the program's next mapping), and a handler
 * that overflows it into memory under it corrupts that memory plainly
 * too. Read on the slow path only: a new one bumps maps_gen (the
 * sigaltstack hook). */
static bool in_altstack(uintptr_t a, uintptr_t b)
{
	stack_t ss;
	if (syscall(SYS_sigaltstack, NULL, &ss) != 0 || (ss.ss_flags & SS_DISABLE) ||
	    ss.ss_size == 0)
		return false;
	uintptr_t lo = (uintptr_t)ss.ss_sp, hi = lo + ss.ss_size;
	return a < hi && b > lo;
}

static bool guardable(uintptr_t a, uintptr_t b)
{
	struct range st = thread_stack();
	if (a < st.hi && b > st.lo)
		return false;
	/* Not on the thread's own stack: some other stack is in use here. */
	uintptr_t sp = (uintptr_t)__builtin_frame_address(0);
	if ((sp < st.lo || sp >= st.hi) && near_sp(a, b, sp))
		return false;
	if (in_fork_special(a, b))
		return false;
	unsigned gen = atomic_load_explicit(&maps_gen, memory_order_relaxed);
	if (a >= ok_map.lo && b <= ok_map.hi && ok_map_gen == gen)
		return true;
	struct range r = { 0, 0 };
	if (in_altstack(a, b) || !private_anon(a, b, &r))
		return false;
	ok_map = r;
	ok_map_gen = gen;
	return true;
}

/* Are the pages of the phantom at lo still the PROT_NONE pages that were
 * guarded? A custom allocator's raw munmap + mmap at the same address
 * (jemalloc, mimalloc built with their own system call wrappers) leaves
 * fresh read-write memory the hooks never heard of. The question is asked
 * of the kernel's page walker, which honours protections without
 * faulting: get_mempolicy(MPOL_F_NODE | MPOL_F_ADDR) looks the page up
 * the way get_user_pages does (mm/mempolicy.c lookup_node) and fails
 * with EFAULT where the page is not readable - about 150 ns here, where
 * process_vm_readv (the same walk, behind a pid lookup and an access
 * check) costs about 240 and a fault taken in the kernel (a read(2) into
 * the pages) 800. Kernels without NUMA answer ENOSYS: process_vm_readv
 * then. /proc/self/maps would be tens of microseconds. (Unmapped answers
 * EFAULT too: a read into memory unmapped behind the hooks is deferred,
 * not refused, and a fresh PROT_NONE mapping there passes for the
 * phantom: README Known limits.) Otherwise the entry is forgotten without
 * filling (the memory is someone else's now), and the layout is read
 * again before anything is guarded there. */
static atomic_int no_mempolicy; /* get_mempolicy answered something else */

static bool page_unreadable(uintptr_t page)
{
	int saved = errno;
	long got = -1;
	if (NB_LIKELY(!atomic_load_explicit(&no_mempolicy, memory_order_relaxed))) {
		int node;
		got = syscall(SYS_get_mempolicy, &node, NULL, 0UL, page, 3UL /* F_NODE|F_ADDR */);
		if (got < 0 && errno != EFAULT)
			atomic_store(&no_mempolicy, 1);
		else
			got = got == 0 ? 1 : -1;
	}
	if (atomic_load_explicit(&no_mempolicy, memory_order_relaxed)) {
		char c;
		struct iovec l = { &c, 1 }, r = { (void *)page, 1 };
		/* Callers run in the process the library knows (nb_defer_read
		 * and forward_vec checked nb_same_process): its pid needs no
		 * call. */
		pid_t me = nb_g.pid != 0 ? nb_g.pid : getpid();
		got = syscall(SYS_process_vm_readv, me, &l, 1, &r, 1, 0);
	}
	errno = saved;
	/* Only a successful read says "replaced": a call refused outright
	 * (a seccomp filter: ENOSYS, EPERM) must not cost a live phantom. */
	return got != 1;
}

bool nb_defer_phantom_still_ours(const struct nb_phantom_view *v)
{
	if (page_unreadable(v->start))
		return true;
	nb_log(NB_LOG_DEBUG, "phantom %#lx-%#lx no longer guarded: forgotten",
	       (unsigned long)v->start, (unsigned long)v->end);
	nb_phantom_drop_range(v->start, v->end, false);
	nb_defer_maps_changed();
	return false;
}

/* ---- the deferred read ---- */

static ssize_t pread_all(int fd, uintptr_t dst, size_t n, off_t off)
{
	size_t done = 0;
	while (done < n) {
		ssize_t r = (ssize_t)syscall(SYS_pread64, fd, (void *)(dst + done), n - done,
					    off + (off_t)done);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? -1 : (ssize_t)done;
		done += (size_t)r;
	}
	return (ssize_t)done;
}

/* Moves a pipe's n bytes into memory (the read that is too small for a
 * phantom, or a phantom that could not be guarded): a plain copy. Returns
 * how many arrived (n, unless the memory refused them). */
static size_t pipe_to_memory(const struct nb_pipe *p, uintptr_t dst, size_t n)
{
	size_t done = 0;
	while (done < n) {
		ssize_t r = (ssize_t)syscall(SYS_read, p->r, (void *)(dst + done), n - done);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		done += (size_t)r;
	}
	return done;
}

/* ---- stream sources: read(2)'s contract, not only POSIX's ----
 *
 * A served stream read returns exactly what read(2) could at that moment:
 * everything queued, up to the count asked for. Event loops depend on
 * it: an EPOLLET reader (nginx ngx_unix_recv) takes n < size as "wait
 * for the next edge", haproxy (raw_sock_to_buf) takes a short read with
 * EPOLLRDHUP seen as the end of the stream. So the read does not stop at
 * the buffer's last whole page or at the pool pipe's capacity: the pages
 * the pipe holds become the phantom, and the rest of the buffer is filled
 * by a plain non-blocking read of the source (RWF_NOWAIT: per call, the
 * descriptor's own flags untouched).
 *
 * TCP urgent data: a splice from the socket stops at the urgent mark and
 * returns 0 there (tcp_read_sock), which is no end of stream. A 0 from the
 * splice is never trusted: the plain read is made instead (it skips the
 * urgent byte, or reads it with SO_OOBINLINE, or reports the real end).
 * A plain read that started before the mark stops at it, so the served
 * read stops there too (SIOCATMARK) and does not continue past it.
 *
 * Packet-mode pipes: a writer that sets O_DIRECT on its own end (pipe(7))
 * makes every write a packet; the flag sits on the pipe's buffers, and a
 * splice carries it into the pool pipe, whose reads would then throw
 * bytes away. Nothing on the reader's end tells, so every read from a
 * pipe source first looks at a tee(2) of what is queued: read(2) of that
 * copy (into a sink, bytes thrown away) stops after the first packet, and
 * with one byte left unread, the copy's remaining count tells whether its
 * last buffer is a packet too. Any packet in sight: the plain read, which
 * returns one packet as pipe_read does. Only the bytes examined are taken.
 */

/* Does fd still name the file the slot was classified as (st filled)? A
 * socket's or pipe's inode is its own, a file's its identity. */
static bool names_source(int fd, const struct nb_fd *e, struct stat *st)
{
	return nb_sys_fstat(fd, st) == 0 && st->st_dev == e->dev && st->st_ino == e->ino;
}

/* A pipe's next bytes without waiting where RWF_NOWAIT is refused (Linux
 * 6.18 answers preadv2 on a pipe with EOPNOTSUPP): a non-blocking splice
 * into a pool pipe - SPLICE_F_NONBLOCK holds for both pipes - then the
 * copy into memory. n is at most what stream_read looked at for packets
 * already (read_more's `looked`), so nothing taken here is a packet the splice would
 * carry whole where read(2) cuts it. The served read then returns as much
 * as the plain one would, not a page less (tests/integration/80-*,
 * pipe-short; 81-*). */
static ssize_t pipe_more(int fd, uintptr_t dst, size_t n)
{
	struct nb_pipe t;
	if (n == 0 || nb_pipe_get(&t) != 0)
		return -1;
	if (n > t.cap)
		n = t.cap;
	ssize_t k;
	do
		k = (ssize_t)syscall(SYS_splice, fd, NULL, t.w, NULL, n, SPLICE_F_NONBLOCK);
	while (k < 0 && errno == EINTR);
	if (k <= 0) {
		nb_pipe_put_holding(&t, 0);
		return -1;
	}
	size_t got = pipe_to_memory(&t, dst, (size_t)k);
	nb_pipe_put(&t);
	return (ssize_t)got;
}

/* Bytes [dst, dst+n) from the source without waiting: what is queued now
 * (RWF_NOWAIT makes the one call non-blocking: sock_read_iter turns it
 * into MSG_DONTWAIT, pipe_read into -EAGAIN). A TCP source stops at the
 * urgent mark, as a plain read that began before it does. A pipe's next
 * `looked` bytes are known to hold no packet (stream_read). Never fails:
 * an error or the end is the next read's to report. */
static size_t read_more(int fd, const struct nb_fd *e, uintptr_t dst, size_t n, size_t looked)
{
	size_t got = 0;
	int saved = errno;
	int kind = e->kind;
	/* The splice held the source; this read names it by number again.
	 * Another thread's dup2 over the number since (or a fault thread's,
	 * while the head was copied) would give the rest from another
	 * descriptor, where the plain read's bytes all come from one: then
	 * the count stops here, short, as a stream read may. (A replacement
	 * between this look and the call is not covered: README Known
	 * limits.) */
	struct stat st;
	if (!names_source(fd, e, &st))
		return 0;
	while (got < n) {
		if (kind == NB_KIND_TCP) {
			int at = 0;
			if (ioctl(fd, SIOCATMARK, &at) != 0 || at)
				break;
		}
		struct iovec v = { (void *)(dst + got), n - got };
		ssize_t r = (ssize_t)syscall(SYS_preadv2, fd, &v, 1, -1L, 0L, RWF_NOWAIT);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EOPNOTSUPP && kind == NB_KIND_PIPE)
			r = pipe_more(fd, dst + got, n - got < looked ? n - got : looked);
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	errno = saved;
	return got;
}

/* Is more queued at the source right now, short of the urgent mark? */
static bool more_queued(int fd, int kind)
{
	int q = 0, at = 0;
	int saved = errno;
	bool more = ioctl(fd, FIONREAD, &q) == 0 && q > 0 &&
		    !(kind == NB_KIND_TCP && (ioctl(fd, SIOCATMARK, &at) != 0 || at));
	errno = saved;
	return more;
}

/* The sink the packet probe reads into: the bytes are never looked at. */
#define NB_SINK (64u * 1024u)
#define NB_SINK_IOV 64u
static char probe_sink[NB_SINK];

/* How many bytes at the front of pipe source fd (at most want) hold no
 * packet: 2..want, or NB_NOT_DEFERRED (packets, the end, an empty pipe,
 * too little to tell), or -3 (the pool pipe could not be emptied). The
 * copy goes into the caller's empty pool pipe t, which is empty again
 * after; nothing of the source is consumed. */
static ssize_t pipe_plain_front(int fd, const struct nb_pipe *t, size_t want)
{
	if (want > NB_SINK * NB_SINK_IOV)
		want = NB_SINK * NB_SINK_IOV;
	/* An empty pipe: the plain read, which waits - or fails with EAGAIN
	 * - holding the pipe itself from start to end. A wait of ours (it
	 * was a ppoll here, then one through a duplicate) met the program's
	 * dup2 over the number, a fork child holding the duplicate as a
	 * reader, the duplicate let go of on EMFILE, and handlers without
	 * SA_RESTART installed meanwhile (tests/integration/80-*, 82-*): a
	 * loop waiting on a slow writer loses the deferral of the reads that
	 * wait, never their result. */
	long k;
	do
		k = syscall(SYS_tee, fd, t->w, want, SPLICE_F_NONBLOCK);
	while (k < 0 && errno == EINTR);
	if (k <= 1) { /* the end, an error, empty, or too little to tell */
		if (k > 0 && !nb_pipe_skip(t, (size_t)k))
			return -3; /* the pipe could not be emptied */
		return NB_NOT_DEFERRED;
	}
	struct iovec v[NB_SINK_IOV];
	size_t left = (size_t)k - 1, cnt = 0;
	while (left > 0) {
		v[cnt].iov_base = probe_sink;
		v[cnt].iov_len = left < NB_SINK ? left : NB_SINK;
		left -= v[cnt].iov_len;
		cnt++;
	}
	ssize_t r;
	do
		r = (ssize_t)syscall(SYS_readv, t->r, v, (int)cnt);
	while (r < 0 && errno == EINTR);
	int q = -1;
	if (ioctl(t->r, FIONREAD, &q) != 0)
		q = -1;
	if (!nb_pipe_drain(t))
		return -3;
	/* No packet: all but one byte read, and that one still there. */
	return r == k - 1 && q == 1 ? (ssize_t)k : NB_NOT_DEFERRED;
}

/*
 * read(2) of an armed stream source: a TCP or UNIX stream socket, or a
 * pipe. The bytes go from the source into a pool pipe (splice, no copy)
 * and the buffer's whole pages become a phantom backed by that pipe. One
 * splice moves the read into the pipe and waits for the first byte as
 * read does: tcp_splice_read and unix_stream_splice_read wait like recv
 * (timeouts, -ERESTARTSYS on a signal) and return what is queued, a pipe
 * source has bytes already (pipe_plain_front: an empty one is read
 * plainly); the pool pipe's
 * write end is blocking for that reason (pipepool.c), and being empty it
 * never makes the call wait itself. The partial first page (shared with
 * other data) is then read out of the pipe's front into memory. When the
 * pipe took all it was asked for, the rest of the buffer is filled with a
 * plain non-blocking read; when it took less (it ran out of slots) while
 * the source has more queued, its partial last page would lie under that
 * rest - a pipe gives its bytes from the front only - so this one read
 * is copied instead, all of it. An error after bytes arrived is left
 * for the next read, as read(2) leaves it; bytes taken from the source
 * are never followed by an error. Returns the count, -1 with the plain
 * read's errno, or NB_NOT_DEFERRED before anything was consumed.
 */
static ssize_t stream_read(int fd, struct nb_fd *e, uintptr_t a, size_t n)
{
	uintptr_t pg = (uintptr_t)page_size;
	uintptr_t lo = (a + pg - 1) & ~(pg - 1), hi = (a + n) & ~(pg - 1);
	if (hi <= lo || (hi - lo) / pg < NB_MIN_PAGES || !guardable(a, a + n))
		return NB_NOT_DEFERRED;
	int kind = e->kind;
	struct nb_pipe p;
	if (nb_pipe_get(&p) != 0)
		return NB_NOT_DEFERRED;
	/* The phantom's pages: those the pool pipe can hold. */
	uintptr_t end = hi;
	if (end - a > p.cap)
		end = (a + p.cap) & ~(pg - 1);
	if (end <= lo || (end - lo) / pg < NB_MIN_PAGES) {
		nb_pipe_put_holding(&p, 0);
		return NB_NOT_DEFERRED;
	}
	size_t h = lo - a, want = end - a, queued = 0, examined = 0;
	if (kind == NB_KIND_PIPE) {
		/* Only bytes looked at for packets are taken: want shrinks.
		 * The whole read is looked at, its rest past the pages too
		 * (what pipe_more may take then): a packet anywhere in it
		 * makes the plain read, which cuts it as pipe_read does. */
		ssize_t f = pipe_plain_front(fd, &p, n < p.cap ? n : p.cap);
		if (f < 0) {
			int err = errno;
			if (f == -3) { /* not known to be empty: never reused */
				nb_pipe_put(&p);
				return NB_NOT_DEFERRED;
			}
			nb_pipe_put_holding(&p, 0);
			errno = err;
			return f;
		}
		examined = (size_t)f;
		queued = examined < want ? examined : want;
		want = queued;
	}
	/* A pipe source holds less than the pages (the examined count): the
	 * pool pipe takes whole pages of it and the rest is read plain after
	 * them, so that the pool pipe's bytes end on a page boundary (a pipe
	 * gives its bytes from the front only: a partial last page would be
	 * out of reach). A socket's splice takes what is queued, and more
	 * is rarely there after it: its pages stay the buffer's (the steady
	 * state keeps reusing one phantom). */
	if (queued > 0 && queued < end - a) {
		uintptr_t e2 = (a + queued) & ~(pg - 1);
		if (e2 > lo && (e2 - lo) / pg >= NB_MIN_PAGES) {
			end = e2;
			want = end - a;
		}
	}
	int same = nb_phantom_find(lo);
	struct nb_phantom_view v;
	bool reuse = same >= 0 && nb_phantom_get(same, &v) && v.start == lo && v.end == end;
	if (reuse && !nb_defer_phantom_still_ours(&v)) {
		reuse = false;
		if (!guardable(a, a + n)) {
			nb_pipe_put_holding(&p, 0);
			return NB_NOT_DEFERRED;
		}
	}
	/* Whatever else lies under the buffer is overwritten by this read:
	 * the head and the rest must be ordinary memory before the pipe and
	 * the plain read write there (a ring reader's earlier phantom). */
	if (!reuse) {
		nb_phantom_overwrite_range(a, a + n);
	} else {
		nb_phantom_overwrite_range(a, lo);
		nb_phantom_overwrite_range(end, a + n);
	}
	/* A pipe source's bytes were looked at already: never wait here. */
	ssize_t m = (ssize_t)syscall(SYS_splice, fd, NULL, p.w, NULL, want,
				     kind == NB_KIND_PIPE ? SPLICE_F_NONBLOCK : 0);
	if (m == 0 || (m < 0 && (errno == EINVAL || (kind == NB_KIND_PIPE && errno == EAGAIN)))) {
		/* 0: the end, or a TCP urgent mark; the plain read tells. */
		nb_pipe_put_holding(&p, 0);
		return NB_NOT_DEFERRED;
	}
	if (m < 0) {
		int err = errno;
		nb_pipe_put_holding(&p, 0);
		errno = err;
		return -1; /* the plain read's errno, nothing consumed */
	}
	/* Counted in flight from here, as a file read is from its section
	 * (sigguard.c "File reads in flight"): what follows copies into the
	 * program's memory and makes a phantom, which a userfaultfd call
	 * must not meet half done. The splice before it may wait for the
	 * program itself (its own write into the pipe), so it is not
	 * counted. Deferral stopped meanwhile (a userfaultfd, a mask):
	 * every byte taken goes into memory, the plain copy - whose faults
	 * on a registered page the program's fault thread serves as for the
	 * plain read. */
	bool counted = nb_sigguard_read_begin();
	ssize_t ret;
	/* Does the read go on past what the pipe took? Up to the phantom's
	 * last page it did take everything asked; short of it, only if the
	 * source has more queued (the pipe ran out of slots: its partial
	 * last page would sit under the rest of the read, so then all of it
	 * goes into memory, a copy, and the read goes on from there). */
	uintptr_t stop = a + (size_t)m; /* the pipe's bytes end here */
	/* Of a pipe's bytes looked at for packets, those past the splice. */
	size_t looked = examined > (size_t)m ? examined - (size_t)m : 0;
	bool cont = stop == end ? end < a + n : more_queued(fd, kind);
	if ((cont && stop != end) || (size_t)m <= h + NB_MIN_PAGES * pg || !counted) {
		/* Too little for a phantom, or more to come: all of it into
		 * memory (the old phantom's pages opened first). */
		if (reuse)
			nb_phantom_overwrite_range(lo, end);
		size_t got = pipe_to_memory(&p, a, (size_t)m);
		nb_pipe_put(&p);
		if (got < (size_t)m) { /* not reached: ordinary memory */
			ret = got > 0 ? (ssize_t)got : (errno = EFAULT, -1);
			goto done;
		}
		if (cont)
			got += read_more(fd, e, stop, a + n - stop, looked);
		ret = (ssize_t)got;
		goto done;
	}
	if (h > 0 && pipe_to_memory(&p, a, h) < h) {
		nb_pipe_put(&p);
		errno = EFAULT;
		ret = -1; /* not reached: the head is ordinary memory */
		goto done;
	}
	uintptr_t pend = end; /* the phantom's pages */
	size_t k = (size_t)m - h;
	/* The rest of the buffer, past the pages the pipe filled: ordinary
	 * memory (overwritten above). */
	size_t tail = cont ? read_more(fd, e, end, a + n - end, looked) : 0;
	size_t count = (size_t)m + tail;
	if (reuse && v.len > k) {
		/* The old phantom's bytes past this read are still the
		 * program's: they must be in memory before the pages change
		 * hands. */
		nb_phantom_overwrite_range(lo, end);
		reuse = false;
	}
	int idx = same;
	nb_crit_enter(); /* rebind and owner: one section (see nb_defer_read) */
	if (reuse) {
		if (nb_phantom_rebind_pipe(same, lo, pend, &p, k) != 0) {
			nb_phantom_overwrite_range(lo, pend); /* it vanished: plain copy */
			nb_crit_leave();
			size_t got = pipe_to_memory(&p, lo, k);
			nb_pipe_put(&p);
			ret = got == k ? (ssize_t)count : (ssize_t)(h + got);
			goto done;
		}
	} else {
		idx = nb_phantom_add_pipe(lo, pend, &p, k);
		if (idx < 0) { /* the pages stay open: the bytes go there */
			nb_crit_leave();
			size_t got = pipe_to_memory(&p, lo, k);
			nb_pipe_put(&p);
			ret = got == k ? (ssize_t)count : (ssize_t)(h + got);
			goto done;
		}
	}
	nb_phantom_set_owner(idx, fd, atomic_load(&e->gen));
	nb_crit_leave();
	if (!nb_sigguard_recheck()) {
		/* A mask that blocks SIGSEGV appeared meanwhile: its setter may
		 * have filled every phantom before this one was published. */
		nb_phantom_overwrite_range(lo, pend);
		ret = (ssize_t)count;
		goto done;
	}
	NB_COUNT(deferred, 1);
	ret = (ssize_t)count;
done:
	if (counted) {
		int err = errno;
		nb_sigguard_read_end();
		errno = err;
	}
	return ret;
}

/* The count a read of n bytes at pos returns, from the file's size; false
 * at or past end of file, or if the descriptor is no longer the file the
 * pair was armed on. */
static bool size_read(int fd, const struct nb_fd *e, off_t pos, size_t *k, bool *sized)
{
	struct stat st;
	if (!names_source(fd, e, &st) || pos >= st.st_size)
		return false;
	if ((size_t)(st.st_size - pos) < *k)
		*k = (size_t)(st.st_size - pos);
	*sized = true;
	return true;
}

ssize_t nb_defer_read(int fd, void *buf, size_t n, off_t poff, bool positional)
{
	if (page_size == 0)
		page_size = sysconf(_SC_PAGESIZE);
	uintptr_t pg = (uintptr_t)page_size;
	uintptr_t a = (uintptr_t)buf;
	if (n < NB_MIN_PAGES * pg)
		return NB_NOT_DEFERRED;

	struct nb_fd *e = nb_fd_peek(fd);
	if (e == NULL || e->pair.state != NB_PAIR_ARMED ||
	    (e->kind != NB_KIND_FILE && !(nb_is_stream_source(e->kind) && !positional)) ||
	    (e->flags & (NB_FL_PSEUDO | NB_FL_DIRECT)) || atomic_load(&e->no_zc) ||
	    !nb_fault_owns(SIGSEGV) || nb_live_poll())
		return NB_NOT_DEFERRED;
	/* Only where a touch of the pages is sure to reach the trampoline
	 * (sigguard.c), and never in a child the library was not told of:
	 * there the pool, the backings and the memory descriptor are the
	 * parent's. */
	if (!nb_sigguard_allows() || !nb_same_process())
		return NB_NOT_DEFERRED;
	if (!nb_fd_trylock(e))
		return NB_NOT_DEFERRED;
	/* The looks above were at a slot nobody may have caught up since
	 * the number was closed and opened again (nb_fd_peek): the first
	 * read of a new file would be deferred on the old file's pair, and
	 * its identity (dev, ino) would pick the old file's backing - the
	 * phantom, and the edges sent from it, would hold the OLD file's
	 * bytes at the new file's offsets. A slot of an earlier generation
	 * is reset here and the read is plain; so is a pair another thread
	 * disarmed since. */
	if (!nb_fd_current(fd, e) || e->pair.state != NB_PAIR_ARMED) {
		nb_fd_unlock(e);
		return NB_NOT_DEFERRED;
	}
	ssize_t ret = NB_NOT_DEFERRED;
	int saved = errno;
	bool moved = false; /* the file position was moved ahead by n */
	bool crit = false;  /* inside nb_crit_enter */
	bool held = false;  /* the number is held (nb_fd_read_hold) */
	bool counted = false; /* counted in flight (nb_sigguard_read_begin) */
	off_t pos = -1;

	/* Phantoms of this source were touched since the last read: each is
	 * a copy plus protection changes, worse than the plain loop. Count
	 * them as misses; enough of them disarm the pair (pair.c). */
	unsigned t = atomic_load(&e->touches);
	if (t != e->touches_seen) {
		e->touches_seen = t;
		NB_COUNT(misses[NB_MISS_MODIFIED], 1);
		if (nb_pair_miss(&e->pair, NB_MISS_MODIFIED) == NB_EV_DISARMED)
			NB_COUNT(disarms, 1);
		if (e->pair.state != NB_PAIR_ARMED)
			goto out;
	}

	if (e->kind != NB_KIND_FILE) {
		ret = stream_read(fd, e, a, n);
		goto out_keep;
	}
	/* Checked for the whole buffer before the position moves: the part
	 * past end of file is refused with the rest (a plain read then). */
	if (!guardable(a, a + n)) {
		nb_log(NB_LOG_DEBUG, "read of %zu bytes from fd %d at %p not deferred: memory "
		       "not private anonymous heap", n, fd, buf);
		goto out;
	}
	/* The lease thread, once, before the section (it maps memory). */
	nb_lease_prepare();
	/* One critical section for everything this read does with the
	 * descriptor number and the entries it takes (find, get, rebind,
	 * owner, edges): two signal-mask calls per read instead of two per
	 * entry (sigguard.c). Nothing in it waits: regular files. No handler
	 * of this thread's can run inside it - so none can close or replace
	 * the number under the read (below). */
	nb_crit_enter();
	crit = true;
	/* Counted before anything touches the program's memory, and the
	 * flag looked at after: a userfaultfd call made since the look above
	 * (another thread's, or a handler's before the section) waits for
	 * this read or makes it plain (sigguard.c "File reads in flight"). */
	if (!nb_sigguard_read_begin())
		goto out;
	counted = true;
	/* From here on the number must name the file it named when the slot
	 * was looked at: the position moves and the edges are read through
	 * it. Another thread's close, dup2 or dup3 of it waits until this
	 * read is over, or - begun before - makes the read plain (fdtab.c
	 * "A deferred read holds its number"). */
	if (!nb_fd_read_hold(e))
		goto out;
	held = true;
	/* Position and size: one lseek that already moves the position past
	 * a full read (the usual case), one fstat; short reads at end of
	 * file set it again. Every way out below puts it back. The calls
	 * are the system's, not whatever `lseek` the program exports. */
	pos = poff;
	if (!positional) {
		off_t after = nb_sys_lseek(fd, (off_t)n, SEEK_CUR);
		if (after < 0)
			goto out;
		pos = after - (off_t)n;
		moved = true;
	}
	if (pos < 0)
		goto out;
	/* The size decides the count. A buffer that ends inside a page has a
	 * tail to read for real anyway: when that read is full, the file
	 * holds all n bytes and no fstat is needed. Otherwise fstat. */
	size_t k = n;
	bool sized = false;
	if (((a + n) & (pg - 1)) == 0 && !size_read(fd, e, pos, &k, &sized))
		goto out;
	uintptr_t lo, hi;
	int dup;
again:
	lo = (a + pg - 1) & ~(pg - 1);
	hi = (a + k) & ~(pg - 1);
	if (hi <= lo || (hi - lo) / pg < NB_MIN_PAGES)
		goto out;

	/* Whatever phantom this read overlaps is being overwritten: the part
	 * outside the new range must keep its bytes. */
	int same = nb_phantom_find(lo);
	struct nb_phantom_view v;
	bool reuse = same >= 0 && nb_phantom_get(same, &v) && v.start == lo && v.end == hi;
	if (reuse && !nb_defer_phantom_still_ours(&v)) {
		reuse = false;
		if (!guardable(a, a + n))
			goto out;
	}
	if (!reuse)
		nb_phantom_overwrite_range(a, a + k);

	/* Head and tail share pages with other data: read them for real.
	 * A short tail (end of file) writes only bytes the plain read would
	 * write too; then the size is read and the pages computed again. */
	if (a + k > hi) {
		ssize_t got = pread_all(fd, hi, a + k - hi, pos + (off_t)(hi - a));
		if (got != (ssize_t)(a + k - hi)) {
			if (got < 0 || sized || !size_read(fd, e, pos, &k, &sized))
				goto out;
			goto again;
		}
	}
	if (lo > a && pread_all(fd, a, lo - a, pos) != (ssize_t)(lo - a))
		goto out;
	off_t ioff = pos + (off_t)(lo - a);
	/* A file the program may change unseen (a stdio stream or a shared
	 * mapping that writes it) or keeps rewriting (sameproc.c): plain. */
	if (nb_same_unseen(e->dev, e->ino))
		goto out;
	dup = nb_backing_get(fd, e->dev, e->ino, ioff + (off_t)(hi - lo));
	if (dup < 0)
		goto out;
	/* NOBOUNCE_EXACT=strict: only what a lease protects (lease.c). */
	bool leased = nb_backing_leased(dup);
	if (!leased && nb_lease_strict()) {
		/* Plain from now on for this descriptor: trying again on every
		 * read would cost its calls each time for nothing. */
		atomic_store(&e->no_zc, 1);
		nb_backing_put(dup);
		goto out;
	}
	int idx = same;
	if (reuse) {
		/* Steady state: the pages stay guarded, only the record moves. */
		if (nb_phantom_rebind(same, lo, hi, dup, ioff, fd, atomic_load(&e->gen), a, a + k) != 0) {
			nb_backing_put(dup);
			goto out;
		}
	} else {
		/* Guarded while the entry is still held, then published: no
		 * thread can open the pages before they are closed (phantom.c
		 * add_entry). The phantom owns the backing reference from here
		 * on. */
		idx = nb_phantom_add_guarded(lo, hi, dup, ioff);
		if (idx < 0) {
			nb_backing_put(dup);
			goto out;
		}
		nb_phantom_set_owner(idx, fd, atomic_load(&e->gen));
		/* Unchanged edges can then go out from the file with the
		 * pages, in one kernel call instead of three (forward.c);
		 * rebind above keeps them in the same hold. */
		if (lo > a || a + k > hi)
			(void)nb_phantom_set_edges(idx, a, a + k);
	}
	if (moved && k < n)
		nb_sys_lseek(fd, pos + (off_t)k, SEEK_SET);
	moved = false;
	/* Published, then looked at again: a lease break that took the
	 * lease out, or a writer no hook sees that appeared (sameproc.c),
	 * may have filled the file's phantoms before this one existed.
	 * Filled here, inside the read, the bytes are still the read's. */
	atomic_thread_fence(memory_order_seq_cst);
	if (!nb_sigguard_recheck() || (leased && !nb_backing_leased(dup)) ||
	    nb_same_unseen(e->dev, e->ino))
		nb_phantom_overwrite_range(lo, hi); /* as in stream_read */
	else
		NB_COUNT(deferred, 1);
	ret = (ssize_t)k;
out:
	if (moved)
		nb_sys_lseek(fd, pos, SEEK_SET); /* not deferred: as if never asked */
	if (held)
		nb_fd_read_release(e);
	if (counted)
		nb_sigguard_read_end();
	if (crit)
		nb_crit_leave();
	nb_fd_unlock(e);
	errno = saved;
	return ret;
out_keep:
	nb_fd_unlock(e);
	if (ret != -1)
		errno = saved;
	return ret;
}

/* Copies n bytes of the program's memory without faulting: process_vm_readv
 * honours page protections and fails with EFAULT where a plain load would
 * crash, so a bad pointer stays the kernel's to report to the program. */
bool nb_copy_in(void *dst, const void *src, size_t n)
{
	/* Raw: process_vm_readv is itself interposed (hook_kread.c), and
	 * its hook reads iovecs with this function. */
	struct iovec l = { dst, n }, r = { (void *)src, n };
	return syscall(SYS_process_vm_readv, (pid_t)syscall(SYS_getpid), &l, 1UL, &r, 1UL, 0UL) ==
	       (long)n;
}

/* Calls fn on every iovec of a program's array (read without faulting;
 * at most 1024, as the kernel's UIO_MAXIOV); true if any call was. */
static bool each_iov(const struct iovec *iov, int cnt, bool (*fn)(uintptr_t a, size_t n))
{
	if (iov == NULL || cnt <= 0 || cnt > 1024)
		return false;
	bool any = false;
	struct iovec v[64];
	for (int i = 0; i < cnt; i += 64) {
		int m = cnt - i < 64 ? cnt - i : 64;
		if (!nb_copy_in(v, iov + i, sizeof v[0] * (size_t)m))
			break;
		for (int j = 0; j < m; j++)
			any |= fn((uintptr_t)v[j].iov_base, v[j].iov_len);
	}
	return any;
}

static bool expose_range(uintptr_t a, size_t n)
{
	if (n > 0)
		nb_phantom_materialize_range(a, a + n);
	return false;
}

void nb_defer_expose_iov(const struct iovec *iov, int cnt)
{
	if (NB_LIKELY(!nb_phantom_any()))
		return;
	int saved = errno;
	each_iov(iov, cnt, expose_range);
	errno = saved;
}

void nb_defer_expose_msg(const struct msghdr *msg)
{
	struct msghdr m;
	if (NB_LIKELY(!nb_phantom_any()) || msg == NULL || !nb_copy_in(&m, msg, sizeof m))
		return;
	nb_defer_expose_iov(m.msg_iov, (int)m.msg_iovlen);
	nb_defer_expose(m.msg_name, m.msg_namelen);
	nb_defer_expose(m.msg_control, m.msg_controllen);
}

/* A phantom overlapping [a, a+n) is filled: true if there was one. */
static bool refill_range(uintptr_t a, size_t n)
{
	if (n == 0 || a + n < a || nb_phantom_next(a, a + n) < 0)
		return false;
	nb_phantom_materialize_range(a, a + n);
	return true;
}

bool nb_defer_refill(const void *buf, size_t n)
{
	if (!nb_phantom_any())
		return false;
	int saved = errno;
	bool found = refill_range((uintptr_t)buf, n);
	errno = saved;
	return found;
}

bool nb_defer_refill_iov(const struct iovec *iov, int cnt)
{
	if (!nb_phantom_any())
		return false;
	int saved = errno;
	bool found = each_iov(iov, cnt, refill_range);
	errno = saved;
	return found;
}

/*
 * A receive writes the sender's address and its length after the data
 * (___sys_recvmsg and __sys_recvfrom: move_addr_to_user once
 * sock_recvmsg returned), when the bytes are already taken: an EFAULT
 * there took them, and the call must not be made again. So for a read
 * only a phantom in the data memory - whose EFAULT comes first, nothing
 * taken - says "made again"; the address memory is filled with it, or
 * the call made again would take the bytes and fail there. A send reads
 * name and control before any data is queued: any phantom counts.
 */
bool nb_defer_refill_msg(const struct msghdr *msg, bool reading)
{
	struct msghdr m;
	if (!nb_phantom_any() || msg == NULL || !nb_copy_in(&m, msg, sizeof m))
		return false;
	int saved = errno;
	bool found = m.msg_iovlen <= 1024 && nb_defer_refill_iov(m.msg_iov, (int)m.msg_iovlen);
	bool other = refill_range((uintptr_t)m.msg_name, m.msg_namelen);
	other |= refill_range((uintptr_t)m.msg_control, m.msg_controllen);
	errno = saved;
	return found || (other && !reading);
}

bool nb_defer_refill_from(const void *buf, size_t n, const void *addr, const socklen_t *alen)
{
	if (!nb_defer_refill(buf, n))
		return false;
	int saved = errno;
	socklen_t l;
	if (alen != NULL) {
		refill_range((uintptr_t)alen, sizeof *alen);
		if (addr != NULL && nb_copy_in(&l, alen, sizeof l))
			refill_range((uintptr_t)addr, l);
	}
	errno = saved;
	return true;
}

/*
 * May a read of fd that failed with EFAULT be made again? Only where the
 * kernel takes nothing away before its copy to the program's memory
 * fails: the page cache of a regular file or block device (filemap_read,
 * seq_read_iter and kernfs keep their state and position), a pipe or
 * FIFO (pipe_read leaves the buffer in the ring, packet mode too), a TCP
 * or AF_UNIX stream socket (tcp_recvmsg, unix_stream_read_generic: the
 * sequence and the skb's consumed count move after the copy). Everything
 * else may already have used up what it was copying: eventfd_read,
 * timerfd_read and signalfd_read take the count, ticks or signal first;
 * datagram and seqpacket sockets dequeue the datagram (unix_dgram_recvmsg,
 * udp_recvmsg, sctp); a tty's line discipline hands its bytes to a
 * kernel buffer first (iterate_tty_read); inotify removes the event. The
 * call made again there waits for the next one - forever, when none
 * comes - or gives the next datagram: such a read keeps its EFAULT. A
 * MSG_PEEK read takes nothing away on any socket. errno is kept.
 */
bool nb_read_efault_took_nothing(int fd, int flags)
{
	if (!nb_phantom_any())
		return false;
	if (flags & MSG_PEEK)
		return true;
	int saved = errno;
	struct stat st;
	bool ok = false;
	if (nb_sys_fstat(fd, &st) == 0) {
		switch (st.st_mode & S_IFMT) {
		case S_IFREG:
		case S_IFBLK:
		case S_IFIFO:
			ok = true;
			break;
		case S_IFSOCK: {
			int type = 0, domain = 0, proto = -1;
			socklen_t l = sizeof type;
			if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &l) != 0 || type != SOCK_STREAM)
				break;
			l = sizeof domain;
			if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &l) != 0)
				break;
			l = sizeof proto;
			if (getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &l) != 0)
				break;
			/* Not SCTP or MPTCP streams: only the two paths above. */
			ok = domain == AF_UNIX ||
			     ((domain == AF_INET || domain == AF_INET6) && proto == IPPROTO_TCP);
			break;
		}
		default:
			break;
		}
	}
	errno = saved;
	return ok;
}

/* Fills the phantoms backed by bytes [lo, hi) of the file (dev, ino),
 * if any phantom is backed by it at all. */
static void before_change(dev_t dev, ino_t ino, off_t lo, off_t hi)
{
	if (nb_phantom_any() && nb_backing_is_source(dev, ino))
		nb_phantom_materialize_file_range(dev, ino, lo, hi);
	/* Pages of that range a pipe or socket still holds (sameproc.c). */
	nb_same_before_change(dev, ino, lo, hi);
}

/* Something to do before a change: a phantom, or bytes in flight. */
static inline bool change_watched(void)
{
	return NB_UNLIKELY(nb_phantom_any() || nb_same_inflight_any());
}

/* Only regular files back phantoms; a known pipe or socket is not one.
 * This runs on every write while phantoms exist: the descriptor is
 * classified once (and kept current by the descriptor hooks) rather than
 * fstat'ed every time. */
static bool file_identity(int fd, dev_t *dev, ino_t *ino, unsigned *flags)
{
	struct nb_fd *e = nb_fd_get(fd);
	if (e != NULL && e->kind == NB_KIND_UNKNOWN && nb_fd_trylock(e)) {
		nb_fd_classify(fd, e);
		nb_fd_unlock(e);
	}
	if (e != NULL && nb_fd_kind(e) == NB_KIND_FILE) {
		*dev = e->dev;
		*ino = e->ino;
		*flags = e->flags;
		return true;
	}
	struct stat st;
	if ((e == NULL || e->kind == NB_KIND_UNKNOWN) && nb_sys_fstat(fd, &st) == 0 &&
	    S_ISREG(st.st_mode)) {
		*dev = st.st_dev;
		*ino = st.st_ino;
		int fl = nb_sys_fcntl(fd, F_GETFL, 0);
		*flags = fl >= 0 && (fl & O_APPEND) ? NB_FL_APPEND : 0;
		return true;
	}
	return false;
}

void nb_defer_before_write(int fd, off_t off, size_t n)
{
	if (!change_watched() || n == 0)
		return;
	int saved = errno;
	dev_t dev;
	ino_t ino;
	unsigned flags;
	if (file_identity(fd, &dev, &ino, &flags)) {
		/* An O_APPEND write only adds bytes past the end (pwrite too,
		 * on Linux - pwrite(2) BUGS): none a phantom stands for. */
		if (!(flags & NB_FL_APPEND)) {
			if (off < 0)
				off = (off_t)syscall(SYS_lseek, fd, 0, SEEK_CUR);
			off_t hi = off < 0 || n > (size_t)(INT64_MAX - off) ? INT64_MAX
									     : off + (off_t)n;
			before_change(dev, ino, off < 0 ? 0 : off, hi);
		}
	}
	errno = saved;
}

void nb_defer_before_truncate(int fd, off_t len)
{
	if (!change_watched())
		return;
	int saved = errno;
	dev_t dev;
	ino_t ino;
	unsigned flags;
	if (file_identity(fd, &dev, &ino, &flags))
		before_change(dev, ino, len < 0 ? 0 : len, INT64_MAX);
	errno = saved;
}

void nb_defer_before_truncate_path(const char *path, off_t len)
{
	if (!change_watched())
		return;
	int saved = errno;
	struct stat st;
	if (path != NULL && nb_sys_stat(path, &st) == 0 && S_ISREG(st.st_mode))
		before_change(st.st_dev, st.st_ino, len < 0 ? 0 : len, INT64_MAX);
	errno = saved;
}

/* open(2) with O_TRUNC truncates inside the call: the file the path
 * names now is looked up first (following the last link unless
 * O_NOFOLLOW, as open does). A path another thread swaps between this
 * look and the open is the one case not covered (README Known limits). */
void nb_defer_before_open(int dirfd, const char *path, int flags)
{
	/* An open for writing of a file we hold a read lease on would break
	 * our own lease: a signal round trip, and with O_NONBLOCK a failure
	 * (EWOULDBLOCK) the plain open never has. The lease goes first. */
	bool writes = (flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC);
	bool trunc = (flags & O_TRUNC) && change_watched();
	if (path == NULL || (!trunc && !(writes && nb_lease_any())))
		return;
	int saved = errno;
	struct stat st;
	if (syscall(SYS_newfstatat, dirfd, path, &st,
		    (flags & O_NOFOLLOW) ? AT_SYMLINK_NOFOLLOW : 0) == 0 &&
	    S_ISREG(st.st_mode)) {
		if (trunc)
			before_change(st.st_dev, st.st_ino, 0, INT64_MAX);
		if (writes)
			nb_backing_drop_lease_of(st.st_dev, st.st_ino, nb_lease_strict());
	}
	errno = saved;
}

#ifndef FALLOC_FL_KEEP_SIZE
#define FALLOC_FL_KEEP_SIZE 0x01
#endif

/* fallocate(2): mode 0 and KEEP_SIZE only allocate (the bytes read the
 * same), UNSHARE_RANGE (0x40) only unshares; PUNCH_HOLE and ZERO_RANGE
 * zero [off, off+len), COLLAPSE_RANGE and INSERT_RANGE move everything
 * from off on. An unknown mode is taken as a change of it all. */
void nb_defer_before_fallocate(int fd, int mode, off_t off, off_t len)
{
	if (!change_watched() || (mode & ~(FALLOC_FL_KEEP_SIZE | 0x40)) == 0)
		return;
	int saved = errno;
	dev_t dev;
	ino_t ino;
	unsigned flags;
	off_t lo = off < 0 ? 0 : off, hi = INT64_MAX;
	if ((mode & ~(FALLOC_FL_KEEP_SIZE | 0x02 /* PUNCH_HOLE */ | 0x10 /* ZERO_RANGE */)) == 0 &&
	    len >= 0 && lo <= INT64_MAX - len)
		hi = lo + len;
	if (file_identity(fd, &dev, &ino, &flags))
		before_change(dev, ino, lo, hi);
	errno = saved;
}

void nb_defer_expose_for_read(void *buf, size_t n)
{
	if (NB_LIKELY(!nb_phantom_any()) || n == 0)
		return;
	int saved = errno;
	nb_phantom_overwrite_range((uintptr_t)buf, (uintptr_t)buf + n);
	errno = saved;
}

void nb_defer_expose_all(void)
{
	if (NB_LIKELY(!nb_phantom_any()))
		return;
	int saved = errno;
	nb_phantom_overwrite_range(0, UINTPTR_MAX); /* not the pair's touch */
	errno = saved;
}

void nb_defer_expose(const void *buf, size_t n)
{
	if (NB_LIKELY(!nb_phantom_any()) || n == 0)
		return;
	int saved = errno;
	nb_phantom_materialize_range((uintptr_t)buf, (uintptr_t)buf + n);
	errno = saved;
}

/* Why a buffer of [a, a+n) can never be deferred, for the pair that is
 * about to arm on it (detect.c): NB_BUF_OK, or the first reason, in the
 * order guardable() asks. A pair whose buffer is refused is not armed -
 * counting it armed, or promising the kernel path in the observe
 * report, would be a promise no read keeps. */
int nb_defer_refusal(uintptr_t a, size_t n)
{
	/* (Not the page count: n is what this read returned, and a later
	 * read of the same buffer may fill more of it.) */
	struct range st = thread_stack();
	if (a < st.hi && a + n > st.lo)
		return NB_BUF_STACK;
	uintptr_t sp = (uintptr_t)__builtin_frame_address(0);
	if ((sp < st.lo || sp >= st.hi) && near_sp(a, a + n, sp))
		return NB_BUF_STACK;
	if (in_fork_special(a, a + n))
		return NB_BUF_FORK;
	if (in_altstack(a, a + n))
		return NB_BUF_ALTSTACK;
	return guardable(a, a + n) ? NB_BUF_OK : NB_BUF_SHARED;
}
