/*
 * test_fdtab.c - the per-descriptor table (fdtab.c): slots for any number,
 * classification of real descriptors, generations, forgetting, identity
 * revalidation, and pairs retired into loops.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "internal.h"
#include "unit.h"

#define BIG ((size_t)64 * 1024)

static int setup(void **state)
{
	(void)state;
	nb_config_defaults(&nb_g.cfg);
	nb_fdtab_reset();
	nb_stats_reset();
	nb_loops_reset();
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	nb_fdtab_reset();
	nb_loops_reset();
	return 0;
}

static enum nb_kind classify(int fd)
{
	struct nb_fd *e = nb_fd_get(fd);
	assert_non_null(e);
	assert_true(nb_fd_trylock(e));
	enum nb_kind k = nb_fd_classify(fd, e);
	nb_fd_unlock(e);
	return k;
}

static bool revalidate(int fd)
{
	struct nb_fd *e = nb_fd_get(fd);
	assert_non_null(e);
	assert_true(nb_fd_trylock(e));
	bool ok = nb_fd_revalidate(fd, e);
	nb_fd_unlock(e);
	return ok;
}

static unsigned gen(int fd)
{
	struct nb_fd *e = nb_fd_peek(fd);
	assert_non_null(e);
	return atomic_load(&e->gen);
}

/* A pair of `src` with a few completed bounces, as detect.c leaves it. */
static void make_pair(int src, int dst, unsigned n)
{
	struct nb_fd *e = nb_fd_get(src);
	assert_non_null(e);
	nb_pair_start(&e->pair, dst, 0, NB_KIND_FILE, NB_KIND_TCP, NB_PATH_SENDFILE);
	for (unsigned i = 0; i < n; i++)
		nb_pair_bounce(&e->pair, BIG, &nb_g.cfg);
}

/* ---- slots ---- */

static void get_returns_a_slot_for_fd_100000(void **state)
{
	(void)state;
	struct nb_fd *e = nb_fd_get(100000);
	assert_non_null(e);
	assert_int_equal(e->kind, NB_KIND_UNKNOWN);
	assert_int_equal(e->pair.state, NB_PAIR_IDLE);
	e->kind = NB_KIND_PIPE;
	assert_ptr_equal(nb_fd_get(100000), e);
	assert_int_equal(nb_fd_get(100000)->kind, NB_KIND_PIPE);
}

static void get_returns_a_slot_for_fd_2_pow_20(void **state)
{
	(void)state;
	struct nb_fd *e = nb_fd_get(1 << 20);
	assert_non_null(e);
	assert_int_equal(e->kind, NB_KIND_UNKNOWN);
	assert_ptr_equal(nb_fd_get(1 << 20), e);
}

static void get_covers_numbers_up_to_2_pow_30_minus_1(void **state)
{
	(void)state;
	assert_non_null(nb_fd_get((1 << 30) - 1));
}

static void get_refuses_numbers_from_2_pow_30(void **state)
{
	(void)state;
	assert_null(nb_fd_get(1 << 30));
	assert_null(nb_fd_get(INT_MAX));
}

static void get_of_big_numbers_ignores_rlimit_nofile(void **state)
{
	(void)state;
	struct rlimit old, low;
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	low = old;
	low.rlim_cur = 64;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	struct nb_fd *a = nb_fd_get(100000);
	struct nb_fd *b = nb_fd_get(1 << 20);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
	assert_non_null(a);
	assert_non_null(b);
}

static void get_refuses_negative_numbers(void **state)
{
	(void)state;
	assert_null(nb_fd_get(-1));
	assert_null(nb_fd_get(INT_MIN));
}

static void distinct_numbers_have_distinct_slots(void **state)
{
	(void)state;
	struct nb_fd *a = nb_fd_get(3), *b = nb_fd_get(4), *c = nb_fd_get(3 + 1024);
	assert_non_null(a);
	assert_non_null(b);
	assert_non_null(c);
	assert_ptr_not_equal(a, b);
	assert_ptr_not_equal(a, c);
	assert_ptr_not_equal(b, c);
}

static void peek_does_not_allocate(void **state)
{
	(void)state;
	assert_null(nb_fd_peek(100000));
	assert_int_equal(atomic_load(&nb_stats.fd_slots), 0);
	struct nb_fd *e = nb_fd_get(100000);
	assert_int_equal(atomic_load(&nb_stats.fd_slots), 1);
	assert_ptr_equal(nb_fd_peek(100000), e);
	assert_int_equal(atomic_load(&nb_stats.fd_slots), 1);
}

static void peek_of_negative_number_is_null(void **state)
{
	(void)state;
	assert_null(nb_fd_peek(-1));
}

static void reset_drops_every_slot(void **state)
{
	(void)state;
	nb_fd_get(5)->kind = NB_KIND_TCP;
	nb_fd_get(1 << 20);
	nb_fdtab_reset();
	assert_null(nb_fd_peek(5));
	assert_null(nb_fd_peek(1 << 20));
	assert_int_equal(nb_fd_get(5)->kind, NB_KIND_UNKNOWN);
}

/* ---- classification ---- */

static void classifies_regular_file_with_data_as_file(void **state)
{
	(void)state;
	int fd = unlinked_file(10000, 0);
	assert_int_equal(classify(fd), NB_KIND_FILE);
	struct nb_fd *e = nb_fd_peek(fd);
	assert_int_equal(e->kind, NB_KIND_FILE);
	assert_int_equal(e->flags & NB_FL_PSEUDO, 0);
	assert_int_equal(e->size, 10000);
	struct stat st;
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(e->dev, st.st_dev);
	assert_int_equal(e->ino, st.st_ino);
	close(fd);
}

static void classifies_empty_regular_file_as_pseudo_file(void **state)
{
	(void)state;
	int fd = unlinked_file(0, 0);
	assert_int_equal(classify(fd), NB_KIND_FILE);
	assert_int_equal(nb_fd_peek(fd)->flags & NB_FL_PSEUDO, NB_FL_PSEUDO);
	close(fd);
}

static void classifies_proc_file_as_pseudo_file(void **state)
{
	(void)state;
	int fd = open("/proc/self/status", O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(classify(fd), NB_KIND_FILE);
	assert_int_equal(nb_fd_peek(fd)->flags & NB_FL_PSEUDO, NB_FL_PSEUDO);
	close(fd);
}

static void classifies_both_ends_of_a_pipe_as_pipe(void **state)
{
	(void)state;
	int p[2];
	assert_int_equal(pipe(p), 0);
	assert_int_equal(classify(p[0]), NB_KIND_PIPE);
	assert_int_equal(classify(p[1]), NB_KIND_PIPE);
	close(p[0]);
	close(p[1]);
}

static void classifies_tcp_socket_as_tcp(void **state)
{
	(void)state;
	int s = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(s >= 0);
	assert_int_equal(classify(s), NB_KIND_TCP);
	close(s);
}

static void classifies_tcp6_socket_as_tcp(void **state)
{
	(void)state;
	int s = socket(AF_INET6, SOCK_STREAM, 0);
	if (s < 0)
		skip(); /* no IPv6 here */
	assert_int_equal(classify(s), NB_KIND_TCP);
	close(s);
}

static void classifies_unix_stream_socketpair_as_unix(void **state)
{
	(void)state;
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(classify(sv[0]), NB_KIND_UNIX);
	assert_int_equal(classify(sv[1]), NB_KIND_UNIX);
	close(sv[0]);
	close(sv[1]);
}

static void classifies_unix_datagram_socketpair_as_other(void **state)
{
	(void)state;
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv), 0);
	assert_int_equal(classify(sv[0]), NB_KIND_OTHER);
	close(sv[0]);
	close(sv[1]);
}

static void classifies_udp_socket_as_other(void **state)
{
	(void)state;
	int s = socket(AF_INET, SOCK_DGRAM, 0);
	assert_true(s >= 0);
	assert_int_equal(classify(s), NB_KIND_OTHER);
	close(s);
}

static void classifies_dev_null_as_char(void **state)
{
	(void)state;
	int fd = open("/dev/null", O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(classify(fd), NB_KIND_CHAR);
	assert_int_equal(nb_fd_peek(fd)->flags & NB_FL_PSEUDO, 0);
	close(fd);
}

static void classifies_directory_as_other(void **state)
{
	(void)state;
	int fd = open("/tmp", O_RDONLY | O_DIRECTORY);
	assert_true(fd >= 0);
	assert_int_equal(classify(fd), NB_KIND_OTHER);
	close(fd);
}

static void classify_of_a_closed_number_is_unknown(void **state)
{
	(void)state;
	int fd = unlinked_file(100, 0);
	close(fd);
	assert_int_equal(classify(fd), NB_KIND_UNKNOWN);
	assert_int_equal(nb_fd_peek(fd)->kind, NB_KIND_UNKNOWN);
	assert_int_equal(atomic_load(&nb_stats.classified), 0);
}

static void classify_preserves_errno(void **state)
{
	(void)state;
	int fd = unlinked_file(100, 0);
	errno = EXDEV;
	classify(fd);
	assert_int_equal(errno, EXDEV);
	close(fd);
	errno = EXDEV;
	classify(fd); /* fstat fails with EBADF */
	assert_int_equal(errno, EXDEV);
}

static void classify_counts_each_classification(void **state)
{
	(void)state;
	int p[2];
	assert_int_equal(pipe(p), 0);
	classify(p[0]);
	classify(p[1]);
	assert_int_equal(atomic_load(&nb_stats.classified), 2);
	close(p[0]);
	close(p[1]);
}

static void classify_records_the_append_flag(void **state)
{
	(void)state;
	int fd = unlinked_file(100, O_APPEND);
	classify(fd);
	assert_int_equal(nb_fd_peek(fd)->flags & NB_FL_APPEND, NB_FL_APPEND);
	assert_int_equal(nb_fd_peek(fd)->flags & NB_FL_NONBLOCK, 0);
	close(fd);
}

static void classify_records_the_nonblock_flag(void **state)
{
	(void)state;
	int p[2];
	assert_int_equal(pipe2(p, O_NONBLOCK), 0);
	classify(p[1]);
	assert_int_equal(nb_fd_peek(p[1])->flags & NB_FL_NONBLOCK, NB_FL_NONBLOCK);
	int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	assert_true(s >= 0);
	classify(s);
	assert_int_equal(nb_fd_peek(s)->flags & NB_FL_NONBLOCK, NB_FL_NONBLOCK);
	close(s);
	close(p[0]);
	close(p[1]);
}

static void classify_of_a_plain_descriptor_sets_no_flags(void **state)
{
	(void)state;
	int fd = unlinked_file(100, 0);
	classify(fd);
	assert_int_equal(nb_fd_peek(fd)->flags, 0);
	close(fd);
}

static void set_flags_maps_append_nonblock_and_direct(void **state)
{
	(void)state;
	struct nb_fd *e = nb_fd_get(10);
	e->flags = 0;
	nb_fd_set_flags(e, O_WRONLY | O_APPEND);
	assert_int_equal(e->flags, NB_FL_APPEND);
	nb_fd_set_flags(e, O_RDWR | O_NONBLOCK);
	assert_int_equal(e->flags, NB_FL_NONBLOCK);
	nb_fd_set_flags(e, O_RDONLY | O_DIRECT);
	assert_int_equal(e->flags, NB_FL_DIRECT);
	nb_fd_set_flags(e, O_APPEND | O_NONBLOCK | O_DIRECT | O_CLOEXEC | O_LARGEFILE);
	assert_int_equal(e->flags, NB_FL_APPEND | NB_FL_NONBLOCK | NB_FL_DIRECT);
}

static void set_flags_keeps_the_pseudo_flag(void **state)
{
	(void)state;
	struct nb_fd *e = nb_fd_get(10);
	e->flags = NB_FL_PSEUDO | NB_FL_APPEND;
	nb_fd_set_flags(e, O_RDONLY);
	assert_int_equal(e->flags, NB_FL_PSEUDO);
}

/* ---- generations and forgetting ---- */

static void forget_bumps_the_generation(void **state)
{
	(void)state;
	nb_fd_get(7);
	unsigned g = gen(7);
	nb_fd_forget(7);
	assert_int_equal(gen(7), g + 1);
	nb_fd_forget(7);
	assert_int_equal(gen(7), g + 2);
}

static void get_after_forget_resets_the_slot(void **state)
{
	(void)state;
	int fd = unlinked_file(100, O_APPEND);
	classify(fd);
	make_pair(fd, 42, 1);
	nb_fd_forget(fd);
	struct nb_fd *e = nb_fd_get(fd);
	assert_int_equal(e->kind, NB_KIND_UNKNOWN);
	assert_int_equal(e->flags, 0);
	assert_int_equal(e->ino, 0);
	assert_int_equal(e->pair.state, NB_PAIR_IDLE);
	assert_int_equal(e->pair.dst, -1);
	assert_int_equal(e->pair.iterations, 0);
	close(fd);
}

static void forgotten_number_is_classified_afresh(void **state)
{
	(void)state;
	int p[2];
	assert_int_equal(pipe(p), 0);
	int fd = p[0];
	assert_int_equal(classify(fd), NB_KIND_PIPE);
	/* The number now names a socket; the hooks saw the close. */
	int s = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(s >= 0);
	assert_int_equal(dup2(s, fd), fd);
	nb_fd_forget(fd);
	assert_int_equal(nb_fd_get(fd)->kind, NB_KIND_UNKNOWN);
	assert_int_equal(classify(fd), NB_KIND_TCP);
	close(s);
	close(p[0]);
	close(p[1]);
}

static void forget_of_an_unallocated_number_allocates_nothing(void **state)
{
	(void)state;
	nb_fd_forget(5000);
	assert_null(nb_fd_peek(5000));
	assert_int_equal(atomic_load(&nb_stats.fd_slots), 0);
}

static void busy_slot_is_reset_by_the_first_get_after_it_is_free(void **state)
{
	(void)state;
	struct nb_fd *e = nb_fd_get(8);
	e->kind = NB_KIND_TCP;
	assert_true(nb_fd_trylock(e));
	nb_fd_forget(8);
	/* Busy: the lazy reset waits for whoever holds the slot. */
	assert_int_equal(nb_fd_get(8)->kind, NB_KIND_TCP);
	nb_fd_unlock(e);
	assert_int_equal(nb_fd_get(8)->kind, NB_KIND_UNKNOWN);
}

static void forget_range_bumps_every_number_across_chunk_boundaries(void **state)
{
	(void)state;
	/* Slots in chunks 0, 1 and 4 (1024 numbers per chunk today; the
	 * numbers are chosen so that any chunk size up to 1024 is crossed). */
	static const int in[] = { 1000, 1023, 1024, 1500, 2047, 4096, 4200 };
	for (size_t i = 0; i < sizeof in / sizeof in[0]; i++)
		nb_fd_get(in[i]);
	unsigned before[sizeof in / sizeof in[0]];
	for (size_t i = 0; i < sizeof in / sizeof in[0]; i++)
		before[i] = gen(in[i]);
	nb_fd_forget_range(1000, 4200);
	for (size_t i = 0; i < sizeof in / sizeof in[0]; i++)
		if (gen(in[i]) != before[i] + 1)
			fail_msg("fd %d: gen %u, expected %u", in[i], gen(in[i]), before[i] + 1);
}

static void forget_range_leaves_numbers_outside_it_alone(void **state)
{
	(void)state;
	nb_fd_get(999);
	nb_fd_get(4201);
	nb_fd_get(1000);
	unsigned g999 = gen(999), g4201 = gen(4201);
	nb_fd_forget_range(1000, 4200);
	assert_int_equal(gen(999), g999);
	assert_int_equal(gen(4201), g4201);
	assert_int_equal(gen(1000), 1);
}

static void forget_range_allocates_nothing(void **state)
{
	(void)state;
	nb_fd_get(10);
	nb_fd_get(5000);
	nb_fd_forget_range(0, 100000);
	assert_null(nb_fd_peek(2048));
	assert_null(nb_fd_peek(3100));
	assert_null(nb_fd_peek(9000));
	assert_null(nb_fd_peek(100000));
	assert_int_equal(atomic_load(&nb_stats.fd_slots), 2);
}

static void forget_range_to_uint_max_reaches_big_numbers(void **state)
{
	(void)state;
	nb_fd_get(2);
	nb_fd_get(3);
	nb_fd_get(1 << 20);
	nb_fd_get((1 << 30) - 1);
	nb_fd_forget_range(3, UINT_MAX); /* close_range(3, ~0U, 0) */
	assert_int_equal(gen(2), 0);
	assert_int_equal(gen(3), 1);
	assert_int_equal(gen(1 << 20), 1);
	assert_int_equal(gen((1 << 30) - 1), 1);
}

/* The walk stops at the highest chunk in use (closefrom() in a process
 * whose numbers are all small costs no walk of the whole top table), and
 * still reaches the last number of that chunk. */
static void forget_range_to_uint_max_reaches_the_end_of_the_highest_chunk(void **state)
{
	(void)state;
	nb_fd_get(4096);
	nb_fd_get(5119); /* the last number of chunk 4 */
	nb_fd_forget_range(5000, UINT_MAX);
	assert_int_equal(gen(4096), 0);
	assert_int_equal(gen(5119), 1);
	nb_fd_forget_range(5120, UINT_MAX); /* past every chunk: nothing */
	assert_int_equal(gen(5119), 1);
	assert_null(nb_fd_peek(5120));
}

static void forget_range_of_one_number_forgets_only_it(void **state)
{
	(void)state;
	nb_fd_get(1023);
	nb_fd_get(1024);
	nb_fd_get(1025);
	nb_fd_forget_range(1024, 1024);
	assert_int_equal(gen(1023), 0);
	assert_int_equal(gen(1024), 1);
	assert_int_equal(gen(1025), 0);
}

/* ---- revalidation ---- */

static void revalidate_keeps_the_same_file_valid(void **state)
{
	(void)state;
	int fd = unlinked_file(100, 0);
	classify(fd);
	unsigned g = gen(fd);
	assert_true(revalidate(fd));
	assert_int_equal(nb_fd_peek(fd)->kind, NB_KIND_FILE);
	assert_int_equal(gen(fd), g);
	assert_int_equal(atomic_load(&nb_stats.revalidations), 1);
	assert_int_equal(atomic_load(&nb_stats.stale), 0);
	close(fd);
}

static void revalidate_detects_a_different_file_on_the_same_number(void **state)
{
	(void)state;
	int fd = unlinked_file(100, 0);
	int other = unlinked_file(200, 0);
	classify(fd);
	unsigned g = gen(fd);
	/* Reused behind the hooks' back (say, a raw close + open). */
	assert_int_equal(dup2(other, fd), fd);
	assert_false(revalidate(fd));
	assert_int_equal(nb_fd_peek(fd)->kind, NB_KIND_UNKNOWN);
	assert_int_equal(gen(fd), g + 1);
	assert_int_equal(atomic_load(&nb_stats.stale), 1);
	/* The next classification describes the new file. */
	assert_int_equal(classify(fd), NB_KIND_FILE);
	assert_int_equal(nb_fd_peek(fd)->size, 200);
	close(other);
	close(fd);
}

static void revalidate_detects_a_pipe_replaced_by_a_socket(void **state)
{
	(void)state;
	int p[2];
	assert_int_equal(pipe(p), 0);
	classify(p[1]);
	int s = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(s >= 0);
	assert_int_equal(dup2(s, p[1]), p[1]);
	assert_false(revalidate(p[1]));
	close(s);
	close(p[0]);
	close(p[1]);
}

static void revalidate_of_a_closed_number_is_false(void **state)
{
	(void)state;
	int fd = unlinked_file(100, 0);
	classify(fd);
	close(fd);
	assert_false(revalidate(fd));
	assert_int_equal(nb_fd_peek(fd)->kind, NB_KIND_UNKNOWN);
}

static void revalidate_refreshes_the_flags_of_the_same_file(void **state)
{
	(void)state;
	int fd = unlinked_file(100, 0);
	classify(fd);
	assert_int_equal(nb_fd_peek(fd)->flags & NB_FL_APPEND, 0);
	assert_int_equal(fcntl(fd, F_SETFL, O_APPEND), 0);
	assert_true(revalidate(fd));
	assert_int_equal(nb_fd_peek(fd)->flags & NB_FL_APPEND, NB_FL_APPEND);
	close(fd);
}

static void revalidate_clears_pseudo_once_the_file_has_data(void **state)
{
	(void)state;
	int fd = unlinked_file(0, 0);
	classify(fd);
	assert_int_equal(nb_fd_peek(fd)->flags & NB_FL_PSEUDO, NB_FL_PSEUDO);
	assert_int_equal(write(fd, "some bytes", 10), 10);
	assert_true(revalidate(fd));
	assert_int_equal(nb_fd_peek(fd)->flags & NB_FL_PSEUDO, 0);
	assert_int_equal(nb_fd_peek(fd)->size, 10);
	close(fd);
}

static void revalidate_of_an_unclassified_slot_is_false(void **state)
{
	(void)state;
	int fd = unlinked_file(100, 0);
	assert_false(revalidate(fd));
	close(fd);
}

static void revalidate_after_forget_is_false(void **state)
{
	(void)state;
	int fd = unlinked_file(100, 0);
	classify(fd);
	nb_fd_forget(fd);
	struct nb_fd *e = nb_fd_peek(fd);
	assert_true(nb_fd_trylock(e)); /* no nb_fd_get: the slot lags its gen */
	assert_false(nb_fd_revalidate(fd, e));
	nb_fd_unlock(e);
	close(fd);
}

/* ---- locking ---- */

static void trylock_of_a_busy_slot_fails_and_counts_a_skip(void **state)
{
	(void)state;
	struct nb_fd *e = nb_fd_get(12);
	assert_true(nb_fd_trylock(e));
	assert_false(nb_fd_trylock(e));
	assert_int_equal(atomic_load(&nb_stats.lock_skips), 1);
	nb_fd_unlock(e);
	assert_true(nb_fd_trylock(e));
	nb_fd_unlock(e);
}

/* ---- pairs and loops ---- */

static void live_pair_shows_up_in_loops_collect(void **state)
{
	(void)state;
	make_pair(20, 21, 3);
	struct nb_loop_view v[4];
	assert_int_equal(nb_loops_collect(v, 4), 1);
	assert_int_equal(v[0].src, 20);
	assert_int_equal(v[0].dst, 21);
	assert_int_equal(v[0].iterations, 3);
}

static void pair_retired_on_forget_shows_up_in_loops_collect(void **state)
{
	(void)state;
	make_pair(40, 41, 3);
	nb_fd_forget(40);
	struct nb_fd *e = nb_fd_get(40); /* catches up: retires the pair */
	assert_int_equal(e->pair.state, NB_PAIR_IDLE);
	struct nb_loop_view v[4];
	assert_int_equal(nb_loops_collect(v, 4), 1);
	assert_int_equal(v[0].src, 40);
	assert_int_equal(v[0].dst, 41);
	assert_int_equal(v[0].src_kind, NB_KIND_FILE);
	assert_int_equal(v[0].dst_kind, NB_KIND_TCP);
	assert_int_equal(v[0].path, NB_PATH_SENDFILE);
	assert_int_equal(v[0].iterations, 3);
	assert_int_equal(v[0].bytes, 3 * BIG);
	assert_int_equal(v[0].arms, 1);
}

static void forgotten_pair_is_reported_once_before_and_after_catch_up(void **state)
{
	(void)state;
	make_pair(40, 41, 5);
	nb_fd_forget(40);
	struct nb_loop_view v[4];
	assert_int_equal(nb_loops_collect(v, 4), 1);
	assert_int_equal(v[0].iterations, 5);
	nb_fd_get(40);
	assert_int_equal(nb_loops_collect(v, 4), 1);
	assert_int_equal(v[0].iterations, 5);
}

static void pairs_retired_twice_from_the_same_numbers_are_merged(void **state)
{
	(void)state;
	make_pair(40, 41, 3);
	nb_fd_forget(40);
	nb_fd_get(40);
	make_pair(40, 41, 4);
	nb_fd_forget(40);
	nb_fd_get(40);
	struct nb_loop_view v[4];
	assert_int_equal(nb_loops_collect(v, 4), 1);
	assert_int_equal(v[0].iterations, 7);
}

static void pair_retired_by_failed_revalidation_shows_up_in_loops_collect(void **state)
{
	(void)state;
	int fd = unlinked_file(100, 0);
	int other = unlinked_file(100, 0);
	classify(fd);
	make_pair(fd, 99, 2);
	assert_int_equal(dup2(other, fd), fd);
	assert_false(revalidate(fd));
	assert_int_equal(nb_fd_peek(fd)->pair.state, NB_PAIR_IDLE);
	struct nb_loop_view v[4];
	assert_int_equal(nb_loops_collect(v, 4), 1);
	assert_int_equal(v[0].src, fd);
	assert_int_equal(v[0].iterations, 2);
	close(other);
	close(fd);
}

static void forget_pairs_drops_live_pairs_without_retiring_them(void **state)
{
	(void)state;
	make_pair(20, 21, 3);
	make_pair(3000, 21, 3);
	nb_fdtab_forget_pairs();
	assert_int_equal(nb_fd_peek(20)->pair.state, NB_PAIR_IDLE);
	assert_int_equal(nb_fd_peek(3000)->pair.state, NB_PAIR_IDLE);
	struct nb_loop_view v[4];
	assert_int_equal(nb_loops_collect(v, 4), 0);
}

static void kind_names(void **state)
{
	(void)state;
	assert_string_equal(nb_kind_name(NB_KIND_FILE), "file");
	assert_string_equal(nb_kind_name(NB_KIND_TCP), "tcp");
	assert_string_equal(nb_kind_name(NB_KIND_UNIX), "unix");
	assert_string_equal(nb_kind_name(NB_KIND_PIPE), "pipe");
	assert_string_equal(nb_kind_name(NB_KIND_CHAR), "char");
	assert_string_equal(nb_kind_name(NB_KIND_OTHER), "other");
	assert_string_equal(nb_kind_name(NB_KIND_COUNT), "?");
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(get_returns_a_slot_for_fd_100000),
		T(get_returns_a_slot_for_fd_2_pow_20),
		T(get_covers_numbers_up_to_2_pow_30_minus_1),
		T(get_refuses_numbers_from_2_pow_30),
		T(get_of_big_numbers_ignores_rlimit_nofile),
		T(get_refuses_negative_numbers),
		T(distinct_numbers_have_distinct_slots),
		T(peek_does_not_allocate),
		T(peek_of_negative_number_is_null),
		T(reset_drops_every_slot),
		T(classifies_regular_file_with_data_as_file),
		T(classifies_empty_regular_file_as_pseudo_file),
		T(classifies_proc_file_as_pseudo_file),
		T(classifies_both_ends_of_a_pipe_as_pipe),
		T(classifies_tcp_socket_as_tcp),
		T(classifies_tcp6_socket_as_tcp),
		T(classifies_unix_stream_socketpair_as_unix),
		T(classifies_unix_datagram_socketpair_as_other),
		T(classifies_udp_socket_as_other),
		T(classifies_dev_null_as_char),
		T(classifies_directory_as_other),
		T(classify_of_a_closed_number_is_unknown),
		T(classify_preserves_errno),
		T(classify_counts_each_classification),
		T(classify_records_the_append_flag),
		T(classify_records_the_nonblock_flag),
		T(classify_of_a_plain_descriptor_sets_no_flags),
		T(set_flags_maps_append_nonblock_and_direct),
		T(set_flags_keeps_the_pseudo_flag),
		T(forget_bumps_the_generation),
		T(get_after_forget_resets_the_slot),
		T(forgotten_number_is_classified_afresh),
		T(forget_of_an_unallocated_number_allocates_nothing),
		T(busy_slot_is_reset_by_the_first_get_after_it_is_free),
		T(forget_range_bumps_every_number_across_chunk_boundaries),
		T(forget_range_leaves_numbers_outside_it_alone),
		T(forget_range_allocates_nothing),
		T(forget_range_to_uint_max_reaches_big_numbers),
		T(forget_range_to_uint_max_reaches_the_end_of_the_highest_chunk),
		T(forget_range_of_one_number_forgets_only_it),
		T(revalidate_keeps_the_same_file_valid),
		T(revalidate_detects_a_different_file_on_the_same_number),
		T(revalidate_detects_a_pipe_replaced_by_a_socket),
		T(revalidate_of_a_closed_number_is_false),
		T(revalidate_refreshes_the_flags_of_the_same_file),
		T(revalidate_clears_pseudo_once_the_file_has_data),
		T(revalidate_of_an_unclassified_slot_is_false),
		T(revalidate_after_forget_is_false),
		T(trylock_of_a_busy_slot_fails_and_counts_a_skip),
		T(live_pair_shows_up_in_loops_collect),
		T(pair_retired_on_forget_shows_up_in_loops_collect),
		T(forgotten_pair_is_reported_once_before_and_after_catch_up),
		T(pairs_retired_twice_from_the_same_numbers_are_merged),
		T(pair_retired_by_failed_revalidation_shows_up_in_loops_collect),
		T(forget_pairs_drops_live_pairs_without_retiring_them),
		T(kind_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
