/*
 * test_phantom.c - guarded memory backed by a file (phantom.c) and its
 * materialisation from the fault trampoline (fault.c).
 *
 * Each test maps private anonymous pages, guards them, registers them as a
 * phantom of a temp file, and then touches, drops or rebinds them.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "internal.h"

#define PAGES 16

static long pg;
static int src;          /* temp file: byte i is (i * 13 + 7) & 0xff */
static unsigned char *mem;

static unsigned char expect_at(off_t i)
{
	return (unsigned char)((i * 13 + 7) & 0xff);
}

static int setup(void **state)
{
	(void)state;
	pg = sysconf(_SC_PAGESIZE);
	char path[] = "/tmp/nb-phantom-XXXXXX";
	src = mkstemp(path);
	assert_true(src >= 0);
	unlink(path);
	size_t n = (size_t)pg * (PAGES + 64); /* covers every offset the tests use */
	unsigned char *b = malloc(n);
	for (size_t i = 0; i < n; i++)
		b[i] = expect_at((off_t)i);
	assert_int_equal(write(src, b, n), (ssize_t)n);
	free(b);
	mem = mmap(NULL, (size_t)pg * PAGES, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(mem != MAP_FAILED);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	nb_phantom_drop_range(0, UINTPTR_MAX, true);
	munmap(mem, (size_t)pg * PAGES);
	close(src);
	return 0;
}

static int guard(unsigned char *p, size_t pages, off_t off)
{
	/* cmocka sets its own SIGSEGV handler around every test and
	 * fixture: take the slot back (adopting cmocka's as the program's). */
	assert_int_equal(nb_fault_install(), 0);
	assert_int_equal(mprotect(p, (size_t)pg * pages, PROT_NONE), 0);
	return nb_phantom_add((uintptr_t)p, (uintptr_t)p + (size_t)pg * pages, src, off);
}

static void touch_materializes_the_file_bytes(void **state)
{
	(void)state;
	int i = guard(mem, 4, pg);
	assert_true(i >= 0);
	assert_true(nb_phantom_any());
	/* A read in the third page: the whole phantom is filled at once. */
	assert_int_equal(mem[2 * pg + 5], expect_at(pg + 2 * pg + 5));
	for (long k = 0; k < 4 * pg; k++)
		if (mem[k] != expect_at(pg + k))
			fail_msg("byte %ld wrong", k);
	/* Resolved: for a moment still recognised, so that another thread
	 * that faulted on it meanwhile just retries its access. */
	assert_int_equal(nb_phantom_find((uintptr_t)mem), NB_PHANTOM_RESOLVED);
	assert_true(nb_phantom_fault((uintptr_t)mem));
}

/* After the grace the entry is no longer recognised, but the library
 * opened those pages lately: a fault there is retried (its handler may
 * have run late), a bounded number of times in a row, and then it is the
 * program's. */
static void resolved_phantom_absorbs_a_bounded_number_of_faults_after_the_grace(void **state)
{
	(void)state;
	guard(mem, 1, 0);
	assert_int_equal(mem[0], expect_at(0));
	usleep(120 * 1000);
	assert_int_equal(nb_phantom_find((uintptr_t)mem), -1);
	int retried = 0;
	while (nb_phantom_fault((uintptr_t)mem) && retried < 1000)
		retried++;
	assert_in_range(retried, 1, 64);
	/* A page the library never opened: the program's at once. */
	void *other = mmap(NULL, (size_t)pg, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(other != MAP_FAILED);
	assert_false(nb_phantom_fault((uintptr_t)other));
	munmap(other, (size_t)pg);
}

static void dropping_a_resolved_phantom_forgets_it_at_once(void **state)
{
	(void)state;
	guard(mem, 1, 0);
	assert_int_equal(mem[0], expect_at(0));
	nb_phantom_drop_range((uintptr_t)mem, (uintptr_t)mem + 1, false);
	assert_int_equal(nb_phantom_find((uintptr_t)mem), -1);
	assert_false(nb_phantom_any());
}

static void write_touch_materializes_then_keeps_the_write(void **state)
{
	(void)state;
	guard(mem, 2, 0);
	mem[10] = 0xAA;
	assert_int_equal(mem[10], 0xAA);
	assert_int_equal(mem[11], expect_at(11));
}

static void explicit_materialize_fills_without_a_fault(void **state)
{
	(void)state;
	int i = guard(mem, 3, 5 * pg);
	assert_int_equal(nb_phantom_materialize(i), 0);
	assert_int_equal(mem[0], expect_at(5 * pg));
	assert_int_equal(mem[3 * pg - 1], expect_at(8 * pg - 1));
}

static void drop_range_forgets_without_filling(void **state)
{
	(void)state;
	guard(mem, 4, 0);
	nb_phantom_drop_range((uintptr_t)mem - 100, (uintptr_t)mem + 4 * pg, true);
	assert_int_equal(nb_phantom_find((uintptr_t)mem), -1);
	/* Accessible again and never filled: fresh anonymous memory. */
	assert_int_equal(mem[0], 0);
	assert_int_equal(mem[4 * pg - 1], 0);
}

static void drop_range_of_a_part_fills_the_pages_that_stay(void **state)
{
	(void)state;
	guard(mem, 4, 0);
	/* munmap or MADV_DONTNEED of one page: the other three keep the
	 * bytes the read gave, so the whole phantom is filled first. */
	nb_phantom_drop_range((uintptr_t)mem + pg, (uintptr_t)mem + 2 * pg, true);
	assert_true(nb_phantom_find((uintptr_t)mem) < 0);
	assert_int_equal(mem[0], expect_at(0));
	assert_int_equal(mem[4 * pg - 1], expect_at(4 * pg - 1));
}

static void edges_match_only_what_the_read_put_there(void **state)
{
	(void)state;
	int i = guard(mem + pg, 2, pg);
	memset(mem + pg - 100, 'h', 100);
	memset(mem + 3 * pg, 't', 50);
	assert_int_equal(nb_phantom_set_edges(i, (uintptr_t)mem + pg - 100,
					      (uintptr_t)mem + 3 * pg + 50), 0);
	uintptr_t s = (uintptr_t)mem + pg, e = (uintptr_t)mem + 3 * pg;
	assert_true(nb_phantom_edges_intact(i, s - 100, s));
	assert_true(nb_phantom_edges_intact(i, s - 10, s));
	assert_true(nb_phantom_edges_intact(i, e, e + 50));
	assert_true(nb_phantom_edges_intact(i, e, e + 20));
	/* outside the read, or spanning the pages: never */
	assert_false(nb_phantom_edges_intact(i, s - 101, s));
	assert_false(nb_phantom_edges_intact(i, e, e + 51));
	assert_false(nb_phantom_edges_intact(i, s - 10, e));
	/* the program changed one byte of the head */
	mem[pg - 50] = 'x';
	assert_false(nb_phantom_edges_intact(i, s - 100, s));
	assert_true(nb_phantom_edges_intact(i, s - 49, s));
	/* a rebind (the next read) forgets the edges until set again */
	assert_int_equal(nb_phantom_rebind(i, s, e, src, 0, -1, 0, s, e), 0);
	assert_false(nb_phantom_edges_intact(i, e, e + 20));
}

static void rebind_keeps_the_new_reads_edges_in_the_same_hold(void **state)
{
	(void)state;
	int i = guard(mem + pg, 2, 0);
	uintptr_t s = (uintptr_t)mem + pg, e = (uintptr_t)mem + 3 * pg;
	memset(mem + pg - 30, 'H', 30);
	memset(mem + 3 * pg, 'T', 40);
	assert_int_equal(nb_phantom_rebind(i, s, e, src, 2 * pg, 5, 9, s - 30, e + 40), 0);
	assert_true(nb_phantom_edges_intact(i, s - 30, s));
	assert_true(nb_phantom_edges_intact(i, e, e + 40));
	assert_false(nb_phantom_edges_intact(i, s - 31, s));
	int fd;
	unsigned gen;
	assert_true(nb_phantom_owner(i, &fd, &gen));
	assert_int_equal(fd, 5);
	assert_int_equal(gen, 9);
	/* the program changes a byte of the tail: that edge no longer goes
	 * out from the file */
	mem[3 * pg + 10] = 'x';
	assert_false(nb_phantom_edges_intact(i, e, e + 40));
}

static void edges_larger_than_a_slot_are_refused(void **state)
{
	(void)state;
	int i = guard(mem + 2 * pg, 2, 0);
	uintptr_t s = (uintptr_t)mem + 2 * pg;
	assert_int_equal(nb_phantom_set_edges(i, s - 4097, s + 2 * pg), -1);
	assert_false(nb_phantom_edges_intact(i, s - 10, s));
}

static void rebind_of_a_slot_taken_by_another_buffer_is_refused(void **state)
{
	(void)state;
	/* The caller looked at slot i for pages [mem, mem + 2 pg); since
	 * then it was filled and reused for other pages. */
	int i = guard(mem + 2 * pg, 2, 0);
	assert_int_equal(nb_phantom_rebind(i, (uintptr_t)mem, (uintptr_t)mem + 2 * pg, src, 7 * pg,
					   -1, 0, (uintptr_t)mem, (uintptr_t)mem + 2 * pg), -1);
	struct nb_phantom_view v;
	assert_true(nb_phantom_get(i, &v));
	assert_int_equal(v.start, (uintptr_t)mem + 2 * pg);
	assert_int_equal(v.off, 0);
}

static void drop_range_outside_keeps_the_phantom(void **state)
{
	(void)state;
	int i = guard(mem, 2, 0);
	nb_phantom_drop_range((uintptr_t)mem + 2 * pg, (uintptr_t)mem + 3 * pg, true);
	assert_int_equal(nb_phantom_find((uintptr_t)mem + pg), i);
}

static void rebind_changes_what_the_memory_will_hold(void **state)
{
	(void)state;
	int i = guard(mem, 2, 0);
	assert_int_equal(nb_phantom_rebind(i, (uintptr_t)mem, (uintptr_t)mem + 2 * pg, src, 7 * pg, -1,
					   0, (uintptr_t)mem, (uintptr_t)mem + 2 * pg), 0);
	struct nb_phantom_view v;
	assert_true(nb_phantom_get(i, &v));
	assert_int_equal(v.off, 7 * pg);
	assert_int_equal(mem[1], expect_at(7 * pg + 1));
}

static void two_phantoms_fill_independently(void **state)
{
	(void)state;
	guard(mem, 2, 0);
	guard(mem + 4 * pg, 2, 9 * pg);
	assert_int_equal(mem[4 * pg], expect_at(9 * pg));
	/* The first one is still guarded and still a phantom. */
	assert_true(nb_phantom_find((uintptr_t)mem) >= 0);
	assert_int_equal(mem[pg], expect_at(pg));
}

struct reader {
	const unsigned char *p;
	long n;
	off_t off;
	int bad;
};

static void *read_all(void *arg)
{
	struct reader *r = arg;
	for (long k = r->n - 1; k >= 0; k -= 97)
		if (r->p[k] != expect_at(r->off + k))
			r->bad++;
	return NULL;
}

static void threads_touching_at_once_all_see_the_file_bytes(void **state)
{
	(void)state;
	for (int round = 0; round < 50; round++) {
		guard(mem, PAGES, (off_t)round * pg);
		pthread_t t[4];
		struct reader r[4];
		for (int k = 0; k < 4; k++) {
			r[k] = (struct reader){ mem, PAGES * pg, (off_t)round * pg, 0 };
			pthread_create(&t[k], NULL, read_all, &r[k]);
		}
		for (int k = 0; k < 4; k++) {
			pthread_join(t[k], NULL);
			assert_int_equal(r[k].bad, 0);
		}
	}
}

static volatile sig_atomic_t program_saw;

static void program_handler(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	program_saw = si->si_addr == (void *)mem;
	mprotect(mem, (size_t)pg, PROT_READ | PROT_WRITE);
}

static void fault_outside_phantoms_reaches_the_program_handler(void **state)
{
	(void)state;
	struct sigaction sa, old;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = program_handler;
	sa.sa_flags = SA_SIGINFO;
	guard(mem + 8 * pg, 1, 0); /* a phantom elsewhere */
	nb_fault_sigaction(SIGSEGV, &sa, &old);
	mprotect(mem, (size_t)pg, PROT_NONE); /* the program's own guard */
	program_saw = 0;
	*(volatile unsigned char *)mem = 1; /* not reordered past the check */
	assert_int_equal(program_saw, 1);
	assert_true(nb_phantom_find((uintptr_t)mem + 8 * pg) >= 0);
	nb_fault_sigaction(SIGSEGV, &old, NULL);
}

static void full_table_refuses_with_enospc(void **state)
{
	(void)state;
	int n = 0;
	while (nb_phantom_add((uintptr_t)mem, (uintptr_t)mem + (size_t)pg, src, 0) >= 0)
		n++;
	assert_int_equal(n, NB_MAX_PHANTOMS);
	assert_int_equal(errno, ENOSPC);
	nb_phantom_drop_range((uintptr_t)mem, (uintptr_t)mem + (size_t)pg, false);
	assert_false(nb_phantom_any());
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

/* A kernel call reading a source file (a write served by sendfile) and
 * the letting go of the file's lease (lease.c): the one who lets go
 * waits for the calls counted, and no call starts while it does - the
 * other process's writer may change the file as soon as it is let go. */
static atomic_int break_returned;

static void *break_file(void *arg)
{
	struct stat *st = arg;
	nb_backing_break_begin(st->st_dev, st->st_ino);
	atomic_store(&break_returned, 1);
	return NULL;
}

static void a_break_waits_for_the_kernel_calls_reading_the_file(void **state)
{
	(void)state;
	struct stat st;
	assert_int_equal(fstat(src, &st), 0);
	int dup = nb_backing_get(src, st.st_dev, st.st_ino, 4 * pg);
	assert_true(dup >= 0);
	int slot = nb_backing_call_begin(dup);
	assert_true(slot >= 0);
	atomic_store(&break_returned, 0);
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, break_file, &st), 0);
	usleep(50 * 1000);
	assert_int_equal(atomic_load(&break_returned), 0); /* still waiting */
	nb_backing_call_end(dup, slot);
	pthread_join(t, NULL);
	assert_int_equal(atomic_load(&break_returned), 1);
	/* Breaking: no new call reads the file. */
	assert_int_equal(nb_backing_call_begin(dup), -1);
	nb_backing_break_end(st.st_dev, st.st_ino);
	slot = nb_backing_call_begin(dup);
	assert_true(slot >= 0);
	nb_backing_call_end(dup, slot);
	nb_backing_put(dup);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(touch_materializes_the_file_bytes),
		T(resolved_phantom_absorbs_a_bounded_number_of_faults_after_the_grace),
		T(dropping_a_resolved_phantom_forgets_it_at_once),
		T(write_touch_materializes_then_keeps_the_write),
		T(explicit_materialize_fills_without_a_fault),
		T(drop_range_forgets_without_filling),
		T(drop_range_of_a_part_fills_the_pages_that_stay),
		T(edges_match_only_what_the_read_put_there),
		T(rebind_keeps_the_new_reads_edges_in_the_same_hold),
		T(edges_larger_than_a_slot_are_refused),
		T(rebind_of_a_slot_taken_by_another_buffer_is_refused),
		T(drop_range_outside_keeps_the_phantom),
		T(rebind_changes_what_the_memory_will_hold),
		T(two_phantoms_fill_independently),
		T(threads_touching_at_once_all_see_the_file_bytes),
		T(fault_outside_phantoms_reaches_the_program_handler),
		T(full_table_refuses_with_enospc),
		T(a_break_waits_for_the_kernel_calls_reading_the_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
