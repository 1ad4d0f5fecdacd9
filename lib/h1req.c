/*
 * h1req.c - the plain form of an HTTP/1 request head, read 16 bytes a step
 * (see h1req.h): the bytes a method, a target and a header value may hold
 * are checked with SSE2 (the x86-64 baseline; elsewhere a byte at a time),
 * header names' letters, digits and dashes too, any other token character
 * against the token table a byte at a time.
 * Anything outside the plain form answers 0, never an error: the caller's
 * full parser has the last word on it.
 */
#include "lib/h1req.h"

#include <string.h>

#include "lib/httptok.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define H1REQ_METHOD_MAX 32

/* The first byte from P on (before END) outside LO..0x7e; END if none.
 * LO is 0x20 (a value) or 0x21 (a target).  32 bytes a step while they
 * last (a bearer token is 170 or more), then 16, then one. */
static inline __attribute__((always_inline)) const char *
h1req_span(const char *p, const char *end, unsigned lo)
{
#if defined(__SSE2__)
	/* b - LO + 0x80, as a signed byte, is below 0x7f - LO - 0x80 exactly
	 * when b is in LO..0x7e */
	const __m128i bias = _mm_set1_epi8((char)(0x80 - lo));
	const __m128i lim = _mm_set1_epi8((char)(int)(0x7f - lo - 0x80));
	size_t left = (size_t)(end - p);
	unsigned in;

	for (; left >= 32; left -= 32, p += 32) {
		__m128i a = _mm_loadu_si128((const __m128i *)(const void *)p);
		__m128i b = _mm_loadu_si128((const __m128i *)(const void *)(p + 16));

		a = _mm_cmplt_epi8(_mm_add_epi8(a, bias), lim);
		b = _mm_cmplt_epi8(_mm_add_epi8(b, bias), lim);
		if (_mm_movemask_epi8(_mm_and_si128(a, b)) != 0xffff) {
			in = (unsigned)_mm_movemask_epi8(a) | (unsigned)_mm_movemask_epi8(b) << 16;
			return p + __builtin_ctz(~in);
		}
	}
	if (left >= 16) {
		in = (unsigned)_mm_movemask_epi8(
		    _mm_cmplt_epi8(_mm_add_epi8(_mm_loadu_si128((const __m128i *)(const void *)p), bias), lim));
		if (in != 0xffff)
			return p + __builtin_ctz(~in);
		p += 16;
	}
#endif
	while (p < end && (unsigned)(unsigned char)*p - lo < 0x7f - lo)
		p++;
	return p;
}

/* The first byte from P on (before END) that is not a letter, a digit or
 * '-' (what most header names are made of), 16 bytes a step while 16
 * are left; from there the caller goes on a byte at a time. */
static inline __attribute__((always_inline)) const char *
h1req_name_span(const char *p, const char *end)
{
#if defined(__SSE2__)
	for (; end - p >= 16; p += 16) {
		__m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
		/* letters: b | 0x20 in 'a'..'z'; digits: b in '0'..'9' (as in h1req_span) */
		__m128i alpha = _mm_cmplt_epi8(_mm_add_epi8(_mm_or_si128(v, _mm_set1_epi8(0x20)), _mm_set1_epi8(0x80 - 'a')),
		                               _mm_set1_epi8(26 - 0x80));
		__m128i digit = _mm_cmplt_epi8(_mm_add_epi8(v, _mm_set1_epi8(0x80 - '0')), _mm_set1_epi8(10 - 0x80));
		__m128i dash = _mm_cmpeq_epi8(v, _mm_set1_epi8('-'));
		unsigned in = (unsigned)_mm_movemask_epi8(_mm_or_si128(_mm_or_si128(alpha, digit), dash));

		if (in != 0xffff)
			return p + __builtin_ctz(~in);
	}
#else
	(void)end;
#endif
	return p;
}

size_t
h1req_parse_plain(const char *buf, size_t len, struct h1req_line *line, struct h1req_header *headers,
                  size_t max, size_t *nheaders)
{
	const char *p = buf, *end = buf + len, *s;
	size_t n = 0;

	/* METHOD SP TARGET SP "HTTP/1." DIGIT CRLF */
	while (p < end && (unsigned)(unsigned char)*p - 'A' < 26)
		p++;
	if (p == buf || p - buf > H1REQ_METHOD_MAX || p == end || *p != ' ')
		return 0;
	line->method = buf;
	line->method_len = (size_t)(p - buf);
	s = ++p;
	p = h1req_span(p, end, 0x21);
	if (p == s || end - p < 11 || memcmp(p, " HTTP/1.", 8) != 0 || (unsigned)(unsigned char)p[8] - '0' > 9 ||
	    p[9] != '\r' || p[10] != '\n')
		return 0;
	line->path = s;
	line->path_len = (size_t)(p - s);
	line->minor_version = p[8] - '0';
	p += 11;

	/* NAME ":" *(SP / HTAB) VALUE CRLF, up to the empty line */
	for (;;) {
		if (p == end)
			return 0;
		if (*p == '\r') {
			if (end - p < 2 || p[1] != '\n')
				return 0;
			*nheaders = n;
			return (size_t)(p + 2 - buf);
		}
		if (n == max)
			return 0;
		s = p;
		p = h1req_name_span(p, end);
		while (p < end && httptok_tchar[(unsigned char)*p])
			p++;
		if (p == s || p == end || *p != ':')
			return 0;
		headers[n].name = s;
		headers[n].name_len = (size_t)(p - s);
		p++;
		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		s = p;
		p = h1req_span(p, end, 0x20);
		if (p == s || p[-1] == ' ' || end - p < 2 || p[0] != '\r' || p[1] != '\n')
			return 0;
		headers[n].value = s;
		headers[n].value_len = (size_t)(p - s);
		n++;
		p += 2;
	}
}
