/*
 * hook_mem.c - memory that goes away or changes under a phantom.
 *
 * Owns: free, realloc, munmap, mremap, madvise, mprotect and mmap (+64).
 * A phantom must never outlive its memory: memory that is freed, unmapped
 * or madvised away is forgotten first (without filling: its next owner
 * must see what it would see without the library, and a later write of
 * that address must never be served from the old backing); memory whose
 * contents carry on (realloc, mremap) or whose protection the program
 * changes (mprotect) is materialised first.
 * Must not: cost more than one relaxed load while no phantom exists.
 *
 * glibc releases memory with internal calls (free unmaps large chunks
 * with its own __munmap; trimming happens inside free), which is why free
 * itself is interposed: everything glibc gives back, it gives back inside
 * a free we see.
 */
#include "hook.h"

#include <malloc.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/mman.h>

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

NB_EXPORT int munmap(void *addr, size_t len)
{
	nb_defer_maps_changed();
	if (phantoms())
		NB_KEEP_ERRNO(nb_phantom_drop_range((uintptr_t)addr, (uintptr_t)addr + len, false));
	return NB_CALL(munmap, (int)syscall(SYS_munmap, addr, len), addr, len);
}

NB_EXPORT void *mremap(void *old, size_t oldlen, size_t newlen, int flags, ...)
{
	va_list ap;
	va_start(ap, flags);
	void *naddr = (flags & MREMAP_FIXED) ? va_arg(ap, void *) : NULL;
	va_end(ap);
	nb_defer_maps_changed();
	if (phantoms()) {
		NB_KEEP_ERRNO(nb_phantom_materialize_range((uintptr_t)old, (uintptr_t)old + oldlen));
		if (flags & MREMAP_FIXED)
			NB_KEEP_ERRNO(nb_phantom_drop_range((uintptr_t)naddr,
							    (uintptr_t)naddr + newlen, false));
	}
	return NB_CALL(mremap, (void *)syscall(SYS_mremap, old, oldlen, newlen, flags, naddr), old,
		       oldlen, newlen, flags, naddr);
}

NB_EXPORT int madvise(void *addr, size_t len, int advice)
{
	if (phantoms()) {
		uintptr_t a = (uintptr_t)addr;
		switch (advice) {
		case MADV_DONTNEED:
		case MADV_FREE:
		case MADV_REMOVE:
		case MADV_WIPEONFORK:
			/* The program asks for the bytes to go: zeros next. */
			NB_KEEP_ERRNO(nb_phantom_drop_range(a, a + len, true));
			break;
		default:
			break;
		}
	}
	return NB_CALL(madvise, (int)syscall(SYS_madvise, addr, len, advice), addr, len, advice);
}

NB_EXPORT int mprotect(void *addr, size_t len, int prot)
{
	if (phantoms())
		NB_KEEP_ERRNO(nb_phantom_materialize_range((uintptr_t)addr, (uintptr_t)addr + len));
	return NB_CALL(mprotect, (int)syscall(SYS_mprotect, addr, len, prot), addr, len, prot);
}

NB_EXPORT void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	nb_defer_maps_changed();
	/* MAP_FIXED replaces whatever was mapped there. */
	if ((flags & MAP_FIXED) && phantoms())
		NB_KEEP_ERRNO(nb_phantom_drop_range((uintptr_t)addr, (uintptr_t)addr + len, false));
	return NB_CALL(mmap, (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off), addr, len,
		       prot, flags, fd, off);
}
void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off64_t off) NB_ALIAS(mmap);
