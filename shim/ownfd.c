/*
 * ownfd.c - the library's own descriptors, kept out of the program's way.
 *
 * Owns: the list of internal descriptors (today the private log; later the
 * pipe pool), where they are placed, and what happens when the program
 * names one of them in close, close_range, dup2 or dup3.
 * Must not: allocate or lock; close() reaches here.
 *
 * Without the library those numbers would be free, so the program must see
 * exactly that: close(n) fails with EBADF, close_range() skips them as if
 * they were not open, and dup2(x, n) works - we move our descriptor to
 * another number first. They are O_CLOEXEC, so exec never leaks them.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#define NB_OWN_MAX 64

static atomic_int own[NB_OWN_MAX]; /* fd + 1, 0 = free */
/* Lowest number ever registered: lets nb_own_is() answer "no" for the
 * program's ordinary descriptors with one comparison. */
static atomic_int own_lo = INT32_MAX;

/* Lowest number we place our descriptors at: high enough that programs
 * which count up from 3 never meet them, low enough that the kernel does
 * not grow the descriptor table to a huge size for us. */
static int hide_floor(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
		return 1000;
	rlim_t lim = rl.rlim_cur < 1024 ? rl.rlim_cur : 1024;
	return lim > 64 ? (int)(lim - 24) : 3;
}

bool nb_own_is(int fd)
{
	if (fd < atomic_load_explicit(&own_lo, memory_order_relaxed))
		return false;
	for (int i = 0; i < NB_OWN_MAX; i++)
		if (atomic_load_explicit(&own[i], memory_order_relaxed) == fd + 1)
			return true;
	return false;
}

static void own_add_lo(int fd)
{
	int lo = atomic_load(&own_lo);
	while (fd < lo && !atomic_compare_exchange_weak(&own_lo, &lo, fd))
		;
}

static void own_add(int fd)
{
	own_add_lo(fd);
	for (int i = 0; i < NB_OWN_MAX; i++) {
		int expect = 0;
		if (atomic_compare_exchange_strong(&own[i], &expect, fd + 1))
			return;
	}
}

static void own_replace(int old, int fd)
{
	for (int i = 0; i < NB_OWN_MAX; i++) {
		int expect = old + 1;
		if (atomic_compare_exchange_strong(&own[i], &expect, fd + 1))
			return;
	}
}

void nb_own_release(int fd)
{
	own_replace(fd, -1);
	nb_sys_close(fd);
}

int nb_hide_fd(int fd)
{
	int hi = nb_sys_fcntl(fd, F_DUPFD_CLOEXEC, hide_floor());
	if (hi < 0)
		hi = nb_sys_fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (hi < 0)
		return -1;
	own_add(hi);
	return hi;
}

/* The program is about to make `fd` its own (dup2/dup3 target): move ours
 * elsewhere. Returns the descriptor's new number, or -1 if it was not ours. */
int nb_own_evict(int fd)
{
	if (!nb_own_is(fd))
		return -1;
	int moved = nb_sys_fcntl(fd, F_DUPFD_CLOEXEC, fd + 1);
	if (moved < 0)
		moved = nb_sys_fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (moved >= 0) {
		own_replace(fd, moved);
		own_add_lo(moved);
	}
	else
		own_replace(fd, -1); /* out of descriptors: give ours up */
	nb_sys_close(fd);
	if (nb_g.log_fd == fd)
		nb_g.log_fd = moved;
	return moved;
}

/* close_range(lo, hi) without touching our descriptors: the range is cut
 * into the pieces between them. Returns the real call's result for the
 * first piece that fails, 0 otherwise. */
int nb_own_close_range(unsigned lo, unsigned hi, int flags,
		       int (*real)(unsigned, unsigned, int))
{
	for (;;) {
		unsigned cut = hi;
		bool found = false;
		for (int i = 0; i < NB_OWN_MAX; i++) {
			int v = atomic_load(&own[i]) - 1;
			if (v >= 0 && (unsigned)v >= lo && (unsigned)v <= cut && (!found || (unsigned)v < cut)) {
				cut = (unsigned)v;
				found = true;
			}
		}
		if (!found)
			return real(lo, hi, flags);
		if (cut > lo && real(lo, cut - 1, flags) != 0)
			return -1;
		if (cut == hi || cut == ~0u)
			return 0;
		lo = cut + 1;
	}
}
