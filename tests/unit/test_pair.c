/*
 * test_pair.c - which kernel path serves a direction, and the arm / miss /
 * back-off state machine of one pair (pair.c). Pure logic: no descriptors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "internal.h"

#define BIG ((size_t)64 * 1024) /* a chunk well above the default min_chunk */

static struct nb_config cfg;

static int setup(void **state)
{
	(void)state;
	nb_config_defaults(&cfg);
	return 0;
}

static void start(struct nb_pair *p, enum nb_path path)
{
	memset(p, 0xa5, sizeof *p); /* whatever was there before */
	nb_pair_start(p, 9, 3, NB_KIND_FILE, NB_KIND_TCP, path);
}

/* Bounces n big chunks; returns the event of the last one. */
static enum nb_event bounces(struct nb_pair *p, unsigned n)
{
	enum nb_event ev = NB_EV_NONE;
	for (unsigned i = 0; i < n; i++)
		ev = nb_pair_bounce(p, BIG, &cfg);
	return ev;
}

static void arm(struct nb_pair *p)
{
	bounces(p, cfg.arm_after);
	assert_int_equal(p->state, NB_PAIR_ARMED);
}

/* NB_MISS_LIMIT misses in a row; the last must disarm. */
static void disarm(struct nb_pair *p)
{
	for (unsigned i = 0; i + 1 < NB_MISS_LIMIT; i++)
		assert_int_equal(nb_pair_miss(p, NB_MISS_MODIFIED), NB_EV_NONE);
	assert_int_equal(nb_pair_miss(p, NB_MISS_MODIFIED), NB_EV_DISARMED);
	assert_int_equal(p->state, NB_PAIR_BACKOFF);
}

/* ---- nb_path_for ---- */

static void path_file_to_tcp_is_sendfile(void **state)
{
	(void)state;
	assert_int_equal(nb_path_for(NB_KIND_FILE, NB_KIND_TCP, 0, 0, NB_PATH_ALL),
			 NB_PATH_SENDFILE);
}

static void path_file_to_unix_stream_is_sendfile(void **state)
{
	(void)state;
	assert_int_equal(nb_path_for(NB_KIND_FILE, NB_KIND_UNIX, 0, 0, NB_PATH_ALL),
			 NB_PATH_SENDFILE);
}

static void path_block_device_to_tcp_is_sendfile(void **state)
{
	(void)state;
	assert_int_equal(nb_path_for(NB_KIND_BLOCK, NB_KIND_TCP, 0, 0, NB_PATH_ALL),
			 NB_PATH_SENDFILE);
}

static void path_file_to_file_is_copy_file_range(void **state)
{
	(void)state;
	assert_int_equal(nb_path_for(NB_KIND_FILE, NB_KIND_FILE, 0, 0, NB_PATH_ALL),
			 NB_PATH_COPY_FILE_RANGE);
}

static void path_file_to_file_is_sendfile_when_copy_file_range_not_allowed(void **state)
{
	(void)state;
	assert_int_equal(nb_path_for(NB_KIND_FILE, NB_KIND_FILE, 0, 0,
				     NB_PATH_SENDFILE | NB_PATH_SPLICE),
			 NB_PATH_SENDFILE);
	assert_int_equal(nb_path_for(NB_KIND_FILE, NB_KIND_FILE, 0, 0, NB_PATH_SENDFILE),
			 NB_PATH_SENDFILE);
}

static void path_file_to_file_is_none_when_neither_file_path_allowed(void **state)
{
	(void)state;
	assert_int_equal(nb_path_for(NB_KIND_FILE, NB_KIND_FILE, 0, 0, NB_PATH_SPLICE),
			 NB_PATH_NONE);
}

static void path_file_to_pipe_is_splice(void **state)
{
	(void)state;
	assert_int_equal(nb_path_for(NB_KIND_FILE, NB_KIND_PIPE, 0, 0, NB_PATH_ALL),
			 NB_PATH_SPLICE);
}

static void path_tcp_to_file_is_splice(void **state)
{
	(void)state;
	assert_int_equal(nb_path_for(NB_KIND_TCP, NB_KIND_FILE, 0, 0, NB_PATH_ALL),
			 NB_PATH_SPLICE);
}

static void path_pipe_to_tcp_is_splice(void **state)
{
	(void)state;
	assert_int_equal(nb_path_for(NB_KIND_PIPE, NB_KIND_TCP, 0, 0, NB_PATH_ALL),
			 NB_PATH_SPLICE);
}

static void path_tcp_to_tcp_relay_is_splice(void **state)
{
	(void)state;
	assert_int_equal(nb_path_for(NB_KIND_TCP, NB_KIND_TCP, 0, 0, NB_PATH_ALL),
			 NB_PATH_SPLICE);
	assert_int_equal(nb_path_for(NB_KIND_UNIX, NB_KIND_PIPE, 0, 0, NB_PATH_ALL),
			 NB_PATH_SPLICE);
	assert_int_equal(nb_path_for(NB_KIND_PIPE, NB_KIND_PIPE, 0, 0, NB_PATH_ALL),
			 NB_PATH_SPLICE);
}

static void path_to_append_destination_is_none(void **state)
{
	(void)state;
	static const enum nb_kind src[] = { NB_KIND_FILE, NB_KIND_TCP, NB_KIND_PIPE };
	for (size_t i = 0; i < sizeof src / sizeof src[0]; i++)
		assert_int_equal(nb_path_for(src[i], NB_KIND_FILE, NB_FL_APPEND, 0, NB_PATH_ALL),
				 NB_PATH_NONE);
}

static void path_with_direct_destination_is_none(void **state)
{
	(void)state;
	assert_int_equal(nb_path_for(NB_KIND_FILE, NB_KIND_FILE, NB_FL_DIRECT, 0, NB_PATH_ALL),
			 NB_PATH_NONE);
	assert_int_equal(nb_path_for(NB_KIND_TCP, NB_KIND_FILE, NB_FL_DIRECT, 0, NB_PATH_ALL),
			 NB_PATH_NONE);
}

static void path_with_direct_source_is_none(void **state)
{
	(void)state;
	assert_int_equal(nb_path_for(NB_KIND_FILE, NB_KIND_TCP, 0, NB_FL_DIRECT, NB_PATH_ALL),
			 NB_PATH_NONE);
	assert_int_equal(nb_path_for(NB_KIND_FILE, NB_KIND_FILE, 0, NB_FL_DIRECT, NB_PATH_ALL),
			 NB_PATH_NONE);
}

static void path_from_pseudo_file_is_none(void **state)
{
	(void)state;
	static const enum nb_kind dst[] = { NB_KIND_TCP, NB_KIND_FILE, NB_KIND_PIPE };
	for (size_t i = 0; i < sizeof dst / sizeof dst[0]; i++)
		assert_int_equal(nb_path_for(NB_KIND_FILE, dst[i], 0, NB_FL_PSEUDO, NB_PATH_ALL),
				 NB_PATH_NONE);
}

static void path_to_char_device_is_none(void **state)
{
	(void)state;
	static const enum nb_kind src[] = { NB_KIND_FILE, NB_KIND_TCP, NB_KIND_PIPE };
	for (size_t i = 0; i < sizeof src / sizeof src[0]; i++)
		assert_int_equal(nb_path_for(src[i], NB_KIND_CHAR, 0, 0, NB_PATH_ALL),
				 NB_PATH_NONE);
}

static void path_from_char_device_is_none(void **state)
{
	(void)state;
	assert_int_equal(nb_path_for(NB_KIND_CHAR, NB_KIND_TCP, 0, 0, NB_PATH_ALL), NB_PATH_NONE);
	assert_int_equal(nb_path_for(NB_KIND_CHAR, NB_KIND_PIPE, 0, 0, NB_PATH_ALL), NB_PATH_NONE);
}

static void path_with_other_or_unknown_kind_is_none(void **state)
{
	(void)state;
	assert_int_equal(nb_path_for(NB_KIND_OTHER, NB_KIND_TCP, 0, 0, NB_PATH_ALL), NB_PATH_NONE);
	assert_int_equal(nb_path_for(NB_KIND_FILE, NB_KIND_OTHER, 0, 0, NB_PATH_ALL), NB_PATH_NONE);
	assert_int_equal(nb_path_for(NB_KIND_UNKNOWN, NB_KIND_TCP, 0, 0, NB_PATH_ALL),
			 NB_PATH_NONE);
	assert_int_equal(nb_path_for(NB_KIND_TCP, NB_KIND_UNKNOWN, 0, 0, NB_PATH_ALL),
			 NB_PATH_NONE);
}

static void path_not_in_allowed_set_is_none(void **state)
{
	(void)state;
	assert_int_equal(nb_path_for(NB_KIND_FILE, NB_KIND_TCP, 0, 0,
				     NB_PATH_COPY_FILE_RANGE | NB_PATH_SPLICE),
			 NB_PATH_NONE);
	assert_int_equal(nb_path_for(NB_KIND_FILE, NB_KIND_PIPE, 0, 0, NB_PATH_SENDFILE),
			 NB_PATH_NONE);
	assert_int_equal(nb_path_for(NB_KIND_TCP, NB_KIND_FILE, 0, 0,
				     NB_PATH_SENDFILE | NB_PATH_COPY_FILE_RANGE),
			 NB_PATH_NONE);
	assert_int_equal(nb_path_for(NB_KIND_FILE, NB_KIND_TCP, 0, 0, NB_PATH_NONE),
			 NB_PATH_NONE);
}

static void path_ignores_nonblocking_flags(void **state)
{
	(void)state;
	assert_int_equal(nb_path_for(NB_KIND_FILE, NB_KIND_TCP, NB_FL_NONBLOCK, 0, NB_PATH_ALL),
			 NB_PATH_SENDFILE);
	assert_int_equal(nb_path_for(NB_KIND_TCP, NB_KIND_PIPE, NB_FL_NONBLOCK, NB_FL_NONBLOCK,
				     NB_PATH_ALL),
			 NB_PATH_SPLICE);
}

static void path_names_are_stable(void **state)
{
	(void)state;
	assert_string_equal(nb_path_name(NB_PATH_SENDFILE), "sendfile");
	assert_string_equal(nb_path_name(NB_PATH_COPY_FILE_RANGE), "copy_file_range");
	assert_string_equal(nb_path_name(NB_PATH_SPLICE), "splice");
	assert_string_equal(nb_path_name(NB_PATH_NONE), "none");
}

/* ---- nb_pair_start ---- */

static void pair_start_with_a_path_is_learning(void **state)
{
	(void)state;
	struct nb_pair p;
	start(&p, NB_PATH_SENDFILE);
	assert_int_equal(p.state, NB_PAIR_LEARNING);
	assert_int_equal(p.dst, 9);
	assert_int_equal(p.dst_gen, 3);
	assert_int_equal(p.src_kind, NB_KIND_FILE);
	assert_int_equal(p.dst_kind, NB_KIND_TCP);
	assert_int_equal(p.path, NB_PATH_SENDFILE);
}

static void pair_start_without_a_path_is_refused(void **state)
{
	(void)state;
	struct nb_pair p;
	start(&p, NB_PATH_NONE);
	assert_int_equal(p.state, NB_PAIR_REFUSED);
}

static void pair_start_clears_every_counter(void **state)
{
	(void)state;
	struct nb_pair p;
	start(&p, NB_PATH_SPLICE);
	assert_int_equal(p.streak, 0);
	assert_int_equal(p.recent_misses, 0);
	assert_int_equal(p.cooldown, 0);
	assert_int_equal(p.backoffs, 0);
	assert_int_equal(p.iterations, 0);
	assert_int_equal(p.bytes, 0);
	assert_int_equal(p.arms, 0);
	for (int i = 0; i < NB_MISS_COUNT; i++)
		assert_int_equal(p.misses[i], 0);
	for (int i = 0; i < NB_HIST_BUCKETS; i++)
		assert_int_equal(p.hist[i], 0);
}

/* ---- arming ---- */

static void pair_arms_after_arm_after_clean_bounces(void **state)
{
	(void)state;
	struct nb_pair p;
	cfg.arm_after = 3;
	start(&p, NB_PATH_SENDFILE);
	assert_int_equal(nb_pair_bounce(&p, BIG, &cfg), NB_EV_NONE);
	assert_int_equal(nb_pair_bounce(&p, BIG, &cfg), NB_EV_NONE);
	assert_int_equal(p.state, NB_PAIR_LEARNING);
	assert_int_equal(nb_pair_bounce(&p, BIG, &cfg), NB_EV_ARMED);
	assert_int_equal(p.state, NB_PAIR_ARMED);
	assert_int_equal(p.arms, 1);
}

static void pair_with_arm_after_1_arms_on_its_first_bounce(void **state)
{
	(void)state;
	struct nb_pair p;
	cfg.arm_after = 1;
	start(&p, NB_PATH_SPLICE);
	assert_int_equal(nb_pair_bounce(&p, BIG, &cfg), NB_EV_ARMED);
	assert_int_equal(p.state, NB_PAIR_ARMED);
}

static void armed_pair_reports_armed_only_once(void **state)
{
	(void)state;
	struct nb_pair p;
	start(&p, NB_PATH_SENDFILE);
	arm(&p);
	for (int i = 0; i < 100; i++)
		assert_int_equal(nb_pair_bounce(&p, BIG, &cfg), NB_EV_NONE);
	assert_int_equal(p.state, NB_PAIR_ARMED);
	assert_int_equal(p.arms, 1);
}

static void chunk_of_exactly_min_chunk_counts_towards_arming(void **state)
{
	(void)state;
	struct nb_pair p;
	start(&p, NB_PATH_SENDFILE);
	assert_int_equal(nb_pair_bounce(&p, cfg.min_chunk, &cfg), NB_EV_NONE);
	assert_int_equal(nb_pair_bounce(&p, cfg.min_chunk, &cfg), NB_EV_ARMED);
}

/* A socket relay's 16K read into an unaligned buffer serves 3 whole
 * pages: with the stream minimum at 16K it is too small to arm, and
 * says so (small_served); at 8K it arms. */
static void stream_bounce_is_judged_by_the_whole_pages_it_serves(void **state)
{
	(void)state;
	struct nb_config c = cfg;
	c.min_chunk = 16 * 1024;
	c.min_chunk_stream = 16 * 1024;
	uintptr_t a = 0x10000 + 64; /* unaligned */
	size_t served = nb_served_bytes(a, 16384);
	assert_int_equal(served, 12288);
	struct nb_pair p;
	nb_pair_start(&p, 9, 3, NB_KIND_TCP, NB_KIND_TCP, NB_PATH_SPLICE);
	for (int i = 0; i < 10; i++)
		assert_int_equal(nb_pair_bounce_served(&p, 16384, served, &c), NB_EV_NONE);
	assert_int_equal(p.state, NB_PAIR_LEARNING);
	assert_int_equal(p.small_served, 10);
	c.min_chunk = c.min_chunk_stream = 8 * 1024;
	assert_int_equal(nb_pair_bounce_served(&p, 16384, served, &c), NB_EV_NONE);
	assert_int_equal(nb_pair_bounce_served(&p, 16384, served, &c), NB_EV_ARMED);
	/* page-aligned: all of it */
	assert_int_equal(nb_served_bytes(0x10000, 16384), 16384);
	/* a 128K malloc'd buffer 16 bytes past a page: 124K, within 1/16 */
	c.min_chunk_stream = 128 * 1024;
	nb_pair_start(&p, 9, 3, NB_KIND_TCP, NB_KIND_TCP, NB_PATH_SPLICE);
	served = nb_served_bytes(0x10010, 131072);
	assert_int_equal(served, 126976);
	assert_int_equal(nb_pair_bounce_served(&p, 131072, served, &c), NB_EV_NONE);
	assert_int_equal(nb_pair_bounce_served(&p, 131072, served, &c), NB_EV_ARMED);
	/* a file's write takes the edges too, but they were copied at the
	 * read: the whole pages; fewer than two: never deferred, nothing */
	assert_int_equal(nb_served_bytes(0x10000 + 64, 16384), 12288);
	assert_int_equal(nb_served_bytes(0x10000, 16384), 16384);
	assert_int_equal(nb_served_bytes(0x10000 + 64, 8192), 0);
}

static void file_to_file_counts_only_from_min_chunk_file(void **state)
{
	(void)state;
	struct nb_pair p;
	memset(&p, 0, sizeof p);
	nb_pair_start(&p, 9, 3, NB_KIND_FILE, NB_KIND_FILE, NB_PATH_COPY_FILE_RANGE);
	assert_int_equal(nb_pair_min_chunk(&p, &cfg), cfg.min_chunk_file);
	/* 32 KiB copies between files: the kernel copy loses, never arm */
	for (int i = 0; i < 10; i++)
		assert_int_equal(nb_pair_bounce(&p, 32 * 1024, &cfg), NB_EV_NONE);
	assert_int_equal(p.state, NB_PAIR_LEARNING);
	assert_int_equal(nb_pair_bounce(&p, cfg.min_chunk_file, &cfg), NB_EV_NONE);
	assert_int_equal(nb_pair_bounce(&p, cfg.min_chunk_file, &cfg), NB_EV_ARMED);
}

static void tcp_source_counts_only_from_min_chunk_stream(void **state)
{
	(void)state;
	struct nb_pair p;
	memset(&p, 0, sizeof p);
	nb_pair_start(&p, 9, 3, NB_KIND_TCP, NB_KIND_FILE, NB_PATH_SPLICE);
	assert_int_equal(nb_pair_min_chunk(&p, &cfg), cfg.min_chunk_stream);
	for (int i = 0; i < 10; i++)
		assert_int_equal(nb_pair_bounce(&p, 64 * 1024, &cfg), NB_EV_NONE);
	assert_int_equal(p.state, NB_PAIR_LEARNING);
}

static void file_to_pipe_counts_only_from_min_chunk_pipe(void **state)
{
	(void)state;
	struct nb_pair p;
	memset(&p, 0, sizeof p);
	nb_pair_start(&p, 9, 3, NB_KIND_FILE, NB_KIND_PIPE, NB_PATH_SPLICE);
	assert_int_equal(nb_pair_min_chunk(&p, &cfg), cfg.min_chunk_pipe);
	for (int i = 0; i < 10; i++)
		assert_int_equal(nb_pair_bounce(&p, 32 * 1024, &cfg), NB_EV_NONE);
	assert_int_equal(p.state, NB_PAIR_LEARNING);
}

static void file_to_socket_counts_from_min_chunk(void **state)
{
	(void)state;
	struct nb_pair p;
	start(&p, NB_PATH_SENDFILE);
	assert_int_equal(nb_pair_min_chunk(&p, &cfg), cfg.min_chunk);
	assert_true(cfg.min_chunk < cfg.min_chunk_file);
}

static void small_chunks_do_not_count_towards_arming(void **state)
{
	(void)state;
	struct nb_pair p;
	start(&p, NB_PATH_SENDFILE);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(nb_pair_bounce(&p, cfg.min_chunk - 1, &cfg), NB_EV_NONE);
	assert_int_equal(p.state, NB_PAIR_LEARNING);
	assert_int_equal(p.arms, 0);
}

static void small_chunks_do_not_reset_the_streak(void **state)
{
	(void)state;
	struct nb_pair p;
	start(&p, NB_PATH_SENDFILE);
	assert_int_equal(nb_pair_bounce(&p, BIG, &cfg), NB_EV_NONE);
	assert_int_equal(nb_pair_bounce(&p, 100, &cfg), NB_EV_NONE);
	assert_int_equal(nb_pair_bounce(&p, 4096, &cfg), NB_EV_NONE);
	assert_int_equal(nb_pair_bounce(&p, BIG, &cfg), NB_EV_ARMED);
}

static void small_chunks_are_counted_in_iterations_and_bytes(void **state)
{
	(void)state;
	struct nb_pair p;
	start(&p, NB_PATH_SENDFILE);
	nb_pair_bounce(&p, 100, &cfg);
	nb_pair_bounce(&p, BIG, &cfg);
	assert_int_equal(p.iterations, 2);
	assert_int_equal(p.bytes, 100 + BIG);
}

static void bounce_records_its_chunk_in_the_histogram(void **state)
{
	(void)state;
	struct nb_pair p;
	start(&p, NB_PATH_SENDFILE);
	nb_pair_bounce(&p, 100, &cfg);
	nb_pair_bounce(&p, BIG, &cfg);
	nb_pair_bounce(&p, BIG + 1, &cfg);
	assert_int_equal(p.hist[nb_hist_bucket(100)], 1);
	assert_int_equal(p.hist[nb_hist_bucket(BIG)], 2);
	uint64_t total = 0;
	for (int i = 0; i < NB_HIST_BUCKETS; i++)
		total += p.hist[i];
	assert_int_equal(total, 3);
}

/* ---- misses while learning ---- */

static void miss_while_learning_resets_the_streak(void **state)
{
	(void)state;
	struct nb_pair p;
	cfg.arm_after = 3;
	start(&p, NB_PATH_SENDFILE);
	bounces(&p, 2);
	assert_int_equal(nb_pair_miss(&p, NB_MISS_UNFORWARDED), NB_EV_NONE);
	assert_int_equal(nb_pair_bounce(&p, BIG, &cfg), NB_EV_NONE);
	assert_int_equal(nb_pair_bounce(&p, BIG, &cfg), NB_EV_NONE);
	assert_int_equal(p.state, NB_PAIR_LEARNING);
	assert_int_equal(nb_pair_bounce(&p, BIG, &cfg), NB_EV_ARMED);
}

static void misses_while_learning_never_disarm_or_back_off(void **state)
{
	(void)state;
	struct nb_pair p;
	start(&p, NB_PATH_SENDFILE);
	for (int i = 0; i < 10 * NB_MISS_LIMIT; i++)
		assert_int_equal(nb_pair_miss(&p, NB_MISS_MODIFIED), NB_EV_NONE);
	assert_int_equal(p.state, NB_PAIR_LEARNING);
	assert_int_equal(p.backoffs, 0);
	/* and the pair can still arm */
	assert_int_equal(bounces(&p, cfg.arm_after), NB_EV_ARMED);
}

static void misses_are_counted_by_reason(void **state)
{
	(void)state;
	struct nb_pair p;
	start(&p, NB_PATH_SENDFILE);
	nb_pair_miss(&p, NB_MISS_UNFORWARDED);
	nb_pair_miss(&p, NB_MISS_TWO_DESTS);
	nb_pair_miss(&p, NB_MISS_TWO_DESTS);
	nb_pair_miss(&p, NB_MISS_MODIFIED);
	nb_pair_miss(&p, NB_MISS_MODIFIED);
	nb_pair_miss(&p, NB_MISS_MODIFIED);
	assert_int_equal(p.misses[NB_MISS_UNFORWARDED], 1);
	assert_int_equal(p.misses[NB_MISS_TWO_DESTS], 2);
	assert_int_equal(p.misses[NB_MISS_MODIFIED], 3);
}

/* ---- misses while armed, back-off ---- */

static void armed_pair_stays_armed_below_the_miss_limit(void **state)
{
	(void)state;
	struct nb_pair p;
	start(&p, NB_PATH_SENDFILE);
	arm(&p);
	for (unsigned i = 0; i + 1 < NB_MISS_LIMIT; i++)
		assert_int_equal(nb_pair_miss(&p, NB_MISS_MODIFIED), NB_EV_NONE);
	assert_int_equal(p.state, NB_PAIR_ARMED);
}

static void armed_pair_disarms_at_the_miss_limit_with_base_cooldown(void **state)
{
	(void)state;
	struct nb_pair p;
	start(&p, NB_PATH_SENDFILE);
	arm(&p);
	disarm(&p);
	assert_int_equal(p.cooldown, NB_COOLDOWN_BASE);
	assert_int_equal(p.backoffs, 1);
	assert_int_equal(p.recent_misses, 0);
}

static void armed_pair_forgives_one_miss_per_16_clean_bounces(void **state)
{
	(void)state;
	struct nb_pair p;
	start(&p, NB_PATH_SENDFILE);
	arm(&p);
	for (unsigned i = 0; i + 1 < NB_MISS_LIMIT; i++)
		nb_pair_miss(&p, NB_MISS_MODIFIED);
	bounces(&p, 16);
	/* One miss forgiven: one more miss is below the limit again. */
	assert_int_equal(nb_pair_miss(&p, NB_MISS_MODIFIED), NB_EV_NONE);
	assert_int_equal(p.state, NB_PAIR_ARMED);
	assert_int_equal(nb_pair_miss(&p, NB_MISS_MODIFIED), NB_EV_DISARMED);
}

static void armed_pair_does_not_forgive_after_15_clean_bounces(void **state)
{
	(void)state;
	struct nb_pair p;
	start(&p, NB_PATH_SENDFILE);
	arm(&p);
	for (unsigned i = 0; i + 1 < NB_MISS_LIMIT; i++)
		nb_pair_miss(&p, NB_MISS_MODIFIED);
	bounces(&p, 15);
	assert_int_equal(nb_pair_miss(&p, NB_MISS_MODIFIED), NB_EV_DISARMED);
}

static void backoff_counts_down_only_on_big_chunks(void **state)
{
	(void)state;
	struct nb_pair p;
	start(&p, NB_PATH_SENDFILE);
	arm(&p);
	disarm(&p);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(nb_pair_bounce(&p, 100, &cfg), NB_EV_NONE);
	assert_int_equal(p.cooldown, NB_COOLDOWN_BASE);
	assert_int_equal(p.state, NB_PAIR_BACKOFF);
}

static void backoff_is_rearmable_after_the_cooldown(void **state)
{
	(void)state;
	struct nb_pair p;
	start(&p, NB_PATH_SENDFILE);
	arm(&p);
	disarm(&p);
	assert_int_equal(bounces(&p, NB_COOLDOWN_BASE - 1), NB_EV_NONE);
	assert_int_equal(p.state, NB_PAIR_BACKOFF);
	assert_int_equal(nb_pair_bounce(&p, BIG, &cfg), NB_EV_REARMABLE);
	assert_int_equal(p.state, NB_PAIR_LEARNING);
}

static void rearmable_pair_arms_again_after_arm_after_bounces(void **state)
{
	(void)state;
	struct nb_pair p;
	cfg.arm_after = 4;
	start(&p, NB_PATH_SENDFILE);
	arm(&p);
	disarm(&p);
	assert_int_equal(bounces(&p, NB_COOLDOWN_BASE), NB_EV_REARMABLE);
	assert_int_equal(bounces(&p, 3), NB_EV_NONE);
	assert_int_equal(p.state, NB_PAIR_LEARNING);
	assert_int_equal(nb_pair_bounce(&p, BIG, &cfg), NB_EV_ARMED);
	assert_int_equal(p.arms, 2);
}

static void misses_in_backoff_do_not_extend_or_repeat_it(void **state)
{
	(void)state;
	struct nb_pair p;
	start(&p, NB_PATH_SENDFILE);
	arm(&p);
	disarm(&p);
	for (int i = 0; i < 10; i++)
		assert_int_equal(nb_pair_miss(&p, NB_MISS_TWO_DESTS), NB_EV_NONE);
	assert_int_equal(p.state, NB_PAIR_BACKOFF);
	assert_int_equal(p.backoffs, 1);
	assert_int_equal(p.cooldown, NB_COOLDOWN_BASE);
}

static void second_disarm_doubles_the_cooldown(void **state)
{
	(void)state;
	struct nb_pair p;
	start(&p, NB_PATH_SENDFILE);
	arm(&p);
	disarm(&p);
	bounces(&p, NB_COOLDOWN_BASE);
	arm(&p);
	disarm(&p);
	assert_int_equal(p.cooldown, 2 * NB_COOLDOWN_BASE);
	assert_int_equal(p.backoffs, 2);
}

static void cooldown_doubles_on_each_disarm_up_to_the_cap(void **state)
{
	(void)state;
	struct nb_pair p;
	start(&p, NB_PATH_SENDFILE);
	uint64_t expect = NB_COOLDOWN_BASE;
	for (int k = 1; k <= 14; k++) {
		arm(&p);
		disarm(&p);
		if (p.cooldown != expect)
			fail_msg("disarm %d: cool-down %u, expected %llu", k, p.cooldown,
				 (unsigned long long)expect);
		assert_int_equal(bounces(&p, p.cooldown), NB_EV_REARMABLE);
		expect = expect * 2 > NB_COOLDOWN_MAX ? NB_COOLDOWN_MAX : expect * 2;
	}
	assert_int_equal(p.arms, 14);
}

static void cooldown_stays_capped_after_very_many_disarms(void **state)
{
	(void)state;
	struct nb_pair p;
	start(&p, NB_PATH_SENDFILE);
	static const uint32_t many[] = { 16, 17, 31, 32, 33, 64, 1000, UINT32_MAX - 1 };
	for (size_t i = 0; i < sizeof many / sizeof many[0]; i++) {
		p.state = NB_PAIR_ARMED;
		p.recent_misses = 0;
		p.backoffs = many[i];
		disarm(&p);
		assert_int_equal(p.cooldown, NB_COOLDOWN_MAX);
	}
}

/* ---- refused ---- */

static void refused_pair_never_arms(void **state)
{
	(void)state;
	struct nb_pair p;
	cfg.arm_after = 1;
	start(&p, NB_PATH_NONE);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(nb_pair_bounce(&p, BIG, &cfg), NB_EV_NONE);
	assert_int_equal(p.state, NB_PAIR_REFUSED);
	assert_int_equal(p.arms, 0);
	assert_int_equal(p.iterations, 1000);
	assert_int_equal(p.bytes, 1000 * BIG);
}

static void refused_pair_counts_misses_without_changing_state(void **state)
{
	(void)state;
	struct nb_pair p;
	start(&p, NB_PATH_NONE);
	for (int i = 0; i < 3 * NB_MISS_LIMIT; i++)
		assert_int_equal(nb_pair_miss(&p, NB_MISS_UNFORWARDED), NB_EV_NONE);
	assert_int_equal(p.state, NB_PAIR_REFUSED);
	assert_int_equal(p.misses[NB_MISS_UNFORWARDED], 3 * NB_MISS_LIMIT);
}

/* ---- histogram ---- */

static void hist_bucket_boundaries(void **state)
{
	(void)state;
	static const struct { size_t chunk; unsigned bucket; } t[] = {
		{ 0, 0 },         { 1, 0 },         { 4095, 0 },
		{ 4096, 1 },      { 8191, 1 },      { 8192, 2 },
		{ 16383, 2 },     { 16384, 3 },     { 32767, 3 },
		{ 32768, 4 },     { 65535, 4 },     { 65536, 5 },
		{ 131071, 5 },    { 131072, 6 },    { 262143, 6 },
		{ 262144, 7 },    { 524287, 7 },    { 524288, 8 },
		{ 1 << 20, 8 },   { (size_t)1 << 40, 8 }, { SIZE_MAX, 8 },
	};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
		if (nb_hist_bucket(t[i].chunk) != t[i].bucket)
			fail_msg("nb_hist_bucket(%zu) = %u, expected %u", t[i].chunk,
				 nb_hist_bucket(t[i].chunk), t[i].bucket);
}

static void names_of_misses_and_states(void **state)
{
	(void)state;
	assert_string_equal(nb_miss_name(NB_MISS_UNFORWARDED), "unforwarded");
	assert_string_equal(nb_miss_name(NB_MISS_TWO_DESTS), "two_destinations");
	assert_string_equal(nb_miss_name(NB_MISS_MODIFIED), "modified");
	assert_string_equal(nb_pair_state_name(NB_PAIR_IDLE), "idle");
	assert_string_equal(nb_pair_state_name(NB_PAIR_LEARNING), "learning");
	assert_string_equal(nb_pair_state_name(NB_PAIR_ARMED), "armed");
	assert_string_equal(nb_pair_state_name(NB_PAIR_BACKOFF), "backoff");
	assert_string_equal(nb_pair_state_name(NB_PAIR_REFUSED), "refused");
	assert_string_equal(nb_pair_state_name((enum nb_pair_state)99), "?");
}

#define T(f) cmocka_unit_test_setup(f, setup)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(path_file_to_tcp_is_sendfile),
		T(stream_bounce_is_judged_by_the_whole_pages_it_serves),
		T(path_file_to_unix_stream_is_sendfile),
		T(path_block_device_to_tcp_is_sendfile),
		T(path_file_to_file_is_copy_file_range),
		T(path_file_to_file_is_sendfile_when_copy_file_range_not_allowed),
		T(path_file_to_file_is_none_when_neither_file_path_allowed),
		T(path_file_to_pipe_is_splice),
		T(path_tcp_to_file_is_splice),
		T(path_pipe_to_tcp_is_splice),
		T(path_tcp_to_tcp_relay_is_splice),
		T(path_to_append_destination_is_none),
		T(path_with_direct_destination_is_none),
		T(path_with_direct_source_is_none),
		T(path_from_pseudo_file_is_none),
		T(path_to_char_device_is_none),
		T(path_from_char_device_is_none),
		T(path_with_other_or_unknown_kind_is_none),
		T(path_not_in_allowed_set_is_none),
		T(path_ignores_nonblocking_flags),
		T(path_names_are_stable),
		T(pair_start_with_a_path_is_learning),
		T(pair_start_without_a_path_is_refused),
		T(pair_start_clears_every_counter),
		T(pair_arms_after_arm_after_clean_bounces),
		T(pair_with_arm_after_1_arms_on_its_first_bounce),
		T(armed_pair_reports_armed_only_once),
		T(chunk_of_exactly_min_chunk_counts_towards_arming),
		T(small_chunks_do_not_count_towards_arming),
		T(file_to_file_counts_only_from_min_chunk_file),
		T(file_to_socket_counts_from_min_chunk),
		T(tcp_source_counts_only_from_min_chunk_stream),
		T(file_to_pipe_counts_only_from_min_chunk_pipe),
		T(small_chunks_do_not_reset_the_streak),
		T(small_chunks_are_counted_in_iterations_and_bytes),
		T(bounce_records_its_chunk_in_the_histogram),
		T(miss_while_learning_resets_the_streak),
		T(misses_while_learning_never_disarm_or_back_off),
		T(misses_are_counted_by_reason),
		T(armed_pair_stays_armed_below_the_miss_limit),
		T(armed_pair_disarms_at_the_miss_limit_with_base_cooldown),
		T(armed_pair_forgives_one_miss_per_16_clean_bounces),
		T(armed_pair_does_not_forgive_after_15_clean_bounces),
		T(backoff_counts_down_only_on_big_chunks),
		T(backoff_is_rearmable_after_the_cooldown),
		T(rearmable_pair_arms_again_after_arm_after_bounces),
		T(misses_in_backoff_do_not_extend_or_repeat_it),
		T(second_disarm_doubles_the_cooldown),
		T(cooldown_doubles_on_each_disarm_up_to_the_cap),
		T(cooldown_stays_capped_after_very_many_disarms),
		T(refused_pair_never_arms),
		T(refused_pair_counts_misses_without_changing_state),
		T(hist_bucket_boundaries),
		T(names_of_misses_and_states),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
