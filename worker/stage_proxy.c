/*
 * stage_proxy.c - the proxy stage, the last of every route to the
 * upstream (see pipeline.h): the upstream request the earlier stages
 * prepared goes through the worker's client, and its answer is streamed to
 * the client (worker/proxy.h).
 */
#include "worker/proxy.h"
#include "worker/router.h"

#include <string.h>

static enum pipeline_result
stage_proxy_run(struct exchange *ex)
{
	struct upstream_request rq = {.method = ex->up_method,
	                              .path = exchange_upstream_path(ex),
	                              .opaque_id = exchange_opaque_id(ex),
	                              .accept_gzip = exchange_accepts_gzip(ex->req)};

	if (ex->up_body != NULL && strcmp(rq.method, "HEAD") != 0) {
		rq.body = ex->up_body;
		rq.body_len = ex->up_body_len;
	}
	proxy_start(ex->env->upstream, ex->req, &rq, ex, ex->row->sanitize);
	return PIPELINE_ANSWERED;
}

static int
stage_proxy_applies(const struct router_row *row)
{
	return row->kind == ROUTER_UPSTREAM;
}

const struct pipeline_stage stage_proxy = {"proxy", stage_proxy_run, stage_proxy_applies};
