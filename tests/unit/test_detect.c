/*
 * test_detect.c - the bounce detector (detect.c), driven directly.
 *
 * The detector never does I/O on the descriptors it is shown; it only
 * classifies them with fstat. So each test opens real descriptors (a temp
 * regular file with data as the source, a pipe or a socketpair as the
 * destination), "reads" by filling a malloc'd buffer and calling
 * nb_detect_read, and "writes" by calling nb_detect_write/writev, the way
 * the hooks do after the real call returned.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cmocka.h>
#include <sys/mman.h>

#include "internal.h"
#include "unit.h"

#define K64 ((size_t)64 * 1024)
#define K32 ((size_t)32 * 1024)

struct fx {
	int src;           /* regular file with data */
	int pipe[2];       /* pipe[1]: the usual destination */
	int sock[2];       /* AF_UNIX stream pair: a second destination */
	unsigned char *a;  /* two read buffers, K64 each */
	unsigned char *b;
	unsigned seq;      /* makes every simulated read deliver new bytes */
};

static int setup(void **state)
{
	unit_fresh_core();
	struct fx *f = calloc(1, sizeof *f);
	assert_non_null(f);
	f->src = unlinked_file(1 << 20, 0);
	assert_int_equal(pipe(f->pipe), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, f->sock), 0);
	f->a = anon_pages(K64);
	f->b = anon_pages(K64);
	memset(f->a, 0, K64);
	memset(f->b, 0, K64);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	close(f->src);
	close(f->pipe[0]);
	close(f->pipe[1]);
	close(f->sock[0]);
	close(f->sock[1]);
	munmap(f->a, K64);
	munmap(f->b, K64);
	free(f);
	unit_drop_core();
	return 0;
}

/* A read of n bytes from fd into p: new bytes land, then the hook runs. */
static void rd(struct fx *f, int fd, unsigned char *p, size_t n)
{
	f->seq++;
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)(f->seq * 131 + i * 7);
	nb_detect_read(fd, p, n);
}

static void wr(int fd, const unsigned char *p, size_t n)
{
	nb_detect_write(fd, p, n);
}

/* One complete iteration of the plain loop. */
static void loop(struct fx *f, unsigned char *p, size_t n, int dst)
{
	rd(f, f->src, p, n);
	wr(dst, p, n);
}

static struct nb_pair *pair_of(int src)
{
	struct nb_fd *e = nb_fd_peek(src);
	assert_non_null(e);
	return &e->pair;
}

static unsigned long long stat_bounces(void)
{
	uint64_t it, bytes;
	nb_loops_totals(&it, &bytes);
	return it;
}

static unsigned long long stat_bytes(void)
{
	uint64_t it, bytes;
	nb_loops_totals(&it, &bytes);
	return bytes;
}

static unsigned long long stat_misses(enum nb_miss m)
{
	return atomic_load(&nb_stats.misses[m]);
}

static unsigned long long all_misses(void)
{
	return stat_misses(NB_MISS_UNFORWARDED) + stat_misses(NB_MISS_TWO_DESTS) +
	       stat_misses(NB_MISS_MODIFIED);
}

/* ---- the plain loop ---- */

static void one_buffer_reused_counts_a_bounce_per_iteration(void **state)
{
	struct fx *f = *state;
	for (int i = 0; i < 5; i++)
		loop(f, f->a, K64, f->pipe[1]);
	assert_int_equal(stat_bounces(), 5);
	assert_int_equal(stat_bytes(), 5 * K64);
	struct nb_pair *p = pair_of(f->src);
	assert_int_equal(p->iterations, 5);
	assert_int_equal(p->bytes, 5 * K64);
	assert_int_equal(p->dst, f->pipe[1]);
	assert_int_equal(all_misses(), 0);
}

static void first_bounce_pairs_source_and_destination_with_their_kinds(void **state)
{
	struct fx *f = *state;
	loop(f, f->a, K64, f->pipe[1]);
	struct nb_pair *p = pair_of(f->src);
	assert_int_equal(p->state, NB_PAIR_LEARNING);
	assert_int_equal(p->dst, f->pipe[1]);
	assert_int_equal(p->src_kind, NB_KIND_FILE);
	assert_int_equal(p->dst_kind, NB_KIND_PIPE);
	assert_int_equal(p->path, NB_PATH_SPLICE);
	assert_int_equal(nb_fd_peek(f->src)->kind, NB_KIND_FILE);
	assert_int_equal(nb_fd_peek(f->pipe[1])->kind, NB_KIND_PIPE);
}

static void bounce_to_a_unix_socket_takes_the_sendfile_path(void **state)
{
	struct fx *f = *state;
	loop(f, f->a, K64, f->sock[0]);
	struct nb_pair *p = pair_of(f->src);
	assert_int_equal(p->dst_kind, NB_KIND_UNIX);
	assert_int_equal(p->path, NB_PATH_SENDFILE);
}

static void bounce_to_dev_null_is_counted_but_refused(void **state)
{
	struct fx *f = *state;
	int null = open("/dev/null", O_WRONLY);
	assert_true(null >= 0);
	for (int i = 0; i < 10; i++)
		loop(f, f->a, K64, null);
	struct nb_pair *p = pair_of(f->src);
	assert_int_equal(p->state, NB_PAIR_REFUSED);
	assert_int_equal(p->iterations, 10);
	assert_int_equal(stat_bounces(), 10);
	assert_int_equal(atomic_load(&nb_stats.arms), 0);
	close(null);
}

static void bounce_from_an_empty_source_file_is_refused(void **state)
{
	struct fx *f = *state;
	int empty = unlinked_file(0, 0); /* size 0: looks like a /proc file */
	for (int i = 0; i < 5; i++) {
		rd(f, empty, f->a, K64);
		wr(f->pipe[1], f->a, K64);
	}
	assert_int_equal(pair_of(empty)->state, NB_PAIR_REFUSED);
	assert_int_equal(pair_of(empty)->iterations, 5);
	close(empty);
}

/* ---- arming ---- */

static void pair_arms_after_arm_after_bounces(void **state)
{
	struct fx *f = *state;
	loop(f, f->a, K64, f->pipe[1]);
	assert_int_equal(pair_of(f->src)->state, NB_PAIR_LEARNING);
	assert_int_equal(atomic_load(&nb_stats.arms), 0);
	loop(f, f->a, K64, f->pipe[1]);
	assert_int_equal(pair_of(f->src)->state, NB_PAIR_ARMED);
	assert_int_equal(pair_of(f->src)->arms, 1);
	assert_int_equal(atomic_load(&nb_stats.arms), 1);
}

static void arm_after_from_the_configuration_is_honoured(void **state)
{
	struct fx *f = *state;
	nb_g.cfg.arm_after = 5;
	for (int i = 0; i < 4; i++)
		loop(f, f->a, K64, f->pipe[1]);
	assert_int_equal(pair_of(f->src)->state, NB_PAIR_LEARNING);
	loop(f, f->a, K64, f->pipe[1]);
	assert_int_equal(pair_of(f->src)->state, NB_PAIR_ARMED);
	assert_int_equal(atomic_load(&nb_stats.arms), 1);
}

static void chunks_below_min_chunk_bounce_but_never_arm(void **state)
{
	struct fx *f = *state;
	for (int i = 0; i < 20; i++)
		loop(f, f->a, nb_g.cfg.min_chunk - 1, f->pipe[1]);
	assert_int_equal(stat_bounces(), 20);
	assert_int_equal(pair_of(f->src)->state, NB_PAIR_LEARNING);
	assert_int_equal(atomic_load(&nb_stats.arms), 0);
}

static void arming_checks_the_source_still_names_the_same_file(void **state)
{
	struct fx *f = *state;
	int other = unlinked_file(4096, 0);
	loop(f, f->a, K64, f->pipe[1]);
	/* The number is reused behind the hooks' back (no forget). */
	assert_int_equal(dup2(other, f->src), f->src);
	loop(f, f->a, K64, f->pipe[1]);
	assert_int_equal(atomic_load(&nb_stats.arms), 0);
	assert_int_equal(atomic_load(&nb_stats.stale), 1);
	assert_int_equal(pair_of(f->src)->state, NB_PAIR_IDLE);
	close(other);
}

/* ---- buffer patterns of real programs ---- */

static void two_alternating_buffers_count_every_bounce(void **state)
{
	struct fx *f = *state;
	for (int i = 0; i < 6; i++)
		loop(f, i % 2 ? f->b : f->a, K64, f->pipe[1]);
	assert_int_equal(stat_bounces(), 6);
	assert_int_equal(pair_of(f->src)->iterations, 6);
	assert_int_equal(pair_of(f->src)->state, NB_PAIR_ARMED);
	assert_int_equal(all_misses(), 0);
}

static void two_pipelined_buffers_count_every_bounce(void **state)
{
	struct fx *f = *state;
	/* The next read is issued before the previous write (nginx). */
	rd(f, f->src, f->a, K64);
	rd(f, f->src, f->b, K64);
	wr(f->pipe[1], f->a, K64);
	rd(f, f->src, f->a, K64);
	wr(f->pipe[1], f->b, K64);
	rd(f, f->src, f->b, K64);
	wr(f->pipe[1], f->a, K64);
	wr(f->pipe[1], f->b, K64);
	assert_int_equal(stat_bounces(), 4);
	assert_int_equal(all_misses(), 0);
}

static void write_split_in_two_partial_pieces_completes_one_bounce(void **state)
{
	struct fx *f = *state;
	rd(f, f->src, f->a, K64);
	wr(f->pipe[1], f->a, 20000);
	assert_int_equal(stat_bounces(), 0);
	wr(f->pipe[1], f->a + 20000, K64 - 20000);
	assert_int_equal(stat_bounces(), 1);
	assert_int_equal(pair_of(f->src)->bytes, K64);
}

static void write_split_in_many_odd_pieces_completes_one_bounce(void **state)
{
	struct fx *f = *state;
	rd(f, f->src, f->a, K64);
	size_t off = 0;
	while (off < K64) {
		size_t n = K64 - off < 3339 ? K64 - off : 3339;
		wr(f->pipe[1], f->a + off, n);
		off += n;
	}
	assert_int_equal(stat_bounces(), 1);
}

static void writev_with_tail_of_one_read_and_all_of_the_next_completes_both(void **state)
{
	struct fx *f = *state;
	rd(f, f->src, f->a, K32);
	nb_detect_write(f->pipe[1], f->a, 29429); /* short write */
	rd(f, f->src, f->b, K32);
	struct iovec iov[2] = {
		{ f->a + 29429, K32 - 29429 },
		{ f->b, K32 },
	};
	nb_detect_writev(f->pipe[1], iov, 2, K32 - 29429 + K32);
	assert_int_equal(stat_bounces(), 2);
	assert_int_equal(pair_of(f->src)->bytes, 2 * K32);
	assert_int_equal(all_misses(), 0);
}

static void short_writev_completes_only_what_was_accepted(void **state)
{
	struct fx *f = *state;
	rd(f, f->src, f->a, K32);
	rd(f, f->src, f->b, K32);
	struct iovec iov[2] = { { f->a, K32 }, { f->b, K32 } };
	nb_detect_writev(f->pipe[1], iov, 2, K32 + 100); /* the kernel took K32+100 */
	assert_int_equal(stat_bounces(), 1);
	struct iovec rest[2] = { { f->b + 100, K32 - 100 } };
	nb_detect_writev(f->pipe[1], rest, 1, K32 - 100);
	assert_int_equal(stat_bounces(), 2);
}

static void one_write_covering_tail_of_one_read_and_all_of_the_next_completes_both(
	void **state)
{
	struct fx *f = *state;
	/* One buffer filled in two halves; the write resumes mid-way. */
	rd(f, f->src, f->a, K32);
	wr(f->pipe[1], f->a, 20000);
	rd(f, f->src, f->a + K32, K32);
	wr(f->pipe[1], f->a + 20000, K64 - 20000);
	assert_int_equal(stat_bounces(), 2);
	assert_int_equal(all_misses(), 0);
}

static void short_reads_filling_one_buffer_then_one_write_count_each_read(void **state)
{
	struct fx *f = *state;
	/* nc: after a short read it reads the rest into buf+pos. */
	static const size_t parts[] = { 5120, 3000, 8264 };
	size_t off = 0;
	for (size_t i = 0; i < 3; i++) {
		rd(f, f->src, f->a + off, parts[i]);
		off += parts[i];
	}
	wr(f->pipe[1], f->a, off);
	assert_int_equal(stat_bounces(), 3);
	assert_int_equal(stat_bytes(), 16384);
	assert_int_equal(pair_of(f->src)->iterations, 3);
	assert_int_equal(all_misses(), 0);
}

static void writev_with_a_header_iovec_counts_the_data(void **state)
{
	struct fx *f = *state;
	unsigned char header[248];
	memset(header, 'h', sizeof header);
	rd(f, f->src, f->a, K32);
	struct iovec iov[2] = { { header, sizeof header }, { f->a, K32 } };
	nb_detect_writev(f->pipe[1], iov, 2, sizeof header + K32);
	assert_int_equal(stat_bounces(), 1);
	assert_int_equal(pair_of(f->src)->bytes, K32);
}

static void readv_records_each_iovec_as_a_read(void **state)
{
	struct fx *f = *state;
	memset(f->a, 1, K32);
	memset(f->b, 2, K32);
	struct iovec iov[2] = { { f->a, K32 }, { f->b, K32 } };
	nb_detect_readv(f->src, iov, 2, K32 + 10000); /* short: 10000 into b */
	wr(f->pipe[1], f->a, K32);
	wr(f->pipe[1], f->b, 10000);
	assert_int_equal(stat_bounces(), 2);
	assert_int_equal(stat_bytes(), K32 + 10000);
}

static void ring_holds_NB_RING_outstanding_reads(void **state)
{
	struct fx *f = *state;
	size_t part = K64 / NB_RING;
	for (unsigned i = 0; i < NB_RING; i++)
		rd(f, f->src, f->a + i * part, part);
	for (unsigned i = 0; i < NB_RING; i++)
		wr(f->pipe[1], f->a + i * part, part);
	assert_int_equal(stat_bounces(), NB_RING);
}

static void oldest_read_is_forgotten_without_verdict_when_the_ring_is_full(void **state)
{
	struct fx *f = *state;
	size_t part = K64 / NB_RING;
	loop(f, f->b, K64, f->pipe[1]); /* a pair, so that misses would count */
	rd(f, f->src, f->b, part);      /* never written: the oldest */
	for (unsigned i = 0; i < NB_RING; i++)
		rd(f, f->src, f->a + i * part, part);
	wr(f->pipe[1], f->b, part);
	assert_int_equal(stat_bounces(), 1);
	rd(f, f->src, f->b, part); /* no longer tracked: no UNFORWARDED */
	assert_int_equal(all_misses(), 0);
}

/* ---- misses ---- */

static void same_bytes_to_a_second_destination_is_a_two_destinations_miss(void **state)
{
	struct fx *f = *state;
	loop(f, f->a, K64, f->pipe[1]);
	rd(f, f->src, f->a, K64);
	wr(f->pipe[1], f->a, K64);
	wr(f->sock[0], f->a, K64); /* tee */
	assert_int_equal(stat_misses(NB_MISS_TWO_DESTS), 1);
	assert_int_equal(pair_of(f->src)->misses[NB_MISS_TWO_DESTS], 1);
	assert_int_equal(pair_of(f->src)->dst, f->pipe[1]);
	assert_int_equal(stat_bounces(), 2);
}

static void modified_first_bytes_before_the_write_are_a_modified_miss(void **state)
{
	struct fx *f = *state;
	loop(f, f->a, K64, f->pipe[1]);
	rd(f, f->src, f->a, K64);
	f->a[0] ^= 0xff;
	wr(f->pipe[1], f->a, K64);
	assert_int_equal(stat_misses(NB_MISS_MODIFIED), 1);
	assert_int_equal(pair_of(f->src)->misses[NB_MISS_MODIFIED], 1);
	assert_int_equal(stat_bounces(), 1);
}

static void modified_eighth_byte_before_the_write_is_a_modified_miss(void **state)
{
	struct fx *f = *state;
	loop(f, f->a, K64, f->pipe[1]);
	rd(f, f->src, f->a, K64);
	f->a[7] ^= 0xff;
	wr(f->pipe[1], f->a, K64);
	assert_int_equal(stat_misses(NB_MISS_MODIFIED), 1);
	assert_int_equal(stat_bounces(), 1);
}

static void modified_last_bytes_before_the_write_are_a_modified_miss(void **state)
{
	struct fx *f = *state;
	loop(f, f->a, K64, f->pipe[1]);
	rd(f, f->src, f->a, K64);
	f->a[K64 - 1] ^= 0xff;
	wr(f->pipe[1], f->a, K64);
	assert_int_equal(stat_misses(NB_MISS_MODIFIED), 1);
	assert_int_equal(pair_of(f->src)->misses[NB_MISS_MODIFIED], 1);
	assert_int_equal(stat_bounces(), 1);
}

static void modified_last_bytes_before_the_final_piece_are_a_modified_miss(void **state)
{
	struct fx *f = *state;
	loop(f, f->a, K64, f->pipe[1]);
	rd(f, f->src, f->a, K64);
	wr(f->pipe[1], f->a, 40000);
	f->a[K64 - 8] ^= 0xff;
	wr(f->pipe[1], f->a + 40000, K64 - 40000);
	assert_int_equal(stat_misses(NB_MISS_MODIFIED), 1);
	assert_int_equal(stat_bounces(), 1);
}

static void modified_last_byte_before_a_short_final_piece_is_a_modified_miss(void **state)
{
	struct fx *f = *state;
	loop(f, f->a, K64, f->pipe[1]);
	rd(f, f->src, f->a, K64);
	wr(f->pipe[1], f->a, K64 - 4);
	f->a[K64 - 1] ^= 0xff; /* among the last 8 bytes, not yet written */
	wr(f->pipe[1], f->a + K64 - 4, 4);
	assert_int_equal(stat_misses(NB_MISS_MODIFIED), 1);
	assert_int_equal(stat_bounces(), 1);
}

static void modified_middle_bytes_go_unnoticed(void **state)
{
	struct fx *f = *state;
	/* Documented limit: only the first and last 8 bytes are sampled. */
	rd(f, f->src, f->a, K64);
	f->a[K32] ^= 0xff;
	wr(f->pipe[1], f->a, K64);
	assert_int_equal(stat_bounces(), 1);
	assert_int_equal(all_misses(), 0);
}

static void rereading_an_unwritten_buffer_is_an_unforwarded_miss(void **state)
{
	struct fx *f = *state;
	loop(f, f->a, K64, f->pipe[1]);
	rd(f, f->src, f->a, K64);
	rd(f, f->src, f->a, K64);
	assert_int_equal(stat_misses(NB_MISS_UNFORWARDED), 1);
	assert_int_equal(pair_of(f->src)->misses[NB_MISS_UNFORWARDED], 1);
}

static void rereading_a_partly_written_buffer_is_an_unforwarded_miss(void **state)
{
	struct fx *f = *state;
	loop(f, f->a, K64, f->pipe[1]);
	rd(f, f->src, f->a, K64);
	wr(f->pipe[1], f->a, K64 - 1);
	rd(f, f->src, f->a + 100, 1000); /* overlaps the unsent tail's record */
	assert_int_equal(stat_misses(NB_MISS_UNFORWARDED), 1);
	assert_int_equal(stat_bounces(), 1);
}

static void rereading_a_fully_written_buffer_is_not_a_miss(void **state)
{
	struct fx *f = *state;
	for (int i = 0; i < 10; i++)
		loop(f, f->a, K64, f->pipe[1]);
	rd(f, f->src, f->a, K64);
	assert_int_equal(all_misses(), 0);
}

static void miss_before_the_first_bounce_is_not_counted(void **state)
{
	struct fx *f = *state;
	/* A program that reads and never forwards (gzip) has no pair. */
	for (int i = 0; i < 5; i++)
		rd(f, f->src, f->a, K64);
	assert_int_equal(all_misses(), 0);
	assert_int_equal(pair_of(f->src)->state, NB_PAIR_IDLE);
}

static void repeated_modification_disarms_an_armed_pair(void **state)
{
	struct fx *f = *state;
	loop(f, f->a, K64, f->pipe[1]);
	loop(f, f->a, K64, f->pipe[1]);
	assert_int_equal(pair_of(f->src)->state, NB_PAIR_ARMED);
	for (int i = 0; i < NB_MISS_LIMIT; i++) {
		rd(f, f->src, f->a, K64);
		f->a[0] ^= 0xff;
		wr(f->pipe[1], f->a, K64);
	}
	assert_int_equal(pair_of(f->src)->state, NB_PAIR_BACKOFF);
	assert_int_equal(atomic_load(&nb_stats.disarms), 1);
	assert_int_equal(stat_misses(NB_MISS_MODIFIED), NB_MISS_LIMIT);
}

/* ---- what is not a bounce ---- */

static void reads_below_track_min_are_ignored(void **state)
{
	struct fx *f = *state;
	loop(f, f->b, K64, f->pipe[1]); /* a pair, so that misses would count */
	rd(f, f->src, f->a, NB_TRACK_MIN - 1);
	wr(f->pipe[1], f->a, NB_TRACK_MIN - 1);
	rd(f, f->src, f->a, NB_TRACK_MIN - 1);
	rd(f, f->src, f->a, NB_TRACK_MIN - 1);
	assert_int_equal(stat_bounces(), 1);
	assert_int_equal(all_misses(), 0);
}

static void read_of_exactly_track_min_is_tracked(void **state)
{
	struct fx *f = *state;
	loop(f, f->a, NB_TRACK_MIN, f->pipe[1]);
	assert_int_equal(stat_bounces(), 1);
	assert_int_equal(pair_of(f->src)->bytes, NB_TRACK_MIN);
}

static void source_closed_between_read_and_write_is_not_a_bounce(void **state)
{
	struct fx *f = *state;
	rd(f, f->src, f->a, K64);
	nb_fd_forget(f->src);
	wr(f->pipe[1], f->a, K64);
	assert_int_equal(stat_bounces(), 0);
	assert_int_equal(pair_of(f->src)->iterations, 0);
}

static void write_of_memory_that_was_not_read_is_ignored(void **state)
{
	struct fx *f = *state;
	rd(f, f->src, f->a, K64);
	wr(f->pipe[1], f->b, K64);
	assert_int_equal(stat_bounces(), 0);
}

static void write_that_skips_the_start_of_a_read_is_not_a_bounce(void **state)
{
	struct fx *f = *state;
	loop(f, f->b, K64, f->pipe[1]);
	rd(f, f->src, f->a, K64);
	wr(f->pipe[1], f->a + 100, K64 - 100); /* a header stripped */
	assert_int_equal(stat_bounces(), 1);
	rd(f, f->src, f->a, K64); /* dropped: no verdict */
	assert_int_equal(all_misses(), 0);
}

static void write_with_an_untracked_prefix_completes_the_read_it_covers(void **state)
{
	struct fx *f = *state;
	/* tar: a header the program wrote itself, then file data read right
	 * behind it, then one write of both. */
	memset(f->a, 'h', 512);
	rd(f, f->src, f->a + 512, 16384);
	wr(f->pipe[1], f->a, 512 + 16384);
	assert_int_equal(stat_bounces(), 1);
}

static void reread_after_a_write_with_an_untracked_prefix_is_not_unforwarded(void **state)
{
	struct fx *f = *state;
	loop(f, f->b, K64, f->pipe[1]); /* a pair, so that misses count */
	memset(f->a, 'h', 512);
	rd(f, f->src, f->a + 512, 16384);
	wr(f->pipe[1], f->a, 512 + 16384); /* every byte read was forwarded */
	rd(f, f->src, f->a + 512, 16384);
	assert_int_equal(stat_misses(NB_MISS_UNFORWARDED), 0);
}

/* ---- pairs change ---- */

static void change_of_destination_retires_the_old_pair(void **state)
{
	struct fx *f = *state;
	loop(f, f->a, K64, f->pipe[1]);
	loop(f, f->a, K64, f->pipe[1]);
	loop(f, f->a, K64, f->sock[0]);
	struct nb_pair *p = pair_of(f->src);
	assert_int_equal(p->dst, f->sock[0]);
	assert_int_equal(p->iterations, 1);
	assert_int_equal(p->state, NB_PAIR_LEARNING);
	struct nb_loop_view v[4];
	assert_int_equal(nb_loops_collect(v, 4), 2);
	bool to_pipe = false, to_sock = false;
	for (int i = 0; i < 2; i++) {
		assert_int_equal(v[i].src, f->src);
		if (v[i].dst == f->pipe[1]) {
			to_pipe = true;
			assert_int_equal(v[i].iterations, 2);
			assert_int_equal(v[i].arms, 1);
		} else if (v[i].dst == f->sock[0]) {
			to_sock = true;
			assert_int_equal(v[i].iterations, 1);
		}
	}
	assert_true(to_pipe && to_sock);
}

static void destination_reopened_on_the_same_number_starts_a_new_pair(void **state)
{
	struct fx *f = *state;
	loop(f, f->a, K64, f->pipe[1]);
	loop(f, f->a, K64, f->pipe[1]);
	assert_int_equal(pair_of(f->src)->state, NB_PAIR_ARMED);
	nb_fd_forget(f->pipe[1]); /* closed and reopened */
	loop(f, f->a, K64, f->pipe[1]);
	assert_int_equal(pair_of(f->src)->iterations, 1);
	assert_int_equal(pair_of(f->src)->state, NB_PAIR_LEARNING);
}

static void bounce_back_into_its_own_socket_records_the_socket_kind(void **state)
{
	struct fx *f = *state;
	/* An echo server: read a socket, write the bytes back to it. */
	int s = f->sock[0];
	rd(f, s, f->a, K64);
	wr(s, f->a, K64);
	struct nb_pair *p = pair_of(s);
	assert_int_equal(p->src_kind, NB_KIND_UNIX);
	assert_int_equal(p->dst_kind, NB_KIND_UNIX);
	assert_int_equal(p->path, NB_PATH_SPLICE);
	assert_int_equal(atomic_load(&nb_stats.lock_skips), 0);
}

/* ---- a loop that repeats: the same record turn after turn ---- */

#define K4 ((size_t)4096)

static int dev_null(void)
{
	int fd = open("/dev/null", O_WRONLY);
	assert_true(fd >= 0);
	return fd;
}

static void a_loop_below_the_minimum_counts_every_turn(void **state)
{
	struct fx *f = *state;
	for (int i = 0; i < 100; i++)
		loop(f, f->a, K4, f->pipe[1]);
	struct nb_pair *p = pair_of(f->src);
	assert_int_equal(p->iterations, 100);
	assert_int_equal(p->bytes, 100 * K4);
	assert_int_equal(p->hist[nb_hist_bucket(K4)], 100);
	assert_int_equal(p->state, NB_PAIR_LEARNING);
	assert_int_equal(stat_bounces(), 100);
	assert_int_equal(all_misses(), 0);
}

static void a_repeating_loop_notices_its_source_reopened_on_the_same_number(void **state)
{
	struct fx *f = *state;
	int null = dev_null();
	for (int i = 0; i < 5; i++)
		loop(f, f->a, K4, null);
	nb_fd_forget(f->src); /* closed and opened again, through the hooks */
	loop(f, f->a, K4, null);
	assert_int_equal(pair_of(f->src)->iterations, 1);
	close(null);
}

static void a_repeating_loop_notices_its_destination_reopened_on_the_same_number(void **state)
{
	struct fx *f = *state;
	int null = dev_null();
	for (int i = 0; i < 5; i++)
		loop(f, f->a, K4, null);
	nb_fd_forget(null);
	loop(f, f->a, K4, null);
	assert_int_equal(pair_of(f->src)->iterations, 1);
	assert_int_equal(stat_bounces(), 6);
	close(null);
}

static void a_repeating_loop_notices_modified_last_bytes_on_a_later_turn(void **state)
{
	struct fx *f = *state;
	int null = dev_null();
	for (int i = 0; i < 5; i++)
		loop(f, f->a, K4, null);
	rd(f, f->src, f->a, K4);
	f->a[K4 - 1] ^= 0xff;
	wr(null, f->a, K4);
	assert_int_equal(pair_of(f->src)->misses[NB_MISS_MODIFIED], 1);
	assert_int_equal(pair_of(f->src)->iterations, 5);
	loop(f, f->a, K4, null); /* and counts the next clean turn again */
	assert_int_equal(pair_of(f->src)->iterations, 6);
	close(null);
}

static void a_repeating_loop_notices_a_second_destination_on_a_later_turn(void **state)
{
	struct fx *f = *state;
	int null = dev_null();
	for (int i = 0; i < 5; i++)
		loop(f, f->a, K4, null);
	rd(f, f->src, f->a, K4);
	wr(null, f->a, K4);
	wr(f->sock[0], f->a, K4);
	assert_int_equal(pair_of(f->src)->misses[NB_MISS_TWO_DESTS], 1);
	assert_int_equal(pair_of(f->src)->iterations, 6);
	close(null);
}

static void a_repeating_loop_notices_a_reread_of_an_unwritten_buffer(void **state)
{
	struct fx *f = *state;
	int null = dev_null();
	for (int i = 0; i < 5; i++)
		loop(f, f->a, K4, null);
	rd(f, f->src, f->a, K4);
	rd(f, f->src, f->a, K4);
	assert_int_equal(pair_of(f->src)->misses[NB_MISS_UNFORWARDED], 1);
	close(null);
}

static void a_repeating_loop_written_in_two_pieces_counts_one_turn(void **state)
{
	struct fx *f = *state;
	int null = dev_null();
	for (int i = 0; i < 5; i++)
		loop(f, f->a, K4, null);
	rd(f, f->src, f->a, K4);
	wr(null, f->a, 1000);
	wr(null, f->a + 1000, K4 - 1000);
	assert_int_equal(pair_of(f->src)->iterations, 6);
	loop(f, f->a, K4, null);
	assert_int_equal(pair_of(f->src)->iterations, 7);
	assert_int_equal(all_misses(), 0);
	close(null);
}

static void a_repeating_loop_that_changes_destination_retires_its_pair(void **state)
{
	struct fx *f = *state;
	int null = dev_null();
	for (int i = 0; i < 5; i++)
		loop(f, f->a, K4, null);
	for (int i = 0; i < 3; i++)
		loop(f, f->a, K4, f->pipe[1]);
	assert_int_equal(pair_of(f->src)->dst, f->pipe[1]);
	assert_int_equal(pair_of(f->src)->iterations, 3);
	assert_int_equal(stat_bounces(), 8);
	close(null);
}

static void a_repeating_loop_that_grows_its_reads_arms_as_the_general_path_does(void **state)
{
	struct fx *f = *state;
	for (int i = 0; i < 5; i++)
		loop(f, f->a, K4, f->pipe[1]);
	for (unsigned i = 0; i < nb_g.cfg.arm_after; i++)
		loop(f, f->a, K64, f->pipe[1]);
	assert_int_equal(pair_of(f->src)->state, NB_PAIR_ARMED);
	assert_int_equal(atomic_load(&nb_stats.arms), 1);
}

static int file_in(const char *dir)
{
	char path[256];
	snprintf(path, sizeof path, "%s/nb-detect-dst-XXXXXX", dir);
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	unlink(path);
	return fd;
}

static void file_to_file_on_one_file_system_takes_copy_file_range(void **state)
{
	struct fx *f = *state;
	int dst = file_in("/tmp"); /* the source lives in /tmp too */
	loop(f, f->a, K64, dst);
	assert_int_equal(pair_of(f->src)->path, NB_PATH_COPY_FILE_RANGE);
	close(dst);
}

static void file_to_file_across_file_systems_takes_sendfile(void **state)
{
	struct fx *f = *state;
	struct stat a, b;
	assert_int_equal(stat("/tmp", &a), 0);
	assert_int_equal(stat("/dev/shm", &b), 0);
	if (a.st_dev == b.st_dev)
		skip(); /* no second file system on this machine */
	int dst = file_in("/dev/shm");
	loop(f, f->a, K64, dst);
	assert_int_equal(pair_of(f->src)->path, NB_PATH_SENDFILE);
	close(dst);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(one_buffer_reused_counts_a_bounce_per_iteration),
		T(file_to_file_on_one_file_system_takes_copy_file_range),
		T(file_to_file_across_file_systems_takes_sendfile),
		T(first_bounce_pairs_source_and_destination_with_their_kinds),
		T(bounce_to_a_unix_socket_takes_the_sendfile_path),
		T(bounce_to_dev_null_is_counted_but_refused),
		T(bounce_from_an_empty_source_file_is_refused),
		T(pair_arms_after_arm_after_bounces),
		T(arm_after_from_the_configuration_is_honoured),
		T(chunks_below_min_chunk_bounce_but_never_arm),
		T(arming_checks_the_source_still_names_the_same_file),
		T(two_alternating_buffers_count_every_bounce),
		T(two_pipelined_buffers_count_every_bounce),
		T(write_split_in_two_partial_pieces_completes_one_bounce),
		T(write_split_in_many_odd_pieces_completes_one_bounce),
		T(writev_with_tail_of_one_read_and_all_of_the_next_completes_both),
		T(short_writev_completes_only_what_was_accepted),
		T(one_write_covering_tail_of_one_read_and_all_of_the_next_completes_both),
		T(short_reads_filling_one_buffer_then_one_write_count_each_read),
		T(writev_with_a_header_iovec_counts_the_data),
		T(readv_records_each_iovec_as_a_read),
		T(ring_holds_NB_RING_outstanding_reads),
		T(oldest_read_is_forgotten_without_verdict_when_the_ring_is_full),
		T(same_bytes_to_a_second_destination_is_a_two_destinations_miss),
		T(modified_first_bytes_before_the_write_are_a_modified_miss),
		T(modified_eighth_byte_before_the_write_is_a_modified_miss),
		T(modified_last_bytes_before_the_write_are_a_modified_miss),
		T(modified_last_bytes_before_the_final_piece_are_a_modified_miss),
		T(modified_last_byte_before_a_short_final_piece_is_a_modified_miss),
		T(modified_middle_bytes_go_unnoticed),
		T(rereading_an_unwritten_buffer_is_an_unforwarded_miss),
		T(rereading_a_partly_written_buffer_is_an_unforwarded_miss),
		T(rereading_a_fully_written_buffer_is_not_a_miss),
		T(miss_before_the_first_bounce_is_not_counted),
		T(repeated_modification_disarms_an_armed_pair),
		T(reads_below_track_min_are_ignored),
		T(read_of_exactly_track_min_is_tracked),
		T(source_closed_between_read_and_write_is_not_a_bounce),
		T(write_of_memory_that_was_not_read_is_ignored),
		T(write_that_skips_the_start_of_a_read_is_not_a_bounce),
		T(write_with_an_untracked_prefix_completes_the_read_it_covers),
		T(reread_after_a_write_with_an_untracked_prefix_is_not_unforwarded),
		T(change_of_destination_retires_the_old_pair),
		T(destination_reopened_on_the_same_number_starts_a_new_pair),
		T(bounce_back_into_its_own_socket_records_the_socket_kind),
		T(a_loop_below_the_minimum_counts_every_turn),
		T(a_repeating_loop_notices_its_source_reopened_on_the_same_number),
		T(a_repeating_loop_notices_its_destination_reopened_on_the_same_number),
		T(a_repeating_loop_notices_modified_last_bytes_on_a_later_turn),
		T(a_repeating_loop_notices_a_second_destination_on_a_later_turn),
		T(a_repeating_loop_notices_a_reread_of_an_unwritten_buffer),
		T(a_repeating_loop_written_in_two_pieces_counts_one_turn),
		T(a_repeating_loop_that_changes_destination_retires_its_pair),
		T(a_repeating_loop_that_grows_its_reads_arms_as_the_general_path_does),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
