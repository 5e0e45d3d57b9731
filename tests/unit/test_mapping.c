/*
 * test_mapping.c - the table of read-only file mappings (mapping.c):
 * what qualifies, and how unmapping, protection changes and replacement
 * cut entries (offsets of the pieces that stay, references that go).
 *
 * The table is fed addresses directly (no real mapping is needed for its
 * bookkeeping); the descriptor is a real temp file, for the backing.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "internal.h"

#define PG 4096u
#define BASE ((uintptr_t)0x7f0000000000ull)

static int fd;

static int setup(void **state)
{
	(void)state;
	char path[] = "/tmp/nb-mapping-XXXXXX";
	fd = mkstemp(path);
	assert_true(fd >= 0);
	unlink(path);
	assert_int_equal(ftruncate(fd, 64 * PG), 0);
	nb_mapping_reset();
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	nb_mapping_forget(0, UINTPTR_MAX);
	assert_false(nb_mapping_any());
	close(fd);
	return 0;
}

static void add(uintptr_t a, size_t pages, off_t off)
{
	nb_mapping_added((void *)a, pages * PG, PROT_READ, MAP_SHARED, fd, off);
}

/* The entry at a: its range and offset, or false. */
static bool at(uintptr_t a, uintptr_t *s, uintptr_t *e, off_t *off)
{
	struct nb_mapping_view v;
	if (!nb_mapping_next(a, a + 1, &v))
		return false;
	nb_backing_put(v.backing);
	*s = v.start;
	*e = v.end;
	*off = v.off;
	return true;
}

static void qualifies_only_read_only_file_mappings(void **state)
{
	(void)state;
	nb_mapping_added((void *)BASE, 4 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	nb_mapping_added((void *)BASE, 4 * PG, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0);
	nb_mapping_added((void *)BASE, 4 * PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int p[2];
	assert_int_equal(pipe(p), 0);
	nb_mapping_added((void *)BASE, 4 * PG, PROT_READ, MAP_SHARED, p[0], 0); /* not a file */
	close(p[0]);
	close(p[1]);
	/* Private: a forced write (ptrace, /proc/PID/mem) changes it unseen. */
	nb_mapping_added((void *)BASE, 4 * PG, PROT_READ, MAP_PRIVATE, fd, 0);
	assert_false(nb_mapping_any());
	nb_mapping_added((void *)BASE, 4 * PG, PROT_READ, MAP_SHARED, fd, 0);
	assert_true(nb_mapping_any());
	assert_int_equal(nb_mapping_bytes(BASE - PG, BASE + 8 * PG), 4 * PG);
}

static void munmap_in_the_middle_splits_with_the_right_offsets(void **state)
{
	(void)state;
	add(BASE, 10, 8 * PG);
	nb_mapping_forget(BASE + 3 * PG, 2 * PG);
	uintptr_t s = 0, e = 0;
	off_t off = -1;
	assert_true(at(BASE, &s, &e, &off));
	assert_true(s == BASE && e == BASE + 3 * PG && off == 8 * PG);
	assert_false(at(BASE + 3 * PG, &s, &e, &off));
	assert_false(at(BASE + 4 * PG, &s, &e, &off));
	assert_true(at(BASE + 5 * PG, &s, &e, &off));
	assert_true(s == BASE + 5 * PG && e == BASE + 10 * PG && off == 13 * PG);
	assert_int_equal(nb_mapping_bytes(BASE, BASE + 10 * PG), 8 * PG);
}

static void protection_other_than_read_forgets_for_good(void **state)
{
	(void)state;
	add(BASE, 4, 0);
	nb_mapping_protect(BASE, 4 * PG, PROT_READ); /* no change */
	assert_int_equal(nb_mapping_bytes(BASE, BASE + 4 * PG), 4 * PG);
	nb_mapping_protect(BASE + PG, 100, PROT_READ | PROT_WRITE); /* one page, rounded */
	assert_int_equal(nb_mapping_bytes(BASE, BASE + 4 * PG), 3 * PG);
	nb_mapping_protect(BASE + PG, PG, PROT_READ); /* back: still forgotten */
	assert_int_equal(nb_mapping_bytes(BASE, BASE + 4 * PG), 3 * PG);
	nb_mapping_protect(BASE, 4 * PG, PROT_NONE);
	assert_false(nb_mapping_any());
}

static void a_new_mapping_replaces_what_was_there(void **state)
{
	(void)state;
	add(BASE, 8, 0);
	/* MAP_FIXED anonymous memory over the middle */
	nb_mapping_added((void *)(BASE + 2 * PG), 2 * PG, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	assert_int_equal(nb_mapping_bytes(BASE, BASE + 8 * PG), 6 * PG);
	/* and the file again over the rest, at another offset */
	add(BASE + 4 * PG, 4, 32 * PG);
	uintptr_t s = 0, e = 0;
	off_t off = -1;
	assert_true(at(BASE + 5 * PG, &s, &e, &off));
	assert_true(s == BASE + 4 * PG && off == 32 * PG);
}

static void the_next_mapping_is_the_lowest_overlapping_one(void **state)
{
	(void)state;
	add(BASE + 20 * PG, 2, 0);
	add(BASE + 10 * PG, 2, 4 * PG);
	struct nb_mapping_view v;
	assert_true(nb_mapping_next(BASE, BASE + 40 * PG, &v));
	nb_backing_put(v.backing);
	assert_true(v.start == BASE + 10 * PG && v.off == 4 * PG);
	assert_false(nb_mapping_next(BASE, BASE + 10 * PG, &v));
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	nb_g.active = 1;
	const struct CMUnitTest tests[] = {
		T(qualifies_only_read_only_file_mappings),
		T(munmap_in_the_middle_splits_with_the_right_offsets),
		T(protection_other_than_read_forgets_for_good),
		T(a_new_mapping_replaces_what_was_there),
		T(the_next_mapping_is_the_lowest_overlapping_one),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
