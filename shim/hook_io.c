/*
 * hook_io.c - the data entry points: read, write, and their relatives.
 *
 * Owns: the interposed read/write/pread/pwrite/readv/writev/preadv/pwritev
 * (+64, +2), recv/recvfrom/recvmsg, send/sendto/sendmsg and the fortify
 * variants. Each calls the real function, then reports what moved to the
 * detector. Two mechanisms may serve a call instead: read/pread (and
 * readv/preadv of one iovec) of an armed file source become phantoms
 * (defer.c), and write/send/sendto/pwrite/writev/pwritev/sendmsg of
 * memory holding phantoms or read-only file mappings are moved by the
 * kernel (forward.c). Every other call that hands memory to the kernel first
 * materialises any phantom there (the kernel would answer EFAULT on a
 * guarded page, and a socket read would lose the bytes it consumed).
 * Must not: touch the caller's memory before the real call succeeded
 * (the iovec and msghdr peeks for phantoms copy them fault-free), change
 * a return value or errno, or block.
 */
#include "hook.h"

#include <limits.h>
#include <sys/socket.h>

/* A result worth a record: r >= 0 first, -1 is no count. */
static inline bool worth_tracking(ssize_t r)
{
	return r >= 0 && (size_t)r >= nb_track_min();
}

static inline void seen_read(int fd, const void *buf, ssize_t r)
{
	if (worth_tracking(r) && nb_on())
		NB_KEEP_ERRNO(nb_detect_read(fd, buf, (size_t)r));
}

static inline void seen_readv(int fd, const struct iovec *iov, int cnt, ssize_t r)
{
	if (worth_tracking(r) && nb_on())
		NB_KEEP_ERRNO(nb_detect_readv(fd, iov, cnt, (size_t)r));
}

/* Writes are matched only against this thread's recorded reads: none
 * while nothing was ever tracked (nb_tracked), and then the detector is
 * not called at all (nor errno saved for it). */
static inline void seen_write(int fd, const void *buf, ssize_t r)
{
	if (r > 0 && nb_on() && nb_tracked())
		NB_KEEP_ERRNO(nb_detect_write(fd, buf, (size_t)r));
}

static inline void seen_writev(int fd, const struct iovec *iov, int cnt, ssize_t r)
{
	if (r > 0 && nb_on() && nb_tracked())
		NB_KEEP_ERRNO(nb_detect_writev(fd, iov, cnt, (size_t)r));
}

static inline bool zero_copy(void)
{
	return nb_on() && nb_g.cfg.mode == NB_MODE_ON;
}

/* Memory the kernel will read or fill for a call we do not serve. */
#define EXPOSE(buf, n)                                                 \
	do {                                                           \
		if (NB_UNLIKELY(nb_phantom_any()))                     \
			nb_defer_expose((buf), (n));                   \
	} while (0)
#define EXPOSE_IOV(iov, cnt) nb_defer_expose_iov((iov), (cnt))
/*
 * A phantom made after the look. Every hook opens the phantoms its call's
 * memory overlaps before the real call (EXPOSE*, TRY_DEFER, the
 * forwarders). A signal handler that runs after that look - between it
 * and the real call, or while a blocking call waits, which the kernel
 * then restarts at the system call instruction itself (SA_RESTART,
 * signal(7)) with no hook in between - may leave a phantom of its own
 * copy loop in that very memory, and the kernel answers a guarded page
 * with EFAULT where the plain call succeeds. A read or write that fails
 * with EFAULT on a file, pipe or stream socket moved nothing: once a
 * byte has moved they return a short count instead (filemap_read,
 * pipe_read/pipe_write, tcp_recvmsg and tcp_sendmsg: "copied ? copied :
 * -EFAULT"), and bytes not copied stay where they were; a write copies
 * the program's bytes in before it does anything with them. So when the
 * call's memory holds a phantom it is filled and the call made once more;
 * memory with none gets its EFAULT as plain. Left as they are (README
 * Known limits): a phantom over only the tail of the memory (a short
 * count, where plain moves it all); a read of any other descriptor -
 * eventfd, timerfd, signalfd, tty, datagram socket - which takes its
 * count, signal, line or datagram away before the copy fails: made again
 * it would wait for the next one (AGAIN_IF_READ_REFILLED), so it keeps
 * its EFAULT; and the short paths of read() and write() taken while
 * nothing is live (below), which stay tail calls - a check after them
 * costs every small read and write of every program 13 instructions
 * (callgrind, dd bs=1: 20 -> 33).
 */
#define AGAIN_IF_REFILLED(r, refill, call)                                  \
	do {                                                                \
		if (NB_UNLIKELY((r) < 0) && errno == EFAULT && (refill))    \
			(r) = (call);                                       \
	} while (0)
/* A read is made again only where the kernel took nothing away before
 * its EFAULT (defer.c nb_read_efault_took_nothing): an eventfd, timerfd,
 * signalfd, tty or datagram read made again would wait for the next
 * count, signal, line or datagram - forever, if none comes. */
#define AGAIN_IF_READ_REFILLED(r, fd, flags, refill, call)                     \
	AGAIN_IF_REFILLED(r, nb_read_efault_took_nothing((fd), (flags)) && (refill), call)

/* Memory a read is about to fill: no touch of the pair that made it. */
#define EXPOSE_READ(buf, n)                                            \
	do {                                                           \
		if (NB_UNLIKELY(nb_phantom_any()))                     \
			nb_defer_expose_for_read((buf), (n));          \
	} while (0)
#define EXPOSE_MSG(msg) nb_defer_expose_msg(msg)

/* read/pread of an armed file source, served as a phantom. Below
 * NB_DEFER_MIN_BYTES nb_defer_read refuses before anything else
 * (internal.h): not called. */
#define TRY_DEFER(fd, buf, n, off, positional)                                     \
	do {                                                                       \
		if ((n) >= NB_DEFER_MIN_BYTES && zero_copy()) {                    \
			ssize_t d_ = nb_defer_read((fd), (buf), (n), (off), (positional)); \
			if (d_ != NB_NOT_DEFERRED) {                               \
				if (d_ > 0)                                        \
					NB_KEEP_ERRNO(nb_detect_read_deferred((fd), (buf), (size_t)d_)); \
				return d_;                                         \
			}                                                          \
		}                                                                  \
		EXPOSE_READ((buf), (n));                                           \
	} while (0)

/* MSG_PEEK leaves the bytes queued and MSG_TRUNC may report bytes that
 * were never stored: neither read is one the program can forward. */
static inline bool consumes(int flags)
{
	return (flags & (MSG_PEEK | MSG_TRUNC)) == 0;
}

/* The error a served write took from the socket and kept for this call
 * (fdtab.c "Socket errors a served write took away"): the call fails
 * with it as the kernel's would have, nothing sent, no SIGPIPE. */
#define LOST_ERR(fd)                                                          \
	do {                                                                  \
		int e_;                                                       \
		if (NB_UNLIKELY(atomic_load_explicit(&nb_lost_errs,            \
						      memory_order_relaxed)) &&        \
		    (e_ = nb_fd_take_lost_err(fd)) != 0) {                    \
			errno = e_;                                           \
			return -1;                                            \
		}                                                             \
	} while (0)

/* ---- the settled loop (settle.c) ----
 *
 * A loop the detector judged and that cannot be served is counted here,
 * inline: its read and its write are recognised by descriptor, buffer,
 * size and which of the two is due, and by the epoch (no event since it
 * settled that could change the judgement: settle.c lists them, and why
 * each check of the full path is unneeded). What the full path looks at
 * on every call and the epoch does not cover is looked at here too:
 * phantoms (EXPOSE_READ, EXPOSE, may_forward), file mappings
 * (may_forward), bytes in flight (BEFORE_WRITE), kept socket errors
 * (LOST_ERR). nb_real.read/write are resolved: the loop settled after
 * calls through them. Any other result - a short or failed call, ends
 * changed in between (detect.c samples them the same way), a signal
 * handler that left the loop during the call - goes to the detector as
 * the full path would have sent it. */

static ssize_t read_full(int fd, void *buf, size_t n);
static ssize_t write_full(int fd, const void *buf, size_t n);

static __attribute__((noinline)) ssize_t settled_read_other(int fd, void *buf, size_t n, ssize_t r)
{
	AGAIN_IF_READ_REFILLED(r, fd, 0, nb_defer_refill(buf, n), nb_real.read(fd, buf, n));
	NB_KEEP_ERRNO(nb_detect_unsettle());
	seen_read(fd, buf, r);
	return r;
}

static __attribute__((noinline)) ssize_t settled_write_other(int fd, const void *buf, size_t n,
								 ssize_t r)
{
	AGAIN_IF_REFILLED(r, nb_defer_refill(buf, n), nb_real.write(fd, buf, n));
	NB_KEEP_ERRNO(nb_detect_unsettle());
	seen_write(fd, buf, r);
	return r;
}

/* Reached by a tail call once fd is the loop's, so that read() and
 * write() keep no frame of their own on their other paths. */
static __attribute__((noinline)) ssize_t settled_read(int fd, void *buf, size_t n)
{
	if (!nb_settle_current(buf, n))
		return read_full(fd, buf, n);
	ssize_t r = nb_real.read(fd, buf, n);
	if (NB_LIKELY(nb_settle_read_done(fd, buf, n, r)))
		return r;
	return settled_read_other(fd, buf, n, r);
}

static __attribute__((noinline)) ssize_t settled_write(int fd, const void *buf, size_t n)
{
	if (!nb_settle_write_due(fd, buf, n))
		return write_full(fd, buf, n);
	ssize_t w = nb_real.write(fd, buf, n);
	if (NB_LIKELY(nb_settle_write_done(fd, buf, n, w)))
		return w;
	return settled_write_other(fd, buf, n, w);
}

/* ---- sources ---- */

static __attribute__((noinline)) ssize_t read_full(int fd, void *buf, size_t n)
{
	NB_OWN_BADF(fd, -1);
	TRY_DEFER(fd, buf, n, 0, false);
	ssize_t r = NB_CALL(read, syscall(SYS_read, fd, buf, n), fd, buf, n);
	AGAIN_IF_READ_REFILLED(r, fd, 0, nb_defer_refill(buf, n),
			  NB_CALL(read, syscall(SYS_read, fd, buf, n), fd, buf, n));
	seen_read(fd, buf, r);
	return r;
}

/* A read from NB_TRACK_MIN to below nb_track_min() - in mode on, below
 * NOBOUNCE_MIN_CHUNK while the process has recorded no read (init.c
 * track_min) - with no phantom anywhere. read_full would do nothing
 * before the real call: no pair is armed before a read was recorded, so
 * nothing defers, and with no phantom nothing is exposed; and nothing
 * after it but the detector, which would not record it (a bounce below
 * the minimum never counts towards arming). What is left is the retry
 * of "A phantom made after the look": a signal handler on this thread
 * may defer into this buffer while the read waits, and the kernel's
 * restart of the read then fails with EFAULT (tests/integration/70-*). */
static __attribute__((noinline, cold)) ssize_t read_light_failed(int fd, void *buf, size_t n,
								    ssize_t r)
{
	AGAIN_IF_READ_REFILLED(r, fd, 0, nb_defer_refill(buf, n), nb_real.read(fd, buf, n));
	return r;
}

static __attribute__((noinline)) ssize_t read_light(int fd, void *buf, size_t n)
{
	/* Kept in the frame, not in callee-saved registers: the call that
	 * succeeds then costs three stores instead of five pushes and five
	 * pops (callgrind). */
	volatile int vfd = fd;
	void *volatile vbuf = buf;
	volatile size_t vn = n;
	ssize_t r = nb_real.read(fd, buf, n);
	if (NB_UNLIKELY(r < 0))
		return read_light_failed(vfd, vbuf, vn, r);
	return r;
}

/* The hot path (issue 15): a read below nb_track_min() of one of the
 * program's descriptors, with no phantom anywhere, is read_light; below
 * NB_TRACK_MIN it is the real call and nothing else - read_full would not
 * defer it (n < NB_DEFER_MIN_BYTES), expose nothing and show the
 * detector nothing - without the retry: a tail call, no frame of ours
 * (README Known limits: a restarted read below 512 bytes keeps its
 * EFAULT). */
NB_EXPORT ssize_t read(int fd, void *buf, size_t n)
{
	if (NB_LIKELY(n < nb_track_min()) && NB_LIKELY(!nb_own_maybe(fd)) &&
	    NB_LIKELY(!nb_phantom_any()) && NB_LIKELY(nb_real.read != NULL)) {
		if (n < NB_TRACK_MIN)
			return nb_real.read(fd, buf, n);
		/* No settled loop either: n >= NB_TRACK_MIN here means
		 * nothing was recorded yet. */
		return read_light(fd, buf, n);
	}
	if (fd == nb_settle_tls.rfd)
		return settled_read(fd, buf, n);
	return read_full(fd, buf, n);
}

NB_EXPORT ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen)
{
	NB_OWN_BADF(fd, -1);
	/* The real one keeps the fortify check (n > buflen aborts). */
	EXPOSE_READ(buf, n < buflen ? n : buflen);
	ssize_t r = NB_CALL(__read_chk, NB_NOSYS, fd, buf, n, buflen);
	AGAIN_IF_READ_REFILLED(r, fd, 0, nb_defer_refill(buf, n),
			  NB_CALL(__read_chk, NB_NOSYS, fd, buf, n, buflen));
	seen_read(fd, buf, r);
	return r;
}

NB_EXPORT ssize_t pread(int fd, void *buf, size_t n, off_t off)
{
	NB_OWN_BADF(fd, -1);
	TRY_DEFER(fd, buf, n, off, true);
	ssize_t r = NB_CALL(pread, syscall(SYS_pread64, fd, buf, n, off), fd, buf, n, off);
	AGAIN_IF_READ_REFILLED(r, fd, 0, nb_defer_refill(buf, n),
			  NB_CALL(pread, syscall(SYS_pread64, fd, buf, n, off), fd, buf, n, off));
	if (n < nb_track_min()) /* as in read */
		return r;
	seen_read(fd, buf, r);
	return r;
}
ssize_t pread64(int fd, void *buf, size_t n, off64_t off) NB_ALIAS(pread);

NB_EXPORT ssize_t __pread_chk(int fd, void *buf, size_t n, off_t off, size_t buflen)
{
	NB_OWN_BADF(fd, -1);
	EXPOSE_READ(buf, n < buflen ? n : buflen);
	ssize_t r = NB_CALL(__pread_chk, NB_NOSYS, fd, buf, n, off, buflen);
	AGAIN_IF_READ_REFILLED(r, fd, 0, nb_defer_refill(buf, n),
			  NB_CALL(__pread_chk, NB_NOSYS, fd, buf, n, off, buflen));
	seen_read(fd, buf, r);
	return r;
}

NB_EXPORT ssize_t __pread64_chk(int fd, void *buf, size_t n, off64_t off, size_t buflen)
{
	NB_OWN_BADF(fd, -1);
	EXPOSE_READ(buf, n < buflen ? n : buflen);
	ssize_t r = NB_CALL(__pread64_chk, NB_NOSYS, fd, buf, n, off, buflen);
	AGAIN_IF_READ_REFILLED(r, fd, 0, nb_defer_refill(buf, n),
			  NB_CALL(__pread64_chk, NB_NOSYS, fd, buf, n, off, buflen));
	seen_read(fd, buf, r);
	return r;
}

/* readv/preadv with a single iovec is a read: it may become a phantom.
 * Only from an armed source (nb_defer_read's own first test, on the same
 * unlocked look): elsewhere the iovec is not copied in (two system
 * calls). */
static inline bool armed_source(int fd)
{
	struct nb_fd *e = nb_fd_peek(fd);
	return e != NULL && e->pair.state == NB_PAIR_ARMED;
}

#define TRY_DEFER_IOV(fd, iov, cnt, off, positional)                               \
	do {                                                                       \
		struct iovec one_;                                                 \
		if ((cnt) == 1 && zero_copy() && armed_source(fd) &&               \
		    nb_copy_in(&one_, (iov), sizeof one_)) {                       \
			ssize_t d_ = nb_defer_read((fd), one_.iov_base, one_.iov_len, \
						   (off), (positional));           \
			if (d_ != NB_NOT_DEFERRED) {                               \
				if (d_ > 0)                                        \
					NB_KEEP_ERRNO(nb_detect_read_deferred(     \
						(fd), one_.iov_base, (size_t)d_)); \
				return d_;                                         \
			}                                                          \
		}                                                                  \
		EXPOSE_IOV((iov), (cnt));                                          \
	} while (0)

NB_EXPORT ssize_t readv(int fd, const struct iovec *iov, int cnt)
{
	NB_OWN_BADF(fd, -1);
	TRY_DEFER_IOV(fd, iov, cnt, 0, false);
	ssize_t r = NB_CALL(readv, syscall(SYS_readv, fd, iov, cnt), fd, iov, cnt);
	AGAIN_IF_READ_REFILLED(r, fd, 0, nb_defer_refill_iov(iov, cnt),
			  NB_CALL(readv, syscall(SYS_readv, fd, iov, cnt), fd, iov, cnt));
	seen_readv(fd, iov, cnt, r);
	return r;
}

NB_EXPORT ssize_t preadv(int fd, const struct iovec *iov, int cnt, off_t off)
{
	NB_OWN_BADF(fd, -1);
	TRY_DEFER_IOV(fd, iov, cnt, off, true);
	ssize_t r = NB_CALL(preadv, NB_NOSYS, fd, iov, cnt, off);
	AGAIN_IF_READ_REFILLED(r, fd, 0, nb_defer_refill_iov(iov, cnt),
			  NB_CALL(preadv, NB_NOSYS, fd, iov, cnt, off));
	seen_readv(fd, iov, cnt, r);
	return r;
}
ssize_t preadv64(int fd, const struct iovec *iov, int cnt, off64_t off) NB_ALIAS(preadv);

NB_EXPORT ssize_t preadv2(int fd, const struct iovec *iov, int cnt, off_t off, int flags)
{
	NB_OWN_BADF(fd, -1);
	EXPOSE_IOV(iov, cnt);
	ssize_t r = NB_CALL(preadv2, NB_NOSYS, fd, iov, cnt, off, flags);
	AGAIN_IF_READ_REFILLED(r, fd, 0, nb_defer_refill_iov(iov, cnt),
			  NB_CALL(preadv2, NB_NOSYS, fd, iov, cnt, off, flags));
	seen_readv(fd, iov, cnt, r);
	return r;
}
ssize_t preadv64v2(int fd, const struct iovec *iov, int cnt, off64_t off, int flags)
	NB_ALIAS(preadv2);

NB_EXPORT ssize_t recv(int fd, void *buf, size_t n, int flags)
{
	NB_OWN_BADF(fd, -1);
	if (flags == 0)
		TRY_DEFER(fd, buf, n, 0, false); /* recv(fd, buf, n, 0) is read */
	else
		EXPOSE_READ(buf, n);
	ssize_t r = NB_CALL(recv, NB_NOSYS, fd, buf, n, flags);
	AGAIN_IF_READ_REFILLED(r, fd, flags, nb_defer_refill(buf, n),
			  NB_CALL(recv, NB_NOSYS, fd, buf, n, flags));
	if (consumes(flags))
		seen_read(fd, buf, r);
	return r;
}

NB_EXPORT ssize_t __recv_chk(int fd, void *buf, size_t n, size_t buflen, int flags)
{
	NB_OWN_BADF(fd, -1);
	EXPOSE_READ(buf, n);
	ssize_t r = NB_CALL(__recv_chk, NB_NOSYS, fd, buf, n, buflen, flags);
	AGAIN_IF_READ_REFILLED(r, fd, flags, nb_defer_refill(buf, n),
			  NB_CALL(__recv_chk, NB_NOSYS, fd, buf, n, buflen, flags));
	if (consumes(flags))
		seen_read(fd, buf, r);
	return r;
}

NB_EXPORT ssize_t recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *addr,
			   socklen_t *alen)
{
	NB_OWN_BADF(fd, -1);
	if (flags == 0 && addr == NULL)
		TRY_DEFER(fd, buf, n, 0, false);
	else
		EXPOSE_READ(buf, n);
	ssize_t r = NB_CALL(recvfrom, NB_NOSYS, fd, buf, n, flags, addr, alen);
	AGAIN_IF_READ_REFILLED(r, fd, flags, nb_defer_refill_from(buf, n, addr, alen),
			  NB_CALL(recvfrom, NB_NOSYS, fd, buf, n, flags, addr, alen));
	if (consumes(flags))
		seen_read(fd, buf, r);
	return r;
}

NB_EXPORT ssize_t __recvfrom_chk(int fd, void *buf, size_t n, size_t buflen, int flags,
				 struct sockaddr *addr, socklen_t *alen)
{
	NB_OWN_BADF(fd, -1);
	EXPOSE_READ(buf, n);
	ssize_t r = NB_CALL(__recvfrom_chk, NB_NOSYS, fd, buf, n, buflen, flags, addr, alen);
	AGAIN_IF_READ_REFILLED(r, fd, flags, nb_defer_refill_from(buf, n, addr, alen),
			  NB_CALL(__recvfrom_chk, NB_NOSYS, fd, buf, n, buflen, flags, addr, alen));
	if (consumes(flags))
		seen_read(fd, buf, r);
	return r;
}

NB_EXPORT ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
	NB_OWN_BADF(fd, -1);
	EXPOSE_MSG(msg);
	ssize_t r = NB_CALL(recvmsg, NB_NOSYS, fd, msg, flags);
	AGAIN_IF_READ_REFILLED(r, fd, flags, nb_defer_refill_msg(msg, true),
			  NB_CALL(recvmsg, NB_NOSYS, fd, msg, flags));
	if (worth_tracking(r) && consumes(flags) && nb_on())
		NB_KEEP_ERRNO(nb_detect_readv(fd, msg->msg_iov, (int)msg->msg_iovlen, (size_t)r));
	return r;
}

/* ---- sinks ---- */

/* Before the program changes bytes of what fd names: phantoms backed by
 * them are filled, readers of bytes in flight waited for. Nothing to do
 * while neither exists (nb_defer_before_write's first test). */
#define BEFORE_WRITE(fd, off, n)                                               \
	do {                                                                   \
		if (NB_UNLIKELY(nb_phantom_any()) || NB_UNLIKELY(nb_flights_maybe())) \
			nb_defer_before_write((fd), (off), (n));               \
	} while (0)

/* Memory that may hold phantoms or file mappings goes to the kernel path
 * (forward.c); with neither live, nb_forward's first test answers "not
 * forwarded" and it is not called. */
static inline bool may_forward(void)
{
	return NB_UNLIKELY(nb_phantom_any()) || NB_UNLIKELY(nb_mapping_any());
}

static __attribute__((noinline)) ssize_t write_full(int fd, const void *buf, size_t n)
{
	NB_OWN_BADF(fd, -1);
	LOST_ERR(fd);
	BEFORE_WRITE(fd, -1, n);
	ssize_t r = may_forward() ? nb_forward(fd, buf, n, NB_FWD_WRITE, 0, 0) : NB_NOT_FORWARDED;
	if (r == NB_NOT_FORWARDED) {
		r = NB_CALL(write, syscall(SYS_write, fd, buf, n), fd, buf, n);
		AGAIN_IF_REFILLED(r, nb_defer_refill(buf, n),
				  NB_CALL(write, syscall(SYS_write, fd, buf, n), fd, buf, n));
	}
	seen_write(fd, buf, r);
	return r;
}

/* As read_light: the real write, and the EFAULT retry of "A phantom made
 * after the look" - a write blocked on a full pipe or socket whose buffer
 * a signal handler of this thread defers into is restarted by the kernel
 * and fails with EFAULT (tests/integration/77-*). */
static __attribute__((noinline, cold)) ssize_t write_light_failed(const void *buf, size_t n,
								     int fd, ssize_t r)
{
	AGAIN_IF_REFILLED(r, nb_defer_refill(buf, n), nb_real.write(fd, buf, n));
	return r;
}

static __attribute__((noinline)) ssize_t write_light(int fd, const void *buf, size_t n)
{
	volatile int vfd = fd; /* in the frame: see read_light */
	const void *volatile vbuf = buf;
	volatile size_t vn = n;
	ssize_t r = nb_real.write(fd, buf, n);
	if (NB_UNLIKELY(r < 0))
		return write_light_failed(vbuf, vn, vfd, r);
	return r;
}

/* The hot path (issue 15): with no phantom, no file mapping and no bytes
 * in flight anywhere, and no read ever recorded for the detector, a
 * write of one of the program's descriptors is the real call and the
 * EFAULT retry (write_light): write_full would change nothing before it
 * (BEFORE_WRITE, may_forward) and match nothing after it (this thread's
 * ring is empty, nb_tracked). Below NB_TRACK_MIN it is the real call
 * alone, a tail call (README Known limits: such a write restarted after
 * a handler deferred into its buffer keeps its EFAULT). The flag is
 * looked at before the call rather than after: a record could appear
 * during it only from a signal handler's read on this thread, which this
 * write's bytes did not come from. */
NB_EXPORT ssize_t write(int fd, const void *buf, size_t n)
{
	if (fd == nb_settle_tls.wfd)
		return settled_write(fd, buf, n);
	if (NB_LIKELY(!nb_own_maybe(fd)) && NB_LIKELY(!nb_phantom_any()) &&
	    NB_LIKELY(!nb_mapping_any()) && NB_LIKELY(!nb_flights_maybe()) &&
	    NB_LIKELY(!nb_tracked()) &&
	    NB_LIKELY(!atomic_load_explicit(&nb_lost_errs, memory_order_relaxed)) &&
	    NB_LIKELY(nb_real.write != NULL)) {
		if (n < NB_TRACK_MIN)
			return nb_real.write(fd, buf, n);
		return write_light(fd, buf, n);
	}
	return write_full(fd, buf, n);
}

NB_EXPORT ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
	NB_OWN_BADF(fd, -1);
	BEFORE_WRITE(fd, off, n);
	ssize_t r = may_forward() ? nb_forward(fd, buf, n, NB_FWD_PWRITE, 0, off) : NB_NOT_FORWARDED;
	if (r == NB_NOT_FORWARDED) {
		r = NB_CALL(pwrite, syscall(SYS_pwrite64, fd, buf, n, off), fd, buf, n, off);
		AGAIN_IF_REFILLED(r, nb_defer_refill(buf, n),
				  NB_CALL(pwrite, syscall(SYS_pwrite64, fd, buf, n, off), fd, buf,
					  n, off));
	}
	seen_write(fd, buf, r);
	return r;
}
ssize_t pwrite64(int fd, const void *buf, size_t n, off64_t off) NB_ALIAS(pwrite);

NB_EXPORT ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
	NB_OWN_BADF(fd, -1);
	LOST_ERR(fd);
	BEFORE_WRITE(fd, -1, SIZE_MAX);
	ssize_t r = may_forward() ? nb_forward_iov(fd, iov, cnt, NB_FWD_WRITE, 0, 0)
				  : NB_NOT_FORWARDED;
	if (r == NB_NOT_FORWARDED) {
		r = NB_CALL(writev, syscall(SYS_writev, fd, iov, cnt), fd, iov, cnt);
		AGAIN_IF_REFILLED(r, nb_defer_refill_iov(iov, cnt),
				  NB_CALL(writev, syscall(SYS_writev, fd, iov, cnt), fd, iov, cnt));
	}
	seen_writev(fd, iov, cnt, r);
	return r;
}

NB_EXPORT ssize_t pwritev(int fd, const struct iovec *iov, int cnt, off_t off)
{
	NB_OWN_BADF(fd, -1);
	BEFORE_WRITE(fd, off, SIZE_MAX);
	ssize_t r = may_forward() ? nb_forward_iov(fd, iov, cnt, NB_FWD_PWRITE, 0, off)
				  : NB_NOT_FORWARDED;
	if (r == NB_NOT_FORWARDED) {
		r = NB_CALL(pwritev, NB_NOSYS, fd, iov, cnt, off);
		AGAIN_IF_REFILLED(r, nb_defer_refill_iov(iov, cnt),
				  NB_CALL(pwritev, NB_NOSYS, fd, iov, cnt, off));
	}
	seen_writev(fd, iov, cnt, r);
	return r;
}
ssize_t pwritev64(int fd, const struct iovec *iov, int cnt, off64_t off) NB_ALIAS(pwritev);

NB_EXPORT ssize_t pwritev2(int fd, const struct iovec *iov, int cnt, off_t off, int flags)
{
	NB_OWN_BADF(fd, -1);
	BEFORE_WRITE(fd, off, SIZE_MAX);
	/* RWF_* flags and offset -1 (the file position) have no kernel-path
	 * form here: plain. */
	ssize_t r = NB_NOT_FORWARDED;
	if (flags == 0 && off >= 0)
		r = nb_forward_iov(fd, iov, cnt, NB_FWD_PWRITE, 0, off);
	else
		EXPOSE_IOV(iov, cnt);
	if (r == NB_NOT_FORWARDED) {
		r = NB_CALL(pwritev2, NB_NOSYS, fd, iov, cnt, off, flags);
		AGAIN_IF_REFILLED(r, nb_defer_refill_iov(iov, cnt),
				  NB_CALL(pwritev2, NB_NOSYS, fd, iov, cnt, off, flags));
	}
	seen_writev(fd, iov, cnt, r);
	return r;
}
ssize_t pwritev64v2(int fd, const struct iovec *iov, int cnt, off64_t off, int flags)
	NB_ALIAS(pwritev2);

NB_EXPORT ssize_t send(int fd, const void *buf, size_t n, int flags)
{
	NB_OWN_BADF(fd, -1);
	LOST_ERR(fd);
	ssize_t r = may_forward() ? nb_forward(fd, buf, n, NB_FWD_SEND, flags, 0) : NB_NOT_FORWARDED;
	if (r == NB_NOT_FORWARDED) {
		r = NB_CALL(send, NB_NOSYS, fd, buf, n, flags);
		AGAIN_IF_REFILLED(r, nb_defer_refill(buf, n),
				  NB_CALL(send, NB_NOSYS, fd, buf, n, flags));
	}
	seen_write(fd, buf, r);
	return r;
}

NB_EXPORT ssize_t sendto(int fd, const void *buf, size_t n, int flags,
			 const struct sockaddr *addr, socklen_t alen)
{
	NB_OWN_BADF(fd, -1);
	LOST_ERR(fd);
	/* Connected (no address): the same as send. */
	ssize_t r = NB_NOT_FORWARDED;
	if (addr == NULL)
		r = nb_forward(fd, buf, n, NB_FWD_SEND, flags, 0);
	else
		EXPOSE(buf, n);
	if (r == NB_NOT_FORWARDED) {
		r = NB_CALL(sendto, NB_NOSYS, fd, buf, n, flags, addr, alen);
		AGAIN_IF_REFILLED(r, nb_defer_refill(buf, n),
				  NB_CALL(sendto, NB_NOSYS, fd, buf, n, flags, addr, alen));
	}
	seen_write(fd, buf, r);
	return r;
}

NB_EXPORT ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
	NB_OWN_BADF(fd, -1);
	LOST_ERR(fd);
	ssize_t r = NB_NOT_FORWARDED;
	struct msghdr m;
	/* Connected, no ancillary data: a send of the iovecs. */
	if ((NB_UNLIKELY(nb_phantom_any()) || NB_UNLIKELY(nb_mapping_any())) && msg != NULL &&
	    nb_copy_in(&m, msg, sizeof m) &&
	    m.msg_name == NULL && m.msg_controllen == 0 && m.msg_iovlen <= INT_MAX)
		r = nb_forward_iov(fd, m.msg_iov, (int)m.msg_iovlen, NB_FWD_SEND, flags, 0);
	else
		EXPOSE_MSG(msg);
	if (r == NB_NOT_FORWARDED) {
		r = NB_CALL(sendmsg, NB_NOSYS, fd, msg, flags);
		AGAIN_IF_REFILLED(r, nb_defer_refill_msg(msg, false),
				  NB_CALL(sendmsg, NB_NOSYS, fd, msg, flags));
	}
	if (r > 0 && nb_on() && nb_tracked())
		NB_KEEP_ERRNO(nb_detect_writev(fd, msg->msg_iov, (int)msg->msg_iovlen, (size_t)r));
	return r;
}
