/*
 * unit.h - setup pieces the unit tests of the loop machinery share (the
 * detector, the settled loop, the descriptor table). Each test file keeps
 * its own fixture; these are only the steps they have in common.
 */
#ifndef NB_UNIT_H
#define NB_UNIT_H

#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"

/* The library state a detector test starts from: default settings, no
 * thread-local detector history, no counters, loops or descriptor
 * records left by an earlier test. */
static inline void unit_fresh_core(void)
{
	nb_config_defaults(&nb_g.cfg);
	nb_detect_reset_thread();
	nb_stats_reset();
	nb_loops_reset();
	nb_fdtab_reset();
}

/* What a detector test leaves must not reach the next one. */
static inline void unit_drop_core(void)
{
	nb_detect_reset_thread();
	nb_fdtab_reset();
	nb_loops_reset();
}

/* An open, already unlinked regular file of `size` bytes, opened with
 * mkostemp's extra flags (O_APPEND, ...). The tests classify it and never
 * read it: what the bytes are does not matter. */
static inline int unlinked_file(size_t size, int flags)
{
	char path[] = "/tmp/nb-unit-XXXXXX";
	int fd = mkostemp(path, flags);
	assert_true(fd >= 0);
	unlink(path);
	char buf[4096];
	memset(buf, 'x', sizeof buf);
	while (size > 0) {
		size_t n = size < sizeof buf ? size : sizeof buf;
		assert_int_equal(write(fd, buf, n), (ssize_t)n);
		size -= n;
	}
	return fd;
}

/* Private anonymous pages, as a program's large malloc gets: a pair arms
 * only on a buffer the library could guard (detect.c), and under valgrind
 * the small-block heap is not such memory. */
static inline unsigned char *anon_pages(size_t size)
{
	unsigned char *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(p != MAP_FAILED);
	return p;
}

#endif
