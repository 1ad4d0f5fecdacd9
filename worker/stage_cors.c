/*
 * stage_cors.c - the CORS stage, on routes with "cors:" (see pipeline.h).
 *
 * Right after the route, so that a preflight is answered before anything
 * can refuse it (a rate limit would make a browser's request fail for the
 * wrong reason), and so that Access-Control-Allow-Origin is on every later
 * answer, errors and 429 included: a browser shows a script only answers
 * that carry it.  No Access-Control-Allow-Credentials is ever sent.
 */
#include "worker/router.h"

#include <stdio.h>
#include <string.h>

#include "lib/status.h"

/* The route's CORS origin for this request's Origin, or NULL. */
static const char *
stage_cors_origin(const struct config_cors *c, h2o_req_t *req)
{
	h2o_iovec_t origin = exchange_header(req, H2O_STRLIT("origin"));

	if (origin.base == NULL)
		return NULL;
	for (size_t i = 0; i < c->norigins; i++) {
		if (strcmp(c->origins[i], "*") == 0)
			return "*";
		if (h2o_memis(origin.base, origin.len, c->origins[i], strlen(c->origins[i])))
			return h2o_strdup(&req->pool, origin.base, origin.len).base;
	}
	return NULL;
}

/* A CORS preflight, answered here and never forwarded. */
static void
stage_cors_preflight(h2o_req_t *req, const struct config_route *r, const char *origin)
{
	char methods[32], headers[512] = "", age[32];

	if (origin == NULL) {
		exchange_send_error(req, 403, "cors_origin_not_allowed", "this origin may not call this route");
		return;
	}
	exchange_method_list(r->methods, methods, sizeof(methods));
	for (size_t i = 0; i < r->cors.nheaders; i++) {
		if (strlen(headers) + strlen(r->cors.headers[i]) + 3 >= sizeof(headers))
			break;
		if (i > 0)
			strcat(headers, ", ");
		strcat(headers, r->cors.headers[i]);
	}
	exchange_header_add(req, H2O_STRLIT("access-control-allow-origin"), origin);
	exchange_header_add_copy(req, H2O_STRLIT("access-control-allow-methods"), methods);
	if (headers[0] != '\0')
		exchange_header_add_copy(req, H2O_STRLIT("access-control-allow-headers"), headers);
	if (r->cors.max_age_ms > 0) {
		snprintf(age, sizeof(age), "%llu", (unsigned long long)(r->cors.max_age_ms / 1000));
		exchange_header_add_copy(req, H2O_STRLIT("access-control-max-age"), age);
	}
	if (strcmp(origin, "*") != 0)
		exchange_header_add(req, H2O_STRLIT("vary"), "Origin");
	req->res.status = 204;
	req->res.reason = status_reason(204);
	req->res.content_length = 0;
	h2o_send_inline(req, "", 0);
}

static enum pipeline_result
stage_cors_run(struct exchange *ex)
{
	const struct config_route *r = ex->row->route;
	h2o_req_t *req = ex->req;
	const char *origin = stage_cors_origin(&r->cors, req);

	if (ex->method == 0) { /* the route stage let only a preflight through */
		stage_cors_preflight(req, r, origin);
		return PIPELINE_ANSWERED;
	}
	if (origin != NULL) {
		exchange_header_add(req, H2O_STRLIT("access-control-allow-origin"), origin);
		if (strcmp(origin, "*") != 0)
			exchange_header_add(req, H2O_STRLIT("vary"), "Origin");
	}
	return PIPELINE_NEXT;
}

static int
stage_cors_applies(const struct router_row *row)
{
	return row->route != NULL && row->route->cors.origins != NULL;
}

const struct pipeline_stage stage_cors = {"cors", stage_cors_run, stage_cors_applies};
