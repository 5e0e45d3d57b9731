/*
 * internal.h - the whole data model of libnobounce at a glance.
 *
 * Owns: the types every mechanism shares (configuration, per-descriptor
 * state, the bounce detector's records, loop statistics, counters) and the
 * prototypes of the small mechanisms in the other files.
 * Must not: contain logic beyond trivial inline accessors.
 *
 * Layering (a file may call only into files below it):
 *
 *   hook_*.c   interposed entry points, thin: call the real function, then
 *              hand the result to a mechanism.
 *   detect.c   per-thread ring of recent reads; matches writes to them and
 *              drives the per-pair state machine (pair.c).
 *   pair.c     the arm / miss / back-off state machine of one
 *              (source, destination) pair; pure logic.
 *   loops.c    retired pairs kept for the exit report; observe report.
 *   fdtab.c    flat per-descriptor table, classification, revalidation.
 *   stats.c    atomic counters and the JSON exit report.
 *   config.c   NOBOUNCE_* parsing; pure logic.
 *   log.c      one-line messages to a private duplicate of stderr.
 *   real.c     the next definitions of every hooked symbol.
 */
#ifndef NOBOUNCE_INTERNAL_H
#define NOBOUNCE_INTERNAL_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#define NB_VERSION "0.1.0"
#define NB_EXPORT __attribute__((visibility("default")))
#define NB_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define NB_LIKELY(x) __builtin_expect(!!(x), 1)
/* free and realloc run inside the sanitizers' own start-up (dlsym frees
 * its error buffer) before their runtime can take an instrumented call:
 * in sanitizer builds of the library that path stays uninstrumented. */
#define NB_UNINSTRUMENTED __attribute__((no_sanitize("thread", "address", "undefined")))

/* ------------------------------------------------------------------ */
/* Configuration (config.c)                                            */

enum nb_mode { NB_MODE_OFF = 0, NB_MODE_OBSERVE = 1, NB_MODE_ON = 2 };

/* NOBOUNCE_EXACT: what a phantom of a file promises when another process
 * may change the file (lease.c). */
enum nb_exact {
	NB_EXACT_AUTO = 0, /* a read lease where one can be had; elsewhere the
			      bytes as they are when the write goes out */
	NB_EXACT_STRICT,   /* only files held by a read lease are deferred */
	NB_EXACT_OFF,      /* no leases, no signal used */
};

/* Kernel paths, as bits of nb_config.paths. */
enum nb_path {
	NB_PATH_NONE = 0,
	NB_PATH_SENDFILE = 1u << 0,        /* file -> socket (and file -> file) */
	NB_PATH_COPY_FILE_RANGE = 1u << 1, /* file -> regular file */
	NB_PATH_SPLICE = 1u << 2,          /* anything <-> pipe, via pipe */
};
#define NB_PATH_ALL (NB_PATH_SENDFILE | NB_PATH_COPY_FILE_RANGE | NB_PATH_SPLICE)

enum nb_loglevel { NB_LOG_OFF, NB_LOG_ERROR, NB_LOG_WARN, NB_LOG_INFO, NB_LOG_DEBUG };

#define NB_STATS_PATH_MAX 512
#define NB_NAMELIST_MAX 256

struct nb_config {
	enum nb_mode mode;
	size_t min_chunk;        /* smallest read that counts as a bounce */
	size_t min_chunk_file;   /* the same for file -> file copies */
	size_t min_chunk_stream; /* the same with a socket as the source */
	size_t min_chunk_pipe;   /* the same with a pipe as the destination */
	unsigned arm_after;      /* bounces before a pair arms */
	unsigned paths;          /* enum nb_path bits allowed */
	unsigned max_pipes;      /* pipe pool bound (socket/pipe sources) */
	size_t pipe_size;        /* F_SETPIPE_SZ for pooled pipes */
	size_t send_chunk;       /* largest single sendfile into a socket */
	bool send_chunk_set;     /* given by NOBOUNCE_SEND_CHUNK: for every socket */
	enum nb_exact exact;     /* NOBOUNCE_EXACT */
	int lease_signal;        /* NOBOUNCE_LEASE_SIGNAL: a real-time signal */
	bool live;               /* live stats file (live.c) */
	char live_dir[NB_STATS_PATH_MAX]; /* "" = the default place */
	enum nb_loglevel log;    /* verbosity of the private log */
	char stats[NB_STATS_PATH_MAX]; /* "" = none, "stderr", or a path */
	char only[NB_NAMELIST_MAX];    /* comma list of program names, "" = all */
	char skip[NB_NAMELIST_MAX];    /* comma list of program names */
	char report[NB_STATS_PATH_MAX]; /* NOBOUNCE_REPORT: "", "stderr" or a path */
};

/* Reads one variable; returns NULL when unset. getenv in the library,
 * a table in the unit tests. */
typedef const char *(*nb_getenv_fn)(const char *name, void *ctx);
/* Receives one complete diagnostic line (no newline). */
typedef void (*nb_complain_fn)(const char *line, void *ctx);

void nb_config_defaults(struct nb_config *c);
/* Parses every NOBOUNCE_* variable; a bad value is reported through
 * complain() and replaced by the default. Returns the number of bad values. */
int nb_config_parse(struct nb_config *c, nb_getenv_fn get, nb_complain_fn complain, void *ctx);
/* Is program `prog` selected by the only/skip lists? */
/* Complains about NOBOUNCE_* names in envp that nothing reads (typos). */
int nb_config_unknown(char *const *envp, nb_complain_fn complain, void *ctx);
bool nb_config_selects(const struct nb_config *c, const char *prog);
int nb_parse_size(const char *s, size_t *out);
const char *nb_mode_name(enum nb_mode m);
const char *nb_exact_name(enum nb_exact e);

/* ------------------------------------------------------------------ */
/* Per-descriptor state (fdtab.c)                                      */

enum nb_kind {
	NB_KIND_UNKNOWN = 0, /* not classified since the fd was (re)opened */
	NB_KIND_FILE,        /* regular file */
	NB_KIND_BLOCK,       /* block device */
	NB_KIND_TCP,         /* stream socket, AF_INET/AF_INET6 */
	NB_KIND_UNIX,        /* stream socket, AF_UNIX */
	NB_KIND_PIPE,        /* pipe or FIFO */
	NB_KIND_CHAR,        /* tty or other character device */
	NB_KIND_OTHER,       /* datagram socket, directory, eventfd, ... */
	NB_KIND_COUNT
};

/* nb_fd.flags: the open-file flags that decide what the kernel can do. */
#define NB_FL_APPEND 0x1u
#define NB_FL_NONBLOCK 0x2u
#define NB_FL_DIRECT 0x4u
#define NB_FL_PSEUDO 0x8u /* regular file reporting size 0 (/proc, /sys) */
#define NB_FL_NO_REOPEN 0x10u /* destination file we cannot read back */
#define NB_FL_SNDTIMEO 0x20u /* stream socket with SO_SNDTIMEO: one budget per write(2) */
#define NB_FL_WIDE 0x40u /* TCP connection over a real link (MSS <= 16K), not loopback */

/* Why a pair was not used even though it bounced. */
enum nb_miss {
	NB_MISS_UNFORWARDED, /* buffer re-read before its bytes were written */
	NB_MISS_TWO_DESTS,   /* the same bytes went to a second destination */
	NB_MISS_MODIFIED,    /* the program changed the bytes in between */
	NB_MISS_COUNT
};

enum nb_pair_state {
	NB_PAIR_IDLE = 0, /* no pair: slot unused */
	NB_PAIR_LEARNING, /* counting bounces towards arm_after */
	NB_PAIR_ARMED,    /* the kernel path may serve this pair */
	NB_PAIR_BACKOFF,  /* disarmed after misses; cooling down */
	NB_PAIR_REFUSED,  /* no kernel path for these kinds: never arms */
};

/* Chunk-size histogram buckets: <4K, 4K, 8K, 16K, 32K, 64K, 128K, 256K, >=512K
 * (each bucket holds sizes from its label up to the next). */
#define NB_HIST_BUCKETS 9

/* Detection and statistics of one (source, destination) pair. It lives in
 * the source descriptor's slot: a source feeds one destination at a time,
 * and a change of destination retires the old pair into loops.c. */
struct nb_pair {
	int dst;                /* destination fd; meaningless when IDLE */
	uint64_t live_iters, live_bytes; /* of iterations/bytes, flushed to
					    the live counters so far */
	uint32_t dst_gen;       /* destination's generation when paired */
	uint8_t state;          /* enum nb_pair_state */
	uint8_t src_kind, dst_kind;
	uint8_t path;           /* enum nb_path that would serve it */
	uint8_t none_why;       /* enum nb_none: why path is NB_PATH_NONE */
	uint32_t streak;        /* bounces since the last miss or state change */
	uint32_t recent_misses; /* misses while armed, decays with bounces */
	uint32_t cooldown;      /* bounces left in BACKOFF */
	uint32_t backoffs;      /* times disarmed: doubles the next cool-down */
	uint64_t iterations;    /* completed bounces */
	uint64_t bytes;         /* bytes in completed bounces */
	uint64_t arms;
	uint64_t misses[NB_MISS_COUNT];
	uint64_t hist[NB_HIST_BUCKETS];
	uint64_t small_served;  /* bounces >= the minimum whose whole pages
				   (what a deferred read serves) were not */
	uint32_t buf_why;      /* 1 << NB_BUF_*: arms refused for the buffer */
	uint32_t buf_refusals; /* how many times */
};

struct nb_fd {
	atomic_uint gen;   /* bumped whenever the number is closed or reused */
	atomic_uchar busy; /* try-lock for kind/pair updates (never waits) */
	uint8_t kind;      /* enum nb_kind; published last (nb_fd_kind) */
	uint8_t flags;     /* NB_FL_* */
	dev_t dev;         /* identity at classification, to revalidate */
	ino_t ino;
	off_t size;        /* size at classification (regular files) */
	struct nb_pair pair; /* valid when this fd is a source */
	/* Zero-copy feedback, written from anywhere (the fault trampoline
	 * included), read by the next deferred read under the lock. */
	atomic_uint touches;   /* phantoms of this source materialised */
	unsigned touches_seen;
	atomic_uchar no_zc;    /* a kernel path failed: plain for good */
	/* The process one of whose threads is inside a deferred read of a
	 * file through this number (its pid), 0: none (fdtab.c "A deferred
	 * read holds its number"). */
	atomic_int reader;
	atomic_int hold_waiters; /* replacers asleep on `reader` (futex) */
	/* Hooked close/dup2/dup3 of this number between their announcement
	 * and the forget after the real call (fdtab.c "A deferred read holds
	 * its number"): no read may hold the number while one is. */
	atomic_int replacing;
	/* A pipe destination: bytes forwarded writes put into it, and those
	 * writes going on now (forward.c; sameproc.c "Bytes in flight"). */
	atomic_ullong piped;
	atomic_int piping;
	/* A socket destination: the error the library's calls of a served
	 * write took from the socket (xfer.c), for the program's next send
	 * to report; lost_dev/lost_ino: the socket it belongs to. */
	atomic_int lost_err;
	dev_t lost_dev;
	ino_t lost_ino;
	/* The settled loop reading this source (settle.c): iterations of
	 * settled_n bytes each that the read/write hooks counted without
	 * the detector, part of the pair's counts until folded into them
	 * (readers add them: nb_settled_count); the thread counting them. */
	atomic_ullong settled;
	atomic_ullong settled_flushed; /* of those, in the live counters */
	size_t settled_n;
	atomic_uint settle_owner;
};

/* The kind as a reader without the slot's lock may act on it: loaded
 * before the identity it covers. nb_fd_classify stores flags, dev, ino
 * and size first and the kind last, with release order, so a reader that
 * sees NB_KIND_FILE also sees that file's identity, not a half-written
 * one (the compiler may otherwise move the plain stores past it). */
static inline enum nb_kind nb_fd_kind(const struct nb_fd *e)
{
	return (enum nb_kind)__atomic_load_n(&e->kind, __ATOMIC_ACQUIRE);
}

/* Socket errors taken on the program's behalf and not reported yet: the
 * send hooks look for one only while this is not 0. */
extern atomic_int nb_lost_errs __attribute__((visibility("hidden")));
void nb_fd_note_lost_err(int fd, int err);
/* The error to report for fd now (and forgotten), or 0. */
int nb_fd_take_lost_err(int fd);

/* Returns the slot of fd, allocating its chunk on first use (mmap, async-
 * signal-safe); NULL for negative or absurdly large numbers or if memory
 * is exhausted. */
struct nb_fd *nb_fd_get(int fd);
/* Same, but never allocates: NULL if the slot does not exist yet. */
struct nb_fd *nb_fd_peek(int fd);
/* The number was closed or now names another file: forget everything,
 * retiring its pair first. */
void nb_fd_forget(int fd);
void nb_fd_forget_range(unsigned lo, unsigned hi);
/* A deferred read of a file holds its number (caller: the slot's lock,
 * asynchronous signals blocked): false when the number was closed or
 * replaced since the slot was looked at - the read is then plain. */
bool nb_fd_read_hold(struct nb_fd *e);
void nb_fd_read_release(struct nb_fd *e);
/* Before a hooked close, dup2, dup3 or close_range takes the number(s)
 * away: waits for a deferred read holding one (bounded), and keeps any
 * from taking it until the matching after call - made once the real call
 * returned and its nb_fd_forget bumped the generation, failed or not.
 * nb_fd_before_replace returns what nb_fd_after_replace takes. */
struct nb_fd *nb_fd_before_replace(int fd);
void nb_fd_after_replace(struct nb_fd *e);
void nb_fd_before_replace_range(unsigned lo, unsigned hi);
void nb_fd_after_replace_range(void);
/* Classify now (fstat + socket options). Returns the kind. */
enum nb_kind nb_fd_classify(int fd, struct nb_fd *e);
/* Is the cached classification still about the file the number names now? */
bool nb_fd_revalidate(int fd, struct nb_fd *e);
/* With the slot locked: are kind, identity and pair about the file the
 * number names now (no close or reuse seen since)? If not they are reset
 * first (pair retired, kind unknown) and false is returned. */
bool nb_fd_current(int fd, struct nb_fd *e);
void nb_fd_set_flags(struct nb_fd *e, int oflags);
bool nb_fd_trylock(struct nb_fd *e);
void nb_fd_unlock(struct nb_fd *e);
/* Calls fn for every slot with a live pair (exit report). */
void nb_fd_each_pair(void (*fn)(int fd, struct nb_fd *e, void *ctx), void *ctx);
void nb_fdtab_forget_pairs(void); /* forked child: the parent's loops are not ours */
void nb_fdtab_reset(void);        /* unit tests: drop every slot */
const char *nb_kind_name(enum nb_kind k);

/* ------------------------------------------------------------------ */
/* The pair state machine (pair.c) - pure, no I/O                      */

enum nb_event { NB_EV_NONE, NB_EV_ARMED, NB_EV_DISARMED, NB_EV_REARMABLE };

/* Which kernel path would move bytes from src to dst, given the
 * destination's flags and the allowed paths; NB_PATH_NONE if none. */
enum nb_path nb_path_for(enum nb_kind src, enum nb_kind dst, unsigned dst_flags,
			 unsigned src_flags, unsigned allowed);
/* Why nb_path_for gave NB_PATH_NONE, for the reports: the kinds have no
 * kernel path between them, or a flag of either side or the setting
 * NOBOUNCE_PATHS rules out the one they have. */
enum nb_none {
	NB_NONE_KINDS,       /* no kernel path between these kinds */
	NB_NONE_SRC_DIRECT,  /* the source is O_DIRECT */
	NB_NONE_SRC_PSEUDO,  /* the source claims size 0 (/proc, /sys) */
	NB_NONE_DST_DIRECT,  /* the destination is O_DIRECT (a packet pipe) */
	NB_NONE_DST_APPEND,  /* the destination is O_APPEND */
	NB_NONE_DST_SNDTIMEO, /* the destination socket has a send timeout */
	NB_NONE_PATHS,       /* NOBOUNCE_PATHS leaves the path out */
	NB_NONE_COUNT
};
enum nb_path nb_path_for_why(enum nb_kind src, enum nb_kind dst, unsigned dst_flags,
			     unsigned src_flags, unsigned allowed, enum nb_none *why);
const char *nb_none_text(enum nb_none why);
const char *nb_path_name(enum nb_path p);
void nb_pair_start(struct nb_pair *p, int dst, uint32_t dst_gen, enum nb_kind src_kind,
		   enum nb_kind dst_kind, enum nb_path path);
enum nb_event nb_pair_bounce(struct nb_pair *p, size_t chunk, const struct nb_config *c);
/* The same, judged by served: the bytes of the chunk a deferred read of
 * it would serve (pair.c: nb_served_bytes). */
enum nb_event nb_pair_bounce_served(struct nb_pair *p, size_t chunk, size_t served,
				    const struct nb_config *c);
/* What a deferred read of [addr, addr+len) would save: its whole pages, 0
 * when it could not be deferred. */
size_t nb_served_bytes(uintptr_t addr, size_t len);
/* The smallest chunk that counts for this pair's direction. */
size_t nb_pair_min_chunk(const struct nb_pair *p, const struct nb_config *c);
/* The same by kinds, and the variable that set it (for reports). */
size_t nb_min_chunk_for(enum nb_kind src, enum nb_kind dst, const struct nb_config *c,
			 const char **var);
enum nb_event nb_pair_miss(struct nb_pair *p, enum nb_miss why);
unsigned nb_hist_bucket(size_t chunk);
const char *nb_miss_name(enum nb_miss m);
const char *nb_pair_state_name(enum nb_pair_state s);

/* Misses while armed that disarm a pair; cool-down after the first
 * disarm, doubled on each further one up to the cap. */
#define NB_MISS_LIMIT 3
#define NB_COOLDOWN_BASE 64u
#define NB_COOLDOWN_MAX (64u * 1024u)

/* ------------------------------------------------------------------ */
/* The detector (detect.c)                                             */

/* Reads smaller than this are never tracked: keeps tiny I/O cheap. The
 * hooks use nb_track_min(): this in observe mode and, in mode on, the
 * smallest chunk that could ever arm until the first read is recorded
 * (init.c track_min). */
#define NB_TRACK_MIN 512
#define NB_RING 8

/* One recent read, in the reading thread's ring. */
struct nb_rec {
	uintptr_t addr;
	size_t len;      /* bytes the read returned */
	size_t fwd;      /* bytes of it written out so far, from the front */
	int src;         /* source fd */
	uint32_t src_gen;
	int dst;         /* first destination, -1 until the first write */
	uint64_t head, tail; /* samples to notice modification */
	bool sampled;        /* false for phantoms: guarded, cannot change */
};

struct nb_ring {
	struct nb_rec rec[NB_RING];
	unsigned next;   /* slot the next read takes */
	unsigned live;   /* slots in use */
};

void nb_detect_read(int fd, const void *buf, size_t n);
/* A read served as a phantom: its bytes must not be sampled (touching
 * them would materialise it). */
void nb_detect_read_deferred(int fd, const void *buf, size_t n);
void nb_detect_readv(int fd, const struct iovec *iov, int iovcnt, size_t n);
void nb_detect_write(int fd, const void *buf, size_t n);
void nb_detect_writev(int fd, const struct iovec *iov, int iovcnt, size_t n);
void nb_detect_reset_thread(void);

/* ------------------------------------------------------------------ */
/* Retired loops and the observe report (loops.c)                     */

#define NB_MAX_LOOPS 1024

/* A pair that ended (source closed, destination changed, exit), merged
 * with earlier pairs of the same descriptors and kinds. Slots are claimed
 * lock-free so that close() stays async-signal-safe. */
struct nb_loop {
	atomic_int used; /* 0 free, 1 being filled, 2 valid */
	int src, dst;
	uint8_t src_kind, dst_kind, path;
	uint8_t mapped; /* the source is a file mapping, not a read loop */
	atomic_ullong iterations, bytes, arms;
	atomic_ullong misses[NB_MISS_COUNT];
	atomic_ullong hist[NB_HIST_BUCKETS];
	atomic_ullong small_served;
	atomic_uint buf_why;         /* as nb_pair's */
	atomic_ullong buf_refusals;
	atomic_uint none_why;        /* as nb_pair's */
};

void nb_loops_retire(int src, const struct nb_pair *p);
/* Adds the pair's bounces since the last flush to the live counters. */
void nb_loops_flush_live(struct nb_pair *p);
/* Snapshot of every loop (retired and live), grouped by direction. */
struct nb_loop_view {
	int src, dst;
	enum nb_kind src_kind, dst_kind;
	enum nb_path path;
	bool mapped;
	uint64_t iterations, bytes, arms;
	uint64_t misses[NB_MISS_COUNT];
	uint64_t hist[NB_HIST_BUCKETS];
	uint64_t small_served; /* bounces whose whole pages were below the minimum */
	unsigned none_why;     /* 1 << enum nb_none, when path is NB_PATH_NONE */
	unsigned buf_why;
	uint64_t buf_refusals;
};
/* Fills out[] (at most max), merged by (src, dst, kinds); returns count. */
size_t nb_loops_collect(struct nb_loop_view *out, size_t max);
void nb_loops_reset(void);
uint64_t nb_loops_overflow(void); /* iterations that found no table slot */
/* Bounces and bytes over every loop, retired and live. */
void nb_loops_totals(uint64_t *iterations, uint64_t *bytes);
/* Writes the human-readable observe report. */
void nb_loops_report_text(int fd, const char *prog, pid_t pid);
/* Appends the loops as a JSON array to buf; returns the new length. */
size_t nb_loops_json(char *buf, size_t len, size_t cap);
/* Copies and syscalls the kernel path would have removed for a loop. */
void nb_loop_savings(const struct nb_loop_view *l, uint64_t *copied_bytes,
		     uint64_t *syscalls_plain, uint64_t *syscalls_kernel);

/* ------------------------------------------------------------------ */
/* Counters (stats.c)                                                   */

/* Bounces and their bytes are not here: each pair counts its own under
 * its lock, and nb_loops_totals() adds them up - a shared counter bumped
 * per iteration costs ~80 ns when two threads copy at once. */
struct nb_counters {
	atomic_ullong arms;           /* pairs armed */
	atomic_ullong disarms;        /* pairs disarmed by misses */
	atomic_ullong misses[NB_MISS_COUNT];
	atomic_ullong classified;     /* fstat classifications */
	atomic_ullong revalidations;  /* identity checks of cached kinds */
	atomic_ullong stale;          /* cached kind found stale */
	atomic_ullong fd_slots;       /* fd table chunks allocated */
	atomic_ullong lock_skips;     /* updates skipped: slot busy */
	atomic_ullong deferred;       /* reads served as phantoms */
	atomic_ullong forwarded;      /* writes served by a kernel path */
	atomic_ullong forwarded_bytes;
	atomic_ullong edge_bytes;     /* of those, partial-page edges */
	atomic_ullong moved_to_file;  /* socket/pipe phantoms now backed by
					 the file they were written to */
	atomic_ullong kernel_calls;   /* sendfile/splice/copy_file_range calls */
	atomic_ullong path_bytes[3];  /* forwarded bytes by sendfile, splice,
					 copy_file_range */
	atomic_ullong materialized;   /* phantoms filled into memory */
	atomic_ullong pipes_in_use;   /* gauge: pool pipes handed out */
	/* Bounces and their bytes as last flushed by the pairs (every 16
	 * bounces and when a pair retires): for the live view only; the exit
	 * report adds up the pairs exactly. */
	atomic_ullong bounces;
	atomic_ullong bounce_bytes;
	atomic_ullong leases_taken;   /* read leases on source files (lease.c) */
	atomic_ullong leases_refused; /* asked for and not had: writers, owner */
	atomic_ullong leases_broken;  /* another process came to change a file */
	atomic_ullong mapped_writes;  /* writes of file mappings by a kernel path */
	atomic_ullong mapped_bytes;   /* their bytes moved by the kernel */
	atomic_ullong small_served;   /* bounces not counted towards arming: the
					 whole pages of the buffer (what would be
					 served) are below the minimum (pair.c) */
};
/* Where the counters are: a private struct, or the live stats file's
 * shared mapping (live.c). Changed only while one thread runs. */
extern struct nb_counters *nb_statsp;
#define nb_stats (*nb_statsp)

#define NB_COUNT(field, n) atomic_fetch_add_explicit(&nb_statsp->field, (n), memory_order_relaxed)

void nb_stats_reset(void);
/* The counters go back to the private struct, with their values. */
void nb_stats_use_local(void);
/* Renders the JSON report into buf; returns its length. */
size_t nb_stats_json(char *buf, size_t cap, const char *prog, pid_t pid);
/* Opens the report destination safely: expands %p, O_NOFOLLOW|O_EXCL,
 * mode 0600. Returns an fd or -1 with a reason in why. */
int nb_stats_open(const char *spec, pid_t pid, char *path_out, size_t path_cap, const char **why);
void nb_stats_write_report(void);

/* ------------------------------------------------------------------ */
/* Phantoms: guarded memory backed by a file range (phantom.c)         */

/* Sources whose bytes are consumed by reading them: served through pool
 * pipes (defer.c stream_read). */
static inline bool nb_is_stream_source(int kind)
{
	return kind == NB_KIND_TCP || kind == NB_KIND_UNIX || kind == NB_KIND_PIPE;
}

/* Pool pipes for socket and pipe sources (pipepool.c). */
struct nb_pipe {
	int r, w;   /* hidden, close-on-exec, non-blocking ends */
	size_t cap; /* capacity in bytes */
	int slot;   /* pool slot, -1 once returned */
};
int nb_pipe_get(struct nb_pipe *p);  /* an empty pipe, or -1: plain path */
void nb_pipe_put(struct nb_pipe *p); /* drained and returned (or closed) */
/* The same when the caller knows what it holds (0: empty, no call). */
void nb_pipe_put_holding(struct nb_pipe *p, size_t holds);
bool nb_pipe_drain(const struct nb_pipe *p);
bool nb_pipe_skip(const struct nb_pipe *p, size_t n); /* drops n bytes */
unsigned nb_pipe_in_use(void);
/* Closes every pool pipe no one holds (the descriptors are given up). */
void nb_pipe_forget_free(void);
void nb_pipe_atfork_child(void);

#define NB_MAX_PHANTOMS 4096
#define NB_PHANTOM_RESOLVED (-2)

/* [start, end) is page aligned and already PROT_NONE; its bytes are the
 * file src's at off. Returns the entry index, or -1 (table full, no
 * /proc/self/mem). */
int nb_phantom_add(uintptr_t start, uintptr_t end, int src, off_t off);
/* The same for pages still open: they are guarded before the phantom is
 * published (see add_entry). -1 (and the pages untouched, the backing
 * still the caller's) if that fails. */
int nb_phantom_add_guarded(uintptr_t start, uintptr_t end, int src, off_t off);
int nb_phantom_find(uintptr_t a);
/* How many times an entry has left the table (materialised, dropped):
 * equal before and after a look at the table and the memory, no phantom
 * went away in between - guarded pages seen then and found in no entry
 * are not the library's (defer.c foreign_guard). */
unsigned nb_phantom_left(void);
/* The live phantom overlapping [start, end) that starts lowest; -1. */
int nb_phantom_next(uintptr_t start, uintptr_t end);
/* nb_phantom_any(): see "The hot path" at the end of this file. */
bool nb_phantom_ever(void); /* some entry was ever used (the fault path) */
/* The program guarded these pages itself: its faults there are its own. */
void nb_phantom_forget_opened(uintptr_t start, uintptr_t end);
/* Fills the memory from the backing, opens it, forgets the phantom. */
int nb_phantom_materialize(int idx);
/* The trampoline's question: was this fault a phantom's (now resolved)? */
bool nb_phantom_fault(uintptr_t a);
/* Forgets every phantom whose read overlaps [start, end) without filling
 * (the memory is being freed, unmapped or overwritten); one only partly
 * inside is materialised instead, for the pages that stay. */
void nb_phantom_drop_range(uintptr_t start, uintptr_t end, bool unprotect);
/* Materialises every live phantom overlapping [start, end) (the contents
 * carry on: realloc, mremap, a protection change) and forgets it. */
void nb_phantom_materialize_range(uintptr_t start, uintptr_t end);
/* The same before a read into [start, end): not a touch of the pair. */
void nb_phantom_overwrite_range(uintptr_t start, uintptr_t end);
/* The steady state of an armed file loop: the live phantom at idx now
 * stands for src at off, read by descriptor owner (generation gen), with
 * the read's edges [xstart, start) and [end, xend) kept - one hold for
 * all of it. -1 if it is live no more. */
int nb_phantom_rebind(int idx, uintptr_t start, uintptr_t end, int src, off_t off, int owner,
		      unsigned gen, uintptr_t xstart, uintptr_t xend);
/* Which source descriptor (and its generation) the phantom was read from:
 * materialising it counts against that source's pair. */
void nb_phantom_set_owner(int idx, int fd, unsigned gen);
/* The owner of the live phantom holding a, for feedback; false if none. */
bool nb_phantom_owner(int idx, int *fd, unsigned *gen);
/* A consistent snapshot of one live phantom. */
enum { NB_PH_FILE = 0, NB_PH_PIPE };
struct nb_phantom_view {
	uintptr_t start, end;   /* the guarded pages */
	uintptr_t xstart, xend; /* the whole read: start/end when no edges */
	int kind;               /* NB_PH_FILE, NB_PH_PIPE */
	size_t len;             /* bytes from start the backing holds */
	int src;                /* file: backing descriptor */
	off_t off;              /* file: offset of start */
};
/* A phantom whose bytes (len of them, from start) sit in a pool pipe,
 * which it owns from here on (pipepool.c); the pages are guarded before
 * it is published. On -1 the pipe is still the caller's. */
int nb_phantom_add_pipe(uintptr_t start, uintptr_t end, const struct nb_pipe *p, size_t len);
/* Rebinds the phantom of pages [start, end) at idx (-1 if idx holds
 * another one by now, or none). */
int nb_phantom_rebind_pipe(int idx, uintptr_t start, uintptr_t end, const struct nb_pipe *p,
			   size_t len);
/* Duplicates the first skip + n bytes of a pipe phantom into the empty
 * pipe t (tee, no copy); returns how many, or -1. */
ssize_t nb_phantom_tee(int idx, uintptr_t start, size_t skip, size_t n, const struct nb_pipe *t);
bool nb_phantom_get(int idx, struct nb_phantom_view *v);
/* Moves a pipe phantom's bytes out of its pipe: move(ctx, pipe, len,
 * &off) writes them into a regular file and says where (off). All moved:
 * the file range becomes the phantom's backing (file: a reference, which
 * the phantom keeps or drops once anything moved). Part moved: the phantom is filled from the file and
 * the pipe and ends. Returns move's result (NB_XFER_FALLBACK: not this
 * phantom any more, or nothing moved and the pipe is intact). */
typedef ssize_t (*nb_move_fn)(void *ctx, int pipe_r, size_t len, off_t *off);
ssize_t nb_phantom_move_out(int idx, uintptr_t start, int file, nb_move_fn move, void *ctx);
/* The program changes bytes [lo, hi) of a file: phantoms backed by that
 * range get their bytes first. */
void nb_phantom_materialize_file_range(dev_t dev, ino_t ino, off_t lo, off_t hi);
/* Keeps copies of the edges [xstart, start) and [end, xend) the read
 * filled for real (each at most 4 KiB): 0, or -1 (none kept). */
int nb_phantom_set_edges(int idx, uintptr_t xstart, uintptr_t xend);
/* Does memory [from, to), inside one edge, still hold what the read put
 * there? Then the file's bytes may be sent for it. */
bool nb_phantom_edges_intact(int idx, uintptr_t from, uintptr_t to);
void nb_phantom_atfork_child(void);
/* fork(): no entry may be caught BUSY for a thread the child lacks. */
void nb_phantom_fork_prepare(void);
void nb_phantom_fork_parent(void);
/* Is this the process the library started in (or was told of by fork)?
 * False in a child made by _Fork without the hook, a raw fork or clone,
 * or vfork: nothing is deferred there. A memory load (a page marked
 * MADV_WIPEONFORK), or getpid(2) where that advice is refused. */
bool nb_same_process(void);
void nb_process_mark(void); /* at start-up and in a child the fork handlers know */
/* Before fork: a pipe-backed phantom's pipe would be shared with the
 * child, so its bytes go into memory first (both then have them). */
void nb_phantom_materialize_pipes(void);
void nb_phantom_materialize_leased_files(void); /* before fork (phantom.c) */
/* Around a memory call that may fail or fail half-way (hook_mem.c):
 * phantoms partly inside [start, end) are filled, those wholly inside
 * are held (at most cap of them; the rest filled), with mark: a byte of
 * their first page set to tell afterwards whether the call zeroed it.
 * Then released by what the call did: */
enum {
	NB_HELD_KEEP,      /* untouched: live again */
	NB_HELD_GONE,      /* unmapped or replaced: forgotten */
	NB_HELD_ZEROED,    /* zero pages now: forgotten, pages opened */
	NB_HELD_BY_MARK,   /* one of the three, read from the mark */
	NB_HELD_BY_MAPPED, /* GONE where nothing is mapped any more, else KEEP */
};
int nb_phantom_hold(uintptr_t start, uintptr_t end, int *held, int cap, bool mark);
void nb_phantom_release_held(const int *held, int n, int how);

/* Internal duplicates of source files, shared per inode and counted by
 * the phantoms that use them (backing.c). get returns the duplicate with
 * one reference taken, or -1. */
int nb_backing_get(int src, dev_t dev, ino_t ino, off_t need); /* need: end of range */
void nb_backing_put(int fd);
void nb_backing_ref(int fd); /* one more reference to a live backing */
bool nb_backing_is_source(dev_t dev, ino_t ino);
/* A read-only reopen of destination file dst, kept (idle) after its last
 * phantom goes for as long as the program keeps dst open; -1. */
int nb_backing_get_reader(int dst, dev_t dev, ino_t ino);
/* The same for a file the program mapped (mapping.c): no lease, no
 * mapping of ours; -1. */
int nb_backing_get_mapped(int src, dev_t dev, ino_t ino);
void nb_backing_fds_closed(unsigned lo, unsigned hi); /* closed or reused */
/* False in a vfork child, which runs the hooks on its parent's memory
 * but closes numbers in its own table (fdtab.c). */
bool nb_own_table(void);
void nb_backing_drop_idle(void);   /* close every idle reopen */
/* The file a live backing descriptor refers to. */
bool nb_backing_identity(int fd, dev_t *dev, ino_t *ino);
/* pread for a fill: checks that fd still names its file and reads the
 * bytes another way if it does not (a lost descriptor); -1 when they are
 * out of reach. */
ssize_t nb_backing_pread(int fd, void *dst, size_t n, off_t off);
void nb_backing_fd_lost(int fd); /* the number is not ours any more */
/* Does the backing descriptor still name its file? (before the kernel
 * reads it for a forward; a lost one is marked so) */
struct stat;
bool nb_backing_intact(int fd, struct stat *out); /* out: its fstat, or NULL */

/* Read leases (backing.c keeps them with the source's slot, lease.c
 * takes and breaks them). Is the backing fd's file held by a lease? */
bool nb_backing_leased(int fd);
/* Closes the slots whose last reference went on the lease thread (a
 * break filled their phantoms there): on a program thread only. */
void nb_backing_sweep(void);
/* A write about to have the kernel read fd's file (forward.c): counted
 * until _end, with a reference; returns the slot for _end. -1: the
 * file's lease is being let go of (or the backing is gone) - send the
 * phantom from memory instead (no call, nothing to end). */
int nb_backing_call_begin(int fd);
void nb_backing_call_end(int fd, int slot);
/* Letting go of a file's lease: no kernel call may read it from here
 * until _end (the ones running are waited for, bounded). */
void nb_backing_break_begin(dev_t dev, ino_t ino);
void nb_backing_break_end(dev_t dev, ino_t ino);
/* The lease descriptor fd out of its slot (the breaker then owns it):
 * false if it is no lease of ours. Async-signal-safe. */
bool nb_backing_lease_taken_out(int fd, dev_t *dev, ino_t *ino);
/* Every lease out and dropped; with fill, the phantoms of each file
 * are filled first. */
void nb_backing_drop_leases(bool fill);
void nb_backing_drop_lease_of(dev_t dev, ino_t ino, bool fill); /* one file's */
/* The fork child: the leases are the parent's (it gets their breaks). */
void nb_backing_leases_atfork_child(void);

/* lease.c: NOBOUNCE_EXACT. */
enum nb_lease_stop {
	NB_LEASE_STOP_DISPOSITION = 1, /* its slot taken behind the library */
	NB_LEASE_STOP_NO_THREAD,       /* the lease thread could not start */
	NB_LEASE_STOP_SIGPENDING,      /* breaks could not be queued */
	NB_LEASE_STOP_NO_TABLE,        /* no CLOSE_RANGE_UNSHARE for the thread */
	NB_LEASE_STOP_PROGRAM_SIGNAL,  /* the program set a handler for it */
};
void nb_lease_init(void);
int nb_lease_signal(void);     /* the signal fault.c holds for breaks; 0 none */
bool nb_lease_on(void);        /* leases are being taken */
bool nb_lease_strict(void);    /* NOBOUNCE_EXACT=strict */
bool nb_lease_any(void);       /* some lease is held now */
const char *nb_lease_state(void);
/* Before a read that may take a lease, outside any critical section:
 * starts the lease thread once (lease.c). */
void nb_lease_prepare(void);
void nb_lease_atfork_child(void);
/* A seccomp filter comes: every lease let go of, the thread gone. */
void nb_lease_thread_stop(void);
/* A read lease on the file src names (dev/ino): our hidden descriptor
 * holding it, or -1 (none to be had; counted). */
int nb_lease_take(int src, dev_t dev, ino_t ino);
/* After every nb_lease_take, once its number is filed with the slot (or
 * dropped): the lease thread waits for this before it answers breaks. */
void nb_lease_settled(void);
void nb_lease_drop(int fd);
/* The same, returning once the lease is gone (the program is about to
 * open, truncate or lease the file itself). */
void nb_lease_drop_wait(int fd);
/* Waits until every lease queued for the thread is let go of (lease.c). */
void nb_lease_drops_wait(void);
/* The lease thread has a descriptor table of its own: code that runs
 * there (a break fills phantoms) must not use the program's numbers. */
bool nb_lease_on_thread(void);
int nb_lease_thread_memfd(void);                 /* its /proc/self/mem */
int nb_lease_thread_fd_of(dev_t dev, ino_t ino); /* its lease on the file, -1 */
/* The program sets a handler for the lease signal (fault.c): leases stop,
 * and the thread blocks the signal before this returns. */
void nb_lease_program_takes_signal(void);
/* On the lease thread, a delivery of the lease signal that is no break
 * of ours: leases stop, the thread blocks the signal for good (uc), and
 * the signal goes to the process again. */
void nb_lease_stray(siginfo_t *info, void *uc);
/* The program asks for a write lease on fd's file: ours on it goes. */
void nb_lease_yield(int fd);
/* The trampoline, on the lease signal with si_code POLL_MSG: true if fd
 * was a lease of ours (its phantoms filled, the lease released). */
bool nb_lease_break(int fd);
void nb_lease_stop(int why);

/* The read that does not copy (defer.c). */
#define NB_NOT_DEFERRED (-2)
/* Serves read/pread of an armed file source as a phantom; returns the
 * count, or NB_NOT_DEFERRED (make the plain call). */
ssize_t nb_defer_read(int fd, void *buf, size_t n, off_t off, bool positional);
/* The kernel is about to read or write [buf, buf+n) for a call that is
 * not forwarded: materialise any phantom there first. */
void nb_defer_expose(const void *buf, size_t n);
/* Before a read into [buf, buf+n) that is not deferred. */
void nb_defer_expose_for_read(void *buf, size_t n);
/* Before exec or spawn: every phantom, wherever it is. */
void nb_defer_expose_all(void);
void nb_defer_expose_iov(const struct iovec *iov, int cnt);
/* Copies n bytes of the program's memory without faulting (EFAULT stays
 * the kernel's to report): false if any of it is not readable. */
bool nb_copy_in(void *dst, const void *src, size_t n);
void nb_defer_expose_msg(const struct msghdr *msg);
/* After a real call failed with EFAULT (hook_io.c "A phantom made after
 * the look"): fills every phantom its memory overlaps; true if there was
 * one, so the call is made again. errno is kept. */
bool nb_defer_refill(const void *buf, size_t n);
bool nb_defer_refill_iov(const struct iovec *iov, int cnt);
bool nb_defer_refill_msg(const struct msghdr *msg, bool reading);
/* recvfrom: only a phantom in [buf, buf+n) counts; addr and *alen are
 * filled with it (defer.c nb_defer_refill_msg says why). */
bool nb_defer_refill_from(const void *buf, size_t n, const void *addr, const socklen_t *alen);
/* Before a read's refill: may the read that failed with EFAULT be made
 * again - did the kernel take nothing away (file, pipe, TCP or AF_UNIX
 * stream, or MSG_PEEK in flags)? False while nothing is live. */
bool nb_read_efault_took_nothing(int fd, int flags);
/* The program is about to change bytes [off, off+n) of what fd names
 * (off -1: at its position; n SIZE_MAX: to the end), or truncate it to
 * len: phantoms backed by those bytes are filled first. */
void nb_defer_before_write(int fd, off_t off, size_t n);
void nb_defer_before_truncate(int fd, off_t len);
void nb_defer_before_truncate_path(const char *path, off_t len);
/* Address-space layout changed (mmap, munmap, mremap). */
void nb_defer_maps_changed(void) NB_UNINSTRUMENTED;
/* [lo, hi) is MADV_WIPEONFORK or MADV_DONTFORK memory (on), or no longer
 * (off): a child would not see its pages, so it is never guarded. */
void nb_defer_fork_special(uintptr_t lo, uintptr_t hi, bool on);
/* Are a phantom's pages still the PROT_NONE pages that were guarded (not
 * replaced by raw system calls)? If not, it is forgotten, unfilled. */
struct nb_phantom_view;
bool nb_defer_phantom_still_ours(const struct nb_phantom_view *v);

/* The write that does not copy (forward.c). kind: how the program wrote. */
#define NB_NOT_FORWARDED (-2)
enum { NB_FWD_WRITE, NB_FWD_SEND, NB_FWD_PWRITE };
ssize_t nb_forward(int dst, const void *buf, size_t n, int kind, int flags, off_t off);
/* The same for writev/pwritev/sendmsg: the iovecs in order, one count. */
ssize_t nb_forward_iov(int dst, const struct iovec *iov, int cnt, int kind, int flags,
		       off_t off);


/* ------------------------------------------------------------------ */
/* The program changing a source itself (sameproc.c)                   */

/* Ways into a file no hook sees (stdio streams that write, shared
 * mappings): while one may write, the file is not deferred, and its
 * phantoms are filled when it is made. */
void nb_same_stream_opened(FILE *f, int fd, bool writes);
void nb_same_stream_closed(FILE *f);
void nb_same_mapped(void *addr, size_t len, int prot, int flags, int fd);
void nb_same_unmapped(uintptr_t a, uintptr_t b);
void nb_same_protect(uintptr_t a, uintptr_t b, int prot);
void nb_same_remapped(uintptr_t old, size_t oldlen, void *naddr, size_t newlen, int flags);
void nb_same_append_cleared(int fd);
/* May the program change (dev, ino) unseen, or does it keep rewriting
 * it? Then reads of it are not deferred. */
bool nb_same_unseen(dev_t dev, ino_t ino);
/* Bytes of a file handed to a pipe or stream socket by reference: a slot
 * reserved before the kernel call (-1: do not use the kernel path),
 * committed with what moved, or cancelled. */
int nb_same_flight_reserve(void);
/* mark: for a pipe, the destination's `piped` count at the end of the
 * piece's bytes, or -1 when not known (another forwarded write into the
 * same pipe was under way). */
void nb_same_flight_commit(int slot, int src, off_t off, size_t n, int dst, int kind,
			   long long mark);
void nb_same_flight_cancel(int slot);
bool nb_same_inflight_any(void);
/* Before the program changes [lo, hi) of (dev, ino): readers still
 * holding those pages are waited for (bounded). */
void nb_same_before_change(dev_t dev, ino_t ino, off_t lo, off_t hi);
void nb_same_stdio_target(int fd);
/* Before the program closes fd: a pipe or UNIX socket cannot be asked
 * afterwards. */
void nb_same_before_close(int fd);
/* Before an open of path: one that truncates (O_TRUNC, creat, fopen "w")
 * fills the file's phantoms first; one for writing lets go of our read
 * lease on it (lease.c). */
void nb_defer_before_open(int dirfd, const char *path, int flags);
/* fallocate(2) of [off, off+len) with mode. */
void nb_defer_before_fallocate(int fd, int mode, off_t off, off_t len);

/* ------------------------------------------------------------------ */
/* Read-only file mappings: memory whose bytes live in a file (mapping.c) */

/* A qualifying mapping as the write path sees it. */
struct nb_mapping_view {
	uintptr_t start, end; /* the whole mapping (page aligned) */
	off_t off;            /* file offset of start */
	int backing;          /* a reference the caller puts (nb_backing_put) */
	int src;              /* the program's descriptor at mmap, for reports */
};
/* nb_mapping_any(): see "The hot path" at the end of this file. */
/* After a successful mmap (the hook's arguments, the kernel's address). */
void nb_mapping_added(void *addr, size_t len, int prot, int flags, int fd, off_t off);
/* [a, a+len) was unmapped, replaced, moved or made unfit: forgotten. */
void nb_mapping_forget(uintptr_t a, size_t len);
/* Before mprotect(a, len, prot): anything but PROT_READ forgets. */
void nb_mapping_protect(uintptr_t a, size_t len, int prot);
/* The qualifying mapping overlapping [a, b) that starts lowest, with a
 * reference to its backing; false if none (or unsure: plain). */
bool nb_mapping_next(uintptr_t a, uintptr_t b, struct nb_mapping_view *v);
/* How many bytes of [a, b) lie in qualifying mappings. */
size_t nb_mapping_bytes(uintptr_t a, uintptr_t b);
void nb_mapping_atfork_child(void);
void nb_mapping_reset(void); /* unit tests */
/* A write of a mapping, for the loop report (loops.c): one iteration of
 * the loop "fd src (file, mapped) -> fd dst". */
void nb_loops_mapped(int src, int dst, enum nb_kind dst_kind, enum nb_path path, size_t bytes);

/* ------------------------------------------------------------------ */
/* Live stats file (live.c)                                            */

void nb_live_start(void);
void nb_live_atfork_child(void);
void nb_live_stop(void); /* exit: the file goes, the counting goes on */
void nb_live_before_exec(void);
void nb_live_after_failed_exec(void);
/* `nobounce fill PID` (scripts/nobounce): an operator asks, through the
 * live file's control words, that every phantom be filled and that no
 * read be deferred until released. Called on the slow path of the hooks
 * (some phantom alive) and before every deferral; fills and acknowledges
 * a pending request. Returns true while deferral is held off. */
bool nb_live_poll(void);

/* ------------------------------------------------------------------ */
/* SIGSEGV/SIGBUS ownership and chaining (fault.c)                     */

/* Takes the kernel's SIGSEGV and SIGBUS slots, adopting what was there
 * as the program's action. Idempotent. */
int nb_fault_install(void);
bool nb_fault_owns(int sig);
int nb_fault_sigaction(int sig, const struct sigaction *act, struct sigaction *old);
bool nb_fault_program_handles(int sig); /* a handler of the program's is stored */
__sighandler_t nb_fault_signal(int sig, __sighandler_t h, int flags);

/* The program's signal dispositions as a multi-call transfer needs them
 * (sigview.c); kept by the signal hooks, read from the kernel at init.
 * Before init every answer is the careful one. */
void nb_sigview_init(void);
void nb_sigview_installed(int sig, const struct sigaction *act);
void nb_sigview_installed_handler(int sig, void (*handler)(int), int flags);
bool nb_sigview_restart_handlers(void); /* some handler has SA_RESTART */
bool nb_sigview_plain_handlers(void);   /* some handler lacks SA_RESTART */
bool nb_sigview_pipe_ignored(void);     /* SIGPIPE is SIG_IGN */
/* A handler found at start-up has SIGSEGV in its mask. */
bool nb_sigview_segv_masked_at_init(void);

/* Was the kernel's SIGSEGV slot taken behind the library? (fault.c) */
bool nb_fault_still_ours(void);
void nb_fault_give_up(void);
bool nb_fault_lease_slot_ours(void); /* the same for the lease signal */
void nb_fault_lease_give_up(void);
void nb_fault_uninstall(void); /* the program's actions back, for good */

/* Can a touch of a guarded page still reach the trampoline (sigguard.c)?
 * A mask that blocks SIGSEGV anywhere, or a disposition changed behind
 * the library, stops deferral for good, every phantom filled first. */
enum { NB_GUARD_NONE = 0, NB_GUARD_MASK, NB_GUARD_DISPOSITION, NB_GUARD_HANDLER, NB_GUARD_UFFD };
/* At start-up: the mask in force; a handler found with SIGSEGV in its
 * mask (sigview.c) counts as such a mask. */
void nb_sigguard_init(bool handler_masks_segv);
/* Before a mask call (how, set) takes effect; set may be bad or NULL. */
void nb_sigguard_mask(int how, const sigset_t *set);
/* Before a call that leaves these signals blocked (BSD masks). */
void nb_sigguard_mask_bits(uint64_t blocked_after);
/* Around a call that waits under a temporary mask (ppoll, sigsuspend). */
bool nb_sigguard_call_begin(const sigset_t *tmp);
void nb_sigguard_call_end(bool began);
/* A handler is about to run with SIGSEGV blocked (async-signal-safe). */
void nb_sigguard_handler_masks_segv(void);
/* Before a deferred read: may a phantom be made? (two system calls) */
bool nb_sigguard_allows(void);
/* After publishing one: is it still allowed (else fill it)? */
bool nb_sigguard_recheck(void);
const char *nb_sigguard_reason(void); /* NULL while deferral is allowed */
/* The process makes, or sets up, a userfaultfd (before the call): every
 * phantom filled, none made again in this process (sigguard.c). */
void nb_sigguard_uffd(void);
/* A deferred file read's section, counted for nb_sigguard_uffd: false
 * (and not counted) once deferral has stopped for good. */
bool nb_sigguard_read_begin(void);
void nb_sigguard_read_end(void);
void nb_sigguard_atfork_child(void);
/* An ioctl request of userfaultfd's (type 0xAA: USERFAULTFD_IOC_NEW on
 * /dev/userfaultfd, UFFDIO_API, UFFDIO_REGISTER, ...). */
#define NB_UFFD_IOCTL(req) ((((unsigned long)(req)) >> 8 & 0xff) == 0xAA)
/* A section in which the library holds a phantom entry: asynchronous
 * signals blocked, so no handler on this thread waits for it. Nests. */
void nb_crit_enter(void);
void nb_crit_leave(void);
void nb_crit_reset_thread(void);

/* ------------------------------------------------------------------ */
/* Global state (init.c) and logging (log.c)                           */

struct nb_global {
	atomic_int active;     /* hooks do work (not off, initialised, not secure) */
	atomic_int tracked;    /* some read was big enough to track */
	atomic_size_t track_min; /* reads below this are not looked at (init.c) */
	bool secure;           /* AT_SECURE: environment ignored */
	struct nb_config cfg;
	int log_fd;            /* private dup of stderr, O_CLOEXEC, or -1 */
	pid_t pid;
	char prog[64];
};
extern struct nb_global nb_g;

/* The smallest read the hooks look at (init.c track_min, detect.c). */
static inline size_t nb_track_min(void)
{
	return atomic_load_explicit(&nb_g.track_min, memory_order_relaxed);
}

void nb_init(void);
/* The fork handlers (pthread_atfork, and the _Fork hook). */
void nb_fork_prepare(void);
void nb_fork_parent(void);
void nb_fork_child(void);
long nb_fork_around(long (*do_fork)(void));
void nb_log(enum nb_loglevel lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* One line on stderr, then the process ends with SIGABRT (async-signal-
 * safe): only where going on would give the program wrong bytes. */
void nb_die(const char *why) __attribute__((noreturn));
/* Writes a whole buffer to fd with the real write, retrying EINTR. */
void nb_write_all(int fd, const char *buf, size_t n);
/* Internal descriptors (ownfd.c): duplicates fd at the top of the table,
 * O_CLOEXEC, hidden from the program (EBADF when named); -1 if no room. */
int nb_hide_fd(int fd);
/* "/proc/self/fd/N" into out (async-signal-safe). */
void nb_proc_fd_path(char out[32], int fd);
/* A new open file description of the file fd names, through /proc with
 * flags (O_RDONLY, ...), hidden like nb_hide_fd; -1 if fd no longer
 * names dev/ino or it cannot be opened. */
int nb_reopen_hidden(int fd, dev_t dev, ino_t ino, int flags);
bool nb_own_is(int fd);
void nb_own_evict(int fd);      /* the program claims this number */
void nb_own_release(int fd);
bool nb_own_release_all(void);  /* EMFILE: give every number back */
/* Before internal descriptors are given up (the program claims one, or
 * ran out of numbers): no phantom may refer to them any more - each is
 * filled, so its backing file or pipe is no longer needed - and the pool
 * closes its idle pipes (init.c). */
void nb_own_prepare_surrender(void);
int nb_own_close_range(unsigned lo, unsigned hi, int flags,
		       int (*real)(unsigned, unsigned, int));
/* fd was ours but is not any more (closed behind our back, perhaps the
 * program's by now): it stops being ours without a close, and stays
 * reserved from new internal descriptors until its user releases it. */
void nb_own_lost(int fd);
/* The same, and every user of the number is told (init.c). */
void nb_own_lost_notice(int fd);

/* ------------------------------------------------------------------ */
/* Real functions (real.c)                                             */

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

ssize_t __read_chk(int fd, void *buf, size_t nbytes, size_t buflen);
ssize_t __pread_chk(int fd, void *buf, size_t nbytes, off_t off, size_t buflen);
ssize_t __pread64_chk(int fd, void *buf, size_t nbytes, off64_t off, size_t buflen);
ssize_t __recv_chk(int fd, void *buf, size_t len, size_t buflen, int flags);
ssize_t __recvfrom_chk(int fd, void *buf, size_t len, size_t buflen, int flags,
		       struct sockaddr *addr, socklen_t *alen);
int __open_2(const char *path, int flags);
int __open64_2(const char *path, int flags);
int __openat_2(int dirfd, const char *path, int flags);
int __openat64_2(int dirfd, const char *path, int flags);
int close_range(unsigned first, unsigned last, int flags);
__sighandler_t bsd_signal(int sig, __sighandler_t h);
__sighandler_t __sysv_signal(int sig, __sighandler_t h);
pid_t _Fork(void);
#include <pthread.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <ucontext.h>

/* Every other call that hands memory to the kernel (hook_kread.c). The
 * memory of prctl and sigaltstack, whose hooks live with their other
 * concerns (hook_sandbox.c, hook_mem.c). */
void nb_kread_prctl(int op, unsigned long a2);
void nb_kread_sigaltstack(const stack_t *ss, const stack_t *old);
/* Every other call that hands memory to the kernel (hook_kread.c). */
#include "hook_kread.h"
#define NB_REAL_FUNCS_KREAD(X) \
	X(stat) X(lstat) X(fstat) X(fstatat) X(__xstat) X(__lxstat) X(__fxstat) \
	X(__fxstatat) X(statx) X(statfs) X(fstatfs) X(statvfs) X(fstatvfs) X(getdents64) \
	X(getdirentries) X(readlink) X(readlinkat) X(__readlink_chk) X(__readlinkat_chk) \
	X(getcwd) X(__getcwd_chk) X(__getwd_chk) X(ttyname_r) X(__ttyname_r_chk) \
	X(opendir) X(open_tree) X(fsopen) X(mknod) X(mknodat) X(chown) X(lchown) \
	X(fchownat) X(linkat) X(symlinkat) X(renameat) X(renameat2) X(move_mount) \
	X(mount_setattr) X(fsconfig) X(mount) X(utime) X(utimes) X(lutimes) X(futimes) \
	X(futimesat) X(utimensat) X(futimens) X(inotify_add_watch) X(fanotify_mark) \
	X(name_to_handle_at) X(open_by_handle_at) X(uname) X(sysinfo) X(times) \
	X(getrusage) X(getrlimit) X(getgroups) X(__getgroups_chk) X(setgroups) \
	X(getresuid) X(getresgid) X(sethostname) X(setdomainname) X(klogctl) X(capget) \
	X(capset) X(init_module) X(delete_module) X(clock_gettime) X(clock_getres) \
	X(clock_settime) X(gettimeofday) X(settimeofday) X(adjtimex) X(ntp_adjtime) \
	X(clock_adjtime) X(getitimer) X(setitimer) X(timer_settime) X(timer_gettime) \
	X(timerfd_settime) X(timerfd_gettime) X(nanosleep) X(clock_nanosleep) X(getcpu) \
	X(sched_getaffinity) X(sched_setaffinity) X(pthread_getaffinity_np) \
	X(pthread_setaffinity_np) X(pthread_setname_np) X(pthread_getname_np) \
	X(sched_getparam) X(sched_setparam) X(sched_setscheduler) X(sched_rr_get_interval) \
	X(select) X(pselect) X(poll) X(ppoll) X(__poll_chk) X(__ppoll_chk) X(epoll_wait) \
	X(epoll_pwait) X(epoll_pwait2) X(epoll_ctl) X(sigprocmask) X(pthread_sigmask) \
	X(sigpending) X(sigsuspend) X(sigtimedwait) X(sigwaitinfo) X(sigwait) \
	X(sigaltstack) X(signalfd) X(pidfd_send_signal) X(wait) X(waitpid) X(wait3) \
	X(wait4) X(waitid) X(bind) X(connect) X(getsockname) X(getpeername) X(getsockopt) \
	X(setsockopt) X(sendmmsg) X(recvmmsg) X(mincore) X(process_vm_readv) \
	X(process_vm_writev) X(process_madvise) X(vmsplice) X(splice) X(sendfile) \
	X(copy_file_range) X(eventfd_read) X(aio_read) X(aio_write) X(lio_listio) \
	X(getrandom) X(getentropy) X(arc4random_buf) X(msgsnd) X(msgrcv) X(msgctl) \
	X(shmctl) X(semop) X(semtimedop) X(semctl) X(mq_open) X(__mq_open_2) X(mq_send) \
	X(mq_timedsend) X(mq_receive) X(mq_timedreceive) X(mq_getattr) X(mq_setattr) \
	X(mq_notify) X(ioctl) X(prctl) X(arch_prctl) X(__read) X(__write) X(__pread64) \
	X(__pwrite64) X(__recv) X(__send) X(__pipe) X(access) X(euidaccess) X(eaccess) \
	X(faccessat) X(chdir) X(chroot) X(chmod) X(lchmod) X(fchmodat) X(mkdir) X(mkdirat) \
	X(mkfifo) X(mkfifoat) X(rmdir) X(unlink) X(unlinkat) X(link) X(symlink) X(rename) \
	X(swapoff) X(swapon) X(acct) X(umount) X(umount2) X(memfd_create) X(mq_unlink) \
	X(fspick) X(setxattr) X(getxattr) X(listxattr) X(removexattr) X(lsetxattr) \
	X(fsetxattr) X(lgetxattr) X(fgetxattr) X(llistxattr) X(flistxattr) X(lremovexattr) \
	X(fremovexattr) \
	X(time) X(timespec_get) X(timespec_getres) X(thrd_sleep) X(pthread_setschedparam) \
	X(__xmknod) X(__xmknodat) X(__fread_chk) X(__fread_unlocked_chk) X(_IO_fread) \
	X(_IO_fwrite) X(_IO_sgetn) X(_IO_file_read) X(_IO_file_write) X(_IO_file_xsputn) \
	X(_IO_do_write) X(remove) X(pathconf) X(ftok) X(setmntent) X(scandir) X(scandirat) \
	X(pivot_root) X(bindresvport) X(openpty)

/* glibc's fortified vdprintf (declared by <stdio.h> only under
 * _FORTIFY_SOURCE). */
int __vdprintf_chk(int fd, int flag, const char *fmt, va_list ap);

#define NB_REAL_FUNCS(X)                                                           \
	X(read) X(write) X(pread) X(pwrite) X(readv) X(writev) X(preadv) X(pwritev) \
	X(preadv2) X(pwritev2) X(recv) X(recvfrom) X(recvmsg) X(send) X(sendto)     \
	X(sendmsg) X(__read_chk) X(__pread_chk) X(__pread64_chk) X(__recv_chk)      \
	X(__recvfrom_chk) X(close) X(close_range) X(dup) X(dup2) X(dup3) X(fcntl)   \
	X(socket) X(socketpair) X(accept) X(accept4) X(pipe) X(pipe2) X(open)       \
	X(openat) X(__open_2) X(__openat_2) X(creat) X(fopen)             \
	X(freopen) X(fclose) X(sigaction) X(signal) X(bsd_signal) X(__sysv_signal)  \
	X(sysv_signal) X(free) X(realloc) X(munmap) X(mremap) X(madvise) X(mprotect)   \
	X(mmap) X(fread) X(fwrite) X(fread_unlocked) X(fwrite_unlocked) X(ftruncate)      \
	X(truncate) X(execve) X(execv) X(execvp) X(execvpe) X(fexecve) X(execveat)      \
	X(posix_spawn) X(posix_spawnp) X(system) X(popen) X(setrlimit) X(prlimit)      \
	X(sigsetmask) X(sigblock) X(sighold) X(sigset) X(sigignore) X(siginterrupt)     \
	X(setcontext) X(swapcontext) X(_Fork) X(pthread_attr_setsigmask_np) X(mlock) X(mlock2) \
	X(fallocate) X(fdopen) X(pkey_mprotect) X(vdprintf) X(__vdprintf_chk)            \
	X(_exit) X(_Exit)                                                             \
	NB_REAL_FUNCS_KREAD(X)

/* Some hooked names are deprecated in glibc's headers (sighold, sigset,
 * sigblock, ...); legacy programs still call them, so they are hooked. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
struct nb_real {
#define NB_REAL_FIELD(name) __typeof__(name) *name;
	NB_REAL_FUNCS(NB_REAL_FIELD)
#undef NB_REAL_FIELD
};
#pragma GCC diagnostic pop
extern struct nb_real nb_real;

/* Resolves every next definition; safe to call more than once. */
void nb_real_init(void);
/* The real function, resolving on first use when a hook runs before the
 * constructor (another library's constructor, a malloc replacement). */
#define NB_REAL(name) (NB_LIKELY(nb_real.name != NULL) ? nb_real.name : (nb_real_init(), nb_real.name))

/* One record of getdents64(2), for the library's own directory walks. */
struct nb_dirent64 {
	uint64_t ino;
	int64_t off;
	unsigned short reclen;
	unsigned char type;
	char name[];
};

/* Raw system calls for the library's own I/O: never re-enter a hook. */
ssize_t nb_sys_write(int fd, const void *buf, size_t n);
int nb_sys_close(int fd);
int nb_sys_fcntl(int fd, int cmd, long arg);
/* Memory calls by raw system call: the library's own use must not go
 * through its memory hooks (hook_mem.c). */
int nb_sys_mprotect(void *addr, size_t len, int prot);
void *nb_sys_mmap_anon(size_t len); /* MAP_FAILED on error */
void *nb_sys_mmap_shared(int fd, size_t len);
int nb_sys_munmap(void *addr, size_t len);
struct stat;
int nb_sys_fstat(int fd, struct stat *st);
off_t nb_sys_lseek(int fd, off_t off, int whence);
int nb_sys_stat(const char *path, struct stat *st);
int nb_sys_getrlimit(int resource, struct rlimit *rl);

/* ------------------------------------------------------------------ */
/* seccomp (sandbox.c)                                                 */

/* A filter (or strict mode) is in force or being installed: every hook
 * is a pure pass-through and the library makes no system call. */
bool nb_sandboxed(void);
/* At start: is a filter inherited (or its state unknowable)? */
bool nb_sandbox_detect(void);
/* Before the program's filter takes effect: fill, release, report, give
 * the fault signals back, then pass-through for good. */
void nb_sandbox_enter(void);
/* The exit report and the live file's removal (init.c); also run by
 * nb_sandbox_enter, after which the destructor does nothing. */
void nb_final_report(void);

/* The exported syscall() is a hook (hook_sandbox.c); the library's own
 * raw calls go straight to the kernel through sandbox.c's entry. */
#if defined(NB_SHARED) && defined(__x86_64__)
#define NB_HOOK_SYSCALL 1
long nb_raw_syscall(long nr, ...) __attribute__((visibility("hidden")));
#define syscall nb_raw_syscall
#endif

/* ------------------------------------------------------------------ */
/* The final report however the process ends (fmt.c, termsig.c, init.c) */

/* snprintf's contract for the formats the library uses, without libc:
 * async-signal-safe (fmt.c). */
size_t nb_fmt(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
size_t nb_vfmt(char *buf, size_t cap, const char *fmt, va_list ap);
/* The observe and stats reports, once per process: at exit, _exit,
 * exit_group, or a termination signal the program leaves at SIG_DFL.
 * Async-signal-safe; nothing in a vfork child or a raw fork (init.c). */
void nb_exit_report(void);
/* Termination signals at SIG_DFL hold our handler (termsig.c). */
void nb_term_init(void);
void nb_term_give_back(void); /* seccomp, or pid 1 of a namespace */
/* Set while the final report is written: each write waits for room at
 * most a second (log.c nb_write_all). */
extern atomic_int nb_report_bounded;
bool nb_term_held(int sig);
bool nb_term_is_ours(const void *handler);
int nb_term_sigaction(int sig, const struct sigaction *act, struct sigaction *old);
/* After a glibc wrapper installed through its internal __sigaction: the
 * handler it returns, as the program must see it; the slot taken again. */
__sighandler_t nb_term_after(int sig, __sighandler_t r);
long nb_term_rt_sigaction(int sig, const void *kact, void *kold, long size);
/* Why a pair's buffer can never be guarded (defer.c), so that it is not
 * armed and the report names the reason (detect.c, loops.c). */
enum { NB_BUF_OK = 0, NB_BUF_STACK, NB_BUF_ALTSTACK, NB_BUF_SHARED, NB_BUF_FORK, NB_BUF_COUNT };
int nb_defer_refusal(uintptr_t a, size_t n);
const char *nb_buf_refusal_text(int why);
const char *nb_buf_refusal_name(int why);
/* The live stats directory, or NULL when live stats are off (live.c). */
const char *nb_live_dir(void);

/* ------------------------------------------------------------------ */
/* The hot path: what a hook may skip while nothing is live            */

/* A hooked read or write in a process where nothing is armed must cost
 * little more than the call itself (issue 15: <= 40 instructions over
 * plain). Each mechanism keeps a count of what it has live; these are
 * those counts, so that the hooks can look at them inline (one relaxed
 * load and compare each, no call) and skip a mechanism whose first test,
 * made on that same relaxed load, would have returned at once. Nothing
 * else is skipped: when any count is non-zero the hook takes the full
 * path, which looks again. Written only by their owners. */
#define NB_HIDDEN __attribute__((visibility("hidden")))
extern atomic_uint nb_phantom_live NB_HIDDEN; /* phantom.c: entries LIVE/BUSY/DONE */
extern atomic_int nb_mapping_live NB_HIDDEN;  /* mapping.c: file mappings recorded */
extern atomic_int nb_flights_live NB_HIDDEN;  /* sameproc.c: bytes of files in flight */
extern atomic_int nb_own_lo NB_HIDDEN;        /* ownfd.c: lowest internal fd ever */

/* Some phantom exists (or is being made or filled) somewhere. */
static inline NB_UNINSTRUMENTED bool nb_phantom_any(void)
{
	return atomic_load_explicit(&nb_phantom_live, memory_order_relaxed) != 0;
}

/* Some read-only file mapping is recorded (mapping.c). */
static inline bool nb_mapping_any(void)
{
	return atomic_load_explicit(&nb_mapping_live, memory_order_relaxed) != 0;
}

/* Some bytes of a file may be in flight (sameproc.c): a write may have to
 * wait for their reader first. nb_same_inflight_any gives the answer. */
static inline bool nb_flights_maybe(void)
{
	return atomic_load_explicit(&nb_flights_live, memory_order_relaxed) != 0;
}

/* Could fd be one of the library's own descriptors? false is certain
 * (nb_own_is answers the same from the same load); true means ask
 * nb_own_is. */
static inline bool nb_own_maybe(int fd)
{
	return fd >= atomic_load_explicit(&nb_own_lo, memory_order_relaxed);
}

/* ------------------------------------------------------------------ */
/* The settled loop: a judged loop the hooks count alone (settle.c)    */

/* A repeating loop (detect.c "Repeating loops") whose pair was refused
 * for a reason that cannot change while the loop repeats unchanged is
 * "settled" on its thread: read() and write() recognise its next call
 * inline (descriptor, buffer, size, which call is next) and count the
 * iteration themselves, with no detector. Valid while epoch equals
 * nb_settle_epoch, which every event that could change the judgement
 * bumps (nb_settle_break). Written by the thread (and its signal
 * handlers, which leave it first). */
struct nb_settle {
	const void *buf;
	size_t n;
	int rfd;         /* the source while the loop's read is next, else -1 */
	int wfd;         /* the destination while its write is next, else -1 */
	unsigned epoch;  /* nb_settle_epoch when settled; 0: not settled */
	int src, dst;
	uint64_t head, tail; /* the read's first and last 8 bytes (detect.c) */
	struct nb_fd *e;     /* the source's slot, whose `settled` counts */
	unsigned phase;      /* the pair's iterations mod 16 when settled */
};
extern __thread struct nb_settle nb_settle_tls
	__attribute__((tls_model("initial-exec"))) NB_HIDDEN;
extern atomic_uint nb_settle_epoch NB_HIDDEN;
/* Every settled loop of every thread goes back to the detector. */
void nb_settle_break(void);
/* The four process-wide flags a settled call does not look at (settle.c
 * "One epoch for four flags"): phantoms, file mappings, bytes in flight,
 * kept socket errors. Their owners raise them with NB_SETTLE_RAISE, so a
 * rise from 0 ends every settled loop; nb_settle_consider does not
 * settle while one is up. */
#define NB_SETTLE_RAISE(flag)                                   \
	do {                                                    \
		if (atomic_fetch_add(&(flag), 1) == 0)          \
			nb_settle_break();                      \
	} while (0)
static inline bool nb_settle_flags_up(void)
{
	return nb_phantom_any() || nb_mapping_any() || nb_flights_maybe() ||
	       atomic_load(&nb_lost_errs) != 0;
}
/* detect.c, holding the source's lock after the repeating loop counted a
 * bounce: settles it when its pair can be left to the hooks. epoch: the
 * value read before the generations were checked. */
struct nb_rec;
void nb_settle_consider(struct nb_fd *s, const struct nb_rec *r, int dst, unsigned epoch);
/* Leaves this thread's settled loop: its count folded into the pair (or
 * left on the slot for the next fold), the thread's state cleared.
 * Returns true if it was settled, with *want_write (the read was made,
 * its write not yet: head and tail are its samples). */
bool nb_settle_leave(bool *want_write, uint64_t *head, uint64_t *tail);
/* With the slot locked: the settled count into the pair (before the pair
 * is retired, restarted or read as a whole). */
void nb_settle_fold_locked(struct nb_fd *e);
/* detect.c: leaves this thread's settled loop, the ring left as the
 * detector would have left it had it seen every call. */
void nb_detect_unsettle(void);

static inline uint64_t nb_settled_count(const struct nb_fd *e)
{
	return atomic_load_explicit(&e->settled, memory_order_relaxed);
}

/* The settled loop's calls, as the read/write hooks decide them
 * (hook_io.c; settle.c says why these checks are enough). Due: this
 * call is the loop's next one and nothing the epoch does not cover is
 * live. Done: after the real call returned r, the iteration's half is
 * counted (true), or the loop is broken (false: the hook hands the call
 * to the detector). */
static inline uint64_t nb_settle_load8(const void *a)
{
	uint64_t v;
	__builtin_memcpy(&v, a, sizeof v);
	return v;
}

static inline bool nb_settle_current(const void *buf, size_t n)
{
	return buf == nb_settle_tls.buf && n == nb_settle_tls.n &&
	       NB_LIKELY(nb_settle_tls.epoch ==
			 atomic_load_explicit(&nb_settle_epoch, memory_order_relaxed));
}

static inline bool nb_settle_read_due(int fd, const void *buf, size_t n)
{
	return fd == nb_settle_tls.rfd && nb_settle_current(buf, n);
}

static inline bool nb_settle_write_due(int fd, const void *buf, size_t n)
{
	return fd == nb_settle_tls.wfd && nb_settle_current(buf, n);
}

static inline bool nb_settle_read_done(int fd, const void *buf, size_t n, ssize_t r)
{
	struct nb_settle *st = &nb_settle_tls;
	/* A signal handler may have left the loop during the call. */
	if (NB_UNLIKELY(r != (ssize_t)n) || NB_UNLIKELY(st->rfd != fd))
		return false;
	st->head = nb_settle_load8(buf);
	st->tail = nb_settle_load8((const char *)buf + n - 8);
	st->rfd = -1;
	st->wfd = st->dst;
	return true;
}

/* When the pair's whole count reaches a multiple of 16, as the detector
 * flushes it (nb_loops_flush_live): the live counters (settle.c). */
void nb_settle_flush_live(struct nb_fd *e, uint64_t k, size_t n);

static inline bool nb_settle_write_done(int fd, const void *buf, size_t n, ssize_t w)
{
	struct nb_settle *st = &nb_settle_tls;
	/* The epoch again: an event during the call (another thread's
	 * close, say) may have retired the pair this count would go to.
	 * The ends as write_piece compares them. */
	if (NB_UNLIKELY(w != (ssize_t)n) || NB_UNLIKELY(st->wfd != fd) ||
	    NB_UNLIKELY(st->epoch != atomic_load_explicit(&nb_settle_epoch, memory_order_relaxed)) ||
	    nb_settle_load8(buf) != st->head ||
	    nb_settle_load8((const char *)buf + n - 8) != st->tail)
		return false;
	struct nb_fd *e = st->e;
	/* One writer per slot (settle_owner): a plain load and store. */
	uint64_t k = atomic_load_explicit(&e->settled, memory_order_relaxed) + 1;
	atomic_store_explicit(&e->settled, k, memory_order_relaxed);
	st->wfd = -1;
	st->rfd = st->src;
	if (NB_UNLIKELY(((k + st->phase) & 15) == 0))
		nb_settle_flush_live(e, k, n);
	return true;
}

/* Reads shorter than this are never deferred: nb_defer_read needs
 * NB_MIN_PAGES (2) whole pages, and a page is at least 4 KiB on every
 * Linux port (defer.c checks the relation at compile time). */
#define NB_DEFER_MIN_BYTES (2u * 4096u)

#endif
