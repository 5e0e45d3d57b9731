/*
 * hook_exec.c - programs started from this one: the exec family,
 * posix_spawn, system and popen.
 *
 * Owns: making sure no phantom is in memory when the kernel reads the
 * new program's arguments and environment. execve(2) copies argv and
 * envp from the caller's memory; a string inside a guarded page would
 * make it fail with EFAULT (a program that execs with arguments it read
 * from a file into its copy buffer: xargs, find -exec style tools).
 * posix_spawn, system and popen run execve in a child that shares the
 * parent's memory (CLONE_VM), so the parent's phantoms count there too.
 * All phantoms are filled first: exec is rare, and after a successful
 * exec the memory is gone anyway.
 * Must not: change the arguments, the result or errno of any of these.
 *
 * glibc's execl/execle/execlp build an argv array and call its internal
 * execve, which no hook sees: they are rebuilt here the same way on top
 * of the hooked execv/execve/execvp.
 */
#include "hook.h"

#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>

extern char **environ;

static inline void before_exec(void)
{
	if (NB_UNLIKELY(nb_phantom_any()))
		NB_KEEP_ERRNO(nb_defer_expose_all());
}

/* An exec replaces this image under the same pid: the live stats file is
 * the new image's to make (live.c), and comes back if the exec fails. */
static inline void before_own_exec(void)
{
	before_exec();
	NB_KEEP_ERRNO(nb_live_before_exec());
}

static inline int exec_failed(int r)
{
	NB_KEEP_ERRNO(nb_live_after_failed_exec());
	return r;
}

NB_EXPORT int execve(const char *path, char *const argv[], char *const envp[])
{
	before_own_exec();
	return exec_failed(NB_CALL(execve, (int)syscall(SYS_execve, path, argv, envp), path, argv, envp));
}

NB_EXPORT int execv(const char *path, char *const argv[])
{
	before_own_exec();
	return exec_failed(NB_CALL(execv, NB_NOSYS, path, argv));
}

NB_EXPORT int execvp(const char *file, char *const argv[])
{
	before_own_exec();
	return exec_failed(NB_CALL(execvp, NB_NOSYS, file, argv));
}

NB_EXPORT int execvpe(const char *file, char *const argv[], char *const envp[])
{
	before_own_exec();
	return exec_failed(NB_CALL(execvpe, NB_NOSYS, file, argv, envp));
}

NB_EXPORT int fexecve(int fd, char *const argv[], char *const envp[])
{
	before_own_exec();
	return exec_failed(NB_CALL(fexecve, NB_NOSYS, fd, argv, envp));
}

NB_EXPORT int execveat(int dirfd, const char *path, char *const argv[], char *const envp[],
		       int flags)
{
	before_own_exec();
	return exec_failed(NB_CALL(execveat, (int)syscall(SYS_execveat, dirfd, path, argv, envp, flags), dirfd,
		       path, argv, envp, flags));
}

/* The list execl and friends take: arg0, more arguments, NULL, and for
 * execle the environment after it. Builds argv on the stack (as glibc
 * does) and hands it to run. */
typedef int (*exec_fn)(const char *file, char *const argv[], char *const envp[]);

static int exec_list(exec_fn run, const char *file, const char *arg0, va_list ap, bool envp)
{
	va_list cp;
	va_copy(cp, ap);
	size_t n = 1;
	while (va_arg(cp, char *) != NULL)
		n++;
	va_end(cp);
	char *argv[n + 1];
	argv[0] = (char *)arg0;
	for (size_t i = 1; i <= n; i++)
		argv[i] = va_arg(ap, char *); /* the last one is the NULL */
	char *const *env = envp ? va_arg(ap, char *const *) : environ;
	return run(file, argv, env);
}

static int run_execv(const char *path, char *const argv[], char *const envp[])
{
	(void)envp;
	return execv(path, argv);
}

static int run_execvp(const char *file, char *const argv[], char *const envp[])
{
	(void)envp;
	return execvp(file, argv);
}

NB_EXPORT int execl(const char *path, const char *arg0, ...)
{
	va_list ap;
	va_start(ap, arg0);
	int r = exec_list(run_execv, path, arg0, ap, false);
	va_end(ap);
	return r;
}

NB_EXPORT int execlp(const char *file, const char *arg0, ...)
{
	va_list ap;
	va_start(ap, arg0);
	int r = exec_list(run_execvp, file, arg0, ap, false);
	va_end(ap);
	return r;
}

NB_EXPORT int execle(const char *path, const char *arg0, ...)
{
	va_list ap;
	va_start(ap, arg0);
	int r = exec_list(execve, path, arg0, ap, true);
	va_end(ap);
	return r;
}

NB_EXPORT int posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *fa,
			  const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
	before_exec();
	return NB_CALL(posix_spawn, ENOSYS, pid, path, fa, attr, argv, envp);
}

NB_EXPORT int posix_spawnp(pid_t *pid, const char *file, const posix_spawn_file_actions_t *fa,
			   const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
	before_exec();
	return NB_CALL(posix_spawnp, ENOSYS, pid, file, fa, attr, argv, envp);
}

NB_EXPORT int system(const char *cmd)
{
	before_exec();
	return NB_CALL(system, NB_NOSYS, cmd);
}

NB_EXPORT FILE *popen(const char *cmd, const char *mode)
{
	before_exec();
	return NB_CALL(popen, (errno = ENOSYS, NULL), cmd, mode);
}
