/*
 * log.c - the library's own messages.
 *
 * Owns: one-line messages ("nobounce[pid]: ...") written to a private
 * duplicate of the stderr the program started with. Coreutils close fd 2
 * at exit (gnulib close_stdout) and daemons reopen it on /dev/null, so the
 * exit report must not depend on fd 2 still being the original stderr.
 * Must not: use stdio (its locks and buffers belong to the program) or
 * call a hooked function.
 */
#include "internal.h"

#include <poll.h>

#include <errno.h>
#include <stdarg.h>
#include <sys/syscall.h>
#include <unistd.h>

/* While the final report is written (nb_final_report): a destination
 * that takes no more (a pipe nobody reads) must not keep the process from
 * ending - a plain process would not write there at all. A write waits
 * for room (poll) at most a second; a destination that stays full is
 * written no more for the rest of the report (its lines are many writes:
 * a second each would add up). */
atomic_int nb_report_bounded;
static atomic_int report_full_fd = -1;

static bool room_for_report(int fd)
{
	if (atomic_load(&report_full_fd) == fd)
		return false;
	struct pollfd p = { fd, POLLOUT, 0 };
	for (;;) {
		int r = (int)syscall(SYS_poll, &p, 1UL, 1000L);
		if (r < 0 && errno == EINTR)
			continue;
		if (r > 0 && (p.revents & POLLOUT))
			return true;
		atomic_store(&report_full_fd, fd);
		return false;
	}
}

void nb_write_all(int fd, const char *buf, size_t n)
{
	int saved = errno;
	bool bounded = atomic_load_explicit(&nb_report_bounded, memory_order_relaxed) != 0;
	while (n > 0) {
		if (bounded && !room_for_report(fd))
			break;
		/* At most a pipe's atomic unit after the poll: it fits. */
		size_t k = bounded && n > 4096 ? 4096 : n;
		ssize_t w = nb_sys_write(fd, buf, k);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		buf += w;
		n -= (size_t)w;
	}
	errno = saved;
}

void nb_log(enum nb_loglevel lvl, const char *fmt, ...)
{
	/* The lease thread's numbers are not the program's (lease.c). */
	if (lvl > nb_g.cfg.log || nb_g.log_fd < 0 || nb_lease_on_thread())
		return;
	int saved = errno;
	char line[512];
	/* fmt.c, not stdio: a line may be logged from the final report in
	 * a signal handler. */
	size_t k = nb_fmt(line, sizeof line, "nobounce[%d]: ", (int)nb_g.pid);
	va_list ap;
	va_start(ap, fmt);
	size_t m = nb_vfmt(line + k, sizeof line - k - 1, fmt, ap);
	va_end(ap);
	size_t len = k + m;
	if (len > sizeof line - 2)
		len = sizeof line - 2;
	line[len++] = '\n';
	nb_write_all(nb_g.log_fd, line, len);
	errno = saved;
}

/* One line, then death by SIGABRT whatever the program made of that
 * signal (reset to default, unblocked, sent to this thread): for a state
 * in which carrying on would hand the program wrong bytes. Async-signal-
 * safe: raw system calls only. */
void nb_die(const char *why)
{
	int fd = nb_g.log_fd >= 0 ? nb_g.log_fd : 2;
	char pid[16];
	int k = 0;
	for (unsigned v = (unsigned)syscall(SYS_getpid); k == 0 || v > 0; v /= 10)
		pid[k++] = (char)('0' + v % 10);
	char line[400];
	size_t n = 0;
	const char *pre = "nobounce[";
	while (*pre)
		line[n++] = *pre++;
	while (k > 0)
		line[n++] = pid[--k];
	line[n++] = ']';
	line[n++] = ':';
	line[n++] = ' ';
	const char *f = "fatal: ";
	while (*f)
		line[n++] = *f++;
	while (*why && n < sizeof line - 1)
		line[n++] = *why++;
	line[n++] = '\n';
	if (nb_sys_write(fd, line, n) < 0 && fd != 2)
		nb_sys_write(2, line, n);
	struct {
		void *handler;
		unsigned long flags;
		void *restorer;
		uint64_t mask;
	} dfl = { SIG_DFL, 0, NULL, 0 };
	syscall(SYS_rt_sigaction, SIGABRT, &dfl, NULL, 8);
	uint64_t set = 1ull << (SIGABRT - 1);
	syscall(SYS_rt_sigprocmask, SIG_UNBLOCK, &set, NULL, 8);
	syscall(SYS_tgkill, syscall(SYS_getpid), syscall(SYS_gettid), SIGABRT);
	syscall(SYS_exit_group, 128 + SIGABRT);
	__builtin_unreachable();
}
