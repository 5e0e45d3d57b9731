/*
 * hook_fd.c - descriptor lifecycle: every call that closes a number or
 * makes it name another file.
 *
 * Owns: close, close_range, closefrom, dup, dup2, dup3, fcntl (+64), socket,
 * socketpair, accept, accept4, pipe, pipe2, open/openat (+64, fortify
 * variants), creat (+64), ftruncate/truncate/fallocate (+64); opens that
 * truncate and closes of a destination ask defer.c/sameproc.c first. Each calls the real
 * function and tells fdtab.c which numbers changed meaning; calls naming the library's own
 * descriptors are answered as if those were not open (ownfd.c).
 * Must not: allocate or lock (close and dup2 are async-signal-safe).
 */
#include "hook.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/socket.h>

#ifndef CLOSE_RANGE_UNSHARE
#define CLOSE_RANGE_UNSHARE (1U << 1)
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

/* A call returned a new descriptor (or failed): forget what the number
 * meant before. Cheap: one atomic increment when the slot exists. */
static inline int fresh(int fd)
{
	if (fd >= 0) {
		/* The kernel handed out a number of ours: something closed it
		 * behind the library's back (a raw close_range or close). */
		if (NB_UNLIKELY(nb_own_is(fd)))
			NB_KEEP_ERRNO(nb_own_lost_notice(fd));
		nb_fd_forget(fd);
		/* stdout or stderr now naming a file (sameproc.c) */
		if (NB_UNLIKELY(fd <= 2))
			nb_same_stdio_target(fd);
	}
	return fd;
}

NB_EXPORT int close(int fd)
{
	NB_OWN_BADF(fd, -1);
	nb_same_before_close(fd); /* a reader may still hold file pages */
	struct nb_fd *held = nb_fd_before_replace(fd);
	int r = NB_CALL(close, (int)syscall(SYS_close, fd), fd);
	/* Linux frees the number even when close reports EINTR or EIO. */
	if (r == 0 || errno != EBADF)
		nb_fd_forget(fd);
	nb_fd_after_replace(held);
	return r;
}

static int sys_close_range(unsigned lo, unsigned hi, int flags)
{
	return (int)syscall(SYS_close_range, lo, hi, flags);
}

NB_EXPORT int close_range(unsigned lo, unsigned hi, int flags)
{
	if (nb_real.close_range == NULL)
		nb_real_init();
	int (*real)(unsigned, unsigned, int) =
		nb_real.close_range ? nb_real.close_range : sys_close_range;
	/* EINVAL for lo > hi or unknown flags must come from the kernel,
	 * even when the range holds nothing but our descriptors. */
	bool plain = lo > hi || (flags & ~(CLOSE_RANGE_UNSHARE | CLOSE_RANGE_CLOEXEC)) != 0;
	bool replaces = !plain && !(flags & CLOSE_RANGE_CLOEXEC);
	if (replaces)
		nb_fd_before_replace_range(lo, hi);
	int r = plain ? real(lo, hi, flags) : nb_own_close_range(lo, hi, flags, real);
	if (r == 0 && !(flags & CLOSE_RANGE_CLOEXEC))
		nb_fd_forget_range(lo, hi);
	if (replaces)
		NB_KEEP_ERRNO(nb_fd_after_replace_range());
	return r;
}

/* closefrom(3) (glibc 2.34) closes through glibc's internal close_range,
 * which the hook above never sees: daemons call it before exec, and it
 * would take the library's descriptors with it. It is close_range(lo, ~0U,
 * 0) cut around ours; glibc's own fallback, when the kernel lacks
 * close_range, closes what /proc/self/fd lists - done here the same way,
 * skipping ours. glibc ends the process when it cannot close; so do we. */
static void closefrom_scan(unsigned lo)
{
	int dir = (int)syscall(SYS_openat, AT_FDCWD, "/proc/self/fd",
			       O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir < 0)
		abort();
	char buf[1024];
	for (;;) {
		long n = syscall(SYS_getdents64, dir, buf, sizeof buf);
		if (n <= 0)
			break;
		for (long at = 0; at < n;) {
			const struct nb_dirent64 *d = (const void *)(buf + at);
			at += d->reclen;
			char *e;
			unsigned long fd = strtoul(d->name, &e, 10);
			if (*e != '\0' || e == d->name || fd < lo || (int)fd == dir ||
			    nb_own_is((int)fd))
				continue;
			syscall(SYS_close, (int)fd);
		}
	}
	syscall(SYS_close, dir);
}

NB_EXPORT void closefrom(int lowfd)
{
	if (nb_real.close_range == NULL)
		nb_real_init();
	int (*real)(unsigned, unsigned, int) =
		nb_real.close_range ? nb_real.close_range : sys_close_range;
	int saved = errno;
	unsigned lo = lowfd < 0 ? 0 : (unsigned)lowfd;
	nb_fd_before_replace_range(lo, ~0U);
	if (nb_own_close_range(lo, ~0U, 0, real) != 0)
		closefrom_scan(lo);
	nb_fd_forget_range(lo, ~0U);
	nb_fd_after_replace_range();
	errno = saved;
}

NB_EXPORT int dup(int fd)
{
	NB_OWN_BADF(fd, -1);
	int r;
	NB_EMFILE_RETRY(r, NB_CALL(dup, (int)syscall(SYS_dup, fd), fd));
	return fresh(r);
}

NB_EXPORT int dup2(int fd, int nfd)
{
	NB_OWN_BADF(fd, -1);
	if (NB_UNLIKELY(nb_own_is(nfd))) {
		nb_own_prepare_surrender();
		nb_own_evict(nfd);
	}
	struct nb_fd *held = fd != nfd ? nb_fd_before_replace(nfd) : NULL;
	int r = NB_CALL(dup2, (int)syscall(SYS_dup2, fd, nfd), fd, nfd);
	if (r >= 0 && fd != nfd) {
		nb_fd_forget(r);
		nb_same_stdio_target(r);
	}
	NB_KEEP_ERRNO(nb_fd_after_replace(held));
	return r;
}

NB_EXPORT int dup3(int fd, int nfd, int flags)
{
	/* dup3(n, n) is EINVAL before any check of n: the kernel says so. */
	struct nb_fd *held = NULL;
	if (fd != nfd) {
		NB_OWN_BADF(fd, -1);
		if (NB_UNLIKELY(nb_own_is(nfd))) {
			nb_own_prepare_surrender();
			nb_own_evict(nfd);
		}
		held = nb_fd_before_replace(nfd);
	}
	int r = fresh(NB_CALL(dup3, (int)syscall(SYS_dup3, fd, nfd, flags), fd, nfd, flags));
	NB_KEEP_ERRNO(nb_fd_after_replace(held));
	return r;
}

static void setfl(int fd, int flags)
{
	struct nb_fd *e = nb_fd_peek(fd);
	if (e == NULL)
		return;
	if (nb_fd_trylock(e)) {
		if (e->kind != NB_KIND_UNKNOWN)
			nb_fd_set_flags(e, flags);
		nb_fd_unlock(e);
	} else {
		nb_fd_forget(fd); /* cannot update: reclassify later */
	}
}

NB_EXPORT int fcntl(int fd, int cmd, ...)
{
	/* Every fcntl argument is an int or a pointer; reading it as a
	 * pointer-sized integer passes either through unchanged. */
	va_list ap;
	va_start(ap, cmd);
	unsigned long arg = va_arg(ap, unsigned long);
	va_end(ap);

	NB_OWN_BADF(fd, -1);
	/* A write lease needs the file open nowhere else: our read lease's
	 * descriptor on it goes first (lease.c). */
	if (cmd == F_SETLEASE && arg == F_WRLCK)
		NB_KEEP_ERRNO(nb_lease_yield(fd));
	/* O_APPEND taken off a file's description: writes through it (its
	 * dups, a stdio stream on it) land at positions no hook was told
	 * of (sameproc.c). One F_GETFL, only for files. */
	bool was_append = false;
	if (cmd == F_SETFL && !(arg & O_APPEND) && nb_on()) {
		struct nb_fd *e = nb_fd_peek(fd);
		if (e == NULL || e->kind == NB_KIND_UNKNOWN || e->kind == NB_KIND_FILE) {
			int fl = nb_sys_fcntl(fd, F_GETFL, 0);
			was_append = fl >= 0 && (fl & O_APPEND);
		}
	}
	int r;
	NB_EMFILE_RETRY(r, NB_CALL(fcntl, (int)syscall(SYS_fcntl, fd, cmd, arg), fd, cmd, arg));
	if (r < 0)
		return r;
	switch (cmd) {
	case F_DUPFD:
	case F_DUPFD_CLOEXEC:
		nb_fd_forget(r);
		nb_same_stdio_target(r);
		break;
	case F_SETFL:
		NB_KEEP_ERRNO(setfl(fd, (int)arg));
		if (was_append)
			NB_KEEP_ERRNO(nb_same_append_cleared(fd));
		break;
	}
	return r;
}
int fcntl64(int fd, int cmd, ...) NB_ALIAS(fcntl);

NB_EXPORT int socket(int domain, int type, int proto)
{
	int r;
	NB_EMFILE_RETRY(r, NB_CALL(socket, (int)syscall(SYS_socket, domain, type, proto), domain,
				   type, proto));
	return fresh(r);
}

/* ---- hazard class 5 (hook_kread.c): memory these calls have the
 * kernel write is exposed first - a phantom there would make the call
 * fail with EFAULT after it made the descriptors (pipe, socketpair) or
 * took the connection off the queue (accept). ---- */
static inline void kernel_writes(const void *p, size_t n)
{
	if (NB_UNLIKELY(nb_phantom_any()))
		NB_KEEP_ERRNO(nb_defer_expose(p, n));
}

static inline void kernel_writes_addr(const void *addr, const socklen_t *alen)
{
	socklen_t n;
	if (NB_UNLIKELY(nb_phantom_any()) && alen != NULL) {
		int saved = errno;
		nb_defer_expose(alen, sizeof *alen);
		if (addr != NULL && nb_copy_in(&n, alen, sizeof n))
			nb_defer_expose(addr, n);
		errno = saved;
	}
}

NB_EXPORT int socketpair(int domain, int type, int proto, int sv[2])
{
	int r;
	kernel_writes(sv, 2 * sizeof(int));
	NB_EMFILE_RETRY(r, NB_CALL(socketpair, NB_NOSYS, domain, type, proto, sv));
	if (r == 0) {
		fresh(sv[0]);
		fresh(sv[1]);
	}
	return r;
}

NB_EXPORT int accept(int fd, struct sockaddr *addr, socklen_t *alen)
{
	NB_OWN_BADF(fd, -1);
	int r;
	kernel_writes_addr(addr, alen);
	NB_EMFILE_RETRY(r, NB_CALL(accept, NB_NOSYS, fd, addr, alen));
	return fresh(r);
}

NB_EXPORT int accept4(int fd, struct sockaddr *addr, socklen_t *alen, int flags)
{
	NB_OWN_BADF(fd, -1);
	int r;
	kernel_writes_addr(addr, alen);
	NB_EMFILE_RETRY(r, NB_CALL(accept4, NB_NOSYS, fd, addr, alen, flags));
	return fresh(r);
}

NB_EXPORT int pipe(int p[2])
{
	int r;
	kernel_writes(p, 2 * sizeof(int));
	NB_EMFILE_RETRY(r, NB_CALL(pipe, (int)syscall(SYS_pipe2, p, 0), p));
	if (r == 0) {
		fresh(p[0]);
		fresh(p[1]);
	}
	return r;
}

NB_EXPORT int pipe2(int p[2], int flags)
{
	int r;
	kernel_writes(p, 2 * sizeof(int));
	NB_EMFILE_RETRY(r, NB_CALL(pipe2, (int)syscall(SYS_pipe2, p, flags), p, flags));
	if (r == 0) {
		fresh(p[0]);
		fresh(p[1]);
	}
	return r;
}

/* open's mode argument exists only with O_CREAT or O_TMPFILE. */
#define NB_MODE_ARG(flags, mode)                                   \
	do {                                                       \
		if ((flags) & (O_CREAT | __O_TMPFILE)) {           \
			va_list ap;                                \
			va_start(ap, flags);                       \
			mode = (mode_t)va_arg(ap, unsigned int);   \
			va_end(ap);                                \
		}                                                  \
	} while (0)

NB_EXPORT int open(const char *path, int flags, ...)
{
	mode_t mode = 0;
	NB_MODE_ARG(flags, mode);
	nb_defer_before_open(AT_FDCWD, path, flags);
	int r;
	NB_EMFILE_RETRY(r, NB_CALL(open, (int)syscall(SYS_openat, AT_FDCWD, path, flags, mode),
				   path, flags, mode));
	return fresh(r);
}
int open64(const char *path, int flags, ...) NB_ALIAS(open);

NB_EXPORT int openat(int dirfd, const char *path, int flags, ...)
{
	mode_t mode = 0;
	NB_MODE_ARG(flags, mode);
	NB_OWN_BADF(dirfd, -1);
	nb_defer_before_open(dirfd, path, flags);
	int r;
	NB_EMFILE_RETRY(r, NB_CALL(openat, (int)syscall(SYS_openat, dirfd, path, flags, mode),
				   dirfd, path, flags, mode));
	return fresh(r);
}
int openat64(int dirfd, const char *path, int flags, ...) NB_ALIAS(openat);

NB_EXPORT int __open_2(const char *path, int flags)
{
	int r;
	nb_defer_before_open(AT_FDCWD, path, flags);
	NB_EMFILE_RETRY(r, NB_CALL(__open_2, NB_NOSYS, path, flags));
	return fresh(r);
}
int __open64_2(const char *path, int flags) NB_ALIAS(__open_2);

NB_EXPORT int __openat_2(int dirfd, const char *path, int flags)
{
	NB_OWN_BADF(dirfd, -1);
	nb_defer_before_open(dirfd, path, flags);
	int r;
	NB_EMFILE_RETRY(r, NB_CALL(__openat_2, NB_NOSYS, dirfd, path, flags));
	return fresh(r);
}
int __openat64_2(int dirfd, const char *path, int flags) NB_ALIAS(__openat_2);

NB_EXPORT int creat(const char *path, mode_t mode)
{
	int r;
	nb_defer_before_open(AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC);
	NB_EMFILE_RETRY(r, NB_CALL(creat, NB_NOSYS, path, mode));
	return fresh(r);
}
int creat64(const char *path, mode_t mode) NB_ALIAS(creat);

/* Truncating a file that backs phantoms: they keep the bytes as read. */
NB_EXPORT int ftruncate(int fd, off_t len)
{
	NB_OWN_BADF(fd, -1);
	nb_defer_before_truncate(fd, len);
	return NB_CALL(ftruncate, (int)syscall(SYS_ftruncate, fd, len), fd, len);
}
int ftruncate64(int fd, off64_t len) NB_ALIAS(ftruncate);

NB_EXPORT int truncate(const char *path, off_t len)
{
	nb_defer_before_truncate_path(path, len);
	return NB_CALL(truncate, (int)syscall(SYS_truncate, path, len), path, len);
}
int truncate64(const char *path, off64_t len) NB_ALIAS(truncate);

/* fallocate modes that zero or move bytes change what phantoms of the
 * range stand for (defer.c). */
NB_EXPORT int fallocate(int fd, int mode, off_t off, off_t len)
{
	NB_OWN_BADF(fd, -1);
	nb_defer_before_fallocate(fd, mode, off, len);
	return NB_CALL(fallocate, (int)syscall(SYS_fallocate, fd, mode, off, len), fd, mode, off,
		       len);
}
int fallocate64(int fd, int mode, off64_t off, off64_t len) NB_ALIAS(fallocate);
