/*
 * dls.c - document-level security (see dls.h): filter templates, the
 * filter AND-ed into search and count bodies, and the constructs refused
 * under a filter.
 */
#include "dls.h"
#include "dsl.h"
#include "qwalk.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DLS_PLACEHOLDER_MAX 256 /* bytes between {{ and }} */
#define DLS_STRING_MAX 4096     /* bytes of a string after substitution */

static void dls_reason(char *reason, size_t reasonlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
dls_reason(char *reason, size_t reasonlen, const char *fmt, ...)
{
	va_list ap;

	if (reason == NULL || reasonlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(reason, reasonlen, fmt, ap);
	va_end(ap);
}

/*
 * Templates.
 */

/* 1 if NAME (LEN bytes) is "principal" or "claims." and a path. */
static int
dls_placeholder_valid(const char *name, size_t len)
{
	if (len == 9 && memcmp(name, "principal", 9) == 0)
		return 1;
	if (len <= 7 || memcmp(name, "claims.", 7) != 0)
		return 0;
	for (size_t i = 7; i < len; i++) {
		unsigned char c = (unsigned char)name[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
		      c == '-' || c == ':' || c == '/' || c == '.'))
			return 0;
		if (c == '.' && (i == 7 || i == len - 1 || name[i - 1] == '.'))
			return 0; /* empty path segment */
	}
	return 1;
}

int
dls_placeholders_check(const char *s, char *err, size_t errlen)
{
	const char *p = s, *open, *close;

	while ((open = strstr(p, "{{")) != NULL) {
		if ((close = strstr(open + 2, "}}")) == NULL) {
			dls_reason(err, errlen, "\"{{\" without \"}}\"");
			return -1;
		}
		if ((size_t)(close - open - 2) > DLS_PLACEHOLDER_MAX ||
		    !dls_placeholder_valid(open + 2, (size_t)(close - open - 2))) {
			dls_reason(err, errlen, "unknown placeholder \"%.*s\" (use {{principal}} or {{claims.NAME}})",
			           (int)((size_t)(close - open + 2) > 80 ? 80 : (size_t)(close - open + 2)), open);
			return -1;
		}
		p = close + 2;
	}
	if (strstr(p, "}}") != NULL) {
		dls_reason(err, errlen, "\"}}\" without \"{{\"");
		return -1;
	}
	return 0;
}

int
dls_template_check(const json_t *t, char *err, size_t errlen)
{
	const char *key;
	json_t *v;
	size_t i;

	if (json_is_string(t))
		return dls_placeholders_check(json_string_value(t), err, errlen);
	if (json_is_array(t)) {
		json_array_foreach (t, i, v)
			if (dls_template_check(v, err, errlen) != 0)
				return -1;
	} else if (json_is_object(t)) {
		json_object_foreach ((json_t *)(uintptr_t)t, key, v) {
			if (strstr(key, "{{") != NULL || strstr(key, "}}") != NULL) {
				dls_reason(err, errlen,
				           "a key may not hold a placeholder (a token must not choose a field)");
				return -1;
			}
			if (dls_template_check(v, err, errlen) != 0)
				return -1;
		}
	}
	return 0;
}

/* The claim at PATH (LEN bytes, dotted) in CLAIMS: a member named by the
 * whole rest of the path wins (namespaced claims such as
 * "https://example.com/tenant" hold dots), else the first segment is
 * entered. */
static const json_t *
dls_claim(const json_t *claims, const char *path, size_t len)
{
	char key[DLS_PLACEHOLDER_MAX + 1];
	const json_t *v;
	const char *dot;

	while (claims != NULL && json_is_object(claims)) {
		memcpy(key, path, len);
		key[len] = '\0';
		if ((v = json_object_get(claims, key)) != NULL)
			return v;
		if ((dot = memchr(path, '.', len)) == NULL)
			return NULL;
		key[dot - path] = '\0';
		claims = json_object_get(claims, key);
		len -= (size_t)(dot + 1 - path);
		path = dot + 1;
	}
	return NULL;
}

static int
dls_scalar(const json_t *v)
{
	return json_is_string(v) || json_is_integer(v) || json_is_real(v) || json_is_boolean(v);
}

/* The value of placeholder NAME (LEN bytes): borrowed, or a new string
 * for the principal (*OWNED set). */
static const json_t *
dls_value(const char *name, size_t len, const char *principal, const json_t *claims, json_t **owned, char *reason,
          size_t reasonlen)
{
	const json_t *v;
	const json_t *e;
	size_t i;

	*owned = NULL;
	if (len > DLS_PLACEHOLDER_MAX || len < 7) {
		dls_reason(reason, reasonlen, "malformed placeholder in the document filter");
		return NULL;
	}
	if (len == 9 && memcmp(name, "principal", 9) == 0) {
		if (principal == NULL || (*owned = json_string(principal)) == NULL)
			dls_reason(reason, reasonlen, "the principal has no id for the document filter");
		return *owned;
	}
	if ((v = dls_claim(claims, name + 7, len - 7)) == NULL) {
		dls_reason(reason, reasonlen, "claim \"%.*s\" needed by the document filter is missing",
		           (int)(len - 7 > 64 ? 64 : len - 7), name + 7);
		return NULL;
	}
	if (json_is_array(v) && json_array_size(v) > 0) {
		json_array_foreach (v, i, e)
			if (!dls_scalar(e))
				v = NULL;
	} else if (!dls_scalar(v))
		v = NULL;
	if (v == NULL)
		dls_reason(
		    reason, reasonlen,
		    "claim \"%.*s\" needed by the document filter is not a string, number, boolean or array of them",
		    (int)(len - 7 > 64 ? 64 : len - 7), name + 7);
	return v;
}

/* A scalar's text, for a placeholder among other text. */
static int
dls_text(const json_t *v, char *buf, size_t buflen, const char **out, size_t *outlen)
{
	int n;

	if (json_is_string(v)) {
		*out = json_string_value(v);
		*outlen = json_string_length(v);
		return 0;
	}
	if (json_is_integer(v))
		n = snprintf(buf, buflen, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
	else if (json_is_real(v))
		n = snprintf(buf, buflen, "%.17g", json_real_value(v));
	else if (json_is_boolean(v))
		n = snprintf(buf, buflen, "%s", json_is_true(v) ? "true" : "false");
	else
		return -1;
	if (n < 0 || (size_t)n >= buflen)
		return -1;
	*out = buf;
	*outlen = (size_t)n;
	return 0;
}

static json_t *
dls_render_string(const json_t *t, const char *principal, const json_t *claims, char *reason, size_t reasonlen)
{
	const char *s = json_string_value(t), *p = s, *open, *close, *piece;
	size_t len = json_string_length(t), plen, olen = 0;
	char *out, num[64];
	json_t *owned, *r;
	const json_t *v;

	if ((open = strstr(s, "{{")) == NULL)
		return json_copy((json_t *)(uintptr_t)t);
	close = strstr(open + 2, "}}");
	if (close == NULL) {
		dls_reason(reason, reasonlen, "malformed placeholder in the document filter");
		return NULL;
	}
	if (open == s && close + 2 == s + len) {
		/* the whole string: the value itself, of its own type */
		if ((v = dls_value(open + 2, (size_t)(close - open - 2), principal, claims, &owned, reason,
		                   reasonlen)) == NULL)
			return NULL;
		r = owned != NULL ? owned : json_deep_copy(v);
		return r;
	}
	if ((out = malloc(DLS_STRING_MAX)) == NULL)
		return NULL;
	while ((open = strstr(p, "{{")) != NULL && (close = strstr(open + 2, "}}")) != NULL) {
		if ((size_t)(open - p) > DLS_STRING_MAX - olen)
			goto toolong;
		memcpy(out + olen, p, (size_t)(open - p));
		olen += (size_t)(open - p);
		if ((v = dls_value(open + 2, (size_t)(close - open - 2), principal, claims, &owned, reason,
		                   reasonlen)) == NULL) {
			free(out);
			return NULL;
		}
		if (dls_text(v, num, sizeof(num), &piece, &plen) != 0) {
			json_decref(owned);
			dls_reason(reason, reasonlen, "an array claim must be a whole string of the document filter");
			free(out);
			return NULL;
		}
		if (plen > DLS_STRING_MAX - olen) {
			json_decref(owned);
			goto toolong;
		}
		memcpy(out + olen, piece, plen);
		olen += plen;
		json_decref(owned);
		p = close + 2;
	}
	plen = strlen(p);
	if (plen > DLS_STRING_MAX - olen)
		goto toolong;
	memcpy(out + olen, p, plen);
	olen += plen;
	/* a claim string may hold a NUL (\u0000): jansson keeps the length */
	r = json_stringn_nocheck(out, olen);
	free(out);
	return r;
toolong:
	free(out);
	dls_reason(reason, reasonlen, "a string of the document filter is too long once filled in");
	return NULL;
}

json_t *
dls_render(const json_t *t, const char *principal, const json_t *claims, char *reason, size_t reasonlen)
{
	const char *key;
	json_t *out, *v, *r;
	size_t i;

	if (json_is_string(t))
		return dls_render_string(t, principal, claims, reason, reasonlen);
	if (json_is_array(t)) {
		if ((out = json_array()) == NULL)
			return NULL;
		json_array_foreach (t, i, v) {
			if ((r = dls_render(v, principal, claims, reason, reasonlen)) == NULL ||
			    json_array_append_new(out, r) != 0) {
				json_decref(out);
				return NULL;
			}
		}
		return out;
	}
	if (json_is_object(t)) {
		if ((out = json_object()) == NULL)
			return NULL;
		json_object_foreach ((json_t *)(uintptr_t)t, key, v) {
			if ((r = dls_render(v, principal, claims, reason, reasonlen)) == NULL ||
			    json_object_set_new(out, key, r) != 0) {
				json_decref(out);
				return NULL;
			}
		}
		return out;
	}
	return json_copy((json_t *)(uintptr_t)t);
}

/*
 * Refusals.
 */

/* Top-level keys of a search body that stay inside the query's scope. */
static const char *const dls_search_keys[] = {
    "query",
    "post_filter",
    "size",
    "from",
    "sort",
    "_source",
    "fields",
    "docvalue_fields",
    "stored_fields",
    "aggs",
    "aggregations",
    "highlight",
    "track_total_hits",
    "track_scores",
    "timeout",
    "search_after",
    "min_score",
    "terminate_after",
    "explain",
    "version",
    "seq_no_primary_term",
    "pit",
    "knn",
    "rescore",
    "indices_boost",
    "slice",
    "stats",
};

/* Why a top-level key is refused, for the ones worth explaining. */
static const char *
dls_key_why(const char *key)
{
	static const struct {
		const char *key, *why;
	} whys[] = {
	    {"suggest", "suggesters read the terms of the whole index"},
	    {"profile", "a profile shows queries rewritten against the whole index"},
	    {"collapse", "collapsing runs inner searches of its own"},
	    {"sub_searches", "it holds queries outside \"query\""},
	    {"retriever", "it holds queries outside \"query\""},
	    {"rank", "it combines searches outside \"query\""},
	    {"runtime_mappings", "runtime fields run scripts over the index"},
	    {"script_fields", "scripts read documents"},
	};

	for (size_t i = 0; i < sizeof(whys) / sizeof(whys[0]); i++)
		if (strcmp(key, whys[i].key) == 0)
			return whys[i].why;
	return "only keys known to stay inside the query are allowed";
}

/* 1 if V (one object or an array of them) names a stored document. */
static int
dls_names_doc(const json_t *v)
{
	const json_t *e;
	size_t i;

	if (json_is_object(v))
		return json_object_get(v, "_id") != NULL || json_object_get(v, "_index") != NULL ||
		       json_object_get(v, "_routing") != NULL;
	json_array_foreach (v, i, e)
		if (dls_names_doc(e))
			return 1;
	return 0;
}

static int
dls_on_query(struct qwalk *w, const char *type, json_t *body)
{
	const char *k;
	json_t *v;

	if (strcmp(type, "has_child") == 0 || strcmp(type, "has_parent") == 0 || strcmp(type, "parent_id") == 0)
		return qwalk_fail(w, "%s is not allowed under a document filter: it matches on documents outside it",
		                  type);
	if (strcmp(type, "wrapper") == 0)
		return qwalk_fail(w, "wrapper is not allowed under a document filter: its query cannot be checked");
	if (!json_is_object(body))
		return 0;
	if (strcmp(type, "terms") == 0) {
		json_object_foreach (body, k, v)
			if (json_is_object(v))
				return qwalk_fail(w,
				                  "a terms lookup is not allowed under a document filter: it reads a "
				                  "document past the filter");
	} else if (strcmp(type, "more_like_this") == 0) {
		if (dls_names_doc(json_object_get(body, "like")) || dls_names_doc(json_object_get(body, "unlike")))
			return qwalk_fail(w, "more_like_this naming stored documents is not allowed under a document "
			                     "filter: it reads them past the filter");
	} else if (strcmp(type, "percolate") == 0) {
		if (json_object_get(body, "id") != NULL || json_object_get(body, "index") != NULL)
			return qwalk_fail(w, "percolate of a stored document is not allowed under a document filter");
	} else if (strcmp(type, "geo_shape") == 0 || strcmp(type, "shape") == 0) {
		json_object_foreach (body, k, v)
			if (json_is_object(v) && json_object_get(v, "indexed_shape") != NULL)
				return qwalk_fail(w, "an indexed shape is not allowed under a document filter");
	}
	return 0;
}

static int
dls_on_agg(struct qwalk *w, const char *type, json_t *body)
{
	const json_t *mdc;

	if (strcmp(type, "global") == 0)
		return qwalk_fail(w,
		                  "a global aggregation is not allowed under a document filter: it ignores the query");
	if (strcmp(type, "significant_terms") == 0 || strcmp(type, "significant_text") == 0)
		return qwalk_fail(w, "%s is not allowed under a document filter: its background is the whole index",
		                  type);
	if (strcmp(type, "children") == 0 || strcmp(type, "parent") == 0)
		return qwalk_fail(w,
		                  "a %s aggregation is not allowed under a document filter: it joins documents "
		                  "outside it",
		                  type);
	if ((strcmp(type, "terms") == 0 || strcmp(type, "multi_terms") == 0) && json_is_object(body) &&
	    (mdc = json_object_get(body, "min_doc_count")) != NULL &&
	    !(json_is_integer(mdc) && json_integer_value(mdc) >= 1))
		return qwalk_fail(w, "min_doc_count must be an integer of at least 1 under a document filter: 0 "
		                     "lists terms of documents outside it");
	return 0;
}

static int
dls_check(json_t *body, int mode, char *reason, size_t reasonlen)
{
	struct qwalk w;
	const char *key;
	json_t *v;

	if (!json_is_object(body)) {
		dls_reason(reason, reasonlen, "the body must be a JSON object");
		return -1;
	}
	json_object_foreach (body, key, v) {
		size_t i, n = sizeof(dls_search_keys) / sizeof(dls_search_keys[0]);

		if (mode == DSL_BODY_COUNT)
			n = 1; /* "query" */
		for (i = 0; i < n; i++)
			if (strcmp(key, dls_search_keys[i]) == 0)
				break;
		if (i == n) {
			dls_reason(reason, reasonlen, "%.64s is not allowed under a document filter: %s", key,
			           dls_key_why(key));
			return -1;
		}
	}
	qwalk_init(&w, dls_on_query, dls_on_agg, NULL, reason, reasonlen);
	return qwalk_body(&w, body);
}

/* FILTER added to KNN's "filter" (absent, one query, or an array). */
static int
dls_knn_add(json_t *knn, const json_t *filter)
{
	json_t *f = json_object_get(knn, "filter"), *list;

	if (f == NULL)
		return json_object_set_new(knn, "filter", json_deep_copy(filter));
	if (json_is_array(f))
		return json_array_append_new(f, json_deep_copy(filter));
	if ((list = json_array()) == NULL || json_array_append(list, f) != 0 ||
	    json_array_append_new(list, json_deep_copy(filter)) != 0) {
		json_decref(list);
		return -1;
	}
	return json_object_set_new(knn, "filter", list);
}

int
dls_apply(json_t *body, int mode, const json_t *filter, char *reason, size_t reasonlen)
{
	json_t *q, *knn, *e, *b, *must, *flt, *wrapped;
	size_t i;

	if (dls_check(body, mode, reason, reasonlen) != 0)
		return -1;
	knn = mode == DSL_BODY_SEARCH ? json_object_get(body, "knn") : NULL;
	if (knn != NULL) {
		if (json_is_array(knn)) {
			json_array_foreach (knn, i, e)
				if (!json_is_object(e) || dls_knn_add(e, filter) != 0)
					goto nomem;
		} else if (!json_is_object(knn) || dls_knn_add(knn, filter) != 0)
			goto nomem;
	}
	q = json_object_get(body, "query");
	if (q == NULL && knn != NULL)
		return 0; /* hits from the knn alone, now filtered */
	if ((wrapped = json_object()) == NULL || (b = json_object()) == NULL) {
		json_decref(wrapped);
		goto nomem;
	}
	json_object_set_new(wrapped, "bool", b);
	if (q != NULL && ((must = json_array()) == NULL || json_array_append(must, q) != 0 ||
	                  json_object_set_new(b, "must", must) != 0)) {
		json_decref(wrapped);
		goto nomem;
	}
	if ((flt = json_array()) == NULL || json_array_append_new(flt, json_deep_copy(filter)) != 0 ||
	    json_object_set_new(b, "filter", flt) != 0 || json_object_set_new(body, "query", wrapped) != 0)
		goto nomem;
	return 0;
nomem:
	dls_reason(reason, reasonlen, "out of memory");
	return -1;
}

/* One JSON line through dls_apply into BUF (appended, then '\n' when NL). */
static int
dls_line(const char *s, size_t len, int mode, const json_t *filter, char **buf, size_t *blen, int nl, char *reason,
         size_t reasonlen)
{
	json_t *j = len == 0 ? json_object() : json_loadb(s, len, JSON_REJECT_DUPLICATES, NULL);
	char *d, *p;
	size_t dlen;

	if (j == NULL) {
		dls_reason(reason, reasonlen, "the body is not JSON");
		return -1;
	}
	if (dls_apply(j, mode, filter, reason, reasonlen) != 0 || (d = json_dumps(j, JSON_COMPACT)) == NULL) {
		json_decref(j);
		return -1;
	}
	json_decref(j);
	dlen = strlen(d);
	if ((p = realloc(*buf, *blen + dlen + 2)) == NULL) {
		free(d);
		dls_reason(reason, reasonlen, "out of memory");
		return -1;
	}
	memcpy(p + *blen, d, dlen);
	*blen += dlen;
	if (nl)
		p[(*blen)++] = '\n';
	p[*blen] = '\0';
	*buf = p;
	free(d);
	return 0;
}

int
dls_apply_text(const char *body, size_t len, int mode, const json_t *filter, char **out, size_t *outlen, char *reason,
               size_t reasonlen)
{
	char *buf = NULL;
	size_t blen = 0, lineno = 0;
	const char *p = body, *end = body + len;

	*out = NULL;
	*outlen = 0;
	if (mode != DSL_BODY_MSEARCH) {
		if (dls_line(body, len, mode, filter, &buf, &blen, 0, reason, reasonlen) != 0)
			return -1;
		*out = buf;
		*outlen = blen;
		return 0;
	}
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
		char r2[DLS_REASON_MAX];

		if (n > 0 && p[n - 1] == '\r')
			n--;
		if (n == 0) {
			p = nl != NULL ? nl + 1 : end;
			continue; /* an empty line, as dsl.c skips them */
		}
		lineno++;
		if (lineno % 2 == 1) {
			/* a header: checked JSON, written again as it is */
			json_t *h = json_loadb(p, n, JSON_REJECT_DUPLICATES, NULL);
			char *d = h != NULL && json_is_object(h) ? json_dumps(h, JSON_COMPACT) : NULL;
			size_t dlen = d != NULL ? strlen(d) : 0;
			char *q = d != NULL ? realloc(buf, blen + dlen + 2) : NULL;

			json_decref(h);
			if (q == NULL) {
				dls_reason(reason, reasonlen,
				           d == NULL ? "an _msearch header is not a JSON object (line %zu)"
				                     : "out of memory",
				           lineno);
				free(d);
				free(buf);
				return -1;
			}
			buf = q;
			memcpy(buf + blen, d, dlen);
			blen += dlen;
			buf[blen++] = '\n';
			buf[blen] = '\0';
			free(d);
		} else if (dls_line(p, n, DSL_BODY_SEARCH, filter, &buf, &blen, 1, r2, sizeof(r2)) != 0) {
			dls_reason(reason, reasonlen, "%s (line %zu)", r2, lineno);
			free(buf);
			return -1;
		}
		p = nl != NULL ? nl + 1 : end;
	}
	if (lineno == 0 || lineno % 2 != 0) {
		dls_reason(reason, reasonlen, "an _msearch body must be header and body lines in pairs");
		free(buf);
		return -1;
	}
	*out = buf;
	*outlen = blen;
	return 0;
}

int
dls_check_param(const char *name, char *reason, size_t reasonlen)
{
	if (strcmp(name, "q") == 0) {
		dls_reason(reason, reasonlen,
		           "q is not allowed under a document filter: it takes the place of the query");
		return -1;
	}
	if (strncmp(name, "suggest_", 8) == 0) {
		dls_reason(reason, reasonlen,
		           "%.32s is not allowed under a document filter: suggesters read the whole "
		           "index",
		           name);
		return -1;
	}
	return 0;
}

json_t *
dls_get_as_search(const char *id, const json_t *filter)
{
	return json_pack("{s:{s:{s:[{s:{s:[s]}},O]}},s:i,s:b,s:b}", "query", "bool", "filter", "ids", "values", id,
	                 filter, "size", 1, "version", 1, "seq_no_primary_term", 1);
}

json_t *
dls_hit_as_get(const json_t *answer)
{
	static const char *const copied[] = {"_index", "_id", "_version", "_seq_no", "_primary_term", "_routing"};
	const json_t *hits = json_object_get(json_object_get(answer, "hits"), "hits"), *hit, *v;
	json_t *out;

	if (!json_is_array(hits) || !json_is_object(hit = json_array_get(hits, 0)) || (out = json_object()) == NULL)
		return NULL;
	for (size_t i = 0; i < sizeof(copied) / sizeof(copied[0]); i++)
		if ((v = json_object_get(hit, copied[i])) != NULL)
			json_object_set(out, copied[i], (json_t *)(uintptr_t)v);
	json_object_set_new(out, "found", json_true());
	if ((v = json_object_get(hit, "_source")) != NULL)
		json_object_set(out, "_source", (json_t *)(uintptr_t)v);
	return out;
}
