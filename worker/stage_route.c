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

/* Tries ROW for the request: 1 if it decides it (*RES says how), 0 to go on
 * to the next row, -1 to stop looking (ROW claims the path, but not for
 * this method).  ALLOWED collects the methods of the rows that matched. */
static int
stage_route_try(struct exchange *ex, const struct router_row *row, const char *path, size_t plen, unsigned *allowed,
                enum pipeline_result *res)
{
	const char *reason = NULL;
	struct route_vars vars;

	vars.set = 0;
	switch (stage_route_match(row, path, plen, &vars, &reason)) {
	case ROUTE_NOMATCH: return 0;
	case ROUTE_BAD:
		ex->route = row->metric;
		exchange_send_error(ex->req, 400, "invalid_request", reason != NULL ? reason : "invalid path");
		*res = PIPELINE_ANSWERED;
		return 1;
	case ROUTE_MATCH: break;
	}
	ex->route = row->metric;
	if ((row->methods & ex->method) || stage_route_preflight(ex, row)) {
		stage_route_take(ex, row, &vars);
		*res = PIPELINE_NEXT;
		return 1;
	}
	*allowed |= row->methods; /* another row may take this method */
	return row->claims_path ? -1 : 0;
}

/* The rows are tried in order, the first that decides wins: the builtins
 * (exact paths) one by one, then, of the configured routes, only those
 * whose shape the path has, as the table's route set finds them
 * (lib/route.h): the others would not match.  A path with a dot segment, or
 * more candidates than fit here, goes through every row, as it did before
 * route sets (the first template refuses a dot segment). */
#define STAGE_ROUTE_CANDIDATES 32

static enum pipeline_result
stage_route_run(struct exchange *ex)
{
	const struct router_table *t = ex->table;
	h2o_req_t *req = ex->req;
	const char *path = req->path.base;
	size_t plen = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
	size_t ids[STAGE_ROUTE_CANDIDATES], i, n;
	unsigned allowed = 0;
	enum pipeline_result res;
	int r = 0;

	for (i = 0; i < t->nrows && t->rows[i].exact != NULL && r == 0; i++)
		if (h2o_memis(path, plen, t->rows[i].exact, t->rows[i].exact_len)) /* else NOMATCH: skip the call */
			r = stage_route_try(ex, &t->rows[i], path, plen, &allowed, &res);
	if (r == 0 && i < t->nrows) {
		if (t->set != NULL && !route_path_has_dot_segment(path, plen) &&
		    (n = route_set_candidates(t->set, path, plen, ids, STAGE_ROUTE_CANDIDATES)) <=
		        STAGE_ROUTE_CANDIDATES) {
			for (size_t k = 0; k < n && r == 0; k++)
				r = stage_route_try(ex, &t->rows[ids[k]], path, plen, &allowed, &res);
		} else {
			for (; i < t->nrows && r == 0; i++)
				r = stage_route_try(ex, &t->rows[i], path, plen, &allowed, &res);
		}
	}
	if (r == 1)
		return res;
	if (allowed != 0) {
		stage_route_method_not_allowed(req, allowed);
	} else {
		ex->route = ex->env->metric_unmatched;
		exchange_send_error(req, 404, "not_found", t->not_found);
	}
	return PIPELINE_ANSWERED;
}

const struct pipeline_stage stage_route = {"route", stage_route_run, NULL};
