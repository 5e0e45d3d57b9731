/*
 * xfer.h - one program-level write served from a file by a kernel path.
 *
 * Owns: the API of xfer.c, which moves `len` bytes that sit in a regular
 * file at a known offset to a destination descriptor with sendfile(2),
 * splice(2) or copy_file_range(2), so that the program sees exactly what
 * write(2) / send(2) / pwrite(2) of those bytes would have given it: the
 * same count or -1 with the same errno, the same destination offset, the
 * same signals (SIGPIPE, SIGXFSZ, EINTR and SA_RESTART behaviour).
 * Must not: allocate, call a hooked function, change errno unless it
 * returns -1, leave the signal mask changed, move the source's position.
 *
 * The pure decisions (nb_xfer_plan, nb_xfer_pipe_step, ...) are exported
 * for the unit tests; nb_xfer() is the only entry point callers need.
 */
#ifndef NOBOUNCE_XFER_H
#define NOBOUNCE_XFER_H

#include "internal.h"

#include <stdbool.h>
#include <sys/resource.h>
#include <sys/types.h>

/* nb_xfer() returned without trying or before any byte moved: the caller
 * makes the plain call. Not a value any write(2) returns. */
#define NB_XFER_FALLBACK (-2)

/* write(2) moves at most MAX_RW_COUNT = INT_MAX & PAGE_MASK bytes per
 * call ("Linux ... will transfer at most 0x7ffff000 bytes"); so do
 * sendfile, splice and copy_file_range (rw_verify_area()). A longer len
 * is clamped to it, and the count returned is what write returns. */
#define NB_XFER_MAX ((size_t)0x7ffff000)

/* Why nb_xfer() returned NB_XFER_FALLBACK. In every case nothing moved,
 * no signal was raised by the library, errno is unchanged. */
enum nb_xfer_why {
	NB_XFER_OK = 0,       /* the return value is the plain call's result */
	NB_XFER_REFUSED,      /* not tried: these arguments cannot be served
				 exactly (O_APPEND, MSG_* flags, pwrite on a
				 stream, a tiny pipe write, ...) */
	NB_XFER_UNSUPPORTED,  /* the kernel refused the path before any byte
				 moved (res.err: EINVAL, EXDEV, ENOSYS, ...);
				 permanent for the pair */
	NB_XFER_NOT_NOW,      /* not tried this time: a non-blocking pipe's
				 free slots would make the count differ */
	NB_XFER_NO_BYTES,     /* the file holds no byte at src_off any more */
	NB_XFER_WHY_COUNT
};

/* How a destination is served; decided from the arguments alone. */
enum nb_xfer_how {
	NB_XFER_HOW_NONE = 0,
	NB_XFER_SOCKET,   /* stream socket: one sendfile call */
	NB_XFER_PIPE,     /* blocking pipe: splice in steps, signal-exact */
	NB_XFER_PIPE_NB,  /* non-blocking pipe: one splice when it fits */
	NB_XFER_CFR,      /* regular file: copy_file_range, sendfile on EXDEV */
	NB_XFER_FILE_SF,  /* regular file, sendfile only (path not allowed) */
};

struct nb_xfer_res {
	uint8_t why;     /* enum nb_xfer_why */
	uint8_t how;     /* enum nb_xfer_how planned */
	uint8_t path;    /* enum nb_path that moved the bytes */
	int err;         /* kernel errno behind NB_XFER_UNSUPPORTED, else 0 */
	unsigned calls;  /* system calls made (transfers, waits, probes) */
};

/*
 * Moves len bytes, equal to the file src's bytes at src_off, to dst, as
 * one write of them would. dst_kind / dst_flags_nb (NB_FL_*) are the
 * destination's cached classification; path is the pair's nb_path_for();
 * msg_flags are send()/sendto() flags (0 for write, pwrite, writev);
 * dst_off is NULL for write/send (dst's file position is used and
 * advanced) or the pwrite offset (the position is left alone). src must
 * be open for reading; its file position is never used or moved.
 * sendto() with an address must not come here (UNIX stream sockets
 * answer EISCONN, which only the plain call gives).
 *
 * Returns the count moved (what write returns), -1 with errno (what
 * write fails with), or NB_XFER_FALLBACK with res->why saying why
 * nothing moved. res must not be NULL.
 */
ssize_t nb_xfer(int dst, enum nb_kind dst_kind, unsigned dst_flags_nb, int src, off_t src_off,
		size_t len, enum nb_path path, int msg_flags, const off_t *dst_off,
		struct nb_xfer_res *res);

/* Writes to a stream socket longer than this go out in sendfile calls of
 * at most n bytes (0: one call). Loopback TCP moves far more per second
 * in 16-32 KiB calls than in 64 KiB ones (make bench); the signal and
 * SIGPIPE rules of one write(2) are kept across the calls (xfer.c). */
/* n for every socket when fixed; else n over loopback and NB_SEND_CHUNK_WIDE
 * over a real link (NB_FL_WIDE). */
void nb_xfer_set_send_chunk(size_t n, bool fixed);
#define NB_SEND_CHUNK_WIDE ((size_t)64 * 1024)

/* The same as nb_xfer, but the len bytes are the next ones in the pipe
 * src (the library's own; what the call does not move stays in it).
 * Stream sockets and regular files only; anything else is refused. */
ssize_t nb_xfer_from_pipe(int dst, enum nb_kind dst_kind, unsigned dst_flags_nb, int src,
			  size_t len, int msg_flags, const off_t *dst_off, struct nb_xfer_res *res);

/* Keep RLIMIT_FSIZE between writes (the library: its hooks report every
 * change through nb_xfer_limits_changed) instead of reading it each time. */
void nb_xfer_keep_limits(bool on);
void nb_xfer_limits_changed(void);

const char *nb_xfer_why_name(enum nb_xfer_why w);
const char *nb_xfer_how_name(enum nb_xfer_how h);

/* ---- pure decisions, unit-tested ---- */

/* How (if at all) this write can be served exactly; NB_XFER_HOW_NONE
 * with *why = NB_XFER_REFUSED otherwise. */
enum nb_xfer_how nb_xfer_plan(enum nb_kind dst_kind, unsigned dst_flags_nb, enum nb_path path,
			      int msg_flags, bool explicit_off, size_t len, enum nb_xfer_why *why);

/* A kernel error before any byte moved that means "this path cannot
 * serve this destination" (the plain call may well succeed), as opposed
 * to the destination's own error that the plain call would return too. */
bool nb_xfer_unsupported(int err);

/* What one non-blocking splice step into a blocking pipe leads to. */
enum nb_xfer_step {
	NB_STEP_DONE,         /* all len bytes moved */
	NB_STEP_MORE,         /* some moved, pipe has room: splice again */
	NB_STEP_WAIT_FRESH,   /* pipe full, nothing moved yet: the plain write
				 would wait here with restart semantics */
	NB_STEP_WAIT_MOVED,   /* pipe full after progress: a signal now ends
				 the write with the count */
	NB_STEP_RETURN_MOVED, /* error or end of file after progress */
	NB_STEP_ERROR,        /* -1 with this errno, as the plain write */
	NB_STEP_UNSUPPORTED,  /* fall back: the path is unusable */
	NB_STEP_NO_BYTES,     /* fall back: the file has no bytes there */
};
enum nb_xfer_step nb_xfer_pipe_step(size_t moved, size_t len, ssize_t r, int err);

/* Does splicing len file bytes starting at src_off into a non-blocking
 * pipe that holds `queued` bytes, with `slots` slots of `page` bytes,
 * move exactly what write(2) of the same bytes would, and leave the
 * slots as write would? Pipes count capacity in slots: write fills whole
 * pages (and merges into a partly filled last one), splice puts one
 * page-cache fragment in each slot and such a slot takes no merge. */
/* One sendfile step of a stream-socket write that is cut into calls of
 * at most `step` bytes (NOBOUNCE_SEND_CHUNK): go on only after a step
 * that moved all it was asked. DONE, MORE, RETURN_MOVED, ERROR,
 * UNSUPPORTED or NO_BYTES. */
enum nb_xfer_step nb_xfer_socket_step(size_t moved, size_t want, size_t len, ssize_t r, int err);

/* Which signals a socket transfer must block while it runs. */
enum nb_xfer_mask {
	NB_MASK_NONE, /* the calls raise and report exactly what write would */
	NB_MASK_PIPE, /* SIGPIPE, taken back when write would not raise it */
	NB_MASK_ALL,  /* every catchable signal (non-blocking socket) */
};
enum nb_xfer_mask nb_xfer_socket_mask(off_t src_off, size_t len, size_t step, size_t page,
				      bool nonblock, int msg_flags, bool pipe_ignored,
				      bool plain_handlers);

bool nb_xfer_pipe_same_count(off_t src_off, size_t len, size_t queued, size_t slots,
			     size_t page);

/* After a socket transfer made with SIGPIPE blocked: must a SIGPIPE
 * that is pending now be taken back, because the plain call would not
 * have raised it? (It raises SIGPIPE only with -1 EPIPE, and not with
 * MSG_NOSIGNAL; sendfile may raise it in a later internal chunk while
 * returning a count.) */
bool nb_xfer_sigpipe_takeback(ssize_t r, int err, size_t len, int msg_flags,
			      bool pending_before);

/* sendfile into a regular file: the count write(2) would be cut to by
 * RLIMIT_FSIZE at position pos. At or past the limit the count stays
 * len: the kernel then raises SIGXFSZ and fails with EFBIG, as write. */
size_t nb_xfer_fsize_clamp(off_t pos, size_t len, rlim_t limit);

#endif
