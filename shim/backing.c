/*
 * backing.c - the library's own references to source files.
 *
 * Owns: one internal duplicate descriptor per source file that phantoms
 * refer to, counted by the phantoms using it. A phantom's meaning is fixed
 * at read time: the program may close its descriptor, dup2 over it or
 * reopen the number before writing the buffer (read all, close, then send
 * is common), and the phantom still names the same file. The duplicate is
 * closed when the last phantom using it is materialised or forgotten.
 *
 * Destination files. A socket or pipe phantom written whole into a regular
 * file has its bytes there afterwards: the file range becomes its backing
 * (forward.c), which saves the pipe copy the phantom would otherwise keep.
 * The program's descriptor may be write-only, so the backing is a
 * read-only reopen of it through /proc/self/fd. An armed loop writes that
 * file on every turn: the reopen is kept while the program's descriptor
 * stays open (idle, no reference), and closed with it - an open file of
 * ours must not keep a deleted file's blocks allocated after the program
 * let go of it; phantoms it still backs are filled then.
 *
 * Lost descriptors. A raw close_range(2) or close through syscall() closes
 * the duplicate behind our back (closefrom and close_range through libc
 * skip it, ownfd.c), and the number may then name another file of the
 * program's. So the fill path never trusts the number: nb_backing_pread
 * checks with fstat that it still names the file it was opened for (one
 * system call against the tens of microseconds a fill costs), and a slot
 * found lost is read another way:
 *  - a source file is also mapped, read-only and shared, when its backing
 *    is made: a mapping is a reference to the file that no descriptor call
 *    can reach, and its bytes are the file's (the page cache), read with
 *    process_vm_readv on our own memory - a kernel copy that answers
 *    EFAULT rather than SIGBUS where the file was truncated meanwhile,
 *    which reads as end of file, as pread would. The mapping covers the
 *    file as it was then; a read past it gets a backing of its own. It is
 *    skipped under a finite RLIMIT_AS (the address space is the program's
 *    to spend) and on files that cannot be mapped - and then the read is
 *    not deferred at all (plain is exact; only speed is lost);
 *  - a destination reopen is made again from the program's descriptor it
 *    is kept for, if that still names the file.
 * Bytes reachable neither way are lost: the caller must stop the process
 * rather than open stale pages (phantom.c).
 * Must not: allocate or lock; nb_backing_put runs in the fault trampoline.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <sys/syscall.h>
#include <unistd.h>

#define NB_BACKINGS 256

struct backing {
	atomic_int fd;   /* internal duplicate, -1 = free slot */
	atomic_int refs; /* phantoms using it; -1 while being set up or closed */
	atomic_int keep; /* the program's descriptor it is kept for, -1 */
	atomic_int lost; /* fd was closed behind our back: not ours any more */
	atomic_int lease; /* the lease thread's descriptor holding a read
			     lease on it, -1 (lease.c: whoever exchanges it
			     out lets go of it) */
	atomic_int orphan; /* its last reference went on the lease thread */
	/* Writes reading this file by a kernel call right now, and whether
	 * its lease is being let go of (nb_backing_call_begin). */
	atomic_int in_call;
	atomic_int breaking;
	dev_t dev;
	ino_t ino;
	void *map;       /* source: read-only shared mapping of [0, maplen) */
	size_t maplen;
};

static struct backing backings[NB_BACKINGS];
static atomic_int inited;
static atomic_int kept; /* slots with keep set: close() looks only then */
static atomic_int orphans; /* some slot has orphan set */

static void init_once(void)
{
	int expect = 0;
	if (atomic_load(&inited) == 2 || !atomic_compare_exchange_strong(&inited, &expect, 1)) {
		while (atomic_load(&inited) != 2)
			;
		return;
	}
	for (int i = 0; i < NB_BACKINGS; i++) {
		atomic_store(&backings[i].fd, -1);
		atomic_store(&backings[i].keep, -1);
		atomic_store(&backings[i].lease, -1);
	}
	atomic_store(&inited, 2);
}

/* A reference to a live (or idle) backing of this file, or -1. pread does
 * not care which open file description it goes through, so any will do -
 * but one whose descriptor was lost, or whose mapping ends before need,
 * would not give the new phantom its second way to the bytes. */
static int share(dev_t dev, ino_t ino, int keep_for, off_t need)
{
	for (int i = 0; i < NB_BACKINGS; i++) {
		struct backing *b = &backings[i];
		int r = atomic_load(&b->refs);
		while (r >= 0 && atomic_load(&b->fd) >= 0 && b->dev == dev && b->ino == ino) {
			if (!atomic_compare_exchange_weak(&b->refs, &r, r + 1))
				continue;
			int fd = atomic_load(&b->fd);
			/* The slot may have been closed and taken by another
			 * file between the look and the count. */
			if (fd < 0) {
				atomic_fetch_sub(&b->refs, 1); /* a free slot: undo */
				break;
			}
			if (b->dev != dev || b->ino != ino || atomic_load(&b->lost) ||
			    (b->map != NULL && (need < 0 || (size_t)need > b->maplen)) ||
			    /* a mapping's duplicate (no second way) is no
			     * phantom's backing */
			    (need > 0 && b->map == NULL && atomic_load(&b->keep) < 0)) {
				nb_backing_put(fd);
				break;
			}
			int none = -1;
			if (keep_for >= 0 && atomic_compare_exchange_strong(&b->keep, &none, keep_for))
				atomic_fetch_add(&kept, 1);
			return fd;
		}
	}
	return -1;
}

static void sweep(void);

/* Files a new internal descriptor (one reference), or releases it. */
static int install(int fd, dev_t dev, ino_t ino, int keep_for, void *map, size_t maplen, int lease)
{
	for (int i = 0; i < NB_BACKINGS; i++) {
		struct backing *b = &backings[i];
		int expect = 0;
		if (atomic_load(&b->fd) != -1 || !atomic_compare_exchange_strong(&b->refs, &expect, -1))
			continue;
		b->dev = dev;
		b->ino = ino;
		b->map = map;
		b->maplen = maplen;
		atomic_store(&b->lost, 0);
		atomic_store(&b->breaking, 0);
		atomic_store(&b->lease, lease);
		atomic_store(&b->keep, keep_for);
		if (keep_for >= 0)
			atomic_fetch_add(&kept, 1);
		atomic_store(&b->fd, fd);
		atomic_store(&b->refs, 1);
		return fd;
	}
	if (map != NULL)
		nb_sys_munmap(map, maplen);
	nb_lease_drop(lease);
	nb_own_release(fd);
	return -1;
}

/* The second reference to a source: a mapping of the file as it is now,
 * if it covers need and the address space is not rationed. */
static void *map_source(int fd, dev_t dev, ino_t ino, off_t need, size_t *len)
{
	struct rlimit rl;
	struct stat st;
	if (nb_sys_getrlimit(RLIMIT_AS, &rl) != 0 || rl.rlim_cur != RLIM_INFINITY ||
	    nb_sys_fstat(fd, &st) != 0 || st.st_dev != dev || st.st_ino != ino ||
	    st.st_size <= 0 || need > st.st_size)
		return NULL;
	void *m = (void *)syscall(SYS_mmap, NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED)
		return NULL;
	*len = (size_t)st.st_size;
	return m;
}

int nb_backing_get(int src, dev_t dev, ino_t ino, off_t need)
{
	init_once();
	sweep();
	int fd = share(dev, ino, -1, need);
	if (fd >= 0)
		return fd;
	int saved = errno;
	int dup = nb_hide_fd(src);
	size_t len = 0;
	void *map = dup < 0 ? NULL : map_source(dup, dev, ino, need, &len);
	errno = saved;
	if (dup >= 0 && map == NULL) {
		/* No second way to the bytes: a read deferred now could not
		 * survive its descriptor being closed behind our back. */
		nb_own_release(dup);
		return -1;
	}
	if (dup < 0)
		return -1;
	/* Taken per file, when its first phantom is made: an armed loop
	 * keeps its backing, so this is not paid per read. The lease thread
	 * answers breaks again once the number is filed (lease.c). */
	int lease = nb_lease_take(src, dev, ino);
	fd = install(dup, dev, ino, -1, map, len, lease);
	nb_lease_settled();
	return fd;
}

/* A file the program mapped read-only (mapping.c): the same per-inode
 * duplicate, without the second way to the bytes and without a lease -
 * the mapping's bytes are the file's at the time of each write, which is
 * all a write of it promises; nothing is guarded, nothing to fill. */
int nb_backing_get_mapped(int src, dev_t dev, ino_t ino)
{
	init_once();
	sweep();
	int fd = share(dev, ino, -1, 0);
	if (fd >= 0)
		return fd;
	int saved = errno;
	int dup = nb_hide_fd(src);
	errno = saved;
	return dup < 0 ? -1 : install(dup, dev, ino, -1, NULL, 0, -1);
}

int nb_backing_get_reader(int dst, dev_t dev, ino_t ino)
{
	init_once();
	sweep();
	int fd = share(dev, ino, dst, -1);
	if (fd >= 0)
		return fd;
	int saved = errno;
	int hidden = nb_reopen_hidden(dst, dev, ino, O_RDONLY);
	errno = saved;
	return hidden < 0 ? -1 : install(hidden, dev, ino, dst, NULL, 0, -1);
}

/* The slot closes: its mapping and its lease go with it. The lease is
 * queued for the lease thread to let go of; the program's close waits
 * for that (nb_backing_fds_closed). */
static void unmap(struct backing *b)
{
	nb_lease_drop(atomic_exchange(&b->lease, -1));
	if (b->map != NULL)
		nb_sys_munmap(b->map, b->maplen);
	b->map = NULL;
	b->maplen = 0;
}

/* Lets go of a slot's descriptor: closed, unless the number is not ours
 * any more - lost, or (not noticed yet) naming another file: closing it
 * then would close the program's descriptor. */
static void release_fd(struct backing *b, int fd)
{
	struct stat st;
	if (!atomic_load(&b->lost) &&
	    (nb_sys_fstat(fd, &st) != 0 || st.st_dev != b->dev || st.st_ino != b->ino))
		nb_own_lost(fd);
	nb_own_release(fd); /* a lost number is only forgotten, not closed */
}

/* Closes an idle slot (no references), if it still is one. */
static void close_idle(struct backing *b)
{
	int expect = 0;
	if (atomic_load(&b->fd) < 0 || !atomic_compare_exchange_strong(&b->refs, &expect, -1))
		return;
	int fd = atomic_exchange(&b->fd, -1);
	unmap(b);
	release_fd(b, fd);
	atomic_store(&b->refs, 0);
}

/* Slots whose last reference went on the lease thread (a break filled
 * their phantoms there): closed here, on a thread of the program's, whose
 * table the numbers are in. Until then such a slot is idle - a new
 * phantom of the same file may take it up again. */
void nb_backing_sweep(void)
{
	int saved = errno;
	sweep();
	errno = saved;
}

static void sweep(void)
{
	if (NB_LIKELY(atomic_load_explicit(&orphans, memory_order_relaxed) == 0) ||
	    nb_lease_on_thread() || !atomic_exchange(&orphans, 0))
		return;
	for (int i = 0; i < NB_BACKINGS; i++) {
		struct backing *b = &backings[i];
		if (atomic_exchange(&b->orphan, 0) && atomic_load(&b->keep) < 0)
			close_idle(b);
	}
}

/* The program let go of the descriptor a reopen was kept for: phantoms
 * still backed by it get their bytes now, so that nothing of ours holds
 * the file once the program has closed it (a deleted file's blocks are
 * freed when the program expects). */
static void unkeep(struct backing *b)
{
	if (atomic_exchange(&b->keep, -1) < 0)
		return;
	atomic_fetch_sub(&kept, 1);
	if (atomic_load(&b->refs) > 0)
		nb_phantom_materialize_file_range(b->dev, b->ino, 0, INT64_MAX);
	close_idle(b);
}

static void fds_closed(unsigned lo, unsigned hi);

/* The program closed [lo, hi]: when, plainly, a file it was done with has
 * no opener left. Leases queued for the lease thread - by this close's
 * slots or earlier ones (a slot closed in a critical section or a fault)
 * - are let go of before the close returns, so that a write lease on such
 * a file, the program's or another process's, is granted as plainly
 * (tests/integration/79-lease-release-attack.sh). */
void nb_backing_fds_closed(unsigned lo, unsigned hi)
{
	fds_closed(lo, hi);
	nb_lease_drops_wait();
}

static void fds_closed(unsigned lo, unsigned hi)
{
	/* The program closing a descriptor is when a source it read is let
	 * go of: a slot a break left to close goes with it. Not in a vfork
	 * child: its closes leave the parent's numbers open, and letting go
	 * here would close the library's own descriptors in the child's
	 * table only while the parent's memory forgets them - one leaked
	 * descriptor in the parent per such close. */
	if (NB_LIKELY(atomic_load_explicit(&orphans, memory_order_relaxed) == 0 &&
		      atomic_load_explicit(&kept, memory_order_relaxed) == 0))
		return;
	if (!nb_own_table())
		return;
	if (NB_UNLIKELY(atomic_load_explicit(&orphans, memory_order_relaxed) != 0)) {
		int saved = errno;
		sweep();
		errno = saved;
	}
	if (NB_LIKELY(atomic_load_explicit(&kept, memory_order_relaxed) == 0))
		return;
	int saved = errno;
	for (int i = 0; i < NB_BACKINGS; i++) {
		int k = atomic_load(&backings[i].keep);
		if (k >= 0 && (unsigned)k >= lo && (unsigned)k <= hi)
			unkeep(&backings[i]);
	}
	errno = saved;
}

void nb_backing_drop_idle(void)
{
	nb_backing_fds_closed(0, UINT_MAX);
}

bool nb_backing_identity(int fd, dev_t *dev, ino_t *ino)
{
	if (atomic_load(&inited) != 2 || fd < 0)
		return false;
	for (int i = 0; i < NB_BACKINGS; i++) {
		struct backing *b = &backings[i];
		if (atomic_load(&b->refs) > 0 && atomic_load(&b->fd) == fd) {
			*dev = b->dev;
			*ino = b->ino;
			return true;
		}
	}
	return false;
}

/* One more reference to the live slot of fd: the slot, or NULL (none
 * live: its last user let go of it). */
static struct backing *ref_slot(int fd)
{
	for (int i = 0; i < NB_BACKINGS; i++) {
		struct backing *b = &backings[i];
		int r = atomic_load(&b->refs);
		while (r > 0 && atomic_load(&b->fd) == fd)
			if (atomic_compare_exchange_weak(&b->refs, &r, r + 1))
				return b;
	}
	return NULL;
}

void nb_backing_ref(int fd)
{
	ref_slot(fd);
}

/* One reference to slot b (whose descriptor is fd) less. */
static void put_slot(struct backing *b, int fd)
{
	if (atomic_fetch_sub(&b->refs, 1) != 1)
		return;
	/* Last user: close it, then free the slot - unless it is kept for a
	 * destination still open (idle). */
	if (atomic_load(&b->keep) >= 0)
		return;
	if (nb_lease_on_thread()) {
		/* The lease thread's table is not the program's: the next
		 * program thread here closes it (sweep). */
		atomic_store(&b->orphan, 1);
		atomic_store(&orphans, 1);
		return;
	}
	int expect = 0;
	if (atomic_compare_exchange_strong(&b->refs, &expect, -1)) {
		atomic_store(&b->fd, -1);
		unmap(b);
		release_fd(b, fd);
		atomic_store(&b->refs, 0);
	}
}

void nb_backing_put(int fd)
{
	sweep();
	for (int i = 0; i < NB_BACKINGS; i++) {
		struct backing *b = &backings[i];
		if (atomic_load(&b->fd) == fd) {
			put_slot(b, fd);
			return;
		}
	}
}

/* The same process writes or truncates a file: is it a source? */
bool nb_backing_is_source(dev_t dev, ino_t ino)
{
	if (atomic_load(&inited) != 2)
		return false;
	for (int i = 0; i < NB_BACKINGS; i++) {
		struct backing *b = &backings[i];
		if (atomic_load(&b->refs) > 0 && b->dev == dev && b->ino == ino)
			return true;
	}
	return false;
}

/* The slot a phantom's backing descriptor names (it holds a reference). */
static struct backing *slot_of(int fd)
{
	if (atomic_load(&inited) != 2 || fd < 0)
		return NULL;
	for (int i = 0; i < NB_BACKINGS; i++) {
		struct backing *b = &backings[i];
		if (atomic_load(&b->fd) == fd && atomic_load(&b->refs) != 0)
			return b;
	}
	return NULL;
}

static void mark_lost(struct backing *b, int fd)
{
	int no = 0;
	if (atomic_compare_exchange_strong(&b->lost, &no, 1))
		nb_own_lost(fd); /* the number is not ours to use or close */
}

void nb_backing_fd_lost(int fd)
{
	if (atomic_load(&inited) != 2 || fd < 0)
		return;
	for (int i = 0; i < NB_BACKINGS; i++)
		if (atomic_load(&backings[i].fd) == fd)
			mark_lost(&backings[i], fd);
}

/* A lost backing's bytes, the other way (see the header). */
static __attribute__((noinline)) ssize_t lost_read(struct backing *b, void *dst, size_t n, off_t off)
{
	if (b->map != NULL) {
		if (off < 0 || (size_t)off >= b->maplen)
			return 0;
		if (n > b->maplen - (size_t)off)
			n = b->maplen - (size_t)off;
		struct iovec l = { dst, n }, r = { (char *)b->map + off, n };
		ssize_t k = (ssize_t)syscall(SYS_process_vm_readv, (pid_t)syscall(SYS_getpid), &l, 1,
					     &r, 1, 0);
		if (k < 0 && errno == EFAULT)
			return 0; /* past the end of a file truncated since */
		return k;
	}
	int keep = atomic_load(&b->keep);
	if (keep >= 0) {
		char path[32];
		nb_proc_fd_path(path, keep);
		int fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
		if (fd >= 0) {
			struct stat st;
			ssize_t r = -1;
			if (nb_sys_fstat(fd, &st) == 0 && st.st_dev == b->dev && st.st_ino == b->ino)
				r = (ssize_t)syscall(SYS_pread64, fd, dst, n, off);
			else
				errno = EBADF;
			int e = errno;
			nb_sys_close(fd);
			errno = e;
			return r;
		}
	}
	errno = EBADF;
	return -1;
}

/* On the lease thread, which fills a broken file's phantoms with a table
 * of its own: the bytes through its lease descriptor of that file (any
 * open file description of it reads the same), or the mapping. */
static __attribute__((noinline)) ssize_t lease_thread_read(struct backing *b, void *dst, size_t n,
							   off_t off)
{
	int lfd = b == NULL ? -1 : nb_lease_thread_fd_of(b->dev, b->ino);
	if (lfd >= 0)
		return (ssize_t)syscall(SYS_pread64, lfd, dst, n, off);
	if (b != NULL && b->map != NULL)
		return lost_read(b, dst, n, off);
	errno = EBADF;
	return -1;
}

ssize_t nb_backing_pread(int fd, void *dst, size_t n, off_t off)
{
	struct backing *b = slot_of(fd);
	if (NB_UNLIKELY(nb_lease_on_thread()))
		return lease_thread_read(b, dst, n, off);
	if (b == NULL)
		return (ssize_t)syscall(SYS_pread64, fd, dst, n, off);
	if (!atomic_load(&b->lost)) {
		struct stat st;
		if (nb_sys_fstat(fd, &st) == 0 && st.st_dev == b->dev && st.st_ino == b->ino) {
			ssize_t r = (ssize_t)syscall(SYS_pread64, fd, dst, n, off);
			/* EBADF: the program's own descriptor of the same file,
			 * not open for reading, sits at the number now. */
			if (r >= 0 || errno != EBADF)
				return r;
		}
		mark_lost(b, fd);
	}
	return lost_read(b, dst, n, off);
}

bool nb_backing_intact(int fd, struct stat *out)
{
	struct backing *b = slot_of(fd);
	if (b == NULL) /* not a backing of ours: nothing to check */
		return out == NULL || nb_sys_fstat(fd, out) == 0;
	if (atomic_load(&b->lost))
		return false;
	struct stat st;
	if (nb_sys_fstat(fd, &st) == 0 && st.st_dev == b->dev && st.st_ino == b->ino) {
		if (out != NULL)
			*out = st; /* the size too, from the same call */
		return true;
	}
	mark_lost(b, fd);
	return false;
}

bool nb_backing_leased(int fd)
{
	struct backing *b = slot_of(fd);
	return b != NULL && atomic_load(&b->lease) >= 0;
}

bool nb_backing_lease_taken_out(int fd, dev_t *dev, ino_t *ino)
{
	if (atomic_load(&inited) != 2 || fd < 0)
		return false;
	for (int i = 0; i < NB_BACKINGS; i++) {
		struct backing *b = &backings[i];
		int expect = fd;
		if (atomic_compare_exchange_strong(&b->lease, &expect, -1)) {
			atomic_store(&b->breaking, 1);
			*dev = b->dev;
			*ino = b->ino;
			return true;
		}
	}
	return false;
}

/*
 * Writes that read a leased file by a kernel call. A write of a phantom
 * looks at it without holding it (forward.c), then has the kernel read
 * the file (sendfile, splice, copy_file_range). A break that came in
 * between fills the phantom and lets the writer in another process go
 * on - and the kernel call would then read that writer's bytes. So a
 * kernel call on a file is counted while it lasts (in_call), and the
 * one who lets go of a lease first marks the file as breaking, then
 * waits for the calls counted to end, then fills. A write that counts
 * itself and then finds the file breaking does not make the call (the
 * phantom goes out from memory, filled while the file is still as it
 * was). Both sides write, then read (sequentially consistent): at least
 * one sees the other.
 *
 * The wait is bounded (NB_CALL_WAIT_NS): a call into a socket whose peer
 * stopped reading may block for as long as the peer likes; the other
 * process's writer would wait that long. After the bound the lease goes
 * anyway (README Known limits).
 */
#define NB_CALL_WAIT_NS (2 * 1000 * 1000 * 1000LL)

int nb_backing_call_begin(int fd)
{
	/* A reference first, so the descriptor stays ours while the kernel
	 * reads it even if the phantom is filled meanwhile. None to be had:
	 * the phantom was filled and its backing let go of already. */
	struct backing *b = ref_slot(fd);
	if (b == NULL)
		return -1;
	atomic_fetch_add(&b->in_call, 1);
	if (atomic_load(&b->breaking)) {
		atomic_fetch_sub(&b->in_call, 1);
		put_slot(b, fd);
		return -1;
	}
	return (int)(b - backings);
}

void nb_backing_call_end(int fd, int slot)
{
	struct backing *b = &backings[slot];
	atomic_fetch_sub(&b->in_call, 1);
	put_slot(b, fd);
}

static void drain_calls(dev_t dev, ino_t ino)
{
	for (long long waited = 0; waited < NB_CALL_WAIT_NS; waited += 100 * 1000) {
		bool busy = false;
		for (int i = 0; i < NB_BACKINGS && !busy; i++) {
			struct backing *b = &backings[i];
			busy = atomic_load(&b->in_call) > 0 && b->dev == dev && b->ino == ino;
		}
		if (!busy)
			return;
		struct timespec ts = { 0, 100 * 1000 };
		syscall(SYS_nanosleep, &ts, NULL);
	}
}

static void set_breaking(dev_t dev, ino_t ino, int v)
{
	for (int i = 0; i < NB_BACKINGS; i++) {
		struct backing *b = &backings[i];
		if (atomic_load(&b->fd) >= 0 && b->dev == dev && b->ino == ino)
			atomic_store(&b->breaking, v);
	}
}

void nb_backing_break_begin(dev_t dev, ino_t ino)
{
	set_breaking(dev, ino, 1);
	drain_calls(dev, ino);
}

void nb_backing_break_end(dev_t dev, ino_t ino)
{
	set_breaking(dev, ino, 0);
}

static void drop_leases(bool all, dev_t dev, ino_t ino, bool fill)
{
	if (atomic_load(&inited) != 2)
		return;
	for (int i = 0; i < NB_BACKINGS; i++) {
		struct backing *b = &backings[i];
		if (atomic_load(&b->lease) < 0 || (!all && (b->dev != dev || b->ino != ino)))
			continue;
		int l = atomic_exchange(&b->lease, -1);
		if (l < 0)
			continue;
		if (fill) {
			nb_backing_break_begin(b->dev, b->ino);
			nb_phantom_materialize_file_range(b->dev, b->ino, 0, INT64_MAX);
		}
		nb_lease_drop_wait(l);
		if (fill)
			nb_backing_break_end(b->dev, b->ino);
	}
}

void nb_backing_drop_leases(bool fill)
{
	drop_leases(true, 0, 0, fill);
}

void nb_backing_drop_lease_of(dev_t dev, ino_t ino, bool fill)
{
	drop_leases(false, dev, ino, fill);
}

void nb_backing_leases_atfork_child(void)
{
	if (atomic_load(&inited) != 2)
		return;
	/* The leases are in the parent's lease thread's table, which this
	 * process has no part in: their numbers mean nothing here. */
	for (int i = 0; i < NB_BACKINGS; i++)
		atomic_store(&backings[i].lease, -1);
}
