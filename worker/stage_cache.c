/*
 * stage_cache.c - the micro-cache stage, on routes with cache_ttl or
 * coalesce (the built-in GET / too): see pipeline.h and worker/cache.h.
 *
 * Only a client's GET whose upstream request is a GET without a body can
 * be answered from the cache or share an upstream request: the cache
 * answers it, now or when the fetch it joined ends.  Anything else on such
 * a route (HEAD, a body, a search sent as POST) is marked BYPASS and goes
 * on to the proxy.
 */
#include "worker/router.h"


/* strcmp(M, "GET") == 0, without a libc call every request */
static inline int
stage_cache_is_get(const char *m)
{
	return m[0] == 'G' && m[1] == 'E' && m[2] == 'T' && m[3] == '\0';
}

static enum pipeline_result
stage_cache_run(struct exchange *ex)
{
	h2o_req_t *req = ex->req;
	size_t body_len = req->entity.base != NULL ? req->entity.len : 0;

	if (ex->method == CONFIG_METHOD_GET && stage_cache_is_get(ex->up_method) && ex->up_body == NULL &&
	    body_len == 0) {
		cache_serve(ex->env->cache, req, ex, &ex->row->cache, exchange_upstream_path(ex),
		            exchange_accepts_gzip(req));
		return PIPELINE_ANSWERED;
	}
	cache_bypass(ex->env->cache, req, ex, &ex->row->cache);
	return PIPELINE_NEXT;
}

static int
stage_cache_applies(const struct router_row *row)
{
	return row->cache.ttl_ms > 0 || row->cache.coalesce;
}

const struct pipeline_stage stage_cache = {"cache", stage_cache_run, stage_cache_applies};
