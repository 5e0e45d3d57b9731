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

#include <errno.h>
#include <stdarg.h>

void nb_write_all(int fd, const char *buf, size_t n)
{
	int saved = errno;
	while (n > 0) {
		ssize_t w = nb_sys_write(fd, buf, n);
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
	if (lvl > nb_g.cfg.log || nb_g.log_fd < 0)
		return;
	int saved = errno;
	char line[512];
	int k = snprintf(line, sizeof line, "nobounce[%d]: ", (int)nb_g.pid);
	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(line + k, sizeof line - (size_t)k - 1, fmt, ap);
	va_end(ap);
	size_t len = (size_t)k + (m < 0 ? 0 : (size_t)m);
	if (len > sizeof line - 2)
		len = sizeof line - 2;
	line[len++] = '\n';
	nb_write_all(nb_g.log_fd, line, len);
	errno = saved;
}
