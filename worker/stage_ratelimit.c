/*
 * stage_ratelimit.c - the rate-limit stage, on routes with "rate_limit:"
 * (see pipeline.h): one token from the client's bucket for this route,
 * through worker/limiter.h (memory shared by every worker, or Redis shared
 * by a fleet), or 429 with Retry-After (503 when the shared store is down
 * and "fail: closed"); and, for the firewall stage, the tokens of the
 * searches an _msearch adds (stage_ratelimit.h).  The client is the peer,
 * or what X-Forwarded-For says when the peer is one of trusted_proxies.
 * The bucket is named by the client and the route's path and methods, not
 * its position in the file, so that instances sharing Redis agree on it.
 */
#include "worker/stage_ratelimit.h"

#include "lib/hash.h"
#include "worker/limiter.h"
#include "worker/router.h"

#include <stdio.h>
#include <string.h>

int
stage_ratelimit_take(struct exchange *ex, uint64_t n, uint64_t cost)
{
	const struct config *cfg = ex->env->cfg;
	const struct config_route *r = ex->row->route;
	h2o_req_t *req = ex->req;
	h2o_iovec_t xff;
	struct ratelimit_addr addr;
	uint8_t key[RATELIMIT_KEY_MAX];
	char buf[RATELIMIT_ADDRSTRLEN], after[32];
	double retry = 0;
	size_t keylen;
	uint32_t route_id;
	int rc;

	if (r == NULL || r->rate_limit.rate <= 0)
		return 1;
	xff = exchange_header_joined(req, H2O_STRLIT("x-forwarded-for"));
	if (ratelimit_client(exchange_client(ex), xff.base, xff.len, cfg->trusted_proxies, cfg->ntrusted_proxies, &addr,
	                     buf, sizeof(buf)) == NULL)
		return 1; /* a unix-socket peer: a local proxy that limits itself */
	if ((double)cost > r->rate_limit.burst) {
		metrics_ratelimited(ex->env->metrics, ex->route);
		exchange_send_error(req, 429, "too_many_requests", "this request costs more tokens than the route's burst");
		return 0;
	}
	route_id = (uint32_t)hash_bytes(r->methods, r->path, strlen(r->path));
	keylen = ratelimit_key(&addr, route_id, key);
	rc = limiter_take(ex->env->limiter, key, keylen, r->rate_limit.rate, r->rate_limit.burst, n, &retry);
	if (rc == LIMITER_ALLOW)
		return 1;
	if (rc == LIMITER_UNAVAILABLE) {
		exchange_send_error(req, 503, "rate_limit_unavailable",
		                    "the shared rate-limit store cannot be reached (fail: closed)");
		return 0;
	}
	snprintf(after, sizeof(after), "%llu", (unsigned long long)(retry + 0.999));
	exchange_header_add_copy(req, H2O_STRLIT("retry-after"), after);
	metrics_ratelimited(ex->env->metrics, ex->route);
	exchange_send_error(req, 429, "too_many_requests", "rate limit exceeded for this client");
	return 0;
}

/* One token per request, before anything reads it; a request found later to
 * cost more (an _msearch) takes the rest in the firewall stage. */
static enum pipeline_result
stage_ratelimit_run(struct exchange *ex)
{
	return stage_ratelimit_take(ex, 1, 1) ? PIPELINE_NEXT : PIPELINE_ANSWERED;
}

static int
stage_ratelimit_applies(const struct router_row *row)
{
	return row->route != NULL && row->route->rate_limit.rate > 0;
}

const struct pipeline_stage stage_ratelimit = {"ratelimit", stage_ratelimit_run, stage_ratelimit_applies};
