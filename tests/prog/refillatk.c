/*
 * refillatk.c - a read the kernel restarts after a signal handler ran a
 * copy loop of its own through the read's buffer, on descriptors whose
 * read takes its bytes (or event) away before copying it out.
 *
 *   refillatk SRC DST MODE
 *       Blocks in read() (recv for the sockets) of 4096 bytes into a
 *       64 KiB buffer, with a SIGALRM handler (SA_RESTART, alarm after
 *       1 s) that copies SRC to DST in 64 KiB chunks through that same
 *       buffer (a loop the library arms and defers; it stops before end
 *       of file so the last read stays deferred), then makes the
 *       descriptor readable. The kernel restarts the read after the
 *       handler. A watchdog (SIGUSR2 after 4 s) prints "hang" and exits 4.
 *       MODE (what is read, what the handler gives it):
 *         eventfd   blocking eventfd; the handler adds 5
 *         timerfd   timerfd; the handler arms it once (1 ms) and waits 20 ms
 *         signalfd  signalfd of a blocked SIGUSR1; the handler raises it
 *         dgram     AF_UNIX SOCK_DGRAM pair; the handler sends one
 *                   datagram of 4096 'M'
 *         seqpacket AF_UNIX SOCK_SEQPACKET pair; as dgram
 *         dgram2    as dgram, two datagrams ('M' then 'N')
 *         stream    AF_UNIX SOCK_STREAM pair; as dgram (a control)
 *         pipedirect a pipe in packet mode (O_DIRECT); one 4096-byte write
 *         peekdgram as dgram, with recv(MSG_PEEK) (then a plain recv: both
 *                   printed)
 *         shortpipe a pipe, read() of 256 bytes (the short path of read)
 *         eintrpipe a pipe, the handler without SA_RESTART: the program
 *                   calls read() again after EINTR (printed: "eintr N")
 *         fromalen  as stream, with recvfrom() whose address and address
 *                   length are in a second 64 KiB buffer, which the
 *                   handler's second copy loop (SRC to DST.b) leaves
 *                   deferred too: two phantoms. Give a SRC of zeros: the
 *                   kernel reads the length first (printed: "alen L")
 *       Prints "read R errno=E first=C val=V" (V: the 8-byte value read
 *       for eventfd/timerfd, the signal number for signalfd). Exit 0.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

static int hf, hg, hf2 = -1, hg2 = -1, rd, wr, mode;
static char *buf, *buf2;
static char msg[4096];

enum { EVENTFD, TIMERFD, SIGNALFD, DGRAM, SEQPACKET, DGRAM2, STREAM, PIPEDIRECT, PEEKDGRAM,
       SHORTPIPE, EINTRPIPE, FROMALEN };
static const char *const names[] = { "eventfd", "timerfd", "signalfd", "dgram", "seqpacket",
				     "dgram2", "stream", "pipedirect", "peekdgram", "shortpipe",
				     "eintrpipe", "fromalen" };

static void on_watchdog(int sig)
{
	(void)sig;
	static const char h[] = "hang\n";
	if (write(1, h, sizeof h - 1) < 0)
		_exit(5);
	_exit(4);
}

static void on_alrm(int sig)
{
	(void)sig;
	int e = errno;
	handler_copy_loop(hf, hg, buf);
	if (hf2 >= 0) {
		handler_copy_loop(hf2, hg2, buf2);
	}
	switch (mode) {
	case EVENTFD: {
		uint64_t v = 5;
		if (write(wr, &v, sizeof v) != sizeof v)
			_exit(3);
		break;
	}
	case TIMERFD: {
		struct itimerspec it = { .it_value = { 0, 1000000 } };
		timerfd_settime(rd, 0, &it, NULL);
		struct timespec ts = { 0, 20000000 };
		nanosleep(&ts, NULL);
		break;
	}
	case SIGNALFD:
		raise(SIGUSR1);
		break;
	default:
		memset(msg, 'M', sizeof msg);
		if (write(wr, msg, sizeof msg) != (ssize_t)sizeof msg)
			_exit(3);
		if (mode == DGRAM2) {
			memset(msg, 'N', sizeof msg);
			if (write(wr, msg, sizeof msg) != (ssize_t)sizeof msg)
				_exit(3);
		}
	}
	errno = e;
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: refillatk SRC DST MODE\n");
		return 2;
	}
	mode = -1;
	for (int i = 0; i < (int)(sizeof names / sizeof names[0]); i++)
		if (strcmp(argv[3], names[i]) == 0)
			mode = i;
	if (mode < 0) {
		fprintf(stderr, "refillatk: unknown mode %s\n", argv[3]);
		return 2;
	}
	hf = open(argv[1], O_RDONLY);
	hg = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
	buf = mmap(NULL, 65536, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int p[2] = { -1, -1 }, made = 0;
	if (mode == FROMALEN) {
		char name[4096];
		snprintf(name, sizeof name, "%s.b", argv[2]);
		hf2 = open(argv[1], O_RDONLY);
		hg2 = open(name, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		buf2 = mmap(NULL, 65536, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (hf2 < 0 || hg2 < 0 || buf2 == MAP_FAILED) {
			perror("setup");
			return 1;
		}
	}
	sigset_t usr1;
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	switch (mode) {
	case EVENTFD:
		rd = wr = eventfd(0, 0);
		made = rd < 0 ? -1 : 0;
		break;
	case TIMERFD:
		rd = timerfd_create(CLOCK_MONOTONIC, 0);
		made = rd < 0 ? -1 : 0;
		break;
	case SIGNALFD:
		sigprocmask(SIG_BLOCK, &usr1, NULL);
		rd = signalfd(-1, &usr1, 0);
		made = rd < 0 ? -1 : 0;
		break;
	case DGRAM:
	case DGRAM2:
		made = socketpair(AF_UNIX, SOCK_DGRAM, 0, p);
		break;
	case SEQPACKET:
		made = socketpair(AF_UNIX, SOCK_SEQPACKET, 0, p);
		break;
	case STREAM:
	case FROMALEN:
		made = socketpair(AF_UNIX, SOCK_STREAM, 0, p);
		break;
	case PIPEDIRECT:
		made = pipe2(p, O_DIRECT);
		break;
	case PEEKDGRAM:
		made = socketpair(AF_UNIX, SOCK_DGRAM, 0, p);
		break;
	case SHORTPIPE:
	case EINTRPIPE:
		made = pipe(p);
		break;
	}
	if (p[0] >= 0) {
		rd = p[0];
		wr = p[1];
	}
	if (hf < 0 || hg < 0 || buf == MAP_FAILED || made != 0) {
		perror("setup");
		return 1;
	}
	struct sigaction sa = { .sa_handler = on_alrm,
				.sa_flags = mode == EINTRPIPE ? 0 : SA_RESTART };
	sigaction(SIGALRM, &sa, NULL);
	struct sigaction wd = { .sa_handler = on_watchdog };
	sigaction(SIGUSR2, &wd, NULL);
	timer_t t;
	struct sigevent sev = { .sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGUSR2 };
	struct itimerspec four = { .it_value = { 4, 0 } };
	if (timer_create(CLOCK_MONOTONIC, &sev, &t) != 0 || timer_settime(t, 0, &four, NULL) != 0) {
		perror("timer");
		return 1;
	}
	alarm(1);
	ssize_t r;
	int e, eintr = 0;
	if (mode == PEEKDGRAM) {
		r = recv(rd, buf, 4096, MSG_PEEK);
		e = errno;
		printf("peek %zd errno=%s first=%c\n", r, r < 0 ? strerror(e) : "-",
		       r > 0 ? buf[0] : '?');
		memset(buf, 0, 4096);
		r = recv(rd, buf, 4096, MSG_DONTWAIT);
	} else if (mode == SHORTPIPE) {
		r = read(rd, buf, 256);
	} else if (mode == EINTRPIPE) {
		while ((r = read(rd, buf, 4096)) < 0 && errno == EINTR)
			eintr++;
		printf("eintr %d\n", eintr);
	} else if (mode == FROMALEN) {
		socklen_t *alen = (socklen_t *)(buf2 + 40960);
		r = recvfrom(rd, buf, 4096, 0, (struct sockaddr *)(buf2 + 32768), alen);
		e = errno;
		printf("alen %u\n", (unsigned)*alen);
		errno = e;
	} else if (p[0] >= 0 && mode != PIPEDIRECT) {
		r = recv(rd, buf, 4096, 0);
	} else {
		r = read(rd, buf, 4096);
	}
	e = errno;
	unsigned long long val = 0;
	if (r >= 8 && mode <= TIMERFD)
		memcpy(&val, buf, 8);
	if (r > 0 && mode == SIGNALFD)
		val = ((struct signalfd_siginfo *)buf)->ssi_signo;
	printf("read %zd errno=%s first=%c val=%llu\n", r, r < 0 ? strerror(e) : "-",
	       r > 0 && mode > SIGNALFD ? buf[0] : '?', val);
	return 0;
}
