/*
 * config.c - parses and validates the NOBOUNCE_* environment variables.
 *
 * Owns: defaults, accepted values, and the wording of every complaint
 * about a bad value (one line naming the variable, what is accepted, and
 * the default used instead).
 * Must not: read the environment directly or write anywhere; the caller
 * passes a getter and a sink, so the unit tests drive it with tables.
 */
#include "internal.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define DEF_MIN_CHUNK ((size_t)16 * 1024)
#define DEF_MIN_CHUNK_FILE ((size_t)64 * 1024)
#define DEF_MIN_CHUNK_STREAM ((size_t)128 * 1024)
#define DEF_MIN_CHUNK_PIPE ((size_t)64 * 1024)
#define DEF_ARM_AFTER 2u
#define DEF_MAX_PIPES 64u
#define DEF_PIPE_SIZE ((size_t)1024 * 1024)
#define DEF_SEND_CHUNK ((size_t)32 * 1024)
/* The lease break signal: a real-time one (queued, never merged; default
 * action terminate, so a stray one is not silently lost), near the top
 * where few programs look - SIGRTMIN's first numbers are the usual picks
 * of programs and libraries. Kernel numbering (glibc's SIGRTMAX is 64). */
#define DEF_LEASE_SIGNAL 62
#define LEASE_SIGNAL_LO 34
#define LEASE_SIGNAL_HI 64

#define MIN_CHUNK_LO ((size_t)512)
#define MIN_CHUNK_HI ((size_t)1 << 30)
#define ARM_AFTER_HI 1000000u
#define MAX_PIPES_HI 4096u
#define PIPE_SIZE_LO ((size_t)4096)
#define PIPE_SIZE_HI ((size_t)1 << 30)
#define SEND_CHUNK_LO ((size_t)4096)
#define SEND_CHUNK_HI ((size_t)1 << 30)

static const char *const known_vars[] = {
	"NOBOUNCE_MODE",      "NOBOUNCE_MIN_CHUNK", "NOBOUNCE_ARM_AFTER", "NOBOUNCE_PATHS",
	"NOBOUNCE_MAX_PIPES", "NOBOUNCE_PIPE_SIZE", "NOBOUNCE_STATS",     "NOBOUNCE_LOG",
	"NOBOUNCE_ONLY",      "NOBOUNCE_SKIP",      "NOBOUNCE_SEND_CHUNK", "NOBOUNCE_MIN_CHUNK_FILE",
	"NOBOUNCE_MIN_CHUNK_STREAM", "NOBOUNCE_MIN_CHUNK_PIPE", "NOBOUNCE_LIVE", "NOBOUNCE_LIVE_DIR",
	"NOBOUNCE_EXACT", "NOBOUNCE_LEASE_SIGNAL", "NOBOUNCE_REPORT",
};

void nb_config_defaults(struct nb_config *c)
{
	memset(c, 0, sizeof *c);
	c->mode = NB_MODE_ON;
	c->min_chunk = DEF_MIN_CHUNK;
	c->min_chunk_file = DEF_MIN_CHUNK_FILE;
	c->min_chunk_stream = DEF_MIN_CHUNK_STREAM;
	c->min_chunk_pipe = DEF_MIN_CHUNK_PIPE;
	c->arm_after = DEF_ARM_AFTER;
	c->paths = NB_PATH_ALL;
	c->max_pipes = DEF_MAX_PIPES;
	c->pipe_size = DEF_PIPE_SIZE;
	c->send_chunk = DEF_SEND_CHUNK;
	c->log = NB_LOG_WARN;
	c->live = true;
	c->exact = NB_EXACT_AUTO;
	c->lease_signal = DEF_LEASE_SIGNAL;
}

const char *nb_exact_name(enum nb_exact e)
{
	switch (e) {
	case NB_EXACT_AUTO: return "auto";
	case NB_EXACT_STRICT: return "strict";
	case NB_EXACT_OFF: return "off";
	}
	return "?";
}

const char *nb_mode_name(enum nb_mode m)
{
	switch (m) {
	case NB_MODE_OFF: return "off";
	case NB_MODE_OBSERVE: return "observe";
	case NB_MODE_ON: return "on";
	}
	return "?";
}

/* "65536", "64K", "64k", "1M", "1G": a positive byte count. Surrounding
 * blanks are refused too; a value that is not exactly a number is a
 * mistake worth reporting. */
int nb_parse_size(const char *s, size_t *out)
{
	if (s == NULL || !isdigit((unsigned char)s[0]))
		return -1;
	errno = 0;
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno != 0)
		return -1;
	unsigned shift = 0;
	switch (*end) {
	case '\0': break;
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	default: return -1;
	}
	if (*end != '\0' || v > (SIZE_MAX >> shift))
		return -1;
	*out = (size_t)(v << shift);
	return 0;
}

static int parse_uint(const char *s, unsigned lo, unsigned hi, unsigned *out)
{
	size_t v;
	/* Suffixes make no sense for counts; refuse them. */
	for (const char *p = s; *p; p++)
		if (!isdigit((unsigned char)*p))
			return -1;
	if (nb_parse_size(s, &v) != 0 || v < lo || v > hi)
		return -1;
	*out = (unsigned)v;
	return 0;
}

static void fmt_size(char *b, size_t cap, size_t v)
{
	if (v >= ((size_t)1 << 30) && v % ((size_t)1 << 30) == 0)
		snprintf(b, cap, "%zuG", v >> 30);
	else if (v >= ((size_t)1 << 20) && v % ((size_t)1 << 20) == 0)
		snprintf(b, cap, "%zuM", v >> 20);
	else if (v >= 1024 && v % 1024 == 0)
		snprintf(b, cap, "%zuK", v >> 10);
	else
		snprintf(b, cap, "%zu", v);
}

struct ctx {
	nb_complain_fn complain;
	void *cookie;
	int bad;
};

static void bad(struct ctx *x, const char *var, const char *val, const char *accepted,
		const char *def)
{
	char line[512];
	snprintf(line, sizeof line, "nobounce: %s='%.64s' is invalid: expected %s; using %s", var,
		 val, accepted, def);
	x->bad++;
	if (x->complain)
		x->complain(line, x->cookie);
}

static void parse_size_var(struct ctx *x, const char *var, const char *val, size_t lo,
			   size_t hi, size_t *field)
{
	size_t v;
	if (nb_parse_size(val, &v) == 0 && v >= lo && v <= hi) {
		*field = v;
		return;
	}
	char acc[128], l[32], h[32], d[32];
	fmt_size(l, sizeof l, lo);
	fmt_size(h, sizeof h, hi);
	fmt_size(d, sizeof d, *field);
	snprintf(acc, sizeof acc, "a byte count from %s to %s (suffix K, M or G allowed)", l, h);
	bad(x, var, val, acc, d);
}

static void parse_uint_var(struct ctx *x, const char *var, const char *val, unsigned lo,
			   unsigned hi, unsigned *field)
{
	if (parse_uint(val, lo, hi, field) == 0)
		return;
	char acc[96], d[32];
	snprintf(acc, sizeof acc, "a whole number from %u to %u", lo, hi);
	snprintf(d, sizeof d, "%u", *field);
	bad(x, var, val, acc, d);
}

/* Splits a comma list in place-free fashion: calls fn on each item
 * (pointer + length); stops and returns -1 when fn refuses one. */
static int each_item(const char *s, int (*fn)(const char *item, size_t n, void *arg), void *arg)
{
	while (*s) {
		const char *e = strchr(s, ',');
		size_t n = e ? (size_t)(e - s) : strlen(s);
		if (n == 0 || fn(s, n, arg) != 0)
			return -1;
		s += n;
		if (*s == ',')
			s++;
		if (e && *s == '\0')
			return -1; /* trailing comma */
	}
	return 0;
}

static int path_item(const char *item, size_t n, void *arg)
{
	static const struct { const char *name; unsigned bit; } names[] = {
		{ "sendfile", NB_PATH_SENDFILE },
		{ "copy_file_range", NB_PATH_COPY_FILE_RANGE },
		{ "splice", NB_PATH_SPLICE },
	};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (strlen(names[i].name) == n && memcmp(names[i].name, item, n) == 0) {
			*(unsigned *)arg |= names[i].bit;
			return 0;
		}
	return -1;
}

static void parse_paths(struct ctx *x, const char *val, unsigned *field)
{
	unsigned bits = 0;
	if (strcmp(val, "all") == 0)
		bits = NB_PATH_ALL;
	else if (strcmp(val, "none") == 0)
		bits = 0;
	else if (val[0] == '\0' || each_item(val, path_item, &bits) != 0) {
		bad(x, "NOBOUNCE_PATHS", val,
		    "'all', 'none' or a comma list of sendfile, copy_file_range, splice", "all");
		return;
	}
	*field = bits;
}

static int name_item(const char *item, size_t n, void *arg)
{
	(void)arg;
	return (memchr(item, '/', n) != NULL || n > 63) ? -1 : 0;
}

static void parse_names(struct ctx *x, const char *var, const char *val, char *field, size_t cap,
			const char *def)
{
	if (strlen(val) < cap && each_item(val, name_item, NULL) == 0) {
		strcpy(field, val);
		return;
	}
	bad(x, var, val, "a comma list of program names (no '/', each under 64 characters)", def);
}

static void parse_stats(struct ctx *x, const char *var, const char *val, char *field, size_t cap)
{
	/* %p is the only expansion; a lone % or another letter is a typo. */
	const char *p = val;
	if (val[0] == '\0')
		return; /* set but empty: no report, as when unset */
	bool ok = strlen(val) < cap - 16;
	while (ok && (p = strchr(p, '%')) != NULL) {
		ok = p[1] == 'p';
		p += 2;
	}
	if (ok) {
		strcpy(field, val);
		return;
	}
	bad(x, var, val, "'stderr' or a file path (%p expands to the pid)",
	    var[9] == 'S' ? "no report" : "stderr, or a file when stderr is gone");
}

int nb_config_parse(struct nb_config *c, nb_getenv_fn get, nb_complain_fn complain, void *cookie)
{
	struct ctx x = { complain, cookie, 0 };
	const char *v;

	nb_config_defaults(c);
	if ((v = get("NOBOUNCE_MODE", cookie)) != NULL) {
		if (strcmp(v, "on") == 0)
			c->mode = NB_MODE_ON;
		else if (strcmp(v, "observe") == 0)
			c->mode = NB_MODE_OBSERVE;
		else if (strcmp(v, "off") == 0)
			c->mode = NB_MODE_OFF;
		else
			bad(&x, "NOBOUNCE_MODE", v, "on, observe or off", "on");
	}
	if ((v = get("NOBOUNCE_MIN_CHUNK", cookie)) != NULL)
		parse_size_var(&x, "NOBOUNCE_MIN_CHUNK", v, MIN_CHUNK_LO, MIN_CHUNK_HI, &c->min_chunk);
	if ((v = get("NOBOUNCE_MIN_CHUNK_FILE", cookie)) != NULL)
		parse_size_var(&x, "NOBOUNCE_MIN_CHUNK_FILE", v, MIN_CHUNK_LO, MIN_CHUNK_HI,
			       &c->min_chunk_file);
	if ((v = get("NOBOUNCE_MIN_CHUNK_STREAM", cookie)) != NULL)
		parse_size_var(&x, "NOBOUNCE_MIN_CHUNK_STREAM", v, MIN_CHUNK_LO, MIN_CHUNK_HI,
			       &c->min_chunk_stream);
	if ((v = get("NOBOUNCE_MIN_CHUNK_PIPE", cookie)) != NULL)
		parse_size_var(&x, "NOBOUNCE_MIN_CHUNK_PIPE", v, MIN_CHUNK_LO, MIN_CHUNK_HI,
			       &c->min_chunk_pipe);
	if ((v = get("NOBOUNCE_ARM_AFTER", cookie)) != NULL)
		parse_uint_var(&x, "NOBOUNCE_ARM_AFTER", v, 1, ARM_AFTER_HI, &c->arm_after);
	if ((v = get("NOBOUNCE_PATHS", cookie)) != NULL)
		parse_paths(&x, v, &c->paths);
	if ((v = get("NOBOUNCE_MAX_PIPES", cookie)) != NULL)
		parse_uint_var(&x, "NOBOUNCE_MAX_PIPES", v, 0, MAX_PIPES_HI, &c->max_pipes);
	if ((v = get("NOBOUNCE_PIPE_SIZE", cookie)) != NULL)
		parse_size_var(&x, "NOBOUNCE_PIPE_SIZE", v, PIPE_SIZE_LO, PIPE_SIZE_HI, &c->pipe_size);
	if ((v = get("NOBOUNCE_SEND_CHUNK", cookie)) != NULL)
	{
		size_t n;
		parse_size_var(&x, "NOBOUNCE_SEND_CHUNK", v, SEND_CHUNK_LO, SEND_CHUNK_HI,
			       &c->send_chunk);
		/* Given, it holds for every socket; refused, it is as unset
		 * (the size then depends on the link, xfer.c). */
		c->send_chunk_set = nb_parse_size(v, &n) == 0 && n >= SEND_CHUNK_LO &&
				    n <= SEND_CHUNK_HI;
	}
	if ((v = get("NOBOUNCE_STATS", cookie)) != NULL)
		parse_stats(&x, "NOBOUNCE_STATS", v, c->stats, sizeof c->stats);
	/* Where the observe report goes: "" or "stderr" = stderr while it is
	 * the one the program started with, else a file (init.c). */
	if ((v = get("NOBOUNCE_REPORT", cookie)) != NULL)
		parse_stats(&x, "NOBOUNCE_REPORT", v, c->report, sizeof c->report);
	if ((v = get("NOBOUNCE_LOG", cookie)) != NULL) {
		static const char *const lv[] = { "off", "error", "warn", "info", "debug" };
		size_t i;
		for (i = 0; i < sizeof lv / sizeof lv[0]; i++)
			if (strcmp(v, lv[i]) == 0)
				break;
		if (i < sizeof lv / sizeof lv[0])
			c->log = (enum nb_loglevel)i;
		else
			bad(&x, "NOBOUNCE_LOG", v, "off, error, warn, info or debug", "warn");
	}
	if ((v = get("NOBOUNCE_LIVE", cookie)) != NULL) {
		if (strcmp(v, "on") == 0 || strcmp(v, "off") == 0)
			c->live = v[1] == 'n';
		else
			bad(&x, "NOBOUNCE_LIVE", v, "on or off", "on");
	}
	if ((v = get("NOBOUNCE_LIVE_DIR", cookie)) != NULL) {
		if (v[0] == '/' && strlen(v) < sizeof c->live_dir - 32)
			strcpy(c->live_dir, v);
		else
			bad(&x, "NOBOUNCE_LIVE_DIR", v, "an absolute directory path",
			    "$XDG_RUNTIME_DIR/nobounce or /tmp/nobounce-UID");
	}
	if ((v = get("NOBOUNCE_EXACT", cookie)) != NULL) {
		if (strcmp(v, "auto") == 0)
			c->exact = NB_EXACT_AUTO;
		else if (strcmp(v, "strict") == 0)
			c->exact = NB_EXACT_STRICT;
		else if (strcmp(v, "off") == 0)
			c->exact = NB_EXACT_OFF;
		else
			bad(&x, "NOBOUNCE_EXACT", v, "auto, strict or off", "auto");
	}
	if ((v = get("NOBOUNCE_LEASE_SIGNAL", cookie)) != NULL) {
		unsigned sig = (unsigned)c->lease_signal;
		parse_uint_var(&x, "NOBOUNCE_LEASE_SIGNAL", v, LEASE_SIGNAL_LO, LEASE_SIGNAL_HI, &sig);
		c->lease_signal = (int)sig;
	}
	if ((v = get("NOBOUNCE_ONLY", cookie)) != NULL)
		parse_names(&x, "NOBOUNCE_ONLY", v, c->only, sizeof c->only, "all programs");
	if ((v = get("NOBOUNCE_SKIP", cookie)) != NULL)
		parse_names(&x, "NOBOUNCE_SKIP", v, c->skip, sizeof c->skip, "none skipped");
	return x.bad;
}

int nb_config_unknown(char *const *envp, nb_complain_fn complain, void *cookie)
{
	int n = 0;
	for (; envp && *envp; envp++) {
		const char *e = *envp;
		if (strncmp(e, "NOBOUNCE_", 9) != 0)
			continue;
		size_t len = strcspn(e, "=");
		bool known = false;
		for (size_t i = 0; i < sizeof known_vars / sizeof known_vars[0]; i++)
			if (strlen(known_vars[i]) == len && strncmp(known_vars[i], e, len) == 0)
				known = true;
		if (known)
			continue;
		char line[256];
		snprintf(line, sizeof line,
			 "nobounce: unknown variable %.*s ignored (see libnobounce(7) for the list)",
			 (int)(len > 64 ? 64 : len), e);
		n++;
		if (complain)
			complain(line, cookie);
	}
	return n;
}

static bool in_list(const char *list, const char *prog)
{
	size_t n = strlen(prog);
	for (const char *s = list; *s;) {
		const char *e = strchr(s, ',');
		size_t len = e ? (size_t)(e - s) : strlen(s);
		if (len == n && memcmp(s, prog, n) == 0)
			return true;
		s += len + (e != NULL);
	}
	return false;
}

bool nb_config_selects(const struct nb_config *c, const char *prog)
{
	if (c->only[0] && !in_list(c->only, prog))
		return false;
	return !in_list(c->skip, prog);
}
