/*
 * fuzz_metrics_label.c - libFuzzer target for the label escaping in
 * metrics_render (lib/metrics.c): the input (up to a NUL) is a route
 * name, and the first half of it also a node name.  The rendered text is
 * read back with the text format's own rules; a raw newline inside a
 * label value, a bad escape or an unterminated value aborts.
 */
#include "lib/metrics.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Checks one sample line's labels, from just after '{'; returns the
 * position after the closing '}'.  Aborts on anything malformed. */
static const char *
fuzz_metrics_labels(const char *p, const char *end)
{
	for (;;) {
		if (p < end && *p == '}')
			return p + 1;
		while (p < end && ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_'))
			p++;
		if (end - p < 2 || p[0] != '=' || p[1] != '"')
			abort();
		for (p += 2; p < end && *p != '"'; p++) {
			if (*p == '\n')
				abort(); /* a raw newline inside a label value */
			if (*p == '\\') {
				if (++p >= end || (*p != '\\' && *p != '"' && *p != 'n'))
					abort();
			}
		}
		if (p >= end)
			abort(); /* unterminated */
		p++;
		if (p < end && *p == ',')
			p++;
	}
}

static void
fuzz_metrics_check(const char *buf, size_t len)
{
	const char *p = buf, *end = buf + len;

	if (strlen(buf) != len || (len > 0 && buf[len - 1] != '\n'))
		abort();
	while (p < end) {
		const char *eol;

		if (*p != '#') {
			while (p < end && *p != '{' && *p != ' ' && *p != '\n')
				p++;
			if (p < end && *p == '{')
				p = fuzz_metrics_labels(p + 1, end);
			if (p >= end || *p != ' ')
				abort(); /* "name{...} value" */
		}
		if ((eol = memchr(p, '\n', (size_t)(end - p))) == NULL)
			abort();
		p = eol + 1;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct metrics *m = metrics_create(1);
	char *name = malloc(size + 1), *node;
	char *out;
	size_t len = 0;
	int r, n;

	if (m == NULL || name == NULL)
		abort();
	memcpy(name, data, size);
	name[size] = '\0';
	if ((node = strndup(name, size / 2)) == NULL)
		abort();
	r = metrics_route(m, name);
	if (r < 0 || metrics_route(m, name) != r)
		abort(); /* found again, not added twice */
	metrics_request(metrics_shard_claim(m, 0), r, 200, 1000);
	n = metrics_node(m, node);
	metrics_upstream(&m->shards[0], n, 1, 1000);
	metrics_node_state(m, n, 1);
	if ((out = metrics_render(m, &len)) == NULL)
		abort();
	fuzz_metrics_check(out, len);
	free(out);
	free(node);
	free(name);
	metrics_destroy(m);
	return 0;
}
