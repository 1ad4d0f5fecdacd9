/*
 * cache.h - the worker's micro-cache and request coalescing, per route and
 * off by default (lib/microcache.h holds the answers).
 *
 * A request gets here only after everything that guards the cluster and
 * the client has passed (route match, allow-lists, firewall, rate limit,
 * CORS), and only when it is a GET whose upstream request is a GET without
 * a body.  Its key is the route, whether the client accepts gzip, and the
 * exact upstream path and query esgate would send (never the request id).
 *
 * A fresh entry is sent at once (X-Cache: HIT, Age).  Otherwise one
 * upstream request per key is in flight at a time (when the route
 * coalesces): the first request starts it (MISS), identical ones wait for
 * it (COALESCED).  That upstream request belongs to the cache, not to any
 * client: a waiting client that leaves is only unhooked, and the answer is
 * still stored for the next ones.  Its answer is collected whole, up to
 * cache.max_entry_size, then given to every waiter; a 200 is stored for
 * the route's cache_ttl.  An answer too big to collect sends every waiter
 * on its own ordinary, streamed upstream request instead; a connection
 * error or timeout is shared (502/504) rather than retried by every
 * waiter against a cluster that just failed.
 */
#ifndef ESGATE_CACHE_H
#define ESGATE_CACHE_H

#include <h2o.h>
#include <stdint.h>

#include "lib/config.h"
#include "lib/metrics.h"
#include "worker/exchange.h"
#include "worker/upstream.h"

struct cache;

/* What a route asks of the cache. */
struct cache_route {
	unsigned id;     /* distinct per route of this configuration: part of the key */
	uint64_t ttl_ms; /* 0: nothing stored (coalescing only) */
	int coalesce;    /* identical requests share one upstream request */
	int sanitize;    /* upstream error documents are cut down (errors.detail false) */
	int metric;      /* metrics route index, or -1 */
};

/* A worker's cache on LOOP, holding at most cfg->cache_max_size bytes of
 * answers (and as much again being collected), fetching through U and
 * counting in M.  Exits on out of memory, like the rest of the worker's
 * set-up.  worker/router.c makes it and frees it. */
struct cache *cache_new(struct ev_loop *loop, const struct config *cfg, struct metrics_shard *m, struct upstream *u);
/* Cancels the upstream requests it owns (before upstream_free) and drops
 * the entries.  Clients still waiting are left alone: the worker is
 * exiting. */
void cache_free(struct cache *c);

/* Answers REQ, a GET on route CR whose upstream request is "GET PATH"
 * (path and query, as built) without a body: from the cache, by joining
 * the upstream request in flight for the same key, or by starting one. */
void cache_serve(struct cache *c, h2o_req_t *req, struct exchange *ex, const struct cache_route *cr,
                 const char *path, int accept_gzip);
/* Notes a request on such a route that cannot be cached (HEAD, a body, a
 * search sent as POST): X-Cache: BYPASS, counted; the caller proxies it. */
void cache_bypass(struct cache *c, h2o_req_t *req, struct exchange *ex, const struct cache_route *cr);

#endif
