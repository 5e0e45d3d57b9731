/*
 * test_xfer.c - the decisions of xfer.c: which destinations a kernel path
 * may serve exactly, which kernel errors mean "fall back", the steps of a
 * blocking pipe transfer, when a non-blocking pipe takes the same count
 * from splice as from write, when a SIGPIPE is taken back, the
 * RLIMIT_FSIZE cut - and, on small real descriptors, that nb_xfer keeps
 * errno, the signal mask and the source position as the plain call does.
 * The differential tests against plain writes are tests/prog/xferlog.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "xfer.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define K 1024u
#define PG 4096u

static enum nb_xfer_how plan(enum nb_kind k, unsigned fl, enum nb_path p, int msg, bool off,
			     size_t len)
{
	enum nb_xfer_why why = NB_XFER_WHY_COUNT;
	enum nb_xfer_how h = nb_xfer_plan(k, fl, p, msg, off, len, &why);
	/* why says OK exactly when there is a plan */
	assert_int_equal(why, h == NB_XFER_HOW_NONE ? NB_XFER_REFUSED : NB_XFER_OK);
	return h;
}

/* ---- nb_xfer_plan ---- */

static void plan_stream_sockets_take_one_sendfile(void **state)
{
	(void)state;
	assert_int_equal(plan(NB_KIND_TCP, 0, NB_PATH_SENDFILE, 0, false, 64 * K), NB_XFER_SOCKET);
	assert_int_equal(plan(NB_KIND_UNIX, 0, NB_PATH_SENDFILE, 0, false, 64 * K), NB_XFER_SOCKET);
	assert_int_equal(plan(NB_KIND_TCP, NB_FL_NONBLOCK, NB_PATH_SENDFILE, 0, false, 1),
			 NB_XFER_SOCKET);
}

static void plan_socket_refuses_pwrite_offset(void **state)
{
	(void)state; /* pwrite on a socket fails with ESPIPE: the plain call says so */
	assert_int_equal(plan(NB_KIND_TCP, 0, NB_PATH_SENDFILE, 0, true, 64 * K), NB_XFER_HOW_NONE);
}

static void plan_socket_send_flags(void **state)
{
	(void)state;
	assert_int_equal(plan(NB_KIND_TCP, 0, NB_PATH_SENDFILE, MSG_NOSIGNAL, false, 8 * K),
			 NB_XFER_SOCKET);
	/* MSG_DONTWAIT: only where the socket is non-blocking anyway */
	assert_int_equal(plan(NB_KIND_TCP, 0, NB_PATH_SENDFILE, MSG_DONTWAIT, false, 8 * K),
			 NB_XFER_HOW_NONE);
	assert_int_equal(plan(NB_KIND_UNIX, NB_FL_NONBLOCK, NB_PATH_SENDFILE,
			      MSG_DONTWAIT | MSG_NOSIGNAL, false, 8 * K),
			 NB_XFER_SOCKET);
	/* MSG_MORE: a segmentation hint; the bytes and the count are the same */
	assert_int_equal(plan(NB_KIND_TCP, NB_FL_NONBLOCK, NB_PATH_SENDFILE,
			      MSG_MORE | MSG_DONTWAIT | MSG_NOSIGNAL, false, 8 * K),
			 NB_XFER_SOCKET);
	static const int other[] = { MSG_OOB, MSG_EOR, MSG_CONFIRM, MSG_FASTOPEN };
	for (size_t i = 0; i < sizeof other / sizeof other[0]; i++)
		assert_int_equal(plan(NB_KIND_TCP, 0, NB_PATH_SENDFILE, other[i] | MSG_NOSIGNAL,
				      false, 8 * K),
				 NB_XFER_HOW_NONE);
}

static void plan_socket_only_by_sendfile(void **state)
{
	(void)state;
	assert_int_equal(plan(NB_KIND_TCP, 0, NB_PATH_SPLICE, 0, false, 8 * K), NB_XFER_HOW_NONE);
	assert_int_equal(plan(NB_KIND_UNIX, 0, NB_PATH_COPY_FILE_RANGE, 0, false, 8 * K),
			 NB_XFER_HOW_NONE);
}

static void plan_pipes_blocking_and_not(void **state)
{
	(void)state;
	assert_int_equal(plan(NB_KIND_PIPE, 0, NB_PATH_SPLICE, 0, false, 64 * K), NB_XFER_PIPE);
	assert_int_equal(plan(NB_KIND_PIPE, 0, NB_PATH_SENDFILE, 0, false, 64 * K), NB_XFER_PIPE);
	assert_int_equal(plan(NB_KIND_PIPE, NB_FL_NONBLOCK, NB_PATH_SPLICE, 0, false, 64 * K),
			 NB_XFER_PIPE_NB);
	assert_int_equal(plan(NB_KIND_PIPE, 0, NB_PATH_COPY_FILE_RANGE, 0, false, 64 * K),
			 NB_XFER_HOW_NONE);
}

static void plan_blocking_pipe_refuses_atomic_sizes(void **state)
{
	(void)state;
	/* write(2) of <= PIPE_BUF bytes is atomic; splice may need two slots */
	assert_int_equal(plan(NB_KIND_PIPE, 0, NB_PATH_SPLICE, 0, false, PIPE_BUF), NB_XFER_HOW_NONE);
	assert_int_equal(plan(NB_KIND_PIPE, 0, NB_PATH_SPLICE, 0, false, PIPE_BUF + 1), NB_XFER_PIPE);
	/* non-blocking: the space check decides, at run time */
	assert_int_equal(plan(NB_KIND_PIPE, NB_FL_NONBLOCK, NB_PATH_SPLICE, 0, false, 100),
			 NB_XFER_PIPE_NB);
}

static void plan_pipe_refuses_offset_and_send_flags(void **state)
{
	(void)state;
	assert_int_equal(plan(NB_KIND_PIPE, 0, NB_PATH_SPLICE, 0, true, 64 * K), NB_XFER_HOW_NONE);
	assert_int_equal(plan(NB_KIND_PIPE, 0, NB_PATH_SPLICE, MSG_NOSIGNAL, false, 64 * K),
			 NB_XFER_HOW_NONE);
}

static void plan_files(void **state)
{
	(void)state;
	assert_int_equal(plan(NB_KIND_FILE, 0, NB_PATH_COPY_FILE_RANGE, 0, false, 64 * K),
			 NB_XFER_CFR);
	assert_int_equal(plan(NB_KIND_FILE, 0, NB_PATH_COPY_FILE_RANGE, 0, true, 64 * K),
			 NB_XFER_CFR);
	assert_int_equal(plan(NB_KIND_FILE, 0, NB_PATH_SENDFILE, 0, false, 64 * K),
			 NB_XFER_FILE_SF);
	/* sendfile writes at the file position only */
	assert_int_equal(plan(NB_KIND_FILE, 0, NB_PATH_SENDFILE, 0, true, 64 * K),
			 NB_XFER_HOW_NONE);
	assert_int_equal(plan(NB_KIND_FILE, 0, NB_PATH_SPLICE, 0, false, 64 * K), NB_XFER_HOW_NONE);
	/* send() on a file is ENOTSOCK */
	assert_int_equal(plan(NB_KIND_FILE, 0, NB_PATH_COPY_FILE_RANGE, MSG_NOSIGNAL, false, 64 * K),
			 NB_XFER_HOW_NONE);
	/* O_NONBLOCK means nothing to a regular file */
	assert_int_equal(plan(NB_KIND_FILE, NB_FL_NONBLOCK, NB_PATH_COPY_FILE_RANGE, 0, false, 1),
			 NB_XFER_CFR);
}

static void plan_refuses_append_and_direct(void **state)
{
	(void)state;
	static const enum nb_kind kinds[] = { NB_KIND_FILE, NB_KIND_TCP, NB_KIND_UNIX, NB_KIND_PIPE };
	static const enum nb_path paths[] = { NB_PATH_COPY_FILE_RANGE, NB_PATH_SENDFILE,
					      NB_PATH_SENDFILE, NB_PATH_SPLICE };
	for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
		assert_int_not_equal(plan(kinds[i], 0, paths[i], 0, false, 64 * K), NB_XFER_HOW_NONE);
		assert_int_equal(plan(kinds[i], NB_FL_APPEND, paths[i], 0, false, 64 * K),
				 NB_XFER_HOW_NONE);
		assert_int_equal(plan(kinds[i], NB_FL_DIRECT, paths[i], 0, false, 64 * K),
				 NB_XFER_HOW_NONE);
	}
}

static void plan_refuses_empty_writes_and_no_path(void **state)
{
	(void)state;
	assert_int_equal(plan(NB_KIND_TCP, 0, NB_PATH_SENDFILE, 0, false, 0), NB_XFER_HOW_NONE);
	assert_int_equal(plan(NB_KIND_FILE, 0, NB_PATH_COPY_FILE_RANGE, 0, false, 0),
			 NB_XFER_HOW_NONE);
	assert_int_equal(plan(NB_KIND_TCP, 0, NB_PATH_NONE, 0, false, 64 * K), NB_XFER_HOW_NONE);
}

static void plan_refuses_other_kinds(void **state)
{
	(void)state;
	static const enum nb_kind kinds[] = { NB_KIND_UNKNOWN, NB_KIND_BLOCK, NB_KIND_CHAR,
					      NB_KIND_OTHER };
	for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
		for (unsigned p = 1; p <= NB_PATH_SPLICE; p <<= 1)
			assert_int_equal(plan(kinds[i], 0, (enum nb_path)p, 0, false, 64 * K),
					 NB_XFER_HOW_NONE);
}

/* ---- nb_xfer_unsupported ---- */

static void unsupported_errors_are_the_paths_own(void **state)
{
	(void)state;
	static const int fall[] = { EINVAL, EXDEV, ENOSYS, EOPNOTSUPP, ESPIPE,
				    EOVERFLOW, EBADF, EIO, ENOMEM };
	for (size_t i = 0; i < sizeof fall / sizeof fall[0]; i++)
		assert_true(nb_xfer_unsupported(fall[i]));
	/* The destination's own answers, some with side effects (SIGPIPE,
	 * SIGXFSZ, a handler ran, the socket's error consumed): never
	 * retried with the plain call. */
	static const int keep[] = { EPIPE, EINTR, EAGAIN, ECONNRESET, ENOTCONN, ETIMEDOUT,
				    EHOSTUNREACH, ENOSPC, EFBIG, EDQUOT, EPERM };
	for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++)
		assert_false(nb_xfer_unsupported(keep[i]));
}

/* ---- nb_xfer_pipe_step ---- */

static void step_counts(void **state)
{
	(void)state;
	assert_int_equal(nb_xfer_pipe_step(0, 100 * K, 100 * K, 0), NB_STEP_DONE);
	assert_int_equal(nb_xfer_pipe_step(36 * K, 100 * K, 64 * K, 0), NB_STEP_DONE);
	assert_int_equal(nb_xfer_pipe_step(0, 100 * K, 64 * K, 0), NB_STEP_MORE);
	assert_int_equal(nb_xfer_pipe_step(64 * K, 200 * K, 64 * K, 0), NB_STEP_MORE);
}

static void step_end_of_file(void **state)
{
	(void)state; /* never report more than moved; nothing moved: fall back */
	assert_int_equal(nb_xfer_pipe_step(0, 100 * K, 0, 0), NB_STEP_NO_BYTES);
	assert_int_equal(nb_xfer_pipe_step(5, 100 * K, 0, 0), NB_STEP_RETURN_MOVED);
}

static void step_full_pipe_waits_two_ways(void **state)
{
	(void)state;
	assert_int_equal(nb_xfer_pipe_step(0, 100 * K, -1, EAGAIN), NB_STEP_WAIT_FRESH);
	assert_int_equal(nb_xfer_pipe_step(1, 100 * K, -1, EAGAIN), NB_STEP_WAIT_MOVED);
}

static void step_errors(void **state)
{
	(void)state;
	/* after progress every error ends the write with the count */
	assert_int_equal(nb_xfer_pipe_step(64 * K, 100 * K, -1, EPIPE), NB_STEP_RETURN_MOVED);
	assert_int_equal(nb_xfer_pipe_step(64 * K, 100 * K, -1, EINVAL), NB_STEP_RETURN_MOVED);
	assert_int_equal(nb_xfer_pipe_step(0, 100 * K, -1, EPIPE), NB_STEP_ERROR);
	assert_int_equal(nb_xfer_pipe_step(0, 100 * K, -1, EINTR), NB_STEP_ERROR);
	assert_int_equal(nb_xfer_pipe_step(0, 100 * K, -1, EINVAL), NB_STEP_UNSUPPORTED);
	assert_int_equal(nb_xfer_pipe_step(0, 100 * K, -1, EBADF), NB_STEP_UNSUPPORTED);
}

/* ---- nb_xfer_pipe_same_count ---- */

static void same_count_when_whole_pages_fit(void **state)
{
	(void)state;
	/* 16 free slots, whole pages from a page boundary */
	assert_true(nb_xfer_pipe_same_count(0, 64 * K, 0, 16, PG));
	assert_true(nb_xfer_pipe_same_count(12 * PG, 8 * PG, 0, 16, PG));
	assert_true(nb_xfer_pipe_same_count(PG, PG, 0, 1, PG));
}

static void same_count_refuses_misaligned_sources(void **state)
{
	(void)state;
	/* measured: 65436 by splice against 65536 by write at offset 100 */
	assert_false(nb_xfer_pipe_same_count(100, 100000, 0, 16, PG));
	/* fits either way, but leaves a partial first slot */
	assert_false(nb_xfer_pipe_same_count(100, 8 * PG, 0, 16, PG));
	assert_false(nb_xfer_pipe_same_count(PG - 1, 1, 0, 16, PG));
}

static void same_count_refuses_a_partial_last_page(void **state)
{
	(void)state;
	/* fits, but write leaves a last page later writes merge into (a
	 * third 30000-byte write then moves 4096 bytes, not 1328) */
	assert_false(nb_xfer_pipe_same_count(0, 30000, 0, 16, PG));
	assert_false(nb_xfer_pipe_same_count(0, 100, 0, 16, PG));
}

static void same_count_when_both_fill_an_empty_pipe(void **state)
{
	(void)state;
	/* measured: write and splice both move 65536, every slot a whole page */
	assert_true(nb_xfer_pipe_same_count(0, 100000, 0, 16, PG));
	assert_true(nb_xfer_pipe_same_count(12 * PG, 1u << 20, 0, 16, PG));
	assert_true(nb_xfer_pipe_same_count(0, 64 * K + 1, 0, 16, PG));
}

static void same_count_with_bytes_queued(void **state)
{
	(void)state;
	/* 3 bytes queued take at most 3 slots: 13 are free for certain */
	assert_true(nb_xfer_pipe_same_count(0, 13 * PG, 3, 16, PG));
	assert_false(nb_xfer_pipe_same_count(0, 14 * PG, 3, 16, PG));
	/* measured: write merges 1696 bytes into a 100-byte buffer and
	 * moves 63136, splice 61440 */
	assert_false(nb_xfer_pipe_same_count(0, 100000, 100, 16, PG));
	/* as many queued bytes as slots: every slot may be in use (write
	 * would fail with EAGAIN or merge; the plain call decides) */
	assert_false(nb_xfer_pipe_same_count(0, PG, 16, 16, PG));
	assert_false(nb_xfer_pipe_same_count(0, PG, 1u << 20, 16, PG));
}

static void same_count_keeps_pipe_buf_atomicity(void **state)
{
	(void)state;
	/* a page from a page boundary takes one slot, as write's; a write
	 * of <= PIPE_BUF bytes moves all or fails with EAGAIN: so must we */
	assert_true(nb_xfer_pipe_same_count(0, PG, 15, 16, PG));
	assert_false(nb_xfer_pipe_same_count(0, PG, 16, 16, PG));
}

static void same_count_odd_inputs(void **state)
{
	(void)state;
	assert_false(nb_xfer_pipe_same_count(0, PG, 0, 0, PG));
	assert_false(nb_xfer_pipe_same_count(0, PG, 0, 16, 0));
	assert_false(nb_xfer_pipe_same_count(-(off_t)PG, PG, 0, 16, PG));
	assert_true(nb_xfer_pipe_same_count(0, SIZE_MAX, 0, 16, PG)); /* empty, overfilled */
	assert_false(nb_xfer_pipe_same_count(0, SIZE_MAX, 1, 16, PG));
}

/* ---- nb_xfer_sigpipe_takeback ---- */

/* ---- a socket write cut into NOBOUNCE_SEND_CHUNK calls ---- */

static void socket_step_goes_on_only_after_a_full_step(void **state)
{
	(void)state;
	assert_int_equal(nb_xfer_socket_step(0, 16384, 65536, 16384, 0), NB_STEP_MORE);
	assert_int_equal(nb_xfer_socket_step(49152, 16384, 65536, 16384, 0), NB_STEP_DONE);
	/* short: full non-blocking socket, signal, timeout - write returns */
	assert_int_equal(nb_xfer_socket_step(16384, 16384, 65536, 100, 0), NB_STEP_RETURN_MOVED);
	assert_int_equal(nb_xfer_socket_step(0, 100, 100, 100, 0), NB_STEP_DONE);
}

static void socket_step_errors_after_progress_return_the_count(void **state)
{
	(void)state;
	assert_int_equal(nb_xfer_socket_step(16384, 16384, 65536, -1, EPIPE), NB_STEP_RETURN_MOVED);
	assert_int_equal(nb_xfer_socket_step(16384, 16384, 65536, -1, EINTR), NB_STEP_RETURN_MOVED);
	assert_int_equal(nb_xfer_socket_step(16384, 16384, 65536, 0, 0), NB_STEP_RETURN_MOVED);
	assert_int_equal(nb_xfer_socket_step(0, 16384, 65536, -1, EPIPE), NB_STEP_ERROR);
	assert_int_equal(nb_xfer_socket_step(0, 16384, 65536, -1, EAGAIN), NB_STEP_ERROR);
	assert_int_equal(nb_xfer_socket_step(0, 16384, 65536, -1, EINVAL), NB_STEP_UNSUPPORTED);
	assert_int_equal(nb_xfer_socket_step(0, 16384, 65536, 0, 0), NB_STEP_NO_BYTES);
}

static void socket_mask_none_for_one_small_call(void **state)
{
	(void)state;
	/* 16 KiB in one call, SIGPIPE at its default: nothing to block */
	assert_int_equal(nb_xfer_socket_mask(0, 16384, 16384, 4096, false, 0, false, true),
			 NB_MASK_NONE);
	assert_int_equal(nb_xfer_socket_mask(100, 16384, 0, 4096, false, 0, false, true),
			 NB_MASK_NONE);
	/* exactly 16 pages, misaligned: 17 pages, two internal sends */
	assert_int_equal(nb_xfer_socket_mask(0, 65536, 0, 4096, false, 0, false, false),
			 NB_MASK_NONE);
	assert_int_equal(nb_xfer_socket_mask(1, 65536, 0, 4096, false, 0, false, false),
			 NB_MASK_PIPE);
}

static void socket_mask_pipe_for_several_calls_or_nosignal(void **state)
{
	(void)state;
	assert_int_equal(nb_xfer_socket_mask(0, 65536, 16384, 4096, false, 0, false, false),
			 NB_MASK_PIPE);
	assert_int_equal(nb_xfer_socket_mask(0, 4096, 16384, 4096, false, MSG_NOSIGNAL, false,
					     false),
			 NB_MASK_PIPE);
	/* SIGPIPE ignored: whatever sendfile raises is discarded */
	assert_int_equal(nb_xfer_socket_mask(0, 1 << 20, 16384, 4096, false, MSG_NOSIGNAL, true,
					     false),
			 NB_MASK_NONE);
}

static void socket_mask_all_for_nonblocking_with_plain_handlers(void **state)
{
	(void)state;
	assert_int_equal(nb_xfer_socket_mask(0, 4096, 16384, 4096, true, 0, true, true),
			 NB_MASK_ALL);
	assert_int_equal(nb_xfer_socket_mask(0, 4096, 16384, 4096, true, 0, false, false),
			 NB_MASK_NONE);
	assert_int_equal(nb_xfer_socket_mask(0, 1 << 20, 16384, 4096, true, 0, false, false),
			 NB_MASK_PIPE);
}

static void sigpipe_takeback(void **state)
{
	(void)state;
	/* a count: write raised nothing (sendfile may have, in a later chunk) */
	assert_true(nb_xfer_sigpipe_takeback(65536, 0, 100000, 0, false));
	assert_false(nb_xfer_sigpipe_takeback(100000, 0, 100000, 0, false));
	/* -1 EPIPE: write raises SIGPIPE unless MSG_NOSIGNAL */
	assert_false(nb_xfer_sigpipe_takeback(-1, EPIPE, 100000, 0, false));
	assert_true(nb_xfer_sigpipe_takeback(-1, EPIPE, 100000, MSG_NOSIGNAL, false));
	/* other errors raise nothing to take */
	assert_false(nb_xfer_sigpipe_takeback(-1, ECONNRESET, 100000, MSG_NOSIGNAL, false));
	/* pending before the call: not ours */
	assert_false(nb_xfer_sigpipe_takeback(-1, EPIPE, 100000, MSG_NOSIGNAL, true));
	assert_false(nb_xfer_sigpipe_takeback(5, 0, 100000, 0, true));
}

/* ---- nb_xfer_fsize_clamp ---- */

static void fsize_clamp(void **state)
{
	(void)state;
	assert_int_equal(nb_xfer_fsize_clamp(0, 200000, RLIM_INFINITY), 200000);
	assert_int_equal(nb_xfer_fsize_clamp(0, 200000, 100000), 100000);
	assert_int_equal(nb_xfer_fsize_clamp(4000, 200000, 131072), 127072);
	assert_int_equal(nb_xfer_fsize_clamp(4000, 1000, 131072), 1000);
	/* at or past the limit: the kernel raises SIGXFSZ, as for write */
	assert_int_equal(nb_xfer_fsize_clamp(65536, 200000, 65536), 200000);
	assert_int_equal(nb_xfer_fsize_clamp(70000, 200000, 65536), 200000);
	assert_int_equal(nb_xfer_fsize_clamp(-1, 10, 65536), 10);
}

static void names(void **state)
{
	(void)state;
	assert_string_equal(nb_xfer_why_name(NB_XFER_NOT_NOW), "not_now");
	assert_string_equal(nb_xfer_why_name(NB_XFER_WHY_COUNT), "?");
	assert_string_equal(nb_xfer_how_name(NB_XFER_CFR), "copy_file_range");
	assert_string_equal(nb_xfer_how_name((enum nb_xfer_how)99), "?");
}

/* ---- nb_xfer on small real descriptors ---- */

static char srcpath[64], dstpath[64];
static int src = -1, dst = -1;
static unsigned char data[256 * 1024];

static int files_setup(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof data; i++)
		data[i] = (unsigned char)(i * 31 + 7);
	snprintf(srcpath, sizeof srcpath, "/dev/shm/nb-txfer-src.%d", (int)getpid());
	snprintf(dstpath, sizeof dstpath, "/dev/shm/nb-txfer-dst.%d", (int)getpid());
	src = open(srcpath, O_RDWR | O_CREAT | O_TRUNC, 0600);
	dst = open(dstpath, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (src < 0 || dst < 0 || write(src, data, sizeof data) != (ssize_t)sizeof data)
		return -1;
	return lseek(src, 777, SEEK_SET) == 777 ? 0 : -1;
}

static int files_teardown(void **state)
{
	(void)state;
	close(src);
	close(dst);
	unlink(srcpath);
	unlink(dstpath);
	return 0;
}

static void fallback_moves_nothing_and_keeps_errno(void **state)
{
	(void)state;
	struct nb_xfer_res res;
	errno = 4242;
	assert_int_equal(nb_xfer(dst, NB_KIND_FILE, NB_FL_APPEND, src, 0, 4096,
				 NB_PATH_COPY_FILE_RANGE, 0, NULL, &res),
			 NB_XFER_FALLBACK);
	assert_int_equal(errno, 4242);
	assert_int_equal(res.why, NB_XFER_REFUSED);
	assert_int_equal(res.calls, 0);
	/* past the end of the file: no bytes there */
	assert_int_equal(nb_xfer(dst, NB_KIND_FILE, 0, src, (off_t)sizeof data, 4096,
				 NB_PATH_COPY_FILE_RANGE, 0, NULL, &res),
			 NB_XFER_FALLBACK);
	assert_int_equal(errno, 4242);
	assert_int_equal(res.why, NB_XFER_NO_BYTES);
	assert_int_equal(lseek(dst, 0, SEEK_CUR), 0);
}

static void success_keeps_errno_and_positions(void **state)
{
	(void)state;
	struct nb_xfer_res res;
	assert_int_equal(ftruncate(dst, 0), 0);
	assert_int_equal(lseek(dst, 0, SEEK_SET), 0);
	errno = 4242;
	assert_int_equal(nb_xfer(dst, NB_KIND_FILE, 0, src, 1000, 100000, NB_PATH_COPY_FILE_RANGE,
				 0, NULL, &res),
			 100000);
	assert_int_equal(errno, 4242);
	assert_int_equal(res.why, NB_XFER_OK);
	assert_int_equal(res.path, NB_PATH_COPY_FILE_RANGE);
	assert_int_equal(lseek(dst, 0, SEEK_CUR), 100000); /* advanced like write */
	assert_int_equal(lseek(src, 0, SEEK_CUR), 777);    /* never used */
	unsigned char back[100000];
	assert_int_equal(pread(dst, back, sizeof back, 0), (ssize_t)sizeof back);
	assert_memory_equal(back, data + 1000, sizeof back);
}

static void pwrite_offset_leaves_position(void **state)
{
	(void)state;
	struct nb_xfer_res res;
	assert_int_equal(lseek(dst, 123, SEEK_SET), 123);
	off_t at = 200000;
	assert_int_equal(nb_xfer(dst, NB_KIND_FILE, 0, src, 5, 8192, NB_PATH_COPY_FILE_RANGE, 0, &at,
				 &res),
			 8192);
	assert_int_equal(at, 200000); /* the caller's offset is read, not written */
	assert_int_equal(lseek(dst, 0, SEEK_CUR), 123);
	unsigned char back[8192];
	assert_int_equal(pread(dst, back, sizeof back, 200000), (ssize_t)sizeof back);
	assert_memory_equal(back, data + 5, sizeof back);
}

static void huge_count_is_cut_like_write(void **state)
{
	(void)state;
	/* sendfile(2) with count > SSIZE_MAX fails with EINVAL; write(2)
	 * cuts any count to MAX_RW_COUNT, and so does nb_xfer. */
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	int big = 1 << 20;
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
	struct nb_xfer_res res;
	ssize_t r = nb_xfer(sv[0], NB_KIND_UNIX, 0, src, (off_t)sizeof data - 5000, SIZE_MAX,
			    NB_PATH_SENDFILE, 0, NULL, &res);
	assert_int_equal(r, 5000); /* up to the end of the file */
	close(sv[0]);
	close(sv[1]);
}

static void blocking_pipe_epipe_keeps_mask_and_sets_errno(void **state)
{
	(void)state;
	int p[2];
	assert_int_equal(pipe(p), 0);
	close(p[0]);
	struct sigaction ign = { .sa_handler = SIG_IGN }, old;
	sigaction(SIGPIPE, &ign, &old);
	sigset_t mask, before, after;
	sigemptyset(&mask);
	sigaddset(&mask, SIGUSR1);
	pthread_sigmask(SIG_SETMASK, &mask, &before);
	struct nb_xfer_res res;
	errno = 0;
	assert_int_equal(nb_xfer(p[1], NB_KIND_PIPE, 0, src, 0, 100000, NB_PATH_SPLICE, 0, NULL,
				 &res),
			 -1);
	assert_int_equal(errno, EPIPE);
	pthread_sigmask(SIG_SETMASK, &before, &after);
	assert_true(sigismember(&after, SIGUSR1));
	assert_false(sigismember(&after, SIGUSR2));
	assert_false(sigismember(&after, SIGPIPE));
	sigaction(SIGPIPE, &old, NULL);
	close(p[1]);
}

static void blocking_pipe_moves_more_than_it_holds(void **state)
{
	(void)state;
	int p[2];
	assert_int_equal(pipe(p), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(p[1]);
		static unsigned char got[sizeof data];
		size_t n = 0;
		ssize_t r;
		while ((r = read(p[0], got + n, sizeof got - n)) > 0)
			n += (size_t)r;
		_exit(n == sizeof data - 100 && memcmp(got, data + 100, n) == 0 ? 0 : 1);
	}
	close(p[0]);
	struct nb_xfer_res res;
	assert_int_equal(nb_xfer(p[1], NB_KIND_PIPE, 0, src, 100, sizeof data - 100,
				 NB_PATH_SPLICE, 0, NULL, &res),
			 (ssize_t)(sizeof data - 100));
	assert_true(res.calls > 1); /* 256K through a 64K pipe */
	close(p[1]);
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void nonblocking_pipe_not_now_when_counts_would_differ(void **state)
{
	(void)state;
	int p[2];
	assert_int_equal(pipe2(p, O_NONBLOCK), 0);
	struct nb_xfer_res res;
	/* 65436 by splice against 65536 by write: not served, nothing moved */
	assert_int_equal(nb_xfer(p[1], NB_KIND_PIPE, NB_FL_NONBLOCK, src, 100, 100000,
				 NB_PATH_SPLICE, 0, NULL, &res),
			 NB_XFER_FALLBACK);
	assert_int_equal(res.why, NB_XFER_NOT_NOW);
	int q = -1;
	assert_int_equal(ioctl(p[1], FIONREAD, &q), 0);
	assert_int_equal(q, 0);
	/* aligned: both fill the pipe with 65536 */
	assert_int_equal(nb_xfer(p[1], NB_KIND_PIPE, NB_FL_NONBLOCK, src, 4096, 100000,
				 NB_PATH_SPLICE, 0, NULL, &res),
			 65536);
	/* full: EAGAIN would need every slot to be known free - not now */
	assert_int_equal(nb_xfer(p[1], NB_KIND_PIPE, NB_FL_NONBLOCK, src, 0, 8192,
				 NB_PATH_SPLICE, 0, NULL, &res),
			 NB_XFER_FALLBACK);
	assert_int_equal(res.why, NB_XFER_NOT_NOW);
	close(p[0]);
	close(p[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(plan_stream_sockets_take_one_sendfile),
		cmocka_unit_test(plan_socket_refuses_pwrite_offset),
		cmocka_unit_test(plan_socket_send_flags),
		cmocka_unit_test(plan_socket_only_by_sendfile),
		cmocka_unit_test(plan_pipes_blocking_and_not),
		cmocka_unit_test(plan_blocking_pipe_refuses_atomic_sizes),
		cmocka_unit_test(plan_pipe_refuses_offset_and_send_flags),
		cmocka_unit_test(plan_files),
		cmocka_unit_test(plan_refuses_append_and_direct),
		cmocka_unit_test(plan_refuses_empty_writes_and_no_path),
		cmocka_unit_test(plan_refuses_other_kinds),
		cmocka_unit_test(unsupported_errors_are_the_paths_own),
		cmocka_unit_test(step_counts),
		cmocka_unit_test(step_end_of_file),
		cmocka_unit_test(step_full_pipe_waits_two_ways),
		cmocka_unit_test(step_errors),
		cmocka_unit_test(same_count_when_whole_pages_fit),
		cmocka_unit_test(same_count_refuses_misaligned_sources),
		cmocka_unit_test(same_count_refuses_a_partial_last_page),
		cmocka_unit_test(same_count_when_both_fill_an_empty_pipe),
		cmocka_unit_test(same_count_with_bytes_queued),
		cmocka_unit_test(same_count_keeps_pipe_buf_atomicity),
		cmocka_unit_test(same_count_odd_inputs),
		cmocka_unit_test(socket_step_goes_on_only_after_a_full_step),
		cmocka_unit_test(socket_step_errors_after_progress_return_the_count),
		cmocka_unit_test(socket_mask_none_for_one_small_call),
		cmocka_unit_test(socket_mask_pipe_for_several_calls_or_nosignal),
		cmocka_unit_test(socket_mask_all_for_nonblocking_with_plain_handlers),
		cmocka_unit_test(sigpipe_takeback),
		cmocka_unit_test(fsize_clamp),
		cmocka_unit_test(names),
		cmocka_unit_test_setup_teardown(fallback_moves_nothing_and_keeps_errno, files_setup,
						files_teardown),
		cmocka_unit_test_setup_teardown(success_keeps_errno_and_positions, files_setup,
						files_teardown),
		cmocka_unit_test_setup_teardown(pwrite_offset_leaves_position, files_setup,
						files_teardown),
		cmocka_unit_test_setup_teardown(huge_count_is_cut_like_write, files_setup,
						files_teardown),
		cmocka_unit_test_setup_teardown(blocking_pipe_epipe_keeps_mask_and_sets_errno,
						files_setup, files_teardown),
		cmocka_unit_test_setup_teardown(blocking_pipe_moves_more_than_it_holds, files_setup,
						files_teardown),
		cmocka_unit_test_setup_teardown(nonblocking_pipe_not_now_when_counts_would_differ,
						files_setup, files_teardown),
	};
	return cmocka_run_group_tests_name("xfer", tests, NULL, NULL);
}
