/*
 * threads.c - copy loops in several threads at once, with descriptor churn
 * in another: every byte must arrive, and (under TSan) the library's shared
 * state must show no data race.
 *
 *   threads [NTHREADS] [ITERATIONS]
 *
 * Each worker copies its own temp file to its own socketpair with a
 * read(64K)/write loop while a drain thread checksums what arrives; a churn
 * thread opens, dups and closes descriptors meanwhile (numbers get reused
 * under the workers' feet). Exits 0 when every checksum matches.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define CHUNK 65536

struct job {
	int id, iterations;
	int sv[2];
	uint64_t sent, received;
};

static atomic_int stop_churn;

static uint64_t mix(uint64_t h, const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 1099511628211ull;
	return h;
}

static void *drain(void *arg)
{
	struct job *j = arg;
	unsigned char buf[CHUNK];
	uint64_t h = 1469598103934665603ull;
	ssize_t n;
	while ((n = read(j->sv[1], buf, sizeof buf)) > 0)
		h = mix(h, buf, (size_t)n);
	j->received = h;
	return NULL;
}

static void *worker(void *arg)
{
	struct job *j = arg;
	char path[] = "/tmp/nb-threads-XXXXXX";
	int fd = mkstemp(path);
	if (fd < 0)
		abort();
	unlink(path);
	unsigned char *buf = malloc(CHUNK);
	uint64_t h = 1469598103934665603ull;
	for (int i = 0; i < j->iterations; i++) {
		for (int k = 0; k < CHUNK; k++)
			buf[k] = (unsigned char)(j->id * 31 + i * 7 + k);
		if (write(fd, buf, CHUNK) != CHUNK)
			abort();
		h = mix(h, buf, CHUNK);
	}
	j->sent = h;
	lseek(fd, 0, SEEK_SET);
	ssize_t n;
	while ((n = read(fd, buf, CHUNK)) > 0) {
		for (ssize_t off = 0; off < n;) {
			ssize_t w = write(j->sv[0], buf + off, (size_t)(n - off));
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				abort();
			off += w;
		}
	}
	close(j->sv[0]);
	close(fd);
	free(buf);
	return NULL;
}

static void *churn(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop_churn)) {
		int fd = open("/dev/null", O_RDONLY);
		if (fd < 0)
			continue;
		int d = dup(fd);
		close(fd);
		if (d >= 0)
			close(d);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 4;
	int it = argc > 2 ? atoi(argv[2]) : 256;
	struct job *jobs = calloc((size_t)n, sizeof *jobs);
	pthread_t *w = calloc((size_t)n, sizeof *w), *d = calloc((size_t)n, sizeof *d), c;
	pthread_create(&c, NULL, churn, NULL);
	for (int i = 0; i < n; i++) {
		jobs[i].id = i;
		jobs[i].iterations = it;
		if (socketpair(AF_UNIX, SOCK_STREAM, 0, jobs[i].sv) != 0)
			abort();
		pthread_create(&d[i], NULL, drain, &jobs[i]);
		pthread_create(&w[i], NULL, worker, &jobs[i]);
	}
	int bad = 0;
	for (int i = 0; i < n; i++) {
		pthread_join(w[i], NULL);
		pthread_join(d[i], NULL);
		close(jobs[i].sv[1]);
		if (jobs[i].sent != jobs[i].received) {
			fprintf(stderr, "threads: job %d: bytes differ\n", i);
			bad = 1;
		}
	}
	atomic_store(&stop_churn, 1);
	pthread_join(c, NULL);
	printf("threads: %d jobs of %d x 64K: %s\n", n, it, bad ? "MISMATCH" : "all bytes arrived");
	free(jobs);
	free(w);
	free(d);
	return bad;
}
