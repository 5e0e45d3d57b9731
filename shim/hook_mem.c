/*
 * hook_mem.c - memory that goes away or changes under a phantom.
 *
 * Owns: free, realloc, munmap, mremap, madvise, mprotect, pkey_mprotect,
 * mmap (+64) and sigaltstack. They also keep the table of read-only file
 * mappings (mapping.c) up to date: recorded by mmap, forgotten by
 * whatever unmaps, moves, replaces or un-read-onlies them.
 * A phantom must never outlive its memory: memory that is freed is
 * forgotten first (without filling: its next owner must see what it would
 * see without the library, and a later write of that address must never
 * be served from the old backing); memory whose contents carry on
 * (realloc, mremap) or whose protection the program changes (mprotect) is
 * materialised first. Calls that may fail, or fail half-way (munmap,
 * mmap(MAP_FIXED), MREMAP_FIXED, madvise), act on what the kernel really
 * did: the phantoms in the range are held across the call and released
 * by its outcome (phantom.c nb_phantom_hold), never dropped before it.
 * Must not: cost more than one relaxed load while no phantom exists.
 *
 * glibc releases memory with internal calls (free unmaps large chunks
 * with its own __munmap; trimming happens inside free), which is why free
 * itself is interposed: everything glibc gives back, it gives back inside
 * a free we see.
 */
#include "hook.h"

#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/shm.h>

extern void *__libc_realloc(void *p, size_t n);

static inline NB_UNINSTRUMENTED bool phantoms(void)
{
	return NB_UNLIKELY(nb_phantom_any());
}

NB_EXPORT NB_UNINSTRUMENTED void free(void *p)
{
	if (p != NULL && phantoms()) {
		uintptr_t a = (uintptr_t)p;
		NB_KEEP_ERRNO(nb_phantom_drop_range(a, a + malloc_usable_size(p), true));
	}
	if (NB_UNLIKELY(nb_real.free == NULL))
		nb_real_init();
	/* Still unresolved: this thread is inside dlsym, which frees its
	 * error buffer. Whose malloc made it (libc's, a sanitizer's, a
	 * replacement's) is unknown here, so it is left alone: a few bytes,
	 * once, at start-up. */
	if (NB_LIKELY(nb_real.free != NULL))
		nb_real.free(p);
}

NB_EXPORT NB_UNINSTRUMENTED void *realloc(void *p, size_t n)
{
	if (p != NULL && phantoms()) {
		uintptr_t a = (uintptr_t)p;
		NB_KEEP_ERRNO(nb_phantom_materialize_range(a, a + malloc_usable_size(p)));
	}
	if (NB_UNLIKELY(nb_real.realloc == NULL))
		nb_real_init();
	if (NB_LIKELY(nb_real.realloc != NULL))
		return nb_real.realloc(p, n);
	return __libc_realloc(p, n);
}

/* The pages a call on [addr, addr+len) acts on: the kernel rounds the
 * length up to whole pages (munmap(2), madvise(2)). */
static uintptr_t page_end(uintptr_t a, size_t len)
{
	uintptr_t pg = 4096, e = a + len;
	if (e < a || e > UINTPTR_MAX - pg)
		return UINTPTR_MAX;
	return (e + pg - 1) & ~(pg - 1);
}

/* Phantoms held across one memory call (phantom.c nb_phantom_hold), with
 * every signal blocked meanwhile: a handler of this thread that touched
 * a held phantom would wait for its own thread for ever. */
#define NB_HELD_MAX 32
struct held {
	int idx[NB_HELD_MAX];
	int n;
};

static void hold(struct held *h, uintptr_t a, uintptr_t b, bool mark)
{
	h->n = 0;
	if (!phantoms())
		return;
	int saved = errno;
	/* Each entry held is a critical section of its own (phantom.c
	 * claim): asynchronous signals stay blocked until it is released. */
	h->n = nb_phantom_hold(a, b, h->idx, NB_HELD_MAX, mark);
	errno = saved;
}

static void release(struct held *h, int how)
{
	int saved = errno;
	if (h->n > 0)
		nb_phantom_release_held(h->idx, h->n, how);
	errno = saved;
}

/* munmap is all or nothing: arguments are checked and the mappings at
 * both ends split before anything is unmapped. */
NB_EXPORT int munmap(void *addr, size_t len)
{
	nb_defer_maps_changed();
	uintptr_t a = (uintptr_t)addr, b = page_end(a, len);
	struct held h;
	hold(&h, a, b, false);
	int r = NB_CALL(munmap, (int)syscall(SYS_munmap, addr, len), addr, len);
	release(&h, r == 0 ? NB_HELD_GONE : NB_HELD_KEEP);
	if (r == 0) {
		NB_KEEP_ERRNO(nb_defer_fork_special(a, b, false));
		nb_same_unmapped(a, b); /* shared mappings of files (sameproc.c) */
	}
	nb_mapping_forget(a, b - a); /* failed too: forgetting is safe */
	return r;
}

NB_EXPORT void *mremap(void *old, size_t oldlen, size_t newlen, int flags, ...)
{
	va_list ap;
	va_start(ap, flags);
	/* MREMAP_DONTUNMAP without MREMAP_FIXED takes it as a hint. */
	void *naddr = (flags & (MREMAP_FIXED | MREMAP_DONTUNMAP)) ? va_arg(ap, void *) : NULL;
	va_end(ap);
	nb_defer_maps_changed();
	struct held h = { .n = 0 };
	if (phantoms()) {
		/* The contents move (or, MREMAP_DONTUNMAP, leave an empty
		 * range behind): they are the read's bytes from here on. */
		NB_KEEP_ERRNO(nb_phantom_materialize_range((uintptr_t)old,
							   page_end((uintptr_t)old, oldlen)));
		if (flags & MREMAP_FIXED)
			hold(&h, (uintptr_t)naddr, page_end((uintptr_t)naddr, newlen), false);
	}
	void *r = NB_CALL(mremap, (void *)syscall(SYS_mremap, old, oldlen, newlen, flags, naddr),
			  old, oldlen, newlen, flags, naddr);
	/* A failing MREMAP_FIXED may have unmapped the target already
	 * (mremap_to unmaps it before the checks that can still fail). */
	release(&h, r != MAP_FAILED ? NB_HELD_GONE : NB_HELD_BY_MAPPED);
	nb_same_remapped((uintptr_t)old, oldlen, r, newlen, flags);
	/* A mapping moved or resized is forgotten, where it was and where
	 * it is (a failed MREMAP_FIXED may have unmapped its target). */
	nb_mapping_forget((uintptr_t)old, oldlen);
	if (flags & MREMAP_FIXED)
		nb_mapping_forget((uintptr_t)naddr, newlen);
	if (r != MAP_FAILED)
		nb_mapping_forget((uintptr_t)r, newlen);
	return r;
}

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif

/*
 * madvise(2), advice by advice, for private anonymous memory (the only
 * kind that is ever guarded):
 * - no change to the bytes or the protection (NORMAL, RANDOM, SEQUENTIAL,
 *   WILLNEED, MERGEABLE/UNMERGEABLE, HUGEPAGE/NOHUGEPAGE, COLLAPSE,
 *   DONTDUMP/DODUMP, COLD, PAGEOUT): the phantom stays as it is.
 * - zero pages next (DONTNEED, DONTNEED_LOCKED, REMOVE - which private
 *   anonymous memory refuses with EINVAL): decided per phantom by what
 *   the call did, which may be part of the range when it fails half-way
 *   (an mlock'ed mapping further on).
 * - WIPEONFORK, DONTFORK: the parent's bytes stay; a child gets zero
 *   pages or none at all, which a phantom cannot stand for. Filled now,
 *   and such memory is never guarded again (defer.c).
 * - everything else (FREE, whose pages keep their bytes until the kernel
 *   reclaims them; POPULATE_READ/WRITE, which fail with EFAULT/EINVAL on
 *   PROT_NONE pages; HWPOISON, SOFT_OFFLINE, GUARD_INSTALL, advice this
 *   file does not know): filled first, so the kernel acts on the bytes
 *   the program has - exact whatever the outcome.
 */
NB_EXPORT int madvise(void *addr, size_t len, int advice)
{
	uintptr_t a = (uintptr_t)addr, b = page_end(a, len);
	struct held h = { .n = 0 };
	int how = NB_HELD_KEEP;
	if (phantoms()) {
		switch (advice) {
		case MADV_NORMAL:
		case MADV_RANDOM:
		case MADV_SEQUENTIAL:
		case MADV_WILLNEED:
		case MADV_MERGEABLE:
		case MADV_UNMERGEABLE:
		case MADV_HUGEPAGE:
		case MADV_NOHUGEPAGE:
		case MADV_COLLAPSE:
		case MADV_DONTDUMP:
		case MADV_DODUMP:
		case MADV_COLD:
		case MADV_PAGEOUT:
		case MADV_KEEPONFORK:
		case MADV_DOFORK:
			break;
		case MADV_DONTNEED:
		case MADV_DONTNEED_LOCKED:
		case MADV_REMOVE:
			hold(&h, a, b, true);
			how = NB_HELD_BY_MARK;
			break;
		default:
			NB_KEEP_ERRNO(nb_phantom_overwrite_range(a, b));
			break;
		}
	}
	int r = NB_CALL(madvise, (int)syscall(SYS_madvise, addr, len, advice), addr, len, advice);
	release(&h, how);
	/* Marked whatever the result: a call that failed half-way did mark
	 * a part. Unmarked only on success. */
	if (advice == MADV_WIPEONFORK || advice == MADV_DONTFORK) {
		NB_KEEP_ERRNO(nb_defer_fork_special(a, b, true));
		/* A child has no pages there: its plain write fails. */
		nb_mapping_forget(a, b - a);
	}
	else if ((advice == MADV_KEEPONFORK || advice == MADV_DOFORK) && r == 0)
		NB_KEEP_ERRNO(nb_defer_fork_special(a, b, false));
	return r;
}

/* Pages the program guards itself (no read or no write now): faults
 * there are its own, also where the library opened pages lately
 * (phantom.c nb_phantom_forget_opened). After the call: a fault before
 * it is retried a few times at most, never handed on while the pages
 * are still open. */
static void own_guard(uintptr_t a, size_t len, int prot, int r)
{
	if (r == 0 && (prot & (PROT_READ | PROT_WRITE)) != (PROT_READ | PROT_WRITE) &&
	    nb_phantom_ever())
		NB_KEEP_ERRNO(nb_phantom_forget_opened(a, page_end(a, len)));
}

NB_EXPORT int mprotect(void *addr, size_t len, int prot)
{
	if (phantoms())
		NB_KEEP_ERRNO(nb_phantom_materialize_range((uintptr_t)addr, (uintptr_t)addr + len));
	/* Write access to a shared mapping of a file: stores into it change
	 * the file unseen (sameproc.c), before the call lets them. */
	nb_same_protect((uintptr_t)addr, page_end((uintptr_t)addr, len), prot);
	nb_mapping_protect((uintptr_t)addr, len, prot);
	int r = NB_CALL(mprotect, (int)syscall(SYS_mprotect, addr, len, prot), addr, len, prot);
	own_guard((uintptr_t)addr, len, prot, r);
	return r;
}

/* pkey_mprotect(2) changes protections as mprotect does (pkey -1 is
 * mprotect itself), and a key's rights can make pages writable later
 * (pkeys(7)): the same duties, and a read-only file mapping is forgotten. */
NB_EXPORT int pkey_mprotect(void *addr, size_t len, int prot, int pkey)
{
	if (phantoms())
		NB_KEEP_ERRNO(nb_phantom_materialize_range((uintptr_t)addr, (uintptr_t)addr + len));
	nb_mapping_forget((uintptr_t)addr, len);
	nb_same_protect((uintptr_t)addr, page_end((uintptr_t)addr, len), prot);
	int r = NB_CALL(pkey_mprotect, (int)syscall(SYS_pkey_mprotect, addr, len, prot, pkey), addr,
			len, prot, pkey);
	own_guard((uintptr_t)addr, len, prot, r);
	return r;
}

NB_EXPORT void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	nb_defer_maps_changed();
	/* MAP_FIXED replaces whatever was mapped there - and a MAP_FIXED that
	 * fails (mmap_region unmaps first, then may still fail) may have
	 * unmapped it already. */
	struct held h = { .n = 0 };
	if (flags & MAP_FIXED)
		hold(&h, (uintptr_t)addr, page_end((uintptr_t)addr, len), false);
	void *r = NB_CALL(mmap, (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off), addr,
			  len, prot, flags, fd, off);
	release(&h, r != MAP_FAILED ? NB_HELD_GONE : NB_HELD_BY_MAPPED);
	if ((flags & MAP_FIXED) && r != MAP_FAILED)
		nb_same_unmapped((uintptr_t)addr, page_end((uintptr_t)addr, len));
	/* A shared mapping of a file: recorded (and, writable, the file's
	 * phantoms filled) before the program has its address. */
	if (r != MAP_FAILED && !(flags & MAP_ANONYMOUS) && nb_on())
		NB_KEEP_ERRNO(nb_same_mapped(r, page_end((uintptr_t)r, len) - (uintptr_t)r, prot,
					     flags, fd));
	if ((flags & MAP_FIXED) && r != MAP_FAILED)
		NB_KEEP_ERRNO(nb_defer_fork_special((uintptr_t)addr, page_end((uintptr_t)addr, len),
						    false));
	/* A read-only file mapping is recorded (mapping.c); a failed
	 * MAP_FIXED may have unmapped its target. */
	if (r != MAP_FAILED && nb_on() &&
	    ((prot == PROT_READ && !(flags & MAP_ANONYMOUS)) || nb_mapping_any()))
		nb_mapping_added(r, len, prot, flags, fd, off);
	else if (r == MAP_FAILED && (flags & MAP_FIXED))
		nb_mapping_forget((uintptr_t)addr, len);
	return r;
}
void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off64_t off) NB_ALIAS(mmap);

/* remap_file_pages(2) (MAP_SHARED only) makes the pages at addr show other
 * offsets of their file: the table's offset for them is wrong from now
 * on, so the range is forgotten (whatever the outcome: forgetting is
 * always safe). */
NB_EXPORT int remap_file_pages(void *addr, size_t size, int prot, size_t pgoff, int flags)
{
	nb_mapping_forget((uintptr_t)addr, size);
	return (int)syscall(SYS_remap_file_pages, addr, size, prot, pgoff, flags);
}

/* shmat(2) maps a System V segment; with SHM_REMAP over whatever was
 * there, a read-only file mapping included (and a failing SHM_REMAP may
 * have unmapped its target already, as mmap(MAP_FIXED)). */
NB_EXPORT void *shmat(int id, const void *addr, int flg)
{
	void *r = (void *)syscall(SYS_shmat, id, addr, flg);
	if (nb_mapping_any() && (r != (void *)-1 || (addr != NULL && (flg & SHM_REMAP)))) {
		int saved = errno;
		struct shmid_ds ds;
		uintptr_t at = r != (void *)-1 ? (uintptr_t)r : (uintptr_t)addr & ~(uintptr_t)(SHMLBA - 1);
		/* Size unknown (no IPC_STAT right): the whole address space
		 * above it could be it - forget everything from there. */
		size_t len = syscall(SYS_shmctl, id, IPC_STAT, &ds) == 0 ? ds.shm_segsz
									  : UINTPTR_MAX - at;
		nb_mapping_forget(at, len);
		errno = saved;
	}
	return r;
}

/* A new alternate signal stack: memory that was fine to guard may now be
 * where the kernel pushes signal frames (defer.c reads it again). */
NB_EXPORT int sigaltstack(const stack_t *ss, stack_t *old)
{
	nb_kread_sigaltstack(ss, old);
	stack_t in;
	/* Memory that becomes the alternate stack gets the kernel's signal
	 * frames, pushed without a fault anyone could handle: a phantom
	 * there is filled first (a former copy buffer made the stack died
	 * at its first signal). in_altstack keeps new ones out. */
	if (ss != NULL && phantoms() && nb_copy_in(&in, ss, sizeof in) &&
	    !(in.ss_flags & SS_DISABLE) && in.ss_size > 0)
		nb_defer_expose(in.ss_sp, in.ss_size);
	if (ss != NULL)
		nb_defer_maps_changed();
	return NB_CALL(sigaltstack, (int)syscall(SYS_sigaltstack, ss, old), ss, old);
}

/* mlock(2) faults the range in: on a guarded page that fails (ENOMEM)
 * where the plain call succeeds. The bytes go into memory first. */
NB_EXPORT int mlock(const void *addr, size_t len)
{
	if (phantoms())
		NB_KEEP_ERRNO(nb_phantom_overwrite_range((uintptr_t)addr, (uintptr_t)addr + len));
	return NB_CALL(mlock, (int)syscall(SYS_mlock, addr, len), addr, len);
}

NB_EXPORT int mlock2(const void *addr, size_t len, unsigned int flags)
{
	if (phantoms())
		NB_KEEP_ERRNO(nb_phantom_overwrite_range((uintptr_t)addr, (uintptr_t)addr + len));
	return NB_CALL(mlock2, (int)syscall(SYS_mlock2, addr, len, flags), addr, len, flags);
}
