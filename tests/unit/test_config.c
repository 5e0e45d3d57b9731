/*
 * test_config.c - NOBOUNCE_* parsing (config.c).
 *
 * nb_config_parse is driven with a table getter and a sink that records
 * every complaint line, so each test states the environment it parses and
 * the exact diagnostics it expects: defaults when unset, every accepted
 * value, and for each bad value exactly one line that names the variable
 * and what is accepted, with the default kept.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "internal.h"

#define MAX_LINES 32
#define LINE_CAP 1024

/* One environment: name/value pairs, NULL-terminated; and what the parser
 * said about it. */
struct env {
	const char *const *kv;
	int nlines;
	char lines[MAX_LINES][LINE_CAP];
};

static const char *env_get(const char *name, void *ctx)
{
	const struct env *e = ctx;
	for (const char *const *p = e->kv; p && p[0]; p += 2)
		if (strcmp(p[0], name) == 0)
			return p[1];
	return NULL;
}

static void env_complain(const char *line, void *ctx)
{
	struct env *e = ctx;
	/* A complaint is one complete line: the caller adds the newline. */
	assert_null(strchr(line, '\n'));
	assert_true(strlen(line) < LINE_CAP);
	assert_true(e->nlines < MAX_LINES);
	strcpy(e->lines[e->nlines++], line);
}

/* Parses an environment of one variable. */
static int parse1(struct nb_config *c, struct env *e, const char *name, const char *value)
{
	const char *kv[] = { name, value, NULL };
	memset(e, 0, sizeof *e);
	e->kv = kv;
	int bad = nb_config_parse(c, env_get, env_complain, e);
	e->kv = NULL;
	return bad;
}

/* The value is refused: exactly one line, naming the variable and every
 * fragment of the accepted values given in `needles` (NULL-terminated). */
static void assert_refused(const char *name, const char *value, const char *const *needles,
			   struct nb_config *c)
{
	struct env e;
	int bad = parse1(c, &e, name, value);
	if (bad != 1 || e.nlines != 1)
		fail_msg("%s='%s': expected exactly one complaint, got %d (returned %d)", name,
			 value, e.nlines, bad);
	if (strstr(e.lines[0], name) == NULL)
		fail_msg("complaint does not name %s: %s", name, e.lines[0]);
	for (const char *const *n = needles; n && *n; n++)
		if (strstr(e.lines[0], *n) == NULL)
			fail_msg("complaint about %s='%s' lacks '%s': %s", name, value, *n,
				 e.lines[0]);
}

static void assert_defaults(const struct nb_config *c)
{
	struct nb_config d;
	nb_config_defaults(&d);
	assert_int_equal(c->mode, d.mode);
	assert_int_equal(c->min_chunk, d.min_chunk);
	assert_int_equal(c->arm_after, d.arm_after);
	assert_int_equal(c->paths, d.paths);
	assert_int_equal(c->max_pipes, d.max_pipes);
	assert_int_equal(c->pipe_size, d.pipe_size);
	assert_int_equal(c->log, d.log);
	assert_string_equal(c->stats, d.stats);
	assert_string_equal(c->only, d.only);
	assert_string_equal(c->skip, d.skip);
}

/* ---- defaults ---- */

static void defaults_when_nothing_is_set(void **state)
{
	(void)state;
	struct env e = { 0 };
	struct nb_config c;
	memset(&c, 0x5a, sizeof c);
	assert_int_equal(nb_config_parse(&c, env_get, env_complain, &e), 0);
	assert_int_equal(e.nlines, 0);
	assert_int_equal(c.mode, NB_MODE_ON);
	assert_int_equal(c.min_chunk, 16 * 1024);
	assert_int_equal(c.min_chunk_file, 64 * 1024);
	assert_int_equal(c.min_chunk_stream, 128 * 1024);
	assert_int_equal(c.min_chunk_pipe, 64 * 1024);
	assert_int_equal(c.send_chunk, 32 * 1024);
	assert_int_equal(c.arm_after, 2);
	assert_int_equal(c.paths, NB_PATH_ALL);
	assert_int_equal(c.max_pipes, 64);
	assert_int_equal(c.pipe_size, 1024 * 1024);
	assert_int_equal(c.log, NB_LOG_WARN);
	assert_string_equal(c.stats, "");
	assert_string_equal(c.only, "");
	assert_string_equal(c.skip, "");
}

static void every_valid_value_at_once_gives_no_complaint(void **state)
{
	(void)state;
	const char *kv[] = {
		"NOBOUNCE_MODE", "observe",        "NOBOUNCE_MIN_CHUNK", "64K",
		"NOBOUNCE_ARM_AFTER", "4",         "NOBOUNCE_PATHS", "sendfile,splice",
		"NOBOUNCE_MAX_PIPES", "8",         "NOBOUNCE_PIPE_SIZE", "256K",
		"NOBOUNCE_STATS", "/tmp/nb.%p",    "NOBOUNCE_LOG", "debug",
		"NOBOUNCE_ONLY", "cat,dd",         "NOBOUNCE_SKIP", "nginx",
		NULL,
	};
	struct env e = { .kv = kv };
	struct nb_config c;
	assert_int_equal(nb_config_parse(&c, env_get, env_complain, &e), 0);
	assert_int_equal(e.nlines, 0);
	assert_int_equal(c.mode, NB_MODE_OBSERVE);
	assert_int_equal(c.min_chunk, 64 * 1024);
	assert_int_equal(c.arm_after, 4);
	assert_int_equal(c.paths, NB_PATH_SENDFILE | NB_PATH_SPLICE);
	assert_int_equal(c.max_pipes, 8);
	assert_int_equal(c.pipe_size, 256 * 1024);
	assert_string_equal(c.stats, "/tmp/nb.%p");
	assert_int_equal(c.log, NB_LOG_DEBUG);
	assert_string_equal(c.only, "cat,dd");
	assert_string_equal(c.skip, "nginx");
}

static void every_bad_value_at_once_gives_one_complaint_each(void **state)
{
	(void)state;
	const char *kv[] = {
		"NOBOUNCE_MODE", "fast",         "NOBOUNCE_MIN_CHUNK", "1",
		"NOBOUNCE_ARM_AFTER", "0",       "NOBOUNCE_PATHS", "mmap",
		"NOBOUNCE_MAX_PIPES", "9999",    "NOBOUNCE_PIPE_SIZE", "1",
		"NOBOUNCE_STATS", "/tmp/%s",     "NOBOUNCE_LOG", "loud",
		"NOBOUNCE_ONLY", "/bin/cat",     "NOBOUNCE_SKIP", "a,,b",
		NULL,
	};
	struct env e = { .kv = kv };
	struct nb_config c;
	assert_int_equal(nb_config_parse(&c, env_get, env_complain, &e), 10);
	assert_int_equal(e.nlines, 10);
	for (int i = 0; i < 10; i++)
		if (strstr(e.lines[i], kv[2 * i]) == NULL)
			fail_msg("line %d does not name %s: %s", i, kv[2 * i], e.lines[i]);
	assert_defaults(&c);
}

static void parse_starts_from_the_defaults(void **state)
{
	(void)state;
	struct env e;
	struct nb_config c;
	assert_int_equal(parse1(&c, &e, "NOBOUNCE_ARM_AFTER", "7"), 0);
	assert_int_equal(c.arm_after, 7);
	/* A second parse of another environment does not inherit it. */
	assert_int_equal(parse1(&c, &e, "NOBOUNCE_LOG", "info"), 0);
	assert_int_equal(c.arm_after, 2);
	assert_int_equal(c.log, NB_LOG_INFO);
}

static void complaint_quotes_the_bad_value(void **state)
{
	(void)state;
	struct env e;
	struct nb_config c;
	assert_int_equal(parse1(&c, &e, "NOBOUNCE_MIN_CHUNK", "12Q"), 1);
	assert_int_equal(e.nlines, 1);
	assert_non_null(strstr(e.lines[0], "'12Q'"));
}

static void bad_value_without_complain_sink_is_still_counted(void **state)
{
	(void)state;
	const char *kv[] = { "NOBOUNCE_MODE", "sideways", NULL };
	struct env e = { .kv = kv };
	struct nb_config c;
	assert_int_equal(nb_config_parse(&c, env_get, NULL, &e), 1);
	assert_int_equal(c.mode, NB_MODE_ON);
}

/* ---- NOBOUNCE_MODE ---- */

static void mode_accepts_on_observe_off(void **state)
{
	(void)state;
	static const struct { const char *v; enum nb_mode m; } t[] = {
		{ "on", NB_MODE_ON }, { "observe", NB_MODE_OBSERVE }, { "off", NB_MODE_OFF },
	};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		struct env e;
		struct nb_config c;
		assert_int_equal(parse1(&c, &e, "NOBOUNCE_MODE", t[i].v), 0);
		assert_int_equal(e.nlines, 0);
		assert_int_equal(c.mode, t[i].m);
	}
}

static void mode_refuses_other_words_and_keeps_on(void **state)
{
	(void)state;
	static const char *const bad[] = { "", "ON", "Observe", "1", "yes", "on ", NULL };
	static const char *const needles[] = { "on", "observe", "off", NULL };
	for (const char *const *v = bad; *v; v++) {
		struct nb_config c;
		assert_refused("NOBOUNCE_MODE", *v, needles, &c);
		assert_int_equal(c.mode, NB_MODE_ON);
	}
}

/* ---- NOBOUNCE_EXACT, NOBOUNCE_LEASE_SIGNAL ---- */

static void exact_defaults_to_auto_with_signal_62(void **state)
{
	(void)state;
	struct nb_config c;
	nb_config_defaults(&c);
	assert_int_equal(c.exact, NB_EXACT_AUTO);
	assert_int_equal(c.lease_signal, 62);
	assert_string_equal(nb_exact_name(c.exact), "auto");
}

static void exact_accepts_auto_strict_off(void **state)
{
	(void)state;
	static const struct { const char *v; enum nb_exact x; } t[] = {
		{ "auto", NB_EXACT_AUTO }, { "strict", NB_EXACT_STRICT }, { "off", NB_EXACT_OFF },
	};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		struct env e;
		struct nb_config c;
		assert_int_equal(parse1(&c, &e, "NOBOUNCE_EXACT", t[i].v), 0);
		assert_int_equal(e.nlines, 0);
		assert_int_equal(c.exact, t[i].x);
		assert_string_equal(nb_exact_name(c.exact), t[i].v);
	}
}

static void exact_refuses_other_words_and_keeps_auto(void **state)
{
	(void)state;
	static const char *const bad[] = { "", "on", "Strict", "1", "exact", "off ", NULL };
	static const char *const needles[] = { "auto", "strict", "off", NULL };
	for (const char *const *v = bad; *v; v++) {
		struct nb_config c;
		assert_refused("NOBOUNCE_EXACT", *v, needles, &c);
		assert_int_equal(c.exact, NB_EXACT_AUTO);
	}
}

static void lease_signal_accepts_the_real_time_signals_only(void **state)
{
	(void)state;
	static const char *const good[] = { "34", "50", "64", NULL };
	for (const char *const *v = good; *v; v++) {
		struct env e;
		struct nb_config c;
		assert_int_equal(parse1(&c, &e, "NOBOUNCE_LEASE_SIGNAL", *v), 0);
		assert_int_equal(c.lease_signal, atoi(*v));
	}
	static const char *const bad[] = { "0", "9", "11", "33", "65", "SIGRTMIN", "", "62x", NULL };
	static const char *const needles[] = { "34", "64", NULL };
	for (const char *const *v = bad; *v; v++) {
		struct nb_config c;
		assert_refused("NOBOUNCE_LEASE_SIGNAL", *v, needles, &c);
		assert_int_equal(c.lease_signal, 62);
	}
}

/* ---- NOBOUNCE_MIN_CHUNK ---- */

static size_t min_chunk_of(const char *v)
{
	struct env e;
	struct nb_config c;
	int bad = parse1(&c, &e, "NOBOUNCE_MIN_CHUNK", v);
	if (bad != 0 || e.nlines != 0)
		fail_msg("NOBOUNCE_MIN_CHUNK='%s' refused: %s", v, e.nlines ? e.lines[0] : "");
	return c.min_chunk;
}

static void min_chunk_accepts_plain_byte_count(void **state)
{
	(void)state;
	assert_int_equal(min_chunk_of("65536"), 65536);
	assert_int_equal(min_chunk_of("1000"), 1000);
}

static void min_chunk_accepts_K_suffix(void **state)
{
	(void)state;
	assert_int_equal(min_chunk_of("64K"), 64 * 1024);
	assert_int_equal(min_chunk_of("8k"), 8 * 1024);
}

static void min_chunk_accepts_M_suffix(void **state)
{
	(void)state;
	assert_int_equal(min_chunk_of("1M"), 1024 * 1024);
	assert_int_equal(min_chunk_of("2m"), 2 * 1024 * 1024);
}

static void min_chunk_accepts_G_suffix(void **state)
{
	(void)state;
	assert_int_equal(min_chunk_of("1G"), (size_t)1 << 30);
	assert_int_equal(min_chunk_of("1g"), (size_t)1 << 30);
}

static void min_chunk_accepts_range_bounds_512_and_1G(void **state)
{
	(void)state;
	assert_int_equal(min_chunk_of("512"), 512);
	assert_int_equal(min_chunk_of("1073741824"), (size_t)1 << 30);
	assert_int_equal(min_chunk_of("1048576K"), (size_t)1 << 30);
}

static const char *const min_chunk_needles[] = { "512", "1G", "16K", NULL };

static void min_chunk_refuses_below_512_and_keeps_16K(void **state)
{
	(void)state;
	static const char *const bad[] = { "511", "0", "0K", NULL };
	for (const char *const *v = bad; *v; v++) {
		struct nb_config c;
		assert_refused("NOBOUNCE_MIN_CHUNK", *v, min_chunk_needles, &c);
		assert_int_equal(c.min_chunk, 16 * 1024);
	}
}

static void min_chunk_refuses_above_1G_and_keeps_16K(void **state)
{
	(void)state;
	static const char *const bad[] = { "1073741825", "2G", "1025M", NULL };
	for (const char *const *v = bad; *v; v++) {
		struct nb_config c;
		assert_refused("NOBOUNCE_MIN_CHUNK", *v, min_chunk_needles, &c);
		assert_int_equal(c.min_chunk, 16 * 1024);
	}
}

static void min_chunk_refuses_malformed_sizes(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"", "abc", "K", "64KB", "64 K", " 64K", "64K ", "+64K", "-1", "0x1000",
		"1.5M", "64T", "1e6", "64KK", NULL,
	};
	for (const char *const *v = bad; *v; v++) {
		struct nb_config c;
		assert_refused("NOBOUNCE_MIN_CHUNK", *v, min_chunk_needles, &c);
		assert_int_equal(c.min_chunk, 16 * 1024);
	}
}

static void min_chunk_refuses_numbers_that_overflow(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"99999999999999999999", "18446744073709551616", "17179869184G", NULL,
	};
	for (const char *const *v = bad; *v; v++) {
		struct nb_config c;
		assert_refused("NOBOUNCE_MIN_CHUNK", *v, min_chunk_needles, &c);
		assert_int_equal(c.min_chunk, 16 * 1024);
	}
}

/* ---- NOBOUNCE_MIN_CHUNK_FILE, NOBOUNCE_SEND_CHUNK ---- */

static void min_chunk_file_and_send_chunk_accept_sizes(void **state)
{
	(void)state;
	const char *kv[] = { "NOBOUNCE_MIN_CHUNK_FILE", "1M", "NOBOUNCE_SEND_CHUNK", "32K", NULL };
	struct env e = { .kv = kv };
	struct nb_config c;
	assert_int_equal(nb_config_parse(&c, env_get, env_complain, &e), 0);
	assert_int_equal(c.min_chunk_file, 1024 * 1024);
	assert_int_equal(c.send_chunk, 32 * 1024);
	assert_true(c.send_chunk_set); /* given: for every socket */
}

static void send_chunk_unset_depends_on_the_link(void **state)
{
	(void)state;
	const char *kv[] = { NULL };
	struct env e = { .kv = kv };
	struct nb_config c;
	assert_int_equal(nb_config_parse(&c, env_get, env_complain, &e), 0);
	assert_int_equal(c.send_chunk, 32 * 1024);
	assert_false(c.send_chunk_set);
}

static void send_chunk_refuses_less_than_a_page_and_keeps_32K(void **state)
{
	(void)state;
	static const char *const needles[] = { "NOBOUNCE_SEND_CHUNK", "4K", "1G", "32K", NULL };
	static const char *const bad[] = { "0", "4095", "2G", "16KB", NULL };
	for (const char *const *v = bad; *v; v++) {
		struct nb_config c;
		assert_refused("NOBOUNCE_SEND_CHUNK", *v, needles, &c);
		assert_int_equal(c.send_chunk, 32 * 1024);
		assert_false(c.send_chunk_set);
	}
}

static void min_chunk_file_refuses_bad_sizes_and_keeps_64K(void **state)
{
	(void)state;
	static const char *const needles[] = { "NOBOUNCE_MIN_CHUNK_FILE", "64K", NULL };
	static const char *const bad[] = { "100", "x", "", NULL };
	for (const char *const *v = bad; *v; v++) {
		struct nb_config c;
		assert_refused("NOBOUNCE_MIN_CHUNK_FILE", *v, needles, &c);
		assert_int_equal(c.min_chunk_file, 64 * 1024);
	}
}

/* ---- NOBOUNCE_ARM_AFTER ---- */

static void arm_after_accepts_1_to_1000000(void **state)
{
	(void)state;
	static const struct { const char *v; unsigned n; } t[] = {
		{ "1", 1 }, { "2", 2 }, { "37", 37 }, { "1000000", 1000000 },
	};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		struct env e;
		struct nb_config c;
		assert_int_equal(parse1(&c, &e, "NOBOUNCE_ARM_AFTER", t[i].v), 0);
		assert_int_equal(e.nlines, 0);
		assert_int_equal(c.arm_after, t[i].n);
	}
}

static const char *const arm_after_needles[] = { "1", "1000000", NULL };

static void arm_after_refuses_0(void **state)
{
	(void)state;
	struct nb_config c;
	assert_refused("NOBOUNCE_ARM_AFTER", "0", arm_after_needles, &c);
	assert_int_equal(c.arm_after, 2);
}

static void arm_after_refuses_above_1000000(void **state)
{
	(void)state;
	static const char *const bad[] = { "1000001", "4294967296", "99999999999999999999",
					   NULL };
	for (const char *const *v = bad; *v; v++) {
		struct nb_config c;
		assert_refused("NOBOUNCE_ARM_AFTER", *v, arm_after_needles, &c);
		assert_int_equal(c.arm_after, 2);
	}
}

static void arm_after_refuses_size_suffixes(void **state)
{
	(void)state;
	static const char *const bad[] = { "2K", "1M", "1g", NULL };
	for (const char *const *v = bad; *v; v++) {
		struct nb_config c;
		assert_refused("NOBOUNCE_ARM_AFTER", *v, arm_after_needles, &c);
		assert_int_equal(c.arm_after, 2);
	}
}

static void arm_after_refuses_malformed_numbers(void **state)
{
	(void)state;
	static const char *const bad[] = { "", "two", "-1", "+3", " 3", "3 ", "3.0", NULL };
	for (const char *const *v = bad; *v; v++) {
		struct nb_config c;
		assert_refused("NOBOUNCE_ARM_AFTER", *v, arm_after_needles, &c);
		assert_int_equal(c.arm_after, 2);
	}
}

/* ---- NOBOUNCE_PATHS ---- */

static unsigned paths_of(const char *v)
{
	struct env e;
	struct nb_config c;
	int bad = parse1(&c, &e, "NOBOUNCE_PATHS", v);
	if (bad != 0 || e.nlines != 0)
		fail_msg("NOBOUNCE_PATHS='%s' refused: %s", v, e.nlines ? e.lines[0] : "");
	return c.paths;
}

static void paths_all_allows_every_path(void **state)
{
	(void)state;
	assert_int_equal(paths_of("all"), NB_PATH_ALL);
}

static void paths_none_allows_no_path(void **state)
{
	(void)state;
	assert_int_equal(paths_of("none"), 0);
}

static void paths_comma_list_allows_exactly_the_named_paths(void **state)
{
	(void)state;
	assert_int_equal(paths_of("sendfile"), NB_PATH_SENDFILE);
	assert_int_equal(paths_of("copy_file_range"), NB_PATH_COPY_FILE_RANGE);
	assert_int_equal(paths_of("splice"), NB_PATH_SPLICE);
	assert_int_equal(paths_of("splice,sendfile"), NB_PATH_SPLICE | NB_PATH_SENDFILE);
	assert_int_equal(paths_of("sendfile,copy_file_range,splice"), NB_PATH_ALL);
	assert_int_equal(paths_of("splice,splice"), NB_PATH_SPLICE);
}

static const char *const paths_needles[] = { "all", "none", "sendfile", "copy_file_range",
					     "splice", NULL };

static void paths_refuses_unknown_names_and_keeps_all(void **state)
{
	(void)state;
	static const char *const bad[] = { "mmap", "sendfile,mmap", "ALL", "Splice",
					   "sendfile splice", "all,splice", NULL };
	for (const char *const *v = bad; *v; v++) {
		struct nb_config c;
		assert_refused("NOBOUNCE_PATHS", *v, paths_needles, &c);
		assert_int_equal(c.paths, NB_PATH_ALL);
	}
}

static void paths_refuses_empty_items_and_keeps_all(void **state)
{
	(void)state;
	static const char *const bad[] = { "", ",", ",sendfile", "sendfile,", "sendfile,,splice",
					   NULL };
	for (const char *const *v = bad; *v; v++) {
		struct nb_config c;
		assert_refused("NOBOUNCE_PATHS", *v, paths_needles, &c);
		assert_int_equal(c.paths, NB_PATH_ALL);
	}
}

/* ---- NOBOUNCE_MAX_PIPES ---- */

static void max_pipes_accepts_0_to_4096(void **state)
{
	(void)state;
	static const struct { const char *v; unsigned n; } t[] = {
		{ "0", 0 }, { "1", 1 }, { "64", 64 }, { "4096", 4096 },
	};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		struct env e;
		struct nb_config c;
		assert_int_equal(parse1(&c, &e, "NOBOUNCE_MAX_PIPES", t[i].v), 0);
		assert_int_equal(e.nlines, 0);
		assert_int_equal(c.max_pipes, t[i].n);
	}
}

static void max_pipes_refuses_out_of_range_or_malformed_and_keeps_64(void **state)
{
	(void)state;
	static const char *const bad[] = { "4097", "-1", "", "4K", "many", NULL };
	static const char *const needles[] = { "0", "4096", "64", NULL };
	for (const char *const *v = bad; *v; v++) {
		struct nb_config c;
		assert_refused("NOBOUNCE_MAX_PIPES", *v, needles, &c);
		assert_int_equal(c.max_pipes, 64);
	}
}

/* ---- NOBOUNCE_PIPE_SIZE ---- */

static void pipe_size_accepts_sizes_from_4K_to_1G(void **state)
{
	(void)state;
	static const struct { const char *v; size_t n; } t[] = {
		{ "4096", 4096 }, { "4K", 4096 }, { "65536", 65536 },
		{ "1M", 1 << 20 }, { "1G", (size_t)1 << 30 },
	};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		struct env e;
		struct nb_config c;
		assert_int_equal(parse1(&c, &e, "NOBOUNCE_PIPE_SIZE", t[i].v), 0);
		assert_int_equal(e.nlines, 0);
		assert_int_equal(c.pipe_size, t[i].n);
	}
}

static void pipe_size_refuses_out_of_range_or_malformed_and_keeps_1M(void **state)
{
	(void)state;
	static const char *const bad[] = { "4095", "0", "2G", "1025M", "big", "", "1MB", NULL };
	static const char *const needles[] = { "4K", "1G", "1M", NULL };
	for (const char *const *v = bad; *v; v++) {
		struct nb_config c;
		assert_refused("NOBOUNCE_PIPE_SIZE", *v, needles, &c);
		assert_int_equal(c.pipe_size, 1 << 20);
	}
}

/* ---- NOBOUNCE_STATS ---- */

static const char *stats_of(const char *v, struct nb_config *c)
{
	struct env e;
	int bad = parse1(c, &e, "NOBOUNCE_STATS", v);
	if (bad != 0 || e.nlines != 0)
		fail_msg("NOBOUNCE_STATS='%s' refused: %s", v, e.nlines ? e.lines[0] : "");
	return c->stats;
}

static void stats_accepts_stderr(void **state)
{
	(void)state;
	struct nb_config c;
	assert_string_equal(stats_of("stderr", &c), "stderr");
}

static void stats_accepts_a_file_path(void **state)
{
	(void)state;
	struct nb_config c;
	assert_string_equal(stats_of("/tmp/nobounce.json", &c), "/tmp/nobounce.json");
	assert_string_equal(stats_of("report.json", &c), "report.json");
}

static void stats_accepts_pid_escape(void **state)
{
	(void)state;
	struct nb_config c;
	assert_string_equal(stats_of("/tmp/nb.%p.json", &c), "/tmp/nb.%p.json");
	assert_string_equal(stats_of("%p", &c), "%p");
	assert_string_equal(stats_of("/tmp/%p/%p", &c), "/tmp/%p/%p");
}

static void stats_set_but_empty_means_no_report_without_complaint(void **state)
{
	(void)state;
	struct nb_config c;
	assert_string_equal(stats_of("", &c), "");
}

static void stats_refuses_other_percent_escapes_and_keeps_no_report(void **state)
{
	(void)state;
	static const char *const bad[] = { "/tmp/nb.%d", "/tmp/%s", "%", "/tmp/100%",
					   "%%p", "/tmp/%P", "%p%", "%n", NULL };
	static const char *const needles[] = { "stderr", "%p", NULL };
	for (const char *const *v = bad; *v; v++) {
		struct nb_config c;
		assert_refused("NOBOUNCE_STATS", *v, needles, &c);
		assert_string_equal(c.stats, "");
	}
}

static void stats_refuses_a_path_too_long_to_expand(void **state)
{
	(void)state;
	char v[NB_STATS_PATH_MAX + 8];
	memset(v, 'a', sizeof v - 1);
	v[0] = '/';
	v[sizeof v - 1] = '\0';
	static const char *const needles[] = { "stderr", NULL };
	struct nb_config c;
	assert_refused("NOBOUNCE_STATS", v, needles, &c);
	assert_string_equal(c.stats, "");
}

/* ---- NOBOUNCE_LOG ---- */

static void log_accepts_every_level(void **state)
{
	(void)state;
	static const struct { const char *v; enum nb_loglevel l; } t[] = {
		{ "off", NB_LOG_OFF },   { "error", NB_LOG_ERROR }, { "warn", NB_LOG_WARN },
		{ "info", NB_LOG_INFO }, { "debug", NB_LOG_DEBUG },
	};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		struct env e;
		struct nb_config c;
		assert_int_equal(parse1(&c, &e, "NOBOUNCE_LOG", t[i].v), 0);
		assert_int_equal(e.nlines, 0);
		assert_int_equal(c.log, t[i].l);
	}
}

static void log_refuses_unknown_levels_and_keeps_warn(void **state)
{
	(void)state;
	static const char *const bad[] = { "", "WARN", "verbose", "2", "warning", NULL };
	static const char *const needles[] = { "off", "error", "warn", "info", "debug", NULL };
	for (const char *const *v = bad; *v; v++) {
		struct nb_config c;
		assert_refused("NOBOUNCE_LOG", *v, needles, &c);
		assert_int_equal(c.log, NB_LOG_WARN);
	}
}

/* ---- NOBOUNCE_ONLY / NOBOUNCE_SKIP ---- */

static void only_accepts_a_comma_list_of_program_names(void **state)
{
	(void)state;
	struct env e;
	struct nb_config c;
	assert_int_equal(parse1(&c, &e, "NOBOUNCE_ONLY", "cat,dd,python3.11"), 0);
	assert_int_equal(e.nlines, 0);
	assert_string_equal(c.only, "cat,dd,python3.11");
}

static void skip_accepts_a_comma_list_of_program_names(void **state)
{
	(void)state;
	struct env e;
	struct nb_config c;
	assert_int_equal(parse1(&c, &e, "NOBOUNCE_SKIP", "nginx"), 0);
	assert_int_equal(e.nlines, 0);
	assert_string_equal(c.skip, "nginx");
}

static const char *const names_needles[] = { "program names", NULL };

static void only_refuses_a_path_instead_of_a_name(void **state)
{
	(void)state;
	struct nb_config c;
	assert_refused("NOBOUNCE_ONLY", "/usr/bin/cat", names_needles, &c);
	assert_string_equal(c.only, "");
	assert_refused("NOBOUNCE_ONLY", "cat,./dd", names_needles, &c);
	assert_string_equal(c.only, "");
}

static void only_refuses_a_name_of_64_characters(void **state)
{
	(void)state;
	char name[65];
	memset(name, 'x', 64);
	name[64] = '\0';
	struct nb_config c;
	assert_refused("NOBOUNCE_ONLY", name, names_needles, &c);
	assert_string_equal(c.only, "");
	/* 63 is still a name. */
	name[63] = '\0';
	struct env e;
	assert_int_equal(parse1(&c, &e, "NOBOUNCE_ONLY", name), 0);
	assert_string_equal(c.only, name);
}

static void skip_refuses_empty_list_items(void **state)
{
	(void)state;
	static const char *const bad[] = { ",", "cat,", ",cat", "cat,,dd", NULL };
	for (const char *const *v = bad; *v; v++) {
		struct nb_config c;
		assert_refused("NOBOUNCE_SKIP", *v, names_needles, &c);
		assert_string_equal(c.skip, "");
	}
}

static void name_list_longer_than_its_field_is_refused(void **state)
{
	(void)state;
	char v[NB_NAMELIST_MAX + 16];
	size_t n = 0;
	while (n + 5 < sizeof v) {
		memcpy(v + n, "abcd,", 5);
		n += 5;
	}
	v[n - 1] = '\0'; /* drop the trailing comma */
	assert_true(strlen(v) >= NB_NAMELIST_MAX);
	struct nb_config c;
	assert_refused("NOBOUNCE_SKIP", v, names_needles, &c);
	assert_string_equal(c.skip, "");
}

/* ---- nb_config_unknown ---- */

static int unknown(char *const *envp, struct env *e)
{
	memset(e, 0, sizeof *e);
	return nb_config_unknown(envp, env_complain, e);
}

static void unknown_flags_a_misspelled_variable(void **state)
{
	(void)state;
	char *envp[] = { "PATH=/bin", "NOBOUNCE_TYPO=1", "HOME=/root", NULL };
	struct env e;
	assert_int_equal(unknown(envp, &e), 1);
	assert_int_equal(e.nlines, 1);
	assert_non_null(strstr(e.lines[0], "NOBOUNCE_TYPO"));
	/* The name, not the value. */
	assert_null(strstr(e.lines[0], "NOBOUNCE_TYPO=1"));
}

static void unknown_accepts_every_known_variable(void **state)
{
	(void)state;
	char *envp[] = {
		"NOBOUNCE_MODE=on",     "NOBOUNCE_MIN_CHUNK=64K", "NOBOUNCE_ARM_AFTER=2",
		"NOBOUNCE_PATHS=all",   "NOBOUNCE_MAX_PIPES=4",   "NOBOUNCE_PIPE_SIZE=1M",
		"NOBOUNCE_STATS=stderr", "NOBOUNCE_LOG=warn",     "NOBOUNCE_ONLY=cat",
		"NOBOUNCE_SKIP=dd",     "NOBOUNCE_MODE=",         NULL,
	};
	struct env e;
	assert_int_equal(unknown(envp, &e), 0);
	assert_int_equal(e.nlines, 0);
}

static void unknown_flags_names_that_only_start_or_extend_a_known_one(void **state)
{
	(void)state;
	char *envp[] = { "NOBOUNCE_MOD=on", "NOBOUNCE_MODES=on", "NOBOUNCE_=1", NULL };
	struct env e;
	assert_int_equal(unknown(envp, &e), 3);
	assert_int_equal(e.nlines, 3);
	assert_non_null(strstr(e.lines[0], "NOBOUNCE_MOD "));
	assert_non_null(strstr(e.lines[1], "NOBOUNCE_MODES"));
}

static void unknown_ignores_variables_outside_the_prefix(void **state)
{
	(void)state;
	char *envp[] = { "NOBOUNCE=1", "nobounce_mode=on", "MY_NOBOUNCE_MODE=1",
			 "NOBOUNCEMODE=on", NULL };
	struct env e;
	assert_int_equal(unknown(envp, &e), 0);
	assert_int_equal(e.nlines, 0);
}

static void unknown_tolerates_null_environment(void **state)
{
	(void)state;
	struct env e;
	assert_int_equal(unknown(NULL, &e), 0);
}

/* ---- nb_config_selects ---- */

static void selects_every_program_by_default(void **state)
{
	(void)state;
	struct nb_config c;
	nb_config_defaults(&c);
	assert_true(nb_config_selects(&c, "cat"));
	assert_true(nb_config_selects(&c, ""));
}

static void only_selects_exactly_the_listed_programs(void **state)
{
	(void)state;
	struct nb_config c;
	nb_config_defaults(&c);
	strcpy(c.only, "cat,dd");
	assert_true(nb_config_selects(&c, "cat"));
	assert_true(nb_config_selects(&c, "dd"));
	assert_false(nb_config_selects(&c, "ls"));
	assert_false(nb_config_selects(&c, "ca"));
	assert_false(nb_config_selects(&c, "cats"));
	assert_false(nb_config_selects(&c, "cat,dd"));
	assert_false(nb_config_selects(&c, ""));
}

static void skip_excludes_the_listed_programs(void **state)
{
	(void)state;
	struct nb_config c;
	nb_config_defaults(&c);
	strcpy(c.skip, "nginx,ssh");
	assert_false(nb_config_selects(&c, "nginx"));
	assert_false(nb_config_selects(&c, "ssh"));
	assert_true(nb_config_selects(&c, "sshd"));
	assert_true(nb_config_selects(&c, "cat"));
}

static void skip_wins_over_only(void **state)
{
	(void)state;
	struct nb_config c;
	nb_config_defaults(&c);
	strcpy(c.only, "cat,dd");
	strcpy(c.skip, "cat");
	assert_false(nb_config_selects(&c, "cat"));
	assert_true(nb_config_selects(&c, "dd"));
	assert_false(nb_config_selects(&c, "ls"));
}

static void parsed_only_and_skip_lists_select_programs(void **state)
{
	(void)state;
	const char *kv[] = { "NOBOUNCE_ONLY", "cat,socat", "NOBOUNCE_SKIP", "socat", NULL };
	struct env e = { .kv = kv };
	struct nb_config c;
	assert_int_equal(nb_config_parse(&c, env_get, env_complain, &e), 0);
	assert_true(nb_config_selects(&c, "cat"));
	assert_false(nb_config_selects(&c, "socat"));
	assert_false(nb_config_selects(&c, "dd"));
}

/* ---- names ---- */

static void mode_names_match_the_accepted_words(void **state)
{
	(void)state;
	assert_string_equal(nb_mode_name(NB_MODE_ON), "on");
	assert_string_equal(nb_mode_name(NB_MODE_OBSERVE), "observe");
	assert_string_equal(nb_mode_name(NB_MODE_OFF), "off");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(defaults_when_nothing_is_set),
		cmocka_unit_test(exact_defaults_to_auto_with_signal_62),
		cmocka_unit_test(exact_accepts_auto_strict_off),
		cmocka_unit_test(exact_refuses_other_words_and_keeps_auto),
		cmocka_unit_test(lease_signal_accepts_the_real_time_signals_only),
		cmocka_unit_test(every_valid_value_at_once_gives_no_complaint),
		cmocka_unit_test(every_bad_value_at_once_gives_one_complaint_each),
		cmocka_unit_test(parse_starts_from_the_defaults),
		cmocka_unit_test(complaint_quotes_the_bad_value),
		cmocka_unit_test(bad_value_without_complain_sink_is_still_counted),
		cmocka_unit_test(mode_accepts_on_observe_off),
		cmocka_unit_test(mode_refuses_other_words_and_keeps_on),
		cmocka_unit_test(min_chunk_accepts_plain_byte_count),
		cmocka_unit_test(min_chunk_accepts_K_suffix),
		cmocka_unit_test(min_chunk_accepts_M_suffix),
		cmocka_unit_test(min_chunk_accepts_G_suffix),
		cmocka_unit_test(min_chunk_accepts_range_bounds_512_and_1G),
		cmocka_unit_test(min_chunk_refuses_below_512_and_keeps_16K),
		cmocka_unit_test(min_chunk_refuses_above_1G_and_keeps_16K),
		cmocka_unit_test(min_chunk_file_and_send_chunk_accept_sizes),
		cmocka_unit_test(send_chunk_refuses_less_than_a_page_and_keeps_32K),
		cmocka_unit_test(send_chunk_unset_depends_on_the_link),
		cmocka_unit_test(min_chunk_file_refuses_bad_sizes_and_keeps_64K),
		cmocka_unit_test(min_chunk_refuses_malformed_sizes),
		cmocka_unit_test(min_chunk_refuses_numbers_that_overflow),
		cmocka_unit_test(arm_after_accepts_1_to_1000000),
		cmocka_unit_test(arm_after_refuses_0),
		cmocka_unit_test(arm_after_refuses_above_1000000),
		cmocka_unit_test(arm_after_refuses_size_suffixes),
		cmocka_unit_test(arm_after_refuses_malformed_numbers),
		cmocka_unit_test(paths_all_allows_every_path),
		cmocka_unit_test(paths_none_allows_no_path),
		cmocka_unit_test(paths_comma_list_allows_exactly_the_named_paths),
		cmocka_unit_test(paths_refuses_unknown_names_and_keeps_all),
		cmocka_unit_test(paths_refuses_empty_items_and_keeps_all),
		cmocka_unit_test(max_pipes_accepts_0_to_4096),
		cmocka_unit_test(max_pipes_refuses_out_of_range_or_malformed_and_keeps_64),
		cmocka_unit_test(pipe_size_accepts_sizes_from_4K_to_1G),
		cmocka_unit_test(pipe_size_refuses_out_of_range_or_malformed_and_keeps_1M),
		cmocka_unit_test(stats_accepts_stderr),
		cmocka_unit_test(stats_accepts_a_file_path),
		cmocka_unit_test(stats_accepts_pid_escape),
		cmocka_unit_test(stats_set_but_empty_means_no_report_without_complaint),
		cmocka_unit_test(stats_refuses_other_percent_escapes_and_keeps_no_report),
		cmocka_unit_test(stats_refuses_a_path_too_long_to_expand),
		cmocka_unit_test(log_accepts_every_level),
		cmocka_unit_test(log_refuses_unknown_levels_and_keeps_warn),
		cmocka_unit_test(only_accepts_a_comma_list_of_program_names),
		cmocka_unit_test(skip_accepts_a_comma_list_of_program_names),
		cmocka_unit_test(only_refuses_a_path_instead_of_a_name),
		cmocka_unit_test(only_refuses_a_name_of_64_characters),
		cmocka_unit_test(skip_refuses_empty_list_items),
		cmocka_unit_test(name_list_longer_than_its_field_is_refused),
		cmocka_unit_test(unknown_flags_a_misspelled_variable),
		cmocka_unit_test(unknown_accepts_every_known_variable),
		cmocka_unit_test(unknown_flags_names_that_only_start_or_extend_a_known_one),
		cmocka_unit_test(unknown_ignores_variables_outside_the_prefix),
		cmocka_unit_test(unknown_tolerates_null_environment),
		cmocka_unit_test(selects_every_program_by_default),
		cmocka_unit_test(only_selects_exactly_the_listed_programs),
		cmocka_unit_test(skip_excludes_the_listed_programs),
		cmocka_unit_test(skip_wins_over_only),
		cmocka_unit_test(parsed_only_and_skip_lists_select_programs),
		cmocka_unit_test(mode_names_match_the_accepted_words),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
