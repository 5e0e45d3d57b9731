/*
 * stats.c - counters and the exit report.
 *
 * Owns: the process-wide atomic counters, the JSON report, and writing it
 * where NOBOUNCE_STATS says without ever harming another file: %p expands
 * to the pid, the file is created with O_EXCL|O_NOFOLLOW (an existing file
 * or a symlink planted at that name is never followed or overwritten) and
 * mode 0600.
 * Must not: count per call on the pass-through path - counters move once
 * per bounce, miss or classification, never per read or write, so that
 * threads do not fight over one cache line.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static struct nb_counters local;
struct nb_counters *nb_statsp = &local;

void nb_stats_reset(void)
{
	memset(nb_statsp, 0, sizeof *nb_statsp);
}

void nb_stats_use_local(void)
{
	if (nb_statsp == &local)
		return;
	memcpy(&local, nb_statsp, sizeof local);
	nb_statsp = &local;
}

int nb_stats_open(const char *spec, pid_t pid, char *path, size_t cap, const char **why)
{
	size_t n = 0;
	for (const char *s = spec; *s && n + 1 < cap; s++) {
		if (s[0] == '%' && s[1] == 'p') {
			n += nb_fmt(path + n, cap - n, "%d", (int)pid);
			s++;
		} else {
			path[n++] = *s;
		}
	}
	if (n >= cap - 1) {
		*why = "path too long";
		return -1;
	}
	path[n] = '\0';
	/* openat by raw system call: our own open() hook is not for us. */
	int fd = (int)syscall(SYS_openat, AT_FDCWD, path,
			      O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	/* Fixed texts: strerror may translate, that is, allocate. */
	if (fd < 0)
		*why = errno == EEXIST ? "file exists; not overwriting it (put %p in the name "
					 "for one file per process)"
		       : errno == ENOENT ? "no such directory"
		       : errno == EACCES ? "permission denied"
		       : errno == ELOOP ? "a symbolic link (not followed)"
					 : "cannot create it";
	return fd;
}

#define C(field) (unsigned long long)atomic_load(&nb_stats.field)

size_t nb_stats_json(char *buf, size_t cap, const char *prog, pid_t pid)
{
	const struct nb_config *c = &nb_g.cfg;
	char paths[64] = "";
	for (unsigned bit = 1; bit <= NB_PATH_SPLICE; bit <<= 1)
		if (c->paths & bit)
			nb_fmt(paths + strlen(paths), sizeof paths - strlen(paths), "%s\"%s\"",
				 paths[0] ? ", " : "", nb_path_name((enum nb_path)bit));
	uint64_t bounces, bounce_bytes;
	nb_loops_totals(&bounces, &bounce_bytes);
	size_t len = nb_fmt(
		buf, cap,
		"{\n  \"nobounce\": \"%s\",\n  \"program\": \"%s\",\n  \"pid\": %d,\n  \"ppid\": %d,\n"
		"  \"mode\": \"%s\",\n  \"deferral\": \"%s\",\n  \"exact\": \"%s\",\n  \"leases\": \"%s\",\n"
		"  \"config\": {\"min_chunk\": %zu, \"arm_after\": %u, "
		"\"paths\": [%s]},\n"
		"  \"counters\": {\"bounces\": %llu, \"bounce_bytes\": %llu, \"arms\": %llu, "
		"\"disarms\": %llu, \"misses_unforwarded\": %llu, \"misses_two_destinations\": %llu, "
		"\"misses_modified\": %llu, \"classified\": %llu, \"revalidations\": %llu, "
		"\"stale\": %llu, \"fd_chunks\": %llu, \"lock_skips\": %llu, "
		"\"untracked_iterations\": %llu, \"deferred_reads\": %llu, \"forwarded_writes\": %llu, "
		"\"forwarded_bytes\": %llu, \"edge_bytes\": %llu, \"moved_to_file\": %llu, \"kernel_calls\": %llu, "
		"\"leases_taken\": %llu, \"leases_refused\": %llu, \"leases_broken\": %llu, "
		"\"mapped_writes\": %llu, \"mapped_bytes\": %llu, \"small_served\": %llu},\n"
		"  \"loops\": ",
		NB_VERSION, prog, (int)pid, (int)syscall(SYS_getppid), nb_mode_name(c->mode),
		nb_sigguard_reason() ? nb_sigguard_reason() : "allowed", nb_exact_name(c->exact),
		nb_lease_state(), c->min_chunk, c->arm_after,
		paths, (unsigned long long)bounces, (unsigned long long)bounce_bytes,
		C(arms), C(disarms), C(misses[NB_MISS_UNFORWARDED]), C(misses[NB_MISS_TWO_DESTS]),
		C(misses[NB_MISS_MODIFIED]), C(classified), C(revalidations), C(stale),
		C(fd_slots), C(lock_skips), (unsigned long long)nb_loops_overflow(), C(deferred),
		C(forwarded), C(forwarded_bytes), C(edge_bytes), C(moved_to_file), C(kernel_calls),
		C(leases_taken), C(leases_refused), C(leases_broken), C(mapped_writes),
		C(mapped_bytes), C(small_served));
	if (len >= cap)
		return cap - 1;
	len = nb_loops_json(buf, len, cap);
	len += nb_fmt(buf + len, cap - len, "\n}\n");
	return len < cap ? len : cap - 1;
}

#define NB_JSON_CAP (64 * 1024)

void nb_stats_write_report(void)
{
	const struct nb_config *c = &nb_g.cfg;
	if (c->stats[0] == '\0')
		return;
	/* Not malloc: this may run in a signal handler (termsig.c). */
	char *buf = nb_sys_mmap_anon(NB_JSON_CAP);
	if (buf == MAP_FAILED)
		return;
	size_t n = nb_stats_json(buf, NB_JSON_CAP, nb_g.prog, nb_g.pid);
	if (strcmp(c->stats, "stderr") == 0) {
		if (nb_g.log_fd >= 0)
			nb_write_all(nb_g.log_fd, buf, n);
	} else {
		char path[NB_STATS_PATH_MAX + 32];
		const char *why = NULL;
		int fd = nb_stats_open(c->stats, nb_g.pid, path, sizeof path, &why);
		if (fd >= 0) {
			nb_write_all(fd, buf, n);
			nb_sys_close(fd);
		} else {
			nb_log(NB_LOG_ERROR, "cannot write stats to %s: %s", path, why);
		}
	}
	nb_sys_munmap(buf, NB_JSON_CAP);
}
