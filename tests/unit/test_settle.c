/*
 * test_settle.c - the settled loop (settle.c): a judged loop the
 * read/write hooks count alone, driven as the hooks drive it.
 *
 * hook_read/hook_write below make the hooks' decisions with the same
 * inline functions hook_io.c uses (nb_settle_read_due/_done,
 * nb_settle_write_due/_done), falling back to the detector as the full
 * path does. The "real call" fills the buffer with new bytes (read) or
 * accepts them all (write). Every test checks that the counts the reports
 * read (nb_loops_totals, nb_loops_collect) are those of the full path.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "internal.h"
#include "unit.h"

#define K4 ((size_t)4096)

struct fx {
	int zero, null, null2, file, pipe[2];
	unsigned char *buf; /* 64K, private anonymous */
	unsigned seq;
	unsigned hooked;    /* calls the settled path took */
};

static int setup(void **state)
{
	unit_fresh_core();
	struct fx *f = calloc(1, sizeof *f);
	assert_non_null(f);
	f->zero = open("/dev/zero", O_RDONLY);
	f->null = open("/dev/null", O_WRONLY);
	f->null2 = open("/dev/null", O_WRONLY);
	char path[] = "/tmp/nb-settle-XXXXXX";
	f->file = mkstemp(path);
	assert_true(f->zero >= 0 && f->null >= 0 && f->null2 >= 0 && f->file >= 0);
	unlink(path);
	assert_int_equal(ftruncate(f->file, 1 << 20), 0);
	assert_int_equal(pipe(f->pipe), 0);
	f->buf = anon_pages(65536);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	close(f->zero);
	close(f->null);
	close(f->null2);
	close(f->file);
	close(f->pipe[0]);
	close(f->pipe[1]);
	munmap(f->buf, 65536);
	free(f);
	unit_drop_core();
	return 0;
}

static void hook_read(struct fx *f, int fd, unsigned char *p, size_t n)
{
	f->seq++;
	bool due = nb_settle_read_due(fd, p, n);
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)(f->seq * 131 + i * 7);
	if (due && nb_settle_read_done(fd, p, n, (ssize_t)n)) {
		f->hooked++;
		return;
	}
	if (due)
		nb_detect_unsettle();
	nb_detect_read(fd, p, n);
}

static void hook_write(struct fx *f, int fd, const unsigned char *p, size_t n)
{
	bool due = nb_settle_write_due(fd, p, n);
	if (due && nb_settle_write_done(fd, p, n, (ssize_t)n)) {
		f->hooked++;
		return;
	}
	if (due)
		nb_detect_unsettle();
	nb_detect_write(fd, p, n);
}

static void turns(struct fx *f, int src, int dst, unsigned char *p, size_t n, int k)
{
	for (int i = 0; i < k; i++) {
		hook_read(f, src, p, n);
		hook_write(f, dst, p, n);
	}
}

static uint64_t total_iterations(void)
{
	uint64_t it, by;
	nb_loops_totals(&it, &by);
	return it;
}

static uint64_t total_bytes(void)
{
	uint64_t it, by;
	nb_loops_totals(&it, &by);
	return by;
}

static bool settled(void)
{
	return nb_settle_tls.epoch != 0;
}

static void a_refused_4k_loop_settles_and_its_counts_stay_exact(void **state)
{
	struct fx *f = *state;
	turns(f, f->zero, f->null, f->buf, K4, 100);
	assert_true(settled());
	assert_true(f->hooked >= 190); /* all but the first turns */
	assert_int_equal(total_iterations(), 100);
	assert_int_equal(total_bytes(), 100 * K4);
	/* The observe report's view: the same, with the size bucket. */
	struct nb_loop_view v[4];
	assert_int_equal(nb_loops_collect(v, 4), 1);
	assert_int_equal(v[0].iterations, 100);
	assert_int_equal(v[0].hist[nb_hist_bucket(K4)], 100);
	assert_int_equal(v[0].src_kind, NB_KIND_CHAR);
	/* Leaving folds the count into the pair: still 100. */
	nb_detect_unsettle();
	assert_false(settled());
	assert_int_equal(total_iterations(), 100);
	assert_int_equal(nb_settled_count(nb_fd_peek(f->zero)), 0);
}

static void a_file_to_pipe_loop_below_the_minimum_settles(void **state)
{
	struct fx *f = *state;
	for (int i = 0; i < 50; i++) {
		hook_read(f, f->file, f->buf, K4);
		assert_int_equal(write(f->pipe[1], f->buf, K4), (ssize_t)K4);
		hook_write(f, f->pipe[1], f->buf, K4);
		char sink[4096];
		assert_int_equal(read(f->pipe[0], sink, sizeof sink), 4096);
	}
	assert_true(settled());
	assert_int_equal(nb_fd_peek(f->file)->pair.state, NB_PAIR_LEARNING);
	assert_int_equal(total_iterations(), 50);
}

static void another_size_leaves_and_is_counted_as_before(void **state)
{
	struct fx *f = *state;
	turns(f, f->zero, f->null, f->buf, K4, 20);
	assert_true(settled());
	turns(f, f->zero, f->null, f->buf, 2048, 1);
	assert_false(settled());
	assert_int_equal(total_iterations(), 21);
	assert_int_equal(total_bytes(), 20 * K4 + 2048);
}

static void another_buffer_leaves(void **state)
{
	struct fx *f = *state;
	turns(f, f->zero, f->null, f->buf, K4, 20);
	assert_true(settled());
	assert_false(nb_settle_read_due(f->zero, f->buf + K4, K4));
	turns(f, f->zero, f->null, f->buf + K4, K4, 1);
	assert_false(settled());
	assert_int_equal(total_iterations(), 21);
}

static void another_destination_leaves_and_retires_the_pair(void **state)
{
	struct fx *f = *state;
	turns(f, f->zero, f->null, f->buf, K4, 20);
	assert_true(settled());
	hook_read(f, f->zero, f->buf, K4);
	assert_false(nb_settle_write_due(f->null2, f->buf, K4));
	hook_write(f, f->null2, f->buf, K4);
	assert_false(settled());
	assert_int_equal(total_iterations(), 21);
	struct nb_loop_view v[4];
	assert_int_equal(nb_loops_collect(v, 4), 2);
	assert_int_equal(v[0].iterations + v[1].iterations, 21);
}

static void another_source_leaves(void **state)
{
	struct fx *f = *state;
	int z2 = open("/dev/zero", O_RDONLY);
	turns(f, f->zero, f->null, f->buf, K4, 20);
	assert_false(nb_settle_read_due(z2, f->buf, K4));
	turns(f, z2, f->null, f->buf, K4, 1);
	assert_false(settled());
	assert_int_equal(total_iterations(), 21);
	close(z2);
}

/* dup2(other, src) as the hook does it: the number is forgotten. */
static void a_source_replaced_by_dup2_ends_the_settled_loop(void **state)
{
	struct fx *f = *state;
	turns(f, f->zero, f->null, f->buf, K4, 20);
	assert_true(nb_settle_read_due(f->zero, f->buf, K4));
	int z = dup(f->zero);
	nb_fd_forget(f->zero);
	assert_int_equal(dup2(f->file, f->zero), f->zero);
	assert_false(nb_settle_read_due(f->zero, f->buf, K4));
	assert_int_equal(total_iterations(), 20);
	dup2(z, f->zero);
	close(z);
}

static void a_destination_replaced_ends_the_settled_loop_before_its_write(void **state)
{
	struct fx *f = *state;
	turns(f, f->zero, f->null, f->buf, K4, 20);
	hook_read(f, f->zero, f->buf, K4);
	assert_true(nb_settle_write_due(f->null, f->buf, K4));
	nb_fd_forget(f->null);
	assert_false(nb_settle_write_due(f->null, f->buf, K4));
	hook_write(f, f->null, f->buf, K4);
	assert_false(settled());
}

/* Each of the four flags a settled call does not look at itself. */
static void raise_and_check(struct fx *f, atomic_int *flag_i, atomic_uint *flag_u)
{
	turns(f, f->zero, f->null, f->buf, K4, 20);
	assert_true(nb_settle_read_due(f->zero, f->buf, K4));
	hook_read(f, f->zero, f->buf, K4);
	assert_true(nb_settle_write_due(f->null, f->buf, K4));
	/* Raised by its owner: neither the pending write nor the next read
	 * is the settled loop's any more. */
	if (flag_i != NULL)
		NB_SETTLE_RAISE(*flag_i);
	else
		NB_SETTLE_RAISE(*flag_u);
	assert_false(nb_settle_write_due(f->null, f->buf, K4));
	hook_write(f, f->null, f->buf, K4);
	assert_false(nb_settle_read_due(f->zero, f->buf, K4));
	/* While it is up, the loop runs the full path and does not settle. */
	unsigned before = f->hooked;
	turns(f, f->zero, f->null, f->buf, K4, 20);
	assert_int_equal(f->hooked, before);
	assert_false(settled());
	if (flag_i != NULL)
		atomic_fetch_sub(flag_i, 1);
	else
		atomic_fetch_sub(flag_u, 1);
	/* Down again: it settles again, and every turn was counted once. */
	turns(f, f->zero, f->null, f->buf, K4, 20);
	assert_true(settled());
	assert_true(f->hooked > before);
	assert_int_equal(total_iterations(), 61);
}

static void a_phantom_made_anywhere_ends_the_settled_loop(void **state)
{
	raise_and_check(*state, NULL, &nb_phantom_live);
}

static void a_file_mapping_recorded_ends_the_settled_loop(void **state)
{
	raise_and_check(*state, &nb_mapping_live, NULL);
}

static void bytes_in_flight_end_the_settled_loop(void **state)
{
	raise_and_check(*state, &nb_flights_live, NULL);
}

static void a_kept_socket_error_ends_the_settled_loop(void **state)
{
	raise_and_check(*state, &nb_lost_errs, NULL);
}

static void an_arming_anywhere_ends_the_settled_loop(void **state)
{
	struct fx *f = *state;
	turns(f, f->zero, f->null, f->buf, K4, 20);
	assert_true(nb_settle_read_due(f->zero, f->buf, K4));
	/* Another loop of the process (a file to a pipe, 32K) arms. */
	nb_g.cfg.min_chunk_pipe = 16384;
	for (int i = 0; i < 8; i++) {
		nb_detect_read(f->file, f->buf + 16384, 32768);
		assert_int_equal(write(f->pipe[1], f->buf + 16384, 32768), 32768);
		nb_detect_write(f->pipe[1], f->buf + 16384, 32768);
		char sink[32768];
		assert_int_equal(read(f->pipe[0], sink, sizeof sink), 32768);
	}
	assert_int_equal(nb_fd_peek(f->file)->pair.state, NB_PAIR_ARMED);
	assert_false(nb_settle_read_due(f->zero, f->buf, K4));
}

static void modified_ends_are_a_miss_as_on_the_full_path(void **state)
{
	struct fx *f = *state;
	turns(f, f->zero, f->null, f->buf, K4, 20);
	hook_read(f, f->zero, f->buf, K4);
	f->buf[0] ^= 0xff;
	hook_write(f, f->null, f->buf, K4);
	assert_false(settled());
	assert_int_equal(total_iterations(), 20);
	assert_int_equal(nb_fd_peek(f->zero)->pair.misses[NB_MISS_MODIFIED], 1);
}

static void a_short_write_is_handed_to_the_detector(void **state)
{
	struct fx *f = *state;
	turns(f, f->zero, f->null, f->buf, K4, 20);
	hook_read(f, f->zero, f->buf, K4);
	assert_true(nb_settle_write_due(f->null, f->buf, K4));
	assert_false(nb_settle_write_done(f->null, f->buf, K4, 1000));
	nb_detect_unsettle();
	nb_detect_write(f->null, f->buf, 1000);
	nb_detect_write(f->null, f->buf + 1000, K4 - 1000);
	assert_int_equal(total_iterations(), 21);
}

static void the_live_counters_get_every_sixteenth(void **state)
{
	struct fx *f = *state;
	turns(f, f->zero, f->null, f->buf, K4, 100);
	uint64_t live = atomic_load(&nb_stats.bounces);
	assert_true(live >= 100 - 16 && live <= 100);
	nb_detect_unsettle();
	struct nb_fd *e = nb_fd_peek(f->zero);
	assert_int_equal(e->pair.live_iters, live);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(a_refused_4k_loop_settles_and_its_counts_stay_exact),
		T(a_file_to_pipe_loop_below_the_minimum_settles),
		T(another_size_leaves_and_is_counted_as_before),
		T(another_buffer_leaves),
		T(another_destination_leaves_and_retires_the_pair),
		T(another_source_leaves),
		T(a_source_replaced_by_dup2_ends_the_settled_loop),
		T(a_destination_replaced_ends_the_settled_loop_before_its_write),
		T(a_phantom_made_anywhere_ends_the_settled_loop),
		T(a_file_mapping_recorded_ends_the_settled_loop),
		T(bytes_in_flight_end_the_settled_loop),
		T(a_kept_socket_error_ends_the_settled_loop),
		T(an_arming_anywhere_ends_the_settled_loop),
		T(modified_ends_are_a_miss_as_on_the_full_path),
		T(a_short_write_is_handed_to_the_detector),
		T(the_live_counters_get_every_sixteenth),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
