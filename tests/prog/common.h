/*
 * common.h - pieces the test programs share.
 */
#ifndef NB_TEST_COMMON_H
#define NB_TEST_COMMON_H

#include <errno.h>

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

#endif
