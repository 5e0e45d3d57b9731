/*
 * mapping.c - which program memory is a read-only mapping of a file.
 *
 * Owns: the table of the program's file mappings that qualify as "memory
 * whose bytes live in a file", kept by the mmap/munmap/mremap/mprotect/
 * madvise hooks, and the write path's question about them: which part of
 * [a, b) is such a mapping, of what file (a reference of our own), at
 * what offset.
 *
 * A mapping qualifies while it is MAP_SHARED of a regular file, with
 * protection exactly PROT_READ, and has never been anything else. Never
 * MAP_PRIVATE: a forced write (ptrace POKEDATA, /proc/PID/mem - a
 * debugger, or the program itself) copies a private read-only page on
 * write without any call the hooks see, and the memory then differs from
 * the file; the kernel refuses such writes to shared mappings. Its bytes are then the page cache of its file at the moment the
 * kernel reads them - what sendfile/splice/copy_file_range read too - so
 * a write of it may be served by the kernel from the file (forward.c),
 * with no guard, no learning and no fill. A private page written once is
 * not the file any more, so:
 *  - mmap with any other protection is never recorded (PROT_WRITE, and
 *    PROT_EXEC: code pages are what debuggers poke breakpoints into);
 *  - mprotect to anything but PROT_READ forgets the range for good (only
 *    mmap records, so it never comes back);
 *  - munmap, mmap over it (MAP_FIXED, or any new mapping the kernel put
 *    where we thought one was), mremap (old and new range) forget it;
 *  - madvise(MADV_DONTFORK) forgets it: a child has no pages there, and
 *    its plain write would fail with EFAULT.
 * Forgetting is always safe: the write is then the plain call.
 *
 * The reference to the file is a backing (backing.c: an internal
 * duplicate shared per inode), so the program's close() right after mmap
 * - the common case - changes nothing. It is put when the entry goes.
 *
 * Concurrency. Writers (the memory hooks) serialise on a spin lock, with
 * the asynchronous signals blocked (a handler of the same thread calling
 * mmap would spin for ever), and bump a sequence count around every
 * change. Readers (write hooks, on any thread, perhaps in a signal
 * handler) never wait: they copy an entry, take a reference to its
 * backing and check the sequence; on a change they look again, a few
 * times, then answer "not mapped" - the plain call.
 * A backing is put only after its entry left the table and the sequence
 * moved on, so a reader either holds a reference taken while the entry
 * was there or sees the change.
 *
 * Must not: allocate, or take a lock a reader waits on; guess - a range
 * it is unsure of is forgotten.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#define NB_MAPPINGS 1024
#define NB_MAP_RETRIES 8

struct entry {
	uintptr_t start, end; /* page aligned; end == 0: free slot */
	off_t off;            /* file offset of start */
	int backing;          /* our reference to the file (backing.c) */
	int src;              /* the program's descriptor at mmap, for reports */
};

static struct entry table[NB_MAPPINGS];
static atomic_uint seq;   /* odd while a writer changes the table */
static atomic_int lock;   /* writers only */
static atomic_int top;    /* slots [0, top) may be in use */
/* Entries in the table; the hooks' first look (nb_mapping_any,
 * internal.h), hence not static. */
atomic_int nb_mapping_live;

#define PAGE 4096u

/* Entries are read by lookups on other threads while a writer changes
 * them (the sequence tells the reader to look again): every field is
 * stored and loaded atomically, so neither side sees a torn value. */
#define ST(field, v) __atomic_store_n(&(field), (v), __ATOMIC_RELEASE)

static void put_entry(struct entry *e, uintptr_t start, uintptr_t end, off_t off, int backing,
		      int src)
{
	ST(e->off, off);
	ST(e->backing, backing);
	ST(e->src, src);
	ST(e->start, start);
	ST(e->end, end);
}

static void wlock(void)
{
	nb_crit_enter();
	int expect = 0;
	while (!atomic_compare_exchange_weak(&lock, &expect, 1))
		expect = 0;
	atomic_fetch_add(&seq, 1); /* odd: readers look again */
}

static void wunlock(void)
{
	atomic_fetch_add(&seq, 1);
	atomic_store(&lock, 0);
	nb_crit_leave();
}

/* A free slot, or -1. Under the lock. */
static int free_slot(void)
{
	for (int i = 0; i < NB_MAPPINGS; i++)
		if (table[i].end == 0) {
			if (i >= atomic_load(&top))
				atomic_store(&top, i + 1);
			return i;
		}
	return -1;
}

/* Removes [a, b) from every entry (under the lock); the backings whose
 * references went are collected in put[] (*nput), to be put after the
 * sequence moved on. A piece that would need a slot and finds none is
 * forgotten too, with its reference. */
static void cut(uintptr_t a, uintptr_t b, int *put, int *nput, int cap)
{
	int n = atomic_load(&top);
	for (int i = 0; i < n; i++) {
		struct entry *e = &table[i];
		if (e->end == 0 || e->end <= a || e->start >= b)
			continue;
		bool left = e->start < a, right = e->end > b;
		if (left && right) {
			/* The middle goes: the right part needs a slot and a
			 * reference of its own. */
			int j = free_slot();
			if (j >= 0) {
				nb_backing_ref(e->backing);
				put_entry(&table[j], b, e->end, e->off + (off_t)(b - e->start),
					  e->backing, e->src);
				NB_SETTLE_RAISE(nb_mapping_live);
			}
			ST(e->end, a);
		} else if (left) {
			ST(e->end, a);
		} else if (right) {
			ST(e->off, e->off + (off_t)(b - e->start));
			ST(e->start, b);
		} else {
			if (*nput < cap)
				put[(*nput)++] = e->backing;
			ST(e->end, 0);
			ST(e->start, 0);
			atomic_fetch_sub(&nb_mapping_live, 1);
		}
	}
}

#define NB_PUT_MAX 64

static void forget_locked_range(uintptr_t a, uintptr_t b)
{
	int put[NB_PUT_MAX], nput;
	do {
		/* More than NB_PUT_MAX entries inside one range: the rest are
		 * cut in the next round, after these references went. */
		nput = 0;
		wlock();
		cut(a, b, put, &nput, NB_PUT_MAX);
		wunlock();
		for (int i = 0; i < nput; i++)
			nb_backing_put(put[i]);
	} while (nput == NB_PUT_MAX);
}

/* Does any entry overlap [a, b)? A racy look, only to skip the lock. */
static bool overlaps(uintptr_t a, uintptr_t b)
{
	int n = atomic_load(&top);
	for (int i = 0; i < n; i++) {
		uintptr_t s = __atomic_load_n(&table[i].start, __ATOMIC_RELAXED);
		uintptr_t e = __atomic_load_n(&table[i].end, __ATOMIC_RELAXED);
		if (e != 0 && e > a && s < b)
			return true;
	}
	return false;
}

static uintptr_t page_up(uintptr_t a, size_t len)
{
	uintptr_t e = a + len;
	if (e < a || e > UINTPTR_MAX - PAGE)
		return UINTPTR_MAX & ~(uintptr_t)(PAGE - 1);
	return (e + PAGE - 1) & ~(uintptr_t)(PAGE - 1);
}

void nb_mapping_forget(uintptr_t a, size_t len)
{
	if (!nb_mapping_any())
		return;
	int saved = errno;
	uintptr_t b = page_up(a, len);
	a &= ~(uintptr_t)(PAGE - 1);
	if (overlaps(a, b))
		forget_locked_range(a, b);
	errno = saved;
}

void nb_mapping_protect(uintptr_t a, size_t len, int prot)
{
	/* Still exactly PROT_READ: nothing changes. Anything else - write,
	 * exec, none - and the range never qualifies again. */
	if (prot != PROT_READ)
		nb_mapping_forget(a, len);
}

void nb_mapping_added(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	int saved = errno;
	uintptr_t a = (uintptr_t)addr, b = page_up(a, len);
	/* Whatever we thought was there is gone: the kernel put a new
	 * mapping at [a, b) (MAP_FIXED, or an unmap we did not see). */
	nb_mapping_forget(a, len);
	int type = flags & MAP_TYPE;
	struct stat st;
	if (prot != PROT_READ || (flags & MAP_ANONYMOUS) || fd < 0 || len == 0 || b <= a ||
	    (type != MAP_SHARED && type != MAP_SHARED_VALIDATE) ||
	    nb_sys_fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
		goto out;
	/* O_DIRECT descriptions do not splice the page cache. */
	int fl = nb_sys_fcntl(fd, F_GETFL, 0);
	if (fl < 0 || (fl & O_DIRECT))
		goto out;
	int bk = nb_backing_get_mapped(fd, st.st_dev, st.st_ino);
	if (bk < 0)
		goto out;
	wlock();
	int i = free_slot();
	if (i >= 0) {
		put_entry(&table[i], a, b, off, bk, fd);
		NB_SETTLE_RAISE(nb_mapping_live);
	}
	wunlock();
	if (i < 0)
		nb_backing_put(bk); /* table full: this one stays plain */
out:
	errno = saved;
}

/* One consistent look at the table: the entry overlapping [a, b) that
 * starts lowest, its backing referenced. 1 found, 0 none, -1 changed
 * meanwhile (look again). */
static int look(uintptr_t a, uintptr_t b, struct nb_mapping_view *v)
{
	unsigned s1 = atomic_load(&seq);
	if (s1 & 1)
		return -1;
	int n = atomic_load(&top), best = -1;
	struct entry found = { 0, 0, 0, -1, -1 };
	for (int i = 0; i < n; i++) {
		uintptr_t s = __atomic_load_n(&table[i].start, __ATOMIC_ACQUIRE);
		uintptr_t e = __atomic_load_n(&table[i].end, __ATOMIC_ACQUIRE);
		if (e == 0 || e <= a || s >= b || (best >= 0 && s >= found.start))
			continue;
		best = i;
		found.start = s;
		found.end = e;
		found.off = __atomic_load_n(&table[i].off, __ATOMIC_ACQUIRE);
		found.backing = __atomic_load_n(&table[i].backing, __ATOMIC_ACQUIRE);
		found.src = __atomic_load_n(&table[i].src, __ATOMIC_ACQUIRE);
	}
	if (best < 0)
		return atomic_load(&seq) == s1 ? 0 : -1;
	/* (The entry was read with acquire loads: the second look at the
	 * sequence cannot pass them.) */
	if (atomic_load(&seq) != s1)
		return -1;
	nb_backing_ref(found.backing);
	if (atomic_load(&seq) != s1) {
		nb_backing_put(found.backing);
		return -1;
	}
	v->start = found.start;
	v->end = found.end;
	v->off = found.off;
	v->backing = found.backing;
	v->src = found.src;
	return 1;
}

bool nb_mapping_next(uintptr_t a, uintptr_t b, struct nb_mapping_view *v)
{
	if (!nb_mapping_any() || b <= a)
		return false;
	for (int t = 0; t < NB_MAP_RETRIES; t++) {
		int r = look(a, b, v);
		if (r >= 0)
			return r == 1;
	}
	return false; /* the table keeps changing: plain */
}

size_t nb_mapping_bytes(uintptr_t a, uintptr_t b)
{
	size_t n = 0;
	struct nb_mapping_view v;
	while (a < b && nb_mapping_next(a, b, &v)) {
		nb_backing_put(v.backing);
		uintptr_t s = v.start > a ? v.start : a, e = v.end < b ? v.end : b;
		n += e - s;
		a = e;
	}
	return n;
}

void nb_mapping_atfork_child(void)
{
	/* A writer of another thread held the lock at fork: that thread is
	 * not in the child. The table itself stays right (the child has the
	 * same mappings) except for an entry being cut - forgotten whole is
	 * safe, but which one cannot be told; with the sequence odd, every
	 * entry goes. */
	if (atomic_load(&seq) & 1) {
		for (int i = 0; i < NB_MAPPINGS; i++)
			put_entry(&table[i], 0, 0, 0, -1, -1);
		atomic_store(&nb_mapping_live, 0);
		atomic_fetch_add(&seq, 1);
	}
	atomic_store(&lock, 0);
}

void nb_mapping_reset(void)
{
	for (int i = 0; i < NB_MAPPINGS; i++)
		put_entry(&table[i], 0, 0, 0, -1, -1);
	atomic_store(&nb_mapping_live, 0);
	atomic_store(&top, 0);
}
