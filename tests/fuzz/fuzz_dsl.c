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
 * And, as the pipeline does next for a principal under a document filter
 * (worker/stage_filter.c), every body the firewall passes (or none) goes
 * through dls_apply_text() with a filter: when that forwards, every search
 * (each _msearch sub-search) must carry the filter in its top-level bool
 * filter, or, a search answered by its knn alone, in every knn's filter;
 * each top-level knn carries it too; and no global aggregation, suggest
 * or profile may be left.
 */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/dls.h"
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

/* 1 if LIST (a filter array, or one clause) holds FILTER. */
static int
fuzz_dls_holds(const json_t *list, const json_t *filter)
{
	const json_t *v;
	size_t i;

	if (json_equal((json_t *)(uintptr_t)list, (json_t *)(uintptr_t)filter))
		return 1;
	json_array_foreach (list, i, v)
		if (json_equal((json_t *)(uintptr_t)v, (json_t *)(uintptr_t)filter))
			return 1;
	return 0;
}

/* No "global" aggregation anywhere in the aggregations AGGS. */
static void
fuzz_dls_aggs(const json_t *aggs)
{
	const char *name, *type;
	json_t *a, *v;

	json_object_foreach ((json_t *)(uintptr_t)aggs, name, a) {
		json_object_foreach (a, type, v) {
			if (strcmp(type, "global") == 0)
				abort(); /* reads the whole index past the filter */
			if (strcmp(type, "aggs") == 0 || strcmp(type, "aggregations") == 0)
				fuzz_dls_aggs(v);
		}
	}
}

/* One search body as it would go upstream under FILTER. */
static void
fuzz_dls_search(const char *line, size_t len, const json_t *filter)
{
	json_t *doc = json_loadb(line, len, 0, NULL), *q, *knn, *k;
	size_t i, nknn = 0;

	if (!json_is_object(doc))
		abort();
	knn = json_object_get(doc, "knn");
	if (json_is_object(knn)) {
		nknn = 1;
		if (!fuzz_dls_holds(json_object_get(knn, "filter"), filter))
			abort();
	}
	json_array_foreach (knn, i, k) {
		nknn++;
		if (!fuzz_dls_holds(json_object_get(k, "filter"), filter))
			abort();
	}
	q = json_object_get(doc, "query");
	if (q == NULL && nknn == 0)
		abort(); /* neither a filtered query nor a filtered knn */
	if (q != NULL && !fuzz_dls_holds(json_object_get(json_object_get(q, "bool"), "filter"), filter))
		abort();
	if (q != NULL && (json_object_size(q) != 1 || json_object_size(json_object_get(q, "bool")) > 2))
		abort(); /* only must and filter: no should that could loosen it */
	if (json_object_get(doc, "suggest") != NULL || json_object_get(doc, "profile") != NULL)
		abort();
	fuzz_dls_aggs(json_object_get(doc, "aggs"));
	fuzz_dls_aggs(json_object_get(doc, "aggregations"));
	json_decref(doc);
}

/* What the filter stage would forward of BODY (LEN bytes, the firewall's). */
static void
fuzz_dls(const char *body, size_t len, int mode, const json_t *filter)
{
	char reason[DLS_REASON_MAX], *out = NULL;
	const char *line, *end;
	size_t olen = 0, lineno = 0;

	if (dls_apply_text(body, len, mode, filter, &out, &olen, reason, sizeof(reason)) != 0)
		return;
	if (out == NULL || out[olen] != '\0' || strlen(out) != olen)
		abort();
	for (line = out, end = out + olen; line < end;) {
		const char *nl = memchr(line, '\n', (size_t)(end - line));
		size_t n = nl != NULL ? (size_t)(nl - line) : (size_t)(end - line);

		if (n > 0 && (mode != DSL_BODY_MSEARCH || ++lineno % 2 == 0))
			fuzz_dls_search(line, n, filter);
		line += n + (nl != NULL);
	}
	if (mode == DSL_BODY_MSEARCH && (lineno == 0 || lineno % 2 != 0))
		abort();
	free(out);
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
	static json_t *filter;
	static int ready;
	const struct dsl_policy *p;
	struct dsl_result res;
	char reason[DSL_REASON_MAX];
	int mode, rc;

	if (!ready) {
		fuzz_dsl_policy(&policies[0], 0);
		fuzz_dsl_policy(&policies[1], 1);
		oracle_init(&fuzz_oracle, &policies[0], &trace);
		trace.document = fuzz_dsl_document;
		filter = json_pack("{s:{s:s}}", "term", "tenant", "acme");
		ready = 1;
	}
	if (size < 1)
		return 0;
	mode = modes[data[0] % 3];
	p = &policies[(data[0] / 3) % 2];
	fuzz_oracle.p = p;
	oracle_reset(&fuzz_oracle);
	rc = dsl_check_request(p, mode, "books", NULL, 0, (const char *)data + 1, size - 1, &trace, &res, reason,
	                       sizeof(reason));
	if (rc == DSL_OK && res.body != NULL) {
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
		fuzz_dls(res.body, res.len, mode, filter);
		free(res.body);
	} else if (rc == DSL_OK && mode != DSL_BODY_MSEARCH) {
		fuzz_dls("", 0, mode, filter); /* no body: the filter is the whole query */
	}
	return 0;
}
