/*
 * test_sameproc.c - unseen writers (sameproc.c): stdout and stderr, once
 * they have a stdio buffer, count as writers of the file they name. The
 * answer must not depend on whether another thread holds their slot in
 * the descriptor table at that moment.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "internal.h"

static int saved_stderr = -1;
static char errbuf[BUFSIZ];

/* fd 2 names a fresh file opened with oflags (the one the test gives):
 * stderr is given a buffer, as printing would. */
static int setup(void **state)
{
	(void)state;
	nb_config_defaults(&nb_g.cfg);
	nb_fdtab_reset();
	nb_stats_reset();
	fflush(stderr);
	saved_stderr = dup(2);
	assert_true(saved_stderr >= 0);
	setvbuf(stderr, errbuf, _IOFBF, sizeof errbuf);
	assert_non_null(stderr->_IO_buf_base);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	fflush(stderr);
	setvbuf(stderr, NULL, _IONBF, 0);
	dup2(saved_stderr, 2);
	close(saved_stderr);
	nb_fdtab_reset();
	return 0;
}

static int temp_file(int flags, struct stat *st)
{
	char path[] = "/tmp/nb-same-XXXXXX";
	int fd = mkostemp(path, flags);
	assert_true(fd >= 0);
	unlink(path);
	assert_int_equal(fstat(fd, st), 0);
	return fd;
}

/* fd 2 onto a new file (flags), returned with its identity. */
static void stderr_to_new_file(int flags, struct stat *st)
{
	int fd = temp_file(flags, st);
	assert_int_equal(dup2(fd, 2), 2);
	close(fd);
}

/* The slot of fd 2 held, unclassified, as another thread holds it while
 * it classifies the number. */
static struct nb_fd *hold_stderr_slot(void)
{
	struct nb_fd *e = nb_fd_get(2);
	assert_non_null(e);
	assert_int_equal(e->kind, NB_KIND_UNKNOWN);
	assert_true(nb_fd_trylock(e));
	return e;
}

static void busy_stderr_slot_of_another_file_is_no_writer_of_the_source(void **state)
{
	(void)state;
	struct stat other, src;
	stderr_to_new_file(O_RDWR, &other);
	int s = temp_file(O_RDWR, &src);
	struct nb_fd *e = hold_stderr_slot();
	assert_false(nb_same_unseen(src.st_dev, src.st_ino));
	nb_fd_unlock(e);
	assert_false(nb_same_unseen(src.st_dev, src.st_ino));
	close(s);
}

static void busy_stderr_slot_naming_the_source_is_its_writer(void **state)
{
	(void)state;
	struct stat src;
	stderr_to_new_file(O_RDWR, &src);
	struct nb_fd *e = hold_stderr_slot();
	assert_true(nb_same_unseen(src.st_dev, src.st_ino));
	nb_fd_unlock(e);
	assert_true(nb_same_unseen(src.st_dev, src.st_ino));
}

static void busy_stderr_slot_appending_to_the_source_is_no_writer_of_it(void **state)
{
	(void)state;
	struct stat src;
	stderr_to_new_file(O_RDWR | O_APPEND, &src);
	struct nb_fd *e = hold_stderr_slot();
	assert_false(nb_same_unseen(src.st_dev, src.st_ino));
	nb_fd_unlock(e);
	assert_false(nb_same_unseen(src.st_dev, src.st_ino));
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(busy_stderr_slot_of_another_file_is_no_writer_of_the_source),
		T(busy_stderr_slot_naming_the_source_is_its_writer),
		T(busy_stderr_slot_appending_to_the_source_is_no_writer_of_it),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
