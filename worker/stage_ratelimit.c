/*
 * stage_ratelimit.c - the rate-limit stage, on routes with "rate_limit:"
 * (see pipeline.h): one token from the client's bucket for this route,
 * through worker/limiter.h (memory shared by every worker, or Redis shared
 * by a fleet), or 429 with Retry-After (503 when Redis is down and "fail:
 * closed"); and, for the stages after it (stage_ratelimit.h), the
 * client's address, a principal's own bucket (a grant's rate_limit, taken
 * by the auth stage) and the tokens of the searches an _msearch adds.  The
 * client is the peer, or what X-Forwarded-For says when the peer is one of
 * trusted_proxies.  A bucket is named by a hash of the route's path and
 * methods, not by its position in the file, so that instances sharing
 * Redis agree on it.
 */
#include "worker/stage_ratelimit.h"

#include "lib/auth.h"
#include "lib/hash.h"
#include "worker/limiter.h"
#include "worker/router.h"

#include <stdio.h>
#include <string.h>

uint32_t
stage_ratelimit_route_id(const struct config_route *r)
{
	return (uint32_t)hash_bytes(r->methods, r->path, strlen(r->path));
}

void
stage_ratelimit_unavailable(struct exchange *ex)
{
	exchange_send_error(ex->req, 503, "rate_limit_unavailable",
	                    "the shared rate-limit store cannot be reached (fail: closed)");
}

int
stage_ratelimit_client(struct exchange *ex, struct ratelimit_addr *addr)
{
	const struct config *cfg = ex->env->cfg;
	h2o_iovec_t xff;
	char buf[RATELIMIT_ADDRSTRLEN];

	if (cfg->ntrusted_proxies == 0) {
		/* no X-Forwarded-For is ever believed: the peer's address as
		 * it is, without the text round trip (a hot path) */
		if (ex->peerlen == 0)
			ex->peerlen = ex->req->conn->callbacks->get_peername(ex->req->conn, (struct sockaddr *)&ex->peer);
		return ex->peerlen != 0 && ratelimit_addr_from_sockaddr(&ex->peer, addr) == 0;
	}
	xff = exchange_header_joined(ex->req, H2O_STRLIT("x-forwarded-for"));
	return ratelimit_client(exchange_client(ex), xff.base, xff.len, cfg->trusted_proxies, cfg->ntrusted_proxies,
	                        addr, buf, sizeof(buf)) != NULL;
}

void
stage_ratelimit_refuse(struct exchange *ex, double retry, const char *reason)
{
	char after[32];

	snprintf(after, sizeof(after), "%llu", (unsigned long long)(retry + 0.999));
	exchange_header_add_copy(ex->req, H2O_STRLIT("retry-after"), after);
	exchange_send_error(ex->req, 429, "too_many_requests", reason);
}

/* N tokens of the principal's own bucket, when its grant has a rate_limit. */
static int
stage_ratelimit_principal(struct exchange *ex, uint64_t n, uint64_t cost)
{
	const struct auth_grant *g = ex->grant;
	double retry = 0;

	if (g == NULL || g->rate <= 0 || ex->principal_keylen == 0)
		return 1;
	if ((double)cost > g->burst) {
		metrics_auth_denied(ex->env->counts, METRICS_DENY_RATE_LIMIT);
		exchange_send_error(ex->req, 429, "too_many_requests",
		                    "this request costs more tokens than the principal's burst");
		return 0;
	}
	switch (limiter_take(ex->env->limiter, ex->principal_key, ex->principal_keylen, g->rate, g->burst, n, &retry)) {
	case LIMITER_ALLOW: return 1;
	case LIMITER_UNAVAILABLE: stage_ratelimit_unavailable(ex); return 0;
	default: break;
	}
	metrics_auth_denied(ex->env->counts, METRICS_DENY_RATE_LIMIT);
	stage_ratelimit_refuse(ex, retry, "rate limit exceeded for this principal");
	return 0;
}

int
stage_ratelimit_take_principal(struct exchange *ex)
{
	return stage_ratelimit_principal(ex, 1, 1);
}

int
stage_ratelimit_take(struct exchange *ex, uint64_t n, uint64_t cost)
{
	const struct config_route *r = ex->row->route;
	h2o_req_t *req = ex->req;
	struct ratelimit_addr addr;
	uint8_t key[RATELIMIT_KEY_MAX];
	double retry = 0;
	size_t keylen;

	if (r == NULL || r->rate_limit.rate <= 0 || !stage_ratelimit_client(ex, &addr))
		/* no route limit, or a unix-socket peer: a local proxy that limits itself */
		return stage_ratelimit_principal(ex, n, cost);
	if ((double)cost > r->rate_limit.burst) {
		metrics_ratelimited(ex->env->counts, ex->route);
		exchange_send_error(req, 429, "too_many_requests",
		                    "this request costs more tokens than the route's burst");
		return 0;
	}
	keylen = ratelimit_key(&addr, stage_ratelimit_route_id(r), key);
	switch (limiter_take(ex->env->limiter, key, keylen, r->rate_limit.rate, r->rate_limit.burst, n, &retry)) {
	case LIMITER_ALLOW: return stage_ratelimit_principal(ex, n, cost);
	case LIMITER_UNAVAILABLE: stage_ratelimit_unavailable(ex); return 0;
	default: break;
	}
	metrics_ratelimited(ex->env->counts, ex->route);
	stage_ratelimit_refuse(ex, retry, "rate limit exceeded for this client");
	return 0;
}

/* One token per request, before anything reads it; a request found later to
 * cost more (an _msearch) takes the rest in the firewall stage.  (The
 * principal is not known yet here: the auth stage takes its token.) */
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
