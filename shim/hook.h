/*
 * hook.h - conventions shared by the hook_*.c files.
 *
 * Owns: the helpers every hook uses to stay exact: calling the real
 * function (or a raw system call when a hook runs before symbols are
 * resolved), preserving errno around bookkeeping, and the 64-bit aliases.
 * Must not: contain mechanisms; hooks call into detect.c / fdtab.c.
 *
 * Rule for every hook: call the real function first, with the caller's
 * arguments untouched; look at the caller's pointers only after the kernel
 * accepted them (the call succeeded), so a bad pointer, a negative count
 * or a closed descriptor gets exactly the plain call's result.
 */
#ifndef NOBOUNCE_HOOK_H
#define NOBOUNCE_HOOK_H

#include "internal.h"

#include <errno.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The hooks only do work once the library is initialised and enabled. */
static inline bool nb_on(void)
{
	return atomic_load_explicit(&nb_g.active, memory_order_relaxed) != 0;
}

/* Has any thread ever recorded a read for the detector (detect.c)? A
 * thread's ring holds records only after its own record() set this flag,
 * which is never cleared: while a thread sees it unset, its ring is empty
 * and nb_detect_write/writev would return at once. */
static inline bool nb_tracked(void)
{
	return atomic_load_explicit(&nb_g.tracked, memory_order_relaxed) != 0;
}

/* Runs bookkeeping without letting it change errno. */
#define NB_KEEP_ERRNO(stmt)          \
	do {                         \
		int nb_saved_ = errno; \
		stmt;                \
		errno = nb_saved_;   \
	} while (0)

/* Calls the next definition of `name`; when it cannot be resolved yet (a
 * hook reached from inside dlsym during start-up), `fallback` runs. */
#define NB_CALL(name, fallback, ...)                                     \
	(NB_LIKELY(nb_real.name != NULL) ? nb_real.name(__VA_ARGS__)     \
	 : (nb_real_init(), nb_real.name != NULL) ? nb_real.name(__VA_ARGS__) \
						  : (fallback))

/* A hooked call naming one of the library's own descriptors answers as
 * the kernel would for a number that is not open. */
#define NB_OWN_BADF(fd, ret)                         \
	do {                                         \
		if (NB_UNLIKELY(nb_own_maybe(fd)) && \
		    nb_own_is(fd)) {                 \
			errno = EBADF;               \
			return ret;                  \
		}                                    \
	} while (0)

/* A call that creates descriptors failed with EMFILE: without the
 * library's own descriptors it might not have. Give them up and retry
 * once, so the program sees the plain result. */
#define NB_EMFILE_RETRY(r, call)                                             \
	do {                                                                 \
		r = (call);                                                  \
		if (NB_UNLIKELY(r < 0) && errno == EMFILE) {                 \
			nb_own_prepare_surrender();                          \
			if (nb_own_release_all())                            \
				r = (call);                                  \
		}                                                            \
	} while (0)

/* For functions with no raw-syscall equivalent. */
#define NB_NOSYS (errno = ENOSYS, -1)

/* On LP64, glibc's *64 variants are the same functions under a second
 * name; programs built with _FILE_OFFSET_BITS=64 (coreutils, for one)
 * call those names, so both must be hooked. */
_Static_assert(sizeof(off_t) == sizeof(off64_t), "LP64 only: *64 hooks alias the plain ones");
#define NB_ALIAS(target) __attribute__((alias(#target), visibility("default")))

#endif
