/*
 * test_uffd.c - a process that serves its own page faults (sigguard.c
 * "uffd"): which ioctl requests are userfaultfd's, and the one-way flag
 * they raise - no deferral from then on, the reason reported, kept by a
 * forked child, not replacing a reason that stopped deferral before.
 *
 * The flag is per process and one-way, so every case that raises it runs
 * in a forked child and reports through its exit status.
 */
#include <errno.h>
#include <linux/fs.h>
#include <linux/userfaultfd.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "internal.h"

static const char uffd_reason[] = "the program serves its own page faults (userfaultfd)";

static void userfaultfd_requests_are_told_from_the_others(void **state)
{
	(void)state;
	assert_true(NB_UFFD_IOCTL(USERFAULTFD_IOC_NEW));
	assert_true(NB_UFFD_IOCTL(UFFDIO_API));
	assert_true(NB_UFFD_IOCTL(UFFDIO_REGISTER));
	assert_true(NB_UFFD_IOCTL(UFFDIO_UNREGISTER));
	assert_true(NB_UFFD_IOCTL(UFFDIO_COPY));
	assert_true(NB_UFFD_IOCTL(UFFDIO_ZEROPAGE));
	assert_true(NB_UFFD_IOCTL(UFFDIO_WAKE));
	/* The kernel takes the request as 32 bits: what is above is not
	 * part of it, and not looked at. */
	assert_true(NB_UFFD_IOCTL(0xffffffff00000000ul | UFFDIO_API));
	assert_false(NB_UFFD_IOCTL(TCGETS));
	assert_false(NB_UFFD_IOCTL(FIONREAD));
	assert_false(NB_UFFD_IOCTL(FICLONE));
	assert_false(NB_UFFD_IOCTL(BLKGETSIZE64));
	assert_false(NB_UFFD_IOCTL(0x54aa));                 /* 0xAA as the number */
	assert_false(NB_UFFD_IOCTL(_IOR('T', 1, char[0xaa]))); /* 0xAA as the size */
	assert_false(NB_UFFD_IOCTL(0));
}

/* In a child: fails with the line number. */
#define CHECK(c)                             \
	do {                                 \
		if (!(c))                    \
			_exit(__LINE__ & 0x7f); \
	} while (0)

static int child_status(pid_t c)
{
	int st;
	assert_int_equal(waitpid(c, &st, 0), c);
	assert_true(WIFEXITED(st));
	return WEXITSTATUS(st);
}

static void run_in_child(void (*fn)(void))
{
	pid_t c = fork();
	assert_true(c >= 0);
	if (c == 0) {
		fn();
		_exit(0);
	}
	assert_int_equal(child_status(c), 0);
}

/* Raised with the hooks not doing anything yet (before init, or off). */
static void raise_inactive(void)
{
	atomic_store(&nb_g.active, 0);
	CHECK(nb_sigguard_reason() == NULL);
	CHECK(nb_sigguard_recheck());
	nb_sigguard_uffd();
	CHECK(nb_sigguard_reason() != NULL && strcmp(nb_sigguard_reason(), uffd_reason) == 0);
	CHECK(!nb_sigguard_recheck());
	CHECK(!nb_sigguard_allows());
	/* One-way: raising again changes nothing. */
	nb_sigguard_uffd();
	CHECK(strcmp(nb_sigguard_reason(), uffd_reason) == 0);
}

static void the_flag_ends_deferral_and_names_the_reason(void **state)
{
	(void)state;
	run_in_child(raise_inactive);
	/* The parent was never touched. */
	assert_null(nb_sigguard_reason());
}

/* Raised with the hooks at work: through the path that fills phantoms. */
static void raise_active_then_fork(void)
{
	nb_g.log_fd = -1;
	atomic_store(&nb_g.active, 1);
	errno = 1234;
	nb_sigguard_uffd();
	CHECK(errno == 1234);
	CHECK(nb_sigguard_reason() != NULL && strcmp(nb_sigguard_reason(), uffd_reason) == 0);
	CHECK(!nb_sigguard_allows());
	/* A child forked now: the same memory, the same answer. */
	pid_t c = fork();
	CHECK(c >= 0);
	if (c == 0) {
		CHECK(!nb_sigguard_allows() && !nb_sigguard_recheck());
		CHECK(strcmp(nb_sigguard_reason(), uffd_reason) == 0);
		_exit(0);
	}
	int st;
	CHECK(waitpid(c, &st, 0) == c && WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void a_forked_child_keeps_the_flag(void **state)
{
	(void)state;
	run_in_child(raise_active_then_fork);
}

/* Deferral already stopped for another reason: that reason stays. */
static void raise_after_a_mask(void)
{
	atomic_store(&nb_g.active, 0);
	nb_sigguard_init(true);
	const char *before = nb_sigguard_reason();
	CHECK(before != NULL && strcmp(before, uffd_reason) != 0);
	nb_sigguard_uffd();
	CHECK(strcmp(nb_sigguard_reason(), before) == 0);
	CHECK(!nb_sigguard_recheck());
}

static void an_earlier_reason_is_kept(void **state)
{
	(void)state;
	run_in_child(raise_after_a_mask);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(userfaultfd_requests_are_told_from_the_others),
		cmocka_unit_test(the_flag_ends_deferral_and_names_the_reason),
		cmocka_unit_test(a_forked_child_keeps_the_flag),
		cmocka_unit_test(an_earlier_reason_is_kept),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
