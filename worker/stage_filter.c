/*
 * stage_filter.c - the document and field rules of a principal's grant
 * (lib/dls.h, lib/fls.h) applied to its request, on routes with "auth:"
 * that can apply them (search, count, _msearch, get-by-id; see
 * pipeline.h).  After the firewall, so it works on the checked document,
 * never the client's bytes; before the cache, so nothing it changes is
 * shared with another principal.
 *
 *   - a search, count or _msearch: the query parameters that would escape
 *     the rules are refused (q, the suggest_* ones, the _source ones under
 *     field rules...), the body checked against the field rules and its
 *     _source rewritten to them, then the document filter AND-ed into it
 *     (each _msearch sub-search too), and the constructs that read outside
 *     the filter refused (dls_apply()); the result is the upstream body;
 *   - a get-by-id (/{index}/_doc/{id}, /{index}/_source/{id}): sent as a
 *     search on the id with the filter and the _source rules, whose one
 *     hit is turned back into the get answer; a document outside the
 *     filter is "found": false, 404, whatever its id.
 * A refusal is 403 forbidden naming what was refused, and never reaches
 * the upstream.  Grants without dls or fields change nothing here.
 */
#include "worker/router.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/auth.h"
#include "lib/dls.h"
#include "lib/dsl.h"
#include "lib/fls.h"

#define STAGE_FILTER_QUERY_MAX 4096
#define STAGE_FILTER_GET_MAX (8 * 1024 * 1024) /* bytes of a get-as-search answer */

static void
stage_filter_refuse(struct exchange *ex, enum metrics_denial why, const char *reason)
{
	metrics_auth_denied(ex->env->counts, why);
	exchange_send_error(ex->req, 403, "forbidden", reason);
}

static void
stage_filter_free(void *arg)
{
	free(*(char **)arg);
}

/* The pool owns BODY (malloc'ed) from here; it becomes the upstream body. */
static void
stage_filter_set_body(struct exchange *ex, char *body, size_t len)
{
	char **owner = h2o_mem_alloc_shared(&ex->req->pool, sizeof(*owner), stage_filter_free);

	*owner = body;
	ex->up_body = body;
	ex->up_body_len = len;
	/* as the firewall does: a body goes as a POST, a client's HEAD on a
	 * GET route stays a HEAD */
	if (!(ex->method == CONFIG_METHOD_HEAD && ex->row->upstream_method == CONFIG_METHOD_GET))
		ex->up_method = "POST";
}

/* Each parameter of the checked query against the rules: 0, or -1 after
 * answering 403. */
static int
stage_filter_params(struct exchange *ex, const struct fls_rules *rules, const json_t *filter)
{
	char q[STAGE_FILTER_QUERY_MAX + 1], name[STAGE_FILTER_QUERY_MAX + 1], value[STAGE_FILTER_QUERY_MAX + 1],
	    reason[DLS_REASON_MAX + 64], *piece, *save = NULL;
	ssize_t vlen;

	if (ex->up_query == NULL || ex->up_query[0] == '\0')
		return 0;
	snprintf(q, sizeof(q), "%s", ex->up_query);
	for (piece = strtok_r(q, "&", &save); piece != NULL; piece = strtok_r(NULL, "&", &save)) {
		char *eq = strchr(piece, '=');
		size_t nlen = eq != NULL ? (size_t)(eq - piece) : strlen(piece);

		value[0] = '\0';
		if (route_decode(piece, nlen, name, sizeof(name)) < 0 ||
		    (eq != NULL && (vlen = route_decode(eq + 1, strlen(eq + 1), value, sizeof(value))) < 0)) {
			stage_filter_refuse(ex, METRICS_DENY_DLS, "malformed query string");
			return -1;
		}
		if (filter != NULL && dls_check_param(name, reason, sizeof(reason)) != 0) {
			stage_filter_refuse(ex, METRICS_DENY_DLS, reason);
			return -1;
		}
		if (fls_check_param(rules, name, value, reason, sizeof(reason)) != 0) {
			stage_filter_refuse(ex, METRICS_DENY_FLS, reason);
			return -1;
		}
	}
	return 0;
}

static enum pipeline_result
stage_filter_search(struct exchange *ex, const struct fls_rules *rules, const json_t *filter)
{
	int mode = ex->row->route->search;
	const char *body = ex->up_body != NULL ? ex->up_body : "";
	size_t len = ex->up_body != NULL ? ex->up_body_len : 0, olen = 0;
	char reason[DLS_REASON_MAX + 64], *fbody = NULL, *out = NULL;

	if (stage_filter_params(ex, rules, filter) != 0)
		return PIPELINE_ANSWERED;
	if (fls_active(rules)) {
		if (fls_apply_text(rules, body, len, mode, &fbody, &olen, reason, sizeof(reason)) != 0) {
			stage_filter_refuse(ex, METRICS_DENY_FLS, reason);
			return PIPELINE_ANSWERED;
		}
		body = fbody;
		len = olen;
	}
	if (filter != NULL) {
		if (dls_apply_text(body, len, mode, filter, &out, &olen, reason, sizeof(reason)) != 0) {
			free(fbody);
			stage_filter_refuse(ex, METRICS_DENY_DLS, reason);
			return PIPELINE_ANSWERED;
		}
		free(fbody);
	} else {
		out = fbody;
	}
	stage_filter_set_body(ex, out, olen);
	return PIPELINE_NEXT;
}

/*
 * A get-by-id as a filtered search.
 */

struct stage_filter_get {
	struct exchange *ex;
	struct upstream_req *up; /* NULL once done */
	char *buf;
	size_t len, cap;
	int status, too_big, source_only;
	const char *index, *id;
	uint64_t start_us;
};

static void
stage_filter_get_dispose(void *arg)
{
	struct stage_filter_get *g = arg;

	if (g->up != NULL)
		upstream_cancel(g->up); /* the client left */
	free(g->buf);
}

static void
stage_filter_get_on_head(void *arg, const struct upstream_head *head)
{
	struct stage_filter_get *g = arg;

	g->status = head->status;
	if (head->node != NULL)
		g->ex->upstream_node = h2o_strdup(&g->ex->req->pool, head->node, SIZE_MAX).base;
}

static int
stage_filter_get_on_body(void *arg, const char *data, size_t len)
{
	struct stage_filter_get *g = arg;

	if (g->too_big || g->len + len > STAGE_FILTER_GET_MAX) {
		g->too_big = 1;
		return 0;
	}
	if (g->len + len + 1 > g->cap) {
		size_t cap = g->cap > 0 ? g->cap : 4096;
		char *p;

		while (cap < g->len + len + 1)
			cap *= 2;
		if ((p = realloc(g->buf, cap)) == NULL) {
			g->too_big = 1;
			return 0;
		}
		g->buf = p;
		g->cap = cap;
	}
	memcpy(g->buf + g->len, data, len);
	g->len += len;
	return 0;
}

static void
stage_filter_get_send(struct stage_filter_get *g, int status, json_t *doc)
{
	char *text = doc != NULL ? json_dumps(doc, JSON_COMPACT) : NULL;

	json_decref(doc);
	if (text == NULL) {
		exchange_send_error(g->ex->req, 500, "internal_error", "out of memory");
		return;
	}
	exchange_send_json(g->ex->req, status, text, strlen(text)); /* copied */
	free(text);
}

static void
stage_filter_get_on_done(void *arg, const struct upstream_result *res)
{
	struct stage_filter_get *g = arg;
	struct exchange *ex = g->ex;
	json_t *answer, *doc;

	g->up = NULL;
	ex->upstream_us = exchange_since_us(ex->env, g->start_us);
	if (res->error != UPSTREAM_OK) {
		exchange_send_upstream_error(ex->req, res);
		return;
	}
	if (g->too_big) {
		exchange_send_error(ex->req, 502, "bad_gateway", "the upstream answer is too large");
		return;
	}
	if (g->status == 404) { /* no such index */
		exchange_send_error(ex->req, 404, "index_not_found_exception", "no such index");
		return;
	}
	if (g->status != 200 || (answer = json_loadb(g->buf != NULL ? g->buf : "", g->len, 0, NULL)) == NULL) {
		exchange_send_error(ex->req, 502, "bad_gateway", "the upstream could not run the filtered get");
		return;
	}
	doc = dls_hit_as_get(answer);
	json_decref(answer);
	if (doc == NULL) {
		stage_filter_get_send(g, 404, json_pack("{s:s,s:s,s:b}", "_index", g->index, "_id", g->id, "found", 0));
		return;
	}
	if (g->source_only) {
		json_t *src = json_incref(json_object_get(doc, "_source"));

		json_decref(doc);
		doc = src != NULL ? src : json_object();
	}
	stage_filter_get_send(g, 200, doc);
}

static const struct upstream_callbacks stage_filter_get_cb = {stage_filter_get_on_head, stage_filter_get_on_body,
                                                              stage_filter_get_on_done};

/* Where the get's path names its document: "/_doc/" or "/_source/"
 * before the id; NULL if neither. */
static const char *
stage_filter_get_kind(const char *path, int *source_only)
{
	const char *p, *last = NULL;

	for (p = path; (p = strstr(p, "/_doc/")) != NULL; p++)
		last = p, *source_only = 0;
	for (p = path; (p = strstr(p, "/_source/")) != NULL; p++)
		if (last == NULL || p > last)
			last = p, *source_only = 1;
	return last;
}

static enum pipeline_result
stage_filter_get(struct exchange *ex, const struct fls_rules *rules, const json_t *filter)
{
	struct stage_filter_get *g;
	struct upstream_request rq = {.method = "POST", .opaque_id = exchange_opaque_id(ex), .accept_gzip = 0};
	char reason[DLS_REASON_MAX + 64], *path;
	json_t *search, *all = NULL;
	const char *at;
	int source_only = 0;
	size_t plen;
	char *body;

	if (ex->vars == NULL || !(ex->vars->set & ROUTE_VAR_ID) || !(ex->vars->set & ROUTE_VAR_INDEX) ||
	    (at = stage_filter_get_kind(ex->up_path, &source_only)) == NULL) {
		stage_filter_refuse(ex, METRICS_DENY_DLS, "this route cannot apply the document rules");
		return PIPELINE_ANSWERED;
	}
	if (ex->up_query != NULL && ex->up_query[0] != '\0') {
		stage_filter_refuse(ex, METRICS_DENY_DLS,
		                    "query parameters are not taken on a get under document or field rules");
		return PIPELINE_ANSWERED;
	}
	if (filter == NULL)
		filter = all = json_pack("{s:{}}", "match_all");
	search = filter != NULL ? dls_get_as_search(ex->vars->id, filter) : NULL;
	json_decref(all);
	if (search == NULL) {
		exchange_send_error(ex->req, 500, "internal_error", "out of memory");
		return PIPELINE_ANSWERED;
	}
	if (fls_apply(rules, search, DSL_BODY_SEARCH, reason, sizeof(reason)) != 0 ||
	    (body = json_dumps(search, JSON_COMPACT)) == NULL) {
		json_decref(search);
		stage_filter_refuse(ex, METRICS_DENY_FLS, reason);
		return PIPELINE_ANSWERED;
	}
	json_decref(search);
	/* "/books/_doc/1" -> "/books/_search" */
	plen = (size_t)(at - ex->up_path);
	path = h2o_mem_alloc_pool(&ex->req->pool, plen + sizeof("/_search"));
	memcpy(path, ex->up_path, plen);
	memcpy(path + plen, "/_search", sizeof("/_search"));

	g = h2o_mem_alloc_shared(&ex->req->pool, sizeof(*g), stage_filter_get_dispose);
	memset(g, 0, sizeof(*g));
	g->ex = ex;
	g->source_only = source_only;
	g->index = ex->vars->index;
	g->id = ex->vars->id;
	g->start_us = exchange_now_us(ex->env);
	rq.path = path;
	rq.body = body;
	rq.body_len = strlen(body);
	g->up = upstream_send(ex->env->upstream, &rq, &stage_filter_get_cb, g); /* copies the body */
	free(body);
	if (g->up == NULL) {
		exchange_send_error(ex->req, 502, "bad_gateway", "upstream unavailable");
		return PIPELINE_ANSWERED;
	}
	return PIPELINE_ANSWERED; /* answered from stage_filter_get_on_done */
}

static enum pipeline_result
stage_filter_run(struct exchange *ex)
{
	const struct auth_grant *g = ex->grant;
	static const struct fls_rules none;
	const struct fls_rules *rules = g != NULL ? &g->fields : &none;

	if (g == NULL || (ex->dls_filter == NULL && !fls_active(rules)))
		return PIPELINE_NEXT;
	if (ex->row->route->search >= 0)
		return stage_filter_search(ex, rules, ex->dls_filter);
	return stage_filter_get(ex, rules, ex->dls_filter);
}

static int
stage_filter_applies(const struct router_row *row)
{
	return row->route != NULL && row->route->auth.enabled && row->kind == ROUTER_UPSTREAM;
}

const struct pipeline_stage stage_filter = {"filter", stage_filter_run, stage_filter_applies};
