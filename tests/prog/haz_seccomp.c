/*
 * haz_seccomp.c - a copy loop under a seccomp filter (hazard class 7),
 * one scenario per run. The integration test runs each plain and
 * preloaded and requires the same output, exit status and files.
 *
 *   haz_seccomp strict SRC PRE          strict mode (read, write, exit,
 *                                       sigreturn only), exit by SYS_exit
 *   haz_seccomp filter SRC PRE          BPF allow-list, prctl, KILL_PROCESS
 *   haz_seccomp filter-thread SRC PRE   the same, default KILL_THREAD
 *   haz_seccomp filter-syscall SRC PRE  the same, syscall(SYS_seccomp)
 *   haz_seccomp exec SRC PRE            an allow-list with execve, then
 *                                       exec of "copy": the new image
 *                                       starts under the inherited filter
 *   haz_seccomp strict-fault SRC PRE    strict, then a real SIGSEGV: the
 *                                       handler set before the filter runs
 *   haz_seccomp filter-fault SRC PRE    the same under the allow-list
 *   haz_seccomp copy SRC PRE            the plain copy loop (exec runs it
 *                                       with SRC fd:N, an inherited fd)
 *
 * The copy reads SRC in 256 KiB chunks into one page-aligned buffer and
 * writes each chunk to stdout. PRE iterations run before the filter, plus
 * one read whose bytes are written only after it: with an armed loop
 * (NOBOUNCE_ARM_AFTER=1) that buffer is a phantom at the moment the
 * filter arrives. filter-syscall first probes for seccomp(2) the way
 * libseccomp does (a NULL program: EFAULT, nothing installed). After the filter the program also looks at every byte
 * it read (a checksum), and reports on stderr with write(2) alone:
 * "bytes N sum S".
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#define CHUNK (256 * 1024)

extern char **environ;

static char *buf;
static int fault_exit_raw; /* strict mode: exit_group is not allowed */

static void on_segv(int sig)
{
	(void)sig;
	static const char m[] = "fault caught\n";
	(void)!write(2, m, sizeof m - 1);
	if (fault_exit_raw)
		syscall(SYS_exit, 3);
	_exit(3);
}

/* A real fault after the copy, where the program's own handler decides. */
static void real_fault(void)
{
	static char *volatile nowhere;
	*nowhere = 1;
}
static uint64_t total, sum;

/* Output with write(2) only: printf could reach for fstat or brk. */
static void say(const char *what, uint64_t a, uint64_t b)
{
	char line[128], num[2][24];
	uint64_t v[2] = { a, b };
	for (int k = 0; k < 2; k++) {
		char tmp[24];
		int n = 0;
		do
			tmp[n++] = (char)('0' + v[k] % 10);
		while ((v[k] /= 10) != 0);
		for (int i = 0; i < n; i++)
			num[k][i] = tmp[n - 1 - i];
		num[k][n] = '\0';
	}
	size_t len = 0;
	for (const char *p = what; *p; p++)
		line[len++] = *p;
	line[len++] = ' ';
	for (const char *p = num[0]; *p; p++)
		line[len++] = *p;
	line[len++] = ' ';
	line[len++] = 's';
	line[len++] = 'u';
	line[len++] = 'm';
	line[len++] = ' ';
	for (const char *p = num[1]; *p; p++)
		line[len++] = *p;
	line[len++] = '\n';
	(void)!write(2, line, len);
}

static int write_all(const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(1, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static void look(size_t n)
{
	for (size_t i = 0; i < n; i++)
		sum = sum * 31 + (unsigned char)buf[i];
}

/* PRE iterations that do not look at the bytes, then one more read. */
static ssize_t before(int src, int pre)
{
	for (int i = 0; i < pre; i++) {
		ssize_t n = read(src, buf, CHUNK);
		if (n <= 0)
			return n;
		total += (uint64_t)n;
		if (write_all(buf, (size_t)n) != 0)
			return -1;
	}
	return read(src, buf, CHUNK);
}

/* The pending read's bytes, then the rest of the loop. */
static int after(int src, ssize_t n)
{
	while (n > 0) {
		look((size_t)n);
		total += (uint64_t)n;
		if (write_all(buf, (size_t)n) != 0)
			return 1;
		n = read(src, buf, CHUNK);
	}
	say(n < 0 ? "error bytes" : "bytes", total, sum);
	return n < 0;
}

#define ALLOW(nr) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 1), \
		  BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)

/* What the copy needs after the filter, and what glibc's exit needs. */
static struct sock_filter copy_only[] = {
	BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
	BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
	BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
	ALLOW(SYS_read), ALLOW(SYS_write), ALLOW(SYS_exit_group), ALLOW(SYS_exit),
	ALLOW(SYS_rt_sigreturn),
	BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
};

/* What a dynamic program needs from execve to exit, and no more: no
 * sendfile, splice, copy_file_range, lseek, getpid, fcntl, rt_sigaction,
 * mkdir, unlink, process_vm_readv. */
static struct sock_filter exec_list[] = {
	BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
	BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
	BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
	ALLOW(SYS_read), ALLOW(SYS_write), ALLOW(SYS_exit_group), ALLOW(SYS_exit),
	ALLOW(SYS_rt_sigreturn), ALLOW(SYS_execve), ALLOW(SYS_brk), ALLOW(SYS_arch_prctl),
	ALLOW(SYS_mmap), ALLOW(SYS_munmap), ALLOW(SYS_mprotect), ALLOW(SYS_access),
	ALLOW(SYS_openat), ALLOW(SYS_newfstatat), ALLOW(SYS_fstat), ALLOW(SYS_close),
	ALLOW(SYS_pread64), ALLOW(SYS_set_tid_address), ALLOW(SYS_set_robust_list),
	ALLOW(SYS_rseq), ALLOW(SYS_prlimit64), ALLOW(SYS_getrandom),
	BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
};

static int install(struct sock_filter *f, unsigned short len, unsigned kill, int how)
{
	f[len - 1].k = kill;
	struct sock_fprog prog = { len, f };
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		return -1;
	if (how == 0)
		return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog);
	return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog);
}

#define LEN(a) (unsigned short)(sizeof(a) / sizeof((a)[0]))

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: haz_seccomp SCENARIO SRC PRE\n");
		return 2;
	}
	const char *s = argv[1];
	int pre = atoi(argv[3]);
	buf = mmap(NULL, CHUNK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int src = strncmp(argv[2], "fd:", 3) == 0 ? atoi(argv[2] + 3) : open(argv[2], O_RDONLY);
	if (buf == MAP_FAILED || src < 0) {
		perror("setup");
		return 2;
	}
	if (strcmp(s, "filter-syscall") == 0) {
		long r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, NULL);
		printf("probe %ld %s\n", r, r < 0 && errno == EFAULT ? "EFAULT" : "?");
		fflush(stdout);
	}
	ssize_t n = before(src, pre);
	int rc;

	bool fault = strstr(s, "-fault") != NULL;
	if (fault) {
		struct sigaction sa;
		memset(&sa, 0, sizeof sa);
		sa.sa_handler = on_segv;
		sigaction(SIGSEGV, &sa, NULL);
	}
	if (strcmp(s, "strict") == 0 || strcmp(s, "strict-fault") == 0) {
		fault_exit_raw = 1;
		if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_STRICT) != 0) {
			perror("prctl");
			return 2;
		}
		rc = after(src, n);
		if (fault)
			real_fault();
		syscall(SYS_exit, rc); /* exit_group is not allowed */
	} else if (strcmp(s, "filter") == 0 || strcmp(s, "filter-thread") == 0 ||
		   strcmp(s, "filter-syscall") == 0 || strcmp(s, "filter-fault") == 0) {
		unsigned kill = strcmp(s, "filter-thread") == 0 ? SECCOMP_RET_KILL_THREAD
								: SECCOMP_RET_KILL_PROCESS;
		if (install(copy_only, LEN(copy_only), kill, strcmp(s, "filter-syscall") == 0) != 0) {
			perror("seccomp");
			return 2;
		}
		rc = after(src, n);
		if (fault)
			real_fault();
		return rc;
	} else if (strcmp(s, "exec") == 0) {
		/* The pending chunk goes out first; the new image reads on
		 * from the shared offset. */
		if (n > 0) {
			total += (uint64_t)n;
			if (write_all(buf, (size_t)n) != 0)
				return 1;
		}
		if (install(exec_list, LEN(exec_list), SECCOMP_RET_KILL_PROCESS, 0) != 0) {
			perror("seccomp");
			return 2;
		}
		/* The new image reads on from the inherited descriptor. */
		char fd[16];
		snprintf(fd, sizeof fd, "fd:%d", src);
		char *args[] = { argv[0], "copy", fd, "0", NULL };
		execve("/proc/self/exe", args, environ);
		perror("execve");
		return 2;
	} else if (strcmp(s, "copy") == 0) {
		return after(src, n);
	}
	fprintf(stderr, "unknown scenario %s\n", s);
	return 2;
}
