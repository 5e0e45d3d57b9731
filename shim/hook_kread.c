/*
 * hook_kread.c - every other call that hands the program's memory to the
 * kernel (hazard class 5).
 *
 * Owns: the interposed system-call wrappers that take a pointer the kernel
 * reads or writes and that no mechanism serves: the stat family (with the
 * pre-2.33 __xstat names old binaries still call), directory and link
 * reads, system information, clocks and sleeps, poll/select/epoll,
 * signal masks and waits, wait4 and friends, socket addresses and options,
 * sendmmsg/recvmmsg, vmsplice, process_vm_readv/writev, POSIX AIO,
 * getrandom, SysV and POSIX message queues, semaphores, shared-memory
 * control, xattrs, paths of the *at calls, ioctl, prctl and a few more.
 * tests/kernel-memory-calls.txt lists every function glibc exports and
 * says, for each, whether and where it is handled.
 *
 * A phantom's pages are PROT_NONE. A touch by the program faults and is
 * resolved by fault.c, but the kernel answers a guarded page with EFAULT
 * instead (and a consuming call - recvmmsg, mq_receive, msgrcv, wait4 -
 * has consumed what it could not store). So before the real call each
 * hook materialises any phantom overlapping the memory the kernel will
 * touch, then calls the real function with the caller's arguments
 * untouched. Sizes come from the call: a struct of known size, count *
 * element, a length argument, a string up to its NUL.
 *
 * Cost: with no phantom alive (nearly always) a hook is one relaxed load
 * (nb_phantom_any) and the real call. The slow path reads the caller's
 * small structs (iovecs, headers, lengths) with nb_copy_in, which never
 * faults: a bad pointer stays the kernel's to report.
 * Must not: change an argument, a result or errno; block; allocate.
 * Built without sanitizers (Makefile NOSAN_SRC): sanitizer runtimes call
 * stat, readlink, sigaltstack and getrlimit while they start.
 */
#include "hook.h"

#include <string.h>

/* The *64 names alias the plain hooks (LP64: same layouts, hook.h); the
 * headers give them other attributes. */
#pragma GCC diagnostic ignored "-Wmissing-attributes"
/* Some headers declare pointers nonnull that the kernel accepts as NULL
 * (utimes, futimens): the checks stay; a NULL that slips through is only
 * a range no phantom holds. */
#pragma GCC diagnostic ignored "-Wnonnull-compare"

/* ---- the slow path: what the kernel is about to touch ---- */

/* Memory [p, p+n) the kernel reads or writes. */
#define M(p, n) nb_defer_expose((const void *)(p), (size_t)(n))
/* An array of cnt iovecs and the memory they describe. */
#define V(iov, cnt)                                                         \
	do {                                                                \
		nb_defer_expose((iov), sizeof(struct iovec) * (size_t)(cnt)); \
		nb_defer_expose_iov((iov), (int)(cnt));                     \
	} while (0)

/* A NUL-terminated string the kernel copies in (a path, a name): a
 * string can only sit in a phantom if the program read it there and
 * never looked at it, so this is rare - but its length is unknown until
 * the bytes are readable. Page by page: materialise the page, read it
 * fault-free, stop at the NUL (or after max bytes, the kernel's own
 * limit, or at memory that is not readable: the kernel reports that). */
static void S(const char *s)
{
	const size_t max = PATH_MAX + 1; /* strncpy_from_user's limit for paths */
	uintptr_t a = (uintptr_t)s, end = a + max;
	if (s == NULL)
		return;
	while (a < end) {
		uintptr_t page_end = (a | 4095) + 1;
		if (page_end > end)
			page_end = end;
		nb_defer_expose((const void *)a, page_end - a);
		/* Small pieces: hooks may run on a signal handler's small
		 * alternate stack. Most paths end in the first piece. */
		while (a < page_end) {
			char b[128];
			size_t n = page_end - a < sizeof b ? page_end - a : sizeof b;
			if (!nb_copy_in(b, (const void *)a, n) || memchr(b, '\0', n) != NULL)
				return;
			a += n;
		}
	}
}

/* A socket address the kernel writes, with its in/out length. */
static void ADDR(const void *addr, const socklen_t *lenp)
{
	socklen_t len;
	if (lenp == NULL)
		return;
	M(lenp, sizeof *lenp);
	if (addr != NULL && nb_copy_in(&len, lenp, sizeof len))
		M(addr, len);
}

/* Set while this thread runs a slow path: the library's own calls made
 * from there (clock_gettime while a phantom is filled, fstat) reach these
 * hooks too, and go straight to the real function. */
static __thread int kx_busy __attribute__((tls_model("initial-exec")));

/* Runs the statements only when some phantom is alive; errno is kept.
 * Every slow path first honours a fill request (nobounce fill, live.c)... */
#define KX_(poll, ...)                                           \
	do {                                                     \
		if (NB_UNLIKELY(nb_phantom_any()) && !kx_busy) { \
			int kx_errno_ = errno;                   \
			kx_busy = 1;                             \
			if (poll)                                \
				nb_live_poll();                  \
			__VA_ARGS__;                             \
			kx_busy = 0;                             \
			errno = kx_errno_;                       \
		}                                                \
	} while (0)
#define KX(...) KX_(1, __VA_ARGS__)
/* ...except the calls signal handlers make, the library's own handler
 * chain included (masks, clocks): filling every phantom from a handler
 * could wait for a phantom the interrupted code holds half-filled. */
#define KXS(...) KX_(0, __VA_ARGS__)

#define SYS(...) syscall(__VA_ARGS__)

/* ---- stat family ---- */

NB_EXPORT int stat(const char *path, struct stat *st)
{
	KX(S(path); M(st, sizeof *st));
	return NB_CALL(stat, (int)SYS(SYS_newfstatat, AT_FDCWD, path, st, 0), path, st);
}
int stat64(const char *path, struct stat64 *st) NB_ALIAS(stat);

NB_EXPORT int lstat(const char *path, struct stat *st)
{
	KX(S(path); M(st, sizeof *st));
	return NB_CALL(lstat, (int)SYS(SYS_newfstatat, AT_FDCWD, path, st, AT_SYMLINK_NOFOLLOW),
		       path, st);
}
int lstat64(const char *path, struct stat64 *st) NB_ALIAS(lstat);

NB_EXPORT int fstat(int fd, struct stat *st)
{
	KX(M(st, sizeof *st));
	return NB_CALL(fstat, (int)SYS(SYS_fstat, fd, st), fd, st);
}
int fstat64(int fd, struct stat64 *st) NB_ALIAS(fstat);
int __fstat64(int fd, struct stat64 *st) NB_ALIAS(fstat);

NB_EXPORT int fstatat(int dirfd, const char *path, struct stat *st, int flags)
{
	KX(S(path); M(st, sizeof *st));
	return NB_CALL(fstatat, (int)SYS(SYS_newfstatat, dirfd, path, st, flags), dirfd, path, st,
		       flags);
}
int fstatat64(int dirfd, const char *path, struct stat64 *st, int flags) NB_ALIAS(fstatat);

/* glibc before 2.33 compiled stat() into calls of these; binaries built
 * then still call them (glibc keeps them as compatibility symbols). */

NB_EXPORT int __xstat(int ver, const char *path, struct stat *st)
{
	KX(S(path); M(st, sizeof *st));
	return NB_CALL(__xstat, NB_NOSYS, ver, path, st);
}
int __xstat64(int ver, const char *path, struct stat *st) NB_ALIAS(__xstat);

NB_EXPORT int __lxstat(int ver, const char *path, struct stat *st)
{
	KX(S(path); M(st, sizeof *st));
	return NB_CALL(__lxstat, NB_NOSYS, ver, path, st);
}
int __lxstat64(int ver, const char *path, struct stat *st) NB_ALIAS(__lxstat);

NB_EXPORT int __fxstat(int ver, int fd, struct stat *st)
{
	KX(M(st, sizeof *st));
	return NB_CALL(__fxstat, NB_NOSYS, ver, fd, st);
}
int __fxstat64(int ver, int fd, struct stat *st) NB_ALIAS(__fxstat);

NB_EXPORT int __fxstatat(int ver, int dirfd, const char *path, struct stat *st, int flags)
{
	KX(S(path); M(st, sizeof *st));
	return NB_CALL(__fxstatat, NB_NOSYS, ver, dirfd, path, st, flags);
}
int __fxstatat64(int ver, int dirfd, const char *path, struct stat *st, int flags)
	NB_ALIAS(__fxstatat);

NB_EXPORT int statx(int dirfd, const char *path, int flags, unsigned mask, struct statx *st)
{
	KX(S(path); M(st, sizeof *st));
	return NB_CALL(statx, (int)SYS(SYS_statx, dirfd, path, flags, mask, st), dirfd, path, flags,
		       mask, st);
}

NB_EXPORT int statfs(const char *path, struct statfs *st)
{
	KX(S(path); M(st, sizeof *st));
	return NB_CALL(statfs, (int)SYS(SYS_statfs, path, st), path, st);
}
int statfs64(const char *path, struct statfs64 *st) NB_ALIAS(statfs);
int __statfs(const char *path, struct statfs *st) NB_ALIAS(statfs);

NB_EXPORT int fstatfs(int fd, struct statfs *st)
{
	KX(M(st, sizeof *st));
	return NB_CALL(fstatfs, (int)SYS(SYS_fstatfs, fd, st), fd, st);
}
int fstatfs64(int fd, struct statfs64 *st) NB_ALIAS(fstatfs);

NB_EXPORT int statvfs(const char *path, struct statvfs *st)
{
	KX(S(path); M(st, sizeof *st));
	return NB_CALL(statvfs, NB_NOSYS, path, st);
}
int statvfs64(const char *path, struct statvfs64 *st) NB_ALIAS(statvfs);

NB_EXPORT int fstatvfs(int fd, struct statvfs *st)
{
	KX(M(st, sizeof *st));
	return NB_CALL(fstatvfs, NB_NOSYS, fd, st);
}
int fstatvfs64(int fd, struct statvfs64 *st) NB_ALIAS(fstatvfs);

/* ---- directories, links, the working directory ---- */

NB_EXPORT ssize_t getdents64(int fd, void *buf, size_t n)
{
	KX(M(buf, n));
	return NB_CALL(getdents64, SYS(SYS_getdents64, fd, buf, n), fd, buf, n);
}

NB_EXPORT ssize_t getdirentries(int fd, char *buf, size_t n, off_t *base)
{
	KX(M(buf, n); M(base, sizeof *base));
	return NB_CALL(getdirentries, NB_NOSYS, fd, buf, n, base);
}
ssize_t getdirentries64(int fd, char *buf, size_t n, off_t *base) NB_ALIAS(getdirentries);

NB_EXPORT ssize_t readlink(const char *path, char *buf, size_t n)
{
	KX(S(path); M(buf, n));
	return NB_CALL(readlink, SYS(SYS_readlinkat, AT_FDCWD, path, buf, n), path, buf, n);
}

NB_EXPORT ssize_t readlinkat(int dirfd, const char *path, char *buf, size_t n)
{
	KX(S(path); M(buf, n));
	return NB_CALL(readlinkat, SYS(SYS_readlinkat, dirfd, path, buf, n), dirfd, path, buf, n);
}


NB_EXPORT ssize_t __readlink_chk(const char *path, char *buf, size_t n, size_t buflen)
{
	KX(S(path); M(buf, n < buflen ? n : buflen));
	return NB_CALL(__readlink_chk, NB_NOSYS, path, buf, n, buflen);
}

NB_EXPORT ssize_t __readlinkat_chk(int dirfd, const char *path, char *buf, size_t n, size_t buflen)
{
	KX(S(path); M(buf, n < buflen ? n : buflen));
	return NB_CALL(__readlinkat_chk, NB_NOSYS, dirfd, path, buf, n, buflen);
}

NB_EXPORT char *getcwd(char *buf, size_t n)
{
	KX(M(buf, buf ? n : 0));
	return NB_CALL(getcwd, (errno = ENOSYS, NULL), buf, n);
}

NB_EXPORT char *__getcwd_chk(char *buf, size_t n, size_t buflen)
{
	KX(M(buf, buf ? (n < buflen ? n : buflen) : 0));
	return NB_CALL(__getcwd_chk, (errno = ENOSYS, NULL), buf, n, buflen);
}

NB_EXPORT char *__getwd_chk(char *buf, size_t buflen)
{
	KX(M(buf, buflen));
	return NB_CALL(__getwd_chk, (errno = ENOSYS, NULL), buf, buflen);
}

/* glibc reads the link /proc/self/fd/N straight into buf. */
NB_EXPORT int ttyname_r(int fd, char *buf, size_t n)
{
	KX(M(buf, n));
	return NB_CALL(ttyname_r, ENOSYS, fd, buf, n);
}

NB_EXPORT int __ttyname_r_chk(int fd, char *buf, size_t n, size_t nreal)
{
	KX(M(buf, n < nreal ? n : nreal));
	return NB_CALL(__ttyname_r_chk, ENOSYS, fd, buf, n, nreal);
}

NB_EXPORT DIR *opendir(const char *path)
{
	KX(S(path));
	return NB_CALL(opendir, (errno = ENOSYS, NULL), path);
}

/* ---- calls that only take paths (and a few small structs) ---- */

#define PATH1(name, fallback, T1)                                     \
	NB_EXPORT int name(const char *p, T1 a)                       \
	{                                                             \
		KX(S(p));                                             \
		return NB_CALL(name, fallback, p, a);                 \
	}
#define PATH0(name, fallback)                                         \
	NB_EXPORT int name(const char *p)                             \
	{                                                             \
		KX(S(p));                                             \
		return NB_CALL(name, fallback, p);                    \
	}
#define PATH2(name, fallback)                                         \
	NB_EXPORT int name(const char *p, const char *q)              \
	{                                                             \
		KX(S(p); S(q));                                       \
		return NB_CALL(name, fallback, p, q);                 \
	}
#define DPATH1(name, fallback, T1)                                    \
	NB_EXPORT int name(int d, const char *p, T1 a)                \
	{                                                             \
		KX(S(p));                                             \
		return NB_CALL(name, fallback, d, p, a);              \
	}
#define DPATH2(name, fallback, T1, T2)                                \
	NB_EXPORT int name(int d, const char *p, T1 a, T2 b)          \
	{                                                             \
		KX(S(p));                                             \
		return NB_CALL(name, fallback, d, p, a, b);           \
	}

PATH1(access, (int)SYS(SYS_faccessat, AT_FDCWD, p, a), int)
PATH1(euidaccess, NB_NOSYS, int)
PATH1(eaccess, NB_NOSYS, int)
DPATH2(faccessat, NB_NOSYS, int, int)
PATH0(chdir, (int)SYS(SYS_chdir, p))
PATH0(chroot, (int)SYS(SYS_chroot, p))
PATH1(chmod, (int)SYS(SYS_fchmodat, AT_FDCWD, p, a), mode_t)
PATH1(lchmod, NB_NOSYS, mode_t)
DPATH2(fchmodat, NB_NOSYS, mode_t, int)
PATH1(mkdir, (int)SYS(SYS_mkdirat, AT_FDCWD, p, a), mode_t)
DPATH1(mkdirat, (int)SYS(SYS_mkdirat, d, p, a), mode_t)
PATH1(mkfifo, NB_NOSYS, mode_t)
DPATH1(mkfifoat, NB_NOSYS, mode_t)
PATH0(rmdir, (int)SYS(SYS_unlinkat, AT_FDCWD, p, AT_REMOVEDIR))
PATH0(unlink, (int)SYS(SYS_unlinkat, AT_FDCWD, p, 0))
DPATH1(unlinkat, (int)SYS(SYS_unlinkat, d, p, a), int)
PATH2(link, NB_NOSYS)
PATH2(symlink, NB_NOSYS)
PATH2(rename, NB_NOSYS)
PATH0(swapoff, NB_NOSYS)
PATH1(swapon, NB_NOSYS, int)
PATH0(acct, NB_NOSYS)
PATH0(umount, NB_NOSYS)
PATH1(umount2, NB_NOSYS, int)
PATH1(memfd_create, NB_NOSYS, unsigned int)
PATH0(mq_unlink, NB_NOSYS)

NB_EXPORT int open_tree(int d, const char *p, unsigned int flags)
{
	KX(S(p));
	return NB_CALL(open_tree, NB_NOSYS, d, p, flags);
}

NB_EXPORT int fspick(int d, const char *p, unsigned int flags)
{
	KX(S(p));
	return NB_CALL(fspick, NB_NOSYS, d, p, flags);
}

NB_EXPORT int fsopen(const char *p, unsigned int flags)
{
	KX(S(p));
	return NB_CALL(fsopen, NB_NOSYS, p, flags);
}

NB_EXPORT int mknod(const char *p, mode_t m, dev_t dev)
{
	KX(S(p));
	return NB_CALL(mknod, NB_NOSYS, p, m, dev);
}

NB_EXPORT int mknodat(int d, const char *p, mode_t m, dev_t dev)
{
	KX(S(p));
	return NB_CALL(mknodat, NB_NOSYS, d, p, m, dev);
}

NB_EXPORT int chown(const char *p, uid_t u, gid_t g)
{
	KX(S(p));
	return NB_CALL(chown, NB_NOSYS, p, u, g);
}

NB_EXPORT int lchown(const char *p, uid_t u, gid_t g)
{
	KX(S(p));
	return NB_CALL(lchown, NB_NOSYS, p, u, g);
}

NB_EXPORT int fchownat(int d, const char *p, uid_t u, gid_t g, int flags)
{
	KX(S(p));
	return NB_CALL(fchownat, NB_NOSYS, d, p, u, g, flags);
}

NB_EXPORT int linkat(int d1, const char *p, int d2, const char *q, int flags)
{
	KX(S(p); S(q));
	return NB_CALL(linkat, NB_NOSYS, d1, p, d2, q, flags);
}

NB_EXPORT int symlinkat(const char *p, int d, const char *q)
{
	KX(S(p); S(q));
	return NB_CALL(symlinkat, NB_NOSYS, p, d, q);
}

NB_EXPORT int renameat(int d1, const char *p, int d2, const char *q)
{
	KX(S(p); S(q));
	return NB_CALL(renameat, NB_NOSYS, d1, p, d2, q);
}

NB_EXPORT int renameat2(int d1, const char *p, int d2, const char *q, unsigned int flags)
{
	KX(S(p); S(q));
	return NB_CALL(renameat2, NB_NOSYS, d1, p, d2, q, flags);
}

NB_EXPORT int move_mount(int d1, const char *p, int d2, const char *q, unsigned int flags)
{
	KX(S(p); S(q));
	return NB_CALL(move_mount, NB_NOSYS, d1, p, d2, q, flags);
}

NB_EXPORT int mount_setattr(int d, const char *p, unsigned int flags, struct mount_attr *a,
			    size_t n)
{
	KX(S(p); M(a, n));
	return NB_CALL(mount_setattr, NB_NOSYS, d, p, flags, a, n);
}

/* The value is a string, a blob of aux bytes or nothing (fsconfig(2)):
 * a string is scanned, a blob exposed by its length. */
NB_EXPORT int fsconfig(int fd, unsigned int cmd, const char *key, const void *value, int aux)
{
	KX(S(key); if (value != NULL) { if (cmd == 2 /* FSCONFIG_SET_BINARY */ && aux > 0) M(value, aux); else S(value); });
	return NB_CALL(fsconfig, NB_NOSYS, fd, cmd, key, value, aux);
}

NB_EXPORT int mount(const char *src, const char *dst, const char *type, unsigned long flags,
		    const void *data)
{
	/* data is a string for nearly every file system; a binary one is
	 * read by the kernel up to a page (copy_mount_options). */
	KX(S(src); S(dst); S(type); M(data, data ? 4096 - ((uintptr_t)data & 4095) : 0));
	return NB_CALL(mount, NB_NOSYS, src, dst, type, flags, data);
}

NB_EXPORT int utime(const char *p, const struct utimbuf *t)
{
	KX(S(p); M(t, t ? sizeof *t : 0));
	return NB_CALL(utime, NB_NOSYS, p, t);
}

NB_EXPORT int utimes(const char *p, const struct timeval t[2])
{
	KX(S(p); M(t, t ? 2 * sizeof *t : 0));
	return NB_CALL(utimes, NB_NOSYS, p, t);
}

NB_EXPORT int lutimes(const char *p, const struct timeval t[2])
{
	KX(S(p); M(t, t ? 2 * sizeof *t : 0));
	return NB_CALL(lutimes, NB_NOSYS, p, t);
}

NB_EXPORT int futimes(int fd, const struct timeval t[2])
{
	KX(M(t, t ? 2 * sizeof *t : 0));
	return NB_CALL(futimes, NB_NOSYS, fd, t);
}

NB_EXPORT int futimesat(int d, const char *p, const struct timeval t[2])
{
	KX(S(p); M(t, t ? 2 * sizeof *t : 0));
	return NB_CALL(futimesat, NB_NOSYS, d, p, t);
}

NB_EXPORT int utimensat(int d, const char *p, const struct timespec t[2], int flags)
{
	KX(S(p); M(t, t ? 2 * sizeof *t : 0));
	return NB_CALL(utimensat, NB_NOSYS, d, p, t, flags);
}

NB_EXPORT int futimens(int fd, const struct timespec t[2])
{
	KX(M(t, t ? 2 * sizeof *t : 0));
	return NB_CALL(futimens, NB_NOSYS, fd, t);
}

NB_EXPORT int inotify_add_watch(int fd, const char *p, uint32_t mask)
{
	KX(S(p));
	return NB_CALL(inotify_add_watch, NB_NOSYS, fd, p, mask);
}

NB_EXPORT int fanotify_mark(int fd, unsigned int flags, uint64_t mask, int d, const char *p)
{
	KX(S(p));
	return NB_CALL(fanotify_mark, NB_NOSYS, fd, flags, mask, d, p);
}

NB_EXPORT int name_to_handle_at(int d, const char *p, struct file_handle *h, int *mnt, int flags)
{
	unsigned int hb;
	KX(S(p); M(h, sizeof *h); M(mnt, sizeof *mnt);
	   if (h != NULL && nb_copy_in(&hb, &h->handle_bytes, sizeof hb)) M(h, sizeof *h + hb));
	return NB_CALL(name_to_handle_at, NB_NOSYS, d, p, h, mnt, flags);
}

NB_EXPORT int open_by_handle_at(int mfd, struct file_handle *h, int flags)
{
	unsigned int hb;
	KX(M(h, sizeof *h);
	   if (h != NULL && nb_copy_in(&hb, &h->handle_bytes, sizeof hb)) M(h, sizeof *h + hb));
	return NB_CALL(open_by_handle_at, NB_NOSYS, mfd, h, flags);
}

/* ---- extended attributes ---- */

#define XSET(name, T)                                                              \
	NB_EXPORT int name(T f, const char *n, const void *v, size_t sz, int flags) \
	{                                                                          \
		KX(XPATH_##T(f); S(n); M(v, sz));                                   \
		return NB_CALL(name, NB_NOSYS, f, n, v, sz, flags);                \
	}
#define XGET(name, T)                                                              \
	NB_EXPORT ssize_t name(T f, const char *n, void *v, size_t sz)             \
	{                                                                          \
		KX(XPATH_##T(f); S(n); M(v, sz));                                   \
		return NB_CALL(name, NB_NOSYS, f, n, v, sz);                       \
	}
#define XLIST(name, T)                                                             \
	NB_EXPORT ssize_t name(T f, char *l, size_t sz)                            \
	{                                                                          \
		KX(XPATH_##T(f); M(l, sz));                                         \
		return NB_CALL(name, NB_NOSYS, f, l, sz);                          \
	}
#define XRM(name, T)                                                               \
	NB_EXPORT int name(T f, const char *n)                                     \
	{                                                                          \
		KX(XPATH_##T(f); S(n));                                             \
		return NB_CALL(name, NB_NOSYS, f, n);                              \
	}
typedef const char *cpath;
#define XPATH_cpath(f) S(f)
#define XPATH_int(f) (void)(f)

XSET(setxattr, cpath) XSET(lsetxattr, cpath) XSET(fsetxattr, int)
XGET(getxattr, cpath) XGET(lgetxattr, cpath) XGET(fgetxattr, int)
XLIST(listxattr, cpath) XLIST(llistxattr, cpath) XLIST(flistxattr, int)
XRM(removexattr, cpath) XRM(lremovexattr, cpath) XRM(fremovexattr, int)

/* ---- system information, identity, limits ---- */

NB_EXPORT int uname(struct utsname *u)
{
	KX(M(u, sizeof *u));
	return NB_CALL(uname, (int)SYS(SYS_uname, u), u);
}

NB_EXPORT int sysinfo(struct sysinfo *i)
{
	KX(M(i, sizeof *i));
	return NB_CALL(sysinfo, (int)SYS(SYS_sysinfo, i), i);
}

NB_EXPORT clock_t times(struct tms *t)
{
	KX(M(t, sizeof *t));
	return NB_CALL(times, (clock_t)SYS(SYS_times, t), t);
}

NB_EXPORT int getrusage(int who, struct rusage *u)
{
	KX(M(u, sizeof *u));
	return NB_CALL(getrusage, (int)SYS(SYS_getrusage, who, u), (__rusage_who_t)who, u);
}

NB_EXPORT int getrlimit(__rlimit_resource_t res, struct rlimit *rl)
{
	KX(M(rl, sizeof *rl));
	return NB_CALL(getrlimit, (int)SYS(SYS_prlimit64, 0, res, NULL, rl), res, rl);
}
int getrlimit64(__rlimit_resource_t res, struct rlimit64 *rl) NB_ALIAS(getrlimit);
int __getrlimit(__rlimit_resource_t res, struct rlimit *rl) NB_ALIAS(getrlimit);

NB_EXPORT int getgroups(int n, gid_t *g)
{
	KX(M(g, n > 0 ? (size_t)n * sizeof *g : 0));
	return NB_CALL(getgroups, (int)SYS(SYS_getgroups, n, g), n, g);
}

NB_EXPORT int __getgroups_chk(int n, gid_t *g, size_t glen)
{
	KX(M(g, n > 0 ? ((size_t)n * sizeof *g < glen ? (size_t)n * sizeof *g : glen) : 0));
	return NB_CALL(__getgroups_chk, NB_NOSYS, n, g, glen);
}

NB_EXPORT int setgroups(size_t n, const gid_t *g)
{
	KX(M(g, n * sizeof *g));
	return NB_CALL(setgroups, NB_NOSYS, n, g);
}

NB_EXPORT int getresuid(uid_t *r, uid_t *e, uid_t *s)
{
	KX(M(r, sizeof *r); M(e, sizeof *e); M(s, sizeof *s));
	return NB_CALL(getresuid, (int)SYS(SYS_getresuid, r, e, s), r, e, s);
}

NB_EXPORT int getresgid(gid_t *r, gid_t *e, gid_t *s)
{
	KX(M(r, sizeof *r); M(e, sizeof *e); M(s, sizeof *s));
	return NB_CALL(getresgid, (int)SYS(SYS_getresgid, r, e, s), r, e, s);
}

NB_EXPORT int sethostname(const char *n, size_t len)
{
	KX(M(n, len));
	return NB_CALL(sethostname, NB_NOSYS, n, len);
}

NB_EXPORT int setdomainname(const char *n, size_t len)
{
	KX(M(n, len));
	return NB_CALL(setdomainname, NB_NOSYS, n, len);
}

NB_EXPORT int klogctl(int type, char *buf, int len)
{
	KX(M(buf, len > 0 ? (size_t)len : 0));
	return NB_CALL(klogctl, NB_NOSYS, type, buf, len);
}

/* capget/capset: the header, then (version 3) two 12-byte data structs. */
NB_EXPORT int capget(void *hdr, void *data)
{
	KX(M(hdr, 8); M(data, data ? 24 : 0));
	return NB_CALL(capget, (int)SYS(SYS_capget, hdr, data), hdr, data);
}

NB_EXPORT int capset(void *hdr, const void *data)
{
	KX(M(hdr, 8); M(data, data ? 24 : 0));
	return NB_CALL(capset, (int)SYS(SYS_capset, hdr, data), hdr, data);
}

NB_EXPORT int init_module(void *image, unsigned long len, const char *params)
{
	KX(M(image, len); S(params));
	return NB_CALL(init_module, NB_NOSYS, image, len, params);
}

NB_EXPORT int delete_module(const char *name, unsigned int flags)
{
	KX(S(name));
	return NB_CALL(delete_module, NB_NOSYS, name, flags);
}

/* ---- clocks, timers, sleeps ---- */

/* clock_gettime and gettimeofday run in the vDSO (stores by user code,
 * which fault.c resolves) unless the clock source has no vDSO support;
 * then the kernel stores, and would answer EFAULT. */
NB_EXPORT int clock_gettime(clockid_t c, struct timespec *ts)
{
	KXS(M(ts, sizeof *ts));
	return NB_CALL(clock_gettime, (int)SYS(SYS_clock_gettime, c, ts), c, ts);
}
int __clock_gettime(clockid_t c, struct timespec *ts) NB_ALIAS(clock_gettime);

NB_EXPORT int clock_getres(clockid_t c, struct timespec *ts)
{
	KXS(M(ts, ts ? sizeof *ts : 0));
	return NB_CALL(clock_getres, (int)SYS(SYS_clock_getres, c, ts), c, ts);
}

NB_EXPORT int clock_settime(clockid_t c, const struct timespec *ts)
{
	KX(M(ts, sizeof *ts));
	return NB_CALL(clock_settime, (int)SYS(SYS_clock_settime, c, ts), c, ts);
}

NB_EXPORT int gettimeofday(struct timeval *tv, void *tz)
{
	KXS(M(tv, tv ? sizeof *tv : 0); M(tz, tz ? sizeof(struct timezone) : 0));
	return NB_CALL(gettimeofday, (int)SYS(SYS_gettimeofday, tv, tz), tv, tz);
}
int __gettimeofday(struct timeval *tv, void *tz) NB_ALIAS(gettimeofday);

NB_EXPORT int settimeofday(const struct timeval *tv, const struct timezone *tz)
{
	KX(M(tv, tv ? sizeof *tv : 0); M(tz, tz ? sizeof *tz : 0));
	return NB_CALL(settimeofday, NB_NOSYS, tv, tz);
}

NB_EXPORT int adjtimex(struct timex *t)
{
	KX(M(t, sizeof *t));
	return NB_CALL(adjtimex, (int)SYS(SYS_adjtimex, t), t);
}

NB_EXPORT int ntp_adjtime(struct timex *t)
{
	KX(M(t, sizeof *t));
	return NB_CALL(ntp_adjtime, (int)SYS(SYS_adjtimex, t), t);
}

NB_EXPORT int clock_adjtime(clockid_t c, struct timex *t)
{
	KX(M(t, sizeof *t));
	return NB_CALL(clock_adjtime, (int)SYS(SYS_clock_adjtime, c, t), c, t);
}

NB_EXPORT int getitimer(__itimer_which_t w, struct itimerval *v)
{
	KX(M(v, sizeof *v));
	return NB_CALL(getitimer, (int)SYS(SYS_getitimer, w, v), w, v);
}

NB_EXPORT int setitimer(__itimer_which_t w, const struct itimerval *v, struct itimerval *o)
{
	KX(M(v, v ? sizeof *v : 0); M(o, o ? sizeof *o : 0));
	return NB_CALL(setitimer, (int)SYS(SYS_setitimer, w, v, o), w, v, o);
}

NB_EXPORT int timer_settime(timer_t t, int flags, const struct itimerspec *v,
			    struct itimerspec *o)
{
	KX(M(v, v ? sizeof *v : 0); M(o, o ? sizeof *o : 0));
	return NB_CALL(timer_settime, NB_NOSYS, t, flags, v, o);
}

NB_EXPORT int timer_gettime(timer_t t, struct itimerspec *v)
{
	KX(M(v, sizeof *v));
	return NB_CALL(timer_gettime, NB_NOSYS, t, v);
}

NB_EXPORT int timerfd_settime(int fd, int flags, const struct itimerspec *v, struct itimerspec *o)
{
	KX(M(v, v ? sizeof *v : 0); M(o, o ? sizeof *o : 0));
	return NB_CALL(timerfd_settime, (int)SYS(SYS_timerfd_settime, fd, flags, v, o), fd, flags,
		       v, o);
}

NB_EXPORT int timerfd_gettime(int fd, struct itimerspec *v)
{
	KX(M(v, sizeof *v));
	return NB_CALL(timerfd_gettime, (int)SYS(SYS_timerfd_gettime, fd, v), fd, v);
}

NB_EXPORT int nanosleep(const struct timespec *req, struct timespec *rem)
{
	KX(M(req, sizeof *req); M(rem, rem ? sizeof *rem : 0));
	return NB_CALL(nanosleep, (int)SYS(SYS_nanosleep, req, rem), req, rem);
}
int __nanosleep(const struct timespec *req, struct timespec *rem) NB_ALIAS(nanosleep);

NB_EXPORT int clock_nanosleep(clockid_t c, int flags, const struct timespec *req,
			      struct timespec *rem)
{
	KX(M(req, sizeof *req); M(rem, rem ? sizeof *rem : 0));
	return NB_CALL(clock_nanosleep, ENOSYS, c, flags, req, rem);
}

NB_EXPORT int getcpu(unsigned int *cpu, unsigned int *node)
{
	KX(M(cpu, cpu ? sizeof *cpu : 0); M(node, node ? sizeof *node : 0));
	return NB_CALL(getcpu, (int)SYS(SYS_getcpu, cpu, node, NULL), cpu, node);
}

/* ---- scheduling ---- */

NB_EXPORT int sched_getaffinity(pid_t pid, size_t n, cpu_set_t *set)
{
	KX(M(set, n));
	return NB_CALL(sched_getaffinity, NB_NOSYS, pid, n, set);
}

NB_EXPORT int sched_setaffinity(pid_t pid, size_t n, const cpu_set_t *set)
{
	KX(M(set, n));
	return NB_CALL(sched_setaffinity, NB_NOSYS, pid, n, set);
}

NB_EXPORT int pthread_getaffinity_np(pthread_t th, size_t n, cpu_set_t *set)
{
	KX(M(set, n));
	return NB_CALL(pthread_getaffinity_np, ENOSYS, th, n, set);
}

NB_EXPORT int pthread_setaffinity_np(pthread_t th, size_t n, const cpu_set_t *set)
{
	KX(M(set, n));
	return NB_CALL(pthread_setaffinity_np, ENOSYS, th, n, set);
}

NB_EXPORT int pthread_setname_np(pthread_t th, const char *name)
{
	KX(S(name));
	return NB_CALL(pthread_setname_np, ENOSYS, th, name);
}

NB_EXPORT int pthread_getname_np(pthread_t th, char *buf, size_t n)
{
	KX(M(buf, n));
	return NB_CALL(pthread_getname_np, ENOSYS, th, buf, n);
}

NB_EXPORT int sched_getparam(pid_t pid, struct sched_param *p)
{
	KX(M(p, sizeof *p));
	return NB_CALL(sched_getparam, (int)SYS(SYS_sched_getparam, pid, p), pid, p);
}

NB_EXPORT int sched_setparam(pid_t pid, const struct sched_param *p)
{
	KX(M(p, sizeof *p));
	return NB_CALL(sched_setparam, (int)SYS(SYS_sched_setparam, pid, p), pid, p);
}

NB_EXPORT int sched_setscheduler(pid_t pid, int pol, const struct sched_param *p)
{
	KX(M(p, sizeof *p));
	return NB_CALL(sched_setscheduler, (int)SYS(SYS_sched_setscheduler, pid, pol, p), pid, pol,
		       p);
}

NB_EXPORT int sched_rr_get_interval(pid_t pid, struct timespec *ts)
{
	KX(M(ts, sizeof *ts));
	return NB_CALL(sched_rr_get_interval, (int)SYS(SYS_sched_rr_get_interval, pid, ts), pid, ts);
}

/* ---- waiting for descriptors ---- */

/* The kernel reads and writes (n + 7) / 8 bytes of each set, in longs. */
static size_t fdset_bytes(int n)
{
	return n > 0 ? ((size_t)n + 63) / 64 * 8 : 0;
}

NB_EXPORT int select(int n, fd_set *r, fd_set *w, fd_set *e, struct timeval *t)
{
	KX(M(r, r ? fdset_bytes(n) : 0); M(w, w ? fdset_bytes(n) : 0);
	   M(e, e ? fdset_bytes(n) : 0); M(t, t ? sizeof *t : 0));
	return NB_CALL(select, (int)SYS(SYS_select, n, r, w, e, t), n, r, w, e, t);
}
int __select(int n, fd_set *r, fd_set *w, fd_set *e, struct timeval *t) NB_ALIAS(select);

NB_EXPORT int pselect(int n, fd_set *r, fd_set *w, fd_set *e, const struct timespec *t,
		      const sigset_t *m)
{
	KX(M(r, r ? fdset_bytes(n) : 0); M(w, w ? fdset_bytes(n) : 0);
	   M(e, e ? fdset_bytes(n) : 0); M(t, t ? sizeof *t : 0); M(m, m ? 8 : 0));
	bool b = nb_sigguard_call_begin(m); /* a temporary mask: sigguard.c */
	int k = NB_CALL(pselect, NB_NOSYS, n, r, w, e, t, m);
	NB_KEEP_ERRNO(nb_sigguard_call_end(b));
	return k;
}

NB_EXPORT int poll(struct pollfd *f, nfds_t n, int t)
{
	KX(M(f, n * sizeof *f));
	return NB_CALL(poll, (int)SYS(SYS_poll, f, n, t), f, n, t);
}
int __poll(struct pollfd *f, nfds_t n, int t) NB_ALIAS(poll);

NB_EXPORT int ppoll(struct pollfd *f, nfds_t n, const struct timespec *t, const sigset_t *m)
{
	KX(M(f, n * sizeof *f); M(t, t ? sizeof *t : 0); M(m, m ? 8 : 0));
	bool b = nb_sigguard_call_begin(m);
	int r = NB_CALL(ppoll, NB_NOSYS, f, n, t, m);
	NB_KEEP_ERRNO(nb_sigguard_call_end(b));
	return r;
}

NB_EXPORT int __poll_chk(struct pollfd *f, nfds_t n, int t, size_t flen)
{
	KX(M(f, n * sizeof *f < flen ? n * sizeof *f : flen));
	return NB_CALL(__poll_chk, NB_NOSYS, f, n, t, flen);
}

NB_EXPORT int __ppoll_chk(struct pollfd *f, nfds_t n, const struct timespec *t, const sigset_t *m,
			  size_t flen)
{
	KX(M(f, n * sizeof *f < flen ? n * sizeof *f : flen); M(t, t ? sizeof *t : 0);
	   M(m, m ? 8 : 0));
	bool b = nb_sigguard_call_begin(m);
	int r = NB_CALL(__ppoll_chk, NB_NOSYS, f, n, t, m, flen);
	NB_KEEP_ERRNO(nb_sigguard_call_end(b));
	return r;
}

NB_EXPORT int epoll_wait(int ep, struct epoll_event *ev, int max, int t)
{
	KX(M(ev, max > 0 ? (size_t)max * sizeof *ev : 0));
	return NB_CALL(epoll_wait, (int)SYS(SYS_epoll_wait, ep, ev, max, t), ep, ev, max, t);
}

NB_EXPORT int epoll_pwait(int ep, struct epoll_event *ev, int max, int t, const sigset_t *m)
{
	KX(M(ev, max > 0 ? (size_t)max * sizeof *ev : 0); M(m, m ? 8 : 0));
	bool b = nb_sigguard_call_begin(m);
	int r = NB_CALL(epoll_pwait, NB_NOSYS, ep, ev, max, t, m);
	NB_KEEP_ERRNO(nb_sigguard_call_end(b));
	return r;
}

NB_EXPORT int epoll_pwait2(int ep, struct epoll_event *ev, int max, const struct timespec *t,
			   const sigset_t *m)
{
	KX(M(ev, max > 0 ? (size_t)max * sizeof *ev : 0); M(t, t ? sizeof *t : 0); M(m, m ? 8 : 0));
	bool b = nb_sigguard_call_begin(m);
	int r = NB_CALL(epoll_pwait2, NB_NOSYS, ep, ev, max, t, m);
	NB_KEEP_ERRNO(nb_sigguard_call_end(b));
	return r;
}

NB_EXPORT int epoll_ctl(int ep, int op, int fd, struct epoll_event *ev)
{
	KX(M(ev, ev ? sizeof *ev : 0));
	return NB_CALL(epoll_ctl, (int)SYS(SYS_epoll_ctl, ep, op, fd, ev), ep, op, fd, ev);
}

/* ---- signals and children ---- */

/* The kernel's sigset is 8 bytes (_NSIG / 8), not glibc's 128. */
#define KSIG 8

NB_EXPORT int sigprocmask(int how, const sigset_t *set, sigset_t *old)
{
	KXS(M(set, set ? KSIG : 0); M(old, old ? KSIG : 0));
	nb_sigguard_mask(how, set); /* a mask that blocks SIGSEGV: sigguard.c */
	return NB_CALL(sigprocmask, NB_NOSYS, how, set, old);
}

NB_EXPORT int pthread_sigmask(int how, const sigset_t *set, sigset_t *old)
{
	KXS(M(set, set ? KSIG : 0); M(old, old ? KSIG : 0));
	nb_sigguard_mask(how, set);
	return NB_CALL(pthread_sigmask, ENOSYS, how, set, old);
}

NB_EXPORT int sigpending(sigset_t *set)
{
	KXS(M(set, KSIG));
	return NB_CALL(sigpending, NB_NOSYS, set);
}

NB_EXPORT int sigsuspend(const sigset_t *set)
{
	KXS(M(set, KSIG));
	bool b = nb_sigguard_call_begin(set);
	int r = NB_CALL(sigsuspend, NB_NOSYS, set);
	NB_KEEP_ERRNO(nb_sigguard_call_end(b));
	return r;
}

NB_EXPORT int sigtimedwait(const sigset_t *set, siginfo_t *info, const struct timespec *t)
{
	KXS(M(set, KSIG); M(info, info ? sizeof *info : 0); M(t, t ? sizeof *t : 0));
	return NB_CALL(sigtimedwait, NB_NOSYS, set, info, t);
}

NB_EXPORT int sigwaitinfo(const sigset_t *set, siginfo_t *info)
{
	KXS(M(set, KSIG); M(info, info ? sizeof *info : 0));
	return NB_CALL(sigwaitinfo, NB_NOSYS, set, info);
}

NB_EXPORT int sigwait(const sigset_t *set, int *sig)
{
	KXS(M(set, KSIG); M(sig, sizeof *sig));
	return NB_CALL(sigwait, ENOSYS, set, sig);
}


NB_EXPORT int signalfd(int fd, const sigset_t *set, int flags)
{
	KX(M(set, KSIG));
	return NB_CALL(signalfd, (int)SYS(SYS_signalfd4, fd, set, KSIG, flags), fd, set, flags);
}

NB_EXPORT int pidfd_send_signal(int pfd, int sig, siginfo_t *info, unsigned int flags)
{
	KX(M(info, info ? sizeof *info : 0));
	return NB_CALL(pidfd_send_signal, NB_NOSYS, pfd, sig, info, flags);
}

/* wait4 reaps the child before it stores the status: an EFAULT there
 * loses the child's exit status for good. */
NB_EXPORT pid_t wait(int *st)
{
	KX(M(st, st ? sizeof *st : 0));
	return NB_CALL(wait, (pid_t)SYS(SYS_wait4, -1, st, 0, NULL), st);
}
pid_t __wait(int *st) NB_ALIAS(wait);

NB_EXPORT pid_t waitpid(pid_t pid, int *st, int opt)
{
	KX(M(st, st ? sizeof *st : 0));
	return NB_CALL(waitpid, (pid_t)SYS(SYS_wait4, pid, st, opt, NULL), pid, st, opt);
}
pid_t __waitpid(pid_t pid, int *st, int opt) NB_ALIAS(waitpid);

NB_EXPORT pid_t wait3(int *st, int opt, struct rusage *u)
{
	KX(M(st, st ? sizeof *st : 0); M(u, u ? sizeof *u : 0));
	return NB_CALL(wait3, (pid_t)SYS(SYS_wait4, -1, st, opt, u), st, opt, u);
}

NB_EXPORT pid_t wait4(pid_t pid, int *st, int opt, struct rusage *u)
{
	KX(M(st, st ? sizeof *st : 0); M(u, u ? sizeof *u : 0));
	return NB_CALL(wait4, (pid_t)SYS(SYS_wait4, pid, st, opt, u), pid, st, opt, u);
}

NB_EXPORT int waitid(idtype_t t, id_t id, siginfo_t *info, int opt)
{
	KX(M(info, info ? sizeof *info : 0));
	return NB_CALL(waitid, (int)SYS(SYS_waitid, t, id, info, opt, NULL), t, id, info, opt);
}

/* ---- sockets ---- */

NB_EXPORT int bind(int fd, const struct sockaddr *a, socklen_t len)
{
	KX(M(a, len));
	return NB_CALL(bind, (int)SYS(SYS_bind, fd, a, len), fd, a, len);
}

NB_EXPORT int connect(int fd, const struct sockaddr *a, socklen_t len)
{
	KX(M(a, len));
	return NB_CALL(connect, (int)SYS(SYS_connect, fd, a, len), fd, a, len);
}
int __connect(int fd, const struct sockaddr *a, socklen_t len) NB_ALIAS(connect);

NB_EXPORT int getsockname(int fd, struct sockaddr *a, socklen_t *len)
{
	KX(ADDR(a, len));
	return NB_CALL(getsockname, (int)SYS(SYS_getsockname, fd, a, len), fd, a, len);
}

NB_EXPORT int getpeername(int fd, struct sockaddr *a, socklen_t *len)
{
	KX(ADDR(a, len));
	return NB_CALL(getpeername, (int)SYS(SYS_getpeername, fd, a, len), fd, a, len);
}

NB_EXPORT int getsockopt(int fd, int lvl, int name, void *v, socklen_t *len)
{
	KX(ADDR(v, len));
	return NB_CALL(getsockopt, (int)SYS(SYS_getsockopt, fd, lvl, name, v, len), fd, lvl, name,
		       v, len);
}

NB_EXPORT int setsockopt(int fd, int lvl, int name, const void *v, socklen_t len)
{
	KX(M(v, len));
	int r = NB_CALL(setsockopt, (int)SYS(SYS_setsockopt, fd, lvl, name, v, len), fd, lvl,
			name, v, len);
	/* A send timeout decides the kernel path (fdtab.c): classified again. */
	if (lvl == SOL_SOCKET && (name == SO_SNDTIMEO_OLD || name == SO_SNDTIMEO_NEW))
		nb_fd_forget(fd);
	return r;
}

/* Each header's buffers, names and control data; msg_len is written. */
static void mmsg(struct mmsghdr *v, unsigned int n)
{
	if (v == NULL)
		return;
	if (n > 1024) /* UIO_MAXIOV: the kernel takes no more */
		n = 1024;
	M(v, (size_t)n * sizeof *v);
	for (unsigned int i = 0; i < n; i++)
		nb_defer_expose_msg(&v[i].msg_hdr);
}

NB_EXPORT int sendmmsg(int fd, struct mmsghdr *v, unsigned int n, int flags)
{
	KX(mmsg(v, n));
	return NB_CALL(sendmmsg, (int)SYS(SYS_sendmmsg, fd, v, n, flags), fd, v, n, flags);
}
int __sendmmsg(int fd, struct mmsghdr *v, unsigned int n, int flags) NB_ALIAS(sendmmsg);

NB_EXPORT int recvmmsg(int fd, struct mmsghdr *v, unsigned int n, int flags, struct timespec *t)
{
	KX(mmsg(v, n); M(t, t ? sizeof *t : 0));
	return NB_CALL(recvmmsg, (int)SYS(SYS_recvmmsg, fd, v, n, flags, t), fd, v, n, flags, t);
}

/* ---- memory of this or another process ---- */

NB_EXPORT int mincore(void *a, size_t len, unsigned char *vec)
{
	KX(M(vec, (len + 4095) / 4096));
	return NB_CALL(mincore, (int)SYS(SYS_mincore, a, len, vec), a, len, vec);
}

/* The local iovecs always; the remote ones too when the other process is
 * this one (the memory is ours). */
static void pvm(pid_t pid, const struct iovec *l, unsigned long ln, const struct iovec *r,
		unsigned long rn)
{
	if (ln <= 1024)
		V(l, ln);
	if (rn <= 1024) {
		M(r, rn * sizeof *r);
		if (pid == nb_g.pid || pid == (pid_t)SYS(SYS_getpid))
			nb_defer_expose_iov(r, (int)rn);
	}
}

NB_EXPORT ssize_t process_vm_readv(pid_t pid, const struct iovec *l, unsigned long ln,
				   const struct iovec *r, unsigned long rn, unsigned long flags)
{
	KX(pvm(pid, l, ln, r, rn));
	return NB_CALL(process_vm_readv, SYS(SYS_process_vm_readv, pid, l, ln, r, rn, flags), pid,
		       l, ln, r, rn, flags);
}

NB_EXPORT ssize_t process_vm_writev(pid_t pid, const struct iovec *l, unsigned long ln,
				    const struct iovec *r, unsigned long rn, unsigned long flags)
{
	KX(pvm(pid, l, ln, r, rn));
	return NB_CALL(process_vm_writev, SYS(SYS_process_vm_writev, pid, l, ln, r, rn, flags), pid,
		       l, ln, r, rn, flags);
}

NB_EXPORT ssize_t process_madvise(int pfd, const struct iovec *v, size_t n, int advice,
				  unsigned int flags)
{
	KX(M(v, n <= 1024 ? n * sizeof *v : 0));
	return NB_CALL(process_madvise, NB_NOSYS, pfd, v, n, advice, flags);
}

/* ---- pipes and file-to-file calls the library does not serve ---- */

NB_EXPORT ssize_t vmsplice(int fd, const struct iovec *v, size_t n, unsigned int flags)
{
	KX(if (n <= 1024) V(v, n));
	return NB_CALL(vmsplice, SYS(SYS_vmsplice, fd, v, n, flags), fd, v, n, flags);
}

/* The kernel copies into out, which may be a file phantoms stand for:
 * the range [*oout or its position, + n) changes (defer.c). */
static void into_file(int out, const loff_t *oout, size_t n)
{
	loff_t o = -1;
	if (NB_LIKELY(!nb_phantom_any() && !nb_same_inflight_any()))
		return;
	if (oout != NULL && !nb_copy_in(&o, oout, sizeof o))
		return; /* EFAULT is the kernel's to report */
	nb_defer_before_write(out, o, n);
}

NB_EXPORT ssize_t splice(int in, loff_t *oin, int out, loff_t *oout, size_t len,
			 unsigned int flags)
{
	KX(M(oin, oin ? sizeof *oin : 0); M(oout, oout ? sizeof *oout : 0));
	into_file(out, oout, len);
	return NB_CALL(splice, SYS(SYS_splice, in, oin, out, oout, len, flags), in, oin, out, oout,
		       len, flags);
}

NB_EXPORT ssize_t sendfile(int out, int in, off_t *off, size_t n)
{
	KX(M(off, off ? sizeof *off : 0));
	into_file(out, NULL, n);
	return NB_CALL(sendfile, SYS(SYS_sendfile, out, in, off, n), out, in, off, n);
}
ssize_t sendfile64(int out, int in, off_t *off, size_t n) NB_ALIAS(sendfile);

NB_EXPORT ssize_t copy_file_range(int in, off_t *oin, int out, off_t *oout, size_t n,
				 unsigned int flags)
{
	KX(M(oin, oin ? sizeof *oin : 0); M(oout, oout ? sizeof *oout : 0));
	into_file(out, oout, n);
	return NB_CALL(copy_file_range, SYS(SYS_copy_file_range, in, oin, out, oout, n, flags), in,
		       oin, out, oout, n, flags);
}

NB_EXPORT int eventfd_read(int fd, eventfd_t *v)
{
	KX(M(v, sizeof *v));
	return NB_CALL(eventfd_read, NB_NOSYS, fd, v);
}

/* ---- POSIX AIO: glibc's helper threads pread/pwrite with internal
 * calls no hook sees, into or out of aio_buf ---- */

static void aiocb(const struct aiocb *cb)
{
	struct aiocb c;
	M(cb, sizeof *cb);
	if (cb != NULL && nb_copy_in(&c, cb, sizeof c))
		M((const void *)c.aio_buf, c.aio_nbytes);
}

NB_EXPORT int aio_read(struct aiocb *cb)
{
	KX(aiocb(cb));
	return NB_CALL(aio_read, NB_NOSYS, cb);
}
int aio_read64(struct aiocb64 *cb) NB_ALIAS(aio_read);

NB_EXPORT int aio_write(struct aiocb *cb)
{
	KX(aiocb(cb));
	struct aiocb c;
	if ((nb_phantom_any() || nb_same_inflight_any()) && cb != NULL &&
	    nb_copy_in(&c, cb, sizeof c))
		nb_defer_before_write(c.aio_fildes, c.aio_offset, c.aio_nbytes);
	return NB_CALL(aio_write, NB_NOSYS, cb);
}
int aio_write64(struct aiocb64 *cb) NB_ALIAS(aio_write);

static void aiolist(struct aiocb *const list[], int n)
{
	struct aiocb *cb[64];
	if (list == NULL || n <= 0)
		return;
	for (int i = 0; i < n; i += 64) {
		int m = n - i < 64 ? n - i : 64;
		if (!nb_copy_in(cb, list + i, (size_t)m * sizeof cb[0]))
			return;
		for (int j = 0; j < m; j++)
			if (cb[j] != NULL)
				aiocb(cb[j]);
	}
}

NB_EXPORT int lio_listio(int mode, struct aiocb *const list[], int n, struct sigevent *sev)
{
	KX(aiolist(list, n); M(sev, sev ? sizeof *sev : 0));
	return NB_CALL(lio_listio, NB_NOSYS, mode, list, n, sev);
}
int lio_listio64(int mode, struct aiocb64 *const list[], int n, struct sigevent *sev)
	NB_ALIAS(lio_listio);

/* ---- random bytes ---- */

NB_EXPORT ssize_t getrandom(void *buf, size_t n, unsigned int flags)
{
	KX(M(buf, n));
	return NB_CALL(getrandom, SYS(SYS_getrandom, buf, n, flags), buf, n, flags);
}

NB_EXPORT int getentropy(void *buf, size_t n)
{
	KX(M(buf, n));
	return NB_CALL(getentropy, NB_NOSYS, buf, n);
}

/* glibc 2.36 fills large requests with getrandom straight into buf. */
NB_EXPORT void arc4random_buf(void *buf, size_t n)
{
	KX(M(buf, n));
	if (NB_REAL(arc4random_buf) != NULL)
		nb_real.arc4random_buf(buf, n);
}

/* ---- System V IPC and POSIX message queues ---- */

NB_EXPORT int msgsnd(int id, const void *m, size_t n, int flags)
{
	KX(M(m, sizeof(long) + n));
	return NB_CALL(msgsnd, (int)SYS(SYS_msgsnd, id, m, n, flags), id, m, n, flags);
}

/* A message that cannot be stored stays queued (msgrcv copies out
 * before it dequeues only with MSG_COPY): still exposed first. */
NB_EXPORT ssize_t msgrcv(int id, void *m, size_t n, long type, int flags)
{
	KX(M(m, sizeof(long) + n));
	return NB_CALL(msgrcv, SYS(SYS_msgrcv, id, m, n, type, flags), id, m, n, type, flags);
}

NB_EXPORT int msgctl(int id, int cmd, struct msqid_ds *b)
{
	KX(M(b, b ? sizeof *b : 0));
	return NB_CALL(msgctl, NB_NOSYS, id, cmd, b);
}

NB_EXPORT int shmctl(int id, int cmd, struct shmid_ds *b)
{
	KX(M(b, b ? sizeof *b : 0));
	return NB_CALL(shmctl, NB_NOSYS, id, cmd, b);
}

NB_EXPORT int semop(int id, struct sembuf *s, size_t n)
{
	KX(M(s, n * sizeof *s));
	return NB_CALL(semop, (int)SYS(SYS_semop, id, s, n), id, s, n);
}

NB_EXPORT int semtimedop(int id, struct sembuf *s, size_t n, const struct timespec *t)
{
	KX(M(s, n * sizeof *s); M(t, t ? sizeof *t : 0));
	return NB_CALL(semtimedop, (int)SYS(SYS_semtimedop, id, s, n, t), id, s, n, t);
}

/* The fourth argument is a union semun passed by value: one pointer-sized
 * word, forwarded as it came (like fcntl's). */
NB_EXPORT int semctl(int id, int num, int cmd, ...)
{
	va_list ap;
	va_start(ap, cmd);
	unsigned long arg = va_arg(ap, unsigned long);
	va_end(ap);
	KX({
		void *p = (void *)arg;
		struct semid_ds ds;
		switch (cmd & 0xff) {
		case IPC_STAT: case IPC_SET: case SEM_STAT: case SEM_STAT_ANY:
			M(p, sizeof(struct semid_ds));
			break;
		case IPC_INFO: case SEM_INFO:
			M(p, sizeof(struct seminfo));
			break;
		case GETALL: case SETALL:
			if (NB_REAL(semctl) != NULL &&
			    nb_real.semctl(id, 0, IPC_STAT, (unsigned long)&ds) == 0)
				M(p, ds.sem_nsems * sizeof(unsigned short));
			break;
		}
	});
	return NB_CALL(semctl, NB_NOSYS, id, num, cmd, arg);
}

NB_EXPORT mqd_t mq_open(const char *name, int flags, ...)
{
	mode_t mode = 0;
	struct mq_attr *attr = NULL;
	if (flags & O_CREAT) {
		va_list ap;
		va_start(ap, flags);
		mode = (mode_t)va_arg(ap, unsigned int);
		attr = va_arg(ap, struct mq_attr *);
		va_end(ap);
	}
	KX(S(name); M(attr, attr ? sizeof *attr : 0));
	return NB_CALL(mq_open, (mqd_t)NB_NOSYS, name, flags, mode, attr);
}

NB_EXPORT mqd_t __mq_open_2(const char *name, int flags)
{
	KX(S(name));
	return NB_CALL(__mq_open_2, (mqd_t)NB_NOSYS, name, flags);
}

NB_EXPORT int mq_send(mqd_t q, const char *m, size_t n, unsigned int prio)
{
	KX(M(m, n));
	return NB_CALL(mq_send, NB_NOSYS, q, m, n, prio);
}

NB_EXPORT int mq_timedsend(mqd_t q, const char *m, size_t n, unsigned int prio,
			   const struct timespec *t)
{
	KX(M(m, n); M(t, t ? sizeof *t : 0));
	return NB_CALL(mq_timedsend, NB_NOSYS, q, m, n, prio, t);
}

/* A POSIX queue dequeues before it copies out: the message would be lost. */
NB_EXPORT ssize_t mq_receive(mqd_t q, char *m, size_t n, unsigned int *prio)
{
	KX(M(m, n); M(prio, prio ? sizeof *prio : 0));
	return NB_CALL(mq_receive, NB_NOSYS, q, m, n, prio);
}

NB_EXPORT ssize_t mq_timedreceive(mqd_t q, char *m, size_t n, unsigned int *prio,
				  const struct timespec *t)
{
	KX(M(m, n); M(prio, prio ? sizeof *prio : 0); M(t, t ? sizeof *t : 0));
	return NB_CALL(mq_timedreceive, NB_NOSYS, q, m, n, prio, t);
}

NB_EXPORT int mq_getattr(mqd_t q, struct mq_attr *a)
{
	KX(M(a, sizeof *a));
	return NB_CALL(mq_getattr, NB_NOSYS, q, a);
}

NB_EXPORT int mq_setattr(mqd_t q, const struct mq_attr *a, struct mq_attr *o)
{
	KX(M(a, sizeof *a); M(o, o ? sizeof *o : 0));
	return NB_CALL(mq_setattr, NB_NOSYS, q, a, o);
}

NB_EXPORT int mq_notify(mqd_t q, const struct sigevent *sev)
{
	KX(M(sev, sev ? sizeof *sev : 0));
	return NB_CALL(mq_notify, NB_NOSYS, q, sev);
}

/* ---- device and process control: sizes only partly known ---- */

/* ioctl: the request encodes the size for most modern ioctls
 * (_IOC_SIZE); legacy ones (termios, ifreq, winsize...) are all smaller
 * than 256 bytes. Pointers nested inside the struct are not followed
 * (README Known limits). */
NB_EXPORT int ioctl(int fd, unsigned long req, ...)
{
	va_list ap;
	va_start(ap, req);
	unsigned long arg = va_arg(ap, unsigned long);
	va_end(ap);
	/* A userfaultfd made or set up: deferral ends first (sigguard.c). */
	if (NB_UNLIKELY(NB_UFFD_IOCTL(req)))
		nb_sigguard_uffd();
	KX(M(arg, _IOC_DIR(req) != _IOC_NONE && _IOC_SIZE(req) != 0 ? _IOC_SIZE(req) : 256));
	return NB_CALL(ioctl, (int)SYS(SYS_ioctl, fd, req, arg), fd, req, arg);
}

/* prctl's memory (hook_sandbox.c owns the hook): the options whose
 * second argument is memory of a known size. */
void nb_kread_prctl(int op, unsigned long a2)
{
	KX({
		switch (op) {
		case PR_SET_NAME: case PR_GET_NAME:
			M(a2, 16);
			break;
		case PR_GET_PDEATHSIG: case PR_GET_TSC: case PR_GET_FPEXC: case PR_GET_ENDIAN:
		case PR_GET_UNALIGN: case PR_GET_FPEMU:
			M(a2, sizeof(int));
			break;
		case PR_GET_TID_ADDRESS:
			M(a2, sizeof(void *));
			break;
		}
	});
}

/* sigaltstack's two structs (hook_mem.c owns the hook). */
void nb_kread_sigaltstack(const stack_t *ss, const stack_t *old)
{
	KXS(M(ss, ss ? sizeof *ss : 0); M(old, old ? sizeof *old : 0));
}

NB_EXPORT int arch_prctl(int code, unsigned long addr)
{
	/* ARCH_GET_FS/GS/CPUID store a word at addr (arch_prctl(2)). */
	KX(if (code == 0x1003 || code == 0x1004) M(addr, sizeof(unsigned long)));
	return NB_CALL(arch_prctl, (int)SYS(SYS_arch_prctl, code, addr), code, addr);
}
int __arch_prctl(int code, unsigned long addr) NB_ALIAS(arch_prctl);

/* ---- glibc's exported internal names of calls hooked elsewhere: the
 * plain path, with the memory exposed (no deferral, no forwarding) ---- */


NB_EXPORT ssize_t __read(int fd, void *buf, size_t n)
{
	NB_OWN_BADF(fd, -1);
	KX(M(buf, n));
	return NB_CALL(__read, SYS(SYS_read, fd, buf, n), fd, buf, n);
}

NB_EXPORT ssize_t __write(int fd, const void *buf, size_t n)
{
	NB_OWN_BADF(fd, -1);
	KX(M(buf, n); nb_defer_before_write(fd, -1, n));
	return NB_CALL(__write, SYS(SYS_write, fd, buf, n), fd, buf, n);
}

NB_EXPORT ssize_t __pread64(int fd, void *buf, size_t n, off_t off)
{
	NB_OWN_BADF(fd, -1);
	KX(M(buf, n));
	return NB_CALL(__pread64, SYS(SYS_pread64, fd, buf, n, off), fd, buf, n, off);
}

NB_EXPORT ssize_t __pwrite64(int fd, const void *buf, size_t n, off_t off)
{
	NB_OWN_BADF(fd, -1);
	KX(M(buf, n); nb_defer_before_write(fd, off, n));
	return NB_CALL(__pwrite64, SYS(SYS_pwrite64, fd, buf, n, off), fd, buf, n, off);
}

NB_EXPORT ssize_t __recv(int fd, void *buf, size_t n, int flags)
{
	NB_OWN_BADF(fd, -1);
	KX(M(buf, n));
	return NB_CALL(__recv, SYS(SYS_recvfrom, fd, buf, n, flags, NULL, NULL), fd, buf, n, flags);
}

NB_EXPORT ssize_t __send(int fd, const void *buf, size_t n, int flags)
{
	NB_OWN_BADF(fd, -1);
	KX(M(buf, n));
	return NB_CALL(__send, SYS(SYS_sendto, fd, buf, n, flags, NULL, 0), fd, buf, n, flags);
}

NB_EXPORT int __pipe(int p[2])
{
	KX(M(p, 2 * sizeof(int)));
	int r = NB_CALL(__pipe, (int)SYS(SYS_pipe2, p, 0), p);
	if (r == 0) {
		nb_fd_forget(p[0]);
		nb_fd_forget(p[1]);
	}
	return r;
}

/* ---- more of the same: aliases, stdio's fortify and legacy libio
 * names, and library functions that pass the caller's memory on to
 * the kernel through glibc-internal calls ---- */

int __sched_getparam(pid_t pid, struct sched_param *p) NB_ALIAS(sched_getparam);
int __sched_setscheduler(pid_t pid, int pol, const struct sched_param *p)
	NB_ALIAS(sched_setscheduler);
int __sigsuspend(const sigset_t *set) NB_ALIAS(sigsuspend);
int __adjtimex(struct timex *t) NB_ALIAS(adjtimex);

/* time, timespec_get(res) run in the vDSO on x86-64, where the store is
 * user code; a fallback system call would have the kernel store. */
NB_EXPORT time_t time(time_t *t)
{
	KXS(M(t, t ? sizeof *t : 0));
	return NB_CALL(time, (time_t)SYS(SYS_time, t), t);
}

NB_EXPORT int timespec_get(struct timespec *ts, int base)
{
	KXS(M(ts, sizeof *ts));
	return NB_CALL(timespec_get, 0, ts, base);
}

NB_EXPORT int timespec_getres(struct timespec *ts, int base)
{
	KXS(M(ts, ts ? sizeof *ts : 0));
	return NB_CALL(timespec_getres, 0, ts, base);
}

NB_EXPORT int thrd_sleep(const struct timespec *req, struct timespec *rem)
{
	KX(M(req, sizeof *req); M(rem, rem ? sizeof *rem : 0));
	return NB_CALL(thrd_sleep, -2, req, rem);
}

NB_EXPORT int pthread_setschedparam(pthread_t th, int pol, const struct sched_param *p)
{
	KX(M(p, sizeof *p));
	return NB_CALL(pthread_setschedparam, ENOSYS, th, pol, p);
}

NB_EXPORT int __xmknod(int ver, const char *p, mode_t m, dev_t *dev)
{
	KX(S(p));
	return NB_CALL(__xmknod, NB_NOSYS, ver, p, m, dev);
}

NB_EXPORT int __xmknodat(int ver, int d, const char *p, mode_t m, dev_t *dev)
{
	KX(S(p));
	return NB_CALL(__xmknodat, NB_NOSYS, ver, d, p, m, dev);
}

/* The fortify fread reads large requests straight into the buffer with
 * glibc-internal read calls (fread itself is hook_stdio.c's). */
NB_EXPORT size_t __fread_chk(void *p, size_t plen, size_t size, size_t n, FILE *f)
{
	KX(if (size != 0 && n <= SIZE_MAX / size) M(p, size * n < plen ? size * n : plen));
	return NB_CALL(__fread_chk, 0, p, plen, size, n, f);
}

NB_EXPORT size_t __fread_unlocked_chk(void *p, size_t plen, size_t size, size_t n, FILE *f)
{
	KX(if (size != 0 && n <= SIZE_MAX / size) M(p, size * n < plen ? size * n : plen));
	return NB_CALL(__fread_unlocked_chk, 0, p, plen, size, n, f);
}

/* libio's old exported names: the same direct reads and writes. */
NB_EXPORT size_t _IO_fread(void *p, size_t size, size_t n, FILE *f)
{
	KX(if (size != 0 && n <= SIZE_MAX / size) M(p, size * n));
	return NB_CALL(_IO_fread, 0, p, size, n, f);
}

NB_EXPORT size_t _IO_fwrite(const void *p, size_t size, size_t n, FILE *f)
{
	KX(if (size != 0 && n <= SIZE_MAX / size) M(p, size * n));
	return NB_CALL(_IO_fwrite, 0, p, size, n, f);
}

NB_EXPORT size_t _IO_sgetn(FILE *f, void *p, size_t n)
{
	KX(M(p, n));
	return NB_CALL(_IO_sgetn, 0, f, p, n);
}

NB_EXPORT ssize_t _IO_file_read(FILE *f, void *p, ssize_t n)
{
	KX(M(p, n > 0 ? (size_t)n : 0));
	return NB_CALL(_IO_file_read, NB_NOSYS, f, p, n);
}

NB_EXPORT ssize_t _IO_file_write(FILE *f, const void *p, ssize_t n)
{
	KX(M(p, n > 0 ? (size_t)n : 0));
	return NB_CALL(_IO_file_write, NB_NOSYS, f, p, n);
}

NB_EXPORT size_t _IO_file_xsputn(FILE *f, const void *p, size_t n)
{
	KX(M(p, n));
	return NB_CALL(_IO_file_xsputn, 0, f, p, n);
}

NB_EXPORT int _IO_do_write(FILE *f, const char *p, size_t n)
{
	KX(M(p, n));
	return NB_CALL(_IO_do_write, EOF, f, p, n);
}

/* Paths glibc hands to the kernel with internal calls. */
PATH0(remove, NB_NOSYS)

NB_EXPORT long pathconf(const char *p, int name)
{
	KX(S(p));
	return NB_CALL(pathconf, -1, p, name);
}

NB_EXPORT key_t ftok(const char *p, int id)
{
	KX(S(p));
	return NB_CALL(ftok, -1, p, id);
}

NB_EXPORT FILE *setmntent(const char *p, const char *mode)
{
	KX(S(p));
	return NB_CALL(setmntent, NULL, p, mode);
}
FILE *__setmntent(const char *p, const char *mode) NB_ALIAS(setmntent);

typedef int (*nb_dirsel)(const struct dirent *);
typedef int (*nb_dircmp)(const struct dirent **, const struct dirent **);

NB_EXPORT int scandir(const char *p, struct dirent ***list, nb_dirsel sel, nb_dircmp cmp)
{
	KX(S(p));
	return NB_CALL(scandir, NB_NOSYS, p, list, sel, cmp);
}

NB_EXPORT int scandirat(int d, const char *p, struct dirent ***list, nb_dirsel sel, nb_dircmp cmp)
{
	KX(S(p));
	return NB_CALL(scandirat, NB_NOSYS, d, p, list, sel, cmp);
}

NB_EXPORT int pivot_root(const char *p, const char *q)
{
	KX(S(p); S(q));
	return NB_CALL(pivot_root, NB_NOSYS, p, q);
}

/* bind(2) with the caller's address, inside glibc. */
NB_EXPORT int bindresvport(int fd, struct sockaddr_in *sin)
{
	KX(M(sin, sin ? sizeof *sin : 0));
	return NB_CALL(bindresvport, NB_NOSYS, fd, sin);
}

/* openpty sets the window size with ioctl(TIOCSWINSZ, winp). */
NB_EXPORT int openpty(int *m, int *s, char *name, const struct termios *t,
		      const struct winsize *w)
{
	KX(M(m, sizeof *m); M(s, sizeof *s); M(w, w ? sizeof *w : 0));
	return NB_CALL(openpty, NB_NOSYS, m, s, name, t, w);
}
