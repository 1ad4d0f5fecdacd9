/*
 * router.h - the route tables: every path a worker serves, its own
 * endpoints and the configured routes alike, as rows the stages read.
 *
 * Built once per worker from its configuration (router_new, after fork),
 * before the first request.  A row holds what the stages of
 * worker/pipeline.h ask of a route, the same fields whatever kind of
 * route it is, and the route's pipeline.  The router also owns the
 * micro-cache for its whole life: created when a row caches or coalesces,
 * freed (its upstream requests cancelled) by router_free.
 *
 * Three tables, one per h2o host: the public listeners', the public
 * listeners bound to a loopback address ("local"), and a separate metrics
 * listener's (metrics.listen).  The public and local tables hold, in the
 * order they are tried:
 *   /healthz           builtin, always
 *   /metrics           builtin: on the local table unless metrics are off or have a
 *                      listener of their own; on the public one only with metrics.public
 *   /_esgate/status    builtin, likewise
 *   /_esgate/          builtin, likewise: the status page, for a person
 *   /                  GET / to the upstream (the cluster info), unless cluster_info is off
 *   routes:            each configured route, in file order
 * The metrics listener's holds /metrics, /_esgate/status and /_esgate/
 * (when metrics are on) and nothing else.  A new endpoint of the worker's own is one row
 * of router_builtins (router.c) and its answer in worker/stage_builtin.c.
 */
#ifndef ESGATE_ROUTER_H
#define ESGATE_ROUTER_H

#include <stddef.h>
#include <stdint.h>

#include "lib/config.h"
#include "lib/route.h"
#include "worker/cache.h"
#include "worker/exchange.h"
#include "worker/pipeline.h"

/* What answers a route in the end. */
enum router_kind {
	ROUTER_UPSTREAM, /* the upstream, through the proxy stage */
	ROUTER_HEALTH,   /* the builtin stage: {"status":"ok"} */
	ROUTER_METRICS,  /* the builtin stage: Prometheus text */
	ROUTER_STATUS,   /* the builtin stage: the workers, as JSON */
	ROUTER_PAGE,     /* the builtin stage: the status page, HTML (worker/statuspage.h) */
};

struct router_row {
	const char *name;  /* the metrics label: the path template as written, or the path */
	const char *exact; /* a builtin's path, compared byte for byte with the raw path
	                    * (as h2o's own paths are); NULL for a template */
	size_t exact_len;
	const struct route_template *tmpl; /* a configured route's path; NULL for a builtin */
	unsigned methods;                  /* CONFIG_METHOD_* a client may use */
	int claims_path;                   /* a method it does not take is a 405 at once; else the rows after
	                                    * it may take the path with that method */
	enum router_kind kind;
	/* A configured route: its allow-lists, policy, rate limit, CORS (NULL
	 * for the builtins, which have none of them) and its place in the file
	 * (rate-limit buckets are per route). */
	const struct config_route *route;
	uint32_t index;
	/* ROUTER_UPSTREAM */
	unsigned upstream_method;  /* CONFIG_METHOD_* */
	const char *upstream_path; /* fixed ("/" for the cluster info); NULL: built by the check stage */
	int sanitize;              /* upstream error documents are cut down (errors.detail false) */
	struct cache_route cache;  /* ttl_ms 0 and coalesce 0: not cached */
	int metric;                /* the metrics series */
	struct pipeline pipeline;
};

/* The routes of one h2o host. */
struct router_table {
	struct router_row *rows; /* the builtins (exact paths) first, then the configured routes */
	size_t nrows;
	struct route_set *set; /* the configured routes' templates, by row number; NULL if none */
	const char *not_found; /* the reason of this host's 404 */
	struct pipeline entry; /* where every request starts: the route stage */
};

struct router {
	struct router_table main;    /* the public listeners */
	struct router_table local;   /* the public listeners bound to a loopback address */
	struct router_table metrics; /* a metrics.listen listener */
	struct cache *cache;         /* NULL when no row caches or coalesces */
};

/* Builds the tables for ENV->cfg, registers their metrics series, and
 * creates the cache if a row needs it (ENV->cache is set to it).  Exits on
 * out of memory, like the rest of a worker's set-up. */
struct router *router_new(struct exchange_env *env);
/* Frees the cache (cancelling the upstream requests it owns: call before
 * upstream_free) and the tables. */
void router_free(struct router *r);

#endif
