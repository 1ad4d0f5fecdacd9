/*
 * stage_ratelimit.h - what the rate-limit stage offers the stages after
 * it: more tokens from the same bucket, for a request that turns out to
 * cost more than one (an _msearch of several searches, found by the
 * firewall stage).
 */
#ifndef ESGATE_STAGE_RATELIMIT_H
#define ESGATE_STAGE_RATELIMIT_H

#include <stdint.h>

#include "worker/exchange.h"

/* Takes N more tokens, of a request whose whole COST (>= N) is known, from
 * EX's bucket for its route (nothing on a route without rate_limit, or for
 * a unix-socket peer).  1 if the request may go on; else EX was answered
 * 429: with Retry-After when the bucket is short now, without it when
 * COST is over the route's burst (it never will fit). */
int stage_ratelimit_take(struct exchange *ex, uint64_t n, uint64_t cost);

#endif
