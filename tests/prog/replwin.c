/*
 * replwin.c - another thread's dup2 over a copy loop's source number,
 * stopped by the kernel (fdtab.c "A deferred read holds its number")
 * between the library's announcement of it and the
 * real call, while the loop keeps copying: every read returns bytes of
 * ONE file at that file's own position, as plainly.
 *
 *   replwin dup2      in an empty scratch directory
 *
 * Two files, a.bin and b.bin, 16 MiB each; every 8-byte word holds the
 * file's id (1 or 2) in its top byte and its own offset below. The main
 * thread reads the source number (a dup of a.bin) into one page-aligned
 * 256 KiB buffer and writes out.bin, 4 times; then a second thread
 * dup2()s b.bin onto the number. A seccomp filter of that thread alone
 * (user notification, installed with the syscall instruction so that no
 * preload sees a filter) stops its dup2 system call; a third thread, the
 * supervisor, then lets the main thread read 6 more times. The main
 * thread's own filter reports any lseek of the source number: plainly
 * nothing makes one; a deferred read moves the position with one. The
 * supervisor lets the dup2 go on only after the main thread's 6 reads,
 * or - when an lseek of the number comes first - before that lseek goes
 * on, so the replacement lands in the middle of the read that made it
 * (where a plain read would have seen it before or after). Then 2 more
 * reads (b.bin from 0, plainly), the supervisor still answering.
 *
 * stdout: each read's count and first and last word, "verify: ok" or
 * "verify: BAD (N words)" (the stream in out.bin: every word continues
 * its file's offsets). stderr: lseeks of the number the filter stopped.
 * Exit status 0 when the stream is right, 1 when not, 2 on setup errors.
 */
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common.h"

#define FSZ (16ul << 20)
#define CH (256u << 10)

static int fa, fb, src, out;
static int lfd_swap = -1, lfd_main = -1; /* seccomp listeners */
static int go[2], main_done[2], swap_ready[2], swap_done[2], main_ready[2];

static void die(const char *what)
{
	perror(what);
	exit(2);
}

/* A filter for the calling thread only: system call nr (with first
 * argument arg0, unless -1) goes to the returned listener. */
static int notify_filter(int nr, int arg0)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)nr, 0, 3),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)arg0, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { sizeof f / sizeof f[0], f };
	if (arg0 < 0) /* any argument: skip the argument check */
		f[3] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JA, 0, 0, 0);
	if (asm_syscall4(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0) != 0)
		die("no_new_privs");
	long l = asm_syscall4(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
			      SECCOMP_FILTER_FLAG_NEW_LISTENER, (long)&prog, 0);
	if (l < 0)
		die("seccomp");
	return (int)l;
}

static void put(int fd)
{
	if (write(fd, "x", 1) != 1)
		die("pipe write");
}

static void take(int fd)
{
	char c;
	if (read(fd, &c, 1) != 1)
		die("pipe read");
}

/* Receives one notification and answers it: the call goes on. */
static void let_go(int lfd, struct seccomp_notif *n)
{
	struct seccomp_notif_resp r;
	memset(&r, 0, sizeof r);
	r.id = n->id;
	r.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
	if (ioctl(lfd, SECCOMP_IOCTL_NOTIF_SEND, &r) != 0)
		die("notif send");
}

static void recv_notif(int lfd, struct seccomp_notif *n)
{
	memset(n, 0, sizeof *n);
	while (ioctl(lfd, SECCOMP_IOCTL_NOTIF_RECV, n) != 0)
		if (errno != EINTR)
			die("notif recv");
}

static void *swapper(void *arg)
{
	(void)arg;
	lfd_swap = notify_filter(SYS_dup2, -1);
	put(swap_ready[1]);
	dup2(fb, src);
	put(swap_done[1]);
	return NULL;
}

static int lseeks_stopped;

static void *supervisor(void *arg)
{
	(void)arg;
	struct seccomp_notif dup2_call, n;
	take(swap_ready[0]);
	take(main_ready[0]);
	recv_notif(lfd_swap, &dup2_call); /* the dup2 stands still */
	put(go[1]);
	bool released = false;
	int tokens = 0; /* from main_done: its window reads, then all */
	for (;;) {
		struct pollfd p[2] = { { lfd_main, POLLIN, 0 }, { main_done[0], POLLIN, 0 } };
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			die("poll");
		}
		if (p[0].revents & POLLIN) {
			recv_notif(lfd_main, &n);
			lseeks_stopped++;
			if (!released) { /* in the middle of this read */
				let_go(lfd_swap, &dup2_call);
				take(swap_done[0]);
				released = true;
			}
			let_go(lfd_main, &n);
			continue;
		}
		if (p[1].revents & POLLIN) {
			take(main_done[0]);
			if (++tokens == 2) /* the main thread is done */
				break;
			if (!released) {
				let_go(lfd_swap, &dup2_call);
				take(swap_done[0]);
				released = true;
			}
		}
	}
	return NULL;
}

static void copy_once(int i, uint64_t *buf)
{
	ssize_t r = read(src, buf, CH);
	if (r <= 0) {
		printf("read %d: %zd\n", i, r);
		return;
	}
	size_t nw = (size_t)r / 8;
	printf("read %d: %zd bytes, first id %u offset %llu, last id %u offset %llu\n", i, r,
	       (unsigned)(buf[0] >> 56), (unsigned long long)(buf[0] & ID_OFF_MASK),
	       (unsigned)(buf[nw - 1] >> 56), (unsigned long long)(buf[nw - 1] & ID_OFF_MASK));
	for (const char *p = (const char *)buf; r > 0;) {
		ssize_t w = write(out, p, (size_t)r);
		if (w <= 0)
			die("write out");
		p += w;
		r -= w;
	}
}

static int dup2_case(void)
{
	uint64_t *buf = aligned_alloc(4096, CH);
	out = open("out.bin", O_RDWR | O_CREAT | O_TRUNC, 0644);
	src = dup(fa);
	if (buf == NULL || out < 0 || src < 0 || pipe(go) || pipe(main_done) || pipe(swap_ready) ||
	    pipe(swap_done) || pipe(main_ready))
		die("setup");
	int i = 0;
	for (; i < 4; i++)
		copy_once(i, buf);
	pthread_t s, v;
	if (pthread_create(&v, NULL, supervisor, NULL) || pthread_create(&s, NULL, swapper, NULL))
		die("pthread_create");
	lfd_main = notify_filter(SYS_lseek, src);
	put(main_ready[1]);
	take(go[0]);
	for (; i < 10; i++)
		copy_once(i, buf);
	put(main_done[1]);
	pthread_join(s, NULL);
	for (; i < 12; i++)
		copy_once(i, buf);
	put(main_done[1]);
	pthread_join(v, NULL);
	fprintf(stderr, "lseeks of the number stopped: %d\n", lseeks_stopped);
	struct id_check c = { { 0, 0, 0 }, 0 };
	ssize_t r;
	if (lseek(out, 0, SEEK_SET) != 0)
		die("lseek out");
	while ((r = read(out, buf, CH)) > 0)
		id_check_words(&c, buf, (size_t)r / 8);
	printf(c.bad ? "verify: BAD (%lu words)\n" : "verify: ok\n", c.bad);
	return c.bad != 0;
}

int main(int argc, char **argv)
{
	alarm(60);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 2 && strcmp(argv[1], "dup2") == 0) {
		fa = id_file("a.bin", 1, FSZ);
		fb = id_file("b.bin", 2, FSZ);
		return dup2_case();
	}
	fprintf(stderr, "usage: replwin dup2\n");
	return 2;
}
