/*
 * sndtimeo.c - SO_SNDTIMEO on a TCP socket (1 s) whose reader drains 16 KiB
 * every 250 ms; one write of a 4 MiB read-only file mapping ("heap": of a
 * heap buffer). write(2) returns a short count once the socket has waited
 * 1 s in all - the timeout is one budget for the whole call, which a write
 * cut into several kernel calls would renew for each. Prints whether the
 * write came back short and within 3 s.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#define SZ (4u << 20)
static int rs;
static volatile int stop;
static void *rd(void *a)
{
	(void)a;
	char b[16384];
	while (!stop) { usleep(250000); if (recv(rs, b, sizeof b, MSG_DONTWAIT) == 0) break; }
	return NULL;
}
int main(int argc, char **argv)
{
	int anon = argc > 1 && !strcmp(argv[1], "heap");
	int fd = open("src.bin", O_RDWR | O_CREAT | O_TRUNC, 0644);
	char *b = malloc(SZ); memset(b, 'x', SZ); write(fd, b, SZ);
	char *m = anon ? b : mmap(NULL, SZ, PROT_READ, MAP_SHARED, fd, 0);
	int l = socket(AF_INET, SOCK_STREAM, 0), s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001) };
	bind(l, (void *)&a, sizeof a); listen(l, 1);
	socklen_t al = sizeof a; getsockname(l, (void *)&a, &al);
	int small = 16384;
	setsockopt(s, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
	connect(s, (void *)&a, sizeof a);
	rs = accept(l, NULL, NULL);
	setsockopt(rs, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
	struct timeval tv = { 1, 0 };
	setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	pthread_t t; pthread_create(&t, NULL, rd, NULL);
	struct timespec t0, t1; clock_gettime(CLOCK_MONOTONIC, &t0);
	ssize_t w = write(s, m, SZ);
	int e = errno;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double sec = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
	(void)e;
	printf("write short: %s, within 3 s: %s\n", w >= 0 && w < (ssize_t)SZ ? "yes" : "no",
	       sec < 3 ? "yes" : "no");
	stop = 1; pthread_join(t, NULL);
	return 0;
}
