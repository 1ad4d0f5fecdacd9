/*
 * h2oparse.c - libh2o's HTTP/1 request heads: the plain ones read by
 * lib/h1req.c, 16 bytes a step, everything else by libh2o's own parser.
 *
 * libh2o 2.2.5 (lib/http1.c, handle_incoming_request) reads each request
 * head with picohttpparser's phr_parse_request(), which it exports and
 * calls through the dynamic linker (its PLT), as worker/h2ofmt.c's
 * __sprintf_chk is.  Debian builds it for the x86-64 baseline, without
 * the SSE4.2 path, so every byte of a header value costs about 6
 * instructions: an Authorization header's 170-byte bearer token more than
 * 1,000 a request (bench/PROFILE.md, issue 16).
 *
 * This file defines phr_parse_request(); the executable's definition comes
 * first in the search order, so libh2o's calls land here.  A head of the
 * plain form (lib/h1req.h: one space between the request line's parts, a
 * CRLF after every line, token names, printable ASCII values) is answered
 * from h1req_parse_plain(), with exactly what picohttpparser answers for
 * it (tests/unit/test_h1req.c and tests/fuzz/fuzz_h1req.c compare the two
 * on every input they make); every other call, including every incomplete
 * or malformed head, goes on to libh2o's own definition found with
 * dlsym(RTLD_NEXT), so what is refused, and how, does not change.
 *
 * One rule is added on top (h2oparse_parse answers as picohttpparser
 * does; phr_parse_request applies it): RFC 9112 3.2's Host, which libh2o
 * does not check (it keeps the last Host and drops the others).  A head
 * with more than one Host, a Host value that is not a host[:port], or an
 * HTTP/1.1 head with none, is refused (-1) as a malformed head is: libh2o
 * answers 400 and closes.  That answer is libh2o's static text/plain
 * "Bad Request"; h2oparse_bad_request() gives worker/tlswrite.c's
 * h2o_socket_write (esgate's, before libh2o's) esgate's JSON error to
 * write instead, with the reason when it was the Host rule.
 *
 * LAST_LEN (the buffer's length when the head was last found incomplete)
 * makes picohttpparser first look for the head's end from LAST_LEN - 3 on
 * (its slowloris check); on a plain head that search ends at the head's
 * end when LAST_LEN is at most the head's length, so a longer LAST_LEN
 * goes to libh2o's parser too.
 */
#include "worker/h2oparse.h"

#include <dlfcn.h>
#include <h2o.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "lib/h1req.h"

#if H2O_LIBRARY_VERSION_MAJOR != 0 || H2O_LIBRARY_VERSION_MINOR != 13 || H2O_LIBRARY_VERSION_PATCH != 5
#error "worker/h2oparse.c knows libh2o 0.13.5 (h2o 2.2.5)'s picohttpparser; compare with the new one before changing versions"
#endif

_Static_assert(sizeof(struct phr_header) == sizeof(struct h1req_header), "struct phr_header");

static struct {
	h2oparse_fn real;
	uint64_t fast;       /* heads answered here */
	size_t refused;      /* why the last head was refused: an index in h2oparse_reasons (0: malformed) */
	h2oparse_refused_cb on_refused; /* h2oparse_on_refused's */
	void *on_refused_arg;
} h2oparse;

/* The reasons of esgate's 400 to a refused head: libh2o's parser's, then the Host rule's. */
static const char *const h2oparse_reasons[] = {"malformed request head", "more than one Host header",
                                               "no Host header (HTTP/1.1)", "invalid Host header"};
#define H2OPARSE_REASONS (sizeof(h2oparse_reasons) / sizeof(h2oparse_reasons[0]))

/* RFC 3986's host and port characters (reg-name: unreserved, pct-encoded,
 * sub-delims; IP literals' brackets and colons; the port's colon). */
static const uint8_t h2oparse_hostchar[256] = {
    ['-'] = 1, ['.'] = 1, ['_'] = 1, ['~'] = 1, ['!'] = 1, ['$'] = 1, ['&'] = 1, ['\''] = 1,
    ['('] = 1, [')'] = 1, ['*'] = 1, ['+'] = 1, [','] = 1, [';'] = 1, ['='] = 1, ['%'] = 1,
    [':'] = 1, ['['] = 1, [']'] = 1,
    ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1, ['8'] = 1, ['9'] = 1,
    ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1, ['i'] = 1,
    ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1,
    ['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1,
    ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1, ['H'] = 1, ['I'] = 1,
    ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1, ['Q'] = 1, ['R'] = 1,
    ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1, ['Y'] = 1, ['Z'] = 1,
};

/* The Host rule for a parsed head: 0 if it keeps it, else its reason's index in h2oparse_reasons. */
static size_t
h2oparse_host_rule(const struct phr_header *h, size_t n, int minor_version)
{
	const struct phr_header *host = NULL;

	for (size_t i = 0; i < n; i++) {
		uint32_t w;

		if (h[i].name_len != 4)
			continue; /* (a folded line's name is NULL, its length 0) */
		memcpy(&w, h[i].name, 4); /* "host" in any case: token letters, 0x20 lower-cases them */
		if ((w | 0x20202020u) != ((uint32_t)'h' | (uint32_t)'o' << 8 | (uint32_t)'s' << 16 | (uint32_t)'t' << 24))
			continue;
		if (host != NULL)
			return 1;
		host = &h[i];
	}
	if (host == NULL)
		return minor_version >= 1 ? 2 : 0;
	for (size_t j = 0; j < host->value_len; j++)
		if (!h2oparse_hostchar[(unsigned char)host->value[j]])
			return 3;
	return 0;
}

const char *
h2oparse_host_refusal(const struct phr_header *h, size_t n, int minor_version)
{
	size_t k = h2oparse_host_rule(h, n, minor_version);

	return k != 0 ? h2oparse_reasons[k] : NULL;
}

h2oparse_fn
h2oparse_real(void)
{
	h2oparse_fn real = __atomic_load_n(&h2oparse.real, __ATOMIC_RELAXED);

	if (real == NULL) {
		real = (h2oparse_fn)dlsym(RTLD_NEXT, "phr_parse_request");
		__atomic_store_n(&h2oparse.real, real, __ATOMIC_RELAXED);
	}
	return real;
}

int
h2oparse_parse(const char *buf, size_t len, const char **method, size_t *method_len, const char **path,
               size_t *path_len, int *minor_version, struct phr_header *headers, size_t *num_headers,
               size_t last_len)
{
	struct h1req_line l;
	size_t n, used = h1req_parse_plain(buf, len, &l, (struct h1req_header *)(void *)headers, *num_headers, &n);
	h2oparse_fn real;

	if (used > 0 && used <= INT_MAX && last_len <= used) {
		*method = l.method;
		*method_len = l.method_len;
		*path = l.path;
		*path_len = l.path_len;
		*minor_version = l.minor_version;
		*num_headers = n;
		/* a relaxed load and store, not a locked add (about 20 cycles
		 * a head): only the worker's thread parses heads, and
		 * h2oparse_check() reads the count on that thread */
		__atomic_store_n(&h2oparse.fast, __atomic_load_n(&h2oparse.fast, __ATOMIC_RELAXED) + 1, __ATOMIC_RELAXED);
		return (int)used;
	}
	if ((real = h2oparse_real()) == NULL)
		return -1; /* no parser to ask: refused (h2oparse_check() fails at start-up first) */
	return real(buf, len, method, method_len, path, path_len, minor_version, headers, num_headers, last_len);
}

int
phr_parse_request(const char *buf, size_t len, const char **method, size_t *method_len, const char **path,
                  size_t *path_len, int *minor_version, struct phr_header *headers, size_t *num_headers,
                  size_t last_len)
{
	int ret = h2oparse_parse(buf, len, method, method_len, path, path_len, minor_version, headers, num_headers,
	                         last_len);

	h2oparse.refused = 0;
	if (ret > 0 && (h2oparse.refused = h2oparse_host_rule(headers, *num_headers, *minor_version)) != 0)
		return -1;
	return ret;
}

/* libh2o 2.2.5's answer to a head it cannot parse (lib/http1.c,
 * send_bad_request), written with one h2o_socket_write of this buffer. */
static const char h2oparse_h2o_400[] = "HTTP/1.1 400 Bad Request\r\n"
                                       "Content-Type: text/plain; charset=utf-8\r\n"
                                       "Connection: close\r\n"
                                       "Content-Length: 11\r\n"
                                       "\r\n"
                                       "Bad Request";

const h2o_iovec_t *
h2oparse_bad_request(const h2o_iovec_t *buf)
{
	static char text[H2OPARSE_REASONS][256];
	static h2o_iovec_t answers[H2OPARSE_REASONS];
	size_t k = h2oparse.refused;

	if (buf->len != sizeof(h2oparse_h2o_400) - 1 || memcmp(buf->base, h2oparse_h2o_400, buf->len) != 0)
		return NULL;
	h2oparse.refused = 0;
	if (answers[k].base == NULL) {
		char body[128];
		int blen = snprintf(body, sizeof(body), "{\"error\":{\"type\":\"invalid_request\",\"reason\":\"%s\"},\"status\":400}",
		                    h2oparse_reasons[k]);
		int n = snprintf(text[k], sizeof(text[k]),
		                 "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nConnection: close\r\n"
		                 "Content-Length: %d\r\nServer: esgate\r\n\r\n%s",
		                 blen, body);
		answers[k] = h2o_iovec_init(text[k], (size_t)n);
	}
	return &answers[k];
}

void
h2oparse_on_refused(h2oparse_refused_cb cb, void *arg)
{
	h2oparse.on_refused = cb;
	h2oparse.on_refused_arg = arg;
}

void
h2oparse_refused(h2o_socket_t *sock, size_t bytes)
{
	struct sockaddr_storage peer;
	socklen_t len;

	if (h2oparse.on_refused != NULL) {
		len = h2o_socket_getpeername(sock, (struct sockaddr *)&peer);
		h2oparse.on_refused(h2oparse.on_refused_arg, (struct sockaddr *)&peer, len, 400, bytes);
	}
}

uint64_t
h2oparse_fast_calls(void)
{
	return __atomic_load_n(&h2oparse.fast, __ATOMIC_RELAXED);
}

int
h2oparse_check(void)
{
	static const char req[] = "GET /x HTTP/1.1\r\nHost: a\r\n\r\n";
	h2oparse_fn found = (h2oparse_fn)dlsym(RTLD_DEFAULT, "phr_parse_request");
	struct phr_header h[4];
	size_t nh = 4, mlen, plen;
	const char *m, *p;
	int minor;
	uint64_t fast = h2oparse_fast_calls();

	if (found != phr_parse_request || h2oparse_real() == NULL || h2oparse_real() == found)
		return -1;
	if (found(req, sizeof(req) - 1, &m, &mlen, &p, &plen, &minor, h, &nh, 0) != (int)sizeof(req) - 1 || nh != 1 ||
	    h2oparse_fast_calls() != fast + 1)
		return -1;
	return 0;
}
