/*
 * ownfd.c - the library's own descriptors, kept out of the program's way.
 *
 * Owns: the list of internal descriptors (the private log, backings of
 * source files and their leases, /proc/self/mem, pool pipes), where they
 * are placed, what happens when the program names one of them or runs out
 * of numbers, and reopening a descriptor's file as one of ours.
 * Must not: allocate or lock; close() reaches here.
 *
 * Without the library those numbers would be free, so the program must see
 * exactly that:
 *  - they sit at the top of the descriptor table (just below the soft
 *    RLIMIT_NOFILE, capped so the kernel's table stays small), where the
 *    kernel's lowest-free-number rule hands them out last;
 *  - every hooked call that names one fails with EBADF, as on a free
 *    number (close_range skips them);
 *  - when the program claims one (dup2/dup3 onto it), or a call that
 *    creates a descriptor fails with EMFILE, the library gives its
 *    descriptors up and the call gets exactly the plain result. Losing
 *    the private log only means messages go to fd 2.
 * They are O_CLOEXEC, so exec never leaks them. What stays visible:
 * /proc/self/fd lists them, and F_DUPFD with a minimum at the top number.
 *
 * Lost numbers. A raw syscall(SYS_close_range) or close loop through
 * syscall() closes them behind the library's back, and the kernel may
 * then hand the number to the program. When that is noticed (a call that
 * made a descriptor returned one of ours, or a user of the number found it
 * no longer names what it opened), the number stops being ours - the
 * program's calls on it must work - but stays a tombstone until the user
 * that recorded it lets go (nb_own_release): until then no new internal
 * descriptor may get that number, or two owners would name it.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#define NB_OWN_MAX 512
/* The kernel sizes a process's descriptor table to its highest number;
 * with a soft limit of a million, the top would cost megabytes. */
#define NB_OWN_CEILING 65536

static atomic_int own[NB_OWN_MAX]; /* fd + 1; -(fd + 1) a tombstone; 0 = free */
/* Lowest number ever registered: lets nb_own_is() answer "no" for the
 * program's ordinary descriptors with one comparison. */
atomic_int nb_own_lo = INT32_MAX; /* read inline by NB_OWN_BADF (hook.h) */

bool nb_own_is(int fd)
{
	if (NB_LIKELY(fd < atomic_load_explicit(&nb_own_lo, memory_order_relaxed)))
		return false;
	for (int i = 0; i < NB_OWN_MAX; i++)
		if (atomic_load_explicit(&own[i], memory_order_relaxed) == fd + 1)
			return true;
	return false;
}

static bool tombstoned(int fd)
{
	for (int i = 0; i < NB_OWN_MAX; i++)
		if (atomic_load_explicit(&own[i], memory_order_relaxed) == -(fd + 1))
			return true;
	return false;
}

/* false: no free entry (the caller closes the number again). */
static bool own_add(int fd)
{
	for (int i = 0; i < NB_OWN_MAX; i++) {
		int expect = 0;
		if (atomic_compare_exchange_strong(&own[i], &expect, fd + 1)) {
			int lo = atomic_load(&nb_own_lo);
			while (fd < lo && !atomic_compare_exchange_weak(&nb_own_lo, &lo, fd))
				;
			/* A settled loop (settle.c) skips NB_OWN_BADF: its
			 * number may be this one, closed behind the hooks'
			 * back (a raw syscall(SYS_close) bumps no generation).
			 * Back to the full path, which answers EBADF. */
			nb_settle_break();
			return true;
		}
	}
	return false;
}

/* Forgets fd as ours and closes it; false if it was not ours. A tombstone
 * is cleared without a close: the number is not ours to close. */
static bool own_drop(int fd)
{
	for (int i = 0; i < NB_OWN_MAX; i++) {
		int expect = fd + 1;
		if (atomic_compare_exchange_strong(&own[i], &expect, 0)) {
			nb_sys_close(fd);
			if (nb_g.log_fd == fd)
				nb_g.log_fd = 2;
			return true;
		}
		expect = -(fd + 1);
		if (atomic_compare_exchange_strong(&own[i], &expect, 0))
			return false;
	}
	return false;
}

void nb_own_lost(int fd)
{
	if (fd < 0)
		return;
	for (int i = 0; i < NB_OWN_MAX; i++) {
		int expect = fd + 1;
		if (atomic_compare_exchange_strong(&own[i], &expect, -(fd + 1))) {
			if (nb_g.log_fd == fd)
				nb_g.log_fd = 2;
			return;
		}
	}
}

/* How far below the top the search for a free number goes: past every
 * descriptor of ours and a margin of the program's. */
#define NB_OWN_SPAN (NB_OWN_MAX + 512)

int nb_hide_fd(int fd)
{
	struct rlimit rl;
	if (nb_sys_getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur < 64)
		return -1;
	int top = rl.rlim_cur < NB_OWN_CEILING ? (int)rl.rlim_cur : NB_OWN_CEILING;
	int floor = top > NB_OWN_SPAN + 3 ? top - NB_OWN_SPAN : 3;
	/* The highest free number, so that everything above ours is taken
	 * and the kernel's lowest-free rule reaches ours only last. Our own
	 * numbers and tombstones are known without a system call: one pass
	 * over the list marks them. */
	uint64_t mine[(NB_OWN_SPAN + 63) / 64] = { 0 };
	for (int i = 0; i < NB_OWN_MAX; i++) {
		int v = atomic_load(&own[i]);
		int n = v > 0 ? v - 1 : -v - 1;
		if (v != 0 && n >= floor && n < top)
			mine[(n - floor) / 64] |= 1ull << ((n - floor) % 64);
	}
	for (int n = top - 1; n >= floor; n--) {
		if (mine[(n - floor) / 64] & (1ull << ((n - floor) % 64)))
			continue; /* ours, or a tombstone */
		if (nb_sys_fcntl(n, F_GETFD, 0) >= 0)
			continue; /* the program's */
		int hi = nb_sys_fcntl(fd, F_DUPFD_CLOEXEC, (long)n);
		if (hi < 0 && errno == EMFILE)
			continue; /* another thread took it meanwhile: one lower */
		if (hi < 0)
			return -1;
		/* Another thread took n meanwhile and the kernel gave the next
		 * free number up: fine unless that one is a tombstone. */
		if ((hi != n && tombstoned(hi)) || !own_add(hi)) {
			nb_sys_close(hi);
			if (hi != n)
				continue;
			return -1;
		}
		return hi;
	}
	return -1;
}

void nb_own_release(int fd)
{
	own_drop(fd);
}

bool nb_own_release_all(void)
{
	bool any = false;
	for (int i = 0; i < NB_OWN_MAX; i++) {
		int v = atomic_load(&own[i]);
		if (v > 0 && own_drop(v - 1))
			any = true;
	}
	return any;
}

void nb_own_evict(int fd)
{
	own_drop(fd);
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
			if (v >= 0 && (unsigned)v >= lo && (unsigned)v <= cut &&
			    (!found || (unsigned)v < cut)) {
				cut = (unsigned)v;
				found = true;
			}
		}
		if (!found)
			return real(lo, hi, flags);
		if (cut > lo && real(lo, cut - 1, flags) != 0)
			return -1;
		if (cut == hi)
			return 0;
		lo = cut + 1;
	}
}

void nb_proc_fd_path(char out[32], int fd)
{
	/* nb_fmt, not snprintf: this runs in the fault trampoline too. */
	nb_fmt(out, 32, "/proc/self/fd/%d", fd);
}

int nb_reopen_hidden(int fd, dev_t dev, ino_t ino, int flags)
{
	char path[32];
	nb_proc_fd_path(path, fd);
	int r = (int)syscall(SYS_openat, AT_FDCWD, path, flags | O_CLOEXEC | O_NOCTTY);
	if (r < 0)
		return -1;
	struct stat st;
	int hidden = -1;
	/* The number may name another file by now (another thread). */
	if (nb_sys_fstat(r, &st) == 0 && st.st_dev == dev && st.st_ino == ino)
		hidden = nb_hide_fd(r);
	nb_sys_close(r);
	return hidden;
}
