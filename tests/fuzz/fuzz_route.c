/*
 * fuzz_route.c - libFuzzer target for lib/route.c, the code that reads
 * request paths and query strings.  The first input byte picks what the
 * rest is fed to:
 *
 *   0  a request path: route_match against each public template; on a
 *      match, route_build of the upstream path, which must match the
 *      upstream template again with the same values (a round trip), and
 *      route_build into a buffer of every size up to the full one; and a
 *      route set of all the templates (public and upstream) must give as
 *      candidates exactly those route_match does not call NOMATCH
 *   1  route_decode, into a big and a tight buffer
 *   2  route_index_valid (both modes) and route_index_allowed
 *   3  route_query with a fixed allow-list and a tight output buffer
 *   4  route_compile of the input as a template, then route_match of the
 *      input against it
 *
 * Every buffer handed to lib/route.c is heap-allocated to its exact size,
 * so ASan sees a read or write one byte past it.
 */
#include "lib/route.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Public template, and the upstream template its values are built into. */
static const char *const fuzz_route_src[][2] = {
    {"/search/{index}", "/{index}/_search"},
    {"/doc/{index}/{id}", "/{index}/_doc/{id}"},
    {"/{index}/_doc/{id}", "/{index}/_doc/{id}"},
    {"/{id}", "/x/_doc/{id}"},
    {"/", "/"},
};
#define FUZZ_ROUTE_N (sizeof(fuzz_route_src) / sizeof(fuzz_route_src[0]))

static struct route_template *fuzz_route_pub[FUZZ_ROUTE_N], *fuzz_route_up[FUZZ_ROUTE_N];
static struct route_set *fuzz_route_set; /* pub[i] is id 2i, up[i] id 2i + 1 */
static char *fuzz_route_allow[] = {"q", "size", "from", "a b"};
static char *fuzz_route_indices[] = {"books", "logs-*", ".ds-*", "*"};

static struct route_template *
fuzz_route_compile(const char *s)
{
	char err[128];
	struct route_template *t = route_compile(s, err, sizeof(err));

	if (t == NULL)
		abort();
	return t;
}

static void
fuzz_route_init(void)
{
	if (fuzz_route_pub[0] != NULL)
		return;
	for (size_t i = 0; i < FUZZ_ROUTE_N; i++) {
		fuzz_route_pub[i] = fuzz_route_compile(fuzz_route_src[i][0]);
		fuzz_route_up[i] = fuzz_route_compile(fuzz_route_src[i][1]);
	}
	if ((fuzz_route_set = route_set_new()) == NULL)
		abort();
	for (size_t i = 0; i < FUZZ_ROUTE_N; i++)
		if (route_set_add(fuzz_route_set, fuzz_route_pub[i], 2 * i) != 0 ||
		    route_set_add(fuzz_route_set, fuzz_route_up[i], 2 * i + 1) != 0)
			abort();
}

static char *
fuzz_route_dup(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	if (s == NULL)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

static void
fuzz_route_vars_eq(const struct route_vars *a, const struct route_vars *b, unsigned set)
{
	if ((set & ROUTE_VAR_INDEX) && (a->index_len != b->index_len || memcmp(a->index, b->index, a->index_len) != 0))
		abort();
	if ((set & ROUTE_VAR_ID) && (a->id_len != b->id_len || memcmp(a->id, b->id, a->id_len) != 0))
		abort();
}

/* The route set's candidates for PATH are the templates that do not say NOMATCH. */
static void
fuzz_route_set_check(const char *path, size_t len)
{
	size_t ids[2 * FUZZ_ROUTE_N], n, k = 0;

	if (route_path_has_dot_segment(path, len))
		return;
	n = route_set_candidates(fuzz_route_set, path, len, ids, 2 * FUZZ_ROUTE_N);
	if (n > 2 * FUZZ_ROUTE_N)
		abort();
	for (size_t id = 0; id < 2 * FUZZ_ROUTE_N; id++) {
		const struct route_template *t = id % 2 ? fuzz_route_up[id / 2] : fuzz_route_pub[id / 2];
		if (route_match(t, path, len, NULL, NULL) == ROUTE_NOMATCH)
			continue;
		if (k >= n || ids[k] != id)
			abort();
		k++;
	}
	if (k != n)
		abort();
}

static void
fuzz_route_path(const char *path, size_t len)
{
	fuzz_route_set_check(path, len);
	for (size_t i = 0; i < FUZZ_ROUTE_N; i++) {
		struct route_vars v, v2;
		const char *reason = "unset";
		enum route_result r = route_match(fuzz_route_pub[i], path, len, &v, &reason);
		char *out;
		ssize_t n;

		if ((r == ROUTE_BAD) != (reason != NULL))
			abort(); /* a reason exactly on ROUTE_BAD */
		if (r != ROUTE_MATCH)
			continue;
		if ((v.set & route_template_vars(fuzz_route_pub[i])) != route_template_vars(fuzz_route_pub[i]))
			abort();
		if ((v.set & ROUTE_VAR_INDEX) &&
		    (v.index_len == 0 || v.index_len > ROUTE_INDEX_MAX || v.index[v.index_len] != '\0' ||
		     !route_index_valid(v.index, v.index_len, 0)))
			abort();
		if ((v.set & ROUTE_VAR_ID) && (v.id_len == 0 || v.id_len > ROUTE_ID_MAX || v.id[v.id_len] != '\0'))
			abort();

		size_t full = 2 * ROUTE_TEMPLATE_MAX + 3 * (ROUTE_INDEX_MAX + ROUTE_ID_MAX) + 1;
		if ((out = malloc(full)) == NULL)
			abort();
		n = route_build(fuzz_route_up[i], &v, out, full);
		if (n < 0 || (size_t)n >= full || strlen(out) != (size_t)n)
			abort();
		/* The upstream path, read back as a path, gives the same values. */
		reason = NULL;
		if (route_match(fuzz_route_up[i], out, (size_t)n, &v2, &reason) != ROUTE_MATCH)
			abort();
		fuzz_route_vars_eq(&v, &v2, route_template_vars(fuzz_route_up[i]));
		free(out);

		/* Every buffer too small fails cleanly; the exact size works. */
		for (size_t outlen = 0; outlen <= (size_t)n + 1; outlen++) {
			char *o = malloc(outlen ? outlen : 1);
			ssize_t m;

			if (o == NULL)
				abort();
			m = route_build(fuzz_route_up[i], &v, o, outlen);
			if (outlen <= (size_t)n ? m != -1 : m != n)
				abort();
			free(o);
		}
	}
}

static void
fuzz_route_decode(const char *in, size_t len)
{
	size_t lens[] = {len + 1, len / 3 + 1, 1};

	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		char *out = malloc(lens[i]);
		ssize_t n;

		if (out == NULL)
			abort();
		n = route_decode(in, len, out, lens[i]);
		if (n >= 0 && ((size_t)n >= lens[i] || (size_t)n > len || strlen(out) != (size_t)n))
			abort();
		free(out);
	}
}

static void
fuzz_route_index(const char *s, size_t len)
{
	int valid = route_index_valid(s, len, 0);

	(void)route_index_valid(s, len, 1);
	(void)route_index_allowed(s, len, fuzz_route_indices, sizeof(fuzz_route_indices) / sizeof(char *));
	if (valid && (len == 0 || len > ROUTE_INDEX_MAX || memchr(s, '\0', len) != NULL))
		abort();
}

static void
fuzz_route_query(const char *q, size_t len)
{
	size_t outlen = len / 2 + 1, badlen = 8;
	char *out = malloc(outlen), *bad = malloc(badlen);
	ssize_t n;

	if (out == NULL || bad == NULL)
		abort();
	n = route_query(q, len, fuzz_route_allow, 4, out, outlen, bad, badlen);
	if (n >= 0 ? (size_t)n >= outlen || strlen(out) != (size_t)n : strnlen(bad, badlen) >= badlen)
		abort();
	free(out);
	free(bad);
}

static void
fuzz_route_template(const uint8_t *data, size_t size)
{
	char *s = fuzz_route_dup(data, size);
	char err[64];
	struct route_template *t = route_compile(s, err, sizeof(err));

	if (t != NULL) {
		struct route_vars v;

		if (strcmp(route_template_source(t), s) != 0 || !route_template_same(t, t))
			abort();
		(void)route_match(t, s, size, &v, NULL);
		route_template_free(t);
	} else if (strnlen(err, sizeof(err)) >= sizeof(err)) {
		abort();
	}
	free(s);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s;

	if (size == 0)
		return 0;
	fuzz_route_init();
	s = (const char *)data + 1;
	size--;
	switch (data[0] % 5) {
	case 0: fuzz_route_path(s, size); break;
	case 1: fuzz_route_decode(s, size); break;
	case 2: fuzz_route_index(s, size); break;
	case 3: fuzz_route_query(s, size); break;
	default: fuzz_route_template(data + 1, size); break;
	}
	return 0;
}
