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

static inline void seen_read(int fd, const void *buf, ssize_t r)
{
	if (r >= NB_TRACK_MIN && nb_on())
		NB_KEEP_ERRNO(nb_detect_read(fd, buf, (size_t)r));
}

static inline void seen_readv(int fd, const struct iovec *iov, int cnt, ssize_t r)
{
	if (r >= NB_TRACK_MIN && nb_on())
		NB_KEEP_ERRNO(nb_detect_readv(fd, iov, cnt, (size_t)r));
}

static inline void seen_write(int fd, const void *buf, ssize_t r)
{
	if (r > 0 && nb_on())
		NB_KEEP_ERRNO(nb_detect_write(fd, buf, (size_t)r));
}

static inline void seen_writev(int fd, const struct iovec *iov, int cnt, ssize_t r)
{
	if (r > 0 && nb_on())
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
/* Memory a read is about to fill: no touch of the pair that made it. */
#define EXPOSE_READ(buf, n)                                            \
	do {                                                           \
		if (NB_UNLIKELY(nb_phantom_any()))                     \
			nb_defer_expose_for_read((buf), (n));          \
	} while (0)
#define EXPOSE_MSG(msg) nb_defer_expose_msg(msg)

/* read/pread of an armed file source, served as a phantom. */
#define TRY_DEFER(fd, buf, n, off, positional)                                     \
	do {                                                                       \
		if (zero_copy()) {                                                 \
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

/* ---- sources ---- */

NB_EXPORT ssize_t read(int fd, void *buf, size_t n)
{
	NB_OWN_BADF(fd, -1);
	TRY_DEFER(fd, buf, n, 0, false);
	ssize_t r = NB_CALL(read, syscall(SYS_read, fd, buf, n), fd, buf, n);
	seen_read(fd, buf, r);
	return r;
}

NB_EXPORT ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen)
{
	NB_OWN_BADF(fd, -1);
	/* The real one keeps the fortify check (n > buflen aborts). */
	EXPOSE_READ(buf, n < buflen ? n : buflen);
	ssize_t r = NB_CALL(__read_chk, NB_NOSYS, fd, buf, n, buflen);
	seen_read(fd, buf, r);
	return r;
}

NB_EXPORT ssize_t pread(int fd, void *buf, size_t n, off_t off)
{
	NB_OWN_BADF(fd, -1);
	TRY_DEFER(fd, buf, n, off, true);
	ssize_t r = NB_CALL(pread, syscall(SYS_pread64, fd, buf, n, off), fd, buf, n, off);
	seen_read(fd, buf, r);
	return r;
}
ssize_t pread64(int fd, void *buf, size_t n, off64_t off) NB_ALIAS(pread);

NB_EXPORT ssize_t __pread_chk(int fd, void *buf, size_t n, off_t off, size_t buflen)
{
	NB_OWN_BADF(fd, -1);
	EXPOSE_READ(buf, n < buflen ? n : buflen);
	ssize_t r = NB_CALL(__pread_chk, NB_NOSYS, fd, buf, n, off, buflen);
	seen_read(fd, buf, r);
	return r;
}

NB_EXPORT ssize_t __pread64_chk(int fd, void *buf, size_t n, off64_t off, size_t buflen)
{
	NB_OWN_BADF(fd, -1);
	EXPOSE_READ(buf, n < buflen ? n : buflen);
	ssize_t r = NB_CALL(__pread64_chk, NB_NOSYS, fd, buf, n, off, buflen);
	seen_read(fd, buf, r);
	return r;
}

/* readv/preadv with a single iovec is a read: it may become a phantom. */
#define TRY_DEFER_IOV(fd, iov, cnt, off, positional)                               \
	do {                                                                       \
		struct iovec one_;                                                 \
		if ((cnt) == 1 && zero_copy() &&                                   \
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
	seen_readv(fd, iov, cnt, r);
	return r;
}

NB_EXPORT ssize_t preadv(int fd, const struct iovec *iov, int cnt, off_t off)
{
	NB_OWN_BADF(fd, -1);
	TRY_DEFER_IOV(fd, iov, cnt, off, true);
	ssize_t r = NB_CALL(preadv, NB_NOSYS, fd, iov, cnt, off);
	seen_readv(fd, iov, cnt, r);
	return r;
}
ssize_t preadv64(int fd, const struct iovec *iov, int cnt, off64_t off) NB_ALIAS(preadv);

NB_EXPORT ssize_t preadv2(int fd, const struct iovec *iov, int cnt, off_t off, int flags)
{
	NB_OWN_BADF(fd, -1);
	EXPOSE_IOV(iov, cnt);
	ssize_t r = NB_CALL(preadv2, NB_NOSYS, fd, iov, cnt, off, flags);
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
	if (consumes(flags))
		seen_read(fd, buf, r);
	return r;
}

NB_EXPORT ssize_t __recv_chk(int fd, void *buf, size_t n, size_t buflen, int flags)
{
	NB_OWN_BADF(fd, -1);
	EXPOSE_READ(buf, n);
	ssize_t r = NB_CALL(__recv_chk, NB_NOSYS, fd, buf, n, buflen, flags);
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
	if (consumes(flags))
		seen_read(fd, buf, r);
	return r;
}

NB_EXPORT ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
	NB_OWN_BADF(fd, -1);
	EXPOSE_MSG(msg);
	ssize_t r = NB_CALL(recvmsg, NB_NOSYS, fd, msg, flags);
	if (r >= NB_TRACK_MIN && consumes(flags) && nb_on())
		NB_KEEP_ERRNO(nb_detect_readv(fd, msg->msg_iov, (int)msg->msg_iovlen, (size_t)r));
	return r;
}

/* ---- sinks ---- */

NB_EXPORT ssize_t write(int fd, const void *buf, size_t n)
{
	NB_OWN_BADF(fd, -1);
	nb_defer_before_write(fd, -1, n);
	ssize_t r = nb_forward(fd, buf, n, NB_FWD_WRITE, 0, 0);
	if (r == NB_NOT_FORWARDED)
		r = NB_CALL(write, syscall(SYS_write, fd, buf, n), fd, buf, n);
	seen_write(fd, buf, r);
	return r;
}

NB_EXPORT ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
	NB_OWN_BADF(fd, -1);
	nb_defer_before_write(fd, off, n);
	ssize_t r = nb_forward(fd, buf, n, NB_FWD_PWRITE, 0, off);
	if (r == NB_NOT_FORWARDED)
		r = NB_CALL(pwrite, syscall(SYS_pwrite64, fd, buf, n, off), fd, buf, n, off);
	seen_write(fd, buf, r);
	return r;
}
ssize_t pwrite64(int fd, const void *buf, size_t n, off64_t off) NB_ALIAS(pwrite);

NB_EXPORT ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
	NB_OWN_BADF(fd, -1);
	nb_defer_before_write(fd, -1, SIZE_MAX);
	ssize_t r = nb_forward_iov(fd, iov, cnt, NB_FWD_WRITE, 0, 0);
	if (r == NB_NOT_FORWARDED)
		r = NB_CALL(writev, syscall(SYS_writev, fd, iov, cnt), fd, iov, cnt);
	seen_writev(fd, iov, cnt, r);
	return r;
}

NB_EXPORT ssize_t pwritev(int fd, const struct iovec *iov, int cnt, off_t off)
{
	NB_OWN_BADF(fd, -1);
	nb_defer_before_write(fd, off, SIZE_MAX);
	ssize_t r = nb_forward_iov(fd, iov, cnt, NB_FWD_PWRITE, 0, off);
	if (r == NB_NOT_FORWARDED)
		r = NB_CALL(pwritev, NB_NOSYS, fd, iov, cnt, off);
	seen_writev(fd, iov, cnt, r);
	return r;
}
ssize_t pwritev64(int fd, const struct iovec *iov, int cnt, off64_t off) NB_ALIAS(pwritev);

NB_EXPORT ssize_t pwritev2(int fd, const struct iovec *iov, int cnt, off_t off, int flags)
{
	NB_OWN_BADF(fd, -1);
	nb_defer_before_write(fd, off, SIZE_MAX);
	/* RWF_* flags and offset -1 (the file position) have no kernel-path
	 * form here: plain. */
	ssize_t r = NB_NOT_FORWARDED;
	if (flags == 0 && off >= 0)
		r = nb_forward_iov(fd, iov, cnt, NB_FWD_PWRITE, 0, off);
	else
		EXPOSE_IOV(iov, cnt);
	if (r == NB_NOT_FORWARDED)
		r = NB_CALL(pwritev2, NB_NOSYS, fd, iov, cnt, off, flags);
	seen_writev(fd, iov, cnt, r);
	return r;
}
ssize_t pwritev64v2(int fd, const struct iovec *iov, int cnt, off64_t off, int flags)
	NB_ALIAS(pwritev2);

NB_EXPORT ssize_t send(int fd, const void *buf, size_t n, int flags)
{
	NB_OWN_BADF(fd, -1);
	ssize_t r = nb_forward(fd, buf, n, NB_FWD_SEND, flags, 0);
	if (r == NB_NOT_FORWARDED)
		r = NB_CALL(send, NB_NOSYS, fd, buf, n, flags);
	seen_write(fd, buf, r);
	return r;
}

NB_EXPORT ssize_t sendto(int fd, const void *buf, size_t n, int flags,
			 const struct sockaddr *addr, socklen_t alen)
{
	NB_OWN_BADF(fd, -1);
	/* Connected (no address): the same as send. */
	ssize_t r = NB_NOT_FORWARDED;
	if (addr == NULL)
		r = nb_forward(fd, buf, n, NB_FWD_SEND, flags, 0);
	else
		EXPOSE(buf, n);
	if (r == NB_NOT_FORWARDED)
		r = NB_CALL(sendto, NB_NOSYS, fd, buf, n, flags, addr, alen);
	seen_write(fd, buf, r);
	return r;
}

NB_EXPORT ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
	NB_OWN_BADF(fd, -1);
	ssize_t r = NB_NOT_FORWARDED;
	struct msghdr m;
	/* Connected, no ancillary data: a send of the iovecs. */
	if ((NB_UNLIKELY(nb_phantom_any()) || NB_UNLIKELY(nb_mapping_any())) && msg != NULL &&
	    nb_copy_in(&m, msg, sizeof m) &&
	    m.msg_name == NULL && m.msg_controllen == 0 && m.msg_iovlen <= INT_MAX)
		r = nb_forward_iov(fd, m.msg_iov, (int)m.msg_iovlen, NB_FWD_SEND, flags, 0);
	else
		EXPOSE_MSG(msg);
	if (r == NB_NOT_FORWARDED)
		r = NB_CALL(sendmsg, NB_NOSYS, fd, msg, flags);
	if (r > 0 && nb_on())
		NB_KEEP_ERRNO(nb_detect_writev(fd, msg->msg_iov, (int)msg->msg_iovlen, (size_t)r));
	return r;
}
