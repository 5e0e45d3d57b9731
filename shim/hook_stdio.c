/*
 * hook_stdio.c - stdio calls that open or close descriptors internally.
 *
 * Owns: fopen, freopen (+64), fdopen and fclose. A stream that writes a
 * regular file is a way to change it no hook sees (sameproc.c); one
 * opened "w" truncates, so the file's phantoms are filled first. glibc opens and closes
 * the descriptors behind a FILE with internal calls (__open_nocancel,
 * __close_nocancel) that no open() or close() hook sees, so these hooks
 * tell fdtab.c which numbers changed meaning.
 * Also fread/fwrite (+_unlocked): for large transfers glibc hands the
 * caller's buffer straight to its internal read/write, which no hook sees
 * and which would get EFAULT on a phantom's guarded pages - so phantoms
 * there are materialised first. (fputs, printf and friends scan their
 * strings in user space first, which materialises by fault.)
 * fwrite of a phantom or of a read-only file mapping on a write-only
 * stream is served by the kernel path
 * (forward_fwrite), and every fwrite is reported to the detector: curl -o
 * and wget -O write their downloads this way.
 * Must not: look inside the FILE beyond fileno(), the error flag and the
 * cached offset (both public in glibc's struct_FILE.h), or change any
 * result.
 */
#include "hook.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <fcntl.h>
#include <stdio_ext.h>

static void forget_file(FILE *f)
{
	if (f != NULL)
		NB_KEEP_ERRNO(nb_fd_forget(fileno(f)));
}

/* fopen(3) modes: "w..." truncates; 'w', 'a' and '+' write. */
static bool mode_truncates(const char *mode)
{
	return mode != NULL && mode[0] == 'w';
}

static bool mode_writes(const char *mode)
{
	if (mode == NULL)
		return false;
	for (const char *m = mode; *m != '\0' && *m != ','; m++)
		if (*m == 'w' || *m == 'a' || *m == '+')
			return true;
	return false;
}

/* A stream that writes: glibc flushes it with internal calls no hook
 * sees, so the file it names is not deferred while it is open (and its
 * phantoms are filled now: sameproc.c). */
static void stream_opened(FILE *f, const char *mode)
{
	if (f != NULL && nb_on() && mode_writes(mode))
		NB_KEEP_ERRNO(nb_same_stream_opened(f, fileno(f), true));
}

NB_EXPORT FILE *fopen(const char *path, const char *mode)
{
	if (mode_truncates(mode))
		nb_defer_before_open(AT_FDCWD, path, O_TRUNC);
	FILE *f = NB_CALL(fopen, (errno = ENOSYS, NULL), path, mode);
	forget_file(f);
	stream_opened(f, mode);
	return f;
}
FILE *fopen64(const char *path, const char *mode) NB_ALIAS(fopen);

NB_EXPORT FILE *fdopen(int fd, const char *mode)
{
	NB_OWN_BADF(fd, NULL);
	FILE *f = NB_CALL(fdopen, (errno = ENOSYS, NULL), fd, mode);
	stream_opened(f, mode);
	return f;
}

NB_EXPORT FILE *freopen(const char *path, const char *mode, FILE *f)
{
	int old = f ? fileno(f) : -1;
	if (mode_truncates(mode)) {
		/* No path: the same file again, with the new mode. */
		if (path != NULL)
			nb_defer_before_open(AT_FDCWD, path, O_TRUNC);
		else if (old >= 0)
			nb_defer_before_truncate(old, 0);
	}
	FILE *r = NB_CALL(freopen, (errno = ENOSYS, NULL), path, mode, f);
	/* The old stream was flushed and closed inside: forgotten after. */
	if (f != NULL)
		NB_KEEP_ERRNO(nb_same_stream_closed(f));
	if (old >= 0)
		NB_KEEP_ERRNO(nb_fd_forget(old));
	forget_file(r);
	stream_opened(r, mode);
	return r;
}
FILE *freopen64(const char *path, const char *mode, FILE *f) NB_ALIAS(freopen);

NB_EXPORT int fclose(FILE *f)
{
	int fd = fileno(f);
	int r = NB_CALL(fclose, (errno = ENOSYS, EOF), f);
	/* After: fclose flushes what the stream still buffers. */
	NB_KEEP_ERRNO(nb_same_stream_closed(f));
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

/*
 * fwrite of memory holding phantoms, on a stream that only writes: the
 * stream's buffered bytes go out first (fflush), then the caller's bytes
 * by the kernel path (forward.c), as one write(2) of them would; what a
 * short forward leaves goes through the real fwrite, which also records
 * errors on the stream. Afterwards the stream's cached file offset is
 * marked unknown (_offset = -1, as glibc itself does after a seek it
 * cannot account for), so ftell asks the kernel. Anything else - a stream
 * that also reads, a failed flush, no kernel path - is materialised and
 * left to the real fwrite. Returns the count of items, or SIZE_MAX when
 * not served (the caller makes the plain call).
 */
static size_t forward_fwrite(const void *p, size_t size, size_t n, FILE *f)
{
	if ((NB_LIKELY(!nb_phantom_any()) && NB_LIKELY(!nb_mapping_any())) || size == 0 ||
	    n == 0 || n > SIZE_MAX / size ||
	    f == NULL || !__fwritable(f) || __freadable(f) || size * n > (size_t)SSIZE_MAX)
		return SIZE_MAX;
	size_t bytes = size * n;
	uintptr_t a = (uintptr_t)p;
	/* Phantoms, or a read-only file mapping (mapping.c) big enough for
	 * the kernel path to win. */
	if ((nb_phantom_next(a, a + bytes) < 0 &&
	     (!nb_mapping_any() || nb_mapping_bytes(a, a + bytes) < nb_g.cfg.min_chunk)) ||
	    fflush_unlocked(f) != 0)
		return SIZE_MAX;
	ssize_t r = nb_forward(fileno(f), p, bytes, NB_FWD_WRITE, 0, 0);
	if (r == NB_NOT_FORWARDED)
		return SIZE_MAX;
	f->_offset = -1; /* the kernel's position moved under the stream */
	size_t done = r > 0 ? (size_t)r : 0;
	if (r < 0) {
		f->_flags |= _IO_ERR_SEEN; /* what the real fwrite records, errno kept */
		return 0;
	}
	if (done < bytes) {
		expose((const char *)p + done, 1, bytes - done);
		done += NB_REAL(fwrite_unlocked)((const char *)p + done, 1, bytes - done, f);
	}
	return done / size;
}

/* The loop's write, for the detector: what the stream took. Smaller
 * writes than the smallest read it tracks cannot complete a bounce. */
static void seen_fwrite(FILE *f, const void *p, size_t size, size_t items)
{
	if (items > 0 && f != NULL && size * items >= nb_track_min() && nb_on())
		NB_KEEP_ERRNO(nb_detect_write(fileno(f), p, size * items));
}

NB_EXPORT size_t fwrite(const void *p, size_t size, size_t n, FILE *f)
{
	size_t r = SIZE_MAX;
	if (NB_UNLIKELY(nb_phantom_any()) || NB_UNLIKELY(nb_mapping_any())) {
		flockfile(f);
		r = forward_fwrite(p, size, n, f);
		funlockfile(f);
	}
	if (r == SIZE_MAX) {
		expose(p, size, n);
		r = NB_CALL(fwrite, (errno = ENOSYS, 0), p, size, n, f);
	}
	seen_fwrite(f, p, size, r);
	return r;
}

NB_EXPORT size_t fwrite_unlocked(const void *p, size_t size, size_t n, FILE *f)
{
	size_t r = forward_fwrite(p, size, n, f);
	if (r == SIZE_MAX) {
		expose(p, size, n);
		r = NB_CALL(fwrite_unlocked, (errno = ENOSYS, 0), p, size, n, f);
	}
	seen_fwrite(f, p, size, r);
	return r;
}

/* dprintf(3) writes to the descriptor through a stream of glibc's own,
 * with internal calls no write hook sees: to a file, the bytes from its
 * position on change first (defer.c). */
static void before_dprintf(int fd)
{
	if (NB_UNLIKELY(nb_phantom_any() || nb_same_inflight_any()))
		nb_defer_before_write(fd, -1, SIZE_MAX);
}

NB_EXPORT int vdprintf(int fd, const char *fmt, va_list ap)
{
	before_dprintf(fd);
	return NB_CALL(vdprintf, (errno = ENOSYS, -1), fd, fmt, ap);
}

NB_EXPORT int dprintf(int fd, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = vdprintf(fd, fmt, ap);
	va_end(ap);
	return r;
}

NB_EXPORT int __vdprintf_chk(int fd, int flag, const char *fmt, va_list ap)
{
	before_dprintf(fd);
	return NB_CALL(__vdprintf_chk, (errno = ENOSYS, -1), fd, flag, fmt, ap);
}

int __dprintf_chk(int fd, int flag, const char *fmt, ...);
NB_EXPORT int __dprintf_chk(int fd, int flag, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = __vdprintf_chk(fd, flag, fmt, ap);
	va_end(ap);
	return r;
}
