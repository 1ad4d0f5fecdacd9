/*
 * h2ofmt.c - libh2o's HTTP/1 answer heads, formatted without printf (see
 * h2ofmt.h).
 *
 * libh2o 2.2.5 (lib/http1.c, flatten_headers) writes the first lines of
 * every HTTP/1 answer with two sprintf calls:
 *     "HTTP/1.1 %d %s\r\nDate: %s\r\nConnection: %s\r\nContent-Length: %zu\r\n"
 *     (or the same without Content-Length), then "Server: %s\r\n".
 * Debian builds it with _FORTIFY_SOURCE, so both arrive as __sprintf_chk
 * through the dynamic linker, and glibc's printf machinery spends about
 * 2,500 instructions on them: the largest single cost of a keep-alive
 * request in user space (bench/PROFILE.md, issue 21).
 *
 * This file defines __sprintf_chk(); the executable's definition comes
 * first in the dynamic linker's search order, so libh2o's calls (and any
 * other library's) land here.  Those three formats, recognised by their
 * text (compared every time, a strcmp of under 70 bytes), are written out directly with exactly the bytes printf would write
 * (the unit test compares them with vsnprintf's); every other call goes on
 * to the next definition (glibc's, or a sanitizer's in front of it)
 * through dlsym(RTLD_NEXT, "__vsprintf_chk"), as does any call that gives
 * a destination size (libh2o's give none: its buffers are on the heap, the
 * size unknown to the compiler, (size_t)-1).  Nothing here depends on
 * libh2o's internals: a libh2o with other formats is simply not sped up.
 * The version check below is there so that a new libh2o makes someone look
 * again (doc/DESIGN.md, section 2).
 */
#include "worker/h2ofmt.h"

#include <dlfcn.h>
#include <h2o.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#if H2O_LIBRARY_VERSION_MAJOR != 0 || H2O_LIBRARY_VERSION_MINOR != 13 || H2O_LIBRARY_VERSION_PATCH != 5
#error "worker/h2ofmt.c knows the formats of libh2o 0.13.5 (h2o 2.2.5)'s HTTP/1 answer head; check lib/http1.c's flatten_headers before changing versions"
#endif

int __sprintf_chk(char *s, int flag, size_t slen, const char *format, ...);

typedef int (*vsprintf_chk_fn)(char *, int, size_t, const char *, va_list);

static const char *const h2ofmt_formats[H2OFMT_N] = {
    [H2OFMT_HEAD_LENGTH] = "HTTP/1.1 %d %s\r\nDate: %s\r\nConnection: %s\r\nContent-Length: %zu\r\n",
    [H2OFMT_HEAD] = "HTTP/1.1 %d %s\r\nDate: %s\r\nConnection: %s\r\n",
    [H2OFMT_SERVER] = "Server: %s\r\n",
};

static struct {
	vsprintf_chk_fn real;
	uint64_t fast; /* calls answered here */
} h2ofmt;

static char *
h2ofmt_str(char *d, const char *s)
{
	size_t n;

	if (s == NULL)
		s = "(null)"; /* what glibc's printf writes */
	n = strlen(s);
	memcpy(d, s, n);
	return d + n;
}

/* "00".."99": two digits a step, a division by 100 (a multiply) each */
static const char h2ofmt_pairs[201] = "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
                                      "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
                                      "8081828384858687888990919293949596979899";

char *
h2ofmt_uint(char *d, unsigned long long v)
{
	char buf[24], *p = buf + sizeof(buf);
	size_t n;

	if (v < 10) {
		*d = (char)('0' + v);
		return d + 1;
	}
	if (v < 1000) { /* statuses, most lengths of small answers: no loop */
		if (v >= 100) {
			d[0] = (char)('0' + v / 100);
			v %= 100;
			d++;
		}
		memcpy(d, h2ofmt_pairs + 2 * v, 2);
		return d + 2;
	}
	while (v >= 100) {
		p -= 2;
		memcpy(p, h2ofmt_pairs + 2 * (v % 100), 2);
		v /= 100;
	}
	if (v >= 10) {
		p -= 2;
		memcpy(p, h2ofmt_pairs + 2 * v, 2);
	} else {
		*--p = (char)('0' + v);
	}
	n = (size_t)(buf + sizeof(buf) - p);
	memcpy(d, p, n);
	return d + n;
}

static char *
h2ofmt_int(char *d, int v)
{
	if (v < 0) {
		*d++ = '-';
		return h2ofmt_uint(d, (unsigned long long)-(long long)v);
	}
	return h2ofmt_uint(d, (unsigned long long)v);
}

#define H2OFMT_LIT(d, lit) (memcpy((d), (lit), sizeof(lit) - 1), (d) + sizeof(lit) - 1)

int
h2ofmt_which(const char *format)
{
	/* By text, every time: a pointer remembered from one call could be a
	 * buffer holding something else at the next. */
	if (format[0] == 'H') {
		if (strcmp(format, h2ofmt_formats[H2OFMT_HEAD_LENGTH]) == 0)
			return H2OFMT_HEAD_LENGTH;
		if (strcmp(format, h2ofmt_formats[H2OFMT_HEAD]) == 0)
			return H2OFMT_HEAD;
	} else if (format[0] == 'S' && strcmp(format, h2ofmt_formats[H2OFMT_SERVER]) == 0) {
		return H2OFMT_SERVER;
	}
	return -1;
}

int
h2ofmt_format(char *s, int which, va_list ap)
{
	char *d = s;
	int status;
	const char *reason, *date, *connection;

	if (which == H2OFMT_SERVER) {
		d = H2OFMT_LIT(d, "Server: ");
		d = h2ofmt_str(d, va_arg(ap, const char *));
		d = H2OFMT_LIT(d, "\r\n");
	} else {
		status = va_arg(ap, int);
		reason = va_arg(ap, const char *);
		date = va_arg(ap, const char *);
		connection = va_arg(ap, const char *);
		d = H2OFMT_LIT(d, "HTTP/1.1 ");
		d = h2ofmt_int(d, status);
		*d++ = ' ';
		d = h2ofmt_str(d, reason);
		d = H2OFMT_LIT(d, "\r\nDate: ");
		d = h2ofmt_str(d, date);
		d = H2OFMT_LIT(d, "\r\nConnection: ");
		d = h2ofmt_str(d, connection);
		d = H2OFMT_LIT(d, "\r\n");
		if (which == H2OFMT_HEAD_LENGTH) {
			d = H2OFMT_LIT(d, "Content-Length: ");
			d = h2ofmt_uint(d, va_arg(ap, size_t));
			d = H2OFMT_LIT(d, "\r\n");
		}
	}
	*d = '\0';
	return (int)(d - s);
}

int
__sprintf_chk(char *s, int flag, size_t slen, const char *format, ...)
{
	va_list ap;
	int which, ret;

	va_start(ap, format);
	if (slen == (size_t)-1 && (which = h2ofmt_which(format)) >= 0) {
		/* a relaxed load and store, not a locked add (about 20 cycles,
		 * twice an answer): h2ofmt_check() reads the count on the
		 * thread that formats, and a count lost to another thread's
		 * call (none formats answer heads) would only undercount */
		__atomic_store_n(&h2ofmt.fast, __atomic_load_n(&h2ofmt.fast, __ATOMIC_RELAXED) + 1, __ATOMIC_RELAXED);
		ret = h2ofmt_format(s, which, ap);
	} else {
		vsprintf_chk_fn real = __atomic_load_n(&h2ofmt.real, __ATOMIC_RELAXED);
		if (real == NULL) {
			real = (vsprintf_chk_fn)dlsym(RTLD_NEXT, "__vsprintf_chk");
			__atomic_store_n(&h2ofmt.real, real, __ATOMIC_RELAXED);
		}
		ret = real != NULL ? real(s, flag, slen, format, ap) : vsprintf(s, format, ap);
	}
	va_end(ap);
	return ret;
}

uint64_t
h2ofmt_fast_calls(void)
{
	return __atomic_load_n(&h2ofmt.fast, __ATOMIC_RELAXED);
}

int
h2ofmt_check(void)
{
	static const char want[] = "HTTP/1.1 200 OK\r\nDate: d\r\nConnection: c\r\nContent-Length: 5\r\n";
	typedef int (*sprintf_chk_fn)(char *, int, size_t, const char *, ...);
	sprintf_chk_fn found = (sprintf_chk_fn)dlsym(RTLD_DEFAULT, "__sprintf_chk");
	char buf[128];
	uint64_t fast = h2ofmt_fast_calls();

	/* Through the dynamic linker, as libh2o calls it: our definition must be
	 * the one found, the next one must exist, and a head must come out as
	 * printf would write it, from here. */
	if (found != __sprintf_chk || dlsym(RTLD_NEXT, "__vsprintf_chk") == NULL)
		return -1;
	if (found(buf, 1, (size_t)-1, h2ofmt_formats[H2OFMT_HEAD_LENGTH], 200, "OK", "d", "c", (size_t)5) !=
	        (int)sizeof(want) - 1 ||
	    strcmp(buf, want) != 0 || h2ofmt_fast_calls() != fast + 1)
		return -1;
	return 0;
}
