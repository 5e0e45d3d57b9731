/*
 * real.c - finds the next definition of every hooked symbol.
 *
 * Owns: the nb_real table and the raw system-call helpers the library uses
 * for its own I/O.
 * Must not: call any hooked function by name (that would recurse into the
 * hooks), allocate, or take a lock that a hook could be waiting on.
 *
 * Resolution happens in the constructor, but a hook can run earlier: from
 * another library's constructor, from a malloc replacement that opens
 * /proc files while initialising, or from inside dlsym itself (dlsym may
 * call malloc). A thread-local flag stops the recursion: while this thread
 * is resolving, NB_REAL() yields NULL and the few hooks that can be reached
 * that early fall back to a raw system call.
 */
#pragma GCC diagnostic ignored "-Wdeprecated-declarations" /* sighold, sigset, ... */
#include "internal.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

struct nb_real nb_real;

static __thread int resolving __attribute__((tls_model("initial-exec")));

/* Our own definitions, to refuse dlsym answers that point back at us
 * (possible when the library is loaded with dlopen). Unit tests link the
 * mechanisms without the hooks; there the names are libc's. */
#ifdef NB_SHARED
#define NB_SELF(name) ((void *)&name)
#else
#define NB_SELF(name) NULL
#endif

static void *lookup(const char *name, void *self)
{
	void *p = dlsym(RTLD_NEXT, name);
	if (p == NULL || p == self) {
		/* dlopen'ed after libc, or linked directly: the global scope
		 * still finds libc's definition. */
		p = dlsym(RTLD_DEFAULT, name);
		if (p == self)
			p = NULL;
	}
	return p;
}

void nb_real_init(void)
{
	if (resolving)
		return;
	resolving = 1;
	int saved = errno;
#define NB_RESOLVE(name)                                                             \
	if (nb_real.name == NULL)                                                    \
		__atomic_store_n((void **)&nb_real.name, lookup(#name, NB_SELF(name)), \
				 __ATOMIC_RELEASE);
	NB_REAL_FUNCS(NB_RESOLVE)
#undef NB_RESOLVE
	errno = saved;
	resolving = 0;
}

ssize_t nb_sys_write(int fd, const void *buf, size_t n)
{
	return syscall(SYS_write, fd, buf, n);
}

int nb_sys_close(int fd)
{
	return (int)syscall(SYS_close, fd);
}

int nb_sys_mprotect(void *addr, size_t len, int prot)
{
	/* The per-thread "this range is private anonymous memory" answer
	 * (defer.c guardable) stays true across the library's own guards:
	 * they change protection, not the kind of memory. What lies guarded
	 * under a read is filled by the read paths themselves (overwrite of
	 * the head and tail), so no /proc/self/maps read per new phantom
	 * (two alternating buffers, as nginx and python have, made one per
	 * read). */
	return (int)syscall(SYS_mprotect, addr, len, prot);
}

void *nb_sys_mmap_anon(size_t len)
{
	return (void *)syscall(SYS_mmap, NULL, len, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
}

void *nb_sys_mmap_shared(int fd, size_t len)
{
	return (void *)syscall(SYS_mmap, NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
}

int nb_sys_munmap(void *addr, size_t len)
{
	return (int)syscall(SYS_munmap, addr, len);
}

int nb_sys_fcntl(int fd, int cmd, long arg)
{
	return (int)syscall(SYS_fcntl, fd, cmd, arg);
}

/* The library's own looks at files and limits: fstat, stat and getrlimit
 * are hooked too (their memory may be a phantom, hook_kread.c), and the
 * library's calls must neither pay for that nor re-enter it. */
int nb_sys_fstat(int fd, struct stat *st)
{
	return (int)syscall(SYS_fstat, fd, st);
}

off_t nb_sys_lseek(int fd, off_t off, int whence)
{
	return (off_t)syscall(SYS_lseek, fd, off, whence);
}

int nb_sys_stat(const char *path, struct stat *st)
{
	return (int)syscall(SYS_newfstatat, AT_FDCWD, path, st, 0);
}

int nb_sys_getrlimit(int resource, struct rlimit *rl)
{
	return (int)syscall(SYS_prlimit64, 0, resource, NULL, rl);
}
