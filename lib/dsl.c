/*
 * dsl.c - the search firewall (see dsl.h).
 *
 * The walk knows the shape of a search body: top-level keys, the query
 * tree, aggregations, _source.  Where it does not know the shape (the body
 * of a leaf query, of an aggregation, a sort clause) it still scans every
 * key for the few that run code or read other documents, so a new place
 * Elasticsearch accepts a script in is refused too.  The current position
 * is kept as a path ("query.bool.filter[0]") for the refusal message.
 */
#include "dsl.h"

#include <fnmatch.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DSL_PATH_MAX 512
#define DSL_KEY_SHOWN 64 /* bytes of a client's key put in a message */
#define DSL_SIZE_DEFAULT 10 /* Elasticsearch's, when "from" comes without "size" */

static const char *const dsl_default_queries[] = {
    "match", "match_phrase", "multi_match", "term",     "terms",     "range",
    "bool",  "exists",       "prefix",      "ids",      "match_all", "simple_query_string",
};

static const char *const dsl_default_aggs[] = {
    "terms", "date_histogram", "histogram",	"range",  "avg",     "sum",     "min",
    "max",   "value_count",    "cardinality", "filter", "filters", "missing",
};

/* Keys refused wherever they appear: each runs code on the cluster, reads
 * other documents, or makes errors leak internals. */
static const char *const dsl_forbidden[] = {
    "script", "script_fields", "script_score", "scripted_metric", "runtime_mappings",
    "_script", "error_trace", "indexed_shape", "minimum_should_match_script",
};

#define DSL_NELEM(a) (sizeof(a) / sizeof((a)[0]))

struct dsl_walk {
	const struct dsl_policy *p;
	char path[DSL_PATH_MAX];
	size_t plen;
	size_t base; /* length of the "line N: " prefix, 0 if none */
	char *reason;
	size_t reasonlen;
};

static int dsl_fail(struct dsl_walk *, const char *, ...) __attribute__((format(printf, 2, 3)));
static int dsl_query(struct dsl_walk *, json_t *);

/*
 * Policy.
 */

void
dsl_policy_defaults(struct dsl_policy *p)
{
	memset(p, 0, sizeof(*p));
	/* static tables, never written: dsl_policy_clear() recognises them */
	p->queries = (char **)(uintptr_t)dsl_default_queries;
	p->nqueries = DSL_NELEM(dsl_default_queries);
	p->aggs = (char **)(uintptr_t)dsl_default_aggs;
	p->naggs = DSL_NELEM(dsl_default_aggs);
	p->max_size = 100;
	p->max_from = 10000;
	p->max_agg_depth = 3;
	p->max_buckets = 1000;
}

static void
dsl_list_free(char **list, size_t n)
{
	if (list == (char **)(uintptr_t)dsl_default_queries || list == (char **)(uintptr_t)dsl_default_aggs)
		return;
	for (size_t i = 0; i < n; i++)
		free(list[i]);
	free(list);
}

void
dsl_policy_clear(struct dsl_policy *p)
{
	if (p == NULL)
		return;
	dsl_list_free(p->queries, p->nqueries);
	dsl_list_free(p->aggs, p->naggs);
	dsl_list_free(p->source_fields, p->nsource_fields);
	memset(p, 0, sizeof(*p));
}

void
dsl_policy_reset_list(struct dsl_policy *p, int which)
{
	char ***list = which == 'q' ? &p->queries : which == 'a' ? &p->aggs : &p->source_fields;
	size_t *n = which == 'q' ? &p->nqueries : which == 'a' ? &p->naggs : &p->nsource_fields;

	dsl_list_free(*list, *n);
	*list = NULL;
	*n = 0;
}

static int
dsl_in(char *const *list, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(list[i], s) == 0)
			return 1;
	return 0;
}

static int
dsl_forbidden_key(const char *k)
{
	return dsl_in((char *const *)(uintptr_t)dsl_forbidden, DSL_NELEM(dsl_forbidden), k);
}

/* A field named by a client is allowed if an entry names it exactly, or
 * (when it has no wildcard itself) an entry's pattern matches it: a
 * client's "user.*" is allowed only by the entry "user.*". */
static int
dsl_field_allowed(const struct dsl_policy *p, const char *f)
{
	if (p->source_fields == NULL)
		return 1;
	if (dsl_in(p->source_fields, p->nsource_fields, f))
		return 1;
	if (strpbrk(f, "*?[") != NULL)
		return 0;
	for (size_t i = 0; i < p->nsource_fields; i++)
		if (fnmatch(p->source_fields[i], f, 0) == 0)
			return 1;
	return 0;
}

/*
 * Messages and the path.
 */

/* Client text into a message: printable ASCII, cut short. */
static void
dsl_clean(char *dst, size_t dstlen, const char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0' && i + 1 < dstlen && i < DSL_KEY_SHOWN; i++)
		dst[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
	dst[i] = '\0';
}

static size_t
dsl_push(struct dsl_walk *w, const char *key)
{
	size_t saved = w->plen;
	char k[DSL_KEY_SHOWN + 1];
	int n;

	dsl_clean(k, sizeof(k), key);
	n = snprintf(w->path + w->plen, sizeof(w->path) - w->plen, "%s%s", w->plen > w->base ? "." : "", k);
	if (n > 0)
		w->plen = w->plen + (size_t)n < sizeof(w->path) ? w->plen + (size_t)n : sizeof(w->path) - 1;
	return saved;
}

static size_t
dsl_push_idx(struct dsl_walk *w, size_t i)
{
	size_t saved = w->plen;
	int n;

	n = snprintf(w->path + w->plen, sizeof(w->path) - w->plen, "[%zu]", i);
	if (n > 0)
		w->plen = w->plen + (size_t)n < sizeof(w->path) ? w->plen + (size_t)n : sizeof(w->path) - 1;
	return saved;
}

static void
dsl_pop(struct dsl_walk *w, size_t saved)
{
	w->plen = saved;
	w->path[saved] = '\0';
}

static int
dsl_fail(struct dsl_walk *w, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (w->reason == NULL || w->reasonlen == 0)
		return -1;
	va_start(ap, fmt);
	n = vsnprintf(w->reason, w->reasonlen, fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n < w->reasonlen && w->plen > 0)
		snprintf(w->reason + n, w->reasonlen - (size_t)n, " (at %s)", w->path);
	return -1;
}

/* A message naming KEY, cleaned: BEFORE, KEY, AFTER. */
static int
dsl_fail_key(struct dsl_walk *w, const char *before, const char *key, const char *after)
{
	char k[DSL_KEY_SHOWN + 1];

	dsl_clean(k, sizeof(k), key);
	return dsl_fail(w, "%s%s%s", before, k, after);
}

/*
 * Value checks.
 */

static int
dsl_uint(struct dsl_walk *w, json_t *v, const char *name, uint64_t max, uint64_t *out)
{
	json_int_t i;

	if (!json_is_integer(v) || (i = json_integer_value(v)) < 0)
		return dsl_fail(w, "%s must be a non-negative integer", name);
	if ((uint64_t)i > max)
		return dsl_fail(w, "%s must be at most %llu", name, (unsigned long long)max);
	if (out != NULL)
		*out = (uint64_t)i;
	return 0;
}

/* Every key anywhere under V, against dsl_forbidden. */
static int
dsl_scan(struct dsl_walk *w, json_t *v)
{
	const char *k;
	json_t *c;
	size_t i, saved;

	if (json_is_object(v)) {
		json_object_foreach (v, k, c) {
			saved = dsl_push(w, k);
			if (dsl_forbidden_key(k) || dsl_scan(w, c) != 0)
				return dsl_forbidden_key(k) ? dsl_fail_key(w, "", k, " is not allowed") : -1;
			dsl_pop(w, saved);
		}
	} else if (json_is_array(v)) {
		json_array_foreach (v, i, c) {
			saved = dsl_push_idx(w, i);
			if (dsl_scan(w, c) != 0)
				return -1;
			dsl_pop(w, saved);
		}
	}
	return 0;
}

/* A query, or an array of them (bool clauses, dis_max queries). */
static int
dsl_query_or_list(struct dsl_walk *w, json_t *v, int list_ok)
{
	size_t i, saved;
	json_t *c;

	if (!json_is_array(v))
		return dsl_query(w, v);
	if (!list_ok)
		return dsl_fail(w, "must be a query object");
	json_array_foreach (v, i, c) {
		saved = dsl_push_idx(w, i);
		if (dsl_query(w, c) != 0)
			return -1;
		dsl_pop(w, saved);
	}
	return 0;
}

static int
dsl_query_bool(struct dsl_walk *w, json_t *body)
{
	const char *k;
	json_t *c;
	size_t saved;

	if (!json_is_object(body))
		return dsl_fail(w, "bool must be an object");
	json_object_foreach (body, k, c) {
		saved = dsl_push(w, k);
		if (strcmp(k, "must") == 0 || strcmp(k, "should") == 0 || strcmp(k, "filter") == 0 ||
		    strcmp(k, "must_not") == 0) {
			if (dsl_query_or_list(w, c, 1) != 0)
				return -1;
		} else if (strcmp(k, "minimum_should_match") == 0 || strcmp(k, "boost") == 0 ||
		           strcmp(k, "_name") == 0) {
			if (json_is_object(c) || json_is_array(c))
				return dsl_fail_key(w, "", k, " must be a scalar");
		} else if (dsl_forbidden_key(k))
			return dsl_fail_key(w, "", k, " is not allowed");
		else
			return dsl_fail_key(w, "unknown key ", k, " in bool");
		dsl_pop(w, saved);
	}
	return 0;
}

/* terms: {"field": [values]}; an object instead of the values is a lookup,
 * which reads a document of any index the cluster user can read. */
static int
dsl_query_terms(struct dsl_walk *w, json_t *body)
{
	const char *k;
	json_t *c;
	size_t saved;

	if (!json_is_object(body))
		return dsl_fail(w, "terms must be an object");
	json_object_foreach (body, k, c) {
		saved = dsl_push(w, k);
		if (json_is_object(c))
			return dsl_fail(w, "terms lookup is not allowed");
		if (dsl_forbidden_key(k))
			return dsl_fail_key(w, "", k, " is not allowed");
		if (json_is_array(c) && dsl_scan(w, c) != 0)
			return -1;
		dsl_pop(w, saved);
	}
	return 0;
}

/* more_like_this "like"/"unlike" documents naming an index read any index. */
static int
dsl_query_mlt(struct dsl_walk *w, json_t *body)
{
	static const char *const keys[] = {"like", "unlike"};
	json_t *v, *c;
	size_t i, saved, saved2;

	if (dsl_scan(w, body) != 0)
		return -1;
	for (size_t j = 0; j < DSL_NELEM(keys); j++) {
		if ((v = json_object_get(body, keys[j])) == NULL)
			continue;
		saved = dsl_push(w, keys[j]);
		if (json_is_object(v) && json_object_get(v, "_index") != NULL) {
			dsl_push(w, "_index");
			return dsl_fail(w, "_index is not allowed in more_like_this");
		}
		json_array_foreach (v, i, c) {
			saved2 = dsl_push_idx(w, i);
			if (json_is_object(c) && json_object_get(c, "_index") != NULL) {
				dsl_push(w, "_index");
				return dsl_fail(w, "_index is not allowed in more_like_this");
			}
			dsl_pop(w, saved2);
		}
		dsl_pop(w, saved);
	}
	return 0;
}

/* Queries whose body holds other queries under known keys; every other
 * key of their body is scanned. */
static const struct {
	const char *type;
	const char *key;
	int list;
} dsl_nesting[] = {
    {"nested", "query", 0},	      {"has_child", "query", 0},	{"has_parent", "query", 0},
    {"constant_score", "filter", 0}, {"dis_max", "queries", 1},	{"boosting", "positive", 0},
    {"boosting", "negative", 0},     {"function_score", "query", 0},
};

static int
dsl_query_nesting(struct dsl_walk *w, const char *type, json_t *body)
{
	const char *k;
	json_t *c;
	size_t i, saved;

	if (!json_is_object(body))
		return dsl_scan(w, body);
	json_object_foreach (body, k, c) {
		for (i = 0; i < DSL_NELEM(dsl_nesting); i++)
			if (strcmp(dsl_nesting[i].type, type) == 0 && strcmp(dsl_nesting[i].key, k) == 0)
				break;
		saved = dsl_push(w, k);
		if (dsl_forbidden_key(k))
			return dsl_fail_key(w, "", k, " is not allowed");
		if (i < DSL_NELEM(dsl_nesting)) {
			if (dsl_query_or_list(w, c, dsl_nesting[i].list) != 0)
				return -1;
		} else if (strcmp(type, "function_score") == 0 && strcmp(k, "functions") == 0 && json_is_array(c)) {
			json_t *f;
			size_t j, s2;

			json_array_foreach (c, j, f) {
				s2 = dsl_push_idx(w, j);
				if (dsl_scan(w, f) != 0)
					return -1;
				if (json_is_object(f) && json_object_get(f, "filter") != NULL) {
					dsl_push(w, "filter");
					if (dsl_query(w, json_object_get(f, "filter")) != 0)
						return -1;
				}
				dsl_pop(w, s2);
			}
		} else if (dsl_scan(w, c) != 0)
			return -1;
		dsl_pop(w, saved);
	}
	return 0;
}

static int
dsl_query(struct dsl_walk *w, json_t *q)
{
	const char *type;
	json_t *body;
	size_t saved;
	int rc;

	if (!json_is_object(q) || json_object_size(q) != 1)
		return dsl_fail(w, "a query must be an object with exactly one key");
	json_object_foreach (q, type, body)
		break;
	saved = dsl_push(w, type);
	if (dsl_forbidden_key(type))
		return dsl_fail_key(w, "", type, " is not allowed");
	if (!dsl_in(w->p->queries, w->p->nqueries, type))
		return dsl_fail_key(w, "query type ", type, " is not allowed");
	if (strcmp(type, "bool") == 0)
		rc = dsl_query_bool(w, body);
	else if (strcmp(type, "terms") == 0)
		rc = dsl_query_terms(w, body);
	else if (strcmp(type, "more_like_this") == 0)
		rc = dsl_query_mlt(w, body);
	else if (strcmp(type, "percolate") == 0 && json_is_object(body) && json_object_get(body, "index") != NULL) {
		dsl_push(w, "index");
		rc = dsl_fail(w, "index is not allowed in percolate");
	} else
		rc = dsl_query_nesting(w, type, body);
	if (rc == 0)
		dsl_pop(w, saved);
	return rc;
}

/*
 * Aggregations.
 */

static int
dsl_aggs(struct dsl_walk *w, json_t *aggs, unsigned depth);

static int
dsl_agg_body(struct dsl_walk *w, const char *type, json_t *body)
{
	const char *k;
	json_t *c;
	size_t saved;

	if (strcmp(type, "filter") == 0)
		return dsl_query(w, body);
	if (!json_is_object(body))
		return dsl_fail_key(w, "", type, " must be an object");
	json_object_foreach (body, k, c) {
		saved = dsl_push(w, k);
		if (dsl_forbidden_key(k))
			return dsl_fail_key(w, "", k, " is not allowed");
		if (strcmp(type, "filters") == 0 && strcmp(k, "filters") == 0) {
			const char *name;
			json_t *q;
			size_t s2;

			if (json_is_array(c)) {
				if (dsl_query_or_list(w, c, 1) != 0)
					return -1;
			} else if (json_is_object(c)) {
				json_object_foreach (c, name, q) {
					s2 = dsl_push(w, name);
					if (dsl_query(w, q) != 0)
						return -1;
					dsl_pop(w, s2);
				}
			} else
				return dsl_fail(w, "filters must be an object or an array");
		} else if (strcmp(k, "size") == 0 || strcmp(k, "shard_size") == 0 || strcmp(k, "buckets") == 0) {
			if (dsl_uint(w, c, k, w->p->max_buckets, NULL) != 0)
				return -1;
		} else if (strcmp(type, "terms") == 0 && json_is_object(c) && json_object_get(c, "index") != NULL) {
			/* no terms aggregation parameter names an index: whatever
			 * Elasticsearch would make of it, it reads like a lookup
			 * (found by fuzz_dsl) */
			return dsl_fail(w, "terms lookup is not allowed");
		} else if (dsl_scan(w, c) != 0)
			return -1;
		dsl_pop(w, saved);
	}
	return 0;
}

static int
dsl_aggs(struct dsl_walk *w, json_t *aggs, unsigned depth)
{
	const char *name, *k, *type;
	json_t *def, *c, *body, *sub;
	size_t saved, s2;

	if (!json_is_object(aggs))
		return dsl_fail(w, "aggregations must be an object");
	if (depth > w->p->max_agg_depth)
		return dsl_fail(w, "aggregation depth %u exceeds %u", depth, w->p->max_agg_depth);
	json_object_foreach (aggs, name, def) {
		saved = dsl_push(w, name);
		/* a name is only a name to Elasticsearch, but the rule stays
		 * simple: those keys appear nowhere (found by fuzz_dsl) */
		if (dsl_forbidden_key(name))
			return dsl_fail_key(w, "aggregation name ", name, " is not allowed");
		if (!json_is_object(def))
			return dsl_fail(w, "an aggregation must be an object");
		type = NULL;
		body = sub = NULL;
		json_object_foreach (def, k, c) {
			s2 = dsl_push(w, k);
			if (strcmp(k, "aggs") == 0 || strcmp(k, "aggregations") == 0) {
				if (sub != NULL)
					return dsl_fail(w, "aggs and aggregations cannot be used together");
				sub = c;
			} else if (strcmp(k, "meta") == 0) {
				if (dsl_scan(w, c) != 0)
					return -1;
			} else if (dsl_forbidden_key(k))
				return dsl_fail_key(w, "", k, " is not allowed");
			else if (type != NULL)
				return dsl_fail(w, "an aggregation must have exactly one type");
			else if (!dsl_in(w->p->aggs, w->p->naggs, k))
				return dsl_fail_key(w, "aggregation type ", k, " is not allowed");
			else {
				type = k;
				body = c;
			}
			dsl_pop(w, s2);
		}
		if (type == NULL)
			return dsl_fail(w, "an aggregation must have a type");
		s2 = dsl_push(w, type);
		if (dsl_agg_body(w, type, body) != 0)
			return -1;
		dsl_pop(w, s2);
		if (sub != NULL) {
			s2 = dsl_push(w, json_object_get(def, "aggs") == sub ? "aggs" : "aggregations");
			if (dsl_aggs(w, sub, depth + 1) != 0)
				return -1;
			dsl_pop(w, s2);
		}
		dsl_pop(w, saved);
	}
	return 0;
}

/*
 * _source, fields, highlight.
 */

/* A field name or a list of them, each against the allow-list. */
static int
dsl_fields(struct dsl_walk *w, json_t *v, const char *what)
{
	json_t *c;
	size_t i, saved;

	if (json_is_string(v)) {
		if (!dsl_field_allowed(w->p, json_string_value(v)))
			return dsl_fail_key(w, "field ", json_string_value(v), " is not allowed");
		return 0;
	}
	if (!json_is_array(v))
		return dsl_fail(w, "%s must be a string or an array of strings", what);
	json_array_foreach (v, i, c) {
		saved = dsl_push_idx(w, i);
		if (!json_is_string(c))
			return dsl_fail(w, "%s must be a string or an array of strings", what);
		if (!dsl_field_allowed(w->p, json_string_value(c)))
			return dsl_fail_key(w, "field ", json_string_value(c), " is not allowed");
		dsl_pop(w, saved);
	}
	return 0;
}

static json_t *
dsl_field_list(const struct dsl_policy *p)
{
	json_t *a = json_array();

	for (size_t i = 0; a != NULL && i < p->nsource_fields; i++)
		if (json_array_append_new(a, json_string(p->source_fields[i])) != 0) {
			json_decref(a);
			return NULL;
		}
	return a;
}

/* _source: false, true, a pattern, a list, or {includes, excludes}.  With
 * source_fields set, what would return every field (true, or an object
 * without includes) is narrowed to the allow-list instead of refused, so
 * clients that always send "_source": true keep working. */
static int
dsl_source(struct dsl_walk *w, json_t *root, json_t *v)
{
	const char *k;
	json_t *c, *inc = NULL;
	size_t saved;

	if (json_is_false(v))
		return 0;
	if (json_is_true(v)) {
		if (w->p->source_fields == NULL)
			return 0;
		if ((inc = dsl_field_list(w->p)) == NULL || json_object_set_new(root, "_source", inc) != 0)
			return dsl_fail(w, "out of memory");
		return 0;
	}
	if (!json_is_object(v))
		return dsl_fields(w, v, "_source");
	json_object_foreach (v, k, c) {
		saved = dsl_push(w, k);
		if (strcmp(k, "includes") == 0 || strcmp(k, "include") == 0) {
			if (inc != NULL)
				return dsl_fail(w, "include and includes cannot be used together");
			inc = c;
			if (dsl_fields(w, c, k) != 0)
				return -1;
		} else if (strcmp(k, "excludes") == 0 || strcmp(k, "exclude") == 0) {
			if (!json_is_string(c) && !json_is_array(c))
				return dsl_fail_key(w, "", k, " must be a string or an array of strings");
			if (dsl_scan(w, c) != 0)
				return -1;
		} else
			return dsl_fail_key(w, "unknown key ", k, " in _source");
		dsl_pop(w, saved);
	}
	if (inc == NULL && w->p->source_fields != NULL) {
		if ((inc = dsl_field_list(w->p)) == NULL || json_object_set_new(v, "includes", inc) != 0)
			return dsl_fail(w, "out of memory");
	}
	return 0;
}

/* "fields": [name, {"field": name, "format": ...}, ...] */
static int
dsl_fields_option(struct dsl_walk *w, json_t *v)
{
	const char *k;
	json_t *c, *f;
	size_t i, saved, s2;

	if (!json_is_array(v))
		return dsl_fail(w, "fields must be an array");
	json_array_foreach (v, i, c) {
		saved = dsl_push_idx(w, i);
		if (json_is_object(c)) {
			json_object_foreach (c, k, f) {
				s2 = dsl_push(w, k);
				if (strcmp(k, "field") == 0) {
					if (!json_is_string(f))
						return dsl_fail(w, "field must be a string");
					if (!dsl_field_allowed(w->p, json_string_value(f)))
						return dsl_fail_key(w, "field ", json_string_value(f), " is not allowed");
				} else if (strcmp(k, "format") == 0 || strcmp(k, "include_unmapped") == 0) {
					if (json_is_object(f) || json_is_array(f))
						return dsl_fail_key(w, "", k, " must be a scalar");
				} else
					return dsl_fail_key(w, "unknown key ", k, " in fields");
				dsl_pop(w, s2);
			}
			if (json_object_get(c, "field") == NULL)
				return dsl_fail(w, "fields entry needs a field");
		} else if (json_is_string(c)) {
			if (!dsl_field_allowed(w->p, json_string_value(c)))
				return dsl_fail_key(w, "field ", json_string_value(c), " is not allowed");
		} else
			return dsl_fail(w, "fields entries must be strings or objects");
		dsl_pop(w, saved);
	}
	return 0;
}

/* Options of the highlighter, or of one field's: a highlight_query is a
 * query; the rest is scanned. */
static int
dsl_highlight_opts(struct dsl_walk *w, json_t *opts, int top)
{
	const char *k, *name;
	json_t *c, *f;
	size_t saved, s2, i;

	if (!json_is_object(opts))
		return dsl_fail(w, "highlight must be an object");
	json_object_foreach (opts, k, c) {
		saved = dsl_push(w, k);
		if (strcmp(k, "highlight_query") == 0) {
			if (dsl_query(w, c) != 0)
				return -1;
		} else if (top && strcmp(k, "fields") == 0) {
			/* an object of field: options, or an array of such objects */
			json_t *one = json_is_array(c) ? NULL : c;

			for (i = 0; json_is_array(c) ? i < json_array_size(c) : i < 1; i++) {
				if (json_is_array(c)) {
					one = json_array_get(c, i);
					s2 = dsl_push_idx(w, i);
				} else
					s2 = w->plen;
				if (!json_is_object(one))
					return dsl_fail(w, "highlight fields must be objects");
				json_object_foreach (one, name, f) {
					size_t s3 = dsl_push(w, name);

					if (!dsl_field_allowed(w->p, name))
						return dsl_fail_key(w, "field ", name, " is not allowed");
					if (dsl_highlight_opts(w, f, 0) != 0)
						return -1;
					dsl_pop(w, s3);
				}
				dsl_pop(w, s2);
			}
		} else if (dsl_forbidden_key(k))
			return dsl_fail_key(w, "", k, " is not allowed");
		else if (dsl_scan(w, c) != 0)
			return -1;
		dsl_pop(w, saved);
	}
	return 0;
}

/* sort: scanned ("_script" sorts are refused there); a nested sort's
 * filter is a query. */
static int
dsl_sort(struct dsl_walk *w, json_t *v)
{
	const char *k, *k2;
	json_t *c, *c2, *nested, *filter, *items;
	size_t i, saved, s2;

	if (dsl_scan(w, v) != 0)
		return -1;
	items = json_is_array(v) ? v : NULL;
	for (i = 0; items == NULL ? i < 1 : i < json_array_size(items); i++) {
		c = items == NULL ? v : json_array_get(items, i);
		saved = items == NULL ? w->plen : dsl_push_idx(w, i);
		if (json_is_object(c)) {
			json_object_foreach (c, k, c2) {
				s2 = dsl_push(w, k);
				if (json_is_object(c2) && (nested = json_object_get(c2, "nested")) != NULL &&
				    json_is_object(nested)) {
					/* its own iterator: reusing C (the object the loop
					 * above walks) once looped forever */
					json_object_foreach (nested, k2, filter) {
						if (strcmp(k2, "filter") == 0) {
							dsl_push(w, "nested");
							dsl_push(w, "filter");
							if (dsl_query(w, filter) != 0)
								return -1;
						}
					}
				}
				dsl_pop(w, s2);
			}
		}
		dsl_pop(w, saved);
	}
	return 0;
}

/*
 * A search body.
 */

static int
dsl_scalar(json_t *v)
{
	return !json_is_object(v) && !json_is_array(v);
}

static int
dsl_search(struct dsl_walk *w, json_t *root, int count)
{
	const char *k;
	json_t *c;
	uint64_t size = DSL_SIZE_DEFAULT, from = 0;
	int has_from = 0, has_aggs = 0;
	size_t saved;
	void *tmp;

	if (!json_is_object(root))
		return dsl_fail(w, "the body must be a JSON object");
	json_object_foreach_safe (root, tmp, k, c) {
		saved = dsl_push(w, k);
		if (dsl_forbidden_key(k))
			return dsl_fail_key(w, "", k, " is not allowed");
		if (strcmp(k, "query") == 0) {
			if (dsl_query(w, c) != 0)
				return -1;
		} else if (count)
			return dsl_fail_key(w, "unknown or forbidden key ", k, "");
		else if (strcmp(k, "post_filter") == 0) {
			if (dsl_query(w, c) != 0)
				return -1;
		} else if (strcmp(k, "size") == 0) {
			if (dsl_uint(w, c, "size", w->p->max_size, &size) != 0)
				return -1;
		} else if (strcmp(k, "from") == 0) {
			if (dsl_uint(w, c, "from", w->p->max_from, &from) != 0)
				return -1;
			has_from = 1;
		} else if (strcmp(k, "sort") == 0) {
			if (dsl_sort(w, c) != 0)
				return -1;
		} else if (strcmp(k, "_source") == 0) {
			if (dsl_source(w, root, c) != 0)
				return -1;
		} else if (strcmp(k, "fields") == 0) {
			if (dsl_fields_option(w, c) != 0)
				return -1;
		} else if (strcmp(k, "aggs") == 0 || strcmp(k, "aggregations") == 0) {
			if (has_aggs++)
				return dsl_fail(w, "aggs and aggregations cannot be used together");
			if (dsl_aggs(w, c, 1) != 0)
				return -1;
		} else if (strcmp(k, "highlight") == 0) {
			if (dsl_highlight_opts(w, c, 1) != 0)
				return -1;
		} else if (strcmp(k, "track_total_hits") == 0) {
			if (!json_is_boolean(c) && dsl_uint(w, c, k, UINT32_MAX, NULL) != 0)
				return dsl_fail(w, "track_total_hits must be a boolean or a non-negative integer");
		} else if (strcmp(k, "timeout") == 0) {
			if (!json_is_string(c))
				return dsl_fail(w, "timeout must be a string");
		} else if (strcmp(k, "search_after") == 0) {
			size_t i;
			json_t *e;

			if (!json_is_array(c))
				return dsl_fail(w, "search_after must be an array");
			json_array_foreach (c, i, e)
				if (!dsl_scalar(e))
					return dsl_fail(w, "search_after must be an array of values");
		} else if (strcmp(k, "min_score") == 0) {
			if (!json_is_number(c))
				return dsl_fail(w, "min_score must be a number");
		} else if (strcmp(k, "terminate_after") == 0) {
			if (dsl_uint(w, c, k, UINT32_MAX, NULL) != 0)
				return -1;
		} else if (strcmp(k, "explain") == 0) {
			if (!json_is_false(c))
				return dsl_fail(w, "explain must be false");
		} else if (strcmp(k, "version") == 0 || strcmp(k, "seq_no_primary_term") == 0) {
			if (!json_is_boolean(c))
				return dsl_fail_key(w, "", k, " must be a boolean");
		} else if (strcmp(k, "stored_fields") == 0) {
			if (!(json_is_string(c) && strcmp(json_string_value(c), "_none_") == 0) &&
			    !(json_is_array(c) && json_array_size(c) == 1 && json_is_string(json_array_get(c, 0)) &&
			      strcmp(json_string_value(json_array_get(c, 0)), "_none_") == 0))
				return dsl_fail(w, "stored_fields must be _none_");
		} else if (strcmp(k, "pit") == 0) {
			const char *pk;
			json_t *pv;

			if (!w->p->allow_pit)
				return dsl_fail(w, "pit is not allowed");
			if (!json_is_object(c) || !json_is_string(json_object_get(c, "id")))
				return dsl_fail(w, "pit must be an object with an id");
			json_object_foreach (c, pk, pv)
				if ((strcmp(pk, "id") != 0 && strcmp(pk, "keep_alive") != 0) || !json_is_string(pv))
					return dsl_fail_key(w, "unknown key ", pk, " in pit");
		} else
			return dsl_fail_key(w, "unknown or forbidden key ", k, "");
		dsl_pop(w, saved);
	}
	if (has_from && from + size > w->p->max_from) {
		dsl_push(w, "from");
		return dsl_fail(w, "from + size must be at most %llu", (unsigned long long)w->p->max_from);
	}
	/* every field unless narrowed: a search without _source returns all */
	if (!count && w->p->source_fields != NULL && json_object_get(root, "_source") == NULL) {
		json_t *inc = dsl_field_list(w->p);

		if (inc == NULL || json_object_set_new(root, "_source", inc) != 0)
			return dsl_fail(w, "out of memory");
	}
	return 0;
}

static int
dsl_expand_wildcards_ok(const char *v)
{
	/* hidden and system indices stay out of reach */
	return strstr(v, "hidden") == NULL && strstr(v, "all") == NULL;
}

static int
dsl_msearch_header(struct dsl_walk *w, json_t *h, const char *url_index)
{
	static const char *const keys[] = {
	    "index",	      "preference",	  "routing",	      "request_cache",		     "search_type",
	    "ignore_unavailable", "allow_no_indices", "expand_wildcards", "allow_partial_search_results",
	};
	const char *k;
	json_t *c;
	size_t saved;

	if (!json_is_object(h))
		return dsl_fail(w, "an msearch header must be a JSON object");
	json_object_foreach (h, k, c) {
		saved = dsl_push(w, k);
		if (!dsl_in((char *const *)(uintptr_t)keys, DSL_NELEM(keys), k))
			return dsl_fail_key(w, "unknown or forbidden key ", k, "");
		if (!dsl_scalar(c) && strcmp(k, "index") != 0)
			return dsl_fail_key(w, "", k, " must be a scalar");
		if (strcmp(k, "index") == 0) {
			if (url_index == NULL)
				return dsl_fail(w, "index is not allowed in an msearch header here");
			if (!json_is_string(c) || strcmp(json_string_value(c), url_index) != 0)
				return dsl_fail(w, "index must be absent or the URL's index");
		}
		if (strcmp(k, "expand_wildcards") == 0 &&
		    (!json_is_string(c) || !dsl_expand_wildcards_ok(json_string_value(c))))
			return dsl_fail(w, "expand_wildcards must not include hidden or all");
		dsl_pop(w, saved);
	}
	return 0;
}

/* Appends J, compact, and a '\n' if NL, to the growing *BUF. */
static int
dsl_emit(json_t *j, char **buf, size_t *len, int nl)
{
	char *s, *nb;
	size_t n;

	if ((s = json_dumps(j, JSON_COMPACT)) == NULL)
		return -1;
	n = strlen(s);
	if ((nb = realloc(*buf, *len + n + 2)) == NULL) {
		free(s);
		return -1;
	}
	memcpy(nb + *len, s, n);
	*len += n;
	if (nl)
		nb[(*len)++] = '\n';
	nb[*len] = '\0';
	*buf = nb;
	free(s);
	return 0;
}

static json_t *
dsl_parse(struct dsl_walk *w, const char *s, size_t len)
{
	json_error_t jerr;
	json_t *j;

	/* duplicate keys: the upstream might take the other one */
	if ((j = json_loadb(s, len, JSON_REJECT_DUPLICATES, &jerr)) == NULL) {
		char t[DSL_KEY_SHOWN + 1];

		dsl_clean(t, sizeof(t), jerr.text);
		dsl_fail(w, "invalid JSON: %s", t);
	}
	return j;
}

int
dsl_blank(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
			return 0;
	return 1;
}

static int
dsl_msearch(struct dsl_walk *w, const char *body, size_t len, const char *url_index, char **out, size_t *outlen)
{
	const char *line = body, *end = body + len, *nl;
	size_t lineno = 0, llen, pairs = 0;
	int header = 1;
	json_t *j;

	while (line < end) {
		nl = memchr(line, '\n', (size_t)(end - line));
		llen = nl != NULL ? (size_t)(nl - line) : (size_t)(end - line);
		lineno++;
		if (!dsl_blank(line, llen)) {
			w->plen = w->base = (size_t)snprintf(w->path, sizeof(w->path), "line %zu: ", lineno);
			if ((j = dsl_parse(w, line, llen)) == NULL)
				return -1;
			if ((header ? dsl_msearch_header(w, j, url_index) : dsl_search(w, j, 0)) != 0 ||
			    dsl_emit(j, out, outlen, 1) != 0) {
				if (w->reason != NULL && w->reasonlen > 0 && w->reason[0] == '\0')
					dsl_fail(w, "out of memory");
				json_decref(j);
				return -1;
			}
			json_decref(j);
			pairs += !header;
			header = !header;
		}
		line += llen + 1;
	}
	w->plen = w->base = 0;
	w->path[0] = '\0';
	if (!header)
		return dsl_fail(w, "msearch header on line %zu has no search body", lineno);
	if (pairs == 0)
		return dsl_fail(w, "empty msearch body");
	return 0;
}

int
dsl_check_body(const struct dsl_policy *p, const char *body, size_t len, int mode, const char *url_index,
               char **out, size_t *outlen, char *reason, size_t reasonlen)
{
	struct dsl_walk w = {.p = p, .reason = reason, .reasonlen = reasonlen};
	json_t *j;
	int rc;

	*out = NULL;
	*outlen = 0;
	if (reason != NULL && reasonlen > 0)
		reason[0] = '\0';
	if (mode == DSL_BODY_MSEARCH) {
		if ((rc = dsl_msearch(&w, body, len, url_index, out, outlen)) != 0) {
			free(*out);
			*out = NULL;
			*outlen = 0;
		}
		return rc;
	}
	if (len == 0 || dsl_blank(body, len))
		j = json_object();
	else if ((j = dsl_parse(&w, body, len)) == NULL)
		return -1;
	if (j == NULL)
		return dsl_fail(&w, "out of memory");
	if (dsl_search(&w, j, mode == DSL_BODY_COUNT) != 0) {
		json_decref(j);
		return -1;
	}
	rc = dsl_emit(j, out, outlen, 0);
	json_decref(j);
	if (rc != 0) {
		free(*out);
		*out = NULL;
		*outlen = 0;
		return dsl_fail(&w, "out of memory");
	}
	return 0;
}

/*
 * Parameters and index expressions.
 */

static int
dsl_reason(char *reason, size_t reasonlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int
dsl_reason(char *reason, size_t reasonlen, const char *fmt, ...)
{
	va_list ap;

	if (reason != NULL && reasonlen > 0) {
		va_start(ap, fmt);
		vsnprintf(reason, reasonlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

static int
dsl_param_uint(const char *v, uint64_t *out)
{
	uint64_t n = 0;

	if (*v == '\0')
		return -1;
	for (; *v != '\0'; v++) {
		if (*v < '0' || *v > '9' || n > (UINT64_MAX - 9) / 10)
			return -1;
		n = n * 10 + (uint64_t)(*v - '0');
	}
	*out = n;
	return 0;
}

/* Each comma-separated field of V against the allow-list. */
static int
dsl_param_fields(const struct dsl_policy *p, const char *name, const char *v, char *reason, size_t reasonlen)
{
	char f[DSL_KEY_SHOWN + 1], shown[DSL_KEY_SHOWN + 1];
	size_t n;

	if (p->source_fields == NULL)
		return 0;
	for (;;) {
		n = strcspn(v, ",");
		if (n >= sizeof(f))
			return dsl_reason(reason, reasonlen, "%s names a field that is too long", name);
		memcpy(f, v, n);
		f[n] = '\0';
		if (!dsl_field_allowed(p, f)) {
			dsl_clean(shown, sizeof(shown), f);
			return dsl_reason(reason, reasonlen, "field %s is not allowed (in %s)", shown, name);
		}
		if (v[n] == '\0')
			return 0;
		v += n + 1;
	}
}

int
dsl_check_param(const struct dsl_policy *p, const char *name, const char *value, char *reason, size_t reasonlen)
{
	uint64_t n;

	if (strcmp(name, "error_trace") == 0)
		return dsl_reason(reason, reasonlen, "error_trace is not allowed");
	if (strcmp(name, "scroll") == 0 && !p->allow_scroll)
		return dsl_reason(reason, reasonlen, "scroll is not allowed");
	if (strcmp(name, "source") == 0)
		return dsl_reason(reason, reasonlen, "source must be checked as a body");
	if (strcmp(name, "size") == 0 || strcmp(name, "from") == 0 || strcmp(name, "terminate_after") == 0) {
		uint64_t max = name[0] == 's' ? p->max_size : name[0] == 'f' ? p->max_from : UINT32_MAX;

		if (dsl_param_uint(value, &n) != 0)
			return dsl_reason(reason, reasonlen, "%s must be a non-negative integer", name);
		if (n > max)
			return dsl_reason(reason, reasonlen, "%s must be at most %llu", name, (unsigned long long)max);
		return 0;
	}
	if (strcmp(name, "q") == 0 && !dsl_in(p->queries, p->nqueries, "query_string"))
		return dsl_reason(reason, reasonlen, "q is not allowed (query type query_string is not allowed)");
	if (strcmp(name, "explain") == 0 && strcmp(value, "false") != 0)
		return dsl_reason(reason, reasonlen, "explain must be false");
	if (strcmp(name, "expand_wildcards") == 0 && !dsl_expand_wildcards_ok(value))
		return dsl_reason(reason, reasonlen, "expand_wildcards must not include hidden or all");
	if (strcmp(name, "source_content_type") == 0 && strcasecmp(value, "application/json") != 0)
		return dsl_reason(reason, reasonlen, "source_content_type must be application/json");
	if (strcmp(name, "stored_fields") == 0 && strcmp(value, "_none_") != 0)
		return dsl_reason(reason, reasonlen, "stored_fields must be _none_");
	if (strcmp(name, "_source") == 0) {
		if (strcmp(value, "false") == 0)
			return 0;
		if (strcmp(value, "true") == 0 || value[0] == '\0')
			return p->source_fields == NULL
			           ? 0
			           : dsl_reason(reason, reasonlen, "_source must name the fields (fields are restricted)");
		return dsl_param_fields(p, name, value, reason, reasonlen);
	}
	if (strcmp(name, "_source_includes") == 0 || strcmp(name, "docvalue_fields") == 0)
		return dsl_param_fields(p, name, value, reason, reasonlen);
	return 0;
}

int
dsl_check_index_expr(const struct dsl_policy *p, const char *index, char *reason, size_t reasonlen)
{
	char shown[DSL_KEY_SHOWN + 1], part[DSL_KEY_SHOWN + 1];
	const char *s = index;
	size_t n;

	for (;;) {
		n = strcspn(s, ",");
		memcpy(part, s, n < DSL_KEY_SHOWN ? n : DSL_KEY_SHOWN);
		part[n < DSL_KEY_SHOWN ? n : DSL_KEY_SHOWN] = '\0';
		dsl_clean(shown, sizeof(shown), part);
		if (n == 0)
			return dsl_reason(reason, reasonlen, "empty index name");
		/* date math first: "<logs-{now/d{yyyy.MM.dd|+12:00}}>" has a ':' */
		if (s[0] == '<') {
			if (!p->allow_date_math)
				return dsl_reason(reason, reasonlen, "date math is not allowed (in %s)", shown);
		} else if (s[0] == '-') {
			if (!p->allow_exclusions)
				return dsl_reason(reason, reasonlen, "index exclusion is not allowed (in %s)", shown);
		} else if (memchr(s, ':', n) != NULL && !p->allow_remote_indices)
			return dsl_reason(reason, reasonlen, "remote index is not allowed (in %s)", shown);
		if (s[n] == '\0')
			return 0;
		s += n + 1;
	}
}
