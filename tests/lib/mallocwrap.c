/*
 * mallocwrap.c - a malloc interposer (as ASan, jemalloc or tcmalloc are)
 * that does file I/O from inside its first allocation, as jemalloc does
 * when it reads /proc/sys/vm/overcommit_memory. Preloaded in front of
 * libnobounce, the shim's hooks may then run inside malloc, inside dlsym,
 * before the shim's constructor: no deadlock, no recursion, no crash.
 */
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <unistd.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);

static int probed;

static void probe(void)
{
	if (probed)
		return;
	probed = 1;
	char b[64];
	int fd = open("/proc/sys/vm/overcommit_memory", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		(void)!read(fd, b, sizeof b);
		close(fd);
	}
}

void *malloc(size_t n) { probe(); return __libc_malloc(n); }
void *calloc(size_t a, size_t b) { probe(); return __libc_calloc(a, b); }
void *realloc(void *p, size_t n) { probe(); return __libc_realloc(p, n); }
void free(void *p) { __libc_free(p); }
