/*
 * passthru.c - the smallest preload that hooks read and write: each
 * forwards to the next definition (dlsym(RTLD_NEXT)) and does nothing
 * else. The baseline of the hot-path figure (scripts/bench-hotpath.sh,
 * tests/integration/21-hot-path.sh): what any interposition costs.
 */
#include <dlfcn.h>
#include <unistd.h>

static ssize_t (*next_read)(int, void *, size_t);
static ssize_t (*next_write)(int, const void *, size_t);

ssize_t read(int fd, void *buf, size_t n)
{
	if (next_read == NULL)
		next_read = (ssize_t(*)(int, void *, size_t))dlsym(RTLD_NEXT, "read");
	return next_read(fd, buf, n);
}

ssize_t write(int fd, const void *buf, size_t n)
{
	if (next_write == NULL)
		next_write = (ssize_t(*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write");
	return next_write(fd, buf, n);
}
