/*
 * init.c - start-up, fork and exit.
 *
 * Owns: the order in which the library comes alive (symbols, secure-mode
 * check, configuration, private log descriptor, fork handlers, then the
 * `active` switch the hooks test), what a forked child resets, and the
 * report at exit.
 * Must not: be re-entered: hooks that run before or during initialisation
 * see `active == 0` and pass straight through.
 *
 * fork: pthread_atfork runs for fork() and for glibc's internal __fork
 * (daemon(), popen's fallback), which a fork() hook would miss; _Fork()
 * skips it, so its hook (hook_signal.c) runs the same three handlers. A
 * raw fork or clone runs none: phantom.c notices the new pid where it
 * matters (nb_same_process) and defers nothing there. glibc's
 * posix_spawn and system() use clone(CLONE_VM|CLONE_VFORK) and call only
 * libc-internal functions in the child before exec, so no hook and no
 * handler runs there; vfork children run our hooks on the parent's memory,
 * which is safe because hooks in a child about to exec only bump
 * generations (the parent then reclassifies - a cost, never a wrong
 * answer). None of them needs to be interposed for correctness.
 */
#include "internal.h"
#include "xfer.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

struct nb_global nb_g = { .log_fd = -1, .track_min = NB_TRACK_MIN };

static atomic_int init_state; /* 0 not started, 1 running, 2 done */
static bool forked;            /* this process is a fork of the one that started */
static atomic_int reported;    /* the final report is written (or being written) */
static bool by_exit_route;     /* ... from _exit, exit_group or a signal */
/* The stderr the program started with, as the private log duplicates it:
 * the observe report goes there only while it is still that file. */
static int err_fd = -1;
static dev_t err_dev;
static ino_t err_ino;

extern char **environ;

static const char *get_env(const char *name, void *ctx)
{
	(void)ctx;
	return getenv(name);
}

/* Complaints about the configuration are held until it is known that
 * no seccomp filter is in force: under one, even this write is a call
 * the program never made. */
static char complaints[2048];
static size_t complaints_len;

static void complain_later(const char *line, void *ctx)
{
	(void)ctx;
	size_t n = strlen(line);
	if (complaints_len + n + 1 > sizeof complaints)
		return;
	memcpy(complaints + complaints_len, line, n);
	complaints_len += n;
	complaints[complaints_len++] = '\n';
}

static void complain_now(void)
{
	if (complaints_len > 0)
		nb_write_all(2, complaints, complaints_len);
	complaints_len = 0;
}

/* The program name goes into JSON and log lines: keep it plain. */
static void set_prog(void)
{
	const char *p = program_invocation_short_name;
	size_t n = 0;
	for (; p && *p && n < sizeof nb_g.prog - 1; p++)
		nb_g.prog[n++] = (*p >= 0x20 && *p < 0x7f && *p != '"' && *p != '\\') ? *p : '?';
	nb_g.prog[n] = '\0';
}

void nb_own_prepare_surrender(void)
{
	int saved = errno;
	nb_defer_expose_all();
	nb_mapping_forget(0, UINTPTR_MAX); /* their backings go: plain writes */
	nb_pipe_forget_free();
	nb_backing_drop_idle();
	errno = saved;
}

void nb_own_lost_notice(int fd)
{
	nb_own_lost(fd);
	nb_backing_fd_lost(fd);
}

void nb_fork_prepare(void)
{
	nb_phantom_fork_prepare();
	if (nb_phantom_any()) {
		nb_phantom_materialize_pipes();
		nb_phantom_materialize_leased_files();
	}
}

void nb_fork_parent(void)
{
	nb_phantom_fork_parent();
}

void nb_fork_child(void)
{
	/* Pass-through under a filter: the reset below makes calls. */
	if (nb_sandboxed())
		return;
	forked = true;
	atomic_store(&reported, 0); /* the child's own end writes its own */
	nb_g.pid = getpid();
	/* The init of a new PID namespace: the kernel drops its SIG_DFL
	 * signals, a handler would make them interrupt its calls. */
	if (nb_g.pid == 1)
		nb_term_give_back();
	nb_process_mark(); /* zeroed by the fork: this child is known */
	nb_live_atfork_child(); /* before the reset: it zeroes what is counted */
	nb_stats_reset();
	nb_loops_reset();
	nb_fdtab_forget_pairs();
	nb_settle_break(); /* no loop settled in the parent goes on here */
	nb_detect_reset_thread();
	nb_phantom_atfork_child();
	nb_mapping_atfork_child();
	nb_pipe_atfork_child();
	nb_backing_leases_atfork_child();
	nb_lease_atfork_child();
	nb_sigguard_atfork_child();
}

/* A fork the atfork handlers do not run for (_Fork, syscall(SYS_fork)):
 * the same three handlers around it. */
long nb_fork_around(long (*do_fork)(void))
{
	bool on = atomic_load(&nb_g.active) != 0;
	if (on)
		nb_fork_prepare();
	long r = do_fork();
	if (on) {
		int saved = errno;
		if (r == 0)
			nb_fork_child();
		else
			nb_fork_parent();
		errno = saved;
	}
	return r;
}

/*
 * The smallest read worth looking at. In mode on, a read of fewer bytes
 * than NOBOUNCE_MIN_CHUNK can never count towards arming (every
 * direction's minimum is at least that, pair.c nb_min_chunk_for), so
 * while the process has made no read that large, a loop of smaller reads
 * is left to the hot path: the real call and nothing else (a 4 KiB
 * read/write loop then costs little more than any preload costs, make
 * bench's passthru column). The first read the detector records lowers
 * it to NB_TRACK_MIN for good (detect.c record: a loop's short reads
 * must update its record). Observe mode exists to tell about every loop,
 * too small ones included ("its chunks are below ..."), so it looks from
 * NB_TRACK_MIN on. With the library off nothing is looked at.
 */
static size_t track_min(const struct nb_config *c)
{
	switch (c->mode) {
	case NB_MODE_ON:
		return c->min_chunk > NB_TRACK_MIN ? c->min_chunk : NB_TRACK_MIN;
	case NB_MODE_OBSERVE:
		return NB_TRACK_MIN;
	default:
		return SIZE_MAX;
	}
}

void nb_init(void)
{
	int expect = 0;
	if (!atomic_compare_exchange_strong(&init_state, &expect, 1))
		return;
	int saved = errno;
	nb_real_init();
	set_prog();

	/* setuid/setgid/capabilities: the environment is the caller's, not
	 * the program owner's. Stay a pure pass-through and read nothing. */
	nb_g.secure = getauxval(AT_SECURE) != 0;
	if (nb_g.secure) {
		nb_config_defaults(&nb_g.cfg);
		nb_g.cfg.mode = NB_MODE_OFF;
		goto done;
	}
	nb_config_parse(&nb_g.cfg, get_env, complain_later, NULL);
	nb_config_unknown(environ, complain_later, NULL);
	if (!nb_config_selects(&nb_g.cfg, nb_g.prog))
		nb_g.cfg.mode = NB_MODE_OFF;
	if (nb_g.cfg.mode == NB_MODE_OFF) {
		complain_now();
		goto done;
	}
	/* A seccomp filter inherited across exec (sandbox.c): nothing more,
	 * not even the complaints; the process runs as without the library.
	 * This is the first call the library makes on its own. */
	if (nb_sandbox_detect()) {
		nb_g.cfg.mode = NB_MODE_OFF;
		goto done;
	}
	complain_now();
	nb_g.pid = getpid();
	nb_process_mark();

	/* A private duplicate of stderr costs the program one descriptor
	 * number, so it is taken only when something will be written late:
	 * the observe report, the stats report or its error line at exit
	 * (coreutils close fd 2 before that), or chatty logging. Otherwise
	 * warnings go to fd 2. */
	if (nb_sys_fcntl(2, F_GETFD, 0) >= 0) {
		bool late = nb_g.cfg.mode == NB_MODE_OBSERVE || nb_g.cfg.stats[0] != '\0' ||
			    nb_g.cfg.log >= NB_LOG_INFO;
		nb_g.log_fd = late ? nb_hide_fd(2) : 2;
		struct stat st;
		if (nb_g.log_fd >= 0 && nb_sys_fstat(nb_g.log_fd, &st) == 0) {
			err_fd = nb_g.log_fd;
			err_dev = st.st_dev;
			err_ino = st.st_ino;
		}
	}
	pthread_atfork(nb_fork_prepare, nb_fork_parent, nb_fork_child);
	nb_live_start();
	/* Read before fault.c replaces SIGSEGV/SIGBUS with its trampoline:
	 * the summary is of the program's dispositions, inherited ones too. */
	nb_sigview_init();
	/* A mask inherited across exec may block SIGSEGV already, and a
	 * handler installed before the library may run with it blocked. */
	nb_sigguard_init(nb_sigview_segv_masked_at_init());
	/* Before fault.c takes its slots: the lease signal is one of them. */
	nb_lease_init();
	nb_xfer_set_send_chunk(nb_g.cfg.send_chunk, nb_g.cfg.send_chunk_set);
	nb_xfer_keep_limits(true);
	/* Phantom buffers materialise on a fault: the kernel's SIGSEGV and
	 * SIGBUS slots must be ours before the first one exists, and the
	 * program's own handlers keep working through the chain. */
	if (nb_g.cfg.mode == NB_MODE_ON && nb_fault_install() != 0)
		nb_log(NB_LOG_WARN, "cannot take SIGSEGV/SIGBUS: buffers will not be deferred");
	/* After sigview.c read the program's dispositions: ours is not one. */
	nb_term_init();
	nb_log(NB_LOG_INFO, "%s %s in %s mode (min chunk %zu, arm after %u)", "nobounce",
	       NB_VERSION, nb_mode_name(nb_g.cfg.mode), nb_g.cfg.min_chunk, nb_g.cfg.arm_after);
	/* Before the hooks become active: from then on only the first
	 * record may change it (detect.c). */
	atomic_store_explicit(&nb_g.track_min, track_min(&nb_g.cfg), memory_order_relaxed);
	atomic_store(&nb_g.active, 1);
done:
	if (!atomic_load(&nb_g.active))
		atomic_store_explicit(&nb_g.track_min, SIZE_MAX, memory_order_relaxed);
	atomic_store(&init_state, 2);
	errno = saved;
}

/* A fork child that exits with its own report may not write to the
 * parent's stats file: only a name with %p is per process. */
static bool child_may_report(void)
{
	return !forked || strstr(nb_g.cfg.stats, "%p") != NULL ||
	       strcmp(nb_g.cfg.stats, "stderr") == 0;
}

/* Is the private log still the stderr the program started with, and a
 * place where an operator reads it? A daemon that closed it (the log
 * then falls back to fd 2, ownfd.c, which it may have pointed elsewhere:
 * the file's identity tells), stderr on /dev/null, or a descriptor that
 * cannot be written: the report goes to a file. */
static bool stderr_usable(void)
{
	int fd = nb_g.log_fd;
	struct stat st;
	if (fd < 0 || err_fd < 0 || nb_sys_fstat(fd, &st) != 0 || st.st_dev != err_dev ||
	    st.st_ino != err_ino)
		return false;
	if (S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3)) /* /dev/null */
		return false;
	int fl = nb_sys_fcntl(fd, F_GETFL, 0);
	return fl >= 0 && (fl & O_ACCMODE) != O_RDONLY;
}

/* NOBOUNCE_REPORT=FILE, or (stderr gone) DIR/PROG-PID.report in the live
 * stats directory, else in /tmp: created new (O_EXCL, O_NOFOLLOW, 0600,
 * as the stats file). -1 when it cannot be. */
static int report_file(void)
{
	char spec[NB_STATS_PATH_MAX + 96], path[NB_STATS_PATH_MAX + 128];
	const char *why = NULL;
	if (nb_g.cfg.report[0] != '\0' && strcmp(nb_g.cfg.report, "stderr") != 0) {
		nb_fmt(spec, sizeof spec, "%s", nb_g.cfg.report);
	} else {
		char prog[sizeof nb_g.prog];
		size_t i = 0;
		for (; nb_g.prog[i]; i++) /* %p is the only expansion */
			prog[i] = nb_g.prog[i] == '%' ? '_' : nb_g.prog[i];
		prog[i] = '\0';
		const char *dir = nb_live_dir();
		if (dir != NULL)
			nb_fmt(spec, sizeof spec, "%s/%s-%%p.report", dir, prog);
		else
			nb_fmt(spec, sizeof spec, "/tmp/nobounce-%s-%%p.report", prog);
	}
	return nb_stats_open(spec, nb_g.pid, path, sizeof path, &why);
}

/* Where the observe report goes; *close_it when it is a file of ours. */
static int report_fd(bool *close_it)
{
	*close_it = false;
	bool to_file = nb_g.cfg.report[0] != '\0' && strcmp(nb_g.cfg.report, "stderr") != 0;
	if (!to_file && stderr_usable())
		return nb_g.log_fd;
	int fd = report_file();
	*close_it = fd >= 0;
	return fd;
}

/* The observe report, the stats report and the live file's removal: at
 * exit, _exit, a termination signal, or before a seccomp filter takes
 * effect. Async-signal-safe: no allocation, stdio or lock (fmt.c). A
 * write into a pipe whose reader is gone must not end the process by
 * SIGPIPE: it is blocked meanwhile, and one it raised is taken back. */
void nb_final_report(void)
{
	uint64_t pipe_bit = 1ull << (SIGPIPE - 1), before = 0, pending = 0;
	syscall(SYS_rt_sigpending, &pending, sizeof pending);
	bool was_pending = pending & pipe_bit;
	syscall(SYS_rt_sigprocmask, SIG_BLOCK, &pipe_bit, &before, sizeof pipe_bit);
	/* A destination that takes no more cuts the report short (log.c). */
	atomic_store(&nb_report_bounded, 1);

	uint64_t bounces, bytes;
	nb_loops_totals(&bounces, &bytes);
	bool any = bounces > 0;
	/* "No loop" is news for a process that moved data (gzip), noise for
	 * the shell helpers around it. */
	bool moved = atomic_load(&nb_g.tracked) != 0;
	if (nb_g.cfg.mode == NB_MODE_OBSERVE && nb_g.cfg.log != NB_LOG_OFF &&
	    (any || (moved && !forked)) && strcmp(nb_g.cfg.stats, "stderr") != 0) {
		bool close_it;
		int fd = report_fd(&close_it);
		if (fd >= 0)
			nb_loops_report_text(fd, nb_g.prog, nb_g.pid);
		if (close_it)
			nb_sys_close(fd);
	}
	/* A process leaving by _exit or a signal that moved nothing (a
	 * shell's _exit, a helper) has nothing to say, and must not take a
	 * shared report name (no %p) or the program's stderr from the
	 * process that has. */
	bool quiet = by_exit_route && !any && !moved && strstr(nb_g.cfg.stats, "%p") == NULL;
	if (child_may_report() && (any || !forked) && !quiet)
		nb_stats_write_report();
	nb_live_stop();
	atomic_store(&nb_report_bounded, 0);

	syscall(SYS_rt_sigpending, &pending, sizeof pending);
	if ((pending & pipe_bit) && !was_pending) {
		struct timespec zero = { 0, 0 };
		syscall(SYS_rt_sigtimedwait, &pipe_bit, NULL, &zero, sizeof pipe_bit);
	}
	if (!(before & pipe_bit))
		syscall(SYS_rt_sigprocmask, SIG_UNBLOCK, &pipe_bit, NULL, sizeof pipe_bit);
}

/* The final report on every way out, once: exit (the destructor), _exit
 * and _Exit (hook_exit.c), exit_group through syscall() (hook_sandbox.c)
 * and a termination signal at SIG_DFL (termsig.c). Not in a vfork child
 * (it shares the parent's memory: the pid tells) nor in a child of a raw
 * fork, whose counters are the parent's. */
void nb_exit_report(void)
{
	if (!atomic_load(&nb_g.active) || (pid_t)syscall(SYS_getpid) != nb_g.pid)
		return;
	if (atomic_exchange(&reported, 1))
		return;
	int saved = errno;
	by_exit_route = true;
	nb_final_report();
	errno = saved;
}

/* Unit tests link the mechanisms without the hooks and drive them by
 * hand; only the library itself starts up on load. */
#ifdef NB_SHARED
__attribute__((constructor, used)) static void nb_ctor(void)
{
	nb_init();
}

__attribute__((destructor, used)) static void nb_dtor(void)
{
	/* Under a seccomp filter `active` is 0 already: the report was
	 * written before the filter came (sandbox.c). */
	if (!atomic_load(&nb_g.active))
		return;
	int saved = errno;
	/* Nothing more to learn; keep the report consistent. */
	bool first = !atomic_exchange(&reported, 1);
	atomic_store(&nb_g.active, 0);
	nb_settle_break();
	if (first)
		nb_final_report();
	errno = saved;
}
#endif
