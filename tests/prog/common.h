/*
 * common.h - pieces the test programs share.
 */
#ifndef NB_TEST_COMMON_H
#define NB_TEST_COMMON_H

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* A system call made with the instruction itself, not through libc: no
 * preloaded library can see it (x86_64; the library is LP64). Returns
 * -1 with errno, as libc's syscall() does. */
static inline long asm_syscall6(long nr, long a1, long a2, long a3, long a4, long a5, long a6)
{
	long r;
	register long r10 __asm__("r10") = a4;
	register long r8 __asm__("r8") = a5;
	register long r9 __asm__("r9") = a6;
	__asm__ volatile("syscall"
			 : "=a"(r)
			 : "a"(nr), "D"(a1), "S"(a2), "d"(a3), "r"(r10), "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
	if (r < 0 && r > -4096) {
		errno = (int)-r;
		return -1;
	}
	return r;
}

static inline long asm_syscall4(long nr, long a1, long a2, long a3, long a4)
{
	return asm_syscall6(nr, a1, a2, a3, a4, 0, 0);
}

/* Is any part of [p, p+n) a PROT_NONE mapping (a guarded buffer, when
 * preloaded)? Read from /proc/self/maps with raw system calls, which no
 * preloaded library turns into anything else; -1 if it cannot be read.
 * The probes the tests print ("probe ... guarded=1") come from here. */
static inline int guarded(const void *p, size_t n)
{
	uintptr_t a = (uintptr_t)p, b = a + n;
	int fd = (int)syscall(SYS_openat, AT_FDCWD, "/proc/self/maps", O_RDONLY | O_CLOEXEC);
	static char m[1 << 20];
	size_t have = 0;
	ssize_t r;
	if (fd < 0)
		return -1;
	while ((r = syscall(SYS_read, fd, m + have, sizeof m - 1 - have)) > 0)
		have += (size_t)r;
	syscall(SYS_close, fd);
	m[have] = '\0';
	int g = 0;
	for (char *line = m; line && *line;) {
		char *nl = strchr(line, '\n');
		unsigned long lo, hi;
		char perms[8];
		if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) == 3 && lo < b && a < hi &&
		    strncmp(perms, "---", 3) == 0)
			g = 1;
		line = nl ? nl + 1 : NULL;
	}
	return g;
}

/*
 * "Another process": a child forked before anything is read, which runs
 * commands on the program's behalf. A fork made later would not do: the
 * library fills every buffer a read lease protects before a fork (the
 * child has no part in the lease), so no lease would ever be broken by
 * such a child. serve() gets each command (a NUL-terminated line) and
 * runs in the child; its stdout is flushed before the answer.
 */
struct other {
	int cmd, ack;
};

static inline void other_start(struct other *o, void (*serve)(const char *cmd))
{
	int c[2], a[2];
	if (pipe(c) != 0 || pipe(a) != 0) {
		perror("other: pipe");
		_exit(2);
	}
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0) {
		perror("other: fork");
		_exit(2);
	}
	if (pid == 0) {
		close(c[1]);
		close(a[0]);
		char line[512];
		for (;;) {
			size_t n = 0;
			char ch;
			ssize_t k;
			while ((k = read(c[0], &ch, 1)) == 1 && ch != '\n' && n < sizeof line - 1)
				line[n++] = ch;
			if (k != 1)
				_exit(0); /* the program is done */
			line[n] = '\0';
			serve(line);
			fflush(stdout);
			if (write(a[1], "k", 1) != 1)
				_exit(3);
		}
	}
	close(c[0]);
	close(a[1]);
	o->cmd = c[1];
	o->ack = a[0];
}

/* Sends a command; other_wait() waits until it has run. */
static inline void other_post(struct other *o, const char *cmd)
{
	size_t n = strlen(cmd);
	if (write(o->cmd, cmd, n) != (ssize_t)n || write(o->cmd, "\n", 1) != 1) {
		perror("other: post");
		_exit(2);
	}
}

static inline void other_wait(struct other *o)
{
	char k;
	ssize_t r;
	while ((r = read(o->ack, &k, 1)) < 0 && errno == EINTR)
		;
	if (r != 1) {
		fprintf(stderr, "other: the other process failed\n");
		_exit(2);
	}
}

static inline void other_run(struct other *o, const char *cmd)
{
	other_post(o, cmd);
	other_wait(o);
}

#endif
