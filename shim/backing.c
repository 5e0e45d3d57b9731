/*
 * backing.c - the library's own references to source files.
 *
 * Owns: one internal duplicate descriptor per source file that phantoms
 * refer to, counted by the phantoms using it. A phantom's meaning is fixed
 * at read time: the program may close its descriptor, dup2 over it or
 * reopen the number before writing the buffer (read all, close, then send
 * is common), and the phantom still names the same file. The duplicate is
 * closed when the last phantom using it is materialised or forgotten.
 * Must not: allocate or lock; nb_backing_put runs in the fault trampoline.
 */
#include "internal.h"

#include <errno.h>
#include <sys/stat.h>

#define NB_BACKINGS 256

struct backing {
	atomic_int fd;   /* internal duplicate, -1 = free slot */
	atomic_int refs;
	dev_t dev;
	ino_t ino;
};

static struct backing backings[NB_BACKINGS];
static atomic_int inited;

static void init_once(void)
{
	int expect = 0;
	if (atomic_load(&inited) == 2 || !atomic_compare_exchange_strong(&inited, &expect, 1)) {
		while (atomic_load(&inited) != 2)
			;
		return;
	}
	for (int i = 0; i < NB_BACKINGS; i++)
		atomic_store(&backings[i].fd, -1);
	atomic_store(&inited, 2);
}

int nb_backing_get(int src, dev_t dev, ino_t ino)
{
	init_once();
	/* Share a duplicate of the same file: pread does not care which
	 * open file description it goes through. */
	for (int i = 0; i < NB_BACKINGS; i++) {
		struct backing *b = &backings[i];
		int r = atomic_load(&b->refs);
		while (r > 0 && atomic_load(&b->fd) >= 0 && b->dev == dev && b->ino == ino) {
			if (atomic_compare_exchange_weak(&b->refs, &r, r + 1))
				return atomic_load(&b->fd);
		}
	}
	int saved = errno;
	int dup = nb_hide_fd(src);
	errno = saved;
	if (dup < 0)
		return -1;
	for (int i = 0; i < NB_BACKINGS; i++) {
		struct backing *b = &backings[i];
		int expect = 0;
		if (atomic_load(&b->fd) != -1 || !atomic_compare_exchange_strong(&b->refs, &expect, -1))
			continue;
		b->dev = dev;
		b->ino = ino;
		atomic_store(&b->fd, dup);
		atomic_store(&b->refs, 1);
		return dup;
	}
	nb_own_release(dup);
	return -1;
}

void nb_backing_ref(int fd)
{
	for (int i = 0; i < NB_BACKINGS; i++) {
		struct backing *b = &backings[i];
		int r = atomic_load(&b->refs);
		while (r > 0 && atomic_load(&b->fd) == fd)
			if (atomic_compare_exchange_weak(&b->refs, &r, r + 1))
				return;
	}
}

void nb_backing_put(int fd)
{
	for (int i = 0; i < NB_BACKINGS; i++) {
		struct backing *b = &backings[i];
		if (atomic_load(&b->fd) != fd)
			continue;
		if (atomic_fetch_sub(&b->refs, 1) == 1) {
			/* Last user: close it, then free the slot. A getter that
			 * raced in sees refs 0 and does not share it. */
			int expect = 0;
			if (atomic_compare_exchange_strong(&b->refs, &expect, -1)) {
				atomic_store(&b->fd, -1);
				nb_own_release(fd);
				atomic_store(&b->refs, 0);
			}
		}
		return;
	}
}

/* The same process writes or truncates a file: is it a source? */
bool nb_backing_is_source(dev_t dev, ino_t ino)
{
	if (atomic_load(&inited) != 2)
		return false;
	for (int i = 0; i < NB_BACKINGS; i++) {
		struct backing *b = &backings[i];
		if (atomic_load(&b->refs) > 0 && b->dev == dev && b->ino == ino)
			return true;
	}
	return false;
}
