/*
 * hook_stdio.c - stdio calls that open or close descriptors internally.
 *
 * Owns: fopen, freopen (+64) and fclose (fdopen makes no descriptor). glibc opens and closes
 * the descriptors behind a FILE with internal calls (__open_nocancel,
 * __close_nocancel) that no open() or close() hook sees, so these hooks
 * tell fdtab.c which numbers changed meaning.
 * Also fread/fwrite (+_unlocked): for large transfers glibc hands the
 * caller's buffer straight to its internal read/write, which no hook sees
 * and which would get EFAULT on a phantom's guarded pages - so phantoms
 * there are materialised first. (fputs, printf and friends scan their
 * strings in user space first, which materialises by fault.)
 * Must not: look inside the FILE beyond fileno(), or change any result.
 */
#include "hook.h"

#include <stdint.h>
#include <stdio.h>

static void forget_file(FILE *f)
{
	if (f != NULL)
		NB_KEEP_ERRNO(nb_fd_forget(fileno(f)));
}

NB_EXPORT FILE *fopen(const char *path, const char *mode)
{
	FILE *f = NB_CALL(fopen, (errno = ENOSYS, NULL), path, mode);
	forget_file(f);
	return f;
}
FILE *fopen64(const char *path, const char *mode) NB_ALIAS(fopen);

NB_EXPORT FILE *freopen(const char *path, const char *mode, FILE *f)
{
	int old = f ? fileno(f) : -1;
	FILE *r = NB_CALL(freopen, (errno = ENOSYS, NULL), path, mode, f);
	if (old >= 0)
		NB_KEEP_ERRNO(nb_fd_forget(old));
	forget_file(r);
	return r;
}
FILE *freopen64(const char *path, const char *mode, FILE *f) NB_ALIAS(freopen);

NB_EXPORT int fclose(FILE *f)
{
	int fd = fileno(f);
	int r = NB_CALL(fclose, (errno = ENOSYS, EOF), f);
	if (fd >= 0)
		NB_KEEP_ERRNO(nb_fd_forget(fd));
	return r;
}

/* <stdio.h> may define these as macros for inline expansion. */
#undef fread_unlocked
#undef fwrite_unlocked

static inline void expose(const void *p, size_t size, size_t n)
{
	if (NB_UNLIKELY(nb_phantom_any()) && size != 0 && n <= SIZE_MAX / size)
		nb_defer_expose(p, size * n);
}

NB_EXPORT size_t fread(void *p, size_t size, size_t n, FILE *f)
{
	expose(p, size, n);
	return NB_CALL(fread, (errno = ENOSYS, 0), p, size, n, f);
}

NB_EXPORT size_t fread_unlocked(void *p, size_t size, size_t n, FILE *f)
{
	expose(p, size, n);
	return NB_CALL(fread_unlocked, (errno = ENOSYS, 0), p, size, n, f);
}

NB_EXPORT size_t fwrite(const void *p, size_t size, size_t n, FILE *f)
{
	expose(p, size, n);
	return NB_CALL(fwrite, (errno = ENOSYS, 0), p, size, n, f);
}

NB_EXPORT size_t fwrite_unlocked(const void *p, size_t size, size_t n, FILE *f)
{
	expose(p, size, n);
	return NB_CALL(fwrite_unlocked, (errno = ENOSYS, 0), p, size, n, f);
}
