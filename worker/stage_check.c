/*
 * stage_check.c - the check stage: a configured route's allow-lists, and
 * the upstream path and query built from them (see pipeline.h).
 *
 * A route reaches the upstream only through its own templates: the
 * placeholder values the route stage decoded and validated are
 * percent-encoded again into the upstream template (lib/route.h), the
 * index must be one the route lists, the query is decoded, checked
 * against the route's params and re-encoded, and a body must fit
 * max_body and, off search routes (where the firewall parses it), be
 * JSON.  So no client can reach an upstream path no route names.
 */
#include "worker/router.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#define STAGE_CHECK_PATH_MAX 4096
#define STAGE_CHECK_QUERY_MAX 4096

static int
stage_check_json(const char *body, size_t len)
{
	json_error_t err;
	json_t *doc;

	if ((doc = json_loadb(body, len, 0, &err)) == NULL)
		return 0;
	json_decref(doc);
	return 1;
}

static enum pipeline_result
stage_check_run(struct exchange *ex)
{
	const struct config_route *r = ex->row->route;
	const struct route_vars *vars = ex->vars;
	h2o_req_t *req = ex->req;
	char upath[STAGE_CHECK_PATH_MAX + STAGE_CHECK_QUERY_MAX + 2], bad[96], reason[160];
	const char *query = NULL;
	size_t qlen = 0, body_len = req->entity.base != NULL ? req->entity.len : 0;
	struct route_vars none;
	ssize_t n, q;

	if (vars == NULL) {
		none.set = 0;
		vars = &none;
	}
	if ((vars->set & ROUTE_VAR_INDEX) &&
	    !route_index_allowed(vars->index, vars->index_len, r->indices, r->nindices)) {
		exchange_send_error(req, 403, "index_not_allowed", "this index is not served here");
		return PIPELINE_ANSWERED;
	}
	if (req->query_at != SIZE_MAX) {
		query = req->path.base + req->query_at + 1;
		qlen = req->path.len - req->query_at - 1;
	}
	if ((n = route_build(r->upstream_tmpl, vars, upath, STAGE_CHECK_PATH_MAX)) < 0) {
		exchange_send_error(req, 414, "path_too_long", "the upstream path would be too long");
		return PIPELINE_ANSWERED;
	}
	q = route_query(query != NULL ? query : "", qlen, r->params, r->nparams, upath + n + 1, STAGE_CHECK_QUERY_MAX,
	                bad, sizeof(bad));
	if (q < 0) {
		if (strcmp(bad, "malformed query string") == 0 || strcmp(bad, "query string too long") == 0)
			snprintf(reason, sizeof(reason), "%s", bad);
		else
			snprintf(reason, sizeof(reason), "query parameter \"%s\" is not allowed here", bad);
		exchange_send_error(req, 400, "illegal_argument", reason);
		return PIPELINE_ANSWERED;
	}
	if (body_len > r->max_body) {
		exchange_send_error(req, 413, "request_too_large", "request body too large for this route");
		return PIPELINE_ANSWERED;
	}
	if (r->search < 0 && body_len > 0) {
		if (r->json && !stage_check_json(req->entity.base, body_len)) {
			exchange_send_error(req, 400, "parse_error", "request body is not valid JSON");
			return PIPELINE_ANSWERED;
		}
		ex->up_body = req->entity.base; /* a search route sends only what the firewall makes */
		ex->up_body_len = body_len;
	}
	/* path, NUL, query, NUL: in the pool, where a later stage may rewrite
	 * the query and exchange_upstream_path() joins the two */
	ex->up_path_len = (size_t)n;
	ex->up_path = h2o_mem_alloc_pool(&req->pool, (size_t)n + 1 + (size_t)q + 1);
	memcpy(ex->up_path, upath, (size_t)n + 1 + (size_t)q + 1);
	ex->up_path[n] = '\0';
	ex->up_query = ex->up_path + n + 1;
	return PIPELINE_NEXT;
}

static int
stage_check_applies(const struct router_row *row)
{
	return row->route != NULL;
}

const struct pipeline_stage stage_check = {"check", stage_check_run, stage_check_applies};
