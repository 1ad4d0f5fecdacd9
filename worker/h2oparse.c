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

#include "lib/h1req.h"

#if H2O_LIBRARY_VERSION_MAJOR != 0 || H2O_LIBRARY_VERSION_MINOR != 13 || H2O_LIBRARY_VERSION_PATCH != 5
#error "worker/h2oparse.c knows libh2o 0.13.5 (h2o 2.2.5)'s picohttpparser; compare with the new one before changing versions"
#endif

_Static_assert(sizeof(struct phr_header) == sizeof(struct h1req_header), "struct phr_header");

static struct {
	h2oparse_fn real;
	uint64_t fast; /* heads answered here */
} h2oparse;

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
phr_parse_request(const char *buf, size_t len, const char **method, size_t *method_len, const char **path,
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
