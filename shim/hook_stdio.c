/*
 * hook_stdio.c - stdio calls that open or close descriptors internally.
 *
 * Owns: fopen, freopen (+64) and fclose (fdopen makes no descriptor). glibc opens and closes
 * the descriptors behind a FILE with internal calls (__open_nocancel,
 * __close_nocancel) that no open() or close() hook sees, so these hooks
 * tell fdtab.c which numbers changed meaning.
 * Must not: look inside the FILE beyond fileno(), or change any result.
 * fread/fwrite arrive with the socket-source work (phantoms handed to
 * stdio); until then they are not interposed at all.
 */
#include "hook.h"

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
