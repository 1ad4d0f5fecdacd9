/*
 * qwalk.c - the search-body walker (see qwalk.h).
 */
#include "qwalk.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define QWALK_KEY_SHOWN 64

void
qwalk_init(struct qwalk *w, qwalk_fn *on_query, qwalk_fn *on_agg, void *arg, char *reason, size_t reasonlen)
{
	memset(w, 0, sizeof(*w));
	w->on_query = on_query;
	w->on_agg = on_agg;
	w->arg = arg;
	w->reason = reason;
	w->reasonlen = reasonlen;
}

long
qwalk_push(struct qwalk *w, const char *key)
{
	long old = (long)w->plen;
	size_t klen = strnlen(key, QWALK_KEY_SHOWN);
	size_t need = klen + (w->plen > 0 ? 1 : 0);

	if (w->plen + need >= sizeof(w->path))
		return -1;
	if (w->plen > 0)
		w->path[w->plen++] = '.';
	/* a client's key, cut and with anything odd replaced: it goes into
	 * a message */
	for (size_t i = 0; i < klen; i++) {
		unsigned char c = (unsigned char)key[i];

		w->path[w->plen++] = c >= 0x20 && c < 0x7f && c != '"' && c != '\\' ? (char)c : '?';
	}
	w->path[w->plen] = '\0';
	return old;
}

long
qwalk_push_index(struct qwalk *w, size_t i)
{
	long old = (long)w->plen;
	int n = snprintf(w->path + w->plen, sizeof(w->path) - w->plen, "[%zu]", i);

	if (n < 0 || (size_t)n >= sizeof(w->path) - w->plen) {
		w->path[w->plen] = '\0';
		return -1;
	}
	w->plen += (size_t)n;
	return old;
}

void
qwalk_pop(struct qwalk *w, long len)
{
	w->plen = (size_t)len;
	w->path[w->plen] = '\0';
}

int
qwalk_fail(struct qwalk *w, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (w->reason != NULL && w->reasonlen > 0) {
		if (w->plen > 0)
			snprintf(w->reason, w->reasonlen, "%s (at %s)", msg, w->path);
		else
			snprintf(w->reason, w->reasonlen, "%s", msg);
	}
	return -1;
}

/* Q under KEY of OBJ, if there: one query, or (LIST) an array of them. */
static int
qwalk_member(struct qwalk *w, json_t *obj, const char *key, int list)
{
	json_t *v = json_object_get(obj, key), *q;
	long old;
	size_t i;
	int rc = 0;

	if (v == NULL)
		return 0;
	if ((old = qwalk_push(w, key)) < 0)
		return qwalk_fail(w, "query nested too deep");
	if (list && json_is_array(v)) {
		json_array_foreach (v, i, q) {
			long o2 = qwalk_push_index(w, i);

			if (o2 < 0)
				return qwalk_fail(w, "query nested too deep");
			if ((rc = qwalk_query(w, q)) != 0)
				break;
			qwalk_pop(w, o2);
		}
	} else
		rc = qwalk_query(w, v);
	if (rc == 0)
		qwalk_pop(w, old);
	return rc;
}

int
qwalk_query(struct qwalk *w, json_t *q)
{
	const char *type;
	json_t *body, *fns, *fn;
	long old;
	size_t i;
	int rc = 0;

	if (!json_is_object(q) || json_object_size(q) != 1)
		return qwalk_fail(w, "malformed query: an object of one query type expected");
	if (++w->depth > QWALK_DEPTH_MAX)
		return qwalk_fail(w, "query nested too deep");
	type = json_object_iter_key(json_object_iter(q));
	body = json_object_iter_value(json_object_iter(q));
	if ((old = qwalk_push(w, type)) < 0)
		return qwalk_fail(w, "query nested too deep");
	if (w->on_query != NULL && w->on_query(w, type, body) != 0)
		return -1;
	if (!json_is_object(body))
		; /* a leaf written short ("match_all": {} is an object; others are the visitor's) */
	else if (strcmp(type, "bool") == 0) {
		if ((rc = qwalk_member(w, body, "must", 1)) != 0 || (rc = qwalk_member(w, body, "filter", 1)) != 0 ||
		    (rc = qwalk_member(w, body, "should", 1)) != 0 || (rc = qwalk_member(w, body, "must_not", 1)) != 0)
			return rc;
	} else if (strcmp(type, "constant_score") == 0) {
		rc = qwalk_member(w, body, "filter", 0);
	} else if (strcmp(type, "dis_max") == 0) {
		rc = qwalk_member(w, body, "queries", 1);
	} else if (strcmp(type, "boosting") == 0) {
		if ((rc = qwalk_member(w, body, "positive", 0)) == 0)
			rc = qwalk_member(w, body, "negative", 0);
	} else if (strcmp(type, "function_score") == 0) {
		if ((rc = qwalk_member(w, body, "query", 0)) != 0)
			return rc;
		fns = json_object_get(body, "functions");
		if (json_is_array(fns)) {
			long o2 = qwalk_push(w, "functions");

			if (o2 < 0)
				return qwalk_fail(w, "query nested too deep");
			json_array_foreach (fns, i, fn) {
				long o3 = qwalk_push_index(w, i);

				if (o3 < 0)
					return qwalk_fail(w, "query nested too deep");
				if (json_is_object(fn) && (rc = qwalk_member(w, fn, "filter", 0)) != 0)
					return rc;
				qwalk_pop(w, o3);
			}
			qwalk_pop(w, o2);
		}
	} else if (strcmp(type, "nested") == 0 || strcmp(type, "has_child") == 0 || strcmp(type, "has_parent") == 0 ||
	           strcmp(type, "script_score") == 0) {
		rc = qwalk_member(w, body, "query", 0);
	} else if (strcmp(type, "pinned") == 0 || strcmp(type, "rule") == 0) {
		rc = qwalk_member(w, body, "organic", 0);
	} else if (strcmp(type, "knn") == 0) {
		rc = qwalk_member(w, body, "filter", 1);
	}
	if (rc != 0)
		return rc;
	qwalk_pop(w, old);
	w->depth--;
	return 0;
}

/* The queries inside an aggregation of TYPE: filter's body is one, and
 * filters' and adjacency_matrix's "filters" an object (or, for filters,
 * an array) of them. */
static int
qwalk_agg_queries(struct qwalk *w, const char *type, json_t *body)
{
	json_t *filters, *q;
	const char *name;
	size_t i;
	long old;

	if (strcmp(type, "filter") == 0)
		return qwalk_query(w, body);
	if ((strcmp(type, "filters") != 0 && strcmp(type, "adjacency_matrix") != 0) || !json_is_object(body) ||
	    (filters = json_object_get(body, "filters")) == NULL)
		return 0;
	if ((old = qwalk_push(w, "filters")) < 0)
		return qwalk_fail(w, "aggregation nested too deep");
	if (json_is_array(filters)) {
		json_array_foreach (filters, i, q) {
			long o2 = qwalk_push_index(w, i);

			if (o2 < 0 || qwalk_query(w, q) != 0)
				return o2 < 0 ? qwalk_fail(w, "aggregation nested too deep") : -1;
			qwalk_pop(w, o2);
		}
	} else if (json_is_object(filters)) {
		json_object_foreach (filters, name, q) {
			long o2 = qwalk_push(w, name);

			if (o2 < 0 || qwalk_query(w, q) != 0)
				return o2 < 0 ? qwalk_fail(w, "aggregation nested too deep") : -1;
			qwalk_pop(w, o2);
		}
	} else
		return qwalk_fail(w, "malformed aggregation: filters must be an object or an array");
	qwalk_pop(w, old);
	return 0;
}

int
qwalk_aggs(struct qwalk *w, json_t *aggs)
{
	const char *name, *key;
	json_t *agg, *v;

	if (!json_is_object(aggs))
		return qwalk_fail(w, "malformed aggregations: an object expected");
	if (++w->depth > QWALK_DEPTH_MAX)
		return qwalk_fail(w, "aggregations nested too deep");
	json_object_foreach (aggs, name, agg) {
		long old = qwalk_push(w, name);
		const char *type = NULL;
		json_t *body = NULL;

		if (old < 0)
			return qwalk_fail(w, "aggregations nested too deep");
		if (!json_is_object(agg))
			return qwalk_fail(w, "malformed aggregation: an object expected");
		json_object_foreach (agg, key, v) {
			if (strcmp(key, "aggs") == 0 || strcmp(key, "aggregations") == 0 || strcmp(key, "meta") == 0)
				continue;
			if (type != NULL)
				return qwalk_fail(w, "malformed aggregation: more than one type");
			type = key;
			body = v;
		}
		if (type == NULL)
			return qwalk_fail(w, "malformed aggregation: no type");
		{
			long o2 = qwalk_push(w, type);

			if (o2 < 0)
				return qwalk_fail(w, "aggregations nested too deep");
			if (w->on_agg != NULL && w->on_agg(w, type, body) != 0)
				return -1;
			if (qwalk_agg_queries(w, type, body) != 0)
				return -1;
			qwalk_pop(w, o2);
		}
		json_object_foreach (agg, key, v) {
			long o2;

			if (strcmp(key, "aggs") != 0 && strcmp(key, "aggregations") != 0)
				continue;
			if ((o2 = qwalk_push(w, key)) < 0 || qwalk_aggs(w, v) != 0)
				return o2 < 0 ? qwalk_fail(w, "aggregations nested too deep") : -1;
			qwalk_pop(w, o2);
		}
		qwalk_pop(w, old);
	}
	w->depth--;
	return 0;
}

/* Each element of V (one, or an array of them) through FN at KEY. */
static int
qwalk_each(struct qwalk *w, json_t *obj, const char *key, int (*fn)(struct qwalk *, json_t *))
{
	json_t *v = json_object_get(obj, key), *e;
	long old;
	size_t i;

	if (v == NULL)
		return 0;
	if ((old = qwalk_push(w, key)) < 0)
		return qwalk_fail(w, "path too long");
	if (json_is_array(v)) {
		json_array_foreach (v, i, e) {
			long o2 = qwalk_push_index(w, i);

			if (o2 < 0 || fn(w, e) != 0)
				return o2 < 0 ? qwalk_fail(w, "path too long") : -1;
			qwalk_pop(w, o2);
		}
	} else if (fn(w, v) != 0)
		return -1;
	qwalk_pop(w, old);
	return 0;
}

static int
qwalk_knn(struct qwalk *w, json_t *knn)
{
	if (!json_is_object(knn))
		return qwalk_fail(w, "malformed knn: an object expected");
	return qwalk_member(w, knn, "filter", 1);
}

static int
qwalk_rescore(struct qwalk *w, json_t *r)
{
	json_t *q = json_object_get(r, "query");
	long old;

	if (!json_is_object(q))
		return 0;
	if ((old = qwalk_push(w, "query")) < 0 || qwalk_member(w, q, "rescore_query", 0) != 0)
		return old < 0 ? qwalk_fail(w, "path too long") : -1;
	qwalk_pop(w, old);
	return 0;
}

/* A sort clause {FIELD: {"nested": {"filter": Q, "nested": {...}}}}. */
static int
qwalk_sort(struct qwalk *w, json_t *s)
{
	const char *field;
	json_t *opts, *nested;

	if (!json_is_object(s))
		return 0;
	json_object_foreach (s, field, opts) {
		long old = qwalk_push(w, field), o2;
		int levels = 0;

		if (old < 0)
			return qwalk_fail(w, "path too long");
		for (nested = json_object_get(opts, "nested"); json_is_object(nested);
		     nested = json_object_get(nested, "nested")) {
			if (++levels > QWALK_DEPTH_MAX || (o2 = qwalk_push(w, "nested")) < 0)
				return qwalk_fail(w, "sort nested too deep");
			if (qwalk_member(w, nested, "filter", 0) != 0)
				return -1;
		}
		qwalk_pop(w, old);
	}
	return 0;
}

int
qwalk_body(struct qwalk *w, json_t *body)
{
	json_t *hl, *fields, *f;
	const char *name;
	long old;

	if (!json_is_object(body))
		return qwalk_fail(w, "malformed body: an object expected");
	if (qwalk_member(w, body, "query", 0) != 0 || qwalk_member(w, body, "post_filter", 0) != 0 ||
	    qwalk_each(w, body, "knn", qwalk_knn) != 0 || qwalk_each(w, body, "rescore", qwalk_rescore) != 0 ||
	    qwalk_each(w, body, "sort", qwalk_sort) != 0)
		return -1;
	if ((hl = json_object_get(body, "highlight")) != NULL && json_is_object(hl)) {
		if ((old = qwalk_push(w, "highlight")) < 0 || qwalk_member(w, hl, "highlight_query", 0) != 0)
			return old < 0 ? qwalk_fail(w, "path too long") : -1;
		fields = json_object_get(hl, "fields");
		if (json_is_object(fields)) {
			long o2 = qwalk_push(w, "fields");

			json_object_foreach (fields, name, f) {
				long o3 = qwalk_push(w, name);

				if (o2 < 0 || o3 < 0)
					return qwalk_fail(w, "path too long");
				if (json_is_object(f) && qwalk_member(w, f, "highlight_query", 0) != 0)
					return -1;
				qwalk_pop(w, o3);
			}
			qwalk_pop(w, o2);
		} else if (json_is_array(fields)) {
			size_t i;
			long o2 = qwalk_push(w, "fields");

			json_array_foreach (fields, i, f) {
				long o3 = qwalk_push_index(w, i);
				const char *k;
				json_t *fo;

				if (o2 < 0 || o3 < 0)
					return qwalk_fail(w, "path too long");
				if (json_is_object(f))
					json_object_foreach (f, k, fo) {
						long o4 = qwalk_push(w, k);

						if (o4 < 0)
							return qwalk_fail(w, "path too long");
						if (json_is_object(fo) &&
						    qwalk_member(w, fo, "highlight_query", 0) != 0)
							return -1;
						qwalk_pop(w, o4);
					}
				qwalk_pop(w, o3);
			}
			qwalk_pop(w, o2);
		}
		qwalk_pop(w, old);
	}
	for (int i = 0; i < 2; i++) {
		const char *key = i == 0 ? "aggs" : "aggregations";
		json_t *a = json_object_get(body, key);

		if (a == NULL)
			continue;
		if ((old = qwalk_push(w, key)) < 0 || qwalk_aggs(w, a) != 0)
			return old < 0 ? qwalk_fail(w, "path too long") : -1;
		qwalk_pop(w, old);
	}
	return 0;
}
