/*
 * fmt.c - the library's own printf, safe in a signal handler.
 *
 * Owns: formatting text into a caller's buffer for the reports and log
 * lines. The final report is written from the termination-signal handler
 * and from _exit (termsig.c), where a signal may have landed while the
 * program held a stdio or malloc lock: glibc's snprintf is not on the
 * async-signal-safe list (signal-safety(7)) and may allocate (wide
 * widths, positional arguments). This one touches nothing but its
 * arguments and the buffer.
 * Must not: allocate, lock, read the locale or call any libc function.
 *
 * Supported: flags '-', '0', '#'; a width and a precision (digits or '*');
 * length modifiers hh, h, l, ll, z, j, t; conversions d i u x X o c s p %.
 * Anything else is copied as it stands. The result is always NUL-
 * terminated (when cap > 0); the return value is the length it would
 * have had, as snprintf's.
 */
#include "internal.h"

struct out {
	char *buf;
	size_t cap, len;
};

static void put(struct out *o, char c)
{
	if (o->len + 1 < o->cap)
		o->buf[o->len] = c;
	o->len++;
}

static void pad(struct out *o, char c, long n)
{
	while (n-- > 0)
		put(o, c);
}

size_t nb_vfmt(char *buf, size_t cap, const char *f, va_list ap)
{
	struct out o = { buf, cap, 0 };
	for (; *f; f++) {
		if (*f != '%') {
			put(&o, *f);
			continue;
		}
		const char *start = f++;
		bool left = false, zero = false, alt = false;
		for (;; f++) {
			if (*f == '-')
				left = true;
			else if (*f == '0')
				zero = true;
			else if (*f == '#')
				alt = true;
			else if (*f != ' ' && *f != '+')
				break;
		}
		long width = 0, prec = -1;
		if (*f == '*') {
			width = va_arg(ap, int);
			f++;
		} else {
			while (*f >= '0' && *f <= '9')
				width = width * 10 + (*f++ - '0');
		}
		if (*f == '.') {
			f++;
			prec = 0;
			if (*f == '*') {
				prec = va_arg(ap, int);
				f++;
			} else {
				while (*f >= '0' && *f <= '9')
					prec = prec * 10 + (*f++ - '0');
			}
		}
		int lng = 0; /* 0 int, 1 long, 2 long long / size_t / intmax */
		while (*f == 'h' || *f == 'l' || *f == 'z' || *f == 'j' || *f == 't') {
			if (*f == 'l')
				lng++;
			else if (*f != 'h')
				lng = 2;
			f++;
		}
		char tmp[32];
		const char *s = tmp;
		size_t n = 0;
		const char *prefix = "";
		switch (*f) {
		case 'd':
		case 'i': {
			long long v = lng == 0 ? va_arg(ap, int) : lng == 1 ? va_arg(ap, long)
									: va_arg(ap, long long);
			unsigned long long u = v < 0 ? 0ull - (unsigned long long)v
						     : (unsigned long long)v;
			char *e = tmp + sizeof tmp;
			do
				*--e = (char)('0' + u % 10);
			while ((u /= 10) != 0);
			if (v < 0)
				*--e = '-';
			s = e;
			n = (size_t)(tmp + sizeof tmp - e);
			break;
		}
		case 'u':
		case 'x':
		case 'X':
		case 'o':
		case 'p': {
			unsigned long long u;
			if (*f == 'p')
				u = (unsigned long long)(uintptr_t)va_arg(ap, void *);
			else
				u = lng == 0 ? va_arg(ap, unsigned)
				    : lng == 1 ? va_arg(ap, unsigned long)
					       : va_arg(ap, unsigned long long);
			unsigned base = *f == 'u' ? 10 : *f == 'o' ? 8 : 16;
			const char *dig = *f == 'X' ? "0123456789ABCDEF" : "0123456789abcdef";
			if ((alt && base == 16 && u != 0) || *f == 'p')
				prefix = *f == 'X' ? "0X" : "0x";
			char *e = tmp + sizeof tmp;
			do
				*--e = dig[u % base];
			while ((u /= base) != 0);
			s = e;
			n = (size_t)(tmp + sizeof tmp - e);
			break;
		}
		case 'c':
			tmp[0] = (char)va_arg(ap, int);
			n = 1;
			break;
		case 's':
			s = va_arg(ap, const char *);
			if (s == NULL)
				s = "(null)";
			while (s[n] && (prec < 0 || n < (size_t)prec))
				n++;
			zero = false;
			break;
		case '%':
			put(&o, '%');
			continue;
		default: /* not understood: copied as it stands */
			for (; start <= f && *start; start++)
				put(&o, *start);
			if (*f == '\0')
				f--;
			continue;
		}
		size_t pl = 0;
		while (prefix[pl])
			pl++;
		long fill = width - (long)(n + pl);
		if (!left && !zero)
			pad(&o, ' ', fill);
		for (size_t i = 0; i < pl; i++)
			put(&o, prefix[i]);
		if (!left && zero)
			pad(&o, '0', fill);
		for (size_t i = 0; i < n; i++)
			put(&o, s[i]);
		if (left)
			pad(&o, ' ', fill);
	}
	if (cap > 0)
		buf[o.len < cap ? o.len : cap - 1] = '\0';
	return o.len;
}

size_t nb_fmt(char *buf, size_t cap, const char *f, ...)
{
	va_list ap;
	va_start(ap, f);
	size_t n = nb_vfmt(buf, cap, f, ap);
	va_end(ap);
	return n;
}
