/*
 * fuzz_query.c - libFuzzer target for route_query (lib/route.c): the input
 * is a request's query string, checked against the allow-list q, size,
 * from.  Beyond memory errors, it aborts when route.h's promises break:
 * the result is its return value long, NUL-terminated and canonically
 * encoded; a refused name is printable ASCII.
 */
#include "lib/route.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *fuzz_query_allow[] = {"q", "size", "from"};

static int
fuzz_query_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F');
}

/* A-Za-z0-9 - . _ ~, %XX with upper-case hex, and the separators & =. */
static int
fuzz_query_canonical(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
		    c == '.' || c == '_' || c == '~' || c == '&' || c == '=')
			continue;
		if (c != '%' || i + 2 >= len || !fuzz_query_hex(s[i + 1]) || !fuzz_query_hex(s[i + 2]))
			return 0;
		i += 2;
	}
	return 1;
}

static void
fuzz_query_run(const char *q, size_t len, size_t outlen, size_t badlen)
{
	/* Exactly sized heap buffers, so ASan sees one byte too far. */
	char *out = malloc(outlen ? outlen : 1);
	char *bad = badlen ? malloc(badlen) : NULL;
	ssize_t rc;

	if (out == NULL || (badlen && bad == NULL))
		abort();
	rc = route_query(q, len, fuzz_query_allow, 3, out, outlen, bad, badlen);
	if (rc >= 0) {
		if ((size_t)rc >= outlen || strlen(out) != (size_t)rc || !fuzz_query_canonical(out, (size_t)rc))
			abort();
	} else if (bad != NULL) {
		size_t n = strnlen(bad, badlen);
		if (n >= badlen)
			abort(); /* not NUL-terminated */
		for (size_t i = 0; i < n; i++)
			if (bad[i] < 0x20 || bad[i] > 0x7e)
				abort();
	}
	free(out);
	free(bad);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *q = (const char *)data;

	/* Room for everything (each byte at most %XX), then tight buffers. */
	fuzz_query_run(q, size, 3 * size + 1, 64);
	fuzz_query_run(q, size, size / 2 + 1, 4);
	fuzz_query_run(q, size, 1, 1);
	fuzz_query_run(q, size, 0, 0);
	return 0;
}
