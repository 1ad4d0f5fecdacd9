/*
 * qwalk.h - visits every query clause and every aggregation of an
 * Elasticsearch search body, wherever the body may hold one, so that the
 * document-level (lib/dls.h) and field-level (lib/fls.h) rules judge each
 * one without each knowing the shape of the query DSL.
 *
 * Places a query stands in a search body: "query", "post_filter",
 * "knn.filter" (a top-level knn, one or an array), "rescore[].query.
 * rescore_query", "highlight.highlight_query" and each highlighted
 * field's, the nested filter of a sort clause, and the "filter",
 * "filters" and "adjacency_matrix" aggregations.  Inside a query the
 * compound clauses are entered: bool (must, filter, should, must_not),
 * constant_score, dis_max, boosting, function_score (query and each
 * function's filter), nested, has_child, has_parent, pinned and rule
 * (organic), script_score, and the knn query's filter.  Anything else is
 * a leaf whose body the visitor reads itself.
 *
 * The walk keeps the position as a path ("query.bool.must[0].term") for
 * messages.  Pure code; JSON is not changed by the walk itself.
 */
#ifndef ESGATE_QWALK_H
#define ESGATE_QWALK_H

#include <jansson.h>
#include <stddef.h>

#define QWALK_PATH_MAX 512
#define QWALK_DEPTH_MAX 64 /* queries and aggregations nested deeper are refused */

struct qwalk;
/* Called for a query clause {TYPE: BODY} before the walk enters it, or
 * for an aggregation NAME: {TYPE: BODY, ...} before its sub-aggregations
 * (w->path ends with the clause's or aggregation's key then).  Return 0
 * to go on, -1 to stop the walk (after writing why in w->reason). */
typedef int qwalk_fn(struct qwalk *w, const char *type, json_t *body);

struct qwalk {
	qwalk_fn *on_query; /* may be NULL */
	qwalk_fn *on_agg;   /* may be NULL */
	void *arg;          /* the visitor's */
	char *reason;       /* where a refusal goes: the visitor's, and the walk's own for a */
	size_t reasonlen;   /* malformed body ("malformed query (at ...)") */
	char path[QWALK_PATH_MAX];
	size_t plen;
	unsigned depth;
};

/* Sets up W: no path, the callbacks and buffer given. */
void qwalk_init(struct qwalk *w, qwalk_fn *on_query, qwalk_fn *on_agg, void *arg, char *reason, size_t reasonlen);

/* Walks every query and aggregation of search body BODY (an object, or
 * the one "query" of a _count body).  0, or -1 when a visitor stopped it
 * or a query was malformed (not an object of one key), too deep, or the
 * path too long. */
int qwalk_body(struct qwalk *w, json_t *body);
/* Walks one query Q (an object {TYPE: BODY}) at the current path. */
int qwalk_query(struct qwalk *w, json_t *q);
/* Walks an aggregations object {NAME: {TYPE: ..., "aggs": {...}}}. */
int qwalk_aggs(struct qwalk *w, json_t *aggs);

/* The path as it stands, and the helpers to move along it: push appends
 * ".KEY" (or KEY at the start) or "[I]" and returns the old length for
 * qwalk_pop; -1 if the path would be too long. */
long qwalk_push(struct qwalk *w, const char *key);
long qwalk_push_index(struct qwalk *w, size_t i);
void qwalk_pop(struct qwalk *w, long len);

/* Writes "MSG (at PATH)" into w->reason and returns -1. */
int qwalk_fail(struct qwalk *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
