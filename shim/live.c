/*
 * live.c - the counters of a running process, readable from outside.
 *
 * Owns: the live stats file. With NOBOUNCE_LIVE=on (the default) the
 * process-wide counters (stats.c) live in a shared mapping of a file,
 * DIR/PID.live, so `nobounce stat PID` reads them while the program runs,
 * at no cost beyond the counting itself. DIR is NOBOUNCE_LIVE_DIR, else
 * $XDG_RUNTIME_DIR/nobounce, else /tmp/nobounce-UID; it must be a
 * directory of this user that no one else may enter (0700, created so),
 * and the file is opened with O_NOFOLLOW, mode 0600: a planted symlink
 * or someone else's directory turns live stats off with one warning.
 * The file is removed at exit; a forked child gets a file of its own
 * (the parent's mapping is shared memory); an exec'd image with the same
 * pid takes the file over.
 *
 * Layout (the reader, scripts/nobounce, needs nothing else): bytes 0-15
 * the magic "nobounce-live 1\n"; from 16, NUL-terminated text lines
 * "key value" (pid, starttime - field 22 of /proc/PID/stat, to tell a
 * reused pid -, program, mode, fields NAME NAME ...); from byte 1024 the
 * counters, one native 64-bit unsigned integer per name in `fields`.
 * Bytes 1008-1019 are control words an operator writes (header line
 * "control 1008"): three native 32-bit unsigned integers, hold, request
 * and ack. `nobounce fill PID` sets hold to 1 and request to ack + 1; the
 * library, at its next hooked call with a phantom alive or its next read
 * that could be deferred (nb_live_poll), fills every phantom and stores
 * request into ack. While hold is 1 no read is deferred, so nothing new
 * is guarded; `nobounce fill --release PID` sets it back to 0. A process
 * blocked in a system call answers when that call returns.
 * Must not: allocate, or run anywhere but at start-up, fork and exit
 * (nb_live_poll excepted: two loads when nothing is asked).
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define NB_LIVE_MAGIC "nobounce-live 1\n"
#define NB_LIVE_TEXT 16
#define NB_LIVE_DATA 1024
#define NB_LIVE_CTL 1008 /* control words: hold, request, ack (u32 each) */
#define NB_LIVE_SIZE (NB_LIVE_DATA + sizeof(struct nb_counters))

/* The names of struct nb_counters's members, in order (one u64 each). */
static const char *const names[] = {
	"arms", "disarms", "misses_unforwarded", "misses_two_destinations", "misses_modified",
	"classified", "revalidations", "stale", "fd_chunks", "lock_skips", "deferred_reads",
	"forwarded_writes", "forwarded_bytes", "edge_bytes", "moved_to_file", "kernel_calls",
	"bytes_sendfile", "bytes_splice", "bytes_copy_file_range", "materialized",
	"pipes_in_use", "bounces", "bounce_bytes", "leases_taken", "leases_refused",
	"leases_broken", "mapped_writes", "mapped_bytes", "small_served",
};
_Static_assert(sizeof names / sizeof names[0] * 8 == sizeof(struct nb_counters),
	       "live.c names[] must list every member of struct nb_counters");

static char *map;      /* the mapping, NULL when live stats are off */
static char path[NB_STATS_PATH_MAX + 64];
static char dir_used[NB_STATS_PATH_MAX + 32]; /* its directory, "" if none */
static pid_t owner;    /* the process the file is for */
static _Atomic(_Atomic uint32_t *) ctl; /* control words in the mapping */

/* A vfork child (dash and posix_spawn use one) shares this memory and
 * runs the exec hooks: the file and this state are not its to change. */
static bool mine(void)
{
	return (pid_t)syscall(SYS_getpid) == owner;
}

static bool private_dir(const char *dir)
{
	struct stat st;
	return lstat(dir, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == geteuid() &&
	       (st.st_mode & 077) == 0;
}

/* The directory, created if missing; false (with the reason logged) if it
 * is not this user's private one. */
static bool live_dir(char *dir, size_t cap)
{
	const char *set = nb_g.cfg.live_dir[0] ? nb_g.cfg.live_dir : NULL;
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	if (set)
		snprintf(dir, cap, "%s", set);
	else if (xdg && xdg[0] == '/' && private_dir(xdg))
		snprintf(dir, cap, "%s/nobounce", xdg);
	else
		snprintf(dir, cap, "/tmp/nobounce-%u", (unsigned)geteuid());
	if (syscall(SYS_mkdirat, AT_FDCWD, dir, 0700) != 0 && errno != EEXIST) {
		nb_log(NB_LOG_WARN, "live stats off: cannot create %s: %s", dir, strerror(errno));
		return false;
	}
	if (!private_dir(dir)) {
		nb_log(NB_LOG_WARN, "live stats off: %s is not a directory of this user closed "
		       "to others (mode 0700)", dir);
		return false;
	}
	return true;
}

static unsigned long long starttime(void)
{
	char b[1024];
	int fd = (int)syscall(SYS_openat, AT_FDCWD, "/proc/self/stat", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = syscall(SYS_read, fd, b, sizeof b - 1);
	nb_sys_close(fd);
	if (n <= 0)
		return 0;
	b[n] = '\0';
	/* after the ")" that ends the command name: field 3 is the state */
	char *p = strrchr(b, ')');
	for (int field = 2; p != NULL && field < 22; field++)
		p = strchr(p + 1, ' ');
	return p ? strtoull(p + 1, NULL, 10) : 0;
}

/* Creates this process's file and moves the counters into it; the values
 * counted so far go along. */
static void live_open(void)
{
	char dir[NB_STATS_PATH_MAX + 32];
	if (!live_dir(dir, sizeof dir))
		return;
	snprintf(path, sizeof path, "%s/%d.live", dir, (int)nb_g.pid);
	int fd = (int)syscall(SYS_openat, AT_FDCWD, path,
			      O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, 0600);
	struct stat st;
	if (fd < 0 || nb_sys_fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
	    st.st_nlink != 1 || ftruncate(fd, 0) != 0 || ftruncate(fd, (off_t)NB_LIVE_SIZE) != 0) {
		nb_log(NB_LOG_WARN, "live stats off: cannot use %s: %s", path,
		       fd < 0 ? strerror(errno) : "not a private regular file");
		if (fd >= 0)
			nb_sys_close(fd);
		path[0] = '\0';
		return;
	}
	void *m = nb_sys_mmap_shared(fd, NB_LIVE_SIZE);
	nb_sys_close(fd);
	if (m == MAP_FAILED) {
		unlink(path);
		path[0] = '\0';
		return;
	}
	map = m;
	owner = nb_g.pid;
	memcpy(dir_used, dir, sizeof dir_used);
	memcpy(map, NB_LIVE_MAGIC, NB_LIVE_TEXT);
	size_t n = (size_t)snprintf(map + NB_LIVE_TEXT, NB_LIVE_CTL - NB_LIVE_TEXT,
				    "pid %d\nstarttime %llu\nprogram %s\nmode %s\nexact %s\nversion %s\n"
				    "control %d\nfields",
				    (int)nb_g.pid, starttime(), nb_g.prog,
				    nb_mode_name(nb_g.cfg.mode), nb_exact_name(nb_g.cfg.exact),
				    NB_VERSION, NB_LIVE_CTL);
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		n += (size_t)snprintf(map + NB_LIVE_TEXT + n, NB_LIVE_CTL - NB_LIVE_TEXT - n, " %s",
				      names[i]);
	snprintf(map + NB_LIVE_TEXT + n, NB_LIVE_CTL - NB_LIVE_TEXT - n, "\n");
	struct nb_counters *live = (struct nb_counters *)(void *)(map + NB_LIVE_DATA);
	memcpy(live, nb_statsp, sizeof *live);
	nb_statsp = live;
	atomic_store_explicit(&ctl, (_Atomic uint32_t *)(void *)(map + NB_LIVE_CTL),
			      memory_order_release);
}

/* Set while this thread fills on request: the fill itself makes calls
 * the hooks see (clock_gettime, for one), which must not fill again -
 * the entry being filled is held by this very thread. */
static __thread bool polling __attribute__((tls_model("initial-exec")));

bool nb_live_poll(void)
{
	_Atomic uint32_t *c = atomic_load_explicit(&ctl, memory_order_acquire);
	if (c == NULL)
		return false;
	uint32_t req = atomic_load_explicit(&c[1], memory_order_acquire);
	if (NB_UNLIKELY(req != atomic_load_explicit(&c[2], memory_order_relaxed)) && !polling) {
		polling = true;
		/* Every phantom, wherever it is; not the pairs' touch. A
		 * request that races with a read being deferred right now is
		 * answered with that phantom filled too: hold is set first
		 * by the tool, and the fill runs after this load saw it. */
		nb_defer_expose_all();
		atomic_store_explicit(&c[2], req, memory_order_release);
		polling = false;
	}
	return atomic_load_explicit(&c[0], memory_order_relaxed) != 0;
}

/* Files of processes that ended without their exit handlers (killed, or
 * a forked child's _exit) are removed by the next process that starts:
 * their pid is gone. Raw getdents64: nothing here may allocate. */
static void sweep(const char *dir)
{
	int dfd = (int)syscall(SYS_openat, AT_FDCWD, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return;
	char buf[4096];
	long n;
	while ((n = syscall(SYS_getdents64, dfd, buf, sizeof buf)) > 0) {
		for (long at = 0; at < n;) {
			const struct nb_dirent64 *d = (const void *)(buf + at);
			at += d->reclen;
			char *end;
			long pid = strtol(d->name, &end, 10);
			if (pid > 0 && strcmp(end, ".live") == 0 && pid != (long)nb_g.pid &&
			    kill((pid_t)pid, 0) != 0 && errno == ESRCH)
				syscall(SYS_unlinkat, dfd, d->name, 0);
		}
	}
	nb_sys_close(dfd);
}

void nb_live_start(void)
{
	if (!nb_g.cfg.live)
		return;
	live_open();
	if (map != NULL) {
		char *slash = strrchr(path, '/');
		*slash = '\0';
		sweep(path);
		*slash = '/';
	}
}

void nb_live_atfork_child(void)
{
	/* The mapping is the parent's: counting into it would change the
	 * parent's numbers. The child starts from zero, in its own file. */
	if (map == NULL)
		return;
	nb_stats_use_local();
	atomic_store(&ctl, NULL);
	nb_sys_munmap(map, NB_LIVE_SIZE);
	map = NULL;
	path[0] = '\0';
	live_open();
}

/* Exit: the file goes. The mapping stays - other threads may still be
 * counting into it while the process ends. */
void nb_live_stop(void)
{
	/* No file, no call: exec hooks reach here in every mode, and under
	 * a seccomp filter (sandbox.c) even getpid may be refused. */
	if (path[0] == '\0' || !mine())
		return;
	/* By system call: the final report may run in a signal handler,
	 * and unlink() is a hook of ours (hook_kread.c). */
	syscall(SYS_unlinkat, AT_FDCWD, path, 0);
	path[0] = '\0';
}

/* The reports of a process whose stderr is gone go next to the live
 * files (init.c): the operator's private directory, already made. */
const char *nb_live_dir(void)
{
	return dir_used[0] != '\0' && mine() ? dir_used : NULL;
}

/* The new image, preloaded again, makes the file anew under the same
 * pid; one that is not leaves none behind. */
void nb_live_before_exec(void)
{
	nb_live_stop();
}

/* The exec failed: the counters move into a new file (the old mapping is
 * left alone, for the same reason as at exit). */
void nb_live_after_failed_exec(void)
{
	if (nb_g.cfg.live && map != NULL && path[0] == '\0' && mine())
		live_open();
}
