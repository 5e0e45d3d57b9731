/*
 * haz_kread.c - system calls handed memory that is a phantom (hazard
 * class 5), one scenario per run.
 *
 *   haz_kread SCENARIO     one call on the buffer of an armed copy loop
 *   haz_kread hold         a phantom left in place while the process
 *                          sleeps in short nanosleeps (nobounce fill test),
 *                          then a wait for stdin, then one more read
 *   haz_kread block        the same, waiting in a raw read of stdin that
 *                          no library sees, then one nanosleep
 *
 * Every scenario copies src.bin (made here, a position-dependent pattern)
 * to dst.bin with a read/write loop of 64 KiB chunks through one
 * page-aligned heap buffer. Preloaded, the loop arms after a few rounds
 * and each read leaves the buffer's pages guarded until the write. On
 * round ACT, between the read and the write, the scenario hands part of
 * the buffer to one system call: the kernel either reads the bytes the
 * read put there (sendmmsg, vmsplice, aio_write, ...) or stores into them
 * (getrandom, stat, epoll_wait, recvmmsg, pipe, ...). The program prints
 * the call's result, errno and what it can see of the effect; then it
 * puts the chunk's own bytes back (read from src.bin with raw system
 * calls) so that dst.bin is a copy of src.bin in either case.
 * tests/integration/31-kernel-reads.sh runs each scenario plain and
 * preloaded and requires the same stdout, exit status and dst.bin.
 *
 * stderr: "probe guarded=1" when the buffer held a PROT_NONE page just
 * before the call (read with raw system calls from /proc/self/maps):
 * preloaded, that proves the call met a phantom.
 *
 * Exit status: 0, 1 on a setup error, 2 on bad usage.
 */
#include <aio.h>
#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/msg.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/times.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

#define CHUNK (64 * 1024)
#define ROUNDS 8
#define ACT 5
#define PG 4096
/* The call's memory: one page into the buffer, away from its edges. */
#define AT(buf) ((buf) + 2 * PG)

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;
	fflush(stdout);
	fprintf(stderr, "haz_kread: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (errno %s)\n", strerrorname_np(errno) ? strerrorname_np(errno) : "0");
	exit(1);
}

/* "123" or "-1 EFAULT" */
static void result(const char *what, long r, int e)
{
	if (r < 0)
		printf("%s: -1 %s\n", what, errno_name(e));
	else
		printf("%s: %ld\n", what, r);
}

static void pattern(unsigned char *p, off_t at, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint64_t pos = (uint64_t)at + i, w = pos * 0x9e3779b97f4a7c15ull;
		p[i] = (unsigned char)(w >> (8 * (pos & 7) + 3));
	}
}

/* The bytes of src.bin at off, read with a raw call (no hook sees it). */
static void want(unsigned char *out, off_t off, size_t n)
{
	int fd = (int)syscall(SYS_openat, AT_FDCWD, "src.bin", O_RDONLY | O_CLOEXEC);
	if (fd < 0 || syscall(SYS_pread64, fd, out, n, off) != (long)n)
		die("raw pread");
	syscall(SYS_close, fd);
}

/* ---- the scenarios: each gets the buffer (a phantom, preloaded) and
 * the offset of its bytes in src.bin ---- */

typedef void (*act_fn)(unsigned char *buf, off_t off);

static void a_getrandom(unsigned char *buf, off_t off)
{
	(void)off;
	errno = 0;
	long r = getrandom(AT(buf), 256, 0);
	result("getrandom", r, errno);
}

static void a_getentropy(unsigned char *buf, off_t off)
{
	(void)off;
	errno = 0;
	long r = getentropy(AT(buf), 64);
	result("getentropy", r, errno);
}

static void a_stat(unsigned char *buf, off_t off)
{
	(void)off;
	struct stat *st = (struct stat *)AT(buf);
	long r = stat("src.bin", st);
	result("stat", r, errno);
	if (r == 0)
		printf("  size %lld regular %d\n", (long long)st->st_size, S_ISREG(st->st_mode));
}

static void a_fstat(unsigned char *buf, off_t off)
{
	(void)off;
	struct stat *st = (struct stat *)AT(buf);
	int fd = open("src.bin", O_RDONLY);
	long r = fstat(fd, st);
	result("fstat", r, errno);
	if (r == 0)
		printf("  size %lld\n", (long long)st->st_size);
	close(fd);
}

static void a_lstat(unsigned char *buf, off_t off)
{
	(void)off;
	struct stat *st = (struct stat *)AT(buf);
	long r = lstat("src.bin", st);
	result("lstat", r, errno);
	if (r == 0)
		printf("  size %lld\n", (long long)st->st_size);
}

static void a_fstatat(unsigned char *buf, off_t off)
{
	(void)off;
	struct stat *st = (struct stat *)AT(buf);
	long r = fstatat(AT_FDCWD, "src.bin", st, 0);
	result("fstatat", r, errno);
	if (r == 0)
		printf("  size %lld\n", (long long)st->st_size);
}

static void a_statx(unsigned char *buf, off_t off)
{
	(void)off;
	struct statx *st = (struct statx *)AT(buf);
	long r = statx(AT_FDCWD, "src.bin", 0, STATX_SIZE, st);
	result("statx", r, errno);
	if (r == 0)
		printf("  size %llu\n", (unsigned long long)st->stx_size);
}

static void a_statfs(unsigned char *buf, off_t off)
{
	(void)off;
	struct statfs *st = (struct statfs *)AT(buf);
	long r = statfs(".", st);
	result("statfs", r, errno);
	if (r == 0)
		printf("  bsize>0 %d\n", st->f_bsize > 0);
}

/* The path itself sits in the phantom: the kernel reads the string. */
static void a_stat_path_in_phantom(unsigned char *buf, off_t off)
{
	(void)off;
	struct stat st;
	/* The chunk's bytes, as read, taken for a name (up to their first
	 * NUL): the program never looked at them, the kernel does. */
	long r = stat((const char *)AT(buf), &st);
	result("stat(path in buffer)", r, errno);
}

static void a_uname(unsigned char *buf, off_t off)
{
	(void)off;
	struct utsname *u = (struct utsname *)AT(buf);
	long r = uname(u);
	result("uname", r, errno);
	if (r == 0)
		printf("  sysname %s\n", u->sysname);
}

static void a_getrusage(unsigned char *buf, off_t off)
{
	(void)off;
	long r = getrusage(RUSAGE_SELF, (struct rusage *)AT(buf));
	result("getrusage", r, errno);
}

static void a_getrlimit(unsigned char *buf, off_t off)
{
	(void)off;
	struct rlimit *rl = (struct rlimit *)AT(buf), own;
	long r = getrlimit(RLIMIT_NOFILE, rl);
	result("getrlimit", r, errno);
	if (r == 0 && getrlimit(RLIMIT_NOFILE, &own) == 0)
		printf("  same as own struct %d\n", rl->rlim_cur == own.rlim_cur);
}

static void a_epoll_wait(unsigned char *buf, off_t off)
{
	(void)off;
	int p[2];
	if (syscall(SYS_pipe2, p, 0) != 0)
		die("pipe");
	syscall(SYS_write, p[1], "x", 1);
	int ep = epoll_create1(0);
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = 77 };
	epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev);
	struct epoll_event *out = (struct epoll_event *)AT(buf);
	long r = epoll_wait(ep, out, 4, 1000);
	result("epoll_wait", r, errno);
	if (r == 1)
		printf("  events %#x data %llu\n", out[0].events, (unsigned long long)out[0].data.u64);
}

static void a_sigprocmask(unsigned char *buf, off_t off)
{
	(void)off;
	long r = sigprocmask(SIG_BLOCK, NULL, (sigset_t *)AT(buf));
	result("sigprocmask(old set)", r, errno);
}

static void a_sigpending(unsigned char *buf, off_t off)
{
	(void)off;
	long r = sigpending((sigset_t *)AT(buf));
	result("sigpending", r, errno);
}

static void through(const int *p)
{
	long w = write(p[1], "ok", 2);
	char c[2] = { 0, 0 };
	long k = read(p[0], c, 2);
	printf("  through it: %ld %ld %.2s\n", w, k, c);
	close(p[0]);
	close(p[1]);
}

static void a_pipe(unsigned char *buf, off_t off)
{
	(void)off;
	int *p = (int *)AT(buf);
	long r = pipe(p);
	result("pipe", r, errno);
	if (r == 0)
		through(p);
}

static void a_pipe2(unsigned char *buf, off_t off)
{
	(void)off;
	int *p = (int *)AT(buf);
	long r = pipe2(p, O_CLOEXEC);
	result("pipe2", r, errno);
	if (r == 0)
		through(p);
}

static void a_socketpair(unsigned char *buf, off_t off)
{
	(void)off;
	int *p = (int *)AT(buf);
	long r = socketpair(AF_UNIX, SOCK_STREAM, 0, p);
	result("socketpair", r, errno);
	if (r == 0)
		through(p);
}

static void a_readlink(unsigned char *buf, off_t off)
{
	(void)off;
	symlink("src.bin", "link");
	long r = readlink("link", (char *)AT(buf), 64);
	result("readlink", r, errno);
	if (r > 0)
		printf("  -> %.*s\n", (int)r, (char *)AT(buf));
}

static void a_getcwd(unsigned char *buf, off_t off)
{
	(void)off;
	char *c = getcwd((char *)AT(buf), PG);
	printf("getcwd: %s\n", c ? "ok" : errno_name(errno));
	char own[PATH_MAX];
	if (c)
		printf("  same as own buffer %d\n", getcwd(own, sizeof own) && !strcmp(own, c));
}

static void a_getdents(unsigned char *buf, off_t off)
{
	(void)off;
	int d = open(".", O_RDONLY | O_DIRECTORY);
	long r = getdents64(d, AT(buf), PG);
	result("getdents64>0", r > 0 ? 1 : r, errno);
	close(d);
}

static void a_wait4(unsigned char *buf, off_t off)
{
	(void)off;
	pid_t c = fork();
	if (c == 0)
		_exit(7);
	int *st = (int *)AT(buf);
	long r = waitpid(c, st, 0);
	printf("waitpid: %s\n", r == c ? "the child" : errno_name(errno));
	if (r == c)
		printf("  exit status %d\n", WEXITSTATUS(*st));
	/* The status is gone for good once reaped. */
	r = waitpid(c, NULL, WNOHANG);
	result("waitpid again", r, errno);
}

static void a_recvmmsg(unsigned char *buf, off_t off)
{
	(void)off;
	int s[2];
	if (socketpair(AF_UNIX, SOCK_DGRAM, 0, s) != 0)
		die("socketpair");
	if (send(s[1], "datagram-one", 12, 0) != 12)
		die("send");
	struct iovec v = { AT(buf), 64 };
	struct mmsghdr m;
	memset(&m, 0, sizeof m);
	m.msg_hdr.msg_iov = &v;
	m.msg_hdr.msg_iovlen = 1;
	long r = recvmmsg(s[0], &m, 1, MSG_DONTWAIT, NULL);
	result("recvmmsg", r, errno);
	if (r == 1)
		printf("  %u bytes: %.*s\n", m.msg_len, (int)m.msg_len, (char *)AT(buf));
	/* Was the datagram lost? */
	char again[64];
	r = recv(s[0], again, sizeof again, MSG_DONTWAIT);
	result("then recv", r, errno);
	close(s[0]);
	close(s[1]);
}

static void a_sendmmsg(unsigned char *buf, off_t off)
{
	int s[2];
	if (socketpair(AF_UNIX, SOCK_DGRAM, 0, s) != 0)
		die("socketpair");
	struct iovec v = { AT(buf), 1000 };
	struct mmsghdr m;
	memset(&m, 0, sizeof m);
	m.msg_hdr.msg_iov = &v;
	m.msg_hdr.msg_iovlen = 1;
	long r = sendmmsg(s[1], &m, 1, 0);
	result("sendmmsg", r, errno);
	unsigned char got[1000], exp[1000];
	r = recv(s[0], got, sizeof got, MSG_DONTWAIT);
	result("  received", r, errno);
	want(exp, off + 2 * PG, sizeof exp);
	if (r == 1000)
		printf("  bytes are the file's: %d\n", !memcmp(got, exp, sizeof got));
	close(s[0]);
	close(s[1]);
}

static void a_vmsplice(unsigned char *buf, off_t off)
{
	int p[2];
	if (syscall(SYS_pipe2, p, O_NONBLOCK) != 0)
		die("pipe");
	struct iovec v = { AT(buf), 3000 };
	long r = vmsplice(p[1], &v, 1, 0);
	result("vmsplice", r, errno);
	unsigned char got[3000], exp[3000];
	r = syscall(SYS_read, p[0], got, sizeof got);
	want(exp, off + 2 * PG, sizeof exp);
	printf("  read back %ld, the file's bytes: %d\n", r, r == 3000 && !memcmp(got, exp, 3000));
}

static void a_process_vm_readv(unsigned char *buf, off_t off)
{
	unsigned char got[2000], exp[2000];
	struct iovec l = { got, sizeof got }, r = { AT(buf), sizeof got };
	long k = process_vm_readv(getpid(), &l, 1, &r, 1, 0);
	result("process_vm_readv(remote = buffer)", k, errno);
	want(exp, off + 2 * PG, sizeof exp);
	printf("  the file's bytes: %d\n", k == 2000 && !memcmp(got, exp, sizeof got));
}

static void a_process_vm_writev(unsigned char *buf, off_t off)
{
	static unsigned char other[2000], exp[2000];
	struct iovec l = { AT(buf), sizeof other }, r = { other, sizeof other };
	long k = process_vm_writev(getpid(), &l, 1, &r, 1, 0);
	result("process_vm_writev(local = buffer)", k, errno);
	want(exp, off + 2 * PG, sizeof exp);
	printf("  the file's bytes: %d\n", k == 2000 && !memcmp(other, exp, sizeof other));
}

static void aio_wait(struct aiocb *cb)
{
	const struct aiocb *l[1] = { cb };
	while (aio_error(cb) == EINPROGRESS)
		aio_suspend(l, 1, NULL);
	printf("  aio_error %s, aio_return %zd\n", aio_error(cb) ? errno_name(aio_error(cb)) : "0",
	       aio_return(cb));
}

static void a_aio_write(unsigned char *buf, off_t off)
{
	int out = open("aio.out", O_RDWR | O_CREAT | O_TRUNC, 0600);
	struct aiocb cb;
	memset(&cb, 0, sizeof cb);
	cb.aio_fildes = out;
	cb.aio_buf = AT(buf);
	cb.aio_nbytes = 5000;
	long r = aio_write(&cb);
	result("aio_write", r, errno);
	aio_wait(&cb);
	unsigned char got[5000], exp[5000];
	long k = syscall(SYS_pread64, out, got, sizeof got, 0);
	want(exp, off + 2 * PG, sizeof exp);
	printf("  file holds the buffer's bytes: %d\n", k == 5000 && !memcmp(got, exp, sizeof got));
	close(out);
}

static void a_aio_read(unsigned char *buf, off_t off)
{
	(void)off;
	int in = open("src.bin", O_RDONLY);
	struct aiocb cb;
	memset(&cb, 0, sizeof cb);
	cb.aio_fildes = in;
	cb.aio_buf = AT(buf);
	cb.aio_nbytes = 100;
	cb.aio_offset = 12345;
	long r = aio_read(&cb);
	result("aio_read", r, errno);
	aio_wait(&cb);
	unsigned char exp[100];
	want(exp, 12345, sizeof exp);
	printf("  buffer holds the file's bytes: %d\n", !memcmp(AT(buf), exp, sizeof exp));
	close(in);
}

static void a_mq(unsigned char *buf, off_t off)
{
	(void)off;
	char name[64];
	snprintf(name, sizeof name, "/nb-haz-%d", (int)getpid());
	struct mq_attr at = { .mq_maxmsg = 4, .mq_msgsize = 128 };
	mqd_t q = mq_open(name, O_RDWR | O_CREAT | O_EXCL, 0600, &at);
	if (q == (mqd_t)-1) {
		printf("mq_open: %s\n", errno_name(errno));
		return;
	}
	mq_unlink(name);
	mq_send(q, "message-1", 9, 1);
	unsigned prio = 0;
	long r = mq_receive(q, (char *)AT(buf), 128, &prio);
	result("mq_receive", r, errno);
	if (r > 0)
		printf("  %.*s prio %u\n", (int)r, (char *)AT(buf), prio);
	struct mq_attr now;
	mq_getattr(q, &now);
	printf("  left in queue %ld\n", now.mq_curmsgs);
	mq_close(q);
}

static int lsock, csock;

static void listen_connect(void)
{
	lsock = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001) };
	socklen_t al = sizeof a;
	if (bind(lsock, (struct sockaddr *)&a, sizeof a) != 0 || listen(lsock, 1) != 0 ||
	    getsockname(lsock, (struct sockaddr *)&a, &al) != 0)
		die("listen");
	csock = socket(AF_INET, SOCK_STREAM, 0);
	if (connect(csock, (struct sockaddr *)&a, sizeof a) != 0)
		die("connect");
}

static void a_accept_addr(unsigned char *buf, off_t off)
{
	(void)off;
	listen_connect();
	struct sockaddr_in *pa = (struct sockaddr_in *)AT(buf);
	socklen_t pl = sizeof *pa;
	int s = accept(lsock, (struct sockaddr *)pa, &pl);
	printf("accept: %s\n", s >= 0 ? "a connection" : errno_name(errno));
	if (s >= 0)
		printf("  family %d len %u loopback %d\n", pa->sin_family, (unsigned)pl,
		       pa->sin_addr.s_addr == htonl(0x7f000001));
	/* Lost from the queue? */
	int fl = fcntl(lsock, F_GETFL);
	fcntl(lsock, F_SETFL, fl | O_NONBLOCK);
	int again = accept(lsock, NULL, NULL);
	printf("  accepted again: %s\n", again >= 0 ? "a connection" : errno_name(errno));
}

static void a_getsockopt(unsigned char *buf, off_t off)
{
	(void)off;
	int s = socket(AF_INET, SOCK_STREAM, 0);
	socklen_t ol = sizeof(int);
	long r = getsockopt(s, SOL_SOCKET, SO_TYPE, AT(buf), &ol);
	result("getsockopt", r, errno);
	if (r == 0)
		printf("  type %d len %u\n", *(int *)AT(buf), (unsigned)ol);
}

static void a_getpeername(unsigned char *buf, off_t off)
{
	(void)off;
	listen_connect();
	socklen_t nl = sizeof(struct sockaddr_in);
	long r = getpeername(csock, (struct sockaddr *)AT(buf), &nl);
	result("getpeername", r, errno);
	if (r == 0)
		printf("  family %d\n", ((struct sockaddr_in *)AT(buf))->sin_family);
}

static void a_select_timeout(unsigned char *buf, off_t off)
{
	(void)off;
	/* pselect's sigmask and epoll_pwait's: the kernel reads a set the
	 * program took from elsewhere; here: an empty mask the read left
	 * (the pattern's bytes) - any mask does for a zero timeout. */
	struct timespec t = { 0, 0 };
	long r = pselect(0, NULL, NULL, NULL, &t, (const sigset_t *)AT(buf));
	result("pselect(sigmask in buffer)", r, errno);
}

static void a_msg(unsigned char *buf, off_t off)
{
	(void)off;
	int q = msgget(IPC_PRIVATE, 0600 | IPC_CREAT);
	if (q < 0) {
		printf("msgget: %s\n", errno_name(errno));
		return;
	}
	struct {
		long type;
		char text[16];
	} m = { 3, "sysv-message" };
	msgsnd(q, &m, sizeof m.text, 0);
	long r = msgrcv(q, AT(buf), 16, 0, IPC_NOWAIT);
	result("msgrcv", r, errno);
	if (r > 0)
		printf("  type %ld text %s\n", *(long *)AT(buf), (char *)AT(buf) + sizeof(long));
	struct msqid_ds ds;
	msgctl(q, IPC_STAT, &ds);
	printf("  left in queue %lu\n", (unsigned long)ds.msg_qnum);
	msgctl(q, IPC_RMID, NULL);
}

static const struct {
	const char *name;
	act_fn fn;
} acts[] = {
	{ "getrandom", a_getrandom },
	{ "getentropy", a_getentropy },
	{ "stat", a_stat },
	{ "fstat", a_fstat },
	{ "lstat", a_lstat },
	{ "fstatat", a_fstatat },
	{ "statx", a_statx },
	{ "statfs", a_statfs },
	{ "stat-path-in-phantom", a_stat_path_in_phantom },
	{ "uname", a_uname },
	{ "getrusage", a_getrusage },
	{ "getrlimit", a_getrlimit },
	{ "epoll-wait", a_epoll_wait },
	{ "sigprocmask", a_sigprocmask },
	{ "sigpending", a_sigpending },
	{ "pipe", a_pipe },
	{ "pipe2", a_pipe2 },
	{ "socketpair", a_socketpair },
	{ "readlink", a_readlink },
	{ "getcwd", a_getcwd },
	{ "getdents", a_getdents },
	{ "wait-status", a_wait4 },
	{ "recvmmsg", a_recvmmsg },
	{ "sendmmsg", a_sendmmsg },
	{ "vmsplice", a_vmsplice },
	{ "process-vm-readv", a_process_vm_readv },
	{ "process-vm-writev", a_process_vm_writev },
	{ "aio-write", a_aio_write },
	{ "aio-read", a_aio_read },
	{ "mq", a_mq },
	{ "accept-addr", a_accept_addr },
	{ "getsockopt", a_getsockopt },
	{ "getpeername", a_getpeername },
	{ "pselect-sigmask", a_select_timeout },
	{ "sysv-msg", a_msg },
};

/* ---- the copy loop ---- */

static unsigned char *buf;
static int src, dst;

static void make_src(void)
{
	static unsigned char blk[ROUNDS * CHUNK];
	pattern(blk, 0, sizeof blk);
	int fd = (int)syscall(SYS_openat, AT_FDCWD, "src.bin", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || syscall(SYS_write, fd, blk, sizeof blk) != (long)sizeof blk)
		die("src.bin");
	syscall(SYS_close, fd);
}

static void setup(void)
{
	make_src();
	if (posix_memalign((void **)&buf, PG, CHUNK) != 0)
		die("posix_memalign");
	src = open("src.bin", O_RDONLY);
	dst = open("dst.bin", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (src < 0 || dst < 0)
		die("open");
}

static void copy_round(int i, act_fn fn)
{
	ssize_t r = read(src, buf, CHUNK);
	if (r != CHUNK)
		die("read %zd", r);
	if (fn != NULL) {
		fprintf(stderr, "probe guarded=%d\n", guarded(buf, CHUNK));
		fn(buf, (off_t)i * CHUNK);
		fflush(stdout);
		/* The chunk's own bytes back, whatever the call stored. */
		static unsigned char own[CHUNK];
		want(own, (off_t)i * CHUNK, CHUNK);
		memcpy(buf, own, CHUNK);
	}
	if (write(dst, buf, (size_t)r) != r)
		die("write");
}

/* hold: a phantom stays in the buffer while the process waits (short
 * nanosleeps, each a call the library sees) until it is filled by
 * someone else (nobounce fill) or 20 s pass. Prints the buffer's address
 * and the offset of its bytes, so that a reader from outside can check. */
static int hold(void)
{
	for (int i = 0; i < ACT; i++)
		copy_round(i, NULL);
	ssize_t r = read(src, buf, CHUNK);
	if (r != CHUNK)
		die("read");
	printf("buffer %p offset %lld guarded %d\n", (void *)buf, (long long)ACT * CHUNK,
	       guarded(buf, CHUNK));
	fflush(stdout);
	int g = 1;
	for (int k = 0; k < 2000 && (g = guarded(buf, CHUNK)) == 1; k++) {
		struct timespec t = { 0, 10 * 1000 * 1000 };
		nanosleep(&t, NULL);
	}
	printf("guarded after waiting %d\n", g);
	fflush(stdout);
	/* Stay until told (a raw read of stdin: EOF or a byte), so that the
	 * test can look at the memory from outside. */
	char c;
	(void)syscall(SYS_read, 0, &c, 1);
	/* The next read must not defer while the hold is on. */
	if (write(dst, buf, (size_t)r) != r)
		die("write");
	r = read(src, buf, CHUNK);
	printf("next read %zd, guarded %d\n", r, guarded(buf, CHUNK));
	return 0;
}

/* block: the same phantom, then a wait in a raw read of stdin (a call
 * the library never sees), then one nanosleep (a call it sees). */
static int block(void)
{
	for (int i = 0; i < ACT; i++)
		copy_round(i, NULL);
	ssize_t r = read(src, buf, CHUNK);
	if (r != CHUNK)
		die("read");
	printf("buffer %p offset %lld guarded %d\n", (void *)buf, (long long)ACT * CHUNK,
	       guarded(buf, CHUNK));
	fflush(stdout);
	char c;
	long k = syscall(SYS_read, 0, &c, 1);
	printf("woken %ld, guarded %d\n", k, guarded(buf, CHUNK));
	struct timespec t = { 0, 1000 * 1000 };
	nanosleep(&t, NULL);
	printf("after one call, guarded %d\n", guarded(buf, CHUNK));
	fflush(stdout);
	if (write(dst, buf, (size_t)r) != r)
		die("write");
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: haz_kread SCENARIO|hold|block\n");
		return 2;
	}
	setup();
	if (!strcmp(argv[1], "hold"))
		return hold();
	if (!strcmp(argv[1], "block"))
		return block();
	act_fn fn = NULL;
	for (size_t k = 0; k < sizeof acts / sizeof acts[0]; k++)
		if (!strcmp(argv[1], acts[k].name))
			fn = acts[k].fn;
	if (fn == NULL) {
		fprintf(stderr, "haz_kread: unknown scenario %s\n", argv[1]);
		return 2;
	}
	for (int i = 0; i < ROUNDS; i++)
		copy_round(i, i == ACT ? fn : NULL);
	return 0;
}
