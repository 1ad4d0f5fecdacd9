/*
 * stage_route.c - the route stage: which row of the host's table takes the
 * request (worker/router.h), and the answers when none does.
 *
 * Rows are tried in table order.  A configured route's path goes through
 * its template (lib/route.h): placeholder values are decoded and checked
 * there, and a hostile value is a 400 whichever route would have taken it.
 * A row whose method does not fit is skipped, unless it claims its path
 * (the builtins), so two configured routes may share a path with
 * different methods; when a path matched but no method did, the answer is
 * a 405 whose Allow lists every method those rows take.  An OPTIONS
 * request on a route with CORS goes on to the CORS stage, which answers
 * the preflight.
 */
#include "worker/router.h"

#include <string.h>

static void
stage_route_method_not_allowed(h2o_req_t *req, unsigned allowed)
{
	char allow[32];

	exchange_method_list(allowed, allow, sizeof(allow));
	h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL,
	               h2o_strdup(&req->pool, allow, SIZE_MAX).base, strlen(allow));
	exchange_send_error(req, 405, "method_not_allowed", "method not allowed for this path");
}

/* A preflight for ROW: OPTIONS on a route with CORS. */
static int
stage_route_preflight(const struct exchange *ex, const struct router_row *row)
{
	h2o_req_t *req = ex->req;

	return ex->method == 0 && row->route != NULL && row->route->cors.origins != NULL &&
	       h2o_memis(req->method.base, req->method.len, H2O_STRLIT("OPTIONS"));
}

/* What ROW's match of the raw path (PLEN bytes) gives; VARS is filled on a
 * template's ROUTE_MATCH. */
static enum route_result
stage_route_match(const struct router_row *row, const char *path, size_t plen, struct route_vars *vars,
                  const char **reason)
{
	if (row->exact != NULL)
		return h2o_memis(path, plen, row->exact, row->exact_len) ? ROUTE_MATCH : ROUTE_NOMATCH;
	return route_match(row->tmpl, path, plen, vars, reason);
}

/* The route found: the rest of ROW's pipeline follows, with the upstream
 * request as the route describes it (the check stage builds a configured
 * route's path). */
static void
stage_route_take(struct exchange *ex, const struct router_row *row, const struct route_vars *vars)
{
	ex->row = row;
	ex->pipeline = &row->pipeline; /* its stage 0 is this one: the next is EX->next */
	if (vars->set != 0) {
		struct route_vars *v = h2o_mem_alloc_pool(&ex->req->pool, sizeof(*v));
		memcpy(v, vars, sizeof(*v));
		ex->vars = v;
	}
	if (row->kind != ROUTER_UPSTREAM)
		return;
	ex->up_method = ex->method == CONFIG_METHOD_HEAD && row->upstream_method == CONFIG_METHOD_GET ? "HEAD"
	                : row->upstream_method == CONFIG_METHOD_POST                                  ? "POST"
	                : row->upstream_method == CONFIG_METHOD_HEAD                                  ? "HEAD"
	                                                                                              : "GET";
	if (row->upstream_path != NULL) {
		ex->up_path = (char *)(uintptr_t)row->upstream_path; /* no query: never written to */
		ex->up_path_len = strlen(row->upstream_path);
	}
}

static enum pipeline_result
stage_route_run(struct exchange *ex)
{
	const struct router_table *t = ex->table;
	h2o_req_t *req = ex->req;
	size_t plen = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
	const char *reason = NULL;
	unsigned allowed = 0;
	struct route_vars vars;

	vars.set = 0;
	for (size_t i = 0; i < t->nrows; i++) {
		const struct router_row *row = &t->rows[i];

		switch (stage_route_match(row, req->path.base, plen, &vars, &reason)) {
		case ROUTE_NOMATCH: continue;
		case ROUTE_BAD:
			ex->route = row->metric;
			exchange_send_error(req, 400, "invalid_request", reason != NULL ? reason : "invalid path");
			return PIPELINE_ANSWERED;
		case ROUTE_MATCH: break;
		}
		ex->route = row->metric;
		if ((row->methods & ex->method) || stage_route_preflight(ex, row)) {
			stage_route_take(ex, row, &vars);
			return PIPELINE_NEXT;
		}
		allowed |= row->methods; /* another row may take this method */
		if (row->claims_path)
			break;
	}
	if (allowed != 0) {
		stage_route_method_not_allowed(req, allowed);
	} else {
		ex->route = ex->env->metric_unmatched;
		exchange_send_error(req, 404, "not_found", t->not_found);
	}
	return PIPELINE_ANSWERED;
}

const struct pipeline_stage stage_route = {"route", stage_route_run, NULL};
