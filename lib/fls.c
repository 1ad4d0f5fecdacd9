/*
 * fls.c - field-level rules (see fls.h).
 */
#include "fls.h"
#include "dsl.h"
#include "qwalk.h"

#include <fnmatch.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FLS_FIELD_MAX 255
#define FLS_NELEM(a) (sizeof(a) / sizeof((a)[0]))

static const char *const fls_meta[] = {"_id", "_index", "_score", "_doc", "_shard_doc", "_routing"};

int
fls_active(const struct fls_rules *r)
{
	return r != NULL && (r->nallow > 0 || r->nhide > 0);
}

void
fls_rules_clear(struct fls_rules *r)
{
	for (size_t i = 0; i < r->nallow; i++)
		free(r->allow[i]);
	free(r->allow);
	for (size_t i = 0; i < r->nhide; i++)
		free(r->hide[i]);
	free(r->hide);
	memset(r, 0, sizeof(*r));
}

int
fls_pattern_valid(const char *s)
{
	size_t len = strlen(s);

	if (len == 0 || len > FLS_FIELD_MAX || strcmp(s, "*") == 0)
		return 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c <= 0x20 || c == 0x7f || c == ',' || c == '"' || c == '\\' || c == '?' || c == '[' || c == ']' ||
		    c == '^')
			return 0;
	}
	return 1;
}

static int fls_fail(char *reason, size_t reasonlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int
fls_fail(char *reason, size_t reasonlen, const char *fmt, ...)
{
	va_list ap;

	if (reason != NULL && reasonlen > 0) {
		va_start(ap, fmt);
		vsnprintf(reason, reasonlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

/* 1 if entry E covers field F: F matches it, or is under a field it matches. */
static int
fls_covers(const char *e, const char *f)
{
	char sub[FLS_FIELD_MAX + 3];

	if (fnmatch(e, f, FNM_NOESCAPE) == 0)
		return 1;
	snprintf(sub, sizeof(sub), "%s.*", e);
	return fnmatch(sub, f, FNM_NOESCAPE) == 0;
}

/* A concrete (wildcard-free) field name F. */
static int
fls_concrete_visible(const struct fls_rules *r, const char *f)
{
	size_t flen = strlen(f), i;

	for (i = 0; i < FLS_NELEM(fls_meta); i++)
		if (strcmp(f, fls_meta[i]) == 0)
			return 1;
	if (flen == 0 || flen > FLS_FIELD_MAX)
		return 0;
	if (r->nallow > 0) {
		for (i = 0; i < r->nallow; i++)
			if (fls_covers(r->allow[i], f))
				break;
		if (i == r->nallow)
			return 0;
	}
	for (i = 0; i < r->nhide; i++) {
		/* hidden, under a hidden field, or an object holding one */
		if (fls_covers(r->hide[i], f) ||
		    (strncmp(r->hide[i], f, flen) == 0 && (r->hide[i][flen] == '.' || r->hide[i][flen] == '*')))
			return 0;
	}
	return 1;
}

int
fls_field_visible(const struct fls_rules *r, const char *name, size_t len)
{
	char f[FLS_FIELD_MAX + 1];
	const char *caret = memchr(name, '^', len);

	if (caret != NULL)
		len = (size_t)(caret - name); /* "title^2": a boost */
	if (!fls_active(r))
		return 1;
	if (len == 0 || len > FLS_FIELD_MAX || memchr(name, '\0', len) != NULL)
		return 0;
	memcpy(f, name, len);
	f[len] = '\0';
	if (strchr(f, '*') != NULL) {
		if (r->nhide > 0 || r->nallow == 0)
			return 0;
		for (size_t i = 0; i < r->nallow; i++)
			if (strcmp(r->allow[i], f) == 0)
				return 1;
		return 0;
	}
	return fls_concrete_visible(r, f);
}

/* A nested "path": an object field; fine if not hidden and, with an
 * allow list, if some allowed field lies under it. */
static int
fls_path_visible(const struct fls_rules *r, const char *p)
{
	size_t plen = strlen(p);

	if (strchr(p, '*') != NULL || plen == 0)
		return 0;
	for (size_t i = 0; i < r->nhide; i++)
		if (fls_covers(r->hide[i], p))
			return 0;
	if (r->nallow == 0)
		return 1;
	for (size_t i = 0; i < r->nallow; i++)
		if (fls_covers(r->allow[i], p) || (strncmp(r->allow[i], p, plen) == 0 && r->allow[i][plen] == '.'))
			return 1;
	return 0;
}

struct fls_walk {
	const struct fls_rules *r;
};

static int
fls_name(struct qwalk *w, const char *name)
{
	const struct fls_rules *r = ((struct fls_walk *)w->arg)->r;

	if (fls_field_visible(r, name, strlen(name)))
		return 0;
	return qwalk_fail(w, "field \"%.64s\" is not allowed", name);
}

/* A string field name, or a list of them, at KEY of OBJ (absent is fine
 * unless REQUIRED). */
static int
fls_names(struct qwalk *w, json_t *obj, const char *key, int required)
{
	json_t *v = json_object_get(obj, key), *e;
	size_t i;

	if (v == NULL) {
		if (required)
			return qwalk_fail(w, "\"%s\" must list the fields under field rules", key);
		return 0;
	}
	if (json_is_string(v))
		return fls_name(w, json_string_value(v));
	if (!json_is_array(v) || (required && json_array_size(v) == 0))
		return qwalk_fail(w, "\"%s\" must list the fields under field rules", key);
	json_array_foreach (v, i, e) {
		if (!json_is_string(e))
			return qwalk_fail(w, "\"%s\" must list field names", key);
		if (fls_name(w, json_string_value(e)) != 0)
			return -1;
	}
	return 0;
}

/* Keys of a leaf query's body that are options, not fields. */
static const char *const fls_leaf_options[] = {
    "boost", "_name", "ignore_unmapped", "validation_method", "distance", "distance_type", "type"};

static int
fls_keys_are_fields(struct qwalk *w, json_t *body, const char *const *skip, size_t nskip)
{
	const char *k;
	json_t *v;

	if (!json_is_object(body))
		return qwalk_fail(w, "malformed query");
	json_object_foreach (body, k, v) {
		size_t i;

		for (i = 0; i < nskip; i++)
			if (strcmp(k, skip[i]) == 0)
				break;
		if (i == nskip && fls_name(w, k) != 0)
			return -1;
	}
	return 0;
}

static const char *const fls_q_keyed[] = {
    "match",
    "match_phrase",
    "match_phrase_prefix",
    "match_bool_prefix",
    "term",
    "terms",
    "prefix",
    "wildcard",
    "regexp",
    "fuzzy",
    "range",
    "span_term",
    "intervals",
    "geo_distance",
    "geo_bounding_box",
    "geo_polygon",
    "geo_grid",
    "geo_shape",
    "shape",
    "text_expansion",
    "weighted_tokens",
};
static const char *const fls_q_field[] = {"exists",        "rank_feature", "distance_feature", "knn",
                                          "sparse_vector", "semantic",     "percolate"};
static const char *const fls_q_fields[] = {"multi_match", "simple_query_string", "combined_fields", "more_like_this"};
static const char *const fls_q_none[] = {"match_all", "match_none", "ids",  "bool",      "constant_score", "dis_max",
                                         "boosting",  "pinned",     "rule", "has_child", "has_parent"};

static int
fls_in(const char *s, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(s, list[i]) == 0)
			return 1;
	return 0;
}

/* function_score's functions: field_value_factor, random_score and the
 * decay functions name fields. */
static int
fls_functions(struct qwalk *w, json_t *body)
{
	static const char *const decay_skip[] = {"multi_value_mode"};
	json_t *fns = json_object_get(body, "functions"), *fn, *v;
	const char *k;
	size_t i;

	if (fns == NULL) {
		fns = json_array();
		json_array_append(fns, body); /* the single-function form */
	} else
		json_incref(fns);
	json_array_foreach (fns, i, fn) {
		if (!json_is_object(fn))
			continue;
		json_object_foreach (fn, k, v) {
			int rc = 0;

			if (strcmp(k, "field_value_factor") == 0 || strcmp(k, "random_score") == 0)
				rc = json_is_object(v) ? fls_names(w, v, "field", 0) : 0;
			else if (strcmp(k, "gauss") == 0 || strcmp(k, "linear") == 0 || strcmp(k, "exp") == 0)
				rc = fls_keys_are_fields(w, v, decay_skip, FLS_NELEM(decay_skip));
			else if (strcmp(k, "script_score") == 0)
				rc = qwalk_fail(w, "scripts are not allowed under field rules");
			if (rc != 0) {
				json_decref(fns);
				return -1;
			}
		}
	}
	json_decref(fns);
	return 0;
}

static int
fls_on_query(struct qwalk *w, const char *type, json_t *body)
{
	const struct fls_rules *r = ((struct fls_walk *)w->arg)->r;

	if (json_is_object(body) && json_object_get(body, "inner_hits") != NULL)
		return qwalk_fail(w, "inner_hits is not allowed under field rules");
	if (fls_in(type, fls_q_keyed, FLS_NELEM(fls_q_keyed)))
		return fls_keys_are_fields(w, body, fls_leaf_options, FLS_NELEM(fls_leaf_options));
	if (fls_in(type, fls_q_field, FLS_NELEM(fls_q_field)))
		return json_is_object(body) ? fls_names(w, body, "field", 1) : qwalk_fail(w, "malformed query");
	if (fls_in(type, fls_q_fields, FLS_NELEM(fls_q_fields))) {
		/* without "fields" these search index.query.default_field: every field */
		if (!json_is_object(body))
			return qwalk_fail(w, "malformed query");
		return fls_names(w, body, "fields", 1);
	}
	if (strcmp(type, "terms_set") == 0) {
		const char *k;
		json_t *v;

		if (!json_is_object(body))
			return qwalk_fail(w, "malformed query");
		json_object_foreach (body, k, v) {
			if (fls_in(k, fls_leaf_options, FLS_NELEM(fls_leaf_options)))
				continue;
			if (fls_name(w, k) != 0 ||
			    (json_is_object(v) && fls_names(w, v, "minimum_should_match_field", 0) != 0))
				return -1;
		}
		return 0;
	}
	if (strcmp(type, "nested") == 0) {
		const char *p = json_string_value(json_object_get(body, "path"));

		if (p == NULL || !fls_path_visible(r, p))
			return qwalk_fail(w, "nested path \"%.64s\" is not allowed", p != NULL ? p : "");
		return 0;
	}
	if (strcmp(type, "function_score") == 0)
		return json_is_object(body) ? fls_functions(w, body) : qwalk_fail(w, "malformed query");
	if (fls_in(type, fls_q_none, FLS_NELEM(fls_q_none)))
		return 0;
	return qwalk_fail(w, "query type %.64s is not allowed under field rules", type);
}

/* A sort: "field", {"field": "asc"|{...}}, "_geo_distance", or a list. */
static int
fls_sort_one(struct qwalk *w, json_t *s)
{
	static const char *const geo_opts[] = {"order",           "unit",   "mode", "distance_type",
	                                       "ignore_unmapped", "nested", "_name"};
	const struct fls_rules *r = ((struct fls_walk *)w->arg)->r;
	const char *k;
	json_t *v, *nested;

	if (json_is_string(s))
		return fls_name(w, json_string_value(s));
	if (!json_is_object(s))
		return qwalk_fail(w, "malformed sort");
	json_object_foreach (s, k, v) {
		if (strcmp(k, "_script") == 0)
			return qwalk_fail(w, "scripts are not allowed under field rules");
		if (strcmp(k, "_geo_distance") == 0) {
			if (fls_keys_are_fields(w, v, geo_opts, FLS_NELEM(geo_opts)) != 0)
				return -1;
		} else if (fls_name(w, k) != 0)
			return -1;
		for (nested = json_object_get(v, "nested"); json_is_object(nested);
		     nested = json_object_get(nested, "nested")) {
			const char *p = json_string_value(json_object_get(nested, "path"));

			if (p != NULL && !fls_path_visible(r, p))
				return qwalk_fail(w, "nested path \"%.64s\" is not allowed", p);
		}
	}
	return 0;
}

static int
fls_sort(struct qwalk *w, json_t *s)
{
	json_t *e;
	size_t i;

	if (!json_is_array(s))
		return fls_sort_one(w, s);
	json_array_foreach (s, i, e)
		if (fls_sort_one(w, e) != 0)
			return -1;
	return 0;
}

/* "fields" and "docvalue_fields": names or {"field": name, ...}. */
static int
fls_field_list(struct qwalk *w, json_t *v)
{
	json_t *e;
	size_t i;

	if (json_is_string(v))
		return fls_name(w, json_string_value(v));
	if (!json_is_array(v))
		return qwalk_fail(w, "malformed field list");
	json_array_foreach (v, i, e) {
		if (json_is_object(e)) {
			if (fls_names(w, e, "field", 1) != 0)
				return -1;
		} else if (!json_is_string(e) || fls_name(w, json_string_value(e)) != 0)
			return json_is_string(e) ? -1 : qwalk_fail(w, "malformed field list");
	}
	return 0;
}

static int
fls_stored_fields(struct qwalk *w, json_t *v)
{
	json_t *e;
	size_t i;

	if (json_is_string(v))
		return strcmp(json_string_value(v), "_none_") == 0 ? 0 : fls_name(w, json_string_value(v));
	json_array_foreach (v, i, e)
		if (!json_is_string(e) ||
		    (strcmp(json_string_value(e), "_none_") != 0 && fls_name(w, json_string_value(e)) != 0))
			return -1;
	return json_is_array(v) ? 0 : qwalk_fail(w, "malformed stored_fields");
}

static int
fls_highlight(struct qwalk *w, json_t *hl)
{
	json_t *fields = json_object_get(hl, "fields"), *f, *o;
	const char *k;
	size_t i;

	if (!json_is_object(hl))
		return qwalk_fail(w, "malformed highlight");
	if (json_is_object(fields)) {
		json_object_foreach (fields, k, f)
			if (fls_name(w, k) != 0 || (json_is_object(f) && fls_names(w, f, "matched_fields", 0) != 0))
				return -1;
	} else if (json_is_array(fields)) {
		json_array_foreach (fields, i, o) {
			if (!json_is_object(o))
				return qwalk_fail(w, "malformed highlight");
			json_object_foreach (o, k, f)
				if (fls_name(w, k) != 0 ||
				    (json_is_object(f) && fls_names(w, f, "matched_fields", 0) != 0))
					return -1;
		}
	} else if (fields != NULL)
		return qwalk_fail(w, "malformed highlight");
	return 0;
}

/* A list (one string, or an array of strings) as a new array of copies,
 * every element visible; NULL after qwalk_fail. */
static json_t *
fls_visible_list(struct qwalk *w, json_t *v)
{
	json_t *out = json_array(), *e;
	size_t i;

	if (out == NULL)
		return NULL;
	if (json_is_string(v)) {
		if (fls_name(w, json_string_value(v)) != 0) {
			json_decref(out);
			return NULL;
		}
		json_array_append(out, v);
		return out;
	}
	if (!json_is_array(v)) {
		json_decref(out);
		qwalk_fail(w, "malformed _source");
		return NULL;
	}
	json_array_foreach (v, i, e) {
		if (!json_is_string(e) || fls_name(w, json_string_value(e)) != 0) {
			if (!json_is_string(e))
				qwalk_fail(w, "malformed _source");
			json_decref(out);
			return NULL;
		}
		json_array_append(out, e);
	}
	return out;
}

static json_t *
fls_strings(char *const *list, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; a != NULL && i < n; i++)
		json_array_append_new(a, json_string(list[i]));
	return a;
}

/* OBJ's "_source" rewritten to the rules: false stays false; otherwise
 * the includes asked for (each visible) or the allow list, and the hidden
 * fields added to the excludes. */
static int
fls_source(struct qwalk *w, json_t *obj)
{
	const struct fls_rules *r = ((struct fls_walk *)w->arg)->r;
	json_t *src = json_object_get(obj, "_source"), *inc = NULL, *exc = NULL, *v, *out;
	long old;

	if (json_is_false(src))
		return 0;
	if ((old = qwalk_push(w, "_source")) < 0)
		return qwalk_fail(w, "path too long");
	if (json_is_object(src)) {
		const char *k;

		json_object_foreach (src, k, v) {
			if (strcmp(k, "includes") == 0 || strcmp(k, "include") == 0) {
				json_decref(inc);
				if ((inc = fls_visible_list(w, v)) == NULL)
					goto fail;
			} else if (strcmp(k, "excludes") == 0 || strcmp(k, "exclude") == 0) {
				json_decref(exc);
				exc = json_is_string(v) ? json_pack("[O]", v) : json_is_array(v) ? json_copy(v) : NULL;
				if (exc == NULL) {
					qwalk_fail(w, "malformed _source");
					goto fail;
				}
			} else {
				qwalk_fail(w, "malformed _source");
				goto fail;
			}
		}
	} else if (json_is_string(src) || json_is_array(src)) {
		if ((inc = fls_visible_list(w, src)) == NULL)
			goto fail;
	} else if (src != NULL && !json_is_true(src)) {
		qwalk_fail(w, "malformed _source");
		goto fail;
	}
	if ((inc == NULL || json_array_size(inc) == 0) && r->nallow > 0) {
		json_decref(inc);
		inc = fls_strings(r->allow, r->nallow);
	}
	/* the hidden fields added to the excludes, once: the rewrite is a
	 * fixed point, applied twice it changes nothing more */
	if (r->nhide > 0 && exc == NULL && (exc = json_array()) == NULL)
		goto fail;
	for (size_t i = 0; i < r->nhide; i++) {
		size_t k;

		json_array_foreach (exc, k, v)
			if (json_is_string(v) && strcmp(json_string_value(v), r->hide[i]) == 0)
				break;
		if (k == json_array_size(exc))
			json_array_append_new(exc, json_string(r->hide[i]));
	}
	if ((out = json_object()) == NULL)
		goto fail;
	if (inc != NULL && json_array_size(inc) > 0)
		json_object_set(out, "includes", inc);
	if (exc != NULL && json_array_size(exc) > 0)
		json_object_set(out, "excludes", exc);
	json_object_set_new(obj, "_source", out);
	json_decref(inc);
	json_decref(exc);
	qwalk_pop(w, old);
	return 0;
fail:
	json_decref(inc);
	json_decref(exc);
	return -1;
}

/* The field-naming keys shared by a search body and a top_hits
 * aggregation: sort, fields, docvalue_fields, stored_fields, highlight,
 * then _source rewritten. */
static int
fls_hits_options(struct qwalk *w, json_t *obj)
{
	static const struct {
		const char *key;
		int (*fn)(struct qwalk *, json_t *);
	} opts[] = {
	    {"sort", fls_sort},
	    {"fields", fls_field_list},
	    {"docvalue_fields", fls_field_list},
	    {"stored_fields", fls_stored_fields},
	    {"highlight", fls_highlight},
	};
	json_t *v;

	if (json_object_get(obj, "script_fields") != NULL)
		return qwalk_fail(w, "script_fields is not allowed under field rules");
	for (size_t i = 0; i < FLS_NELEM(opts); i++) {
		long old;

		if ((v = json_object_get(obj, opts[i].key)) == NULL)
			continue;
		if ((old = qwalk_push(w, opts[i].key)) < 0 || opts[i].fn(w, v) != 0)
			return old < 0 ? qwalk_fail(w, "path too long") : -1;
		qwalk_pop(w, old);
	}
	return fls_source(w, obj);
}

static const char *const fls_agg_field[] = {
    "terms",
    "significant_terms",
    "significant_text",
    "rare_terms",
    "histogram",
    "date_histogram",
    "auto_date_histogram",
    "variable_width_histogram",
    "range",
    "date_range",
    "ip_range",
    "avg",
    "sum",
    "min",
    "max",
    "value_count",
    "cardinality",
    "missing",
    "stats",
    "extended_stats",
    "percentiles",
    "percentile_ranks",
    "median_absolute_deviation",
    "boxplot",
    "string_stats",
    "geo_bounds",
    "geo_centroid",
    "geohash_grid",
    "geotile_grid",
    "geohex_grid",
    "diversified_sampler",
    "rate",
};
static const char *const fls_agg_none[] = {
    "filter",
    "filters",
    "adjacency_matrix",
    "sampler",
    "global",
    "avg_bucket",
    "sum_bucket",
    "min_bucket",
    "max_bucket",
    "stats_bucket",
    "extended_stats_bucket",
    "percentiles_bucket",
    "derivative",
    "cumulative_sum",
    "serial_diff",
    "bucket_sort",
    "cumulative_cardinality",
    "normalize",
    "children",
    "parent",
};

static int
fls_on_agg(struct qwalk *w, const char *type, json_t *body)
{
	const struct fls_rules *r = ((struct fls_walk *)w->arg)->r;
	json_t *v, *e;
	size_t i;

	if (!json_is_object(body))
		return qwalk_fail(w, "malformed aggregation");
	if (fls_in(type, fls_agg_field, FLS_NELEM(fls_agg_field))) {
		if (fls_names(w, body, "field", 0) != 0)
			return -1;
		return strcmp(type, "significant_text") == 0 ? fls_names(w, body, "source_fields", 0) : 0;
	}
	if (fls_in(type, fls_agg_none, FLS_NELEM(fls_agg_none)))
		return 0;
	if (strcmp(type, "nested") == 0 || strcmp(type, "reverse_nested") == 0) {
		const char *p = json_string_value(json_object_get(body, "path"));

		if (p == NULL ? strcmp(type, "nested") == 0 : !fls_path_visible(r, p))
			return qwalk_fail(w, "nested path \"%.64s\" is not allowed", p != NULL ? p : "");
		return 0;
	}
	if (strcmp(type, "multi_terms") == 0) {
		json_array_foreach (json_object_get(body, "terms"), i, e)
			if (!json_is_object(e) || fls_names(w, e, "field", 1) != 0)
				return json_is_object(e) ? -1 : qwalk_fail(w, "malformed aggregation");
		return 0;
	}
	if (strcmp(type, "composite") == 0) {
		json_array_foreach (json_object_get(body, "sources"), i, e) {
			const char *k;
			json_t *src, *inner;

			if (!json_is_object(e))
				return qwalk_fail(w, "malformed aggregation");
			json_object_foreach (e, k, src) {
				if (!json_is_object(src) || json_object_size(src) != 1)
					return qwalk_fail(w, "malformed aggregation");
				inner = json_object_iter_value(json_object_iter(src));
				if (!json_is_object(inner) || fls_names(w, inner, "field", 1) != 0)
					return json_is_object(inner) ? -1 : qwalk_fail(w, "malformed aggregation");
			}
		}
		return 0;
	}
	if (strcmp(type, "weighted_avg") == 0) {
		for (int k = 0; k < 2; k++)
			if ((v = json_object_get(body, k == 0 ? "value" : "weight")) == NULL || !json_is_object(v) ||
			    fls_names(w, v, "field", 1) != 0)
				return v != NULL && json_is_object(v) ? -1 : qwalk_fail(w, "malformed aggregation");
		return 0;
	}
	if (strcmp(type, "top_metrics") == 0) {
		v = json_object_get(body, "metrics");
		if (json_is_object(v) && fls_names(w, v, "field", 1) != 0)
			return -1;
		json_array_foreach (v, i, e)
			if (!json_is_object(e) || fls_names(w, e, "field", 1) != 0)
				return json_is_object(e) ? -1 : qwalk_fail(w, "malformed aggregation");
		return (v = json_object_get(body, "sort")) != NULL ? fls_sort(w, v) : 0;
	}
	if (strcmp(type, "top_hits") == 0)
		return fls_hits_options(w, body);
	return qwalk_fail(w, "aggregation type %.64s is not allowed under field rules", type);
}

static int
fls_knn_one(struct qwalk *w, json_t *k)
{
	if (!json_is_object(k))
		return qwalk_fail(w, "malformed knn");
	if (json_object_get(k, "inner_hits") != NULL)
		return qwalk_fail(w, "inner_hits is not allowed under field rules");
	return fls_names(w, k, "field", 1);
}

int
fls_apply(const struct fls_rules *r, json_t *body, int mode, char *reason, size_t reasonlen)
{
	struct fls_walk fw = {.r = r};
	struct qwalk w;
	json_t *v, *e;
	size_t i;

	if (!fls_active(r))
		return 0;
	if (!json_is_object(body))
		return fls_fail(reason, reasonlen, "the body must be a JSON object");
	qwalk_init(&w, fls_on_query, fls_on_agg, &fw, reason, reasonlen);
	if (json_object_get(body, "suggest") != NULL)
		return fls_fail(reason, reasonlen, "suggest is not allowed under field rules");
	if (json_object_get(body, "runtime_mappings") != NULL)
		return fls_fail(reason, reasonlen, "runtime_mappings is not allowed under field rules");
	if (json_object_get(body, "collapse") != NULL) {
		/* collapse.field is a field; its inner_hits return sources */
		v = json_object_get(body, "collapse");
		if (!json_is_object(v) || json_object_get(v, "inner_hits") != NULL)
			return fls_fail(reason, reasonlen, "collapse with inner_hits is not allowed under field rules");
		qwalk_push(&w, "collapse");
		if (fls_names(&w, v, "field", 1) != 0)
			return -1;
		qwalk_pop(&w, 0);
	}
	if ((v = json_object_get(body, "knn")) != NULL) {
		qwalk_push(&w, "knn");
		if (json_is_array(v)) {
			json_array_foreach (v, i, e)
				if (fls_knn_one(&w, e) != 0)
					return -1;
		} else if (fls_knn_one(&w, v) != 0)
			return -1;
		qwalk_pop(&w, 0);
	}
	if (qwalk_body(&w, body) != 0)
		return -1;
	if (mode == DSL_BODY_COUNT)
		return 0;
	return fls_hits_options(&w, body);
}

int
fls_apply_text(const struct fls_rules *r, const char *body, size_t len, int mode, char **out, size_t *outlen,
               char *reason, size_t reasonlen)
{
	const char *p = body, *end = body + len;
	char *buf = NULL, *d, *q;
	size_t blen = 0, lineno = 0;

	*out = NULL;
	*outlen = 0;
	while (p < end || (lineno == 0 && mode != DSL_BODY_MSEARCH)) {
		const char *nl = mode == DSL_BODY_MSEARCH ? memchr(p, '\n', (size_t)(end - p)) : NULL;
		size_t n = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p), dlen;
		json_t *j;

		if (mode == DSL_BODY_MSEARCH && n > 0 && p[n - 1] == '\r')
			n--;
		if (mode == DSL_BODY_MSEARCH && n == 0) {
			p = nl != NULL ? nl + 1 : end;
			continue;
		}
		lineno++;
		j = n == 0 ? json_object() : json_loadb(p, n, JSON_REJECT_DUPLICATES, NULL);
		if (j == NULL || !json_is_object(j)) {
			json_decref(j);
			free(buf);
			return fls_fail(reason, reasonlen, "the body is not a JSON object");
		}
		/* an _msearch header is written again as it is */
		if (!(mode == DSL_BODY_MSEARCH && lineno % 2 == 1) &&
		    fls_apply(r, j, mode == DSL_BODY_MSEARCH ? DSL_BODY_SEARCH : mode, reason, reasonlen) != 0) {
			json_decref(j);
			free(buf);
			return -1;
		}
		d = json_dumps(j, JSON_COMPACT);
		json_decref(j);
		if (d == NULL || (q = realloc(buf, blen + (dlen = strlen(d)) + 2)) == NULL) {
			free(d);
			free(buf);
			return fls_fail(reason, reasonlen, "out of memory");
		}
		buf = q;
		memcpy(buf + blen, d, dlen);
		blen += dlen;
		if (mode == DSL_BODY_MSEARCH)
			buf[blen++] = '\n';
		buf[blen] = '\0';
		free(d);
		p = nl != NULL ? nl + 1 : end;
	}
	if (mode == DSL_BODY_MSEARCH && (lineno == 0 || lineno % 2 != 0)) {
		free(buf);
		return fls_fail(reason, reasonlen, "an _msearch body must be header and body lines in pairs");
	}
	*out = buf;
	*outlen = blen;
	return 0;
}

/* Each comma-separated entry of V (sort entries may end in ":order"). */
static int
fls_param_list(const struct fls_rules *r, const char *name, const char *v, int sort, char *reason, size_t reasonlen)
{
	const char *p = v;

	while (*p != '\0') {
		size_t n = strcspn(p, ","), f = n;

		if (sort) {
			const char *colon = memchr(p, ':', n);

			if (colon != NULL)
				f = (size_t)(colon - p);
		}
		if (!(sort == 0 && n == 6 && memcmp(p, "_none_", 6) == 0) && !fls_field_visible(r, p, f))
			return fls_fail(reason, reasonlen, "field \"%.*s\" is not allowed (at parameter %s)",
			                (int)(f > 64 ? 64 : f), p, name);
		p += n;
		if (*p == ',')
			p++;
	}
	return 0;
}

int
fls_check_param(const struct fls_rules *r, const char *name, const char *value, char *reason, size_t reasonlen)
{
	if (!fls_active(r))
		return 0;
	if (strcmp(name, "_source") == 0 || strcmp(name, "_source_includes") == 0 ||
	    strcmp(name, "_source_excludes") == 0 || strcmp(name, "q") == 0 || strcmp(name, "df") == 0 ||
	    strncmp(name, "suggest_", 8) == 0)
		return fls_fail(reason, reasonlen, "parameter %.32s is not allowed under field rules", name);
	if (strcmp(name, "sort") == 0)
		return fls_param_list(r, name, value, 1, reason, reasonlen);
	if (strcmp(name, "stored_fields") == 0 || strcmp(name, "docvalue_fields") == 0)
		return fls_param_list(r, name, value, 0, reason, reasonlen);
	return 0;
}
