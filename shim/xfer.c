/*
 * xfer.c - one program-level write served from a file by a kernel path.
 *
 * Owns: moving len bytes that sit in a regular file at src_off to a
 * destination with sendfile(2), splice(2) or copy_file_range(2) so that
 * the program sees what write(2), send(2) or pwrite(2) of the same bytes
 * would have given it: count or errno, destination offset, SIGPIPE,
 * SIGXFSZ, EINTR, SA_RESTART. Where the kernel path cannot promise that,
 * it moves nothing and says why (NB_XFER_FALLBACK, res->why), and the
 * caller makes the plain call.
 * Must not: allocate (it runs inside write hooks, possibly in a signal
 * handler), call a hooked function (every kernel call below is a raw
 * syscall()), change errno unless it returns -1, leave the thread's
 * signal mask changed, or use or move the source's file position.
 *
 * Measured on Linux 6.18 (tests/prog/xferlog.c, tests/integration/60-xfer.sh)
 * and read in fs/splice.c, fs/read_write.c, net/ipv4/tcp.c, fs/pipe.c:
 *
 *  Stream sockets. A blocking write(2) returns n unless a signal, an
 *  error or SO_SNDTIMEO stops it while it waits for memory; sendfile
 *  (do_splice_direct -> splice_direct_to_actor -> splice_to_socket) loops
 *  over 64 KiB internal chunks itself and returns short in exactly those
 *  cases (plus: it checks signal_pending() at each chunk, see below).
 *  On loopback TCP, calls of 16 KiB move several times more per second
 *  than calls of 64 KiB and more (make bench), so a write is cut into
 *  calls of at most send_chunk bytes (NOBOUNCE_SEND_CHUNK), and the rules
 *  of one write(2) are kept across them: the next call is made only after
 *  one that moved all it was asked (a short one is where write returns);
 *  an error, EINTR or EAGAIN after bytes moved returns the count. One
 *  case needs more: with an SA_RESTART handler, a later call interrupted
 *  before moving anything would be restarted by the kernel where the
 *  plain write returns the count - so when the program has such a handler
 *  (sigview.c), the library waits in poll(POLLOUT) before each later
 *  call, which a handler always interrupts (signal(7)).
 *  SIGPIPE: write raises it only when it fails with EPIPE having copied
 *  nothing (tcp_sendmsg -> sk_stream_error; unix_stream_sendmsg), but
 *  splice_to_socket calls sock_sendmsg once per 16 pipe slots and every
 *  call after the first may meet the peer's reset, raising SIGPIPE while
 *  the write returns a count. Unless one call of at most 16 pages is the
 *  whole write (or SIGPIPE is ignored), SIGPIPE is blocked around the
 *  calls and taken back (sigtimedwait, zero timeout) when the plain call
 *  would not have raised it: a count, or MSG_NOSIGNAL - unless it was
 *  already pending before (nb_xfer_socket_mask).
 *  A non-blocking socket never waits, so there every signal is blocked
 *  around the calls when the program has a handler without SA_RESTART:
 *  splice_to_socket's "signal_pending -> -ERESTARTSYS" check would
 *  otherwise make a non-blocking sendfile fail with EINTR, which a
 *  non-blocking write never does.
 *
 *  Pipes. A blocking write(2) into a pipe blocks until all n bytes are in
 *  (pipe_write); splice of a file into a pipe waits for one free slot,
 *  fills what fits and returns short (splice_file_to_pipe). So a blocking
 *  pipe takes several calls, and the signal rules of pipe_write must be
 *  rebuilt around them: the data moves with every catchable signal
 *  blocked (SPLICE_F_NONBLOCK), and the thread waits only in two places:
 *   - nothing moved yet: in sendfile(pipe, file, &off, 0) with the
 *     program's mask - do_sendfile has no early return for count 0, so it
 *     runs wait_for_space(): it sleeps for a free slot, fails with EPIPE
 *     and raises SIGPIPE without readers, and returns -ERESTARTSYS on a
 *     signal, which the kernel restarts (SA_RESTART) or turns into EINTR
 *     exactly as for the plain write that also had copied nothing. A
 *     handler that runs here or while the mask is being changed runs
 *     while nothing observable has happened: as if before the call.
 *   - after bytes moved: in ppoll(POLLOUT) with the program's mask, which
 *     fails with EINTR whenever a handler ran (poll is never restarted,
 *     signal(7)); the write then returns the count, as pipe_write does
 *     when a signal is pending at its next wait. A signal that arrives
 *     while data moves stays pending (blocked) and is delivered at the
 *     next wait or when the mask is restored at the end: the same moments
 *     at which the plain write would have noticed it.
 *  A program without any signal handler has nothing that could run in
 *  between: there the steps are plain blocking splices (a signal ends the
 *  process, is ignored, or stops and continues it).
 *  A non-blocking write(2) moves what fits, merging into a partly filled
 *  last page and filling whole pages; splice puts one page-cache fragment
 *  per slot, so with a misaligned offset or a partly filled pipe it fits
 *  fewer bytes (measured: 65436 vs 65536 into an empty 64 KiB pipe at
 *  offset 100), and its slots never take a later write's merge. Non-
 *  blocking pipes are served only when the count, and the slots left
 *  behind, must be the same (nb_xfer_pipe_same_count: page-aligned source,
 *  whole pages or an empty pipe overfilled); otherwise NB_XFER_NOT_NOW. Writes
 *  of at most PIPE_BUF bytes are atomic for write(2) and may take two
 *  slots (two calls) for splice: blocking ones are refused.
 *
 *  Regular files. copy_file_range applies write's RLIMIT_FSIZE rule
 *  itself (generic_copy_file_checks -> generic_write_check_limits: cut to
 *  the limit, SIGXFSZ + EFBIG only at or past it) and moves the file
 *  position like write, or honours an explicit offset like pwrite. It
 *  fails with EXDEV across superblocks (two tmpfs mounts too), and then
 *  sendfile serves (write position only: sendfile has no output offset).
 *  sendfile into a file retries after a short write inside the kernel
 *  (iter_file_splice_write), so a write cut by RLIMIT_FSIZE continues at
 *  the limit and raises SIGXFSZ where write(2) returns the short count
 *  (measured) - the count is cut here first. O_APPEND destinations are
 *  refused (copy_file_range: EBADF; sendfile, splice: EINVAL); EINVAL
 *  from copy_file_range falls back to the plain write rather than to
 *  sendfile, because it also means overlapping ranges in one file, which
 *  sendfile would copy chunk by chunk over its own source.
 *
 * What remains different, and cannot be removed at this level (each one
 * is pinned or shown by 60-xfer.sh where it can be reproduced):
 *  - Zero copy: sendfile and splice hand the source's page-cache pages to
 *    the pipe or socket by reference (sendfile(2), NOTES). A reader gets
 *    the file's bytes as of its read: rewritten after the write, the new
 *    bytes; truncated, zeros. write(2) copied them at write time. The
 *    caller must keep files that may change off the kernel path.
 *  - Non-blocking sockets: how much one call takes is socket-buffer
 *    accounting, which differs for spliced pages (TCP 65482 against
 *    32741 with a 4 KiB SO_SNDBUF; UNIX 65536 against 8064: a spliced skb
 *    may overshoot sk_sndbuf by up to 64 KiB). Counts stay exact (the
 *    bytes that moved, EAGAIN only when none did) but are not write's.
 *  - splice_to_socket checks signal_pending() before each internal chunk
 *    even when the socket has room, where tcp_sendmsg checks only while
 *    it waits for memory: a signal during a blocking sendfile can shorten
 *    it (or, before any byte, give EINTR / a restart) where write would
 *    have completed. Each is a result write gives when the socket is
 *    full at that moment. With SO_SNDTIMEO set, that early check returns
 *    ERESTARTSYS where a waiting write returns EINTR (signal(7)).
 *  - A reset noticed between sendfile's internal chunks ends it with the
 *    count so far (write, holding the socket lock, queues the whole
 *    buffer first) and the chunk that fails consumes the socket's
 *    pending error: ECONNRESET would then not be reported by the next
 *    call, which would get EPIPE - and SIGPIPE, where SIGPIPE is at its
 *    default, killing a program that plainly gets ECONNRESET (measured:
 *    write 4157547, ECONNRESET, EPIPE; sendfile 7059631, EPIPE, EPIPE).
 *    The same happens between the library's own calls of a cut write,
 *    and inside one sendfile call: splice_to_socket sends its pipe
 *    buffers in batches, and a batch that meets the reset with nothing
 *    sent in it takes the error while the call returns the short count
 *    of the batches before (strace: 32768, 32768, 8192, then the next
 *    write's first call EPIPE). So to_socket keeps the error it took -
 *    from a later call that failed, or after a short count (SO_ERROR,
 *    TCP_INFO) - for the program's next send (fdtab.c "Socket errors a
 *    served write took away"; tests/integration/61 and 62).
 *  - Blocking pipes: interrupted while the pipe is full, the count is up
 *    to (src_off % page) bytes below write's (the first slot holds a
 *    partial page); a reader's read() sizes follow the slot layout; a
 *    stop signal (SIGSTOP/SIGTSTP) during a wait after progress does not
 *    end the call early as it ends pipe_write (ppoll restarts).
 *  - Files: sendfile and copy_file_range read and store the file position
 *    without f_pos_lock, which write(2) takes for shared descriptions:
 *    threads writing one description at once must not use this path.
 */
#include "xfer.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* The kernel's sigset_t is _NSIG / 8 = 8 bytes; glibc's is 128, with the
 * kernel's bits first, so glibc sets can be handed to the raw calls. */
#define KSIGSET_SIZE (64 / 8)

/* ---- raw system calls: never a hook, never an allocation ---- */

static ssize_t k_sendfile(int out, int in, off_t *off, size_t n)
{
	return syscall(SYS_sendfile, out, in, off, n);
}

static ssize_t k_splice(int in, off_t *off_in, int out, size_t n, unsigned flags)
{
	return syscall(SYS_splice, in, off_in, out, NULL, n, flags);
}

static ssize_t k_copy_file_range(int in, off_t *off_in, int out, off_t *off_out, size_t n)
{
	return syscall(SYS_copy_file_range, in, off_in, out, off_out, n, 0);
}

/* "Every signal" for the library's own sections: never the synchronous
 * ones - a fault while SIGSEGV is blocked kills the process (sigguard.c). */
static void k_fill_async(sigset_t *s)
{
	sigfillset(s); /* glibc keeps its SIGCANCEL/SIGSETXID out */
	sigdelset(s, SIGSEGV);
	sigdelset(s, SIGBUS);
	sigdelset(s, SIGILL);
	sigdelset(s, SIGFPE);
	sigdelset(s, SIGTRAP);
	sigdelset(s, SIGSYS);
}

static void k_sigmask(int how, const sigset_t *set, sigset_t *old)
{
	/* Cannot fail with valid arguments (rt_sigprocmask(2)). */
	(void)syscall(SYS_rt_sigprocmask, how, set, old, KSIGSET_SIZE);
}

static bool k_pending(int sig)
{
	sigset_t p;
	sigemptyset(&p);
	if (syscall(SYS_rt_sigpending, &p, KSIGSET_SIZE) != 0)
		return false;
	return sigismember(&p, sig) == 1;
}

/* ---- pure decisions ---- */

static bool is_stream(enum nb_kind k)
{
	return k == NB_KIND_TCP || k == NB_KIND_UNIX;
}

enum nb_xfer_how nb_xfer_plan(enum nb_kind dst_kind, unsigned dst_flags_nb, enum nb_path path,
			      int msg_flags, bool explicit_off, size_t len, enum nb_xfer_why *why)
{
	*why = NB_XFER_REFUSED;
	/* write(fd, buf, 0) has its own answers (0 on a pipe, the pending
	 * error on a reset socket): the plain call gives them. */
	if (len == 0 || path == NB_PATH_NONE)
		return NB_XFER_HOW_NONE;
	/* O_APPEND: copy_file_range fails with EBADF, sendfile and splice
	 * with EINVAL. O_DIRECT: on a pipe it is packet mode, which splice
	 * does not keep; on a file it wants aligned user buffers. */
	if (dst_flags_nb & (NB_FL_APPEND | NB_FL_DIRECT))
		return NB_XFER_HOW_NONE;
	bool nonblock = (dst_flags_nb & NB_FL_NONBLOCK) != 0;
	enum nb_xfer_how how = NB_XFER_HOW_NONE;

	if (is_stream(dst_kind)) {
		/* pwrite on a socket is ESPIPE; MSG_DONTWAIT cannot be
		 * given to sendfile (the socket's own O_NONBLOCK decides),
		 * MSG_OOB/MSG_EOR/... have no sendfile form. MSG_MORE is a
		 * hint that changes no byte and no count (to_socket). */
		int ok = MSG_NOSIGNAL | MSG_MORE | (nonblock ? MSG_DONTWAIT : 0);
		if (path == NB_PATH_SENDFILE && !explicit_off && (msg_flags & ~ok) == 0)
			how = NB_XFER_SOCKET;
	} else if (dst_kind == NB_KIND_PIPE) {
		/* send() on a pipe is ENOTSOCK, pwrite ESPIPE: plain call.
		 * sendfile into a pipe is splice_file_to_pipe, the same. */
		bool pathok = path == NB_PATH_SPLICE || path == NB_PATH_SENDFILE;
		if (pathok && !explicit_off && msg_flags == 0) {
			if (nonblock)
				how = NB_XFER_PIPE_NB;
			else if (len > PIPE_BUF)
				how = NB_XFER_PIPE;
		}
	} else if (dst_kind == NB_KIND_FILE) {
		if (msg_flags == 0) {
			if (path == NB_PATH_COPY_FILE_RANGE)
				how = NB_XFER_CFR;
			else if (path == NB_PATH_SENDFILE && !explicit_off)
				how = NB_XFER_FILE_SF;
		}
	}
	/* Block devices, character devices, datagram sockets: not here. */
	if (how != NB_XFER_HOW_NONE)
		*why = NB_XFER_OK;
	return how;
}

bool nb_xfer_unsupported(int err)
{
	switch (err) {
	case EINVAL:     /* no splice_read/splice_write, O_APPEND, overlap */
	case EXDEV:      /* copy_file_range across superblocks */
	case ENOSYS:     /* no such system call */
	case EOPNOTSUPP: /* file system refuses (copy_file_range since 5.19) */
	case ESPIPE:     /* offset on something unseekable */
	case EOVERFLOW:  /* sendfile: source position + count past s_maxbytes */
	case EBADF:      /* copy_file_range: O_APPEND set behind our back */
	case EIO:        /* reading the source failed: the caller materialises */
	case ENOMEM:     /* the kernel's internal pipe */
		return true;
	default:
		return false;
	}
}

enum nb_xfer_step nb_xfer_pipe_step(size_t moved, size_t len, ssize_t r, int err)
{
	if (r > 0)
		return moved + (size_t)r >= len ? NB_STEP_DONE : NB_STEP_MORE;
	if (r == 0) /* end of file: the bytes are not (all) there any more */
		return moved ? NB_STEP_RETURN_MOVED : NB_STEP_NO_BYTES;
	if (err == EAGAIN)
		return moved ? NB_STEP_WAIT_MOVED : NB_STEP_WAIT_FRESH;
	if (moved)
		return NB_STEP_RETURN_MOVED;
	return nb_xfer_unsupported(err) ? NB_STEP_UNSUPPORTED : NB_STEP_ERROR;
}

enum nb_xfer_step nb_xfer_socket_step(size_t moved, size_t want, size_t len, ssize_t r, int err)
{
	if (r > 0) {
		if (moved + (size_t)r >= len)
			return NB_STEP_DONE;
		/* Short: the socket is full (non-blocking), or a signal, a
		 * timeout or an error stopped the call - write returns here. */
		return (size_t)r < want ? NB_STEP_RETURN_MOVED : NB_STEP_MORE;
	}
	if (moved)
		return NB_STEP_RETURN_MOVED; /* the error is the next call's */
	if (r == 0)
		return NB_STEP_NO_BYTES;
	return nb_xfer_unsupported(err) ? NB_STEP_UNSUPPORTED : NB_STEP_ERROR;
}

enum nb_xfer_mask nb_xfer_socket_mask(off_t src_off, size_t len, size_t step, size_t page,
				      bool nonblock, int msg_flags, bool pipe_ignored,
				      bool plain_handlers)
{
	/* A non-blocking sendfile checks signal_pending() before each
	 * internal chunk: a pending signal whose handler has no SA_RESTART
	 * would turn it into EINTR, which a non-blocking write never gives. */
	if (nonblock && plain_handlers)
		return NB_MASK_ALL;
	if (pipe_ignored)
		return NB_MASK_NONE; /* a SIGPIPE raised is discarded at once */
	if (msg_flags & MSG_NOSIGNAL)
		return NB_MASK_PIPE; /* sendfile cannot be told not to raise it */
	/* One sendfile of at most 16 pages is one sock_sendmsg (the internal
	 * pipe of do_splice_direct has 16 slots, splice_to_socket sends up
	 * to 16 of them at once), which raises SIGPIPE only when it fails
	 * having moved nothing: exactly when write(2) raises it. More calls,
	 * or more internal chunks, may raise it after bytes moved. */
	size_t first = step && len > step ? step : len;
	if (first < len || page == 0)
		return NB_MASK_PIPE;
	size_t span = ((size_t)src_off % page + len + page - 1) / page;
	return span <= 16 ? NB_MASK_NONE : NB_MASK_PIPE;
}

bool nb_xfer_pipe_same_count(off_t src_off, size_t len, size_t queued, size_t slots,
			     size_t page)
{
	if (page == 0 || slots == 0 || src_off < 0)
		return false;
	/* A misaligned offset puts a partial page in the first slot: the
	 * pipe holds fewer bytes than write would have put there. */
	if ((size_t)src_off % page != 0)
		return false;
	size_t need = len / page + (len % page != 0); /* slots splice fills */
	/* Every used slot holds at least one byte: at most `queued` of them
	 * are taken. When splice's slots are free for certain, everything
	 * goes in - and write, which needs no more slots, moves it all too.
	 * The slots must also end up as write leaves them: a partial last
	 * page is a buffer later writes merge into (pipe_write), while a
	 * spliced page-cache buffer never takes a merge, so a later write
	 * by the program would fit a different count (measured: 4096 bytes
	 * against 1328). So only whole pages. */
	size_t used_max = queued < slots ? queued : slots;
	if (need <= slots - used_max)
		return len % page == 0;
	/* More than an empty pipe holds: both fill every slot with a whole
	 * page and stop at slots * page bytes (write merges nothing into an
	 * empty pipe). */
	return queued == 0;
}

bool nb_xfer_sigpipe_takeback(ssize_t r, int err, size_t len, int msg_flags,
			      bool pending_before)
{
	/* Already pending: ours merged into it (one standard signal is
	 * queued at most once); it is not ours to take. */
	if (pending_before)
		return false;
	if (r >= 0)
		return (size_t)r < len; /* a count: write raised nothing */
	return err == EPIPE && (msg_flags & MSG_NOSIGNAL);
}

size_t nb_xfer_fsize_clamp(off_t pos, size_t len, rlim_t limit)
{
	if (limit == RLIM_INFINITY || pos < 0 || (rlim_t)pos >= limit)
		return len;
	rlim_t room = limit - (rlim_t)pos;
	return room < len ? (size_t)room : len;
}

const char *nb_xfer_why_name(enum nb_xfer_why w)
{
	static const char *const n[] = { "ok", "refused", "unsupported", "not_now", "no_bytes" };
	return (unsigned)w < NB_XFER_WHY_COUNT ? n[w] : "?";
}

const char *nb_xfer_how_name(enum nb_xfer_how h)
{
	static const char *const n[] = { "none", "socket", "pipe", "pipe_nonblock",
					 "copy_file_range", "file_sendfile" };
	return (unsigned)h < sizeof n / sizeof n[0] ? n[h] : "?";
}

/* ---- the transfers ---- */

/* NOBOUNCE_SEND_CHUNK: the largest single sendfile into a stream socket.
 * Set once at start-up (init.c), before any transfer. */
static size_t send_chunk = 32 * 1024;
static bool send_chunk_fixed;

void nb_xfer_set_send_chunk(size_t n, bool fixed)
{
	send_chunk = n;
	send_chunk_fixed = fixed;
}

/* Loopback keeps the configured size; a connection over a real link
 * (fdtab.c: its segment size) takes larger calls, unless the size was
 * given. 0 (unit tests, xferlog): one call per write. */
static size_t chunk_for(unsigned dst_flags_nb)
{
	if (send_chunk_fixed || send_chunk == 0 || !(dst_flags_nb & NB_FL_WIDE))
		return send_chunk;
	return send_chunk > NB_SEND_CHUNK_WIDE ? send_chunk : NB_SEND_CHUNK_WIDE;
}

static ssize_t fall_back(struct nb_xfer_res *res, enum nb_xfer_why why, int err)
{
	res->why = (uint8_t)why;
	res->err = why == NB_XFER_UNSUPPORTED ? err : 0;
	return NB_XFER_FALLBACK;
}

/* The result of a single kernel call that is the whole write. */
static ssize_t one_call(ssize_t r, int err, struct nb_xfer_res *res)
{
	if (r > 0)
		return r;
	if (r == 0)
		return fall_back(res, NB_XFER_NO_BYTES, 0);
	if (nb_xfer_unsupported(err))
		return fall_back(res, NB_XFER_UNSUPPORTED, err);
	errno = err;
	return -1;
}

/* Waits until the socket takes bytes again, with the program's mask; false
 * if a handler ran meanwhile (poll is never restarted after a handler,
 * signal(7)): the write then ends with the count, as write(2) would. */
static bool wait_writable(int dst, struct nb_xfer_res *res)
{
	struct pollfd p = { .fd = dst, .events = POLLOUT };
	long r = syscall(SYS_ppoll, &p, 1, NULL, NULL, KSIGSET_SIZE);
	res->calls++;
	return r >= 0;
}

/* Errors a send reports from the socket's pending error (sk_err), which
 * reporting clears: what a peer or the network did to the connection.
 * EPIPE, EAGAIN, EINTR and the rest say nothing was pending. */
static bool taken_from_socket(int err)
{
	switch (err) {
	case ECONNRESET:
	case ECONNABORTED:
	case ECONNREFUSED:
	case ETIMEDOUT:
	case EHOSTUNREACH:
	case ENETUNREACH:
	case ENETDOWN:
	case EHOSTDOWN:
	case EPROTO:
		return true;
	default:
		return false;
	}
}

/* A call that came back short may have met a reset in a later batch
 * (fdtab.c): then the connection is closed and the error is gone. Still
 * pending (SO_ERROR takes it: kept alike), or closed - ECONNRESET, what
 * tcp_reset leaves on an established connection. EPIPE (a reset after
 * the peer's FIN) is not kept: the closed connection's next send gives it
 * with SIGPIPE, as plainly. sigpipe_raised: a SIGPIPE came up during the
 * write (the library had it masked), so the batch took EPIPE. With
 * SIGPIPE ignored nothing tells the two apart: ECONNRESET (README Known
 * limits). 0: the connection is alive. */
static int reset_behind(int dst, bool sigpipe_raised)
{
	int saved = errno, err = 0;
	socklen_t l = sizeof err;
	if (getsockopt(dst, SOL_SOCKET, SO_ERROR, &err, &l) != 0)
		err = 0;
	/* EPIPE: a reset after the peer's FIN (tcp_reset in CLOSE_WAIT). The
	 * connection is closed now, so the next send fails with EPIPE and
	 * raises SIGPIPE by itself (sk_stream_wait_connect), as plainly:
	 * nothing to keep. */
	if (err == EPIPE) {
		errno = saved;
		return 0;
	}
	/* Closed, and the batch that met the reset raised SIGPIPE (masked
	 * here): the error it took was EPIPE (sk_stream_error), not
	 * ECONNRESET - the same as above. */
	if (err == 0 && !sigpipe_raised) {
		struct tcp_info ti;
		l = sizeof ti;
		memset(&ti, 0, sizeof ti);
		if (getsockopt(dst, IPPROTO_TCP, TCP_INFO, &ti, &l) == 0 &&
		    ti.tcpi_state == TCP_CLOSE)
			err = ECONNRESET;
	}
	errno = saved;
	return err;
}

static ssize_t to_socket(int dst, bool tcp, bool nonblock, int src, off_t src_off, size_t len,
			 int msg_flags, size_t step, struct nb_xfer_res *res)
{
	/* A pipe's slots may hold less than a page each: the 16-slot rule
	 * of one sock_sendmsg says nothing then (page 0: mask SIGPIPE). */
	size_t page = src_off < 0 ? 0 : (size_t)getpagesize();
	enum nb_xfer_mask m = nb_xfer_socket_mask(src_off < 0 ? 0 : src_off, len, step, page,
						  nonblock, msg_flags,
						  nb_sigview_pipe_ignored(),
						  nb_sigview_plain_handlers());
	sigset_t block, old;
	bool before = false;
	if (m != NB_MASK_NONE) {
		if (m == NB_MASK_ALL) {
			k_fill_async(&block);
		} else {
			sigemptyset(&block);
			sigaddset(&block, SIGPIPE);
		}
		k_sigmask(SIG_BLOCK, &block, &old);
		/* A SIGPIPE can be pending only if the program blocks it. */
		before = sigismember(&old, SIGPIPE) == 1 && k_pending(SIGPIPE);
	}
	bool poll_first = !nonblock && nb_sigview_restart_handlers();
	/* MSG_MORE (send(2): "the caller has more data to send") changes
	 * when TCP pushes a segment, never which bytes arrive or what the
	 * call returns. splice carries it (splice_to_socket turns
	 * SPLICE_F_MORE into MSG_MORE); sendfile cannot - its last internal
	 * chunk pushes (splice_direct_to_actor clears SPLICE_F_MORE), so a
	 * corked tail goes out a little earlier than the plain send would
	 * have sent it: the same bytes, in the same order. haproxy's HTTP
	 * mode sends every body chunk but the last with it. */
	unsigned more = (msg_flags & MSG_MORE) ? SPLICE_F_MORE : 0;

	off_t off = src_off;
	size_t moved = 0;
	ssize_t r;
	int err;
	enum nb_xfer_step st;
	do {
		size_t want = step && len - moved > step ? step : len - moved;
		if (moved > 0 && poll_first && !wait_writable(dst, res)) {
			st = NB_STEP_RETURN_MOVED;
			r = 0;
			err = 0;
			break;
		}
		/* src_off < 0: src is a pipe whose bytes go in order. */
		r = src_off < 0 ? k_splice(src, NULL, dst, want, more) : k_sendfile(dst, src, &off, want);
		err = r < 0 ? errno : 0;
		res->calls++;
		st = nb_xfer_socket_step(moved, want, len, r, err);
		if (r > 0)
			moved += (size_t)r;
	} while (st == NB_STEP_MORE);

	ssize_t ret = st == NB_STEP_ERROR ? -1 : (ssize_t)moved;
	/* A write that ends early after moving bytes may have taken the
	 * socket's pending error (see the top): kept for the program's next
	 * send (fdtab.c "Socket errors a served write took away"). Only TCP
	 * takes it in a send (sk_stream_error): a UNIX stream socket's send
	 * looks at the shutdown alone and leaves sk_err (ECONNRESET when the
	 * peer closed with unread data) to recv and SO_ERROR, so its next
	 * send gets EPIPE and SIGPIPE plainly - and reading SO_ERROR here
	 * would take the error from the program's recv. */
	if (st == NB_STEP_RETURN_MOVED && moved > 0 && tcp) {
		bool raised = m != NB_MASK_NONE && !before && k_pending(SIGPIPE);
		int lost = taken_from_socket(err) ? err : r > 0 ? reset_behind(dst, raised) : 0;
		if (lost != 0)
			nb_fd_note_lost_err(dst, lost);
	}
	if (m != NB_MASK_NONE) {
		if (nb_xfer_sigpipe_takeback(ret, err, len, msg_flags, before) &&
		    k_pending(SIGPIPE)) {
			sigset_t one;
			struct timespec zero = { 0, 0 };
			sigemptyset(&one);
			sigaddset(&one, SIGPIPE);
			(void)syscall(SYS_rt_sigtimedwait, &one, NULL, &zero, KSIGSET_SIZE);
		}
		k_sigmask(SIG_SETMASK, &old, NULL);
	}
	switch (st) {
	case NB_STEP_UNSUPPORTED:
		return fall_back(res, NB_XFER_UNSUPPORTED, err);
	case NB_STEP_NO_BYTES:
		return fall_back(res, NB_XFER_NO_BYTES, 0);
	case NB_STEP_ERROR:
		errno = err;
		return -1;
	default:
		return ret;
	}
}

/* Waits for a free slot in a blocking pipe, nothing moved yet, with the
 * program's mask in force: see the comment at the top. */
static int wait_fresh(int dst, int src, off_t off, const sigset_t *all, const sigset_t *old,
		      struct nb_xfer_res *res)
{
	if (old != NULL)
		k_sigmask(SIG_SETMASK, old, NULL);
	ssize_t w = k_sendfile(dst, src, &off, 0);
	int err = w < 0 ? errno : 0;
	res->calls++;
	if (old != NULL)
		k_sigmask(SIG_BLOCK, all, NULL);
	return err;
}

/* Waits for a free slot after bytes moved; false if a handler ran (or
 * the wait itself failed): the write then returns the count. */
static bool wait_moved(int dst, const sigset_t *old, struct nb_xfer_res *res)
{
	struct pollfd p = { .fd = dst, .events = POLLOUT };
	long r = syscall(SYS_ppoll, &p, 1, NULL, old, KSIGSET_SIZE);
	res->calls++;
	/* POLLERR (no readers) and POLLNVAL return too: the next splice
	 * reports them (EPIPE with SIGPIPE, as pipe_write; EBADF). */
	return r >= 0;
}

static ssize_t to_pipe(int dst, int src, off_t src_off, size_t len, struct nb_xfer_res *res)
{
	/* The mask keeps handlers from running while data moves (see the
	 * top). A program without any handler has nothing that could run:
	 * a signal ends it, is ignored or stops it, as during write(2) - so
	 * there the calls simply block, as a hand-written splice loop does
	 * (no EAGAIN and separate wait per full pipe). */
	bool masked = nb_sigview_plain_handlers() || nb_sigview_restart_handlers();
	unsigned flags = masked ? SPLICE_F_NONBLOCK : 0;
	sigset_t all, old;
	k_fill_async(&all);
	if (masked)
		k_sigmask(SIG_BLOCK, &all, &old);
	const sigset_t *prog = masked ? &old : NULL; /* NULL: the mask in force */

	off_t off = src_off;
	size_t moved = 0;
	ssize_t ret;
	int err = 0;
	bool wait_in_splice = false; /* pipe source: see NB_STEP_WAIT_FRESH */
	for (;;) {
		ssize_t r;
		if (wait_in_splice) {
			/* Nothing moved yet: wait for a slot inside a blocking
			 * splice with the program's mask - pipe_write's wait
			 * (-ERESTARTSYS on a signal, restarted or EINTR). */
			/* The library's pipe ends are O_NONBLOCK, which splice
			 * applies to both sides: blocking for this one call. */
			long fl = syscall(SYS_fcntl, src, F_GETFL);
			(void)syscall(SYS_fcntl, src, F_SETFL, fl & ~(long)O_NONBLOCK);
			if (prog)
				k_sigmask(SIG_SETMASK, prog, NULL);
			r = k_splice(src, NULL, dst, len - moved, 0);
			int keep = errno;
			if (prog)
				k_sigmask(SIG_BLOCK, &all, NULL);
			(void)syscall(SYS_fcntl, src, F_SETFL, fl);
			res->calls += 2;
			errno = keep;
			wait_in_splice = false;
		} else {
			r = k_splice(src, src_off < 0 ? NULL : &off, dst, len - moved, flags);
		}
		int e = r < 0 ? errno : 0;
		res->calls++;
		switch (nb_xfer_pipe_step(moved, len, r, e)) {
		case NB_STEP_DONE:
			ret = (ssize_t)(moved + (size_t)r);
			goto out;
		case NB_STEP_MORE:
			moved += (size_t)r;
			continue;
		case NB_STEP_WAIT_FRESH:
			if (src_off < 0) { /* no sendfile from a pipe: wait in splice */
				wait_in_splice = true;
				continue;
			}
			e = wait_fresh(dst, src, off, &all, prog, res);
			if (e == 0)
				continue;
			if (nb_xfer_unsupported(e)) {
				ret = fall_back(res, NB_XFER_UNSUPPORTED, e);
				goto out;
			}
			ret = -1; /* EINTR, EPIPE (SIGPIPE raised), EAGAIN */
			err = e;
			goto out;
		case NB_STEP_WAIT_MOVED:
			if (wait_moved(dst, prog, res))
				continue;
			ret = (ssize_t)moved;
			goto out;
		case NB_STEP_RETURN_MOVED:
			ret = (ssize_t)moved;
			goto out;
		case NB_STEP_ERROR:
			ret = -1;
			err = e;
			goto out;
		case NB_STEP_UNSUPPORTED:
			ret = fall_back(res, NB_XFER_UNSUPPORTED, e);
			goto out;
		case NB_STEP_NO_BYTES:
		default:
			ret = fall_back(res, NB_XFER_NO_BYTES, 0);
			goto out;
		}
	}
out:
	/* Signals that arrived while data moved are delivered now, after
	 * the transfer: where the plain write would have let them in. A
	 * SIGPIPE from an EPIPE above is among them, as pipe_write's. */
	if (masked)
		k_sigmask(SIG_SETMASK, &old, NULL);
	if (ret == -1)
		errno = err;
	return ret;
}

static ssize_t to_pipe_nonblock(int dst, int src, off_t src_off, size_t len,
				struct nb_xfer_res *res)
{
	int queued = 0;
	long cap;
	if (syscall(SYS_ioctl, dst, FIONREAD, &queued) != 0 ||
	    (cap = syscall(SYS_fcntl, dst, F_GETPIPE_SZ)) <= 0) {
		res->calls += 2;
		return fall_back(res, NB_XFER_NOT_NOW, 0);
	}
	res->calls += 2;
	size_t page = (size_t)getpagesize();
	if (queued < 0 ||
	    !nb_xfer_pipe_same_count(src_off, len, (size_t)queued, (size_t)cap / page, page))
		return fall_back(res, NB_XFER_NOT_NOW, 0);
	/* One call: it never waits for the pipe (SPLICE_F_NONBLOCK), the
	 * file side has no signal check, and with no readers it raises
	 * SIGPIPE and fails with EPIPE as pipe_write does. */
	off_t off = src_off;
	ssize_t r = k_splice(src, &off, dst, len, SPLICE_F_NONBLOCK);
	int err = r < 0 ? errno : 0;
	res->calls++;
	return one_call(r, err, res);
}

/* RLIMIT_FSIZE is read on every write into a file unless the library
 * keeps it (nb_xfer_keep_limits): then it is read once and again after
 * each setrlimit/prlimit the hooks see (hook_fd.c). A limit another
 * process sets on this one with prlimit(2) --pid is then not seen. */
static atomic_bool keep_limits;
static atomic_uint limits_gen = 1, cached_gen;
static _Atomic rlim_t cached_limit;

void nb_xfer_keep_limits(bool on)
{
	atomic_store(&keep_limits, on);
}

void nb_xfer_limits_changed(void)
{
	atomic_fetch_add(&limits_gen, 1);
}

static rlim_t fsize_limit(struct nb_xfer_res *res)
{
	unsigned gen = atomic_load(&limits_gen);
	if (atomic_load_explicit(&keep_limits, memory_order_relaxed) &&
	    atomic_load(&cached_gen) == gen)
		return atomic_load(&cached_limit);
	struct rlimit rl;
	res->calls++;
	if (syscall(SYS_prlimit64, 0, RLIMIT_FSIZE, NULL, &rl) != 0)
		return RLIM_INFINITY;
	atomic_store(&cached_limit, rl.rlim_cur);
	atomic_store(&cached_gen, gen);
	return rl.rlim_cur;
}

/* sendfile into a regular file, at and advancing its position. */
static ssize_t to_file_sendfile(int dst, int src, off_t src_off, size_t len, bool check_same,
				struct nb_xfer_res *res)
{
	if (check_same) {
		/* Same inode: the copy would read bytes it has just written. */
		struct stat a, b;
		res->calls += 2;
		if (fstat(src, &a) != 0 || fstat(dst, &b) != 0)
			return fall_back(res, NB_XFER_UNSUPPORTED, errno);
		if (a.st_dev == b.st_dev && a.st_ino == b.st_ino)
			return fall_back(res, NB_XFER_REFUSED, 0);
	}
	rlim_t limit = fsize_limit(res);
	size_t want = len;
	if (limit != RLIM_INFINITY) {
		off_t pos = (off_t)syscall(SYS_lseek, dst, 0, SEEK_CUR);
		res->calls++;
		if (pos < 0)
			return fall_back(res, NB_XFER_UNSUPPORTED, errno);
		want = nb_xfer_fsize_clamp(pos, len, limit);
	}
	off_t off = src_off;
	ssize_t r = k_sendfile(dst, src, &off, want);
	int err = r < 0 ? errno : 0;
	res->calls++;
	res->path = NB_PATH_SENDFILE;
	return one_call(r, err, res);
}

/* After copy_file_range moved part of the bytes: may it be asked for
 * the rest? Local file systems return short exactly where write(2) is
 * short too (ENOSPC, EFBIG, RLIMIT_FSIZE); asking again costs nothing
 * then, except at the RLIMIT_FSIZE limit, where it would raise SIGXFSZ. */
static bool cfr_may_continue(int dst, const off_t *dst_off, off_t doff,
			     struct nb_xfer_res *res)
{
	rlim_t limit = fsize_limit(res);
	if (limit == RLIM_INFINITY)
		return true;
	off_t pos = doff;
	if (!dst_off) {
		pos = (off_t)syscall(SYS_lseek, dst, 0, SEEK_CUR);
		res->calls++;
		if (pos < 0)
			return false;
	}
	return (rlim_t)pos < limit;
}

static ssize_t to_file_cfr(int dst, int src, off_t src_off, size_t len, const off_t *dst_off,
			   struct nb_xfer_res *res)
{
	off_t soff = src_off, doff = dst_off ? *dst_off : 0;
	size_t moved = 0;
	for (;;) {
		ssize_t r = k_copy_file_range(src, &soff, dst, dst_off ? &doff : NULL, len - moved);
		int err = r < 0 ? errno : 0;
		res->calls++;
		if (r > 0) {
			moved += (size_t)r;
			if (moved >= len || !cfr_may_continue(dst, dst_off, doff, res))
				return (ssize_t)moved;
			continue;
		}
		if (moved)
			return (ssize_t)moved;
		if (r == 0)
			return fall_back(res, NB_XFER_NO_BYTES, 0);
		if ((err == EXDEV || err == EOPNOTSUPP || err == ENOSYS) && !dst_off)
			return to_file_sendfile(dst, src, src_off, len, false, res);
		if (nb_xfer_unsupported(err))
			return fall_back(res, NB_XFER_UNSUPPORTED, err);
		errno = err;
		return -1;
	}
}

ssize_t nb_xfer(int dst, enum nb_kind dst_kind, unsigned dst_flags_nb, int src, off_t src_off,
		size_t len, enum nb_path path, int msg_flags, const off_t *dst_off,
		struct nb_xfer_res *res)
{
	int saved = errno;
	enum nb_xfer_why why;
	*res = (struct nb_xfer_res){ 0 };

	if (len > NB_XFER_MAX)
		len = NB_XFER_MAX;
	enum nb_xfer_how how = nb_xfer_plan(dst_kind, dst_flags_nb, path, msg_flags,
					    dst_off != NULL, len, &why);
	res->how = (uint8_t)how;
	res->path = (uint8_t)path;
	bool nonblock = (dst_flags_nb & NB_FL_NONBLOCK) != 0;
	ssize_t r;

	switch (how) {
	case NB_XFER_SOCKET:
		r = to_socket(dst, dst_kind == NB_KIND_TCP, nonblock, src, src_off, len, msg_flags,
			      chunk_for(dst_flags_nb), res);
		break;
	case NB_XFER_PIPE:
		r = to_pipe(dst, src, src_off, len, res);
		break;
	case NB_XFER_PIPE_NB:
		r = to_pipe_nonblock(dst, src, src_off, len, res);
		break;
	case NB_XFER_CFR:
		r = to_file_cfr(dst, src, src_off, len, dst_off, res);
		break;
	case NB_XFER_FILE_SF:
		r = to_file_sendfile(dst, src, src_off, len, true, res);
		break;
	case NB_XFER_HOW_NONE:
	default:
		r = fall_back(res, why, 0);
		break;
	}
	/* A successful write leaves errno alone; so does a fallback. */
	if (r != -1)
		errno = saved;
	return r;
}

/* splice from a pipe into a regular file, at its position or at *dst_off,
 * cut at RLIMIT_FSIZE as write(2) would be (see to_file_sendfile). */
static ssize_t pipe_to_file(int dst, int src, size_t len, const off_t *dst_off,
			    struct nb_xfer_res *res)
{
	rlim_t limit = fsize_limit(res);
	size_t want = len;
	if (limit != RLIM_INFINITY) {
		off_t pos = dst_off ? *dst_off : (off_t)syscall(SYS_lseek, dst, 0, SEEK_CUR);
		res->calls++;
		if (pos < 0)
			return fall_back(res, NB_XFER_UNSUPPORTED, errno);
		want = nb_xfer_fsize_clamp(pos, len, limit);
	}
	off_t o = dst_off ? *dst_off : 0;
	ssize_t r = syscall(SYS_splice, src, NULL, dst, dst_off ? &o : NULL, want, 0);
	int err = r < 0 ? errno : 0;
	res->calls++;
	res->path = NB_PATH_SPLICE;
	return one_call(r, err, res);
}

ssize_t nb_xfer_from_pipe(int dst, enum nb_kind dst_kind, unsigned dst_flags_nb, int src,
			  size_t len, int msg_flags, const off_t *dst_off, struct nb_xfer_res *res)
{
	int saved = errno;
	*res = (struct nb_xfer_res){ 0 };
	if (len > NB_XFER_MAX)
		len = NB_XFER_MAX;
	res->path = NB_PATH_SPLICE;
	ssize_t r;
	bool nonblock = (dst_flags_nb & NB_FL_NONBLOCK) != 0;
	if (len == 0 || (dst_flags_nb & (NB_FL_APPEND | NB_FL_DIRECT))) {
		r = fall_back(res, NB_XFER_REFUSED, 0);
	} else if (is_stream(dst_kind)) {
		int ok = MSG_NOSIGNAL | MSG_MORE | (nonblock ? MSG_DONTWAIT : 0);
		res->how = NB_XFER_SOCKET;
		r = (dst_off == NULL && (msg_flags & ~ok) == 0)
			    ? to_socket(dst, dst_kind == NB_KIND_TCP, nonblock, src, -1, len, msg_flags,
					 chunk_for(dst_flags_nb), res)
			    : fall_back(res, NB_XFER_REFUSED, 0);
	} else if (dst_kind == NB_KIND_FILE && msg_flags == 0) {
		res->how = NB_XFER_FILE_SF;
		r = pipe_to_file(dst, src, len, dst_off, res);
	} else if (dst_kind == NB_KIND_PIPE && !nonblock && msg_flags == 0 && dst_off == NULL &&
		   len > PIPE_BUF) {
		/* Blocking pipes only: how many bytes a non-blocking one takes
		 * depends on the source's slot layout (see the top). */
		res->how = NB_XFER_PIPE;
		r = to_pipe(dst, src, -1, len, res);
	} else {
		r = fall_back(res, NB_XFER_REFUSED, 0);
	}
	if (r != -1)
		errno = saved;
	return r;
}
