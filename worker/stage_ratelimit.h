/*
 * stage_ratelimit.h - what the rate-limit stage offers the stages after
 * it: the client's address as the limits see it, more tokens from the
 * same buckets for a request that turns out to cost more than one (an
 * _msearch of several searches, found by the firewall stage), and the
 * principal's own bucket (taken by the auth stage once it knows who
 * asked).  All through worker/limiter.h, the one place limits take
 * tokens: this machine's shared memory, or Redis shared by a fleet.
 */
#ifndef ESGATE_STAGE_RATELIMIT_H
#define ESGATE_STAGE_RATELIMIT_H

#include <stdint.h>

#include "worker/exchange.h"

/* The client's address (the peer, or X-Forwarded-For behind
 * trusted_proxies) into *ADDR: 1, or 0 for a unix-socket peer. */
int stage_ratelimit_client(struct exchange *ex, struct ratelimit_addr *addr);

/* Answers EX 429 too_many_requests with REASON and Retry-After: RETRY
 * seconds, rounded up. */
void stage_ratelimit_refuse(struct exchange *ex, double retry, const char *reason);

/* Takes N more tokens, of a request whose whole COST (>= N) is known, from
 * EX's bucket for its route (nothing on a route without rate_limit, or for
 * a unix-socket peer), then from its principal's (a grant's rate_limit,
 * once the auth stage has run).  1 if the request may go on; else EX was
 * answered 429: with Retry-After when a bucket is short now, without it
 * when COST is over a burst (it never will fit). */
int stage_ratelimit_take(struct exchange *ex, uint64_t n, uint64_t cost);

/* The route number of R in its buckets' keys (ratelimit_key): a hash of
 * its path and methods, the same on every instance with that route. */
uint32_t stage_ratelimit_route_id(const struct config_route *r);

/* Answers EX 503 rate_limit_unavailable: the shared store (Redis) is down
 * and "fail: closed" (limiter_take said LIMITER_UNAVAILABLE). */
void stage_ratelimit_unavailable(struct exchange *ex);

/* One token from the principal's bucket alone (the auth stage's). */
int stage_ratelimit_take_principal(struct exchange *ex);

#endif
