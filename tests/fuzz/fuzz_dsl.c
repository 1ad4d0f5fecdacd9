/*
 * fuzz_dsl.c - libFuzzer target for the search firewall (lib/dsl.c): the
 * input is a request body; its first byte picks _search, _msearch or
 * _count.  Beyond memory errors, it aborts when the firewall would forward
 * a document that holds a key it must always refuse: whatever the input,
 * what goes upstream is checked JSON with no script, template, pit or
 * cross-index lookup in it.
 */
#include "lib/dsl.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Keys refused wherever they stand (a field may be called "pit", but no
 * field is called "script_score": Elasticsearch reads these as scripts). */
static const char *const fuzz_dsl_forbidden[] = {"script",	 "script_fields",    "script_score",
						 "scripted_metric", "runtime_mappings", "indexed_shape"};
/* Keys refused at the top of a search body. */
static const char *const fuzz_dsl_forbidden_top[] = {"pit", "error_trace", "script_fields", "runtime_mappings"};

static void
fuzz_dsl_walk(json_t *j)
{
	const char *key;
	json_t *v;
	size_t i;

	if (json_is_object(j)) {
		json_object_foreach (j, key, v) {
			for (i = 0; i < sizeof(fuzz_dsl_forbidden) / sizeof(fuzz_dsl_forbidden[0]); i++)
				if (strcmp(key, fuzz_dsl_forbidden[i]) == 0)
					abort(); /* a refused key went through */
			/* a terms lookup names another document */
			if (strcmp(key, "terms") == 0 && json_is_object(v))
				json_object_foreach (v, key, j)
					if (json_is_object(j) && json_object_get(j, "index") != NULL)
						abort();
			fuzz_dsl_walk(v);
		}
	} else if (json_is_array(j)) {
		json_array_foreach (j, i, v)
			fuzz_dsl_walk(v);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int modes[] = {DSL_BODY_SEARCH, DSL_BODY_MSEARCH, DSL_BODY_COUNT};
	struct dsl_policy p;
	char reason[DSL_REASON_MAX], *out = NULL;
	size_t outlen = 0;
	int mode;

	if (size < 1)
		return 0;
	mode = modes[data[0] % 3];
	dsl_policy_defaults(&p);
	if (dsl_check_body(&p, (const char *)data + 1, size - 1, mode, "books", &out, &outlen, reason,
			   sizeof(reason)) == 0) {
		const char *line = out, *end = out + outlen;
		if (out == NULL || out[outlen] != '\0' || strlen(out) != outlen)
			abort();
		/* every line (one for _search and _count) is JSON, and clean */
		while (line < end) {
			const char *nl = memchr(line, '\n', (size_t)(end - line));
			size_t n = nl != NULL ? (size_t)(nl - line) : (size_t)(end - line);
			json_t *doc = json_loadb(line, n, 0, NULL);
			if (doc == NULL)
				abort();
			for (size_t i = 0; i < sizeof(fuzz_dsl_forbidden_top) / sizeof(fuzz_dsl_forbidden_top[0]); i++)
				if (json_is_object(doc) && json_object_get(doc, fuzz_dsl_forbidden_top[i]) != NULL)
					abort();
			fuzz_dsl_walk(doc);
			json_decref(doc);
			line += n + (nl != NULL);
		}
	}
	free(out);
	dsl_policy_clear(&p);
	return 0;
}
