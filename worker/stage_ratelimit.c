/*
 * stage_ratelimit.c - the rate-limit stage, on routes with "rate_limit:"
 * (see pipeline.h): one token from the client's bucket for this route, in
 * memory shared by every worker (lib/ratelimit.h), or 429 with
 * Retry-After.  The client is the peer, or what X-Forwarded-For says when
 * the peer is one of trusted_proxies.
 */
#include "worker/router.h"

#include <stdio.h>

static enum pipeline_result
stage_ratelimit_run(struct exchange *ex)
{
	const struct config *cfg = ex->env->cfg;
	const struct config_route *r = ex->row->route;
	h2o_req_t *req = ex->req;
	h2o_iovec_t xff = exchange_header_joined(req, H2O_STRLIT("x-forwarded-for"));
	struct ratelimit_addr addr;
	uint8_t key[RATELIMIT_KEY_MAX];
	char buf[RATELIMIT_ADDRSTRLEN], after[32];
	double retry = 0;
	size_t keylen;

	if (ratelimit_client(exchange_client(ex), xff.base, xff.len, cfg->trusted_proxies, cfg->ntrusted_proxies, &addr,
	                     buf, sizeof(buf)) == NULL)
		return PIPELINE_NEXT; /* a unix-socket peer: a local proxy that limits itself */
	keylen = ratelimit_key(&addr, ex->row->index, key);
	if (ratelimit_take(ex->env->ratelimit, key, keylen, r->rate_limit.rate, r->rate_limit.burst,
	                   scoreboard_now_ms(), &retry) != 0)
		return PIPELINE_NEXT;
	snprintf(after, sizeof(after), "%llu", (unsigned long long)(retry + 0.999));
	exchange_header_add_copy(req, H2O_STRLIT("retry-after"), after);
	metrics_ratelimited(ex->env->metrics, ex->route);
	exchange_send_error(req, 429, "too_many_requests", "rate limit exceeded for this client");
	return PIPELINE_ANSWERED;
}

static int
stage_ratelimit_applies(const struct router_row *row)
{
	return row->route != NULL && row->route->rate_limit.rate > 0;
}

const struct pipeline_stage stage_ratelimit = {"ratelimit", stage_ratelimit_run, stage_ratelimit_applies};
