/*
 * fuzz_dsl.c - libFuzzer target for the search firewall (lib/dsl.c): the
 * input is a request body; its first byte picks _search, _msearch or
 * _count, and whether field rules (source_fields) are on.  The policy is
 * the widest there is: every query and aggregation type the firewall
 * knows, so every table is reached.
 *
 * Beyond memory errors, it aborts when the firewall would forward:
 *   - anything but compact JSON lines;
 *   - a key it must always refuse (scripts, runtime mappings, indexed
 *     shapes), anywhere, or pit, error_trace at the top;
 *   - an object its walk did not check, a query of a type the policy does
 *     not allow, or data where Elasticsearch reads DSL (dsl_oracle.h): the
 *     holes of issue 12 (queries under keys the walk only scanned);
 *   - a terms query whose field holds an object (a terms lookup).
 */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/dsl.h"
#include "tests/fuzz/dsl_oracle.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Keys refused wherever they stand (a field may be called "pit", but no
 * field is called "script_score": Elasticsearch reads these as scripts). */
static const char *const fuzz_dsl_forbidden[] = {"script",          "script_fields",    "script_score",
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
			fuzz_dsl_walk(v);
		}
	} else if (json_is_array(j)) {
		json_array_foreach (j, i, v)
			fuzz_dsl_walk(v);
	}
}

/* The oracle, and: no checked terms query holds a lookup. */
static struct oracle fuzz_oracle;

static void
fuzz_dsl_lookups(json_t *j)
{
	const char *key, *field;
	json_t *v, *values;
	size_t i;

	if (json_is_array(j)) {
		json_array_foreach (j, i, v)
			fuzz_dsl_lookups(v);
		return;
	}
	if (!json_is_object(j) || oracle_role(&fuzz_oracle, j) == DSL_ROLE_DATA)
		return;
	json_object_foreach (j, key, v) {
		if (oracle_role(&fuzz_oracle, j) == DSL_ROLE_QUERY && strcmp(key, "terms") == 0 && json_is_object(v))
			json_object_foreach (v, field, values)
				if (json_is_object(values))
					abort(); /* a terms lookup names another document */
		fuzz_dsl_lookups(v);
	}
}

static void
fuzz_dsl_document(void *arg, const struct json_t *doc)
{
	struct oracle *o = arg;

	fuzz_dsl_lookups((json_t *)(uintptr_t)doc);
	oracle_document(o, doc);
	if (o->problem[0] != '\0') {
		fprintf(stderr, "fuzz_dsl: %s\n", o->problem);
		abort();
	}
}

/* Every known query and aggregation type; with FIELDS, field rules too. */
static void
fuzz_dsl_policy(struct dsl_policy *p, int fields)
{
	static char *allowed[] = {"title", "year", "user.*", "comments"};
	size_t n;

	dsl_policy_defaults(p);
	dsl_policy_reset_list(p, 'q');
	dsl_policy_reset_list(p, 'a');
	for (n = 0; dsl_known_type('q', n) != NULL; n++)
		;
	if ((p->queries = calloc(n, sizeof(char *))) == NULL)
		abort();
	for (p->nqueries = 0; p->nqueries < n; p->nqueries++)
		p->queries[p->nqueries] = (char *)(uintptr_t)dsl_known_type('q', p->nqueries);
	for (n = 0; dsl_known_type('a', n) != NULL; n++)
		;
	if ((p->aggs = calloc(n, sizeof(char *))) == NULL)
		abort();
	for (p->naggs = 0; p->naggs < n; p->naggs++)
		p->aggs[p->naggs] = (char *)(uintptr_t)dsl_known_type('a', p->naggs);
	if (fields) {
		p->source_fields = allowed;
		p->nsource_fields = sizeof(allowed) / sizeof(allowed[0]);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int modes[] = {DSL_BODY_SEARCH, DSL_BODY_MSEARCH, DSL_BODY_COUNT};
	static struct dsl_policy policies[2];
	static struct dsl_trace trace;
	static int ready;
	const struct dsl_policy *p;
	struct dsl_result res;
	char reason[DSL_REASON_MAX];
	int mode;

	if (!ready) {
		fuzz_dsl_policy(&policies[0], 0);
		fuzz_dsl_policy(&policies[1], 1);
		oracle_init(&fuzz_oracle, &policies[0], &trace);
		trace.document = fuzz_dsl_document;
		ready = 1;
	}
	if (size < 1)
		return 0;
	mode = modes[data[0] % 3];
	p = &policies[(data[0] / 3) % 2];
	fuzz_oracle.p = p;
	oracle_reset(&fuzz_oracle);
	if (dsl_check_request(p, mode, "books", NULL, 0, (const char *)data + 1, size - 1, &trace, &res, reason,
	                      sizeof(reason)) == DSL_OK &&
	    res.body != NULL) {
		const char *line = res.body, *end = res.body + res.len;

		if (res.body[res.len] != '\0' || strlen(res.body) != res.len || res.searches < 1 ||
		    res.searches > p->max_searches)
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
		free(res.body);
	}
	return 0;
}
