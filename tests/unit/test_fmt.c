/*
 * test_fmt.c - the library's own printf (fmt.c), used by the reports and
 * log lines that may be written from a signal handler: every format the
 * library uses gives snprintf's text and length, truncation included.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "internal.h"

/* Truncation is what the tests compare. */
#pragma GCC diagnostic ignored "-Wformat-truncation"

/* The same format through both; text and length must agree. */
#define SAME(cap, ...)                                                      \
	do {                                                                \
		char a[256], b[256];                                        \
		memset(a, 'x', sizeof a);                                   \
		memset(b, 'x', sizeof b);                                   \
		size_t na = nb_fmt(a, cap, __VA_ARGS__);                    \
		int nb = snprintf(b, cap, __VA_ARGS__);                     \
		assert_int_equal(na, (size_t)nb);                           \
		assert_memory_equal(a, b, (cap) < sizeof a ? (cap) : sizeof a); \
	} while (0)

static void integers_of_every_length(void **state)
{
	(void)state;
	SAME(256, "%d %d %d", 0, -1, 2147483647);
	SAME(256, "%d", (int)-2147483647 - 1);
	SAME(256, "%u %lu %llu %zu", 4000000000u, 1ul << 40, ~0ull, (size_t)12345);
	SAME(256, "%ld %lld %zd", -5l, -(1ll << 62), (ssize_t)-7);
	SAME(256, "%x %X %#x %#lx %o", 255u, 255u, 255u, 0x7f00ul, 8u);
	SAME(256, "%#x", 0u);
	SAME(256, "%p", (void *)0x1234);
}

static void widths_precision_and_flags(void **state)
{
	(void)state;
	SAME(256, "[%5d] [%-5d] [%05d] [%-12s] [%12s]", 42, 42, 42, "ab", "cd");
	SAME(256, "[%.3s] [%.64s] [%*s] [%-*s]", "abcdef", "xy", 6, "r", 4, "l");
	SAME(256, "[%-8s %-16s]", "12345", "nginx");
	SAME(256, "100%% %c%c", 'o', 'k');
	SAME(256, "%s", "");
}

static void truncation_keeps_the_full_length_and_a_nul(void **state)
{
	(void)state;
	SAME(1, "%s", "hello");
	SAME(4, "%d-%s", 12345, "abc");
	SAME(8, "%llu", 18446744073709551615ull);
	char z[4] = "zzz";
	assert_int_equal(nb_fmt(z, 0, "%d", 5), 1);
	assert_string_equal(z, "zzz"); /* cap 0: nothing written */
}

int main(void)
{
#define T(f) cmocka_unit_test(f)
	const struct CMUnitTest tests[] = {
		T(integers_of_every_length),
		T(widths_precision_and_flags),
		T(truncation_keeps_the_full_length_and_a_nul),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
