/*
 * hook_limits.c - resource limits the kernel paths depend on.
 *
 * Owns: setrlimit and prlimit (+64). A write into a file served by
 * copy_file_range or splice must be cut at RLIMIT_FSIZE exactly as
 * write(2) would be (xfer.c); the limit is kept between writes, and every
 * change the program makes reaches xfer.c here.
 * Must not: change any argument or result. Built without sanitizers
 * (Makefile NOSAN_SRC): sanitizer runtimes call setrlimit while they
 * start, before they could run instrumented code.
 */
#include "hook.h"
#include "xfer.h"

#include <sys/resource.h>

NB_EXPORT int setrlimit(__rlimit_resource_t res, const struct rlimit *rl)
{
	if (NB_UNLIKELY(nb_phantom_any())) /* hazard class 5: hook_kread.c */
		NB_KEEP_ERRNO(nb_defer_expose(rl, sizeof *rl));
	int r = NB_CALL(setrlimit, (int)syscall(SYS_setrlimit, res, rl), res, rl);
	if (nb_on()) /* before start-up nothing is kept yet */
		nb_xfer_limits_changed();
	return r;
}
int setrlimit64(__rlimit_resource_t res, const struct rlimit64 *rl) NB_ALIAS(setrlimit);

NB_EXPORT int prlimit(pid_t pid, __rlimit_resource_t res, const struct rlimit *nl,
		      struct rlimit *ol)
{
	if (NB_UNLIKELY(nb_phantom_any())) { /* hazard class 5: hook_kread.c */
		NB_KEEP_ERRNO(nb_defer_expose(nl, nl ? sizeof *nl : 0));
		NB_KEEP_ERRNO(nb_defer_expose(ol, ol ? sizeof *ol : 0));
	}
	int r = NB_CALL(prlimit, (int)syscall(SYS_prlimit64, pid, res, nl, ol), pid, res, nl, ol);
	if (nl != NULL && nb_on())
		nb_xfer_limits_changed();
	return r;
}
int prlimit64(pid_t pid, __rlimit_resource_t res, const struct rlimit64 *nl, struct rlimit64 *ol)
	NB_ALIAS(prlimit);
